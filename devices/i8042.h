/*
 * The i8042 PS/2 controller, as much as a guest without a keyboard or mouse
 * attached needs: the status and command ports, the controller command byte,
 * self-test and interface tests, output port reads and writes, and the
 * CPU reset line (command 0xFE, or clearing bit 0 of the output port).
 * Keyboard and mouse input arrive with the display issue.
 *
 * Promise: a reset request is reported through the hook, never acted on
 * inside the device; all state is locked inside the device.
 */
#ifndef VESSEL_DEVICES_I8042_H
#define VESSEL_DEVICES_I8042_H

#include "bus.h"
#include "irq_line.h"

#define I8042_DATA_PORT 0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KEYBOARD_GSI 1
#define I8042_MOUSE_GSI 12

struct i8042;

struct i8042 *i8042_create(struct irq_line keyboard_irq,
			   struct irq_line mouse_irq,
			   void (*reset_requested)(void *opaque), void *opaque);
void i8042_destroy(struct i8042 *controller);

/* Claims the data and command ports on the port-I/O bus. */
int i8042_attach(struct i8042 *controller, struct bus *pio_bus);

/* The controller's device record (device.h): its state saved and
 * restored. */
struct device_record i8042_record(struct i8042 *controller, const char *name);

#endif
