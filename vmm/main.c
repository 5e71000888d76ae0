/*
 * vessel's entry point: git-style subcommands. `vessel run` builds a machine
 * from the command line and runs it with its serial console on this
 * terminal until the guest powers off.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "event_loop.h"
#include "kvm.h"
#include "options.h"
#include "vcpu.h"
#include "vm.h"

#define ERROR_TEXT_SIZE 512

static void print_usage(void)
{
	printf("Usage: vessel COMMAND [options]\n"
	       "\n"
	       "Commands:\n"
	       "  run        boot a kernel in a new virtual machine\n"
	       "  help       show this help\n"
	       "  version    show vessel's version\n"
	       "\n"
	       "vessel COMMAND --help shows a command's options.\n");
}

/* What the event loop's signal and console handlers act on. */
struct session {
	struct vm *vm; /* the machine now running, if any */
	int signal_fd;
	int exit_signal; /* the signal that ended the session, or 0 */
};

static void on_console_quit(void *opaque)
{
	struct session *session = opaque;

	if (session->vm)
		vm_request_stop(session->vm, VM_STOP_REQUESTED,
				"quit from the console (Ctrl-A x)");
}

static void on_signal(void *opaque, uint32_t events)
{
	struct session *session = opaque;
	struct signalfd_siginfo info;
	char message[64];

	(void)events;
	if (read(session->signal_fd, &info, sizeof(info)) != sizeof(info))
		return;
	session->exit_signal = (int)info.ssi_signo;
	snprintf(message, sizeof(message), "terminating on signal %s",
		 strsignal((int)info.ssi_signo));
	if (session->vm)
		vm_request_stop(session->vm, VM_STOP_REQUESTED, message);
}

/* SIGINT, SIGTERM and SIGHUP end the session through the event loop, so the
 * machine stops cleanly; blocked in every thread, read from a signalfd. */
static int watch_termination_signals(struct event_loop *loop,
				     struct session *session)
{
	sigset_t signals;

	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &signals, NULL))
		return -EINVAL;
	session->signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
	if (session->signal_fd < 0)
		return -errno;
	return event_loop_add(loop, session->signal_fd, EPOLLIN, on_signal,
			      session);
}

/* Boots the machine, and boots it again after each guest reset. */
static int run_machine(const struct vm_config *config,
		       const struct kvm_host *host, struct event_loop *loop,
		       struct console *console, struct session *session)
{
	char message[ERROR_TEXT_SIZE];

	for (;;) {
		session->vm = vm_create(config, host, loop, console, message,
					sizeof(message));
		if (!session->vm) {
			fprintf(stderr, "vessel: %s\n", message);
			return 1;
		}
		enum vm_stop_reason reason =
			vm_run(session->vm, message, sizeof(message));
		vm_destroy(session->vm);
		session->vm = NULL;
		switch (reason) {
		case VM_STOP_POWER_OFF:
			return 0;
		case VM_STOP_RESET:
			if (message[0])
				fprintf(stderr, "\r\nvessel: %s\r\n", message);
			if (config->no_reboot)
				return 0;
			continue;
		case VM_STOP_REQUESTED:
			fprintf(stderr, "\r\nvessel: %s\r\n", message);
			return session->exit_signal ? 128 + session->exit_signal : 0;
		case VM_STOP_ERROR:
		default:
			fprintf(stderr, "\r\nvessel: %s\r\n", message);
			return 1;
		}
	}
}

static int run_command(int argc, char **argv)
{
	struct vm_config config;
	struct kvm_host host;
	struct session session = { .signal_fd = -1 };
	char err[ERROR_TEXT_SIZE];
	int status = 1;

	int parsed = options_parse_run(argc, argv, &config, err, sizeof(err));
	if (parsed < 0) {
		fprintf(stderr, "vessel run: %s\n", err);
		return 2;
	}
	if (parsed == OPTIONS_HELP)
		return 0;
	if (config_check_files(&config, err, sizeof(err))) {
		fprintf(stderr, "vessel run: %s\n", err);
		return 1;
	}
	if (kvm_host_open(&host, err, sizeof(err))) {
		fprintf(stderr, "vessel run: %s\n", err);
		return 1;
	}
	/* Before the long silence of a kernel booting emulated; a guest
	 * that runs at CPL3 (VESSEL_CPL3_GUEST set) is not slowed. */
	if (!getenv("VESSEL_CPL3_GUEST") && kvm_host_emulates_cpl0())
		fprintf(stderr, "vessel run: this /dev/kvm has no VMX or SVM (see "
				"/proc/cpuinfo) and runs a kernel's own code emulated: "
				"Linux takes minutes to boot or stops; use "
				"tools/boot-default or the emulated host, "
				"tools/emuhost/run\n");
	if (config_check_host(&config, &host, err, sizeof(err))) {
		fprintf(stderr, "vessel run: %s\n", err);
		kvm_host_close(&host);
		return 1;
	}
	/* A guest console whose reader has gone must not kill vessel. */
	signal(SIGPIPE, SIG_IGN);

	struct event_loop *loop = event_loop_create();
	struct console *console = NULL;
	if (!loop) {
		fprintf(stderr, "vessel run: cannot create the event loop\n");
		goto out;
	}
	int result = watch_termination_signals(loop, &session);
	if (!result)
		result = vcpu_install_kick_signal();
	if (result) {
		fprintf(stderr, "vessel run: setting up signals: %s\n",
			strerror(-result));
		goto out;
	}
	console = console_create(loop, STDIN_FILENO, STDOUT_FILENO,
				 on_console_quit, &session, err, sizeof(err));
	if (!console) {
		fprintf(stderr, "vessel run: %s\n", err);
		goto out;
	}
	status = run_machine(&config, &host, loop, console, &session);
out:
	console_destroy(console);
	if (session.signal_fd >= 0)
		close(session.signal_fd);
	event_loop_destroy(loop);
	kvm_host_close(&host);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage();
		return 2;
	}
	const char *command = argv[1];
	if (!strcmp(command, "run"))
		return run_command(argc - 1, argv + 1);
	if (!strcmp(command, "help") || !strcmp(command, "--help") ||
	    !strcmp(command, "-h")) {
		print_usage();
		return 0;
	}
	if (!strcmp(command, "version") || !strcmp(command, "--version")) {
		printf("vessel %s\n", VESSEL_VERSION);
		return 0;
	}
	fprintf(stderr, "vessel: unknown command '%s' (see vessel --help)\n",
		command);
	return 2;
}
