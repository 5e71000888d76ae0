/*
 * What vmm/ hands a device that does more than answer register accesses:
 * guest memory, a way to have the event thread watch a descriptor, and,
 * for a backend like libslirp whose descriptors and deadlines change every
 * time round, a poll source.
 *
 * Promise: handlers registered with watch_fd and poll sources run on the
 * event thread, one at a time, never concurrently with each other.
 */
#ifndef VESSEL_DEVICES_DEVICE_CONTEXT_H
#define VESSEL_DEVICES_DEVICE_CONTEXT_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest_memory.h"

typedef void (*device_fd_handler)(void *opaque, uint32_t events);

/* The descriptors one poll source wants watched for one wait, poll(2)
 * style. */
struct poll_set {
	struct pollfd *fds;
	unsigned int count;
	unsigned int capacity;
};

/* Adds fd: its index in set (what dispatch finds it at), or -ENOSPC. */
static inline int poll_set_add(struct poll_set *set, int fd, short events)
{
	if (set->count == set->capacity)
		return -ENOSPC;
	set->fds[set->count] = (struct pollfd){ .fd = fd, .events = events };
	return (int)set->count++;
}

struct poll_source {
	/* Before each wait: add descriptors to set, and lower *timeout_ms
	 * (-1: no deadline) to when the source next needs to run. */
	void (*prepare)(void *opaque, struct poll_set *set, int *timeout_ms);
	/* After each wait, even one that timed out: set is what prepare()
	 * built, with revents filled in. */
	void (*dispatch)(void *opaque, const struct poll_set *set);
};

/*
 * Work a device can find by reading memory (a ring's index), which the event
 * thread looks for for a while before it sleeps, so that the guest need not
 * notify it meanwhile (vmm/busy_poll.h says for how long).
 */
struct device_poller {
	/* Looks for work and does it: whether there was any. */
	bool (*poll)(void *opaque);
	/* The event thread is about to sleep: turn the notifications that
	 * wake it back on, then look once more: whether work came
	 * meanwhile (the thread then does not sleep). */
	bool (*arm)(void *opaque);
	/* Whether work waits, looking only (no system call, nothing done):
	 * asked once after each sleep, it tells the event thread whether the
	 * wake-up was this device's, which is what opens the polling window
	 * (a wake-up for a network frame or a timer does not). */
	bool (*pending)(void *opaque);
};

struct device_context {
	const struct guest_memory *memory;
	/* events are EPOLLIN and friends; 0 or -errno. */
	int (*watch_fd)(void *context_opaque, int fd, uint32_t events,
			device_fd_handler handler, void *handler_opaque);
	/* Changes the events fd wakes its handler for (0: none for now). */
	int (*modify_fd)(void *context_opaque, int fd, uint32_t events);
	int (*unwatch_fd)(void *context_opaque, int fd);
	/* Runs source with opaque on the event loop until removed (by the
	 * same opaque). 0 or -errno. */
	int (*add_poll_source)(void *context_opaque,
			       const struct poll_source *source, void *opaque);
	int (*remove_poll_source)(void *context_opaque, void *opaque);
	/* Optional: polls poller with opaque on the event thread until
	 * removed (by the same opaque). 0 or -errno. */
	int (*add_poller)(void *context_opaque, const struct device_poller *poller,
			  void *opaque);
	int (*remove_poller)(void *context_opaque, void *opaque);
	void *context_opaque;
};

#endif
