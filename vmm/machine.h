/*
 * The VM's owner for the whole life of a vessel process: its configuration,
 * its lifecycle state (lifecycle.h), and the machine (vm.h) while one
 * exists. It carries out the requests of the control API, the command line,
 * the console and the guest, each checked against the one transition table;
 * a guest reset becomes a fresh machine built from the same configuration,
 * as a power cycle would.
 *
 * Promise: every call runs on the event thread. machine_run() serves the
 * event loop (the API included) until the VM reaches stopped, and returns
 * vessel's exit status: 0 when the guest powered off (or reset with
 * no_reboot), or when a user stopped it; 1 after an error; what
 * machine_stop() was given otherwise.
 */
#ifndef VESSEL_VMM_MACHINE_H
#define VESSEL_VMM_MACHINE_H

#include <stddef.h>

#include "console.h"
#include "control.h"
#include "event_loop.h"
#include "kvm.h"
#include "options.h"

struct machine;

struct machine *machine_create(const struct kvm_host *host,
			       struct event_loop *loop,
			       struct console *console);
void machine_destroy(struct machine *machine);

/* The ops the control API calls, with the machine as their opaque. */
extern const struct control_ops machine_control_ops;

/* Takes config (owned from then on) while inactive: 0, or -EBUSY. */
int machine_configure(struct machine *machine, struct vm_config *config,
		      char *err, size_t err_len);
/* One request through the transition table: 0 or -errno with err. */
int machine_request(struct machine *machine, enum vm_request request,
		    char *err, size_t err_len);
/* A stop from the user's side (a signal, the console's quit key): the
 * message is printed, and vessel exits with exit_status. */
void machine_stop(struct machine *machine, const char *message,
		  int exit_status);
/* Asks the guest to power off (the ACPI power button), when it runs. */
void machine_power_button(struct machine *machine);

int machine_run(struct machine *machine);

#endif
