/*
 * Split virtqueues (virtio 1.2 §2.7) as a device sees them: take the
 * driver's available descriptor chains as lists of guest buffers, give them
 * back through the used ring, and decide when the driver wants an interrupt.
 *
 * Promise: everything read from the rings is untrusted. A chain that loops,
 * is longer than the queue, points outside guest RAM, nests indirect tables,
 * or puts a device-readable buffer after a device-writable one is refused
 * with -EINVAL (and its head is already returned to the driver with length
 * 0, so the queue goes on); no host memory outside guest RAM is ever read or
 * written. One thread at a time uses a queue (the event thread).
 */
#ifndef VESSEL_DEVICES_VIRTIO_VIRTQUEUE_H
#define VESSEL_DEVICES_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../guest_memory.h"

#define VIRTQUEUE_MAX_SIZE 1024 /* what vessel offers; a power of two */
/* The most buffers one request may have: a chain can be no longer than
 * the queue, or an indirect table's entries. */
#define VIRTQUEUE_MAX_SEGMENTS VIRTQUEUE_MAX_SIZE

struct virtqueue {
	/* Set by the transport from the driver's configuration. */
	uint16_t size; /* entries; a power of two up to VIRTQUEUE_MAX_SIZE */
	bool ready;
	uint64_t desc_addr, avail_addr, used_addr; /* guest-physical */
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect; /* VIRTIO_F_INDIRECT_DESC negotiated */
	const struct guest_memory *memory;

	/* The device's own position in the rings. */
	uint16_t last_avail_idx;
	uint16_t used_idx;
	uint16_t signalled_used; /* used_idx when the driver was last told */
	bool signalled_used_valid;

	/* Within a round (virtqueue_begin_round): what virtqueue_pop may
	 * still take, a unit a chain, malformed ones included. No bound
	 * outside a round. */
	bool in_round;
	unsigned int round_budget;
};

/* A descriptor chain taken from the available ring, as host buffers. */
struct virtqueue_element {
	uint16_t head; /* what virtqueue_push() gives back */
	/* the queue's guest memory, which the buffers are in: where vessel's
	 * writes into them are marked */
	const struct guest_memory *memory;
	unsigned int out_count; /* device-readable buffers, first */
	unsigned int in_count; /* device-writable buffers, after them */
	size_t out_bytes, in_bytes;
	struct iovec out[VIRTQUEUE_MAX_SEGMENTS];
	struct iovec in[VIRTQUEUE_MAX_SEGMENTS];
};

/* Checks the ring addresses the driver set (alignment, inside guest RAM)
 * when it enables the queue: 0 or -EINVAL. */
int virtqueue_validate(const struct virtqueue *queue);

/* Forgets all state: the driver reset the device or the queue. */
void virtqueue_reset(struct virtqueue *queue);

/* Bounds what one call of a device's queue handler takes: until
 * virtqueue_end_round, virtqueue_pop hands out at most budget chains (a
 * malformed one counts, since walking it was work too) and then reports
 * the ring empty, and virtqueue_has_available says false. */
void virtqueue_begin_round(struct virtqueue *queue, unsigned int budget);

/* Within a round: counts units more of the budget for the chain just
 * taken, for a device whose chains carry bulk work of their own. */
void virtqueue_charge(struct virtqueue *queue, unsigned int units);

/* Ends the round: whether chains wait that the budget kept back, for a
 * later round. */
bool virtqueue_end_round(struct virtqueue *queue);

/* Takes the next available chain: 1 when element is filled, 0 when the
 * ring is empty (or the round's budget is spent), -EINVAL for a malformed chain (consumed, see above).
 * -EINVAL that leaves last_avail_idx unchanged means the driver broke the
 * ring itself (its index ran more than size ahead): nothing was consumed,
 * every later pop fails alike, so stop and call needs_reset. */
int virtqueue_pop(struct virtqueue *queue, struct virtqueue_element *element);

/* Returns a chain to the driver with the number of bytes the device wrote
 * into its device-writable buffers. Those bytes must have been copied in
 * with virtqueue_copy_to_in, or the chain pushed with
 * virtqueue_push_element, so that dirty tracking sees them. */
void virtqueue_push(struct virtqueue *queue, uint16_t head, uint32_t written);

/* virtqueue_push for a chain whose device-writable buffers the device
 * filled through their host pointers (a disk read, getrandom): marks every
 * one of them as written by vessel first, whatever written says (a failed
 * read may have left data), then pushes. */
void virtqueue_push_element(struct virtqueue *queue,
			    const struct virtqueue_element *element,
			    uint32_t written);

/* Puts back the last count chains virtqueue_pop() took, none of them
 * pushed: the next pops take them again, as the driver made them
 * available. For a device that took buffers it cannot use after all (a
 * frame that needs more of them than the ring holds now). */
void virtqueue_rewind(struct virtqueue *queue, uint16_t count);

/* After pushes: whether the driver asked to be interrupted now (the
 * VIRTQ_AVAIL_F_NO_INTERRUPT flag, or used_event with EVENT_IDX, §2.7.10). */
bool virtqueue_should_notify(struct virtqueue *queue);

/* Tells the driver whether the device wants kicks (VIRTQ_USED_F_NO_NOTIFY,
 * or avail_event with EVENT_IDX). Re-check the ring after enabling. */
void virtqueue_set_notification(struct virtqueue *queue, bool enabled);

/* Whether the driver made chains available that virtqueue_pop() has not
 * taken yet and would hand out in this round: the re-check after
 * virtqueue_set_notification(queue, true). True also when the ring cannot
 * be read, so that virtqueue_pop() reports the error. */
bool virtqueue_has_available(const struct virtqueue *queue);

/* Copy helpers over an element's buffers: bytes copied. */
size_t virtqueue_copy_from_out(const struct virtqueue_element *element,
			       size_t offset, void *dst, size_t len);
size_t virtqueue_copy_to_in(const struct virtqueue_element *element,
			    size_t offset, const void *src, size_t len);

/* The device-readable bytes from offset on, as element's own buffers with
 * the first one trimmed in place: for passing a request's payload on
 * without copying once its header is read. *count is how many buffers;
 * none when offset is at or past the end. */
struct iovec *virtqueue_out_from(struct virtqueue_element *element,
				 size_t offset, unsigned int *count);

#endif
