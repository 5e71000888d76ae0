/*
 * Guest physical memory as the host sees it: a short list of regions, each a
 * guest-physical range backed by one host mapping.
 *
 * Promise: every access helper checks that the whole range lies inside one
 * region before touching host memory, so an address that came from the guest
 * can never make vessel read or write outside guest RAM. Callers treat a
 * failed lookup as the guest's error, not vessel's.
 */
#ifndef VESSEL_DEVICES_GUEST_MEMORY_H
#define VESSEL_DEVICES_GUEST_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_MEMORY_MAX_REGIONS 4

struct guest_region {
	uint64_t guest_phys_addr;
	uint64_t size;
	uint8_t *host_addr;
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
 * not wholly inside one region (nothing is copied then). */
int guest_memory_read(const struct guest_memory *memory, uint64_t gpa,
		      void *dst, size_t len);
int guest_memory_write(const struct guest_memory *memory, uint64_t gpa,
		       const void *src, size_t len);

/* Total bytes of guest RAM over all regions. */
uint64_t guest_memory_size(const struct guest_memory *memory);

#endif
