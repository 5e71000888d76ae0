#include "page_list.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_SIZE sizeof(uint64_t)

int page_list_from_bitmap(const uint64_t *bitmap, size_t words,
			  uint64_t **pages, size_t *count)
{
	size_t total = 0;

	for (size_t word = 0; word < words; word++)
		total += (size_t)__builtin_popcountll(bitmap[word]);
	*pages = NULL;
	*count = 0;
	if (!total)
		return 0;
	*pages = malloc(total * sizeof(**pages));
	if (!*pages)
		return -ENOMEM;
	for (size_t word = 0; word < words; word++)
		for (uint64_t bits = bitmap[word]; bits; bits &= bits - 1)
			(*pages)[(*count)++] = (uint64_t)word * 64 +
					       (uint64_t)__builtin_ctzll(bits);
	return 0;
}

int page_list_write(int fd, const uint64_t *pages, size_t count)
{
	uint64_t chunk[512];
	size_t done = 0;

	while (done < count) {
		size_t n = count - done < 512 ? count - done : 512;
		for (size_t i = 0; i < n; i++)
			chunk[i] = htole64(pages[done + i]);
		const uint8_t *bytes = (const uint8_t *)chunk;
		size_t left = n * ENTRY_SIZE;
		while (left) {
			ssize_t written = write(fd, bytes, left);
			if (written < 0 && errno == EINTR)
				continue;
			if (written < 0)
				return -errno;
			bytes += written;
			left -= (size_t)written;
		}
		done += n;
	}
	return 0;
}

int page_list_read(int fd, uint64_t page_count, uint64_t **pages,
		   size_t *count, char *err, size_t err_len)
{
	struct stat info;

	*pages = NULL;
	*count = 0;
	if (fstat(fd, &info)) {
		snprintf(err, err_len, "%s", strerror(errno));
		return -errno;
	}
	uint64_t size = (uint64_t)info.st_size;
	if (!S_ISREG(info.st_mode) || size % ENTRY_SIZE) {
		snprintf(err, err_len, "%" PRIu64 " bytes, not a whole number of "
			 "8-byte page numbers (cut short?)", size);
		return -EINVAL;
	}
	if (size / ENTRY_SIZE > page_count) {
		snprintf(err, err_len, "%" PRIu64 " pages listed; guest RAM has "
			 "%" PRIu64, size / ENTRY_SIZE, page_count);
		return -EINVAL;
	}
	size_t entries = (size_t)(size / ENTRY_SIZE);
	uint64_t *list = entries ? malloc(entries * ENTRY_SIZE) : NULL;
	if (entries && !list) {
		snprintf(err, err_len, "out of memory for %zu page numbers",
			 entries);
		return -ENOMEM;
	}
	for (size_t got = 0; got < (size_t)size;) {
		ssize_t n = pread(fd, (uint8_t *)list + got, (size_t)size - got,
				  (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, err_len, "cannot be read in full");
			free(list);
			return -EIO;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < entries; i++) {
		list[i] = le64toh(list[i]);
		if (list[i] >= page_count) {
			snprintf(err, err_len, "page %" PRIu64 " is beyond guest "
				 "RAM's %" PRIu64 " pages", list[i], page_count);
			free(list);
			return -EINVAL;
		}
		if (i && list[i] <= list[i - 1]) {
			snprintf(err, err_len, "page %" PRIu64 " follows page %"
				 PRIu64 ": the list is not in ascending order",
				 list[i], list[i - 1]);
			free(list);
			return -EINVAL;
		}
	}
	*pages = list;
	*count = entries;
	return 0;
}
