/*
 * Networking through virtio-net: the default guest gets its address from
 * slirp's DHCP server, resolves a name through slirp's DNS proxy, configures
 * IPv6 from slirp's router advertisements, serves the host through a port
 * forward and fetches a file from a server on the host through the gateway
 * address; restricted mode keeps the guest in; and a TAP device in a network
 * namespace the test makes carries traffic both ways. Runs inside the
 * emulated AMD-V host (docs/platform.md), where the only network is loopback and
 * /etc/resolv.conf names 127.0.0.1 (tools/emuhost).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define BOOT_TIMEOUT 300 /* seconds: TCG-emulated host, nested guest */
#define COMMAND_TIMEOUT 120

#define HOSTFWD_PORT 18080
#define HOST_SERVER_PORT 18081
#define TAP_SERVER_PORT 18082
#define GUEST_SINK_PORT 5000
/* Enough full-speed TCP for the rings to run dry and refill many times
 * (the receive ring of 256 buffers dozens of times). Not more: under
 * sustained interrupt load the emulated host now and then crashes its
 * guest's kernel, QEMU's as much as vessel's (tools/emuhost/README.md). */
#define BULK_BYTES 32000000
/* A transfer that makes no progress for this long has failed. */
#define SEND_TIMEOUT 60

/* The test's guest: a global, so that the suite's fini ends it even when
 * an assertion ends the test early (its hostfwd ports must be free for
 * the next test). */
static struct guest_session session = { .pid = -1 };

static void end_guest(void)
{
	if (session.pid > 0)
		guest_session_close(&session);
	session.pid = -1;
}

TestSuite(net, .fini = end_guest);

/* The default guest (busybox initramfs, which has udhcpc, nslookup, wget,
 * httpd and ping) with command-line tail and extra vessel options. */
static void start(struct guest_session *session, const char *net,
		  const char *cmdline_tail)
{
	static char kernel[4096], initrd[4096], net_option[512], cmdline[1024];

	snprintf(kernel, sizeof(kernel), "%s", guest_artifact("vmlinuz"));
	snprintf(initrd, sizeof(initrd), "%s", guest_artifact("initramfs.cpio.gz"));
	cr_assert(access(kernel, R_OK) == 0 && access(initrd, R_OK) == 0,
		  "no default guest in $VESSEL_GUEST_DIR: run guests/build-default");
	snprintf(net_option, sizeof(net_option), "%s", net);
	snprintf(cmdline, sizeof(cmdline), "console=ttyS0 reboot=k panic=1 %s",
		 cmdline_tail);
	/* A guest that crashes ends vessel, and the test, at once. */
	char *argv[] = { "vessel", "run", "--kernel", kernel, "--initrd", initrd,
			 "--net", net_option, "--cmdline", cmdline, "--no-reboot",
			 NULL };
	cr_assert_eq(guest_session_start(session, argv), 0,
		     "cannot start vessel ($VESSEL_BINARY)");
}

/* init configures eth0 before it says userspace is up. */
static void expect_address_then_shell(struct guest_session *session,
				      const char *address_line)
{
	cr_assert(guest_session_expect(session, address_line, BOOT_TIMEOUT),
		  "no '%s'", address_line);
	cr_assert(guest_session_expect(session, "vessel-guest: userspace up",
				       COMMAND_TIMEOUT), "guest did not reach userspace");
}

static void type(struct guest_session *session, const char *command,
		 const char *expected)
{
	cr_assert_eq(guest_session_send(session, command), 0);
	cr_assert(guest_session_expect(session, expected, COMMAND_TIMEOUT),
		  "no '%s' after '%s'", expected, command);
}

static void power_off(struct guest_session *session)
{
	cr_assert_eq(guest_session_send(session, "poweroff -f\n"), 0);
	cr_assert_eq(guest_session_wait(session, COMMAND_TIMEOUT), 0,
		     "poweroff must end vessel with status 0");
	end_guest();
}

/* A listening TCP socket on address:port. */
static int listen_on(const char *address, unsigned int port)
{
	struct sockaddr_in where = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	cr_assert(fd >= 0);
	cr_assert_eq(inet_pton(AF_INET, address, &where.sin_addr), 1);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&where, sizeof(where)), 0,
		     "bind %s:%u: %s", address, port, strerror(errno));
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* A child process that answers every HTTP request on listener with body:
 * the server on the host that the guest fetches from. */
static pid_t serve_http(int listener, const char *body)
{
	pid_t pid = fork_test_helper();

	cr_assert(pid >= 0);

	if (pid)
		return pid;
	for (;;) {
		char request[1024], header[256];
		int connection = accept(listener, NULL, NULL);

		if (connection < 0)
			continue;
		/* The request line and headers fit one read here. */
		if (read(connection, request, sizeof(request)) > 0) {
			int length = snprintf(header, sizeof(header),
					      "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\n",
					      strlen(body));
			if (write(connection, header, length) != length ||
			    write(connection, body, strlen(body)) < 0) {
				/* The guest went away; serve the next one. */
			}
		}
		close(connection);
	}
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* GET http://address:port/path from this side, retrying while nothing
 * answers yet (the guest's server may still be starting): the body's
 * length, its bytes in body (size bytes at most, NUL-terminated). */
static size_t http_get(const char *address, unsigned int port, const char *path,
		       char *body, size_t size)
{
	struct sockaddr_in where = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval patience = { .tv_sec = SEND_TIMEOUT };
	size_t capacity = size + 4096, used = 0;
	char *response = malloc(capacity);
	char request[256];

	cr_assert_not_null(response);
	cr_assert_eq(inet_pton(AF_INET, address, &where.sin_addr), 1);
	int request_len = snprintf(request, sizeof(request),
				   "GET %s HTTP/1.0\r\n\r\n", path);
	for (int attempt = 0; attempt < 60 && !used; attempt++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ssize_t got;

		cr_assert(fd >= 0);
		/* A guest that died leaves the connection open on this side. */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
		if (connect(fd, (struct sockaddr *)&where, sizeof(where)) == 0 &&
		    write(fd, request, request_len) == request_len) {
			while (used < capacity - 1 &&
			       (got = read(fd, response + used,
					   capacity - 1 - used)) > 0)
				used += (size_t)got;
		}
		close(fd);
		if (!used)
			sleep(1);
	}
	response[used] = '\0';
	const char *start = memmem(response, used, "\r\n\r\n", 4);
	size_t length = 0;
	if (start) {
		start += 4;
		length = used - (size_t)(start - response);
		if (length > size - 1)
			length = size - 1;
		memcpy(body, start, length);
	}
	body[length] = '\0';
	free(response);
	return length;
}

/* dnsmasq on 127.0.0.1:53 (the emulated host's resolver) answering one
 * name; killed at the end of the test. */
static pid_t start_dns_server(void)
{
	pid_t pid = fork_test_helper();

	cr_assert(pid >= 0);

	if (!pid) {
		execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", "--no-resolv",
		       "--no-hosts", "--listen-address=127.0.0.1",
		       "--bind-interfaces", "--port=53", "--user=root",
		       "--pid-file=", "--address=/vessel.test/10.9.8.7", NULL);
		_exit(127);
	}
	/* Until it answers, slirp's forwarded queries would go unanswered. */
	for (int attempt = 0; attempt < 50; attempt++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in where = { .sin_family = AF_INET,
					     .sin_port = htons(53),
					     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int bound = bind(fd, (struct sockaddr *)&where, sizeof(where));

		close(fd);
		if (bound && errno == EADDRINUSE)
			return pid;
		usleep(100 * 1000);
	}
	cr_assert_fail("dnsmasq did not come up on 127.0.0.1:53");
	return -1;
}

Test(net, slirp_dhcp_dns_ipv6_hostfwd_and_host_server)
{
	char body[256], command[512];
	pid_t dns = start_dns_server();
	int listener = listen_on("127.0.0.1", HOST_SERVER_PORT);
	pid_t server = serve_http(listener, "vessel-host-file-b1e2\n");

	close(listener);
	snprintf(command, sizeof(command), "user,hostfwd=tcp:127.0.0.1:%d-:80",
		 HOSTFWD_PORT);
	start(&session, command, "vessel.ip=dhcp");
	expect_address_then_shell(&session,
				  "vessel-guest: eth0 has 10.0.2.15/24 (DHCP from 10.0.2.2)");
	type(&session, "cat /etc/resolv.conf\n", "nameserver 10.0.2.3");
	/* slirp's DNS proxy forwards to the host's resolver: dnsmasq. */
	type(&session, "nslookup vessel.test | grep -q 10.9.8.7 && echo dns=o''k\n",
	     "dns=ok");
	/* The guest reaches a server on the host through the gateway. */
	snprintf(command, sizeof(command),
		 "wget -q -O - http://10.0.2.2:%d/ | sed s/^/got=/\n",
		 HOST_SERVER_PORT);
	type(&session, command, "got=vessel-host-file-b1e2");
	/* SLAAC from slirp's router advertisements: an fd00::/64 address;
	 * then slirp answers ping on its IPv6 address. */
	type(&session,
	     "for i in $(seq 30); do ip -6 addr show dev eth0 | grep -q 'inet6 fd00:' && break; sleep 1; done; ping -6 -c 1 -W 5 fd00::2 >/dev/null && echo v6=o''k\n",
	     "v6=ok");
	/* The host reaches a server in the guest through hostfwd. */
	type(&session,
	     "mkdir -p /tmp/www && echo vessel-guest-page-7c3a > /tmp/www/index.html && httpd -p 80 -h /tmp/www && echo httpd=u''p\n",
	     "httpd=up");
	http_get("127.0.0.1", HOSTFWD_PORT, "/", body, sizeof(body));
	cr_assert_str_eq(body, "vessel-guest-page-7c3a\n");
	power_off(&session);
	stop_child(server);
	stop_child(dns);
}

Test(net, slirp_restricted_keeps_the_guest_in)
{
	char body[256], command[512];
	int listener = listen_on("127.0.0.1", HOST_SERVER_PORT);
	pid_t server = serve_http(listener, "must-not-reach-the-guest\n");

	close(listener);
	snprintf(command, sizeof(command),
		 "user,restrict=on,hostfwd=tcp:127.0.0.1:%d-:80", HOSTFWD_PORT);
	start(&session, command, "vessel.ip=dhcp");
	expect_address_then_shell(&session, "vessel-guest: eth0 has 10.0.2.15/24");
	snprintf(command, sizeof(command),
		 "wget -q -T 5 -O - http://10.0.2.2:%d/ || echo fetch=refu''sed\n",
		 HOST_SERVER_PORT);
	type(&session, command, "fetch=refused");
	/* Forwards still reach the guest. */
	type(&session,
	     "mkdir -p /tmp/www && echo vessel-restricted-page > /tmp/www/index.html && httpd -p 80 -h /tmp/www && echo httpd=u''p\n",
	     "httpd=up");
	http_get("127.0.0.1", HOSTFWD_PORT, "/", body, sizeof(body));
	cr_assert_str_eq(body, "vessel-restricted-page\n");
	power_off(&session);
	stop_child(server);
}

/* Runs a shell command of the test's own; fails the test if it fails. */
static void host_command(const char *command)
{
	cr_assert_eq(system(command), 0, "'%s' failed", command);
}

/* A TAP device vtap0 with 192.168.77.1/24 in a network namespace of the
 * test's own process: nothing touches the emulated host's own network. */
static void make_tap_in_a_namespace(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	host_command("ip link set lo up && ip tuntap add dev vtap0 mode tap && "
		     "ip addr add 192.168.77.1/24 dev vtap0 && ip link set vtap0 up");
}

static void start_on_tap(void)
{
	start(&session, "tap,ifname=vtap0", "vessel.ip=192.168.77.2/24");
	expect_address_then_shell(&session, "vessel-guest: eth0 has 192.168.77.2/24");
}

Test(net, tap_in_a_network_namespace)
{
	char command[512];

	make_tap_in_a_namespace();
	int listener = listen_on("192.168.77.1", TAP_SERVER_PORT);
	pid_t server = serve_http(listener, "vessel-over-tap-5d9f\n");

	close(listener);
	start_on_tap();
	type(&session, "ping -c 2 -W 5 192.168.77.1 >/dev/null && echo ping=o''k\n",
	     "ping=ok");
	snprintf(command, sizeof(command),
		 "wget -q -O - http://192.168.77.1:%d/ | sed s/^/got=/\n",
		 TAP_SERVER_PORT);
	type(&session, command, "got=vessel-over-tap-5d9f");
	/* 2 MB from the guest: full-size frames (and TSO) toward the host. */
	type(&session,
	     "mkdir -p /tmp/www && head -c 2000000 /dev/urandom > /tmp/www/big && md5sum /tmp/www/big | sed s/^/md'5'=/ && httpd -p 80 -h /tmp/www\n",
	     "md5=");
	/* The line is "md5=HASH  /tmp/www/big". */
	cr_assert(guest_session_expect(&session, "  /tmp/www/big", COMMAND_TIMEOUT));
	const char *hash_end = session.output + session.search_from -
			       strlen("  /tmp/www/big");
	char guest_sum[33];
	snprintf(guest_sum, sizeof(guest_sum), "%.32s", hash_end - 32);
	char *big = malloc(2000001);
	cr_assert_not_null(big);
	cr_assert_eq(http_get("192.168.77.2", 80, "/big", big, 2000001), 2000000);
	FILE *file = fopen("/tmp/vessel-tap-big", "w");
	cr_assert_not_null(file);
	cr_assert_eq(fwrite(big, 1, 2000000, file), 2000000);
	fclose(file);
	free(big);
	snprintf(command, sizeof(command),
		 "echo '%s  /tmp/vessel-tap-big' | md5sum -c --status", guest_sum);
	host_command(command);
	power_off(&session);
	stop_child(server);
}

/* BULK_BYTES from a fresh guest to the host (its httpd sends a file, with
 * sendfile: the guest's user space stays out of the way), then from the
 * host to it: whether both arrived whole. */
static bool bulk_both_ways(void)
{
	char command[512];
	size_t got;
	char *bulk = malloc(BULK_BYTES + 1);

	cr_assert_not_null(bulk);
	start_on_tap();
	snprintf(command, sizeof(command),
		 "mkdir -p /tmp/www && head -c %d /dev/zero > /tmp/www/bulk && httpd -p 80 -h /tmp/www && echo httpd=u''p\n",
		 BULK_BYTES);
	cr_assert_eq(guest_session_send(&session, command), 0);
	if (!guest_session_expect(&session, "httpd=up", COMMAND_TIMEOUT)) {
		free(bulk);
		return false;
	}
	got = http_get("192.168.77.2", 80, "/bulk", bulk, BULK_BYTES + 1);
	free(bulk);
	if (got != BULK_BYTES) {
		fprintf(stderr, "the host got %zu of %d bytes from the guest\n",
			got, BULK_BYTES);
		return false;
	}
	snprintf(command, sizeof(command),
		 "nc -l -p %d | wc -c | sed s/^/recei''ved=/ &\n", GUEST_SINK_PORT);
	cr_assert_eq(guest_session_send(&session, command), 0);
	snprintf(command, sizeof(command), "received=%d", BULK_BYTES);
	return tcp_send_zeros("192.168.77.2", GUEST_SINK_PORT, BULK_BYTES) &&
	       guest_session_expect(&session, command, COMMAND_TIMEOUT);
}

/* Bulk TCP both ways: the guest's rings empty and refill while frames keep
 * coming, and no kick may be lost (a stall would time out). */
Test(net, tap_bulk_tcp_both_ways)
{
	make_tap_in_a_namespace();
	cr_assert(bulk_both_ways(), "bulk TCP over TAP did not arrive whole");
	power_off(&session);
}
