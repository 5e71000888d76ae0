/*
 * What a kernel is told at entry about where vessel put things, whichever
 * protocol tells it (bzImage boot_params or PVH start info).
 *
 * Promise: a plain description filled by boot.c; every address in it lies in
 * guest RAM that boot_load() has already written.
 */
#ifndef VESSEL_FIRMWARE_BOOT_HANDOFF_H
#define VESSEL_FIRMWARE_BOOT_HANDOFF_H

#include <stdint.h>

#include "e820.h"
#include "screen_info.h"

struct boot_handoff {
	uint64_t cmdline_address;
	uint64_t initrd_address; /* 0 without an initrd */
	uint64_t initrd_size;
	uint64_t rsdp_address;
	const struct e820_table *e820;
	const struct boot_framebuffer *framebuffer; /* NULL without one */
};

#endif
