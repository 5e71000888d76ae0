/*
 * Which pages of guest RAM were written since a point in time: KVM's
 * dirty log of the RAM slots (the guest's writes, KVM_MEM_LOG_DIRTY_PAGES)
 * merged with the marks vessel's own writers leave in guest_memory.h's
 * bitmaps (used rings, received frames, disk reads, rng bytes), which KVM
 * does not see. Diff snapshots use it; live migration can use it as it is.
 *
 * Promise: after dirty_log_start, every page written by the guest or by
 * vessel is reported by a later dirty_log_harvest, which clears what it
 * reports: a page written during a harvest is reported by it or by the
 * next one. Pages are numbered as in the memory image (memory.h): the
 * regions in guest-physical order. While no log runs, nothing is
 * tracked and nothing costs: the slots carry no flag and the writers find
 * no bitmap.
 */
#ifndef VESSEL_VMM_DIRTY_LOG_H
#define VESSEL_VMM_DIRTY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory.h"

struct dirty_log {
	int vm_fd;
	struct vm_memory *memory;
	bool active;
};

/* Starts tracking the RAM slots vm_memory_register made on vm_fd. 0 or
 * -errno with err; a log already running is left as it is. Start and stop
 * while no device of the VM writes (quiesced or gone): the writers read
 * the bitmaps' addresses without a lock. */
int dirty_log_start(struct dirty_log *log, int vm_fd, struct vm_memory *memory,
		    char *err, size_t err_len);
/* Stops tracking and releases the bitmaps; a log never started is fine. */
void dirty_log_stop(struct dirty_log *log);
bool dirty_log_active(const struct dirty_log *log);

/* 64-bit words of a bitmap of every page of memory. */
size_t dirty_log_bitmap_words(const struct vm_memory *memory);
/* ORs the pages written since the last harvest (or the start) into pages
 * (dirty_log_bitmap_words long) and clears them in the log. 0 or -errno
 * with err; the log then may have lost pages, and must be started again. */
int dirty_log_harvest(struct dirty_log *log, uint64_t *pages, char *err,
		      size_t err_len);
/* Gives a harvest back to the log, as vessel's writes: for a consumer
 * that failed to use it (a snapshot that could not be written). */
void dirty_log_put_back(struct dirty_log *log, const uint64_t *pages);

#endif
