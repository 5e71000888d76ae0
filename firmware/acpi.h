/*
 * ACPI tables that let a stock Linux kernel find vessel's CPUs, interrupt
 * controllers and fixed power management hardware, and power the machine
 * off (ACPI 6.4 chapter 5).
 *
 * Promise: acpi_tables_write() puts, from LAYOUT_ACPI_TABLES upward and below
 * 1 MiB: an RSDP (revision 2, both checksums; found by the 0xe0000 scan or
 * through the address returned), an RSDT and an XSDT listing a FADT and a
 * MADT, a FACS, and a DSDT (encoded by firmware/aml.h) holding \_S5_ with
 * the machine's soft-off sleep type and \_SB.PCI0, a PCI root bridge
 * (PNP0A03) for segment 0, bus 0, that decodes every I/O port except the
 * machine's configuration ports, which it consumes, and its PCI MMIO
 * window. The FADT describes full (not hardware-reduced) ACPI: the
 * machine's PM1a event and control blocks, its SCI, no SMI command port
 * (ACPI mode is always on), no PM timer, and legacy devices plus an 8042
 * present. The MADT says what the MP tables (firmware/mptable.h) say: one
 * local APIC per vCPU with APIC ID equal to its index, the I/O APIC at the
 * machine's address with ID cpu_count and GSI base 0, and LINT1 as NMI; it
 * adds the SCI as level triggered, active high. Every port, line and
 * address comes from the firmware_machine handed in.
 */
#ifndef VESSEL_FIRMWARE_ACPI_H
#define VESSEL_FIRMWARE_ACPI_H

#include <stdint.h>

#include "../devices/guest_memory.h"
#include "machine.h"

/* 0 with *rsdp_address set, -EINVAL for a CPU count that
 * mptable_check_cpu_count() refuses or a machine the tables cannot express (a
 * sleep type above 7, ports or windows out of range), -EFAULT when guest RAM
 * does not cover the tables, or -ENOSPC if the DSDT outgrew the room acpi.c
 * gives it (a vessel bug its unit tests catch). */
int acpi_tables_write(const struct guest_memory *memory,
		      const struct firmware_machine *machine,
		      unsigned int cpu_count, uint64_t *rsdp_address);

#endif
