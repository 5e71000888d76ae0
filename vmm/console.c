#include "console.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHARACTER 0x01 /* Ctrl-A, as QEMU's -nographic uses */
#define INPUT_BUFFER_SIZE 256

struct console {
	struct event_loop *loop;
	int input_fd;
	int output_fd;
	int rx_ready_fd; /* eventfd: the UART has room again */
	bool is_terminal;
	bool input_open; /* until end of input */
	bool escape_pending; /* the last input byte was Ctrl-A */
	struct console_hooks hooks;
	struct serial *serial;
	uint8_t pending[INPUT_BUFFER_SIZE]; /* read, not yet taken by the UART */
	size_t pending_start, pending_end;
};

/* The terminal's settings before vessel changed them. Process-wide, because
 * the restore must also run from atexit() and fatal signal handlers. */
static struct termios saved_termios;
static int saved_termios_fd = -1;

static void restore_terminal(void)
{
	if (saved_termios_fd >= 0)
		tcsetattr(saved_termios_fd, TCSANOW, &saved_termios);
}

static void restore_terminal_and_reraise(int signal)
{
	restore_terminal();
	/* SA_RESETHAND put the default action back: die as we would have. */
	raise(signal);
}

static int enter_raw_mode(int fd)
{
	static const int fatal_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE,
					     SIGILL };
	struct termios raw;

	if (tcgetattr(fd, &saved_termios))
		return -errno;
	saved_termios_fd = fd;
	atexit(restore_terminal);
	struct sigaction action = {
		.sa_handler = restore_terminal_and_reraise,
		.sa_flags = SA_RESETHAND,
	};
	sigemptyset(&action.sa_mask);
	for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
		sigaction(fatal_signals[i], &action, NULL);

	/* Every key goes to the guest (Ctrl-C included); output processing
	 * stays on so vessel's own messages end lines properly. */
	raw = saved_termios;
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
			 ICRNL | IXON);
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	return tcsetattr(fd, TCSANOW, &raw) ? -errno : 0;
}

static void set_input_watch(struct console *console, bool enabled)
{
	if (console->input_open)
		event_loop_modify(console->loop, console->input_fd,
				  enabled ? EPOLLIN : 0);
}

/* Hands pending input to the UART; stops reading input while it is full. */
static void feed_serial(struct console *console)
{
	if (console->serial && console->pending_start < console->pending_end) {
		console->pending_start += serial_receive(
			console->serial, console->pending + console->pending_start,
			console->pending_end - console->pending_start);
	}
	bool drained = console->pending_start == console->pending_end;
	if (drained)
		console->pending_start = console->pending_end = 0;
	set_input_watch(console, drained);
}

static void print_escape_help(void)
{
	static const char help[] =
		"\r\nvessel console escapes:\r\n"
		"  Ctrl-A x    quit vessel at once (the plug pulled)\r\n"
		"  Ctrl-A p    press the power button: the guest shuts down\r\n"
		"  Ctrl-A h    show this help\r\n"
		"  Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n";
	if (write(STDERR_FILENO, help, sizeof(help) - 1) < 0) {
		/* Nowhere else to report it. */
	}
}

/* Interprets the escape sequences of a terminal; returns false on quit. */
static bool take_terminal_byte(struct console *console, uint8_t byte)
{
	if (!console->escape_pending) {
		if (byte == ESCAPE_CHARACTER) {
			console->escape_pending = true;
			return true;
		}
		console->pending[console->pending_end++] = byte;
		return true;
	}
	console->escape_pending = false;
	switch (byte) {
	case 'x':
	case 'X':
		return false;
	case 'h':
	case 'H':
		print_escape_help();
		break;
	case 'p':
	case 'P':
		console->hooks.power_button(console->hooks.opaque);
		break;
	case ESCAPE_CHARACTER:
		console->pending[console->pending_end++] = byte;
		break;
	default:
		break; /* unknown escapes are dropped, as QEMU does */
	}
	return true;
}

static void on_input(void *opaque, uint32_t events)
{
	struct console *console = opaque;
	uint8_t buffer[INPUT_BUFFER_SIZE];

	(void)events;
	/* Only read when the previous input is all delivered, so the
	 * pending buffer always has room for a full read. */
	ssize_t count = read(console->input_fd, buffer, sizeof(buffer));
	if (count < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (count <= 0) {
		/* End of input: the guest runs on without it. */
		event_loop_remove(console->loop, console->input_fd);
		console->input_open = false;
		return;
	}
	for (ssize_t i = 0; i < count; i++) {
		if (!console->is_terminal) {
			console->pending[console->pending_end++] = buffer[i];
		} else if (!take_terminal_byte(console, buffer[i])) {
			console->hooks.quit(console->hooks.opaque);
			return;
		}
	}
	feed_serial(console);
}

static void on_rx_ready(void *opaque, uint32_t events)
{
	struct console *console = opaque;
	uint64_t count;

	(void)events;
	if (read(console->rx_ready_fd, &count, sizeof(count)) < 0) {
		/* Spurious wake-up: the counter was already drained. */
	}
	feed_serial(console);
}

static void serial_output(void *opaque, const uint8_t *data, size_t len)
{
	struct console *console = opaque;

	while (len) {
		ssize_t written = write(console->output_fd, data, len);
		if (written < 0) {
			if (errno == EINTR)
				continue;
			/* The reader went away (EPIPE, ...): the guest's
			 * output is dropped, as on a disconnected line. */
			return;
		}
		data += written;
		len -= (size_t)written;
	}
}

static void serial_rx_ready(void *opaque)
{
	struct console *console = opaque;
	uint64_t one = 1;

	if (write(console->rx_ready_fd, &one, sizeof(one)) < 0) {
		/* Cannot fail for an eventfd that is far from overflow. */
	}
}

struct console *console_create(struct event_loop *loop, int input_fd,
			       int output_fd, const struct console_hooks *hooks,
			       char *err, size_t err_len)
{
	struct console *console = calloc(1, sizeof(*console));
	int result;

	if (!console) {
		snprintf(err, err_len, "out of memory for the console");
		return NULL;
	}
	*console = (struct console){
		.loop = loop,
		.input_fd = input_fd,
		.output_fd = output_fd,
		.hooks = *hooks,
		.is_terminal = isatty(input_fd),
		.input_open = true,
	};
	console->rx_ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (console->rx_ready_fd < 0) {
		snprintf(err, err_len, "eventfd for the console: %s", strerror(errno));
		free(console);
		return NULL;
	}
	if (console->is_terminal && (result = enter_raw_mode(input_fd))) {
		snprintf(err, err_len, "putting the terminal in raw mode: %s",
			 strerror(-result));
		console_destroy(console);
		return NULL;
	}
	/* Input is read only while a UART has room for it. A descriptor
	 * epoll cannot watch (/dev/null, a regular file) gives no input. */
	result = event_loop_add(loop, input_fd, 0, on_input, console);
	if (result == -EPERM) {
		console->input_open = false;
	} else if (result) {
		snprintf(err, err_len, "watching console input: %s", strerror(-result));
		console_destroy(console);
		return NULL;
	}
	result = event_loop_add(loop, console->rx_ready_fd, EPOLLIN, on_rx_ready,
				console);
	if (result) {
		snprintf(err, err_len, "watching the UART: %s", strerror(-result));
		console_destroy(console);
		return NULL;
	}
	return console;
}

void console_destroy(struct console *console)
{
	if (!console)
		return;
	if (console->input_open)
		event_loop_remove(console->loop, console->input_fd);
	event_loop_remove(console->loop, console->rx_ready_fd);
	close(console->rx_ready_fd);
	restore_terminal();
	free(console);
}

struct serial_backend console_serial_backend(struct console *console)
{
	return (struct serial_backend){
		.write = serial_output,
		.rx_ready = serial_rx_ready,
		.opaque = console,
	};
}

void console_connect(struct console *console, struct serial *serial)
{
	console->serial = serial;
	feed_serial(console);
}
