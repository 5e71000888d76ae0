/*
 * The 8250 UART (devices/serial.c): a guest's accesses to any of its
 * registers in any order (divisor latch, FIFO control, loopback, interrupt
 * enables), interleaved with host input, through a real port-I/O bus.
 *
 * Input: operations, a byte each: even, a port access (fuzz_port_access)
 * of COM1's 8 ports; odd, host input of up to 32 bytes.
 */
#include <stdlib.h>

#include "devices/serial.h"
#include "vmm/machine_layout.h"
#include "fuzz_port_io.h"
#include "tests/devices/fakes.h"

static void discard(void *opaque, const uint8_t *data, size_t len)
{
	(void)opaque;
	(void)data;
	(void)len;
}

static void nothing(void *opaque)
{
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct irq_recorder irq = { 0 };
	struct bus *bus = bus_create("pio");
	struct serial *serial = serial_create(
		irq_recorder_line(&irq, LAYOUT_COM1_GSI),
		(struct serial_backend){ .write = discard, .rx_ready = nothing });

	if (!bus || !serial || serial_attach(serial, bus, LAYOUT_COM1_PORT))
		abort();
	while (!fuzz_input_empty(&input)) {
		uint8_t op = fuzz_take_u8(&input);
		const uint8_t *bytes;
		size_t len;

		if (!(op & 1)) {
			fuzz_port_access(bus, LAYOUT_COM1_PORT - 1,
					 SERIAL_PORT_COUNT + 2, &input);
			continue;
		}
		len = fuzz_take_bytes(&input, op >> 3, &bytes);
		serial_receive(serial, bytes, len);
	}
	serial_destroy(serial);
	bus_destroy(bus);
	return 0;
}
