/*
 * What PS/2 devices share: the replies every device sends, and its output
 * buffer, the bytes it has for the host, sent one at a time as the
 * controller takes them.
 *
 * Promise: ps2_queue_put_all() queues a whole sequence (a scancode
 * sequence, a mouse packet, a command's reply) or nothing, so what the
 * host reads is never a part of one.
 */
#ifndef VESSEL_DEVICES_PS2_QUEUE_H
#define VESSEL_DEVICES_PS2_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Replies of PS/2 devices. */
#define PS2_ACK 0xfa
#define PS2_RESEND 0xfe
#define PS2_SELF_TEST_PASSED 0xaa

#define PS2_QUEUE_CAPACITY 64

struct ps2_queue {
	uint8_t bytes[PS2_QUEUE_CAPACITY];
	unsigned int head;
	unsigned int count;
	unsigned int limit; /* the device's buffer size, <= the capacity */
};

static inline void ps2_queue_init(struct ps2_queue *queue, unsigned int limit)
{
	*queue = (struct ps2_queue){ .limit = limit };
}

static inline unsigned int ps2_queue_room(const struct ps2_queue *queue)
{
	return queue->limit - queue->count;
}

static inline bool ps2_queue_put_all(struct ps2_queue *queue,
				     const uint8_t *bytes, size_t length)
{
	if (length > ps2_queue_room(queue))
		return false;
	for (size_t i = 0; i < length; i++) {
		unsigned int tail = (queue->head + queue->count) %
				    PS2_QUEUE_CAPACITY;

		queue->bytes[tail] = bytes[i];
		queue->count++;
	}
	return true;
}

static inline bool ps2_queue_get(struct ps2_queue *queue, uint8_t *byte)
{
	if (queue->count == 0)
		return false;
	*byte = queue->bytes[queue->head];
	queue->head = (queue->head + 1) % PS2_QUEUE_CAPACITY;
	queue->count--;
	return true;
}

static inline void ps2_queue_clear(struct ps2_queue *queue)
{
	queue->head = 0;
	queue->count = 0;
}

#endif
