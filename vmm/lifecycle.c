#include "lifecycle.h"

#include <errno.h>
#include <stddef.h>

/* What each request leads to, by state; VM_STATE_COUNT where it is not
 * allowed. A reboot is the guest's own doing and keeps the VM active; a
 * power-off by the guest is a stop. Resume from suspended is the snapshot
 * code's: it brings the memory back first. */
#define NO VM_STATE_COUNT
static const enum vm_state transitions[VM_STATE_COUNT][VM_REQUEST_COUNT] = {
	[VM_STATE_INACTIVE] = {
		[VM_REQUEST_CONFIGURE] = VM_STATE_INACTIVE,
		[VM_REQUEST_START] = VM_STATE_ACTIVE,
		[VM_REQUEST_START_PAUSED] = VM_STATE_PAUSED,
		[VM_REQUEST_PAUSE] = NO,
		[VM_REQUEST_RESUME] = NO,
		[VM_REQUEST_POWER_BUTTON] = NO,
		[VM_REQUEST_REBOOT] = NO,
		[VM_REQUEST_STOP] = VM_STATE_STOPPED,
		[VM_REQUEST_SUSPEND] = NO,
	},
	[VM_STATE_ACTIVE] = {
		[VM_REQUEST_CONFIGURE] = NO,
		[VM_REQUEST_START] = NO,
		[VM_REQUEST_START_PAUSED] = NO,
		[VM_REQUEST_PAUSE] = VM_STATE_PAUSED,
		[VM_REQUEST_RESUME] = NO,
		[VM_REQUEST_POWER_BUTTON] = VM_STATE_ACTIVE,
		[VM_REQUEST_REBOOT] = VM_STATE_ACTIVE,
		[VM_REQUEST_STOP] = VM_STATE_STOPPED,
		[VM_REQUEST_SUSPEND] = VM_STATE_SUSPENDED,
	},
	[VM_STATE_PAUSED] = {
		[VM_REQUEST_CONFIGURE] = NO,
		[VM_REQUEST_START] = NO,
		[VM_REQUEST_START_PAUSED] = NO,
		[VM_REQUEST_PAUSE] = NO,
		[VM_REQUEST_RESUME] = VM_STATE_ACTIVE,
		[VM_REQUEST_POWER_BUTTON] = NO,
		[VM_REQUEST_REBOOT] = NO,
		[VM_REQUEST_STOP] = VM_STATE_STOPPED,
		[VM_REQUEST_SUSPEND] = VM_STATE_SUSPENDED,
	},
	[VM_STATE_SUSPENDED] = {
		[VM_REQUEST_CONFIGURE] = NO,
		[VM_REQUEST_START] = NO,
		[VM_REQUEST_START_PAUSED] = NO,
		[VM_REQUEST_PAUSE] = NO,
		[VM_REQUEST_RESUME] = VM_STATE_ACTIVE,
		[VM_REQUEST_POWER_BUTTON] = NO,
		[VM_REQUEST_REBOOT] = NO,
		[VM_REQUEST_STOP] = VM_STATE_STOPPED,
		[VM_REQUEST_SUSPEND] = NO,
	},
	[VM_STATE_STOPPED] = {
		[VM_REQUEST_CONFIGURE] = NO,
		[VM_REQUEST_START] = NO,
		[VM_REQUEST_START_PAUSED] = NO,
		[VM_REQUEST_PAUSE] = NO,
		[VM_REQUEST_RESUME] = NO,
		[VM_REQUEST_POWER_BUTTON] = NO,
		[VM_REQUEST_REBOOT] = NO,
		[VM_REQUEST_STOP] = NO,
		[VM_REQUEST_SUSPEND] = NO,
	},
};
#undef NO

const char *vm_state_name(enum vm_state state)
{
	static const char *const names[VM_STATE_COUNT] = {
		[VM_STATE_INACTIVE] = "inactive",
		[VM_STATE_ACTIVE] = "active",
		[VM_STATE_PAUSED] = "paused",
		[VM_STATE_SUSPENDED] = "suspended",
		[VM_STATE_STOPPED] = "stopped",
	};
	return (unsigned int)state < VM_STATE_COUNT ? names[state] : "unknown";
}

const char *vm_request_name(enum vm_request request)
{
	static const char *const names[VM_REQUEST_COUNT] = {
		[VM_REQUEST_CONFIGURE] = "configure",
		[VM_REQUEST_START] = "start",
		[VM_REQUEST_START_PAUSED] = "start-paused",
		[VM_REQUEST_PAUSE] = "pause",
		[VM_REQUEST_RESUME] = "resume",
		[VM_REQUEST_POWER_BUTTON] = "power-button",
		[VM_REQUEST_REBOOT] = "reboot",
		[VM_REQUEST_STOP] = "stop",
		[VM_REQUEST_SUSPEND] = "suspend",
	};
	return (unsigned int)request < VM_REQUEST_COUNT ? names[request] : NULL;
}

int lifecycle_next(enum vm_state state, enum vm_request request,
		   enum vm_state *next)
{
	if ((unsigned int)state >= VM_STATE_COUNT ||
	    (unsigned int)request >= VM_REQUEST_COUNT)
		return -EINVAL;
	if (transitions[state][request] == VM_STATE_COUNT)
		return -EBUSY;
	*next = transitions[state][request];
	return 0;
}
