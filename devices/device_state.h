/*
 * Saving and restoring a device's registers by name through the state
 * writer and reader of device.h: a table of fields, each 1, 2, 4 or 8
 * bytes wide, stored as 64-bit values.
 *
 * Promise: restore checks every value fits its field before writing any
 * (a value too wide is -EINVAL, a missing one -ENOENT), so a refused
 * restore leaves the device as it was.
 */
#ifndef VESSEL_DEVICES_DEVICE_STATE_H
#define VESSEL_DEVICES_DEVICE_STATE_H

#include <stddef.h>

#include "device.h"

struct device_register {
	const char *name;
	void *field;
	size_t size; /* sizeof the field */
};

#define DEVICE_REGISTER(name, field) { name, &(field), sizeof(field) }

int device_save_registers(struct device_state_writer *writer,
			  const struct device_register *registers,
			  size_t count);
int device_restore_registers(struct device_state_reader *reader,
			     const struct device_register *registers,
			     size_t count);

#endif
