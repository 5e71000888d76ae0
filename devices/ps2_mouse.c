#include "ps2_mouse.h"

/* Mouse commands (IBM PS/2 Technical Reference, "Pointing Device
 * Commands"). */
#define MOUSE_SCALING_1_TO_1 0xe6
#define MOUSE_SCALING_2_TO_1 0xe7
#define MOUSE_SET_RESOLUTION 0xe8
#define MOUSE_STATUS_REQUEST 0xe9
#define MOUSE_SET_STREAM 0xea
#define MOUSE_READ_DATA 0xeb
#define MOUSE_RESET_WRAP 0xec
#define MOUSE_SET_WRAP 0xee
#define MOUSE_SET_REMOTE 0xf0
#define MOUSE_GET_ID 0xf2
#define MOUSE_SET_SAMPLE_RATE 0xf3
#define MOUSE_ENABLE 0xf4
#define MOUSE_DISABLE 0xf5
#define MOUSE_SET_DEFAULTS 0xf6
#define MOUSE_RESEND 0xfe
#define MOUSE_RESET 0xff

#define DEFAULT_SAMPLE_RATE 100
#define DEFAULT_RESOLUTION 2 /* 4 counts per mm */

/* Packet byte 0. */
#define PACKET_ALWAYS_ONE 0x08
#define PACKET_X_SIGN 0x10
#define PACKET_Y_SIGN 0x20
#define PACKET_X_OVERFLOW 0x40
#define PACKET_Y_OVERFLOW 0x80

/* Status byte 1: the buttons in another order than in packets. */
#define STATUS_RIGHT 0x01
#define STATUS_MIDDLE 0x02
#define STATUS_LEFT 0x04
#define STATUS_SCALING_2_TO_1 0x10
#define STATUS_ENABLED 0x20
#define STATUS_REMOTE 0x40

#define MOTION_MIN -256
#define MOTION_MAX 255
#define WHEEL_MIN -8
#define WHEEL_MAX 7

static int32_t clamp(int32_t value, int32_t min, int32_t max, bool *clamped)
{
	*clamped = value < min || value > max;
	return value < min ? min : value > max ? max : value;
}

size_t ps2_mouse_encode_packet(int32_t dx, int32_t dy, int32_t dz,
			       uint8_t buttons, bool wheel, uint8_t *out)
{
	bool x_overflow, y_overflow, ignored;

	dx = clamp(dx, MOTION_MIN, MOTION_MAX, &x_overflow);
	dy = clamp(dy, MOTION_MIN, MOTION_MAX, &y_overflow);
	out[0] = PACKET_ALWAYS_ONE |
		 (buttons & (PS2_MOUSE_LEFT | PS2_MOUSE_RIGHT | PS2_MOUSE_MIDDLE));
	if (dx < 0)
		out[0] |= PACKET_X_SIGN;
	if (dy < 0)
		out[0] |= PACKET_Y_SIGN;
	if (x_overflow)
		out[0] |= PACKET_X_OVERFLOW;
	if (y_overflow)
		out[0] |= PACKET_Y_OVERFLOW;
	/* The low 8 bits of the 9-bit two's complement value; the sign
	 * bit is in byte 0. */
	out[1] = (uint8_t)(dx & 0xff);
	out[2] = (uint8_t)(dy & 0xff);
	if (!wheel)
		return 3;
	out[3] = (uint8_t)(clamp(dz, WHEEL_MIN, WHEEL_MAX, &ignored) & 0xff);
	return 4;
}

/* 2:1 scaling of stream reports: small moves are damped, larger ones
 * doubled (IBM PS/2 Technical Reference, "Scaling"). */
static int32_t scale_2_to_1(int32_t value)
{
	static const int32_t small[] = { 0, 1, 1, 3, 6, 9 };
	int32_t magnitude = value < 0 ? -value : value;
	int32_t scaled = magnitude < 6 ? small[magnitude] : 2 * magnitude;

	return value < 0 ? -scaled : scaled;
}

static void set_defaults(struct ps2_mouse *mouse)
{
	mouse->sample_rate = DEFAULT_SAMPLE_RATE;
	mouse->resolution = DEFAULT_RESOLUTION;
	mouse->scaling_2_to_1 = false;
	mouse->remote = false;
	mouse->reporting = false;
	mouse->dx = mouse->dy = mouse->dz = 0;
	mouse->changed = false;
}

void ps2_mouse_init(struct ps2_mouse *mouse)
{
	*mouse = (struct ps2_mouse){ .id = PS2_MOUSE_ID_STANDARD };
	ps2_queue_init(&mouse->queue, PS2_MOUSE_BUFFER);
	set_defaults(mouse);
}

static void reply(struct ps2_mouse *mouse, const uint8_t *bytes, size_t length)
{
	ps2_queue_put_all(&mouse->queue, bytes, length);
}

static void reply_byte(struct ps2_mouse *mouse, uint8_t byte)
{
	reply(mouse, &byte, 1);
}

/* The packet of the motion summed so far, which the counters then
 * forget. scaled: stream mode with 2:1 scaling. */
static size_t take_packet(struct ps2_mouse *mouse, bool scaled, uint8_t *out)
{
	int32_t dx = scaled ? scale_2_to_1(mouse->dx) : mouse->dx;
	int32_t dy = scaled ? scale_2_to_1(mouse->dy) : mouse->dy;
	size_t length = ps2_mouse_encode_packet(
		dx, dy, mouse->dz, mouse->buttons,
		mouse->id == PS2_MOUSE_ID_WHEEL, out);

	mouse->dx = mouse->dy = mouse->dz = 0;
	mouse->changed = false;
	return length;
}

/* In stream mode with reporting on, what changed goes out as soon as a
 * whole packet fits in the buffer. */
static void stream(struct ps2_mouse *mouse)
{
	uint8_t packet[PS2_MOUSE_PACKET_MAX];
	size_t needed = mouse->id == PS2_MOUSE_ID_WHEEL ? 4 : 3;

	if (!mouse->changed || mouse->remote || !mouse->reporting ||
	    mouse->wrap || ps2_queue_room(&mouse->queue) < needed)
		return;
	size_t length = take_packet(mouse, mouse->scaling_2_to_1, packet);
	ps2_queue_put_all(&mouse->queue, packet, length);
}

static void set_sample_rate(struct ps2_mouse *mouse, uint8_t rate)
{
	mouse->sample_rate = rate;
	mouse->recent_rates[0] = mouse->recent_rates[1];
	mouse->recent_rates[1] = mouse->recent_rates[2];
	mouse->recent_rates[2] = rate;
	/* Microsoft's IntelliMouse knock: rates 200, 100, 80 in a row turn
	 * the wheel on, which the mouse then reports as ID 3. */
	if (mouse->recent_rates[0] == 200 && mouse->recent_rates[1] == 100 &&
	    mouse->recent_rates[2] == 80)
		mouse->id = PS2_MOUSE_ID_WHEEL;
}

static void status_request(struct ps2_mouse *mouse)
{
	uint8_t status = 0;

	if (mouse->buttons & PS2_MOUSE_LEFT)
		status |= STATUS_LEFT;
	if (mouse->buttons & PS2_MOUSE_MIDDLE)
		status |= STATUS_MIDDLE;
	if (mouse->buttons & PS2_MOUSE_RIGHT)
		status |= STATUS_RIGHT;
	if (mouse->scaling_2_to_1)
		status |= STATUS_SCALING_2_TO_1;
	if (mouse->reporting)
		status |= STATUS_ENABLED;
	if (mouse->remote)
		status |= STATUS_REMOTE;
	const uint8_t bytes[] = { PS2_ACK, status, mouse->resolution,
				  mouse->sample_rate };
	reply(mouse, bytes, sizeof(bytes));
}

static void command(struct ps2_mouse *mouse, uint8_t byte)
{
	uint8_t packet[1 + PS2_MOUSE_PACKET_MAX];

	switch (byte) {
	case MOUSE_SET_RESOLUTION:
	case MOUSE_SET_SAMPLE_RATE:
		mouse->pending_command = byte;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_SCALING_1_TO_1:
	case MOUSE_SCALING_2_TO_1:
		mouse->scaling_2_to_1 = byte == MOUSE_SCALING_2_TO_1;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_STATUS_REQUEST:
		status_request(mouse);
		break;
	case MOUSE_SET_STREAM:
	case MOUSE_SET_REMOTE:
		mouse->remote = byte == MOUSE_SET_REMOTE;
		mouse->dx = mouse->dy = mouse->dz = 0;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_READ_DATA:
		/* A packet whether or not anything moved. */
		packet[0] = PS2_ACK;
		reply(mouse, packet, 1 + take_packet(mouse, false, packet + 1));
		break;
	case MOUSE_SET_WRAP:
		mouse->wrap = true;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_RESET_WRAP:
		mouse->wrap = false;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_GET_ID: {
		const uint8_t id[] = { PS2_ACK, mouse->id };

		reply(mouse, id, sizeof(id));
		break;
	}
	case MOUSE_ENABLE:
	case MOUSE_DISABLE:
		mouse->reporting = byte == MOUSE_ENABLE;
		mouse->dx = mouse->dy = mouse->dz = 0;
		mouse->changed = false;
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_SET_DEFAULTS:
		set_defaults(mouse);
		reply_byte(mouse, PS2_ACK);
		break;
	case MOUSE_RESEND:
		reply_byte(mouse, mouse->last_sent);
		break;
	case MOUSE_RESET: {
		const uint8_t passed[] = { PS2_ACK, PS2_SELF_TEST_PASSED,
					   PS2_MOUSE_ID_STANDARD };

		set_defaults(mouse);
		mouse->wrap = false;
		mouse->id = PS2_MOUSE_ID_STANDARD;
		reply(mouse, passed, sizeof(passed));
		break;
	}
	default:
		reply_byte(mouse, PS2_RESEND);
		break;
	}
}

void ps2_mouse_write(struct ps2_mouse *mouse, uint8_t byte)
{
	uint8_t pending = mouse->pending_command;

	mouse->pending_command = 0;
	/* A byte from the host stops the mouse's output: unsent packets
	 * are dropped and the reply comes next. */
	ps2_queue_clear(&mouse->queue);
	if (mouse->wrap && byte != MOUSE_RESET_WRAP && byte != MOUSE_RESET) {
		reply_byte(mouse, byte);
		return;
	}
	/* Arguments (resolution 0-3, rates up to 200) are below the
	 * command range; a command in their place is a new command. */
	if (pending && byte < MOUSE_SCALING_1_TO_1) {
		if (pending == MOUSE_SET_RESOLUTION)
			mouse->resolution = byte & 0x03;
		else
			set_sample_rate(mouse, byte);
		reply_byte(mouse, PS2_ACK);
		return;
	}
	command(mouse, byte);
}

/* Motion waiting to be sent is kept within 16 bits, far beyond what one
 * packet carries: a flood of events while the guest reads nothing cannot
 * overflow the sums. */
static int32_t add_saturated(int32_t sum, int32_t delta)
{
	int64_t total = (int64_t)sum + delta;

	return total > INT16_MAX ? INT16_MAX :
	       total < INT16_MIN ? INT16_MIN : (int32_t)total;
}

void ps2_mouse_event(struct ps2_mouse *mouse, int32_t dx, int32_t dy,
		     int32_t dz, uint8_t buttons)
{
	buttons &= PS2_MOUSE_LEFT | PS2_MOUSE_RIGHT | PS2_MOUSE_MIDDLE;
	if (dx == 0 && dy == 0 && dz == 0 && buttons == mouse->buttons)
		return;
	mouse->dx = add_saturated(mouse->dx, dx);
	mouse->dy = add_saturated(mouse->dy, dy);
	mouse->dz = add_saturated(mouse->dz, dz);
	mouse->buttons = buttons;
	mouse->changed = true;
	stream(mouse);
}

bool ps2_mouse_read(struct ps2_mouse *mouse, uint8_t *byte)
{
	if (!ps2_queue_get(&mouse->queue, byte))
		return false;
	mouse->last_sent = *byte;
	stream(mouse);
	return true;
}
