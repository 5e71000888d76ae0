#include "ps2_keyboard.h"

#include <string.h>

/* Keyboard commands (IBM PS/2 Technical Reference, "Keyboard Commands
 * from the System"). */
#define KBD_SET_LEDS 0xed
#define KBD_ECHO 0xee
#define KBD_SCANCODE_SET 0xf0
#define KBD_IDENTIFY 0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_ENABLE 0xf4
#define KBD_DEFAULT_DISABLE 0xf5
#define KBD_SET_DEFAULT 0xf6
#define KBD_RESEND 0xfe
#define KBD_RESET 0xff

/* An MF2 keyboard's ID; the i8042 translates 0x83 to 0x41. */
#define KBD_ID_FIRST 0xab
#define KBD_ID_SECOND 0x83
#define KBD_SCANCODE_SET_2 2
/* 10.9 characters per second after 500 ms: the power-on default. */
#define KBD_DEFAULT_TYPEMATIC 0x2b

#define SET2_EXTENDED 0xe0
#define SET2_BREAK 0xf0

/* HID usages (USB HID Usage Tables, keyboard/keypad page 0x07) of the
 * keys with sequences of their own. */
#define USAGE_PRINT_SCREEN 0x46
#define USAGE_PAUSE 0x48

/* Set-2 make codes by HID usage; EXTENDED marks the keys prefixed by 0xe0.
 * Every key of the 105-key ISO layout and the 104-key US one, whose
 * backslash (0x31) sits where ISO's 0x32 does. */
#define EXTENDED 0x100
static const uint16_t set2_codes[] = {
	[0x04] = 0x1c, [0x05] = 0x32, [0x06] = 0x21, [0x07] = 0x23, /* a-d */
	[0x08] = 0x24, [0x09] = 0x2b, [0x0a] = 0x34, [0x0b] = 0x33, /* e-h */
	[0x0c] = 0x43, [0x0d] = 0x3b, [0x0e] = 0x42, [0x0f] = 0x4b, /* i-l */
	[0x10] = 0x3a, [0x11] = 0x31, [0x12] = 0x44, [0x13] = 0x4d, /* m-p */
	[0x14] = 0x15, [0x15] = 0x2d, [0x16] = 0x1b, [0x17] = 0x2c, /* q-t */
	[0x18] = 0x3c, [0x19] = 0x2a, [0x1a] = 0x1d, [0x1b] = 0x22, /* u-x */
	[0x1c] = 0x35, [0x1d] = 0x1a,                               /* y-z */
	[0x1e] = 0x16, [0x1f] = 0x1e, [0x20] = 0x26, [0x21] = 0x25, /* 1-4 */
	[0x22] = 0x2e, [0x23] = 0x36, [0x24] = 0x3d, [0x25] = 0x3e, /* 5-8 */
	[0x26] = 0x46, [0x27] = 0x45,                               /* 9, 0 */
	[0x28] = 0x5a, /* Enter */
	[0x29] = 0x76, /* Escape */
	[0x2a] = 0x66, /* Backspace */
	[0x2b] = 0x0d, /* Tab */
	[0x2c] = 0x29, /* Space */
	[0x2d] = 0x4e, /* - */
	[0x2e] = 0x55, /* = */
	[0x2f] = 0x54, /* [ */
	[0x30] = 0x5b, /* ] */
	[0x31] = 0x5d, /* \ (US) */
	[0x32] = 0x5d, /* # (ISO, left of Enter) */
	[0x33] = 0x4c, /* ; */
	[0x34] = 0x52, /* ' */
	[0x35] = 0x0e, /* ` */
	[0x36] = 0x41, /* , */
	[0x37] = 0x49, /* . */
	[0x38] = 0x4a, /* / */
	[0x39] = 0x58, /* Caps Lock */
	[0x3a] = 0x05, [0x3b] = 0x06, [0x3c] = 0x04, [0x3d] = 0x0c, /* F1-F4 */
	[0x3e] = 0x03, [0x3f] = 0x0b, [0x40] = 0x83, [0x41] = 0x0a, /* F5-F8 */
	[0x42] = 0x01, [0x43] = 0x09, [0x44] = 0x78, [0x45] = 0x07, /* F9-F12 */
	[0x47] = 0x7e, /* Scroll Lock */
	[0x49] = EXTENDED | 0x70, /* Insert */
	[0x4a] = EXTENDED | 0x6c, /* Home */
	[0x4b] = EXTENDED | 0x7d, /* Page Up */
	[0x4c] = EXTENDED | 0x71, /* Delete */
	[0x4d] = EXTENDED | 0x69, /* End */
	[0x4e] = EXTENDED | 0x7a, /* Page Down */
	[0x4f] = EXTENDED | 0x74, /* Right */
	[0x50] = EXTENDED | 0x6b, /* Left */
	[0x51] = EXTENDED | 0x72, /* Down */
	[0x52] = EXTENDED | 0x75, /* Up */
	[0x53] = 0x77, /* Num Lock */
	[0x54] = EXTENDED | 0x4a, /* keypad / */
	[0x55] = 0x7c, /* keypad * */
	[0x56] = 0x7b, /* keypad - */
	[0x57] = 0x79, /* keypad + */
	[0x58] = EXTENDED | 0x5a, /* keypad Enter */
	[0x59] = 0x69, [0x5a] = 0x72, [0x5b] = 0x7a, /* keypad 1-3 */
	[0x5c] = 0x6b, [0x5d] = 0x73, [0x5e] = 0x74, /* keypad 4-6 */
	[0x5f] = 0x6c, [0x60] = 0x75, [0x61] = 0x7d, /* keypad 7-9 */
	[0x62] = 0x70, /* keypad 0 */
	[0x63] = 0x71, /* keypad . */
	[0x64] = 0x61, /* \ and | left of Z (ISO) */
	[0x65] = EXTENDED | 0x2f, /* Menu */
	[0xe0] = 0x14, /* left Ctrl */
	[0xe1] = 0x12, /* left Shift */
	[0xe2] = 0x11, /* left Alt */
	[0xe3] = EXTENDED | 0x1f, /* left GUI */
	[0xe4] = EXTENDED | 0x14, /* right Ctrl */
	[0xe5] = 0x59, /* right Shift */
	[0xe6] = EXTENDED | 0x11, /* right Alt (AltGr) */
	[0xe7] = EXTENDED | 0x27, /* right GUI */
};

/* Print Screen is "fake Shift" plus its own code; Pause has no break
 * code and makes its whole sequence at once (IBM PS/2 Technical
 * Reference, "Scan Code Set 2", keys 124 and 126). */
static const uint8_t print_screen_make[] = { 0xe0, 0x12, 0xe0, 0x7c };
static const uint8_t print_screen_break[] = { 0xe0, 0xf0, 0x7c,
					      0xe0, 0xf0, 0x12 };
static const uint8_t pause_make[] = { 0xe1, 0x14, 0x77, 0xe1,
				      0xf0, 0x14, 0xf0, 0x77 };

static size_t copy_sequence(uint8_t *out, const uint8_t *sequence,
			    size_t length)
{
	memcpy(out, sequence, length);
	return length;
}

size_t ps2_keyboard_set2_sequence(uint16_t usage, bool pressed, uint8_t *out)
{
	size_t length = 0;

	if (usage == USAGE_PRINT_SCREEN)
		return pressed ? copy_sequence(out, print_screen_make,
					       sizeof(print_screen_make)) :
				 copy_sequence(out, print_screen_break,
					       sizeof(print_screen_break));
	if (usage == USAGE_PAUSE)
		return pressed ? copy_sequence(out, pause_make,
					       sizeof(pause_make)) : 0;
	if (usage >= sizeof(set2_codes) / sizeof(set2_codes[0]) ||
	    set2_codes[usage] == 0)
		return 0;
	if (set2_codes[usage] & EXTENDED)
		out[length++] = SET2_EXTENDED;
	if (!pressed)
		out[length++] = SET2_BREAK;
	out[length++] = (uint8_t)set2_codes[usage];
	return length;
}

/* Power-on and reset defaults, buffer aside. */
static void set_defaults(struct ps2_keyboard *keyboard)
{
	keyboard->typematic = KBD_DEFAULT_TYPEMATIC;
	keyboard->leds = 0;
}

void ps2_keyboard_init(struct ps2_keyboard *keyboard)
{
	*keyboard = (struct ps2_keyboard){ .scanning = true };
	ps2_queue_init(&keyboard->queue, PS2_KEYBOARD_BUFFER);
	set_defaults(keyboard);
}

static void reply(struct ps2_keyboard *keyboard, const uint8_t *bytes,
		  size_t length)
{
	ps2_queue_put_all(&keyboard->queue, bytes, length);
}

static void reply_byte(struct ps2_keyboard *keyboard, uint8_t byte)
{
	reply(keyboard, &byte, 1);
}

/* The argument of a command that takes one. */
static void command_argument(struct ps2_keyboard *keyboard, uint8_t command,
			     uint8_t argument)
{
	switch (command) {
	case KBD_SET_LEDS:
		keyboard->leds = argument & (PS2_LED_SCROLL_LOCK |
					     PS2_LED_NUM_LOCK |
					     PS2_LED_CAPS_LOCK);
		reply_byte(keyboard, PS2_ACK);
		break;
	case KBD_TYPEMATIC:
		keyboard->typematic = argument & 0x7f;
		reply_byte(keyboard, PS2_ACK);
		break;
	default: /* KBD_SCANCODE_SET */
		if (argument == 0) {
			const uint8_t current[] = { PS2_ACK, KBD_SCANCODE_SET_2 };

			reply(keyboard, current, sizeof(current));
		} else if (argument == KBD_SCANCODE_SET_2) {
			reply_byte(keyboard, PS2_ACK);
		} else {
			/* Sets 1 and 3 are not offered: the i8042's
			 * translation gives set 1, and Linux uses set 3
			 * only when told to (atkbd.set=3). */
			reply_byte(keyboard, PS2_RESEND);
		}
		break;
	}
}

void ps2_keyboard_write(struct ps2_keyboard *keyboard, uint8_t byte)
{
	uint8_t command = keyboard->pending_command;

	keyboard->pending_command = 0;
	/* Any byte from the host stops the keyboard's output: what it had
	 * not yet sent is gone, and the reply comes next. */
	ps2_queue_clear(&keyboard->queue);
	/* Arguments are below 0x80; a command byte in their place is a new
	 * command, as on the real keyboard. */
	if (command && byte < KBD_SET_LEDS) {
		command_argument(keyboard, command, byte);
		return;
	}
	switch (byte) {
	case KBD_SET_LEDS:
	case KBD_TYPEMATIC:
	case KBD_SCANCODE_SET:
		keyboard->pending_command = byte;
		reply_byte(keyboard, PS2_ACK);
		break;
	case KBD_ECHO:
		reply_byte(keyboard, KBD_ECHO);
		break;
	case KBD_IDENTIFY: {
		const uint8_t id[] = { PS2_ACK, KBD_ID_FIRST, KBD_ID_SECOND };

		reply(keyboard, id, sizeof(id));
		break;
	}
	case KBD_ENABLE:
		keyboard->scanning = true;
		reply_byte(keyboard, PS2_ACK);
		break;
	case KBD_DEFAULT_DISABLE:
		set_defaults(keyboard);
		keyboard->scanning = false;
		reply_byte(keyboard, PS2_ACK);
		break;
	case KBD_SET_DEFAULT:
		set_defaults(keyboard);
		keyboard->scanning = true;
		reply_byte(keyboard, PS2_ACK);
		break;
	case KBD_RESEND:
		reply_byte(keyboard, keyboard->last_sent);
		break;
	case KBD_RESET: {
		const uint8_t passed[] = { PS2_ACK, PS2_SELF_TEST_PASSED };

		set_defaults(keyboard);
		keyboard->scanning = true;
		reply(keyboard, passed, sizeof(passed));
		break;
	}
	default:
		/* The set-3 key type commands (0xf7-0xfd) and anything
		 * undefined. */
		reply_byte(keyboard, PS2_RESEND);
		break;
	}
}

bool ps2_keyboard_key(struct ps2_keyboard *keyboard, uint16_t usage,
		      bool pressed)
{
	uint8_t sequence[PS2_KEY_SEQUENCE_MAX];
	size_t length;

	if (!keyboard->scanning)
		return true;
	length = ps2_keyboard_set2_sequence(usage, pressed, sequence);
	/* A full buffer takes no part of the key, as on the real keyboard;
	 * the caller may offer it again once the host has read. */
	return ps2_queue_put_all(&keyboard->queue, sequence, length);
}

bool ps2_keyboard_read(struct ps2_keyboard *keyboard, uint8_t *byte)
{
	if (!ps2_queue_get(&keyboard->queue, byte))
		return false;
	keyboard->last_sent = *byte;
	return true;
}
