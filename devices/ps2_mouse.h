/*
 * A PS/2 mouse with a wheel (IBM PS/2 Technical Reference, "Pointing
 * Device"; Microsoft's IntelliMouse extension): three buttons, relative
 * motion, stream and remote modes, and the command set Linux's psmouse
 * probes and uses: reset, identify, set sample rate (200, 100, 80 turns
 * the wheel on: ID 3 and 4-byte packets), status request, set resolution,
 * scaling, stream and remote mode, read data, wrap mode, enable and
 * disable data reporting, set defaults and resend.
 *
 * Promise: a packet goes into the mouse's buffer whole or not at all;
 * motion that does not fit waits, summed, for the next packet, and a sum
 * beyond a packet's 9-bit range is sent saturated with its overflow bit,
 * as the mouse's own counters do. Not locked: the i8042 holds its own
 * lock around every call.
 */
#ifndef VESSEL_DEVICES_PS2_MOUSE_H
#define VESSEL_DEVICES_PS2_MOUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ps2_queue.h"

#define PS2_MOUSE_BUFFER 32
#define PS2_MOUSE_PACKET_MAX 4

/* Button bits, as in the first byte of a packet. */
#define PS2_MOUSE_LEFT 0x01
#define PS2_MOUSE_RIGHT 0x02
#define PS2_MOUSE_MIDDLE 0x04

#define PS2_MOUSE_ID_STANDARD 0x00
#define PS2_MOUSE_ID_WHEEL 0x03

struct ps2_mouse {
	struct ps2_queue queue;
	uint8_t pending_command; /* awaiting its argument, or 0 */
	uint8_t id;
	bool reporting; /* stream mode sends packets */
	bool remote; /* remote mode: packets only on read data */
	bool wrap; /* wrap mode: echo */
	bool scaling_2_to_1;
	uint8_t resolution; /* 0-3: 1, 2, 4, 8 counts per mm */
	uint8_t sample_rate;
	uint8_t recent_rates[3]; /* the last three rates set, oldest first */
	uint8_t buttons;
	int32_t dx, dy, dz; /* motion not yet sent */
	bool changed; /* buttons or motion since the last packet */
	uint8_t last_sent; /* for resend */
};

/* Power-on state: standard mouse, stream mode, reporting off. */
void ps2_mouse_init(struct ps2_mouse *mouse);

/* A byte the host sends to the mouse. */
void ps2_mouse_write(struct ps2_mouse *mouse, uint8_t byte);

/* Motion (dx right, dy up, dz wheel towards the user, in counts) and the
 * buttons now held. */
void ps2_mouse_event(struct ps2_mouse *mouse, int32_t dx, int32_t dy,
		     int32_t dz, uint8_t buttons);

/* The next byte for the host, if any. */
bool ps2_mouse_read(struct ps2_mouse *mouse, uint8_t *byte);

/* Encodes one packet: 3 bytes, or 4 with wheel. dx and dy beyond
 * -256..255 are saturated with the overflow bit set; dz beyond -8..7 is
 * saturated. Returns the length. */
size_t ps2_mouse_encode_packet(int32_t dx, int32_t dy, int32_t dz,
			       uint8_t buttons, bool wheel, uint8_t *out);

#endif
