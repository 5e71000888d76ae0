#include "progress.h"

#include <stdio.h>
#include <unistd.h>

#define QUIET_SECONDS 1.0 /* shorter work prints nothing */
#define PRINT_INTERVAL 0.25

static double seconds_between(const struct timespec *from,
			      const struct timespec *to)
{
	return (double)(to->tv_sec - from->tv_sec) +
	       (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

void progress_begin(struct progress *progress, const char *what)
{
	*progress = (struct progress){ .what = what,
				       .terminal = isatty(STDERR_FILENO) == 1 };
	clock_gettime(CLOCK_MONOTONIC, &progress->start);
}

/* "\r" and the line: the guest's console may hold the terminal in raw
 * mode, so the line ends with "\r\n" and clears what was there. */
static void print_line(struct progress *progress, const struct timespec *now,
		       const char *end)
{
	double elapsed = seconds_between(&progress->start, now);
	double megabytes = (double)progress->bytes / 1e6;

	fprintf(stderr, "\rvessel: %s: %llu pages, %.0f MB, %.0f MB/s\033[K%s",
		progress->what,
		(unsigned long long)(progress->bytes / 4096), megabytes,
		elapsed > 0 ? megabytes / elapsed : 0.0, end);
	progress->printed = true;
	progress->last_print = *now;
}

void progress_add(struct progress *progress, uint64_t bytes)
{
	struct timespec now;

	progress->bytes += bytes;
	if (!progress->terminal)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (seconds_between(&progress->start, &now) < QUIET_SECONDS ||
	    (progress->printed &&
	     seconds_between(&progress->last_print, &now) < PRINT_INTERVAL))
		return;
	print_line(progress, &now, "");
}

void progress_end(struct progress *progress)
{
	struct timespec now;

	if (!progress->printed)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	print_line(progress, &now, "\r\n");
}
