/*
 * The BIOS e820 memory map that vessel hands a guest, derived from its guest
 * RAM regions (ACPI 6.4 §15, "System Address Map Interfaces").
 *
 * Promise: the region at guest-physical 0 becomes RAM below
 * LAYOUT_EBDA_START, reserved from there to 1 MiB (MP and ACPI tables), and
 * RAM from 1 MiB to its end; every other region is RAM. Nothing is
 * described in the PCI hole. Entries follow the order of the regions,
 * which the VMM lists by address.
 */
#ifndef VESSEL_FIRMWARE_E820_H
#define VESSEL_FIRMWARE_E820_H

#include <stdint.h>

#include "../devices/guest_memory.h"

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2

/* Region 0 is split in three, every further region gives one entry. */
#define E820_MAX_ENTRIES (GUEST_MEMORY_MAX_REGIONS + 2)

struct e820_entry {
	uint64_t address;
	uint64_t size;
	uint32_t type;
};

struct e820_table {
	struct e820_entry entries[E820_MAX_ENTRIES];
	unsigned int count;
};

/* End of the RAM region that starts at guest-physical 0, or 0 without one.
 * Everything firmware/ places below 4 GiB lies inside it. */
uint64_t e820_low_memory_end(const struct guest_memory *memory);

/* -EINVAL when no region starts at 0 and reaches past 1 MiB. */
int e820_build(const struct guest_memory *memory, struct e820_table *table);

#endif
