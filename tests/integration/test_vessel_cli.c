/*
 * Bad configuration is refused before any VM is created, with one line that
 * names what is wrong, and a non-zero status.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest_session.h"

#define TIMEOUT 30

static const char *selftest(void)
{
	const char *guest = getenv("VESSEL_SELFTEST_GUEST");

	cr_assert(guest, "VESSEL_SELFTEST_GUEST is not set");
	return guest;
}

/* Runs vessel, expects a failure whose single line contains needle. */
static void expect_refusal(char *const argv[], const char *needle)
{
	struct guest_session session;

	cr_assert_eq(guest_session_start(&session, argv), 0);
	int status = guest_session_wait(&session, TIMEOUT);
	cr_assert(status == 1 || status == 2, "status %d: %s", status,
		  session.output);
	cr_assert(strstr(session.output, needle), "'%s' not in: %s", needle,
		  session.output);
	char *newline = strchr(session.output, '\n');
	cr_assert(newline && newline[1] == '\0', "not one line: %s", session.output);
	guest_session_close(&session);
}

static char *temporary_file(const char *content, off_t size)
{
	static char paths[4][64];
	static int next;
	char *path = paths[next++ % 4];

	snprintf(path, 64, "/tmp/vessel-cli-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	if (content)
		cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	if (size)
		cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
	return path;
}

Test(cli, missing_kernel)
{
	char *argv[] = { "vessel", "run", "--kernel", "/nonexistent/vmlinuz", NULL };
	expect_refusal(argv, "/nonexistent/vmlinuz");
}

Test(cli, file_that_is_not_a_kernel)
{
	char *path = temporary_file("#!/bin/sh\necho this is not a kernel\n", 64 << 10);
	char *argv[] = { "vessel", "run", "--kernel", path, NULL };
	expect_refusal(argv, path);
	unlink(path);
}

Test(cli, memory_beyond_the_host)
{
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--memory", "64T", NULL };
	expect_refusal(argv, "--memory");
}

Test(cli, bad_cpu_counts)
{
	char *zero[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--cpus", "0", NULL };
	char *many[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--cpus", "255", NULL };
	expect_refusal(zero, "--cpus");
	expect_refusal(many, "--cpus");
}

Test(cli, command_line_longer_than_the_kernel_takes)
{
	static char cmdline[70000];
	memset(cmdline, 'x', sizeof(cmdline) - 1);
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--cmdline", cmdline, NULL };
	expect_refusal(argv, "command line");
}

Test(cli, initrd_that_does_not_fit)
{
	char *initrd = temporary_file(NULL, 1ll << 30);
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--memory", "64M", "--initrd", initrd, NULL };
	expect_refusal(argv, "initrd");
	unlink(initrd);
}

Test(cli, missing_disk_image)
{
	char disk[] = "/nonexistent/disk.img,readonly";
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--disk", disk, NULL };
	expect_refusal(argv, "/nonexistent/disk.img");
}

/* An image another process holds open for writing (as a running vessel
 * does, with an OFD lock) is refused unless opened read-only. */
Test(cli, disk_in_use_is_refused)
{
	char *image = temporary_file(NULL, 1 << 20);
	int fd = open(image, O_RDWR);
	struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &lock), 0);

	char disk[128];
	snprintf(disk, sizeof(disk), "%s", image);
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--disk", disk, NULL };
	expect_refusal(argv, "in use");
	close(fd);
	unlink(image);
}

/* --display sdl with no X server or Wayland compositor to reach: SDL
 * would fall back to a window nobody sees. */
Test(cli, display_without_a_display_is_refused)
{
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--display", "sdl", NULL };

	setenv("DISPLAY", ":999", 1);
	unsetenv("WAYLAND_DISPLAY");
	/* libwayland says on stderr when it has no runtime directory. */
	setenv("XDG_RUNTIME_DIR", "/tmp", 1);
	expect_refusal(argv, "no display to open a window on");
}

Test(cli, unknown_option)
{
	char *argv[] = { "vessel", "run", "--kernel", (char *)selftest(),
			 "--memroy", "1G", NULL };
	expect_refusal(argv, "--memroy");
}

static void expect_help(char *const argv[], const char *const options[])
{
	struct guest_session session;

	cr_assert_eq(guest_session_start(&session, argv), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	for (int i = 0; options[i]; i++)
		cr_assert(strstr(session.output, options[i]), "help lacks %s",
			  options[i]);
	guest_session_close(&session);
}

Test(cli, help_lists_every_option)
{
	static const char *const commands[] = { "run", NULL };
	static const char *const options[] = {
		"--kernel", "--initrd", "--cmdline", "--memory", "--cpus",
		"--cpu-features", "--disk", "--no-reboot", "--display", "--name",
		"--help", "xsave", NULL
	};
	char *top[] = { "vessel", "--help", NULL };
	char *run[] = { "vessel", "run", "--help", NULL };

	expect_help(top, commands);
	expect_help(run, options);
}
