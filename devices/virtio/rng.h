/*
 * The virtio entropy device (virtio 1.2 §5.4): one request queue whose
 * device-writable buffers vessel fills with bytes from the host kernel's
 * getrandom(2). No device configuration space, no device feature bits.
 *
 * Promise: a request gets at most VIRTIO_RNG_MAX_REQUEST_BYTES, however
 * large its buffers, so a guest cannot make vessel produce entropy without
 * bound in one go, and a round of the queue (virtio_serve_queue) charges
 * a unit of its budget for every VIRTIO_RNG_BYTES_PER_UNIT bytes besides
 * the chain's own: at most about VIRTIO_QUEUE_BUDGET * 512 bytes (128 KiB,
 * two of the largest requests) a round, well under a millisecond of
 * getrandom, so the other devices' kicks wait little behind an rng the
 * guest keeps full (at 4 KiB a unit, 1 MiB a round held a second disk's
 * reads to 20 a second). Queue work runs on the event thread;
 * reset() waits for a queue_notify in progress to finish.
 */
#ifndef VESSEL_DEVICES_VIRTIO_RNG_H
#define VESSEL_DEVICES_VIRTIO_RNG_H

#include "../device_context.h"
#include "virtio.h"

#define VIRTIO_RNG_MAX_REQUEST_BYTES (64 * 1024)
#define VIRTIO_RNG_BYTES_PER_UNIT 512

struct virtio_rng;

/* NULL with errno set on failure. The transport fills in the
 * transport-kept fields of virtio_rng_device(). */
struct virtio_rng *virtio_rng_create(const struct device_context *context);
void virtio_rng_destroy(struct virtio_rng *rng);

struct virtio_device *virtio_rng_device(struct virtio_rng *rng);

#endif
