/*
 * The TAP backend. Its frame pump runs on a SOCK_SEQPACKET socketpair
 * standing in for a TAP queue (one frame per read and per write), with a
 * fake event loop whose handler the tests call as epoll would, and a
 * receiver that records what reaches the guest. Opening real interfaces
 * needs root and /dev/net/tun; those tests create their own interfaces
 * (vtstN) and delete them again.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/net_tap.h"

#define ALL_OFFLOADS                                                          \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 |             \
	 NET_OFFLOAD_TSO_ECN)
#define MAX_RECORDED (NET_TAP_READ_BUDGET + 16)
#define SMALL_FRAME 60
/* An ethertype for local experiments (IEEE 802), so that the host's own
 * traffic on a test interface is told apart. */
#define TEST_ETHERTYPE 0x88b5

/* The fake event loop: the one descriptor the backend watches. */
static struct {
	int fd;
	uint32_t events;
	device_fd_handler handler;
	void *opaque;
	int watch_error; /* what watch_fd returns, when not 0 */
} watched;

/* What reached the guest. */
static struct {
	struct {
		struct virtio_net_hdr hdr;
		uint8_t *data;
		size_t len;
	} frames[MAX_RECORDED];
	unsigned int count;
	bool full; /* answer -ENOBUFS */
	unsigned int refused;
} received;

static struct net_backend *backend;
static int peer = -1; /* the network's end of the socketpair */
static char ifname[IFNAMSIZ]; /* the interface a test created */
static char err[256];

static int fake_watch_fd(void *context_opaque, int fd, uint32_t events,
			 device_fd_handler handler, void *handler_opaque)
{
	(void)context_opaque;
	if (watched.watch_error)
		return watched.watch_error;
	cr_assert_eq(watched.fd, -1, "watched twice");
	watched.fd = fd;
	watched.events = events;
	watched.handler = handler;
	watched.opaque = handler_opaque;
	return 0;
}

static int fake_modify_fd(void *context_opaque, int fd, uint32_t events)
{
	(void)context_opaque;
	cr_assert_eq(fd, watched.fd, "modify_fd on a descriptor not watched");
	watched.events = events;
	return 0;
}

static int fake_unwatch_fd(void *context_opaque, int fd)
{
	(void)context_opaque;
	cr_assert_eq(fd, watched.fd, "unwatch_fd on a descriptor not watched");
	watched.fd = -1;
	return 0;
}

static const struct device_context context = {
	.watch_fd = fake_watch_fd,
	.modify_fd = fake_modify_fd,
	.unwatch_fd = fake_unwatch_fd,
};

static int record_frame(void *opaque, const struct virtio_net_hdr *hdr,
			const struct iovec *frame, unsigned int count)
{
	size_t len = 0;

	(void)opaque;
	if (received.full) {
		received.refused++;
		return -ENOBUFS;
	}
	cr_assert_lt(received.count, MAX_RECORDED);
	for (unsigned int i = 0; i < count; i++)
		len += frame[i].iov_len;
	uint8_t *data = malloc(len);
	cr_assert_not_null(data);
	for (size_t i = 0, at = 0; i < count; at += frame[i++].iov_len)
		memcpy(data + at, frame[i].iov_base, frame[i].iov_len);
	received.frames[received.count].hdr = *hdr;
	received.frames[received.count].data = data;
	received.frames[received.count].len = len;
	received.count++;
	return 0;
}

static const struct net_receiver receiver = { .receive = record_frame };

/* The bursts the backend announced: frames received by the time each
 * began and ended. */
static struct {
	unsigned int count;
	unsigned int begun_at[8], ended_at[8];
	bool open;
} bursts;

static void record_burst_begin(void *opaque)
{
	(void)opaque;
	cr_assert(!bursts.open, "a burst inside a burst");
	cr_assert_lt(bursts.count, 8);
	bursts.begun_at[bursts.count] = received.count + received.refused;
	bursts.open = true;
}

static void record_burst_end(void *opaque)
{
	(void)opaque;
	cr_assert(bursts.open, "a burst ended that never began");
	bursts.ended_at[bursts.count++] = received.count + received.refused;
	bursts.open = false;
}

static const struct net_receiver burst_receiver = {
	.receive = record_frame,
	.burst_begin = record_burst_begin,
	.burst_end = record_burst_end,
};

/* Deletes the persistent interface a test created: attach to it, clear
 * TUNSETPERSIST, close. */
static void delete_interface(void)
{
	struct ifreq request = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd;

	if (!ifname[0])
		return;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	memcpy(request.ifr_name, ifname, IFNAMSIZ);
	cr_assert_eq(ioctl(fd, TUNSETIFF, &request), 0, "%s: %s", ifname,
		     strerror(errno));
	cr_assert_eq(ioctl(fd, TUNSETPERSIST, 0), 0);
	close(fd);
	ifname[0] = '\0';
}

static void forget_received(void)
{
	for (unsigned int i = 0; i < received.count; i++)
		free(received.frames[i].data);
	received.count = 0;
}

static void setup(void)
{
	memset(&watched, 0, sizeof(watched));
	watched.fd = -1;
	memset(&received, 0, sizeof(received));
	backend = NULL;
	peer = -1;
	ifname[0] = '\0';
	err[0] = '\0';
}

static void teardown(void)
{
	if (backend)
		backend->ops->destroy(backend);
	if (peer >= 0)
		close(peer);
	forget_received();
	delete_interface();
}

TestSuite(net_tap, .init = setup, .fini = teardown, .timeout = 20);

/* A backend on one end of a socketpair that can carry offloads, attached
 * to the recording receiver; peer is the other end. */
static void create_on_socketpair(uint32_t offloads)
{
	int fds[2];
	int send_buffer = 1 << 20; /* room for a frame over NET_FRAME_MAX */

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				fds),
		     0);
	cr_assert_eq(setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &send_buffer,
				sizeof(send_buffer)),
		     0);
	peer = fds[1];
	backend = net_tap_create_on_fd(&context, fds[0], offloads, "test", err,
				       sizeof(err));
	cr_assert_not_null(backend, "%s", err);
	cr_assert_str_eq(backend->name, "tap");
	cr_assert_eq(backend->offloads, offloads);
	cr_assert_eq(watched.fd, fds[0]);
	cr_assert_eq(watched.events, 0, "reading before receive_ready()");
	backend->ops->attach(backend, &receiver);
}

/* Created, and the receiver ready. */
static void start(void)
{
	create_on_socketpair(0);
	backend->ops->receive_ready(backend);
	cr_assert_eq(watched.events, EPOLLIN);
}

/* One wake-up, with what epoll would report now; false when it would
 * report nothing. */
static bool wake_once(void)
{
	struct pollfd ready = { .fd = watched.fd,
				.events = (short)watched.events };

	if (watched.fd < 0 || poll(&ready, 1, 0) <= 0)
		return false;
	watched.handler(watched.opaque, (uint32_t)ready.revents);
	return true;
}

/* The event loop until the descriptor is quiet: a handler that leaves it
 * ready for ever (a busy loop) fails the test. */
static void run_event_loop(void)
{
	for (int i = 0; i < 1000; i++) {
		if (!wake_once())
			return;
	}
	cr_assert_fail("the descriptor is still ready after 1000 wake-ups");
}

/* A frame whose bytes say which one it is. */
static void fill_frame(uint8_t *frame, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		frame[i] = (uint8_t)(seed + i * 7);
}

/* The network side writes one datagram: header, then frame. */
static void peer_send(const struct virtio_net_hdr *hdr, const void *frame,
		      size_t len)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(*hdr) },
		{ .iov_base = (void *)frame, .iov_len = len },
	};

	cr_assert_eq(writev(peer, iov, 2), (ssize_t)(sizeof(*hdr) + len),
		     "%s", strerror(errno));
}

static void peer_send_numbered(uint8_t seed)
{
	static const struct virtio_net_hdr plain;
	uint8_t frame[SMALL_FRAME];

	fill_frame(frame, sizeof(frame), seed);
	peer_send(&plain, frame, sizeof(frame));
}

static void assert_received(unsigned int index, const void *frame,
			    size_t len)
{
	cr_assert_gt(received.count, index);
	cr_assert_eq(received.frames[index].len, len);
	cr_assert_arr_eq(received.frames[index].data, frame, len);
}

static void assert_received_numbered(unsigned int index, uint8_t seed)
{
	uint8_t frame[SMALL_FRAME];

	fill_frame(frame, sizeof(frame), seed);
	assert_received(index, frame, sizeof(frame));
}

Test(net_tap, frame_from_the_network_reaches_the_receiver)
{
	struct virtio_net_hdr hdr = { .num_buffers = 0x1234 };
	const struct virtio_net_hdr zero = { 0 };
	uint8_t frame[SMALL_FRAME];

	start();
	fill_frame(frame, sizeof(frame), 1);
	peer_send(&hdr, frame, sizeof(frame));
	run_event_loop();
	cr_assert_eq(received.count, 1);
	assert_received(0, frame, sizeof(frame));
	/* num_buffers is the device's to fill. */
	cr_assert_arr_eq(&received.frames[0].hdr, &zero, sizeof(zero));
	cr_assert_eq(backend->stats.rx_frames, 1);
	cr_assert_eq(backend->stats.rx_dropped, 0);
}

Test(net_tap, data_valid_is_cleared_when_the_guest_takes_no_checksum_offload)
{
	struct virtio_net_hdr hdr = { .flags = VIRTIO_NET_HDR_F_DATA_VALID };
	uint8_t frame[SMALL_FRAME];

	start();
	fill_frame(frame, sizeof(frame), 2);
	peer_send(&hdr, frame, sizeof(frame));
	run_event_loop();
	cr_assert_eq(received.count, 1);
	cr_assert_eq(received.frames[0].hdr.flags, 0);
}

Test(net_tap, largest_frame_arrives_whole)
{
	static const struct virtio_net_hdr plain;
	static uint8_t frame[NET_FRAME_MAX];

	start();
	fill_frame(frame, sizeof(frame), 3);
	peer_send(&plain, frame, sizeof(frame));
	run_event_loop();
	cr_assert_eq(received.count, 1);
	assert_received(0, frame, sizeof(frame));
}

Test(net_tap, nothing_is_read_before_the_first_receive_ready)
{
	create_on_socketpair(0);
	peer_send_numbered(4);
	run_event_loop();
	cr_assert_eq(received.count, 0);

	backend->ops->receive_ready(backend);
	cr_assert_eq(watched.events, EPOLLIN);
	run_event_loop();
	cr_assert_eq(received.count, 1);
	assert_received_numbered(0, 4);
}

Test(net_tap, garbage_from_the_network_is_dropped_and_counted)
{
	static uint8_t oversized[NET_FRAME_MAX + 100];
	const struct virtio_net_hdr plain = { 0 };
	const struct virtio_net_hdr unknown_gso = {
		.gso_type = 2,
		.hdr_len = 54,
		.gso_size = 1448,
	};
	const struct virtio_net_hdr partial = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.csum_start = 34,
		.csum_offset = 6,
	};
	uint8_t frame[SMALL_FRAME] = { 0 };

	start();
	cr_assert_eq(write(peer, frame, 5), 5);
	cr_assert_eq(write(peer, &plain, sizeof(plain)), sizeof(plain));
	peer_send(&plain, frame, NET_FRAME_MIN - 1);
	peer_send(&unknown_gso, frame, sizeof(frame));
	/* The guest has not accepted partial checksums. */
	peer_send(&partial, frame, sizeof(frame));
	peer_send(&plain, oversized, sizeof(oversized));
	peer_send_numbered(5);
	run_event_loop();

	cr_assert_eq(received.count, 1, "garbage was delivered");
	assert_received_numbered(0, 5);
	cr_assert_eq(backend->stats.rx_dropped, 6);
	cr_assert_eq(backend->stats.rx_frames, 1);
}

Test(net_tap, one_wakeup_reads_at_most_the_budget)
{
	start();
	for (unsigned int i = 0; i < NET_TAP_READ_BUDGET + 6; i++)
		peer_send_numbered((uint8_t)i);

	cr_assert(wake_once());
	cr_assert_eq(received.count, NET_TAP_READ_BUDGET);
	cr_assert(wake_once(), "frames left, yet not ready");
	cr_assert_eq(received.count, NET_TAP_READ_BUDGET + 6);
	for (unsigned int i = 0; i < received.count; i++)
		assert_received_numbered(i, (uint8_t)i);
}

Test(net_tap, what_one_wakeup_reads_is_one_burst)
{
	memset(&bursts, 0, sizeof(bursts));
	start();
	backend->ops->attach(backend, &burst_receiver);
	for (unsigned int i = 0; i < NET_TAP_READ_BUDGET + 6; i++)
		peer_send_numbered((uint8_t)i);

	run_event_loop();
	cr_assert_eq(received.count, NET_TAP_READ_BUDGET + 6);
	cr_assert_eq(bursts.count, 2, "one burst per wake-up");
	cr_assert_eq(bursts.begun_at[0], 0);
	cr_assert_eq(bursts.ended_at[0], NET_TAP_READ_BUDGET);
	cr_assert_eq(bursts.begun_at[1], NET_TAP_READ_BUDGET);
	cr_assert_eq(bursts.ended_at[1], NET_TAP_READ_BUDGET + 6);
	cr_assert(!bursts.open);
}

Test(net_tap, a_burst_ends_when_the_receiver_is_full)
{
	memset(&bursts, 0, sizeof(bursts));
	start();
	backend->ops->attach(backend, &burst_receiver);
	peer_send_numbered(1);
	peer_send_numbered(2);
	received.full = true;
	run_event_loop();
	cr_assert_eq(received.refused, 1);
	cr_assert_eq(bursts.count, 1);
	cr_assert(!bursts.open, "the refused frame left the burst open");
}

Test(net_tap, full_receiver_stops_reading_and_keeps_the_frame)
{
	start();
	peer_send_numbered(6);
	peer_send_numbered(7);
	received.full = true;
	run_event_loop();
	cr_assert_eq(received.refused, 1, "read on after -ENOBUFS");
	cr_assert_eq(watched.events, 0);

	/* Still full: the frame stays, reading stays off. */
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.refused, 2);
	cr_assert_eq(watched.events, 0);

	received.full = false;
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 1, "the kept frame did not come first");
	assert_received_numbered(0, 6);
	cr_assert_eq(watched.events, EPOLLIN);
	run_event_loop();
	cr_assert_eq(received.count, 2);
	assert_received_numbered(1, 7);
	cr_assert_eq(backend->stats.rx_frames, 2);
	cr_assert_eq(backend->stats.rx_dropped, 0);
}

Test(net_tap, network_side_gone_stops_watching)
{
	start();
	peer_send_numbered(8);
	close(peer);
	peer = -1;
	run_event_loop();
	cr_assert_eq(received.count, 1, "frames sent before closing are lost");
	cr_assert_eq(watched.fd, -1, "still watched");
	/* Nothing to resume. */
	backend->ops->receive_ready(backend);
	cr_assert_eq(watched.fd, -1);
}

Test(net_tap, network_side_gone_while_holding_drops_the_kept_frame)
{
	start();
	peer_send_numbered(9);
	received.full = true;
	run_event_loop();
	cr_assert_eq(received.refused, 1);
	close(peer);
	peer = -1;
	run_event_loop();
	cr_assert_eq(watched.fd, -1, "still watched");
	cr_assert_eq(backend->stats.rx_dropped, 1);
	received.full = false;
	backend->ops->receive_ready(backend);
	cr_assert_eq(received.count, 0);
}

Test(net_tap, transmit_writes_header_and_frame_as_one_datagram)
{
	const struct virtio_net_hdr hdr = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = 54,
		.gso_size = 1448,
		.csum_start = 34,
		.csum_offset = 16,
	};
	uint8_t frame[3000], datagram[4000];
	const struct iovec pieces[3] = {
		{ .iov_base = frame, .iov_len = 14 },
		{ .iov_base = frame + 14, .iov_len = 40 },
		{ .iov_base = frame + 54, .iov_len = sizeof(frame) - 54 },
	};

	create_on_socketpair(ALL_OFFLOADS);
	fill_frame(frame, sizeof(frame), 9);
	cr_assert_eq(backend->ops->transmit(backend, &hdr, pieces, 3), 0);
	cr_assert_eq(backend->ops->transmit(backend, &hdr, pieces, 1), 0);

	cr_assert_eq(read(peer, datagram, sizeof(datagram)),
		     (ssize_t)(sizeof(hdr) + sizeof(frame)));
	cr_assert_arr_eq(datagram, &hdr, sizeof(hdr));
	cr_assert_arr_eq(datagram + sizeof(hdr), frame, sizeof(frame));
	cr_assert_eq(read(peer, datagram, sizeof(datagram)),
		     (ssize_t)(sizeof(hdr) + 14));
	cr_assert_eq(backend->stats.tx_frames, 2);
	cr_assert_eq(backend->stats.tx_dropped, 0);
}

Test(net_tap, transmit_to_a_full_queue_is_dropped_without_blocking)
{
	static const struct virtio_net_hdr plain;
	uint8_t frame[SMALL_FRAME] = { 0 }, datagram[128];
	const struct iovec piece = { .iov_base = frame,
				     .iov_len = sizeof(frame) };
	int send_buffer = 4096;
	unsigned int sent = 0;
	int ret;

	create_on_socketpair(0);
	cr_assert_eq(setsockopt(watched.fd, SOL_SOCKET, SO_SNDBUF,
				&send_buffer, sizeof(send_buffer)),
		     0);
	while ((ret = backend->ops->transmit(backend, &plain, &piece, 1)) == 0)
		cr_assert_lt(++sent, 10000, "the queue never filled");
	cr_assert_eq(ret, -EAGAIN);
	cr_assert_eq(backend->stats.tx_frames, sent);
	cr_assert_eq(backend->stats.tx_dropped, 1);

	/* Room again once the network side reads. */
	cr_assert_gt(read(peer, datagram, sizeof(datagram)), 0);
	cr_assert_eq(backend->ops->transmit(backend, &plain, &piece, 1), 0);
	cr_assert_eq(backend->stats.tx_frames, sent + 1);
}

/* A TAP takes a frame whole or not at all; a stream socket shows what
 * happens should a descriptor take part of one. */
Test(net_tap, short_write_is_dropped_and_counted)
{
	static const struct virtio_net_hdr plain;
	static uint8_t frame[NET_FRAME_MAX];
	const struct iovec piece = { .iov_base = frame,
				     .iov_len = sizeof(frame) };
	int send_buffer = 4096;
	int fds[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds),
		     0);
	cr_assert_eq(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &send_buffer,
				sizeof(send_buffer)),
		     0);
	peer = fds[1];
	backend = net_tap_create_on_fd(&context, fds[0], 0, "test", err,
				       sizeof(err));
	cr_assert_not_null(backend, "%s", err);
	cr_assert_eq(backend->ops->transmit(backend, &plain, &piece, 1), -EIO);
	cr_assert_eq(backend->stats.tx_dropped, 1);
	cr_assert_eq(backend->stats.tx_frames, 0);
}

Test(net_tap, frame_in_more_pieces_than_writev_takes_is_dropped)
{
	static const struct virtio_net_hdr plain;
	static struct iovec pieces[IOV_MAX];
	uint8_t byte = 0;

	create_on_socketpair(0);
	for (unsigned int i = 0; i < IOV_MAX; i++)
		pieces[i] = (struct iovec){ .iov_base = &byte, .iov_len = 1 };
	cr_assert_eq(backend->ops->transmit(backend, &plain, pieces, IOV_MAX),
		     -EMSGSIZE);
	cr_assert_eq(backend->stats.tx_dropped, 1);
	cr_assert_eq(backend->ops->transmit(backend, &plain, pieces,
					    IOV_MAX - 1),
		     0);
	cr_assert_eq(backend->stats.tx_frames, 1);
}

Test(net_tap, receive_offloads_beyond_the_backend_are_refused)
{
	create_on_socketpair(NET_OFFLOAD_CSUM);
	cr_assert_eq(backend->ops->set_receive_offloads(
			     backend, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4),
		     -EINVAL);
}

Test(net_tap, destroy_unwatches_and_closes)
{
	uint8_t byte;

	create_on_socketpair(0);
	backend->ops->destroy(backend);
	backend = NULL;
	cr_assert_eq(watched.fd, -1);
	cr_assert_eq(read(peer, &byte, 1), 0, "descriptor still open");
}

Test(net_tap, watch_failure_is_reported_and_closes_the_descriptor)
{
	int fds[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				fds),
		     0);
	peer = fds[1];
	watched.watch_error = -ENOSPC;
	backend = net_tap_create_on_fd(&context, fds[0], 0, "test", err,
				       sizeof(err));
	cr_assert_null(backend);
	cr_assert_str_eq(err, "tap test: watching the descriptor: No space "
			      "left on device");
	cr_assert_eq(fcntl(fds[0], F_GETFD), -1, "descriptor left open");
}

/* Options a user can get wrong without root. */

static struct net_backend *create(const char *name, int fd)
{
	const struct net_tap_options options = { .ifname = name, .fd = fd };

	return net_tap_create(&context, &options, err, sizeof(err));
}

/* The message names the descriptor as the user gave it (fd=N), and the
 * descriptor stays the user's: the backend works on a copy. */
Test(net_tap, inherited_pipe_is_refused)
{
	char expected[128];
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	peer = fds[1];
	cr_assert_null(create(NULL, fds[0]));
	snprintf(expected, sizeof(expected),
		 "tap: fd %d is not a TAP device with IFF_NO_PI and "
		 "IFF_VNET_HDR",
		 fds[0]);
	cr_assert_str_eq(err, expected);
	cr_assert_neq(fcntl(fds[0], F_GETFD), -1, "the user's descriptor closed");
	close(fds[0]);
}

Test(net_tap, missing_interface_is_refused_and_not_created)
{
	cr_assert_eq(if_nametoindex("vtst-missing"), 0);
	cr_assert_null(create("vtst-missing", -1));
	cr_assert_str_eq(err, "tap vtst-missing: no such interface (create it "
			      "with 'ip tuntap add vtst-missing mode tap')");
	cr_assert_eq(if_nametoindex("vtst-missing"), 0);
}

Test(net_tap, interface_names_are_1_to_15_characters)
{
	/* 15 characters: looked for; 16: refused at once. */
	cr_assert_null(create("vtst-0123456789", -1));
	cr_assert(strstr(err, "no such interface"), "%s", err);
	cr_assert_null(create("vtst-0123456789a", -1));
	cr_assert_str_eq(err, "tap 'vtst-0123456789a': an interface name is "
			      "1 to 15 characters");
	cr_assert_null(create("", -1));
	cr_assert_str_eq(err, "tap '': an interface name is 1 to 15 "
			      "characters");
}

Test(net_tap, options_need_exactly_one_of_name_and_descriptor)
{
	int fds[2];

	cr_assert_null(create(NULL, -1));
	cr_assert_str_eq(err, "tap: an interface name or a descriptor is "
			      "needed");
	cr_assert_eq(pipe(fds), 0);
	peer = fds[1];
	cr_assert_null(create("tap0", fds[0]));
	cr_assert_str_eq(err, "tap: give an interface name or a descriptor, "
			      "not both");
	cr_assert_neq(fcntl(fds[0], F_GETFD), -1, "the user's descriptor closed");
	close(fds[0]);
}

/* Real TAP interfaces: root only. */

static void require_tap(void)
{
	int fd;

	if (geteuid() != 0)
		cr_skip_test("creating TAP interfaces needs root");
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("/dev/net/tun: %s", strerror(errno));
	close(fd);
}

/* A persistent interface vtstN, as `ip tuntap add` leaves one: nothing
 * attached. */
static void create_interface(void)
{
	struct ifreq request = { .ifr_name = "vtst%d",
				 .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd;

	require_tap();
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	if (ioctl(fd, TUNSETIFF, &request) < 0)
		cr_skip_test("cannot create a TAP interface: %s",
			     strerror(errno));
	cr_assert_eq(ioctl(fd, TUNSETPERSIST, 1), 0);
	memcpy(ifname, request.ifr_name, IFNAMSIZ);
	close(fd);
}

/* A descriptor attached to the test's interface with flags, as a parent
 * process would hand one down. */
static int attach_queue(short flags)
{
	struct ifreq request = { .ifr_flags = flags };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	memcpy(request.ifr_name, ifname, IFNAMSIZ);
	cr_assert_eq(ioctl(fd, TUNSETIFF, &request), 0, "%s", strerror(errno));
	return fd;
}

static void set_interface_up(void)
{
	struct ifreq request = { 0 };
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(sock, 0);
	memcpy(request.ifr_name, ifname, IFNAMSIZ);
	cr_assert_eq(ioctl(sock, SIOCGIFFLAGS, &request), 0);
	request.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(sock, SIOCSIFFLAGS, &request), 0, "%s",
		     strerror(errno));
	close(sock);
}

/* A packet socket on the test's interface for TEST_ETHERTYPE: what it
 * sends, the TAP reads; what the TAP writes, it receives. */
static int open_packet_socket(void)
{
	struct sockaddr_ll address = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(TEST_ETHERTYPE),
		.sll_ifindex = (int)if_nametoindex(ifname),
	};
	int sock = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC,
			  htons(TEST_ETHERTYPE));

	cr_assert_geq(sock, 0, "%s", strerror(errno));
	cr_assert_eq(bind(sock, (struct sockaddr *)&address, sizeof(address)),
		     0, "%s", strerror(errno));
	return sock;
}

/* The backend on a fresh interface that is up, attached and reading,
 * and a packet socket on the interface's other side. */
static int start_on_a_real_tap(void)
{
	create_interface();
	set_interface_up();
	backend = create(ifname, -1);
	cr_assert_not_null(backend, "%s", err);
	backend->ops->attach(backend, &receiver);
	backend->ops->receive_ready(backend);
	return open_packet_socket();
}

/* A broadcast frame of TEST_ETHERTYPE: seed tells frames apart. */
static void test_frame(uint8_t *frame, size_t len, uint8_t seed)
{
	static const uint8_t header[ETH_HLEN] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1,
		TEST_ETHERTYPE >> 8, TEST_ETHERTYPE & 0xff,
	};

	fill_frame(frame, len, seed);
	memcpy(frame, header, sizeof(header));
}

/* Sends packet through sock until a frame of TEST_ETHERTYPE reaches the
 * receiver: until the kernel has the interface's queue running after the
 * backend attached (link changes take effect up to a second late), it
 * drops frames without a word. The index of the first one received. */
static unsigned int send_until_received(int sock, const void *packet,
					size_t len)
{
	for (int attempt = 0; attempt < 30; attempt++) {
		struct pollfd ready = { .fd = watched.fd, .events = POLLIN };

		cr_assert_eq(send(sock, packet, len, 0), (ssize_t)len, "%s",
			     strerror(errno));
		poll(&ready, 1, 100);
		run_event_loop();
		for (unsigned int i = 0; i < received.count; i++) {
			const uint8_t *frame = received.frames[i].data;

			if (received.frames[i].len >= ETH_HLEN &&
			    frame[12] == TEST_ETHERTYPE >> 8 &&
			    frame[13] == (TEST_ETHERTYPE & 0xff))
				return i;
		}
	}
	cr_assert_fail("no frame from the packet socket within 3 s");
	return 0;
}

/* The Internet checksum (RFC 1071) of data, as it is stored. */
static uint16_t internet_checksum(const uint8_t *data, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)data[i] | (uint32_t)data[i + 1] << 8;
	if (len & 1)
		sum += data[len - 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

Test(net_tap, opens_an_existing_interface_and_reports_its_offloads)
{
	create_interface();
	backend = create(ifname, -1);
	cr_assert_not_null(backend, "%s", err);
	cr_assert_eq(backend->offloads, ALL_OFFLOADS);
	cr_assert_geq(watched.fd, 0);
	cr_assert_eq(watched.events, 0);
	cr_assert(fcntl(watched.fd, F_GETFL) & O_NONBLOCK);

	cr_assert_eq(backend->ops->set_receive_offloads(backend, ALL_OFFLOADS),
		     0);
	cr_assert_eq(backend->ops->set_receive_offloads(
			     backend, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6),
		     0);
	/* What the kernel refuses is narrowed, not an error. */
	cr_assert_eq(backend->ops->set_receive_offloads(backend,
							NET_OFFLOAD_TSO4),
		     0);
	cr_assert_eq(backend->ops->set_receive_offloads(
			     backend, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO_ECN),
		     0);
	cr_assert_eq(backend->ops->set_receive_offloads(backend, 1u << 4),
		     -EINVAL);
}

Test(net_tap, interface_in_use_is_refused_naming_the_step)
{
	char expected[128];
	struct net_backend *second;

	create_interface();
	backend = create(ifname, -1);
	cr_assert_not_null(backend, "%s", err);
	second = create(ifname, -1);
	cr_assert_null(second);
	snprintf(expected, sizeof(expected), "tap %s: TUNSETIFF: %s", ifname,
		 strerror(EBUSY));
	cr_assert_str_eq(err, expected);
}

Test(net_tap, interface_that_is_not_a_tap_is_refused)
{
	char expected[128];

	require_tap();
	cr_assert_null(create("lo", -1));
	snprintf(expected, sizeof(expected), "tap lo: TUNSETIFF: %s",
		 strerror(EINVAL));
	cr_assert_str_eq(err, expected);
}

Test(net_tap, inherited_tap_descriptor_is_copied)
{
	int fd;

	create_interface();
	fd = attach_queue(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	backend = create(NULL, fd);
	cr_assert_not_null(backend, "%s", err);
	cr_assert_neq(watched.fd, fd);
	cr_assert_eq(backend->offloads, ALL_OFFLOADS);
	cr_assert(fcntl(watched.fd, F_GETFL) & O_NONBLOCK);
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "the user's descriptor closed");
	close(fd);
}

Test(net_tap, inherited_tap_without_vnet_header_is_refused)
{
	char expected[128];
	int fd;

	create_interface();
	fd = attach_queue(IFF_TAP | IFF_NO_PI);
	cr_assert_null(create(NULL, fd));
	snprintf(expected, sizeof(expected),
		 "tap: fd %d is not a TAP device with IFF_NO_PI and "
		 "IFF_VNET_HDR",
		 fd);
	cr_assert_str_eq(err, expected);
	cr_assert_neq(fcntl(fd, F_GETFD), -1, "the user's descriptor closed");
	close(fd);
}

Test(net_tap, frames_cross_a_real_tap_both_ways)
{
	static const struct virtio_net_hdr plain;
	uint8_t frame[SMALL_FRAME], back[256];
	const struct iovec piece = { .iov_base = frame,
				     .iov_len = sizeof(frame) };
	struct pollfd ready;
	unsigned int index;
	int sock;

	sock = start_on_a_real_tap();

	/* Host to guest. */
	test_frame(frame, sizeof(frame), 10);
	index = send_until_received(sock, frame, sizeof(frame));
	assert_received(index, frame, sizeof(frame));
	cr_assert_eq(received.frames[index].hdr.flags, 0);
	cr_assert_eq(received.frames[index].hdr.gso_type, 0);

	/* Guest to host. */
	test_frame(frame, sizeof(frame), 11);
	cr_assert_eq(backend->ops->transmit(backend, &plain, &piece, 1), 0);
	ready = (struct pollfd){ .fd = sock, .events = POLLIN };
	cr_assert_eq(poll(&ready, 1, 2000), 1, "nothing arrived on the host");
	cr_assert_eq(recv(sock, back, sizeof(back), 0), (ssize_t)sizeof(frame));
	cr_assert_arr_eq(back, frame, sizeof(frame));
	cr_assert_eq(backend->stats.tx_frames, 1);
	close(sock);
}

/* A host frame with a partial checksum (sent through a packet socket with
 * PACKET_VNET_HDR) reaches a guest that accepts checksum offload as is,
 * and one that does not with the checksum filled in by the kernel. */
Test(net_tap, partial_checksums_reach_only_a_guest_that_accepts_them)
{
	struct {
		uint8_t legacy_header[10]; /* struct virtio_net_hdr without
					    * num_buffers */
		uint8_t frame[SMALL_FRAME];
	} packet = { 0 };
	const uint16_t csum_start = ETH_HLEN + 20, csum_offset = 16;
	const struct virtio_net_hdr partial = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.csum_start = csum_start,
		.csum_offset = csum_offset,
	};
	uint8_t checksummed[SMALL_FRAME];
	unsigned int index;
	int sock, on = 1;
	uint16_t checksum;

	sock = start_on_a_real_tap();
	cr_assert_eq(setsockopt(sock, SOL_PACKET, PACKET_VNET_HDR, &on,
				sizeof(on)),
		     0, "%s", strerror(errno));
	memcpy(packet.legacy_header, &partial, sizeof(packet.legacy_header));
	test_frame(packet.frame, sizeof(packet.frame), 12);
	memset(packet.frame + csum_start + csum_offset, 0, 2);

	cr_assert_eq(backend->ops->set_receive_offloads(backend,
							NET_OFFLOAD_CSUM),
		     0);
	index = send_until_received(sock, &packet, sizeof(packet));
	cr_assert_eq(received.frames[index].hdr.flags,
		     VIRTIO_NET_HDR_F_NEEDS_CSUM);
	cr_assert_eq(received.frames[index].hdr.csum_start, csum_start);
	cr_assert_eq(received.frames[index].hdr.csum_offset, csum_offset);
	assert_received(index, packet.frame, sizeof(packet.frame));

	forget_received();
	cr_assert_eq(backend->ops->set_receive_offloads(backend, 0), 0);
	index = send_until_received(sock, &packet, sizeof(packet));
	cr_assert_eq(received.frames[index].hdr.flags, 0);
	memcpy(checksummed, packet.frame, sizeof(checksummed));
	checksum = internet_checksum(checksummed + csum_start,
				     sizeof(checksummed) - csum_start);
	memcpy(checksummed + csum_start + csum_offset, &checksum, 2);
	assert_received(index, checksummed, sizeof(checksummed));
	close(sock);
}
