/*
 * Rate-limited log lines: a flood gets the burst, then lines at the refill
 * rate, and the refused ones are counted into the next line that passes.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <string.h>

#include "devices/log_limit.h"

#define SECOND 1000000000ull

Test(log_limit, a_flood_gets_the_burst_then_the_refill_rate)
{
	struct log_limit limit = LOG_LIMIT_INIT;
	unsigned long suppressed = 99;
	unsigned int passed = 0;

	/* 10,000 lines in one instant. */
	for (unsigned int i = 0; i < 10000; i++)
		passed += log_limit_pass(&limit, 5 * SECOND, &suppressed);
	cr_assert_eq(passed, LOG_LIMIT_BURST);
	cr_assert_eq(suppressed, 0, "nothing was refused before the burst");
	/* Half a refill later, still nothing. */
	cr_assert_not(log_limit_pass(&limit, 5 * SECOND + LOG_LIMIT_REFILL_NS / 2,
				     &suppressed));
	/* A refill later, one line, which says how many were refused. */
	cr_assert(log_limit_pass(&limit, 5 * SECOND + LOG_LIMIT_REFILL_NS,
				 &suppressed));
	cr_assert_eq(suppressed, 10000 - LOG_LIMIT_BURST + 1);
	cr_assert_not(log_limit_pass(&limit, 5 * SECOND + LOG_LIMIT_REFILL_NS,
				     &suppressed));
	/* A long quiet time fills the bucket, no further. */
	passed = 0;
	for (unsigned int i = 0; i < 100; i++)
		passed += log_limit_pass(&limit, 3600 * SECOND, &suppressed);
	cr_assert_eq(passed, LOG_LIMIT_BURST);
}

/* A minute of a line every millisecond: the burst and two a second. */
Test(log_limit, a_steady_flood_gets_two_lines_a_second)
{
	struct log_limit limit = LOG_LIMIT_INIT;
	unsigned long suppressed, total_suppressed = 0;
	unsigned int passed = 0;

	for (uint64_t t = 0; t < 60 * SECOND; t += SECOND / 1000) {
		if (log_limit_pass(&limit, t, &suppressed)) {
			passed++;
			total_suppressed += suppressed;
		}
	}
	cr_assert_eq(passed, LOG_LIMIT_BURST + 60 * SECOND / LOG_LIMIT_REFILL_NS - 1);
	cr_assert_leq(60000 - passed - total_suppressed, 1000,
		      "only the last half second's count is still to come");
}

Test(log_limit, lines_go_to_stderr_with_the_count, .init = cr_redirect_stderr)
{
	static struct log_limit limit = LOG_LIMIT_INIT;
	char expected[2048] = "";

	for (unsigned int i = 0; i < 100; i++)
		log_limited(&limit, "net user: bad frame %u", i);
	fflush(stderr);
	for (unsigned int i = 0; i < LOG_LIMIT_BURST; i++)
		snprintf(expected + strlen(expected),
			 sizeof(expected) - strlen(expected),
			 "vessel: net user: bad frame %u\n", i);
	cr_assert_stderr_eq_str(expected);
}
