/*
 * The split virtqueue walker (devices/virtio/virtqueue.c) against a driver
 * that writes anything into its rings: descriptors that loop, point
 * outside RAM, nest indirect tables, put readable after writable buffers;
 * available indexes that run ahead; EVENT_IDX fields with any value. The
 * device side pops, pushes, rewinds, copies and decides on interrupts and
 * kicks in the order the input says, and checks that every buffer of a
 * chain it took lies inside guest RAM.
 *
 * Input: a byte of queue set-up (size, EVENT_IDX, INDIRECT_DESC), then
 * operations: a byte whose low bit says driver (the rest picks one of
 * fuzz_driver_operate's) or device (the rest picks one below), and its
 * operands.
 */
#include <stdlib.h>

#include "devices/virtio/virtqueue.h"
#include "fuzz_driver.h"

#define MAX_TAKEN 64

static struct fuzz_driver driver;
static struct virtqueue_element element;
static uint8_t scratch[1 << 16];

/* Chains popped and not yet pushed, oldest first; the last ones since
 * the last push may be rewound. */
static struct {
	uint16_t head;
	size_t in_bytes;
} taken[MAX_TAKEN];
static unsigned int taken_count, taken_since_push;

/* The bytes of iov, after checking that each buffer lies inside guest
 * RAM (the walker's promise). */
static size_t bytes_inside_ram(const struct iovec *iov, unsigned int count)
{
	size_t total = 0;

	for (unsigned int i = 0; i < count; i++) {
		const uint8_t *base = iov[i].iov_base;

		if (base < driver.ram || iov[i].iov_len > FUZZ_RAM_SIZE ||
		    base + iov[i].iov_len > driver.ram + FUZZ_RAM_SIZE)
			abort();
		total += iov[i].iov_len;
	}
	return total;
}

static void push_oldest(struct virtqueue *queue, struct fuzz_input *input)
{
	uint32_t written = fuzz_take_u32(input);

	if (!taken_count)
		return;
	/* A device writes no more than the chain holds. */
	written %= (uint32_t)(taken[0].in_bytes + 1);
	virtqueue_push(queue, taken[0].head, written);
	taken_count--;
	for (unsigned int i = 0; i < taken_count; i++)
		taken[i] = taken[i + 1];
	taken_since_push = 0;
}

static void pop(struct virtqueue *queue, struct fuzz_input *input)
{
	uint16_t last_avail_idx = queue->last_avail_idx;
	int ret = virtqueue_pop(queue, &element);
	unsigned int count;

	if (ret < 0 && queue->last_avail_idx != last_avail_idx)
		taken_since_push = 0; /* the malformed chain went back */
	if (ret != 1)
		return;
	if (bytes_inside_ram(element.out, element.out_count) !=
		    element.out_bytes ||
	    bytes_inside_ram(element.in, element.in_count) != element.in_bytes)
		abort();
	virtqueue_copy_from_out(&element, fuzz_take_u16(input), scratch,
				sizeof(scratch));
	virtqueue_copy_to_in(&element, fuzz_take_u16(input), scratch,
			     fuzz_take_u16(input));
	bytes_inside_ram(virtqueue_out_from(&element, fuzz_take_u16(input),
					    &count),
			 count);
	if (taken_count == MAX_TAKEN) {
		virtqueue_push(queue, element.head, 0);
		taken_since_push = 0;
		return;
	}
	taken[taken_count].head = element.head;
	taken[taken_count].in_bytes = element.in_bytes;
	taken_count++;
	taken_since_push++;
}

static void rewind_newest(struct virtqueue *queue, struct fuzz_input *input)
{
	uint16_t count = fuzz_take_u8(input) % (taken_since_push + 1);

	virtqueue_rewind(queue, count);
	taken_count -= count;
	taken_since_push -= count;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_driver_init(&driver);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct virtqueue queue = { 0 };
	uint8_t setup = fuzz_take_u8(&input);

	fuzz_driver_clear(&driver);
	taken_count = taken_since_push = 0;
	virtqueue_reset(&queue);
	queue.event_idx = setup & 0x10;
	queue.indirect = setup & 0x20;
	if (fuzz_driver_queue_setup(&driver, &queue, 0, setup))
		return 0;
	while (!fuzz_input_empty(&input)) {
		uint8_t op = fuzz_take_u8(&input);

		if (!(op & 1)) {
			fuzz_driver_operate(&driver, &queue, op >> 1, &input);
			continue;
		}
		switch ((op >> 1) % 6) {
		case 0:
			pop(&queue, &input);
			break;
		case 1:
			push_oldest(&queue, &input);
			break;
		case 2:
			rewind_newest(&queue, &input);
			break;
		case 3:
			virtqueue_should_notify(&queue);
			break;
		case 4:
			virtqueue_set_notification(&queue, op & 0x80);
			break;
		default:
			virtqueue_has_available(&queue);
			break;
		}
	}
	return 0;
}
