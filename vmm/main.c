/*
 * vessel's entry point: git-style subcommands, one table. `vessel run`
 * builds a machine from the command line and runs it with its serial
 * console on this terminal until the guest powers off; status, pause,
 * resume, power-button and stop are the control API's client
 * (api_client.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api.h"
#include "api_client.h"
#include "config.h"
#include "console.h"
#include "event_loop.h"
#include "kvm.h"
#include "machine.h"
#include "options.h"
#include "snapshot.h"
#include "vcpu.h"

#define ERROR_TEXT_SIZE 512


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

/*
 * The process around a machine: signals, the console on this terminal,
 * the machine, and the control API when asked for. With a configuration
 * it starts the VM (parked with --paused); without one (vessel serve) it
 * waits for one through the API. Runs until the VM is stopped.
 */
static int serve_machine(const char *command, struct vm_config *config,
			 const struct run_options *run,
			 const char *snapshot_dir, struct snapshot *snapshot,
			 bool eager)
{
	struct kvm_host host = { .fd = -1 };
	struct session session = { .signal_fd = -1 };
	struct event_loop *loop = NULL;
	struct console *console = NULL;
	struct api_server *api = NULL;
	char err[ERROR_TEXT_SIZE];
	int status = 1;

	if ((config && config_check_files(config, err, sizeof(err))) ||
	    kvm_host_open(&host, err, sizeof(err))) {
		fprintf(stderr, "vessel %s: %s\n", command, err);
		goto out;
	}
	/* Before the long silence of a kernel booting emulated; a guest
	 * that runs at CPL3 (VESSEL_CPL3_GUEST set) is not slowed. */
	if (!getenv("VESSEL_CPL3_GUEST") && kvm_host_emulates_cpl0())
		fprintf(stderr, "vessel %s: this /dev/kvm has no VMX or SVM (see "
				"/proc/cpuinfo) and runs a kernel's own code emulated: "
				"Linux takes minutes to boot or stops; use "
				"tools/boot-default or the emulated host, "
				"tools/emuhost/run\n", command);
	/* A guest console whose reader has gone must not kill vessel. */
	signal(SIGPIPE, SIG_IGN);

	loop = event_loop_create();
	if (!loop) {
		fprintf(stderr, "vessel %s: cannot create the event loop\n", command);
		goto out;
	}
	int result = watch_termination_signals(loop, &session);
	if (!result)
		result = vcpu_install_kick_signal();
	if (result) {
		fprintf(stderr, "vessel %s: setting up signals: %s\n", command,
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
		fprintf(stderr, "vessel %s: %s\n", command,
			console ? "out of memory for the machine" : err);
		goto out;
	}
	if (config) {
		if (machine_configure(session.machine, config, err, sizeof(err))) {
			fprintf(stderr, "vessel %s: %s\n", command, err);
			goto out;
		}
		config = NULL; /* the machine's now */
	}
	if (run->api_socket) {
		const struct api_server_options options = {
			.socket_path = run->api_socket,
			.socket_mode = run->api_socket_mode,
		};
		api = api_server_create(loop, &options, &machine_control_ops,
					session.machine, err, sizeof(err));
		if (!api) {
			fprintf(stderr, "vessel %s: %s\n", command, err);
			goto out;
		}
	}
	if (!strcmp(command, "run") &&
	    machine_request(session.machine,
			    run->paused ? VM_REQUEST_START_PAUSED : VM_REQUEST_START,
			    err, sizeof(err))) {
		fprintf(stderr, "vessel: %s\n", err);
		goto out;
	}
	if (snapshot &&
	    machine_restore(session.machine, snapshot_dir, snapshot, run->paused,
			    eager, err, sizeof(err))) {
		fprintf(stderr, "vessel restore: %s\n", err);
		goto out;
	}
	status = machine_run(session.machine);
out:
	api_server_destroy(api);
	machine_destroy(session.machine);
	console_destroy(console);
	if (session.signal_fd >= 0)
		close(session.signal_fd);
	event_loop_destroy(loop);
	kvm_host_close(&host);
	vm_config_free(config);
	return status;
}

static int run_command(int argc, char **argv)
{
	struct vm_config *config = calloc(1, sizeof(*config));
	struct run_options run;
	char err[ERROR_TEXT_SIZE];

	if (!config) {
		fprintf(stderr, "vessel run: out of memory\n");
		return 1;
	}
	int parsed = options_parse_run(argc, argv, config, &run, err, sizeof(err));
	if (parsed != OPTIONS_OK) {
		free(config); /* options_parse_run released what it held */
		if (parsed == OPTIONS_HELP)
			return 0;
		fprintf(stderr, "vessel run: %s\n", err);
		return 2;
	}
	return serve_machine("run", config, &run, NULL, NULL, false);
}

static void print_serve_usage(void)
{
	printf("Usage: vessel serve --api-sock PATH [--api-sock-mode MODE]\n"
	       "\n"
	       "Start vessel with no VM yet: the control API on PATH takes its\n"
	       "configuration (PUT /api/v1/vm/config) and starts it\n"
	       "(PUT /api/v1/vm/start); see docs/api.md. The VM's serial console\n"
	       "is this terminal, as with vessel run.\n");
}

static int serve_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "api-sock-mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_options run = { 0 };
	char err[ERROR_TEXT_SIZE];

	optind = 0;
	opterr = 0;
	for (int option; (option = getopt_long(argc, argv, ":h", options,
						NULL)) != -1;) {
		switch (option) {
		case 's':
			run.api_socket = optarg;
			break;
		case 'm':
			if (options_parse_socket_mode(optarg, &run.api_socket_mode,
						      err, sizeof(err))) {
				fprintf(stderr, "vessel serve: %s\n", err);
				return 2;
			}
			break;
		case 'h':
			print_serve_usage();
			return 0;
		default:
			return options_report_refused("serve", option, argv);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vessel serve: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (!run.api_socket) {
		fprintf(stderr, "vessel serve: --api-sock is required: it is how "
			"the VM is configured and started\n");
		return 2;
	}
	return serve_machine("serve", NULL, &run, NULL, NULL, false);
}

static void print_restore_usage(void)
{
	printf("Usage: vessel restore DIR [--api-sock PATH] [--paused] [--eager]\n"
	       "                      [--allow-changed-disks] [--skip-memory-check]\n"
	       "\n"
	       "Run the VM of the snapshot in DIR (vessel snapshot) in this\n"
	       "process, from where it was: nothing is booted, and the kernel\n"
	       "file need not exist. A damaged or mismatched snapshot is\n"
	       "refused before any VM is made.\n"
	       "\n"
	       "Options:\n"
	       "      --api-sock PATH  serve the control API on PATH\n"
	       "      --paused         restore it paused (resume through the API)\n"
	       "      --eager          read guest memory in at once, rather than\n"
	       "                       as the guest touches it\n"
	       "      --allow-changed-disks\n"
	       "                       restore over disks written since the\n"
	       "                       snapshot, with a warning naming them (the\n"
	       "                       guest's caches may not match them)\n"
	       "      --skip-memory-check\n"
	       "                       do not check the memory file against its\n"
	       "                       checksum: a restore that no longer reads\n"
	       "                       every written page first, for snapshots\n"
	       "                       on storage you trust\n"
	       "  -h, --help           show this help\n");
}

static int restore_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "paused", no_argument, NULL, 'p' },
		{ "eager", no_argument, NULL, 'e' },
		{ "allow-changed-disks", no_argument, NULL, 'c' },
		{ "skip-memory-check", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_options run = { 0 };
	struct snapshot snapshot;
	struct snapshot_leniency leniency = { 0 };
	bool eager = false;
	char err[ERROR_TEXT_SIZE];

	optind = 0;
	opterr = 0;
	for (int option; (option = getopt_long(argc, argv, ":h", options,
						NULL)) != -1;) {
		switch (option) {
		case 's':
			run.api_socket = optarg;
			break;
		case 'p':
			run.paused = true;
			break;
		case 'e':
			eager = true;
			break;
		case 'c':
			leniency.allow_changed_disks = true;
			break;
		case 'm':
			leniency.skip_memory_check = true;
			break;
		case 'h':
			print_restore_usage();
			return 0;
		default:
			return options_report_refused("restore", option, argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "vessel restore: one snapshot directory is "
			"required (see vessel restore --help)\n");
		return 2;
	}
	if (snapshot_open(argv[optind], &leniency, &snapshot, err,
			  sizeof(err))) {
		fprintf(stderr, "vessel restore: %s: %s\n", argv[optind], err);
		return 1;
	}
	if (snapshot_check_new_process(&snapshot, err, sizeof(err))) {
		fprintf(stderr, "vessel restore: %s: %s\n", argv[optind], err);
		snapshot_close(&snapshot);
		return 1;
	}
	if (snapshot.warning[0])
		fprintf(stderr, "vessel restore: %s: restoring anyway: %s\n",
			argv[optind], snapshot.warning);
	int status = serve_machine("restore", NULL, &run, argv[optind], &snapshot,
				   eager);
	snapshot_close(&snapshot);
	return status;
}

static int help_command(int argc, char **argv);

static int version_command(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("vessel %s\n", VESSEL_VERSION);
	return 0;
}

/* Each subcommand gets argv from its own name on and returns the exit
 * status. */
static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "run", run_command, "boot a kernel in a new virtual machine" },
	{ "serve", serve_command,
	  "start with no VM: configure and start it through the API" },
	{ "status", api_client_command,
	  "show a running VM's state and counters (--api-sock)" },
	{ "pause", api_client_command, "pause a running VM (--api-sock)" },
	{ "resume", api_client_command,
	  "resume a paused or suspended VM (--api-sock)" },
	{ "power-button", api_client_command,
	  "ask the guest to power off (--api-sock)" },
	{ "stop", api_client_command, "stop a VM at once (--api-sock)" },
	{ "snapshot", api_client_snapshot_command,
	  "write a paused VM into a directory (--api-sock)" },
	{ "restore", restore_command, "run a VM from a snapshot directory" },
	{ "suspend", api_client_snapshot_command,
	  "write a VM to a directory and release it (--api-sock)" },
	{ "help", help_command, "show this help" },
	{ "version", version_command, "show vessel's version" },
	{ "--help", help_command, NULL },
	{ "-h", help_command, NULL },
	{ "--version", version_command, NULL },
};

#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_usage(void)
{
	printf("Usage: vessel COMMAND [options]\n\nCommands:\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (commands[i].summary)
			printf("  %-14s %s\n", commands[i].name,
			       commands[i].summary);
	printf("\nvessel COMMAND --help shows a command's options.\n");
}

static int help_command(int argc, char **argv)
{
	(void)argc, (void)argv;
	print_usage();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_usage();
		return 2;
	}
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "vessel: unknown command '%s' (see vessel --help)\n",
		argv[1]);
	return 2;
}
