/*
 * virtio-net (virtio 1.2 §5.1): an Ethernet device whose frames go to and
 * come from a network backend (devices/net_backend.h). Queues: receiveq 0,
 * transmitq 1, controlq 2. Offers MAC, STATUS (link and announce),
 * MRG_RXBUF, CTRL_VQ, GUEST_ANNOUNCE, and the checksum and TSO offloads
 * the backend can carry.
 *
 * Promise: every frame and header from the guest is checked; a malformed
 * one (header too short, unknown GSO type, offsets outside the frame, a
 * frame shorter than an Ethernet header or longer than NET_FRAME_MAX) is
 * dropped and counted, and the chain goes back to the guest. A receive
 * frame that does not fit the guest's buffers is dropped and counted. When
 * the guest gives no receive buffers, the backend is told to wait
 * (backpressure), nothing is queued in the device. The chain of a frame
 * sent goes back with the next signal of received frames or the next
 * transmit round, 200 µs after its own round at the latest; one refused
 * goes back at once.
 */
#ifndef VESSEL_DEVICES_VIRTIO_NET_H
#define VESSEL_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "../device_context.h"
#include "../net_backend.h"
#include "virtio.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21

/* Device configuration (§5.1.4), little-endian: mac[6], le16 status,
 * le16 max_virtqueue_pairs. */
#define VIRTIO_NET_CONFIG_MAC 0
#define VIRTIO_NET_CONFIG_STATUS 6
#define VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS 8
#define VIRTIO_NET_CONFIG_SIZE 10
#define VIRTIO_NET_S_LINK_UP 1
#define VIRTIO_NET_S_ANNOUNCE 2

/* Control commands (§5.1.6.5): class, command, then an ack byte. */
#define VIRTIO_NET_CTRL_ANNOUNCE 3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
#define VIRTIO_NET_OK 0
#define VIRTIO_NET_ERR 1

#define VIRTIO_NET_RECEIVEQ 0
#define VIRTIO_NET_TRANSMITQ 1
#define VIRTIO_NET_CONTROLQ 2

struct virtio_net_stats {
	/* dropped: malformed or backend refused; bytes: frames without the
	 * virtio-net header */
	uint64_t tx_frames, tx_bytes, tx_dropped;
	uint64_t rx_frames, rx_bytes, rx_dropped; /* dropped: did not fit */
};

struct virtio_net;

/* Takes backend (destroyed with the device) and attaches to it. NULL with
 * errno set; the backend then stays the caller's. The link starts up. */
struct virtio_net *virtio_net_create(const struct device_context *context,
				     struct net_backend *backend,
				     const uint8_t mac[6]);
void virtio_net_destroy(struct virtio_net *net);

struct virtio_device *virtio_net_device(struct virtio_net *net);

/* Asks the guest to announce itself (gratuitous ARP, §5.1.6.5.4) if it
 * negotiated GUEST_ANNOUNCE: after the VM moved to another host. Any
 * thread. */
void virtio_net_announce(struct virtio_net *net);
/* The link status the guest sees (VIRTIO_NET_S_LINK_UP); a running driver
 * is told of a change. Any thread. */
void virtio_net_set_link(struct virtio_net *net, bool up);

struct virtio_net_stats virtio_net_stats(struct virtio_net *net);

#endif
