/*
 * The guest-physical and port map of vessel's x86 machine: where firmware
 * puts its tables and where RAM, the PCI hole and the interrupt controllers
 * sit. vmm/ wires devices at these places and firmware/ describes them to
 * the guest, so both read them from here.
 */
#ifndef VESSEL_FIRMWARE_LAYOUT_H
#define VESSEL_FIRMWARE_LAYOUT_H

/* Low memory, below 1 MiB. */
#define LAYOUT_BOOT_GDT 0x500
#define LAYOUT_PVH_START_INFO 0x6000
#define LAYOUT_ZERO_PAGE 0x7000 /* Linux boot_params */
#define LAYOUT_BOOT_STACK 0x8ff0
#define LAYOUT_PAGE_TABLES 0x9000 /* PML4, PDPT, then 4 PDs: 0x9000-0xefff */
#define LAYOUT_CMDLINE 0x20000
#define LAYOUT_CMDLINE_MAX 0x10000 /* vessel's own ceiling, incl. the NUL */
#define LAYOUT_EBDA_START 0x9fc00 /* MP table lives here; reserved to 1 MiB */
#define LAYOUT_ACPI_TABLES 0xe0000 /* RSDP found here by the 0xe0000 scan */
#define LAYOUT_BIOS_END 0x100000

/* RAM from 1 MiB to the PCI hole, then again above 4 GiB. */
#define LAYOUT_HIGH_MEMORY_START 0x100000ULL
#define LAYOUT_PCI_HOLE_START 0xc0000000ULL
#define LAYOUT_PCI_HOLE_END 0x100000000ULL
#define LAYOUT_IOAPIC_ADDRESS 0xfec00000ULL
#define LAYOUT_LAPIC_ADDRESS 0xfee00000ULL

/* The linear framebuffer of --display (devices/framebuffer.h): its own
 * memory, up to 16 MiB (2560x1600 at 32 bits per pixel), in the PCI hole
 * just below the I/O APIC. Not RAM: the e820 map leaves it out. */
#define LAYOUT_FRAMEBUFFER_ADDRESS 0xfd000000ULL
#define LAYOUT_FRAMEBUFFER_MAX_SIZE 0x1000000ULL

/* The 32-bit window the PCI root bridge decodes for memory BARs (the DSDT's
 * _CRS): the PCI hole up to the framebuffer. Above it lie the framebuffer,
 * the I/O APIC, the local APIC and the pages KVM keeps for its TSS and
 * identity map from 0xfffbc000 (vmm/vm.c), none of which a BAR may
 * overlap. End exclusive. */
#define LAYOUT_PCI_MMIO_START LAYOUT_PCI_HOLE_START
#define LAYOUT_PCI_MMIO_END LAYOUT_FRAMEBUFFER_ADDRESS

/* Ports of the ACPI fixed hardware (devices/acpi_pm.h). */
#define LAYOUT_ACPI_PM1_EVENT_PORT 0x600
#define LAYOUT_ACPI_PM1_CONTROL_PORT 0x604
/* The SLP_TYP value the DSDT's \_S5 package declares for soft off. */
#define LAYOUT_ACPI_S5_SLEEP_TYPE 5
#define LAYOUT_ACPI_SCI_GSI 9

#endif
