/* The event thread's adaptive polling: how the window follows the sleeps,
 * that an idle thread stops polling, and that arm runs before every
 * sleep. */
#include <criterion/criterion.h>
#include <errno.h>

#include "../../vmm/busy_poll.h"

static struct busy_poll poll_state;
static unsigned int polls, arms;
static unsigned int work_at_poll; /* the poll that finds work; 0: none */
static bool work_at_arm;

static bool count_poll(void *opaque)
{
	(void)opaque;
	return ++polls == work_at_poll;
}

static bool count_arm(void *opaque)
{
	(void)opaque;
	arms++;
	return work_at_arm;
}

static bool work_pending;

static bool answer_pending(void *opaque)
{
	(void)opaque;
	return work_pending;
}

static const struct device_poller poller = {
	.poll = count_poll,
	.arm = count_arm,
	.pending = answer_pending,
};

static void setup(void)
{
	poll_state = (struct busy_poll){ .window_ns = 0 };
	polls = arms = work_at_poll = 0;
	work_at_arm = false;
	work_pending = false;
	cr_assert_eq(busy_poll_add(&poll_state, &poller, &poll_state), 0);
}

TestSuite(busy_poll, .init = setup, .timeout = 10);

Test(busy_poll, without_a_window_only_arm_runs)
{
	cr_assert_not(busy_poll_before_sleep(&poll_state));
	cr_assert_eq(polls, 0);
	cr_assert_eq(arms, 1);
	work_at_arm = true;
	cr_assert(busy_poll_before_sleep(&poll_state),
		  "work found by arm keeps the thread awake");
}

Test(busy_poll, short_sleeps_open_the_window_up_to_its_bound)
{
	busy_poll_after_sleep(&poll_state, 1000, true);
	cr_assert_eq(poll_state.window_ns, BUSY_POLL_START_NS);
	busy_poll_after_sleep(&poll_state, BUSY_POLL_MAX_NS, true);
	cr_assert_eq(poll_state.window_ns, 2 * BUSY_POLL_START_NS);
	for (int i = 0; i < 20; i++)
		busy_poll_after_sleep(&poll_state, 1000, true);
	cr_assert_eq(poll_state.window_ns, BUSY_POLL_MAX_NS);
}

/* Woken for something no poller looks at (a network frame, a timer),
 * however soon: a poll would not have caught it. */
Test(busy_poll, short_sleeps_for_other_work_shut_the_window)
{
	busy_poll_after_sleep(&poll_state, 1000, false);
	cr_assert_eq(poll_state.window_ns, 0);
	poll_state.window_ns = 4 * BUSY_POLL_START_NS;
	busy_poll_after_sleep(&poll_state, 1000, false);
	cr_assert_eq(poll_state.window_ns, 2 * BUSY_POLL_START_NS);
}

Test(busy_poll, pending_asks_every_poller)
{
	cr_assert_not(busy_poll_pending(&poll_state));
	work_pending = true;
	cr_assert(busy_poll_pending(&poll_state));
	cr_assert_eq(polls + arms, 0, "looking does no work");
}

/* An idle guest: its event thread sleeps long, and within a few sleeps
 * stops polling altogether. */
Test(busy_poll, polling_stops_when_idle)
{
	unsigned int sleeps = 0;

	poll_state.window_ns = BUSY_POLL_MAX_NS;
	while (poll_state.window_ns && sleeps < 64) {
		busy_poll_after_sleep(&poll_state, 10 * 1000 * 1000, true);
		sleeps++;
	}
	/* Halved down from the bound, and shut below the start. */
	cr_assert_leq(sleeps, 8, "the window took %u long sleeps to shut", sleeps);
	cr_assert_not(busy_poll_before_sleep(&poll_state));
	cr_assert_eq(polls, 0, "no polling once idle");
}

Test(busy_poll, work_found_within_the_window_ends_it_without_arming)
{
	poll_state.window_ns = BUSY_POLL_MAX_NS;
	work_at_poll = 3;
	cr_assert(busy_poll_before_sleep(&poll_state));
	cr_assert_eq(polls, 3);
	cr_assert_eq(arms, 0);
}

Test(busy_poll, a_window_without_work_is_spent_then_armed)
{
	poll_state.window_ns = BUSY_POLL_MAX_NS;
	uint64_t start = busy_poll_now_ns();
	cr_assert_not(busy_poll_before_sleep(&poll_state));
	cr_assert_geq(busy_poll_now_ns() - start, BUSY_POLL_MAX_NS);
	cr_assert_gt(polls, 1);
	cr_assert_eq(arms, 1);
}

Test(busy_poll, pollers_are_added_once_and_removed_by_opaque)
{
	cr_assert_eq(busy_poll_add(&poll_state, &poller, &poll_state), -EEXIST);
	cr_assert_eq(busy_poll_remove(&poll_state, &polls), -ENOENT);
	cr_assert_eq(busy_poll_remove(&poll_state, &poll_state), 0);
	cr_assert_not(busy_poll_before_sleep(&poll_state));
	cr_assert_eq(arms, 0);
}
