#include "acpi.h"

#include <errno.h>
#include <string.h>

#include "aml.h"
#include "layout.h"
#include "little_endian.h"
#include "mptable.h" /* the CPU ceiling: same APIC IDs as the MP tables */
#include "table_checksum.h"

/* System description table header (ACPI 6.4 §5.2.6). */
#define ACPI_HEADER_SIZE 36
#define ACPI_HEADER_CHECKSUM 9

/* RSDP (§5.2.5.3). */
#define RSDP_SIZE 36
#define RSDP_V1_SIZE 20 /* the part the first checksum covers */
#define RSDP_REVISION 2

/* FACS (§5.2.10): 64 bytes, 64-byte aligned, no checksum. */
#define FACS_SIZE 64
#define FACS_VERSION 2

/* FADT (§5.2.9, Table 5.9): revision 6 (ACPI 6.0 and later) is 276 bytes. */
#define FADT_SIZE 276
#define FADT_REVISION 6
#define FADT_MINOR_REVISION 0
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT 40
#define FADT_SCI_INT 46
#define FADT_SMI_CMD 48
#define FADT_PM1A_EVT_BLK 56
#define FADT_PM1A_CNT_BLK 64
#define FADT_PM_TMR_BLK 76
#define FADT_PM1_EVT_LEN 88
#define FADT_PM1_CNT_LEN 89
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_MINOR_VERSION 131
#define FADT_X_FIRMWARE_CTRL 132
#define FADT_X_DSDT 140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172

/* IA-PC boot architecture flags (§5.2.9.3): legacy ISA devices (so Linux
 * keeps the CMOS RTC and the serial ports) and an 8042 keyboard controller,
 * which vessel's i8042 provides and Linux otherwise skips probing. */
#define IAPC_LEGACY_DEVICES (1u << 0)
#define IAPC_8042 (1u << 1)

/* Fixed feature flags (§5.2.9, Table 5.10): WBINVD works; the power
 * button is fixed hardware (PWR_BUTTON clear: PWRBTN_STS in PM1, as
 * devices/acpi_pm.c has it); there is no sleep button; RTC wake status is
 * not in the PM1 registers. HW_REDUCED_ACPI (bit 20) stays clear. */
#define FADT_FLAG_WBINVD (1u << 0)
#define FADT_FLAG_SLP_BUTTON (1u << 5)
#define FADT_FLAG_FIX_RTC (1u << 6)

/* Generic Address Structure (§5.2.3.2). */
#define GAS_SIZE 12
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_WORD 2

#define DSDT_REVISION 2 /* 64-bit AML integers */

/* MADT (§5.2.12): header, local APIC address, flags, then structures. */
#define MADT_REVISION 5
#define MADT_FIXED_SIZE (ACPI_HEADER_SIZE + 8)
#define MADT_PCAT_COMPAT (1u << 0) /* KVM's in-kernel 8259 pair exists */
#define MADT_LOCAL_APIC 0
#define MADT_LOCAL_APIC_SIZE 8
#define MADT_LOCAL_APIC_ENABLED (1u << 0)
#define MADT_IOAPIC 1
#define MADT_IOAPIC_SIZE 12
#define MADT_SOURCE_OVERRIDE 2
#define MADT_SOURCE_OVERRIDE_SIZE 10
#define MADT_LOCAL_APIC_NMI 4
#define MADT_LOCAL_APIC_NMI_SIZE 6
#define MADT_ALL_PROCESSORS 0xff
/* MPS INTI flags (§5.2.12.5): active high (01), level triggered (11 << 2). */
#define MPS_INTI_ACTIVE_HIGH_LEVEL 0x000d
#define MADT_SIZE(cpus)                                                       \
	(MADT_FIXED_SIZE + (cpus) * MADT_LOCAL_APIC_SIZE + MADT_IOAPIC_SIZE + \
	 MADT_SOURCE_OVERRIDE_SIZE + MADT_LOCAL_APIC_NMI_SIZE)

/* Room for the DSDT, header included; dsdt_fill() reports -ENOSPC beyond. */
#define DSDT_MAX_SIZE 0x400

/* Where each table sits, as an offset from LAYOUT_ACPI_TABLES. */
enum {
	RSDP_OFFSET = 0,
	FACS_OFFSET = 0x40,
	RSDT_OFFSET = FACS_OFFSET + FACS_SIZE,
	RSDT_SIZE = ACPI_HEADER_SIZE + 2 * 4,
	XSDT_OFFSET = 0xb0,
	XSDT_SIZE = ACPI_HEADER_SIZE + 2 * 8,
	FADT_OFFSET = 0x100,
	DSDT_OFFSET = 0x220,
	MADT_OFFSET = DSDT_OFFSET + DSDT_MAX_SIZE,
	ACPI_TABLES_SIZE = MADT_OFFSET + MADT_SIZE(MPTABLE_MAX_CPUS),
};

_Static_assert(RSDP_OFFSET + RSDP_SIZE <= FACS_OFFSET &&
		       RSDT_OFFSET + RSDT_SIZE <= XSDT_OFFSET &&
		       XSDT_OFFSET + XSDT_SIZE <= FADT_OFFSET &&
		       FADT_OFFSET + FADT_SIZE <= DSDT_OFFSET,
	       "ACPI tables overlap");
_Static_assert((LAYOUT_ACPI_TABLES + FACS_OFFSET) % 64 == 0,
	       "the FACS must be 64-byte aligned");
_Static_assert(LAYOUT_ACPI_TABLES % 16 == 0,
	       "the RSDP must be 16-byte aligned for the BIOS-area scan");
_Static_assert(LAYOUT_ACPI_TABLES + ACPI_TABLES_SIZE <= LAYOUT_BIOS_END,
	       "ACPI tables must stay below 1 MiB");

static void acpi_header(uint8_t *table, const char *signature,
			uint32_t length, uint8_t revision)
{
	memcpy(table, signature, 4);
	le32_store(table + 4, length);
	table[8] = revision;
	memcpy(table + 10, "VESSEL", 6);
	memcpy(table + 16, "VESSELVM", 8);
	le32_store(table + 24, 1); /* OEM revision */
	memcpy(table + 28, "VSSL", 4); /* creator ID */
	le32_store(table + 32, 1); /* creator revision */
}

static void acpi_finish(uint8_t *table, uint32_t length)
{
	table[ACPI_HEADER_CHECKSUM] = table_checksum(table, length);
}

static void gas_system_io(uint8_t *gas, uint8_t length, uint16_t port)
{
	gas[0] = GAS_SYSTEM_IO;
	gas[1] = (uint8_t)(length * 8); /* register bit width */
	gas[2] = 0; /* bit offset */
	gas[3] = GAS_ACCESS_WORD;
	le64_store(gas + 4, port);
}

static void fadt_fill(uint8_t *fadt, const struct firmware_machine *machine,
		      uint32_t facs, uint32_t dsdt)
{
	acpi_header(fadt, "FACP", FADT_SIZE, FADT_REVISION);
	/* The 32-bit and X_ forms hold the same values, so that an OSPM that
	 * reads either agrees. */
	le32_store(fadt + FADT_FIRMWARE_CTRL, facs);
	le32_store(fadt + FADT_DSDT, dsdt);
	le64_store(fadt + FADT_X_FIRMWARE_CTRL, facs);
	le64_store(fadt + FADT_X_DSDT, dsdt);

	le16_store(fadt + FADT_SCI_INT, machine->sci_gsi);
	/* SMI_CMD 0: no transition from legacy mode, ACPI is always on. */
	le32_store(fadt + FADT_SMI_CMD, 0);

	le32_store(fadt + FADT_PM1A_EVT_BLK, machine->pm1_event_port);
	le32_store(fadt + FADT_PM1A_CNT_BLK, machine->pm1_control_port);
	fadt[FADT_PM1_EVT_LEN] = machine->pm1_event_length;
	fadt[FADT_PM1_CNT_LEN] = machine->pm1_control_length;
	gas_system_io(fadt + FADT_X_PM1A_EVT_BLK, machine->pm1_event_length,
		      machine->pm1_event_port);
	gas_system_io(fadt + FADT_X_PM1A_CNT_BLK, machine->pm1_control_length,
		      machine->pm1_control_port);
	/* No PM timer (optional since ACPI 5.0a): block and length stay 0. */
	le32_store(fadt + FADT_PM_TMR_BLK, 0);

	le16_store(fadt + FADT_IAPC_BOOT_ARCH, IAPC_LEGACY_DEVICES | IAPC_8042);
	le32_store(fadt + FADT_FLAGS, FADT_FLAG_WBINVD | FADT_FLAG_SLP_BUTTON |
					      FADT_FLAG_FIX_RTC);
	fadt[FADT_MINOR_VERSION] = FADT_MINOR_REVISION;
	acpi_finish(fadt, FADT_SIZE);
}

/*
 * The PCI host bridge as an ACPI root bridge (§6.1.5: PNP0A03 is "PCI Bus"):
 * with ACPI on, Linux scans only the buses a root bridge declares. Its _CRS
 * (§6.2.2) says what the bridge decodes: bus 0, the configuration ports it
 * consumes itself, and as windows for the devices below it every other I/O
 * port and the 32-bit MMIO window.
 */
static void dsdt_pci_root_bridge(struct aml_builder *aml,
				 const struct firmware_machine *machine)
{
	const uint16_t config_port = machine->pci_config_port;
	const uint16_t config_end = config_port + machine->pci_config_port_count;

	aml_device_begin(aml, "PCI0");
	aml_name(aml, "_HID");
	aml_eisa_id(aml, "PNP0A03");
	aml_name(aml, "_UID");
	aml_integer(aml, 0);
	aml_name(aml, "_SEG"); /* PCI segment group 0 (§6.5.6) */
	aml_integer(aml, 0);
	aml_name(aml, "_BBN"); /* its bus is bus 0 (§6.5.5) */
	aml_integer(aml, 0);

	aml_name(aml, "_CRS");
	aml_resource_template_begin(aml);
	aml_word_bus_number(aml, 0, 0);
	/* Linux drops exactly this range (0xcf8-0xcff on vessel's machine)
	 * from the windows, as the configuration mechanism's own ports. */
	aml_io(aml, config_port, config_port, 1,
	       (uint8_t)machine->pci_config_port_count);
	aml_word_io(aml, 0, config_port - 1);
	aml_word_io(aml, config_end, UINT16_MAX);
	aml_dword_memory(aml, AML_MEMORY_NON_CACHEABLE, true,
			 (uint32_t)machine->pci_mmio_start,
			 (uint32_t)(machine->pci_mmio_end - 1));
	aml_end(aml);

	aml_end(aml);
}

/* What the tables can express of a machine: SLP_TYP is a 3-bit field of
 * PM1_CNT; the MMIO window is a DWordMemory range below 4 GiB; the
 * configuration ports are a 16-bit I/O range between two windows. A
 * machine that fails this is a vessel bug. */
static bool machine_describable(const struct firmware_machine *machine)
{
	return machine->s5_sleep_type <= 7 &&
	       machine->pci_mmio_start < machine->pci_mmio_end &&
	       machine->pci_mmio_end - 1 <= UINT32_MAX &&
	       machine->pci_config_port > 0 &&
	       machine->pci_config_port_count > 0 &&
	       machine->pci_config_port_count <= UINT8_MAX &&
	       machine->pci_config_port + machine->pci_config_port_count <=
		       UINT16_MAX &&
	       machine->ioapic_address <= UINT32_MAX &&
	       machine->lapic_address <= UINT32_MAX;
}

/* The DSDT's definition block; its decoded ASL is in firmware/README.md. */
static int dsdt_fill(uint8_t *dsdt, const struct firmware_machine *machine)
{
	struct aml_builder aml;
	size_t aml_length;
	int ret;

	aml_init(&aml, dsdt + ACPI_HEADER_SIZE, DSDT_MAX_SIZE - ACPI_HEADER_SIZE);
	/* \_S5_ (§7.4.2): SLP_TYPa and SLP_TYPb for soft off, then two
	 * reserved elements. */
	aml_name(&aml, "_S5_");
	aml_package_begin(&aml);
	aml_integer(&aml, machine->s5_sleep_type);
	aml_integer(&aml, machine->s5_sleep_type);
	aml_integer(&aml, 0);
	aml_integer(&aml, 0);
	aml_end(&aml);

	aml_scope_begin(&aml, "\\_SB");
	dsdt_pci_root_bridge(&aml, machine);
	aml_end(&aml);

	ret = aml_finish(&aml, &aml_length);
	if (ret < 0)
		return ret;
	acpi_header(dsdt, "DSDT", (uint32_t)(ACPI_HEADER_SIZE + aml_length),
		    DSDT_REVISION);
	acpi_finish(dsdt, (uint32_t)(ACPI_HEADER_SIZE + aml_length));
	return 0;
}

/* The interrupt model Linux takes from ACPI (it ignores the MP tables once
 * ACPI is on): one local APIC per vCPU with APIC ID equal to its index, the
 * I/O APIC with GSIs from 0 (ISA IRQs map to the same GSI, as in KVM's
 * default routing), the SCI as level triggered and active high (so Linux
 * does not program the ACPI default, active low), and LINT1 as NMI. */
static uint32_t madt_fill(uint8_t *madt, const struct firmware_machine *machine,
			  unsigned int cpu_count)
{
	uint32_t length = MADT_SIZE(cpu_count);
	uint8_t *entry = madt + MADT_FIXED_SIZE;

	acpi_header(madt, "APIC", length, MADT_REVISION);
	le32_store(madt + ACPI_HEADER_SIZE, (uint32_t)machine->lapic_address);
	le32_store(madt + ACPI_HEADER_SIZE + 4, MADT_PCAT_COMPAT);
	for (unsigned int cpu = 0; cpu < cpu_count; cpu++) {
		entry[0] = MADT_LOCAL_APIC;
		entry[1] = MADT_LOCAL_APIC_SIZE;
		entry[2] = (uint8_t)cpu; /* ACPI processor UID */
		entry[3] = (uint8_t)cpu; /* APIC ID */
		le32_store(entry + 4, MADT_LOCAL_APIC_ENABLED);
		entry += MADT_LOCAL_APIC_SIZE;
	}

	entry[0] = MADT_IOAPIC;
	entry[1] = MADT_IOAPIC_SIZE;
	entry[2] = (uint8_t)cpu_count; /* the ID the MP tables give it */
	le32_store(entry + 4, (uint32_t)machine->ioapic_address);
	le32_store(entry + 8, 0); /* GSI base */
	entry += MADT_IOAPIC_SIZE;

	entry[0] = MADT_SOURCE_OVERRIDE;
	entry[1] = MADT_SOURCE_OVERRIDE_SIZE;
	entry[2] = 0; /* ISA */
	entry[3] = machine->sci_gsi;
	le32_store(entry + 4, machine->sci_gsi);
	le16_store(entry + 8, MPS_INTI_ACTIVE_HIGH_LEVEL);
	entry += MADT_SOURCE_OVERRIDE_SIZE;

	entry[0] = MADT_LOCAL_APIC_NMI;
	entry[1] = MADT_LOCAL_APIC_NMI_SIZE;
	entry[2] = MADT_ALL_PROCESSORS;
	le16_store(entry + 3, 0); /* conforming polarity and trigger */
	entry[5] = 1; /* LINT1 */

	acpi_finish(madt, length);
	return length;
}

int acpi_tables_write(const struct guest_memory *memory,
		      const struct firmware_machine *machine,
		      unsigned int cpu_count, uint64_t *rsdp_address)
{
	uint8_t tables[ACPI_TABLES_SIZE] = {0};
	const uint32_t base = LAYOUT_ACPI_TABLES;
	uint8_t *rsdp = tables + RSDP_OFFSET;
	uint8_t *facs = tables + FACS_OFFSET;
	uint8_t *rsdt = tables + RSDT_OFFSET;
	uint8_t *xsdt = tables + XSDT_OFFSET;
	uint8_t *dsdt = tables + DSDT_OFFSET;
	uint32_t madt_length;
	int ret;

	if (cpu_count == 0 || cpu_count > MPTABLE_MAX_CPUS ||
	    !machine_describable(machine))
		return -EINVAL;
	madt_length = madt_fill(tables + MADT_OFFSET, machine, cpu_count);

	ret = dsdt_fill(dsdt, machine);
	if (ret < 0)
		return ret;

	memcpy(facs, "FACS", 4);
	le32_store(facs + 4, FACS_SIZE);
	facs[32] = FACS_VERSION;

	fadt_fill(tables + FADT_OFFSET, machine, base + FACS_OFFSET,
		  base + DSDT_OFFSET);

	acpi_header(rsdt, "RSDT", RSDT_SIZE, 1);
	le32_store(rsdt + ACPI_HEADER_SIZE, base + FADT_OFFSET);
	le32_store(rsdt + ACPI_HEADER_SIZE + 4, base + MADT_OFFSET);
	acpi_finish(rsdt, RSDT_SIZE);

	acpi_header(xsdt, "XSDT", XSDT_SIZE, 1);
	le64_store(xsdt + ACPI_HEADER_SIZE, base + FADT_OFFSET);
	le64_store(xsdt + ACPI_HEADER_SIZE + 8, base + MADT_OFFSET);
	acpi_finish(xsdt, XSDT_SIZE);

	memcpy(rsdp, "RSD PTR ", 8);
	memcpy(rsdp + 9, "VESSEL", 6);
	rsdp[15] = RSDP_REVISION;
	le32_store(rsdp + 16, base + RSDT_OFFSET);
	le32_store(rsdp + 20, RSDP_SIZE);
	le64_store(rsdp + 24, base + XSDT_OFFSET);
	rsdp[8] = table_checksum(rsdp, RSDP_V1_SIZE);
	rsdp[32] = table_checksum(rsdp, RSDP_SIZE);

	ret = guest_memory_write(memory, base, tables, MADT_OFFSET + madt_length);
	if (ret < 0)
		return ret;
	*rsdp_address = base + RSDP_OFFSET;
	return 0;
}
