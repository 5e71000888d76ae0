/*
 * A network backend (libslirp, TAP) as virtio-net sees it: frames go out to
 * the network and come in from it, each with a virtio-net header in front
 * that describes its checksum and segmentation offloads (virtio 1.2
 * §5.1.6), the same header a TAP device with IFF_VNET_HDR reads and writes.
 *
 * Promise: every call in both directions runs on the event thread. A
 * backend never buffers without bound: when the receiver says it has no
 * room (-ENOBUFS), the backend holds at most a bounded number of frames,
 * stops reading from its side of the network (which pushes back on the
 * host's sockets or the TAP queue), and resumes on receive_ready(). A
 * frame the backend cannot take is dropped and counted in its stats,
 * never fatal.
 */
#ifndef VESSEL_DEVICES_NET_BACKEND_H
#define VESSEL_DEVICES_NET_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "device.h"

/* struct virtio_net_hdr_v1 (§5.1.6), little-endian; num_buffers is the
 * device's to fill on receive (mergeable buffers) and ignored on transmit. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio-net header is 12 bytes");

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Offloads a frame may use, as a bitmask. */
#define NET_OFFLOAD_CSUM (1u << 0) /* partial checksums: NEEDS_CSUM */
#define NET_OFFLOAD_TSO4 (1u << 1) /* GSO_TCPV4 */
#define NET_OFFLOAD_TSO6 (1u << 2) /* GSO_TCPV6 */
#define NET_OFFLOAD_TSO_ECN (1u << 3) /* GSO_ECN with TSO */

#define NET_FRAME_MIN 14 /* an Ethernet header */
/* The largest frame, header not counted: a 64 KiB TSO segment (an IP
 * datagram of at most 65535 bytes) behind an Ethernet and a VLAN header. */
#define NET_FRAME_MAX (65535 + 14 + 4)

/* Whether hdr truthfully describes a frame of frame_len bytes (header not
 * counted) using only offloads: known flags and GSO type, each needing its
 * offload, a checksum position and header length inside the frame, a GSO
 * segment size, and a frame length within NET_FRAME_MIN..NET_FRAME_MAX.
 * 0 or -EINVAL. */
int net_header_check(const struct virtio_net_hdr *hdr, size_t frame_len,
		     uint32_t offloads);

struct net_backend;

/* The device's side, called by the backend. */
struct net_receiver {
	/* A frame from the network; hdr uses only the offloads set with
	 * set_receive_offloads() (all zero without any). 0: taken (given to
	 * the guest, or dropped and counted by the device); -ENOBUFS: the
	 * guest has no receive buffers now, so the backend keeps the frame or
	 * drops it, stops reading, and waits for receive_ready(). */
	int (*receive)(void *opaque, const struct virtio_net_hdr *hdr,
		       const struct iovec *frame, unsigned int count);
	/* Around the receive() calls of one read of the backend's queue: the
	 * guest may hear of the whole burst once, at burst_end, instead of
	 * frame by frame. A backend that never calls them gets each frame
	 * signalled as it is taken. Never called from inside transmit(). */
	void (*burst_begin)(void *opaque);
	void (*burst_end)(void *opaque);
	void *opaque;
};

struct net_backend_stats {
	uint64_t tx_frames, tx_dropped; /* guest to network */
	uint64_t rx_frames, rx_dropped; /* network to guest */
};

struct net_backend_ops {
	/* Connects the device: from now on frames go to receiver (which is
	 * copied), starting after the first receive_ready(). */
	void (*attach)(struct net_backend *backend,
		       const struct net_receiver *receiver);
	/* A frame from the guest: hdr already checked by the device and using
	 * only offloads in backend->offloads. 0, or -errno when the frame was
	 * dropped (counted). Never blocks. */
	int (*transmit)(struct net_backend *backend,
			const struct virtio_net_hdr *hdr,
			const struct iovec *frame, unsigned int count);
	/* The receiver has room (again): deliver held frames, read again. */
	void (*receive_ready)(struct net_backend *backend);
	/* The offloads the guest accepts on received frames, a subset of
	 * backend->offloads. 0 or -errno. */
	int (*set_receive_offloads)(struct net_backend *backend,
				    uint32_t offloads);
	void (*destroy)(struct net_backend *backend);
	/* Optional: the backend's state for a snapshot (names begin with
	 * the backend: "slirp-state"), saved while the device is quiesced,
	 * and restored into a backend of the same configuration. A backend
	 * without them has no state of its own (TAP: reattached by name).
	 * 0 or -errno. */
	int (*save)(struct net_backend *backend,
		    struct device_state_writer *writer);
	int (*restore)(struct net_backend *backend,
		       struct device_state_reader *reader);
};

struct net_backend {
	const char *name; /* "user", "tap": for messages */
	const struct net_backend_ops *ops;
	uint32_t offloads; /* NET_OFFLOAD_* frames in both directions may use */
	struct net_backend_stats stats;
};

#endif
