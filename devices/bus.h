/*
 * The I/O bus: maps guest port-I/O or MMIO address ranges to the device that
 * claims them, and dispatches a vCPU's access to that device.
 *
 * Promise: ranges never overlap (registration refuses an overlap with
 * -EEXIST); an access is routed only when it lies wholly inside one range,
 * and the handler sees the offset from the range's base. Lookups may run on
 * every vCPU thread at once while ranges are added or removed: the bus takes
 * a reader lock for dispatch. Handlers run without any bus lock held, so a
 * device must lock its own state.
 */
#ifndef VESSEL_DEVICES_BUS_H
#define VESSEL_DEVICES_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_device_ops {
	/* size is 1, 2, 4 or 8; data is in guest (little-endian) byte order. */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t size);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data,
		      uint32_t size);
};

struct bus;

/* name ("pio", "mmio") appears in diagnostics. NULL on allocation failure. */
struct bus *bus_create(const char *name);
void bus_destroy(struct bus *bus);

/* Claims [base, base + length) for a device. 0, -EINVAL for an empty or
 * wrapping range, -EEXIST when it overlaps a claimed range, -ENOMEM. */
int bus_register(struct bus *bus, uint64_t base, uint64_t length,
		 const struct bus_device_ops *ops, void *opaque,
		 const char *device_name);

/* Releases the range registered at exactly base: 0 or -ENOENT. */
int bus_unregister(struct bus *bus, uint64_t base);

/* Dispatch an access. false when no device claims the whole range; then a
 * read leaves data untouched, so the caller chooses what floating lines read
 * as (all ones for port I/O). */
bool bus_read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t size);
bool bus_write(struct bus *bus, uint64_t addr, const uint8_t *data,
	       uint32_t size);

#endif
