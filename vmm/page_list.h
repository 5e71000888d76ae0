/*
 * The pages file of a diff snapshot (docs/snapshot.md): the page numbers
 * of the memory image the diff holds, each a 64-bit little-endian number,
 * in strictly ascending order. It tells a page written since the base
 * that is now zero (listed, a hole in the diff's memory file) from a page
 * not written since (not listed: the base's).
 *
 * Promise: page_list_read accepts only a whole list of ascending numbers
 * below the image's page count, and refuses anything else with one line.
 */
#ifndef VESSEL_VMM_PAGE_LIST_H
#define VESSEL_VMM_PAGE_LIST_H

#include <stddef.h>
#include <stdint.h>

/* The numbers of the bits set in bitmap (words long), ascending, into a
 * new array (NULL and *count 0 when none): 0 or -ENOMEM. */
int page_list_from_bitmap(const uint64_t *bitmap, size_t words,
			  uint64_t **pages, size_t *count);
/* Writes pages as the file's contents into fd. 0 or -errno. */
int page_list_write(int fd, const uint64_t *pages, size_t count);
/* Reads and checks the list in fd for an image of page_count pages: 0, or
 * -errno with err naming what is wrong. *pages is the caller's to free. */
int page_list_read(int fd, uint64_t page_count, uint64_t **pages,
		   size_t *count, char *err, size_t err_len);

#endif
