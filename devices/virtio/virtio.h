/*
 * A virtio device as its transport sees it (virtio 1.2 §2, §4.1): feature
 * bits, device configuration space, virtqueues, and the driver's status
 * transitions. A device type (blk, rng, net) embeds struct virtio_device
 * and fills in its ops; devices/virtio/pci.c presents it on PCI.
 *
 * Promise: the transport calls ops only in the order the spec allows:
 * features_acceptable() when the driver sets FEATURES_OK; activate() once,
 * after FEATURES_OK and DRIVER_OK with every enabled queue validated;
 * reset() when the driver writes 0 to device_status; queue_notify for a
 * ready queue of an active device, on the event thread, always through
 * virtio_serve_queue: no call does more than VIRTIO_QUEUE_BUDGET units,
 * and what it leaves is served in a later round of the event loop.
 */
#ifndef VESSEL_DEVICES_VIRTIO_VIRTIO_H
#define VESSEL_DEVICES_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "../device.h"
#include "../device_context.h"
#include "virtqueue.h"

/* Device-independent feature bits (virtio 1.2 §6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

/* device_status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Device IDs (§5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

#define VIRTIO_MAX_QUEUES 16

/* Work one queue_notify call may do, in units of one chain (malformed
 * ones included; a device whose chains carry bulk work charges more,
 * virtqueue_charge), before the event loop runs what else waits (signals,
 * the console, disk completions, received frames, other devices): a
 * driver that refills a queue as fast as the device empties it must not
 * hold the event thread. 256 chains keep virtio-net's transmit batches as
 * large as they were measured (docs/decisions.md, "Guest input is
 * bounded"). */
#define VIRTIO_QUEUE_BUDGET 256

struct virtio_device;

struct virtio_device_ops {
	/* Optional: whether driver_features, already a subset of what was
	 * offered, hold together by the device type's own rules (such as
	 * §5.1.3.1's feature dependencies). false keeps FEATURES_OK clear
	 * (§2.2.2, §3.1.1). */
	bool (*features_acceptable)(const struct virtio_device *device);
	/* Device configuration space (§4.1.4.6); offset + size is within
	 * config_size. */
	void (*read_config)(struct virtio_device *device, uint32_t offset,
			    uint8_t *data, uint32_t size);
	void (*write_config)(struct virtio_device *device, uint32_t offset,
			     const uint8_t *data, uint32_t size);
	/* The driver set DRIVER_OK: driver_features and the queues are final.
	 * 0, or -errno and the transport sets DEVICE_NEEDS_RESET. */
	int (*activate)(struct virtio_device *device);
	/* The driver reset the device: stop using the queues and forget
	 * everything negotiated. In-flight requests must be finished or
	 * dropped before this returns. */
	void (*reset)(struct virtio_device *device);
	/* The driver made buffers available in queue (a kick). */
	void (*queue_notify)(struct virtio_device *device, unsigned int queue);
	/* Optional, for a pause (../device.h): finish what is in flight
	 * and hand back completed chains, then touch no guest memory and
	 * raise no interrupt until resume; the transport holds kicks back
	 * meanwhile. 0 or -errno. */
	int (*quiesce)(struct virtio_device *device);
	void (*resume)(struct virtio_device *device);
	/* Optional: the device's counters for the control API. */
	unsigned int (*counters)(struct virtio_device *device,
				 struct device_counter *out, unsigned int max);
};

struct virtio_device {
	/* Declared by the device type. */
	const char *name;
	uint16_t device_id;
	uint64_t device_features; /* offered, VIRTIO_F_VERSION_1 included */
	uint32_t config_size;
	unsigned int queue_count;
	const struct virtio_device_ops *ops;
	struct device_context context;

	/* Kept by the transport. */
	uint64_t driver_features; /* accepted by the driver */
	struct virtqueue queues[VIRTIO_MAX_QUEUES];
	/* Interrupt the driver for queue's used buffers, if it wants one
	 * (virtqueue_should_notify); event thread. */
	void (*notify_queue)(struct virtio_device *device, unsigned int queue);
	/* The device hit an error it cannot go on from (§2.1.2). */
	void (*needs_reset)(struct virtio_device *device);
	/* The device configuration changed (§2.5): a new config_generation
	 * and a configuration change notification (§4.1.4.5). Any thread. */
	void (*notify_config)(struct virtio_device *device);
	/* Serve queue again in a later round of the event loop, as a kick
	 * would: a device that stopped taking chains (its backend was full)
	 * and can go on. Any thread. */
	void (*serve_queue_later)(struct virtio_device *device, unsigned int queue);
	void *transport;
};

/* One call of device's queue handler for queue, within a round of at
 * most VIRTIO_QUEUE_BUDGET units (virtqueue_begin_round): whether chains
 * wait that the budget kept back. The transport then serves the queue
 * again after the events already waiting. */
bool virtio_serve_queue(struct virtio_device *device, unsigned int queue);

static inline bool virtio_has_feature(const struct virtio_device *device,
				      unsigned int bit)
{
	return device->driver_features & (UINT64_C(1) << bit);
}

#endif
