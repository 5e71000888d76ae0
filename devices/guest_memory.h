/*
 * Guest physical memory as the host sees it: a short list of regions, each a
 * guest-physical range backed by one host mapping.
 *
 * Promise: every access helper checks that the whole range lies inside one
 * region before touching host memory, so an address that came from the guest
 * can never make vessel read or write outside guest RAM. Callers treat a
 * failed lookup as the guest's error, not vessel's.
 *
 * While dirty tracking runs (vmm/dirty_log.h), vessel's own writes into
 * guest RAM, which KVM's dirty log does not see, are marked in each
 * region's bitmap; a writer marks after its data landed, never only
 * before, so a harvest between the two cannot lose the page.
 */
#ifndef VESSEL_DEVICES_GUEST_MEMORY_H
#define VESSEL_DEVICES_GUEST_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEMORY_MAX_REGIONS 4

#define GUEST_MEMORY_PAGE_SIZE 4096u

struct guest_region {
	uint64_t guest_phys_addr;
	uint64_t size;
	uint8_t *host_addr;
	/* One bit a 4 KiB page of the region that vessel wrote, set
	 * atomically; NULL while nothing tracks writes. */
	uint64_t *written;
};

struct guest_memory {
	struct guest_region regions[GUEST_MEMORY_MAX_REGIONS];
	unsigned int region_count;
};

/* Host pointer for [gpa, gpa + len), or NULL when any byte of it falls
 * outside guest RAM or the range straddles two regions. len may be 0. */
void *guest_memory_ptr(const struct guest_memory *memory, uint64_t gpa,
		       uint64_t len);

/* Copy between guest RAM and host buffers: 0, or -EFAULT when the range is
 * not wholly inside one region (nothing is copied then). A write is marked
 * as vessel's. */
int guest_memory_read(const struct guest_memory *memory, uint64_t gpa,
		      void *dst, size_t len);
int guest_memory_write(const struct guest_memory *memory, uint64_t gpa,
		       const void *src, size_t len);

/* Marks [host, host + len) as written by vessel, once the data is there:
 * for writers that reach guest RAM through host pointers (an element's
 * buffers, a disk read). Bytes outside guest RAM are ignored. */
void guest_memory_mark_written(const struct guest_memory *memory,
			       const void *host, size_t len);

/* Total bytes of guest RAM over all regions. */
uint64_t guest_memory_size(const struct guest_memory *memory);

#endif
