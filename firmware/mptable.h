/*
 * Intel MultiProcessor Specification 1.4 tables, which tell the guest its
 * CPUs and its I/O APIC when it does not use ACPI (acpi=off, or kernels
 * without ACPI); with ACPI, Linux reads the MADT (firmware/acpi.h) and drops
 * these.
 *
 * Promise: mptable_write() puts an MP floating pointer at LAYOUT_EBDA_START,
 * where Linux scans (the last KiB of base memory), followed by a configuration
 * table: one enabled processor per vCPU with APIC ID equal to its index (index
 * 0 the bootstrap processor), a PCI and an ISA bus, one I/O APIC with ID
 * cpu_count at the machine's I/O APIC address, ISA IRQs 0-15 wired to I/O APIC
 * pins 0-15 (KVM's default GSI routing), LINT0 as ExtINT and LINT1 as NMI. Both
 * checksums are valid. Everything stays below LAYOUT_ACPI_TABLES, in the range
 * the e820 map reserves.
 */
#ifndef VESSEL_FIRMWARE_MPTABLE_H
#define VESSEL_FIRMWARE_MPTABLE_H

#include <stddef.h>

#include "../devices/guest_memory.h"
#include "machine.h"

/* APIC IDs 0..cpu_count-1 and the I/O APIC's ID cpu_count must all stay
 * below 255, the broadcast ID of xAPIC. */
#define MPTABLE_MAX_CPUS 254

/* 0, or -EINVAL with a message for 0 or more than MPTABLE_MAX_CPUS. */
int mptable_check_cpu_count(unsigned int cpu_count, char *err,
			    size_t err_len);

/* 0, -EINVAL for a CPU count mptable_check_cpu_count() refuses or an APIC
 * address of machine above 4 GiB, or -EFAULT when guest RAM does not
 * cover the table. */
int mptable_write(const struct guest_memory *memory,
		  const struct firmware_machine *machine,
		  unsigned int cpu_count);

#endif
