/*
 * The bzImage loader (firmware/bzimage.c, through firmware/boot.c): any
 * file given as --kernel that is not an ELF, parsed (setup header,
 * protocol, sizes), checked against a 64 MiB machine and loaded with an
 * initrd and a command line.
 *
 * Input: the file.
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *file;

	/* ELF files are the PVH target's. */
	if (size >= SELFMAG && !memcmp(data, ELFMAG, SELFMAG))
		return 0;
	file = malloc(size ? size : 1);
	if (!file)
		abort();
	memcpy(file, data, size);
	fuzz_boot_kernel(file, size);
	return 0;
}
