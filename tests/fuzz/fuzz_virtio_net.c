/*
 * virtio-net (devices/virtio/net.c) both ways: frames the guest sends
 * (virtio-net headers with any flags, GSO type, sizes and checksum
 * offsets; chains of any layout) and frames a backend delivers into the
 * guest's receive buffers (mergeable or not, bursts, no room), and
 * control commands, in rings the driver writes anything into. The
 * backend is a fake that checks what the device promises it: every frame
 * it is given has a header that holds for the frame under the backend's
 * offloads, and it is asked only for receive offloads it has. Each input
 * starts with a freshly negotiated device and ends with the driver's
 * reset.
 *
 * Input: features and queue set-up (fuzz_transport_start), then
 * operations, a byte each: 0 mod 4, a driver operation
 * (fuzz_driver_operate) on queue (op >> 2) % 3; 1, a kick of that queue;
 * 2, a frame from the network (header, length, split); 3, the rest
 * (event-loop turn, burst begin or end, the backend's transmit result,
 * link, announce, configuration read).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/net.h"
#include "fuzz_driver.h"

#define ALL_OFFLOADS                                                          \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 |             \
	 NET_OFFLOAD_TSO_ECN)

static struct fuzz_driver driver;
static struct virtio_net *net;
static uint8_t frame_bytes[NET_FRAME_MAX];

static struct {
	struct net_backend backend;
	struct net_receiver receiver;
	uint32_t receive_offloads;
	int transmit_result;
	bool in_burst;
	bool waiting; /* for receive_ready() */
} fake;

static void fake_attach(struct net_backend *backend,
			const struct net_receiver *receiver)
{
	(void)backend;
	fake.receiver = *receiver;
}

static int fake_transmit(struct net_backend *backend,
			 const struct virtio_net_hdr *hdr,
			 const struct iovec *frame, unsigned int count)
{
	static uint8_t sent[NET_FRAME_MAX];
	size_t len = 0;

	/* Every byte, as a backend does, so that ASan sees a buffer outside
	 * guest RAM. */
	for (unsigned int i = 0; i < count; i++) {
		if (frame[i].iov_len > sizeof(sent) - len)
			abort(); /* longer than NET_FRAME_MAX */
		memcpy(sent + len, frame[i].iov_base, frame[i].iov_len);
		len += frame[i].iov_len;
	}
	if (net_header_check(hdr, len, backend->offloads))
		abort(); /* the device let a bad header through */
	return fake.transmit_result;
}

static void fake_receive_ready(struct net_backend *backend)
{
	(void)backend;
	fake.waiting = false;
}

static int fake_set_receive_offloads(struct net_backend *backend,
				     uint32_t offloads)
{
	if (offloads & ~backend->offloads)
		abort();
	fake.receive_offloads = offloads;
	return 0;
}

static void fake_destroy(struct net_backend *backend)
{
	(void)backend;
}

static const struct net_backend_ops fake_ops = {
	.attach = fake_attach,
	.transmit = fake_transmit,
	.receive_ready = fake_receive_ready,
	.set_receive_offloads = fake_set_receive_offloads,
	.destroy = fake_destroy,
};

static void destroy_device(void)
{
	virtio_net_destroy(net);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t mac[6] = { 0x02, 0x76, 0x73, 0, 0, 1 };
	struct device_context context;

	(void)argc;
	(void)argv;
	fuzz_driver_init(&driver);
	context = fuzz_event_context(&driver.memory);
	fake.backend = (struct net_backend){ .name = "fuzz", .ops = &fake_ops,
					     .offloads = ALL_OFFLOADS };
	net = virtio_net_create(&context, &fake.backend, mac);
	if (!net)
		abort();
	fuzz_transport_attach(virtio_net_device(net));
	for (size_t i = 0; i < sizeof(frame_bytes); i++)
		frame_bytes[i] = (uint8_t)(i * 7);
	atexit(destroy_device);
	return 0;
}

/* A frame as a backend hands it over: a header that holds under the
 * receive offloads (the backend's promise; a zero one otherwise), in one
 * to three pieces. */
static void deliver_frame(struct fuzz_input *input)
{
	struct virtio_net_hdr hdr;
	const uint8_t *bytes;
	size_t len = fuzz_take_u32(input) % (NET_FRAME_MAX + 1);
	size_t first = fuzz_take_u16(input) % (len + 1);
	size_t second = fuzz_take_u16(input) % (len - first + 1);
	struct iovec frame[3] = {
		{ frame_bytes, first },
		{ frame_bytes + first, second },
		{ frame_bytes + first + second, len - first - second },
	};

	size_t taken = fuzz_take_bytes(input, sizeof(hdr), &bytes);

	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, bytes, taken);
	if (net_header_check(&hdr, len, fake.receive_offloads))
		memset(&hdr, 0, sizeof(hdr));
	/* After -ENOBUFS a backend waits for receive_ready(). */
	if (!fake.waiting &&
	    fake.receiver.receive(fake.receiver.opaque, &hdr, frame, 3) ==
		    -ENOBUFS)
		fake.waiting = true;
}

static void read_config(struct virtio_device *device, struct fuzz_input *input)
{
	uint8_t data[4];
	uint32_t size = 1u << (fuzz_take_u8(input) % 3);
	uint32_t offset = fuzz_take_u8(input) % device->config_size;

	if (offset + size <= device->config_size)
		device->ops->read_config(device, offset, data, size);
}

static void other(struct virtio_device *device, uint8_t op,
		  struct fuzz_input *input)
{
	static const int transmit_results[] = { 0, -ENOBUFS, -EIO, 0 };

	switch ((op >> 2) % 8) {
	case 0:
		fuzz_events_run(op & 0x80);
		fuzz_transport_serve_later(device);
		break;
	case 1:
		if (fake.in_burst)
			fake.receiver.burst_end(fake.receiver.opaque);
		else
			fake.receiver.burst_begin(fake.receiver.opaque);
		fake.in_burst = !fake.in_burst;
		break;
	case 2:
		fake.transmit_result = transmit_results[op >> 6];
		break;
	case 3:
		virtio_net_set_link(net, op & 0x80);
		break;
	case 4:
		virtio_net_announce(net);
		break;
	default:
		read_config(device, input);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct virtio_device *device = virtio_net_device(net);

	fuzz_driver_clear(&driver);
	fake.transmit_result = 0;
	if (fuzz_transport_start(device, &driver, &input) == 0) {
		while (!fuzz_input_empty(&input)) {
			uint8_t op = fuzz_take_u8(&input);
			unsigned int queue = (op >> 2) % 3;

			switch (op % 4) {
			case 0:
				fuzz_driver_operate(&driver,
						    &device->queues[queue],
						    op >> 4, &input);
				break;
			case 1:
				device->ops->queue_notify(device, queue);
				fuzz_transport_serve_later(device);
				break;
			case 2:
				deliver_frame(&input);
				break;
			default:
				other(device, op, &input);
				break;
			}
		}
	}
	if (fake.in_burst)
		fake.receiver.burst_end(fake.receiver.opaque);
	fake.in_burst = false;
	device->ops->reset(device);
	virtio_net_set_link(net, true);
	return 0;
}
