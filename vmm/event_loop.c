#include "event_loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENT_LOOP_MAX_WATCHES 64

struct watch {
	int fd; /* -1: free slot */
	event_handler_fn handler;
	void *opaque;
};

struct event_loop {
	int epoll_fd;
	int stop_fd; /* eventfd: a write from any thread ends the loop */
	struct watch watches[EVENT_LOOP_MAX_WATCHES];
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

int event_loop_run(struct event_loop *loop)
{
	struct epoll_event events[16];

	for (;;) {
		int count = epoll_wait(loop->epoll_fd, events, 16, -1);
		if (count < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < count; i++) {
			struct watch *watch = events[i].data.ptr;

			if (!watch) {
				uint64_t value;
				if (read(loop->stop_fd, &value, sizeof(value)) < 0) {
					/* Already drained by an earlier wake-up. */
				}
				return 0;
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

	if (write(loop->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow from single increments. */
	}
}
