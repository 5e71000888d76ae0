/*
 * The PVH ELF loader (firmware/elf_pvh.c, through firmware/boot.c): any
 * ELF file given as --kernel, parsed (ELF and program headers, PT_LOAD
 * and PT_NOTE ranges, the Xen PHYS32_ENTRY note), checked against a
 * 64 MiB machine and loaded with an initrd and a command line, which
 * writes the hvm_start_info.
 *
 * Input: the file after its ELF magic (which the target puts in front).
 */
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *file = malloc(SELFMAG + size);

	if (!file)
		abort();
	memcpy(file, ELFMAG, SELFMAG);
	memcpy(file + SELFMAG, data, size);
	fuzz_boot_kernel(file, SELFMAG + size);
	return 0;
}
