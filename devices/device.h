/*
 * The device record: every device of a machine, legacy and virtio alike,
 * registers one record with its name and ops, and vmm/ keeps the records
 * in one ordered list. Pause, teardown, the control API's counters and the
 * snapshot and migration code walk that list.
 *
 * Promise: ops run on the event thread, one at a time, with every vCPU
 * parked when the caller says so (quiesce, save, restore). A device's
 * saved state is plain data written through the writer interface below
 * (no descriptors, no pointers): host resources come back from the
 * device's constructor on restore, and restore checks every value it reads
 * before use, since a snapshot file is untrusted input. The writer and
 * reader are declared here and implemented in vmm/, so devices know
 * nothing of the format.
 */
#ifndef VESSEL_DEVICES_DEVICE_H
#define VESSEL_DEVICES_DEVICE_H

#include <stddef.h>
#include <stdint.h>

/* One counter of a device, for the control API: "requests", "bytes_read". */
struct device_counter {
	const char *name;
	uint64_t value;
};

#define DEVICE_MAX_COUNTERS 12

/* Named values of a device's state; 0 or -errno. */
struct device_state_writer {
	int (*put_u64)(struct device_state_writer *writer, const char *name,
		       uint64_t value);
	int (*put_bytes)(struct device_state_writer *writer, const char *name,
			 const void *data, size_t size);
};

/* -ENOENT for a missing value, -EINVAL for one of the wrong size. */
struct device_state_reader {
	int (*get_u64)(struct device_state_reader *reader, const char *name,
		       uint64_t *value);
	int (*get_bytes)(struct device_state_reader *reader, const char *name,
			 void *data, size_t size);
	/* The size of a value of variable length, for get_bytes. */
	int (*get_size)(struct device_state_reader *reader, const char *name,
			size_t *size);
	/* Refuses the restore with the device's own reason, for values that
	 * are well formed but not this device's (another screen mode):
	 * returns -EINVAL for the device to return. */
	int (*refuse)(struct device_state_reader *reader, const char *reason);
};

struct device_ops {
	/* Stop touching guest memory and raising interrupts until resume:
	 * finish or drain what is in flight, hand back completed chains,
	 * hold back input (the backends push back as when the guest's
	 * buffers are full). The vCPUs are parked. 0 or -errno. Optional. */
	int (*quiesce)(void *opaque);
	/* Undo quiesce: take input again, look at the queues again. */
	void (*resume)(void *opaque);
	/* Fills at most max counters: how many. Optional. */
	unsigned int (*counters)(void *opaque, struct device_counter *out,
				 unsigned int max);
	/* The device's state, while quiesced. 0 or -errno. Optional (a
	 * device without state). */
	int (*save)(void *opaque, struct device_state_writer *writer);
	int (*restore)(void *opaque, struct device_state_reader *reader);
	/* The layout save writes: restore reads only this one. -EOPNOTSUPP
	 * from save means the device is in a state it cannot save yet. */
	uint32_t state_version;
};

struct device_record {
	const char *name; /* unique in the machine: "serial0", "virtio-blk1" */
	const struct device_ops *ops;
	void *opaque;
};

#endif
