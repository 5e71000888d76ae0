#include "virtio.h"

bool virtio_serve_queue(struct virtio_device *device, unsigned int queue)
{
	struct virtqueue *ring = &device->queues[queue];

	virtqueue_begin_round(ring, VIRTIO_QUEUE_BUDGET);
	device->ops->queue_notify(device, queue);
	return virtqueue_end_round(ring);
}
