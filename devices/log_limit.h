/*
 * Log lines a guest can set off, rate-limited: each call site keeps a
 * token bucket of LOG_LIMIT_BURST lines, refilled by one line every
 * LOG_LIMIT_REFILL_NS, and the lines it refuses are counted and reported
 * as one "N messages suppressed" line before the next one that passes.
 *
 * Promise: a guest that sets off a message as fast as it can gets at most
 * LOG_LIMIT_BURST lines at once and then two a second (and one count line
 * each time) on vessel's stderr. Any thread; each limit has its own lock.
 */
#ifndef VESSEL_DEVICES_LOG_LIMIT_H
#define VESSEL_DEVICES_LOG_LIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define LOG_LIMIT_BURST 10
#define LOG_LIMIT_REFILL_NS 500000000 /* two lines a second */

struct log_limit {
	pthread_mutex_t lock;
	unsigned int tokens;
	uint64_t refilled_ns; /* when the bucket last gained a token */
	bool started;
	unsigned long suppressed; /* lines refused since the last one passed */
};

#define LOG_LIMIT_INIT                                                  \
	{ .lock = PTHREAD_MUTEX_INITIALIZER, .tokens = LOG_LIMIT_BURST }

/* Whether a line may go out at now_ns (any monotonic clock). When it may,
 * *suppressed is how many were refused before it (then counted afresh). */
bool log_limit_pass(struct log_limit *limit, uint64_t now_ns,
		    unsigned long *suppressed);

/* "vessel: " and the formatted line on stderr, if limit lets it pass now
 * (CLOCK_MONOTONIC), after the count of lines it refused before. */
void log_limited(struct log_limit *limit, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#endif
