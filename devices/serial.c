/*
 * Register behaviour follows the National/TI PC16550D datasheet ("PC16550D
 * Universal Asynchronous Receiver/Transmitter with FIFOs"), register
 * descriptions and Table IV (interrupt control functions). Transmission
 * is instantaneous: the host backend always takes the byte, so the
 * transmitter is always empty (LSR THRE and TEMT always set).
 */
#include "serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* Register offsets from the base port. */
#define REG_DATA 0 /* RBR (read), THR (write); DLL when LCR.DLAB */
#define REG_IER 1 /* DLM when LCR.DLAB */
#define REG_IIR_FCR 2 /* IIR (read), FCR (write) */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RX_DATA 0x01 /* ERBFI */
#define IER_THR_EMPTY 0x02 /* ETBEI */
#define IER_LINE_STATUS 0x04 /* ELSI */
#define IER_MODEM_STATUS 0x08 /* EDSSI */
#define IER_MASK 0x0f /* bits 4-7 are always 0 on a 16550A */

#define IIR_NO_INTERRUPT 0x01
#define IIR_MODEM_STATUS 0x00
#define IIR_THR_EMPTY 0x02
#define IIR_RX_DATA 0x04
#define IIR_LINE_STATUS 0x06
#define IIR_FIFOS_ENABLED 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
/* Kept: enable, DMA mode select and the receive trigger level. The trigger
 * level is stored for the guest's sake but vessel raises the receive
 * interrupt as soon as any byte waits, as a character timeout would. */
#define FCR_STORED_MASK 0xc9

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOPBACK 0x10
#define MCR_MASK 0x1f

#define LSR_DATA_READY 0x01
#define LSR_OVERRUN 0x02
#define LSR_THR_EMPTY 0x20
#define LSR_TRANSMITTER_EMPTY 0x40

#define MSR_DELTA_CTS 0x01
#define MSR_DELTA_DSR 0x02
#define MSR_TRAILING_RI 0x04
#define MSR_DELTA_DCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

#define RX_FIFO_SIZE 16

struct serial {
	pthread_mutex_t lock; /* the registers below */
	uint8_t ier;
	uint8_t lcr;
	uint8_t mcr;
	uint8_t fcr;
	uint8_t scr;
	uint8_t dll;
	uint8_t dlm;
	uint8_t line_status; /* only LSR_OVERRUN is latched here */
	uint8_t modem_deltas; /* MSR bits 0-3 */
	bool thr_empty_interrupt; /* THRE interrupt pending */
	uint8_t rx_fifo[RX_FIFO_SIZE];
	unsigned int rx_head;
	unsigned int rx_count;

	/* Serialises applying the output level, so that two threads' updates
	 * reach the line in the order the device state changed. */
	pthread_mutex_t irq_lock;
	bool irq_level; /* last level applied to the line */

	/* Taken before lock is released: transmitted bytes reach the backend
	 * in the order the guest wrote them, even when two vCPUs write (one
	 * in the THRE interrupt the other's write raised). */
	pthread_mutex_t transmit_lock;
	struct irq_line irq;

	struct serial_backend backend;
	uint64_t transmitted_bytes, received_bytes; /* under lock */
};

struct serial *serial_create(struct irq_line irq, struct serial_backend backend)
{
	struct serial *serial = calloc(1, sizeof(*serial));

	if (!serial)
		return NULL;
	if (pthread_mutex_init(&serial->lock, NULL)) {
		free(serial);
		return NULL;
	}
	if (pthread_mutex_init(&serial->irq_lock, NULL)) {
		pthread_mutex_destroy(&serial->lock);
		free(serial);
		return NULL;
	}
	if (pthread_mutex_init(&serial->transmit_lock, NULL)) {
		pthread_mutex_destroy(&serial->irq_lock);
		pthread_mutex_destroy(&serial->lock);
		free(serial);
		return NULL;
	}
	/* calloc's zeros are the master-reset values of IER, FCR, LCR and
	 * MCR; the divisor latch has no reset value. */
	serial->irq = irq;
	serial->backend = backend;
	return serial;
}

void serial_destroy(struct serial *serial)
{
	if (!serial)
		return;
	pthread_mutex_destroy(&serial->transmit_lock);
	pthread_mutex_destroy(&serial->irq_lock);
	pthread_mutex_destroy(&serial->lock);
	free(serial);
}

/* Without FIFOs (16450 mode) the receiver holds a single byte. */
static unsigned int serial_rx_capacity(const struct serial *serial)
{
	return (serial->fcr & FCR_ENABLE) ? RX_FIFO_SIZE : 1;
}

static bool serial_rx_full(const struct serial *serial)
{
	return serial->rx_count >= serial_rx_capacity(serial);
}

/* Returns false when the byte was lost to an overrun. */
static bool serial_rx_push(struct serial *serial, uint8_t byte)
{
	if (serial_rx_full(serial))
		return false;
	serial->rx_fifo[(serial->rx_head + serial->rx_count) % RX_FIFO_SIZE] =
		byte;
	serial->rx_count++;
	return true;
}

/* The modem input lines: in loopback mode they are wired to the modem
 * outputs (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD); otherwise the host
 * side is always ready and carrier is present. */
static uint8_t serial_modem_lines(const struct serial *serial)
{
	uint8_t mcr = serial->mcr;
	uint8_t lines = 0;

	if (!(mcr & MCR_LOOPBACK))
		return MSR_CTS | MSR_DSR | MSR_DCD;
	if (mcr & MCR_RTS)
		lines |= MSR_CTS;
	if (mcr & MCR_DTR)
		lines |= MSR_DSR;
	if (mcr & MCR_OUT1)
		lines |= MSR_RI;
	if (mcr & MCR_OUT2)
		lines |= MSR_DCD;
	return lines;
}

/* The highest-priority pending interrupt (datasheet Table IV). */
static uint8_t serial_interrupt_id(const struct serial *serial)
{
	uint8_t ier = serial->ier;

	if ((ier & IER_LINE_STATUS) && (serial->line_status & LSR_OVERRUN))
		return IIR_LINE_STATUS;
	if ((ier & IER_RX_DATA) && serial->rx_count > 0)
		return IIR_RX_DATA;
	if ((ier & IER_THR_EMPTY) && serial->thr_empty_interrupt)
		return IIR_THR_EMPTY;
	if ((ier & IER_MODEM_STATUS) && serial->modem_deltas)
		return IIR_MODEM_STATUS;
	return IIR_NO_INTERRUPT;
}

/* Brings the interrupt line to the level the registers call for. Called
 * after every change, without the register lock held. */
static void serial_update_irq(struct serial *serial)
{
	pthread_mutex_lock(&serial->irq_lock);
	pthread_mutex_lock(&serial->lock);
	bool level = serial_interrupt_id(serial) != IIR_NO_INTERRUPT;
	pthread_mutex_unlock(&serial->lock);

	if (level != serial->irq_level) {
		serial->irq_level = level;
		irq_line_set(&serial->irq, level);
	}
	pthread_mutex_unlock(&serial->irq_lock);
}

/* What a register access leaves for after the lock is dropped. */
struct serial_effects {
	uint8_t transmitted[8];
	size_t transmitted_count;
};

static void serial_write_mcr(struct serial *serial, uint8_t value)
{
	uint8_t before = serial_modem_lines(serial);

	serial->mcr = value & MCR_MASK;
	uint8_t after = serial_modem_lines(serial);
	uint8_t changed = before ^ after;

	if (changed & MSR_CTS)
		serial->modem_deltas |= MSR_DELTA_CTS;
	if (changed & MSR_DSR)
		serial->modem_deltas |= MSR_DELTA_DSR;
	if ((before & MSR_RI) && !(after & MSR_RI))
		serial->modem_deltas |= MSR_TRAILING_RI;
	if (changed & MSR_DCD)
		serial->modem_deltas |= MSR_DELTA_DCD;
}

static void serial_write_fcr(struct serial *serial, uint8_t value)
{
	/* Changing FCR0 empties both FIFOs; the other bits are only
	 * programmed while FCR0 is set (datasheet, FIFO Control Register). */
	if ((value ^ serial->fcr) & FCR_ENABLE)
		serial->rx_count = 0;
	if (!(value & FCR_ENABLE)) {
		serial->fcr = 0;
		return;
	}
	if (value & FCR_CLEAR_RX)
		serial->rx_count = 0;
	serial->fcr = value & FCR_STORED_MASK;
}

static void serial_write_register(struct serial *serial, unsigned int reg,
				  uint8_t value, struct serial_effects *effects)
{
	bool dlab = serial->lcr & LCR_DLAB;

	switch (reg) {
	case REG_DATA:
		if (dlab) {
			serial->dll = value;
		} else if (serial->mcr & MCR_LOOPBACK) {
			if (!serial_rx_push(serial, value))
				serial->line_status |= LSR_OVERRUN;
		} else {
			effects->transmitted[effects->transmitted_count++] =
				value;
		}
		/* Writing THR clears the THRE interrupt, and the byte leaves
		 * at once, which empties THR and raises it again. */
		if (!dlab)
			serial->thr_empty_interrupt = true;
		break;
	case REG_IER:
		if (dlab) {
			serial->dlm = value;
			break;
		}
		/* Enabling ETBEI while THR is empty raises the THRE
		 * interrupt; Linux's startup test depends on it. */
		if ((value & IER_THR_EMPTY) && !(serial->ier & IER_THR_EMPTY))
			serial->thr_empty_interrupt = true;
		serial->ier = value & IER_MASK;
		break;
	case REG_IIR_FCR:
		serial_write_fcr(serial, value);
		break;
	case REG_LCR:
		serial->lcr = value;
		break;
	case REG_MCR:
		serial_write_mcr(serial, value);
		break;
	case REG_SCR:
		serial->scr = value;
		break;
	default: /* LSR and MSR writes are factory test modes: ignored */
		break;
	}
}

static uint8_t serial_read_register(struct serial *serial, unsigned int reg)
{
	bool dlab = serial->lcr & LCR_DLAB;
	uint8_t value;

	switch (reg) {
	case REG_DATA:
		if (dlab)
			return serial->dll;
		if (serial->rx_count == 0)
			return 0;
		value = serial->rx_fifo[serial->rx_head];
		serial->rx_head = (serial->rx_head + 1) % RX_FIFO_SIZE;
		serial->rx_count--;
		return value;
	case REG_IER:
		return dlab ? serial->dlm : serial->ier;
	case REG_IIR_FCR:
		value = serial_interrupt_id(serial);
		/* Reading IIR clears THRE when it is the source reported. */
		if (value == IIR_THR_EMPTY)
			serial->thr_empty_interrupt = false;
		if (serial->fcr & FCR_ENABLE)
			value |= IIR_FIFOS_ENABLED;
		return value;
	case REG_LCR:
		return serial->lcr;
	case REG_MCR:
		return serial->mcr;
	case REG_LSR:
		value = LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY |
			serial->line_status;
		if (serial->rx_count > 0)
			value |= LSR_DATA_READY;
		serial->line_status = 0; /* reading LSR clears OE */
		return value;
	case REG_MSR:
		value = serial_modem_lines(serial) | serial->modem_deltas;
		serial->modem_deltas = 0;
		return value;
	default:
		return serial->scr;
	}
}

/* An access wider than a byte reaches consecutive registers, as the ISA
 * bus splits it into byte cycles. */
static void serial_io_read(void *opaque, uint64_t offset, uint8_t *data,
			   uint32_t size)
{
	struct serial *serial = opaque;

	pthread_mutex_lock(&serial->lock);
	bool was_full = serial_rx_full(serial);

	for (uint32_t i = 0; i < size; i++)
		data[i] = serial_read_register(serial, (offset + i) % 8);
	bool room_appeared = was_full && !serial_rx_full(serial);
	pthread_mutex_unlock(&serial->lock);

	serial_update_irq(serial);
	if (room_appeared && serial->backend.rx_ready)
		serial->backend.rx_ready(serial->backend.opaque);
}

static void serial_io_write(void *opaque, uint64_t offset, const uint8_t *data,
			    uint32_t size)
{
	struct serial *serial = opaque;
	struct serial_effects effects = { .transmitted_count = 0 };

	if (size > sizeof(effects.transmitted))
		return;
	pthread_mutex_lock(&serial->lock);
	bool was_full = serial_rx_full(serial);

	for (uint32_t i = 0; i < size; i++)
		serial_write_register(serial, (offset + i) % 8, data[i],
				      &effects);
	bool room_appeared = was_full && !serial_rx_full(serial);
	bool transmit = effects.transmitted_count > 0 && serial->backend.write;
	serial->transmitted_bytes += effects.transmitted_count;
	if (transmit)
		pthread_mutex_lock(&serial->transmit_lock);
	pthread_mutex_unlock(&serial->lock);

	/* The bytes leave before the THRE interrupt that says they did. */
	if (transmit) {
		serial->backend.write(serial->backend.opaque,
				      effects.transmitted,
				      effects.transmitted_count);
		pthread_mutex_unlock(&serial->transmit_lock);
	}
	serial_update_irq(serial);
	if (room_appeared && serial->backend.rx_ready)
		serial->backend.rx_ready(serial->backend.opaque);
}

static const struct bus_device_ops serial_ops = {
	.read = serial_io_read,
	.write = serial_io_write,
};

int serial_attach(struct serial *serial, struct bus *pio_bus, uint16_t base)
{
	return bus_register(pio_bus, base, SERIAL_PORT_COUNT, &serial_ops,
			    serial, "serial");
}

size_t serial_receive(struct serial *serial, const uint8_t *data, size_t len)
{
	size_t taken = 0;

	pthread_mutex_lock(&serial->lock);
	if (serial->mcr & MCR_LOOPBACK) {
		/* Loopback disconnects the serial input (datasheet, Modem
		 * Control Register bit 4): what the host sends meanwhile is
		 * lost, as on a wire. */
		taken = len;
	} else {
		while (taken < len && serial_rx_push(serial, data[taken]))
			taken++;
		serial->received_bytes += taken;
	}
	pthread_mutex_unlock(&serial->lock);

	if (taken > 0)
		serial_update_irq(serial);
	return taken;
}

static unsigned int serial_counters(void *opaque, struct device_counter *out,
				    unsigned int max)
{
	struct serial *serial = opaque;
	unsigned int count = 0;

	pthread_mutex_lock(&serial->lock);
	if (count < max)
		out[count++] = (struct device_counter){
			"transmitted_bytes", serial->transmitted_bytes };
	if (count < max)
		out[count++] = (struct device_counter){
			"received_bytes", serial->received_bytes };
	pthread_mutex_unlock(&serial->lock);
	return count;
}

static const struct device_ops serial_record_ops = {
	.counters = serial_counters,
};

struct device_record serial_record(struct serial *serial, const char *name)
{
	return (struct device_record){ .name = name, .ops = &serial_record_ops,
				       .opaque = serial };
}
