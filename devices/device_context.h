/*
 * What vmm/ hands a device that does more than answer register accesses:
 * guest memory, and a way to have the event thread watch a descriptor.
 *
 * Promise: handlers registered with watch_fd run on the event thread, one
 * at a time, never concurrently with each other.
 */
#ifndef VESSEL_DEVICES_DEVICE_CONTEXT_H
#define VESSEL_DEVICES_DEVICE_CONTEXT_H

#include <stdint.h>

#include "guest_memory.h"

typedef void (*device_fd_handler)(void *opaque, uint32_t events);

struct device_context {
	const struct guest_memory *memory;
	/* events are EPOLLIN and friends; 0 or -errno. */
	int (*watch_fd)(void *context_opaque, int fd, uint32_t events,
			device_fd_handler handler, void *handler_opaque);
	int (*unwatch_fd)(void *context_opaque, int fd);
	void *context_opaque;
};

#endif
