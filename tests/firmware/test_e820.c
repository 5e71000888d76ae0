/* The e820 map built from guest RAM regions as the VMM lays them out. */
#include <criterion/criterion.h>
#include <errno.h>

#include "../../firmware/e820.h"
#include "../../firmware/layout.h"
#include "fixtures.h"

#define GIB (1ULL << 30)

static void expect_entry(const struct e820_table *table, unsigned int index,
			 uint64_t address, uint64_t size, uint32_t type)
{
	const struct e820_entry *entry = &table->entries[index];

	cr_expect_eq(entry->address, address, "entry %u address 0x%lx", index,
		     (unsigned long)entry->address);
	cr_expect_eq(entry->size, size, "entry %u size 0x%lx", index,
		     (unsigned long)entry->size);
	cr_expect_eq(entry->type, type, "entry %u type %u", index,
		     entry->type);
}

Test(e820, guest_of_256_mib)
{
	struct guest_memory memory = {
		.regions = {{.guest_phys_addr = 0, .size = 256 * MIB}},
		.region_count = 1,
	};
	struct e820_table table;

	cr_assert_eq(e820_build(&memory, &table), 0);
	cr_assert_eq(table.count, 3);
	expect_entry(&table, 0, 0, 0x9fc00, E820_TYPE_RAM);
	expect_entry(&table, 1, 0x9fc00, 0x100000 - 0x9fc00,
		     E820_TYPE_RESERVED);
	expect_entry(&table, 2, 0x100000, 255 * MIB, E820_TYPE_RAM);
}

Test(e820, guest_of_4_gib_skips_the_pci_hole)
{
	/* 3 GiB below the hole, the last GiB above 4 GiB. */
	struct guest_memory memory = {
		.regions = {{.guest_phys_addr = 0, .size = 3 * GIB},
			    {.guest_phys_addr = 4 * GIB, .size = 1 * GIB}},
		.region_count = 2,
	};
	struct e820_table table;
	uint64_t ram = 0;

	cr_assert_eq(e820_build(&memory, &table), 0);
	cr_assert_eq(table.count, 4);
	expect_entry(&table, 2, 0x100000, 3 * GIB - 0x100000, E820_TYPE_RAM);
	expect_entry(&table, 3, 4 * GIB, 1 * GIB, E820_TYPE_RAM);
	for (unsigned int i = 0; i < table.count; i++) {
		const struct e820_entry *entry = &table.entries[i];

		cr_expect(entry->address + entry->size <= LAYOUT_PCI_HOLE_START ||
				  entry->address >= LAYOUT_PCI_HOLE_END,
			  "entry %u overlaps the PCI hole", i);
		if (entry->type == E820_TYPE_RAM)
			ram += entry->size;
	}
	cr_expect_eq(ram, 4 * GIB - (0x100000 - 0x9fc00),
		     "all RAM but the reserved EBDA-to-1 MiB range");
}

Test(e820, refuses_memory_without_low_region)
{
	struct guest_memory memory = {
		.regions = {{.guest_phys_addr = 4 * GIB, .size = 1 * GIB}},
		.region_count = 1,
	};
	struct e820_table table;

	cr_expect_eq(e820_build(&memory, &table), -EINVAL);
	cr_expect_eq(e820_low_memory_end(&memory), 0);
}
