#include "fuzz_driver.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>

#include "tests/devices/fakes.h"

#define AVAIL_OFFSET 0x1000
#define USED_OFFSET 0x2000
#define DESC_SIZE 16
#define F_NEXT 1
#define F_WRITE 2

void fuzz_driver_init(struct fuzz_driver *driver)
{
	driver->ram = fake_ram_create(&driver->memory, FUZZ_RAM_SIZE);
}

void fuzz_driver_clear(struct fuzz_driver *driver)
{
	memset(driver->ram, 0, FUZZ_RAM_SIZE);
}

int fuzz_driver_queue_setup(struct fuzz_driver *driver,
			    struct virtqueue *queue, unsigned int index,
			    uint8_t size_code)
{
	uint64_t base = (uint64_t)FUZZ_QUEUE_SPAN * index;

	queue->memory = &driver->memory;
	queue->size = (uint16_t)(1u << (size_code % 9));
	queue->desc_addr = base;
	queue->avail_addr = base + AVAIL_OFFSET;
	queue->used_addr = base + USED_OFFSET;
	queue->ready = true;
	return virtqueue_validate(queue);
}

/* A descriptor's address: mostly inside RAM or just past it, and with the
 * top bit of the operand set, far outside it, up to where gpa + len
 * wraps. */
static uint64_t take_address(struct fuzz_input *input)
{
	uint32_t operand = fuzz_take_u32(input);

	if (operand >> 31)
		return (uint64_t)operand << 32 | operand;
	return operand % (FUZZ_RAM_SIZE + 0x1000);
}

/* A length: mostly up to 64 KiB, with the top bit set, anything. */
static uint32_t take_length(struct fuzz_input *input)
{
	uint32_t operand = fuzz_take_u32(input);

	return operand >> 31 ? operand : operand % 0x10000;
}

/* The rings are where the guest's driver put them, which may be outside
 * RAM in the transport's target: writes there are dropped. x86 is
 * little-endian, like the rings. */
static void put16(struct fuzz_driver *driver, uint64_t gpa, uint16_t value)
{
	guest_memory_write(&driver->memory, gpa, &value, sizeof(value));
}

static uint16_t get16(const struct fuzz_driver *driver, uint64_t gpa)
{
	uint16_t value = 0;

	guest_memory_read(&driver->memory, gpa, &value, sizeof(value));
	return value;
}

static void put_descriptor(struct fuzz_driver *driver, uint64_t gpa,
			   uint64_t addr, uint32_t len, uint16_t flags,
			   uint16_t next)
{
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} descriptor = { addr, len, flags, next };

	guest_memory_write(&driver->memory, gpa, &descriptor,
			   sizeof(descriptor));
}

/* Slots below the queue's size are its descriptor table; the others
 * are entries of the indirect table area. */
static uint64_t descriptor_address(const struct virtqueue *queue,
				   uint16_t slot)
{
	if (slot < queue->size)
		return queue->desc_addr + (uint64_t)DESC_SIZE * slot;
	return FUZZ_TABLE_AREA + (uint64_t)DESC_SIZE * (slot % FUZZ_TABLE_ENTRIES);
}

static void make_available(struct fuzz_driver *driver,
			   const struct virtqueue *queue, uint16_t head)
{
	uint16_t idx = get16(driver, queue->avail_addr + 2);

	put16(driver, queue->avail_addr + 4 + 2 * (idx % queue->size), head);
	put16(driver, queue->avail_addr + 2, (uint16_t)(idx + 1));
}

/* A well-formed chain of 1 to 8 buffers in the data area, the last ones
 * device-writable, made available: what a driver sends most of the
 * time, so that the fuzzer reaches the device's handling of requests
 * without having to find the ring's rules first. */
static void add_chain(struct fuzz_driver *driver, const struct virtqueue *queue,
		      struct fuzz_input *input)
{
	uint8_t shape = fuzz_take_u8(input);
	unsigned int count = 1 + (shape & 7);
	unsigned int first_writable = shape >> 4;
	uint16_t head = fuzz_take_u16(input) % queue->size;

	for (unsigned int i = 0; i < count; i++) {
		uint16_t slot = (uint16_t)((head + i) % queue->size);
		uint16_t next = (uint16_t)((head + i + 1) % queue->size);
		uint64_t addr = FUZZ_DATA_AREA +
				fuzz_take_u16(input) % (FUZZ_RAM_SIZE - FUZZ_DATA_AREA);
		uint32_t len = fuzz_take_u16(input);
		uint16_t flags = (i >= first_writable ? F_WRITE : 0) |
				 (i + 1 < count ? F_NEXT : 0);

		put_descriptor(driver, descriptor_address(queue, slot), addr,
			       len, flags, next);
	}
	make_available(driver, queue, head);
}

void fuzz_driver_operate(struct fuzz_driver *driver,
			 const struct virtqueue *queue, unsigned int op,
			 struct fuzz_input *input)
{
	if (!queue->size)
		return; /* the driver has not set the queue up */
	switch (op % FUZZ_DRIVER_OPERATIONS) {
	case 0: {
		uint64_t gpa = descriptor_address(queue, fuzz_take_u16(input));
		uint64_t addr = take_address(input);
		uint32_t len = take_length(input);
		uint16_t flags = fuzz_take_u16(input);

		put_descriptor(driver, gpa, addr, len, flags,
			       fuzz_take_u16(input));
		break;
	}
	case 1:
		add_chain(driver, queue, input);
		break;
	case 2:
		make_available(driver, queue, fuzz_take_u16(input));
		break;
	case 3: /* the available index, anywhere: a broken ring */
		put16(driver, queue->avail_addr + 2, fuzz_take_u16(input));
		break;
	case 4: /* flags, and used_event (§2.7.10) */
		put16(driver, queue->avail_addr, fuzz_take_u16(input));
		put16(driver, queue->avail_addr + 4 + 2 * (uint64_t)queue->size,
		      fuzz_take_u16(input));
		break;
	default: { /* any bytes anywhere in RAM */
		uint32_t gpa = fuzz_take_u32(input) % FUZZ_RAM_SIZE;
		const uint8_t *bytes;
		size_t len = fuzz_take_bytes(input, fuzz_take_u8(input), &bytes);

		if (len > FUZZ_RAM_SIZE - gpa)
			len = FUZZ_RAM_SIZE - gpa;
		memcpy(driver->ram + gpa, bytes, len);
		break;
	}
	}
}

/* --- the event thread ---------------------------------------------------- */

#define MAX_WATCHES 16

static struct {
	int fd;
	short events;
	device_fd_handler handler;
	void *opaque;
} watches[MAX_WATCHES];
static unsigned int watch_count;

static int watch_fd(void *context_opaque, int fd, uint32_t events,
		    device_fd_handler handler, void *handler_opaque)
{
	(void)context_opaque;
	if (watch_count == MAX_WATCHES)
		return -ENOSPC;
	watches[watch_count].fd = fd;
	/* EPOLLIN and POLLIN, EPOLLOUT and POLLOUT have the same values. */
	watches[watch_count].events = (short)events;
	watches[watch_count].handler = handler;
	watches[watch_count].opaque = handler_opaque;
	watch_count++;
	return 0;
}

static int modify_fd(void *context_opaque, int fd, uint32_t events)
{
	(void)context_opaque;
	for (unsigned int i = 0; i < watch_count; i++) {
		if (watches[i].fd == fd) {
			watches[i].events = (short)events;
			return 0;
		}
	}
	return -ENOENT;
}

static int unwatch_fd(void *context_opaque, int fd)
{
	(void)context_opaque;
	for (unsigned int i = 0; i < watch_count; i++) {
		if (watches[i].fd == fd) {
			watches[i] = watches[--watch_count];
			return 0;
		}
	}
	return -ENOENT;
}

struct device_context fuzz_event_context(const struct guest_memory *memory)
{
	return (struct device_context){
		.memory = memory,
		.watch_fd = watch_fd,
		.modify_fd = modify_fd,
		.unwatch_fd = unwatch_fd,
	};
}

/* Sleeps out the longest time left on an armed timerfd being watched
 * (timerfd_gettime fails on other descriptors). */
static void expire_timers(void)
{
	struct timespec longest = { 0 };

	for (unsigned int i = 0; i < watch_count; i++) {
		struct itimerspec left;

		if (timerfd_gettime(watches[i].fd, &left) == 0 &&
		    (left.it_value.tv_sec > longest.tv_sec ||
		     (left.it_value.tv_sec == longest.tv_sec &&
		      left.it_value.tv_nsec > longest.tv_nsec)))
			longest = left.it_value;
	}
	if (longest.tv_sec || longest.tv_nsec)
		nanosleep(&longest, NULL);
}

void fuzz_events_run(bool expire)
{
	struct pollfd fds[MAX_WATCHES];
	unsigned int count = watch_count;

	if (expire)
		expire_timers();
	for (unsigned int i = 0; i < count; i++)
		fds[i] = (struct pollfd){ .fd = watches[i].fd,
					  .events = watches[i].events };
	if (poll(fds, count, 0) <= 0)
		return;
	for (unsigned int i = 0; i < count; i++) {
		/* A handler may have unwatched what follows it. */
		if (fds[i].revents && i < watch_count &&
		    watches[i].fd == fds[i].fd)
			watches[i].handler(watches[i].opaque,
					   (uint32_t)fds[i].revents);
	}
}

/* --- the transport's side ------------------------------------------------ */

static uint32_t serve_later_queues;
static bool needs_reset_called;

static void notify_queue(struct virtio_device *device, unsigned int queue)
{
	/* The decision the real transport makes before an interrupt. */
	(void)virtqueue_should_notify(&device->queues[queue]);
}

static void needs_reset(struct virtio_device *device)
{
	(void)device;
	needs_reset_called = true;
}

static void notify_config(struct virtio_device *device)
{
	(void)device;
}

static void serve_queue_later(struct virtio_device *device, unsigned int queue)
{
	(void)device;
	serve_later_queues |= 1u << queue;
}

void fuzz_transport_attach(struct virtio_device *device)
{
	device->notify_queue = notify_queue;
	device->needs_reset = needs_reset;
	device->notify_config = notify_config;
	device->serve_queue_later = serve_queue_later;
}

int fuzz_transport_start(struct virtio_device *device,
			 struct fuzz_driver *driver, struct fuzz_input *input)
{
	serve_later_queues = 0;
	needs_reset_called = false;
	device->driver_features = (fuzz_take_u64(input) & device->device_features) |
				  (UINT64_C(1) << VIRTIO_F_VERSION_1);
	if (device->ops->features_acceptable &&
	    !device->ops->features_acceptable(device))
		return -EINVAL;
	for (unsigned int i = 0; i < device->queue_count && i < FUZZ_MAX_QUEUES;
	     i++) {
		struct virtqueue *queue = &device->queues[i];

		queue->event_idx = virtio_has_feature(device, VIRTIO_F_EVENT_IDX);
		queue->indirect =
			virtio_has_feature(device, VIRTIO_F_INDIRECT_DESC);
		if (fuzz_driver_queue_setup(driver, queue, i,
					    fuzz_take_u8(input)))
			return -EINVAL;
	}
	return device->ops->activate(device);
}

void fuzz_transport_serve_later(struct virtio_device *device)
{
	for (unsigned int round = 0; round < 16 && serve_later_queues; round++) {
		uint32_t queues = serve_later_queues;

		serve_later_queues = 0;
		for (unsigned int i = 0; i < device->queue_count; i++) {
			if (queues & (1u << i) && device->queues[i].ready)
				device->ops->queue_notify(device, i);
		}
	}
}

bool fuzz_transport_needs_reset(void)
{
	return needs_reset_called;
}
