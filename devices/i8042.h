/*
 * The i8042 PS/2 controller with a keyboard and a wheel mouse attached: the
 * status and command ports, the controller command byte, self-test and
 * interface tests, output port reads and writes, the CPU reset line
 * (command 0xFE, or clearing bit 0 of the output port), set 2 to set 1
 * translation, one interrupt line for keyboard bytes and one for mouse
 * bytes (IRQ 1 and IRQ 12 on a PC). Input
 * comes from the host's display through i8042_key_event() and
 * i8042_mouse_event().
 *
 * Promise: a reset request is reported through the hook, never acted on
 * inside the device; all state is locked inside the device, so input may
 * come from any thread.
 */
#ifndef VESSEL_DEVICES_I8042_H
#define VESSEL_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "irq_line.h"

struct i8042;

struct i8042 *i8042_create(struct irq_line keyboard_irq,
			   struct irq_line mouse_irq,
			   void (*reset_requested)(void *opaque), void *opaque);
void i8042_destroy(struct i8042 *controller);

/* Claims the data and command ports (0x60 and 0x64 on a PC) on the
 * port-I/O bus. */
int i8042_attach(struct i8042 *controller, struct bus *pio_bus,
		 uint16_t data_port, uint16_t command_port);

/* The controller's device record (device.h): its state saved and
 * restored. */
struct device_record i8042_record(struct i8042 *controller, const char *name);

/* A key of the given USB HID usage (keyboard page; SDL's scancodes) went
 * down, repeated, or went up (devices/ps2_keyboard.h). false: the
 * keyboard's buffer is full (the guest reads slower than keys come), and
 * the key was not taken; offer it again later. */
bool i8042_key_event(struct i8042 *controller, uint16_t usage, bool pressed);

/* The mouse moved (dx right, dy up, dz wheel towards the user) and holds
 * buttons (PS2_MOUSE_LEFT, _RIGHT, _MIDDLE of devices/ps2_mouse.h). */
void i8042_mouse_event(struct i8042 *controller, int32_t dx, int32_t dy,
		       int32_t dz, uint8_t buttons);

/* The keyboard's LEDs as the guest last set them (PS2_LED_*). */
uint8_t i8042_keyboard_leds(struct i8042 *controller);

#endif
