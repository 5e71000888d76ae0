/*
 * The virtual machine: KVM's VM fd with its in-kernel irqchip and PIT, guest
 * RAM, the port and MMIO buses with vessel's PC devices, the vCPUs, and the
 * kernel loaded by firmware/.
 *
 * Promise: vm_create() builds the whole machine or nothing (one line in err
 * says which step failed); vm_run() runs it until the guest powers off,
 * resets, fails, or vm_request_stop() is called from any thread, and returns
 * with every vCPU thread joined. A reset is reported, not performed: the
 * caller destroys the machine and builds a fresh one, as a power cycle
 * would.
 */
#ifndef VESSEL_VMM_VM_H
#define VESSEL_VMM_VM_H

#include <stddef.h>

#include "console.h"
#include "event_loop.h"
#include "kvm.h"
#include "options.h"

enum vm_stop_reason {
	VM_STOP_POWER_OFF,
	VM_STOP_RESET,
	VM_STOP_ERROR,
	VM_STOP_REQUESTED, /* by the user: Ctrl-A x or a signal */
};

struct vm;

struct vm *vm_create(const struct vm_config *config,
		     const struct kvm_host *host, struct event_loop *loop,
		     struct console *console, char *err, size_t err_len);
void vm_destroy(struct vm *vm);

/* Starts every vCPU and runs the event loop until the machine stops.
 * message receives the reason's one-line description when there is one. */
enum vm_stop_reason vm_run(struct vm *vm, char *message, size_t message_len);

/* Thread-safe; the first reason given wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason,
		     const char *message);

#endif
