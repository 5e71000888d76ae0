/* The control API over a real Unix socket and the real HTTP server, with
 * a fake VM behind struct control_ops that records what it is asked: each
 * endpoint, each error status, requests that are malformed, truncated,
 * oversized or of the wrong method, clients that idle, leave mid-request,
 * pipeline requests or read their answers slowly while others are served,
 * and one client too many. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../vmm/api.h"
#include "../../vmm/api_client.h"
#include "../../vmm/options.h"

#define MAX_CALLS 16

/* The VM: what it was asked, and what it answers next. */
struct fake_vm {
	pthread_mutex_t lock;
	enum vm_request calls[MAX_CALLS];
	unsigned int call_count;
	unsigned int configure_count;
	char configured_kernel[64];
	int next_result;
	const char *next_error;
	struct vm_config *config; /* what describe reports */
	char snapshot_dir[64]; /* the last snapshot's destination */
	bool snapshot_resume;
	bool snapshot_diff; /* or a restore's allow_changed_disks */
	bool restore_skips_memory_check;
	/* When set, describe reports CONTROL_MAX_COUNTER_GROUPS groups of
	 * this name: an answer larger than a socket's buffer. */
	const char *group_name;
	/* When >= 0, the second request looks whether the answer to the first
	 * is already readable there. */
	int client_fd;
	bool first_answer_was_out;
	/* Stop stops the event loop, as vessel's machine does. */
	bool stop_ends_the_loop;
};

static struct fake_vm fake;
static struct event_loop *loop;
static struct api_server *server;
static pthread_t event_thread;
static char socket_path[108];

static void fake_describe(void *opaque, struct control_info *info)
{
	struct fake_vm *vm = opaque;

	info->state = VM_STATE_PAUSED;
	info->uptime_seconds = 12.5;
	info->config = vm->config;
	info->group_count = 2;
	info->groups[0] = (struct control_counters){
		.name = "serial0",
		.count = 1,
		.counters = { { "bytes_out", 42 } },
	};
	info->groups[1] = (struct control_counters){
		.name = "vcpu0",
		.count = 2,
		.counters = { { "exits_io", 7 }, { "exits_mmio", 1ULL << 40 } },
	};
	if (vm->group_name) {
		info->group_count = CONTROL_MAX_COUNTER_GROUPS;
		for (unsigned int i = 0; i < CONTROL_MAX_COUNTER_GROUPS; i++)
			info->groups[i] = (struct control_counters){
				.name = vm->group_name,
			};
	}
}

static int fake_answer(struct fake_vm *vm, char *err, size_t err_len)
{
	int result = vm->next_result;

	if (result)
		snprintf(err, err_len, "%s", vm->next_error);
	vm->next_result = 0;
	return result;
}

static int fake_configure(void *opaque, struct vm_config *config, char *err,
			  size_t err_len)
{
	struct fake_vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	int result = fake_answer(vm, err, err_len);
	if (!result) {
		vm->configure_count++;
		snprintf(vm->configured_kernel, sizeof(vm->configured_kernel),
			 "%s", config->kernel_path);
		vm_config_free(config);
	}
	pthread_mutex_unlock(&vm->lock);
	return result;
}

static int fake_request(void *opaque, enum vm_request request, char *err,
			size_t err_len)
{
	struct fake_vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	if (vm->call_count == 1 && vm->client_fd >= 0) {
		struct pollfd wait = { .fd = vm->client_fd, .events = POLLIN };
		vm->first_answer_was_out = poll(&wait, 1, 0) == 1;
	}
	if (vm->call_count < MAX_CALLS)
		vm->calls[vm->call_count++] = request;
	if (request == VM_REQUEST_STOP && vm->stop_ends_the_loop)
		event_loop_stop(loop);
	int result = fake_answer(vm, err, err_len);
	pthread_mutex_unlock(&vm->lock);
	return result;
}

/* What a snapshot, suspend or restore request carried. */
static int fake_take(void *opaque, const char *dir, bool flag, bool diff,
		     char *err, size_t err_len)
{
	struct fake_vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	int result = fake_answer(vm, err, err_len);
	snprintf(vm->snapshot_dir, sizeof(vm->snapshot_dir), "%s", dir);
	vm->snapshot_resume = flag;
	vm->snapshot_diff = diff;
	pthread_mutex_unlock(&vm->lock);
	return result;
}

static int fake_snapshot(void *opaque, const struct control_snapshot *request,
			 char *err, size_t err_len)
{
	return fake_take(opaque, request->dir, request->resume, request->diff,
			 err, err_len);
}

static int fake_suspend(void *opaque, const char *dir, char *err,
			size_t err_len)
{
	return fake_take(opaque, dir, false, false, err, err_len);
}

static int fake_restore(void *opaque, const struct control_restore *request,
			char *err, size_t err_len)
{
	struct fake_vm *vm = opaque;

	pthread_mutex_lock(&vm->lock);
	vm->restore_skips_memory_check = request->skip_memory_check;
	pthread_mutex_unlock(&vm->lock);
	return fake_take(opaque, request->dir, request->paused,
			 request->allow_changed_disks, err, err_len);
}

static const struct control_ops fake_ops = {
	.describe = fake_describe,
	.configure = fake_configure,
	.request = fake_request,
	.snapshot = fake_snapshot,
	.suspend = fake_suspend,
	.restore = fake_restore,
};

static void fake_will_fail(int result, const char *message)
{
	pthread_mutex_lock(&fake.lock);
	fake.next_result = result;
	fake.next_error = message;
	pthread_mutex_unlock(&fake.lock);
}

static unsigned int calls_made(void)
{
	pthread_mutex_lock(&fake.lock);
	unsigned int count = fake.call_count;
	pthread_mutex_unlock(&fake.lock);
	return count;
}

static void *run_event_loop(void *unused)
{
	(void)unused;
	event_loop_run(loop);
	return NULL;
}

static void start_server(void)
{
	struct api_server_options options = { .idle_timeout_seconds = 1 };
	char err[256];

	/* A server that closes first makes a write fail, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	fake = (struct fake_vm){ .lock = PTHREAD_MUTEX_INITIALIZER,
				 .client_fd = -1 };
	snprintf(socket_path, sizeof(socket_path), "/tmp/vessel-test-api-%d.sock",
		 getpid());
	unlink(socket_path);
	options.socket_path = socket_path;
	loop = event_loop_create();
	cr_assert_not_null(loop);
	server = api_server_create(loop, &options, &fake_ops, &fake, err,
				   sizeof(err));
	cr_assert_not_null(server, "%s", err);
	cr_assert_eq(pthread_create(&event_thread, NULL, run_event_loop, NULL), 0);
}

static void stop_server(void)
{
	event_loop_stop(loop);
	pthread_join(event_thread, NULL);
	api_server_destroy(server);
	event_loop_destroy(loop);
	vm_config_free(fake.config);
}

TestSuite(api, .init = start_server, .fini = stop_server, .timeout = 20);

static int connect_client(void)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	strcpy(address.sun_path, socket_path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)),
		     0, "connect: %s", strerror(errno));
	return fd;
}

static void send_text(int fd, const char *text, size_t size)
{
	cr_assert_eq(write(fd, text, size), (ssize_t)size);
}

struct response {
	int status;
	char text[8192];
	const char *body;
};

/* Reads until the server closes the connection (every request here says
 * Connection: close), at most 5 s. */
static void read_response(int fd, struct response *response)
{
	size_t used = 0;
	struct pollfd wait = { .fd = fd, .events = POLLIN };

	for (;;) {
		cr_assert_eq(poll(&wait, 1, 5000), 1, "no answer within 5 s");
		ssize_t count = read(fd, response->text + used,
				     sizeof(response->text) - 1 - used);
		cr_assert_geq(count, 0);
		if (count == 0)
			break;
		used += (size_t)count;
	}
	response->text[used] = '\0';
	cr_assert_eq(sscanf(response->text, "HTTP/1.1 %d", &response->status), 1,
		     "not an HTTP answer: %s", response->text);
	const char *end = strstr(response->text, "\r\n\r\n");
	response->body = end ? end + 4 : "";
}

static void exchange(const char *request, struct response *response)
{
	int fd = connect_client();

	send_text(fd, request, strlen(request));
	read_response(fd, response);
	close(fd);
}

static void http(const char *method, const char *path, const char *body,
		 struct response *response)
{
	static char request[API_MAX_BODY_SIZE + 512];
	size_t size = body ? strlen(body) : 0;
	int fd = connect_client();

	/* One write: a server that answers on the headers alone may close
	 * before a separate body would be sent. */
	int length = snprintf(request, sizeof(request),
			      "%s %s HTTP/1.1\r\nHost: localhost\r\n"
			      "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			      method, path, size, body ? body : "");
	cr_assert_lt((size_t)length, sizeof(request));
	send_text(fd, request, (size_t)length);
	read_response(fd, response);
	close(fd);
}

/* The error message of a JSON error answer. */
static const char *error_of(const struct response *response)
{
	static char message[512];
	struct json_object *object = json_tokener_parse(response->body);
	struct json_object *error;

	cr_assert_not_null(object, "error body is not JSON: %s", response->body);
	cr_assert(json_object_object_get_ex(object, "error", &error),
		  "no error key: %s", response->body);
	snprintf(message, sizeof(message), "%s", json_object_get_string(error));
	json_object_put(object);
	return message;
}

static void assert_error(const struct response *response, int status,
			 const char *part)
{
	cr_assert_eq(response->status, status, "%s", response->text);
	cr_assert(strstr(error_of(response), part), "'%s' lacks '%s'",
		  error_of(response), part);
}

Test(api, describe_reports_state_config_and_counters)
{
	char *argv[] = { "run", "-k", "/boot/vmlinuz", "--cpus", "2" };
	struct vm_config config;
	struct response response;
	char err[256];

	cr_assert_eq(options_parse_run(5, argv, &config, NULL, err, sizeof(err)), 0);
	fake.config = vm_config_copy(&config);
	vm_config_release(&config);

	http("GET", "/api/v1/vm", NULL, &response);
	cr_assert_eq(response.status, 200, "%s", response.text);
	cr_assert(strstr(response.text, "Content-Type: application/json"));
	struct json_object *object = json_tokener_parse(response.body);
	cr_assert_not_null(object, "%s", response.body);
	struct json_object *value, *counters, *group;
	cr_assert(json_object_object_get_ex(object, "state", &value));
	cr_assert_str_eq(json_object_get_string(value), "paused");
	cr_assert(json_object_object_get_ex(object, "uptime_seconds", &value));
	cr_assert_float_eq(json_object_get_double(value), 12.5, 1e-9);
	cr_assert(json_object_object_get_ex(object, "config", &value));
	struct vm_config *back;
	cr_assert_eq(vm_config_from_json(value, &back, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(back->kernel_path, "/boot/vmlinuz");
	cr_assert_eq(back->cpu_count, 2);
	vm_config_free(back);
	cr_assert(json_object_object_get_ex(object, "counters", &counters));
	cr_assert_eq(json_object_array_length(counters), 2);
	group = json_object_array_get_idx(counters, 1);
	cr_assert(json_object_object_get_ex(group, "name", &value));
	cr_assert_str_eq(json_object_get_string(value), "vcpu0");
	cr_assert(json_object_object_get_ex(group, "values", &value));
	cr_assert(json_object_object_get_ex(value, "exits_mmio", &value));
	cr_assert_eq(json_object_get_uint64(value), 1ULL << 40);
	json_object_put(object);
	cr_assert_eq(calls_made(), 0);
}

Test(api, describe_without_a_configuration)
{
	struct response response;

	http("GET", "/api/v1/vm", NULL, &response);
	cr_assert_eq(response.status, 200);
	cr_assert(strstr(response.body, "\"config\":null"), "%s", response.body);
}

Test(api, each_action_reaches_the_vm)
{
	static const struct {
		const char *path;
		enum vm_request request;
	} actions[] = {
		{ "/api/v1/vm/start", VM_REQUEST_START },
		{ "/api/v1/vm/pause", VM_REQUEST_PAUSE },
		{ "/api/v1/vm/resume", VM_REQUEST_RESUME },
		{ "/api/v1/vm/power-button", VM_REQUEST_POWER_BUTTON },
		{ "/api/v1/vm/stop", VM_REQUEST_STOP },
	};
	struct response response;

	for (unsigned int i = 0; i < 5; i++) {
		http("PUT", actions[i].path, NULL, &response);
		cr_assert_eq(response.status, 204, "%s: %s", actions[i].path,
			     response.text);
		cr_assert_eq(calls_made(), i + 1);
		cr_assert_eq(fake.calls[i], actions[i].request, "%s",
			     actions[i].path);
	}
}

Test(api, configure_hands_over_a_checked_configuration)
{
	struct response response;

	http("PUT", "/api/v1/vm/config",
	     "{\"kernel\": \"/k\", \"memory\": \"1G\", \"cpus\": 2}", &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_eq(fake.configure_count, 1);
	cr_assert_str_eq(fake.configured_kernel, "/k");
}

Test(api, refused_configurations_are_400_and_reach_nothing)
{
	static const struct {
		const char *body;
		const char *message;
	} bad[] = {
		{ "", "configuration" },
		{ "{\"kernel\": \"/k\", \"cpus\": 0}", "cpus" },
		{ "{\"kernel\": \"/k\", \"gpu\": true}", "gpu: unknown key" },
		{ "{\"kernel\": ", "malformed JSON: the body ends early" },
		{ "{kernel: 1}", "malformed JSON" },
		{ "{\"kernel\": \"/k\"} {}", "text after the value" },
		{ "\"/k\"", "expected an object" },
	};
	struct response response;

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http("PUT", "/api/v1/vm/config", bad[i].body, &response);
		assert_error(&response, 400, bad[i].message);
	}
	cr_assert_eq(fake.configure_count, 0);
}

Test(api, op_errors_map_to_statuses)
{
	struct response response;

	fake_will_fail(-EBUSY, "cannot pause: the VM is inactive");
	http("PUT", "/api/v1/vm/pause", NULL, &response);
	assert_error(&response, 409, "cannot pause: the VM is inactive");

	fake_will_fail(-EIO, "the vCPUs did not park within 1 s");
	http("PUT", "/api/v1/vm/pause", NULL, &response);
	assert_error(&response, 500, "did not park");

	fake_will_fail(-EINVAL, "no such thing");
	http("PUT", "/api/v1/vm/stop", NULL, &response);
	assert_error(&response, 400, "no such thing");

	fake_will_fail(-EBUSY, "the VM is running");
	http("PUT", "/api/v1/vm/config", "{\"kernel\": \"/k\"}", &response);
	assert_error(&response, 409, "the VM is running");
	cr_assert_eq(fake.configure_count, 0);

	/* An op that gives no message still gets one. */
	fake_will_fail(-ENOMEM, "");
	http("PUT", "/api/v1/vm/start", NULL, &response);
	assert_error(&response, 500, strerror(ENOMEM));
}

Test(api, unknown_paths_and_wrong_methods)
{
	struct response response;

	http("GET", "/api/v1/vms", NULL, &response);
	assert_error(&response, 404, "/api/v1/vms");
	http("PUT", "/", NULL, &response);
	assert_error(&response, 404, "no such resource");

	http("GET", "/api/v1/vm/pause", NULL, &response);
	assert_error(&response, 405, "use PUT");
	cr_assert(strstr(response.text, "Allow: PUT"), "%s", response.text);
	http("PUT", "/api/v1/vm", "{}", &response);
	assert_error(&response, 405, "use GET");
	http("DELETE", "/api/v1/vm/config", NULL, &response);
	assert_error(&response, 405, "use PUT");
	cr_assert_eq(calls_made(), 0);
}

Test(api, an_action_takes_no_body)
{
	struct response response;

	http("PUT", "/api/v1/vm/pause", "{\"now\": true}", &response);
	assert_error(&response, 400, "no body");
	cr_assert_eq(calls_made(), 0);
}

Test(api, oversized_bodies_are_413)
{
	struct response response;
	int fd = connect_client();

	/* Refused on its headers alone: the body never needs to come. */
	const char *headers =
		"PUT /api/v1/vm/config HTTP/1.1\r\nHost: x\r\n"
		"Connection: close\r\nContent-Length: 65537\r\n\r\n";
	send_text(fd, headers, strlen(headers));
	read_response(fd, &response);
	close(fd);
	assert_error(&response, 413, "larger than 65536");

	/* Chunked, no length up front: read, dropped, refused at its end. */
	static char chunk[8192 + 16];
	fd = connect_client();
	headers = "PUT /api/v1/vm/config HTTP/1.1\r\nHost: x\r\n"
		  "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
	send_text(fd, headers, strlen(headers));
	int length = snprintf(chunk, sizeof(chunk), "2000\r\n");
	memset(chunk + length, ' ', 8192);
	memcpy(chunk + length + 8192, "\r\n", 2);
	for (int i = 0; i < 9; i++)
		send_text(fd, chunk, (size_t)length + 8194);
	send_text(fd, "0\r\n\r\n", 5);
	read_response(fd, &response);
	close(fd);
	assert_error(&response, 413, "larger than");
	cr_assert_eq(fake.configure_count, 0);

	/* Exactly the cap is still read. */
	static char body[API_MAX_BODY_SIZE + 1];
	memset(body, ' ', API_MAX_BODY_SIZE);
	memcpy(body, "{\"kernel\":\"/k\"}", 15);
	http("PUT", "/api/v1/vm/config", body, &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
}

Test(api, malformed_http_is_refused_and_the_server_carries_on)
{
	struct response response;

	exchange("NOT HTTP AT ALL\r\n\r\n", &response);
	cr_assert_eq(response.status, 400, "%s", response.text);
	exchange("PUT /api/v1/vm/pause HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		 "Content-Length: banana\r\n\r\n",
		 &response);
	cr_assert_eq(response.status, 400, "%s", response.text);
	cr_assert_eq(calls_made(), 0);
	http("GET", "/api/v1/vm", NULL, &response);
	cr_assert_eq(response.status, 200);
}

Test(api, an_idle_client_holds_nothing_up)
{
	struct response response;
	int idle = connect_client();
	int half = connect_client();
	char byte;

	/* One says nothing, one stops in the middle of its headers. */
	send_text(half, "PUT /api/v1/vm/pause HTTP/1.1\r\nHo", 33);
	http("PUT", "/api/v1/vm/pause", NULL, &response);
	cr_assert_eq(response.status, 204);
	http("GET", "/api/v1/vm", NULL, &response);
	cr_assert_eq(response.status, 200);
	cr_assert_eq(calls_made(), 1);

	/* The idle timeout (1 s here) then drops both. */
	struct pollfd wait = { .fd = idle, .events = POLLIN };
	cr_assert_eq(poll(&wait, 1, 5000), 1, "the idle client was kept");
	cr_assert_eq(read(idle, &byte, 1), 0);
	wait.fd = half;
	cr_assert_eq(poll(&wait, 1, 5000), 1, "the half request was kept");
	close(idle);
	close(half);
}

Test(api, a_client_gone_mid_request_changes_nothing)
{
	struct response response;
	const char *partial = "PUT /api/v1/vm/config HTTP/1.1\r\nHost: x\r\n"
			      "Content-Length: 40\r\n\r\n{\"kernel\": \"/";

	for (int i = 0; i < 3; i++) {
		int fd = connect_client();
		send_text(fd, partial, strlen(partial));
		close(fd);
	}
	int fd = connect_client();
	send_text(fd, "PUT /api/v1/vm/stop HTTP/1.1\r\n", 30);
	close(fd);

	http("PUT", "/api/v1/vm/resume", NULL, &response);
	cr_assert_eq(response.status, 204);
	cr_assert_eq(fake.configure_count, 0);
	cr_assert_eq(calls_made(), 1);
	cr_assert_eq(fake.calls[0], VM_REQUEST_RESUME);
}

Test(api, several_clients_at_once)
{
	enum { CLIENTS = 8 };
	int fds[CLIENTS];
	const char *request = "GET /api/v1/vm HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\n\r\n";
	size_t half = strlen(request) / 2;

	/* Every client sends half its request before any finishes. */
	for (int i = 0; i < CLIENTS; i++) {
		fds[i] = connect_client();
		send_text(fds[i], request, half);
	}
	for (int i = CLIENTS - 1; i >= 0; i--)
		send_text(fds[i], request + half, strlen(request) - half);
	for (int i = 0; i < CLIENTS; i++) {
		struct response response;

		read_response(fds[i], &response);
		cr_assert_eq(response.status, 200, "client %d", i);
		close(fds[i]);
	}
}

Test(api, keep_alive_serves_requests_in_turn)
{
	int fd = connect_client();
	const char *pause = "PUT /api/v1/vm/pause HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *resume = "PUT /api/v1/vm/resume HTTP/1.1\r\nHost: x\r\n"
			     "Connection: close\r\n\r\n";
	struct response response;

	send_text(fd, pause, strlen(pause));
	send_text(fd, resume, strlen(resume));
	read_response(fd, &response);
	close(fd);
	cr_assert_eq(response.status, 204);
	cr_assert(strstr(response.body, "HTTP/1.1 204"), "one answer: %s",
		  response.text);
	cr_assert_eq(calls_made(), 2);
	cr_assert_eq(fake.calls[1], VM_REQUEST_RESUME);
}

Test(api, a_client_that_expects_100_continue_is_told_to_send)
{
	const char *headers = "PUT /api/v1/vm/config HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\nEXPECT: 100-Continue\r\n"
			      "Content-Length: 15\r\n\r\n";
	const char *go_on = "HTTP/1.1 100 Continue\r\n\r\n";
	char text[64] = "";
	struct response response;
	int fd = connect_client();

	/* The body waits for the 100, as curl's does (for 1 s). */
	send_text(fd, headers, strlen(headers));
	struct pollfd wait = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&wait, 1, 500), 1, "no 100 Continue");
	cr_assert_eq(read(fd, text, strlen(go_on)), (ssize_t)strlen(go_on));
	cr_assert_str_eq(text, go_on);
	send_text(fd, "{\"kernel\":\"/k\"}", 15);
	read_response(fd, &response);
	close(fd);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_str_eq(fake.configured_kernel, "/k");
}

Test(api, a_pipelined_request_waits_for_the_answer_before_it)
{
	int fd = connect_client();
	const char *both = "PUT /api/v1/vm/pause HTTP/1.1\r\nHost: x\r\n\r\n"
			   "PUT /api/v1/vm/resume HTTP/1.1\r\nHost: x\r\n"
			   "Connection: close\r\n\r\n";
	struct response response;

	/* Both in one write: the server has the second before it answers the
	 * first. Nothing is read until both have run. */
	fake.client_fd = fd;
	send_text(fd, both, strlen(both));
	for (int i = 0; i < 500 && calls_made() < 2; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	read_response(fd, &response);
	close(fd);
	cr_assert_eq(calls_made(), 2);
	cr_assert(fake.first_answer_was_out,
		  "the second request ran before the first answer was written");
	const char *second = strstr(response.body, "HTTP/1.1 204");
	cr_assert_not_null(second, "two answers: %s", response.text);
	cr_assert(strstr(second, "Connection: close"), "%s", response.text);
}

/* Everything fd sends until it closes, at most 5 s. */
static char *read_all(int fd, size_t *size)
{
	size_t capacity = 1 << 16, used = 0;
	char *text = malloc(capacity + 1);
	struct pollfd wait = { .fd = fd, .events = POLLIN };

	cr_assert_not_null(text);
	for (;;) {
		cr_assert_eq(poll(&wait, 1, 5000), 1, "no answer within 5 s");
		if (used == capacity) {
			capacity *= 2;
			text = realloc(text, capacity + 1);
			cr_assert_not_null(text);
		}
		ssize_t count = read(fd, text + used, capacity - used);
		cr_assert_geq(count, 0);
		if (count == 0)
			break;
		used += (size_t)count;
	}
	text[used] = '\0';
	*size = used;
	return text;
}

Test(api, an_answer_larger_than_the_socket_waits_for_its_reader)
{
	enum { NAME_SIZE = 16 * 1024 };
	static char name[NAME_SIZE + 1];
	const char *requests =
		"GET /api/v1/vm HTTP/1.1\r\nHost: x\r\n\r\n"
		"PUT /api/v1/vm/pause HTTP/1.1\r\nHost: x\r\n"
		"Connection: close\r\n\r\n";
	struct response response;
	size_t size, length;

	/* A 1 MiB answer, more than a Unix socket holds (208 KiB). */
	memset(name, 'n', NAME_SIZE);
	fake.group_name = name;
	int slow = connect_client();
	send_text(slow, requests, strlen(requests));

	/* While it is not read, others are served, and the request after it
	 * on its connection is not. */
	nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
	http("PUT", "/api/v1/vm/start", NULL, &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_eq(calls_made(), 1);

	char *text = read_all(slow, &size);
	close(slow);
	cr_assert_eq(sscanf(text, "HTTP/1.1 200 OK\r\nContent-Length: %zu",
			    &length),
		     1, "%.200s", text);
	const char *body = strstr(text, "\r\n\r\n") + 4;
	cr_assert_gt(length, CONTROL_MAX_COUNTER_GROUPS * NAME_SIZE);
	cr_assert_geq(size, (size_t)(body - text) + length);
	const char *second = body + length;
	cr_assert(!strncmp(second, "HTTP/1.1 204", 12), "after the body: %.100s",
		  second);
	char saved = *second;
	*(char *)second = '\0';
	struct json_object *object = json_tokener_parse(body);
	cr_assert_not_null(object, "the large answer is not whole JSON");
	json_object_put(object);
	*(char *)second = saved;
	free(text);
	cr_assert_eq(calls_made(), 2);
	cr_assert_eq(fake.calls[1], VM_REQUEST_PAUSE);
}

Test(api, a_client_beyond_the_limit_is_closed_at_once)
{
	enum { LIMIT = 32 };
	int idle[LIMIT];
	struct response response;
	char byte;

	for (int i = 0; i < LIMIT; i++)
		idle[i] = connect_client();
	/* The 33rd is closed on arrival, long before the 1 s idle timeout. */
	int extra = connect_client();
	struct pollfd wait = { .fd = extra, .events = POLLIN };
	cr_assert_eq(poll(&wait, 1, 500), 1, "the 33rd connection was kept");
	cr_assert_eq(read(extra, &byte, 1), 0);
	close(extra);

	/* Once the idle timeout has closed the others, a client is served. */
	for (int i = 0; i < LIMIT; i++) {
		wait.fd = idle[i];
		cr_assert_eq(poll(&wait, 1, 5000), 1, "idle client %d was kept", i);
		cr_assert_eq(read(idle[i], &byte, 1), 0);
		close(idle[i]);
	}
	http("GET", "/api/v1/vm", NULL, &response);
	cr_assert_eq(response.status, 200, "%s", response.text);
}

Test(api, the_socket_is_the_owners_only)
{
	struct stat info;

	cr_assert_eq(stat(socket_path, &info), 0);
	cr_assert(S_ISSOCK(info.st_mode));
	cr_assert_eq(info.st_mode & 0777, 0600, "mode %o", info.st_mode & 0777);
}

/* What a client subcommand printed on stream (redirected). */
static void read_redirected(FILE *stream, char *text, size_t size)
{
	fflush(stdout);
	fflush(stderr);
	size_t used = fread(text, 1, size - 1, stream);
	text[used] = '\0';
}

Test(api, the_client_reads_the_answers)
{
	struct api_answer answer;
	char err[256];

	cr_assert_eq(api_client_request(socket_path, "GET", "/api/v1/vm", NULL,
					API_CLIENT_TIMEOUT, &answer, err,
					sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(answer.status, 200);
	cr_assert(strstr(answer.body, "\"state\":\"paused\""), "%s",
		  answer.body);
	api_answer_release(&answer);

	cr_assert_eq(api_client_request(socket_path, "PUT", "/api/v1/vm/config",
					"{\"kernel\": \"/vmlinuz\"}",
					API_CLIENT_TIMEOUT, &answer, err,
					sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(answer.status, 204);
	cr_assert_str_eq(answer.body, "");
	api_answer_release(&answer);
	cr_assert_str_eq(fake.configured_kernel, "/vmlinuz");
}

Test(api, status_prints_a_table)
{
	char *argv[] = { "status", "--api-sock", socket_path };
	char text[4096];

	cr_redirect_stdout();
	cr_assert_eq(api_client_command(3, argv), 0);
	read_redirected(cr_get_redirected_stdout(), text, sizeof(text));
	cr_assert(strstr(text, "state:    paused\n"), "%s", text);
	cr_assert(strstr(text, "uptime:   12.500 s\n"), "%s", text);
	cr_assert(strstr(text, "vcpu0"), "%s", text);
	cr_assert(strstr(text, "exits_mmio"), "%s", text);
	cr_assert(strstr(text, "1099511627776"), "%s", text);
}

Test(api, status_json_is_the_servers_answer)
{
	char *argv[] = { "status", "--json", "--api-sock", socket_path };
	char text[4096];

	cr_redirect_stdout();
	cr_assert_eq(api_client_command(4, argv), 0);
	read_redirected(cr_get_redirected_stdout(), text, sizeof(text));
	struct json_object *object = json_tokener_parse(text);
	cr_assert_not_null(object, "%s", text);
	json_object_put(object);
}

Test(api, a_refused_action_exits_1_with_the_servers_error)
{
	char *argv[] = { "resume", "--api-sock", socket_path };
	char text[512];

	cr_redirect_stderr();
	fake_will_fail(-EBUSY, "resume: the VM is not paused");
	cr_assert_eq(api_client_command(3, argv), 1);
	read_redirected(cr_get_redirected_stderr(), text, sizeof(text));
	cr_assert_str_eq(text, "vessel resume: resume: the VM is not paused\n");
	cr_assert_eq(fake.calls[0], VM_REQUEST_RESUME);

	char *pause[] = { "pause", "--api-sock", socket_path };
	cr_assert_eq(api_client_command(3, pause), 0);
	cr_assert_eq(calls_made(), 2);
}

Test(api, client_command_lines)
{
	char *missing[] = { "pause" };
	char *unknown[] = { "pause", "--api-sock", socket_path, "--force" };
	char *extra[] = { "stop", "--api-sock", socket_path, "now" };
	char *absent[] = { "stop", "--api-sock", "/nonexistent/vessel.sock" };

	cr_redirect_stderr();
	cr_assert_eq(api_client_command(1, missing), 2);
	cr_assert_eq(api_client_command(4, unknown), 2);
	cr_assert_eq(api_client_command(4, extra), 2);
	cr_assert_eq(api_client_command(3, absent), 1);
	cr_assert_eq(calls_made(), 0);
}

/* Without the suite's server: the socket file's cases. */
static struct api_server *create_at(const char *path, mode_t mode, char *err,
				    size_t err_len)
{
	struct api_server_options options = { .socket_path = path,
					      .socket_mode = mode };

	return api_server_create(loop, &options, &fake_ops, &fake, err, err_len);
}

Test(api_socket, stale_live_and_foreign_files)
{
	char path[108], err[256];
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	struct stat info;

	loop = event_loop_create();
	snprintf(path, sizeof(path), "/tmp/vessel-test-api-socket-%d", getpid());
	unlink(path);

	/* A socket left behind by a server that is gone is replaced. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(address.sun_path, path);
	cr_assert_eq(bind(stale, (struct sockaddr *)&address, sizeof(address)), 0);
	close(stale);
	struct api_server *first = create_at(path, 0660, err, sizeof(err));
	cr_assert_not_null(first, "%s", err);
	cr_assert_eq(stat(path, &info), 0);
	cr_assert_eq(info.st_mode & 0777, 0660, "mode %o", info.st_mode & 0777);

	/* One that a server answers on is not taken over. */
	cr_assert_null(create_at(path, 0, err, sizeof(err)));
	cr_assert(strstr(err, "another server"), "%s", err);
	api_server_destroy(first);
	cr_assert_eq(stat(path, &info), -1, "the socket file stayed");

	/* A file that is not a socket is left alone. */
	FILE *file = fopen(path, "w");
	cr_assert_not_null(file);
	fclose(file);
	cr_assert_null(create_at(path, 0, err, sizeof(err)));
	cr_assert(strstr(err, "not a socket"), "%s", err);
	unlink(path);

	char long_path[200];
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	cr_assert_null(create_at(long_path, 0, err, sizeof(err)));
	cr_assert(strstr(err, "longer than"), "%s", err);
	event_loop_destroy(loop);
}

Test(api, snapshot_takes_a_destination_and_resume)
{
	struct response response;

	http("PUT", "/api/v1/vm/snapshot", "{\"destination\": \"/tmp/s1\"}",
	     &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_str_eq(fake.snapshot_dir, "/tmp/s1");
	cr_assert(!fake.snapshot_resume);
	http("PUT", "/api/v1/vm/snapshot",
	     "{\"destination\": \"/tmp/s2\", \"resume\": true}", &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert(fake.snapshot_resume);
	cr_assert(!fake.snapshot_diff);
	http("PUT", "/api/v1/vm/snapshot",
	     "{\"destination\": \"/tmp/s2d\", \"diff\": true}", &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert(fake.snapshot_diff, "diff reaches the VM");
	cr_assert(!fake.snapshot_resume);
	fake_will_fail(-EBUSY, "cannot snapshot: the VM is active");
	http("PUT", "/api/v1/vm/snapshot", "{\"destination\": \"/tmp/s3\"}",
	     &response);
	cr_assert_eq(response.status, 409, "%s", response.text);
	cr_assert(strstr(response.body, "the VM is active"));
	const char *bad[] = { "", "{}", "{\"destination\": 3}",
			      "{\"destination\": \"\"}",
			      "{\"destination\": \"/tmp/x\", \"resume\": 1}",
			      "{\"destination\": \"/tmp/x\", \"diff\": \"yes\"}",
			      "{\"destination\": \"/tmp/x\", \"other\": 1}",
			      "[]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http("PUT", "/api/v1/vm/snapshot", bad[i][0] ? bad[i] : NULL,
		     &response);
		cr_assert_eq(response.status, 400, "%s: %s", bad[i], response.text);
	}
}

Test(api, suspend_takes_a_destination_only)
{
	struct response response;

	http("PUT", "/api/v1/vm/suspend", "{\"destination\": \"/tmp/s4\"}",
	     &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_str_eq(fake.snapshot_dir, "/tmp/s4");
	http("PUT", "/api/v1/vm/suspend",
	     "{\"destination\": \"/tmp/s5\", \"resume\": true}", &response);
	cr_assert_eq(response.status, 400, "%s", response.text);
	cr_assert_str_eq(fake.snapshot_dir, "/tmp/s4");
}

Test(api, restore_takes_a_source_and_its_flags)
{
	struct response response;

	http("PUT", "/api/v1/vm/restore",
	     "{\"source\": \"/tmp/s6\", \"paused\": true, \"eager\": false}",
	     &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert_str_eq(fake.snapshot_dir, "/tmp/s6");
	cr_assert(fake.snapshot_resume, "paused reaches the VM");
	cr_assert(!fake.snapshot_diff);
	http("PUT", "/api/v1/vm/restore",
	     "{\"source\": \"/tmp/s7\", \"allow_changed_disks\": true}",
	     &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert(fake.snapshot_diff, "allow_changed_disks reaches the VM");
	cr_assert(!fake.restore_skips_memory_check);
	http("PUT", "/api/v1/vm/restore",
	     "{\"source\": \"/tmp/s8\", \"skip_memory_check\": true}",
	     &response);
	cr_assert_eq(response.status, 204, "%s", response.text);
	cr_assert(fake.restore_skips_memory_check,
		  "skip_memory_check reaches the VM");
	const char *bad[] = { "{}", "{\"source\": 1}", "{\"source\": \"\"}",
			      "{\"source\": \"/x\", \"eager\": 1}",
			      "{\"source\": \"/x\", \"resume\": true}",
			      "{\"source\": \"/x\", \"allow_changed_disks\": 1}",
			      "{\"source\": \"/x\", \"skip_memory_check\": \"yes\"}" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		http("PUT", "/api/v1/vm/restore", bad[i], &response);
		cr_assert_eq(response.status, 400, "%s: %s", bad[i], response.text);
	}
}

Test(api_socket, the_answer_to_stop_is_written_before_the_loop_ends)
{
	char path[108], err[256];
	const char *request = "PUT /api/v1/vm/stop HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\n\r\n";
	struct response response;

	/* The loop runs here, and ends with the request's handler, as
	 * vessel's does on a stop: the answer must already be written. */
	fake = (struct fake_vm){ .lock = PTHREAD_MUTEX_INITIALIZER,
				 .client_fd = -1,
				 .stop_ends_the_loop = true };
	loop = event_loop_create();
	snprintf(socket_path, sizeof(socket_path),
		 "/tmp/vessel-test-api-stop-%d", getpid());
	snprintf(path, sizeof(path), "%s", socket_path);
	unlink(path);
	struct api_server *stopping = create_at(path, 0, err, sizeof(err));
	cr_assert_not_null(stopping, "%s", err);
	int fd = connect_client();
	send_text(fd, request, strlen(request));
	cr_assert_eq(event_loop_run(loop), 0);
	cr_assert_eq(calls_made(), 1);
	struct pollfd wait = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&wait, 1, 0), 1, "no answer when the loop ended");
	api_server_destroy(stopping);
	read_response(fd, &response);
	close(fd);
	cr_assert_eq(response.status, 204, "%s", response.text);
	event_loop_destroy(loop);
}

/* A client that waits for the socket file and connects the moment it
 * appears is never refused: the file only appears once the server
 * listens, and is gone before it stops listening. A watcher thread spins
 * on the path while the server is made and destroyed again and again,
 * which catches the gap between bind and listen, or between close and
 * unlink. A refusal counts when the file it was refused at is still
 * there afterwards: one that is gone was a destroy's unlink and close
 * coming between the connect's lookup and its check. */
struct socket_watch {
	const char *path;
	atomic_bool done;
	unsigned int refused, connected;
};

static void *watch_socket(void *opaque)
{
	struct socket_watch *watch = opaque;
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	bool seen = false;
	struct stat info;

	strcpy(address.sun_path, watch->path);
	while (!atomic_load(&watch->done)) {
		bool present = stat(watch->path, &info) == 0;

		if (present && !seen) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

			struct stat after;

			if (connect(fd, (struct sockaddr *)&address,
				    sizeof(address)) == 0)
				watch->connected++;
			else if (errno == ECONNREFUSED &&
				 stat(watch->path, &after) == 0 &&
				 after.st_ino == info.st_ino)
				watch->refused++;
			close(fd);
		}
		seen = present;
	}
	return NULL;
}

Test(api_socket, the_file_appears_only_once_the_server_listens)
{
	char path[108], err[256];
	struct socket_watch watch = { .path = path };
	pthread_t watcher;

	loop = event_loop_create();
	snprintf(path, sizeof(path), "/tmp/vessel-test-api-listen-%d", getpid());
	unlink(path);
	cr_assert_eq(pthread_create(&watcher, NULL, watch_socket, &watch), 0);
	for (int round = 0; round < 1000; round++) {
		struct api_server *server = create_at(path, 0600, err,
						      sizeof(err));

		cr_assert_not_null(server, "%s", err);
		usleep(100); /* time for the watcher to see the file */
		api_server_destroy(server);
		usleep(100);
	}
	atomic_store(&watch.done, true);
	pthread_join(watcher, NULL);
	cr_assert_eq(watch.refused, 0, "refused %u times, connected %u times",
		     watch.refused, watch.connected);
	cr_assert_gt(watch.connected, 0);

	char staging[160];
	snprintf(staging, sizeof(staging), "%s.%d.staging", path, getpid());
	cr_assert_neq(access(staging, F_OK), 0, "%s stayed behind", staging);
	event_loop_destroy(loop);
}
