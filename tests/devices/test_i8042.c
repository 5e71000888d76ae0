#include <criterion/criterion.h>
#include <string.h>

#include "devices/i8042.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define DATA LAYOUT_I8042_DATA_PORT
#define COMMAND LAYOUT_I8042_COMMAND_PORT

#define STATUS_OBF 0x01
#define STATUS_AUX 0x20
#define STATUS_TIMEOUT 0x40
#define CTR_KBDINT 0x01
#define CTR_AUXINT 0x02
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40

static struct bus *bus;
static struct i8042 *controller;
static struct irq_recorder keyboard_irq;
static struct irq_recorder mouse_irq;
static unsigned int resets;

static void count_reset(void *opaque)
{
	cr_assert_eq(opaque, &resets);
	resets++;
}

static void setup(void)
{
	memset(&keyboard_irq, 0, sizeof(keyboard_irq));
	memset(&mouse_irq, 0, sizeof(mouse_irq));
	resets = 0;
	bus = bus_create("pio");
	controller = i8042_create(
		irq_recorder_line(&keyboard_irq, LAYOUT_KEYBOARD_GSI),
		irq_recorder_line(&mouse_irq, LAYOUT_MOUSE_GSI), count_reset,
		&resets);
	cr_assert_not_null(bus);
	cr_assert_not_null(controller);
	cr_assert_eq(i8042_attach(controller, bus, DATA, COMMAND), 0);
}

static void teardown(void)
{
	i8042_destroy(controller);
	bus_destroy(bus);
}

TestSuite(i8042, .init = setup, .fini = teardown);

/* What Linux's i8042_command() does for a reply: wait for OBF, read. */
static uint8_t read_reply(void)
{
	cr_assert(port_read8(bus, COMMAND) & STATUS_OBF, "no reply waiting");
	return port_read8(bus, DATA);
}

static void assert_empty(void)
{
	cr_assert_eq(port_read8(bus, COMMAND) & STATUS_OBF, 0,
		     "unexpected output byte");
}

static void write_ctr(uint8_t value)
{
	port_write8(bus, COMMAND, 0x60);
	port_write8(bus, DATA, value);
}

static uint8_t read_ctr(void)
{
	port_write8(bus, COMMAND, 0x20);
	return read_reply();
}

Test(i8042, status_is_sane_at_power_on)
{
	uint8_t status = port_read8(bus, COMMAND);

	cr_assert_neq(status, 0xff, "Linux would see no controller");
	cr_assert_eq(status & STATUS_OBF, 0);
	cr_assert_eq(status & 0x10, 0x10, "keylock must be off");
}

Test(i8042, self_test_answers_0x55)
{
	port_write8(bus, COMMAND, 0xaa);
	cr_assert_eq(read_reply(), 0x55);
	assert_empty();
}

Test(i8042, interface_tests_pass)
{
	port_write8(bus, COMMAND, 0xab);
	cr_assert_eq(read_reply(), 0x00);
	port_write8(bus, COMMAND, 0xa9);
	cr_assert_eq(read_reply(), 0x00);
	assert_empty();
}

Test(i8042, command_byte_round_trips)
{
	cr_assert_eq(read_ctr(), 0x65, "what a BIOS leaves: XLATE, AUXDIS, "
				       "SYS, KBDINT");
	write_ctr(0x47);
	cr_assert_eq(read_ctr(), 0x47);
	cr_assert_eq(port_read8(bus, COMMAND) & 0x04, 0x04,
		     "status mirrors the system flag");
	write_ctr(0x00);
	cr_assert_eq(read_ctr(), 0x00);
	cr_assert_eq(port_read8(bus, COMMAND) & 0x04, 0);
}

Test(i8042, port_enable_commands_toggle_the_command_byte)
{
	port_write8(bus, COMMAND, 0xa8);
	cr_assert_eq(read_ctr() & CTR_AUXDIS, 0);
	port_write8(bus, COMMAND, 0xa7);
	cr_assert_eq(read_ctr() & CTR_AUXDIS, CTR_AUXDIS);
	port_write8(bus, COMMAND, 0xad);
	cr_assert_eq(read_ctr() & CTR_KBDDIS, CTR_KBDDIS);
	port_write8(bus, COMMAND, 0xae);
	cr_assert_eq(read_ctr() & CTR_KBDDIS, 0);
}

Test(i8042, pulse_command_with_bit0_low_requests_reset)
{
	port_write8(bus, COMMAND, 0xff); /* pulses nothing */
	cr_assert_eq(resets, 0);
	port_write8(bus, COMMAND, 0xfe);
	cr_assert_eq(resets, 1);
	port_write8(bus, COMMAND, 0xf0);
	cr_assert_eq(resets, 2);
	port_write8(bus, COMMAND, 0xfd); /* bit 1 only: A20, not reset */
	cr_assert_eq(resets, 2);
}

Test(i8042, output_port_write_with_bit0_clear_requests_reset)
{
	port_write8(bus, COMMAND, 0xd0);
	cr_assert_eq(read_reply(), 0x03);
	port_write8(bus, COMMAND, 0xd1);
	port_write8(bus, DATA, 0x03);
	cr_assert_eq(resets, 0);
	port_write8(bus, COMMAND, 0xd1);
	port_write8(bus, DATA, 0x02);
	cr_assert_eq(resets, 1);
	assert_empty();
}

Test(i8042, keyboard_reset_acks_and_passes_self_test)
{
	port_write8(bus, DATA, 0xff);
	cr_assert_eq(read_reply(), 0xfa);
	cr_assert_eq(read_reply(), 0xaa);
	assert_empty();
}

Test(i8042, keyboard_identifies_as_mf2)
{
	port_write8(bus, DATA, 0xf2);
	cr_assert_eq(read_reply(), 0xfa);
	cr_assert_eq(read_reply(), 0xab);
	cr_assert_eq(read_reply(), 0x41, "translated by default");

	write_ctr(CTR_KBDINT);
	port_write8(bus, DATA, 0xf2);
	cr_assert_eq(read_reply(), 0xfa);
	cr_assert_eq(read_reply(), 0xab);
	cr_assert_eq(read_reply(), 0x83);
}

Test(i8042, keyboard_commands_with_arguments)
{
	port_write8(bus, DATA, 0xed); /* set LEDs */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0x07);
	cr_assert_eq(read_reply(), 0xfa);
	assert_empty();

	cr_assert_eq(i8042_keyboard_leds(controller), 0x07);

	port_write8(bus, DATA, 0xf0); /* get scancode set */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0x00);
	cr_assert_eq(read_reply(), 0xfa);
	/* The 8042 translates the reply too: set 2 reads as 0x41. */
	cr_assert_eq(read_reply(), 0x41);
	write_ctr(CTR_KBDINT);
	port_write8(bus, DATA, 0xf0);
	read_reply();
	port_write8(bus, DATA, 0x00);
	read_reply();
	cr_assert_eq(read_reply(), 0x02, "untranslated");
	port_write8(bus, DATA, 0xf0); /* select set 2 */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0x02);
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0xf0); /* select set 1: not offered */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0x01);
	cr_assert_eq(read_reply(), 0xfe);

	port_write8(bus, DATA, 0xf3); /* typematic rate */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0x20);
	cr_assert_eq(read_reply(), 0xfa);

	port_write8(bus, DATA, 0xf4); /* enable scanning */
	cr_assert_eq(read_reply(), 0xfa);
	port_write8(bus, DATA, 0xee); /* echo */
	cr_assert_eq(read_reply(), 0xee);
	assert_empty();
}

Test(i8042, keyboard_irq_only_when_enabled_in_command_byte)
{
	write_ctr(0x00);
	port_write8(bus, DATA, 0xff);
	cr_assert_eq(keyboard_irq.calls, 0);
	read_reply();
	read_reply();
	cr_assert_eq(keyboard_irq.calls, 0);

	write_ctr(CTR_KBDINT);
	port_write8(bus, DATA, 0xff);
	cr_assert_eq(keyboard_irq.calls, 1);
	cr_assert(keyboard_irq.level);
	cr_assert_eq(keyboard_irq.last_gsi, LAYOUT_KEYBOARD_GSI);
	/* Reading the first byte while a second waits is a new edge. */
	cr_assert_eq(port_read8(bus, DATA), 0xfa);
	cr_assert_eq(keyboard_irq.calls, 3);
	cr_assert_eq(keyboard_irq.history[1], false);
	cr_assert_eq(keyboard_irq.history[2], true);
	cr_assert_eq(port_read8(bus, DATA), 0xaa);
	cr_assert_eq(keyboard_irq.calls, 4);
	cr_assert_not(keyboard_irq.level);
	cr_assert_eq(mouse_irq.calls, 0);
}

Test(i8042, enabling_the_interrupt_with_a_byte_waiting_raises_it)
{
	write_ctr(0x00);
	port_write8(bus, COMMAND, 0xaa);
	cr_assert_eq(keyboard_irq.calls, 0);
	write_ctr(CTR_KBDINT);
	cr_assert(keyboard_irq.level);
	cr_assert_eq(read_reply(), 0x55);
	cr_assert_not(keyboard_irq.level);
}

Test(i8042, aux_loopback_returns_the_byte_as_aux_data)
{
	write_ctr(CTR_KBDINT | CTR_AUXINT);
	port_write8(bus, COMMAND, 0xd3);
	port_write8(bus, DATA, 0xa5);
	uint8_t status = port_read8(bus, COMMAND);

	cr_assert_eq(status & (STATUS_OBF | STATUS_AUX),
		     STATUS_OBF | STATUS_AUX);
	cr_assert(mouse_irq.level);
	cr_assert_eq(mouse_irq.last_gsi, LAYOUT_MOUSE_GSI);
	cr_assert_eq(keyboard_irq.calls, 0);
	cr_assert_eq(port_read8(bus, DATA), 0xa5);
	cr_assert_not(mouse_irq.level);
	assert_empty();
}

Test(i8042, keyboard_output_buffer_write)
{
	port_write8(bus, COMMAND, 0xd2);
	port_write8(bus, DATA, 0x1c);
	cr_assert_eq(port_read8(bus, COMMAND) & STATUS_AUX, 0);
	cr_assert_eq(read_reply(), 0x1c);
}

Test(i8042, the_mouse_answers_on_the_aux_port_with_irq_12)
{
	write_ctr(CTR_KBDINT | CTR_AUXINT);
	port_write8(bus, COMMAND, 0xd4);
	port_write8(bus, DATA, 0xf2); /* psmouse's first command: GET ID */
	uint8_t status = port_read8(bus, COMMAND);

	cr_assert_eq(status & (STATUS_OBF | STATUS_AUX | STATUS_TIMEOUT),
		     STATUS_OBF | STATUS_AUX);
	cr_assert(mouse_irq.level);
	cr_assert_eq(mouse_irq.last_gsi, LAYOUT_MOUSE_GSI);
	cr_assert_eq(port_read8(bus, DATA), 0xfa);
	cr_assert(port_read8(bus, COMMAND) & STATUS_AUX);
	cr_assert_eq(port_read8(bus, DATA), 0x00, "a standard mouse");
	cr_assert_not(mouse_irq.level);
	cr_assert_eq(keyboard_irq.calls, 0);
}

/* Linux's i8042_check_aux() and i8042_set_mux_mode() probing
 * (drivers/input/serio/i8042.c): an AUX port that loops back, toggles
 * AUXDIS, delivers IRQ 12, and is no active multiplexer. */
Test(i8042, linux_aux_probe_finds_a_plain_aux_port)
{
	port_write8(bus, COMMAND, 0xd3);
	port_write8(bus, DATA, 0x5a);
	cr_assert(port_read8(bus, COMMAND) & STATUS_AUX);
	cr_assert_eq(read_reply(), 0x5a);

	port_write8(bus, COMMAND, 0xa7);
	cr_assert(read_ctr() & CTR_AUXDIS);
	port_write8(bus, COMMAND, 0xa8);
	cr_assert_eq(read_ctr() & CTR_AUXDIS, 0);

	/* IRQ delivery test. */
	write_ctr((read_ctr() & ~CTR_AUXDIS) | CTR_AUXINT);
	port_write8(bus, COMMAND, 0xd3);
	port_write8(bus, DATA, 0xa5);
	cr_assert(mouse_irq.level);
	cr_assert_eq(read_reply(), 0xa5);

	/* MUX detection: 0xf0, 0x56, 0xa4 all come back unchanged, and a
	 * 0xa4 that comes back as itself means "no MUX". */
	const uint8_t sequence[] = { 0xf0, 0x56, 0xa4 };

	for (size_t i = 0; i < sizeof(sequence); i++) {
		port_write8(bus, COMMAND, 0xd3);
		port_write8(bus, DATA, sequence[i]);
		cr_assert_eq(read_reply(), sequence[i]);
	}
}

Test(i8042, data_port_repeats_the_last_byte_when_empty)
{
	port_write8(bus, COMMAND, 0xaa);
	cr_assert_eq(port_read8(bus, DATA), 0x55);
	cr_assert_eq(port_read8(bus, DATA), 0x55);
}
