/* The PS/2 keyboard behind the i8042: every key of the 105-key ISO layout
 * (and the US backslash) as set 2 and, through the controller's
 * translation, as set 1; its commands and its buffer. */
#include <criterion/criterion.h>
#include <string.h>

#include "devices/i8042.h"
#include "devices/ps2_keyboard.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define DATA LAYOUT_I8042_DATA_PORT
#define COMMAND LAYOUT_I8042_COMMAND_PORT
#define STATUS_OBF 0x01
#define CTR_KBDINT 0x01
#define CTR_XLATE 0x40

static struct bus *bus;
static struct i8042 *controller;
static struct irq_recorder keyboard_irq;
static struct irq_recorder mouse_irq;

static void setup(void)
{
	memset(&keyboard_irq, 0, sizeof(keyboard_irq));
	memset(&mouse_irq, 0, sizeof(mouse_irq));
	bus = bus_create("pio");
	controller = i8042_create(
		irq_recorder_line(&keyboard_irq, LAYOUT_KEYBOARD_GSI),
		irq_recorder_line(&mouse_irq, LAYOUT_MOUSE_GSI), NULL, NULL);
	cr_assert_not_null(controller);
	cr_assert_eq(i8042_attach(controller, bus, DATA, COMMAND), 0);
}

static void teardown(void)
{
	i8042_destroy(controller);
	bus_destroy(bus);
}

TestSuite(ps2_keyboard, .init = setup, .fini = teardown);

static void write_ctr(uint8_t value)
{
	port_write8(bus, COMMAND, 0x60);
	port_write8(bus, DATA, value);
}

/* Everything waiting in the output buffer, as the guest reads it. */
static size_t drain(uint8_t *out, size_t max)
{
	size_t count = 0;

	while (port_read8(bus, COMMAND) & STATUS_OBF) {
		uint8_t byte = port_read8(bus, DATA);

		cr_assert_lt(count, max, "more bytes than expected");
		out[count++] = byte;
	}
	return count;
}

/* One key: its HID usage, its set-2 make code and its set-1 make code,
 * with 0xe0 prefixes; the break codes follow from them. Set 1 is taken
 * from the XT scancode table, independently of vessel's translation. */
struct key {
	const char *name;
	uint16_t usage;
	uint8_t set2[4];
	uint8_t set1[4];
};

static const struct key keys[] = {
	{ "A", 0x04, { 0x1c }, { 0x1e } }, { "B", 0x05, { 0x32 }, { 0x30 } },
	{ "C", 0x06, { 0x21 }, { 0x2e } }, { "D", 0x07, { 0x23 }, { 0x20 } },
	{ "E", 0x08, { 0x24 }, { 0x12 } }, { "F", 0x09, { 0x2b }, { 0x21 } },
	{ "G", 0x0a, { 0x34 }, { 0x22 } }, { "H", 0x0b, { 0x33 }, { 0x23 } },
	{ "I", 0x0c, { 0x43 }, { 0x17 } }, { "J", 0x0d, { 0x3b }, { 0x24 } },
	{ "K", 0x0e, { 0x42 }, { 0x25 } }, { "L", 0x0f, { 0x4b }, { 0x26 } },
	{ "M", 0x10, { 0x3a }, { 0x32 } }, { "N", 0x11, { 0x31 }, { 0x31 } },
	{ "O", 0x12, { 0x44 }, { 0x18 } }, { "P", 0x13, { 0x4d }, { 0x19 } },
	{ "Q", 0x14, { 0x15 }, { 0x10 } }, { "R", 0x15, { 0x2d }, { 0x13 } },
	{ "S", 0x16, { 0x1b }, { 0x1f } }, { "T", 0x17, { 0x2c }, { 0x14 } },
	{ "U", 0x18, { 0x3c }, { 0x16 } }, { "V", 0x19, { 0x2a }, { 0x2f } },
	{ "W", 0x1a, { 0x1d }, { 0x11 } }, { "X", 0x1b, { 0x22 }, { 0x2d } },
	{ "Y", 0x1c, { 0x35 }, { 0x15 } }, { "Z", 0x1d, { 0x1a }, { 0x2c } },
	{ "1", 0x1e, { 0x16 }, { 0x02 } }, { "2", 0x1f, { 0x1e }, { 0x03 } },
	{ "3", 0x20, { 0x26 }, { 0x04 } }, { "4", 0x21, { 0x25 }, { 0x05 } },
	{ "5", 0x22, { 0x2e }, { 0x06 } }, { "6", 0x23, { 0x36 }, { 0x07 } },
	{ "7", 0x24, { 0x3d }, { 0x08 } }, { "8", 0x25, { 0x3e }, { 0x09 } },
	{ "9", 0x26, { 0x46 }, { 0x0a } }, { "0", 0x27, { 0x45 }, { 0x0b } },
	{ "Enter", 0x28, { 0x5a }, { 0x1c } },
	{ "Escape", 0x29, { 0x76 }, { 0x01 } },
	{ "Backspace", 0x2a, { 0x66 }, { 0x0e } },
	{ "Tab", 0x2b, { 0x0d }, { 0x0f } },
	{ "Space", 0x2c, { 0x29 }, { 0x39 } },
	{ "-", 0x2d, { 0x4e }, { 0x0c } }, { "=", 0x2e, { 0x55 }, { 0x0d } },
	{ "[", 0x2f, { 0x54 }, { 0x1a } }, { "]", 0x30, { 0x5b }, { 0x1b } },
	{ "US \\", 0x31, { 0x5d }, { 0x2b } },
	{ "ISO #", 0x32, { 0x5d }, { 0x2b } },
	{ ";", 0x33, { 0x4c }, { 0x27 } }, { "'", 0x34, { 0x52 }, { 0x28 } },
	{ "`", 0x35, { 0x0e }, { 0x29 } }, { ",", 0x36, { 0x41 }, { 0x33 } },
	{ ".", 0x37, { 0x49 }, { 0x34 } }, { "/", 0x38, { 0x4a }, { 0x35 } },
	{ "Caps Lock", 0x39, { 0x58 }, { 0x3a } },
	{ "F1", 0x3a, { 0x05 }, { 0x3b } }, { "F2", 0x3b, { 0x06 }, { 0x3c } },
	{ "F3", 0x3c, { 0x04 }, { 0x3d } }, { "F4", 0x3d, { 0x0c }, { 0x3e } },
	{ "F5", 0x3e, { 0x03 }, { 0x3f } }, { "F6", 0x3f, { 0x0b }, { 0x40 } },
	{ "F7", 0x40, { 0x83 }, { 0x41 } }, { "F8", 0x41, { 0x0a }, { 0x42 } },
	{ "F9", 0x42, { 0x01 }, { 0x43 } }, { "F10", 0x43, { 0x09 }, { 0x44 } },
	{ "F11", 0x44, { 0x78 }, { 0x57 } }, { "F12", 0x45, { 0x07 }, { 0x58 } },
	{ "Scroll Lock", 0x47, { 0x7e }, { 0x46 } },
	{ "Insert", 0x49, { 0xe0, 0x70 }, { 0xe0, 0x52 } },
	{ "Home", 0x4a, { 0xe0, 0x6c }, { 0xe0, 0x47 } },
	{ "Page Up", 0x4b, { 0xe0, 0x7d }, { 0xe0, 0x49 } },
	{ "Delete", 0x4c, { 0xe0, 0x71 }, { 0xe0, 0x53 } },
	{ "End", 0x4d, { 0xe0, 0x69 }, { 0xe0, 0x4f } },
	{ "Page Down", 0x4e, { 0xe0, 0x7a }, { 0xe0, 0x51 } },
	{ "Right", 0x4f, { 0xe0, 0x74 }, { 0xe0, 0x4d } },
	{ "Left", 0x50, { 0xe0, 0x6b }, { 0xe0, 0x4b } },
	{ "Down", 0x51, { 0xe0, 0x72 }, { 0xe0, 0x50 } },
	{ "Up", 0x52, { 0xe0, 0x75 }, { 0xe0, 0x48 } },
	{ "Num Lock", 0x53, { 0x77 }, { 0x45 } },
	{ "KP /", 0x54, { 0xe0, 0x4a }, { 0xe0, 0x35 } },
	{ "KP *", 0x55, { 0x7c }, { 0x37 } },
	{ "KP -", 0x56, { 0x7b }, { 0x4a } },
	{ "KP +", 0x57, { 0x79 }, { 0x4e } },
	{ "KP Enter", 0x58, { 0xe0, 0x5a }, { 0xe0, 0x1c } },
	{ "KP 1", 0x59, { 0x69 }, { 0x4f } }, { "KP 2", 0x5a, { 0x72 }, { 0x50 } },
	{ "KP 3", 0x5b, { 0x7a }, { 0x51 } }, { "KP 4", 0x5c, { 0x6b }, { 0x4b } },
	{ "KP 5", 0x5d, { 0x73 }, { 0x4c } }, { "KP 6", 0x5e, { 0x74 }, { 0x4d } },
	{ "KP 7", 0x5f, { 0x6c }, { 0x47 } }, { "KP 8", 0x60, { 0x75 }, { 0x48 } },
	{ "KP 9", 0x61, { 0x7d }, { 0x49 } }, { "KP 0", 0x62, { 0x70 }, { 0x52 } },
	{ "KP .", 0x63, { 0x71 }, { 0x53 } },
	{ "ISO \\", 0x64, { 0x61 }, { 0x56 } },
	{ "Menu", 0x65, { 0xe0, 0x2f }, { 0xe0, 0x5d } },
	{ "Left Ctrl", 0xe0, { 0x14 }, { 0x1d } },
	{ "Left Shift", 0xe1, { 0x12 }, { 0x2a } },
	{ "Left Alt", 0xe2, { 0x11 }, { 0x38 } },
	{ "Left GUI", 0xe3, { 0xe0, 0x1f }, { 0xe0, 0x5b } },
	{ "Right Ctrl", 0xe4, { 0xe0, 0x14 }, { 0xe0, 0x1d } },
	{ "Right Shift", 0xe5, { 0x59 }, { 0x36 } },
	{ "AltGr", 0xe6, { 0xe0, 0x11 }, { 0xe0, 0x38 } },
	{ "Right GUI", 0xe7, { 0xe0, 0x27 }, { 0xe0, 0x5c } },
};

static size_t code_length(const uint8_t *code)
{
	return code[0] == 0xe0 ? 2 : 1;
}

Test(ps2_keyboard, every_key_in_set_1_through_translation)
{
	unsigned int count = 0;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *key = &keys[i];
		size_t length = code_length(key->set1);
		uint8_t expected[4], got[8];

		i8042_key_event(controller, key->usage, true);
		cr_assert_eq(drain(got, sizeof(got)), length, "%s make", key->name);
		cr_assert_arr_eq(got, key->set1, length, "%s make", key->name);

		/* Set 1 break: the make code with bit 7 set, after the
		 * prefix. */
		memcpy(expected, key->set1, length);
		expected[length - 1] |= 0x80;
		i8042_key_event(controller, key->usage, false);
		cr_assert_eq(drain(got, sizeof(got)), length, "%s break", key->name);
		cr_assert_arr_eq(got, expected, length, "%s break", key->name);
		count++;
	}
	/* 103 here, with Print Screen and Pause below: 105 keys, plus the
	 * US backslash. */
	cr_assert_eq(count, 104);
}

Test(ps2_keyboard, every_key_in_set_2_without_translation)
{
	write_ctr(CTR_KBDINT);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *key = &keys[i];
		size_t length = code_length(key->set2);
		uint8_t expected[4], got[8];

		i8042_key_event(controller, key->usage, true);
		cr_assert_eq(drain(got, sizeof(got)), length, "%s make", key->name);
		cr_assert_arr_eq(got, key->set2, length, "%s make", key->name);

		/* Set 2 break: 0xf0 before the last byte. */
		memcpy(expected, key->set2, length);
		expected[length - 1] = 0xf0;
		expected[length] = key->set2[length - 1];
		i8042_key_event(controller, key->usage, false);
		cr_assert_eq(drain(got, sizeof(got)), length + 1, "%s break",
			     key->name);
		cr_assert_arr_eq(got, expected, length + 1, "%s break", key->name);
	}
}

Test(ps2_keyboard, print_screen_and_pause)
{
	static const uint8_t print_make[] = { 0xe0, 0x2a, 0xe0, 0x37 };
	static const uint8_t print_break[] = { 0xe0, 0xb7, 0xe0, 0xaa };
	static const uint8_t pause[] = { 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5 };
	uint8_t got[16];

	i8042_key_event(controller, 0x46, true);
	cr_assert_eq(drain(got, sizeof(got)), sizeof(print_make));
	cr_assert_arr_eq(got, print_make, sizeof(print_make));
	i8042_key_event(controller, 0x46, false);
	cr_assert_eq(drain(got, sizeof(got)), sizeof(print_break));
	cr_assert_arr_eq(got, print_break, sizeof(print_break));

	i8042_key_event(controller, 0x48, true);
	cr_assert_eq(drain(got, sizeof(got)), sizeof(pause));
	cr_assert_arr_eq(got, pause, sizeof(pause));
	i8042_key_event(controller, 0x48, false);
	cr_assert_eq(drain(got, sizeof(got)), 0, "Pause has no break code");
}

Test(ps2_keyboard, unknown_usages_send_nothing)
{
	uint8_t got[8];

	i8042_key_event(controller, 0x00, true);
	i8042_key_event(controller, 0x66, true); /* Power: not on a PS/2 board */
	i8042_key_event(controller, 0xffff, true);
	cr_assert_eq(drain(got, sizeof(got)), 0);
}

Test(ps2_keyboard, repeat_sends_the_make_code_again)
{
	uint8_t got[8];

	i8042_key_event(controller, 0x04, true);
	i8042_key_event(controller, 0x04, true);
	i8042_key_event(controller, 0x04, false);
	cr_assert_eq(drain(got, sizeof(got)), 3);
	cr_assert_eq(got[0], 0x1e);
	cr_assert_eq(got[1], 0x1e);
	cr_assert_eq(got[2], 0x9e);
}

Test(ps2_keyboard, keys_raise_irq_1)
{
	i8042_key_event(controller, 0x04, true);
	cr_assert(keyboard_irq.level);
	cr_assert_eq(keyboard_irq.last_gsi, LAYOUT_KEYBOARD_GSI);
	cr_assert_eq(port_read8(bus, DATA), 0x1e);
	cr_assert_not(keyboard_irq.level);
	cr_assert_eq(mouse_irq.calls, 0);
}

Test(ps2_keyboard, disabled_scanning_drops_keys_until_enabled)
{
	uint8_t got[8];

	port_write8(bus, DATA, 0xf5); /* default and disable */
	cr_assert_eq(drain(got, sizeof(got)), 1);
	cr_assert_eq(got[0], 0xfa);
	i8042_key_event(controller, 0x04, true);
	cr_assert_eq(drain(got, sizeof(got)), 0);
	port_write8(bus, DATA, 0xf4); /* enable */
	drain(got, sizeof(got));
	i8042_key_event(controller, 0x04, true);
	cr_assert_eq(drain(got, sizeof(got)), 1);
	cr_assert_eq(got[0], 0x1e);
}

Test(ps2_keyboard, disabled_interface_holds_keys_in_the_keyboard)
{
	uint8_t got[8];

	write_ctr(CTR_KBDINT | CTR_XLATE | 0x10); /* keyboard clock off */
	i8042_key_event(controller, 0x05, true);
	cr_assert_eq(drain(got, sizeof(got)), 0);
	write_ctr(CTR_KBDINT | CTR_XLATE);
	cr_assert_eq(drain(got, sizeof(got)), 1);
	cr_assert_eq(got[0], 0x30);
}

Test(ps2_keyboard, full_buffer_drops_whole_sequences)
{
	struct ps2_keyboard keyboard;
	uint8_t byte;
	unsigned int count = 0;

	ps2_keyboard_init(&keyboard);
	/* Right Ctrl's break is 3 bytes: five fit in 16, the sixth does
	 * not, and no part of it is queued. */
	for (int i = 0; i < 6; i++)
		ps2_keyboard_key(&keyboard, 0xe4, false);
	while (ps2_keyboard_read(&keyboard, &byte))
		count++;
	cr_assert_eq(count, 15);
}

Test(ps2_keyboard, a_full_keyboard_says_the_key_was_not_taken)
{
	uint8_t got[32];

	/* A's make is one byte: the output buffer and the keyboard's 16
	 * take 17, the 18th is refused, and taken once the guest reads. */
	for (int i = 0; i < 17; i++)
		cr_assert(i8042_key_event(controller, 0x04, true), "key %d", i);
	cr_assert_not(i8042_key_event(controller, 0x04, true));
	cr_assert_eq(port_read8(bus, DATA), 0x1e);
	cr_assert(i8042_key_event(controller, 0x04, true));
	cr_assert_eq(drain(got, sizeof(got)), 17);
}

Test(ps2_keyboard, a_command_discards_unsent_keys_and_resend_repeats)
{
	struct ps2_keyboard keyboard;
	uint8_t byte;

	ps2_keyboard_init(&keyboard);
	ps2_keyboard_key(&keyboard, 0x04, true);
	ps2_keyboard_key(&keyboard, 0x05, true);
	ps2_keyboard_write(&keyboard, 0xee); /* echo */
	cr_assert(ps2_keyboard_read(&keyboard, &byte));
	cr_assert_eq(byte, 0xee);
	cr_assert_not(ps2_keyboard_read(&keyboard, &byte));
	ps2_keyboard_write(&keyboard, 0xfe); /* resend */
	cr_assert(ps2_keyboard_read(&keyboard, &byte));
	cr_assert_eq(byte, 0xee);
}

Test(ps2_keyboard, reset_restores_defaults)
{
	struct ps2_keyboard keyboard;
	uint8_t byte;

	ps2_keyboard_init(&keyboard);
	ps2_keyboard_write(&keyboard, 0xed);
	ps2_keyboard_write(&keyboard, 0x04);
	cr_assert_eq(keyboard.leds, PS2_LED_CAPS_LOCK);
	ps2_keyboard_write(&keyboard, 0xf5);
	cr_assert_not(keyboard.scanning);
	ps2_keyboard_write(&keyboard, 0xff);
	cr_assert(ps2_keyboard_read(&keyboard, &byte));
	cr_assert_eq(byte, 0xfa);
	cr_assert(ps2_keyboard_read(&keyboard, &byte));
	cr_assert_eq(byte, 0xaa);
	cr_assert(keyboard.scanning);
	cr_assert_eq(keyboard.leds, 0);
}

Test(ps2_keyboard, a_command_in_place_of_an_argument_is_a_command)
{
	struct ps2_keyboard keyboard;
	uint8_t byte;

	ps2_keyboard_init(&keyboard);
	ps2_keyboard_write(&keyboard, 0xed); /* set LEDs, then no argument */
	ps2_keyboard_write(&keyboard, 0xf2); /* identify */
	const uint8_t id[] = { 0xfa, 0xab, 0x83 };
	for (size_t i = 0; i < sizeof(id); i++) {
		cr_assert(ps2_keyboard_read(&keyboard, &byte));
		cr_assert_eq(byte, id[i]);
	}
	ps2_keyboard_write(&keyboard, 0xf7); /* a set-3 command */
	cr_assert(ps2_keyboard_read(&keyboard, &byte));
	cr_assert_eq(byte, 0xfe);
}
