/*
 * virtio-net (virtio 1.2 §5.1) driven through its ops on a fake guest RAM,
 * with the three queues laid out by hand as a driver would, a recording
 * transport, and a recording backend in place of libslirp or TAP: it keeps
 * the frames the guest sent and the calls the device made, and hands the
 * device frames through the receiver it was given. The device's timer is a
 * real timerfd: the test waits for it and calls the device's handler, as
 * the event loop would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include "vmm/state_fdt.h"
#include "devices/virtio/net.h"
#include "fakes.h"

#define RAM_SIZE (4u << 20)
#define QUEUE_SIZE 16
#define INDIRECT_ADDR 0x8000
#define DATA_ADDR 0x100000
#define HEADER_SIZE 12
#define ALL_OFFLOADS (NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | \
		      NET_OFFLOAD_TSO_ECN)
#define F(bit) (UINT64_C(1) << (bit))
/* What every virtio-net offers, whatever the backend carries. */
#define BASE_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_INDIRECT_DESC) | \
		       F(VIRTIO_F_EVENT_IDX) | F(VIRTIO_NET_F_MAC) |      \
		       F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_STATUS) | \
		       F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_GUEST_ANNOUNCE))
#define OFFLOAD_FEATURES (F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | \
			  F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO4) | \
			  F(VIRTIO_NET_F_HOST_TSO6) | F(VIRTIO_NET_F_GUEST_TSO6) | \
			  F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_ECN))

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

/* --- the recording backend ---------------------------------------------- */

static struct {
	struct net_backend backend;
	struct net_receiver receiver;
	unsigned int attaches, destroys, receive_ready_calls, offload_calls;
	uint32_t receive_offloads;
	int transmit_result;
	unsigned int transmits;
	struct virtio_net_hdr header; /* of the last frame sent */
	unsigned int frame_count; /* its buffers */
	size_t frame_len;
	uint8_t frame[NET_FRAME_MAX + 1];
	void (*on_transmit)(void); /* the guest's move while a frame goes out */
} backend;

static void backend_attach(struct net_backend *attached,
			   const struct net_receiver *receiver)
{
	cr_assert_eq(attached, &backend.backend);
	backend.receiver = *receiver;
	backend.attaches++;
}

static int backend_transmit(struct net_backend *sending,
			    const struct virtio_net_hdr *header,
			    const struct iovec *frame, unsigned int count)
{
	cr_assert_eq(sending, &backend.backend);
	backend.transmits++;
	backend.header = *header;
	backend.frame_count = count;
	backend.frame_len = 0;
	for (unsigned int i = 0; i < count; i++) {
		cr_assert_leq(backend.frame_len + frame[i].iov_len, NET_FRAME_MAX);
		memcpy(backend.frame + backend.frame_len, frame[i].iov_base,
		       frame[i].iov_len);
		backend.frame_len += frame[i].iov_len;
	}
	if (backend.on_transmit)
		backend.on_transmit();
	return backend.transmit_result;
}

static void backend_receive_ready(struct net_backend *ready)
{
	cr_assert_eq(ready, &backend.backend);
	backend.receive_ready_calls++;
}

static int backend_set_receive_offloads(struct net_backend *offloading,
					uint32_t offloads)
{
	cr_assert_eq(offloading, &backend.backend);
	cr_assert_eq(offloads & ~offloading->offloads, 0,
		     "offloads the backend does not carry");
	backend.offload_calls++;
	backend.receive_offloads = offloads;
	return 0;
}

static void backend_destroy(struct net_backend *destroyed)
{
	cr_assert_eq(destroyed, &backend.backend);
	backend.destroys++;
}

static const struct net_backend_ops backend_ops = {
	.attach = backend_attach,
	.transmit = backend_transmit,
	.receive_ready = backend_receive_ready,
	.set_receive_offloads = backend_set_receive_offloads,
	.destroy = backend_destroy,
};

/* --- the guest side and the transport ------------------------------------ */

struct ring {
	uint64_t desc, avail, used;
	uint16_t next_desc, avail_idx;
};

struct buffer {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

static uint8_t *ram;
static struct guest_memory memory;
static struct virtio_net *net;
static struct virtio_device *device;
static struct ring rings[3];
static unsigned int notify_calls[3], needs_reset_calls, notify_config_calls;
/* The queues notified, in order. */
static unsigned int notified_queues[8], notified_count;

static void record_notify(struct virtio_device *notified, unsigned int queue)
{
	cr_assert_eq(notified, device);
	cr_assert_lt(queue, 3);
	notify_calls[queue]++;
	if (notified_count < 8)
		notified_queues[notified_count++] = queue;
}

/* The one descriptor the device has the event loop watch: its timer. */
static struct {
	int fd;
	device_fd_handler handler;
	void *opaque;
	unsigned int watches, unwatches;
} watched;

static int fake_watch_fd(void *context_opaque, int fd, uint32_t events,
			 device_fd_handler handler, void *handler_opaque)
{
	cr_assert_null(context_opaque);
	cr_assert_eq(events, EPOLLIN);
	watched.fd = fd;
	watched.handler = handler;
	watched.opaque = handler_opaque;
	watched.watches++;
	return 0;
}

static int fake_unwatch_fd(void *context_opaque, int fd)
{
	cr_assert_null(context_opaque);
	cr_assert_eq(fd, watched.fd);
	watched.unwatches++;
	return 0;
}

static bool completion_timer_armed(void)
{
	struct itimerspec left;

	cr_assert_eq(timerfd_gettime(watched.fd, &left), 0);
	return left.it_value.tv_sec || left.it_value.tv_nsec;
}

/* The timer was set: still running, or already expired and not yet read
 * (200 µs pass quickly on a loaded machine). */
static bool completion_timer_set(void)
{
	struct pollfd ready = { .fd = watched.fd, .events = POLLIN };

	return completion_timer_armed() || poll(&ready, 1, 0) == 1;
}

/* Waits for the timer, if armed, and does what the event loop does when
 * its descriptor becomes readable. */
static void completion_timer_expires(void)
{
	struct pollfd ready = { .fd = watched.fd, .events = POLLIN };

	if (completion_timer_armed())
		cr_assert_eq(poll(&ready, 1, 1000), 1, "the timer never fired");
	watched.handler(watched.opaque, EPOLLIN);
}

static void record_needs_reset(struct virtio_device *failed)
{
	cr_assert_eq(failed, device);
	needs_reset_calls++;
}

static void record_notify_config(struct virtio_device *changed)
{
	cr_assert_eq(changed, device);
	notify_config_calls++;
}

static void create_device(uint32_t offloads)
{
	struct device_context context = {
		.memory = &memory,
		.watch_fd = fake_watch_fd,
		.unwatch_fd = fake_unwatch_fd,
	};

	backend.backend = (struct net_backend){
		.name = "test",
		.ops = &backend_ops,
		.offloads = offloads,
	};
	net = virtio_net_create(&context, &backend.backend, mac);
	cr_assert_not_null(net);
	cr_assert_eq(watched.watches, 1, "the timer is watched");
	cr_assert_eq(backend.attaches, 1, "attached once at creation");
	cr_assert_not_null(backend.receiver.opaque);
	device = virtio_net_device(net);
	device->notify_queue = record_notify;
	device->needs_reset = record_needs_reset;
	device->notify_config = record_notify_config;
}

static void destroy_device(void)
{
	unsigned int destroys = backend.destroys;

	virtio_net_destroy(net);
	cr_assert_eq(backend.destroys, destroys + 1, "the backend goes with it");
	cr_assert_eq(watched.unwatches, 1, "the timer is unwatched");
	memset(&watched, 0, sizeof(watched));
	net = NULL;
	backend.attaches = 0;
}

/* What the transport does up to DRIVER_OK: the driver accepted features
 * and set up all three queues. */
static void activate(uint64_t features)
{
	device->driver_features = features;
	cr_assert(device->ops->features_acceptable(device));
	for (unsigned int i = 0; i < 3; i++) {
		struct virtqueue *queue = &device->queues[i];
		uint64_t base = 0x10000 * (i + 1);

		rings[i] = (struct ring){ .desc = base, .avail = base + 0x400,
					  .used = base + 0x800 };
		memset(ram + base, 0, 0x1000);
		queue->size = QUEUE_SIZE;
		queue->desc_addr = rings[i].desc;
		queue->avail_addr = rings[i].avail;
		queue->used_addr = rings[i].used;
		queue->event_idx = features & F(VIRTIO_F_EVENT_IDX);
		queue->indirect = features & F(VIRTIO_F_INDIRECT_DESC);
		queue->ready = true;
		cr_assert_eq(virtqueue_validate(queue), 0);
	}
	cr_assert_eq(device->ops->activate(device), 0);
}

static void clear_records(void)
{
	memset(notify_calls, 0, sizeof(notify_calls));
	notified_count = 0;
	backend.on_transmit = NULL;
	needs_reset_calls = notify_config_calls = 0;
	backend.receive_ready_calls = backend.offload_calls = 0;
	backend.transmits = 0;
}

static void setup(void)
{
	ram = fake_ram_create(&memory, RAM_SIZE);
	memset(&backend, 0, sizeof(backend));
	create_device(ALL_OFFLOADS);
	activate(device->device_features);
	cr_assert_eq(backend.receive_ready_calls, 1, "activation resumes RX");
	clear_records();
}

static void teardown(void)
{
	if (net)
		destroy_device();
	free(ram);
}

TestSuite(virtio_net, .init = setup, .fini = teardown);

static void set_desc(uint64_t table, unsigned int index, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t entry = table + 16 * index;

	ram_put64(ram, entry, addr);
	ram_put32(ram, entry + 8, len);
	ram_put16(ram, entry + 12, flags);
	ram_put16(ram, entry + 14, next);
}

static void make_available(struct ring *ring, uint16_t head)
{
	ram_put16(ram, ring->avail + 4 + 2 * (ring->avail_idx % QUEUE_SIZE), head);
	ring->avail_idx++;
	ram_put16(ram, ring->avail + 2, ring->avail_idx);
}

/* Lays out buffers as one chain of queue and makes it available. */
static uint16_t add_chain(unsigned int queue, const struct buffer *buffers,
			  unsigned int count)
{
	struct ring *ring = &rings[queue];
	uint16_t head = ring->next_desc;

	for (unsigned int i = 0; i < count; i++) {
		uint16_t index = ring->next_desc;

		ring->next_desc = (ring->next_desc + 1) % QUEUE_SIZE;
		set_desc(ring->desc, index, buffers[i].gpa, buffers[i].len,
			 (buffers[i].writable ? F_WRITE : 0) |
				 (i + 1 < count ? F_NEXT : 0),
			 ring->next_desc);
	}
	make_available(ring, head);
	return head;
}

/* The same, with the buffers in an indirect table (§2.7.5.3). */
static uint16_t add_indirect_chain(unsigned int queue,
				   const struct buffer *buffers,
				   unsigned int count)
{
	struct ring *ring = &rings[queue];
	uint16_t head = ring->next_desc;

	for (unsigned int i = 0; i < count; i++)
		set_desc(INDIRECT_ADDR, i, buffers[i].gpa, buffers[i].len,
			 (buffers[i].writable ? F_WRITE : 0) |
				 (i + 1 < count ? F_NEXT : 0),
			 i + 1);
	ring->next_desc = (ring->next_desc + 1) % QUEUE_SIZE;
	set_desc(ring->desc, head, INDIRECT_ADDR, 16 * count, F_INDIRECT, 0);
	make_available(ring, head);
	return head;
}

static uint16_t used_idx(unsigned int queue)
{
	return ram_get16(ram, rings[queue].used + 2);
}

/* The n-th used element of queue (from 0). */
static uint32_t used_id(unsigned int queue, uint16_t n)
{
	return ram_get32(ram, rings[queue].used + 4 + 8 * (n % QUEUE_SIZE));
}

static uint32_t used_len(unsigned int queue, uint16_t n)
{
	return ram_get32(ram, rings[queue].used + 8 + 8 * (n % QUEUE_SIZE));
}

static void put_header(uint64_t gpa, const struct virtio_net_hdr *header)
{
	memcpy(ram + gpa, header, sizeof(*header));
}

/* A frame of len bytes whose bytes say where they are. */
static void fill_frame(uint8_t *frame, size_t len)
{
	for (size_t i = 0; i < len; i++)
		frame[i] = (uint8_t)(i * 7 + 1);
}

static uint16_t config16(uint32_t offset)
{
	uint8_t bytes[2];

	device->ops->read_config(device, offset, bytes, sizeof(bytes));
	return (uint16_t)(bytes[0] | bytes[1] << 8);
}

/* --- features and configuration ------------------------------------------ */

Test(virtio_net, identifies_as_a_network_device)
{
	cr_assert_eq(device->device_id, VIRTIO_ID_NET);
	cr_assert_eq(device->queue_count, 3);
	cr_assert_eq(device->config_size, 10);
}

Test(virtio_net, offers_the_offloads_the_backend_carries)
{
	cr_assert_eq(device->device_features, BASE_FEATURES | OFFLOAD_FEATURES);

	destroy_device();
	create_device(0);
	cr_assert_eq(device->device_features, BASE_FEATURES);
}

Test(virtio_net, offers_no_offload_without_the_ones_it_needs)
{
	/* §5.1.3.1: TSO needs checksum offload, ECN needs TSO. */
	destroy_device();
	create_device(NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_TSO_ECN);
	cr_assert_eq(device->device_features, BASE_FEATURES);

	destroy_device();
	create_device(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO_ECN);
	cr_assert_eq(device->device_features,
		     BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			     F(VIRTIO_NET_F_GUEST_CSUM));

	destroy_device();
	create_device(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6 | NET_OFFLOAD_TSO_ECN);
	cr_assert_eq(device->device_features,
		     BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
			     F(VIRTIO_NET_F_GUEST_CSUM) |
			     F(VIRTIO_NET_F_HOST_TSO6) |
			     F(VIRTIO_NET_F_GUEST_TSO6) |
			     F(VIRTIO_NET_F_HOST_ECN) | F(VIRTIO_NET_F_GUEST_ECN));
}

Test(virtio_net, refuses_features_accepted_without_the_ones_they_need)
{
	static const uint64_t refused[] = {
		F(VIRTIO_NET_F_HOST_TSO4),
		F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_ECN),
		F(VIRTIO_NET_F_GUEST_TSO6),
		F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_ECN),
		F(VIRTIO_NET_F_GUEST_ANNOUNCE),
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		device->driver_features = F(VIRTIO_F_VERSION_1) | refused[i];
		cr_assert_not(device->ops->features_acceptable(device),
			      "case %zu accepted", i);
	}
	device->driver_features = F(VIRTIO_F_VERSION_1) |
				  F(VIRTIO_NET_F_CSUM) |
				  F(VIRTIO_NET_F_HOST_TSO4) |
				  F(VIRTIO_NET_F_HOST_ECN);
	cr_assert(device->ops->features_acceptable(device));
}

Test(virtio_net, configuration_holds_mac_status_and_one_queue_pair)
{
	uint8_t config[10];

	device->ops->read_config(device, 0, config, sizeof(config));
	cr_assert_arr_eq(config, mac, 6);
	cr_assert_eq(config[6] | config[7] << 8, VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(config[8] | config[9] << 8, 1);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP);

	uint8_t byte;
	device->ops->read_config(device, 3, &byte, 1);
	cr_assert_eq(byte, mac[3]);
}

Test(virtio_net, activation_passes_the_negotiated_receive_offloads)
{
	device->ops->reset(device);
	activate(BASE_FEATURES | F(VIRTIO_NET_F_CSUM) |
		 F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_GUEST_TSO4));
	cr_assert_eq(backend.offload_calls, 1);
	cr_assert_eq(backend.receive_offloads,
		     NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	cr_assert_eq(backend.receive_ready_calls, 1);

	device->ops->reset(device);
	activate(BASE_FEATURES);
	cr_assert_eq(backend.receive_offloads, 0);
}

/* --- transmitq ------------------------------------------------------------ */

#define TX_HEADER_ADDR DATA_ADDR
#define TX_FRAME_ADDR (DATA_ADDR + 0x1000)

/* Sends header and a frame of frame_len bytes as header then frame, in
 * one chain of two buffers, and kicks. */
static void send_frame(const struct virtio_net_hdr *header, size_t frame_len)
{
	struct buffer buffers[] = {
		{ TX_HEADER_ADDR, HEADER_SIZE, false },
		{ TX_FRAME_ADDR, (uint32_t)frame_len, false },
	};

	put_header(TX_HEADER_ADDR, header);
	fill_frame(ram + TX_FRAME_ADDR, frame_len);
	add_chain(VIRTIO_NET_TRANSMITQ, buffers, frame_len ? 2 : 1);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
}

/* The last chain came back with nothing written and no frame went out. */
static void assert_dropped(uint16_t used_before, uint64_t dropped_before)
{
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), used_before + 1,
		     "the chain goes back");
	cr_assert_eq(used_len(VIRTIO_NET_TRANSMITQ, used_before), 0);
	cr_assert_eq(backend.transmits, 0, "a malformed frame went out");
	cr_assert_eq(virtio_net_stats(net).tx_dropped, dropped_before + 1);
	cr_assert_eq(virtio_net_stats(net).tx_frames, 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 1);
	cr_assert_not(completion_timer_armed(), "a refused chain waits");
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_net, transmits_a_frame_split_with_its_header_across_three_buffers)
{
	struct virtio_net_hdr header = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID,
		.csum_start = 34,
		.csum_offset = 16,
		.num_buffers = 7,
	};
	uint8_t bytes[HEADER_SIZE + 60];

	memcpy(bytes, &header, HEADER_SIZE);
	fill_frame(bytes + HEADER_SIZE, 60);
	/* 8 bytes of header; the other 4 and 20 of frame; 40 of frame. */
	memcpy(ram + DATA_ADDR, bytes, 8);
	memcpy(ram + DATA_ADDR + 0x100, bytes + 8, 24);
	memcpy(ram + DATA_ADDR + 0x200, bytes + 32, 40);
	struct buffer buffers[] = {
		{ DATA_ADDR, 8, false },
		{ DATA_ADDR + 0x100, 24, false },
		{ DATA_ADDR + 0x200, 40, false },
	};
	uint16_t head = add_chain(VIRTIO_NET_TRANSMITQ, buffers, 3);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);

	cr_assert_eq(backend.transmits, 1);
	cr_assert_eq(backend.frame_len, 60);
	cr_assert_arr_eq(backend.frame, bytes + HEADER_SIZE, 60);
	cr_assert_eq(backend.frame_count, 2, "the frame is not copied");
	cr_assert_eq(backend.header.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM,
		     "DATA_VALID is the device's to set");
	cr_assert_eq(backend.header.csum_start, 34);
	cr_assert_eq(backend.header.csum_offset, 16);
	cr_assert_eq(backend.header.num_buffers, 0);
	cr_assert_eq(virtio_net_stats(net).tx_frames, 1);
	/* The chain waits for the timer, with nothing else going on. */
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 0);
	cr_assert(completion_timer_set());
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1);
	cr_assert_eq(used_id(VIRTIO_NET_TRANSMITQ, 0), head);
	cr_assert_eq(used_len(VIRTIO_NET_TRANSMITQ, 0), 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 1);
	cr_assert_not(completion_timer_armed());
	cr_assert_eq(virtio_net_stats(net).tx_dropped, 0);
}

Test(virtio_net, transmits_a_tso_frame_when_negotiated)
{
	struct virtio_net_hdr header = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
		.hdr_len = 54,
		.gso_size = 1448,
		.csum_start = 34,
		.csum_offset = 16,
	};

	send_frame(&header, 3000);
	cr_assert_eq(backend.transmits, 1);
	cr_assert_eq(backend.header.gso_type, header.gso_type);
	cr_assert_eq(backend.header.gso_size, 1448);
	cr_assert_eq(backend.frame_len, 3000);
}

/* What the transport does with notify_queue: an interrupt when the driver
 * wants one; here noted with how many frames had gone out by then. */
static unsigned int interrupts, transmits_at_interrupt[8];

static void interrupt_when_wanted(struct virtio_device *notified,
				  unsigned int queue)
{
	if (!virtqueue_should_notify(&notified->queues[queue]))
		return;
	cr_assert_lt(interrupts, 8);
	transmits_at_interrupt[interrupts++] = backend.transmits;
}

/* Makes count transmit chains of one 64-byte frame available. */
static void add_transmit_chains(unsigned int count)
{
	struct virtio_net_hdr header = { 0 };

	for (unsigned int i = 0; i < count; i++) {
		struct buffer buffers[] = {
			{ DATA_ADDR + 0x1000 * i, HEADER_SIZE + 64, false },
		};
		put_header(DATA_ADDR + 0x1000 * i, &header);
		add_chain(VIRTIO_NET_TRANSMITQ, buffers, 1);
	}
}

Test(virtio_net, a_driver_waiting_for_room_hears_once_half_the_queue_is_sent)
{
	interrupts = 0;
	device->notify_queue = interrupt_when_wanted;
	add_transmit_chains(12);
	/* used_event 1: interrupt once the second chain is used (§2.7.10),
	 * as Linux asks when it stops its queue for room. */
	ram_put16(ram, rings[VIRTIO_NET_TRANSMITQ].avail + 4 + 2 * QUEUE_SIZE, 1);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(backend.transmits, 12);
	cr_assert_eq(virtio_net_stats(net).tx_frames, 12);
	/* Half the queue of 16 went back mid-batch, with the interrupt
	 * used_event asked for; the rest waits. */
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 8);
	cr_assert_eq(interrupts, 1);
	cr_assert_eq(transmits_at_interrupt[0], 8,
		     "the interrupt waited for the end of the batch");
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 12);
	cr_assert_eq(interrupts, 1, "used_event was passed already");
}

Test(virtio_net, sent_chains_go_back_at_the_start_of_the_next_round)
{
	add_transmit_chains(2);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	add_transmit_chains(1);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(backend.transmits, 3);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 2,
		     "the first round's chains, not the second's");
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 1);
	cr_assert(completion_timer_set(), "for the second round's chain");
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 3);
}

Test(virtio_net, a_wakeup_without_an_expiry_leaves_the_sent_chains_waiting)
{
	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	/* The event loop found the descriptor readable before a round armed
	 * the timer again: the handler runs with nothing to read. */
	watched.handler(watched.opaque, EPOLLIN);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	cr_assert(completion_timer_set());
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1);
}

Test(virtio_net, a_reset_takes_the_sent_chains_back_and_stops_the_timer)
{
	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	cr_assert(completion_timer_set());
	device->ops->reset(device);
	cr_assert_not(completion_timer_armed());
	/* A timer that fired just before the reset finds nothing. */
	completion_timer_expires();
	cr_assert_eq(device->queues[VIRTIO_NET_TRANSMITQ].used_idx, 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 0);
}

/* A guest that sends as fast as its frames go out: each frame sent makes
 * its chain available again, 300 frames in all. */
static uint16_t resent_head;

static void send_again(void)
{
	if (backend.transmits < 300)
		make_available(&rings[VIRTIO_NET_TRANSMITQ], resent_head);
}

Test(virtio_net, a_transmit_queue_that_stays_full_yields_to_the_event_loop)
{
	struct virtio_net_hdr header = { 0 };
	struct buffer buffers[] = { { DATA_ADDR, HEADER_SIZE + 64, false } };

	put_header(DATA_ADDR, &header);
	resent_head = add_chain(VIRTIO_NET_TRANSMITQ, buffers, 1);
	backend.on_transmit = send_again;
	cr_assert(virtio_serve_queue(device, VIRTIO_NET_TRANSMITQ),
		  "one round leaves chains for the next");
	cr_assert_eq(backend.transmits, VIRTIO_QUEUE_BUDGET);
	/* Back in eights, half the queue of 16. */
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), VIRTIO_QUEUE_BUDGET);
	/* The event loop's later round finds the rest. */
	cr_assert_not(virtio_serve_queue(device, VIRTIO_NET_TRANSMITQ),
		      "an empty ring needs no other round");
	cr_assert_eq(backend.transmits, 300);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 296);
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 300);
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_net, drops_a_header_shorter_than_12_bytes)
{
	struct buffer buffers[] = { { DATA_ADDR, HEADER_SIZE - 2, false } };

	add_chain(VIRTIO_NET_TRANSMITQ, buffers, 1);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_a_frame_shorter_than_an_ethernet_header)
{
	send_frame(&(struct virtio_net_hdr){ 0 }, NET_FRAME_MIN - 1);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_a_frame_longer_than_the_maximum)
{
	struct buffer buffers[] = {
		{ TX_HEADER_ADDR, HEADER_SIZE, false },
		{ TX_FRAME_ADDR, 40000, false },
		{ TX_FRAME_ADDR + 40000, NET_FRAME_MAX + 1 - 40000, false },
	};

	put_header(TX_HEADER_ADDR, &(struct virtio_net_hdr){ 0 });
	add_indirect_chain(VIRTIO_NET_TRANSMITQ, buffers, 3);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	assert_dropped(0, 0);
}

Test(virtio_net, takes_a_frame_of_exactly_the_maximum)
{
	struct buffer buffers[] = {
		{ TX_HEADER_ADDR, HEADER_SIZE, false },
		{ TX_FRAME_ADDR, 40000, false },
		{ TX_FRAME_ADDR + 40000, NET_FRAME_MAX - 40000, false },
	};

	put_header(TX_HEADER_ADDR, &(struct virtio_net_hdr){ 0 });
	add_indirect_chain(VIRTIO_NET_TRANSMITQ, buffers, 3);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(backend.transmits, 1);
	cr_assert_eq(backend.frame_len, NET_FRAME_MAX);
}

Test(virtio_net, drops_an_unknown_gso_type)
{
	send_frame(&(struct virtio_net_hdr){ .gso_type = 0x7f, .gso_size = 1000 },
		   1500);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_a_checksum_request_without_negotiated_csum)
{
	device->ops->reset(device);
	activate(BASE_FEATURES);
	clear_records();
	send_frame(&(struct virtio_net_hdr){
			   .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
			   .csum_start = 34,
			   .csum_offset = 16,
		   },
		   100);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_a_checksum_position_outside_the_frame)
{
	send_frame(&(struct virtio_net_hdr){
			   .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
			   .csum_start = 50,
			   .csum_offset = 9,
		   },
		   60);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_gso_without_a_segment_size)
{
	send_frame(&(struct virtio_net_hdr){
			   .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
			   .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
			   .hdr_len = 54,
			   .csum_start = 34,
			   .csum_offset = 16,
		   },
		   3000);
	assert_dropped(0, 0);
}

Test(virtio_net, drops_a_transmit_chain_with_a_writable_buffer)
{
	struct buffer buffers[] = {
		{ TX_HEADER_ADDR, HEADER_SIZE + 64, false },
		{ TX_FRAME_ADDR, 16, true },
	};

	put_header(TX_HEADER_ADDR, &(struct virtio_net_hdr){ 0 });
	add_chain(VIRTIO_NET_TRANSMITQ, buffers, 2);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	assert_dropped(0, 0);
	cr_assert_eq(ram[TX_FRAME_ADDR], 0, "wrote into a transmit chain");
}

Test(virtio_net, counts_a_chain_the_ring_refuses_and_goes_on)
{
	struct buffer outside[] = { { RAM_SIZE, HEADER_SIZE + 64, false } };

	add_chain(VIRTIO_NET_TRANSMITQ, outside, 1);
	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1, "the refused one at once");
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 2);
	cr_assert_eq(used_len(VIRTIO_NET_TRANSMITQ, 0), 0);
	cr_assert_eq(backend.transmits, 1);
	cr_assert_eq(virtio_net_stats(net).tx_dropped, 1);
	cr_assert_eq(virtio_net_stats(net).tx_frames, 1);
	/* Each chain given back is offered to the driver, the refused one
	 * too (whether it interrupts is the transport's and driver's call). */
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 2);
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_net, counts_a_frame_the_backend_refuses)
{
	backend.transmit_result = -ENOBUFS;
	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	cr_assert_eq(backend.transmits, 1);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1);
	cr_assert_eq(virtio_net_stats(net).tx_dropped, 1);
	cr_assert_eq(virtio_net_stats(net).tx_frames, 0);
}

Test(virtio_net, broken_transmit_ring_asks_for_a_reset)
{
	ram_put16(ram, rings[VIRTIO_NET_TRANSMITQ].avail + 2, QUEUE_SIZE + 1);
	device->ops->queue_notify(device, VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(needs_reset_calls, 1);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_TRANSMITQ], 0);
}

/* --- receiveq ------------------------------------------------------------- */

#define RX_ADDR (DATA_ADDR + 0x40000)

/* Posts count receive chains of one writable buffer of len bytes each,
 * 0x1000 apart from RX_ADDR + 0x1000 * first. */
static void post_receive_buffers(unsigned int first, unsigned int count,
				 uint32_t len)
{
	for (unsigned int i = first; i < first + count; i++) {
		struct buffer buffer = { RX_ADDR + 0x1000 * i, len, true };

		add_chain(VIRTIO_NET_RECEIVEQ, &buffer, 1);
	}
}

/* The backend delivers a frame of frame_len bytes, in two buffers. */
static int receive_frame(const struct virtio_net_hdr *header, uint8_t *frame,
			 size_t frame_len)
{
	struct iovec iov[] = {
		{ frame, frame_len / 3 },
		{ frame + frame_len / 3, frame_len - frame_len / 3 },
	};

	fill_frame(frame, frame_len);
	return backend.receiver.receive(backend.receiver.opaque, header, iov, 2);
}

Test(virtio_net, receives_a_frame_across_several_small_buffers)
{
	struct virtio_net_hdr header = { .flags = VIRTIO_NET_HDR_F_DATA_VALID };
	uint8_t frame[90];

	post_receive_buffers(0, 4, 40);
	cr_assert_eq(receive_frame(&header, frame, sizeof(frame)), 0);

	/* 12 + 90 bytes: 40, 40 and 22 (§5.1.6.4). */
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 3);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 0), 40);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 1), 40);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 2), 22);
	for (uint16_t i = 0; i < 3; i++)
		cr_assert_eq(used_id(VIRTIO_NET_RECEIVEQ, i), i);

	struct virtio_net_hdr written;
	memcpy(&written, ram + RX_ADDR, HEADER_SIZE);
	cr_assert_eq(written.num_buffers, 3);
	cr_assert_eq(written.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	cr_assert_arr_eq(ram + RX_ADDR + HEADER_SIZE, frame, 28);
	cr_assert_arr_eq(ram + RX_ADDR + 0x1000, frame + 28, 40);
	cr_assert_arr_eq(ram + RX_ADDR + 0x2000, frame + 68, 22);
	cr_assert_eq(ram[RX_ADDR + 0x2000 + 22], 0, "wrote past the frame");
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 1);
	cr_assert_eq(virtio_net_stats(net).rx_frames, 1);
	cr_assert(virtqueue_has_available(&device->queues[VIRTIO_NET_RECEIVEQ]),
		  "the fourth buffer is left for the next frame");
}

Test(virtio_net, receives_a_frame_into_one_chain_without_mergeable_buffers)
{
	uint8_t frame[100];

	device->ops->reset(device);
	activate(BASE_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	clear_records();
	post_receive_buffers(0, 1, 1526);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 0), HEADER_SIZE + 100);
	cr_assert_eq(ram_get16(ram, RX_ADDR + 10), 1, "num_buffers is 1");
	cr_assert_arr_eq(ram + RX_ADDR + HEADER_SIZE, frame, 100);
}

Test(virtio_net, drops_a_frame_too_big_for_one_chain_without_mergeable_buffers)
{
	uint8_t frame[100];

	device->ops->reset(device);
	activate(BASE_FEATURES & ~F(VIRTIO_NET_F_MRG_RXBUF));
	clear_records();
	post_receive_buffers(0, 2, 64);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0, "taken, by dropping it");
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(used_id(VIRTIO_NET_RECEIVEQ, 0), 0);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 0), 0);
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 1);
	cr_assert_eq(virtio_net_stats(net).rx_frames, 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 1);
}

Test(virtio_net, a_burst_of_received_frames_is_signalled_once_at_its_end)
{
	const struct net_receiver *receiver = &backend.receiver;
	uint8_t frame[64];

	cr_assert_not_null(receiver->burst_begin);
	cr_assert_not_null(receiver->burst_end);
	post_receive_buffers(0, 4, 2048);
	receiver->burst_begin(receiver->opaque);
	for (unsigned int i = 0; i < 3; i++)
		cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
					   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 3, "frames wait for nothing");
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 0,
		     "signalled in the middle of the burst");
	receiver->burst_end(receiver->opaque);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 1);

	/* After the burst, a frame is signalled as it is taken again. */
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 2);
}

Test(virtio_net, a_burst_that_took_nothing_signals_nothing)
{
	const struct net_receiver *receiver = &backend.receiver;
	uint8_t frame[64];

	/* No buffers: the one frame is refused. */
	receiver->burst_begin(receiver->opaque);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	receiver->burst_end(receiver->opaque);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 0);
}

Test(virtio_net, a_reset_during_a_burst_drops_its_signal)
{
	const struct net_receiver *receiver = &backend.receiver;
	uint8_t frame[64];

	post_receive_buffers(0, 2, 2048);
	receiver->burst_begin(receiver->opaque);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	/* The driver resets the device (another vCPU) mid-burst. */
	device->ops->reset(device);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	receiver->burst_end(receiver->opaque);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 0,
		     "signalled a queue that was reset");
}

Test(virtio_net, sent_chains_go_back_before_a_received_burst_is_signalled)
{
	const struct net_receiver *receiver = &backend.receiver;
	uint8_t frame[64];

	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	post_receive_buffers(0, 1, 2048);
	receiver->burst_begin(receiver->opaque);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	receiver->burst_end(receiver->opaque);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1);
	cr_assert_eq(notified_count, 2);
	cr_assert_eq(notified_queues[0], VIRTIO_NET_TRANSMITQ);
	cr_assert_eq(notified_queues[1], VIRTIO_NET_RECEIVEQ);
	cr_assert_not(completion_timer_armed());
}

Test(virtio_net, a_burst_that_signals_nothing_leaves_the_sent_chains_waiting)
{
	const struct net_receiver *receiver = &backend.receiver;
	uint8_t frame[64];

	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	/* No receive buffers: nothing to signal. */
	receiver->burst_begin(receiver->opaque);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	receiver->burst_end(receiver->opaque);
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 0);
	cr_assert(completion_timer_set());
}

Test(virtio_net, no_receive_buffers_makes_the_backend_wait_for_a_kick)
{
	uint8_t frame[64];

	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 0);
	cr_assert_eq(backend.receive_ready_calls, 0);

	post_receive_buffers(0, 1, 2048);
	device->ops->queue_notify(device, VIRTIO_NET_RECEIVEQ);
	cr_assert_eq(backend.receive_ready_calls, 1);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);

	/* Nobody waits: a kick is just a kick. */
	device->ops->queue_notify(device, VIRTIO_NET_RECEIVEQ);
	cr_assert_eq(backend.receive_ready_calls, 1);
}

Test(virtio_net, receive_kicks_are_wanted_only_while_the_backend_waits)
{
	uint8_t frame[64];

	device->ops->reset(device);
	activate(BASE_FEATURES & ~F(VIRTIO_F_EVENT_IDX));
	uint64_t used_flags = rings[VIRTIO_NET_RECEIVEQ].used;

	/* The transport looks at every queue on activation. */
	device->ops->queue_notify(device, VIRTIO_NET_RECEIVEQ);
	cr_assert_eq(ram_get16(ram, used_flags), 1, "VIRTQ_USED_F_NO_NOTIFY");
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	cr_assert_eq(ram_get16(ram, used_flags), 0, "a kick is wanted now");
	post_receive_buffers(0, 1, 2048);
	device->ops->queue_notify(device, VIRTIO_NET_RECEIVEQ);
	cr_assert_eq(ram_get16(ram, used_flags), 1);
}

Test(virtio_net, running_out_mid_frame_leaves_the_ring_untouched)
{
	struct virtqueue *queue = &device->queues[VIRTIO_NET_RECEIVEQ];
	uint8_t frame[90];

	post_receive_buffers(0, 1, 2048);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame, 64), 0);
	notify_calls[VIRTIO_NET_RECEIVEQ] = 0;

	post_receive_buffers(1, 2, 40);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(queue->used_idx, 1);
	cr_assert_eq(queue->last_avail_idx, 1, "the chains are available again");
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 0);
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 0);
	/* A kick is asked for when the driver adds the next chain, the one
	 * at available index 3 (avail_event, §2.7.10). */
	cr_assert_eq(ram_get16(ram, rings[0].used + 4 + 8 * QUEUE_SIZE), 3);
	cr_assert_eq(backend.receive_ready_calls, 0);

	post_receive_buffers(3, 1, 40);
	device->ops->queue_notify(device, VIRTIO_NET_RECEIVEQ);
	cr_assert_eq(backend.receive_ready_calls, 1);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 4);
	for (uint16_t n = 1; n < 4; n++)
		cr_assert_eq(used_id(VIRTIO_NET_RECEIVEQ, n), n);
	cr_assert_eq(ram_get16(ram, RX_ADDR + 0x1000 + 10), 3);
	cr_assert_arr_eq(ram + RX_ADDR + 0x1000 + HEADER_SIZE, frame, 28);
	cr_assert_arr_eq(ram + RX_ADDR + 0x3000, frame + 68, 22);
}

Test(virtio_net, device_readable_receive_chain_goes_back_empty)
{
	struct buffer readable = { RX_ADDR, 2048, false };
	uint8_t frame[64];

	add_chain(VIRTIO_NET_RECEIVEQ, &readable, 1);
	post_receive_buffers(1, 1, 2048);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 0), 0);
	cr_assert_eq(ram[RX_ADDR], 0, "wrote into a device-readable buffer");
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 1);

	/* The next frame takes the next chain. */
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 2);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 1), HEADER_SIZE + 64);
}

Test(virtio_net, first_receive_buffer_smaller_than_the_header_is_malformed)
{
	uint8_t frame[64];

	post_receive_buffers(0, 1, HEADER_SIZE - 1);
	post_receive_buffers(1, 1, 2048);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, 0), 0);
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 1);
}

Test(virtio_net, drops_a_received_header_with_offloads_the_guest_refused)
{
	uint8_t frame[64];

	device->ops->reset(device);
	activate(BASE_FEATURES);
	clear_records();
	post_receive_buffers(0, 1, 2048);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){
					   .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					   .csum_start = 34,
					   .csum_offset = 16,
				   },
				   frame, sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 0, "the chain is kept");
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 1);

	/* DATA_VALID alone is cleared: flags are 0 without GUEST_CSUM. */
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){
					   .flags = VIRTIO_NET_HDR_F_DATA_VALID,
				   },
				   frame, sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	cr_assert_eq(ram[RX_ADDR], 0);
}

Test(virtio_net, broken_receive_ring_asks_for_a_reset)
{
	uint8_t frame[64];

	ram_put16(ram, rings[VIRTIO_NET_RECEIVEQ].avail + 2, QUEUE_SIZE + 1);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	cr_assert_eq(needs_reset_calls, 1);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 0);
}

Test(virtio_net, frame_larger_than_the_whole_ring_is_dropped)
{
	uint8_t frame[QUEUE_SIZE * HEADER_SIZE];

	/* Every chain of the ring could not hold it: waiting for more
	 * would wait forever. */
	post_receive_buffers(0, QUEUE_SIZE, HEADER_SIZE);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), QUEUE_SIZE);
	for (uint16_t n = 0; n < QUEUE_SIZE; n++)
		cr_assert_eq(used_len(VIRTIO_NET_RECEIVEQ, n), 0);
	cr_assert_eq(virtio_net_stats(net).rx_dropped, 1);
	cr_assert_eq(notify_calls[VIRTIO_NET_RECEIVEQ], 1);
}

/* --- controlq, announce, link --------------------------------------------- */

#define CTRL_ADDR (DATA_ADDR + 0x80000)
#define ACK_ADDR (CTRL_ADDR + 0x100)

/* Sends a command of len bytes and an ack buffer of ack_len bytes; the
 * ack byte the device wrote, 0xff if none. */
static uint8_t send_command(const uint8_t *command, uint32_t len,
			    uint32_t ack_len)
{
	struct buffer buffers[] = {
		{ CTRL_ADDR, len, false },
		{ ACK_ADDR, ack_len, true },
	};
	uint16_t before = used_idx(VIRTIO_NET_CONTROLQ);

	memcpy(ram + CTRL_ADDR, command, len);
	ram[ACK_ADDR] = 0xff;
	add_chain(VIRTIO_NET_CONTROLQ, buffers, ack_len ? 2 : 1);
	device->ops->queue_notify(device, VIRTIO_NET_CONTROLQ);
	cr_assert_eq(used_idx(VIRTIO_NET_CONTROLQ), before + 1);
	cr_assert_eq(used_len(VIRTIO_NET_CONTROLQ, before), ack_len ? 1 : 0);
	return ram[ACK_ADDR];
}

Test(virtio_net, announce_is_acked_through_the_controlq)
{
	const uint8_t ack[] = { VIRTIO_NET_CTRL_ANNOUNCE,
				VIRTIO_NET_CTRL_ANNOUNCE_ACK };

	virtio_net_announce(net);
	cr_assert_eq(notify_config_calls, 1);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS),
		     VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);

	cr_assert_eq(send_command(ack, sizeof(ack), 1), VIRTIO_NET_OK);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(notify_calls[VIRTIO_NET_CONTROLQ], 1);
}

Test(virtio_net, announce_needs_guest_announce_and_a_running_driver)
{
	device->ops->reset(device);
	activate(BASE_FEATURES & ~F(VIRTIO_NET_F_GUEST_ANNOUNCE));
	virtio_net_announce(net);
	cr_assert_eq(notify_config_calls, 0);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP);

	device->ops->reset(device);
	virtio_net_announce(net);
	cr_assert_eq(notify_config_calls, 0);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP);
}

Test(virtio_net, unknown_and_malformed_commands)
{
	const uint8_t unknown[] = { 0 /* VIRTIO_NET_CTRL_RX */, 0, 1 };
	const uint8_t wrong_command[] = { VIRTIO_NET_CTRL_ANNOUNCE, 1 };
	const uint8_t short_command[] = { VIRTIO_NET_CTRL_ANNOUNCE };

	virtio_net_announce(net);
	cr_assert_eq(send_command(unknown, sizeof(unknown), 1), VIRTIO_NET_ERR);
	cr_assert_eq(send_command(wrong_command, sizeof(wrong_command), 1),
		     VIRTIO_NET_ERR);
	cr_assert_eq(send_command(short_command, sizeof(short_command), 4),
		     VIRTIO_NET_ERR);
	/* No writable byte for the ack: back with nothing written. */
	cr_assert_eq(send_command(wrong_command, sizeof(wrong_command), 0),
		     0xff);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS) & VIRTIO_NET_S_ANNOUNCE,
		     VIRTIO_NET_S_ANNOUNCE, "still not acknowledged");
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_net, set_link_changes_the_status_and_tells_the_driver)
{
	virtio_net_set_link(net, false);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), 0);
	cr_assert_eq(notify_config_calls, 1);
	virtio_net_set_link(net, false);
	cr_assert_eq(notify_config_calls, 1, "nothing changed");
	virtio_net_set_link(net, true);
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(notify_config_calls, 2);
}

/* --- reset ----------------------------------------------------------------- */

Test(virtio_net, reset_stops_the_device_until_it_is_activated_again)
{
	uint8_t frame[64];

	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	virtio_net_announce(net);
	device->ops->reset(device);
	for (unsigned int i = 0; i < 3; i++) {
		cr_assert_not(device->queues[i].ready);
		cr_assert_eq(device->queues[i].last_avail_idx, 0);
		cr_assert_eq(device->queues[i].used_idx, 0);
		cr_assert_eq(device->queues[i].memory, &memory);
	}
	cr_assert_eq(config16(VIRTIO_NET_CONFIG_STATUS), VIRTIO_NET_S_LINK_UP,
		     "a pending announcement is forgotten");
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), -ENOBUFS);
	cr_assert_eq(backend.attaches, 1, "the backend stays attached");

	activate(device->device_features);
	cr_assert_eq(backend.receive_ready_calls, 1);
	post_receive_buffers(0, 1, 2048);
	cr_assert_eq(receive_frame(&(struct virtio_net_hdr){ 0 }, frame,
				   sizeof(frame)), 0);
	cr_assert_eq(used_idx(VIRTIO_NET_RECEIVEQ), 1);
	send_frame(&(struct virtio_net_hdr){ 0 }, 64);
	cr_assert_eq(backend.transmits, 2);
	completion_timer_expires();
	cr_assert_eq(used_idx(VIRTIO_NET_TRANSMITQ), 1,
		     "only the chain sent after the reset");
}

/* --- snapshots ----------------------------------------------------------- */

Test(virtio_net, its_link_status_is_saved_and_restored)
{
	struct state_writer writer;
	struct state_reader reader;
	const void *blob;
	size_t size;
	uint8_t status[2];

	cr_assert_eq(device->ops->quiesce(device), 0);
	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/d", 1), 0);
	cr_assert_eq(device->ops->save(device, &writer.base), 0);
	/* A status with a bit the device does not define. */
	cr_assert_eq(state_writer_begin(&writer, "/e", 1), 0);
	cr_assert_eq(writer.base.put_u64(&writer.base, "net-status", 0x100), 0);
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/d", 1), 0);
	destroy_device();
	create_device(ALL_OFFLOADS);
	cr_assert_eq(device->ops->restore(device, &reader.base), 0);
	device->ops->read_config(device, 6, status, sizeof(status));
	cr_assert_eq(status[0] | status[1] << 8, VIRTIO_NET_S_LINK_UP);
	cr_assert_eq(state_reader_begin(&reader, "/e", 1), 0);
	cr_assert_eq(device->ops->restore(device, &reader.base), -EINVAL);
	state_writer_release(&writer);
}
