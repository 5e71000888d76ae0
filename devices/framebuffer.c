#include "framebuffer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct framebuffer_format formats[] = {
	{ .depth = 16, .red = { 5, 11 }, .green = { 6, 5 }, .blue = { 5, 0 } },
	{ .depth = 24, .red = { 8, 16 }, .green = { 8, 8 }, .blue = { 8, 0 } },
	{ .depth = 32, .red = { 8, 16 }, .green = { 8, 8 }, .blue = { 8, 0 },
	  .reserved = { 8, 24 } },
};

int framebuffer_mode_init(struct framebuffer_mode *mode, uint32_t width,
			  uint32_t height, uint32_t depth, uint64_t max_size)
{
	const struct framebuffer_format *format = NULL;

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (formats[i].depth == depth)
			format = &formats[i];
	}
	if (!format || width < FRAMEBUFFER_MIN_WIDTH ||
	    width > FRAMEBUFFER_MAX_WIDTH || height < FRAMEBUFFER_MIN_HEIGHT ||
	    height > FRAMEBUFFER_MAX_HEIGHT)
		return -EINVAL;
	/* Both bounds keep every product below 2^27: no overflow. */
	uint32_t line_length = width * (depth / 8);
	uint64_t size = (uint64_t)line_length * height;

	size = (size + FRAMEBUFFER_PAGE_SIZE - 1) &
	       ~(uint64_t)(FRAMEBUFFER_PAGE_SIZE - 1);
	if (size > max_size)
		return -EINVAL;
	*mode = (struct framebuffer_mode){
		.width = width,
		.height = height,
		.format = *format,
		.line_length = line_length,
		.size = (uint32_t)size,
	};
	return 0;
}

int framebuffer_create(struct framebuffer *framebuffer,
		       const struct framebuffer_mode *mode)
{
	*framebuffer = (struct framebuffer){ .mode = *mode, .fd = -1 };
	framebuffer->fd = memfd_create("vessel-framebuffer", MFD_CLOEXEC);
	if (framebuffer->fd < 0)
		return -errno;
	if (ftruncate(framebuffer->fd, mode->size)) {
		int saved = errno;
		framebuffer_destroy(framebuffer);
		return -saved;
	}
	void *pixels = mmap(NULL, mode->size, PROT_READ | PROT_WRITE,
			    MAP_SHARED, framebuffer->fd, 0);
	if (pixels == MAP_FAILED) {
		int saved = errno;
		framebuffer_destroy(framebuffer);
		return -saved;
	}
	framebuffer->pixels = pixels;
	return 0;
}

void framebuffer_destroy(struct framebuffer *framebuffer)
{
	if (framebuffer->pixels)
		munmap(framebuffer->pixels, framebuffer->mode.size);
	if (framebuffer->fd >= 0)
		close(framebuffer->fd);
	framebuffer->pixels = NULL;
	framebuffer->fd = -1;
}

/* What a saved framebuffer is: a mode's numbers and its memory. */
#define SAVED_MODE_FIELDS 4
static const char *const saved_mode_names[SAVED_MODE_FIELDS] = {
	"width", "height", "depth", "line-length",
};

static void mode_fields(const struct framebuffer_mode *mode,
			uint64_t fields[SAVED_MODE_FIELDS])
{
	fields[0] = mode->width;
	fields[1] = mode->height;
	fields[2] = mode->format.depth;
	fields[3] = mode->line_length;
}

int framebuffer_save(const struct framebuffer *framebuffer,
		     struct device_state_writer *writer)
{
	uint64_t fields[SAVED_MODE_FIELDS];
	int result = 0;

	mode_fields(&framebuffer->mode, fields);
	for (int i = 0; i < SAVED_MODE_FIELDS && !result; i++)
		result = writer->put_u64(writer, saved_mode_names[i], fields[i]);
	if (!result)
		result = writer->put_bytes(writer, "pixels", framebuffer->pixels,
					   framebuffer->mode.size);
	return result;
}

int framebuffer_restore(struct framebuffer *framebuffer,
			struct device_state_reader *reader)
{
	uint64_t own[SAVED_MODE_FIELDS], saved[SAVED_MODE_FIELDS];
	int result = 0;

	mode_fields(&framebuffer->mode, own);
	for (int i = 0; i < SAVED_MODE_FIELDS && !result; i++)
		result = reader->get_u64(reader, saved_mode_names[i], &saved[i]);
	if (result)
		return result;
	if (memcmp(own, saved, sizeof(own))) {
		char reason[200];
		snprintf(reason, sizeof(reason),
			 "the snapshot's screen is %llux%llu at %llu bits per pixel, %llu bytes a line; this display's is %llux%llu at %llu, %llu bytes a line",
			 (unsigned long long)saved[0],
			 (unsigned long long)saved[1],
			 (unsigned long long)saved[2],
			 (unsigned long long)saved[3],
			 (unsigned long long)own[0], (unsigned long long)own[1],
			 (unsigned long long)own[2], (unsigned long long)own[3]);
		return reader->refuse(reader, reason);
	}
	/* The same mode, so the same size: get_bytes checks it before it
	 * writes a byte. */
	return reader->get_bytes(reader, "pixels", framebuffer->pixels,
				 framebuffer->mode.size);
}

size_t framebuffer_dirty_bitmap_words(const struct framebuffer_mode *mode)
{
	return (mode->size / FRAMEBUFFER_PAGE_SIZE + 63) / 64;
}

static bool page_dirty(const uint64_t *bitmap, size_t page)
{
	return bitmap[page / 64] & (1ULL << (page % 64));
}

/* The pixels that bytes [start, end) of the visible screen hold. */
static struct framebuffer_rect byte_range_rect(const struct framebuffer_mode *mode,
					       uint64_t start, uint64_t end)
{
	uint32_t bytes_per_pixel = mode->format.depth / 8;
	uint32_t first_line = (uint32_t)(start / mode->line_length);
	uint32_t last_line = (uint32_t)((end - 1) / mode->line_length);

	if (first_line != last_line)
		return (struct framebuffer_rect){
			.y = first_line,
			.width = mode->width,
			.height = last_line - first_line + 1,
		};
	uint32_t first = (uint32_t)(start % mode->line_length) / bytes_per_pixel;
	uint32_t last = (uint32_t)((end - 1) % mode->line_length) /
			bytes_per_pixel;
	return (struct framebuffer_rect){
		.x = first,
		.y = first_line,
		.width = last - first + 1,
		.height = 1,
	};
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Grows into to cover from as well. */
static void rect_union(struct framebuffer_rect *into,
		       const struct framebuffer_rect *from)
{
	uint32_t left = min_u32(into->x, from->x);
	uint32_t top = min_u32(into->y, from->y);
	uint32_t right = max_u32(into->x + into->width, from->x + from->width);
	uint32_t bottom = max_u32(into->y + into->height,
				  from->y + from->height);

	*into = (struct framebuffer_rect){ left, top, right - left,
					   bottom - top };
}

unsigned int framebuffer_dirty_rects(const struct framebuffer_mode *mode,
				     const uint64_t *bitmap,
				     size_t page_count,
				     struct framebuffer_rect *rects,
				     unsigned int max)
{
	uint64_t visible = (uint64_t)mode->line_length * mode->height;
	size_t visible_pages = (visible + FRAMEBUFFER_PAGE_SIZE - 1) /
			       FRAMEBUFFER_PAGE_SIZE;
	unsigned int count = 0;

	if (max == 0)
		return 0;
	if (page_count > visible_pages)
		page_count = visible_pages;
	for (size_t page = 0; page < page_count;) {
		if (!page_dirty(bitmap, page)) {
			page++;
			continue;
		}
		size_t run_end = page + 1;
		while (run_end < page_count && page_dirty(bitmap, run_end))
			run_end++;
		uint64_t start = (uint64_t)page * FRAMEBUFFER_PAGE_SIZE;
		uint64_t end = (uint64_t)run_end * FRAMEBUFFER_PAGE_SIZE;
		struct framebuffer_rect rect =
			byte_range_rect(mode, start, end < visible ? end : visible);

		page = run_end;
		/* Runs arrive in address order, so only the last rectangle
		 * can touch this one. */
		if (count > 0 &&
		    (rect.y <= rects[count - 1].y + rects[count - 1].height ||
		     count == max)) {
			rect_union(&rects[count - 1], &rect);
			continue;
		}
		rects[count++] = rect;
	}
	return count;
}
