/*
 * Drives one `vessel run` the way a person at its console would: start it
 * with arguments, wait for text on its console, type, and collect its exit
 * status. Used by the integration tests; every wait has a deadline, so a
 * hung guest fails its test instead of hanging it.
 */
#ifndef VESSEL_TESTS_GUEST_SESSION_H
#define VESSEL_TESTS_GUEST_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct guest_session {
	pid_t pid;
	int input_fd; /* vessel's stdin */
	int output_fd; /* vessel's stdout and stderr */
	char *output; /* everything read so far, NUL-terminated */
	size_t output_len, output_cap;
	size_t search_from; /* guest_session_expect() looks from here on */
	bool output_ended;
	bool crash_reported; /* the guest's kernel crashed, and it was said */
	/* Shutdown exits in the emulated host's KVM trace before this
	 * session's vessel started (inner_kvm_trace.h). */
	unsigned int shutdowns_before;
	enum guest_triple_fault {
		GUEST_TRIPLE_FAULT_NONE, /* vessel reported none */
		GUEST_TRIPLE_FAULT_UNTRACED, /* not in the emulated host's trace */
		GUEST_TRIPLE_FAULT_KNOWN, /* the emulated host's known fault */
		GUEST_TRIPLE_FAULT_OWN, /* the guest's own */
	} triple_fault;
	/* Boots the test asks for (1 unless it reboots the guest), and how
	 * many began so far ("vessel-guest: userspace up" lines). */
	unsigned int boots_expected, boots_seen;
	size_t boot_search_from;
	double last_output_at; /* CLOCK_MONOTONIC seconds of the last output */
	int exit_status; /* -1 until the process is reaped */
	/* vessel's --api-sock, "" without: a wait that gives up prints the
	 * VM's counters from it. */
	char api_socket[108];
	size_t typed_bytes; /* written to vessel's stdin so far */
};

/* argv[0] is ignored: the vessel binary comes from $VESSEL_BINARY. */
int guest_session_start(struct guest_session *session, char *const argv[]);

/* Waits until text appears in the output after the previous match; true
 * when it did before timeout_seconds. */
bool guest_session_expect(struct guest_session *session, const char *text,
			  int timeout_seconds);

/* Takes in whatever the console prints for milliseconds, looking for
 * nothing: for a test that checks that nothing came. */
void guest_session_collect(struct guest_session *session, int milliseconds);

int guest_session_send(struct guest_session *session, const char *text);

/* Waits for vessel to exit: its exit status, or -1 on timeout (then the
 * process is killed). */
int guest_session_wait(struct guest_session *session, int timeout_seconds);

void guest_session_close(struct guest_session *session);

/* One of vessel's threads as /proc/PID/task/TID/stat shows it: its name
 * and its numeric fields as proc(5) numbers them (14 and 15 utime and
 * stime, 41 the scheduling policy, 43 guest time; 3, the state, reads 0). */
#define THREAD_STAT_FIELDS 44
struct thread_stat {
	int tid;
	char name[16];
	unsigned long long field[THREAD_STAT_FIELDS];
};

/* Calls visit for each thread of pid whose stat it could read. */
void guest_session_each_thread(pid_t pid,
			       void (*visit)(const struct thread_stat *thread,
					     void *opaque),
			       void *opaque);

/* One HTTP/1.1 request on vessel's control API socket, on a connection of
 * its own, as curl --unix-socket would make it (body may be NULL): the
 * answer's status, or -1 when there was no answer. */
int api_request(const char *socket_path, const char *method, const char *path,
		const char *body);

/* A guest counting on its console prints lines "n=NUMBER". The highest
 * number on a whole line of text, 0 for none: a pause may come in the
 * middle of a line, whose digits are then not all there yet. */
unsigned long console_last_count(const char *text);

/* Whether every counter number of text is the one after the one before,
 * from n=first on (or from whichever comes first, CONSOLE_COUNT_ANY); if
 * not, *wrong is the number printed where *expected belonged, else
 * *expected is the number after the last (0 when there was none with
 * CONSOLE_COUNT_ANY). A number counts where "n=NUMBER" ends its line,
 * wherever it starts: the shell's prompt, or a command typed meanwhile,
 * may share the line. */
#define CONSOLE_COUNT_ANY ((unsigned long)-1)
bool console_counted_in_order(const char *text, unsigned long first,
			      unsigned long *wrong, unsigned long *expected);

/* Path of a built guest artifact: $VESSEL_GUEST_DIR/name. */
const char *guest_artifact(const char *name);

/* The tests' Debian image (guests/build-rootfs, rootfs-tests.ext4), which
 * every test shares and nothing boots read-write: its path, once the test
 * checked that it is as built (never mounted read-write, and clean). */
const char *guest_tests_image(void);

/* A fresh ext4 image of mib MiB under /tmp (the emulated host's tmpfs),
 * labelled "data": its path in path. */
void make_data_image(char *path, size_t path_len, unsigned int mib);

/* Forks a child of the test that dies with it, even when an assertion
 * ends the test early: 0 in the child, -1 when fork failed. */
pid_t fork_test_helper(void);

/* Sends length zero bytes to a TCP server at address:port, waiting up to
 * a minute for it to listen and for each write to be taken: whether all of
 * them were. */
bool tcp_send_zeros(const char *address, unsigned int port, size_t length);

#endif
