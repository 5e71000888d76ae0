/* ACPI tables as ACPICA walks them: RSDP, XSDT/RSDT, FADT, DSDT, MADT, with
 * checksums and the fields a stock kernel needs for SMP and power-off, each
 * port, line and address as the machine handed in says: vessel's own
 * (vmm/machine_layout.h), and another that firmware/ must follow as well. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../../firmware/acpi.h"
#include "../../firmware/layout.h"
#include "../../firmware/little_endian.h"
#include "../../vmm/machine_layout.h"
#include "fixtures.h"

#define CPUS 3

static struct guest_memory memory;
static const uint8_t *ram;
static uint64_t rsdp_address;
static const struct firmware_machine *machine; /* what the tables say */

/* A machine unlike vessel's in every field the tables describe. */
static const struct firmware_machine other_machine = {
	.low_ram_end = 0x80000000,
	.ioapic_address = 0xfec01000,
	.lapic_address = 0xfee01000,
	.pci_mmio_start = 0x90000000,
	.pci_mmio_end = 0xe0000000,
	.pci_config_port = 0x1000,
	.pci_config_port_count = 8,
	.pm1_event_port = 0xb000,
	.pm1_event_length = 4,
	.pm1_control_port = 0xb004,
	.pm1_control_length = 2,
	.sci_gsi = 11,
	.s5_sleep_type = 7,
};

static void write_tables(const struct firmware_machine *described)
{
	machine = described;
	cr_assert_eq(acpi_tables_write(&memory, machine, CPUS, &rsdp_address),
		     0);
}

static void setup(void)
{
	fixture_memory_create(&memory, 2 * MIB);
	ram = memory.regions[0].host_addr;
	write_tables(machine_layout_firmware());
}

static void teardown(void)
{
	fixture_memory_destroy(&memory);
}

TestSuite(acpi, .init = setup, .fini = teardown);

/* A table with a valid header and checksum, below 1 MiB. */
static const uint8_t *table_at(uint64_t address, const char *signature)
{
	cr_assert_lt(address, LAYOUT_BIOS_END, "%s at 0x%lx", signature,
		     (unsigned long)address);
	const uint8_t *table = ram + address;
	cr_assert(memcmp(table, signature, 4) == 0, "expected %s", signature);
	cr_assert_eq(fixture_byte_sum(table, le32_load(table + 4)), 0,
		     "%s checksum", signature);
	return table;
}

/* The table the XSDT lists with this signature, NULL without one. */
static const uint8_t *xsdt_find(const char *signature)
{
	const uint8_t *xsdt = table_at(le64_load(ram + rsdp_address + 24), "XSDT");

	for (uint32_t at = 36; at + 8 <= le32_load(xsdt + 4); at += 8) {
		const uint8_t *table = ram + le64_load(xsdt + at);

		if (memcmp(table, signature, 4) == 0)
			return table_at(le64_load(xsdt + at), signature);
	}
	return NULL;
}

static const uint8_t *fadt(void)
{
	const uint8_t *table = xsdt_find("FACP");

	cr_assert_not_null(table, "XSDT lists no FADT");
	return table;
}

Test(acpi, rsdp_revision_2_with_both_checksums)
{
	const uint8_t *rsdp = ram + rsdp_address;

	cr_expect_eq(rsdp_address, LAYOUT_ACPI_TABLES);
	cr_expect_eq(rsdp_address % 16, 0, "found by the 16-byte scan");
	cr_assert(memcmp(rsdp, "RSD PTR ", 8) == 0);
	cr_expect_eq(rsdp[15], 2);
	cr_expect_eq(le32_load(rsdp + 20), 36);
	cr_expect_eq(fixture_byte_sum(rsdp, 20), 0, "ACPI 1.0 checksum");
	cr_expect_eq(fixture_byte_sum(rsdp, 36), 0, "extended checksum");
}

Test(acpi, xsdt_and_rsdt_list_fadt_and_madt)
{
	const uint8_t *rsdp = ram + rsdp_address;
	const uint8_t *xsdt = table_at(le64_load(rsdp + 24), "XSDT");
	const uint8_t *rsdt = table_at(le32_load(rsdp + 16), "RSDT");

	cr_assert_eq(le32_load(xsdt + 4), 36 + 2 * 8, "two XSDT entries");
	cr_assert_eq(le32_load(rsdt + 4), 36 + 2 * 4, "two RSDT entries");
	cr_expect_eq(le32_load(rsdt + 36), le64_load(xsdt + 36));
	cr_expect_eq(le32_load(rsdt + 40), le64_load(xsdt + 44));
	cr_expect_not_null(xsdt_find("FACP"));
	cr_expect_not_null(xsdt_find("APIC"));
}

/* Linux ignores the MP tables once ACPI is on and takes CPUs and the I/O
 * APIC from here; without it a guest boots with one CPU in PIC mode. */
static void expect_madt(void)
{
	const uint8_t *madt = xsdt_find("APIC");
	unsigned int cpus = 0, ioapics = 0, sci_overrides = 0, nmis = 0;

	cr_assert_not_null(madt);
	cr_expect_eq(le32_load(madt + 36), machine->lapic_address);
	for (uint32_t at = 44; at < le32_load(madt + 4);) {
		const uint8_t *entry = madt + at;

		cr_assert_geq(entry[1], 2, "entry length at %u", at);
		switch (entry[0]) {
		case 0: /* processor local APIC */
			cr_expect_eq(entry[3], cpus, "APIC ID equals index");
			cr_expect_eq(le32_load(entry + 4) & 1, 1, "enabled");
			cpus++;
			break;
		case 1: /* I/O APIC */
			cr_expect_eq(entry[2], CPUS, "I/O APIC ID");
			cr_expect_eq(le32_load(entry + 4),
				     machine->ioapic_address);
			cr_expect_eq(le32_load(entry + 8), 0, "GSI base");
			ioapics++;
			break;
		case 2: /* interrupt source override */
			cr_expect_eq(entry[3], machine->sci_gsi);
			cr_expect_eq(le32_load(entry + 4), machine->sci_gsi);
			cr_expect_eq(le16_load(entry + 8), 0x000d,
				     "level triggered, active high");
			sci_overrides++;
			break;
		case 4: /* local APIC NMI */
			cr_expect_eq(entry[5], 1, "LINT1");
			nmis++;
			break;
		default:
			cr_assert_fail("unexpected MADT entry type %u", entry[0]);
		}
		at += entry[1];
	}
	cr_expect_eq(cpus, CPUS);
	cr_expect_eq(ioapics, 1);
	cr_expect_eq(sci_overrides, 1);
	cr_expect_eq(nmis, 1);
}

Test(acpi, madt_lists_cpus_and_ioapic)
{
	expect_madt();
}

Test(acpi, refuses_too_many_cpus)
{
	uint64_t address;

	cr_expect_eq(acpi_tables_write(&memory, machine, 255, &address),
		     -EINVAL);
	cr_expect_eq(acpi_tables_write(&memory, machine, 0, &address), -EINVAL);
	cr_expect_eq(acpi_tables_write(&memory, machine, 254, &address), 0);
}

/* A machine the tables cannot express is refused, not described wrongly. */
Test(acpi, refuses_a_machine_it_cannot_describe)
{
	struct firmware_machine bad = other_machine;
	uint64_t address;

	bad.s5_sleep_type = 8; /* SLP_TYP has 3 bits */
	cr_expect_eq(acpi_tables_write(&memory, &bad, CPUS, &address), -EINVAL);
	bad = other_machine;
	bad.pci_mmio_end = 0x100001000ULL; /* DWordMemory ends below 4 GiB */
	cr_expect_eq(acpi_tables_write(&memory, &bad, CPUS, &address), -EINVAL);
	bad = other_machine;
	bad.pci_config_port = 0xfffc; /* the ports run past 0xffff */
	cr_expect_eq(acpi_tables_write(&memory, &bad, CPUS, &address), -EINVAL);
}

static void expect_fadt(void)
{
	const uint8_t *table = fadt();

	cr_expect_eq(le32_load(table + 4), 276, "ACPI 6 FADT length");
	cr_expect_geq(table[8], 3, "revision with X_ fields");
	cr_expect_eq(le32_load(table + 112) & (1u << 20), 0,
		     "not HW_REDUCED_ACPI");
	cr_expect_eq(le16_load(table + 46), machine->sci_gsi, "SCI_INT");
	cr_expect_eq(le32_load(table + 48), 0, "no SMI_CMD: ACPI always on");
	cr_expect_eq(le32_load(table + 56), machine->pm1_event_port);
	cr_expect_eq(le32_load(table + 64), machine->pm1_control_port);
	cr_expect_eq(le32_load(table + 76), 0, "no PM timer");
	cr_expect_eq(table[88], 4, "PM1_EVT_LEN");
	cr_expect_eq(table[89], 2, "PM1_CNT_LEN");
	cr_expect_eq(table[91], 0, "PM_TMR_LEN");
	cr_expect_eq(le16_load(table + 109) & 0x3, 0x3,
		     "IAPC_BOOT_ARCH: LEGACY_DEVICES and 8042");

	/* X_PM1a_EVT_BLK and X_PM1a_CNT_BLK: System I/O GAS. */
	cr_expect_eq(table[148], 1);
	cr_expect_eq(table[149], 32);
	cr_expect_eq(le64_load(table + 152), machine->pm1_event_port);
	cr_expect_eq(table[172], 1);
	cr_expect_eq(table[173], 16);
	cr_expect_eq(le64_load(table + 176), machine->pm1_control_port);

	cr_expect_eq(le32_load(table + 40), le64_load(table + 140),
		     "DSDT and X_DSDT agree");
	cr_expect_eq(le32_load(table + 36), le64_load(table + 132),
		     "FIRMWARE_CTRL and X_FIRMWARE_CTRL agree");
	const uint8_t *facs = ram + le64_load(table + 132);
	cr_expect(memcmp(facs, "FACS", 4) == 0);
	cr_expect_eq(le64_load(table + 132) % 64, 0, "FACS 64-byte aligned");
}

Test(acpi, fadt_describes_pm1_hardware)
{
	expect_fadt();
}

static const uint8_t *dsdt(void)
{
	return table_at(le64_load(fadt() + 140), "DSDT");
}

/* The AML that follows needle in the DSDT; fails the test without one. */
static const uint8_t *dsdt_find(const void *needle, size_t size,
				const char *what)
{
	const uint8_t *table = dsdt();
	const uint8_t *found = fixture_find(table + 36, le32_load(table + 4) - 36,
					    needle, size);

	cr_assert_not_null(found, "DSDT has no %s", what);
	return found + size;
}

/* A one- or two-byte PkgLength (§20.2.4); *size gets its byte count. */
static uint32_t pkg_length(const uint8_t *bytes, size_t *size)
{
	cr_assert_leq(bytes[0] >> 6, 1, "PkgLength over two bytes");
	*size = 1 + (bytes[0] >> 6);
	return *size == 1 ? bytes[0] : (bytes[0] & 0x0f) | bytes[1] << 4;
}

static const uint8_t dsdt_s5[] = {
	0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
	0x0a, LAYOUT_ACPI_S5_SLEEP_TYPE, 0x0a, LAYOUT_ACPI_S5_SLEEP_TYPE,
	0x00, 0x00,
};

Test(acpi, dsdt_declares_s5)
{
	dsdt_find(dsdt_s5, sizeof(dsdt_s5),
		  "Name(_S5_, Package(){S5, S5, 0, 0})");
}

/* Another machine's ports, lines and window, in every table that names
 * them: nothing of vessel's own machine is left in firmware/. */
Test(acpi, tables_describe_the_machine_handed_in)
{
	write_tables(&other_machine);
	expect_fadt();
	expect_madt();

	const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04,
			       0x0a, 7, 0x0a, 7, 0x00, 0x00 };
	dsdt_find(s5, sizeof(s5), "Name(_S5_, Package(){7, 7, 0, 0})");
	const uint8_t config[] = { 0x47, 0x01, 0x00, 0x10, 0x00, 0x10,
				   0x01, 0x08 };
	dsdt_find(config, sizeof(config), "IO 0x1000, length 8");
	const uint8_t io_high[] = { 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0,
				    0x08, 0x10, 0xff, 0xff, 0, 0, 0xf8, 0xef };
	dsdt_find(io_high, sizeof(io_high), "WordIO 0x1008-0xffff");
	uint8_t window[14] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };
	le32_store(window + 10, 0x90000000);
	dsdt_find(window, sizeof(window), "DWordMemory from 0x90000000");
}

/* Scope (\_SB) { Device (PCI0) { ... } } closes at the end of the table:
 * both PkgLengths reach exactly there, as ACPICA walks them. */
Test(acpi, dsdt_declares_pci_root_bridge_in_sb)
{
	const uint8_t *table = dsdt();
	const uint8_t *table_end = table + le32_load(table + 4);
	const uint8_t device_op[] = { 0x5b, 0x82 };
	const uint8_t *scope = dsdt_find(dsdt_s5, sizeof(dsdt_s5), "\\_S5_");
	const uint8_t *device;
	size_t size;

	cr_assert_eq(*scope++, 0x10, "ScopeOp right after \\_S5_");
	cr_expect_eq(scope + pkg_length(scope, &size), table_end,
		     "Scope spans to the table end");
	cr_assert(memcmp(scope + size, "\\_SB_", 5) == 0, "Scope (\\_SB)");
	device = scope + size + 5;
	cr_assert(memcmp(device, device_op, 2) == 0, "DeviceOp in \\_SB");
	device += 2;
	cr_expect_eq(device + pkg_length(device, &size), table_end,
		     "Device spans to the table end");
	cr_expect(memcmp(device + size, "PCI0", 4) == 0, "Device (PCI0)");

	const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D',
				0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	dsdt_find(hid, sizeof(hid), "Name (_HID, EisaId (\"PNP0A03\"))");
	const uint8_t seg[] = { 0x08, '_', 'S', 'E', 'G', 0x00 };
	dsdt_find(seg, sizeof(seg), "Name (_SEG, Zero)");
	const uint8_t bbn[] = { 0x08, '_', 'B', 'B', 'N', 0x00 };
	dsdt_find(bbn, sizeof(bbn), "Name (_BBN, Zero)");
}

/* The root bridge's _CRS: bus 0, the configuration ports, the I/O windows
 * around them and the 32-bit MMIO window, then the end tag. */
Test(acpi, dsdt_pci_root_bridge_resources)
{
	const uint8_t *table = dsdt();
	const uint8_t crs[] = { 0x08, '_', 'C', 'R', 'S', 0x11 };
	const uint8_t *buffer = dsdt_find(crs, sizeof(crs), "Name (_CRS, Buffer");
	size_t size;
	uint32_t length = pkg_length(buffer, &size);
	const uint8_t *end = buffer + length;

	cr_assert_eq(buffer[size], 0x0a, "BufferSize as a BytePrefix");
	const uint8_t *at = buffer + size + 2;
	cr_expect_eq(buffer[size + 1], end - at, "BufferSize");
	cr_expect_eq(end, table + le32_load(table + 4),
		     "_CRS is the last object");

	const uint8_t bus[] = { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0,
				0, 0, 0, 0, 0, 0, 0x01, 0x00 };
	const uint8_t config[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c,
				   0x01, 0x08 };
	const uint8_t io_low[] = { 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0,
				   0x00, 0x00, 0xf7, 0x0c, 0, 0, 0xf8, 0x0c };
	const uint8_t io_high[] = { 0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0, 0,
				    0x00, 0x0d, 0xff, 0xff, 0, 0, 0x00, 0xf3 };
	uint8_t memory[26] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };
	const uint8_t end_tag[] = { 0x79, 0x00 };

	le32_store(memory + 10, machine->pci_mmio_start);
	le32_store(memory + 14, machine->pci_mmio_end - 1);
	le32_store(memory + 22, machine->pci_mmio_end - machine->pci_mmio_start);
	const struct {
		const uint8_t *bytes;
		size_t size;
		const char *what;
	} expected[] = {
		{ bus, sizeof(bus), "WordBusNumber 0-0" },
		{ config, sizeof(config), "IO 0xcf8, length 8" },
		{ io_low, sizeof(io_low), "WordIO 0x0000-0x0cf7" },
		{ io_high, sizeof(io_high), "WordIO 0x0d00-0xffff" },
		{ memory, sizeof(memory), "DWordMemory PCI MMIO window" },
		{ end_tag, sizeof(end_tag), "end tag" },
	};

	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		cr_assert_leq(at + expected[i].size, end, "%s", expected[i].what);
		cr_expect(memcmp(at, expected[i].bytes, expected[i].size) == 0,
			  "%s", expected[i].what);
		at += expected[i].size;
	}
	cr_expect_eq(at, end, "nothing after the end tag");
}
