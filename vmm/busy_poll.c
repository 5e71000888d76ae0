#include "busy_poll.h"

#include <errno.h>
#include <time.h>

uint64_t busy_poll_now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int busy_poll_add(struct busy_poll *poll, const struct device_poller *poller,
		  void *opaque)
{
	for (unsigned int i = 0; i < BUSY_POLL_MAX_POLLERS; i++) {
		if (poll->pollers[i].poller && poll->pollers[i].opaque == opaque)
			return -EEXIST;
	}
	for (unsigned int i = 0; i < BUSY_POLL_MAX_POLLERS; i++) {
		if (!poll->pollers[i].poller) {
			poll->pollers[i].poller = poller;
			poll->pollers[i].opaque = opaque;
			return 0;
		}
	}
	return -ENOSPC;
}

int busy_poll_remove(struct busy_poll *poll, void *opaque)
{
	for (unsigned int i = 0; i < BUSY_POLL_MAX_POLLERS; i++) {
		if (poll->pollers[i].poller && poll->pollers[i].opaque == opaque) {
			poll->pollers[i].poller = NULL;
			return 0;
		}
	}
	return -ENOENT;
}

/* One look by every poller: whether any found work. */
static bool poll_once(struct busy_poll *poll, bool arm)
{
	bool found = false;

	for (unsigned int i = 0; i < BUSY_POLL_MAX_POLLERS; i++) {
		const struct device_poller *poller = poll->pollers[i].poller;

		if (poller)
			found |= arm ? poller->arm(poll->pollers[i].opaque)
				     : poller->poll(poll->pollers[i].opaque);
	}
	return found;
}

bool busy_poll_before_sleep(struct busy_poll *poll)
{
	if (poll->window_ns) {
		uint64_t end = busy_poll_now_ns() + poll->window_ns;

		do {
			if (poll_once(poll, false))
				return true;
		} while (busy_poll_now_ns() < end);
	}
	return poll_once(poll, true);
}

bool busy_poll_pending(struct busy_poll *poll)
{
	for (unsigned int i = 0; i < BUSY_POLL_MAX_POLLERS; i++) {
		const struct device_poller *poller = poll->pollers[i].poller;

		if (poller && poller->pending(poll->pollers[i].opaque))
			return true;
	}
	return false;
}

void busy_poll_after_sleep(struct busy_poll *poll, uint64_t slept_ns,
			   bool pending)
{
	/* A poll would have caught only a poller's work, and only if it came
	 * within the window: other wake-ups say nothing for polling. */
	if (pending && slept_ns <= BUSY_POLL_MAX_NS) {
		poll->window_ns = poll->window_ns ? poll->window_ns * 2
						  : BUSY_POLL_START_NS;
		if (poll->window_ns > BUSY_POLL_MAX_NS)
			poll->window_ns = BUSY_POLL_MAX_NS;
	} else {
		poll->window_ns /= 2;
		if (poll->window_ns < BUSY_POLL_START_NS)
			poll->window_ns = 0;
	}
}
