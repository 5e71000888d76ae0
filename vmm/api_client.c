#include "api_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../devices/dynamic_library.h"
#include "options.h"

/*
 * libcurl is loaded by the client subcommands only: linked into vessel, it
 * and the TLS, SSH and LDAP libraries it needs added 6 MiB to the resident
 * memory of every vessel (1.2 MiB of it private), the VMM's included.
 */
#define CURL_LIBRARY "libcurl.so.4"

struct curl_calls {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *curl);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list,
					   const char *text);
	void (*slist_free_all)(struct curl_slist *list);
};

static int load_curl(struct curl_calls *calls, char *err, size_t err_len)
{
	static const struct dynamic_symbol symbols[] = {
		{ "curl_easy_init", offsetof(struct curl_calls, easy_init) },
		{ "curl_easy_setopt", offsetof(struct curl_calls, easy_setopt) },
		{ "curl_easy_perform", offsetof(struct curl_calls, easy_perform) },
		{ "curl_easy_getinfo", offsetof(struct curl_calls, easy_getinfo) },
		{ "curl_easy_cleanup", offsetof(struct curl_calls, easy_cleanup) },
		{ "curl_easy_strerror", offsetof(struct curl_calls, easy_strerror) },
		{ "curl_slist_append", offsetof(struct curl_calls, slist_append) },
		{ "curl_slist_free_all",
		  offsetof(struct curl_calls, slist_free_all) },
	};

	return dynamic_library_load(CURL_LIBRARY, symbols,
				    sizeof(symbols) / sizeof(symbols[0]), calls,
				    err, err_len);
}

/* Keeps at most API_CLIENT_MAX_ANSWER bytes; more ends the transfer. */
static size_t take_answer(char *data, size_t size, size_t count,
			  void *opaque)
{
	struct api_answer *answer = opaque;
	size_t bytes = size * count;

	if (bytes > API_CLIENT_MAX_ANSWER - answer->size)
		return 0;
	char *grown = realloc(answer->body, answer->size + bytes + 1);
	if (!grown)
		return 0;
	memcpy(grown + answer->size, data, bytes);
	answer->size += bytes;
	grown[answer->size] = '\0';
	answer->body = grown;
	return bytes;
}

int api_client_request(const char *socket_path, const char *method,
		       const char *path, const char *body, long timeout,
		       struct api_answer *answer, char *err, size_t err_len)
{
	char url[256];
	struct curl_slist *headers = NULL;
	struct curl_calls calls;

	*answer = (struct api_answer){ .body = NULL };
	int result = load_curl(&calls, err, err_len);
	if (result)
		return result;
	CURL *curl = calls.easy_init();
	if (!curl) {
		snprintf(err, err_len, "cannot start libcurl");
		return -ENOMEM;
	}
	/* The host name is not looked up: the socket is the address. */
	snprintf(url, sizeof(url), "http://localhost%s", path);
	calls.easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	calls.easy_setopt(curl, CURLOPT_URL, url);
	calls.easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	calls.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	calls.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
			  (long)API_CLIENT_CONNECT_TIMEOUT);
	calls.easy_setopt(curl, CURLOPT_TIMEOUT, timeout);
	calls.easy_setopt(curl, CURLOPT_WRITEFUNCTION, take_answer);
	calls.easy_setopt(curl, CURLOPT_WRITEDATA, answer);
	if (body) {
		headers = calls.slist_append(headers,
					    "Content-Type: application/json");
		calls.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
		calls.easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		calls.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)strlen(body));
	}
	CURLcode code = calls.easy_perform(curl);
	if (code == CURLE_OK)
		calls.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer->status);
	calls.slist_free_all(headers);
	calls.easy_cleanup(curl);
	if (code != CURLE_OK) {
		snprintf(err, err_len, "%s %s: %s", socket_path,
			 code == CURLE_WRITE_ERROR ?
				 "answered with more than the client keeps" :
				 "cannot be reached",
			 calls.easy_strerror(code));
		api_answer_release(answer);
		return code == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	if (!answer->body && !(answer->body = calloc(1, 1))) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void api_answer_release(struct api_answer *answer)
{
	free(answer->body);
	*answer = (struct api_answer){ .body = NULL };
}

/* The value of key in object if it has type, else NULL. */
static struct json_object *member(struct json_object *object,
				  const char *key, enum json_type type)
{
	struct json_object *value;

	if (!json_object_object_get_ex(object, key, &value) ||
	    !json_object_is_type(value, type))
		return NULL;
	return value;
}

/* The server's {"error": "..."}, or what the answer was. */
static void print_failure(const char *command, const struct api_answer *answer)
{
	struct json_object *object = json_tokener_parse(answer->body);
	struct json_object *error = member(object, "error", json_type_string);

	if (error)
		fprintf(stderr, "vessel %s: %s\n", command,
			json_object_get_string(error));
	else
		fprintf(stderr, "vessel %s: the server answered HTTP %ld\n",
			command, answer->status);
	json_object_put(object);
}

static void print_counters(struct json_object *counters)
{
	size_t groups = json_object_array_length(counters);

	printf("%-16s %-24s %20s\n", "DEVICE", "COUNTER", "VALUE");
	for (size_t i = 0; i < groups; i++) {
		struct json_object *group = json_object_array_get_idx(counters, i);
		struct json_object *name = member(group, "name", json_type_string);
		struct json_object *values =
			member(group, "values", json_type_object);

		if (!name || !values)
			continue;
		json_object_object_foreach(values, key, value) {
			printf("%-16s %-24s %20s\n", json_object_get_string(name),
			       key, json_object_get_string(value));
		}
	}
}

/* GET /api/v1/vm as a person reads it: state, uptime, the machine, the
 * counters as a table. */
static int print_status(const char *body)
{
	struct json_object *object = json_tokener_parse(body);
	struct json_object *state = member(object, "state", json_type_string);
	struct json_object *uptime =
		member(object, "uptime_seconds", json_type_double);
	struct json_object *config = member(object, "config", json_type_object);
	struct json_object *counters =
		member(object, "counters", json_type_array);

	if (!state) {
		fprintf(stderr, "vessel status: the answer has no state\n");
		json_object_put(object);
		return 1;
	}
	printf("state:    %s\n", json_object_get_string(state));
	if (uptime)
		printf("uptime:   %.3f s\n", json_object_get_double(uptime));
	struct json_object *kernel = member(config, "kernel", json_type_string);
	struct json_object *memory = member(config, "memory", json_type_int);
	struct json_object *cpus = member(config, "cpus", json_type_int);
	if (kernel)
		printf("kernel:   %s\n", json_object_get_string(kernel));
	if (memory && cpus)
		printf("machine:  %llu MiB, %d vCPU%s\n",
		       (unsigned long long)(json_object_get_uint64(memory) >> 20),
		       json_object_get_int(cpus),
		       json_object_get_int(cpus) == 1 ? "" : "s");
	if (counters && json_object_array_length(counters)) {
		printf("\n");
		print_counters(counters);
	}
	json_object_put(object);
	return 0;
}

static void print_command_usage(const char *command)
{
	printf("Usage: vessel %s --api-sock PATH [--json]\n"
	       "\n"
	       "%s\n"
	       "\n"
	       "Options:\n"
	       "  -s, --api-sock PATH  the API socket of the vessel to ask\n"
	       "      --json           print the server's JSON answer as it is\n"
	       "  -h, --help           show this help\n"
	       "\n"
	       "Exit status: 0 on success, 1 when the request failed (the\n"
	       "server's error is printed), 2 on a bad command line.\n",
	       command,
	       !strcmp(command, "status") ?
		       "Show the VM's state, uptime, machine and counters." :
		       "Ask the VM to change state (see docs/api.md).");
}

enum { OPTION_JSON = 256 };

static const struct option client_options[] = {
	{ "api-sock", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, OPTION_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int api_client_command(int argc, char **argv)
{
	const char *command = argv[0];
	const char *socket_path = NULL;
	bool json = false;

	optind = 0;
	opterr = 0;
	for (;;) {
		int option = getopt_long(argc, argv, ":s:h", client_options, NULL);
		if (option == -1)
			break;
		switch (option) {
		case 's':
			socket_path = optarg;
			break;
		case OPTION_JSON:
			json = true;
			break;
		case 'h':
			print_command_usage(command);
			return 0;
		default:
			return options_report_refused(command, option, argv);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vessel %s: unexpected argument '%s'\n", command,
			argv[optind]);
		return 2;
	}
	if (!socket_path) {
		fprintf(stderr, "vessel %s: --api-sock is required\n", command);
		return 2;
	}

	bool status = !strcmp(command, "status");
	char path[64], err[512];
	struct api_answer answer;
	snprintf(path, sizeof(path), status ? "/api/v1/vm" : "/api/v1/vm/%s",
		 command);
	/* A suspended VM's resume reads its snapshot back. */
	long timeout = strcmp(command, "resume") ? API_CLIENT_TIMEOUT : 0;
	if (api_client_request(socket_path, status ? "GET" : "PUT", path, NULL,
			       timeout, &answer, err, sizeof(err))) {
		fprintf(stderr, "vessel %s: %s\n", command, err);
		return 1;
	}
	int result = 0;
	if (answer.status < 200 || answer.status > 299) {
		print_failure(command, &answer);
		result = 1;
	} else if (json && answer.size) {
		printf("%s\n", answer.body);
	} else if (status) {
		result = print_status(answer.body);
	}
	api_answer_release(&answer);
	return result;
}

static void print_snapshot_usage(bool suspend)
{
	if (suspend)
		printf("Usage: vessel suspend --api-sock PATH DIR\n"
		       "\n"
		       "Write the VM into the new directory DIR as a snapshot\n"
		       "(docs/snapshot.md) and release its memory; the VM reads\n"
		       "suspended until vessel resume brings it back from DIR,\n"
		       "which must stay.\n");
	else
		printf("Usage: vessel snapshot --api-sock PATH DIR [--resume] [--diff]\n"
		       "\n"
		       "Write the paused VM's state and memory into the new directory\n"
		       "DIR (docs/snapshot.md); vessel restore DIR runs it again. The VM\n"
		       "stays paused, unless --resume.\n");
	printf("\n"
	       "Options:\n"
	       "  -s, --api-sock PATH  the API socket of the vessel to ask\n"
	       "%s"
	       "  -h, --help           show this help\n",
	       suspend ? "" : "      --resume         resume the VM once the "
			      "snapshot is written\n"
			      "      --diff           only the pages written since "
			      "the VM's last\n"
			      "                       snapshot (or the one it was "
			      "restored from),\n"
			      "                       restored over it\n");
}

int api_client_snapshot_command(int argc, char **argv)
{
	static const struct option options[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "resume", no_argument, NULL, 'r' },
		{ "diff", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *command = argv[0];
	bool suspend = !strcmp(command, "suspend");
	const char *socket_path = NULL;
	bool resume = false, diff = false;

	optind = 0;
	opterr = 0;
	for (int option; (option = getopt_long(argc, argv, ":s:h", options,
						NULL)) != -1;) {
		switch (option) {
		case 's':
			socket_path = optarg;
			break;
		case 'r':
		case 'd':
			if (suspend) {
				fprintf(stderr, "vessel suspend: unknown option "
					"'--%s'\n", option == 'r' ? "resume" : "diff");
				return 2;
			}
			resume |= option == 'r';
			diff |= option == 'd';
			break;
		case 'h':
			print_snapshot_usage(suspend);
			return 0;
		default:
			return options_report_refused(command, option, argv);
		}
	}
	if (!socket_path || optind != argc - 1) {
		fprintf(stderr, "vessel %s: --api-sock and one directory are "
			"required (see vessel %s --help)\n", command, command);
		return 2;
	}
	/* The server has its own working directory: send an absolute path. */
	char cwd[4096] = "";
	const char *dir = argv[optind];
	if (dir[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, "vessel %s: the working directory: %s\n",
			command, strerror(errno));
		return 1;
	}
	struct json_object *body = json_object_new_object();
	char path[sizeof(cwd) + 2];
	snprintf(path, sizeof(path), "%s%s%s", cwd, cwd[0] ? "/" : "", dir);
	json_object_object_add(body, "destination", json_object_new_string(path));
	if (!suspend) {
		json_object_object_add(body, "resume",
				       json_object_new_boolean(resume));
		json_object_object_add(body, "diff",
				       json_object_new_boolean(diff));
	}
	struct api_answer answer;
	char err[512], url[64];
	snprintf(url, sizeof(url), "/api/v1/vm/%s", command);
	int result = api_client_request(socket_path, "PUT", url,
					json_object_to_json_string(body), 0,
					&answer, err, sizeof(err));
	json_object_put(body);
	if (result) {
		fprintf(stderr, "vessel %s: %s\n", command, err);
		return 1;
	}
	result = answer.status < 200 || answer.status > 299;
	if (result)
		print_failure(command, &answer);
	api_answer_release(&answer);
	return result;
}
