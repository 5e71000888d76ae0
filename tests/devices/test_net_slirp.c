/*
 * The "user" backend with the real libslirp: frames a guest would send,
 * built by hand, go in through transmit(); what slirp answers is recorded
 * by a fake device. A fake device context keeps the poll source, and the
 * test runs the event loop's prepare, poll(2), dispatch rounds itself.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "vmm/state_fdt.h"
#include "devices/log_limit.h"
#include "devices/net_slirp.h"

#define GUEST_IP "10.0.2.15"
#define GATEWAY_IP "10.0.2.2"
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define RECORDED_FRAMES 128
#define RECORDED_FRAME_BYTES 2048
#define ROUND_TIMEOUT_MS 20
#define MAX_ROUNDS 100

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
/* What frames carry both ways on a backend without offloads. */
static const struct virtio_net_hdr no_offload;

/* The fake device context: the one poll source the backend adds. */
static const struct poll_source *source;
static void *source_opaque;
static unsigned int sources_removed;

static int record_add_poll_source(void *context_opaque,
				  const struct poll_source *added, void *opaque)
{
	(void)context_opaque;
	cr_assert_null(source);
	source = added;
	source_opaque = opaque;
	return 0;
}

static int record_remove_poll_source(void *context_opaque, void *opaque)
{
	(void)context_opaque;
	cr_assert_eq(opaque, source_opaque);
	source = NULL;
	sources_removed++;
	return 0;
}

static const struct device_context context = {
	.add_poll_source = record_add_poll_source,
	.remove_poll_source = record_remove_poll_source,
};

/* The fake device: records frames while it has room for them. */
static struct {
	unsigned int count;
	size_t lengths[RECORDED_FRAMES];
	uint8_t frames[RECORDED_FRAMES][RECORDED_FRAME_BYTES];
	int room; /* frames it takes before saying -ENOBUFS; -1: no limit */
	unsigned int refused;
	bool in_burst;
	unsigned int bursts;
	bool frame_in_burst[RECORDED_FRAMES];
} received = { .room = -1 };

static int record_receive(void *opaque, const struct virtio_net_hdr *hdr,
			  const struct iovec *frame, unsigned int count)
{
	size_t length = 0;

	cr_assert_eq(opaque, &received);
	cr_assert(!memcmp(hdr, &no_offload, sizeof(*hdr)));
	if (received.room == 0) {
		received.refused++;
		return -ENOBUFS;
	}
	if (received.room > 0)
		received.room--;
	cr_assert_lt(received.count, RECORDED_FRAMES);
	for (unsigned int i = 0; i < count; i++) {
		cr_assert_leq(length + frame[i].iov_len, RECORDED_FRAME_BYTES);
		memcpy(received.frames[received.count] + length,
		       frame[i].iov_base, frame[i].iov_len);
		length += frame[i].iov_len;
	}
	received.frame_in_burst[received.count] = received.in_burst;
	received.lengths[received.count++] = length;
	return 0;
}

static void record_burst_begin(void *opaque)
{
	cr_assert_eq(opaque, &received);
	cr_assert_not(received.in_burst, "bursts do not nest");
	received.in_burst = true;
}

static void record_burst_end(void *opaque)
{
	cr_assert_eq(opaque, &received);
	cr_assert(received.in_burst, "a burst ended that never began");
	received.in_burst = false;
	received.bursts++;
}

static const struct net_receiver receiver = {
	.receive = record_receive,
	.burst_begin = record_burst_begin,
	.burst_end = record_burst_end,
	.opaque = &received,
};

static struct net_backend *backend;

static void teardown(void)
{
	if (backend)
		backend->ops->destroy(backend);
	backend = NULL;
}

TestSuite(net_slirp, .fini = teardown);

/* A backend attached to the recorder and ready to deliver. */
static void create_ready(const struct net_slirp_options *options)
{
	char err[256] = "";

	backend = net_slirp_create(&context, options, err, sizeof(err));
	cr_assert_not_null(backend, "%s", err);
	cr_assert_not_null(source);
	backend->ops->attach(backend, &receiver);
	backend->ops->receive_ready(backend);
}

/* One round of the event loop, waiting at most timeout_ms. */
static void run_round(struct pollfd *fds, unsigned int capacity, int timeout_ms)
{
	struct poll_set set = { .fds = fds, .capacity = capacity };

	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert_geq(poll(fds, set.count, timeout_ms), 0);
	source->dispatch(source_opaque, &set);
}

/* --- frames --------------------------------------------------------------- */

static uint16_t get16(const uint8_t *bytes)
{
	return (uint16_t)(bytes[0] << 8 | bytes[1]);
}

static void put16(uint8_t *bytes, uint16_t value)
{
	bytes[0] = (uint8_t)(value >> 8);
	bytes[1] = (uint8_t)value;
}

static void put_ip(uint8_t *bytes, const char *address)
{
	cr_assert_eq(inet_pton(AF_INET, address, bytes), 1);
}

static bool is_ip(const uint8_t *bytes, const char *address)
{
	uint8_t expected[4];

	put_ip(expected, address);
	return !memcmp(bytes, expected, 4);
}

static void put_ethernet(uint8_t *frame, const uint8_t *destination,
			 uint16_t type)
{
	memcpy(frame, destination, 6);
	memcpy(frame + 6, guest_mac, 6);
	put16(frame + 12, type);
}

/* RFC 791 header checksum over a 20-byte header. */
static void put_ipv4_checksum(uint8_t *header)
{
	uint32_t sum = 0;

	put16(header + 10, 0);
	for (unsigned int i = 0; i < 20; i += 2)
		sum += get16(header + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(header + 10, (uint16_t)~sum);
}

/* An ARP request from the guest (10.0.2.15, its MAC's last byte
 * replaced by mac_tag) for target; 60 bytes, the Ethernet minimum. */
static size_t build_arp_request(uint8_t *frame, const char *target,
				uint8_t mac_tag)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *arp = frame + 14;

	memset(frame, 0, 60);
	put_ethernet(frame, broadcast, ETHERTYPE_ARP);
	frame[11] = mac_tag;
	put16(arp, 1); /* Ethernet */
	put16(arp + 2, ETHERTYPE_IPV4);
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, 1); /* request */
	memcpy(arp + 8, frame + 6, 6);
	put_ip(arp + 14, GUEST_IP);
	put_ip(arp + 24, target);
	return 60;
}

static void send_frame(const uint8_t *frame, size_t length)
{
	struct iovec iov = { .iov_base = (void *)frame, .iov_len = length };

	cr_assert_eq(backend->ops->transmit(backend, &no_offload, &iov, 1), 0);
}

static bool is_arp(const uint8_t *frame, size_t length, uint16_t operation)
{
	return length >= 42 && get16(frame + 12) == ETHERTYPE_ARP &&
	       get16(frame + 20) == operation;
}

#define DHCP_CLIENT_PORT 68
#define DHCP_SERVER_PORT 67
#define BOOTP_SIZE (236 + 312) /* fixed fields, then DHCP's option area */
#define DHCP_XID 0x5e55e1u

/* A DHCPDISCOVER (RFC 2131 §4.4.1) broadcast from 0.0.0.0, UDP checksum
 * left out (0), as a booting guest sends it. */
static size_t build_dhcp_discover(uint8_t *frame)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t *ip = frame + 14, *udp = ip + 20, *bootp = udp + 8;
	size_t udp_length = 8 + BOOTP_SIZE;

	memset(frame, 0, 14 + 20 + udp_length);
	put_ethernet(frame, broadcast, ETHERTYPE_IPV4);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + udp_length));
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	put_ip(ip + 12, "0.0.0.0");
	put_ip(ip + 16, "255.255.255.255");
	put_ipv4_checksum(ip);
	put16(udp, DHCP_CLIENT_PORT);
	put16(udp + 2, DHCP_SERVER_PORT);
	put16(udp + 4, (uint16_t)udp_length);
	bootp[0] = 1; /* BOOTREQUEST */
	bootp[1] = 1; /* Ethernet */
	bootp[2] = 6;
	bootp[4] = DHCP_XID >> 24;
	bootp[5] = (DHCP_XID >> 16) & 0xff;
	bootp[6] = (DHCP_XID >> 8) & 0xff;
	bootp[7] = DHCP_XID & 0xff;
	memcpy(bootp + 28, guest_mac, 6);
	memcpy(bootp + 236, (const uint8_t[]){ 99, 130, 83, 99 }, 4);
	memcpy(bootp + 240, (const uint8_t[]){ 53, 1, 1, 255 }, 4);
	return 14 + 20 + udp_length;
}

/* The DHCP message type (option 53) of a BOOTREPLY for our xid to the
 * client port, or 0 when the frame is not one. */
static unsigned int dhcp_reply_type(const uint8_t *frame, size_t length,
				    const uint8_t **bootp_out)
{
	const uint8_t *ip = frame + 14, *udp, *bootp, *option, *end;

	if (length < 14 + 20 || get16(frame + 12) != ETHERTYPE_IPV4 ||
	    ip[9] != IPPROTO_UDP)
		return 0;
	udp = ip + (ip[0] & 0xf) * 4;
	bootp = udp + 8;
	end = frame + length;
	if (bootp + 240 > end || get16(udp + 2) != DHCP_CLIENT_PORT ||
	    bootp[0] != 2 || bootp[4] != (DHCP_XID >> 24) ||
	    bootp[7] != (DHCP_XID & 0xff))
		return 0;
	*bootp_out = bootp;
	for (option = bootp + 240; option + 2 <= end && *option != 255;) {
		if (*option == 0) {
			option++;
			continue;
		}
		if (option[0] == 53 && option[1] == 1 && option + 3 <= end)
			return option[2];
		option += 2 + option[1];
	}
	return 0;
}

/* --- hostfwd= ------------------------------------------------------------- */

static void assert_forward(const char *text, bool udp, const char *host,
			   uint16_t host_port, const char *guest,
			   uint16_t guest_port)
{
	struct net_hostfwd forward;
	char err[256] = "";
	uint8_t address[4];

	cr_assert_eq(net_hostfwd_parse(text, &forward, err, sizeof(err)), 0,
		     "%s: %s", text, err);
	cr_assert_eq(forward.udp, udp, "%s", text);
	put_ip(address, host);
	cr_assert(!memcmp(&forward.host_address, address, 4), "%s", text);
	cr_assert_eq(forward.host_port, host_port, "%s", text);
	put_ip(address, guest);
	cr_assert(!memcmp(&forward.guest_address, address, 4), "%s", text);
	cr_assert_eq(forward.guest_port, guest_port, "%s", text);
}

Test(net_slirp, hostfwd_parses_every_valid_form)
{
	assert_forward("tcp:127.0.0.1:8080-:80", false, "127.0.0.1", 8080,
		       GUEST_IP, 80);
	assert_forward("udp::5353-10.0.2.20:53", true, "0.0.0.0", 5353,
		       "10.0.2.20", 53);
	assert_forward("::2222-:22", false, "0.0.0.0", 2222, GUEST_IP, 22);
	assert_forward("tcp:0.0.0.0:65535-10.0.2.15:1", false, "0.0.0.0",
		       65535, GUEST_IP, 1);
}

/* Each rejected with one line that quotes the value. */
Test(net_slirp, hostfwd_rejects_every_malformed_piece)
{
	static const char *const malformed[] = {
		"",
		"sctp::8080-:80", /* protocol */
		"tcp8080-:80", /* no protocol separator */
		"tcp::8080:80", /* no dash */
		"tcp::8080-80", /* guest side without its colon */
		"tcp::0-:80", /* port 0 */
		"tcp::8080-:0",
		"tcp::65536-:80", /* port too large */
		"tcp::-:80", /* port missing */
		"tcp::8080-:+80", /* not decimal digits only */
		"tcp:localhost:8080-:80", /* not an IPv4 address */
		"tcp:10.0.2:8080-:80",
		"tcp:127.0.0.1 :8080-:80",
		"tcp::8080-10.0.2.999:80",
		"tcp::8080-192.168.1.5:80", /* not on the guest network */
		"tcp::8080-:80x", /* trailing junk */
		"tcp::8080-:80-",
		"tcp::8080-:80:",
		"tcp:255.255.255.255:65535-255.255.255.255:65535x",
	};

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		struct net_hostfwd forward;
		char err[256] = "";

		cr_assert_eq(net_hostfwd_parse(malformed[i], &forward, err,
					       sizeof(err)),
			     -EINVAL, "\"%s\" accepted", malformed[i]);
		cr_assert(strstr(err, malformed[i]), "\"%s\": %s", malformed[i],
			  err);
		cr_assert_null(strchr(err, '\n'), "%s", err);
	}
}

Test(net_slirp, hostfwd_messages_name_the_bad_piece)
{
	struct net_hostfwd forward;
	char err[256];

	net_hostfwd_parse("tcp::0-:80", &forward, err, sizeof(err));
	cr_assert_str_eq(err, "hostfwd tcp::0-:80: host port \"0\" is not a number in 1..65535");
	net_hostfwd_parse("icmp::1-:1", &forward, err, sizeof(err));
	cr_assert_str_eq(err, "hostfwd icmp::1-:1: protocol \"icmp\" is neither tcp nor udp");
	net_hostfwd_parse("tcp:1.2.3:1-:1", &forward, err, sizeof(err));
	cr_assert_str_eq(err, "hostfwd tcp:1.2.3:1-:1: host address \"1.2.3\" is not an IPv4 address");
}

/* --- the backend ---------------------------------------------------------- */

Test(net_slirp, is_a_user_backend_without_offloads)
{
	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_str_eq(backend->name, "user");
	cr_assert_eq(backend->offloads, 0);
	cr_assert_eq(backend->ops->set_receive_offloads(backend, 0), 0);
	cr_assert_eq(backend->ops->set_receive_offloads(backend, NET_OFFLOAD_CSUM),
		     -EINVAL);
}

Test(net_slirp, dhcp_discover_gets_an_offer_of_the_first_address)
{
	uint8_t frame[600];
	size_t length = build_dhcp_discover(frame);
	/* Split as a driver's buffers may be: across three descriptors. */
	struct iovec iov[3] = {
		{ .iov_base = frame, .iov_len = 10 },
		{ .iov_base = frame + 10, .iov_len = 100 },
		{ .iov_base = frame + 110, .iov_len = length - 110 },
	};
	const uint8_t *bootp = NULL;

	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_eq(backend->ops->transmit(backend, &no_offload, iov, 3), 0);

	cr_assert_eq(received.count, 1);
	cr_assert_not(received.frame_in_burst[0],
		      "an answer from inside transmit() is no burst");
	cr_assert_eq(dhcp_reply_type(received.frames[0], received.lengths[0],
				     &bootp),
		     2 /* DHCPOFFER */);
	cr_assert(is_ip(bootp + 16, GUEST_IP)); /* yiaddr */
	cr_assert_eq(backend->stats.tx_frames, 1);
	cr_assert_eq(backend->stats.rx_frames, 1);
}

Test(net_slirp, arp_for_the_gateway_gets_a_reply)
{
	uint8_t frame[60];
	const uint8_t *reply, *arp;

	create_ready(&(struct net_slirp_options){ 0 });
	send_frame(frame, build_arp_request(frame, GATEWAY_IP, guest_mac[5]));

	cr_assert_eq(received.count, 1);
	reply = received.frames[0];
	arp = reply + 14;
	cr_assert(is_arp(reply, received.lengths[0], 2));
	cr_assert(!memcmp(reply, guest_mac, 6));
	cr_assert(is_ip(arp + 14, GATEWAY_IP));
	cr_assert(!memcmp(arp + 18, guest_mac, 6));
	cr_assert(is_ip(arp + 24, GUEST_IP));
}

Test(net_slirp, frame_shorter_than_an_ethernet_header_is_dropped)
{
	uint8_t frame[10] = { 0 };
	struct iovec iov = { .iov_base = frame, .iov_len = sizeof(frame) };

	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_eq(backend->ops->transmit(backend, &no_offload, &iov, 1),
		     -EINVAL);
	cr_assert_eq(backend->stats.tx_dropped, 1);
	cr_assert_eq(backend->stats.tx_frames, 0);
}

/* A loopback port nobody listens on (bound, read and released). */
static uint16_t free_port(void)
{
	struct sockaddr_in address = { .sin_family = AF_INET };
	socklen_t length = sizeof(address);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&address, &length), 0);
	close(fd);
	return ntohs(address.sin_port);
}

/* A TCP socket listening on 127.0.0.1:port (0: any free port), or -1
 * when the port is taken. */
static int listen_loopback(uint16_t port)
{
	struct sockaddr_in address = { .sin_family = AF_INET,
				       .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&address, sizeof(address)) ||
	    listen(fd, 1)) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct net_slirp_options forward_options(uint16_t host_port,
						uint16_t guest_port)
{
	struct net_slirp_options options = { .hostfwd_count = 1 };

	options.hostfwd[0] = (struct net_hostfwd){
		.host_port = host_port,
		.guest_port = guest_port,
	};
	inet_pton(AF_INET, "127.0.0.1", &options.hostfwd[0].host_address);
	inet_pton(AF_INET, GUEST_IP, &options.hostfwd[0].guest_address);
	return options;
}

/* The guest's answer to slirp's ARP request for its address. */
static void send_arp_reply(const uint8_t *request)
{
	uint8_t reply[60] = { 0 };
	uint8_t *arp = reply + 14;

	put_ethernet(reply, request + 6, ETHERTYPE_ARP);
	put16(arp, 1);
	put16(arp + 2, ETHERTYPE_IPV4);
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, 2); /* reply */
	memcpy(arp + 8, guest_mac, 6);
	put_ip(arp + 14, GUEST_IP);
	memcpy(arp + 18, request + 14 + 8, 10); /* the asker's MAC and IP */
	send_frame(reply, sizeof(reply));
}

static bool is_syn_to_guest(const uint8_t *frame, size_t length,
			    uint16_t port)
{
	const uint8_t *ip = frame + 14, *tcp;

	if (length < 14 + 20 || get16(frame + 12) != ETHERTYPE_IPV4 ||
	    ip[9] != IPPROTO_TCP || !is_ip(ip + 16, GUEST_IP))
		return false;
	tcp = ip + (ip[0] & 0xf) * 4;
	if (tcp + 20 > frame + length)
		return false;
	/* SYN without ACK: the start of a connection. */
	return get16(tcp + 2) == port && (tcp[13] & 0x12) == 0x02;
}

/*
 * slirp does not know the guest's MAC until the guest speaks: it asks with
 * an ARP request first and sends the SYN once answered, as a guest's
 * kernel would answer.
 */
Test(net_slirp, connection_to_a_forwarded_port_reaches_the_guest_as_a_syn)
{
	uint16_t port = free_port();
	struct net_slirp_options options = forward_options(port, 22);
	struct sockaddr_in address = { .sin_family = AF_INET,
				       .sin_port = htons(port) };
	struct pollfd fds[16];
	unsigned int seen = 0;
	bool arp_answered = false, syn = false;
	int client;

	create_ready(&options);
	client = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert_geq(client, 0);
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(connect(client, (struct sockaddr *)&address,
			  sizeof(address)) == 0 ||
		  errno == EINPROGRESS);

	for (unsigned int round = 0; round < MAX_ROUNDS && !syn; round++) {
		run_round(fds, 16, ROUND_TIMEOUT_MS);
		for (; seen < received.count; seen++) {
			const uint8_t *frame = received.frames[seen];
			size_t length = received.lengths[seen];

			if (is_arp(frame, length, 1) &&
			    is_ip(frame + 14 + 24, GUEST_IP)) {
				send_arp_reply(frame);
				arp_answered = true;
			}
			syn |= is_syn_to_guest(frame, length, 22);
		}
	}
	cr_assert(arp_answered);
	cr_assert(syn, "no SYN among %u frames", received.count);
	/* Both came out of slirp's dispatch, each round one burst. */
	for (unsigned int i = 0; i < received.count; i++)
		cr_assert(received.frame_in_burst[i], "frame %u outside a burst", i);
	cr_assert_geq(received.bursts, 2);
	cr_assert_not(received.in_burst);
	close(client);
}

Test(net_slirp, forward_on_a_taken_port_fails_creation_and_frees_the_rest)
{
	uint16_t unused = free_port();
	int taken_fd = listen_loopback(0);
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	struct net_slirp_options options = forward_options(unused, 22);
	char err[256] = "", expected[256];
	int fd;

	cr_assert_geq(taken_fd, 0);
	cr_assert_eq(getsockname(taken_fd, (struct sockaddr *)&address, &length), 0);
	options.hostfwd[1] = options.hostfwd[0];
	options.hostfwd[1].host_port = ntohs(address.sin_port);
	options.hostfwd[1].guest_port = 80;
	options.hostfwd_count = 2;

	cr_assert_null(net_slirp_create(&context, &options, err, sizeof(err)));
	snprintf(expected, sizeof(expected),
		 "hostfwd tcp:127.0.0.1:%u-10.0.2.15:80: cannot listen (Address already in use)",
		 ntohs(address.sin_port));
	cr_assert_str_eq(err, expected);
	cr_assert_null(source);
	/* The first forward's listening socket is gone with the rest. */
	fd = listen_loopback(unused);
	cr_assert_geq(fd, 0);
	close(fd);
	close(taken_fd);
}

Test(net_slirp, destroy_releases_forwarded_ports_and_the_poll_source)
{
	uint16_t port = free_port();
	struct net_slirp_options options = forward_options(port, 22);
	int fd;

	create_ready(&options);
	cr_assert_eq(listen_loopback(port), -1);
	backend->ops->destroy(backend);
	backend = NULL;
	cr_assert_eq(sources_removed, 1);
	fd = listen_loopback(port);
	cr_assert_geq(fd, 0);
	close(fd);
}

/* --- backpressure --------------------------------------------------------- */

static unsigned int tag_of_reply(unsigned int index)
{
	return received.frames[index][14 + 18 + 5]; /* target MAC's last byte */
}

/* 70 ARP replies for a guest without buffers: 64 wait, 6 are dropped, and
 * receive_ready() delivers the 64 in the order slirp sent them. */
Test(net_slirp, frames_wait_in_a_bounded_queue_while_the_guest_has_no_room)
{
	uint8_t frame[60];

	create_ready(&(struct net_slirp_options){ 0 });
	received.room = 0;
	for (unsigned int i = 0; i < 70; i++)
		send_frame(frame, build_arp_request(frame, GATEWAY_IP, (uint8_t)i));
	cr_assert_eq(received.refused, 1);
	cr_assert_eq(received.count, 0);
	cr_assert_eq(backend->stats.rx_dropped, 6);

	received.room = -1;
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 64);
	for (unsigned int i = 0; i < 64; i++) {
		cr_assert(is_arp(received.frames[i], received.lengths[i], 2));
		cr_assert_eq(tag_of_reply(i), i);
	}
	cr_assert_eq(backend->stats.rx_frames, 64);
	cr_assert_eq(backend->stats.rx_dropped, 6);
}

Test(net_slirp, receiver_full_again_keeps_the_rest_in_order)
{
	uint8_t frame[60];

	create_ready(&(struct net_slirp_options){ 0 });
	received.room = 0;
	for (unsigned int i = 0; i < 5; i++)
		send_frame(frame, build_arp_request(frame, GATEWAY_IP, (uint8_t)i));
	received.room = 2;
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 2);
	received.room = -1;
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 5);
	/* With the queue drained, a new frame goes straight through. */
	send_frame(frame, build_arp_request(frame, GATEWAY_IP, 5));
	cr_assert_eq(received.count, 6);
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(tag_of_reply(i), i);
	cr_assert_eq(backend->stats.rx_frames, 6);
	cr_assert_eq(backend->stats.rx_dropped, 0);
}

Test(net_slirp, frames_wait_for_the_first_receive_ready)
{
	char err[256] = "";
	uint8_t frame[60];

	backend = net_slirp_create(&context, &(struct net_slirp_options){ 0 },
				   err, sizeof(err));
	cr_assert_not_null(backend, "%s", err);
	send_frame(frame, build_arp_request(frame, GATEWAY_IP, 1));
	backend->ops->attach(backend, &receiver);
	send_frame(frame, build_arp_request(frame, GATEWAY_IP, 2));
	cr_assert_eq(received.count, 0);
	cr_assert_eq(received.refused, 0);

	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 2);
	cr_assert_eq(tag_of_reply(0), 1);
	cr_assert_eq(tag_of_reply(1), 2);
}

static bool any_watched_for_input(const struct poll_set *set)
{
	for (unsigned int i = 0; i < set->count; i++) {
		if (set->fds[i].events & POLLIN)
			return true;
	}
	return false;
}

/* While a frame waits for the guest, slirp reads no host socket and
 * accepts no connection, so the host's side backs up instead of vessel
 * queueing without bound. */
Test(net_slirp, held_frames_stop_reading_host_sockets)
{
	uint16_t port = free_port();
	struct net_slirp_options options = forward_options(port, 22);
	struct pollfd fds[16];
	struct poll_set set = { .fds = fds, .capacity = 16 };
	uint8_t frame[60];
	int timeout_ms = -1;

	create_ready(&options);
	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert(any_watched_for_input(&set));
	source->dispatch(source_opaque, &set);

	received.room = 0;
	send_frame(frame, build_arp_request(frame, GATEWAY_IP, 1));
	set.count = 0;
	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert_not(any_watched_for_input(&set));
	source->dispatch(source_opaque, &set);

	received.room = -1;
	backend->ops->receive_ready(backend);
	set.count = 0;
	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert(any_watched_for_input(&set));
	source->dispatch(source_opaque, &set);
}

/* --- the poll source ------------------------------------------------------ */

/* slirp keeps timers (its TCP timers, IPv6 router advertisements): the
 * loop never sleeps without a deadline, and a nearer one is kept. */
Test(net_slirp, prepare_sets_a_deadline_and_keeps_a_nearer_one)
{
	struct pollfd fds[4];
	struct poll_set set = { .fds = fds, .capacity = 4 };
	int timeout_ms = -1;

	create_ready(&(struct net_slirp_options){ 0 });
	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert_geq(timeout_ms, 0);
	cr_assert_leq(timeout_ms, 1000);
	source->dispatch(source_opaque, &set);

	timeout_ms = 3;
	set.count = 0;
	source->prepare(source_opaque, &set, &timeout_ms);
	cr_assert_leq(timeout_ms, 3);
	source->dispatch(source_opaque, &set);
}

/* With no room left in the loop's set, the backend says so once and the
 * sockets it could not add simply wait. */
Test(net_slirp, full_poll_set_is_reported_once_and_not_fatal,
     .init = cr_redirect_stderr)
{
	uint16_t port = free_port();
	struct net_slirp_options options = forward_options(port, 22);
	struct poll_set set = { .fds = NULL, .capacity = 0 };

	create_ready(&options);
	for (unsigned int round = 0; round < 2; round++) {
		int timeout_ms = -1;

		source->prepare(source_opaque, &set, &timeout_ms);
		cr_assert_eq(set.count, 0);
		source->dispatch(source_opaque, &set);
	}
	fflush(stderr);
	cr_assert_stderr_eq_str("vessel: net user: the event loop has no room for more sockets; some connections stall until others close\n");
}

/* --- snapshots ----------------------------------------------------------- */

/* backend's state saved through the snapshot's state tree, and opened. */
static void save_backend(struct net_backend *from, struct state_writer *writer,
			 struct state_reader *reader)
{
	const void *blob;
	size_t size;

	cr_assert_eq(state_writer_init(writer), 0);
	cr_assert_eq(state_writer_begin(writer, "/devices/virtio-net0", 1), 0);
	cr_assert_eq(from->ops->save(from, &writer->base), 0);
	cr_assert_eq(state_writer_finish(writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(reader, "/devices/virtio-net0", 1), 0);
}

Test(net_slirp, state_saved_and_restored_into_a_fresh_backend_saves_the_same)
{
	uint8_t frame[600];
	size_t length = build_dhcp_discover(frame);
	struct iovec iov = { .iov_base = frame, .iov_len = length };
	struct state_writer writer, again_writer;
	struct state_reader reader, again_reader;
	size_t size, again_size;

	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_eq(backend->ops->transmit(backend, &no_offload, &iov, 1), 0);
	save_backend(backend, &writer, &reader);
	teardown();
	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_eq(backend->ops->restore(backend, &reader.base), 0);
	save_backend(backend, &again_writer, &again_reader);
	cr_assert_eq(reader.base.get_size(&reader.base, "slirp-state", &size), 0);
	cr_assert_eq(again_reader.base.get_size(&again_reader.base, "slirp-state",
						&again_size), 0);
	cr_assert_eq(size, again_size);
	uint8_t *first = malloc(size), *second = malloc(size);
	reader.base.get_bytes(&reader.base, "slirp-state", first, size);
	again_reader.base.get_bytes(&again_reader.base, "slirp-state", second, size);
	cr_assert_arr_eq(first, second, size);
	free(first);
	free(second);
	state_writer_release(&writer);
	state_writer_release(&again_writer);
}

Test(net_slirp, damaged_state_is_refused)
{
	struct state_writer writer;
	struct state_reader reader;
	const void *blob;
	size_t size;
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	create_ready(&(struct net_slirp_options){ 0 });
	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/d", 1), 0);
	cr_assert_eq(writer.base.put_u64(&writer.base, "slirp-version",
					 (uint64_t)slirp_state_version()), 0);
	cr_assert_eq(writer.base.put_bytes(&writer.base, "slirp-state", garbage,
					   sizeof(garbage)), 0);
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/d", 1), 0);
	cr_assert_eq(backend->ops->restore(backend, &reader.base), -EINVAL);
	state_writer_release(&writer);
}

/* --- what the guest can make slirp say ----------------------------------- */

/* An ICMPv6 router advertisement from the guest's link-local address to
 * all nodes (RFC 4861 §4.2), which slirp reports as a guest error: a
 * router is slirp's part, not the guest's. */
static size_t build_router_advertisement(uint8_t *frame)
{
	static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
	static const uint8_t source[16] = { 0xfe, 0x80, [8] = 0x50, 0x54, 0x00,
					    0xff, 0xfe, 0x12, 0x34, 0x56 };
	static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
	uint8_t *ip = frame + 14, *icmp = ip + 40;
	const uint16_t icmp_length = 16;
	uint32_t sum = icmp_length + 58; /* the pseudo-header's length, next header */

	memset(frame, 0, 14 + 40 + icmp_length);
	put_ethernet(frame, all_nodes_mac, 0x86dd);
	ip[0] = 0x60;
	put16(ip + 4, icmp_length);
	ip[6] = 58; /* ICMPv6 */
	ip[7] = 255;
	memcpy(ip + 8, source, 16);
	memcpy(ip + 24, all_nodes, 16);
	icmp[0] = 134; /* router advertisement */
	icmp[4] = 64; /* current hop limit */
	put16(icmp + 6, 1800); /* router lifetime */
	for (unsigned int i = 8; i < 40; i += 2)
		sum += get16(ip + i);
	for (unsigned int i = 0; i < icmp_length; i += 2)
		sum += get16(icmp + i);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	put16(icmp + 2, (uint16_t)~sum);
	return 14 + 40 + icmp_length;
}

/* A guest sending what slirp complains of, as fast as it can, gets a
 * burst of lines on vessel's stderr, not one a frame. */
Test(net_slirp, guest_errors_are_rate_limited, .init = cr_redirect_stderr)
{
	uint8_t frame[128];
	size_t length = build_router_advertisement(frame);
	char expected[4096] = "";

	create_ready(&(struct net_slirp_options){ 0 });
	for (unsigned int i = 0; i < 1000; i++)
		send_frame(frame, length);
	fflush(stderr);
	for (unsigned int i = 0; i < LOG_LIMIT_BURST; i++)
		strcat(expected, "vessel: net user: Warning: guest sent NDP RA, "
				 "but shouldn't\n");
	cr_assert_stderr_eq_str(expected);
}
