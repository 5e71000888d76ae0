/*
 * A linear framebuffer: guest-visible pixel memory the guest draws into
 * directly (no registers), in one of the packed-pixel true-colour formats a
 * VESA BIOS offers, and the arithmetic that turns a page-granular dirty
 * bitmap (KVM's dirty log of the framebuffer's memory slot) into the screen
 * rectangles to redraw.
 *
 * Promise: the pixels live in a memfd of their own, so the VMM can map it
 * into guest-physical space as its own memory slot and a display can read it
 * without a copy; framebuffer_dirty_rects() never reports anything outside
 * the visible screen, whatever bits the bitmap carries.
 */
#ifndef VESSEL_DEVICES_FRAMEBUFFER_H
#define VESSEL_DEVICES_FRAMEBUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "device.h"

/* The granularity of KVM's dirty log on x86: one bit per 4 KiB page. */
#define FRAMEBUFFER_PAGE_SIZE 4096

#define FRAMEBUFFER_MIN_WIDTH 320
#define FRAMEBUFFER_MIN_HEIGHT 200
#define FRAMEBUFFER_MAX_WIDTH 4096
#define FRAMEBUFFER_MAX_HEIGHT 4096

#define FRAMEBUFFER_DEFAULT_WIDTH 1024
#define FRAMEBUFFER_DEFAULT_HEIGHT 768
#define FRAMEBUFFER_DEFAULT_DEPTH 32

/* One colour channel of a pixel, counted from the pixel's least
 * significant bit (the pixel is little-endian in memory). */
struct framebuffer_channel {
	uint8_t size;
	uint8_t position;
};

/* The packed-pixel layouts of VBE's direct-colour modes:
 * 16 bits r5g6b5, 24 bits r8g8b8 (bytes B, G, R), 32 bits x8r8g8b8. */
struct framebuffer_format {
	uint8_t depth; /* bits per pixel: 16, 24 or 32 */
	struct framebuffer_channel red, green, blue, reserved;
};

struct framebuffer_mode {
	uint32_t width;
	uint32_t height;
	struct framebuffer_format format;
	uint32_t line_length; /* bytes per line: width * bytes per pixel */
	uint32_t size; /* bytes of memory: whole pages covering all lines */
};

/* Fills mode for a screen of width x height at depth bits per pixel:
 * 0, or -EINVAL for a depth other than 16, 24 or 32, a size outside the
 * FRAMEBUFFER_MIN/MAX bounds, or memory larger than max_size. */
int framebuffer_mode_init(struct framebuffer_mode *mode, uint32_t width,
			  uint32_t height, uint32_t depth, uint64_t max_size);

struct framebuffer {
	struct framebuffer_mode mode;
	int fd; /* memfd of mode.size bytes */
	uint8_t *pixels; /* its MAP_SHARED mapping */
};

/* Creates the memory of a framebuffer of the given mode, black. */
int framebuffer_create(struct framebuffer *framebuffer,
		       const struct framebuffer_mode *mode);
void framebuffer_destroy(struct framebuffer *framebuffer);

/* The framebuffer's mode and every byte of its memory, for a snapshot. */
int framebuffer_save(const struct framebuffer *framebuffer,
		     struct device_state_writer *writer);
/* The pixels of a saved framebuffer of the same mode: 0, or -EINVAL (a
 * saved mode other than this one, refused with both named) or -ENOENT,
 * with the pixels left as they were. */
int framebuffer_restore(struct framebuffer *framebuffer,
			struct device_state_reader *reader);

/* A rectangle of the screen, in pixels. */
struct framebuffer_rect {
	uint32_t x;
	uint32_t y;
	uint32_t width;
	uint32_t height;
};

/* The length of a dirty bitmap of mode's memory (below), in 64-bit
 * words. */
size_t framebuffer_dirty_bitmap_words(const struct framebuffer_mode *mode);

/* The rectangles to redraw after the pages whose bits are set in bitmap
 * (bit i of word i / 64 for the page at offset i * FRAMEBUFFER_PAGE_SIZE;
 * KVM's layout on x86_64) were written. Each run of dirty pages becomes
 * the pixels it covers: the exact span when it lies within one line, whole
 * lines otherwise; runs whose lines touch or overlap are merged. At most
 * max rectangles: past that, the rest is merged into the last. Returns
 * how many were written; 0 when nothing visible changed. */
unsigned int framebuffer_dirty_rects(const struct framebuffer_mode *mode,
				     const uint64_t *bitmap,
				     size_t page_count,
				     struct framebuffer_rect *rects,
				     unsigned int max);

#endif
