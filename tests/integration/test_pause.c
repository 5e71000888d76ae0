/*
 * Pause and resume on this machine's own /dev/kvm, through the machine's
 * own interface (vmm/machine.h), with the selftest guest counting on its
 * console at CPL3 (mode=count): a paused guest prints nothing, a resumed
 * one goes on with the next number, none lost or repeated; a vCPU held up
 * in a console write fails the pause instead of hanging it, and the VM
 * runs on.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "../../vmm/config.h"
#include "../../vmm/console.h"
#include "../../vmm/event_loop.h"
#include "../../vmm/kvm.h"
#include "../../vmm/machine.h"
#include "../../vmm/options.h"
#include "../../vmm/vcpu.h"

#define CYCLES 100
#define OUTPUT_MAX (8u << 20)

static struct kvm_host host;
static struct event_loop *loop;
static struct console *console;
static struct machine *machine;
static pthread_t event_thread;
static int exit_status;
static int input_pipe[2], output_pipe[2];

/* What the guest printed, appended by the reader thread. */
static pthread_mutex_t output_lock = PTHREAD_MUTEX_INITIALIZER;
static char *output;
static size_t output_len;
static pthread_t reader;
static volatile bool reading = true;

static void *read_output(void *opaque)
{
	char buffer[4096];

	(void)opaque;
	for (;;) {
		while (!reading)
			usleep(1000);
		ssize_t count = read(output_pipe[0], buffer, sizeof(buffer));
		if (count <= 0)
			return NULL;
		pthread_mutex_lock(&output_lock);
		if (output_len + (size_t)count < OUTPUT_MAX) {
			memcpy(output + output_len, buffer, (size_t)count);
			output_len += (size_t)count;
		}
		pthread_mutex_unlock(&output_lock);
	}
}

static size_t lines_so_far(void)
{
	size_t lines = 0;

	pthread_mutex_lock(&output_lock);
	for (size_t i = 0; i < output_len; i++)
		lines += output[i] == '\n';
	pthread_mutex_unlock(&output_lock);
	return lines;
}

static void wait_for_lines(size_t lines)
{
	for (int tries = 0; tries < 10000 && lines_so_far() < lines; tries++)
		usleep(1000);
	cr_assert_geq(lines_so_far(), lines, "the guest printed %zu lines, not %zu",
		      lines_so_far(), lines);
}

static void quit(void *opaque)
{
	(void)opaque;
}

static void *run_events(void *opaque)
{
	(void)opaque;
	exit_status = machine_run(machine);
	return NULL;
}

/* delay: the guest's busy loop between lines (2000000: about 300 lines a
 * second here). */
static void start_counting(const char *cmdline)
{
	const char *guest = getenv("VESSEL_SELFTEST_GUEST");
	char err[512];
	char *argv[] = { "run", "--kernel", (char *)guest, "--memory", "64M",
			 "--cmdline", (char *)cmdline, NULL };
	struct vm_config *config = calloc(1, sizeof(*config));

	cr_assert(guest, "VESSEL_SELFTEST_GUEST is not set");
	cr_assert_eq(options_parse_run(7, argv, config, NULL, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(kvm_host_open(&host, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(vcpu_install_kick_signal(), 0);
	cr_assert_eq(pipe(input_pipe), 0);
	cr_assert_eq(pipe(output_pipe), 0);
	/* A small pipe, so that a reader that stops makes the vCPU's
	 * console write block within a second. */
	cr_assert_gt(fcntl(output_pipe[1], F_SETPIPE_SZ, 4096), 0);
	output = calloc(1, OUTPUT_MAX);
	cr_assert_eq(pthread_create(&reader, NULL, read_output, NULL), 0);
	loop = event_loop_create();
	const struct console_hooks hooks = { .quit = quit, .power_button = quit };
	console = console_create(loop, input_pipe[0], output_pipe[1], &hooks,
				 err, sizeof(err));
	cr_assert_not_null(console, "%s", err);
	machine = machine_create(&host, loop, console);
	cr_assert_not_null(machine);
	cr_assert_eq(machine_configure(machine, config, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(machine_request(machine, VM_REQUEST_START, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(pthread_create(&event_thread, NULL, run_events, NULL), 0);
}

/* A machine request made on the event thread, as the API makes them. */
struct call {
	enum vm_request request;
	int result;
	char err[512];
};

static void call_request(void *opaque)
{
	struct call *call = opaque;

	call->result = machine_request(machine, call->request, call->err,
				       sizeof(call->err));
}

static int request(enum vm_request what, char *err, size_t err_len)
{
	struct call call = { .request = what };

	event_loop_call(loop, call_request, &call);
	snprintf(err, err_len, "%s", call.err);
	return call.result;
}

static void stop_machine(void *opaque)
{
	(void)opaque;
	machine_stop(machine, "the test is over", 0);
}

static void finish(void)
{
	event_loop_call(loop, stop_machine, NULL);
	pthread_join(event_thread, NULL);
	machine_destroy(machine);
	console_destroy(console);
	event_loop_destroy(loop);
	kvm_host_close(&host);
	close(output_pipe[1]);
	reading = true;
	pthread_join(reader, NULL);
	close(output_pipe[0]);
	close(input_pipe[0]);
	close(input_pipe[1]);
}

/* After the guest's greeting, every line is the next number, from 1 on. */
static void assert_numbers_in_order(void)
{
	unsigned long expected = 1;

	pthread_mutex_lock(&output_lock);
	for (char *line = output, *end; (end = memchr(line, '\n',
					     output_len - (size_t)(line - output)));
	     line = end + 1) {
		if (expected == 1 && !strncmp(line, "selftest: ", 10))
			continue;
		unsigned long number = strtoul(line, NULL, 10);
		cr_assert_eq(number, expected, "line %lu reads %lu", expected,
			     number);
		expected++;
	}
	pthread_mutex_unlock(&output_lock);
}

static double now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

Test(pause, a_paused_guest_prints_nothing_and_resumes_with_the_next_number)
{
	char err[512];
	double slowest_pause = 0;

	start_counting("mode=count 0 2000000");
	wait_for_lines(20);
	for (int cycle = 0; cycle < CYCLES; cycle++) {
		double before = now_ms();
		cr_assert_eq(request(VM_REQUEST_PAUSE, err, sizeof(err)), 0,
			     "pause %d: %s", cycle, err);
		double took = now_ms() - before;
		if (took > slowest_pause)
			slowest_pause = took;
		/* The UART's last bytes may still be on their way through
		 * the pipe: let them land before counting. */
		usleep(cycle % 10 == 0 ? 100000 : 5000);
		size_t paused_at = lines_so_far();
		usleep(cycle % 10 == 0 ? 200000 : 10000);
		cr_assert_eq(lines_so_far(), paused_at,
			     "cycle %d: the guest printed while paused", cycle);
		cr_assert_eq(request(VM_REQUEST_PAUSE, err, sizeof(err)), -EBUSY,
			     "a paused VM cannot be paused again");
		cr_assert_eq(request(VM_REQUEST_RESUME, err, sizeof(err)), 0,
			     "resume %d: %s", cycle, err);
		wait_for_lines(paused_at + 2);
	}
	cr_assert_eq(request(VM_REQUEST_RESUME, err, sizeof(err)), -EBUSY,
		     "a running VM cannot be resumed");
	finish();
	cr_assert_eq(exit_status, 0);
	assert_numbers_in_order();
	fprintf(stderr, "%d pause/resume cycles, %zu lines, slowest pause %.2f ms\n",
		    CYCLES, lines_so_far(), slowest_pause);
}

Test(pause, a_vcpu_held_in_a_console_write_fails_the_pause)
{
	char err[512];

	start_counting("mode=count 0 100000");
	wait_for_lines(5);
	/* Nobody reads the console: the pipe fills and the vCPU blocks in
	 * its write to it. */
	reading = false;
	int unread = 0;
	for (int tries = 0; tries < 2000 && unread < 4000; tries++) {
		usleep(10000);
		cr_assert_eq(ioctl(output_pipe[0], FIONREAD, &unread), 0);
	}
	cr_assert_geq(unread, 4000, "the console pipe never filled");
	usleep(200000);
	size_t stuck_at = lines_so_far();
	int result = request(VM_REQUEST_PAUSE, err, sizeof(err));
	cr_assert_eq(result, -ETIMEDOUT, "the pause gave %d (%s)", result, err);
	cr_assert(strstr(err, "vCPU 0 did not stop"), "message: %s", err);
	reading = true;
	wait_for_lines(stuck_at + 1000);
	cr_assert_eq(request(VM_REQUEST_PAUSE, err, sizeof(err)), 0,
		     "the VM ran on and pauses now: %s", err);
	cr_assert_eq(request(VM_REQUEST_RESUME, err, sizeof(err)), 0, "%s", err);
	finish();
	assert_numbers_in_order();
}
