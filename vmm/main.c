/*
 * vessel's entry point: git-style subcommands. `vessel run` builds a machine
 * from the command line and runs it with its serial console on this
 * terminal until the guest powers off.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "console.h"
#include "event_loop.h"
#include "kvm.h"
#include "machine.h"
#include "options.h"
#include "vcpu.h"

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
	struct machine *machine;
	int signal_fd;
};

static void on_console_quit(void *opaque)
{
	struct session *session = opaque;

	machine_stop(session->machine, "quit from the console (Ctrl-A x)", 0);
}

static void on_console_power_button(void *opaque)
{
	struct session *session = opaque;

	machine_power_button(session->machine);
}

static void on_signal(void *opaque, uint32_t events)
{
	struct session *session = opaque;
	struct signalfd_siginfo info;
	char message[64];

	(void)events;
	if (read(session->signal_fd, &info, sizeof(info)) != sizeof(info))
		return;
	snprintf(message, sizeof(message), "terminating on signal %s",
		 strsignal((int)info.ssi_signo));
	machine_stop(session->machine, message, 128 + (int)info.ssi_signo);
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

static int run_command(int argc, char **argv)
{
	struct vm_config *config = calloc(1, sizeof(*config));
	struct kvm_host host = { .fd = -1 };
	struct session session = { .signal_fd = -1 };
	struct event_loop *loop = NULL;
	struct console *console = NULL;
	char err[ERROR_TEXT_SIZE];
	int status = 1;

	if (!config) {
		fprintf(stderr, "vessel run: out of memory\n");
		return 1;
	}
	int parsed = options_parse_run(argc, argv, config, err, sizeof(err));
	if (parsed < 0) {
		fprintf(stderr, "vessel run: %s\n", err);
		vm_config_free(config);
		return 2;
	}
	if (parsed == OPTIONS_HELP) {
		vm_config_free(config);
		return 0;
	}
	if (config_check_files(config, err, sizeof(err)) ||
	    kvm_host_open(&host, err, sizeof(err))) {
		fprintf(stderr, "vessel run: %s\n", err);
		goto out;
	}
	/* A guest console whose reader has gone must not kill vessel. */
	signal(SIGPIPE, SIG_IGN);

	loop = event_loop_create();
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
	const struct console_hooks hooks = {
		.quit = on_console_quit,
		.power_button = on_console_power_button,
		.opaque = &session,
	};
	console = console_create(loop, STDIN_FILENO, STDOUT_FILENO, &hooks, err,
				 sizeof(err));
	session.machine = console ? machine_create(&host, loop, console) : NULL;
	if (!session.machine) {
		fprintf(stderr, "vessel run: %s\n",
			console ? "out of memory for the machine" : err);
		goto out;
	}
	if (machine_configure(session.machine, config, err, sizeof(err))) {
		fprintf(stderr, "vessel run: %s\n", err);
		goto out;
	}
	config = NULL; /* the machine's now */
	if (machine_request(session.machine, VM_REQUEST_START, err, sizeof(err))) {
		fprintf(stderr, "vessel: %s\n", err);
		goto out;
	}
	status = machine_run(session.machine);
out:
	machine_destroy(session.machine);
	console_destroy(console);
	if (session.signal_fd >= 0)
		close(session.signal_fd);
	event_loop_destroy(loop);
	if (host.fd >= 0)
		kvm_host_close(&host);
	vm_config_free(config);
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
