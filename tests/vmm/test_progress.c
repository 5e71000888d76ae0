/*
 * The progress line: silent on a pipe and for work under a second; on a
 * terminal after a second, the pages, megabytes and rate, and a last line
 * when the work ends.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../vmm/progress.h"

static int saved_stderr = -1;

/* stderr onto fd for the test; what was there comes back in teardown. */
static void stderr_to(int fd)
{
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(dup2(fd, STDERR_FILENO), 0);
}

static void teardown(void)
{
	if (saved_stderr >= 0)
		dup2(saved_stderr, STDERR_FILENO);
}

TestSuite(progress, .fini = teardown);

/* What is there to read on fd within a moment, or "". */
static void drain(int fd, char *text, size_t size)
{
	struct pollfd wait = { .fd = fd, .events = POLLIN };
	size_t length = 0;

	while (length + 1 < size && poll(&wait, 1, 100) == 1) {
		ssize_t got = read(fd, text + length, size - 1 - length);
		if (got <= 0)
			break;
		length += (size_t)got;
	}
	text[length] = '\0';
}

static void work_for_a_second_and_more(void)
{
	struct progress progress;

	progress_begin(&progress, "test work");
	progress_add(&progress, 4096);
	usleep(1100 * 1000);
	progress_add(&progress, 2 * 4096);
	progress_end(&progress);
}

Test(progress, a_pipe_sees_nothing)
{
	int pipe_fds[2];
	char text[256];

	cr_assert_eq(pipe(pipe_fds), 0);
	stderr_to(pipe_fds[1]);
	work_for_a_second_and_more();
	teardown();
	drain(pipe_fds[0], text, sizeof(text));
	cr_assert_str_eq(text, "");
}

Test(progress, a_terminal_sees_the_work_after_a_second)
{
	char text[512];
	int master = posix_openpt(O_RDWR | O_NOCTTY);

	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	int terminal = open(ptsname(master), O_RDWR | O_NOCTTY);
	cr_assert_geq(terminal, 0);
	stderr_to(terminal);

	struct progress quick;
	progress_begin(&quick, "quick work");
	progress_add(&quick, 1 << 20);
	progress_end(&quick);
	work_for_a_second_and_more();
	teardown();
	drain(master, text, sizeof(text));
	cr_assert_null(strstr(text, "quick work"), "%s", text);
	cr_assert_not_null(strstr(text, "vessel: test work: 3 pages, 0 MB, "),
			   "%s", text);
	cr_assert_not_null(strstr(text, "MB/s"), "%s", text);
	close(terminal);
	close(master);
}
