/*
 * The lifecycle of a Linux guest driven through the control API, with the
 * `vessel` client (vessel pause|resume|power-button|stop --api-sock S), in
 * the emulated AMD-V host: a guest counting on its console prints nothing
 * while paused and goes on with the next number after resume, a long
 * pause leaves no soft lockup, RCU stall or clocksource complaint in the
 * guest's log, the power button makes the guest power off (vessel ends
 * with status 0), and stop ends vessel at once.
 */
#include <criterion/criterion.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define BOOT_TIMEOUT 240 /* seconds: TCG-emulated host, nested guest */
#define COMMAND_TIMEOUT 60

extern char **environ;

static char socket_path[64];

/* Runs the vessel client: its exit status. */
static int client(const char *command)
{
	const char *vessel = getenv("VESSEL_BINARY");
	char *argv[] = { (char *)vessel, (char *)command, "--api-sock",
			 socket_path, NULL };
	pid_t pid;
	int status;

	cr_assert(vessel, "VESSEL_BINARY is not set");
	cr_assert_eq(posix_spawn(&pid, vessel, NULL, NULL, argv, environ), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A request straight on the API socket: cheaper than the client in the
 * emulated host, where starting a process costs a good part of a second. */
static int request(const char *path)
{
	return api_request(socket_path, "PUT", path, NULL);
}

/* The default guest with the API on, running command (the rest of the
 * kernel command line). */
static void start_guest(struct guest_session *session, const char *cpus,
			const char *command)
{
	char cmdline[1024], kernel[4096], initrd[4096];

	/* guest_artifact's answer lasts until its next call. */
	snprintf(kernel, sizeof(kernel), "%s", guest_artifact("vmlinuz"));
	snprintf(initrd, sizeof(initrd), "%s", guest_artifact("initramfs.cpio.gz"));
	snprintf(socket_path, sizeof(socket_path), "/tmp/vessel-lifecycle-%d.sock",
		 getpid());
	/* quiet: a kernel message printed in the middle of a counter line
	 * (a module's probe after userspace is up) would hide the line. */
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 reboot=k panic=1 quiet vessel.run=%s", command);
	char *argv[] = { "vessel", "run",
			 "--kernel", kernel, "--initrd", initrd,
			 "--memory", "512M", "--cpus", (char *)cpus,
			 "--api-sock", socket_path, "--no-reboot",
			 "--cmdline", cmdline, NULL };
	cr_assert_eq(guest_session_start(session, argv), 0);
	cr_assert(guest_session_expect(session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT), "guest did not reach userspace");
}

static void wait_for_number(struct guest_session *session, unsigned long number)
{
	char text[32];

	snprintf(text, sizeof(text), "\nn=%lu\r", number);
	cr_assert(guest_session_expect(session, text, COMMAND_TIMEOUT),
		  "the guest did not count to %lu", number);
}

/* Every n= line is the one after the line before, from n=1 on. */
static void assert_counted_in_order(const struct guest_session *session)
{
	unsigned long wrong, expected;

	cr_assert(console_counted_in_order(session->output, 1, &wrong, &expected),
		  "n=%lu where n=%lu belonged", wrong, expected);
}

static void pause_resume_cycles(const char *cpus, int cycles)
{
	struct guest_session session;

	start_guest(&session, cpus,
		    "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); echo n=$i; "
		    "usleep 20000; done");
	wait_for_number(&session, 5);
	for (int cycle = 0; cycle < cycles; cycle++) {
		cr_assert_eq(request("/api/v1/vm/pause"), 204, "pause %d", cycle);
		/* What the guest wrote before the pause may still be on its
		 * way through the console: take it in first. */
		guest_session_collect(&session, 100);
		unsigned long paused_at = console_last_count(session.output);
		guest_session_collect(&session, 300);
		cr_assert_eq(console_last_count(session.output), paused_at,
			     "cycle %d: the guest counted while paused", cycle);
		cr_assert_eq(request("/api/v1/vm/resume"), 204, "resume %d",
			     cycle);
		wait_for_number(&session, paused_at + 1);
	}
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0,
		     "stop ends vessel with status 0");
	assert_counted_in_order(&session);
	guest_session_close(&session);
}

Test(lifecycle, pause_and_resume_a_counting_guest_one_cpu)
{
	pause_resume_cycles("1", 100);
}

Test(lifecycle, pause_and_resume_a_counting_guest_four_cpus)
{
	pause_resume_cycles("4", 10);
}

/* After a minute paused, the guest's log has no new complaint about time:
 * only what it logged after the pause counts (booting in the emulated
 * host, the kernel logs its clocksources and may mark the TSC unstable). */
Test(lifecycle, a_long_pause_leaves_a_clean_guest_log)
{
	struct guest_session session;

	start_guest(&session, "2",
		    "sleep 5; before=$(dmesg | wc -l); echo slept; sleep 5; "
		    "dmesg | tail -n +$((before+1)); "
		    "echo complaints=$(dmesg | tail -n +$((before+1)) | grep -ciE "
		    "'soft lockup|rcu.*stall|clocksource|hung task|watchdog')");
	cr_assert(guest_session_expect(&session, "slept", COMMAND_TIMEOUT));
	cr_assert_eq(client("pause"), 0);
	sleep(60);
	cr_assert_eq(client("resume"), 0);
	/* The kernel echoes its command line at boot, "complaints=" in it:
	 * the count is what follows the line the guest prints at the end. */
	cr_assert(guest_session_expect(&session, "\ncomplaints=", COMMAND_TIMEOUT));
	size_t count = session.search_from;
	/* The rest of the line may come in a later read. */
	cr_assert(guest_session_expect(&session, "\n", COMMAND_TIMEOUT));
	cr_assert(!strncmp(session.output + count, "0\r", 2),
		  "the guest's log complains after the pause:\n%s",
		  session.output + count);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
}

/* The ACPI power button: the guest's init powers off, vessel ends with 0. */
Test(lifecycle, the_power_button_powers_the_guest_off)
{
	struct guest_session session;

	start_guest(&session, "1", "echo waiting; sleep 600");
	cr_assert(guest_session_expect(&session, "waiting", COMMAND_TIMEOUT));
	sleep(2);
	cr_assert_eq(client("power-button"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0,
		     "the guest powered off on the button: vessel ends with 0");
	guest_session_close(&session);
}
