#include "mptable.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "little_endian.h"
#include "table_checksum.h"

/* Sizes and entry types from the MP specification 1.4, chapter 4. */
#define MP_FLOATING_POINTER_SIZE 16
#define MP_HEADER_SIZE 44
#define MP_PROCESSOR_SIZE 20
#define MP_ENTRY_SIZE 8 /* bus, I/O APIC and both interrupt entries */

#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IO_INTERRUPT 3
#define MP_ENTRY_LOCAL_INTERRUPT 4

#define MP_INTERRUPT_INT 0
#define MP_INTERRUPT_NMI 1
#define MP_INTERRUPT_EXTINT 3

#define MP_SPEC_REVISION 4 /* 1.4 */
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BOOTSTRAP 0x02
#define MP_IOAPIC_ENABLED 0x01
#define MP_ALL_LOCAL_APICS 0xff

#define MP_BUS_PCI 0
#define MP_BUS_ISA 1
#define MP_ISA_IRQS 16

/* What KVM's in-kernel LAPIC and IOAPIC report in their version registers. */
#define LOCAL_APIC_VERSION 0x14
#define IOAPIC_VERSION 0x11

/* CPUID signature of a family 6 processor and the feature bits the MP
 * specification names (Table 4-5): FPU (bit 0) and on-chip APIC (bit 9). */
#define MP_CPU_SIGNATURE 0x600
#define MP_CPU_FEATURES 0x201

#define MP_FIXED_ENTRIES_SIZE                                                 \
	(2 * MP_ENTRY_SIZE /* buses */ + MP_ENTRY_SIZE /* I/O APIC */ +       \
	 MP_ISA_IRQS * MP_ENTRY_SIZE + 2 * MP_ENTRY_SIZE /* LINT0, LINT1 */)
#define MP_TABLE_SIZE(cpus)                                                   \
	(MP_FLOATING_POINTER_SIZE + MP_HEADER_SIZE +                          \
	 (cpus) * MP_PROCESSOR_SIZE + MP_FIXED_ENTRIES_SIZE)

_Static_assert(LAYOUT_EBDA_START + MP_TABLE_SIZE(MPTABLE_MAX_CPUS) <=
		       LAYOUT_ACPI_TABLES,
	       "MP tables for MPTABLE_MAX_CPUS overlap the ACPI tables");
_Static_assert(LAYOUT_EBDA_START % 16 == 0,
	       "the MP floating pointer must be 16-byte aligned");

int mptable_check_cpu_count(unsigned int cpu_count, char *err, size_t err_len)
{
	if (cpu_count == 0 || cpu_count > MPTABLE_MAX_CPUS) {
		snprintf(err, err_len,
			 "%u vCPUs requested; vessel's machine takes 1 to %u",
			 cpu_count, MPTABLE_MAX_CPUS);
		return -EINVAL;
	}
	return 0;
}

static uint8_t *mp_bus(uint8_t *entry, uint8_t bus_id, const char *type)
{
	entry[0] = MP_ENTRY_BUS;
	entry[1] = bus_id;
	memset(entry + 2, ' ', 6);
	memcpy(entry + 2, type, strlen(type));
	return entry + MP_ENTRY_SIZE;
}

/* Interrupt entries (§4.3.4, §4.3.5): flags 0 means polarity and trigger
 * conform to the source bus, edge and active high for ISA. */
static uint8_t *mp_interrupt(uint8_t *entry, uint8_t entry_type,
			     uint8_t interrupt_type, uint8_t source_irq,
			     uint8_t destination_id, uint8_t destination_pin)
{
	entry[0] = entry_type;
	entry[1] = interrupt_type;
	le16_store(entry + 2, 0);
	entry[4] = MP_BUS_ISA;
	entry[5] = source_irq;
	entry[6] = destination_id;
	entry[7] = destination_pin;
	return entry + MP_ENTRY_SIZE;
}

int mptable_write(const struct guest_memory *memory,
		  const struct firmware_machine *machine, unsigned int cpu_count)
{
	uint8_t table[MP_TABLE_SIZE(MPTABLE_MAX_CPUS)] = {0};
	const uint64_t config_address =
		LAYOUT_EBDA_START + MP_FLOATING_POINTER_SIZE;
	uint8_t *config = table + MP_FLOATING_POINTER_SIZE;
	uint8_t ioapic_id = (uint8_t)cpu_count;
	uint8_t *entry;

	if (mptable_check_cpu_count(cpu_count, NULL, 0) < 0 ||
	    machine->ioapic_address > UINT32_MAX ||
	    machine->lapic_address > UINT32_MAX)
		return -EINVAL;

	entry = config + MP_HEADER_SIZE;
	for (unsigned int cpu = 0; cpu < cpu_count; cpu++) {
		entry[0] = MP_ENTRY_PROCESSOR;
		entry[1] = (uint8_t)cpu;
		entry[2] = LOCAL_APIC_VERSION;
		entry[3] = MP_CPU_ENABLED | (cpu == 0 ? MP_CPU_BOOTSTRAP : 0);
		le32_store(entry + 4, MP_CPU_SIGNATURE);
		le32_store(entry + 8, MP_CPU_FEATURES);
		entry += MP_PROCESSOR_SIZE;
	}
	entry = mp_bus(entry, MP_BUS_PCI, "PCI");
	entry = mp_bus(entry, MP_BUS_ISA, "ISA");

	entry[0] = MP_ENTRY_IOAPIC;
	entry[1] = ioapic_id;
	entry[2] = IOAPIC_VERSION;
	entry[3] = MP_IOAPIC_ENABLED;
	le32_store(entry + 4, (uint32_t)machine->ioapic_address);
	entry += MP_ENTRY_SIZE;

	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++)
		entry = mp_interrupt(entry, MP_ENTRY_IO_INTERRUPT,
				     MP_INTERRUPT_INT, irq, ioapic_id, irq);
	entry = mp_interrupt(entry, MP_ENTRY_LOCAL_INTERRUPT,
			     MP_INTERRUPT_EXTINT, 0, MP_ALL_LOCAL_APICS, 0);
	entry = mp_interrupt(entry, MP_ENTRY_LOCAL_INTERRUPT, MP_INTERRUPT_NMI,
			     0, MP_ALL_LOCAL_APICS, 1);

	/* Configuration table header (§4.2). */
	size_t config_length = (size_t)(entry - config);
	unsigned int entry_count = cpu_count + 2 + 1 + MP_ISA_IRQS + 2;

	memcpy(config, "PCMP", 4);
	le16_store(config + 4, (uint16_t)config_length);
	config[6] = MP_SPEC_REVISION;
	memcpy(config + 8, "VESSEL  ", 8);
	memcpy(config + 16, "VESSEL-KVM  ", 12);
	le16_store(config + 34, (uint16_t)entry_count);
	le32_store(config + 36, (uint32_t)machine->lapic_address);
	config[7] = table_checksum(config, config_length);

	/* Floating pointer (§4.1): feature byte 1 zero says a configuration
	 * table exists; feature byte 2 bit 7 clear selects virtual wire mode,
	 * as KVM's LAPIC and PIC need no IMCR. */
	memcpy(table, "_MP_", 4);
	le32_store(table + 4, (uint32_t)config_address);
	table[8] = 1; /* length in 16-byte paragraphs */
	table[9] = MP_SPEC_REVISION;
	table[10] = table_checksum(table, MP_FLOATING_POINTER_SIZE);

	return guest_memory_write(memory, LAYOUT_EBDA_START, table,
				  MP_FLOATING_POINTER_SIZE + config_length);
}
