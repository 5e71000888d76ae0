/*
 * A progress line for work on guest memory that may take seconds (writing
 * a snapshot, reading one in, checking its checksum): bytes done and the
 * rate, on vessel's stderr, rewritten in place.
 *
 * Promise: nothing is printed unless stderr is a terminal and the work
 * has gone on for a second; then at most four updates a second, and a
 * last line with the totals when it ends. Scripts and tests see nothing.
 */
#ifndef VESSEL_VMM_PROGRESS_H
#define VESSEL_VMM_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct progress {
	const char *what; /* "writing guest memory" */
	bool terminal;
	bool printed;
	uint64_t bytes;
	struct timespec start, last_print;
};

void progress_begin(struct progress *progress, const char *what);
void progress_add(struct progress *progress, uint64_t bytes);
void progress_end(struct progress *progress);

#endif
