/*
 * Adaptive polling for the event thread: before it sleeps, the thread
 * spins over the devices' pollers (devices/device_context.h) for a window
 * that follows how soon work has been coming, as QEMU's iothreads do
 * (poll-max-ns). A guest that submits requests back to back then finds
 * them taken without a notification, and so without an exit, and its
 * completions go back without the thread's sleep and wake-up in between.
 *
 * Promise: the window is 0, and no poller is called but arm and pending,
 * until a sleep ends within BUSY_POLL_MAX_NS with a poller's work pending;
 * it doubles (from BUSY_POLL_START_NS) after each such sleep, up to
 * BUSY_POLL_MAX_NS, and halves after any other, down to 0. An idle
 * guest's event thread therefore polls for a few windows after its last
 * work at most, and then not at all; one busy with what no poller looks
 * at (its network, a timer) does not poll either. Every poller's arm runs
 * before every sleep. One thread uses a busy_poll.
 */
#ifndef VESSEL_VMM_BUSY_POLL_H
#define VESSEL_VMM_BUSY_POLL_H

#include <stdbool.h>
#include <stdint.h>

#include "../devices/device_context.h"

#define BUSY_POLL_MAX_POLLERS 16
#define BUSY_POLL_START_NS 4000
/* QEMU's iothread default: longer than a request served from the host's
 * page cache takes, far shorter than a scheduler tick. */
#define BUSY_POLL_MAX_NS 32000

struct busy_poll {
	struct {
		const struct device_poller *poller; /* NULL: free slot */
		void *opaque;
	} pollers[BUSY_POLL_MAX_POLLERS];
	uint64_t window_ns;
};

/* 0, -EEXIST for an opaque already added, -ENOSPC. */
int busy_poll_add(struct busy_poll *poll, const struct device_poller *poller,
		  void *opaque);
int busy_poll_remove(struct busy_poll *poll, void *opaque);

/* Before a sleep: spins for the window until a poller finds work, then
 * arms every poller. Whether work was found (then do not sleep). */
bool busy_poll_before_sleep(struct busy_poll *poll);

/* Right after a sleep: whether a poller has work waiting, which is then
 * what (likely) woke the thread. */
bool busy_poll_pending(struct busy_poll *poll);

/* After a sleep of slept_ns, ended for a poller's work (pending) or for
 * something else: adapts the window. */
void busy_poll_after_sleep(struct busy_poll *poll, uint64_t slept_ns,
			   bool pending);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t busy_poll_now_ns(void);

#endif
