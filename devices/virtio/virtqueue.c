/*
 * Split virtqueues, virtio 1.2 §2.7. The rings live in guest RAM and the
 * driver writes them concurrently from its vCPUs, so every field is read
 * once into a local copy, checked, and only then used; every access goes
 * through guest_memory_ptr() and its bounds check. Ring fields are
 * little-endian (§2.7).
 */
#include "virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* Descriptor flags (§2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/* Notification suppression flags (§2.7.7, §2.7.10). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Sizes and offsets of the three parts (§2.7, table "Virtqueue Part"). */
#define DESC_SIZE 16
#define RING_HEADER_SIZE 4 /* flags, idx */
#define AVAIL_ELEM_SIZE 2
#define USED_ELEM_SIZE 8
#define EVENT_FIELD_SIZE 2 /* used_event, avail_event */

struct descriptor {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static uint64_t avail_ring_bytes(uint16_t size)
{
	return RING_HEADER_SIZE + (uint64_t)AVAIL_ELEM_SIZE * size +
	       EVENT_FIELD_SIZE;
}

static uint64_t used_ring_bytes(uint16_t size)
{
	return RING_HEADER_SIZE + (uint64_t)USED_ELEM_SIZE * size +
	       EVENT_FIELD_SIZE;
}

static uint64_t avail_idx_addr(const struct virtqueue *queue)
{
	return queue->avail_addr + 2;
}

static uint64_t used_event_addr(const struct virtqueue *queue)
{
	return queue->avail_addr + RING_HEADER_SIZE +
	       (uint64_t)AVAIL_ELEM_SIZE * queue->size;
}

static uint64_t used_idx_addr(const struct virtqueue *queue)
{
	return queue->used_addr + 2;
}

static uint64_t avail_event_addr(const struct virtqueue *queue)
{
	return queue->used_addr + RING_HEADER_SIZE +
	       (uint64_t)USED_ELEM_SIZE * queue->size;
}

static bool size_is_valid(uint16_t size)
{
	return size != 0 && size <= VIRTQUEUE_MAX_SIZE &&
	       (size & (size - 1)) == 0;
}

/*
 * The 16-bit index and flag fields are shared with the driver's vCPUs and
 * must be read and written whole, so they are accessed atomically through a
 * host pointer checked for range and natural alignment.
 */
static uint16_t *ring_field(const struct virtqueue *queue, uint64_t gpa)
{
	uint16_t *field = guest_memory_ptr(queue->memory, gpa, sizeof(*field));

	if (!field || (uintptr_t)field % sizeof(*field))
		return NULL;
	return field;
}

static int ring_load16(const struct virtqueue *queue, uint64_t gpa,
		       uint16_t *value)
{
	uint16_t *field = ring_field(queue, gpa);

	if (!field)
		return -EFAULT;
	*value = le16toh(__atomic_load_n(field, __ATOMIC_RELAXED));
	return 0;
}

/* The device's writes go to rings virtqueue_validate() accepted; a field
 * that is not in guest RAM after all is skipped rather than written. */
static void ring_store16(const struct virtqueue *queue, uint64_t gpa,
			 uint16_t value)
{
	uint16_t *field = ring_field(queue, gpa);

	if (field) {
		__atomic_store_n(field, htole16(value), __ATOMIC_RELAXED);
		guest_memory_mark_written(queue->memory, field, sizeof(*field));
	}
}

static bool ring_is_valid(const struct virtqueue *queue, uint64_t gpa,
			  uint64_t len, uint64_t alignment)
{
	void *host = guest_memory_ptr(queue->memory, gpa, len);

	return host && gpa % alignment == 0 &&
	       (uintptr_t)host % alignment == 0;
}

/*
 * Alignments and sizes from §2.7's table. The sizes always include
 * used_event and avail_event, as the table does: the driver allocates them
 * whether or not VIRTIO_F_EVENT_IDX is negotiated. The host-side alignment
 * is checked too, so the atomic ring accesses above are always aligned.
 */
int virtqueue_validate(const struct virtqueue *queue)
{
	if (!size_is_valid(queue->size))
		return -EINVAL;
	if (!ring_is_valid(queue, queue->desc_addr,
			   (uint64_t)DESC_SIZE * queue->size, 16) ||
	    !ring_is_valid(queue, queue->avail_addr,
			   avail_ring_bytes(queue->size), 2) ||
	    !ring_is_valid(queue, queue->used_addr,
			   used_ring_bytes(queue->size), 4))
		return -EINVAL;
	return 0;
}

/*
 * Back to the state after a device reset (§4.1.4.3): not ready, no rings,
 * queue_size at the maximum vessel offers, no features. The guest memory
 * the queue works on is wiring, not state, and is kept.
 */
void virtqueue_reset(struct virtqueue *queue)
{
	const struct guest_memory *memory = queue->memory;

	*queue = (struct virtqueue){
		.size = VIRTQUEUE_MAX_SIZE,
		.memory = memory,
	};
}

static int read_descriptor(const struct virtqueue *queue, uint64_t table,
			   uint32_t index, struct descriptor *descriptor)
{
	uint8_t raw[DESC_SIZE];
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;

	if (guest_memory_read(queue->memory, table + (uint64_t)index * DESC_SIZE,
			      raw, sizeof(raw)))
		return -EINVAL;
	memcpy(&addr, raw, sizeof(addr));
	memcpy(&len, raw + 8, sizeof(len));
	memcpy(&flags, raw + 12, sizeof(flags));
	memcpy(&next, raw + 14, sizeof(next));
	*descriptor = (struct descriptor){
		.addr = le64toh(addr),
		.len = le32toh(len),
		.flags = le16toh(flags),
		.next = le16toh(next),
	};
	return 0;
}

/* Appends one buffer to the element. Device-readable buffers come before
 * device-writable ones (§2.7.4.2), and a chain holds at most
 * VIRTQUEUE_MAX_SEGMENTS buffers (the device's "reasonable limit",
 * §2.7.4.1). Zero-length buffers carry no bytes, so they are dropped
 * without looking at their address or place. */
static int add_buffer(const struct virtqueue *queue,
		      struct virtqueue_element *element,
		      const struct descriptor *descriptor)
{
	bool writable = descriptor->flags & VIRTQ_DESC_F_WRITE;
	struct iovec *iov;
	size_t *bytes;
	void *host;

	if (descriptor->len == 0)
		return 0;
	if (!writable && element->in_count)
		return -EINVAL;
	if (element->out_count + element->in_count >= VIRTQUEUE_MAX_SEGMENTS)
		return -EINVAL;
	host = guest_memory_ptr(queue->memory, descriptor->addr,
				descriptor->len);
	if (!host)
		return -EINVAL;
	if (writable) {
		iov = &element->in[element->in_count++];
		bytes = &element->in_bytes;
	} else {
		iov = &element->out[element->out_count++];
		bytes = &element->out_bytes;
	}
	if (__builtin_add_overflow(*bytes, descriptor->len, bytes))
		return -EINVAL;
	*iov = (struct iovec){ .iov_base = host, .iov_len = descriptor->len };
	return 0;
}

/*
 * An indirect descriptor (§2.7.5.3) ends the chain: the driver MUST NOT
 * combine INDIRECT with NEXT (§2.7.5.3.1), and the device MUST accept it
 * after zero or more direct descriptors (§2.7.5.3.2). Its WRITE flag is
 * ignored, as §2.7.5.3.2 requires.
 */
static int enter_indirect_table(const struct virtqueue *queue,
				const struct descriptor *descriptor,
				uint64_t *table, uint32_t *table_size)
{
	if (!queue->indirect || (descriptor->flags & VIRTQ_DESC_F_NEXT))
		return -EINVAL;
	/* An empty table is refused by the walk: index 0 is beyond it. */
	if (descriptor->len % DESC_SIZE ||
	    descriptor->len / DESC_SIZE > VIRTQUEUE_MAX_SEGMENTS)
		return -EINVAL;
	if (!guest_memory_ptr(queue->memory, descriptor->addr, descriptor->len))
		return -EINVAL;
	*table = descriptor->addr;
	*table_size = descriptor->len / DESC_SIZE;
	return 0;
}

/*
 * Walks the chain from head. A table of n descriptors holds no chain longer
 * than n that does not visit one twice, so counting visits per table bounds
 * any loop a driver builds despite §2.7.5.2 forbidding them. Indirect
 * tables do not nest (§2.7.5.3.1).
 */
static int walk_chain(const struct virtqueue *queue, uint16_t head,
		      struct virtqueue_element *element)
{
	uint64_t table = queue->desc_addr;
	uint32_t table_size = queue->size;
	uint32_t index = head;
	uint32_t visited = 0;
	bool in_indirect = false;
	struct descriptor descriptor;

	for (;;) {
		if (index >= table_size || ++visited > table_size)
			return -EINVAL;
		if (read_descriptor(queue, table, index, &descriptor))
			return -EINVAL;
		if (descriptor.flags & VIRTQ_DESC_F_INDIRECT) {
			if (in_indirect ||
			    enter_indirect_table(queue, &descriptor, &table,
						 &table_size))
				return -EINVAL;
			in_indirect = true;
			index = 0;
			visited = 0;
			continue;
		}
		if (add_buffer(queue, element, &descriptor))
			return -EINVAL;
		if (!(descriptor.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		index = descriptor.next;
	}
}

void virtqueue_begin_round(struct virtqueue *queue, unsigned int budget)
{
	queue->in_round = true;
	queue->round_budget = budget;
}

void virtqueue_charge(struct virtqueue *queue, unsigned int units)
{
	if (queue->in_round)
		queue->round_budget -= units < queue->round_budget ?
					       units : queue->round_budget;
}

bool virtqueue_end_round(struct virtqueue *queue)
{
	bool spent = queue->in_round && queue->round_budget == 0;

	queue->in_round = false;
	return spent && virtqueue_has_available(queue);
}

/*
 * An available index more than size ahead of the device's position cannot
 * come from a working driver: the ring is no larger than the descriptor
 * table (§2.7.13). Nothing is consumed then, and every later pop fails the
 * same way, so a caller stops taking requests on an error that left
 * last_avail_idx unchanged and asks for a reset (§2.1.2).
 */
int virtqueue_pop(struct virtqueue *queue, struct virtqueue_element *element)
{
	uint16_t avail_idx, head;
	int err;

	if (queue->in_round && queue->round_budget == 0)
		return 0;
	if (!size_is_valid(queue->size) ||
	    ring_load16(queue, avail_idx_addr(queue), &avail_idx))
		return -EINVAL;
	/* The ring entries and descriptors are read after the index that
	 * published them (§2.7.13.3.1's write barrier on the driver side). */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (avail_idx == queue->last_avail_idx)
		return 0;
	if ((uint16_t)(avail_idx - queue->last_avail_idx) > queue->size)
		return -EINVAL;
	if (ring_load16(queue,
			queue->avail_addr + RING_HEADER_SIZE +
				AVAIL_ELEM_SIZE *
					(queue->last_avail_idx % queue->size),
			&head))
		return -EINVAL;
	queue->last_avail_idx++;
	if (queue->in_round)
		queue->round_budget--;

	/* The iovec arrays are filled as far as the counts say, no further. */
	element->head = head;
	element->memory = queue->memory;
	element->out_count = element->in_count = 0;
	element->out_bytes = element->in_bytes = 0;
	err = walk_chain(queue, head, element);
	if (err) {
		/* The head goes back as the driver gave it, so the driver
		 * can reclaim it even when it is out of range. */
		virtqueue_push(queue, head, 0);
		return err;
	}
	return 1;
}

bool virtqueue_has_available(const struct virtqueue *queue)
{
	uint16_t avail_idx;

	if (queue->in_round && queue->round_budget == 0)
		return false;
	if (ring_load16(queue, avail_idx_addr(queue), &avail_idx))
		return true;
	return avail_idx != queue->last_avail_idx;
}

void virtqueue_push(struct virtqueue *queue, uint16_t head, uint32_t written)
{
	uint32_t used_elem[2] = { htole32(head), htole32(written) };
	uint64_t slot = queue->used_addr + RING_HEADER_SIZE +
			(uint64_t)USED_ELEM_SIZE * (queue->used_idx % queue->size);

	/* Checked and skipped outside guest RAM, like ring_store16(). */
	guest_memory_write(queue->memory, slot, used_elem, sizeof(used_elem));
	/* The element is visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	queue->used_idx++;
	ring_store16(queue, used_idx_addr(queue), queue->used_idx);
}

void virtqueue_push_element(struct virtqueue *queue,
			    const struct virtqueue_element *element,
			    uint32_t written)
{
	for (unsigned int i = 0; i < element->in_count; i++)
		guest_memory_mark_written(queue->memory, element->in[i].iov_base,
					  element->in[i].iov_len);
	virtqueue_push(queue, element->head, written);
}

/* Only last_avail_idx moves: nothing of the chains reached the used ring,
 * and the driver cannot tell they were ever taken. */
void virtqueue_rewind(struct virtqueue *queue, uint16_t count)
{
	queue->last_avail_idx -= count;
}

/* §2.7.7 (the virtio_ring.h helper of the same name): whether used_event
 * lies in the window (old_idx, new_idx] of entries pushed since the last
 * interrupt, in 16-bit index arithmetic. */
static bool vring_need_event(uint16_t event_idx, uint16_t new_idx,
			     uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) <
	       (uint16_t)(new_idx - old_idx);
}

bool virtqueue_should_notify(struct virtqueue *queue)
{
	uint16_t old_idx = queue->signalled_used;
	uint16_t new_idx = queue->used_idx;
	bool old_valid = queue->signalled_used_valid;
	uint16_t value;

	/* The used index is published before the driver's suppression
	 * fields are read, or an interrupt the driver just asked for by
	 * re-enabling them could be missed (§2.7.7). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	queue->signalled_used = new_idx;
	queue->signalled_used_valid = true;

	if (!queue->event_idx) {
		if (ring_load16(queue, queue->avail_addr, &value))
			return true;
		return !(value & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	/* Until an interrupt was sent, old_idx means nothing. */
	if (!old_valid)
		return true;
	if (ring_load16(queue, used_event_addr(queue), &value))
		return true;
	return vring_need_event(value, new_idx, old_idx);
}

void virtqueue_set_notification(struct virtqueue *queue, bool enabled)
{
	if (!queue->event_idx) {
		/* used->flags is the device's to write (§2.7.10); NO_NOTIFY is
		 * its only defined bit. */
		ring_store16(queue, queue->used_addr,
			     enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY);
	} else if (enabled) {
		/* Kick when the driver makes the next entry available
		 * (§2.7.10); while disabled avail_event is simply left
		 * behind, which is advisory anyway. */
		ring_store16(queue, avail_event_addr(queue),
			     queue->last_avail_idx);
	}
	/* The driver sees the new setting before the device re-checks the
	 * available index, or a request made in between is missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copies between a flat buffer and the bytes of iov[0..count) that start
 * at offset; to_iov says which way. */
static size_t copy_iov(const struct iovec *iov, unsigned int count,
		       size_t offset, uint8_t *flat, size_t len, bool to_iov)
{
	size_t copied = 0;

	for (unsigned int i = 0; i < count && copied < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		uint8_t *buffer = (uint8_t *)iov[i].iov_base + offset;
		size_t chunk = iov[i].iov_len - offset;

		if (chunk > len - copied)
			chunk = len - copied;
		if (to_iov)
			memcpy(buffer, flat + copied, chunk);
		else
			memcpy(flat + copied, buffer, chunk);
		copied += chunk;
		offset = 0;
	}
	return copied;
}

/* Marks the copied bytes of the device-writable buffers as vessel's
 * writes, once they are in. */
static void mark_copied(const struct virtqueue_element *element,
			size_t offset, size_t len)
{
	for (unsigned int i = 0; element->memory && i < element->in_count &&
				 len; i++) {
		const struct iovec *buffer = &element->in[i];
		if (offset >= buffer->iov_len) {
			offset -= buffer->iov_len;
			continue;
		}
		size_t chunk = buffer->iov_len - offset < len ?
				       buffer->iov_len - offset : len;
		guest_memory_mark_written(element->memory,
					  (uint8_t *)buffer->iov_base + offset,
					  chunk);
		len -= chunk;
		offset = 0;
	}
}

size_t virtqueue_copy_from_out(const struct virtqueue_element *element,
			       size_t offset, void *dst, size_t len)
{
	return copy_iov(element->out, element->out_count, offset, dst, len,
			false);
}

size_t virtqueue_copy_to_in(const struct virtqueue_element *element,
			    size_t offset, const void *src, size_t len)
{
	/* copy_iov only reads flat when copying into the element. */
	size_t copied = copy_iov(element->in, element->in_count, offset,
				 (uint8_t *)src, len, true);

	mark_copied(element, offset, copied);
	return copied;
}

struct iovec *virtqueue_out_from(struct virtqueue_element *element,
				 size_t offset, unsigned int *count)
{
	unsigned int i = 0;

	while (i < element->out_count && offset >= element->out[i].iov_len) {
		offset -= element->out[i].iov_len;
		i++;
	}
	if (i < element->out_count) {
		element->out[i].iov_base = (uint8_t *)element->out[i].iov_base +
					   offset;
		element->out[i].iov_len -= offset;
	}
	*count = element->out_count - i;
	return element->out + i;
}
