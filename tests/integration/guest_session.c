#include "guest_session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *guest_artifact(const char *name)
{
	static char path[4096];
	const char *dir = getenv("VESSEL_GUEST_DIR");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "guests/out", name);
	return path;
}

int guest_session_start(struct guest_session *session, char *const argv[])
{
	const char *binary = getenv("VESSEL_BINARY");
	int input[2], output[2];
	posix_spawn_file_actions_t actions;

	*session = (struct guest_session){ .pid = -1, .exit_status = -1 };
	if (!binary || pipe2(input, O_CLOEXEC) || pipe2(output, O_CLOEXEC))
		return -EINVAL;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, input[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&actions, output[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&actions, output[1], STDERR_FILENO);
	int result = posix_spawn(&session->pid, binary, &actions, NULL,
				 (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	close(input[0]);
	close(output[1]);
	session->input_fd = input[1];
	session->output_fd = output[0];
	session->output_cap = 1 << 16;
	session->output = calloc(1, session->output_cap);
	if (result)
		return -result;
	return 0;
}

static double now_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

/* What a guest's kernel prints when it dies (and vessel's words for a
 * triple fault, KVM_EXIT_SHUTDOWN). */
static const char *const crash_signs[] = {
	"Kernel panic - not syncing", "double fault:", "stack guard page",
	"guest triple-faulted",
};
/* Longer than every sign: how far back a new read looks for one. */
#define CRASH_SIGN_OVERLAP 64

static bool crashed_in(const char *text)
{
	for (size_t i = 0; i < sizeof(crash_signs) / sizeof(crash_signs[0]); i++)
		if (strstr(text, crash_signs[i]))
			return true;
	return false;
}

bool guest_session_kernel_crashed(const struct guest_session *session)
{
	return crashed_in(session->output);
}

/* A guest whose kernel died is named in the test's log the moment its
 * output shows it, however the test ends: inside the emulated host that
 * is a known fault of its nested SVM (it hits QEMU's guests alike,
 * tools/emuhost/README.md), not a hang or a bug of the test, and
 * tests/integration/run_group.py looks for this line. */
static void note_crash(struct guest_session *session, size_t new_from)
{
	size_t from = new_from > CRASH_SIGN_OVERLAP ? new_from - CRASH_SIGN_OVERLAP : 0;

	if (session->crash_reported || !crashed_in(session->output + from))
		return;
	session->crash_reported = true;
	fprintf(stderr, "\nguest_session: the guest kernel crashed (what it "
			"printed is above); in the emulated host see "
			"tools/emuhost/README.md, \"Known fault\"\n");
}

/* Reads what is there within timeout_ms; false at end of output. */
static bool read_output(struct guest_session *session, int timeout_ms)
{
	struct pollfd poll_fd = { .fd = session->output_fd, .events = POLLIN };

	if (poll(&poll_fd, 1, timeout_ms) <= 0)
		return true;
	if (session->output_len + 4096 + 1 > session->output_cap) {
		session->output_cap *= 2;
		session->output = realloc(session->output, session->output_cap);
	}
	ssize_t count = read(session->output_fd,
			     session->output + session->output_len, 4096);
	if (count <= 0)
		return false;
	/* Echo to the test's log so a failure shows the console. */
	fwrite(session->output + session->output_len, 1, (size_t)count, stderr);
	session->output_len += (size_t)count;
	session->output[session->output_len] = '\0';
	note_crash(session, session->output_len - (size_t)count);
	return true;
}

bool guest_session_expect(struct guest_session *session, const char *text,
			  int timeout_seconds)
{
	double deadline = now_seconds() + timeout_seconds;

	for (;;) {
		char *found = strstr(session->output + session->search_from, text);
		if (found) {
			session->search_from =
				(size_t)(found - session->output) + strlen(text);
			return true;
		}
		double left = deadline - now_seconds();
		if (session->output_ended || left <= 0)
			return false;
		if (!read_output(session, (int)(left * 1000) + 1))
			session->output_ended = true;
	}
}

int guest_session_send(struct guest_session *session, const char *text)
{
	size_t len = strlen(text);

	while (len) {
		ssize_t written = write(session->input_fd, text, len);
		if (written < 0)
			return -errno;
		text += written;
		len -= (size_t)written;
	}
	return 0;
}

/* SIGKILL, then a bounded wait: a process stuck in the kernel (seen when
 * the emulated host itself wedges) must not hang the test that ends it. */
static void kill_and_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	for (int tries = 0; tries < 300; tries++) {
		if (waitpid(pid, NULL, WNOHANG) != 0)
			return;
		usleep(100 * 1000);
	}
	fprintf(stderr, "guest_session: vessel (pid %d) did not end 30 s after "
			"SIGKILL; left behind\n", (int)pid);
}

int guest_session_wait(struct guest_session *session, int timeout_seconds)
{
	double deadline = now_seconds() + timeout_seconds;
	int status;

	while (session->exit_status < 0) {
		pid_t done = waitpid(session->pid, &status, WNOHANG);
		if (done == session->pid) {
			session->exit_status = WIFEXITED(status) ?
				WEXITSTATUS(status) : 128 + WTERMSIG(status);
			break;
		}
		if (now_seconds() > deadline) {
			kill_and_reap(session->pid);
			session->pid = -1;
			return -1;
		}
		if (session->output_ended)
			usleep(10000);
		else
			session->output_ended = !read_output(session, 100);
	}
	/* Collect the rest of the output: the pipe ends with the process. */
	while (!session->output_ended)
		session->output_ended = !read_output(session, 1000);
	return session->exit_status;
}

void guest_session_close(struct guest_session *session)
{
	/* What the guest printed last, so that a crash there is noted too
	 * (note_crash) when the test failed on a check of its own. */
	for (int reads = 0; reads < 50 && !session->output_ended; reads++) {
		size_t before = session->output_len;

		if (!read_output(session, 200))
			session->output_ended = true;
		else if (session->output_len == before)
			break;
	}
	if (session->pid > 0 && session->exit_status < 0)
		kill_and_reap(session->pid);
	close(session->input_fd);
	close(session->output_fd);
	free(session->output);
}
