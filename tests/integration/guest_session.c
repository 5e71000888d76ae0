#include "guest_session.h"
#include "inner_kvm_trace.h"

#include <ctype.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
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

unsigned long console_last_count(const char *text)
{
	unsigned long last = 0;

	for (const char *at = text; (at = strstr(at, "\nn=")); at += 3) {
		char *end;
		unsigned long number = strtoul(at + 3, &end, 10);

		if (*end == '\r' || *end == '\n')
			last = number;
	}
	return last;
}

bool console_counted_in_order(const char *text, unsigned long first,
			      unsigned long *wrong, unsigned long *expected)
{
	bool seen = false;

	*expected = first == CONSOLE_COUNT_ANY ? 0 : first;
	for (const char *at = text; (at = strstr(at, "n=")); at += 2) {
		char *end;
		unsigned long number = strtoul(at + 2, &end, 10);

		if (end == at + 2 || *end != '\r')
			continue;
		if ((seen || first != CONSOLE_COUNT_ANY) && number != *expected) {
			*wrong = number;
			return false;
		}
		*expected = number + 1;
		seen = true;
	}
	return true;
}

const char *guest_tests_image(void)
{
	static char image[4096];
	char command[8400];

	snprintf(image, sizeof(image), "%s", guest_artifact("rootfs-tests.ext4"));
	if (access(image, R_OK)) {
		fprintf(stderr, "no %s: run guests/build-rootfs\n", image);
		return NULL;
	}
	snprintf(command, sizeof(command),
		 "dumpe2fs -h %s 2>/dev/null | grep -q '^Mount count: *0$' && "
		 "e2fsck -n %s >/dev/null 2>&1", image, image);
	if (system(command)) {
		fprintf(stderr, "%s was mounted read-write or is not clean: run "
			"guests/build-rootfs\n", image);
		return NULL;
	}
	return image;
}

void make_data_image(char *path, size_t path_len, unsigned int mib)
{
	char command[512];

	snprintf(path, path_len, "/tmp/vessel-disk-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, (off_t)mib << 20)) {
		fprintf(stderr, "making %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
	snprintf(command, sizeof(command), "mkfs.ext4 -q -F -L data %s", path);
	if (system(command)) {
		fprintf(stderr, "%s failed\n", command);
		abort();
	}
}

pid_t fork_test_helper(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The test ended before the death signal was asked for. */
		if (getppid() != parent)
			_exit(0);
	}
	return pid;
}

bool tcp_send_zeros(const char *address, unsigned int port, size_t length)
{
	struct sockaddr_in where = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval patience = { .tv_sec = 60 };
	static const char zeros[65536];
	int fd = -1;

	if (inet_pton(AF_INET, address, &where.sin_addr) != 1)
		return false;
	for (int attempt = 0; attempt < 60 && fd < 0; attempt++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&where, sizeof(where))) {
			close(fd);
			fd = -1;
			sleep(1);
		}
	}
	if (fd < 0) {
		fprintf(stderr, "nothing listens on %s:%u\n", address, port);
		return false;
	}
	/* A guest that died leaves the connection open on this side. */
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &patience, sizeof(patience));
	while (length) {
		size_t chunk = length < sizeof(zeros) ? length : sizeof(zeros);
		ssize_t sent = write(fd, zeros, chunk);

		if (sent <= 0) {
			fprintf(stderr, "sending to the guest: %s\n", strerror(errno));
			break;
		}
		length -= (size_t)sent;
	}
	close(fd);
	return length == 0;
}

static double now_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

int guest_session_start(struct guest_session *session, char *const argv[])
{
	const char *binary = getenv("VESSEL_BINARY");
	int input[2], output[2];
	*session = (struct guest_session){ .pid = -1, .exit_status = -1,
					   .boots_expected = 1 };
	if (!binary || pipe2(input, O_CLOEXEC) || pipe2(output, O_CLOEXEC))
		return -EINVAL;
	for (size_t i = 1; argv[i] && argv[i + 1]; i++)
		if (!strcmp(argv[i], "--api-sock"))
			snprintf(session->api_socket, sizeof(session->api_socket),
				 "%s", argv[i + 1]);
	/* Typing at a vessel that has ended (its guest crashed) must fail
	 * that send, with EPIPE, not kill the test with SIGPIPE: a failed
	 * check names the test and what its guest printed, where a test
	 * killed by a signal leaves criterion's "CRASH!" alone. */
	signal(SIGPIPE, SIG_IGN);
	session->shutdowns_before = shutdown_exit_count();
	/* vessel dies with the test, even when an assertion ends the test
	 * before it closes the session: no guest runs on after its test. */
	session->pid = fork_test_helper();
	if (session->pid == 0) {
		if (dup2(input[0], STDIN_FILENO) < 0 ||
		    dup2(output[1], STDOUT_FILENO) < 0 ||
		    dup2(output[1], STDERR_FILENO) < 0)
			_exit(127);
		execve(binary, (char *const *)argv, environ);
		_exit(127);
	}
	int result = session->pid < 0 ? errno : 0;
	close(input[0]);
	close(output[1]);
	session->input_fd = input[1];
	session->output_fd = output[0];
	session->output_cap = 1 << 16;
	session->output = calloc(1, session->output_cap);
	session->last_output_at = now_seconds();
	if (result)
		return -result;
	return 0;
}

/* What a guest's kernel prints when it dies. */
static const char *const crash_signs[] = {
	"Kernel panic - not syncing", "double fault:", "stack guard page",
};
/* vessel's words for a triple fault (KVM_EXIT_SHUTDOWN). */
#define TRIPLE_FAULT_SIGN "guest triple-faulted"
/* Longer than every sign: how far back a new read looks for one. */
#define CRASH_SIGN_OVERLAP 64

static bool crashed_in(const char *text)
{
	for (size_t i = 0; i < sizeof(crash_signs) / sizeof(crash_signs[0]); i++)
		if (strstr(text, crash_signs[i]))
			return true;
	return false;
}

/* A triple fault is the emulated host's known fault only when the vCPU
 * shut down before running an instruction after its last VMRUN while its
 * CPU delivered an event (QEMU's guests meet the same, inner_kvm_trace.h);
 * tests/integration/run_group.py reruns a test for that line only. The
 * count taken at the session's start keeps an earlier test's shutdown from
 * being taken for this one's. */
static void note_triple_fault(struct guest_session *session)
{
	struct shutdown_exit exit;
	unsigned int count = shutdown_exit_read_last(&exit);

	if (count <= session->shutdowns_before) {
		session->triple_fault = GUEST_TRIPLE_FAULT_UNTRACED;
		fprintf(stderr, "\nguest_session: the guest triple-faulted, and "
				"no KVM trace shows its shutdown (inside the "
				"emulated host, run_group.py records one)\n");
		return;
	}
	if (shutdown_exit_is_known_fault(&exit)) {
		session->triple_fault = GUEST_TRIPLE_FAULT_KNOWN;
		fprintf(stderr, "\nguest_session: the guest triple-faulted "
				"before its first instruction after VMRUN, its "
				"CPU delivering %s %#x (vCPU %u, RIP %#llx%s, from "
				"the emulated host's KVM trace); in the emulated "
				"host see tools/emuhost/README.md, \"Known "
				"fault\"\n",
			shutdown_exit_event_kind(&exit), exit.intr_info & 0xff,
			exit.vcpu, exit.rip,
			exit.in_inner_vmrun ? " in the emulated host's "
					      INNER_VMRUN_FUNCTION
					    : "");
		return;
	}
	session->triple_fault = GUEST_TRIPLE_FAULT_OWN;
	fprintf(stderr, "\nguest_session: the guest triple-faulted on vCPU %u "
			"at RIP %#llx delivering %s (EXITINTINFO %#x), %s (from "
			"the emulated host's KVM trace): not the emulated "
			"host's known fault\n",
		exit.vcpu, exit.rip, shutdown_exit_event_kind(&exit),
		exit.intr_info,
		exit.at_entry_rip ? "at the RIP it entered at"
				  : "after running since its VMRUN");
}

/* A guest whose kernel died is named in the test's log the moment its
 * output shows it, however the test ends: inside the emulated host a
 * kernel that died in its entry code is a known fault of its nested SVM
 * (it hits QEMU's guests alike, tools/emuhost/README.md), not a hang or a
 * bug of the test, and tests/integration/run_group.py looks for this
 * line. */
static void note_crash(struct guest_session *session, size_t new_from)
{
	size_t from = new_from > CRASH_SIGN_OVERLAP ? new_from - CRASH_SIGN_OVERLAP : 0;

	if (session->crash_reported)
		return;
	if (strstr(session->output + from, TRIPLE_FAULT_SIGN)) {
		session->crash_reported = true;
		note_triple_fault(session);
		return;
	}
	if (!crashed_in(session->output + from))
		return;
	session->crash_reported = true;
	fprintf(stderr, "\nguest_session: the guest kernel crashed (what it "
			"printed is above); in the emulated host see "
			"tools/emuhost/README.md, \"Known fault\"\n");
}

/* Printed by the guests' init at every boot (guests/initramfs/init). */
#define BOOT_MARK "vessel-guest: userspace up"

/* A guest that boots again though the test never rebooted it was reset
 * by a crash whose signs did not reach the console: a triple fault that
 * vessel reports is a sign, but a panic that printed nothing readable (its
 * message interleaved with another CPU's output, say) is not. Either way
 * the test's later checks would fail for a reason they do not name. */
static void note_restart(struct guest_session *session)
{
	const size_t mark_len = sizeof(BOOT_MARK) - 1;
	char *found;

	while ((found = strstr(session->output + session->boot_search_from,
			       BOOT_MARK))) {
		session->boot_search_from =
			(size_t)(found - session->output) + mark_len;
		session->boots_seen++;
		if (session->boots_seen == session->boots_expected + 1)
			fprintf(stderr, "\nguest_session: the guest restarted by "
					"itself (boot %u; the test asked for %u); "
					"in the emulated host see "
					"tools/emuhost/README.md, \"Known "
					"fault\"\n",
				session->boots_seen, session->boots_expected);
	}
	/* A mark split across two reads is found on the next one. */
	if (session->output_len >= mark_len &&
	    session->boot_search_from < session->output_len - mark_len)
		session->boot_search_from = session->output_len - mark_len;
}

/* A wait that gives up on a console silent this long, with a vCPU running
 * guest code all along, found a guest that stopped, not a slow one. */
#define STOPPED_SILENCE_SECONDS 60
/* The console lines a wait that gives up repeats at the end of the log. */
#define CONSOLE_TAIL_LINES 8

struct vcpu_sample {
	int tid;
	char name[16];
	unsigned long long cpu_ticks, guest_ticks;
};

void guest_session_each_thread(pid_t pid,
			       void (*visit)(const struct thread_stat *thread,
					     void *opaque),
			       void *opaque)
{
	char path[64];
	struct dirent *entry;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *tasks = opendir(path);
	if (!tasks)
		return;
	while ((entry = readdir(tasks))) {
		struct thread_stat thread = { 0 };
		char stat[1024];

		if (!isdigit((unsigned char)entry->d_name[0]))
			continue;
		thread.tid = atoi(entry->d_name);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid,
			 thread.tid);
		FILE *file = fopen(path, "r");
		if (!file)
			continue;
		size_t len = fread(stat, 1, sizeof(stat) - 1, file);
		fclose(file);
		stat[len] = '\0';
		/* "tid (name) state ...": the name may hold spaces and
		 * parentheses, so the fields are counted from the last ')'. */
		char *open = strchr(stat, '('), *close = strrchr(stat, ')');
		if (!open || !close || close - open - 1 >= (long)sizeof(thread.name))
			continue;
		snprintf(thread.name, sizeof(thread.name), "%.*s",
			 (int)(close - open - 1), open + 1);
		int number = 3;
		for (char *token = strtok(close + 1, " ");
		     token && number < THREAD_STAT_FIELDS; token = strtok(NULL, " "))
			thread.field[number++] = strtoull(token, NULL, 10);
		if (number == THREAD_STAT_FIELDS)
			visit(&thread, opaque);
	}
	closedir(tasks);
}

struct vcpu_samples {
	struct vcpu_sample *samples;
	size_t count, max;
};

static void add_vcpu_sample(const struct thread_stat *thread, void *opaque)
{
	struct vcpu_samples *vcpus = opaque;

	if (vcpus->count == vcpus->max || strncmp(thread->name, "vcpu", 4) != 0)
		return;
	struct vcpu_sample *sample = &vcpus->samples[vcpus->count++];
	sample->tid = thread->tid;
	snprintf(sample->name, sizeof(sample->name), "%s", thread->name);
	sample->cpu_ticks = thread->field[14] + thread->field[15];
	sample->guest_ticks = thread->field[43];
}

/* Up to max vessel threads named "vcpuN" (vcpu_start names them): their
 * CPU and guest-mode time so far, in clock ticks. */
static size_t sample_vcpus(pid_t pid, struct vcpu_sample *samples, size_t max)
{
	struct vcpu_samples vcpus = { .samples = samples, .max = max };

	guest_session_each_thread(pid, add_vcpu_sample, &vcpus);
	return vcpus.count;
}

/* Where a vCPU thread is: the first function of its kernel stack when it
 * sleeps (the stack of a running thread reads empty). */
static void wait_channel(pid_t pid, int tid, char *out, size_t size)
{
	char path[64], line[256];

	snprintf(out, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stack", (int)pid, tid);
	FILE *file = fopen(path, "r");
	if (!file)
		return;
	snprintf(out, size, "running");
	if (fgets(line, sizeof(line), file)) {
		char *name = strstr(line, "] ");
		if (name)
			snprintf(out, size, "%.*s", (int)strcspn(name + 2, "+\n"),
				 name + 2);
	}
	fclose(file);
}

/* The console's last lines, each marked for tools/test-summary's digest,
 * which keeps only marked lines: what the guest did last. */
static void print_console_tail(const struct guest_session *session)
{
	size_t start = session->output_len;

	for (int lines = 0; start > 0 && lines <= CONSOLE_TAIL_LINES; start--)
		lines += session->output[start - 1] == '\n';
	const char *line = session->output + start;
	while (*line) {
		size_t length = strcspn(line, "\r\n");
		if (length)
			fprintf(stderr, "guest_session: console| %.*s\n",
				(int)length, line);
		line += length;
		line += strspn(line, "\r\n");
	}
}

/* The VM's state and device counters, as `vessel status` prints them: a
 * guest waiting on a device shows whether its requests reached vessel
 * (received bytes of the console's input, a disk's requests in flight). */
static void print_vessel_status(const struct guest_session *session)
{
	char command[512], line[256];

	if (!session->api_socket[0] || !getenv("VESSEL_BINARY"))
		return;
	snprintf(command, sizeof(command), "'%s' status --api-sock '%s' 2>&1",
		 getenv("VESSEL_BINARY"), session->api_socket);
	FILE *status = popen(command, "r");
	if (!status)
		return;
	while (fgets(line, sizeof(line), status))
		if (line[0] != '\n')
			fprintf(stderr, "guest_session: vessel| %s", line);
	pclose(status);
}

/* Called when a wait gives up: says what each vCPU did over one second,
 * and whether the guest stopped (see STOPPED_SILENCE_SECONDS). Inside the
 * emulated host a guest now and then stops with a vCPU spinning in guest
 * mode, QEMU's guests as much as vessel's (tools/emuhost/README.md, "Known
 * fault"); tests/integration/run_group.py looks for the line it prints. */
static void report_stall(struct guest_session *session, double silent_seconds)
{
	struct vcpu_sample before[64], after[64];
	long ticks_per_second = sysconf(_SC_CLK_TCK);
	bool spinning = false;

	if (session->pid <= 0 || session->exit_status >= 0)
		return;
	size_t count = sample_vcpus(session->pid, before, 64);
	sleep(1);
	size_t now = sample_vcpus(session->pid, after, 64);
	fprintf(stderr, "\nguest_session: the console has been silent for %.0f s; "
			"vessel's vCPUs over one second:\n", silent_seconds);
	for (size_t i = 0; i < count; i++) {
		for (size_t j = 0; j < now; j++) {
			if (after[j].tid != before[i].tid)
				continue;
			unsigned long long guest = after[j].guest_ticks - before[i].guest_ticks;
			unsigned long long cpu = after[j].cpu_ticks - before[i].cpu_ticks;
			char channel[64];

			wait_channel(session->pid, after[j].tid, channel, sizeof(channel));
			fprintf(stderr, "guest_session:   %s: %llu%% busy, %llu%% in the "
					"guest; now %s\n", after[j].name,
				cpu * 100 / (unsigned long long)ticks_per_second,
				guest * 100 / (unsigned long long)ticks_per_second, channel);
			if (guest * 2 >= (unsigned long long)ticks_per_second)
				spinning = true;
		}
	}
	print_console_tail(session);
	fprintf(stderr, "guest_session: the test typed %zu bytes (serial0's "
			"received_bytes counts those the guest took)\n",
		session->typed_bytes);
	print_vessel_status(session);
	if (spinning && silent_seconds >= STOPPED_SILENCE_SECONDS)
		fprintf(stderr, "guest_session: the guest stopped: a vCPU keeps "
				"running guest code and the console is silent; in the "
				"emulated host see tools/emuhost/README.md, \"Known "
				"fault\"\n");
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
	session->last_output_at = now_seconds();
	note_crash(session, session->output_len - (size_t)count);
	note_restart(session);
	return true;
}

/* Reaps vessel if it has ended, within wait_seconds: its exit status, or
 * 128 + the signal that killed it (which is named in the test's log: a
 * crash of vessel itself is no fault of the emulated host's). */
static void reap(struct guest_session *session, double wait_seconds)
{
	double deadline = now_seconds() + wait_seconds;
	int status;

	while (session->exit_status < 0) {
		pid_t done = waitpid(session->pid, &status, WNOHANG);
		if (done == session->pid) {
			session->exit_status = WIFEXITED(status) ?
				WEXITSTATUS(status) : 128 + WTERMSIG(status);
			if (WIFSIGNALED(status))
				fprintf(stderr, "\nguest_session: vessel was killed "
						"by signal %d (%s)\n", WTERMSIG(status),
					strsignal(WTERMSIG(status)));
			return;
		}
		if (done < 0 || now_seconds() > deadline)
			return;
		usleep(10000);
	}
}

/* A wait for the console that ends with vessel's output says so, and how
 * vessel ended, rather than failing on the text alone. */
static void report_end(struct guest_session *session, const char *text)
{
	/* The text up to its line end, which tests include ("cpus=2\r"). */
	int shown = (int)strcspn(text, "\r\n");

	reap(session, 5);
	if (session->exit_status >= 0)
		fprintf(stderr, "\nguest_session: vessel ended (status %d) before "
				"'%.*s' appeared\n", session->exit_status, shown, text);
	else
		fprintf(stderr, "\nguest_session: vessel closed its output before "
				"'%.*s' appeared\n", shown, text);
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
		if (session->output_ended) {
			report_end(session, text);
			return false;
		}
		if (left <= 0) {
			report_stall(session, now_seconds() - session->last_output_at);
			return false;
		}
		if (!read_output(session, (int)(left * 1000) + 1))
			session->output_ended = true;
	}
}

void guest_session_collect(struct guest_session *session, int milliseconds)
{
	double deadline = now_seconds() + milliseconds / 1000.0;

	for (double left = milliseconds / 1000.0;
	     left > 0 && !session->output_ended;
	     left = deadline - now_seconds()) {
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
		session->typed_bytes += (size_t)written;
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

	while (session->exit_status < 0) {
		reap(session, 0);
		if (session->exit_status >= 0)
			break;
		if (now_seconds() > deadline) {
			report_stall(session, now_seconds() - session->last_output_at);
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

int api_request(const char *socket_path, const char *method, const char *path,
		const char *body)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	char request[4096], answer[4096];
	size_t length = body ? strlen(body) : 0, got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int status = -1;

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path);
	if (fd < 0 ||
	    connect(fd, (struct sockaddr *)&address, sizeof(address))) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int size = snprintf(request, sizeof(request),
			    "%s %s HTTP/1.1\r\nHost: localhost\r\n"
			    "Content-Type: application/json\r\n"
			    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			    method, path, length, body ? body : "");
	if (size > 0 && (size_t)size < sizeof(request) &&
	    write(fd, request, (size_t)size) == size) {
		for (ssize_t count; got < sizeof(answer) - 1 &&
				    (count = read(fd, answer + got,
						  sizeof(answer) - 1 - got)) > 0;)
			got += (size_t)count;
		answer[got] = '\0';
		if (sscanf(answer, "HTTP/1.1 %d", &status) != 1)
			status = -1;
	}
	close(fd);
	return status;
}
