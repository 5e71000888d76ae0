#include "machine.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "display.h"
#include "progress.h"
#include "snapshot.h"
#include "vm.h"

#define MESSAGE_SIZE 512

struct machine {
	const struct kvm_host *host;
	struct event_loop *loop;
	struct console *console;
	struct vm_config *config; /* NULL until configured */
	enum vm_state state;
	struct vm *vm; /* while active or paused */
	struct timespec started; /* when the guest first ran */
	/* A VM asked to stop, from any thread: the event thread takes it
	 * from here (vm.h's stop hook). */
	int stop_fd;
	int exit_status;
	/* Set by machine_stop: the status a user's stop ends with. */
	int requested_status;
	/* A user's stop, and its message, held by the machine too: the VM
	 * may be stopping already for a reset of its own, which keeps its
	 * first reason, and that reset must not boot a new VM once the stop
	 * has been answered. */
	bool user_stop;
	char user_stop_message[MESSAGE_SIZE];
	char *suspended_dir; /* the snapshot a suspended VM is in */
	/* The base of the next diff snapshot: the last snapshot the VM was
	 * written to or restored from, while its writes are tracked since
	 * (an absolute path, and its identity); NULL when there is none. */
	char *base_dir;
	uint64_t base_identity;
	/* A suspended VM's window, detached, and whether it was closed
	 * (display thread, then the stop hook). */
	struct display *kept_display;
	atomic_bool kept_window_closed;
};

/* The VM's stop hook: any thread. */
static void vm_stop_requested(void *opaque)
{
	struct machine *machine = opaque;
	uint64_t one = 1;

	if (write(machine->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow from single increments. */
	}
}

static void enter_state(struct machine *machine, enum vm_state state)
{
	machine->state = state;
	if (machine->vm)
		vm_show_state(machine->vm, state);
	display_show_state(machine->kept_display, state);
	if (state == VM_STATE_STOPPED)
		event_loop_stop(machine->loop);
}

/* Builds the machine from the configuration and starts its vCPUs. */
static int start_vm(struct machine *machine, bool paused, char *err,
		    size_t err_len)
{
	const struct vm_owner owner = { .stop_requested = vm_stop_requested,
					.opaque = machine };

	struct display *kept = machine->kept_display;

	machine->kept_display = NULL; /* the VM's now, failure or not */
	machine->vm = vm_create(machine->config, machine->host, machine->loop,
				machine->console, &owner, kept, err, err_len);
	if (!machine->vm)
		return -EINVAL;
	int result = vm_start(machine->vm, paused, err, err_len);
	if (result) {
		vm_destroy(machine->vm);
		machine->vm = NULL;
	}
	return result;
}

/* The window of a suspended VM was closed: vessel stops, the VM stays on
 * disk (closed while a reboot builds the next VM, it is the old VM's and
 * passes). Display thread: the stop hook's eventfd takes it to the event
 * thread. */
static void on_kept_window_closed(void *opaque)
{
	struct machine *machine = opaque;

	atomic_store(&machine->kept_window_closed, true);
	vm_stop_requested(machine);
}

/* The VM's window, kept by the machine while the VM is gone (suspended,
 * or between a reset and the next boot): it shows its last picture. */
static void keep_display(struct machine *machine)
{
	machine->kept_display = vm_release_display(machine->vm);
	if (machine->kept_display)
		display_detach(machine->kept_display, on_kept_window_closed,
			       machine);
}

/* The VM stopped itself or was stopped: a reset boots a fresh machine,
 * anything else ends the lifecycle. Event thread. */
static void on_vm_stop(void *opaque, uint32_t events)
{
	struct machine *machine = opaque;
	char message[MESSAGE_SIZE];
	uint64_t count;

	(void)events;
	if (read(machine->stop_fd, &count, sizeof(count)) < 0)
		return;
	bool window_closed = atomic_exchange(&machine->kept_window_closed,
					     false);
	if (!machine->vm) {
		if (window_closed && machine->state == VM_STATE_SUSPENDED)
			machine_stop(machine, "the display window was closed "
				     "while the VM was suspended", 0);
		return;
	}
	/* Only the suspended VM's window woke us, and a resume has given it
	 * to the VM since: the VM runs on. */
	if (!vm_stopping(machine->vm))
		return;
	enum vm_stop_reason reason =
		vm_stop_reason(machine->vm, message, sizeof(message));
	if (reason == VM_STOP_RESET && machine->user_stop) {
		reason = VM_STOP_REQUESTED;
		snprintf(message, sizeof(message), "%s", machine->user_stop_message);
	}
	/* A reboot keeps the window: the same one shows the new boot. */
	if (reason == VM_STOP_RESET && !machine->config->no_reboot)
		keep_display(machine);
	vm_destroy(machine->vm);
	machine->vm = NULL;

	switch (reason) {
	case VM_STOP_POWER_OFF:
		machine->exit_status = 0;
		break;
	case VM_STOP_RESET:
		if (message[0])
			fprintf(stderr, "\r\nvessel: %s\r\n", message);
		if (machine->config->no_reboot) {
			machine->exit_status = 0;
			break;
		}
		char err[MESSAGE_SIZE];
		enum vm_state next;
		if (lifecycle_next(machine->state, VM_REQUEST_REBOOT, &next) == 0 &&
		    start_vm(machine, false, err, sizeof(err)) == 0) {
			enter_state(machine, next);
			return;
		}
		fprintf(stderr, "vessel: %s\n", err);
		machine->exit_status = 1;
		break;
	case VM_STOP_REQUESTED:
		fprintf(stderr, "\r\nvessel: %s\r\n", message);
		machine->exit_status = machine->requested_status;
		break;
	case VM_STOP_ERROR:
	default:
		fprintf(stderr, "\r\nvessel: %s\r\n", message);
		machine->exit_status = 1;
		break;
	}
	enter_state(machine, VM_STATE_STOPPED);
}

struct machine *machine_create(const struct kvm_host *host,
			       struct event_loop *loop,
			       struct console *console)
{
	struct machine *machine = calloc(1, sizeof(*machine));

	if (!machine)
		return NULL;
	*machine = (struct machine){ .host = host, .loop = loop,
				     .console = console,
				     .state = VM_STATE_INACTIVE };
	machine->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (machine->stop_fd < 0 ||
	    event_loop_add(loop, machine->stop_fd, EPOLLIN, on_vm_stop,
			   machine)) {
		machine_destroy(machine);
		return NULL;
	}
	return machine;
}

void machine_destroy(struct machine *machine)
{
	if (!machine)
		return;
	vm_destroy(machine->vm);
	display_destroy(machine->kept_display);
	if (machine->stop_fd >= 0) {
		event_loop_remove(machine->loop, machine->stop_fd);
		close(machine->stop_fd);
	}
	vm_config_free(machine->config);
	free(machine->suspended_dir);
	free(machine->base_dir);
	free(machine);
}

int machine_configure(struct machine *machine, struct vm_config *config,
		      char *err, size_t err_len)
{
	enum vm_state next;

	if (lifecycle_next(machine->state, VM_REQUEST_CONFIGURE, &next)) {
		snprintf(err, err_len, "the VM is %s: its configuration is set "
			 "only while inactive", vm_state_name(machine->state));
		return -EBUSY;
	}
	int result = config_check_host(config, machine->host, err, err_len);
	if (result)
		return result;
	vm_config_free(machine->config);
	machine->config = config;
	return 0;
}

static int refuse(struct machine *machine, enum vm_request request,
		  char *err, size_t err_len)
{
	snprintf(err, err_len, "cannot %s: the VM is %s",
		 vm_request_name(request), vm_state_name(machine->state));
	return -EBUSY;
}

static int resume_suspended(struct machine *machine, char *err,
			    size_t err_len);

int machine_request(struct machine *machine, enum vm_request request,
		    char *err, size_t err_len)
{
	enum vm_state next;
	int result = 0;

	if (lifecycle_next(machine->state, request, &next))
		return refuse(machine, request, err, err_len);
	switch (request) {
	case VM_REQUEST_START:
	case VM_REQUEST_START_PAUSED:
		if (!machine->config) {
			snprintf(err, err_len, "cannot start: the VM has no "
				 "configuration yet");
			return -EBUSY;
		}
		result = start_vm(machine, request == VM_REQUEST_START_PAUSED,
				  err, err_len);
		if (!result)
			clock_gettime(CLOCK_MONOTONIC, &machine->started);
		break;
	case VM_REQUEST_PAUSE:
		result = vm_pause(machine->vm, err, err_len);
		break;
	case VM_REQUEST_RESUME:
		result = machine->state == VM_STATE_SUSPENDED ?
			resume_suspended(machine, err, err_len) :
			vm_resume(machine->vm, err, err_len);
		break;
	case VM_REQUEST_POWER_BUTTON:
		vm_press_power_button(machine->vm);
		break;
	case VM_REQUEST_STOP:
		if (machine->vm) {
			/* The stop hook finishes it (on_vm_stop). */
			machine_stop(machine, "stopped through the control API", 0);
			return 0;
		}
		break;
	case VM_REQUEST_CONFIGURE:
	case VM_REQUEST_REBOOT:
	case VM_REQUEST_SUSPEND:
	default:
		snprintf(err, err_len, "%s is not a request a client makes here",
			 vm_request_name(request));
		return -EINVAL;
	}
	if (!result)
		enter_state(machine, next);
	return result;
}

void machine_stop(struct machine *machine, const char *message,
		  int exit_status)
{
	machine->requested_status = exit_status;
	if (machine->vm) {
		machine->user_stop = true;
		snprintf(machine->user_stop_message,
			 sizeof(machine->user_stop_message), "%s", message);
		vm_request_stop(machine->vm, VM_STOP_REQUESTED, message);
		return;
	}
	fprintf(stderr, "\r\nvessel: %s\r\n", message);
	machine->exit_status = exit_status;
	enter_state(machine, VM_STATE_STOPPED);
}

void machine_power_button(struct machine *machine)
{
	char err[MESSAGE_SIZE];

	if (machine_request(machine, VM_REQUEST_POWER_BUTTON, err, sizeof(err)))
		fprintf(stderr, "\r\nvessel: %s\r\n", err);
}

/* --- snapshots ------------------------------------------------------------ */

/* dir, the VM's snapshot of identity now, is the base of its next diff;
 * NULL dir: there is none. */
static void set_base(struct machine *machine, const char *dir,
		     uint64_t identity)
{
	char *path = dir ? realpath(dir, NULL) : NULL;

	free(machine->base_dir);
	machine->base_dir = path;
	machine->base_identity = identity;
}

/* The VM's writes are tracked from now on, the log emptied: the pages a
 * diff over the snapshot about to be written needs. NULL with err when
 * they cannot be. */
static uint64_t *track_from_here(struct machine *machine, size_t *words,
				 char *err, size_t err_len)
{
	if (vm_track_writes(machine->vm, err, err_len))
		return NULL;
	return vm_harvest_writes(machine->vm, words, err, err_len);
}

int machine_snapshot(struct machine *machine,
		     const struct control_snapshot *request, char *err,
		     size_t err_len)
{
	char track_err[MESSAGE_SIZE] = "";
	uint64_t *written = NULL, identity = 0;
	size_t words = 0;

	if (machine->state != VM_STATE_PAUSED) {
		snprintf(err, err_len, "cannot snapshot: the VM is %s (a "
			 "snapshot is taken of a paused VM)",
			 vm_state_name(machine->state));
		return -EBUSY;
	}
	if (request->diff && (!machine->base_dir ||
			      !vm_tracks_writes(machine->vm))) {
		snprintf(err, err_len, "cannot take a diff snapshot: the VM has "
			 "no base (take a full snapshot first; a reboot or a "
			 "failed one ends the base)");
		return -EBUSY;
	}
	/* The VM is paused: nothing writes guest memory while the log is
	 * harvested and the snapshot written. */
	if (request->diff) {
		written = vm_harvest_writes(machine->vm, &words, err, err_len);
		if (!written)
			return -EIO;
	} else {
		/* A VM whose writes cannot be tracked still gets its full
		 * snapshot; it only has no base for a diff. */
		written = track_from_here(machine, &words, track_err,
					  sizeof(track_err));
	}
	const struct snapshot_diff diff = {
		.base_dir = machine->base_dir,
		.base_identity = machine->base_identity,
		.written = written,
		.words = words,
	};
	/* A failed snapshot leaves no directory and the VM paused. */
	int result = snapshot_write(machine->vm, machine->config, request->dir,
				    request->diff ? &diff : NULL, &identity, err,
				    err_len);
	if (result && written)
		vm_put_back_writes(machine->vm, written);
	if (!result)
		set_base(machine, written ? request->dir : NULL, identity);
	if (!result && !written)
		fprintf(stderr, "\r\nvessel: the VM's writes are not tracked "
			"(%s): no diff can be taken over %s\r\n", track_err,
			request->dir);
	free(written);
	if (!result && request->resume)
		result = machine_request(machine, VM_REQUEST_RESUME, err, err_len);
	return result;
}

/* Builds the VM from an opened snapshot, and runs it unless paused. */
static int build_from_snapshot(struct machine *machine, const char *dir,
			       struct snapshot *snapshot, bool paused,
			       bool eager, char *err, size_t err_len)
{
	const struct vm_owner owner = { .stop_requested = vm_stop_requested,
					.opaque = machine };
	struct progress progress;
	const struct vm_image image = {
		.state = &snapshot->reader,
		.memory = {
			.fd = snapshot->memory_fd,
			.layers = snapshot->layers,
			.layer_count = snapshot->layer_count,
			.eager = eager,
			.progress = &progress,
		},
		.display = machine->kept_display,
	};
	char track_err[MESSAGE_SIZE];
	size_t words;

	/* vm_restore takes both */
	snapshot->memory_fd = -1;
	machine->kept_display = NULL;
	progress_begin(&progress, "reading guest memory");
	machine->vm = vm_restore(machine->config, machine->host, machine->loop,
				 machine->console, &owner, &image, err, err_len);
	progress_end(&progress);
	if (!machine->vm)
		return -EINVAL;
	/* The snapshot is the base of the next diff: the guest's writes are
	 * tracked from before it first runs. */
	uint64_t *written = track_from_here(machine, &words, track_err,
					    sizeof(track_err));
	set_base(machine, written ? dir : NULL, snapshot->identity);
	free(written);
	int result = vm_start(machine->vm, true, err, err_len);
	if (!result && !paused)
		result = vm_resume(machine->vm, err, err_len);
	if (result) {
		vm_destroy(machine->vm);
		machine->vm = NULL;
		set_base(machine, NULL, 0);
	}
	return result;
}

int machine_restore(struct machine *machine, const char *dir,
		    struct snapshot *snapshot, bool paused, bool eager,
		    char *err, size_t err_len)
{
	enum vm_request request = paused ? VM_REQUEST_START_PAUSED :
					   VM_REQUEST_START;
	enum vm_state next;

	if (lifecycle_next(machine->state, request, &next))
		return refuse(machine, request, err, err_len);
	int result = machine_configure(machine, snapshot->config, err, err_len);
	if (result)
		return result;
	snapshot->config = NULL; /* the machine's now */
	result = build_from_snapshot(machine, dir, snapshot, paused, eager, err,
				     err_len);
	if (result)
		return result;
	clock_gettime(CLOCK_MONOTONIC, &machine->started);
	enter_state(machine, next);
	return 0;
}

int machine_suspend(struct machine *machine, const char *dir, char *err,
		    size_t err_len)
{
	enum vm_state next;

	if (lifecycle_next(machine->state, VM_REQUEST_SUSPEND, &next))
		return refuse(machine, VM_REQUEST_SUSPEND, err, err_len);
	char *kept = strdup(dir);
	if (!kept) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	bool was_active = machine->state == VM_STATE_ACTIVE;
	int result = was_active ? vm_pause(machine->vm, err, err_len) : 0;
	if (!result) {
		uint64_t identity;
		result = snapshot_write(machine->vm, machine->config, dir, NULL,
					&identity, err, err_len);
		/* Failed: the VM goes on as it was. */
		char ignored[8];
		if (result && was_active)
			vm_resume(machine->vm, ignored, sizeof(ignored));
	}
	if (result) {
		free(kept);
		return result;
	}
	/* Guest memory, the vCPUs and the devices go: what is left is
	 * vessel's own footprint, the snapshot on disk, and the window,
	 * which shows the screen as it was and says suspended. */
	keep_display(machine);
	vm_destroy(machine->vm);
	machine->vm = NULL;
	free(machine->suspended_dir);
	machine->suspended_dir = kept;
	enter_state(machine, next);
	return 0;
}

/* The suspended VM from its snapshot, in this process. */
static int resume_suspended(struct machine *machine, char *err,
			    size_t err_len)
{
	struct snapshot snapshot;
	int result = snapshot_open(machine->suspended_dir, NULL, &snapshot, err,
				   err_len);

	if (!result)
		result = build_from_snapshot(machine, machine->suspended_dir,
					     &snapshot, false, false, err, err_len);
	snapshot_close(&snapshot);
	return result;
}

static int snapshot_op(void *opaque, const struct control_snapshot *request,
		       char *err, size_t err_len)
{
	return machine_snapshot(opaque, request, err, err_len);
}

static int suspend_op(void *opaque, const char *dir, char *err, size_t err_len)
{
	return machine_suspend(opaque, dir, err, err_len);
}

static int restore_op(void *opaque, const struct control_restore *request,
		      char *err, size_t err_len)
{
	struct machine *machine = opaque;
	struct snapshot snapshot;
	enum vm_state next;

	/* Refused before the snapshot is read: nothing to check it for. */
	if (lifecycle_next(machine->state, VM_REQUEST_START, &next))
		return refuse(machine, VM_REQUEST_START, err, err_len);
	/* A snapshot that cannot be read is a request that is wrong in
	 * itself (control.h). */
	const struct snapshot_leniency leniency = {
		.allow_changed_disks = request->allow_changed_disks,
		.skip_memory_check = request->skip_memory_check,
	};
	if (snapshot_open(request->dir, &leniency, &snapshot, err, err_len))
		return -EINVAL;
	int result = snapshot_check_new_process(&snapshot, err, err_len);
	if (!result && snapshot.warning[0])
		fprintf(stderr, "\r\nvessel: restoring %s anyway: %s\r\n",
			request->dir, snapshot.warning);
	if (!result)
		result = machine_restore(machine, request->dir, &snapshot,
					 request->paused, request->eager, err,
					 err_len);
	snapshot_close(&snapshot);
	return result;
}

static void describe(void *opaque, struct control_info *info)
{
	struct machine *machine = opaque;
	struct timespec now;

	memset(info, 0, sizeof(*info));
	info->state = machine->state;
	info->config = machine->config;
	if (machine->vm) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		info->uptime_seconds =
			(double)(now.tv_sec - machine->started.tv_sec) +
			(double)(now.tv_nsec - machine->started.tv_nsec) / 1e9;
		vm_describe(machine->vm, info);
	}
}

static int configure(void *opaque, struct vm_config *config, char *err,
		     size_t err_len)
{
	return machine_configure(opaque, config, err, err_len);
}

static int request(void *opaque, enum vm_request request, char *err,
		   size_t err_len)
{
	return machine_request(opaque, request, err, err_len);
}

const struct control_ops machine_control_ops = {
	.describe = describe,
	.configure = configure,
	.request = request,
	.snapshot = snapshot_op,
	.suspend = suspend_op,
	.restore = restore_op,
};

/*
 * The event thread runs as SCHED_BATCH while it serves the VM: when a
 * guest's kick or a backend's frame wakes it, it no longer preempts a
 * vCPU that is running on its CPU, but waits for the CPU's turn or a free
 * CPU. On a host with a CPU to spare nothing changes (it wakes on the
 * idle one); on a host with fewer CPUs than busy threads the vCPU goes on
 * making chains available meanwhile, so the thread serves them in larger
 * rounds, and the guest takes fewer interrupts and wake-ups per byte
 * (docs/decisions.md has the measurements). vCPU threads are created with
 * the default policy whatever this thread's (vcpu.c). Only a thread of the
 * default policy is changed: a real-time or idle one was chosen by
 * whoever started vessel.
 */
static bool event_thread_to_batch(void)
{
	const struct sched_param param = { .sched_priority = 0 };

	return sched_getscheduler(0) == SCHED_OTHER &&
	       sched_setscheduler(0, SCHED_BATCH, &param) == 0;
}

static void event_thread_to_default(void)
{
	const struct sched_param param = { .sched_priority = 0 };

	/* Going back to SCHED_OTHER needs no privilege, so cannot fail. */
	sched_setscheduler(0, SCHED_OTHER, &param);
}

int machine_run(struct machine *machine)
{
	bool batch = event_thread_to_batch();

	while (machine->state != VM_STATE_STOPPED) {
		int result = event_loop_run(machine->loop);
		if (result && machine->state != VM_STATE_STOPPED) {
			char message[96];
			snprintf(message, sizeof(message), "event loop: %s",
				 strerror(-result));
			machine->requested_status = 1;
			machine_stop(machine, message, 1);
		}
	}
	if (batch)
		event_thread_to_default();
	return machine->exit_status;
}
