/*
 * The VM's lifecycle as one state machine (the states of the classic
 * live-migration literature): inactive (defined, not running), active,
 * paused (every vCPU parked, all state in memory), suspended (state and
 * memory on disk, released), and the end state stopped.
 *
 * Promise: lifecycle_next() is the one table of transitions. Every request,
 * from the control API, the command line or the guest itself (a reset, a
 * power-off), is checked against it before anything is done; a request the
 * current state does not allow is refused with -EBUSY and changes nothing.
 */
#ifndef VESSEL_VMM_LIFECYCLE_H
#define VESSEL_VMM_LIFECYCLE_H

enum vm_state {
	VM_STATE_INACTIVE,
	VM_STATE_ACTIVE,
	VM_STATE_PAUSED,
	VM_STATE_SUSPENDED,
	VM_STATE_STOPPED,
	VM_STATE_COUNT,
};

enum vm_request {
	VM_REQUEST_CONFIGURE, /* set the configuration; stays inactive */
	VM_REQUEST_START, /* build the machine and run it */
	VM_REQUEST_START_PAUSED, /* build it with its vCPUs parked */
	VM_REQUEST_PAUSE,
	VM_REQUEST_RESUME,
	VM_REQUEST_POWER_BUTTON, /* ask the guest to power off; stays active */
	VM_REQUEST_REBOOT, /* the guest reset the machine: a fresh one */
	VM_REQUEST_STOP, /* hard: no guest instruction runs again */
	VM_REQUEST_SUSPEND, /* state and memory to disk, memory released */
	VM_REQUEST_COUNT,
};

/* "inactive", "active", ...: the names the API and the CLI print. */
const char *vm_state_name(enum vm_state state);
/* "configure", "start", ...; NULL for an unknown request. */
const char *vm_request_name(enum vm_request request);

/* The state request leads to from state: 0 and *next, or -EBUSY when the
 * table does not allow it (-EINVAL for a value outside the enums). */
int lifecycle_next(enum vm_state state, enum vm_request request,
		   enum vm_state *next);

#endif
