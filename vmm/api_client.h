/*
 * The control API's client (libcurl over the Unix socket), and the
 * subcommands built on it: `vessel status|pause|resume|power-button|stop
 * --api-sock PATH [--json]`.
 *
 * Promise: one request per call, its connection bounded in time
 * (API_CLIENT_CONNECT_TIMEOUT) and the answer's wait as the caller says,
 * the size of the answer it keeps bounded (API_CLIENT_MAX_ANSWER); a
 * subcommand exits 0 on success, 1 with the server's error (or why it
 * could not be reached) in one line, 2 on a bad command line.
 */
#ifndef VESSEL_VMM_API_CLIENT_H
#define VESSEL_VMM_API_CLIENT_H

#include <stddef.h>

#define API_CLIENT_CONNECT_TIMEOUT 10 /* seconds */
/* A request's answer, unless its work grows with guest memory (a snapshot,
 * a suspend, a resume from one), which is waited for as long as vessel
 * works on it: a VM's memory may take minutes to write. */
#define API_CLIENT_TIMEOUT 60 /* seconds */
#define API_CLIENT_MAX_ANSWER (1024 * 1024)

struct api_answer {
	long status; /* HTTP status */
	char *body; /* NUL-terminated; "" when the answer had none */
	size_t size;
};

/* method "GET" or "PUT", path "/api/v1/vm/pause", body NULL or JSON;
 * the answer waited for timeout seconds at most, 0 for no limit. 0 with
 * answer filled (release it), or -errno with one line in err. */
int api_client_request(const char *socket_path, const char *method,
		       const char *path, const char *body, long timeout,
		       struct api_answer *answer, char *err, size_t err_len);
void api_answer_release(struct api_answer *answer);

/* A client subcommand; argv[0] is its name ("status", "pause", ...).
 * Returns the process's exit status. */
int api_client_command(int argc, char **argv);
/* vessel snapshot --api-sock PATH DIR [--resume], and vessel suspend
 * --api-sock PATH DIR. */
int api_client_snapshot_command(int argc, char **argv);

#endif
