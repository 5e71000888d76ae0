/*
 * An HTTP/1.1 server on a Unix socket, run by vessel's event loop: the
 * transport under the control API (api.c). http-parser reads the
 * requests; the connections, their buffers and their timeouts are vessel's.
 *
 * Promise: every accept, read and write happens on the event thread and
 * none blocks. The handler is called once per request, on that thread,
 * with the whole body (at most max_body_size bytes), or with why the
 * request cannot be served (malformed HTTP, a body over the cap); its
 * answer is written at once, and what the socket does not take waits in
 * the connection until it does. The next request of a keep-alive
 * connection is read only once the answer before it is fully written. A
 * connection silent for the idle timeout is closed, one beyond
 * max_connections is closed on arrival, and a client that leaves
 * mid-request leaves nothing behind.
 */
#ifndef VESSEL_VMM_HTTP_SERVER_H
#define VESSEL_VMM_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "event_loop.h"

struct http_request {
	const char *method; /* "GET", "PUT", ...; "" when malformed */
	const char *path; /* the URL without its query; "" when malformed */
	const char *body;
	size_t body_size;
	/* Either of these makes the answer the connection's last. */
	bool body_too_large; /* over max_body_size: answer 413 */
	const char *malformed; /* what is wrong with the HTTP (answer 400), or NULL */
};

struct http_response {
	unsigned int status;
	char *body; /* JSON text (malloc'd, the server frees it), or NULL */
	const char *allow; /* the Allow header of a 405, or NULL */
};

typedef struct http_response (*http_handler_fn)(
	void *opaque, const struct http_request *request);

struct http_server_options {
	const char *socket_path;
	mode_t socket_mode;
	unsigned int idle_timeout_seconds;
	size_t max_body_size;
	unsigned int max_connections;
};

struct http_server;

/*
 * Creates the socket file with options->socket_mode (never looser for a
 * moment; a stale socket, whose server is gone, is replaced; one a server
 * answers on, or a file that is not a socket, is refused) and serves it on
 * loop. On the event thread or before event_loop_run(). NULL with one line
 * in err, starting with the socket's path.
 */
struct http_server *http_server_create(struct event_loop *loop,
				       const struct http_server_options *options,
				       http_handler_fn handler, void *opaque,
				       char *err, size_t err_len);

/* Writes what each connection's socket takes of its pending answer, without
 * waiting, closes every connection and the socket, and removes the socket
 * file it made. On the event thread, or with the loop no longer running.
 * NULL is allowed. */
void http_server_destroy(struct http_server *server);

#endif
