/*
 * The virtual machine: KVM's VM fd with its in-kernel irqchip and PIT, guest
 * RAM, the port and MMIO buses with vessel's PC devices, the vCPUs, and the
 * kernel loaded by firmware/.
 *
 * vm.c assembles the machine and keeps its devices in one ordered list of
 * device records (devices/device.h); vm_run.c runs it: starts, parks and
 * resumes the vCPUs, quiesces and resumes the devices by walking that list,
 * and takes stop requests. The lifecycle around it (reboot as a fresh
 * machine, the states, the control API) is machine.c's.
 *
 * Promise: vm_create() builds the whole machine or nothing (one line in err
 * says which step failed). Once a stop is requested (by the guest, a vCPU
 * error, or the owner) no vCPU runs another guest instruction and the
 * owner's stop hook is called, from whatever thread made the request; the
 * owner then destroys the machine. A reset is reported, not performed.
 */
#ifndef VESSEL_VMM_VM_H
#define VESSEL_VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console.h"
#include "control.h"
#include "event_loop.h"
#include "kvm.h"
#include "memory.h"
#include "options.h"

enum vm_stop_reason {
	VM_STOP_POWER_OFF,
	VM_STOP_RESET,
	VM_STOP_ERROR,
	VM_STOP_REQUESTED, /* by the user: Ctrl-A x, a signal, the API */
};

/* What the machine's owner hears of it. */
struct vm_owner {
	/* A stop was requested (any thread): vm_stop_reason() says why. */
	void (*stop_requested)(void *opaque);
	void *opaque;
};

struct vm;
struct display;

/* A VM booted from config's kernel. display: a window kept from the VM
 * before (detached, display.h), which the VM takes, failure or not; NULL
 * for a new one when config asks for a display. */
struct vm *vm_create(const struct vm_config *config,
		     const struct kvm_host *host, struct event_loop *loop,
		     struct console *console, const struct vm_owner *owner,
		     struct display *display, char *err, size_t err_len);
/* Stops and joins the vCPUs, then frees everything. */
void vm_destroy(struct vm *vm);

/* Starts every vCPU thread, running or parked. Event thread. 0 or -errno
 * with err. */
int vm_start(struct vm *vm, bool paused, char *err, size_t err_len);

/* Parks every vCPU (each completes the exit in progress first), tells the
 * guest's kvmclock it was stopped, freezes the guest's clock, and
 * quiesces the devices in order. Bounded: a vCPU that does not park within
 * VM_PARK_TIMEOUT_MS (held up in a device access) fails the pause, and
 * everything is resumed as it was. Event thread. 0 or -errno with err. */
#define VM_PARK_TIMEOUT_MS 2000
int vm_pause(struct vm *vm, char *err, size_t err_len);
/* Undoes vm_pause: the devices resume, the guest's clock goes on from
 * where it stopped, the vCPUs run. 0 or -errno with err. */
int vm_resume(struct vm *vm, char *err, size_t err_len);

/* A press of the ACPI power button (any thread). */
void vm_press_power_button(struct vm *vm);
/* The lifecycle's state, for what shows it (the display's title). */
void vm_show_state(struct vm *vm, enum vm_state state);
/* Takes the display (NULL without one) out of the VM, for the caller to
 * detach before vm_destroy and keep (display.h): a suspended VM's window
 * stays open, and a rebooted VM's is the same window. */
struct display *vm_release_display(struct vm *vm);

/* Thread-safe; the first reason given wins. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason,
		     const char *message);
/* Whether a stop was requested: the stop hook was called for it. */
bool vm_stopping(struct vm *vm);
/* Why the machine stopped, with the reason's one-line description in
 * message when there is one; only after the stop hook was called. */
enum vm_stop_reason vm_stop_reason(struct vm *vm, char *message,
				   size_t message_len);

/*
 * Snapshots (snapshot_vm.c). vm_save writes a paused machine's state (the
 * VM's KVM state and clock, each device by its record, each vCPU) into
 * writer; a device that cannot be saved fails it with one line naming the
 * device. vm_save_memory writes guest RAM as an image (memory.h).
 * vm_restore builds the machine of config without booting it (no kernel
 * is loaded) on the memory image memory_fd (taken), restores it from
 * state, and leaves it paused with its vCPU threads not started: vm_start
 * it parked, and vm_resume it to run.
 */
struct state_writer;
struct state_reader;
int vm_save(struct vm *vm, struct state_writer *writer, char *err,
	    size_t err_len);
struct progress;
int vm_save_memory(struct vm *vm, int fd, uint64_t *checksum,
		   struct progress *progress, char *err, size_t err_len);
/* The listed pages of guest RAM only, for a diff (memory.h). */
int vm_save_memory_pages(struct vm *vm, int fd, const uint64_t *pages,
			 size_t count, uint64_t *checksum,
			 struct progress *progress, char *err, size_t err_len);
struct vm_image {
	struct state_reader *state;
	struct vm_memory_source memory;
	/* A suspended VM's window, detached (display.h), or NULL for a new
	 * one: the VM takes it, as it takes the memory's descriptor. */
	struct display *display;
};

/*
 * Which pages of guest RAM were written since a point (dirty_log.h), for
 * diff snapshots. vm_track_writes starts it (again running is fine);
 * vm_harvest_writes returns a new bitmap of the image's pages written
 * since the start or the last harvest, NULL with err on failure;
 * vm_put_back_writes gives a harvest back. Tracking ends with the VM.
 */
int vm_track_writes(struct vm *vm, char *err, size_t err_len);
bool vm_tracks_writes(const struct vm *vm);
uint64_t *vm_harvest_writes(struct vm *vm, size_t *words, char *err,
			    size_t err_len);
void vm_put_back_writes(struct vm *vm, const uint64_t *pages);
/* What vm_restore checks of state that needs no machine (the VM's and
 * each vCPU's parts, their versions and sizes), for a refusal before
 * anything is made. */
int vm_check_state(const struct vm_config *config, struct state_reader *reader,
		   char *err, size_t err_len);
struct vm *vm_restore(const struct vm_config *config,
		      const struct kvm_host *host, struct event_loop *loop,
		      struct console *console, const struct vm_owner *owner,
		      const struct vm_image *image, char *err, size_t err_len);

/* Appends the devices' and the vCPUs' counters to info->groups. */
void vm_describe(struct vm *vm, struct control_info *info);

#endif
