/*
 * Linux bzImage kernels through the 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, protocol 2.12 or later).
 *
 * Promise: bzimage_parse() accepts only a file whose setup header is wholly
 * inside it, carries the "HdrS" magic, declares protocol 2.12 or later with a
 * 64-bit entry (XLF_KERNEL_64), and whose setup_sects and syssize agree with
 * the file size; anything else is refused with one line naming the file and
 * the value. bzimage_load() copies the protected-mode kernel to
 * LAYOUT_HIGH_MEMORY_START and writes boot_params (the zero page) at
 * LAYOUT_ZERO_PAGE.
 */
#ifndef VESSEL_FIRMWARE_BZIMAGE_H
#define VESSEL_FIRMWARE_BZIMAGE_H

#include <stddef.h>

#include "boot.h"
#include "boot_handoff.h"

/* Oldest protocol with the 64-bit entry point vessel uses. */
#define BZIMAGE_MIN_PROTOCOL 0x020c
/* The 64-bit entry, startup_64, is this far into the protected-mode part. */
#define BZIMAGE_ENTRY_64_OFFSET 0x200

/* Fills the bzImage fields of image from image->data and image->size. */
int bzimage_parse(struct kernel_image *image, char *err, size_t err_len);

int bzimage_load(const struct kernel_image *image,
		 const struct guest_memory *memory,
		 const struct boot_handoff *handoff, char *err,
		 size_t err_len);

#endif
