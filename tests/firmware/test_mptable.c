/* MP tables as Linux's mpparse reads them: floating pointer found in the
 * last KiB of base memory, checksums, one entry per CPU, and the APICs
 * where the machine handed in has them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../../firmware/layout.h"
#include "../../firmware/mptable.h"
#include "../../firmware/little_endian.h"
#include "fixtures.h"

struct mp_summary {
	unsigned int processors;
	unsigned int bootstrap_processors;
	unsigned int buses;
	unsigned int ioapics;
	unsigned int io_interrupts;
	unsigned int local_interrupts;
};

/* Walks the tables like a guest would, asserting every entry on the way. */
static struct mp_summary check_mp_tables(const uint8_t *ram,
					 const struct firmware_machine *machine,
					 unsigned int cpu_count)
{
	struct mp_summary summary = {0};
	const uint8_t *floating = ram + LAYOUT_EBDA_START;

	cr_assert(memcmp(floating, "_MP_", 4) == 0);
	cr_assert_eq(floating[8], 1, "length in paragraphs");
	cr_assert_eq(floating[9], 4, "MP spec 1.4");
	cr_assert_eq(fixture_byte_sum(floating, 16), 0, "floating checksum");
	cr_assert_eq(floating[11], 0, "a configuration table follows");

	uint32_t config_address = le32_load(floating + 4);
	cr_assert_lt(config_address, LAYOUT_ACPI_TABLES);
	const uint8_t *config = ram + config_address;
	uint16_t length = le16_load(config + 4);
	cr_assert(memcmp(config, "PCMP", 4) == 0);
	cr_assert_eq(fixture_byte_sum(config, length), 0, "table checksum");
	cr_assert_eq(le32_load(config + 36), machine->lapic_address);

	const uint8_t *entry = config + 44;
	uint16_t entry_count = le16_load(config + 34);
	for (unsigned int i = 0; i < entry_count; i++) {
		cr_assert_lt(entry, config + length, "entry %u past the end", i);
		switch (entry[0]) {
		case 0: /* processor */
			cr_expect_eq(entry[1], summary.processors,
				     "APIC ID equals the CPU index");
			cr_expect(entry[3] & 0x01, "CPU %u enabled", entry[1]);
			if (entry[3] & 0x02) {
				summary.bootstrap_processors++;
				cr_expect_eq(entry[1], 0, "BSP is CPU 0");
			}
			summary.processors++;
			entry += 20;
			continue;
		case 1: /* bus */
			cr_expect(memcmp(entry + 2, "PCI   ", 6) == 0 ||
					  memcmp(entry + 2, "ISA   ", 6) == 0);
			summary.buses++;
			break;
		case 2: /* I/O APIC */
			cr_expect_eq(entry[1], cpu_count, "I/O APIC ID");
			cr_expect_eq(entry[2], 0x11);
			cr_expect_eq(entry[3] & 0x01, 1, "enabled");
			cr_expect_eq(le32_load(entry + 4),
				     machine->ioapic_address);
			summary.ioapics++;
			break;
		case 3: /* I/O interrupt */
			cr_expect_eq(entry[1], 0, "INT");
			cr_expect_eq(entry[5], entry[7],
				     "ISA IRQ %u on pin %u, identity", entry[5],
				     entry[7]);
			cr_expect_eq(entry[6], cpu_count, "to the I/O APIC");
			cr_expect_eq(entry[5], summary.io_interrupts);
			summary.io_interrupts++;
			break;
		case 4: /* local interrupt */
			cr_expect_eq(entry[1],
				     summary.local_interrupts == 0 ? 3 : 1,
				     "LINT0 ExtINT, LINT1 NMI");
			cr_expect_eq(entry[7], summary.local_interrupts);
			summary.local_interrupts++;
			break;
		default:
			cr_assert_fail("unknown MP entry type %u", entry[0]);
		}
		entry += 8;
	}
	cr_expect_eq(entry, config + length, "entries fill the table exactly");
	return summary;
}

static void check_machine(const struct firmware_machine *machine,
			  unsigned int cpu_count)
{
	struct guest_memory memory;

	fixture_memory_create(&memory, 2 * MIB);
	cr_assert_eq(mptable_write(&memory, machine, cpu_count), 0);
	struct mp_summary summary =
		check_mp_tables(memory.regions[0].host_addr, machine, cpu_count);
	cr_expect_eq(summary.processors, cpu_count);
	cr_expect_eq(summary.bootstrap_processors, 1);
	cr_expect_eq(summary.buses, 2);
	cr_expect_eq(summary.ioapics, 1);
	cr_expect_eq(summary.io_interrupts, 16);
	cr_expect_eq(summary.local_interrupts, 2);
	fixture_memory_destroy(&memory);
}

static void check_cpus(unsigned int cpu_count)
{
	check_machine(machine_layout_firmware(), cpu_count);
}

Test(mptable, one_cpu)
{
	check_cpus(1);
}

Test(mptable, the_apics_of_the_machine_handed_in)
{
	struct firmware_machine other = *machine_layout_firmware();

	other.ioapic_address = 0xfec01000;
	other.lapic_address = 0xfee01000;
	check_machine(&other, 2);
	other.lapic_address = UINT64_C(1) << 32;
	struct guest_memory memory;
	fixture_memory_create(&memory, 2 * MIB);
	cr_expect_eq(mptable_write(&memory, &other, 2), -EINVAL,
		     "a local APIC the table's 32 bits cannot hold");
	fixture_memory_destroy(&memory);
}

Test(mptable, four_cpus)
{
	check_cpus(4);
}

Test(mptable, most_cpus_fit)
{
	check_cpus(MPTABLE_MAX_CPUS);
}

Test(mptable, refuses_too_many_cpus)
{
	struct guest_memory memory;
	char err[128] = "";

	fixture_memory_create(&memory, 2 * MIB);
	cr_expect_eq(mptable_write(&memory, machine_layout_firmware(), 255),
		     -EINVAL);
	cr_expect_eq(mptable_check_cpu_count(255, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "255"), "%s", err);
	cr_expect_eq(mptable_check_cpu_count(0, err, sizeof(err)), -EINVAL);
	const uint8_t *ram = memory.regions[0].host_addr;
	cr_expect_eq(ram[LAYOUT_EBDA_START], 0, "nothing written");
	fixture_memory_destroy(&memory);
}
