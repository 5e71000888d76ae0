/*
 * ACPI tables that let a stock Linux kernel find vessel's CPUs, interrupt
 * controllers and fixed power management hardware, and power the machine
 * off (ACPI 6.4 chapter 5).
 *
 * Promise: acpi_tables_write() puts, from LAYOUT_ACPI_TABLES upward and below
 * 1 MiB: an RSDP (revision 2, both checksums; found by the 0xe0000 scan or
 * through the address returned), an RSDT and an XSDT listing a FADT and a
 * MADT, a FACS, and a DSDT (encoded by firmware/aml.h) holding \_S5_ with
 * sleep type LAYOUT_ACPI_S5_SLEEP_TYPE and \_SB.PCI0, a PCI root bridge
 * (PNP0A03) for segment 0, bus 0, that decodes every I/O port except the
 * configuration ports of devices/pci.h, which it consumes, and the memory
 * from LAYOUT_PCI_MMIO_START to LAYOUT_PCI_MMIO_END. The FADT describes full (not hardware-reduced)
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
 * mptable_check_cpu_count() refuses, -EFAULT when guest RAM does not cover
 * the tables, or -ENOSPC if the DSDT outgrew the room acpi.c gives it (a
 * vessel bug its unit tests catch). */
int acpi_tables_write(const struct guest_memory *memory,
		      unsigned int cpu_count, uint64_t *rsdp_address);

#endif
