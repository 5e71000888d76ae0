/*
 * Setting a TAP queue up takes a few ioctls on /dev/net/tun (Linux
 * Documentation/networking/tuntap.rst); the frame pump then moves one frame
 * per read and per write, each behind a 12-byte virtio-net header, and
 * stops reading while the receiver is full.
 */
#include "net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAP_OFFLOADS                                                          \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 |             \
	 NET_OFFLOAD_TSO_ECN)

enum net_tap_receive_state {
	RECEIVE_STOPPED, /* not reading: before the first receive_ready() */
	RECEIVE_READING,
	RECEIVE_HOLDING, /* the receiver was full: one frame kept, not reading */
	RECEIVE_CLOSED, /* the TAP side is gone; the descriptor unwatched */
};

struct net_tap {
	struct net_backend backend; /* first: the ops are handed this */
	struct device_context context;
	int fd;
	struct net_receiver receiver;
	enum net_tap_receive_state state;
	uint32_t receive_offloads; /* what the guest accepts */
	/* The frame last read (and, when holding, kept), as the TAP delivers
	 * it: one byte more than the largest frame tells an oversized one. */
	struct virtio_net_hdr header;
	uint8_t frame[NET_FRAME_MAX + 1];
	size_t frame_len;
};

static void start_reading(struct net_tap *tap)
{
	tap->context.modify_fd(tap->context.context_opaque, tap->fd, EPOLLIN);
	tap->state = RECEIVE_READING;
}

/* Stops reading, keeping the frame in hand for receive_ready(). */
static void hold_frame(struct net_tap *tap)
{
	tap->context.modify_fd(tap->context.context_opaque, tap->fd, 0);
	tap->state = RECEIVE_HOLDING;
}

/* The TAP side is gone for good (its interface deleted, the peer closed):
 * epoll would report that on every wait, so stop watching. Transmits go on
 * failing, each counted. */
static void close_receive(struct net_tap *tap)
{
	if (tap->state == RECEIVE_HOLDING)
		tap->backend.stats.rx_dropped++;
	tap->state = RECEIVE_CLOSED;
	tap->context.unwatch_fd(tap->context.context_opaque, tap->fd);
}

/* Hands the frame in tap->header and tap->frame to the receiver, or drops
 * it when its header does not describe it truthfully within the offloads
 * the guest accepts. false when the receiver is full and the frame is to
 * be kept. */
static bool offer_frame(struct net_tap *tap)
{
	struct iovec frame = { .iov_base = tap->frame,
			       .iov_len = tap->frame_len };

	if (net_header_check(&tap->header, tap->frame_len,
			     tap->receive_offloads) < 0) {
		tap->backend.stats.rx_dropped++;
		return true;
	}
	/* The kernel writes the 10-byte legacy header and leaves num_buffers
	 * as it was in the buffer. */
	tap->header.num_buffers = 0;
	/* Without VIRTIO_NET_F_GUEST_CSUM flags are zero (virtio 1.2
	 * §5.1.6.4.1); NEEDS_CSUM is already refused, DATA_VALID is a hint. */
	if (!(tap->receive_offloads & NET_OFFLOAD_CSUM))
		tap->header.flags = 0;
	if (tap->receiver.receive(tap->receiver.opaque, &tap->header, &frame,
				  1) == -ENOBUFS)
		return false;
	tap->backend.stats.rx_frames++;
	return true;
}

static void read_burst(struct net_tap *tap)
{
	struct iovec iov[2] = {
		{ .iov_base = &tap->header, .iov_len = sizeof(tap->header) },
		{ .iov_base = tap->frame, .iov_len = sizeof(tap->frame) },
	};

	for (int i = 0; i < NET_TAP_READ_BUDGET; i++) {
		ssize_t len = readv(tap->fd, iov, 2);

		if (len < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (len <= 0) {
			close_receive(tap);
			return;
		}
		/* A read shorter than the header is a frame too short. */
		tap->frame_len = (size_t)len > sizeof(tap->header)
					 ? (size_t)len - sizeof(tap->header)
					 : 0;
		if (!offer_frame(tap)) {
			hold_frame(tap);
			return;
		}
	}
}

/* What one wake-up reads goes to the receiver as one burst. */
static void read_frames(struct net_tap *tap)
{
	if (tap->receiver.burst_begin)
		tap->receiver.burst_begin(tap->receiver.opaque);
	read_burst(tap);
	if (tap->receiver.burst_end)
		tap->receiver.burst_end(tap->receiver.opaque);
}

/* epoll is level-triggered: a queue left non-empty after
 * NET_TAP_READ_BUDGET frames wakes this again on the next wait. */
static void tap_ready(void *opaque, uint32_t events)
{
	struct net_tap *tap = opaque;

	if (tap->state == RECEIVE_READING && (events & EPOLLIN))
		read_frames(tap);
	else if (events & (EPOLLERR | EPOLLHUP))
		close_receive(tap);
}

static void tap_attach(struct net_backend *backend,
		       const struct net_receiver *receiver)
{
	struct net_tap *tap = (struct net_tap *)backend;

	tap->receiver = *receiver;
}

/* Never waits, the descriptor being non-blocking. A TAP takes a frame
 * whole or refuses it; whatever else happens is a drop. */
static int tap_transmit(struct net_backend *backend,
			const struct virtio_net_hdr *hdr,
			const struct iovec *frame, unsigned int count)
{
	struct net_tap *tap = (struct net_tap *)backend;
	struct iovec iov[IOV_MAX]; /* the header, then the frame */
	size_t len = sizeof(*hdr);
	ssize_t written;
	int ret;

	/* IOV_MAX is also what one writev() takes at most. */
	if (count >= IOV_MAX) {
		tap->backend.stats.tx_dropped++;
		return -EMSGSIZE;
	}
	iov[0] = (struct iovec){ .iov_base = (void *)hdr,
				 .iov_len = sizeof(*hdr) };
	for (unsigned int i = 0; i < count; i++) {
		iov[i + 1] = frame[i];
		len += frame[i].iov_len;
	}
	written = writev(tap->fd, iov, (int)count + 1);
	if (written < 0 || (size_t)written != len) {
		ret = written < 0 ? -errno : -EIO;
		tap->backend.stats.tx_dropped++;
		return ret;
	}
	tap->backend.stats.tx_frames++;
	return 0;
}

static void tap_receive_ready(struct net_backend *backend)
{
	struct net_tap *tap = (struct net_tap *)backend;

	switch (tap->state) {
	case RECEIVE_HOLDING:
		/* The kept frame goes first; the guest's offloads may have
		 * changed since it was read, so it is checked again. */
		if (!offer_frame(tap))
			return;
		start_reading(tap);
		return;
	case RECEIVE_STOPPED:
		start_reading(tap);
		return;
	case RECEIVE_READING:
	case RECEIVE_CLOSED:
		return;
	}
}

static unsigned long tun_offload_flags(uint32_t offloads)
{
	return (offloads & NET_OFFLOAD_CSUM ? TUN_F_CSUM : 0) |
	       (offloads & NET_OFFLOAD_TSO4 ? TUN_F_TSO4 : 0) |
	       (offloads & NET_OFFLOAD_TSO6 ? TUN_F_TSO6 : 0) |
	       (offloads & NET_OFFLOAD_TSO_ECN ? TUN_F_TSO_ECN : 0);
}

static int tap_set_receive_offloads(struct net_backend *backend,
				    uint32_t offloads)
{
	struct net_tap *tap = (struct net_tap *)backend;

	if (offloads & ~backend->offloads)
		return -EINVAL;
	/* Segments carry partial checksums and ECN marks segments: the kernel
	 * refuses TSO without CSUM and ECN without TSO, as virtio 1.2 §5.1.3.1
	 * forbids a driver to accept them. A guest that does anyway gets
	 * whole, checksummed frames. */
	if (!(offloads & NET_OFFLOAD_CSUM))
		offloads = 0;
	if (!(offloads & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)))
		offloads &= ~NET_OFFLOAD_TSO_ECN;
	if (ioctl(tap->fd, TUNSETOFFLOAD, tun_offload_flags(offloads)) < 0)
		return -errno;
	tap->receive_offloads = offloads;
	return 0;
}

static void tap_destroy(struct net_backend *backend)
{
	struct net_tap *tap = (struct net_tap *)backend;

	if (tap->state != RECEIVE_CLOSED)
		tap->context.unwatch_fd(tap->context.context_opaque, tap->fd);
	close(tap->fd);
	free(tap);
}

static const struct net_backend_ops tap_ops = {
	.attach = tap_attach,
	.transmit = tap_transmit,
	.receive_ready = tap_receive_ready,
	.set_receive_offloads = tap_set_receive_offloads,
	.destroy = tap_destroy,
};

struct net_backend *net_tap_create_on_fd(const struct device_context *context,
					 int fd, uint32_t offloads,
					 const char *name, char *err,
					 size_t err_len)
{
	int flags = fcntl(fd, F_GETFL);
	struct net_tap *tap;
	int ret;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(err, err_len,
			 "tap %s: making the descriptor non-blocking: %s", name,
			 strerror(errno));
		close(fd);
		return NULL;
	}
	tap = calloc(1, sizeof(*tap));
	if (!tap) {
		snprintf(err, err_len, "tap %s: out of memory", name);
		close(fd);
		return NULL;
	}
	tap->backend.name = "tap";
	tap->backend.ops = &tap_ops;
	tap->backend.offloads = offloads;
	tap->context = *context;
	tap->fd = fd;
	tap->state = RECEIVE_STOPPED;
	/* Watched with no events until the first receive_ready(). */
	ret = context->watch_fd(context->context_opaque, fd, 0, tap_ready, tap);
	if (ret < 0) {
		snprintf(err, err_len, "tap %s: watching the descriptor: %s",
			 name, strerror(-ret));
		close(fd);
		free(tap);
		return NULL;
	}
	return &tap->backend;
}

/* Attaches a new descriptor to the interface ifname. It must exist: a
 * mistyped name is refused rather than silently becoming a new,
 * unconfigured interface, which TUNSETIFF would create when run as root
 * (only should the interface vanish between the check and the ioctl, and
 * then it goes away again when vessel closes it). The descriptor, or
 * -errno. */
static int open_interface(const char *ifname, char *err, size_t err_len)
{
	struct ifreq request = {
		.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
	};
	size_t len = strlen(ifname);
	int fd, ret;

	if (len == 0 || len >= IFNAMSIZ) {
		snprintf(err, err_len,
			 "tap '%s': an interface name is 1 to %d characters",
			 ifname, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (if_nametoindex(ifname) == 0) {
		ret = -errno;
		if (ret == -ENODEV)
			snprintf(err, err_len,
				 "tap %s: no such interface (create it with "
				 "'ip tuntap add %s mode tap')",
				 ifname, ifname);
		else
			snprintf(err, err_len, "tap %s: %s", ifname,
				 strerror(-ret));
		return ret;
	}
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "tap %s: /dev/net/tun: %s", ifname,
			 strerror(-ret));
		return ret;
	}
	memcpy(request.ifr_name, ifname, len);
	if (ioctl(fd, TUNSETIFF, &request) < 0) {
		ret = -errno;
		snprintf(err, err_len, "tap %s: TUNSETIFF: %s", ifname,
			 strerror(-ret));
		close(fd);
		return ret;
	}
	return fd;
}

/* Checks that an inherited descriptor is a TAP queue that frames can be
 * read from as this backend expects, and takes a copy of it (the number
 * the user gave, inherited, must outlive this backend for the next one
 * after a reboot): the copy, with its interface's name, or -errno.
 * Messages name the descriptor as the user gave it. */
static int take_inherited(int inherited, char name[IFNAMSIZ], char *err,
			  size_t err_len)
{
	const short needed = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	struct ifreq request = { 0 };
	int fd;

	if (ioctl(inherited, TUNGETIFF, &request) < 0 ||
	    (request.ifr_flags & (IFF_TUN | needed)) != needed) {
		snprintf(err, err_len,
			 "tap: fd %d is not a TAP device with IFF_NO_PI and "
			 "IFF_VNET_HDR",
			 inherited);
		return -EINVAL;
	}
	fd = fcntl(inherited, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "tap: fd %d: %s", inherited,
			 strerror(errno));
		return -errno;
	}
	memcpy(name, request.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return fd;
}

/* 12-byte headers, and the offloads the kernel can take, all switched off
 * for received frames until the guest says which it accepts. */
static int set_up_queue(int fd, const char *name, uint32_t *offloads,
			char *err, size_t err_len)
{
	int header_size = sizeof(struct virtio_net_hdr);
	int ret;

	if (ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0) {
		ret = -errno;
		snprintf(err, err_len, "tap %s: TUNSETVNETHDRSZ: %s", name,
			 strerror(-ret));
		return ret;
	}
	if (ioctl(fd, TUNSETOFFLOAD, tun_offload_flags(TAP_OFFLOADS)) == 0)
		*offloads = TAP_OFFLOADS;
	else
		*offloads = 0;
	if (ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) {
		ret = -errno;
		snprintf(err, err_len, "tap %s: TUNSETOFFLOAD: %s", name,
			 strerror(-ret));
		return ret;
	}
	return 0;
}

struct net_backend *net_tap_create(const struct device_context *context,
				   const struct net_tap_options *options,
				   char *err, size_t err_len)
{
	char name[IFNAMSIZ];
	uint32_t offloads = 0;
	int fd;

	if (options->ifname && options->fd >= 0) {
		snprintf(err, err_len,
			 "tap: give an interface name or a descriptor, not both");
		return NULL;
	}
	if (options->ifname) {
		fd = open_interface(options->ifname, err, err_len);
		if (fd < 0)
			return NULL;
		snprintf(name, sizeof(name), "%s", options->ifname);
	} else if (options->fd < 0) {
		snprintf(err, err_len,
			 "tap: an interface name or a descriptor is needed");
		return NULL;
	} else {
		fd = take_inherited(options->fd, name, err, err_len);
		if (fd < 0)
			return NULL;
	}
	if (set_up_queue(fd, name, &offloads, err, err_len) < 0) {
		close(fd);
		return NULL;
	}
	return net_tap_create_on_fd(context, fd, offloads, name, err, err_len);
}
