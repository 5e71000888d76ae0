/*
 * The control API's server: HTTP/1.1 over a Unix socket (libmicrohttpd),
 * JSON bodies (json-c), in the style of Cloud Hypervisor's and
 * Firecracker's APIs, so that `curl --unix-socket` drives it. docs/api.md
 * lists every request and its answer.
 *
 * Promise: the server runs on the event loop it is given, which watches
 * libmicrohttpd's epoll descriptor and a timerfd set to libmicrohttpd's
 * next deadline, so every request is answered on the event thread,
 * calling the control_ops synchronously, and no client can block that
 * thread: a client that says nothing, or goes away mid-request, is dropped
 * by a timeout or on its hang-up while others are served. A request body
 * is capped (API_MAX_BODY_SIZE, 413 beyond), every body is checked before
 * use, and an error is a JSON object {"error": "one line"} with its HTTP
 * status.
 */
#ifndef VESSEL_VMM_API_H
#define VESSEL_VMM_API_H

#include <stddef.h>
#include <sys/types.h>

#include "control.h"
#include "event_loop.h"

#define API_MAX_BODY_SIZE (64 * 1024)
#define API_DEFAULT_SOCKET_MODE 0600 /* the owner only */
#define API_DEFAULT_IDLE_TIMEOUT 10 /* seconds a connection may say nothing */

struct api_server_options {
	const char *socket_path;
	/* The socket file's permission bits; 0 means API_DEFAULT_SOCKET_MODE. */
	mode_t socket_mode;
	/* 0 means API_DEFAULT_IDLE_TIMEOUT. */
	unsigned int idle_timeout_seconds;
};

struct api_server;

/*
 * Creates the socket (a stale one, whose server is gone, is replaced; one
 * that answers, or a file that is not a socket, is refused) and serves it
 * on loop, calling ops with opaque. Call it on the event thread or before
 * event_loop_run(). NULL with one line in err.
 */
struct api_server *api_server_create(struct event_loop *loop,
				     const struct api_server_options *options,
				     const struct control_ops *ops,
				     void *opaque, char *err, size_t err_len);

/* Drops every connection, removes the poll source and the socket file.
 * On the event thread, or with the loop no longer running. NULL is
 * allowed. */
void api_server_destroy(struct api_server *server);

#endif
