/*
 * The machine that firmware/ describes to a guest, handed in by its caller
 * (vmm/machine_layout.h fills it): the ports, interrupt line and address
 * ranges that the ACPI and MP tables and the boot checks speak of. firmware/
 * owns none of them, so it keeps no copy; what it does own is where its
 * own tables go in low memory (firmware/layout.h).
 *
 * Promise: a plain description, read only.
 */
#ifndef VESSEL_FIRMWARE_MACHINE_H
#define VESSEL_FIRMWARE_MACHINE_H

#include <stdint.h>

struct firmware_machine {
	uint64_t low_ram_end; /* RAM below 4 GiB ends here: the PCI hole */
	uint64_t ioapic_address;
	uint64_t lapic_address;
	/* The 32-bit window for memory BARs; end exclusive. */
	uint64_t pci_mmio_start;
	uint64_t pci_mmio_end;
	/* Configuration mechanism #1: the address port, then the data ports. */
	uint16_t pci_config_port;
	uint16_t pci_config_port_count;
	/* ACPI fixed hardware: the PM1a event and control blocks. */
	uint16_t pm1_event_port;
	uint8_t pm1_event_length;
	uint16_t pm1_control_port;
	uint8_t pm1_control_length;
	uint8_t sci_gsi;
	uint8_t s5_sleep_type; /* SLP_TYP of soft off, 0-7 */
};

#endif
