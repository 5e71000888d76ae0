/*
 * vessel's x86 machine: the port, interrupt line (GSI) and guest-physical
 * address of everything a guest finds at a fixed place. vm.c creates each
 * device at its place here, vmm/memory.c lays RAM around the PCI hole, and
 * machine_layout_firmware() hands firmware/ the same facts to describe in
 * its tables, so the map exists once: devices keep only register offsets
 * from their base, firmware/ only where it puts its own tables.
 *
 * The ISA devices sit where a PC has them, since Linux probes them there
 * without being told (the 8250 at COM1, the i8042, the CMOS RTC), and
 * their interrupts are the PC's ISA IRQs, which KVM's default routing and
 * the MP and ACPI tables map one to one onto GSIs.
 */
#ifndef VESSEL_VMM_MACHINE_LAYOUT_H
#define VESSEL_VMM_MACHINE_LAYOUT_H

#include "../firmware/machine.h"

/* Port I/O. */
#define LAYOUT_COM1_PORT 0x3f8 /* 8 ports */
#define LAYOUT_I8042_DATA_PORT 0x60
#define LAYOUT_I8042_COMMAND_PORT 0x64
#define LAYOUT_CMOS_RTC_PORT 0x70 /* index, then data */
#define LAYOUT_ACPI_PM1_EVENT_PORT 0x600
#define LAYOUT_ACPI_PM1_CONTROL_PORT 0x604
#define LAYOUT_PCI_CONFIG_PORT 0xcf8 /* address, then data at 0xcfc */

/* Interrupt lines, as ISA IRQ numbers (equal to their GSIs). The CMOS
 * RTC's IRQ 8 is wired to nothing: the RTC raises no interrupt. */
#define LAYOUT_COM1_GSI 4
#define LAYOUT_KEYBOARD_GSI 1
#define LAYOUT_MOUSE_GSI 12
#define LAYOUT_ACPI_SCI_GSI 9

/* The SLP_TYP value of soft off: the DSDT's \_S5 declares it and the PM1
 * control register acts on it. */
#define LAYOUT_ACPI_S5_SLEEP_TYPE 5

/* RAM from 0 to the PCI hole, then again above 4 GiB. */
#define LAYOUT_PCI_HOLE_START 0xc0000000ULL
#define LAYOUT_PCI_HOLE_END 0x100000000ULL
#define LAYOUT_IOAPIC_ADDRESS 0xfec00000ULL
#define LAYOUT_LAPIC_ADDRESS 0xfee00000ULL

/* The linear framebuffer of --display (devices/framebuffer.h): its own
 * memory, up to 16 MiB (2560x1600 at 32 bits per pixel), in the PCI hole
 * just below the I/O APIC. Not RAM: the e820 map leaves it out. */
#define LAYOUT_FRAMEBUFFER_ADDRESS 0xfd000000ULL
#define LAYOUT_FRAMEBUFFER_MAX_SIZE 0x1000000ULL

/* Where KVM may put the pages it needs for real-mode emulation on Intel
 * hosts: just below the BIOS ROM, inside the PCI hole (KVM API,
 * KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR). */
#define LAYOUT_KVM_TSS_ADDRESS 0xfffbd000ULL
#define LAYOUT_KVM_IDENTITY_MAP_ADDRESS 0xfffbc000ULL

/* The 32-bit window the PCI root bridge decodes for memory BARs (the DSDT's
 * _CRS): the PCI hole up to the framebuffer. Above it lie the framebuffer,
 * the I/O APIC, the local APIC and KVM's pages, none of which a BAR may
 * overlap. End exclusive. */
#define LAYOUT_PCI_MMIO_START LAYOUT_PCI_HOLE_START
#define LAYOUT_PCI_MMIO_END LAYOUT_FRAMEBUFFER_ADDRESS

_Static_assert(LAYOUT_FRAMEBUFFER_ADDRESS + LAYOUT_FRAMEBUFFER_MAX_SIZE <=
		       LAYOUT_IOAPIC_ADDRESS,
	       "the framebuffer overlaps the I/O APIC");

/* The machine as firmware/ describes it to the guest. */
const struct firmware_machine *machine_layout_firmware(void);

#endif
