/* The PS/2 wheel mouse: the commands Linux's psmouse sends, its packets
 * (signs, overflow, wheel) and its buffer, on its own and behind the
 * i8042. */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/i8042.h"
#include "devices/ps2_mouse.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define DATA LAYOUT_I8042_DATA_PORT
#define COMMAND LAYOUT_I8042_COMMAND_PORT

static struct ps2_mouse mouse;

static void setup(void)
{
	ps2_mouse_init(&mouse);
}

TestSuite(ps2_mouse, .init = setup);

/* Sends bytes to the mouse, reading what it answers after each as a
 * host does, and expects exactly the reply. */
static void exchange(const uint8_t *command, size_t command_length,
		     const uint8_t *reply, size_t reply_length)
{
	uint8_t got[16];
	size_t count = 0;

	for (size_t i = 0; i < command_length; i++) {
		ps2_mouse_write(&mouse, command[i]);
		while (count < sizeof(got) && ps2_mouse_read(&mouse, &got[count]))
			count++;
	}
	cr_assert_eq(count, reply_length, "%zu bytes, want %zu", count,
		     reply_length);
	for (size_t i = 0; i < reply_length; i++)
		cr_assert_eq(got[i], reply[i], "reply byte %zu: 0x%02x, want 0x%02x",
			     i, got[i], reply[i]);
}

#define EXCHANGE(command, ...)                                               \
	do {                                                                 \
		const uint8_t command_[] = command;                          \
		const uint8_t reply_[] = { __VA_ARGS__ };                    \
		exchange(command_, sizeof(command_), reply_, sizeof(reply_)); \
	} while (0)
#define BYTES(...) { __VA_ARGS__ }

static void knock_wheel_on(void)
{
	EXCHANGE(BYTES(0xf3, 200), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 100), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 80), 0xfa, 0xfa);
}

Test(ps2_mouse, reset_passes_self_test_and_reports_id_0)
{
	EXCHANGE(BYTES(0xff), 0xfa, 0xaa, 0x00);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x00);
}

Test(ps2_mouse, intellimouse_knock_gives_id_3)
{
	knock_wheel_on();
	EXCHANGE(BYTES(0xf2), 0xfa, 0x03);
	/* psmouse's Explorer knock (200, 200, 80) asks for ID 4, which this
	 * mouse does not have: it stays a wheel mouse. */
	EXCHANGE(BYTES(0xf3, 200), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 200), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 80), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x03);
	/* A reset forgets the wheel. */
	EXCHANGE(BYTES(0xff), 0xfa, 0xaa, 0x00);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x00);
}

Test(ps2_mouse, other_rate_sequences_keep_id_0)
{
	EXCHANGE(BYTES(0xf3, 200), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 80), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 100), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x00);
}

Test(ps2_mouse, status_request_reports_mode_and_settings)
{
	EXCHANGE(BYTES(0xe9), 0xfa, 0x00, 0x02, 100);
	EXCHANGE(BYTES(0xe8, 0x03), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xf3, 40), 0xfa, 0xfa);
	EXCHANGE(BYTES(0xe7), 0xfa);
	EXCHANGE(BYTES(0xf4), 0xfa);
	ps2_mouse_event(&mouse, 0, 0, 0, PS2_MOUSE_LEFT | PS2_MOUSE_RIGHT);
	uint8_t byte;
	while (ps2_mouse_read(&mouse, &byte))
		;
	/* Enabled, 2:1 scaling, left (bit 2) and right (bit 0). */
	EXCHANGE(BYTES(0xe9), 0xfa, 0x35, 0x03, 40);
	EXCHANGE(BYTES(0xf0), 0xfa);
	EXCHANGE(BYTES(0xe9), 0xfa, 0x75, 0x03, 40);
	EXCHANGE(BYTES(0xf6), 0xfa); /* defaults */
	EXCHANGE(BYTES(0xe9), 0xfa, 0x05, 0x02, 100);
}

Test(ps2_mouse, stream_packets_only_with_reporting_enabled)
{
	ps2_mouse_event(&mouse, 5, 5, 0, 0);
	EXCHANGE(BYTES(0xf4), 0xfa);
	ps2_mouse_event(&mouse, 3, -2, 0, PS2_MOUSE_MIDDLE);
	uint8_t byte;
	const uint8_t packet[] = { 0x08 | 0x04 | 0x20, 0x03, 0xfe };
	for (size_t i = 0; i < sizeof(packet); i++) {
		cr_assert(ps2_mouse_read(&mouse, &byte));
		cr_assert_eq(byte, packet[i], "byte %zu: 0x%02x", i, byte);
	}
	cr_assert_not(ps2_mouse_read(&mouse, &byte));
	EXCHANGE(BYTES(0xf5), 0xfa);
	ps2_mouse_event(&mouse, 1, 1, 0, 0);
	cr_assert_not(ps2_mouse_read(&mouse, &byte));
}

Test(ps2_mouse, wheel_mouse_sends_four_byte_packets)
{
	knock_wheel_on();
	EXCHANGE(BYTES(0xf4), 0xfa);
	ps2_mouse_event(&mouse, -1, 0, 2, PS2_MOUSE_LEFT);
	uint8_t byte;
	const uint8_t packet[] = { 0x08 | 0x01 | 0x10, 0xff, 0x00, 0x02 };
	for (size_t i = 0; i < sizeof(packet); i++) {
		cr_assert(ps2_mouse_read(&mouse, &byte));
		cr_assert_eq(byte, packet[i], "byte %zu: 0x%02x", i, byte);
	}
	cr_assert_not(ps2_mouse_read(&mouse, &byte));
}

Test(ps2_mouse, remote_mode_sends_only_on_read_data)
{
	EXCHANGE(BYTES(0xf0), 0xfa);
	EXCHANGE(BYTES(0xf4), 0xfa);
	ps2_mouse_event(&mouse, 10, 20, 0, 0);
	uint8_t byte;
	cr_assert_not(ps2_mouse_read(&mouse, &byte));
	EXCHANGE(BYTES(0xeb), 0xfa, 0x08, 10, 20);
	EXCHANGE(BYTES(0xeb), 0xfa, 0x08, 0, 0);
	EXCHANGE(BYTES(0xea), 0xfa); /* back to stream */
}

Test(ps2_mouse, wrap_mode_echoes_until_reset_wrap)
{
	EXCHANGE(BYTES(0xee), 0xfa);
	EXCHANGE(BYTES(0x12), 0x12);
	EXCHANGE(BYTES(0xf2), 0xf2);
	EXCHANGE(BYTES(0xec), 0xfa);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x00);
}

Test(ps2_mouse, unknown_commands_ask_for_resend)
{
	EXCHANGE(BYTES(0x42), 0xfe);
	EXCHANGE(BYTES(0xf2), 0xfa, 0x00);
	EXCHANGE(BYTES(0xfe), 0x00, );
}

Test(ps2_mouse, packet_signs_and_overflow)
{
	uint8_t packet[4];

	cr_assert_eq(ps2_mouse_encode_packet(255, -256, 0, 0, false, packet), 3);
	cr_assert_eq(packet[0], 0x08 | 0x20, "Y negative, no overflow");
	cr_assert_eq(packet[1], 0xff);
	cr_assert_eq(packet[2], 0x00);

	cr_assert_eq(ps2_mouse_encode_packet(300, 7, 0, 0, false, packet), 3);
	cr_assert_eq(packet[0], 0x08 | 0x40, "X overflow");
	cr_assert_eq(packet[1], 0xff, "saturated at 255");

	cr_assert_eq(ps2_mouse_encode_packet(-1000, -257, 0, 0, false, packet), 3);
	cr_assert_eq(packet[0], 0x08 | 0x10 | 0x20 | 0x40 | 0x80);
	cr_assert_eq(packet[1], 0x00, "saturated at -256");
	cr_assert_eq(packet[2], 0x00);

	cr_assert_eq(ps2_mouse_encode_packet(0, 1000, 0, 0, false, packet), 3);
	cr_assert_eq(packet[0], 0x08 | 0x80, "Y overflow, positive");
	cr_assert_eq(packet[2], 0xff);

	cr_assert_eq(ps2_mouse_encode_packet(0, 0, -20, 0x07, true, packet), 4);
	cr_assert_eq(packet[0], 0x0f, "all three buttons");
	cr_assert_eq(packet[3], 0xf8, "wheel saturated at -8");
	ps2_mouse_encode_packet(0, 0, 20, 0, true, packet);
	cr_assert_eq(packet[3], 0x07, "wheel saturated at 7");
}

Test(ps2_mouse, motion_waits_summed_while_the_buffer_is_full)
{
	uint8_t byte;
	unsigned int count = 0;

	EXCHANGE(BYTES(0xf4), 0xfa);
	/* 32 bytes hold ten 3-byte packets; the rest is summed. */
	for (int i = 0; i < 20; i++)
		ps2_mouse_event(&mouse, 100, 0, 0, 0);
	for (int i = 0; i < 30; i++) {
		cr_assert(ps2_mouse_read(&mouse, &byte));
		count++;
		if (i % 3 == 1)
			cr_assert_eq(byte, 100, "packet %d", i / 3);
	}
	/* Reading made room: the ten summed moves went out as one packet,
	 * saturated with the overflow bit. */
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert_eq(byte, 0x08 | 0x40);
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert_eq(byte, 0xff);
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert_not(ps2_mouse_read(&mouse, &byte));
	cr_assert_eq(count, 30);
}

Test(ps2_mouse, scaling_2_to_1_applies_to_stream_packets)
{
	uint8_t byte;

	EXCHANGE(BYTES(0xe7), 0xfa);
	EXCHANGE(BYTES(0xf4), 0xfa);
	ps2_mouse_event(&mouse, 4, -10, 0, 0);
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert_eq(byte, 6);
	cr_assert(ps2_mouse_read(&mouse, &byte));
	cr_assert_eq(byte, (uint8_t)-20);
}

/* Behind the controller: psmouse's probe through 0xd4, packets on IRQ 12
 * and never split by keyboard bytes. */
Test(ps2_mouse, through_the_i8042)
{
	struct irq_recorder keyboard_irq = {0}, mouse_irq = {0};
	struct bus *bus = bus_create("pio");
	struct i8042 *controller = i8042_create(
		irq_recorder_line(&keyboard_irq, LAYOUT_KEYBOARD_GSI),
		irq_recorder_line(&mouse_irq, LAYOUT_MOUSE_GSI), NULL, NULL);

	cr_assert_eq(i8042_attach(controller, bus, DATA, COMMAND), 0);
	port_write8(bus, COMMAND, 0x60);
	port_write8(bus, DATA, 0x47); /* both IRQs, translation */
	const uint8_t probe[] = { 0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2 };
	const uint8_t replies[] = { 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa,
				    0xfa, 0x03 };
	size_t got = 0;
	for (size_t i = 0; i < sizeof(probe); i++) {
		port_write8(bus, COMMAND, 0xd4);
		port_write8(bus, DATA, probe[i]);
		while (port_read8(bus, COMMAND) & 0x01) {
			cr_assert(port_read8(bus, COMMAND) & 0x20,
				  "from the aux port");
			cr_assert(mouse_irq.level);
			cr_assert_eq(port_read8(bus, DATA),
				     replies[got++]);
		}
	}
	cr_assert_eq(got, sizeof(replies));
	port_write8(bus, COMMAND, 0xd4);
	port_write8(bus, DATA, 0xf4);
	cr_assert_eq(port_read8(bus, DATA), 0xfa);

	i8042_mouse_event(controller, 1, 2, -1, PS2_MOUSE_RIGHT);
	i8042_key_event(controller, 0x04, true);
	/* The packet's first byte already sat in the output buffer; the
	 * controller then serves the keyboard before the mouse, and the
	 * status register says which port each byte is from, so the guest
	 * puts the packet back together. */
	const struct {
		uint8_t data;
		uint8_t status;
	} expected[] = {
		{ 0x0a, 0x21 }, { 0x1e, 0x01 }, { 0x01, 0x21 }, { 0x02, 0x21 },
		{ 0xff, 0x21 },
	};
	for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
		cr_assert_eq(port_read8(bus, COMMAND) & 0x21,
			     expected[i].status, "byte %zu", i);
		cr_assert_eq(port_read8(bus, DATA), expected[i].data,
			     "byte %zu", i);
	}
	cr_assert_not(mouse_irq.level);
	cr_assert_not(keyboard_irq.level);
	i8042_destroy(controller);
	bus_destroy(bus);
}
