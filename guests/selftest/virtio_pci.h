/*
 * A small virtio 1.2 driver for the selftest guest, run at CPL3: finds
 * modern virtio functions on PCI bus 0 through configuration mechanism #1
 * (ports 0xcf8/0xcfc), maps nothing (the guest's identity map already
 * covers the PCI hole, user-accessible), and sets up one split virtqueue
 * (§2.7) whose used ring the caller polls: MSI-X stays disabled and every
 * queue has VIRTIO_MSI_NO_VECTOR, so the device never interrupts.
 *
 * Only VIRTIO_F_VERSION_1 is negotiated: no indirect descriptors, no
 * EVENT_IDX, so the driver kicks unless the device set
 * VIRTQ_USED_F_NO_NOTIFY (§2.7.10).
 */
#ifndef VESSEL_GUESTS_SELFTEST_VIRTIO_PCI_H
#define VESSEL_GUESTS_SELFTEST_VIRTIO_PCI_H

#include <stdint.h>

/* Device types (§5). */
#define VIRTIO_TYPE_BLOCK 2
#define VIRTIO_TYPE_RNG 4

/* Descriptor flags (§2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

/* The largest queue this driver sets up: its rings fit struct
 * virtqueue_memory. */
#define VIRTQUEUE_DRIVER_MAX_SIZE 1024

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* The three rings of one queue, each page-aligned (more than §2.7's
 * 16-, 2- and 4-byte alignments ask), in guest RAM the caller owns. */
struct virtqueue_memory {
	struct virtq_desc desc[VIRTQUEUE_DRIVER_MAX_SIZE]
		__attribute__((aligned(4096)));
	struct {
		uint16_t flags;
		uint16_t idx;
		uint16_t ring[VIRTQUEUE_DRIVER_MAX_SIZE];
	} avail __attribute__((aligned(4096)));
	struct {
		uint16_t flags;
		uint16_t idx;
		struct virtq_used_elem ring[VIRTQUEUE_DRIVER_MAX_SIZE];
	} used __attribute__((aligned(4096)));
};

/* One virtio function and its queue 0. */
struct virtio_function {
	unsigned int slot;
	volatile uint8_t *common; /* common configuration (§4.1.4.3) */
	volatile uint8_t *device_config; /* device-specific (§4.1.4.6) */
	volatile uint8_t *notify_base;
	uint32_t notify_multiplier;

	/* Queue 0. */
	struct virtqueue_memory *rings;
	volatile uint16_t *notify;
	uint16_t size;
	uint16_t avail_idx; /* the driver's next available index */
	uint16_t used_seen; /* used entries taken so far */
};

/* Finds the index-th (from 0) virtio function of type on bus 0 and sets
 * it up with queue 0 of at most size entries (a power of two) in rings,
 * whose descriptors the caller fills before making them available. 0, or
 * a negative number after printing what failed. */
int virtio_function_start(struct virtio_function *function, uint16_t type,
			  unsigned int index, struct virtqueue_memory *rings,
			  uint16_t size);

/* Whether the device set DEVICE_NEEDS_RESET (§2.1.2): it serves the
 * queue no more. */
int virtio_function_needs_reset(const struct virtio_function *function);

/* The device configuration field at offset, read as 4 bytes. */
uint32_t virtio_function_config32(const struct virtio_function *function,
				  uint32_t offset);

/* Makes the chain at head available (§2.7.13). */
void virtqueue_make_available(struct virtio_function *function, uint16_t head);

/* Kicks the device unless it said it needs none (§2.7.10); always when
 * force is set. */
void virtqueue_kick(struct virtio_function *function, int force);

/* Takes the next used entry: 1 and its id and length, or 0 when the
 * device has returned nothing new. */
int virtqueue_take_used(struct virtio_function *function, uint32_t *id,
			uint32_t *length);

#endif
