#include "api.h"

#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vm_config.h"

/* At most this many clients at once: each may hold a body of
 * API_MAX_BODY_SIZE. */
#define API_MAX_CONNECTIONS 32

struct api_server {
	struct event_loop *loop;
	struct MHD_Daemon *daemon;
	int epoll_fd; /* libmicrohttpd's, watched by the loop */
	int timer_fd; /* libmicrohttpd's next deadline */
	char *socket_path;
	dev_t socket_device; /* the socket file this server made */
	ino_t socket_inode;
	const struct control_ops *ops;
	void *opaque;
};

/* What one request has sent so far. */
struct api_request {
	const struct route *route;
	char *body;
	size_t size;
	bool too_large; /* a chunked body went over the cap: 413 at its end */
};

/* An answer: status and a JSON text (NULL: no body). */
struct reply {
	unsigned int status;
	char *body;
};

typedef struct reply (*route_handler)(struct api_server *server,
				      const struct api_request *request);

struct route {
	const char *path;
	const char *method;
	route_handler handle;
	enum vm_request vm_request; /* for handle_vm_request */
};

static char *json_text(struct json_object *object)
{
	const char *text = json_object_to_json_string_ext(
		object, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	return text ? strdup(text) : NULL;
}

static struct reply error_reply(unsigned int status, const char *message)
{
	struct json_object *object = json_object_new_object();
	struct reply reply = { .status = status };

	if (object && !json_object_object_add(object, "error",
					      json_object_new_string(message)))
		reply.body = json_text(object);
	json_object_put(object);
	return reply;
}

/* How a control op's -errno reads as an HTTP status (control.h). */
static struct reply op_error_reply(int result, const char *message)
{
	unsigned int status = MHD_HTTP_INTERNAL_SERVER_ERROR;

	if (result == -EBUSY)
		status = MHD_HTTP_CONFLICT;
	else if (result == -EINVAL)
		status = MHD_HTTP_BAD_REQUEST;
	return error_reply(status, *message ? message : strerror(-result));
}

static struct json_object *counters_to_json(const struct control_info *info)
{
	struct json_object *groups = json_object_new_array();
	unsigned int group_count = info->group_count;

	if (group_count > CONTROL_MAX_COUNTER_GROUPS)
		group_count = CONTROL_MAX_COUNTER_GROUPS;
	for (unsigned int i = 0; groups && i < group_count; i++) {
		const struct control_counters *group = &info->groups[i];
		struct json_object *entry = json_object_new_object();
		struct json_object *values = json_object_new_object();
		unsigned int count = group->count;

		if (count > DEVICE_MAX_COUNTERS)
			count = DEVICE_MAX_COUNTERS;
		for (unsigned int j = 0; values && j < count; j++)
			json_object_object_add(
				values, group->counters[j].name,
				json_object_new_uint64(group->counters[j].value));
		json_object_object_add(entry, "name",
				       json_object_new_string(group->name));
		json_object_object_add(entry, "values", values);
		json_object_array_add(groups, entry);
	}
	return groups;
}

static struct reply handle_describe(struct api_server *server,
				    const struct api_request *request)
{
	struct control_info *info = calloc(1, sizeof(*info));
	struct json_object *object = json_object_new_object();
	struct reply reply = { .status = MHD_HTTP_OK };

	(void)request;
	if (info && object) {
		server->ops->describe(server->opaque, info);
		json_object_object_add(object, "state",
				       json_object_new_string(
					       vm_state_name(info->state)));
		/* Milliseconds are enough, and read better than %.17g. */
		char uptime[32];
		snprintf(uptime, sizeof(uptime), "%.3f", info->uptime_seconds);
		json_object_object_add(object, "uptime_seconds",
				       json_object_new_double_s(
					       info->uptime_seconds, uptime));
		json_object_object_add(object, "config",
				       info->config ?
					       vm_config_to_json(info->config) :
					       NULL);
		json_object_object_add(object, "counters",
				       counters_to_json(info));
		reply.body = json_text(object);
	}
	json_object_put(object);
	free(info);
	if (!reply.body)
		return error_reply(MHD_HTTP_INTERNAL_SERVER_ERROR,
				   "out of memory");
	return reply;
}

/* The whole body as one JSON value: NULL with the reason in err. */
static struct json_object *parse_body(const struct api_request *request,
				      char *err, size_t err_len)
{
	struct json_tokener *tokener = json_tokener_new();
	struct json_object *object = NULL;

	if (!tokener) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	object = json_tokener_parse_ex(tokener, request->body,
				       (int)request->size);
	enum json_tokener_error error = json_tokener_get_error(tokener);
	if (!object || error != json_tokener_success) {
		/* A body that ends inside a value is "continue": truncated. */
		snprintf(err, err_len, "malformed JSON: %s",
			 error == json_tokener_continue ?
				 "the body ends early" :
				 json_tokener_error_desc(error));
		json_object_put(object);
		object = NULL;
	} else {
		size_t end = json_tokener_get_parse_end(tokener);
		while (end < request->size &&
		       strchr(" \t\r\n", request->body[end]))
			end++;
		if (end < request->size) {
			snprintf(err, err_len,
				 "malformed JSON: text after the value at byte %zu",
				 end);
			json_object_put(object);
			object = NULL;
		}
	}
	json_tokener_free(tokener);
	return object;
}

static struct reply handle_configure(struct api_server *server,
				     const struct api_request *request)
{
	char err[512] = "";
	struct vm_config *config;

	if (!request->size)
		return error_reply(MHD_HTTP_BAD_REQUEST,
				   "the body must be the configuration (JSON)");
	struct json_object *object = parse_body(request, err, sizeof(err));
	if (!object)
		return error_reply(MHD_HTTP_BAD_REQUEST, err);
	int result = vm_config_from_json(object, &config, err, sizeof(err));
	json_object_put(object);
	if (result)
		return op_error_reply(result, err);
	result = server->ops->configure(server->opaque, config, err,
					sizeof(err));
	if (result) {
		vm_config_free(config);
		return op_error_reply(result, err);
	}
	return (struct reply){ .status = MHD_HTTP_NO_CONTENT };
}

static struct reply handle_vm_request(struct api_server *server,
				      const struct api_request *request)
{
	char err[512] = "";

	if (request->size)
		return error_reply(MHD_HTTP_BAD_REQUEST,
				   "this request takes no body");
	int result = server->ops->request(server->opaque,
					  request->route->vm_request, err,
					  sizeof(err));
	if (result)
		return op_error_reply(result, err);
	return (struct reply){ .status = MHD_HTTP_NO_CONTENT };
}

static const struct route routes[] = {
	{ "/api/v1/vm", MHD_HTTP_METHOD_GET, handle_describe, VM_REQUEST_COUNT },
	{ "/api/v1/vm/config", MHD_HTTP_METHOD_PUT, handle_configure,
	  VM_REQUEST_CONFIGURE },
	{ "/api/v1/vm/start", MHD_HTTP_METHOD_PUT, handle_vm_request,
	  VM_REQUEST_START },
	{ "/api/v1/vm/pause", MHD_HTTP_METHOD_PUT, handle_vm_request,
	  VM_REQUEST_PAUSE },
	{ "/api/v1/vm/resume", MHD_HTTP_METHOD_PUT, handle_vm_request,
	  VM_REQUEST_RESUME },
	{ "/api/v1/vm/power-button", MHD_HTTP_METHOD_PUT, handle_vm_request,
	  VM_REQUEST_POWER_BUTTON },
	{ "/api/v1/vm/stop", MHD_HTTP_METHOD_PUT, handle_vm_request,
	  VM_REQUEST_STOP },
	{ NULL, NULL, NULL, VM_REQUEST_COUNT },
};

/* The route for path, or NULL; *path_known when only the method is
 * wrong. */
static const struct route *find_route(const char *path, const char *method,
				      const struct route **path_known)
{
	*path_known = NULL;
	for (const struct route *route = routes; route->path; route++) {
		if (strcmp(route->path, path))
			continue;
		if (!strcmp(route->method, method))
			return route;
		*path_known = route;
	}
	return NULL;
}

static enum MHD_Result send_reply(struct MHD_Connection *connection,
				  const struct reply *reply,
				  const char *allow)
{
	const char *body = reply->body ? reply->body : "";
	struct MHD_Response *response = MHD_create_response_from_buffer(
		strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);

	if (!response)
		return MHD_NO;
	if (reply->body)
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
					"application/json");
	if (allow)
		MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result result =
		MHD_queue_response(connection, reply->status, response);
	MHD_destroy_response(response);
	return result;
}

static enum MHD_Result send_error(struct MHD_Connection *connection,
				  unsigned int status, const char *message,
				  const char *allow)
{
	struct reply reply = error_reply(status, message);
	enum MHD_Result result = send_reply(connection, &reply, allow);

	free(reply.body);
	return result;
}

/* The first call for a request, its headers read: refuse what can be
 * refused before its body comes. */
static enum MHD_Result start_request(struct MHD_Connection *connection,
				     const char *url, const char *method,
				     void **context)
{
	const struct route *path_known;
	const struct route *route = find_route(url, method, &path_known);
	char message[160];

	if (!route && path_known) {
		snprintf(message, sizeof(message), "%s %.64s: use %s", method,
			 url, path_known->method);
		return send_error(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
				  message, path_known->method);
	}
	if (!route) {
		snprintf(message, sizeof(message), "no such resource: %.64s",
			 url);
		return send_error(connection, MHD_HTTP_NOT_FOUND, message, NULL);
	}
	const char *length = MHD_lookup_connection_value(
		connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length && strtoull(length, NULL, 10) > API_MAX_BODY_SIZE) {
		snprintf(message, sizeof(message),
			 "the body is larger than %d bytes", API_MAX_BODY_SIZE);
		return send_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, message,
				  NULL);
	}
	struct api_request *request = calloc(1, sizeof(*request));
	if (!request)
		return MHD_NO; /* libmicrohttpd closes the connection */
	request->route = route;
	*context = request;
	return MHD_YES;
}

/* A chunked body has no length up front: its bytes beyond the cap are
 * read and dropped, and the request answered 413 at its end. */
static void take_body(struct api_request *request, const char *data,
		      size_t size)
{
	if (request->too_large || size > API_MAX_BODY_SIZE - request->size) {
		request->too_large = true;
		return;
	}
	if (!request->body) {
		request->body = malloc(API_MAX_BODY_SIZE);
		if (!request->body) {
			request->too_large = true;
			return;
		}
	}
	memcpy(request->body + request->size, data, size);
	request->size += size;
}

static enum MHD_Result on_request(void *opaque,
				  struct MHD_Connection *connection,
				  const char *url, const char *method,
				  const char *version, const char *upload_data,
				  size_t *upload_data_size, void **context)
{
	struct api_server *server = opaque;
	struct api_request *request = *context;

	(void)version;
	if (!request)
		return start_request(connection, url, method, context);
	if (*upload_data_size) {
		take_body(request, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (request->too_large) {
		char message[64];
		snprintf(message, sizeof(message),
			 "the body is larger than %d bytes", API_MAX_BODY_SIZE);
		return send_error(connection, MHD_HTTP_CONTENT_TOO_LARGE, message,
				  NULL);
	}
	struct reply reply = request->route->handle(server, request);
	enum MHD_Result result = send_reply(connection, &reply, NULL);
	free(reply.body);
	return result;
}

/* Every request ends here, answered or not (a client gone mid-body). */
static void on_request_done(void *opaque, struct MHD_Connection *connection,
			    void **context,
			    enum MHD_RequestTerminationCode reason)
{
	struct api_request *request = *context;

	(void)opaque, (void)connection, (void)reason;
	if (request) {
		free(request->body);
		free(request);
		*context = NULL;
	}
}

/* The timer is set to libmicrohttpd's next deadline (0: work it left
 * pending, at once), or disarmed when it has none. */
static void set_timer(struct api_server *server)
{
	struct itimerspec when = { .it_value.tv_sec = 0 };
	MHD_UNSIGNED_LONG_LONG timeout;

	if (MHD_get_timeout(server->daemon, &timeout) == MHD_YES) {
		when.it_value.tv_sec = (time_t)(timeout / 1000);
		when.it_value.tv_nsec = (long)(timeout % 1000) * 1000000;
		if (!timeout)
			when.it_value.tv_nsec = 1;
	}
	timerfd_settime(server->timer_fd, 0, &when, NULL);
}

static void on_ready(void *opaque, uint32_t events)
{
	struct api_server *server = opaque;

	(void)events;
	MHD_run(server->daemon);
	set_timer(server);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct api_server *server = opaque;
	uint64_t expirations;

	(void)events;
	if (read(server->timer_fd, &expirations, sizeof(expirations)) < 0)
		return; /* a stale wake-up: the timer was set again */
	MHD_run(server->daemon);
	set_timer(server);
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
		snprintf(err, err_len, "API socket %s: exists and is not a socket",
			 path);
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
		snprintf(err, err_len,
			 "API socket %s: another server is answering on it", path);
		return -EADDRINUSE;
	}
	if (saved != ECONNREFUSED)
		return -saved;
	return unlink(path) ? -errno : 0;
}

/* The listening socket, its file created with mode (never looser for a
 * moment: the umask covers bind()). */
static int create_socket(struct api_server *server, mode_t mode, char *err,
			 size_t err_len)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	const char *path = server->socket_path;
	struct stat info;

	if (strlen(path) >= sizeof(address.sun_path)) {
		snprintf(err, err_len, "API socket %s: longer than %zu bytes", path,
			 sizeof(address.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(address.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int result = remove_stale_socket(&address, err, err_len);
	if (!result) {
		mode_t old_mask = umask(~mode & 0777);
		result = bind(fd, (struct sockaddr *)&address, sizeof(address));
		umask(old_mask);
		if (result || chmod(path, mode) || listen(fd, SOMAXCONN) ||
		    stat(path, &info))
			result = -errno;
	}
	if (result) {
		if (!*err)
			snprintf(err, err_len, "API socket %s: %s", path,
				 strerror(-result));
		close(fd);
		return result;
	}
	server->socket_device = info.st_dev;
	server->socket_inode = info.st_ino;
	return fd;
}

static int start_daemon(struct api_server *server, int listen_fd,
			unsigned int idle_timeout, char *err, size_t err_len)
{
	server->daemon = MHD_start_daemon(
		MHD_USE_EPOLL, 0, NULL, NULL, on_request, server,
		MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)API_MAX_CONNECTIONS,
		MHD_OPTION_NOTIFY_COMPLETED, on_request_done, server,
		MHD_OPTION_END);
	if (!server->daemon) {
		snprintf(err, err_len, "API socket %s: libmicrohttpd did not start",
			 server->socket_path);
		return -EIO;
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		snprintf(err, err_len, "API socket %s: libmicrohttpd has no epoll descriptor",
			 server->socket_path);
		return -EIO;
	}
	server->epoll_fd = info->epoll_fd;
	return 0;
}

/* The loop runs libmicrohttpd when its epoll descriptor is ready or its
 * deadline comes: nothing on the loop's other turns. */
static int watch(struct api_server *server, char *err, size_t err_len)
{
	int result;

	server->timer_fd = timerfd_create(CLOCK_MONOTONIC,
					  TFD_CLOEXEC | TFD_NONBLOCK);
	if (server->timer_fd < 0) {
		result = -errno;
	} else {
		result = event_loop_add(server->loop, server->epoll_fd, EPOLLIN,
					on_ready, server);
		if (result)
			server->epoll_fd = -1; /* not watched */
		else
			result = event_loop_add(server->loop, server->timer_fd,
						EPOLLIN, on_timer, server);
	}
	if (result) {
		snprintf(err, err_len, "API socket %s: %s", server->socket_path,
			 strerror(-result));
		return result;
	}
	set_timer(server);
	return 0;
}

struct api_server *api_server_create(struct event_loop *loop,
				     const struct api_server_options *options,
				     const struct control_ops *ops,
				     void *opaque, char *err, size_t err_len)
{
	struct api_server *server = malloc(sizeof(*server));
	char *path = strdup(options->socket_path);
	mode_t mode = options->socket_mode ? options->socket_mode :
					     API_DEFAULT_SOCKET_MODE;
	unsigned int idle_timeout = options->idle_timeout_seconds ?
					    options->idle_timeout_seconds :
					    API_DEFAULT_IDLE_TIMEOUT;

	err[0] = '\0';
	if (!server || !path) {
		snprintf(err, err_len, "out of memory");
		free(server);
		free(path);
		return NULL;
	}
	*server = (struct api_server){
		.loop = loop,
		.socket_path = path,
		.ops = ops,
		.opaque = opaque,
		.epoll_fd = -1,
		.timer_fd = -1,
	};
	int listen_fd = create_socket(server, mode, err, err_len);
	if (listen_fd < 0) {
		free(server->socket_path);
		free(server);
		return NULL;
	}
	int result = start_daemon(server, listen_fd, idle_timeout, err, err_len);
	if (!result)
		result = watch(server, err, err_len);
	if (result) {
		if (!server->daemon)
			close(listen_fd);
		api_server_destroy(server);
		return NULL;
	}
	return server;
}

void api_server_destroy(struct api_server *server)
{
	struct stat info;

	if (!server)
		return;
	if (server->epoll_fd >= 0)
		event_loop_remove(server->loop, server->epoll_fd);
	if (server->timer_fd >= 0) {
		event_loop_remove(server->loop, server->timer_fd);
		close(server->timer_fd);
	}
	/* Closes the listening socket and every connection. */
	if (server->daemon)
		MHD_stop_daemon(server->daemon);
	/* Only the file this server made: another may have replaced it. */
	if (!stat(server->socket_path, &info) &&
	    info.st_dev == server->socket_device &&
	    info.st_ino == server->socket_inode)
		unlink(server->socket_path);
	free(server->socket_path);
	free(server);
}
