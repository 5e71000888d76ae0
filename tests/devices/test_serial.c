#include <criterion/criterion.h>
#include <string.h>

#include "devices/serial.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define BASE LAYOUT_COM1_PORT
#define RBR (BASE + 0)
#define THR (BASE + 0)
#define DLL (BASE + 0)
#define IER (BASE + 1)
#define DLM (BASE + 1)
#define IIR (BASE + 2)
#define FCR (BASE + 2)
#define LCR (BASE + 3)
#define MCR (BASE + 4)
#define LSR (BASE + 5)
#define MSR (BASE + 6)
#define SCR (BASE + 7)

#define IER_RX 0x01
#define IER_THRE 0x02
#define IER_LINE 0x04
#define IER_MODEM 0x08
#define IIR_NONE 0x01
#define IIR_MODEM 0x00
#define IIR_THRE 0x02
#define IIR_RX 0x04
#define IIR_LINE 0x06
#define IIR_FIFO 0xc0
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct backend_record {
	uint8_t written[256];
	size_t written_len;
	unsigned int rx_ready_calls;
};

static void record_write(void *opaque, const uint8_t *data, size_t len)
{
	struct backend_record *record = opaque;

	cr_assert_leq(record->written_len + len, sizeof(record->written));
	memcpy(record->written + record->written_len, data, len);
	record->written_len += len;
}

static void record_rx_ready(void *opaque)
{
	struct backend_record *record = opaque;

	record->rx_ready_calls++;
}

static struct bus *bus;
static struct serial *serial;
static struct irq_recorder irq;
static struct backend_record backend;

static void setup(void)
{
	memset(&irq, 0, sizeof(irq));
	memset(&backend, 0, sizeof(backend));
	bus = bus_create("pio");
	serial = serial_create(irq_recorder_line(&irq, LAYOUT_COM1_GSI),
			       (struct serial_backend){
				       .write = record_write,
				       .rx_ready = record_rx_ready,
				       .opaque = &backend,
			       });
	cr_assert_not_null(bus);
	cr_assert_not_null(serial);
	cr_assert_eq(serial_attach(serial, bus, BASE), 0);
}

static void teardown(void)
{
	serial_destroy(serial);
	bus_destroy(bus);
}

TestSuite(serial, .init = setup, .fini = teardown);

static void enable_fifos(void)
{
	port_write8(bus, FCR, 0x07); /* enable, clear both */
}

Test(serial, claims_eight_ports)
{
	uint8_t data;

	cr_assert(bus_read(bus, BASE + 7, &data, 1));
	cr_assert_not(bus_read(bus, BASE + 8, &data, 1));
	cr_assert_not(bus_read(bus, BASE - 1, &data, 1));
}

Test(serial, scratch_register_keeps_any_value)
{
	port_write8(bus, SCR, 0xa5);
	cr_assert_eq(port_read8(bus, SCR), 0xa5);
	port_write8(bus, SCR, 0x5a);
	cr_assert_eq(port_read8(bus, SCR), 0x5a);
}

Test(serial, divisor_latch_is_behind_dlab)
{
	port_write8(bus, IER, 0x05);
	port_write8(bus, LCR, 0x83); /* DLAB, 8N1 */
	port_write8(bus, DLL, 0x01);
	port_write8(bus, DLM, 0x02);
	cr_assert_eq(port_read8(bus, DLL), 0x01);
	cr_assert_eq(port_read8(bus, DLM), 0x02);
	cr_assert_eq(backend.written_len, 0, "a DLL write is not transmitted");

	port_write8(bus, LCR, 0x03);
	cr_assert_eq(port_read8(bus, LCR), 0x03);
	cr_assert_eq(port_read8(bus, IER), 0x05, "DLM did not touch IER");
	port_write8(bus, LCR, 0x83);
	cr_assert_eq(port_read8(bus, DLL), 0x01);
	cr_assert_eq(port_read8(bus, DLM), 0x02);
}

Test(serial, transmitted_bytes_reach_the_backend)
{
	port_write8(bus, THR, 'o');
	port_write8(bus, THR, 'k');
	cr_assert_eq(backend.written_len, 2);
	cr_assert_eq(memcmp(backend.written, "ok", 2), 0);
	cr_assert_eq(port_read8(bus, LSR) & (LSR_THRE | LSR_TEMT),
		     LSR_THRE | LSR_TEMT);
}

Test(serial, ier_keeps_only_its_four_bits)
{
	/* Linux's autoconfig: IER must read back 0 and 0x0f, and bit 6
	 * (XScale UUE) must not stick. */
	port_write8(bus, IER, 0x00);
	cr_assert_eq(port_read8(bus, IER), 0x00);
	port_write8(bus, IER, 0x0f);
	cr_assert_eq(port_read8(bus, IER), 0x0f);
	port_write8(bus, IER, 0xff);
	cr_assert_eq(port_read8(bus, IER), 0x0f);
}

Test(serial, iir_shows_fifo_enabled_bits)
{
	cr_assert_eq(port_read8(bus, IIR), IIR_NONE);
	port_write8(bus, FCR, 0x01);
	cr_assert_eq(port_read8(bus, IIR), IIR_FIFO | IIR_NONE);
	port_write8(bus, FCR, 0x00);
	cr_assert_eq(port_read8(bus, IIR), IIR_NONE);
}

Test(serial, enabling_thre_interrupt_raises_it_and_iir_read_clears_it)
{
	port_write8(bus, IER, IER_THRE);
	cr_assert(irq.level);
	cr_assert_eq(irq.last_gsi, LAYOUT_COM1_GSI);
	cr_assert_eq(port_read8(bus, IIR), IIR_THRE);
	cr_assert_not(irq.level);
	cr_assert_eq(port_read8(bus, IIR), IIR_NONE);

	/* Linux's THRE re-assert test: disable and enable again. */
	port_write8(bus, IER, 0);
	port_write8(bus, IER, IER_THRE);
	cr_assert(irq.level);
	cr_assert_eq(port_read8(bus, IIR), IIR_THRE);

	/* Each transmitted byte empties THR again. */
	port_write8(bus, THR, 'x');
	cr_assert(irq.level);
	cr_assert_eq(port_read8(bus, IIR), IIR_THRE);
	cr_assert_eq(irq.calls, 6); /* up, down, up, down, up, down */
}

Test(serial, iir_reports_the_highest_priority_first)
{
	enable_fifos();
	port_write8(bus, MCR, MCR_LOOP);
	/* 16 bytes fill the FIFO, the 17th overruns. */
	for (int i = 0; i < 17; i++)
		port_write8(bus, THR, (uint8_t)i);
	port_write8(bus, MCR, MCR_LOOP | 0x02); /* RTS: delta CTS */
	port_write8(bus, IER, IER_RX | IER_THRE | IER_LINE | IER_MODEM);

	cr_assert_eq(port_read8(bus, IIR) & 0x0f, IIR_LINE);
	cr_assert_eq(port_read8(bus, LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
	cr_assert_eq(port_read8(bus, IIR) & 0x0f, IIR_RX);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(port_read8(bus, RBR), i);
	cr_assert_eq(port_read8(bus, IIR) & 0x0f, IIR_THRE);
	cr_assert_eq(port_read8(bus, IIR) & 0x0f, IIR_MODEM);
	cr_assert_eq(port_read8(bus, MSR) & 0x01, 0x01, "delta CTS");
	cr_assert_eq(port_read8(bus, IIR) & 0x0f, IIR_NONE);
	cr_assert_not(irq.level);
}

Test(serial, receive_fifo_takes_sixteen_bytes_then_refuses)
{
	uint8_t input[20];

	for (int i = 0; i < 20; i++)
		input[i] = (uint8_t)('a' + i);
	enable_fifos();
	cr_assert_eq(serial_receive(serial, input, 20), 16);
	cr_assert_eq(serial_receive(serial, input + 16, 4), 0);
	cr_assert_eq(port_read8(bus, LSR) & (LSR_DR | LSR_OE), LSR_DR,
		     "refused input is not an overrun");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(port_read8(bus, RBR), 'a' + i);
	cr_assert_eq(port_read8(bus, LSR) & LSR_DR, 0);
}

Test(serial, without_fifos_the_receiver_holds_one_byte)
{
	const uint8_t input[2] = { '1', '2' };

	cr_assert_eq(serial_receive(serial, input, 2), 1);
	cr_assert_eq(port_read8(bus, RBR), '1');
	cr_assert_eq(backend.rx_ready_calls, 1);
}

Test(serial, rx_ready_once_per_full_to_room_transition)
{
	uint8_t input[16] = { 0 };

	enable_fifos();
	cr_assert_eq(serial_receive(serial, input, 16), 16);
	cr_assert_eq(serial_receive(serial, input, 1), 0);
	cr_assert_eq(backend.rx_ready_calls, 0);
	port_read8(bus, RBR);
	cr_assert_eq(backend.rx_ready_calls, 1);
	port_read8(bus, RBR);
	cr_assert_eq(backend.rx_ready_calls, 1, "no second call while room");

	cr_assert_eq(serial_receive(serial, input, 16), 2);
	port_read8(bus, RBR);
	cr_assert_eq(backend.rx_ready_calls, 2);

	/* Clearing a full FIFO makes room too. */
	cr_assert_eq(serial_receive(serial, input, 16), 1);
	port_write8(bus, FCR, 0x03);
	cr_assert_eq(backend.rx_ready_calls, 3);
}

Test(serial, rx_interrupt_follows_data_and_changes_only_on_edges)
{
	const uint8_t input[3] = { 1, 2, 3 };

	enable_fifos();
	port_write8(bus, IER, IER_RX);
	cr_assert_eq(irq.calls, 0);
	cr_assert_eq(serial_receive(serial, input, 1), 1);
	cr_assert_eq(irq.calls, 1);
	cr_assert(irq.level);
	cr_assert_eq(serial_receive(serial, input + 1, 2), 2);
	cr_assert_eq(irq.calls, 1, "still high: no second call");
	cr_assert_eq(port_read8(bus, IIR), IIR_FIFO | IIR_RX);
	port_read8(bus, RBR);
	port_read8(bus, RBR);
	cr_assert_eq(irq.calls, 1);
	port_read8(bus, RBR);
	cr_assert_eq(irq.calls, 2);
	cr_assert_not(irq.level);
}

Test(serial, loopback_wires_outputs_to_inputs)
{
	/* Not in loopback: the host is ready and carrier is up. */
	cr_assert_eq(port_read8(bus, MSR) & 0xf0, 0xb0);

	/* Linux's probe: LOOP | OUT2 | RTS must read CTS | DCD. */
	port_write8(bus, MCR, MCR_LOOP | 0x0a);
	cr_assert_eq(port_read8(bus, MSR) & 0xf0, 0x90);
	port_write8(bus, MCR, MCR_LOOP | 0x0f);
	cr_assert_eq(port_read8(bus, MSR) & 0xf0, 0xf0);
	port_write8(bus, MCR, MCR_LOOP);
	cr_assert_eq(port_read8(bus, MSR), 0x0f, "all four deltas, no lines");

	port_write8(bus, THR, 'L');
	cr_assert_eq(backend.written_len, 0, "loopback does not transmit");
	cr_assert_eq(port_read8(bus, LSR) & LSR_DR, LSR_DR);
	cr_assert_eq(port_read8(bus, RBR), 'L');

	const uint8_t input = 'h';

	cr_assert_eq(serial_receive(serial, &input, 1), 1);
	cr_assert_eq(port_read8(bus, LSR) & LSR_DR, 0,
		     "the serial input is disconnected in loopback");

	port_write8(bus, MCR, 0x0b);
	cr_assert_eq(port_read8(bus, MSR) & 0xf0, 0xb0);
	port_write8(bus, THR, 'T');
	cr_assert_eq(backend.written_len, 1);
}

Test(serial, line_status_bits)
{
	const uint8_t input = 'z';

	cr_assert_eq(port_read8(bus, LSR), LSR_THRE | LSR_TEMT);
	cr_assert_eq(serial_receive(serial, &input, 1), 1);
	cr_assert_eq(port_read8(bus, LSR), LSR_THRE | LSR_TEMT | LSR_DR);

	/* Without FIFOs a second looped-back byte overruns. */
	port_write8(bus, MCR, MCR_LOOP);
	port_write8(bus, THR, 'y');
	cr_assert_eq(port_read8(bus, LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
	cr_assert_eq(port_read8(bus, LSR), LSR_THRE | LSR_TEMT | LSR_DR,
		     "reading LSR clears OE");
	cr_assert_eq(port_read8(bus, RBR), 'z');
}

Test(serial, wide_access_reaches_consecutive_registers)
{
	port_write16(bus, LCR, 0x0b03); /* LCR = 0x03, MCR = 0x0b */
	cr_assert_eq(port_read8(bus, LCR), 0x03);
	cr_assert_eq(port_read8(bus, MCR), 0x0b);
}

/* The register sequence of Linux's 8250 autoconfig() and
 * autoconfig_16550a() (drivers/tty/serial/8250/8250_port.c), with the
 * answers it needs to settle on PORT_16550A. */
Test(serial, linux_autoconfig_detects_a_16550a)
{
	/* Scratch test through IER. */
	uint8_t saved_ier = port_read8(bus, IER);

	port_write8(bus, IER, 0);
	cr_assert_eq(port_read8(bus, IER) & 0x0f, 0);
	port_write8(bus, IER, 0x0f);
	cr_assert_eq(port_read8(bus, IER) & 0x0f, 0x0f);
	port_write8(bus, IER, saved_ier);

	/* Loopback test. */
	uint8_t saved_mcr = port_read8(bus, MCR);
	uint8_t saved_lcr = port_read8(bus, LCR);

	port_write8(bus, MCR, MCR_LOOP | 0x0a);
	cr_assert_eq(port_read8(bus, MSR) & 0xf0, 0x90);
	port_write8(bus, MCR, saved_mcr);

	/* LCR 0xbf then EFR (FCR here) = 0, then FIFO enable: IIR bits
	 * 7-6 == 3 means a 16550A candidate. */
	port_write8(bus, LCR, 0xbf);
	port_write8(bus, BASE + 2, 0);
	port_write8(bus, LCR, 0);
	port_write8(bus, FCR, 0x01);
	cr_assert_eq(port_read8(bus, IIR) >> 6, 3);

	/* No EFR under DLAB (LCR 0x80) or LCR 0xbf: offset 2 reads IIR,
	 * which is never 0. */
	port_write8(bus, LCR, 0x80);
	cr_assert_neq(port_read8(bus, BASE + 2), 0);
	port_write8(bus, LCR, 0xbf);
	cr_assert_neq(port_read8(bus, BASE + 2), 0);

	/* Not a National SuperIO: EXCR1 (offset 2 with LCR 0xe0) does not
	 * follow MCR's loop bit. */
	port_write8(bus, LCR, 0);
	uint8_t status1 = port_read8(bus, MCR);

	port_write8(bus, LCR, 0xe0);
	uint8_t status2 = port_read8(bus, BASE + 2);

	cr_assert_eq((status1 ^ status2) & MCR_LOOP, 0);
	port_write8(bus, LCR, 0);
	port_write8(bus, MCR, status1 ^ MCR_LOOP);
	port_write8(bus, LCR, 0xe0);
	status2 = port_read8(bus, BASE + 2);
	port_write8(bus, LCR, 0);
	port_write8(bus, MCR, status1);
	cr_assert_eq((status1 ^ status2) & MCR_LOOP, 0);

	/* Not a TI16750: IIR bit 5 (64-byte FIFO) never sets. */
	port_write8(bus, FCR, 0x01 | 0x20);
	cr_assert_eq(port_read8(bus, IIR) & 0xe0, 0xc0);
	port_write8(bus, LCR, 0x80);
	port_write8(bus, FCR, 0x01 | 0x20);
	cr_assert_eq(port_read8(bus, IIR) & 0xe0, 0xc0);
	port_write8(bus, FCR, 0x01);
	port_write8(bus, LCR, 0);

	/* Not an XScale: IER bit 6 does not stick. */
	port_write8(bus, IER, 0x40);
	cr_assert_eq(port_read8(bus, IER) & 0x40, 0);

	port_write8(bus, LCR, saved_lcr);
	/* And the startup check: LSR is not 0xff. */
	cr_assert_neq(port_read8(bus, LSR), 0xff);
}
