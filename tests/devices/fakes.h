/*
 * Test doubles shared by the device tests: an interrupt line that records
 * every level it is given, and port-I/O helpers that go through a real
 * struct bus and fail the test when no device claims the port.
 */
#ifndef VESSEL_TESTS_DEVICES_FAKES_H
#define VESSEL_TESTS_DEVICES_FAKES_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
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

/* Little-endian fields of a test's fake guest RAM (the host buffer of a
 * region at guest-physical 0), for laying out and reading virtqueue rings. */
void ram_put16(uint8_t *ram, uint64_t gpa, uint16_t value);
void ram_put32(uint8_t *ram, uint64_t gpa, uint32_t value);
void ram_put64(uint8_t *ram, uint64_t gpa, uint64_t value);
uint16_t ram_get16(const uint8_t *ram, uint64_t gpa);
uint32_t ram_get32(const uint8_t *ram, uint64_t gpa);

#endif
