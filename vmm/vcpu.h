/*
 * A vCPU: its KVM fd, its shared kvm_run page, and the thread that runs the
 * KVM_RUN loop, dispatching port and MMIO exits to the buses.
 *
 * Promise: an exit vessel cannot handle stops the whole machine through the
 * stop hook with one line naming the exit reason, suberror, RIP and the
 * instruction bytes; it never spins. A stop interrupts KVM_RUN with
 * immediate_exit plus a signal.
 */
#ifndef VESSEL_VMM_VCPU_H
#define VESSEL_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <linux/kvm.h>

#include "../devices/bus.h"
#include "../devices/guest_memory.h"

enum vcpu_stop_reason {
	VCPU_STOP_RESET, /* triple fault: the machine resets */
	VCPU_STOP_POWER_OFF,
	VCPU_STOP_ERROR, /* an exit vessel cannot handle */
};

/* What a vCPU needs of its machine; explicit so vcpu.c knows no VM. */
struct vcpu_context {
	struct bus *pio_bus;
	struct bus *mmio_bus;
	const struct guest_memory *memory;
	/* Called on the vCPU thread; message is one line. */
	void (*stop_machine)(void *opaque, enum vcpu_stop_reason reason,
			     const char *message);
	void *opaque;
};

struct vcpu {
	unsigned int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop_requested;
	struct vcpu_context context;
};

/* KVM_CREATE_VCPU, the kvm_run mapping, and the vCPU's CPUID (a copy of
 * cpuid with this vCPU's identity) and LAPIC wiring. */
int vcpu_create(struct vcpu *vcpu, int vm_fd, unsigned int index,
		size_t run_size, const struct kvm_cpuid2 *cpuid,
		unsigned int cpu_count, const struct vcpu_context *context,
		char *err, size_t err_len);
void vcpu_destroy(struct vcpu *vcpu);

/* Installs the process-wide kick signal handler; call once before any
 * vCPU thread starts. */
int vcpu_install_kick_signal(void);

int vcpu_start(struct vcpu *vcpu);
/* Asks the thread to leave KVM_RUN and run no more guest code; returns at
 * once, so any thread (the vCPU's own included) may call it. */
void vcpu_request_stop(struct vcpu *vcpu);
/* Requests the stop and joins the thread. */
void vcpu_stop(struct vcpu *vcpu);

/* Formats a one-line report of an exit vessel does not handle. */
void vcpu_describe_exit(const struct vcpu *vcpu, char *out, size_t out_len);

#endif
