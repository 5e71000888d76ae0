#include "vcpu.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpuid.h"

/* Sent to a vCPU thread to make KVM_RUN return; immediate_exit covers the
 * window just before the thread enters KVM_RUN (KVM API, kvm_run). */
#define VCPU_KICK_SIGNAL SIGUSR1

/* Local APIC register offsets and delivery modes (Intel SDM vol. 3A,
 * §11.5.1). */
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_DELIVERY_MODE_MASK 0x700u
#define APIC_DELIVERY_NMI 0x400u
#define APIC_DELIVERY_EXTINT 0x700u

static void kick_signal_handler(int signal)
{
	(void)signal;
}

int vcpu_install_kick_signal(void)
{
	struct sigaction action = { .sa_handler = kick_signal_handler };

	sigemptyset(&action.sa_mask);
	return sigaction(VCPU_KICK_SIGNAL, &action, NULL) ? -errno : 0;
}

static void set_lvt_delivery(struct kvm_lapic_state *lapic, int offset,
			     uint32_t mode)
{
	uint32_t value;

	memcpy(&value, &lapic->regs[offset], sizeof(value));
	value = (value & ~APIC_DELIVERY_MODE_MASK) | mode;
	memcpy(&lapic->regs[offset], &value, sizeof(value));
}

/* LINT0 takes the PIC's ExtINT and LINT1 the NMI, the virtual-wire wiring
 * the MP tables describe (MP spec 1.4, §5.1). */
static int wire_local_interrupts(int vcpu_fd)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic))
		return -errno;
	set_lvt_delivery(&lapic, APIC_LVT_LINT0, APIC_DELIVERY_EXTINT);
	set_lvt_delivery(&lapic, APIC_LVT_LINT1, APIC_DELIVERY_NMI);
	return ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) ? -errno : 0;
}

/* The x87 and SSE control words a CPU has after reset (Intel SDM vol. 1,
 * §8.1.5 and §10.2.3.1). */
static int reset_fpu(int vcpu_fd)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };

	return ioctl(vcpu_fd, KVM_SET_FPU, &fpu) ? -errno : 0;
}

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING (UINT64_C(1) << 0)
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MTRR_DEF_TYPE_ENABLE (UINT64_C(1) << 11)
#define MTRR_TYPE_WRITE_BACK 6

/*
 * What a PC's firmware leaves set for the OS (Intel SDM vol. 3A §11.11,
 * vol. 4 table 2-2), which KVM's reset state does not have. MTRRs on,
 * with write-back as the default type and no ranges: Linux sets up PAT
 * (and with it write-combining) only when MTRRs are enabled, and finds
 * the PCI holes through its own ioremap types. Fast strings on: without
 * them Linux on Intel turns off its rep-movs copies (REP_GOOD, ERMS).
 */
static int set_firmware_msrs(int vcpu_fd)
{
	/* struct kvm_msrs with its entries: a struct that ends in a flexible
	 * array cannot be the head of another in ISO C. */
	struct firmware_msrs {
		uint32_t nmsrs, pad;
		struct kvm_msr_entry entries[2];
	} msrs = {
		.nmsrs = 1,
		.entries = { { .index = MSR_IA32_MISC_ENABLE } },
	};
	_Static_assert(offsetof(struct firmware_msrs, entries) ==
			       offsetof(struct kvm_msrs, entries),
		       "the entries follow the header as in struct kvm_msrs");

	if (ioctl(vcpu_fd, KVM_GET_MSRS, &msrs) != 1)
		return -EIO;
	msrs.entries[0].data |= MISC_ENABLE_FAST_STRING;
	msrs.entries[1] = (struct kvm_msr_entry){
		.index = MSR_MTRR_DEF_TYPE,
		.data = MTRR_DEF_TYPE_ENABLE | MTRR_TYPE_WRITE_BACK,
	};
	msrs.nmsrs = 2;
	/* KVM_SET_MSRS stops at the first MSR it refuses. */
	return ioctl(vcpu_fd, KVM_SET_MSRS, &msrs) == 2 ? 0 : -EIO;
}

static int set_cpuid(int vcpu_fd, const struct kvm_cpuid2 *cpuid,
		     unsigned int apic_id, unsigned int cpu_count)
{
	size_t size = sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]);
	struct kvm_cpuid2 *copy = malloc(size);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, cpuid, size);
	cpuid_set_vcpu_identity(copy, apic_id, cpu_count);
	int result = ioctl(vcpu_fd, KVM_SET_CPUID2, copy) ? -errno : 0;
	free(copy);
	return result;
}

int vcpu_create(struct vcpu *vcpu, int vm_fd, unsigned int index,
		size_t run_size, const struct kvm_cpuid2 *cpuid,
		unsigned int cpu_count, const struct vcpu_context *context,
		char *err, size_t err_len)
{
	const char *step;
	int result;

	*vcpu = (struct vcpu){ .index = index, .fd = -1, .context = *context,
			       .command = VCPU_COMMAND_RUN,
			       .state = VCPU_PARKED };
	snprintf(vcpu->name, sizeof(vcpu->name), "vcpu%u", index);
	atomic_init(&vcpu->attention, false);
	for (int kind = 0; kind < VCPU_EXIT_KIND_COUNT; kind++)
		atomic_init(&vcpu->exits[kind], 0);
	pthread_mutex_init(&vcpu->lock, NULL);
	pthread_cond_init(&vcpu->changed, NULL);
	vcpu->fd = ioctl(vm_fd, KVM_CREATE_VCPU, index);
	if (vcpu->fd < 0) {
		result = -errno;
		step = "KVM_CREATE_VCPU";
		goto fail;
	}
	vcpu->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		result = -errno;
		step = "mapping kvm_run";
		goto fail;
	}
	vcpu->run_size = run_size;
	step = "KVM_SET_CPUID2";
	result = set_cpuid(vcpu->fd, cpuid, index, cpu_count);
	if (result)
		goto fail;
	step = "KVM_SET_LAPIC";
	result = wire_local_interrupts(vcpu->fd);
	if (result)
		goto fail;
	step = "KVM_SET_FPU";
	result = reset_fpu(vcpu->fd);
	if (result)
		goto fail;
	step = "KVM_SET_MSRS (MTRRs, fast strings)";
	result = set_firmware_msrs(vcpu->fd);
	if (result)
		goto fail;
	return 0;
fail:
	snprintf(err, err_len, "vCPU %u: %s: %s", index, step, strerror(-result));
	vcpu_destroy(vcpu);
	return result;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
	pthread_cond_destroy(&vcpu->changed);
	pthread_mutex_destroy(&vcpu->lock);
}

static void handle_port_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	/* A string instruction (rep outsb, ...) arrives as count items. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			bus_write(vcpu->context.pio_bus, run->io.port, data,
				  run->io.size);
		} else if (!bus_read(vcpu->context.pio_bus, run->io.port, data,
				     run->io.size)) {
			/* Nothing drives the lines: they float high. */
			memset(data, 0xff, run->io.size);
		}
	}
}

static void handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data))
		len = sizeof(run->mmio.data);
	if (run->mmio.is_write)
		bus_write(vcpu->context.mmio_bus, run->mmio.phys_addr,
			  run->mmio.data, len);
	else if (!bus_read(vcpu->context.mmio_bus, run->mmio.phys_addr,
			   run->mmio.data, len))
		memset(run->mmio.data, 0xff, len);
}

static const char *exit_reason_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
	case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
	case KVM_EXIT_HYPERCALL: return "KVM_EXIT_HYPERCALL";
	case KVM_EXIT_DEBUG: return "KVM_EXIT_DEBUG";
	case KVM_EXIT_HLT: return "KVM_EXIT_HLT";
	case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
	case KVM_EXIT_INTR: return "KVM_EXIT_INTR";
	case KVM_EXIT_NMI: return "KVM_EXIT_NMI";
	case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
	case KVM_EXIT_SYSTEM_EVENT: return "KVM_EXIT_SYSTEM_EVENT";
	case KVM_EXIT_X86_RDMSR: return "KVM_EXIT_X86_RDMSR";
	case KVM_EXIT_X86_WRMSR: return "KVM_EXIT_X86_WRMSR";
	default: return "an unknown exit";
	}
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "simultaneous exceptions";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected exit reason";
	default: return "unknown suberror";
	}
}

/* The bytes at the guest's CS:RIP: read from guest RAM (up to 15, the
 * longest x86 instruction), else what KVM's emulator had fetched. */
static size_t instruction_bytes(const struct vcpu *vcpu,
				const struct kvm_sregs *sregs,
				const struct kvm_regs *regs, uint8_t *bytes,
				size_t max)
{
	const struct kvm_run *run = vcpu->run;
	struct kvm_translation translation = {
		.linear_address = sregs->cs.base + regs->rip,
	};

	if (ioctl(vcpu->fd, KVM_TRANSLATE, &translation) == 0 &&
	    translation.valid) {
		/* Stop at the page end: the next page may map elsewhere. */
		size_t to_page_end = 4096 - (translation.physical_address & 4095);
		size_t size = max < to_page_end ? max : to_page_end;
		if (guest_memory_read(vcpu->context.memory,
				      translation.physical_address, bytes,
				      size) == 0)
			return size;
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags &
	     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		size_t size = run->emulation_failure.insn_size;
		if (size > max)
			size = max;
		memcpy(bytes, run->emulation_failure.insn_bytes, size);
		return size;
	}
	return 0;
}

void vcpu_describe_exit(const struct vcpu *vcpu, char *out, size_t out_len)
{
	const struct kvm_run *run = vcpu->run;
	struct kvm_regs regs = { 0 };
	struct kvm_sregs sregs = { 0 };
	char detail[64] = "";
	char code[3 * 16 + 1] = "";
	uint8_t bytes[15];

	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs)) {
		snprintf(out, out_len, "vCPU %u stopped: %s (registers unreadable)",
			 vcpu->index, exit_reason_name(run->exit_reason));
		return;
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		snprintf(detail, sizeof(detail), ", suberror %u (%s)",
			 run->internal.suberror,
			 internal_error_name(run->internal.suberror));
	else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		snprintf(detail, sizeof(detail),
			 ", hardware entry failure reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	size_t count = instruction_bytes(vcpu, &sregs, &regs, bytes, sizeof(bytes));
	for (size_t i = 0; i < count; i++)
		snprintf(code + 3 * i, sizeof(code) - 3 * i, "%s%02x",
			 i ? " " : "", bytes[i]);
	snprintf(out, out_len,
		 "vCPU %u stopped: %s (exit reason %u)%s at RIP 0x%llx "
		 "(CS 0x%x, CR0 0x%llx), instruction bytes: %s",
		 vcpu->index, exit_reason_name(run->exit_reason),
		 run->exit_reason, detail, (unsigned long long)regs.rip,
		 sregs.cs.selector, (unsigned long long)sregs.cr0,
		 count ? code : "unavailable");
}

/* Where the vCPU was when the fault that could not be delivered came: the
 * registers say whether the guest's own stack, page tables or IDT were
 * the trouble, which is all there is to go on afterwards. A PVM host keeps
 * them; KVM on AMD does not (below). */
static void describe_triple_fault(const struct vcpu *vcpu, char *out,
				  size_t out_len)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int len = snprintf(out, out_len,
			   "guest triple-faulted (KVM_EXIT_SHUTDOWN) on vCPU %u",
			   vcpu->index);

	if (len < 0 || (size_t)len >= out_len ||
	    ioctl(vcpu->fd, KVM_GET_REGS, &regs) ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs))
		return;
	out += len;
	out_len -= (size_t)len;
	/* KVM on AMD reinitializes the VMCB on a shutdown intercept, whose
	 * contents are undefined afterwards: the vCPU reads back at the
	 * reset vector, and where the guest was is lost. */
	if (regs.rip == 0xfff0 && sregs.cs.selector == 0xf000 &&
	    !(sregs.cr0 & 1)) {
		snprintf(out, out_len,
			 "; KVM had already reset it, so where it was is not known");
		return;
	}
	snprintf(out, out_len,
		 ": RIP 0x%llx RSP 0x%llx CR0 0x%llx CR2 0x%llx CR3 0x%llx "
		 "CR4 0x%llx IDT 0x%llx+0x%x",
		 (unsigned long long)regs.rip, (unsigned long long)regs.rsp,
		 (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr2,
		 (unsigned long long)sregs.cr3, (unsigned long long)sregs.cr4,
		 (unsigned long long)sregs.idt.base, sregs.idt.limit);
}

/* Handles one exit. false when the machine has to stop. */
static bool handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char message[256];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_port_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(vcpu);
		return true;
	case KVM_EXIT_HLT:
		/* The in-kernel LAPIC handles HLT; seeing it here is
		 * harmless: run again and let KVM wait for interrupts. */
		return true;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault resets a PC (Intel SDM vol. 3A, §6.15). */
		describe_triple_fault(vcpu, message, sizeof(message));
		vcpu->context.stop_machine(vcpu->context.opaque, VCPU_STOP_RESET,
					   message);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			vcpu->context.stop_machine(vcpu->context.opaque,
						   VCPU_STOP_RESET, NULL);
			return false;
		}
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			vcpu->context.stop_machine(vcpu->context.opaque,
						   VCPU_STOP_POWER_OFF, NULL);
			return false;
		}
		break;
	default:
		break;
	}
	vcpu_describe_exit(vcpu, message, sizeof(message));
	vcpu->context.stop_machine(vcpu->context.opaque, VCPU_STOP_ERROR, message);
	return false;
}

static void count_exit(struct vcpu *vcpu, enum vcpu_exit_kind kind)
{
	atomic_fetch_add_explicit(&vcpu->exits[kind], 1, memory_order_relaxed);
}

static enum vcpu_exit_kind exit_kind(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO: return VCPU_EXIT_IO;
	case KVM_EXIT_MMIO: return VCPU_EXIT_MMIO;
	case KVM_EXIT_HLT: return VCPU_EXIT_HLT;
	default: return VCPU_EXIT_OTHER;
	}
}

/*
 * KVM completes an exit (the data of an IN or an MMIO read goes into the
 * guest's registers) only on the next KVM_RUN; with immediate_exit set,
 * that KVM_RUN does just this and returns EINTR (KVM API, kvm_run
 * immediate_exit). Until then the vCPU's registers are not its state.
 */
static void complete_exit_in_progress(struct vcpu *vcpu)
{
	vcpu->run->immediate_exit = 1;
	while (ioctl(vcpu->fd, KVM_RUN, 0) == 0) {
		/* KVM ran no guest code with immediate_exit set, but an exit
		 * it reports must still be handled before parking. */
		if (!handle_exit(vcpu))
			break;
	}
}

/* Obeys the latest command: parks until told otherwise. false when the
 * thread is to finish. */
static bool obey_command(struct vcpu *vcpu)
{
	bool finish;

	pthread_mutex_lock(&vcpu->lock);
	atomic_store(&vcpu->attention, false);
	while (vcpu->command == VCPU_COMMAND_PARK) {
		if (vcpu->state != VCPU_PARKED) {
			pthread_mutex_unlock(&vcpu->lock);
			complete_exit_in_progress(vcpu);
			pthread_mutex_lock(&vcpu->lock);
			if (vcpu->command != VCPU_COMMAND_PARK)
				break;
			vcpu->state = VCPU_PARKED;
			pthread_cond_broadcast(&vcpu->changed);
		}
		pthread_cond_wait(&vcpu->changed, &vcpu->lock);
	}
	finish = vcpu->command == VCPU_COMMAND_FINISH;
	if (!finish && vcpu->state != VCPU_RUNNING) {
		vcpu->state = VCPU_RUNNING;
		pthread_cond_broadcast(&vcpu->changed);
	}
	/* Under the lock: a command given after this sets it again. */
	vcpu->run->immediate_exit = 0;
	atomic_store(&vcpu->attention, false);
	pthread_mutex_unlock(&vcpu->lock);
	return !finish;
}

static void *vcpu_thread(void *opaque)
{
	struct vcpu *vcpu = opaque;
	char message[128];

	for (;;) {
		if (atomic_load(&vcpu->attention) && !obey_command(vcpu))
			break;
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				count_exit(vcpu, VCPU_EXIT_INTERRUPTED);
				/* A command sets attention before the signal,
				 * so the check above sees it. */
				if (!atomic_load(&vcpu->attention))
					vcpu->run->immediate_exit = 0;
				continue;
			}
			snprintf(message, sizeof(message), "vCPU %u: KVM_RUN: %s",
				 vcpu->index, strerror(errno));
			vcpu->context.stop_machine(vcpu->context.opaque,
						   VCPU_STOP_ERROR, message);
			break;
		}
		count_exit(vcpu, exit_kind(vcpu->run->exit_reason));
		if (!handle_exit(vcpu))
			break;
	}
	pthread_mutex_lock(&vcpu->lock);
	vcpu->state = VCPU_FINISHED;
	pthread_cond_broadcast(&vcpu->changed);
	pthread_mutex_unlock(&vcpu->lock);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu, bool parked)
{
	vcpu->command = parked ? VCPU_COMMAND_PARK : VCPU_COMMAND_RUN;
	vcpu->state = parked ? VCPU_PARKED : VCPU_RUNNING;
	/* A parked start goes straight to waiting for its command; there
	 * is no exit in progress to complete. */
	atomic_store(&vcpu->attention, parked);
	/* The default policy whatever the creating thread's: the event
	 * thread, which creates a rebooted machine's vCPUs, runs as
	 * SCHED_BATCH (machine.c). */
	pthread_attr_t attributes;
	const struct sched_param param = { .sched_priority = 0 };
	pthread_attr_init(&attributes);
	pthread_attr_setinheritsched(&attributes, PTHREAD_EXPLICIT_SCHED);
	pthread_attr_setschedpolicy(&attributes, SCHED_OTHER);
	pthread_attr_setschedparam(&attributes, &param);
	int result = pthread_create(&vcpu->thread, &attributes, vcpu_thread, vcpu);
	pthread_attr_destroy(&attributes);
	if (result)
		return -result;
	vcpu->thread_started = true;
	/* Named as top -H and /proc/PID/task show it. */
	pthread_setname_np(vcpu->thread, vcpu->name);
	return 0;
}

void vcpu_command(struct vcpu *vcpu, enum vcpu_command command)
{
	if (!vcpu->thread_started)
		return;
	pthread_mutex_lock(&vcpu->lock);
	if (vcpu->command == VCPU_COMMAND_FINISH ||
	    vcpu->state == VCPU_FINISHED) {
		pthread_mutex_unlock(&vcpu->lock);
		return;
	}
	/* A parked thread waits on the condition, not in KVM_RUN: told to
	 * run, the broadcast wakes it, and a kick would only cut its first
	 * KVM_RUN short (an exit and an entry more per vCPU on resume, dear
	 * under nested virtualization). */
	bool wake_only = vcpu->state == VCPU_PARKED &&
			 command == VCPU_COMMAND_RUN;
	vcpu->command = command;
	atomic_store(&vcpu->attention, true);
	/* immediate_exit covers a thread about to enter KVM_RUN, the signal
	 * one already inside it (KVM API, kvm_run). */
	if (!wake_only)
		vcpu->run->immediate_exit = 1;
	pthread_cond_broadcast(&vcpu->changed);
	pthread_mutex_unlock(&vcpu->lock);
	if (!wake_only)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

int vcpu_wait(struct vcpu *vcpu, enum vcpu_state state,
	      const struct timespec *deadline)
{
	int result = 0;

	pthread_mutex_lock(&vcpu->lock);
	while (vcpu->state != state && vcpu->state != VCPU_FINISHED &&
	       result == 0)
		result = pthread_cond_clockwait(&vcpu->changed, &vcpu->lock,
						CLOCK_MONOTONIC, deadline);
	if (vcpu->state == state)
		result = 0;
	else if (vcpu->state == VCPU_FINISHED)
		result = ESRCH;
	pthread_mutex_unlock(&vcpu->lock);
	return -result;
}

void vcpu_request_stop(struct vcpu *vcpu)
{
	vcpu_command(vcpu, VCPU_COMMAND_FINISH);
}

void vcpu_stop(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	vcpu_request_stop(vcpu);
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}

uint64_t vcpu_exit_count(const struct vcpu *vcpu, enum vcpu_exit_kind kind)
{
	return atomic_load_explicit(&vcpu->exits[kind], memory_order_relaxed);
}

const char *vcpu_exit_kind_name(enum vcpu_exit_kind kind)
{
	static const char *const names[VCPU_EXIT_KIND_COUNT] = {
		[VCPU_EXIT_IO] = "exits_io",
		[VCPU_EXIT_MMIO] = "exits_mmio",
		[VCPU_EXIT_HLT] = "exits_hlt",
		[VCPU_EXIT_INTERRUPTED] = "exits_interrupted",
		[VCPU_EXIT_OTHER] = "exits_other",
	};
	return (unsigned int)kind < VCPU_EXIT_KIND_COUNT ? names[kind] : "?";
}
