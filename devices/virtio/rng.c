#include "rng.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/random.h>

#define RNG_QUEUE_COUNT 1 /* requestq (§5.4.2) */

struct virtio_rng {
	struct virtio_device device;
	/* Serialises queue work (event thread) with reset (the thread that
	 * took the driver's status write). */
	pthread_mutex_t lock;
	/* One request at a time; too large for the event thread's stack. */
	struct virtqueue_element element;
	uint64_t requests, bytes; /* for the control API, under lock */
};

static struct virtio_rng *rng_of(struct virtio_device *device)
{
	return (struct virtio_rng *)((char *)device -
				     offsetof(struct virtio_rng, device));
}

/*
 * Fills the request's device-writable buffers in order, up to the
 * per-request bound, and returns the bytes written from the first of
 * them on, as the used length must count (§2.7.8.2). A read-only request,
 * which the driver MUST NOT make (§5.4.6.1), gets nothing.
 */
static uint32_t fill_with_entropy(const struct virtqueue_element *element)
{
	size_t written = 0;

	for (unsigned int i = 0; i < element->in_count; i++) {
		uint8_t *buffer = element->in[i].iov_base;
		size_t len = element->in[i].iov_len;
		size_t done = 0;

		if (len > VIRTIO_RNG_MAX_REQUEST_BYTES - written)
			len = VIRTIO_RNG_MAX_REQUEST_BYTES - written;
		while (done < len) {
			/* Blocks only until the host's pool is first
			 * initialised, which is long past when vessel runs. */
			ssize_t got = getrandom(buffer + done, len - done, 0);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return written + done;
			done += got;
		}
		written += done;
		if (written == VIRTIO_RNG_MAX_REQUEST_BYTES)
			break;
	}
	return written;
}

/* Serves the available requests: 0 once the ring is empty or the round's
 * budget spent (virtio_serve_queue), or -EINVAL when the driver broke the
 * ring itself (see virtqueue_pop). */
static int serve_requests(struct virtio_rng *rng, struct virtqueue *queue,
			  bool *used)
{
	for (;;) {
		uint16_t last_avail_idx = queue->last_avail_idx;
		int err = virtqueue_pop(queue, &rng->element);

		if (err == 0)
			return 0;
		if (err < 0) {
			if (queue->last_avail_idx == last_avail_idx)
				return err;
			/* A malformed chain, already given back. */
			*used = true;
			continue;
		}
		uint32_t written = fill_with_entropy(&rng->element);
		virtqueue_push_element(queue, &rng->element, written);
		virtqueue_charge(queue, written / VIRTIO_RNG_BYTES_PER_UNIT);
		rng->requests++;
		rng->bytes += written;
		*used = true;
	}
}

static void rng_queue_notify(struct virtio_device *device, unsigned int index)
{
	struct virtio_rng *rng = rng_of(device);
	struct virtqueue *queue = &device->queues[index];
	bool used = false;
	int err = 0;

	pthread_mutex_lock(&rng->lock);
	/* A kick that raced with a reset finds the queue gone. */
	if (queue->ready) {
		/* No kicks while draining; after enabling them again, a
		 * request made in between is found by the re-check. */
		do {
			virtqueue_set_notification(queue, false);
			err = serve_requests(rng, queue, &used);
			virtqueue_set_notification(queue, true);
		} while (!err && virtqueue_has_available(queue));
	}
	pthread_mutex_unlock(&rng->lock);

	if (used)
		device->notify_queue(device, index);
	if (err)
		device->needs_reset(device);
}

static int rng_activate(struct virtio_device *device)
{
	(void)device;
	return 0;
}

static void rng_reset(struct virtio_device *device)
{
	struct virtio_rng *rng = rng_of(device);

	pthread_mutex_lock(&rng->lock);
	for (unsigned int i = 0; i < device->queue_count; i++)
		virtqueue_reset(&device->queues[i]);
	pthread_mutex_unlock(&rng->lock);
}

static unsigned int rng_counters(struct virtio_device *device,
				 struct device_counter *out, unsigned int max)
{
	struct virtio_rng *rng = rng_of(device);
	unsigned int count = 0;

	pthread_mutex_lock(&rng->lock);
	if (count < max)
		out[count++] = (struct device_counter){ "requests", rng->requests };
	if (count < max)
		out[count++] = (struct device_counter){ "bytes", rng->bytes };
	pthread_mutex_unlock(&rng->lock);
	return count;
}

/* No device configuration space (§5.4.4): config_size is 0, so the
 * transport never calls read_config or write_config. Requests are served
 * whole within queue_notify: nothing is in flight for a pause to wait for. */
static const struct virtio_device_ops rng_ops = {
	.counters = rng_counters,
	.activate = rng_activate,
	.reset = rng_reset,
	.queue_notify = rng_queue_notify,
};

struct virtio_rng *virtio_rng_create(const struct device_context *context)
{
	struct virtio_rng *rng = calloc(1, sizeof(*rng));
	int err;

	if (!rng)
		return NULL;
	err = pthread_mutex_init(&rng->lock, NULL);
	if (err) {
		free(rng);
		errno = err;
		return NULL;
	}
	rng->device = (struct virtio_device){
		.name = "virtio-rng",
		.device_id = VIRTIO_ID_RNG,
		.device_features = (UINT64_C(1) << VIRTIO_F_VERSION_1) |
				   (UINT64_C(1) << VIRTIO_F_INDIRECT_DESC) |
				   (UINT64_C(1) << VIRTIO_F_EVENT_IDX),
		.queue_count = RNG_QUEUE_COUNT,
		.ops = &rng_ops,
		.context = *context,
		/* Each request is served whole: quiesced, nothing is left
		 * but the queues. */
		.saved_by_transport = true,
	};
	for (unsigned int i = 0; i < RNG_QUEUE_COUNT; i++) {
		rng->device.queues[i].memory = context->memory;
		virtqueue_reset(&rng->device.queues[i]);
	}
	return rng;
}

void virtio_rng_destroy(struct virtio_rng *rng)
{
	if (!rng)
		return;
	pthread_mutex_destroy(&rng->lock);
	free(rng);
}

struct virtio_device *virtio_rng_device(struct virtio_rng *rng)
{
	return &rng->device;
}
