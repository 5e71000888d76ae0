/*
 * A snapshot on disk: a directory holding
 *   state.dtb  the machine's state as a device tree (state_fdt.h): the
 *              format's node /snapshot, the configuration /config (its
 *              JSON), the VM /vm, the devices /devices/NAME, the vCPUs
 *              /vcpuN;
 *   memory     guest RAM as an image (memory.h), sparse where it is zero;
 *   checksum   XXH3-64 of state.dtb and of memory's pages, one line each.
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

#include <stddef.h>
#include <stdint.h>

#include "state_fdt.h"
#include "vm.h"
#include "vm_config.h"

#define SNAPSHOT_VERSION 1

/* Writes the paused vm, of config, into the new directory dir. 0 or
 * -errno with err. */
int snapshot_write(struct vm *vm, const struct vm_config *config,
		   const char *dir, char *err, size_t err_len);

struct snapshot {
	void *state;
	size_t state_size;
	struct state_reader reader; /* over state */
	int memory_fd;
	struct vm_config *config; /* the snapshot's; the caller may take it */
};

/* Opens and checks the snapshot in dir. 0 or -errno with err. */
int snapshot_open(const char *dir, struct snapshot *snapshot, char *err,
		  size_t err_len);
void snapshot_close(struct snapshot *snapshot);
/* Whether another process than the one that took it can restore it: not
 * with a TAP device inherited as a descriptor (fd=), which means nothing
 * there. 0 or -EINVAL with err. */
int snapshot_check_new_process(const struct snapshot *snapshot, char *err,
			       size_t err_len);

#endif
