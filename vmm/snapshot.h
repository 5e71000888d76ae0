/*
 * A snapshot on disk: a directory holding
 *   state.dtb  the machine's state as a device tree (state_fdt.h): the
 *              format's node /snapshot, the configuration /config (its
 *              JSON), the VM /vm, the devices /devices/NAME, the vCPUs
 *              /vcpuN;
 *   memory     guest RAM as an image (memory.h), sparse where it is zero;
 *   checksum   XXH3-64 of state.dtb and of memory's pages, one line each;
 *   pages      a diff's only: the pages it holds (page_list.h), its
 *              memory holding just those, over its base's (/base).
 * docs/snapshot.md describes every node.
 *
 * Promise: snapshot_write() leaves a complete snapshot or, on any failure
 * (a full disk included), no directory at all. snapshot_open() checks
 * everything it can before a VM is created: the checksums, the state's
 * structure, the format's version and machine, the configuration, the
 * VM's and vCPUs' parts (vm_check_state), the memory file's size; a
 * refusal is one line naming what is wrong. The devices' values are
 * checked as they are restored (vm_restore).
 */
#ifndef VESSEL_VMM_SNAPSHOT_H
#define VESSEL_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state_fdt.h"
#include "vm.h"
#include "vm_config.h"

#define SNAPSHOT_VERSION 1 /* /snapshot's version: a full snapshot */
#define SNAPSHOT_DIFF_VERSION 2 /* a diff over the snapshot in /base */
/* Diffs over one full snapshot that restore reads through. */
#define SNAPSHOT_MAX_LAYERS 64

/* A diff: the base it is taken over, by absolute path and identity, and
 * the bitmap of the image's pages written since (dirty_log.h). */
struct snapshot_diff {
	const char *base_dir;
	uint64_t base_identity;
	const uint64_t *written;
	size_t words;
};

/* Writes the paused vm, of config, into the new directory dir: all of
 * its memory, or with diff only the pages written since the base. Its
 * identity (what a diff over it records) into *identity. 0 or -errno
 * with err. */
int snapshot_write(struct vm *vm, const struct vm_config *config,
		   const char *dir, const struct snapshot_diff *diff,
		   uint64_t *identity, char *err, size_t err_len);

struct snapshot {
	void *state;
	size_t state_size;
	struct state_reader reader; /* over state */
	int memory_fd; /* the full snapshot at the bottom: its memory */
	/* For a diff, the diffs over it up to this one, oldest first. */
	struct vm_memory_layer layers[SNAPSHOT_MAX_LAYERS];
	unsigned int layer_count;
	uint64_t identity; /* the XXH3-64 of its checksum file */
	struct vm_config *config; /* the snapshot's; the caller may take it */
	/* What the user should hear of a restore that goes on anyway
	 * (disks changed since, allowed); empty when nothing. */
	char warning[512];
	bool memory_unchecked; /* its memory's checksum was not read */
};

/* What a restore may let pass that it refuses by default. */
struct snapshot_leniency {
	/* Disks written since the snapshot: named in the warning. */
	bool allow_changed_disks;
	/* The memory file's checksum is not computed: the restore no longer
	 * reads every written page before the VM is made, so its time stops
	 * growing with the data, and a memory file damaged since is no
	 * longer refused (its size and the state's checksum still are). For
	 * snapshots on storage the user trusts. */
	bool skip_memory_check;
};

/* Opens and checks the snapshot in dir, and for a diff each base under
 * it: missing, another snapshot than the one the diff was taken over, or
 * damaged, it refuses. A disk that changed since the snapshot refuses it
 * too; leniency (NULL for none) lets what it names pass. 0 or -errno with
 * err. */
int snapshot_open(const char *dir, const struct snapshot_leniency *leniency,
		  struct snapshot *snapshot, char *err, size_t err_len);
void snapshot_close(struct snapshot *snapshot);
/* Whether another process than the one that took it can restore it: not
 * with a TAP device inherited as a descriptor (fd=), which means nothing
 * there. 0 or -EINVAL with err. */
int snapshot_check_new_process(const struct snapshot *snapshot, char *err,
			       size_t err_len);

#endif
