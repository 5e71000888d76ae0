/*
 * The pages file of a diff snapshot: written from a dirty bitmap, read
 * back, and each kind of damage refused with one line.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../vmm/page_list.h"

#define PAGE_COUNT 1000u

static int list_file(const void *data, size_t size)
{
	FILE *file = tmpfile();

	cr_assert_not_null(file);
	int fd = dup(fileno(file));
	fclose(file);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	return fd;
}

/* page_list_read of the little-endian numbers given: its result, err. */
static int read_list(const uint64_t *numbers, size_t count, size_t cut,
		     char *err, size_t err_len)
{
	uint64_t raw[16];
	uint64_t *pages = NULL;
	size_t found;

	for (size_t i = 0; i < count; i++)
		raw[i] = htole64(numbers[i]);
	int fd = list_file(raw, count * 8 - cut);
	int result = page_list_read(fd, PAGE_COUNT, &pages, &found, err, err_len);
	close(fd);
	free(pages);
	return result;
}

Test(page_list, a_bitmap_goes_to_the_file_and_back_in_order)
{
	uint64_t bitmap[16] = { 0 };
	uint64_t *pages, *read;
	size_t count, read_count;
	char err[256];

	bitmap[0] = 1ull << 3 | 1ull << 63;
	bitmap[1] = 1;
	bitmap[15] = 1ull << 39; /* page 999, the last */
	cr_assert_eq(page_list_from_bitmap(bitmap, 16, &pages, &count), 0);
	cr_assert_eq(count, 4);
	cr_assert_eq(pages[0], 3);
	cr_assert_eq(pages[1], 63);
	cr_assert_eq(pages[2], 64);
	cr_assert_eq(pages[3], 999);
	FILE *file = tmpfile();
	int fd = fileno(file);
	cr_assert_eq(page_list_write(fd, pages, count), 0);
	cr_assert_eq(page_list_read(fd, PAGE_COUNT, &read, &read_count, err,
				    sizeof(err)), 0, "%s", err);
	cr_assert_eq(read_count, count);
	cr_assert_arr_eq(read, pages, count * sizeof(*pages));
	fclose(file);
	free(pages);
	free(read);
}

Test(page_list, none_written_is_an_empty_list)
{
	uint64_t bitmap[4] = { 0 };
	uint64_t *pages;
	size_t count;
	char err[256];

	cr_assert_eq(page_list_from_bitmap(bitmap, 4, &pages, &count), 0);
	cr_assert_eq(count, 0);
	cr_assert_null(pages);
	cr_assert_eq(read_list(NULL, 0, 0, err, sizeof(err)), 0, "%s", err);
}

Test(page_list, damage_is_refused_naming_it)
{
	char err[256];

	cr_assert_eq(read_list((uint64_t[]){ 1, 2, 3 }, 3, 3, err, sizeof(err)),
		     -EINVAL);
	cr_assert_str_eq(err, "21 bytes, not a whole number of 8-byte page "
			 "numbers (cut short?)");
	cr_assert_eq(read_list((uint64_t[]){ 1, PAGE_COUNT }, 2, 0, err,
			       sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "page 1000 is beyond guest RAM's 1000 pages");
	cr_assert_eq(read_list((uint64_t[]){ 1, 7, 5 }, 3, 0, err, sizeof(err)),
		     -EINVAL);
	cr_assert_str_eq(err, "page 5 follows page 7: the list is not in "
			 "ascending order");
	cr_assert_eq(read_list((uint64_t[]){ 4, 4 }, 2, 0, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "not in ascending order"), "%s", err);
	cr_assert_eq(read_list((uint64_t[]){ ~0ull }, 1, 0, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "is beyond guest RAM"), "%s", err);
}
