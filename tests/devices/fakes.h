/*
 * Test doubles shared by the device tests: an interrupt line that records
 * every level it is given, port-I/O helpers that go through a real struct
 * bus and fail the test when no device claims the port, fake guest RAM
 * accessors, and a look at a disk test's image file.
 */
#ifndef VESSEL_TESTS_DEVICES_FAKES_H
#define VESSEL_TESTS_DEVICES_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "devices/bus.h"
#include "devices/guest_memory.h"
#include "devices/irq_line.h"

#define IRQ_RECORDER_HISTORY 64

struct irq_recorder {
	unsigned int calls; /* set_level calls, one per level change */
	bool level;
	bool history[IRQ_RECORDER_HISTORY];
	uint32_t last_gsi;
};

struct irq_line irq_recorder_line(struct irq_recorder *recorder, uint32_t gsi);

uint8_t port_read8(struct bus *bus, uint64_t port);
uint16_t port_read16(struct bus *bus, uint64_t port);
uint32_t port_read32(struct bus *bus, uint64_t port);
void port_write8(struct bus *bus, uint64_t port, uint8_t value);
void port_write16(struct bus *bus, uint64_t port, uint16_t value);
void port_write32(struct bus *bus, uint64_t port, uint32_t value);

/* A fake guest RAM of size zeroed bytes at guest-physical 0, described in
 * memory; free() it after the test. */
uint8_t *fake_ram_create(struct guest_memory *memory, size_t size);

/* Little-endian fields of a test's fake guest RAM (the host buffer of a
 * region at guest-physical 0), for laying out and reading virtqueue rings. */
void ram_put16(uint8_t *ram, uint64_t gpa, uint16_t value);
void ram_put32(uint8_t *ram, uint64_t gpa, uint32_t value);
void ram_put64(uint8_t *ram, uint64_t gpa, uint64_t value);
uint16_t ram_get16(const uint8_t *ram, uint64_t gpa);
uint32_t ram_get32(const uint8_t *ram, uint64_t gpa);

/* A disk test's image file as the host sees it, past the device: read
 * len bytes at offset, fill its first size bytes with byte (synced), and
 * the 512-byte blocks it occupies (st_blocks). */
void image_read(const char *path, uint64_t offset, void *buffer, size_t len);
void image_fill(const char *path, size_t size, uint8_t byte);
blkcnt_t image_blocks(const char *path);

#endif
