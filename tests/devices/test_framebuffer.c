/* The framebuffer's modes and the rectangles a dirty-page bitmap asks the
 * display to redraw. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/framebuffer.h"

#define MAX_SIZE (16u << 20)
#define PAGE FRAMEBUFFER_PAGE_SIZE

static struct framebuffer_mode mode_of(uint32_t width, uint32_t height,
				       uint32_t depth)
{
	struct framebuffer_mode mode;

	cr_assert_eq(framebuffer_mode_init(&mode, width, height, depth,
					   MAX_SIZE), 0);
	return mode;
}

static void set_page(uint64_t *bitmap, size_t page)
{
	bitmap[page / 64] |= 1ULL << (page % 64);
}

static void expect_rect(const struct framebuffer_rect *rect, uint32_t x,
			uint32_t y, uint32_t width, uint32_t height)
{
	cr_expect_eq(rect->x, x, "x %u, want %u", rect->x, x);
	cr_expect_eq(rect->y, y, "y %u, want %u", rect->y, y);
	cr_expect_eq(rect->width, width, "width %u, want %u", rect->width, width);
	cr_expect_eq(rect->height, height, "height %u, want %u", rect->height,
		     height);
}

Test(framebuffer, default_mode_is_xrgb8888)
{
	struct framebuffer_mode mode = mode_of(1024, 768, 32);

	cr_expect_eq(mode.line_length, 4096);
	cr_expect_eq(mode.size, 3u << 20);
	cr_expect_eq(mode.format.red.position, 16);
	cr_expect_eq(mode.format.green.position, 8);
	cr_expect_eq(mode.format.blue.position, 0);
	cr_expect_eq(mode.format.reserved.size, 8);
}

Test(framebuffer, sixteen_and_twenty_four_bit_modes)
{
	struct framebuffer_mode mode = mode_of(800, 600, 16);

	cr_expect_eq(mode.line_length, 1600);
	cr_expect_eq(mode.format.red.size, 5);
	cr_expect_eq(mode.format.red.position, 11);
	cr_expect_eq(mode.format.green.size, 6);
	cr_expect_eq(mode.size % PAGE, 0, "whole pages");
	mode = mode_of(640, 480, 24);
	cr_expect_eq(mode.line_length, 1920);
	cr_expect_eq(mode.format.reserved.size, 0);
}

Test(framebuffer, refuses_bad_modes)
{
	struct framebuffer_mode mode;

	cr_expect_eq(framebuffer_mode_init(&mode, 1024, 768, 8, MAX_SIZE), -EINVAL);
	cr_expect_eq(framebuffer_mode_init(&mode, 1024, 768, 15, MAX_SIZE), -EINVAL);
	cr_expect_eq(framebuffer_mode_init(&mode, 100, 768, 32, MAX_SIZE), -EINVAL);
	cr_expect_eq(framebuffer_mode_init(&mode, 1024, 5000, 32, MAX_SIZE), -EINVAL);
	cr_expect_eq(framebuffer_mode_init(&mode, 4096, 4096, 32, MAX_SIZE), -EINVAL,
		     "64 MiB does not fit in 16");
	cr_expect_eq(framebuffer_mode_init(&mode, 2560, 1600, 32, MAX_SIZE), 0);
}

Test(framebuffer, memory_is_shared_and_black)
{
	struct framebuffer_mode mode = mode_of(640, 480, 32);
	struct framebuffer framebuffer;
	uint8_t byte;

	cr_assert_eq(framebuffer_create(&framebuffer, &mode), 0);
	cr_expect_eq(framebuffer.pixels[mode.size - 1], 0);
	framebuffer.pixels[12345] = 0x5a;
	cr_assert_eq(pread(framebuffer.fd, &byte, 1, 12345), 1);
	cr_expect_eq(byte, 0x5a, "the memfd sees what the mapping holds");
	framebuffer_destroy(&framebuffer);
	cr_expect_null(framebuffer.pixels);
}

Test(framebuffer, clean_bitmap_redraws_nothing)
{
	struct framebuffer_mode mode = mode_of(1024, 768, 32);
	uint64_t bitmap[12] = {0};
	struct framebuffer_rect rects[4];

	cr_expect_eq(framebuffer_dirty_rects(&mode, bitmap, 768, rects, 4), 0);
}

Test(framebuffer, one_page_per_line_gives_whole_lines)
{
	/* 1024 x 4 bytes: page n is line n. */
	struct framebuffer_mode mode = mode_of(1024, 768, 32);
	uint64_t bitmap[12] = {0};
	struct framebuffer_rect rects[4];

	set_page(bitmap, 10);
	set_page(bitmap, 11);
	set_page(bitmap, 12);
	set_page(bitmap, 700);
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 768, rects, 4), 2);
	/* A run within one line is that line's span: here the whole line. */
	expect_rect(&rects[0], 0, 10, 1024, 3);
	expect_rect(&rects[1], 0, 700, 1024, 1);
}

Test(framebuffer, page_inside_a_long_line_is_its_exact_span)
{
	/* 1920 x 4 = 7680 bytes a line, so a page is part of a line or
	 * straddles two. */
	struct framebuffer_mode mode = mode_of(1920, 1080, 32);
	uint64_t bitmap[32] = {0};
	struct framebuffer_rect rects[4];

	set_page(bitmap, 0); /* bytes 0-4095: line 0, pixels 0-1023 */
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 2025, rects, 4), 1);
	expect_rect(&rects[0], 0, 0, 1024, 1);

	memset(bitmap, 0, sizeof(bitmap));
	set_page(bitmap, 20); /* bytes 81920-86015: line 10, pixels 1280-1919
			       * and line 11 pixels 0-383: two lines */
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 2025, rects, 4), 1);
	expect_rect(&rects[0], 0, 10, 1920, 2);
}

Test(framebuffer, runs_on_touching_lines_merge)
{
	struct framebuffer_mode mode = mode_of(1920, 1080, 32);
	uint64_t bitmap[32] = {0};
	struct framebuffer_rect rects[4];

	/* Pages 0 and 2: line 0 pixels 0-1023, then bytes 8192-12287, line 1
	 * pixels 128-1151. Different runs, adjacent lines: one rectangle. */
	set_page(bitmap, 0);
	set_page(bitmap, 2);
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 2025, rects, 4), 1);
	expect_rect(&rects[0], 0, 0, 1152, 2);
}

Test(framebuffer, overflowing_rectangles_merge_into_the_last)
{
	struct framebuffer_mode mode = mode_of(1024, 768, 32);
	uint64_t bitmap[12] = {0};
	struct framebuffer_rect rects[2];

	set_page(bitmap, 0);
	set_page(bitmap, 100);
	set_page(bitmap, 200);
	set_page(bitmap, 300);
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 768, rects, 2), 2);
	expect_rect(&rects[0], 0, 0, 1024, 1);
	expect_rect(&rects[1], 0, 100, 1024, 201);
}

Test(framebuffer, bits_beyond_the_screen_are_ignored)
{
	/* 800x600x16: 960000 bytes, 235 pages (the last one partly). */
	struct framebuffer_mode mode = mode_of(800, 600, 16);
	uint64_t bitmap[8];
	struct framebuffer_rect rects[4];

	memset(bitmap, 0, sizeof(bitmap));
	for (size_t page = 235; page < 512; page++)
		set_page(bitmap, page);
	cr_expect_eq(framebuffer_dirty_rects(&mode, bitmap, 512, rects, 4), 0);
	set_page(bitmap, 234); /* bytes 958464-962559: the screen ends at 960000 */
	cr_assert_eq(framebuffer_dirty_rects(&mode, bitmap, 512, rects, 4), 1);
	/* Line 599 starts at 958400: pixels 32-799. */
	expect_rect(&rects[0], 32, 599, 768, 1);
}

Test(framebuffer, dirty_bitmap_has_a_bit_for_every_page)
{
	struct framebuffer_mode mode = mode_of(1024, 768, 32); /* 768 pages */

	cr_assert_eq(framebuffer_dirty_bitmap_words(&mode), 12);
	mode = mode_of(800, 600, 16); /* 960000 bytes: 235 pages */
	cr_assert_eq(framebuffer_dirty_bitmap_words(&mode), 4);
}
