/* The lifecycle's one transition table, state by request: what the user
 * may ask in each state, and that everything else is refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "../../vmm/lifecycle.h"

#define NO VM_STATE_COUNT

/* The expected table, written out in full so that a change to the real
 * one shows here. */
static const enum vm_state expected[VM_STATE_COUNT][VM_REQUEST_COUNT] = {
	/*                      configure  start  start-paused  pause  resume  power-button  reboot  stop  suspend */
	[VM_STATE_INACTIVE] = { VM_STATE_INACTIVE, VM_STATE_ACTIVE, VM_STATE_PAUSED, NO, NO, NO, NO, VM_STATE_STOPPED, NO },
	[VM_STATE_ACTIVE] = { NO, NO, NO, VM_STATE_PAUSED, NO, VM_STATE_ACTIVE, VM_STATE_ACTIVE, VM_STATE_STOPPED, VM_STATE_SUSPENDED },
	[VM_STATE_PAUSED] = { NO, NO, NO, NO, VM_STATE_ACTIVE, NO, NO, VM_STATE_STOPPED, VM_STATE_SUSPENDED },
	[VM_STATE_SUSPENDED] = { NO, NO, NO, NO, VM_STATE_ACTIVE, NO, NO, VM_STATE_STOPPED, NO },
	[VM_STATE_STOPPED] = { NO, NO, NO, NO, NO, NO, NO, NO, NO },
};

Test(lifecycle, every_state_by_every_request)
{
	for (int state = 0; state < VM_STATE_COUNT; state++) {
		for (int request = 0; request < VM_REQUEST_COUNT; request++) {
			enum vm_state next = VM_STATE_COUNT;
			int result = lifecycle_next(state, request, &next);

			if (expected[state][request] == NO) {
				cr_assert_eq(result, -EBUSY, "%s in %s is refused",
					     vm_request_name(request),
					     vm_state_name(state));
				cr_assert_eq(next, VM_STATE_COUNT,
					     "a refusal leaves next alone");
			} else {
				cr_assert_eq(result, 0, "%s in %s is allowed",
					     vm_request_name(request),
					     vm_state_name(state));
				cr_assert_eq(next, expected[state][request],
					     "%s in %s leads to %s",
					     vm_request_name(request),
					     vm_state_name(state),
					     vm_state_name(expected[state][request]));
			}
		}
	}
}

Test(lifecycle, stopped_is_the_end)
{
	enum vm_state next;

	for (int request = 0; request < VM_REQUEST_COUNT; request++)
		cr_assert_eq(lifecycle_next(VM_STATE_STOPPED, request, &next),
			     -EBUSY);
}

Test(lifecycle, values_outside_the_enums_are_refused)
{
	enum vm_state next;

	cr_assert_eq(lifecycle_next(VM_STATE_COUNT, VM_REQUEST_START, &next),
		     -EINVAL);
	cr_assert_eq(lifecycle_next(VM_STATE_ACTIVE, VM_REQUEST_COUNT, &next),
		     -EINVAL);
	cr_assert_eq(lifecycle_next((enum vm_state)-1, VM_REQUEST_START, &next),
		     -EINVAL);
}

Test(lifecycle, names)
{
	cr_assert_str_eq(vm_state_name(VM_STATE_INACTIVE), "inactive");
	cr_assert_str_eq(vm_state_name(VM_STATE_ACTIVE), "active");
	cr_assert_str_eq(vm_state_name(VM_STATE_PAUSED), "paused");
	cr_assert_str_eq(vm_state_name(VM_STATE_SUSPENDED), "suspended");
	cr_assert_str_eq(vm_state_name(VM_STATE_STOPPED), "stopped");
	cr_assert_str_eq(vm_state_name(VM_STATE_COUNT), "unknown");
	for (int request = 0; request < VM_REQUEST_COUNT; request++)
		cr_assert_not_null(vm_request_name(request));
	cr_assert_null(vm_request_name(VM_REQUEST_COUNT));
}
