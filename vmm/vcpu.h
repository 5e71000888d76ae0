/*
 * A vCPU: its KVM fd, its shared kvm_run page, and the thread that runs the
 * KVM_RUN loop, dispatching port and MMIO exits to the buses.
 *
 * The thread is a state machine driven by commands: running, parked and
 * finished. A command is delivered by setting it, setting
 * kvm_run.immediate_exit (for a thread about to enter KVM_RUN) and sending
 * a signal (for one inside it), and acknowledged by the state the thread
 * reports. Before it reports parked, the thread completes the exit in
 * progress with one more KVM_RUN under immediate_exit, as the KVM API
 * requires before the vCPU's state is read or saved.
 *
 * Promise: an exit vessel cannot handle stops the whole machine through the
 * stop hook with one line naming the exit reason, suberror, RIP and the
 * instruction bytes; it never spins. A parked vCPU runs no guest
 * instruction until told to run again. Waiting for an acknowledgement is
 * bounded by the caller's deadline: a thread held up in a device access
 * (a console nobody reads) cannot hold its caller forever.
 */
#ifndef VESSEL_VMM_VCPU_H
#define VESSEL_VMM_VCPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

enum vcpu_state {
	VCPU_RUNNING,
	VCPU_PARKED,
	VCPU_FINISHED, /* the thread has ended, or will without running more */
};

enum vcpu_command {
	VCPU_COMMAND_RUN,
	VCPU_COMMAND_PARK,
	VCPU_COMMAND_FINISH,
};

/* Exits by reason, for the control API. */
enum vcpu_exit_kind {
	VCPU_EXIT_IO,
	VCPU_EXIT_MMIO,
	VCPU_EXIT_HLT,
	VCPU_EXIT_INTERRUPTED, /* a signal or a command: KVM_RUN gave EINTR */
	VCPU_EXIT_OTHER,
	VCPU_EXIT_KIND_COUNT,
};

struct vcpu {
	unsigned int index;
	char name[16]; /* "vcpu0": the thread's name and the API's */
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
	struct vcpu_context context;

	/* The command protocol: command and state change under lock, and
	 * changed is signalled on either. attention is set with a command,
	 * so the thread looks at the lock only when there is something to
	 * obey. */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum vcpu_command command;
	enum vcpu_state state;
	atomic_bool attention;

	/* Written by the vCPU thread only. */
	_Atomic uint64_t exits[VCPU_EXIT_KIND_COUNT];
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

/* Starts the thread, running or (parked) waiting for VCPU_COMMAND_RUN. */
int vcpu_start(struct vcpu *vcpu, bool parked);

/* Gives the thread a command and returns at once; any thread (the vCPU's
 * own included) may call it. A finished vCPU takes no other command. */
void vcpu_command(struct vcpu *vcpu, enum vcpu_command command);

/* Waits until the thread reports state (or has finished) or the
 * CLOCK_MONOTONIC deadline passes: 0, -ETIMEDOUT, or -ESRCH when it
 * finished instead of reaching state. */
int vcpu_wait(struct vcpu *vcpu, enum vcpu_state state,
	      const struct timespec *deadline);

/* Asks the thread to leave KVM_RUN and run no more guest code; returns at
 * once, so any thread (the vCPU's own included) may call it. */
void vcpu_request_stop(struct vcpu *vcpu);
/* Requests the stop and joins the thread. */
void vcpu_stop(struct vcpu *vcpu);

/* How many exits of kind the vCPU has taken (any thread). */
uint64_t vcpu_exit_count(const struct vcpu *vcpu, enum vcpu_exit_kind kind);
/* "io", "mmio", ...: the names the control API uses. */
const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind);

/* Formats a one-line report of an exit vessel does not handle. */
void vcpu_describe_exit(const struct vcpu *vcpu, char *out, size_t out_len);

#endif
