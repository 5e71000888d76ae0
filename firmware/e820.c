#include "e820.h"

#include <errno.h>

#include "layout.h"

uint64_t e820_low_memory_end(const struct guest_memory *memory)
{
	for (unsigned int i = 0; i < memory->region_count; i++) {
		if (memory->regions[i].guest_phys_addr == 0)
			return memory->regions[i].size;
	}
	return 0;
}

static void e820_add(struct e820_table *table, uint64_t address,
		     uint64_t size, uint32_t type)
{
	table->entries[table->count++] = (struct e820_entry){
		.address = address,
		.size = size,
		.type = type,
	};
}

int e820_build(const struct guest_memory *memory, struct e820_table *table)
{
	uint64_t low_end = e820_low_memory_end(memory);

	table->count = 0;
	if (low_end <= LAYOUT_HIGH_MEMORY_START)
		return -EINVAL;

	e820_add(table, 0, LAYOUT_EBDA_START, E820_TYPE_RAM);
	e820_add(table, LAYOUT_EBDA_START,
		 LAYOUT_HIGH_MEMORY_START - LAYOUT_EBDA_START,
		 E820_TYPE_RESERVED);
	e820_add(table, LAYOUT_HIGH_MEMORY_START,
		 low_end - LAYOUT_HIGH_MEMORY_START, E820_TYPE_RAM);

	for (unsigned int i = 0; i < memory->region_count; i++) {
		const struct guest_region *region = &memory->regions[i];

		if (region->guest_phys_addr != 0 && region->size != 0)
			e820_add(table, region->guest_phys_addr, region->size,
				 E820_TYPE_RAM);
	}
	return 0;
}
