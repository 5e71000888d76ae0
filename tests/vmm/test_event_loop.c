/* The event loop: watched descriptors wake their handlers, and poll sources
 * (libslirp's way of waiting) get their descriptors polled, their deadlines
 * honoured and their results dispatched, beside the watched ones. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/event_loop.h"

static struct event_loop *loop;

static void setup(void)
{
	loop = event_loop_create();
	cr_assert_not_null(loop);
}

static void teardown(void)
{
	event_loop_destroy(loop);
}

static double now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static void write_byte(int fd)
{
	cr_assert_eq(write(fd, "x", 1), 1);
}

static unsigned int watch_calls;

static void on_readable_stop(void *opaque, uint32_t events)
{
	char byte;

	cr_assert(events & EPOLLIN);
	cr_assert_eq(read(*(int *)opaque, &byte, 1), 1);
	watch_calls++;
	event_loop_stop(loop);
}

TestSuite(event_loop, .init = setup, .fini = teardown, .timeout = 10);

Test(event_loop, watched_descriptor_wakes_its_handler)
{
	int pipe_fds[2];

	cr_assert_eq(pipe(pipe_fds), 0);
	cr_assert_eq(event_loop_add(loop, pipe_fds[0], EPOLLIN, on_readable_stop,
				    &pipe_fds[0]), 0);
	cr_assert_eq(event_loop_add(loop, pipe_fds[0], EPOLLIN, on_readable_stop,
				    &pipe_fds[0]), -EINVAL, "watched twice");
	write_byte(pipe_fds[1]);
	watch_calls = 0;
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(watch_calls, 1);
	cr_assert_eq(event_loop_remove(loop, pipe_fds[0]), 0);
	cr_assert_eq(event_loop_remove(loop, pipe_fds[0]), -ENOENT);
}

/* A source that polls one descriptor and asks for a deadline. */
struct test_source {
	int fd; /* -1: none */
	int timeout_ms; /* -1: none */
	unsigned int prepares, dispatches;
	short revents;
	bool stop_on_revents, stop_on_dispatch;
	double dispatched_at;
};

static void test_prepare(void *opaque, struct poll_set *set, int *timeout_ms)
{
	struct test_source *source = opaque;

	source->prepares++;
	if (source->fd >= 0)
		cr_assert_eq(poll_set_add(set, source->fd, POLLIN), 0,
			     "a source's first descriptor is its index 0");
	if (source->timeout_ms >= 0 &&
	    (*timeout_ms < 0 || source->timeout_ms < *timeout_ms))
		*timeout_ms = source->timeout_ms;
}

static void test_dispatch(void *opaque, const struct poll_set *set)
{
	struct test_source *source = opaque;

	source->dispatches++;
	source->dispatched_at = now_ms();
	source->revents = set->count ? set->fds[0].revents : 0;
	if ((source->stop_on_revents && source->revents) || source->stop_on_dispatch)
		event_loop_stop(loop);
}

static const struct poll_source test_poll_source = {
	.prepare = test_prepare,
	.dispatch = test_dispatch,
};

Test(event_loop, source_descriptor_is_polled_and_dispatched)
{
	int pipe_fds[2];
	struct test_source source = { .timeout_ms = -1, .stop_on_revents = true };

	cr_assert_eq(pipe(pipe_fds), 0);
	source.fd = pipe_fds[0];
	cr_assert_eq(event_loop_add_source(loop, &test_poll_source, &source), 0);
	cr_assert_eq(event_loop_add_source(loop, &test_poll_source, &source),
		     -EEXIST);
	write_byte(pipe_fds[1]);
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert(source.revents & POLLIN);
	cr_assert_geq(source.prepares, 1);
	cr_assert_eq(source.prepares, source.dispatches);
}

Test(event_loop, source_deadline_bounds_the_wait)
{
	struct test_source source = { .fd = -1, .timeout_ms = 50,
				      .stop_on_dispatch = true };
	double start = now_ms();

	cr_assert_eq(event_loop_add_source(loop, &test_poll_source, &source), 0);
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(source.dispatches, 1, "a timed-out wait is dispatched too");
	cr_assert_geq(source.dispatched_at - start, 45.0);
	cr_assert_lt(source.dispatched_at - start, 5000.0);
}

Test(event_loop, watched_descriptors_still_work_beside_a_source)
{
	int pipe_fds[2];
	struct test_source source = { .fd = -1, .timeout_ms = -1 };

	cr_assert_eq(pipe(pipe_fds), 0);
	cr_assert_eq(event_loop_add(loop, pipe_fds[0], EPOLLIN, on_readable_stop,
				    &pipe_fds[0]), 0);
	cr_assert_eq(event_loop_add_source(loop, &test_poll_source, &source), 0);
	write_byte(pipe_fds[1]);
	watch_calls = 0;
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(watch_calls, 1);
	cr_assert_geq(source.dispatches, 1);
}

Test(event_loop, removed_source_runs_no_more)
{
	struct test_source source = { .fd = -1, .timeout_ms = 0 };
	int pipe_fds[2];

	cr_assert_eq(event_loop_add_source(loop, &test_poll_source, &source), 0);
	cr_assert_eq(event_loop_remove_source(loop, &source), 0);
	cr_assert_eq(event_loop_remove_source(loop, &source), -ENOENT);
	/* With no source left, the loop waits on epoll alone. */
	cr_assert_eq(pipe(pipe_fds), 0);
	cr_assert_eq(event_loop_add(loop, pipe_fds[0], EPOLLIN, on_readable_stop,
				    &pipe_fds[0]), 0);
	write_byte(pipe_fds[1]);
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(source.prepares, 0);
	cr_assert_eq(source.dispatches, 0);
}

/* Fills its whole share of the poll set, to see the bound hold. */
static void greedy_prepare(void *opaque, struct poll_set *set, int *timeout_ms)
{
	int *added = opaque;

	*added = 0;
	while (poll_set_add(set, 0, POLLIN) >= 0)
		(*added)++;
	cr_assert_eq(poll_set_add(set, 0, POLLIN), -ENOSPC);
	*timeout_ms = 0;
}

static void stop_dispatch(void *opaque, const struct poll_set *set)
{
	(void)opaque;
	(void)set;
	event_loop_stop(loop);
}

Test(event_loop, sources_share_a_bounded_poll_set)
{
	static const struct poll_source greedy = { .prepare = greedy_prepare,
						   .dispatch = stop_dispatch };
	int added = 0;

	cr_assert_eq(event_loop_add_source(loop, &greedy, &added), 0);
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(added, EVENT_LOOP_MAX_POLL_FDS);
}

/* More descriptors than any fixed table would hold: each one's handler
 * runs, and the last one stops the loop. */
#define MANY_WATCHES 300

static unsigned int many_calls;

static void on_many_readable(void *opaque, uint32_t events)
{
	int fd = *(int *)opaque;
	uint64_t value;

	(void)events;
	cr_assert_eq(read(fd, &value, sizeof(value)), sizeof(value));
	if (++many_calls == MANY_WATCHES)
		event_loop_stop(loop);
}

Test(event_loop, watches_have_no_fixed_limit)
{
	static int fds[MANY_WATCHES];
	uint64_t one = 1;

	for (int i = 0; i < MANY_WATCHES; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(event_loop_add(loop, fds[i], EPOLLIN, on_many_readable,
					    &fds[i]), 0, "watch %d", i);
		cr_assert_eq(write(fds[i], &one, sizeof(one)), sizeof(one));
	}
	many_calls = 0;
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(many_calls, MANY_WATCHES);
	for (int i = 0; i < MANY_WATCHES; i++) {
		cr_assert_eq(event_loop_remove(loop, fds[i]), 0);
		close(fds[i]);
	}
}

/* Two descriptors ready in the same batch; whichever handler runs first
 * removes the other's watch, which then must not run. */
static int pair[2];
static unsigned int pair_calls;

static void remove_the_other(void *opaque, uint32_t events)
{
	int self = *(int *)opaque;
	int other = self == pair[0] ? pair[1] : pair[0];

	(void)events;
	pair_calls++;
	cr_assert_eq(event_loop_remove(loop, other), 0);
	cr_assert_eq(event_loop_remove(loop, self), 0);
	event_loop_stop(loop);
}

Test(event_loop, a_handler_may_remove_a_watch_of_the_same_batch)
{
	uint64_t one = 1;

	for (int i = 0; i < 2; i++) {
		pair[i] = eventfd(0, EFD_NONBLOCK);
		cr_assert_eq(event_loop_add(loop, pair[i], EPOLLIN,
					    remove_the_other, &pair[i]), 0);
		cr_assert_eq(write(pair[i], &one, sizeof(one)), sizeof(one));
	}
	pair_calls = 0;
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(pair_calls, 1, "the removed watch's handler never ran");
	close(pair[0]);
	close(pair[1]);
}

static pthread_t loop_thread;
static pthread_t called_on;

static void record_thread(void *opaque)
{
	(void)opaque;
	called_on = pthread_self();
}

static void *call_then_stop(void *opaque)
{
	(void)opaque;
	event_loop_call(loop, record_thread, NULL);
	event_loop_stop(loop);
	return NULL;
}

Test(event_loop, call_runs_the_function_on_the_event_thread)
{
	pthread_t caller;

	loop_thread = pthread_self();
	called_on = 0;
	cr_assert_eq(pthread_create(&caller, NULL, call_then_stop, NULL), 0);
	cr_assert_eq(event_loop_run(loop), 0);
	pthread_join(caller, NULL);
	cr_assert(pthread_equal(called_on, loop_thread),
		  "the call ran on the thread running the loop");
}

static void call_on_the_loop_itself(void *opaque, uint32_t events)
{
	uint64_t value;

	(void)events;
	cr_assert_eq(read(*(int *)opaque, &value, sizeof(value)), sizeof(value));
	/* From a handler: at once, since waiting would never end. */
	event_loop_call(loop, record_thread, NULL);
	cr_assert(pthread_equal(called_on, pthread_self()));
	event_loop_stop(loop);
}

Test(event_loop, a_call_from_the_event_thread_runs_at_once)
{
	int fd = eventfd(1, EFD_NONBLOCK);

	called_on = 0;
	cr_assert_eq(event_loop_add(loop, fd, EPOLLIN, call_on_the_loop_itself,
				    &fd), 0);
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert(pthread_equal(called_on, pthread_self()));
	event_loop_remove(loop, fd);
	close(fd);
}

static unsigned int loop_polls, loop_arms;

static bool count_loop_poll(void *opaque)
{
	(void)opaque;
	loop_polls++;
	return false;
}

static bool count_loop_arm(void *opaque)
{
	(void)opaque;
	loop_arms++;
	return false;
}

/* Whether the poller says its work waits after each sleep. */
static bool loop_pending;

static bool answer_pending(void *opaque)
{
	(void)opaque;
	return loop_pending;
}

static const struct device_poller counting_poller = {
	.poll = count_loop_poll,
	.arm = count_loop_arm,
	.pending = answer_pending,
};

/* Wakes the loop every 20 ms, then stops it: a guest with a timer and no
 * I/O. */
static void *wake_slowly(void *opaque)
{
	uint64_t one = 1;

	struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };

	for (int i = 0; i < 5; i++) {
		nanosleep(&pause, NULL);
		cr_assert_eq(write(*(int *)opaque, &one, sizeof(one)), sizeof(one));
	}
	/* The stop is a wake-up too: as late as the others. */
	nanosleep(&pause, NULL);
	event_loop_stop(loop);
	return NULL;
}

static void drain_eventfd(void *opaque, uint32_t events)
{
	uint64_t value;

	(void)events;
	cr_assert_eq(read(*(int *)opaque, &value, sizeof(value)), sizeof(value));
}

/* An idle guest's event thread burns no CPU polling: every sleep is long,
 * so the window stays shut, and arm alone runs before each sleep. */
Test(event_loop, an_idle_loop_does_not_poll)
{
	int fd = eventfd(0, EFD_NONBLOCK);
	pthread_t waker;

	loop_polls = loop_arms = 0;
	loop_pending = true;
	cr_assert_eq(event_loop_add(loop, fd, EPOLLIN, drain_eventfd, &fd), 0);
	cr_assert_eq(event_loop_add_poller(loop, &counting_poller, &fd), 0);
	pthread_create(&waker, NULL, wake_slowly, &fd);
	cr_assert_eq(event_loop_run(loop), 0);
	pthread_join(waker, NULL);
	cr_assert_eq(loop_polls, 0);
	cr_assert_geq(loop_arms, 5, "arm ran before every sleep");
	cr_assert_eq(event_loop_poll_window_ns(loop), 0);
	cr_assert_eq(event_loop_remove_poller(loop, &fd), 0);
	event_loop_remove(loop, fd);
	close(fd);
}

static unsigned int busy_wakes;

/* Makes its descriptor readable again at once, a thousand times: a guest
 * that submits back to back, so that the loop's sleeps are all short. */
static void wake_again(void *opaque, uint32_t events)
{
	uint64_t value;

	(void)events;
	cr_assert_eq(read(*(int *)opaque, &value, sizeof(value)), sizeof(value));
	if (++busy_wakes == 1000)
		event_loop_stop(loop);
	else
		cr_assert_eq(write(*(int *)opaque, &value, sizeof(value)),
			     sizeof(value));
}

/* The loop woken back to back, for its poller's work or for another
 * descriptor's: whether it polled, and its window at the end. */
static uint64_t run_busy_loop(bool for_the_poller)
{
	int fd = eventfd(1, EFD_NONBLOCK);

	loop_polls = loop_arms = busy_wakes = 0;
	loop_pending = for_the_poller;
	cr_assert_eq(event_loop_add(loop, fd, EPOLLIN, wake_again, &fd), 0);
	cr_assert_eq(event_loop_add_poller(loop, &counting_poller, &fd), 0);
	cr_assert_eq(event_loop_run(loop), 0);
	uint64_t window = event_loop_poll_window_ns(loop);
	cr_assert_eq(event_loop_remove_poller(loop, &fd), 0);
	event_loop_remove(loop, fd);
	close(fd);
	return window;
}

Test(event_loop, a_busy_loop_polls_before_it_sleeps)
{
	cr_assert_gt(run_busy_loop(true), 0, "short sleeps opened the window");
	cr_assert_gt(loop_polls, 0);
}

/* A guest busy on its network with a disk attached: the short sleeps end
 * for the network's descriptors, which polling the disk would not have
 * caught, so the thread does not spin for them. */
Test(event_loop, wake_ups_for_other_work_do_not_poll)
{
	cr_assert_eq(run_busy_loop(false), 0);
	cr_assert_eq(loop_polls, 0);
	cr_assert_gt(loop_arms, 0);
}
