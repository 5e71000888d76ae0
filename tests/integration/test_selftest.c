/*
 * vessel runs the freestanding selftest guest on this machine's own
 * /dev/kvm: the UART both ways, the i8042 reset line, the CMOS clock,
 * CPUID masking, ACPI power-off, the reports of a triple fault and of an
 * exit vessel cannot handle, the event thread's scheduling policy, and
 * mode=count's numbered lines (what pause and resume tests watch).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define TIMEOUT 60

static void run_selftest(struct guest_session *session, const char *cmdline,
			 const char *extra)
{
	const char *guest = getenv("VESSEL_SELFTEST_GUEST");
	char *argv[] = { "vessel", "run", "--kernel", (char *)guest,
			 "--memory", "64M", "--cmdline", (char *)cmdline,
			 (char *)extra, NULL };

	cr_assert(guest, "VESSEL_SELFTEST_GUEST is not set");
	cr_assert_eq(guest_session_start(session, argv), 0);
}

Test(selftest, hello_and_power_off)
{
	struct guest_session session;

	run_selftest(&session, "mode=hello", NULL);
	cr_assert(guest_session_expect(&session, "selftest: hello from cpl3", TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0,
		     "ACPI power-off must end vessel with status 0");
	guest_session_close(&session);
}

Test(selftest, console_input_reaches_the_guest)
{
	struct guest_session session;

	run_selftest(&session, "mode=echo", NULL);
	cr_assert(guest_session_expect(&session, "echo ready", TIMEOUT));
	/* More than the 16-byte FIFO: the console must wait for room. The
	 * guest stops at 'q', so the text has none. */
	static const char text[] =
		"vessel hands every byte of this long line to the guest";
	cr_assert_eq(guest_session_send(&session, text), 0);
	cr_assert(guest_session_expect(&session, text, TIMEOUT));
	cr_assert_eq(guest_session_send(&session, "q"), 0);
	cr_assert(guest_session_expect(&session, "echo done", TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
}

struct policy_query {
	const char *name;
	int policy; /* -1 until a thread of that name is found */
};

static void match_thread_policy(const struct thread_stat *thread, void *opaque)
{
	struct policy_query *query = opaque;

	if (query->policy < 0 && strcmp(thread->name, query->name) == 0)
		query->policy = (int)thread->field[41];
}

/* The scheduling policy of the first thread of pid named name, or -1 when
 * it has none of that name. */
static int thread_policy(pid_t pid, const char *name)
{
	struct policy_query query = { .name = name, .policy = -1 };

	guest_session_each_thread(pid, match_thread_policy, &query);
	return query.policy;
}

Test(selftest, event_thread_runs_as_batch_and_vcpus_do_not)
{
	struct guest_session session;

	run_selftest(&session, "mode=echo", NULL);
	cr_assert(guest_session_expect(&session, "echo ready", TIMEOUT));
	/* The event thread is vessel's first thread, named as the binary. It
	 * takes the policy just after starting the vCPUs, so the guest's
	 * first line may come a moment before it does. */
	int event_thread = -1;
	for (int tries = 0; tries < 500 && event_thread != SCHED_BATCH; tries++) {
		if (tries)
			usleep(10000);
		event_thread = thread_policy(session.pid, "vessel");
	}
	int vcpu = thread_policy(session.pid, "vcpu0");
	cr_assert_eq(guest_session_send(&session, "q"), 0);
	cr_assert(guest_session_expect(&session, "echo done", TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
	cr_assert_eq(event_thread, SCHED_BATCH,
		     "the event thread's policy is %d", event_thread);
	cr_assert_eq(vcpu, SCHED_OTHER, "vcpu0's policy is %d", vcpu);
}

Test(selftest, reset_line_ends_vessel_with_no_reboot)
{
	struct guest_session session;

	run_selftest(&session, "mode=reset", "--no-reboot");
	cr_assert(guest_session_expect(&session, "resetting through the i8042", TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	cr_assert_null(strstr(session.output, "reset did not happen"));
	guest_session_close(&session);
}

Test(selftest, unhandled_exit_is_reported_and_fails)
{
	struct guest_session session;

	run_selftest(&session, "mode=fault", NULL);
	int status = guest_session_wait(&session, TIMEOUT);
	cr_assert_eq(status, 1, "status %d", status);
	cr_assert(strstr(session.output, "KVM_EXIT_INTERNAL_ERROR"), "%s", session.output);
	cr_assert(strstr(session.output, "suberror 1 (emulation failure)"));
	cr_assert(strstr(session.output, "at RIP 0x"));
	const char *bytes = strstr(session.output, "instruction bytes: ");
	cr_assert(bytes, "no instruction bytes in the report");
	unsigned int first;
	cr_assert_eq(sscanf(bytes, "instruction bytes: %2x", &first), 1,
		     "instruction bytes are not hex: %s", bytes);
	guest_session_close(&session);
}

Test(selftest, triple_fault_is_reported_with_the_registers_kvm_kept)
{
	struct guest_session session;

	run_selftest(&session, "mode=triple", "--no-reboot");
	cr_assert(guest_session_expect(&session, "int3 with no IDT gate present", TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0,
		     "with --no-reboot a triple fault ends vessel like a reset");
	cr_assert_null(strstr(session.output, "int3 returned"));
	const char *report = strstr(session.output, "guest triple-faulted");
	cr_assert(report, "%s", session.output);
	/* KVM on AMD resets the vCPU before vessel can read it. */
	if (strstr(report, "KVM had already reset it")) {
		cr_assert(strstr(report, "on vCPU 0;"), "%s", report);
		guest_session_close(&session);
		return;
	}
	unsigned int vcpu, idt_limit;
	unsigned long long rip, idt_base;
	cr_assert_eq(sscanf(report,
			    "guest triple-faulted (KVM_EXIT_SHUTDOWN) on vCPU %u: "
			    "RIP 0x%llx",
			    &vcpu, &rip),
		     2, "%s", report);
	cr_assert_eq(vcpu, 0);
	cr_assert_neq(rip, 0);
	const char *idt = strstr(report, " IDT 0x");
	cr_assert(idt, "%s", report);
	cr_assert_eq(sscanf(idt, " IDT 0x%llx+0x%x", &idt_base, &idt_limit), 2);
	/* The selftest's IDT: 32 gates of 16 bytes. */
	cr_assert_neq(idt_base, 0);
	cr_assert_eq(idt_limit, 32 * 16 - 1);
	guest_session_close(&session);
}

static unsigned long cpuid_leaf1_ecx(const char *extra)
{
	struct guest_session session;
	unsigned long ecx = 0;

	run_selftest(&session, "mode=cpuid", extra);
	cr_assert(guest_session_expect(&session, "selftest: cpuid 1 ecx=", TIMEOUT));
	size_t value = session.search_from;
	cr_assert(guest_session_expect(&session, " edx=", TIMEOUT));
	cr_assert_eq(sscanf(session.output + value, "%lx", &ecx), 1);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
	return ecx;
}

Test(selftest, cpu_features_mask_cpuid)
{
	unsigned long plain = cpuid_leaf1_ecx(NULL);
	/* cx16: offered by every KVM these tests run on (the PVM host and
	 * the emulated host's qemu64 CPU), and one a PVM host honours in a
	 * guest's CPUID. */
	unsigned long masked = cpuid_leaf1_ecx("--cpu-features=-cx16");

	cr_assert(plain & (1ul << 31), "hypervisor bit must be set");
	cr_assert(plain & (1ul << 13), "this host's KVM offers cx16");
	cr_assert_eq(masked & (1ul << 13), 0, "cx16 still visible");
	cr_assert_eq(masked | (1ul << 13), plain,
		     "masking changed other bits: %lx vs %lx", masked, plain);
}

Test(selftest, tsc_deadline_timer_shown_when_kvm_emulates_it)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	cr_assert_geq(kvm, 0, "/dev/kvm: %s", strerror(errno));
	bool emulated = ioctl(kvm, KVM_CHECK_EXTENSION,
			      KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	close(kvm);
	unsigned long ecx = cpuid_leaf1_ecx(NULL);
	cr_assert_eq(!!(ecx & (1ul << 24)), emulated,
		     "CPUID.1:ECX[24] is %d, KVM_CAP_TSC_DEADLINE_TIMER %d",
		     !!(ecx & (1ul << 24)), emulated);
}

Test(selftest, clock_shows_the_host_date)
{
	struct guest_session session;
	char today[32];
	time_t now = time(NULL);

	strftime(today, sizeof(today), "selftest: rtc %Y-%m-%d", gmtime(&now));
	run_selftest(&session, "mode=rtc", NULL);
	cr_assert(guest_session_expect(&session, today, TIMEOUT),
		  "expected '%s'", today);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
}

Test(selftest, count_prints_every_number_once_in_order)
{
	enum { COUNT = 1000 };
	struct guest_session session;
	/* "1\n" to "1000\n" take 3893 bytes. */
	char expected[8192] = "selftest: hello from cpl3\n";
	size_t length = strlen(expected);

	for (int number = 1; number <= COUNT; number++)
		length += (size_t)snprintf(expected + length, sizeof(expected) - length,
					   "%d\n", number);
	snprintf(expected + length, sizeof(expected) - length,
		 "selftest: powering off\n");
	run_selftest(&session, "mode=count 1000", NULL);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	cr_assert(strstr(session.output, expected),
		  "the guest did not print 1 to %d, one a line:\n%s", COUNT,
		  session.output);
	guest_session_close(&session);
}
