/*
 * The control API of a real vessel process on this machine's own /dev/kvm,
 * with the selftest guest: a VM defined and started entirely through the
 * API (vessel serve), a VM started paused, the socket's permissions, the
 * API answering across guest reboots, and clients that say nothing or go
 * away mid-request while another pauses and resumes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define TIMEOUT 60

extern char **environ;

static char socket_path[108];

static void name_socket(void)
{
	snprintf(socket_path, sizeof(socket_path), "/tmp/vessel-control-%d.sock",
		 getpid());
}

/* Runs `vessel COMMAND --api-sock PATH`: its exit status. */
static int client(const char *command)
{
	const char *vessel = getenv("VESSEL_BINARY");
	char *argv[] = { (char *)vessel, (char *)command, "--api-sock",
			 socket_path, NULL };
	pid_t pid;
	int status;

	cr_assert_eq(posix_spawn(&pid, vessel, NULL, NULL, argv, environ), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Waits for vessel to create its socket. */
static void wait_for_socket(void)
{
	struct stat info;

	for (int tries = 0; tries < 500 && stat(socket_path, &info); tries++)
		usleep(10000);
	cr_assert_eq(stat(socket_path, &info), 0, "no API socket at %s",
		     socket_path);
}

static int connect_api(void)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0,
		     "connect: %s", strerror(errno));
	return fd;
}

static int http(const char *method, const char *path, const char *body)
{
	int status = api_request(socket_path, method, path, body);

	cr_assert_neq(status, -1, "no answer to %s %s", method, path);
	return status;
}

static void start_vessel(struct guest_session *session, char *const extra[])
{
	const char *guest = getenv("VESSEL_SELFTEST_GUEST");
	char *argv[32] = { "vessel" };
	unsigned int count = 1;

	cr_assert(guest, "VESSEL_SELFTEST_GUEST is not set");
	name_socket();
	unlink(socket_path);
	for (; extra[count - 1]; count++)
		argv[count] = extra[count - 1];
	for (unsigned int i = 0; i < count; i++)
		if (argv[i] && !strcmp(argv[i], "@guest"))
			argv[i] = (char *)guest;
		else if (argv[i] && !strcmp(argv[i], "@socket"))
			argv[i] = socket_path;
	argv[count] = NULL;
	cr_assert_eq(guest_session_start(session, argv), 0);
	wait_for_socket();
}

Test(control, a_vm_defined_and_started_through_the_api)
{
	struct guest_session session;
	char body[1024];
	struct stat info;

	start_vessel(&session, (char *[]){ "serve", "--api-sock", "@socket", NULL });
	cr_assert_eq(stat(socket_path, &info), 0);
	cr_assert_eq(info.st_mode & 0777, 0600, "the owner only: mode %o",
		     info.st_mode & 0777);
	cr_assert_eq(http("PUT", "/api/v1/vm/start", NULL), 409,
		     "no configuration yet");
	snprintf(body, sizeof(body),
		 "{\"kernel\": \"%s\", \"memory\": \"64M\", "
		 "\"cmdline\": \"mode=hello\"}",
		 getenv("VESSEL_SELFTEST_GUEST"));
	cr_assert_eq(http("PUT", "/api/v1/vm/config", "{\"kernel\": 5}"), 400);
	cr_assert_eq(http("PUT", "/api/v1/vm/config", body), 204);
	cr_assert_eq(http("PUT", "/api/v1/vm/pause", NULL), 409,
		     "an inactive VM cannot pause");
	cr_assert_eq(http("PUT", "/api/v1/vm/start", NULL), 204);
	cr_assert(guest_session_expect(&session, "selftest: hello from cpl3",
				       TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0,
		     "the guest powered off: vessel ends with 0");
	guest_session_close(&session);
	struct stat gone;
	cr_assert_neq(stat(socket_path, &gone), 0, "the socket file is removed");
}

Test(control, a_vm_started_paused_runs_on_resume)
{
	struct guest_session session;

	start_vessel(&session, (char *[]){ "run", "--kernel", "@guest",
					   "--memory", "64M", "--cmdline",
					   "mode=hello", "--api-sock", "@socket",
					   "--paused", NULL });
	guest_session_collect(&session, 500);
	cr_assert_null(strstr(session.output, "hello"),
		       "a paused VM runs no guest code");
	cr_assert_eq(client("resume"), 0);
	cr_assert(guest_session_expect(&session, "selftest: hello from cpl3",
				       TIMEOUT));
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
}

/* mode=reset resets the machine through the i8042 at once, over and over:
 * vessel builds it again each time, the API answers throughout, and a
 * stop ends vessel even when it comes while the VM is already stopping
 * for a reset (the reset must not boot a new VM then): each round stops
 * at another point of the guest's reboot loop. */
#define REBOOT_ROUNDS 8
Test(control, the_api_answers_across_guest_reboots)
{
	for (int round = 0; round < REBOOT_ROUNDS; round++) {
		struct guest_session session;

		start_vessel(&session, (char *[]){ "run", "--kernel", "@guest",
						   "--memory", "64M", "--cmdline",
						   "mode=reset", "--api-sock",
						   "@socket", NULL });
		for (int i = 0; i < 4 + round; i++) {
			cr_assert_eq(http("GET", "/api/v1/vm", NULL), 200,
				     "round %d, request %d", round, i);
			usleep(37000);
		}
		cr_assert_eq(client("stop"), 0);
		cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0,
			     "round %d: the stop did not end vessel", round);
		const char *reset = strstr(session.output, "selftest: resetting");
		cr_assert(reset && strstr(reset + 1, "selftest: resetting"),
			  "the guest was booted more than once:\n%s",
			  session.output);
		guest_session_close(&session);
	}
}

Test(control, silent_and_half_sent_clients_hold_nothing_up)
{
	struct guest_session session;
	static const char half[] = "PUT /api/v1/vm/pau";

	start_vessel(&session, (char *[]){ "run", "--kernel", "@guest",
					   "--memory", "64M", "--cmdline",
					   "mode=count 0 20000000", "--api-sock",
					   "@socket", NULL });
	int silent = connect_api();
	int halfway = connect_api();
	cr_assert_eq(write(halfway, half, sizeof(half) - 1),
		     (ssize_t)sizeof(half) - 1);
	int gone = connect_api();
	cr_assert_eq(write(gone, half, sizeof(half) - 1), (ssize_t)sizeof(half) - 1);
	close(gone);
	for (int i = 0; i < 5; i++) {
		struct timespec start, end;
		clock_gettime(CLOCK_MONOTONIC, &start);
		cr_assert_eq(client("pause"), 0, "pause %d", i);
		cr_assert_eq(client("resume"), 0, "resume %d", i);
		clock_gettime(CLOCK_MONOTONIC, &end);
		double took = (double)(end.tv_sec - start.tv_sec) +
			      (double)(end.tv_nsec - start.tv_nsec) / 1e9;
		cr_assert_lt(took, 5.0, "pause and resume took %.2f s", took);
	}
	close(silent);
	close(halfway);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
}
