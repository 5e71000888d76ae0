/*
 * The walk over the machine's device list that pause and resume make
 * (vmm/vm_run.c): devices are quiesced in the machine's order and resumed
 * in the reverse one; a device that cannot quiesce fails the pause with
 * its name, and those already quiesced are resumed, in reverse, while the
 * rest are never asked; the counters of every device are listed in order.
 * The machine here has devices and no vCPUs, which the walk does not need.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../vmm/vm_private.h"

#define DEVICES 4

static struct vm vm;
static struct event_loop *loop;
static struct console *console;
static int input[2], output[2];

struct fake {
	int fail_quiesce; /* -errno to fail with */
};
static struct fake fakes[DEVICES];
static char calls[64][24];
static unsigned int call_count;

static void record(const char *what, void *opaque)
{
	snprintf(calls[call_count++], sizeof(calls[0]), "%s%d", what,
		 (int)((struct fake *)opaque - fakes));
}

static int fake_quiesce(void *opaque)
{
	record("q", opaque);
	return ((struct fake *)opaque)->fail_quiesce;
}

static void fake_resume(void *opaque)
{
	record("r", opaque);
}

static unsigned int fake_counters(void *opaque, struct device_counter *out,
				  unsigned int max)
{
	cr_assert_geq(max, 1);
	out[0] = (struct device_counter){ "index",
		(uint64_t)((struct fake *)opaque - fakes) };
	return 1;
}

static const struct device_ops fake_ops = {
	.quiesce = fake_quiesce,
	.resume = fake_resume,
	.counters = fake_counters,
};

static void ignore(void *opaque)
{
	(void)opaque;
}

static void setup(void)
{
	static const char *const names[DEVICES] = { "serial0", "virtio-blk0",
						    "virtio-net0", "virtio-rng" };
	char err[256];

	memset(&vm, 0, sizeof(vm));
	memset(fakes, 0, sizeof(fakes));
	call_count = 0;
	cr_assert_eq(pipe(input), 0);
	cr_assert_eq(pipe(output), 0);
	loop = event_loop_create();
	const struct console_hooks hooks = { .quit = ignore,
					     .power_button = ignore };
	console = console_create(loop, input[0], output[1], &hooks, err,
				 sizeof(err));
	cr_assert_not_null(console, "%s", err);
	vm.console = console;
	vm.fd = -1; /* no KVM VM: the guest's clock is left alone */
	for (unsigned int i = 0; i < DEVICES; i++)
		vm.devices[vm.device_count++] = (struct device_record){
			.name = names[i], .ops = &fake_ops, .opaque = &fakes[i] };
}

static void teardown(void)
{
	console_destroy(console);
	event_loop_destroy(loop);
	close(input[0]);
	close(input[1]);
	close(output[0]);
	close(output[1]);
}

TestSuite(device_walk, .init = setup, .fini = teardown);

static void assert_calls(const char *const expected[], unsigned int count)
{
	cr_assert_eq(call_count, count, "%u calls, not %u", call_count, count);
	for (unsigned int i = 0; i < count; i++)
		cr_assert_str_eq(calls[i], expected[i], "call %u", i);
}

Test(device_walk, pause_in_order_and_resume_in_reverse)
{
	char err[256] = "";

	cr_assert_eq(vm_pause(&vm, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vm_resume(&vm, err, sizeof(err)), 0, "%s", err);
	static const char *const expected[] = { "q0", "q1", "q2", "q3",
						"r3", "r2", "r1", "r0" };
	assert_calls(expected, 8);
}

Test(device_walk, a_device_that_cannot_quiesce_undoes_the_pause)
{
	char err[256] = "";

	fakes[2].fail_quiesce = -EIO;
	cr_assert_eq(vm_pause(&vm, err, sizeof(err)), -EIO);
	cr_assert(strstr(err, "virtio-net0"), "the message names it: %s", err);
	static const char *const expected[] = { "q0", "q1", "q2", "r1", "r0" };
	assert_calls(expected, 5);
}

Test(device_walk, counters_of_every_device_in_order)
{
	struct control_info info = { 0 };

	vm_describe(&vm, &info);
	cr_assert_eq(info.group_count, DEVICES);
	for (unsigned int i = 0; i < DEVICES; i++) {
		cr_assert_str_eq(info.groups[i].name, vm.devices[i].name);
		cr_assert_eq(info.groups[i].count, 1);
		cr_assert_eq(info.groups[i].counters[0].value, i);
	}
}
