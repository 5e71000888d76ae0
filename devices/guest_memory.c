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
	return 0;
}

uint64_t guest_memory_size(const struct guest_memory *memory)
{
	uint64_t total = 0;

	for (unsigned int i = 0; i < memory->region_count; i++)
		total += memory->regions[i].size;
	return total;
}
