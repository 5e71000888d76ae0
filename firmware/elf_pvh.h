/*
 * ELF kernels entered through the PVH boot ABI (Xen's docs/misc/pvh.pandoc):
 * 32-bit protected mode, paging off, EBX pointing at struct hvm_start_info.
 *
 * Promise: elf_pvh_parse() accepts a little-endian x86 ELF (64- or 32-bit)
 * only when its header, every program header and every PT_LOAD and PT_NOTE
 * range lie inside the file (checked without overflow), every PT_LOAD sits
 * between 1 MiB and 4 GiB with p_filesz <= p_memsz, and a "Xen" note of type
 * XEN_ELFNOTE_PHYS32_ENTRY gives an entry inside a PT_LOAD segment.
 * elf_pvh_load() copies each PT_LOAD to p_paddr and zeroes its bss.
 * pvh_start_info_write() puts hvm_start_info version 1 at
 * LAYOUT_PVH_START_INFO, with the initrd as module 0 and the e820 ranges as
 * its memory map.
 */
#ifndef VESSEL_FIRMWARE_ELF_PVH_H
#define VESSEL_FIRMWARE_ELF_PVH_H

#include <stddef.h>

#include "boot.h"
#include "boot_handoff.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578

/* Fills the PVH fields of image from image->data and image->size. */
int elf_pvh_parse(struct kernel_image *image, char *err, size_t err_len);

int elf_pvh_load(const struct kernel_image *image,
		 const struct guest_memory *memory, char *err, size_t err_len);

int pvh_start_info_write(const struct guest_memory *memory,
			 const struct boot_handoff *handoff, char *err,
			 size_t err_len);

#endif
