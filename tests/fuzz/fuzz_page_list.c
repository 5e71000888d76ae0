/*
 * A diff snapshot's pages file (vmm/page_list.c): any bytes, read as the
 * list of an image of 1 GiB. An accepted list must be what the promise
 * says, strictly ascending numbers below the page count; a refusal must
 * say why in one line.
 *
 * Input: the file's bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/page_list.h"

#define PAGE_COUNT (1u << 18) /* 1 GiB of 4 KiB pages */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t *pages = NULL;
	size_t count = 0;
	char err[256] = "";
	int fd = memfd_create("pages", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) ||
	    lseek(fd, 0, SEEK_SET))
		abort();
	int result = page_list_read(fd, PAGE_COUNT, &pages, &count, err,
				    sizeof(err));
	close(fd);
	if (result) {
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	for (size_t i = 0; i < count; i++)
		if (pages[i] >= PAGE_COUNT || (i && pages[i] <= pages[i - 1]))
			abort();
	free(pages);
	return 0;
}
