#include "event_loop.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENT_LOOP_MAX_WATCHES 64
#define EVENT_LOOP_MAX_SOURCES 8

struct watch {
	int fd; /* -1: free slot */
	event_handler_fn handler;
	void *opaque;
};

struct source {
	const struct poll_source *source; /* NULL: free slot */
	void *opaque;
	struct poll_set set; /* its part of poll_fds, for one wait */
};

struct event_loop {
	int epoll_fd;
	int stop_fd; /* eventfd: a write from any thread ends the loop */
	/* Set with the write, so that the loop also sees a stop requested by
	 * a poll source's dispatch before its next wait. */
	atomic_bool stopping;
	struct watch watches[EVENT_LOOP_MAX_WATCHES];
	struct source sources[EVENT_LOOP_MAX_SOURCES];
	/* For a wait with sources: the epoll descriptor first, then each
	 * source's descriptors. */
	struct pollfd poll_fds[1 + EVENT_LOOP_MAX_POLL_FDS];
};

struct event_loop *event_loop_create(void)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	for (int i = 0; i < EVENT_LOOP_MAX_WATCHES; i++)
		loop->watches[i].fd = -1;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epoll_fd < 0 || loop->stop_fd < 0)
		goto fail;
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->stop_fd, &event))
		goto fail;
	return loop;
fail:
	event_loop_destroy(loop);
	return NULL;
}

void event_loop_destroy(struct event_loop *loop)
{
	if (!loop)
		return;
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	if (loop->stop_fd >= 0)
		close(loop->stop_fd);
	free(loop);
}

static struct watch *find_watch(struct event_loop *loop, int fd)
{
	for (int i = 0; i < EVENT_LOOP_MAX_WATCHES; i++) {
		if (loop->watches[i].fd == fd)
			return &loop->watches[i];
	}
	return NULL;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events,
		   event_handler_fn handler, void *opaque)
{
	if (fd < 0 || find_watch(loop, fd))
		return -EINVAL;
	struct watch *watch = find_watch(loop, -1);
	if (!watch)
		return -ENOSPC;
	struct epoll_event event = { .events = events, .data.ptr = watch };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event))
		return -errno;
	*watch = (struct watch){ .fd = fd, .handler = handler, .opaque = opaque };
	return 0;
}

int event_loop_modify(struct event_loop *loop, int fd, uint32_t events)
{
	struct watch *watch = find_watch(loop, fd);

	if (fd < 0 || !watch)
		return -ENOENT;
	struct epoll_event event = { .events = events, .data.ptr = watch };
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) ? -errno : 0;
}

int event_loop_remove(struct event_loop *loop, int fd)
{
	struct watch *watch = find_watch(loop, fd);

	if (fd < 0 || !watch)
		return -ENOENT;
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	watch->fd = -1;
	return 0;
}

int event_loop_add_source(struct event_loop *loop,
			  const struct poll_source *source, void *opaque)
{
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		if (loop->sources[i].source && loop->sources[i].opaque == opaque)
			return -EEXIST;
	}
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		if (!loop->sources[i].source) {
			loop->sources[i] = (struct source){ .source = source,
							    .opaque = opaque };
			return 0;
		}
	}
	return -ENOSPC;
}

int event_loop_remove_source(struct event_loop *loop, void *opaque)
{
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		if (loop->sources[i].source && loop->sources[i].opaque == opaque) {
			loop->sources[i].source = NULL;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * With poll sources, the wait is a poll() over the epoll descriptor (ready
 * when a watched descriptor is) and the sources' own descriptors, bounded
 * by their earliest deadline; every source then sees the result. Returns
 * whether the epoll set has events, or -errno.
 */
static int wait_with_sources(struct event_loop *loop)
{
	unsigned int used = 1;
	int timeout_ms = -1;

	loop->poll_fds[0] = (struct pollfd){ .fd = loop->epoll_fd,
					     .events = POLLIN };
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		struct source *source = &loop->sources[i];

		if (!source->source)
			continue;
		source->set = (struct poll_set){
			.fds = &loop->poll_fds[used],
			.capacity = 1 + EVENT_LOOP_MAX_POLL_FDS - used,
		};
		source->source->prepare(source->opaque, &source->set, &timeout_ms);
		used += source->set.count;
	}
	int count = poll(loop->poll_fds, used, timeout_ms);
	if (count < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		struct source *source = &loop->sources[i];

		/* A source removed by an earlier one's dispatch is skipped. */
		if (source->source)
			source->source->dispatch(source->opaque, &source->set);
	}
	return (loop->poll_fds[0].revents & POLLIN) != 0;
}

static bool has_sources(const struct event_loop *loop)
{
	for (int i = 0; i < EVENT_LOOP_MAX_SOURCES; i++) {
		if (loop->sources[i].source)
			return true;
	}
	return false;
}

/* Consumes a stop request: true when there was one. The eventfd is
 * drained either way, so a write that lands after its flag was taken wakes
 * the loop once, not forever. */
static bool take_stop(struct event_loop *loop)
{
	uint64_t value;

	if (read(loop->stop_fd, &value, sizeof(value)) < 0) {
		/* Nothing written yet, or already drained. */
	}
	return atomic_exchange(&loop->stopping, false);
}

int event_loop_run(struct event_loop *loop)
{
	struct epoll_event events[16];

	for (;;) {
		int timeout_ms = -1;

		if (has_sources(loop)) {
			int ready = wait_with_sources(loop);
			if (ready < 0)
				return ready;
			if (atomic_load(&loop->stopping) && take_stop(loop))
				return 0;
			if (!ready)
				continue;
			timeout_ms = 0; /* collect what poll() saw */
		}
		int count = epoll_wait(loop->epoll_fd, events, 16, timeout_ms);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < count; i++) {
			struct watch *watch = events[i].data.ptr;

			if (!watch) {
				if (take_stop(loop))
					return 0;
				continue;
			}
			/* A handler earlier in this batch may have removed it. */
			if (watch->fd >= 0)
				watch->handler(watch->opaque, events[i].events);
		}
	}
}

void event_loop_stop(struct event_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->stopping, true);
	if (write(loop->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow from single increments. */
	}
}
