#include "guest_memory.h"

#include <errno.h>
#include <string.h>

void *guest_memory_ptr(const struct guest_memory *memory, uint64_t gpa,
		       uint64_t len)
{
	for (unsigned int i = 0; i < memory->region_count; i++) {
		const struct guest_region *region = &memory->regions[i];

		if (gpa < region->guest_phys_addr)
			continue;
		uint64_t offset = gpa - region->guest_phys_addr;
		/* Written so that no sum can wrap around 2^64. */
		if (offset > region->size || len > region->size - offset)
			continue;
		return region->host_addr + offset;
	}
	return NULL;
}

int guest_memory_read(const struct guest_memory *memory, uint64_t gpa,
		      void *dst, size_t len)
{
	const void *src = guest_memory_ptr(memory, gpa, len);

	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int guest_memory_write(const struct guest_memory *memory, uint64_t gpa,
		       const void *src, size_t len)
{
	void *dst = guest_memory_ptr(memory, gpa, len);

	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	guest_memory_mark_written(memory, dst, len);
	return 0;
}

void guest_memory_mark_written(const struct guest_memory *memory,
			       const void *host, size_t len)
{
	uintptr_t start = (uintptr_t)host;

	for (unsigned int i = 0; i < memory->region_count && len; i++) {
		const struct guest_region *region = &memory->regions[i];
		/* Read once: tracking starts and stops while devices are
		 * quiesced, but the pointer is shared with their threads. */
		uint64_t *written = __atomic_load_n(&region->written,
						    __ATOMIC_ACQUIRE);

		uintptr_t base = (uintptr_t)region->host_addr;

		if (!written || start < base || start - base >= region->size)
			continue;
		uint64_t offset = start - base;
		uint64_t end = len > region->size - offset ? region->size :
							     offset + len;
		for (uint64_t page = offset / GUEST_MEMORY_PAGE_SIZE;
		     page * GUEST_MEMORY_PAGE_SIZE < end; page++)
			__atomic_fetch_or(&written[page / 64], 1ull << (page % 64),
					  __ATOMIC_RELEASE);
		return;
	}
}

uint64_t guest_memory_size(const struct guest_memory *memory)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < memory->region_count; i++)
		total += memory->regions[i].size;
	return total;
}
