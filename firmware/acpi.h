/*
 * ACPI tables that let a stock Linux kernel find vessel's CPUs, interrupt
 * controllers and fixed power management hardware, and power the machine
 * off (ACPI 6.4 chapter 5).
 *
 * Promise: acpi_tables_write() puts, from LAYOUT_ACPI_TABLES upward and below
 * 1 MiB: an RSDP (revision 2, both checksums; found by the 0xe0000 scan or
 * through the address returned), an RSDT and an XSDT listing a FADT and a
 * MADT, a FACS, and a DSDT whose only content is \_S5_ with sleep type
 * LAYOUT_ACPI_S5_SLEEP_TYPE. The FADT describes full (not hardware-reduced)
 * ACPI: PM1a event and control blocks at the ports of firmware/layout.h, the
 * SCI on LAYOUT_ACPI_SCI_GSI, no SMI command port (ACPI mode is always on),
 * no PM timer, and legacy devices plus an 8042 present. The MADT says what
 * the MP tables (firmware/mptable.h) say: one local APIC per vCPU with APIC
 * ID equal to its index, the I/O APIC at LAYOUT_IOAPIC_ADDRESS with ID
 * cpu_count and GSI base 0, and LINT1 as NMI; it adds the SCI as level
 * triggered, active high.
 */
#ifndef VESSEL_FIRMWARE_ACPI_H
#define VESSEL_FIRMWARE_ACPI_H

#include <stdint.h>

#include "../devices/guest_memory.h"

/* 0 with *rsdp_address set, -EINVAL for a CPU count that
 * mptable_check_cpu_count() refuses, or -EFAULT when guest RAM does not cover
 * the tables. */
int acpi_tables_write(const struct guest_memory *memory,
		      unsigned int cpu_count, uint64_t *rsdp_address);

#endif
