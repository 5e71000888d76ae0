/*
 * Port-I/O accesses for the fuzz targets of legacy devices: a guest's
 * reads and writes of 1, 2 or 4 bytes through a real struct bus.
 *
 * Promise: an access no device claims is no error (a guest may touch any
 * port); it goes to the bus and nowhere.
 */
#ifndef VESSEL_TESTS_FUZZ_FUZZ_PORT_IO_H
#define VESSEL_TESTS_FUZZ_FUZZ_PORT_IO_H

#include "devices/bus.h"
#include "fuzz_input.h"

/* One access from base + (offset operand % span): a byte whose low bit
 * says read or write and whose next two bits pick the size, the offset,
 * and for a write the value. */
void fuzz_port_access(struct bus *bus, uint64_t base, uint64_t span,
		      struct fuzz_input *input);

#endif
