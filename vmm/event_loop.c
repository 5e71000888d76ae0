#include "event_loop.h"

#include "busy_poll.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EVENT_LOOP_MAX_SOURCES 8

/* Each watch is allocated on its own, since epoll hands its address back:
 * a removed one is retired, not freed, until the batch of events that may
 * still name it is done. */
struct watch {
	int fd; /* -1 once removed */
	event_handler_fn handler;
	void *opaque;
	struct watch *next_retired;
};

/* A function another thread wants run on the event thread. */
struct call {
	void (*function)(void *opaque);
	void *opaque;
	bool done;
	struct call *next;
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
	struct watch **watches; /* the watched descriptors, any order */
	unsigned int watch_count, watch_capacity;
	struct watch *retired;
	/* event_loop_call: calls queued under call_lock, call_fd wakes the
	 * loop, call_done wakes the callers. */
	int call_fd;
	pthread_mutex_t call_lock;
	pthread_cond_t call_done;
	struct call *calls;
	pthread_t thread; /* the thread in event_loop_run, while running */
	atomic_bool running;
	struct source sources[EVENT_LOOP_MAX_SOURCES];
	struct busy_poll busy_poll;
	unsigned int poller_count;
	/* For a wait with sources: the epoll descriptor first, then each
	 * source's descriptors. */
	struct pollfd poll_fds[1 + EVENT_LOOP_MAX_POLL_FDS];
};

static void run_calls(void *opaque, uint32_t events);

struct event_loop *event_loop_create(void)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	pthread_mutex_init(&loop->call_lock, NULL);
	pthread_cond_init(&loop->call_done, NULL);
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	loop->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	loop->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epoll_fd < 0 || loop->stop_fd < 0 || loop->call_fd < 0)
		goto fail;
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->stop_fd, &event) ||
	    event_loop_add(loop, loop->call_fd, EPOLLIN, run_calls, loop))
		goto fail;
	return loop;
fail:
	event_loop_destroy(loop);
	return NULL;
}

static void free_retired(struct event_loop *loop)
{
	while (loop->retired) {
		struct watch *watch = loop->retired;

		loop->retired = watch->next_retired;
		free(watch);
	}
}

void event_loop_destroy(struct event_loop *loop)
{
	if (!loop)
		return;
	if (loop->epoll_fd >= 0)
		close(loop->epoll_fd);
	if (loop->stop_fd >= 0)
		close(loop->stop_fd);
	if (loop->call_fd >= 0)
		close(loop->call_fd);
	for (unsigned int i = 0; i < loop->watch_count; i++)
		free(loop->watches[i]);
	free(loop->watches);
	free_retired(loop);
	pthread_cond_destroy(&loop->call_done);
	pthread_mutex_destroy(&loop->call_lock);
	free(loop);
}

/* The watch of fd and its index in watches, or NULL. */
static struct watch *find_watch(struct event_loop *loop, int fd,
				unsigned int *index)
{
	for (unsigned int i = 0; i < loop->watch_count; i++) {
		if (loop->watches[i]->fd == fd) {
			if (index)
				*index = i;
			return loop->watches[i];
		}
	}
	return NULL;
}

int event_loop_add(struct event_loop *loop, int fd, uint32_t events,
		   event_handler_fn handler, void *opaque)
{
	if (fd < 0 || find_watch(loop, fd, NULL))
		return -EINVAL;
	if (loop->watch_count == loop->watch_capacity) {
		unsigned int capacity = loop->watch_capacity ?
						2 * loop->watch_capacity : 32;
		struct watch **grown = realloc(loop->watches,
					       capacity * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		loop->watches = grown;
		loop->watch_capacity = capacity;
	}
	struct watch *watch = malloc(sizeof(*watch));
	if (!watch)
		return -ENOMEM;
	*watch = (struct watch){ .fd = fd, .handler = handler, .opaque = opaque };
	struct epoll_event event = { .events = events, .data.ptr = watch };
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event)) {
		int saved = errno;
		free(watch);
		return -saved;
	}
	loop->watches[loop->watch_count++] = watch;
	return 0;
}

int event_loop_modify(struct event_loop *loop, int fd, uint32_t events)
{
	struct watch *watch = find_watch(loop, fd, NULL);

	if (fd < 0 || !watch)
		return -ENOENT;
	struct epoll_event event = { .events = events, .data.ptr = watch };
	return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) ? -errno : 0;
}

int event_loop_remove(struct event_loop *loop, int fd)
{
	unsigned int index;
	struct watch *watch = find_watch(loop, fd, &index);

	if (fd < 0 || !watch)
		return -ENOENT;
	epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	watch->fd = -1;
	loop->watches[index] = loop->watches[--loop->watch_count];
	watch->next_retired = loop->retired;
	loop->retired = watch;
	return 0;
}

static void run_calls(void *opaque, uint32_t events)
{
	struct event_loop *loop = opaque;
	uint64_t count;

	(void)events;
	if (read(loop->call_fd, &count, sizeof(count)) < 0) {
		/* Drained by an earlier round: the calls below are all. */
	}
	pthread_mutex_lock(&loop->call_lock);
	while (loop->calls) {
		struct call *call = loop->calls;

		loop->calls = call->next;
		pthread_mutex_unlock(&loop->call_lock);
		call->function(call->opaque);
		pthread_mutex_lock(&loop->call_lock);
		call->done = true;
	}
	pthread_cond_broadcast(&loop->call_done);
	pthread_mutex_unlock(&loop->call_lock);
}

void event_loop_call(struct event_loop *loop, void (*function)(void *opaque),
		     void *opaque)
{
	/* On the event thread itself, waiting would never end. */
	if (atomic_load(&loop->running) &&
	    pthread_equal(pthread_self(), loop->thread)) {
		function(opaque);
		return;
	}
	struct call call = { .function = function, .opaque = opaque };
	uint64_t one = 1;

	pthread_mutex_lock(&loop->call_lock);
	call.next = loop->calls;
	loop->calls = &call;
	if (write(loop->call_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow from single increments. */
	}
	while (!call.done)
		pthread_cond_wait(&loop->call_done, &loop->call_lock);
	pthread_mutex_unlock(&loop->call_lock);
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

int event_loop_add_poller(struct event_loop *loop,
			  const struct device_poller *poller, void *opaque)
{
	int result = busy_poll_add(&loop->busy_poll, poller, opaque);

	if (!result)
		loop->poller_count++;
	return result;
}

int event_loop_remove_poller(struct event_loop *loop, void *opaque)
{
	int result = busy_poll_remove(&loop->busy_poll, opaque);

	if (!result)
		loop->poller_count--;
	return result;
}

uint64_t event_loop_poll_window_ns(const struct event_loop *loop)
{
	return loop->busy_poll.window_ns;
}

/*
 * With poll sources, the wait is a poll() over the epoll descriptor (ready
 * when a watched descriptor is) and the sources' own descriptors, bounded
 * by their earliest deadline (at once when timeout_ms is 0); every source
 * then sees the result. Returns whether the epoll set has events, or
 * -errno.
 */
static int wait_with_sources(struct event_loop *loop, int timeout_ms)
{
	unsigned int used = 1;

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

/* The polling window follows how long the sleep was, and whether a
 * poller's work is what ended it. */
static void after_timed_sleep(struct event_loop *loop, uint64_t sleep_start)
{
	uint64_t slept_ns = busy_poll_now_ns() - sleep_start;

	busy_poll_after_sleep(&loop->busy_poll, slept_ns,
			      busy_poll_pending(&loop->busy_poll));
}

static int run_until_stopped(struct event_loop *loop)
{
	struct epoll_event events[16];

	for (;;) {
		/* Pollers that found work: look at the descriptors without
		 * sleeping, and poll again. */
		int timeout_ms = loop->poller_count &&
					 busy_poll_before_sleep(&loop->busy_poll)
				 ? 0
				 : -1;
		bool timed = loop->poller_count && timeout_ms < 0;
		uint64_t sleep_start = timed ? busy_poll_now_ns() : 0;

		/* No event of the last batch names a retired watch now. */
		free_retired(loop);
		if (has_sources(loop)) {
			int ready = wait_with_sources(loop, timeout_ms);
			if (timed)
				after_timed_sleep(loop, sleep_start);
			timed = false;
			if (ready < 0)
				return ready;
			if (atomic_load(&loop->stopping) && take_stop(loop))
				return 0;
			if (!ready)
				continue;
			timeout_ms = 0; /* collect what poll() saw */
		}
		int count = epoll_wait(loop->epoll_fd, events, 16, timeout_ms);
		if (timed)
			after_timed_sleep(loop, sleep_start);
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

int event_loop_run(struct event_loop *loop)
{
	loop->thread = pthread_self();
	atomic_store(&loop->running, true);
	/* Calls queued before the loop ran go first. */
	run_calls(loop, 0);
	int result = run_until_stopped(loop);
	atomic_store(&loop->running, false);
	/* A caller that queued a call as the loop stopped is not left
	 * waiting: its call runs here, on the thread that ran the loop. */
	run_calls(loop, 0);
	return result;
}

void event_loop_stop(struct event_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->stopping, true);
	if (write(loop->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow from single increments. */
	}
}
