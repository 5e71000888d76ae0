/*
 * The terminal side of the guest's serial console: host input goes to the
 * UART, the UART's output goes to the host.
 *
 * Promise: when the input is a terminal it is put in raw mode and restored
 * on every way out of vessel (normal exit, error, fatal signal); Ctrl-A x
 * quits at once, Ctrl-A p presses the guest's power button, Ctrl-A h
 * prints the escapes, Ctrl-A Ctrl-A sends one Ctrl-A. When
 * the input is not a terminal (a pipe, a file), bytes pass through
 * untouched and end of input leaves the guest running. Input is read only
 * as fast as the UART accepts it.
 */
#ifndef VESSEL_VMM_CONSOLE_H
#define VESSEL_VMM_CONSOLE_H

#include <stddef.h>

#include "../devices/serial.h"
#include "event_loop.h"

struct console;

/* What the escapes of a terminal ask for; event thread. */
struct console_hooks {
	void (*quit)(void *opaque); /* Ctrl-A x */
	void (*power_button)(void *opaque); /* Ctrl-A p */
	void *opaque;
};

struct console *console_create(struct event_loop *loop, int input_fd,
			       int output_fd, const struct console_hooks *hooks,
			       char *err, size_t err_len);
/* Restores the terminal. */
void console_destroy(struct console *console);

/* The hooks a UART needs to talk to this console. */
struct serial_backend console_serial_backend(struct console *console);

/* Routes input to serial (NULL while no machine runs). Event thread only. */
void console_connect(struct console *console, struct serial *serial);

#endif
