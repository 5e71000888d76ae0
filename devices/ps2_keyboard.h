/*
 * A PS/2 keyboard (IBM PS/2 Technical Reference, "Keyboards"; the MF2
 * 102/105-key layout): keys arrive as USB HID usages (keyboard page 0x07,
 * which SDL's scancodes are) and leave as scancode set 2, the keyboard's
 * native set; the i8042 translates them to set 1 when its command byte
 * says so. It answers the commands Linux's atkbd sends: reset, identify,
 * set LEDs, typematic rate, scancode set (2 only), enable, disable, set
 * defaults, echo and resend.
 *
 * Promise: each key's sequence (up to the 8 bytes of Pause) goes into the
 * keyboard's 16-byte buffer whole or not at all; a command empties the
 * buffer before its reply, as the keyboard stops scanning to answer.
 * Not locked: the i8042 holds its own lock around every call.
 */
#ifndef VESSEL_DEVICES_PS2_KEYBOARD_H
#define VESSEL_DEVICES_PS2_KEYBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ps2_queue.h"

#define PS2_KEYBOARD_BUFFER 16
#define PS2_KEY_SEQUENCE_MAX 8

/* Bits of the set-LEDs argument. */
#define PS2_LED_SCROLL_LOCK 0x01
#define PS2_LED_NUM_LOCK 0x02
#define PS2_LED_CAPS_LOCK 0x04

struct ps2_keyboard {
	struct ps2_queue queue;
	uint8_t pending_command; /* awaiting its argument, or 0 */
	bool scanning; /* keys are sent */
	uint8_t leds;
	uint8_t typematic; /* rate and delay: repeat comes from the host */
	uint8_t last_sent; /* for resend */
};

/* Power-on state: scanning, LEDs off, buffer empty. */
void ps2_keyboard_init(struct ps2_keyboard *keyboard);

/* A byte the host sends to the keyboard. */
void ps2_keyboard_write(struct ps2_keyboard *keyboard, uint8_t byte);

/* A key of HID usage went down (pressed; again for each repeat) or up.
 * Unknown usages, and everything while scanning is off, are dropped.
 * false: the buffer has no room for the key's whole sequence, and none of
 * it was queued. */
bool ps2_keyboard_key(struct ps2_keyboard *keyboard, uint16_t usage,
		      bool pressed);

/* The next byte for the host, if any. */
bool ps2_keyboard_read(struct ps2_keyboard *keyboard, uint8_t *byte);

/* The set-2 sequence of a key's make or break code: its length, 0 for a
 * usage the keyboard does not have. out holds PS2_KEY_SEQUENCE_MAX. */
size_t ps2_keyboard_set2_sequence(uint16_t usage, bool pressed, uint8_t *out);

#endif
