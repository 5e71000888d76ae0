/*
 * 8250/16550A UART (the PC's COM ports): transmit and receive FIFOs of 16
 * bytes, the interrupt enable and identification registers, line and modem
 * status, divisor latch, scratch register, and loopback mode.
 *
 * Promise: the guest's register accesses (vCPU threads) and host input
 * (event thread) may arrive concurrently; the UART locks its own state and
 * never calls a backend hook or raises its interrupt with that lock held.
 * Transmitted bytes reach the backend in the order the guest wrote them,
 * whichever vCPUs wrote them.
 * Host input is taken only while the receive FIFO has room, so a guest that
 * stops reading never makes vessel buffer without bound.
 */
#ifndef VESSEL_DEVICES_SERIAL_H
#define VESSEL_DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "device.h"
#include "irq_line.h"

#define SERIAL_PORT_COUNT 8

struct serial_backend {
	/* Bytes the guest transmitted (not in loopback mode). */
	void (*write)(void *opaque, const uint8_t *data, size_t len);
	/* The receive FIFO was full and the guest has made room: the host
	 * side may call serial_receive again. */
	void (*rx_ready)(void *opaque);
	void *opaque;
};

struct serial;

struct serial *serial_create(struct irq_line irq, struct serial_backend backend);
void serial_destroy(struct serial *serial);

/* Claims SERIAL_PORT_COUNT ports from base on the port-I/O bus. */
int serial_attach(struct serial *serial, struct bus *pio_bus, uint16_t base);

/* The UART's device record (device.h): its byte counters. The vCPUs
 * being parked is all a pause needs of it. */
struct device_record serial_record(struct serial *serial, const char *name);

/* Host input for the guest. Returns how many bytes the receive FIFO took
 * (possibly 0); the rest must wait for the rx_ready hook. */
size_t serial_receive(struct serial *serial, const uint8_t *data, size_t len);

#endif
