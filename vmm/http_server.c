#include "http_server.h"

#include <errno.h>
#include <http_parser.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Read at a time; while an answer goes out, what follows its request
 * waits here. */
#define INPUT_SIZE 4096
/* No route is longer: a longer path is kept cut, and matches none. */
#define PATH_SIZE 256
/* Of the headers, only Expect is read here (the parser reads those it
 * needs): its name and value fit, longer ones are other headers. */
#define HEADER_TEXT_SIZE 16
#define CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"
#define NS_PER_SECOND 1000000000ULL

struct connection {
	struct http_server *server;
	int fd;
	uint32_t watched; /* EPOLLIN while reading, EPOLLOUT while answering */
	uint64_t last_activity; /* ns, CLOCK_MONOTONIC */
	http_parser parser;

	/* The request being read. */
	char path[PATH_SIZE];
	size_t path_size;
	char header_name[HEADER_TEXT_SIZE], header_value[HEADER_TEXT_SIZE];
	size_t header_name_size, header_value_size; /* may pass the buffers */
	bool in_header_value;
	bool expects_continue;
	char *body; /* max_body_size bytes once the body starts */
	size_t body_size;
	bool request_done;
	bool body_too_large;
	const char *malformed;
	int failure; /* -errno from a callback: the connection is closed */

	/* Bytes read but not parsed yet: the parser stops at each request's
	 * end until its answer is out. */
	char input[INPUT_SIZE];
	size_t input_start, input_end;

	/* The answer going out, and whether it is the last. */
	char *output;
	size_t output_size, output_sent;
	bool close_after;
	/* Answered for the last time, write side shut: what the client still
	 * sends (the rest of a refused body) is read and dropped until it
	 * closes, so that its writes do not fail before it reads the answer
	 * (RFC 9112 §9.6). */
	bool draining;
};

struct http_server {
	struct event_loop *loop;
	struct http_server_options options; /* socket_path is ours */
	http_handler_fn handler;
	void *opaque;
	int listen_fd;
	int timer_fd; /* the earliest idle deadline */
	bool timer_armed;
	dev_t socket_device; /* the socket file this server made */
	ino_t socket_inode;
	struct connection **connections; /* max_connections slots */
};

static uint64_t now(void)
{
	struct timespec time;

	clock_gettime(CLOCK_MONOTONIC, &time);
	return (uint64_t)time.tv_sec * NS_PER_SECOND + (uint64_t)time.tv_nsec;
}

static void close_connection(struct connection *connection)
{
	struct http_server *server = connection->server;

	for (unsigned int i = 0; i < server->options.max_connections; i++)
		if (server->connections[i] == connection)
			server->connections[i] = NULL;
	event_loop_remove(server->loop, connection->fd);
	close(connection->fd);
	free(connection->body);
	free(connection->output);
	free(connection);
}

static int watch_for(struct connection *connection, uint32_t events)
{
	if (connection->watched == events)
		return 0;
	connection->watched = events;
	return event_loop_modify(connection->server->loop, connection->fd,
				 events);
}

/* http-parser's callbacks: they note what the request says, and pause the
 * parser where the request gets its answer. */

static struct connection *connection_of(http_parser *parser)
{
	return parser->data;
}

static int on_message_begin(http_parser *parser)
{
	struct connection *connection = connection_of(parser);

	connection->path_size = 0;
	connection->body_size = 0;
	connection->header_name_size = 0;
	connection->in_header_value = false;
	connection->expects_continue = false;
	return 0;
}

static int on_url(http_parser *parser, const char *at, size_t length)
{
	struct connection *connection = connection_of(parser);
	size_t room = PATH_SIZE - 1 - connection->path_size;

	if (length > room)
		length = room;
	memcpy(connection->path + connection->path_size, at, length);
	connection->path_size += length;
	return 0;
}

/* Keeps what fits of a header's name or value text; the size counts all
 * of it (the parser caps a request's headers at 80 KiB), so that a longer
 * one matches nothing. */
static void append_header_text(char *text, size_t *size, const char *at,
			       size_t length)
{
	if (*size < HEADER_TEXT_SIZE)
		memcpy(text + *size, at,
		       length < HEADER_TEXT_SIZE - *size ?
			       length : HEADER_TEXT_SIZE - *size);
	*size += length;
}

static bool header_is(const char *text, size_t size, const char *expected)
{
	return size == strlen(expected) && !strncasecmp(text, expected, size);
}

/* A header's value ends where the next name, or the headers, end. */
static void end_header(struct connection *connection)
{
	if (connection->in_header_value &&
	    header_is(connection->header_name, connection->header_name_size,
		      "Expect") &&
	    header_is(connection->header_value, connection->header_value_size,
		      "100-continue"))
		connection->expects_continue = true;
	connection->in_header_value = false;
}

static int on_header_field(http_parser *parser, const char *at,
			   size_t length)
{
	struct connection *connection = connection_of(parser);

	if (connection->in_header_value) {
		end_header(connection);
		connection->header_name_size = 0;
	}
	append_header_text(connection->header_name,
			   &connection->header_name_size, at, length);
	return 0;
}

static int on_header_value(http_parser *parser, const char *at,
			   size_t length)
{
	struct connection *connection = connection_of(parser);

	if (!connection->in_header_value) {
		connection->in_header_value = true;
		connection->header_value_size = 0;
	}
	append_header_text(connection->header_value,
			   &connection->header_value_size, at, length);
	return 0;
}

/* A body announced over the cap is refused before it comes; a client
 * that waits to be told to send its body is told at once (RFC 9110
 * §10.1.1): the socket is empty, the answer before having gone out. */
static int on_headers_complete(http_parser *parser)
{
	struct connection *connection = connection_of(parser);

	end_header(connection);
	if ((parser->flags & F_CONTENTLENGTH) &&
	    parser->content_length > connection->server->options.max_body_size) {
		connection->body_too_large = true;
		http_parser_pause(parser, 1);
	} else if (connection->expects_continue && parser->http_minor >= 1 &&
		   send(connection->fd, CONTINUE, strlen(CONTINUE),
			MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)strlen(CONTINUE)) {
		connection->failure = -EIO;
		return -1;
	}
	return 0;
}

/* A chunked body has no length up front: refused as soon as it passes the
 * cap. */
static int on_body(http_parser *parser, const char *at, size_t length)
{
	struct connection *connection = connection_of(parser);
	size_t cap = connection->server->options.max_body_size;

	if (length > cap - connection->body_size) {
		connection->body_too_large = true;
		http_parser_pause(parser, 1);
		return 0;
	}
	if (!connection->body) {
		connection->body = malloc(cap);
		if (!connection->body) {
			connection->failure = -ENOMEM;
			return -1;
		}
	}
	memcpy(connection->body + connection->body_size, at, length);
	connection->body_size += length;
	return 0;
}

static int on_message_complete(http_parser *parser)
{
	struct connection *connection = connection_of(parser);

	connection->request_done = true;
	http_parser_pause(parser, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Writes what the socket takes now; the rest goes on EPOLLOUT. Once all is
 * out, the connection reads again, or drains if that was its last answer. */
static int flush_output(struct connection *connection)
{
	while (connection->output_sent < connection->output_size) {
		ssize_t count = send(connection->fd,
				     connection->output + connection->output_sent,
				     connection->output_size - connection->output_sent,
				     MSG_NOSIGNAL | MSG_DONTWAIT);
		if (count < 0 && errno == EINTR)
			continue;
		if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return watch_for(connection, EPOLLOUT);
		if (count < 0)
			return -errno;
		connection->output_sent += (size_t)count;
		connection->last_activity = now();
	}
	free(connection->output);
	connection->output = NULL;
	if (connection->close_after) {
		shutdown(connection->fd, SHUT_WR);
		connection->draining = true;
	}
	return watch_for(connection, EPOLLIN);
}

/* The status line, headers and body of response, as one buffer. */
static int format_response(struct connection *connection,
			   const struct http_response *response)
{
	const char *body = response->body ? response->body : "";
	size_t body_size = strlen(body);
	char length[48] = "";
	char head[256];

	/* A 204 has no Content-Length (RFC 9110 §8.6); every other answer
	 * has one, so that a keep-alive client knows where it ends. */
	if (response->status != 204)
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n",
			 body_size);
	int head_size = snprintf(
		head, sizeof(head), "HTTP/1.1 %u %s\r\n%s%s%s%s%s%s\r\n",
		response->status,
		http_status_str((enum http_status)response->status), length,
		response->body ? "Content-Type: application/json\r\n" : "",
		response->allow ? "Allow: " : "",
		response->allow ? response->allow : "",
		response->allow ? "\r\n" : "",
		connection->close_after ? "Connection: close\r\n" : "");
	if (head_size < 0 || (size_t)head_size >= sizeof(head))
		return -EINVAL;
	connection->output = malloc((size_t)head_size + body_size);
	if (!connection->output)
		return -ENOMEM;
	memcpy(connection->output, head, (size_t)head_size);
	memcpy(connection->output + head_size, body, body_size);
	connection->output_size = (size_t)head_size + body_size;
	connection->output_sent = 0;
	return 0;
}

/* Hands the request read to the handler and starts writing its answer. */
static int answer(struct connection *connection)
{
	struct http_server *server = connection->server;
	char *query;
	struct http_request request = {
		.method = "",
		.path = "",
		.body = connection->body,
		.body_size = connection->body_size,
		.body_too_large = connection->body_too_large,
		.malformed = connection->malformed,
	};

	if (!request.malformed) {
		connection->path[connection->path_size] = '\0';
		query = strpbrk(connection->path, "?#");
		if (query)
			*query = '\0';
		request.path = connection->path;
		request.method =
			http_method_str((enum http_method)connection->parser.method);
	}
	connection->close_after = request.malformed || request.body_too_large ||
				  !http_should_keep_alive(&connection->parser);
	struct http_response response = server->handler(server->opaque, &request);
	int result = format_response(connection, &response);
	free(response.body);
	free(connection->body);
	connection->body = NULL;
	connection->request_done = false;
	if (result)
		return result;
	return flush_output(connection);
}

/* Parses what has come, answering each request as it ends, until the input
 * is used up or an answer has to wait for the socket. */
static int serve_input(struct connection *connection)
{
	http_parser *parser = &connection->parser;

	while (!connection->output && !connection->draining &&
	       connection->input_start < connection->input_end) {
		size_t parsed = http_parser_execute(
			parser, &parser_settings,
			connection->input + connection->input_start,
			connection->input_end - connection->input_start);
		connection->input_start += parsed;
		enum http_errno error = HTTP_PARSER_ERRNO(parser);
		if (connection->failure)
			return connection->failure;
		if (error == HPE_PAUSED)
			http_parser_pause(parser, 0);
		else if (error != HPE_OK)
			connection->malformed = http_errno_description(error);
		else if (connection->input_start < connection->input_end)
			/* The parser stops short only for an upgrade. */
			connection->malformed = "a protocol upgrade is not served";
		if (connection->request_done || connection->body_too_large ||
		    connection->malformed) {
			int result = answer(connection);
			if (result)
				return result;
		}
	}
	return 0;
}

static void on_connection_event(void *opaque, uint32_t events)
{
	struct connection *connection = opaque;
	int result = 0;

	(void)events;
	if (connection->output) {
		/* Then the requests that came after the one answered. */
		result = flush_output(connection);
		if (!result)
			result = serve_input(connection);
		if (result)
			close_connection(connection);
		return;
	}
	ssize_t count = recv(connection->fd, connection->input, INPUT_SIZE,
			     MSG_DONTWAIT);
	if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			  errno == EINTR))
		return;
	if (count <= 0) {
		/* Gone, mid-request or not: its request is dropped with it. */
		close_connection(connection);
		return;
	}
	if (connection->draining)
		return;
	connection->last_activity = now();
	connection->input_start = 0;
	connection->input_end = (size_t)count;
	if (serve_input(connection))
		close_connection(connection);
}

/* The timer is set to the earliest connection's idle deadline, or
 * disarmed when none is open. */
static void arm_timer(struct http_server *server)
{
	uint64_t timeout = server->options.idle_timeout_seconds * NS_PER_SECOND;
	uint64_t earliest = UINT64_MAX;
	struct itimerspec when = { .it_value.tv_sec = 0 };

	for (unsigned int i = 0; i < server->options.max_connections; i++) {
		struct connection *connection = server->connections[i];
		if (connection && connection->last_activity < earliest)
			earliest = connection->last_activity;
	}
	server->timer_armed = earliest != UINT64_MAX;
	if (server->timer_armed) {
		uint64_t deadline = earliest + timeout;
		when.it_value.tv_sec = (time_t)(deadline / NS_PER_SECOND);
		when.it_value.tv_nsec = (long)(deadline % NS_PER_SECOND);
	}
	timerfd_settime(server->timer_fd, TFD_TIMER_ABSTIME, &when, NULL);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct http_server *server = opaque;
	uint64_t timeout = server->options.idle_timeout_seconds * NS_PER_SECOND;
	uint64_t expirations;

	(void)events;
	if (read(server->timer_fd, &expirations, sizeof(expirations)) < 0)
		return; /* a stale wake-up: the timer was set again */
	uint64_t time = now();
	for (unsigned int i = 0; i < server->options.max_connections; i++) {
		struct connection *connection = server->connections[i];
		if (connection && time - connection->last_activity >= timeout)
			close_connection(connection);
	}
	arm_timer(server);
}

static int add_connection(struct http_server *server, int fd)
{
	unsigned int slot = 0;

	while (slot < server->options.max_connections &&
	       server->connections[slot])
		slot++;
	if (slot == server->options.max_connections)
		return -EMFILE; /* one too many: closed at once */
	struct connection *connection = calloc(1, sizeof(*connection));
	if (!connection)
		return -ENOMEM;
	connection->server = server;
	connection->fd = fd;
	connection->watched = EPOLLIN;
	connection->last_activity = now();
	http_parser_init(&connection->parser, HTTP_REQUEST);
	connection->parser.data = connection;
	int result = event_loop_add(server->loop, fd, EPOLLIN,
				    on_connection_event, connection);
	if (result) {
		free(connection);
		return result;
	}
	server->connections[slot] = connection;
	if (!server->timer_armed)
		arm_timer(server);
	return 0;
}

static void on_listen_event(void *opaque, uint32_t events)
{
	struct http_server *server = opaque;

	(void)events;
	for (;;) {
		int fd = accept4(server->listen_fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* none waiting, or one gone before it was taken */
		if (add_connection(server, fd))
			close(fd);
	}
}

/* A socket file left by a server that is gone is removed; one that a
 * server still answers on, or a file that is not a socket, is refused. */
static int remove_stale_socket(const struct sockaddr_un *address,
			       char *err, size_t err_len)
{
	const char *path = address->sun_path;
	struct stat info;

	if (lstat(path, &info))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(info.st_mode)) {
		snprintf(err, err_len, "%s: exists and is not a socket", path);
		return -EEXIST;
	}
	/* Non-blocking: a full backlog must not block the probe. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			   0);
	if (probe < 0)
		return -errno;
	int result = connect(probe, (const struct sockaddr *)address,
			     sizeof(*address));
	int saved = errno;
	close(probe);
	if (result == 0 || saved == EAGAIN) {
		snprintf(err, err_len, "%s: another server is answering on it",
			 path);
		return -EADDRINUSE;
	}
	if (saved != ECONNREFUSED)
		return -saved;
	return unlink(path) ? -errno : 0;
}

/* The name the socket is bound under before it listens: the file at the
 * final path must only appear once connections to it are taken, or a
 * client that waits for the file is refused in between (bind creates the
 * file, listen comes after). Empty when the path leaves no room for it:
 * the socket is then bound at its path directly. */
static void staging_name(const char *path, char *name, size_t size)
{
	int length = snprintf(name, size, "%s.%d.staging", path, (int)getpid());

	if (length < 0 || (size_t)length >= size)
		name[0] = '\0';
}

/* The listening socket, its file created with mode (never looser for a
 * moment: the umask covers bind()). */
static int create_socket(struct http_server *server, char *err,
			 size_t err_len)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	const char *path = server->options.socket_path;
	mode_t mode = server->options.socket_mode;
	char staging[sizeof(address.sun_path)];
	struct stat info;

	if (strlen(path) >= sizeof(address.sun_path)) {
		snprintf(err, err_len, "%s: longer than %zu bytes", path,
			 sizeof(address.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(address.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int result = remove_stale_socket(&address, err, err_len);
	if (!result) {
		staging_name(path, staging, sizeof(staging));
		if (staging[0]) {
			unlink(staging);
			strcpy(address.sun_path, staging);
		}
		mode_t old_mask = umask(~mode & 0777);
		result = bind(fd, (struct sockaddr *)&address, sizeof(address));
		umask(old_mask);
		if (result || chmod(address.sun_path, mode) ||
		    listen(fd, SOMAXCONN) ||
		    (staging[0] && rename(staging, path)) || stat(path, &info))
			result = -errno;
		if (result && staging[0])
			unlink(staging);
	}
	if (result) {
		if (!*err)
			snprintf(err, err_len, "%s: %s", path, strerror(-result));
		close(fd);
		return result;
	}
	server->socket_device = info.st_dev;
	server->socket_inode = info.st_ino;
	return fd;
}

struct http_server *http_server_create(struct event_loop *loop,
				       const struct http_server_options *options,
				       http_handler_fn handler, void *opaque,
				       char *err, size_t err_len)
{
	struct http_server *server = calloc(1, sizeof(*server));

	err[0] = '\0';
	if (!server) {
		snprintf(err, err_len, "%s: out of memory", options->socket_path);
		return NULL;
	}
	server->loop = loop;
	server->options = *options;
	server->options.socket_path = strdup(options->socket_path);
	server->handler = handler;
	server->opaque = opaque;
	server->listen_fd = -1;
	server->timer_fd = -1;
	server->connections = calloc(options->max_connections,
				     sizeof(*server->connections));
	if (!server->options.socket_path || !server->connections) {
		snprintf(err, err_len, "%s: out of memory", options->socket_path);
		http_server_destroy(server);
		return NULL;
	}
	int result = create_socket(server, err, err_len);
	if (result < 0) {
		http_server_destroy(server);
		return NULL;
	}
	server->listen_fd = result;
	server->timer_fd = timerfd_create(CLOCK_MONOTONIC,
					  TFD_CLOEXEC | TFD_NONBLOCK);
	result = server->timer_fd < 0 ? -errno : 0;
	if (!result)
		result = event_loop_add(loop, server->timer_fd, EPOLLIN, on_timer,
					server);
	if (result) {
		close(server->timer_fd);
		server->timer_fd = -1;
	} else {
		result = event_loop_add(loop, server->listen_fd, EPOLLIN,
					on_listen_event, server);
	}
	if (result) {
		snprintf(err, err_len, "%s: %s", options->socket_path,
			 strerror(-result));
		http_server_destroy(server);
		return NULL;
	}
	return server;
}

void http_server_destroy(struct http_server *server)
{
	struct stat info;

	if (!server)
		return;
	for (unsigned int i = 0;
	     server->connections && i < server->options.max_connections; i++) {
		struct connection *connection = server->connections[i];
		/* An answer given just before vessel stops still goes out:
		 * as much as the socket takes now. */
		if (connection && connection->output)
			flush_output(connection);
		if (connection)
			close_connection(connection);
	}
	if (server->timer_fd >= 0) {
		event_loop_remove(server->loop, server->timer_fd);
		close(server->timer_fd);
	}
	if (server->listen_fd >= 0) {
		/* Only the file this server made: another may have replaced
		 * it. Gone before the socket closes, so that a client never
		 * finds the file with nobody listening. */
		if (!stat(server->options.socket_path, &info) &&
		    info.st_dev == server->socket_device &&
		    info.st_ino == server->socket_inode)
			unlink(server->options.socket_path);
		event_loop_remove(server->loop, server->listen_fd);
		close(server->listen_fd);
	}
	free(server->connections);
	free((char *)server->options.socket_path);
	free(server);
}
