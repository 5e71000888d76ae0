/*
 * virtio-net, virtio 1.2 §5.1. Every frame travels behind the 12-byte
 * struct virtio_net_hdr (VERSION_1, §5.1.6), laid out over whatever
 * buffers the driver chose (§2.7.4): nothing assumes the header has a
 * buffer of its own.
 *
 * Threads and locks: queue work, the backend's receive(), activation and
 * reset run on the event thread; configuration reads come from vCPUs, and
 * announce and set_link from any thread. tx_lock guards the transmitq and
 * the controlq, rx_lock the receiveq, config_lock the status the driver
 * reads; `active` is written holding all three and read holding any. They
 * nest in that order. TX and RX have locks of their own because a backend
 * may hand a frame to receive() from inside transmit() (libslirp answers
 * an ARP request at once); for the same reason receive_ready(), which may
 * deliver at once, is never called holding rx_lock. The end of a burst
 * takes tx_lock as well, to give sent chains back with its signal: a
 * backend ends bursts only outside transmit().
 */
#include "net.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "../array.h"

#define NET_QUEUE_COUNT 3
/* How long a sent frame's chain may wait for a receive signal or the next
 * transmit round to go back with (see publish_sent_chains). */
#define NET_TX_COMPLETION_DELAY_NS (200 * 1000)
#define NET_HEADER_SIZE sizeof(struct virtio_net_hdr)
#define FEATURE(bit) (UINT64_C(1) << (bit))

struct receive_chain {
	uint16_t head;
	uint32_t written;
};

struct virtio_net {
	struct virtio_device device;
	struct net_backend *backend;
	uint8_t mac[6];

	pthread_mutex_t tx_lock;
	uint32_t tx_offloads; /* NET_OFFLOAD_* the driver may send */
	/* One chain at a time; too large for the event thread's stack. */
	struct virtqueue_element tx_element;
	/* Chains whose frames went out, not yet in the used ring, and the
	 * timer that puts them there at the latest (publish_sent_chains). */
	uint16_t tx_sent[VIRTQUEUE_MAX_SIZE];
	unsigned int tx_sent_count;
	int tx_timer;
	bool tx_timer_armed;

	pthread_mutex_t rx_lock;
	uint32_t rx_offloads; /* NET_OFFLOAD_* the driver takes */
	bool mergeable; /* MRG_RXBUF negotiated */
	bool guest_csum; /* GUEST_CSUM negotiated: DATA_VALID may go in */
	/* receive() refused a frame: the backend waits for receive_ready()
	 * after the driver's next receiveq kick. */
	bool backend_waiting;
	/* Inside a burst of the backend's frames (net_burst_begin), and
	 * whether a frame of it is yet to be signalled. */
	bool rx_burst, rx_signal_held;
	/* The first chain of a frame (it takes the header, written last)
	 * and the chain being filled, with every chain taken so far. */
	struct virtqueue_element rx_first, rx_next;
	struct receive_chain rx_chains[VIRTQUEUE_MAX_SIZE];

	pthread_mutex_t config_lock;
	uint16_t status; /* VIRTIO_NET_S_* */
	bool announce_negotiated;

	bool active; /* between activate and reset */
	/* Paused (under rx_lock): received frames are refused, so the
	 * backend holds them and pushes back, as when the ring is full. */
	bool quiesced;
	struct virtio_net_stats stats; /* tx_* under tx_lock, rx_* under rx_lock */
};

/*
 * A feature that needs another (§5.1.3.1) comes after it, so that one pass
 * in this order removes whatever lost what it needs.
 */
static const struct {
	unsigned int feature;
	uint64_t needs_one_of;
} dependencies[] = {
	{ VIRTIO_NET_F_HOST_TSO4, FEATURE(VIRTIO_NET_F_CSUM) },
	{ VIRTIO_NET_F_HOST_TSO6, FEATURE(VIRTIO_NET_F_CSUM) },
	{ VIRTIO_NET_F_HOST_ECN, FEATURE(VIRTIO_NET_F_HOST_TSO4) |
					 FEATURE(VIRTIO_NET_F_HOST_TSO6) },
	{ VIRTIO_NET_F_GUEST_TSO4, FEATURE(VIRTIO_NET_F_GUEST_CSUM) },
	{ VIRTIO_NET_F_GUEST_TSO6, FEATURE(VIRTIO_NET_F_GUEST_CSUM) },
	{ VIRTIO_NET_F_GUEST_ECN, FEATURE(VIRTIO_NET_F_GUEST_TSO4) |
					  FEATURE(VIRTIO_NET_F_GUEST_TSO6) },
	{ VIRTIO_NET_F_GUEST_ANNOUNCE, FEATURE(VIRTIO_NET_F_CTRL_VQ) },
};

/* Each offload as a feature of frames the driver sends (host) and of
 * frames it receives (guest). */
static const struct {
	uint32_t offload;
	unsigned int host, guest;
} offload_features[] = {
	{ NET_OFFLOAD_CSUM, VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM },
	{ NET_OFFLOAD_TSO4, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_GUEST_TSO4 },
	{ NET_OFFLOAD_TSO6, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_GUEST_TSO6 },
	{ NET_OFFLOAD_TSO_ECN, VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_GUEST_ECN },
};

static struct virtio_net *net_of(struct virtio_device *device)
{
	return (struct virtio_net *)((char *)device -
				     offsetof(struct virtio_net, device));
}

static uint64_t without_unmet_dependencies(uint64_t features)
{
	for (size_t i = 0; i < ARRAY_SIZE(dependencies); i++) {
		if ((features & FEATURE(dependencies[i].feature)) &&
		    !(features & dependencies[i].needs_one_of))
			features &= ~FEATURE(dependencies[i].feature);
	}
	return features;
}

static uint64_t offered_features(uint32_t backend_offloads)
{
	uint64_t features = FEATURE(VIRTIO_F_VERSION_1) |
			    FEATURE(VIRTIO_F_INDIRECT_DESC) |
			    FEATURE(VIRTIO_F_EVENT_IDX) |
			    FEATURE(VIRTIO_NET_F_MAC) |
			    FEATURE(VIRTIO_NET_F_MRG_RXBUF) |
			    FEATURE(VIRTIO_NET_F_STATUS) |
			    FEATURE(VIRTIO_NET_F_CTRL_VQ) |
			    FEATURE(VIRTIO_NET_F_GUEST_ANNOUNCE);

	for (size_t i = 0; i < ARRAY_SIZE(offload_features); i++) {
		if (backend_offloads & offload_features[i].offload)
			features |= FEATURE(offload_features[i].host) |
				    FEATURE(offload_features[i].guest);
	}
	/* §2.2.2: never offer a feature without the ones it needs. */
	return without_unmet_dependencies(features);
}

/* The offloads of one direction the driver negotiated. */
static uint32_t negotiated_offloads(const struct virtio_device *device,
				    bool host)
{
	uint32_t offloads = 0;

	for (size_t i = 0; i < ARRAY_SIZE(offload_features); i++) {
		if (virtio_has_feature(device, host ? offload_features[i].host
						    : offload_features[i].guest))
			offloads |= offload_features[i].offload;
	}
	return offloads;
}

/* A driver MUST NOT accept a feature without the ones it needs (§2.2.1). */
static bool net_features_acceptable(const struct virtio_device *device)
{
	return without_unmet_dependencies(device->driver_features) ==
	       device->driver_features;
}

static void net_read_config(struct virtio_device *device, uint32_t offset,
			    uint8_t *data, uint32_t size)
{
	struct virtio_net *net = net_of(device);
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	uint16_t status, pairs = htole16(1);

	pthread_mutex_lock(&net->config_lock);
	status = htole16(net->status);
	pthread_mutex_unlock(&net->config_lock);
	memcpy(config + VIRTIO_NET_CONFIG_MAC, net->mac, sizeof(net->mac));
	memcpy(config + VIRTIO_NET_CONFIG_STATUS, &status, sizeof(status));
	memcpy(config + VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS, &pairs,
	       sizeof(pairs));
	memcpy(data, config + offset, size);
}

/* --- transmitq and controlq (tx_lock) ----------------------------------- */

/* Sends one frame on: true when it went out. Its chain's used length is
 * 0, nothing is written (§5.1.6.2). */
static bool transmit_chain(struct virtio_net *net,
			   struct virtqueue_element *element)
{
	struct virtio_net_hdr header;
	struct iovec *frame;
	unsigned int count;
	size_t frame_len;

	/* A transmit chain is device-readable only. */
	if (element->in_count || element->out_bytes < NET_HEADER_SIZE) {
		net->stats.tx_dropped++;
		return false;
	}
	virtqueue_copy_from_out(element, 0, &header, sizeof(header));
	/* The device ignores flags it does not expect from a driver
	 * (§5.1.6.2.2): DATA_VALID is for received frames only. num_buffers
	 * is the device's, also on transmit. */
	header.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	header.num_buffers = 0;
	frame_len = element->out_bytes - NET_HEADER_SIZE;
	if (net_header_check(&header, frame_len, net->tx_offloads)) {
		net->stats.tx_dropped++;
		return false;
	}
	frame = virtqueue_out_from(element, NET_HEADER_SIZE, &count);
	if (net->backend->ops->transmit(net->backend, &header, frame, count) < 0) {
		net->stats.tx_dropped++;
		return false;
	}
	net->stats.tx_frames++;
	net->stats.tx_bytes += frame_len;
	return true;
}

/*
 * The chains of sent frames go back to the driver not at once but with
 * the next thing that interrupts it anyway: the signal of a burst of
 * received frames (Linux frees sent frames in its receive path too), or
 * the next transmit round, and NET_TX_COMPLETION_DELAY_NS after their own
 * round at the latest; half a queue of them goes back at once. A driver
 * that finds chains still outstanding when it asks for a transmit
 * interrupt (EVENT_IDX's used_event) sets it three quarters of the way
 * through them, where one that finds none asks for the next chain used:
 * given back at once, every chain cost the guest an interrupt, and the
 * exits those take (docs/decisions.md, "Sent chains go back with the next
 * interrupt"). Chains the device refuses go back at once.
 */
static void set_completion_timer(struct virtio_net *net, bool armed)
{
	struct itimerspec when = {
		.it_value.tv_nsec = armed ? NET_TX_COMPLETION_DELAY_NS : 0,
	};

	if (net->tx_timer_armed == armed)
		return;
	/* Cannot fail with a valid descriptor and time. */
	timerfd_settime(net->tx_timer, 0, &when, NULL);
	net->tx_timer_armed = armed;
}

/* Puts the sent chains in the used ring; tx_lock held. */
static void publish_sent_chains(struct virtio_net *net)
{
	struct virtio_device *device = &net->device;
	struct virtqueue *queue = &device->queues[VIRTIO_NET_TRANSMITQ];

	set_completion_timer(net, false);
	if (!net->tx_sent_count)
		return;
	for (unsigned int i = 0; i < net->tx_sent_count; i++)
		virtqueue_push(queue, net->tx_sent[i], 0);
	net->tx_sent_count = 0;
	device->notify_queue(device, VIRTIO_NET_TRANSMITQ);
}

static void completion_timer_expired(void *opaque, uint32_t events)
{
	struct virtio_net *net = opaque;
	uint64_t expirations;

	(void)events;
	/* Nothing to read: the chains went back another way since, and the
	 * timer was disarmed or armed again for later ones. */
	if (read(net->tx_timer, &expirations, sizeof(expirations)) !=
	    sizeof(expirations))
		return;
	pthread_mutex_lock(&net->tx_lock);
	net->tx_timer_armed = false;
	publish_sent_chains(net);
	pthread_mutex_unlock(&net->tx_lock);
}

/* A command (§5.1.6.5): class, command and its data device-readable, then
 * the ack byte the device writes. Only ANNOUNCE_ACK is known. */
static uint32_t serve_command(struct virtio_net *net,
			      struct virtqueue_element *element)
{
	uint8_t command[2];
	uint8_t ack = VIRTIO_NET_ERR;

	if (element->in_bytes == 0)
		return 0; /* nowhere to answer */
	if (virtqueue_copy_from_out(element, 0, command, sizeof(command)) ==
		    sizeof(command) &&
	    command[0] == VIRTIO_NET_CTRL_ANNOUNCE &&
	    command[1] == VIRTIO_NET_CTRL_ANNOUNCE_ACK) {
		/* The guest announced itself (§5.1.6.5.4). */
		pthread_mutex_lock(&net->config_lock);
		net->status &= ~VIRTIO_NET_S_ANNOUNCE;
		pthread_mutex_unlock(&net->config_lock);
		ack = VIRTIO_NET_OK;
	}
	return (uint32_t)virtqueue_copy_to_in(element, 0, &ack, sizeof(ack));
}

/* Serves the available chains: 0 once the ring is empty or the round's
 * budget spent (virtio_serve_queue: a guest that keeps its transmit queue
 * full must not starve the backend's received frames, whose ACKs a
 * sending guest's TCP waits for, nor the other devices), or -EINVAL when
 * the driver broke the ring itself (see virtqueue_pop). A chain used goes
 * to the driver at once, with an interrupt if it asked for one
 * (EVENT_IDX's used_event, or NO_INTERRUPT), except a sent frame's
 * (publish_sent_chains): its chain waits, but never for more than half
 * the queue, so that a driver that stopped for room hears of it before
 * the end of a long batch. */
static int serve_chains(struct virtio_net *net, unsigned int index)
{
	struct virtio_device *device = &net->device;
	struct virtqueue *queue = &device->queues[index];
	struct virtqueue_element *element = &net->tx_element;

	for (;;) {
		uint16_t last_avail_idx = queue->last_avail_idx;
		int err = virtqueue_pop(queue, element);

		if (err == 0)
			return 0;
		if (err < 0) {
			if (queue->last_avail_idx == last_avail_idx)
				return err;
			/* A malformed chain, already given back. */
			if (index == VIRTIO_NET_TRANSMITQ)
				net->stats.tx_dropped++;
		} else if (index == VIRTIO_NET_CONTROLQ) {
			virtqueue_push(queue, element->head,
				       serve_command(net, element));
		} else if (transmit_chain(net, element)) {
			net->tx_sent[net->tx_sent_count++] = element->head;
			if (net->tx_sent_count >= queue->size / 2u)
				publish_sent_chains(net);
			continue;
		} else {
			virtqueue_push(queue, element->head, 0);
		}
		device->notify_queue(device, index);
	}
}

/* One round of a queue, with kicks off while draining. Chains made
 * available before the kicks were enabled again (§2.7.10) are served in
 * the same round, within its budget. */
static void serve_queue(struct virtio_net *net, unsigned int index)
{
	struct virtio_device *device = &net->device;
	struct virtqueue *queue = &device->queues[index];
	int err = 0;

	pthread_mutex_lock(&net->tx_lock);
	/* A kick that raced with a reset finds the device stopped. */
	if (net->active && queue->ready) {
		if (index == VIRTIO_NET_TRANSMITQ)
			publish_sent_chains(net);
		do {
			virtqueue_set_notification(queue, false);
			err = serve_chains(net, index);
			virtqueue_set_notification(queue, true);
		} while (!err && virtqueue_has_available(queue));
		if (net->tx_sent_count)
			set_completion_timer(net, true);
	}
	pthread_mutex_unlock(&net->tx_lock);
	if (err < 0)
		device->needs_reset(device);
}

/* --- receiveq (rx_lock) -------------------------------------------------- */

/* Copies the frame's bytes from frame_offset on into element's writable
 * buffers from offset on, as many as fit: the bytes copied. */
static size_t copy_frame(const struct virtqueue_element *element,
			 size_t offset, const struct iovec *frame,
			 unsigned int count, size_t frame_offset)
{
	size_t copied = 0;

	for (unsigned int i = 0; i < count; i++) {
		if (frame_offset >= frame[i].iov_len) {
			frame_offset -= frame[i].iov_len;
			continue;
		}
		size_t len = frame[i].iov_len - frame_offset;
		size_t done = virtqueue_copy_to_in(
			element, offset + copied,
			(const uint8_t *)frame[i].iov_base + frame_offset, len);

		copied += done;
		if (done < len)
			break; /* the chain is full */
		frame_offset = 0;
	}
	return copied;
}

/* Gives back the chains taken for a frame with nothing written, and
 * counts the frame dropped. */
static int drop_frame(struct virtio_net *net, struct virtqueue *queue,
		      unsigned int taken)
{
	for (unsigned int i = 0; i < taken; i++)
		virtqueue_push(queue, net->rx_chains[i].head, 0);
	net->stats.rx_dropped++;
	return 0;
}

/*
 * Places header and frame into receive chains, each filled before the
 * next is taken (§5.1.6.4.1: all but the last used completely); without
 * MRG_RXBUF into one chain that holds both. 0 when the chains went back
 * to the driver, with the frame or, dropped, with nothing; -ENOBUFS, or
 * -EPROTO when the driver broke the ring itself (see virtqueue_pop), with
 * every chain taken put back.
 */
static int take_receive_buffers(struct virtio_net *net,
				struct virtio_net_hdr *header,
				const struct iovec *frame, unsigned int count,
				size_t frame_len)
{
	struct virtqueue *queue = &net->device.queues[VIRTIO_NET_RECEIVEQ];
	size_t total = NET_HEADER_SIZE + frame_len;
	size_t placed = 0; /* frame bytes */
	unsigned int taken = 0;

	while (placed < frame_len) {
		bool first = taken == 0;
		struct virtqueue_element *element =
			first ? &net->rx_first : &net->rx_next;
		uint16_t last_avail_idx = queue->last_avail_idx;

		/* Not even the whole ring would hold the frame. */
		if (taken == queue->size)
			return drop_frame(net, queue, taken);
		int ret = virtqueue_pop(queue, element);
		if (ret == 0) {
			/* Out of buffers: a kick when the driver adds some, and
			 * one more look for any it added in between (§2.7.10).
			 * Every time: with EVENT_IDX the kick comes only for
			 * entries past where the ring ran out this time. */
			virtqueue_set_notification(queue, true);
			ret = virtqueue_pop(queue, element);
		}
		if (ret == 0 ||
		    (ret < 0 && queue->last_avail_idx == last_avail_idx)) {
			virtqueue_rewind(queue, (uint16_t)taken);
			return ret == 0 ? -ENOBUFS : -EPROTO;
		}
		/* A malformed chain went back already; the frame goes too. */
		if (ret < 0)
			return drop_frame(net, queue, taken);
		net->rx_chains[taken++] = (struct receive_chain){
			.head = element->head,
		};
		/* Receive buffers are device-writable (§5.1.6.3), the first
		 * one large enough for the header at least, and with
		 * MRG_RXBUF not negotiated large enough for everything. */
		if (element->out_count || element->in_bytes == 0 ||
		    (first && element->in_bytes < NET_HEADER_SIZE) ||
		    (!net->mergeable && element->in_bytes < total))
			return drop_frame(net, queue, taken);

		size_t offset = first ? NET_HEADER_SIZE : 0;
		size_t copied = copy_frame(element, offset, frame, count, placed);
		net->rx_chains[taken - 1].written = (uint32_t)(offset + copied);
		placed += copied;
	}
	header->num_buffers = htole16((uint16_t)taken);
	virtqueue_copy_to_in(&net->rx_first, 0, header, sizeof(*header));
	for (unsigned int i = 0; i < taken; i++)
		virtqueue_push(queue, net->rx_chains[i].head,
			       net->rx_chains[i].written);
	net->stats.rx_frames++;
	net->stats.rx_bytes += placed;
	return 0;
}

/* The backend's frame into the receiveq; rx_lock held. */
static int deliver_frame(struct virtio_net *net,
			 const struct virtio_net_hdr *backend_header,
			 const struct iovec *frame, unsigned int count)
{
	struct virtio_device *device = &net->device;
	struct virtio_net_hdr header = *backend_header;
	size_t frame_len = 0;
	int ret;

	for (unsigned int i = 0; i < count; i++)
		frame_len += frame[i].iov_len;
	/* Without GUEST_CSUM the flags are 0 (§5.1.6.4.1); a header that
	 * uses offloads the driver did not take cannot go to it. */
	if (!net->guest_csum)
		header.flags &= ~VIRTIO_NET_HDR_F_DATA_VALID;
	if (net_header_check(&header, frame_len, net->rx_offloads)) {
		net->stats.rx_dropped++;
		return 0;
	}
	ret = take_receive_buffers(net, &header, frame, count, frame_len);
	if (ret < 0) {
		/* A broken ring takes nothing until the driver resets the
		 * device (§2.1.2), which resumes the backend. */
		if (ret == -EPROTO)
			device->needs_reset(device);
		net->backend_waiting = true;
		return -ENOBUFS;
	}
	if (net->rx_burst)
		net->rx_signal_held = true;
	else
		device->notify_queue(device, VIRTIO_NET_RECEIVEQ);
	return 0;
}

/* The backend's receiver: never holds a frame, takes it or refuses it. */
static int net_receive(void *opaque, const struct virtio_net_hdr *header,
		       const struct iovec *frame, unsigned int count)
{
	struct virtio_net *net = opaque;
	int ret;

	pthread_mutex_lock(&net->rx_lock);
	if (!net->active || net->quiesced ||
	    !net->device.queues[VIRTIO_NET_RECEIVEQ].ready) {
		net->backend_waiting = true;
		ret = -ENOBUFS;
	} else {
		ret = deliver_frame(net, header, frame, count);
	}
	pthread_mutex_unlock(&net->rx_lock);
	return ret;
}

/*
 * A burst of frames from one read of the backend (a TAP's queue, up to
 * NET_TAP_READ_BUDGET frames) is signalled once, after its last frame:
 * signalling each frame woke the guest's vCPU in the middle of the burst,
 * and on a host with fewer CPUs than busy threads that wake-up could take
 * the CPU from the thread still reading the burst (docs/decisions.md has
 * the measurements). With EVENT_IDX the guest still hears of the burst if
 * used_event lies anywhere in it (§2.7.10).
 */
static void net_burst_begin(void *opaque)
{
	struct virtio_net *net = opaque;

	pthread_mutex_lock(&net->rx_lock);
	net->rx_burst = true;
	pthread_mutex_unlock(&net->rx_lock);
}

static void net_burst_end(void *opaque)
{
	struct virtio_net *net = opaque;

	pthread_mutex_lock(&net->tx_lock);
	pthread_mutex_lock(&net->rx_lock);
	/* A reset in between took the frames' chains, and the held signal
	 * (net_reset), with it. The sent chains go back first, so that the
	 * receive interrupt finds them. */
	if (net->rx_signal_held) {
		publish_sent_chains(net);
		net->device.notify_queue(&net->device, VIRTIO_NET_RECEIVEQ);
	}
	net->rx_burst = net->rx_signal_held = false;
	pthread_mutex_unlock(&net->rx_lock);
	pthread_mutex_unlock(&net->tx_lock);
}

/* The driver added receive buffers. Kicks matter only while the backend
 * waits: they stay off until a frame finds the ring empty again. */
static void receive_kick(struct virtio_net *net)
{
	struct virtqueue *queue = &net->device.queues[VIRTIO_NET_RECEIVEQ];
	bool resume;

	pthread_mutex_lock(&net->rx_lock);
	resume = net->active && net->backend_waiting;
	if (net->active && queue->ready)
		virtqueue_set_notification(queue, false);
	if (resume)
		net->backend_waiting = false;
	pthread_mutex_unlock(&net->rx_lock);
	if (resume)
		net->backend->ops->receive_ready(net->backend);
}

/* --- device ops ---------------------------------------------------------- */

static void net_queue_notify(struct virtio_device *device, unsigned int index)
{
	struct virtio_net *net = net_of(device);

	if (index == VIRTIO_NET_RECEIVEQ)
		receive_kick(net);
	else if (index == VIRTIO_NET_TRANSMITQ || index == VIRTIO_NET_CONTROLQ)
		serve_queue(net, index);
}

static void lock_all(struct virtio_net *net)
{
	pthread_mutex_lock(&net->tx_lock);
	pthread_mutex_lock(&net->rx_lock);
	pthread_mutex_lock(&net->config_lock);
}

static void unlock_all(struct virtio_net *net)
{
	pthread_mutex_unlock(&net->config_lock);
	pthread_mutex_unlock(&net->rx_lock);
	pthread_mutex_unlock(&net->tx_lock);
}

static int net_activate(struct virtio_device *device)
{
	struct virtio_net *net = net_of(device);
	uint32_t rx_offloads = negotiated_offloads(device, false);
	/* While the device is inactive the backend's frames are refused, so
	 * none can arrive with offloads of an earlier negotiation. */
	int err = net->backend->ops->set_receive_offloads(net->backend,
							   rx_offloads);

	if (err)
		return err;
	lock_all(net);
	net->tx_offloads = negotiated_offloads(device, true);
	net->rx_offloads = rx_offloads;
	net->mergeable = virtio_has_feature(device, VIRTIO_NET_F_MRG_RXBUF);
	net->guest_csum = virtio_has_feature(device, VIRTIO_NET_F_GUEST_CSUM);
	net->announce_negotiated =
		virtio_has_feature(device, VIRTIO_NET_F_GUEST_ANNOUNCE);
	net->backend_waiting = false;
	net->active = true;
	unlock_all(net);
	net->backend->ops->receive_ready(net->backend);
	return 0;
}

/* The backend stays attached; its frames are refused until the next
 * activation, which tells it to go on. */
static void net_reset(struct virtio_device *device)
{
	struct virtio_net *net = net_of(device);

	lock_all(net);
	net->active = false;
	net->tx_offloads = net->rx_offloads = 0;
	net->mergeable = net->guest_csum = net->announce_negotiated = false;
	net->backend_waiting = false;
	net->rx_signal_held = false;
	/* The driver takes its chains back with the reset (§2.1.2). */
	net->tx_sent_count = 0;
	set_completion_timer(net, false);
	net->status &= ~VIRTIO_NET_S_ANNOUNCE;
	for (unsigned int i = 0; i < NET_QUEUE_COUNT; i++)
		virtqueue_reset(&device->queues[i]);
	unlock_all(net);
}

/* A pause: the chains of sent frames are the guest's and go back now,
 * with their interrupt; received frames wait in the backend. */
static int net_quiesce(struct virtio_device *device)
{
	struct virtio_net *net = net_of(device);

	pthread_mutex_lock(&net->tx_lock);
	pthread_mutex_lock(&net->rx_lock);
	net->quiesced = true;
	publish_sent_chains(net);
	pthread_mutex_unlock(&net->rx_lock);
	pthread_mutex_unlock(&net->tx_lock);
	return 0;
}

static void net_resume(struct virtio_device *device)
{
	struct virtio_net *net = net_of(device);

	pthread_mutex_lock(&net->rx_lock);
	net->quiesced = false;
	bool resume = net->active && net->backend_waiting;
	if (resume)
		net->backend_waiting = false;
	pthread_mutex_unlock(&net->rx_lock);
	if (resume)
		net->backend->ops->receive_ready(net->backend);
}

static unsigned int net_counters(struct virtio_device *device,
				 struct device_counter *out, unsigned int max)
{
	struct virtio_net_stats stats = virtio_net_stats(net_of(device));
	const struct device_counter counters[] = {
		{ "tx_frames", stats.tx_frames },
		{ "tx_bytes", stats.tx_bytes },
		{ "tx_dropped", stats.tx_dropped },
		{ "rx_frames", stats.rx_frames },
		{ "rx_bytes", stats.rx_bytes },
		{ "rx_dropped", stats.rx_dropped },
	};
	unsigned int count = 0;

	for (; count < max && count < ARRAY_SIZE(counters); count++)
		out[count] = counters[count];
	return count;
}

/* Every field is read-only for a VERSION_1 driver (§5.1.4): no
 * write_config. */
static const struct virtio_device_ops net_ops = {
	.features_acceptable = net_features_acceptable,
	.read_config = net_read_config,
	.activate = net_activate,
	.reset = net_reset,
	.queue_notify = net_queue_notify,
	.quiesce = net_quiesce,
	.resume = net_resume,
	.counters = net_counters,
};

struct virtio_net *virtio_net_create(const struct device_context *context,
				     struct net_backend *backend,
				     const uint8_t mac[6])
{
	struct virtio_net *net = calloc(1, sizeof(*net));
	int err;

	if (!net)
		return NULL;
	net->tx_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (net->tx_timer < 0) {
		free(net);
		return NULL;
	}
	err = context->watch_fd(context->context_opaque, net->tx_timer, EPOLLIN,
				completion_timer_expired, net);
	if (err) {
		close(net->tx_timer);
		free(net);
		errno = -err;
		return NULL;
	}
	net->backend = backend;
	memcpy(net->mac, mac, sizeof(net->mac));
	net->status = VIRTIO_NET_S_LINK_UP;
	net->device = (struct virtio_device){
		.name = "virtio-net",
		.device_id = VIRTIO_ID_NET,
		.device_features = offered_features(backend->offloads),
		.config_size = VIRTIO_NET_CONFIG_SIZE,
		.queue_count = NET_QUEUE_COUNT,
		.ops = &net_ops,
		.context = *context,
	};
	for (unsigned int i = 0; i < NET_QUEUE_COUNT; i++) {
		net->device.queues[i].memory = context->memory;
		virtqueue_reset(&net->device.queues[i]);
	}
	pthread_mutex_init(&net->tx_lock, NULL);
	pthread_mutex_init(&net->rx_lock, NULL);
	pthread_mutex_init(&net->config_lock, NULL);
	backend->ops->attach(backend, &(struct net_receiver){
					      .receive = net_receive,
					      .burst_begin = net_burst_begin,
					      .burst_end = net_burst_end,
					      .opaque = net,
				      });
	return net;
}

void virtio_net_destroy(struct virtio_net *net)
{
	if (!net)
		return;
	/* First, so that no frame comes in any more. */
	net->backend->ops->destroy(net->backend);
	net->device.context.unwatch_fd(net->device.context.context_opaque,
				       net->tx_timer);
	close(net->tx_timer);
	pthread_mutex_destroy(&net->config_lock);
	pthread_mutex_destroy(&net->rx_lock);
	pthread_mutex_destroy(&net->tx_lock);
	free(net);
}

struct virtio_device *virtio_net_device(struct virtio_net *net)
{
	return &net->device;
}

void virtio_net_announce(struct virtio_net *net)
{
	bool notify;

	pthread_mutex_lock(&net->config_lock);
	notify = net->active && net->announce_negotiated;
	if (notify)
		net->status |= VIRTIO_NET_S_ANNOUNCE;
	pthread_mutex_unlock(&net->config_lock);
	if (notify)
		net->device.notify_config(&net->device);
}

/* A driver that is not running yet reads the status when it starts. */
void virtio_net_set_link(struct virtio_net *net, bool up)
{
	bool notify;

	pthread_mutex_lock(&net->config_lock);
	uint16_t old = net->status;
	if (up)
		net->status |= VIRTIO_NET_S_LINK_UP;
	else
		net->status &= ~VIRTIO_NET_S_LINK_UP;
	notify = net->active && net->status != old;
	pthread_mutex_unlock(&net->config_lock);
	if (notify)
		net->device.notify_config(&net->device);
}

struct virtio_net_stats virtio_net_stats(struct virtio_net *net)
{
	struct virtio_net_stats stats;

	pthread_mutex_lock(&net->tx_lock);
	stats.tx_frames = net->stats.tx_frames;
	stats.tx_bytes = net->stats.tx_bytes;
	stats.tx_dropped = net->stats.tx_dropped;
	pthread_mutex_unlock(&net->tx_lock);
	pthread_mutex_lock(&net->rx_lock);
	stats.rx_frames = net->stats.rx_frames;
	stats.rx_bytes = net->stats.rx_bytes;
	stats.rx_dropped = net->stats.rx_dropped;
	pthread_mutex_unlock(&net->rx_lock);
	return stats;
}
