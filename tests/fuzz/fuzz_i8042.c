/*
 * The i8042 controller (devices/i8042.c): a guest's commands, command
 * bytes, output port writes and data reads in any order, through a real
 * port-I/O bus, with its reset requests counted.
 *
 * Input: port accesses (fuzz_port_access) around the data and command
 * ports, until the input ends.
 */
#include <stdlib.h>

#include "devices/i8042.h"
#include "vmm/machine_layout.h"
#include "fuzz_port_io.h"
#include "tests/devices/fakes.h"

static void count_reset(void *opaque)
{
	(*(unsigned int *)opaque)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct irq_recorder keyboard = { 0 }, mouse = { 0 };
	unsigned int resets = 0;
	struct bus *bus = bus_create("pio");
	struct i8042 *controller = i8042_create(
		irq_recorder_line(&keyboard, LAYOUT_KEYBOARD_GSI),
		irq_recorder_line(&mouse, LAYOUT_MOUSE_GSI), count_reset,
		&resets);

	if (!bus || !controller ||
	    i8042_attach(controller, bus, LAYOUT_I8042_DATA_PORT,
			 LAYOUT_I8042_COMMAND_PORT))
		abort();
	/* 0x5f-0x65: both ports, their neighbours, and the sizes that
	 * overlap them. */
	while (!fuzz_input_empty(&input))
		fuzz_port_access(bus, LAYOUT_I8042_DATA_PORT - 1, 7, &input);
	i8042_destroy(controller);
	bus_destroy(bus);
	return 0;
}
