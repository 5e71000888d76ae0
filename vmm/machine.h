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

#include <stdbool.h>
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

/* Writes the paused VM into the new directory request->dir (snapshot.h),
 * and resumes it after when asked. A full snapshot starts tracking the
 * guest's writes and becomes the base of the next diff; a diff needs a
 * base (a snapshot this VM was written to or restored from since it last
 * booted) and becomes the next one. A failure leaves the VM paused, no
 * directory, and the base as it was. 0 or -errno with err. */
int machine_snapshot(struct machine *machine,
		     const struct control_snapshot *request, char *err,
		     size_t err_len);
/* While inactive: takes the opened snapshot's configuration and memory,
 * and builds the VM from it without booting; it runs, or stays paused
 * when paused. eager reads guest memory in at once instead of mapping it.
 * The snapshot is the base of the VM's next diff. dir is where it was
 * opened from. 0 or -errno with err. */
struct snapshot;
int machine_restore(struct machine *machine, const char *dir,
		    struct snapshot *snapshot, bool paused, bool eager,
		    char *err, size_t err_len);

/* Active or paused: writes the VM into the new directory dir as a
 * snapshot and releases it (guest memory, vCPUs, devices); the state
 * reads suspended, and resume builds it again from dir, in this process
 * (dir must stay until then, and after, while guest memory is mapped from
 * it). A failure leaves the VM as it was. */
int machine_suspend(struct machine *machine, const char *dir, char *err,
		    size_t err_len);

int machine_run(struct machine *machine);

#endif
