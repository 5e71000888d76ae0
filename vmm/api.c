#include "api.h"

#include <errno.h>
#include <http_parser.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "vm_config.h"

/* At most this many clients at once: each may hold a body of
 * API_MAX_BODY_SIZE. */
#define API_MAX_CONNECTIONS 32

struct api_server {
	struct http_server *http;
	const struct control_ops *ops;
	void *opaque;
};

/* An answer: status and a JSON text (NULL: no body). */
struct reply {
	unsigned int status;
	char *body;
};

struct route;
typedef struct reply (*route_handler)(struct api_server *server,
				      const struct route *route,
				      const struct http_request *request);

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
	unsigned int status = HTTP_STATUS_INTERNAL_SERVER_ERROR;

	if (result == -EBUSY)
		status = HTTP_STATUS_CONFLICT;
	else if (result == -EINVAL)
		status = HTTP_STATUS_BAD_REQUEST;
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
				    const struct route *route,
				    const struct http_request *request)
{
	struct control_info *info = calloc(1, sizeof(*info));
	struct json_object *object = json_object_new_object();
	struct reply reply = { .status = HTTP_STATUS_OK };

	(void)route, (void)request;
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
		return error_reply(HTTP_STATUS_INTERNAL_SERVER_ERROR,
				   "out of memory");
	return reply;
}

/* The whole body as one JSON value: NULL with the reason in err. */
static struct json_object *parse_body(const struct http_request *request,
				      char *err, size_t err_len)
{
	struct json_tokener *tokener = json_tokener_new();
	struct json_object *object = NULL;

	if (!tokener) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	object = json_tokener_parse_ex(tokener, request->body,
				       (int)request->body_size);
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
		while (end < request->body_size && request->body[end] &&
		       strchr(" \t\r\n", request->body[end]))
			end++;
		if (end < request->body_size) {
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
				     const struct route *route,
				     const struct http_request *request)
{
	char err[512] = "";
	struct vm_config *config;

	(void)route;
	if (!request->body_size)
		return error_reply(HTTP_STATUS_BAD_REQUEST,
				   "the body must be the configuration (JSON)");
	struct json_object *object = parse_body(request, err, sizeof(err));
	if (!object)
		return error_reply(HTTP_STATUS_BAD_REQUEST, err);
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
	return (struct reply){ .status = HTTP_STATUS_NO_CONTENT };
}

static struct reply handle_vm_request(struct api_server *server,
				      const struct route *route,
				      const struct http_request *request)
{
	char err[512] = "";

	if (request->body_size)
		return error_reply(HTTP_STATUS_BAD_REQUEST,
				   "this request takes no body");
	int result = server->ops->request(server->opaque,
					  route->vm_request, err,
					  sizeof(err));
	if (result)
		return op_error_reply(result, err);
	return (struct reply){ .status = HTTP_STATUS_NO_CONTENT };
}

/* {"destination": DIR, "resume": false, "diff": false}: a snapshot of the
 * paused VM; or, for suspend, {"destination": DIR}. */
static struct reply handle_snapshot(struct api_server *server,
				    const struct route *route,
				    const struct http_request *request)
{
	char err[512] = "";
	struct json_object *destination;
	struct control_snapshot snapshot = { 0 };
	bool suspend = route->vm_request == VM_REQUEST_SUSPEND;

	struct json_object *object = request->body_size ?
		parse_body(request, err, sizeof(err)) : NULL;
	if (!object)
		return error_reply(HTTP_STATUS_BAD_REQUEST, request->body_size ? err :
				   "the body must be {\"destination\": DIR}");
	bool valid = json_object_is_type(object, json_type_object) &&
		     json_object_object_get_ex(object, "destination", &destination) &&
		     json_object_is_type(destination, json_type_string) &&
		     json_object_get_string_len(destination) > 0;
	if (valid) {
		json_object_object_foreach(object, key, value) {
			bool flag = !suspend &&
				    json_object_is_type(value, json_type_boolean);
			if (flag && !strcmp(key, "resume"))
				snapshot.resume = json_object_get_boolean(value);
			else if (flag && !strcmp(key, "diff"))
				snapshot.diff = json_object_get_boolean(value);
			else if (strcmp(key, "destination"))
				valid = false;
		}
	}
	if (!valid) {
		json_object_put(object);
		return error_reply(HTTP_STATUS_BAD_REQUEST, suspend ?
				   "the body must be {\"destination\": DIR}" :
				   "the body must be {\"destination\": DIR} with "
				   "optional \"resume\" and \"diff\": true or "
				   "false");
	}
	snapshot.dir = json_object_get_string(destination);
	int result = suspend ?
		server->ops->suspend(server->opaque, snapshot.dir, err,
				     sizeof(err)) :
		server->ops->snapshot(server->opaque, &snapshot, err, sizeof(err));
	json_object_put(object);
	if (result)
		return op_error_reply(result, err);
	return (struct reply){ .status = HTTP_STATUS_NO_CONTENT };
}

/* {"source": DIR, "paused": false, "eager": false,
 * "allow_changed_disks": false, "skip_memory_check": false}: the VM of a
 * snapshot, into an inactive VM (vessel serve). */
static struct reply handle_restore(struct api_server *server,
				   const struct route *route,
				   const struct http_request *request)
{
	char err[512] = "";
	struct json_object *source = NULL;
	struct control_restore restore = { 0 };

	(void)route;
	struct json_object *object = request->body_size ?
		parse_body(request, err, sizeof(err)) : NULL;
	if (!object)
		return error_reply(HTTP_STATUS_BAD_REQUEST, request->body_size ? err :
				   "the body must be {\"source\": DIR}");
	bool valid = json_object_is_type(object, json_type_object);
	if (valid) {
		json_object_object_foreach(object, key, value) {
			bool flag = json_object_is_type(value, json_type_boolean);
			if (!strcmp(key, "source") &&
			    json_object_is_type(value, json_type_string))
				source = value;
			else if (!strcmp(key, "paused") && flag)
				restore.paused = json_object_get_boolean(value);
			else if (!strcmp(key, "eager") && flag)
				restore.eager = json_object_get_boolean(value);
			else if (!strcmp(key, "allow_changed_disks") && flag)
				restore.allow_changed_disks =
					json_object_get_boolean(value);
			else if (!strcmp(key, "skip_memory_check") && flag)
				restore.skip_memory_check =
					json_object_get_boolean(value);
			else
				valid = false;
		}
	}
	if (!valid || !source || !json_object_get_string_len(source)) {
		json_object_put(object);
		return error_reply(HTTP_STATUS_BAD_REQUEST, "the body must be "
				   "{\"source\": DIR} with optional \"paused\", "
				   "\"eager\", \"allow_changed_disks\" and "
				   "\"skip_memory_check\": true or false");
	}
	restore.dir = json_object_get_string(source);
	int result = server->ops->restore(server->opaque, &restore, err,
					  sizeof(err));
	json_object_put(object);
	if (result)
		return op_error_reply(result, err);
	return (struct reply){ .status = HTTP_STATUS_NO_CONTENT };
}

static const struct route routes[] = {
	{ "/api/v1/vm", "GET", handle_describe, VM_REQUEST_COUNT },
	{ "/api/v1/vm/config", "PUT", handle_configure,
	  VM_REQUEST_CONFIGURE },
	{ "/api/v1/vm/start", "PUT", handle_vm_request,
	  VM_REQUEST_START },
	{ "/api/v1/vm/pause", "PUT", handle_vm_request,
	  VM_REQUEST_PAUSE },
	{ "/api/v1/vm/resume", "PUT", handle_vm_request,
	  VM_REQUEST_RESUME },
	{ "/api/v1/vm/power-button", "PUT", handle_vm_request,
	  VM_REQUEST_POWER_BUTTON },
	{ "/api/v1/vm/stop", "PUT", handle_vm_request,
	  VM_REQUEST_STOP },
	{ "/api/v1/vm/snapshot", "PUT", handle_snapshot, VM_REQUEST_COUNT },
	{ "/api/v1/vm/suspend", "PUT", handle_snapshot, VM_REQUEST_SUSPEND },
	{ "/api/v1/vm/restore", "PUT", handle_restore, VM_REQUEST_START },
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

static struct http_response response_of(struct reply reply,
					const char *allow)
{
	return (struct http_response){ .status = reply.status,
				       .body = reply.body,
				       .allow = allow };
}

/* Every request, answered on the event thread. */
static struct http_response on_request(void *opaque,
				       const struct http_request *request)
{
	struct api_server *server = opaque;
	const struct route *path_known;
	char message[160];

	if (request->malformed) {
		snprintf(message, sizeof(message), "malformed HTTP: %s",
			 request->malformed);
		return response_of(error_reply(HTTP_STATUS_BAD_REQUEST, message),
				   NULL);
	}
	if (request->body_too_large) {
		snprintf(message, sizeof(message),
			 "the body is larger than %d bytes", API_MAX_BODY_SIZE);
		return response_of(error_reply(HTTP_STATUS_PAYLOAD_TOO_LARGE,
					       message),
				   NULL);
	}
	const struct route *route =
		find_route(request->path, request->method, &path_known);
	if (!route && path_known) {
		snprintf(message, sizeof(message), "%s %.64s: use %s",
			 request->method, request->path, path_known->method);
		return response_of(error_reply(HTTP_STATUS_METHOD_NOT_ALLOWED,
					       message),
				   path_known->method);
	}
	if (!route) {
		snprintf(message, sizeof(message), "no such resource: %.64s",
			 request->path);
		return response_of(error_reply(HTTP_STATUS_NOT_FOUND, message),
				   NULL);
	}
	return response_of(route->handle(server, route, request), NULL);
}

struct api_server *api_server_create(struct event_loop *loop,
				     const struct api_server_options *options,
				     const struct control_ops *ops,
				     void *opaque, char *err, size_t err_len)
{
	struct api_server *server = malloc(sizeof(*server));
	const struct http_server_options http_options = {
		.socket_path = options->socket_path,
		.socket_mode = options->socket_mode ? options->socket_mode :
						      API_DEFAULT_SOCKET_MODE,
		.idle_timeout_seconds = options->idle_timeout_seconds ?
						options->idle_timeout_seconds :
						API_DEFAULT_IDLE_TIMEOUT,
		.max_body_size = API_MAX_BODY_SIZE,
		.max_connections = API_MAX_CONNECTIONS,
	};
	char reason[256];

	if (!server) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	*server = (struct api_server){ .ops = ops, .opaque = opaque };
	server->http = http_server_create(loop, &http_options, on_request,
					  server, reason, sizeof(reason));
	if (!server->http) {
		snprintf(err, err_len, "API socket %s", reason);
		free(server);
		return NULL;
	}
	return server;
}

void api_server_destroy(struct api_server *server)
{
	if (!server)
		return;
	http_server_destroy(server->http);
	free(server);
}
