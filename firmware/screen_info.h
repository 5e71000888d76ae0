/*
 * The screen a bzImage kernel finds at entry: boot_params.screen_info
 * (include/uapi/linux/screen_info.h, the first 0x40 bytes of the zero
 * page) describing a VESA linear framebuffer, as a BIOS's VBE mode set
 * would leave it. Linux's sysfb turns it into a "vesa-framebuffer" device
 * that the built-in vesafb drives, so a stock kernel has a text console on
 * it from the first line of boot, with no module and no vga= option.
 *
 * Promise: screen_info_write() fills every field vesafb and fbcon read and
 * leaves the text-mode fields zero, so neither the decompressor nor vgacon
 * touches VGA text memory.
 */
#ifndef VESSEL_FIRMWARE_SCREEN_INFO_H
#define VESSEL_FIRMWARE_SCREEN_INFO_H

#include <stdint.h>

#define SCREEN_INFO_SIZE 0x40

/* One colour channel of a pixel: its width and lowest bit. */
struct boot_pixel_channel {
	uint8_t size;
	uint8_t position;
};

/* A linear framebuffer in guest-physical memory below 4 GiB. */
struct boot_framebuffer {
	uint32_t address;
	uint32_t size; /* bytes of framebuffer memory, at least height * line */
	uint16_t width;
	uint16_t height;
	uint16_t depth; /* bits per pixel */
	uint16_t line_length; /* bytes from one line to the next */
	struct boot_pixel_channel red, green, blue, reserved;
};

/* Writes the VESA linear framebuffer description into screen_info, the
 * SCREEN_INFO_SIZE bytes at the start of boot_params. */
void screen_info_write(uint8_t *screen_info,
		       const struct boot_framebuffer *framebuffer);

#endif
