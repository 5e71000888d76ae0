/*
 * The kernel loaders' path for the fuzz targets of bzImage and PVH ELF
 * files: what vessel does with a --kernel file, from parsing to the
 * guest's memory and registers.
 *
 * Promise: a file the parser accepts is checked against the machine and,
 * when it fits, loaded into a fake guest RAM of FUZZ_BOOT_RAM_SIZE,
 * allocated once per process.
 */
#ifndef VESSEL_TESTS_FUZZ_FUZZ_BOOT_H
#define VESSEL_TESTS_FUZZ_FUZZ_BOOT_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_BOOT_RAM_SIZE (64u << 20)

/* Parses, checks and loads the size bytes of file (malloc'd; taken). */
void fuzz_boot_kernel(uint8_t *file, size_t size);

#endif
