/*
 * Running the machine vm.c assembled: the vCPU threads, pause and resume
 * through the vCPU command protocol and the device list, and stop
 * requests from any thread.
 */
#include "vm_private.h"

#include "display.h"
#include "vcpu_state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason,
		     const char *message)
{
	bool first;

	pthread_mutex_lock(&vm->stop_lock);
	first = !vm->stop_requested;
	if (first) {
		vm->stop_requested = true;
		vm->stop_reason = reason;
		snprintf(vm->stop_message, sizeof(vm->stop_message), "%s",
			 message ? message : "");
		/* Like a real power-off or reset line, no vCPU runs another
		 * guest instruction once the request is made. */
		for (unsigned int i = 0; i < vm->vcpu_count; i++)
			vcpu_request_stop(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->stop_lock);
	if (first)
		vm->owner.stop_requested(vm->owner.opaque);
}

enum vm_stop_reason vm_stop_reason(struct vm *vm, char *message,
				   size_t message_len)
{
	pthread_mutex_lock(&vm->stop_lock);
	enum vm_stop_reason reason = vm->stop_reason;
	snprintf(message, message_len, "%s", vm->stop_message);
	pthread_mutex_unlock(&vm->stop_lock);
	return reason;
}

int vm_start(struct vm *vm, bool paused, char *err, size_t err_len)
{
	int result = 0;

	console_connect(vm->console, paused ? NULL : vm->serial);
	/* Under the stop lock, so a stop requested by an early vCPU sees
	 * every thread that has started. */
	pthread_mutex_lock(&vm->stop_lock);
	for (unsigned int i = 0; i < vm->vcpu_count && !vm->stop_requested; i++) {
		result = vcpu_start(&vm->vcpus[i], paused);
		if (result) {
			snprintf(err, err_len, "starting vCPU %u: %s", i,
				 strerror(-result));
			break;
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
	vm->started = result == 0;
	if (result)
		vm_request_stop(vm, VM_STOP_ERROR, err);
	return result;
}

static void deadline_in(struct timespec *deadline, long milliseconds)
{
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += milliseconds / 1000;
	deadline->tv_nsec += (milliseconds % 1000) * 1000000L;
	if (deadline->tv_nsec >= 1000000000L) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000L;
	}
}

/* Tells every vCPU to run. Nothing waits for them to say so: once told,
 * a vCPU runs guest code as soon as its thread gets a CPU, and the caller
 * (a resume) has nothing to do that depends on it. */
static void run_vcpus(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->vcpu_count; i++)
		vcpu_command(&vm->vcpus[i], VCPU_COMMAND_RUN);
}

static int park_vcpus(struct vm *vm, char *err, size_t err_len)
{
	struct timespec deadline;

	for (unsigned int i = 0; i < vm->vcpu_count; i++)
		vcpu_command(&vm->vcpus[i], VCPU_COMMAND_PARK);
	deadline_in(&deadline, VM_PARK_TIMEOUT_MS);
	for (unsigned int i = 0; i < vm->vcpu_count; i++) {
		int result = vcpu_wait(&vm->vcpus[i], VCPU_PARKED, &deadline);

		if (result == -ETIMEDOUT) {
			snprintf(err, err_len,
				 "vCPU %u did not stop within %d ms (held up in "
				 "a device access, such as a console nobody "
				 "reads); the VM runs on",
				 i, VM_PARK_TIMEOUT_MS);
			run_vcpus(vm);
			return result;
		}
		if (result) {
			snprintf(err, err_len, "vCPU %u has stopped for good", i);
			run_vcpus(vm);
			return result;
		}
	}
	return 0;
}

/*
 * Guest time stands still while the VM is paused, as QEMU has it: the
 * kvmclock is read when the vCPUs have parked and set back to that value
 * before they run again, so the guest sees no jump (no soft lockup, RCU
 * stall or clocksource warning after a long pause), and its wall clock
 * falls behind by the pause until the guest corrects it (NTP). Each vCPU
 * is also told through KVM_KVMCLOCK_CTRL that it was stopped by its host,
 * which the guest's watchdogs look at. docs/decisions.md has the reason.
 */
static void freeze_guest_clock(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->vcpu_count; i++) {
		/* EINVAL: the guest has not set up kvmclock on this vCPU;
		 * there is no one to tell. */
		ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
	}
	vm->clock_frozen = ioctl(vm->fd, KVM_GET_CLOCK, &vm->paused_clock) == 0;
	vm->paused_realtime_ns = vcpu_state_realtime_ns();
}

static void thaw_guest_clock(struct vm *vm)
{
	if (!vm->clock_frozen)
		return;
	struct kvm_clock_data clock = { .clock = vm->paused_clock.clock };
	if (ioctl(vm->fd, KVM_SET_CLOCK, &clock))
		fprintf(stderr, "vessel: KVM_SET_CLOCK: %s\n", strerror(errno));
	vm->clock_frozen = false;
}

static void resume_devices(struct vm *vm, unsigned int count)
{
	while (count-- > 0) {
		const struct device_record *device = &vm->devices[count];

		if (device->ops->resume)
			device->ops->resume(device->opaque);
	}
}

int vm_pause(struct vm *vm, char *err, size_t err_len)
{
	int result = park_vcpus(vm, err, err_len);

	if (result)
		return result;
	console_connect(vm->console, NULL);
	freeze_guest_clock(vm);
	for (unsigned int i = 0; i < vm->device_count; i++) {
		const struct device_record *device = &vm->devices[i];

		result = device->ops->quiesce ? device->ops->quiesce(device->opaque)
					      : 0;
		if (result) {
			snprintf(err, err_len, "pausing %s: %s", device->name,
				 strerror(-result));
			resume_devices(vm, i);
			thaw_guest_clock(vm);
			console_connect(vm->console, vm->serial);
			run_vcpus(vm);
			return result;
		}
	}
	return 0;
}

int vm_resume(struct vm *vm, char *err, size_t err_len)
{
	(void)err;
	(void)err_len;
	resume_devices(vm, vm->device_count);
	thaw_guest_clock(vm);
	console_connect(vm->console, vm->serial);
	run_vcpus(vm);
	return 0;
}

bool vm_stopping(struct vm *vm)
{
	pthread_mutex_lock(&vm->stop_lock);
	bool stopping = vm->stop_requested;
	pthread_mutex_unlock(&vm->stop_lock);
	return stopping;
}

void vm_show_state(struct vm *vm, enum vm_state state)
{
	display_show_state(vm->display, state);
}

struct display *vm_release_display(struct vm *vm)
{
	struct display *display = vm->display;

	vm->display = NULL;
	return display;
}

void vm_press_power_button(struct vm *vm)
{
	acpi_pm_press_power_button(vm->acpi_pm);
}

void vm_describe(struct vm *vm, struct control_info *info)
{
	for (unsigned int i = 0; i < vm->device_count &&
				 info->group_count < CONTROL_MAX_COUNTER_GROUPS;
	     i++) {
		const struct device_record *device = &vm->devices[i];
		struct control_counters *group = &info->groups[info->group_count++];

		group->name = device->name;
		group->count = device->ops->counters ?
			device->ops->counters(device->opaque, group->counters,
					      DEVICE_MAX_COUNTERS) : 0;
	}
	for (unsigned int i = 0; i < vm->vcpu_count &&
				 info->group_count < CONTROL_MAX_COUNTER_GROUPS;
	     i++) {
		struct control_counters *group = &info->groups[info->group_count++];

		group->name = vm->vcpus[i].name;
		group->count = 0;
		for (int kind = 0; kind < VCPU_EXIT_KIND_COUNT &&
				   group->count < DEVICE_MAX_COUNTERS;
		     kind++)
			group->counters[group->count++] = (struct device_counter){
				vcpu_exit_kind_name(kind),
				vcpu_exit_count(&vm->vcpus[i], kind),
			};
	}
}
