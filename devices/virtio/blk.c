/*
 * A request (§5.2.6) is one descriptor chain: a 16-byte header (type,
 * reserved, sector) at the start of the device-readable bytes, the data,
 * and a status byte as the last device-writable byte. Requests that pass
 * the checks go to the disk; the rest complete at once with a status.
 *
 * With VIRTIO_BLK_F_MQ (§5.2.5) the driver uses num_queues request
 * queues, Linux one per vCPU, each with its own MSI-X vector: a request
 * completes on the queue it came from, so its interrupt reaches the vCPU
 * that submitted it, and no vCPU interrupts another to finish a request.
 * The queues share the disk and its in-flight limit.
 *
 * Locking: queue_notify runs on the event thread, completions on the event
 * thread or in disk_drain, and reset on whichever thread the transport
 * calls it from (a vCPU's). blk->lock serialises their use of the queues
 * and of the request pool; it is never held while waiting for the disk.
 */
#include "blk.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "../array.h"

#define BLK_HEADER_SIZE 16
#define BLK_SEGMENT_SIZE 16 /* struct virtio_blk_discard_write_zeroes */
/* Data buffers per request, offered as seg_max: with the header and the
 * status byte, a request fits a queue of 128, the smallest a driver is
 * expected to choose. */
#define BLK_SEG_MAX 126
/* Sectors per discard or write-zeroes segment, and one segment per
 * request: a range is one fallocate call. */
#define BLK_MAX_RANGE_SECTORS (UINT32_C(1) << 22)
#define BLK_MAX_RANGE_SEGMENTS 1

/* Returned by start_request when the disk has the request. */
#define REQUEST_SUBMITTED (-1)

struct blk_request {
	struct virtio_blk *blk;
	struct blk_request *next_free;
	struct disk_request disk_request;
	uint8_t *status; /* the chain's last writable byte; NULL if none */
	uint32_t written; /* device-writable bytes filled on success */
	unsigned int queue; /* the queue it came from, and goes back to */
	struct virtqueue_element element;
};

struct virtio_blk {
	struct virtio_device device;
	struct disk *disk;
	uint64_t capacity; /* 512-byte sectors */
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];

	/* The event thread polls the device before it sleeps (its
	 * context has pollers): chains taken leave the driver's kicks off,
	 * and arm turns them on again before the thread sleeps. */
	bool polled;

	pthread_mutex_t lock; /* guards what follows, and the queues */
	bool active; /* between activate and reset */
	bool quiesced; /* between quiesce and resume: no look at the rings */
	struct {
		/* Stopped taking requests at the disk's in-flight limit; a
		 * completion resumes. */
		bool stalled;
		/* Completions returned chains; the driver is told once the
		 * batch is done. */
		bool notify_pending;
		/* The driver broke the available ring: nothing to poll
		 * until it resets the device. */
		bool broken;
	} queues[VIRTIO_MAX_QUEUES];
	unsigned int in_flight; /* requests the disk has */
	struct blk_request *free_requests;
	/* Disk requests completed, for the control API. */
	uint64_t requests, read_bytes, written_bytes, errors;
};

static uint32_t load_le32(const uint8_t *bytes)
{
	return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
	       (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
}

static uint64_t load_le64(const uint8_t *bytes)
{
	return (uint64_t)load_le32(bytes) |
	       (uint64_t)load_le32(bytes + 4) << 32;
}

static void store_le32(uint8_t *bytes, uint32_t value)
{
	for (int i = 0; i < 4; i++)
		bytes[i] = (uint8_t)(value >> (8 * i));
}

static void store_le64(uint8_t *bytes, uint64_t value)
{
	store_le32(bytes, (uint32_t)value);
	store_le32(bytes + 4, (uint32_t)(value >> 32));
}

static struct virtio_blk *blk_of(struct virtio_device *device)
{
	return (struct virtio_blk *)((uint8_t *)device -
				     offsetof(struct virtio_blk, device));
}

/* The status is the last device-writable byte (§5.2.6); the data buffers
 * end just before it, so it is cut from them. NULL when there is none. */
static uint8_t *take_status_byte(struct virtqueue_element *element)
{
	struct iovec *last;

	while (element->in_count > 0 &&
	       element->in[element->in_count - 1].iov_len == 0)
		element->in_count--;
	if (element->in_count == 0)
		return NULL;
	last = &element->in[element->in_count - 1];
	last->iov_len--;
	element->in_bytes--;
	return (uint8_t *)last->iov_base + last->iov_len;
}

/* sectors starting at sector lie on the disk; overflow-safe. */
static bool range_valid(const struct virtio_blk *blk, uint64_t sector,
			uint64_t sectors)
{
	return sector <= blk->capacity && sectors <= blk->capacity - sector;
}

static void request_completed(struct disk_request *disk_request,
			      int result);

static int submit(struct virtio_blk *blk, struct blk_request *request)
{
	request->disk_request.complete = request_completed;
	request->disk_request.opaque = request;
	return disk_submit(blk->disk, &request->disk_request) == 0
		       ? REQUEST_SUBMITTED
		       : VIRTIO_BLK_S_IOERR;
}

/* IN and OUT: the data is a whole number of sectors inside the disk. */
static int start_transfer(struct virtio_blk *blk, struct blk_request *request,
			  bool write, uint64_t sector)
{
	struct virtqueue_element *element = &request->element;
	struct disk_request *disk_request = &request->disk_request;
	size_t length = write ? element->out_bytes - BLK_HEADER_SIZE
			      : element->in_bytes;

	/* Data in the wrong direction for the type (§5.2.6.1). */
	if ((write && element->in_bytes > 0) ||
	    (!write && element->out_bytes > BLK_HEADER_SIZE))
		return VIRTIO_BLK_S_IOERR;
	if (write && disk_read_only(blk->disk))
		return VIRTIO_BLK_S_IOERR;
	if (length % VIRTIO_BLK_SECTOR_SIZE ||
	    !range_valid(blk, sector, length / VIRTIO_BLK_SECTOR_SIZE))
		return VIRTIO_BLK_S_IOERR;

	*disk_request = (struct disk_request){
		.operation = write ? DISK_WRITE : DISK_READ,
		.offset = sector * VIRTIO_BLK_SECTOR_SIZE,
		.length = length,
		/* Without VIRTIO_BLK_F_FLUSH the cache is write-through
		 * (§5.2.5). */
		.stable = write && !virtio_has_feature(&blk->device,
						       VIRTIO_BLK_F_FLUSH),
	};
	if (write) {
		/* The device-readable buffers after the header. */
		disk_request->iov = virtqueue_out_from(element, BLK_HEADER_SIZE,
						       &disk_request->iov_count);
	} else {
		disk_request->iov = element->in;
		disk_request->iov_count = element->in_count;
		request->written = (uint32_t)length;
	}
	return submit(blk, request);
}

/* DISCARD and WRITE_ZEROES: one segment of {le64 sector, le32 num_sectors,
 * le32 flags} (§5.2.6). */
static int start_range(struct virtio_blk *blk, struct blk_request *request,
		       uint32_t type)
{
	struct virtqueue_element *element = &request->element;
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	size_t segments_size = element->out_bytes - BLK_HEADER_SIZE;
	uint8_t segment[BLK_SEGMENT_SIZE];
	uint64_t sector;
	uint32_t sectors, flags;

	if (!virtio_has_feature(&blk->device, zeroes
							? VIRTIO_BLK_F_WRITE_ZEROES
							: VIRTIO_BLK_F_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	if (element->in_bytes > 0 || disk_read_only(blk->disk))
		return VIRTIO_BLK_S_IOERR;
	if (segments_size == 0 || segments_size % BLK_SEGMENT_SIZE ||
	    segments_size / BLK_SEGMENT_SIZE > BLK_MAX_RANGE_SEGMENTS)
		return VIRTIO_BLK_S_IOERR;
	virtqueue_copy_from_out(element, BLK_HEADER_SIZE, segment,
				sizeof(segment));
	sector = load_le64(segment);
	sectors = load_le32(segment + 8);
	flags = load_le32(segment + 12);

	/* Unknown flags, or unmap on a discard: UNSUPP (§5.2.6.2). */
	if (flags & ~(uint32_t)(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0))
		return VIRTIO_BLK_S_UNSUPP;
	if (sectors > BLK_MAX_RANGE_SECTORS || !range_valid(blk, sector, sectors))
		return VIRTIO_BLK_S_IOERR;
	if (sectors == 0)
		return VIRTIO_BLK_S_OK;

	request->disk_request = (struct disk_request){
		.operation = zeroes ? DISK_WRITE_ZEROES : DISK_DISCARD,
		.offset = sector * VIRTIO_BLK_SECTOR_SIZE,
		.length = (uint64_t)sectors * VIRTIO_BLK_SECTOR_SIZE,
		.may_unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
		.stable = zeroes && !virtio_has_feature(&blk->device,
							VIRTIO_BLK_F_FLUSH),
	};
	return submit(blk, request);
}

/* The device ID: the serial, NUL-padded to 20 bytes (§5.2.6). */
static int get_id(struct virtio_blk *blk, struct blk_request *request)
{
	struct virtqueue_element *element = &request->element;
	uint8_t id[VIRTIO_BLK_ID_BYTES] = { 0 };
	const char *serial = disk_serial(blk->disk);

	if (element->out_bytes > BLK_HEADER_SIZE)
		return VIRTIO_BLK_S_IOERR;
	memcpy(id, serial, strlen(serial));
	request->written = (uint32_t)virtqueue_copy_to_in(element, 0, id,
							  sizeof(id));
	return VIRTIO_BLK_S_OK;
}

/* Checks a popped request and starts it: a VIRTIO_BLK_S_* status when it
 * is already done, or REQUEST_SUBMITTED. */
static int start_request(struct virtio_blk *blk, struct blk_request *request)
{
	struct virtqueue_element *element = &request->element;
	uint8_t header[BLK_HEADER_SIZE];
	uint32_t type;

	request->written = 0;
	request->status = take_status_byte(element);
	if (!request->status || element->in_bytes >= UINT32_MAX)
		return VIRTIO_BLK_S_IOERR;
	if (virtqueue_copy_from_out(element, 0, header, sizeof(header)) <
	    sizeof(header))
		return VIRTIO_BLK_S_IOERR;
	type = load_le32(header);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return start_transfer(blk, request, type == VIRTIO_BLK_T_OUT,
				      load_le64(header + 8));
	case VIRTIO_BLK_T_FLUSH:
		request->disk_request = (struct disk_request){
			.operation = DISK_FLUSH,
		};
		return submit(blk, request);
	case VIRTIO_BLK_T_GET_ID:
		return get_id(blk, request);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return start_range(blk, request, type);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static struct blk_request *get_request(struct virtio_blk *blk)
{
	struct blk_request *request = blk->free_requests;

	if (request) {
		blk->free_requests = request->next_free;
		return request;
	}
	request = malloc(sizeof(*request));
	if (request)
		request->blk = blk;
	return request;
}

static void put_request(struct virtio_blk *blk, struct blk_request *request)
{
	request->next_free = blk->free_requests;
	blk->free_requests = request;
}

/* Gives the chain back with its status; a chain without a status byte
 * goes back with nothing written. */
static void finish_request(struct virtio_blk *blk,
			   struct blk_request *request, uint8_t status)
{
	uint32_t written = 0;

	if (request->status) {
		*request->status = status;
		written = (status == VIRTIO_BLK_S_OK ? request->written : 0) + 1;
	}
	virtqueue_push_element(&blk->device.queues[request->queue],
			       &request->element, written);
	put_request(blk, request);
}

/* Takes one chain from queue index: 1 when one was taken, 0 when the
 * ring is empty, -EBUSY at the in-flight limit, -ENOMEM. */
static int take_request(struct virtio_blk *blk, unsigned int index,
			bool *pushed)
{
	struct virtqueue *queue = &blk->device.queues[index];
	struct blk_request *request;
	int ret;

	if (blk->in_flight >= disk_max_in_flight(blk->disk))
		return -EBUSY;
	request = get_request(blk);
	if (!request) {
		/* Nothing in flight would ever resume the queue. */
		if (blk->in_flight == 0)
			blk->device.needs_reset(&blk->device);
		return -ENOMEM;
	}
	request->queue = index;
	uint16_t last_avail_idx = queue->last_avail_idx;
	ret = virtqueue_pop(queue, &request->element);
	if (ret <= 0) {
		put_request(blk, request);
		if (ret < 0 && queue->last_avail_idx == last_avail_idx) {
			/* The driver's available index is broken: nothing can
			 * be taken until it resets the device (§2.1.2). */
			blk->queues[index].broken = true;
			blk->device.needs_reset(&blk->device);
			return -EPROTO;
		}
		/* A malformed chain went back to the driver already. */
		*pushed |= ret < 0;
		return ret < 0 ? 1 : 0;
	}
	ret = start_request(blk, request);
	if (ret == REQUEST_SUBMITTED) {
		blk->in_flight++;
	} else {
		finish_request(blk, request, (uint8_t)ret);
		*pushed = true;
	}
	return 1;
}

/* Takes requests from queue index until its ring is empty, the round's
 * budget spent (virtio_serve_queue) or the disk busy; lock held. Returns
 * whether any chain went back to the driver. */
static bool process_queue(struct virtio_blk *blk, unsigned int index)
{
	struct virtqueue *queue = &blk->device.queues[index];
	bool pushed = false;
	int ret;

	/* The disk starts the whole batch with one system call. */
	disk_plug(blk->disk);
	do {
		virtqueue_set_notification(queue, false);
		do
			ret = take_request(blk, index, &pushed);
		while (ret > 0);
		/* Polled, the event thread looks again before it sleeps
		 * (blk_poll, blk_arm): the driver need not kick meanwhile. */
		if (ret < 0 || blk->polled)
			break;
		virtqueue_set_notification(queue, true);
		/* A chain made available before kicks were enabled again
		 * would otherwise wait for the next kick (§2.7.10). */
	} while (virtqueue_has_available(queue));
	disk_unplug(blk->disk);
	blk->queues[index].stalled = ret < 0;
	return pushed;
}

static void request_completed(struct disk_request *disk_request, int result)
{
	struct blk_request *request = disk_request->opaque;
	struct virtio_blk *blk = request->blk;

	pthread_mutex_lock(&blk->lock);
	blk->in_flight--;
	blk->requests++;
	if (result)
		blk->errors++;
	else if (disk_request->operation == DISK_READ)
		blk->read_bytes += disk_request->length;
	else if (disk_request->operation == DISK_WRITE)
		blk->written_bytes += disk_request->length;
	if (!blk->active) {
		put_request(blk, request);
	} else {
		finish_request(blk, request,
			       result == 0 ? VIRTIO_BLK_S_OK
					   : VIRTIO_BLK_S_IOERR);
		/* Taking requests here would be a round without a budget:
		 * the queues are served again from the event loop (after a
		 * pause, when the device is quiesced). The in-flight limit
		 * is the disk's, so any queue may have stalled on it. */
		for (unsigned int i = 0; i < blk->device.queue_count; i++) {
			if (blk->queues[i].stalled) {
				blk->queues[i].stalled = false;
				blk->device.serve_queue_later(&blk->device, i);
			}
		}
		/* One interrupt a queue for the whole batch of completions. */
		blk->queues[request->queue].notify_pending = true;
	}
	pthread_mutex_unlock(&blk->lock);
}

static void completions_ready(void *opaque, uint32_t events)
{
	struct virtio_blk *blk = opaque;

	(void)events;
	disk_process_completions(blk->disk);
	pthread_mutex_lock(&blk->lock);
	for (unsigned int i = 0; i < blk->device.queue_count; i++) {
		bool notify = blk->queues[i].notify_pending && blk->active;

		blk->queues[i].notify_pending = false;
		if (notify)
			blk->device.notify_queue(&blk->device, i);
	}
	pthread_mutex_unlock(&blk->lock);
}

static void blk_read_config(struct virtio_device *device, uint32_t offset,
			    uint8_t *data, uint32_t size)
{
	memcpy(data, blk_of(device)->config + offset, size);
}

/* Every field vessel offers is read-only: writeback exists only with
 * VIRTIO_BLK_F_CONFIG_WCE (§5.2.4). */
static void blk_write_config(struct virtio_device *device, uint32_t offset,
			     const uint8_t *data, uint32_t size)
{
	(void)device;
	(void)offset;
	(void)data;
	(void)size;
}

static void clear_stalls(struct virtio_blk *blk)
{
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		blk->queues[i].stalled = false;
		blk->queues[i].broken = false;
	}
}

static int blk_activate(struct virtio_device *device)
{
	struct virtio_blk *blk = blk_of(device);

	pthread_mutex_lock(&blk->lock);
	blk->active = true;
	clear_stalls(blk);
	pthread_mutex_unlock(&blk->lock);
	return 0;
}

/* Requests still at the disk go on, but from now on their completions
 * no longer reach the rings, which the driver is taking back. */
static void deactivate(struct virtio_blk *blk)
{
	pthread_mutex_lock(&blk->lock);
	blk->active = false;
	clear_stalls(blk);
	pthread_mutex_unlock(&blk->lock);
}

static void blk_reset(struct virtio_device *device)
{
	struct virtio_blk *blk = blk_of(device);

	deactivate(blk);
	disk_drain(blk->disk);
}

/* The request queues the driver may use: without VIRTIO_BLK_F_MQ only
 * the first (§5.2.2). */
static unsigned int queues_in_use(const struct virtio_blk *blk)
{
	return virtio_has_feature(&blk->device, VIRTIO_BLK_F_MQ)
		       ? blk->device.queue_count
		       : 1;
}

static void blk_queue_notify(struct virtio_device *device, unsigned int queue)
{
	struct virtio_blk *blk = blk_of(device);

	if (queue >= queues_in_use(blk))
		return;
	pthread_mutex_lock(&blk->lock);
	if (blk->active && process_queue(blk, queue))
		device->notify_queue(device, queue);
	pthread_mutex_unlock(&blk->lock);
	/* A read the page cache held completed inside the submission
	 * (io_uring's inline attempt): it goes back to the driver now, with
	 * its interrupt, rather than after another turn of the event loop
	 * woken by the completion eventfd. */
	if (disk_completions_pending(blk->disk))
		completions_ready(blk, 0);
}

/* The queues a poll may look at: lock held. */
static bool pollable(const struct virtio_blk *blk, unsigned int index)
{
	return blk->active && !blk->quiesced && !blk->queues[index].stalled &&
	       !blk->queues[index].broken && blk->device.queues[index].ready;
}

/* Chains the driver made available go the way of a kick, through the
 * transport (which holds them back while the device is paused). */
static bool poll_queues(struct virtio_blk *blk, bool arm)
{
	bool found = false;

	pthread_mutex_lock(&blk->lock);
	for (unsigned int i = 0; i < queues_in_use(blk); i++) {
		struct virtqueue *queue = &blk->device.queues[i];

		if (!pollable(blk, i))
			continue;
		if (arm)
			virtqueue_set_notification(queue, true);
		if (virtqueue_has_available(queue)) {
			blk->device.serve_queue_later(&blk->device, i);
			found = true;
		}
	}
	pthread_mutex_unlock(&blk->lock);
	return found;
}

static bool blk_poll(void *opaque)
{
	struct virtio_blk *blk = opaque;
	bool found = disk_completions_pending(blk->disk);

	if (found)
		completions_ready(blk, 0);
	return poll_queues(blk, false) || found;
}

/* Kicks on again before the event thread sleeps, and a last look
 * (§2.7.10), so that no chain waits for a kick that is not coming. */
static bool blk_arm(void *opaque)
{
	return poll_queues(opaque, true);
}

/* A completion in the ring, or a chain in a queue a poll looks at. */
static bool blk_pending(void *opaque)
{
	struct virtio_blk *blk = opaque;
	bool found = disk_completions_pending(blk->disk);

	pthread_mutex_lock(&blk->lock);
	for (unsigned int i = 0; i < queues_in_use(blk) && !found; i++)
		found = pollable(blk, i) &&
			virtqueue_has_available(&blk->device.queues[i]);
	pthread_mutex_unlock(&blk->lock);
	return found;
}

static const struct device_poller blk_poller = {
	.poll = blk_poll,
	.arm = blk_arm,
	.pending = blk_pending,
};

/* A pause: every request in flight completes, and its chain and the
 * interrupt it earned reach the driver, before the pause is reported.
 * Requests a completion makes room for wait in the transport, which
 * holds the queue back until resume. The rings are left with kicks on,
 * as a snapshot should find them. */
static int blk_quiesce(struct virtio_device *device)
{
	struct virtio_blk *blk = blk_of(device);

	disk_drain(blk->disk);
	completions_ready(blk, 0);
	if (blk->polled)
		blk_arm(blk);
	pthread_mutex_lock(&blk->lock);
	blk->quiesced = true;
	pthread_mutex_unlock(&blk->lock);
	return 0;
}

static void blk_resume(struct virtio_device *device)
{
	struct virtio_blk *blk = blk_of(device);

	pthread_mutex_lock(&blk->lock);
	blk->quiesced = false;
	pthread_mutex_unlock(&blk->lock);
}

static unsigned int blk_counters(struct virtio_device *device,
				 struct device_counter *out, unsigned int max)
{
	struct virtio_blk *blk = blk_of(device);
	unsigned int count = 0;

	pthread_mutex_lock(&blk->lock);
	const struct device_counter counters[] = {
		{ "requests", blk->requests },
		{ "read_bytes", blk->read_bytes },
		{ "written_bytes", blk->written_bytes },
		{ "errors", blk->errors },
		/* Not a count but the present: a guest waiting on a disk
		 * shows whether its requests are at the host. */
		{ "in_flight", blk->in_flight },
	};
	pthread_mutex_unlock(&blk->lock);
	for (; count < max && count < ARRAY_SIZE(counters); count++)
		out[count] = counters[count];
	return count;
}

static const struct virtio_device_ops blk_ops = {
	.read_config = blk_read_config,
	.write_config = blk_write_config,
	.activate = blk_activate,
	.reset = blk_reset,
	.queue_notify = blk_queue_notify,
	.quiesce = blk_quiesce,
	.resume = blk_resume,
	.counters = blk_counters,
};

static void fill_config(struct virtio_blk *blk)
{
	uint8_t *config = blk->config;
	uint32_t granularity = disk_discard_granularity(blk->disk);

	store_le64(config + VIRTIO_BLK_CONFIG_CAPACITY, blk->capacity);
	store_le32(config + VIRTIO_BLK_CONFIG_SEG_MAX, BLK_SEG_MAX);
	store_le32(config + VIRTIO_BLK_CONFIG_BLK_SIZE,
		   disk_logical_block_size(blk->disk));
	store_le32(config + VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS,
		   BLK_MAX_RANGE_SECTORS);
	store_le32(config + VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG,
		   BLK_MAX_RANGE_SEGMENTS);
	store_le32(config + VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT,
		   granularity / VIRTIO_BLK_SECTOR_SIZE);
	store_le32(config + VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS,
		   BLK_MAX_RANGE_SECTORS);
	store_le32(config + VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG,
		   BLK_MAX_RANGE_SEGMENTS);
	/* The disk punches holes for write-zeroes with unmap. */
	config[VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP] = 1;
	/* Read only with VIRTIO_BLK_F_MQ, which a single queue leaves out. */
	config[VIRTIO_BLK_CONFIG_NUM_QUEUES] = (uint8_t)blk->device.queue_count;
	config[VIRTIO_BLK_CONFIG_NUM_QUEUES + 1] =
		(uint8_t)(blk->device.queue_count >> 8);
}

static uint64_t offered_features(const struct disk *disk,
				 unsigned int queue_count)
{
	uint64_t features = UINT64_C(1) << VIRTIO_F_VERSION_1 |
			    UINT64_C(1) << VIRTIO_F_INDIRECT_DESC |
			    UINT64_C(1) << VIRTIO_F_EVENT_IDX |
			    UINT64_C(1) << VIRTIO_BLK_F_SEG_MAX |
			    UINT64_C(1) << VIRTIO_BLK_F_BLK_SIZE |
			    UINT64_C(1) << VIRTIO_BLK_F_FLUSH;

	/* One queue offers no MQ, so that the device reads as it did
	 * before there were several (and restores such snapshots). */
	if (queue_count > 1)
		features |= UINT64_C(1) << VIRTIO_BLK_F_MQ;
	if (disk_read_only(disk))
		return features | UINT64_C(1) << VIRTIO_BLK_F_RO;
	return features | UINT64_C(1) << VIRTIO_BLK_F_DISCARD |
	       UINT64_C(1) << VIRTIO_BLK_F_WRITE_ZEROES;
}

struct virtio_blk *virtio_blk_create(struct disk *disk,
				     unsigned int queue_count,
				     const struct device_context *context)
{
	struct virtio_blk *blk;
	int ret;

	if (queue_count == 0 || queue_count > VIRTIO_MAX_QUEUES) {
		errno = EINVAL;
		return NULL;
	}
	blk = calloc(1, sizeof(*blk));
	if (!blk)
		return NULL;
	blk->disk = disk;
	blk->capacity = disk_size(disk) / VIRTIO_BLK_SECTOR_SIZE;
	blk->device = (struct virtio_device){
		.name = "virtio-blk",
		.device_id = VIRTIO_ID_BLOCK,
		.device_features = offered_features(disk, queue_count),
		.config_size = VIRTIO_BLK_CONFIG_SIZE,
		.queue_count = queue_count,
		.ops = &blk_ops,
		.context = *context,
		/* Its configuration is read-only and quiesce drains the disk
		 * and hands back every completion with its interrupt: the
		 * queues are all its state. The disk's contents are the
		 * snapshot's to check (vmm/snapshot.c). */
		.saved_by_transport = true,
	};
	for (unsigned int i = 0; i < queue_count; i++) {
		blk->device.queues[i].memory = context->memory;
		virtqueue_reset(&blk->device.queues[i]);
	}
	fill_config(blk);
	pthread_mutex_init(&blk->lock, NULL);

	ret = context->watch_fd(context->context_opaque,
				disk_completion_fd(disk), EPOLLIN,
				completions_ready, blk);
	if (ret == 0 && context->add_poller) {
		ret = context->add_poller(context->context_opaque, &blk_poller,
					  blk);
		if (ret < 0)
			context->unwatch_fd(context->context_opaque,
					    disk_completion_fd(disk));
		blk->polled = ret == 0;
	}
	if (ret < 0) {
		pthread_mutex_destroy(&blk->lock);
		free(blk);
		errno = -ret;
		return NULL;
	}
	return blk;
}

struct virtio_device *virtio_blk_device(struct virtio_blk *blk)
{
	return &blk->device;
}

void virtio_blk_destroy(struct virtio_blk *blk)
{
	const struct device_context *context;

	if (!blk)
		return;
	context = &blk->device.context;
	deactivate(blk);
	if (blk->polled)
		context->remove_poller(context->context_opaque, blk);
	context->unwatch_fd(context->context_opaque,
			    disk_completion_fd(blk->disk));
	disk_drain(blk->disk);
	while (blk->free_requests) {
		struct blk_request *request = blk->free_requests;

		blk->free_requests = request->next_free;
		free(request);
	}
	pthread_mutex_destroy(&blk->lock);
	free(blk);
}
