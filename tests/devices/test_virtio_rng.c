/*
 * The virtio entropy device (virtio 1.2 §5.4) driven through its ops on a
 * fake guest RAM, with the requestq laid out by hand as a driver would.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/rng.h"
#include "fakes.h"

#define RAM_SIZE (1u << 20)
#define QUEUE_SIZE 8
#define DESC_ADDR 0x1000
#define AVAIL_ADDR 0x2000
#define USED_ADDR 0x3000
#define AVAIL_EVENT_ADDR (USED_ADDR + 4 + 8 * QUEUE_SIZE)
#define DATA_ADDR 0x10000

#define F_NEXT 1
#define F_WRITE 2

static uint8_t *ram;
static struct guest_memory memory;
static struct virtio_rng *rng;
static struct virtio_device *device;
static unsigned int notify_calls, needs_reset_calls;

static void record_notify(struct virtio_device *notified, unsigned int queue)
{
	cr_assert_eq(notified, device);
	cr_assert_eq(queue, 0);
	notify_calls++;
}

static void record_needs_reset(struct virtio_device *failed)
{
	cr_assert_eq(failed, device);
	needs_reset_calls++;
}

/* What the transport does up to DRIVER_OK with EVENT_IDX accepted. */
static void setup(void)
{
	ram = fake_ram_create(&memory, RAM_SIZE);
	struct device_context context = { .memory = &memory };

	rng = virtio_rng_create(&context);
	cr_assert_not_null(rng);
	device = virtio_rng_device(rng);
	cr_assert_eq(device->device_id, 4);
	cr_assert_eq(device->queue_count, 1);
	cr_assert_eq(device->config_size, 0);
	device->notify_queue = record_notify;
	device->needs_reset = record_needs_reset;
	device->driver_features = device->device_features;

	struct virtqueue *queue = &device->queues[0];
	queue->size = QUEUE_SIZE;
	queue->desc_addr = DESC_ADDR;
	queue->avail_addr = AVAIL_ADDR;
	queue->used_addr = USED_ADDR;
	queue->event_idx = true;
	queue->indirect = true;
	queue->ready = true;
	cr_assert_eq(virtqueue_validate(queue), 0);
	cr_assert_eq(device->ops->activate(device), 0);
	notify_calls = needs_reset_calls = 0;
}

static void teardown(void)
{
	virtio_rng_destroy(rng);
	free(ram);
}

TestSuite(virtio_rng, .init = setup, .fini = teardown);

static void set_desc(unsigned int index, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *entry = ram + DESC_ADDR + 16 * index;
	uint64_t addr_le = htole64(addr);
	uint32_t len_le = htole32(len);
	uint16_t flags_le = htole16(flags), next_le = htole16(next);

	memcpy(entry, &addr_le, 8);
	memcpy(entry + 8, &len_le, 4);
	memcpy(entry + 12, &flags_le, 2);
	memcpy(entry + 14, &next_le, 2);
}

static void make_available(uint16_t head)
{
	uint16_t idx = ram_get16(ram, AVAIL_ADDR + 2);

	ram_put16(ram, AVAIL_ADDR + 4 + 2 * (idx % QUEUE_SIZE), head);
	ram_put16(ram, AVAIL_ADDR + 2, idx + 1);
}

static uint32_t used_len(unsigned int slot)
{
	return ram_get32(ram, USED_ADDR + 8 + 8 * slot);
}

static uint32_t used_id(unsigned int slot)
{
	return ram_get32(ram, USED_ADDR + 4 + 8 * slot);
}

static bool all_zero(uint64_t gpa, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (ram[gpa + i])
			return false;
	return true;
}

Test(virtio_rng, fills_every_writable_buffer_of_a_request)
{
	set_desc(2, DATA_ADDR, 16, F_WRITE | F_NEXT, 5);
	set_desc(5, DATA_ADDR + 0x100, 32, F_WRITE | F_NEXT, 1);
	set_desc(1, DATA_ADDR + 0x200, 8, F_WRITE, 0);
	make_available(2);
	device->ops->queue_notify(device, 0);

	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 1);
	cr_assert_eq(used_id(0), 2);
	cr_assert_eq(used_len(0), 56);
	cr_assert_not(all_zero(DATA_ADDR, 16));
	cr_assert_not(all_zero(DATA_ADDR + 0x100, 32));
	cr_assert_not(all_zero(DATA_ADDR + 0x200, 8));
	/* Nothing past the buffers. */
	cr_assert(all_zero(DATA_ADDR + 16, 0x100 - 16));
	cr_assert(all_zero(DATA_ADDR + 0x208, 0x100));
	cr_assert_eq(notify_calls, 1);
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_rng, read_only_request_gets_nothing)
{
	set_desc(0, DATA_ADDR, 64, 0, 0);
	make_available(0);
	device->ops->queue_notify(device, 0);

	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 1);
	cr_assert_eq(used_id(0), 0);
	cr_assert_eq(used_len(0), 0);
	cr_assert(all_zero(DATA_ADDR, 64));
	cr_assert_eq(notify_calls, 1);
}

Test(virtio_rng, serves_a_batch_with_one_notification)
{
	for (unsigned int i = 0; i < 3; i++) {
		set_desc(i, DATA_ADDR + 0x100 * i, 4 + i, F_WRITE, 0);
		make_available(i);
	}
	device->ops->queue_notify(device, 0);

	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 3);
	for (unsigned int i = 0; i < 3; i++) {
		cr_assert_eq(used_id(i), i);
		cr_assert_eq(used_len(i), 4 + i);
	}
	cr_assert_eq(notify_calls, 1);
	/* Kicks wanted again from the next request on (§2.7.10). */
	cr_assert_eq(ram_get16(ram, AVAIL_EVENT_ADDR), 3);
}

Test(virtio_rng, empty_kick_notifies_nobody)
{
	device->ops->queue_notify(device, 0);
	cr_assert_eq(notify_calls, 0);
	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 0);
}

Test(virtio_rng, request_gets_at_most_the_bound)
{
	const uint32_t len = 2 * VIRTIO_RNG_MAX_REQUEST_BYTES;

	set_desc(0, DATA_ADDR, len, F_WRITE, 0);
	make_available(0);
	device->ops->queue_notify(device, 0);

	cr_assert_eq(used_len(0), VIRTIO_RNG_MAX_REQUEST_BYTES);
	cr_assert_not(all_zero(DATA_ADDR + VIRTIO_RNG_MAX_REQUEST_BYTES - 16,
			       16));
	cr_assert(all_zero(DATA_ADDR + VIRTIO_RNG_MAX_REQUEST_BYTES,
			   len - VIRTIO_RNG_MAX_REQUEST_BYTES));
}

Test(virtio_rng, malformed_request_goes_back_and_the_next_is_served)
{
	set_desc(0, RAM_SIZE, 16, F_WRITE, 0);
	set_desc(1, DATA_ADDR, 16, F_WRITE, 0);
	make_available(0);
	make_available(1);
	device->ops->queue_notify(device, 0);

	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 2);
	cr_assert_eq(used_id(0), 0);
	cr_assert_eq(used_len(0), 0);
	cr_assert_eq(used_id(1), 1);
	cr_assert_eq(used_len(1), 16);
	cr_assert_eq(notify_calls, 1);
	cr_assert_eq(needs_reset_calls, 0);
}

Test(virtio_rng, broken_available_index_asks_for_a_reset)
{
	ram_put16(ram, AVAIL_ADDR + 2, QUEUE_SIZE + 1);
	device->ops->queue_notify(device, 0);

	cr_assert_eq(needs_reset_calls, 1);
	cr_assert_eq(notify_calls, 0);
	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 0);
}

Test(virtio_rng, reset_forgets_the_queue)
{
	set_desc(0, DATA_ADDR, 16, F_WRITE, 0);
	make_available(0);
	device->ops->queue_notify(device, 0);
	cr_assert_eq(device->queues[0].last_avail_idx, 1);

	device->ops->reset(device);
	cr_assert_not(device->queues[0].ready);
	cr_assert_eq(device->queues[0].last_avail_idx, 0);
	cr_assert_eq(device->queues[0].used_idx, 0);
	cr_assert_eq(device->queues[0].memory, &memory);
}

Test(virtio_rng, kick_for_a_queue_not_enabled_takes_nothing)
{
	/* A kick that raced with a reset, or a driver setting the queue up
	 * again: the rings are there but not enabled. */
	device->queues[0].ready = false;
	set_desc(0, DATA_ADDR, 16, F_WRITE, 0);
	make_available(0);
	device->ops->queue_notify(device, 0);
	cr_assert_eq(ram_get16(ram, USED_ADDR + 2), 0);
	cr_assert(all_zero(DATA_ADDR, 16));
	cr_assert_eq(notify_calls, 0);
}

/*
 * The fastest driver there can be: the used ring lies on the available
 * ring, and the device's used index starts one ahead of its available
 * one, so every request the device gives back is, when it looks again, a
 * new request made available. A used element (id, len 64 KiB) lands on
 * four available entries as the heads id, 0, 0 and 1: descriptors 0 and
 * 1 are both requests of the largest size.
 */
static void make_a_driver_that_never_stops(void)
{
	struct virtqueue *queue = &device->queues[0];

	set_desc(0, DATA_ADDR, VIRTIO_RNG_MAX_REQUEST_BYTES, F_WRITE, 0);
	set_desc(1, DATA_ADDR + VIRTIO_RNG_MAX_REQUEST_BYTES,
		 VIRTIO_RNG_MAX_REQUEST_BYTES, F_WRITE, 0);
	queue->used_addr = AVAIL_ADDR;
	queue->used_idx = 1;
	make_available(0);
}

Test(virtio_rng, a_driver_that_refills_at_once_gets_a_budget_a_round,
     .timeout = 10)
{
	/* Each request costs its chain and a unit per
	 * VIRTIO_RNG_BYTES_PER_UNIT of entropy. */
	const unsigned int cost =
		1 + VIRTIO_RNG_MAX_REQUEST_BYTES / VIRTIO_RNG_BYTES_PER_UNIT;
	const unsigned int per_round = (VIRTIO_QUEUE_BUDGET + cost - 1) / cost;

	make_a_driver_that_never_stops();
	for (unsigned int round = 1; round <= 3; round++) {
		cr_assert(virtio_serve_queue(device, 0),
			  "round %u leaves requests for the next", round);
		cr_assert_eq(device->queues[0].last_avail_idx,
			     round * per_round);
	}
	/* Every request was served whole: the used lengths, from the used
	 * index the driver set up (1) on. */
	const unsigned int served = 3 * per_round;
	for (unsigned int n = 1; n <= served && n <= QUEUE_SIZE; n++)
		cr_assert_eq(ram_get32(ram, AVAIL_ADDR + 8 + 8 * (n % QUEUE_SIZE)),
			     VIRTIO_RNG_MAX_REQUEST_BYTES, "used element %u", n);
	cr_assert_eq(needs_reset_calls, 0);
}
