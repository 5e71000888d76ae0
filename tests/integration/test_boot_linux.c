/*
 * Debian's stock kernel boots under vessel to a shell on the serial console.
 * Runs inside the emulated AMD-V host (tools/emuhost), where /dev/kvm can run
 * an unmodified kernel (docs/platform.md).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define BOOT_TIMEOUT 240 /* seconds: TCG-emulated host, nested guest */
#define COMMAND_TIMEOUT 60

/* The default guest, as guests/build-default makes it. */
static void default_guest(char *kernel, char *initrd, size_t size)
{
	snprintf(kernel, size, "%s", guest_artifact("vmlinuz"));
	snprintf(initrd, size, "%s", guest_artifact("initramfs.cpio.gz"));
	cr_assert(access(kernel, R_OK) == 0 && access(initrd, R_OK) == 0,
		  "no default guest in $VESSEL_GUEST_DIR: run guests/build-default");
}

static void start_default_guest(struct guest_session *session,
				const char *cpus, const char *extra)
{
	char kernel[4096], initrd[4096];

	default_guest(kernel, initrd, sizeof(kernel));
	char *argv[] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd,
			 "--memory", "512M", "--cpus", (char *)cpus,
			 extra ? (char *)extra : NULL, NULL };
	cr_assert_eq(guest_session_start(session, argv), 0,
		     "cannot start vessel ($VESSEL_BINARY)");
}

/* Types a command on the console and waits for the line it must print. */
static void run_on_console(struct guest_session *session, const char *command,
			   const char *expected)
{
	cr_assert_eq(guest_session_send(session, command), 0);
	cr_assert(guest_session_expect(session, expected, COMMAND_TIMEOUT),
		  "no '%s' after typing '%s'", expected, command);
}

static void boot_count_cpus_check_date_power_off(const char *cpus)
{
	struct guest_session session;
	char expected[64], today[32];
	time_t now = time(NULL);

	start_default_guest(&session, cpus, NULL);
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT), "guest did not reach userspace");
	/* $((...)) keeps the echo of the typed line from matching. */
	snprintf(expected, sizeof(expected), "cpus=%s\r", cpus);
	run_on_console(&session,
		       "echo cpus=$(($(grep -c ^processor /proc/cpuinfo)+0))\n",
		       expected);
	strftime(today, sizeof(today), "date=%Y-%m-%d", gmtime(&now));
	run_on_console(&session, "echo date=$(date -u +%Y-%m-%d)\n", today);
	/* The kernel scanned PCI bus 0 and found vessel's host bridge. */
	run_on_console(&session,
		       "cd /sys/bus/pci/devices/0000:00:00.0; echo pci=$(cat vendor):$(cat class); cd\n",
		       "pci=0x8086:0x060000\r");
	/* MTRRs came up enabled, as firmware leaves them, so the kernel set
	 * up PAT with write-combining in its second entry. */
	run_on_console(&session,
		       "echo pat=$(($(dmesg | grep -c 'PAT: Configuration .0-7.: WB  WC ')+0))\n",
		       "pat=1\r");
	cr_assert_eq(guest_session_send(&session, "poweroff -f\n"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0,
		     "poweroff must end vessel with status 0");
	guest_session_close(&session);
}

Test(boot_linux, one_cpu)
{
	boot_count_cpus_check_date_power_off("1");
}

Test(boot_linux, four_cpus)
{
	boot_count_cpus_check_date_power_off("4");
}

Test(boot_linux, reboot_restarts_the_guest)
{
	struct guest_session session;

	start_default_guest(&session, "2", NULL);
	session.boots_expected = 2;
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT));
	cr_assert_eq(guest_session_send(&session, "reboot -f\n"), 0);
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT), "no second boot after reboot");
	cr_assert_eq(guest_session_send(&session, "poweroff -f\n"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
}

Test(boot_linux, no_reboot_ends_vessel_on_reboot)
{
	struct guest_session session;

	start_default_guest(&session, "1", "--no-reboot");
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT));
	cr_assert_eq(guest_session_send(&session, "reboot -f\n"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
}

/* A guest that triple-faults on purpose (reboot=t: an empty IDT, then
 * int3) is not taken for the emulated host's known fault, whose vCPU
 * shuts down before running an instruction: the KVM trace that
 * run_group.py records and guest_session reads (inner_kvm_trace.h) must
 * show it ran. This is what keeps the reruns from hiding a guest that
 * vessel broke. */
Test(boot_linux, a_guests_own_triple_fault_is_not_the_known_fault)
{
	struct guest_session session;
	char kernel[4096], initrd[4096];

	default_guest(kernel, initrd, sizeof(kernel));
	char *argv[] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd,
			 "--memory", "512M", "--cpus", "1", "--no-reboot",
			 "--cmdline", "console=ttyS0 reboot=t panic=1", NULL };
	cr_assert_eq(guest_session_start(&session, argv), 0,
		     "cannot start vessel ($VESSEL_BINARY)");
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT));
	cr_assert_eq(guest_session_send(&session, "reboot -f\n"), 0);
	cr_assert(guest_session_expect(&session, "guest triple-faulted",
				       COMMAND_TIMEOUT),
		  "reboot=t must end in a triple fault");
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0,
		     "--no-reboot ends vessel on the reset that follows");
	cr_assert_eq(session.triple_fault, GUEST_TRIPLE_FAULT_OWN,
		     "taken for %s", session.triple_fault == GUEST_TRIPLE_FAULT_KNOWN
					     ? "the emulated host's known fault"
					     : "a triple fault the trace did not show");
	guest_session_close(&session);
}

Test(boot_linux, pvh_entry_of_the_uncompressed_kernel)
{
	struct guest_session session;
	char kernel[4096], initrd[4096];

	default_guest(kernel, initrd, sizeof(kernel));
	snprintf(kernel, sizeof(kernel), "%s", guest_artifact("vmlinux"));
	char *argv[] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd,
			 "--cmdline", "console=ttyS0 reboot=k panic=1 vessel.run=uname -r",
			 NULL };
	cr_assert_eq(guest_session_start(&session, argv), 0);
	cr_assert(guest_session_expect(&session, "vessel-guest: exit=0",
				       BOOT_TIMEOUT), "PVH boot did not run the command");
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
}

/* With several vCPUs the 8250 driver's THRE interrupt runs on one CPU
 * while another writes: the console must keep the guest's byte order and
 * lose nothing. */
Test(boot_linux, console_output_keeps_its_order_with_two_cpus)
{
	struct guest_session session;
	char kernel[4096], initrd[4096];

	default_guest(kernel, initrd, sizeof(kernel));
	char *argv[] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd,
			 "--cpus", "2", "--cmdline",
			 "console=ttyS0 loglevel=1 panic=1 vessel.run=seq 1 10000", NULL };
	cr_assert_eq(guest_session_start(&session, argv), 0);
	cr_assert(guest_session_expect(&session, "vessel-guest: exit=0", BOOT_TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);

	unsigned int expected = 1;
	for (char *line = strtok(session.output, "\r\n"); line;
	     line = strtok(NULL, "\r\n")) {
		char *end;
		unsigned long value = strtoul(line, &end, 10);
		if (end == line || *end)
			continue; /* not a line of seq's */
		cr_assert_eq(value, expected, "line %u of seq's output reads '%s'",
			     expected, line);
		expected++;
	}
	cr_assert_eq(expected, 10001, "only %u of 10000 lines arrived", expected - 1);
	guest_session_close(&session);
}
