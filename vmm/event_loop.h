/*
 * The event thread's loop: one epoll set for every descriptor vessel waits
 * on (console input, device wake-ups, later virtqueue ioeventfds, the API
 * socket, backends, timers).
 *
 * Promise: handlers run one at a time on the thread that called
 * event_loop_run(); event_loop_stop() may be called from any thread and makes
 * event_loop_run() return after the handler in progress. Poll sources (see
 * devices/device_context.h) run on the same thread, between waits. There is
 * no fixed limit on watched descriptors, and a handler may remove any watch,
 * its own included. event_loop_call() runs a function on the event thread
 * from any other thread and waits for it.
 */
#ifndef VESSEL_VMM_EVENT_LOOP_H
#define VESSEL_VMM_EVENT_LOOP_H

#include <stdint.h>

#include "../devices/device_context.h"

typedef void (*event_handler_fn)(void *opaque, uint32_t events);

struct event_loop;

struct event_loop *event_loop_create(void);
void event_loop_destroy(struct event_loop *loop);

/* Watch fd for events (EPOLLIN, ...). 0 or -errno. */
int event_loop_add(struct event_loop *loop, int fd, uint32_t events,
		   event_handler_fn handler, void *opaque);
/* Change which events wake fd's handler; 0 stops watching without
 * forgetting it. */
int event_loop_modify(struct event_loop *loop, int fd, uint32_t events);
int event_loop_remove(struct event_loop *loop, int fd);

/* Runs source's prepare() before and dispatch() after every wait, with
 * opaque, until removed. Its descriptors are polled alongside the watched
 * ones (EVENT_LOOP_MAX_POLL_FDS for all sources together). 0 or -errno. */
#define EVENT_LOOP_MAX_POLL_FDS 256
int event_loop_add_source(struct event_loop *loop,
			  const struct poll_source *source, void *opaque);
int event_loop_remove_source(struct event_loop *loop, void *opaque);

/* Polls poller with opaque before every sleep, within the adaptive
 * window of busy_poll.h, until removed. 0 or -errno. */
int event_loop_add_poller(struct event_loop *loop,
			  const struct device_poller *poller, void *opaque);
int event_loop_remove_poller(struct event_loop *loop, void *opaque);
/* The polling window now: 0 while the pollers' devices are idle. */
uint64_t event_loop_poll_window_ns(const struct event_loop *loop);

/* Runs function(opaque) on the event thread, between handlers, and returns
 * when it has run; on the event thread itself it runs at once. A call made
 * before event_loop_run() waits for it. The caller must not hold anything
 * a handler takes. */
void event_loop_call(struct event_loop *loop, void (*function)(void *opaque),
		     void *opaque);

/* Runs handlers until event_loop_stop(). 0 or -errno from epoll. */
int event_loop_run(struct event_loop *loop);
void event_loop_stop(struct event_loop *loop);

#endif
