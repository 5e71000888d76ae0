/*
 * Where firmware/ puts what it hands a guest in low memory: its tables, the
 * boot stack and page tables, the command line, and the kernel at 1 MiB.
 * These stay here, not in the machine's layout (vmm/machine_layout.h),
 * because firmware alone chooses them and the guest learns each one from
 * firmware itself (boot_params, the RSDP scan, the MP floating pointer);
 * no device answers at them and vmm/ never needs them.
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

/* The kernel's protected-mode part, where the boot protocol loads it. */
#define LAYOUT_HIGH_MEMORY_START 0x100000ULL

#endif
