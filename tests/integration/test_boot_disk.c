/*
 * Disks through virtio-blk: the default guest boots from its Debian disk
 * image, a file the guest writes reaches the host's image file, a
 * read-only disk refuses writes, and disks appear as vda, vdb, ... with
 * their serials; a user's guest killed with its image mounted read-write
 * leaves the tests' image alone, and its file comes back from the journal.
 * Runs inside the emulated AMD-V host (tools/emuhost).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest_session.h"

#define BOOT_TIMEOUT 300
#define COMMAND_TIMEOUT 120

static char root_image[4096];

/* The tests' image, which every test shares: it must be as built. */
static void find_root_image(void)
{
	const char *image = guest_tests_image();

	cr_assert_not_null(image, "the tests' image is missing or not as built");
	snprintf(root_image, sizeof(root_image), "%s", image);
}

/* The kernel echoes its command line (without double quotes): text a test
 * waits for is split with single quotes in the command (write=ref'u'sed),
 * so only the shell's output matches. */
static void start_on(struct guest_session *session, const char *root_disk,
		     const char *root_mode, char *const extra[],
		     const char *cmdline_tail)
{
	static char kernel[4096], initrd[4096];
	char cmdline[1024];

	snprintf(kernel, sizeof(kernel), "%s", guest_artifact("vmlinuz"));
	snprintf(initrd, sizeof(initrd), "%s", guest_artifact("initramfs.cpio.gz"));
	char *argv[16] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd };
	int argc = 6;
	argv[argc++] = "--disk";
	argv[argc++] = (char *)root_disk;
	for (int i = 0; extra && extra[i]; i++)
		argv[argc++] = extra[i];
	snprintf(cmdline, sizeof(cmdline),
		 "console=ttyS0 reboot=k panic=1 root=/dev/vda %s%s", root_mode,
		 cmdline_tail);
	argv[argc++] = "--cmdline";
	argv[argc++] = cmdline;
	argv[argc] = NULL;
	cr_assert_eq(guest_session_start(session, argv), 0);
}

/* On the tests' image, which every test shares: the root stays read-only. */
static void start(struct guest_session *session, char *const extra[],
		  const char *cmdline_tail)
{
	char root_disk[4200];

	find_root_image();
	snprintf(root_disk, sizeof(root_disk), "%s,readonly,serial=vessel-root",
		 root_image);
	start_on(session, root_disk, "ro", extra, cmdline_tail);
}

static void type(struct guest_session *session, const char *command,
		 const char *expected)
{
	cr_assert_eq(guest_session_send(session, command), 0);
	cr_assert(guest_session_expect(session, expected, COMMAND_TIMEOUT),
		  "no '%s' after '%s'", expected, command);
}

Test(boot_disk, root_on_the_debian_image)
{
	struct guest_session session;

	start(&session, NULL, "");
	cr_assert(guest_session_expect(&session, "vessel-guest: root on /dev/vda",
				       BOOT_TIMEOUT));
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT));
	type(&session, "echo debian=$(cat /etc/debian_version | cut -c1-2)\n",
	     "debian=12");
	type(&session, "echo rootdev=$(awk '$2 == \"/\" {print $1}' /proc/mounts)\n",
	     "rootdev=/dev/vda\r");
	cr_assert_eq(guest_session_send(&session, "poweroff -f\n"), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
}

Test(boot_disk, written_file_reaches_the_host_image)
{
	struct guest_session session;
	char data[64], disk[128], command[256], host_sum[80] = "";

	make_data_image(data, sizeof(data), 64);
	snprintf(disk, sizeof(disk), "%s,serial=vessel-data", data);
	char *extra[] = { "--disk", disk, NULL };
	start(&session, extra,
	      " vessel.run=mount /dev/vdb /mnt && head -c 3000000 /dev/urandom >/mnt/blob"
	      " && echo guest-'s'um=$(sha256sum /mnt/blob) && umount /mnt && sync");
	cr_assert(guest_session_expect(&session, "guest-sum=", BOOT_TIMEOUT));
	size_t at = session.search_from;
	cr_assert(guest_session_expect(&session, "vessel-guest: exit=0", COMMAND_TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	char guest_sum[65] = "";
	cr_assert_eq(sscanf(session.output + at, "%64s", guest_sum), 1);

	/* The host reads the file out of the image without mounting it. */
	snprintf(command, sizeof(command),
		 "debugfs -R 'cat /blob' %s 2>/dev/null | sha256sum", data);
	FILE *pipe = popen(command, "r");
	cr_assert_not_null(pipe);
	cr_assert_not_null(fgets(host_sum, sizeof(host_sum), pipe));
	pclose(pipe);
	cr_assert_eq(strncmp(host_sum, guest_sum, 64), 0,
		     "guest wrote %s, the image holds %s", guest_sum, host_sum);
	guest_session_close(&session);
	unlink(data);
}

Test(boot_disk, read_only_disk_and_serials)
{
	struct guest_session session;
	char data[64], disk[128];

	make_data_image(data, sizeof(data), 16);
	snprintf(disk, sizeof(disk), "%s,readonly,serial=vessel-ro", data);
	char *extra[] = { "--disk", disk, NULL };
	start(&session, extra,
	      " vessel.run=echo serials=$(cat /sys/block/vda/serial),$(cat /sys/block/vdb/serial)"
	      " ro=$(cat /sys/block/vdb/ro);"
	      " dd if=/dev/zero of=/dev/vdb bs=4096 count=1 oflag=direct 2>/dev/null"
	      " && echo write=acc'e'pted || echo write=ref'u'sed");
	cr_assert(guest_session_expect(&session, "serials=vessel-root,vessel-ro ro=1",
				       BOOT_TIMEOUT));
	cr_assert(guest_session_expect(&session, "write=refused", COMMAND_TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
	unlink(data);
}

/* Whether an ext4 image's journal awaits replay (mounted read-write when
 * its guest died). */
static bool needs_recovery(const char *image)
{
	char command[512];

	snprintf(command, sizeof(command),
		 "dumpe2fs -h %s 2>/dev/null | grep -q '^Filesystem features:.* needs_recovery'",
		 image);
	return system(command) == 0;
}

/* The user's sequence: tools/boot-default boots the user's image
 * (rootfs.ext4) read-write, the user writes a file and pulls the plug
 * (Ctrl-A x, or a kill) while the guest has it mounted. Then a test on the
 * tests' image boots and passes, and at the user's next boot the journal
 * gives the file back. The user's image here is a copy of the tests' image
 * in /tmp, as the user's is when first made: a test must never write to
 * the user's real one. */
Test(boot_disk, killed_user_guest_leaves_the_tests_image_alone)
{
	struct guest_session session;
	char user_image[64] = "/tmp/vessel-user-XXXXXX", command[4200];

	find_root_image();
	int fd = mkstemp(user_image);
	cr_assert(fd >= 0);
	close(fd);
	snprintf(command, sizeof(command), "cp --sparse=always %s %s", root_image,
		 user_image);
	cr_assert_eq(system(command), 0, "%s failed", command);

	start_on(&session, user_image, "rw", NULL, "");
	cr_assert(guest_session_expect(&session, "vessel-guest: userspace up",
				       BOOT_TIMEOUT));
	type(&session, "echo kept >/root/users-file && sync && echo syn'c'ed\n",
	     "synced");
	cr_assert_eq(kill(session.pid, SIGKILL), 0);
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 128 + SIGKILL);
	guest_session_close(&session);
	cr_assert(needs_recovery(user_image),
		  "the killed guest's image does not need recovery: the test "
		  "did not reproduce a guest killed with its disk mounted");

	start(&session, NULL, " vessel.run=echo debian=$(cat /etc/debian_version)");
	cr_assert(guest_session_expect(&session, "vessel-guest: root on /dev/vda",
				       BOOT_TIMEOUT));
	cr_assert(guest_session_expect(&session, "debian=12", COMMAND_TIMEOUT));
	cr_assert(guest_session_expect(&session, "vessel-guest: exit=0", COMMAND_TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);

	start_on(&session, user_image, "rw", NULL,
		 " vessel.run=echo users-file=$(cat /root/users-file)");
	cr_assert(guest_session_expect(&session, "users-file=kept", BOOT_TIMEOUT));
	cr_assert(guest_session_expect(&session, "vessel-guest: exit=0", COMMAND_TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, COMMAND_TIMEOUT), 0);
	guest_session_close(&session);
	cr_assert_not(needs_recovery(user_image),
		      "the user's image was not left clean at power-off");
	unlink(user_image);
}
