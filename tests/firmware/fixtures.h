/*
 * Shared inputs for the firmware tests: guest memory backed by calloc, and
 * synthetic kernel files (a minimal bzImage, a minimal PVH ELF) whose fields
 * each test can patch.
 */
#ifndef VESSEL_TESTS_FIRMWARE_FIXTURES_H
#define VESSEL_TESTS_FIRMWARE_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../devices/guest_memory.h"
#include "../../vmm/machine_layout.h" /* vessel's machine, for the tables */

#define MIB (1ULL << 20)

/* One region of size bytes at guest-physical 0, zero-filled. */
void fixture_memory_create(struct guest_memory *memory, uint64_t size);
void fixture_memory_destroy(struct guest_memory *memory);

/* A bzImage: protocol 2.15, 64-bit entry, 4 setup sectors, a 64 KiB
 * protected-mode part filled with fixture_kernel_byte(), init_size 8 MiB,
 * pref_address 16 MiB, initrd_addr_max 0x7fffffff, cmdline_size 2047. */
#define FIXTURE_BZIMAGE_SETUP_SIZE (5 * 512)
#define FIXTURE_BZIMAGE_KERNEL_SIZE 0x10000
#define FIXTURE_BZIMAGE_SIZE                                                  \
	(FIXTURE_BZIMAGE_SETUP_SIZE + FIXTURE_BZIMAGE_KERNEL_SIZE)
#define FIXTURE_BZIMAGE_KERNEL_END (16 * MIB + 8 * MIB)
uint8_t *fixture_bzimage(void); /* malloc'd, FIXTURE_BZIMAGE_SIZE bytes */
uint8_t fixture_kernel_byte(size_t offset);

/* A PVH ELF: one PT_LOAD and one PT_NOTE carrying the Xen PHYS32_ENTRY
 * note. The defaults give a valid 64-bit kernel; tests change fields. */
struct fixture_elf {
	bool is64;
	bool with_note;
	uint32_t note_desc_size; /* 4 or 8 */
	uint64_t load_paddr;
	uint64_t load_offset;
	uint64_t load_filesz;
	uint64_t load_memsz;
	uint64_t entry;
	uint64_t phoff;
	uint16_t phnum;
};
#define FIXTURE_ELF_LOAD_OFFSET 0x1000
#define FIXTURE_ELF_FILESZ 0x100
#define FIXTURE_ELF_SIZE (FIXTURE_ELF_LOAD_OFFSET + FIXTURE_ELF_FILESZ)
struct fixture_elf fixture_elf_defaults(bool is64);
/* malloc'd, FIXTURE_ELF_SIZE bytes; segment bytes are fixture_kernel_byte. */
uint8_t *fixture_elf_build(const struct fixture_elf *elf);

/* Finds needle in haystack; NULL without a match. */
const uint8_t *fixture_find(const uint8_t *haystack, size_t haystack_size,
			    const void *needle, size_t needle_size);
uint8_t fixture_byte_sum(const uint8_t *bytes, size_t length);

#endif
