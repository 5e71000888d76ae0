/*
 * A snapshot's state as a flattened device tree (libfdt): one node per
 * part of the machine ("/config", "/vm", "/vcpu0", "/devices/serial0"),
 * each with a 32-bit `version`, holding named properties of exact sizes.
 * Anyone can read it with `dtc -I dtb -O dts state.dtb`.
 *
 * The writer and the reader implement devices/device.h's
 * device_state_writer and device_state_reader for the node that is open;
 * numbers are stored big-endian, as device trees store cells.
 *
 * Promise: the reader treats the blob as untrusted. state_reader_open()
 * checks the whole blob (fdt_check_full) before anything is read, every
 * property's size is checked against what the caller expects before a
 * byte is copied, and every refusal leaves one line in reader->err naming
 * the node and property ("vcpu0/msrs: 12 bytes, expected 16").
 */
#ifndef VESSEL_VMM_STATE_FDT_H
#define VESSEL_VMM_STATE_FDT_H

#include <stddef.h>
#include <stdint.h>

#include "../devices/device.h"

#define STATE_ERR_SIZE 256
#define STATE_PATH_SIZE 96

struct state_writer {
	struct device_state_writer base; /* writes into the open node */
	void *blob;
	size_t capacity;
	int node; /* offset of the open node, -1 when none */
	char path[STATE_PATH_SIZE];
};

/* An empty tree. 0 or -ENOMEM. */
int state_writer_init(struct state_writer *writer);
void state_writer_release(struct state_writer *writer);
/* Adds the node at path ("/vcpu0", "/devices/serial0"; parents are created
 * as needed) with its version, and opens it for the put_ calls. 0 or
 * -errno (-EEXIST for a node written twice). */
int state_writer_begin(struct state_writer *writer, const char *path,
		       uint32_t version);
/* A string property of the open node. */
int state_writer_put_string(struct state_writer *writer, const char *name,
			    const char *value);
/* The finished blob and its size (packed); valid until release. */
int state_writer_finish(struct state_writer *writer, const void **blob,
			size_t *size);

struct state_reader {
	struct device_state_reader base; /* reads from the open node */
	const void *blob;
	int node;
	char path[STATE_PATH_SIZE];
	char err[STATE_ERR_SIZE];
};

/* Checks the whole blob; 0, or -EINVAL with err. blob must outlive the
 * reader. */
int state_reader_open(struct state_reader *reader, const void *blob,
		      size_t size);
/* Opens the node at path and checks its version: -ENOENT when it is
 * missing, -EPROTO for another version, with err. */
int state_reader_begin(struct state_reader *reader, const char *path,
		       uint32_t version);
/* A property of any size up to max: its address in the blob and its size
 * (for variable-length state: MSR lists, XSAVE areas). -ENOENT, or
 * -EINVAL when larger than max or smaller than min. */
int state_reader_get_blob(struct state_reader *reader, const char *name,
			  size_t min, size_t max, const void **data,
			  size_t *size);
/* A NUL-terminated string property of at most max bytes. */
int state_reader_get_string(struct state_reader *reader, const char *name,
			    size_t max, const char **value);
/* Calls visit for each subnode of path, by name, in order; stops at the
 * first non-zero result and returns it. */
int state_reader_for_each_child(struct state_reader *reader, const char *path,
				int (*visit)(void *opaque, const char *name),
				void *opaque);

#endif
