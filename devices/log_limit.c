#include "log_limit.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

bool log_limit_pass(struct log_limit *limit, uint64_t now_ns,
		    unsigned long *suppressed)
{
	bool pass;

	pthread_mutex_lock(&limit->lock);
	if (!limit->started) {
		limit->started = true;
		limit->refilled_ns = now_ns;
	}
	uint64_t earned = (now_ns - limit->refilled_ns) / LOG_LIMIT_REFILL_NS;
	if (earned >= LOG_LIMIT_BURST - limit->tokens) {
		limit->tokens = LOG_LIMIT_BURST;
		limit->refilled_ns = now_ns;
	} else if (earned) {
		limit->tokens += (unsigned int)earned;
		limit->refilled_ns += earned * LOG_LIMIT_REFILL_NS;
	}
	pass = limit->tokens > 0;
	if (pass) {
		limit->tokens--;
		*suppressed = limit->suppressed;
		limit->suppressed = 0;
	} else {
		limit->suppressed++;
	}
	pthread_mutex_unlock(&limit->lock);
	return pass;
}

void log_limited(struct log_limit *limit, const char *format, ...)
{
	struct timespec now;
	unsigned long suppressed;
	va_list args;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!log_limit_pass(limit,
			    (uint64_t)now.tv_sec * 1000000000u + now.tv_nsec,
			    &suppressed))
		return;
	if (suppressed)
		fprintf(stderr, "vessel: %lu messages suppressed\n", suppressed);
	va_start(args, format);
	fputs("vessel: ", stderr);
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
	va_end(args);
}
