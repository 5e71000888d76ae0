/*
 * What the control API asks of a VM, and what the VM reports: the seam
 * between vmm/api.c (HTTP and JSON on a Unix socket) and the machine's
 * owner (vmm/machine.c), so that each can be tested without the other.
 *
 * Promise: every op runs on the event thread, one at a time, and returns
 * only when the request is done or refused: 0, or -errno with one line in
 * err. -EBUSY means the request is not allowed in the current state
 * (lifecycle.h), and nothing changed; -EINVAL a request that is wrong in
 * itself; anything else a failure while carrying it out.
 */
#ifndef VESSEL_VMM_CONTROL_H
#define VESSEL_VMM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../devices/device.h"
#include "lifecycle.h"
#include "options.h"

/* A device's (or a vCPU's) counters, as the API lists them. */
struct control_counters {
	const char *name; /* "virtio-blk0", "serial0", "vcpu1" */
	unsigned int count;
	struct device_counter counters[DEVICE_MAX_COUNTERS];
};

#define CONTROL_MAX_COUNTER_GROUPS 64

struct control_info {
	enum vm_state state;
	/* Seconds the guest has been running (pauses included), 0 while
	 * inactive. */
	double uptime_seconds;
	/* NULL while the VM has no configuration yet (vessel serve). */
	const struct vm_config *config;
	/* Devices first, in the machine's order, then the vCPUs. */
	unsigned int group_count;
	struct control_counters groups[CONTROL_MAX_COUNTER_GROUPS];
};

/* A snapshot of the paused VM into the new directory dir: with diff only
 * the pages written since its base (the last snapshot it was written to
 * or restored from); resumed after when resume. */
struct control_snapshot {
	const char *dir;
	bool resume;
	bool diff;
};

/* The VM of the snapshot in dir, running or paused, its memory read in at
 * once when eager; disks changed since the snapshot refuse it unless
 * allow_changed_disks; skip_memory_check leaves the memory file's
 * checksum unread (snapshot.h, struct snapshot_leniency). */
struct control_restore {
	const char *dir;
	bool paused;
	bool eager;
	bool allow_changed_disks;
	bool skip_memory_check;
};

struct control_ops {
	void (*describe)(void *opaque, struct control_info *info);
	/* Takes config (vm_config_free'd by the VM) on success only. */
	int (*configure)(void *opaque, struct vm_config *config, char *err,
			 size_t err_len);
	/* VM_REQUEST_START, _PAUSE, _RESUME, _POWER_BUTTON, _STOP. */
	int (*request)(void *opaque, enum vm_request request, char *err,
		       size_t err_len);
	int (*snapshot)(void *opaque, const struct control_snapshot *request,
			char *err, size_t err_len);
	/* The VM into the new directory dir, its memory released; resume
	 * brings it back. */
	int (*suspend)(void *opaque, const char *dir, char *err, size_t err_len);
	/* While inactive. */
	int (*restore)(void *opaque, const struct control_restore *request,
		       char *err, size_t err_len);
};

#endif
