/*
 * The boot vCPU's view of memory at kernel entry: a flat GDT, identity page
 * tables for long mode, and the register state of both entry protocols.
 *
 * Promise: boot_gdt_write() puts at LAYOUT_BOOT_GDT flat 4 GiB descriptors
 * with the selectors the Linux 64-bit boot protocol names (__BOOT_CS 0x10,
 * __BOOT_DS 0x18) plus a 32-bit code selector for PVH.
 * boot_page_tables_write() identity-maps the first 4 GiB with 2 MiB pages
 * from LAYOUT_PAGE_TABLES (PML4, PDPT, four page directories).
 * boot_entry_registers() (declared in boot.h) loads exactly these.
 */
#ifndef VESSEL_FIRMWARE_BOOT_CPU_H
#define VESSEL_FIRMWARE_BOOT_CPU_H

#include "../devices/guest_memory.h"

#define BOOT_GDT_CODE32_SELECTOR 0x08
#define BOOT_GDT_CODE64_SELECTOR 0x10
#define BOOT_GDT_DATA_SELECTOR 0x18
#define BOOT_GDT_ENTRIES 4

/* Both return 0, or -EFAULT when guest RAM does not cover the table. */
int boot_gdt_write(const struct guest_memory *memory);
int boot_page_tables_write(const struct guest_memory *memory);

#endif
