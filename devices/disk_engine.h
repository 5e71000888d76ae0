/*
 * What devices/disk.c shares with the engines that move a disk's data:
 * io_uring (disk_uring.c) and a pool of worker threads (disk_pool.c).
 *
 * Promise: disk.c validates requests, counts them in flight, runs their
 * callbacks and drains; it decides, stage by stage, what a request does
 * next (disk_request_advance), the same for both engines. An engine only
 * performs a stage's one operation and posts the finished request with
 * disk_complete; its completions signal disk->completion_fd.
 */
#ifndef VESSEL_DEVICES_DISK_ENGINE_H
#define VESSEL_DEVICES_DISK_ENGINE_H

#include <pthread.h>
#include <stdbool.h>

#include "disk.h"

/* What a request's current operation does (disk_request.stage). */
enum disk_stage {
	DISK_STAGE_TRANSFER, /* readv or writev of what is left */
	DISK_STAGE_SYNC, /* fdatasync: FLUSH, or after a stable change */
	DISK_STAGE_DISCARD, /* punch a hole, as a hint */
	DISK_STAGE_PUNCH, /* WRITE_ZEROES that may unmap: punch a hole */
	DISK_STAGE_ZERO_RANGE, /* WRITE_ZEROES: let the file system zero */
	DISK_STAGE_ZERO_BYTES, /* WRITE_ZEROES: write zeros, chunk by chunk */
};

struct disk_engine_ops {
	/* Sets up the engine for an open disk: 0 or -errno. */
	int (*open)(struct disk *disk);
	/* Starts request's current stage, or holds it while disk->plugs;
	 * disk->lock held. 0, or -EAGAIN when the engine has no room. */
	int (*start)(struct disk *disk, struct disk_request *request);
	/* Starts what plugs hold; disk->lock held. */
	void (*release)(struct disk *disk);
	/* Posts what has finished with disk_complete; callback_lock held,
	 * disk->lock not. NULL when the engine posts on its own. */
	void (*reap)(struct disk *disk);
	/* Whether reap would find something, by a look at memory; with
	 * reap. */
	bool (*reapable)(struct disk *disk);
	/* Undoes open; nothing is in flight. */
	void (*close)(struct disk *disk);
};

extern const struct disk_engine_ops disk_uring_ops;
extern const struct disk_engine_ops disk_pool_ops;

struct disk {
	int fd;
	bool read_only;
	bool direct;
	uint64_t size;
	uint32_t logical_block_size;
	uint32_t discard_granularity;
	unsigned int max_in_flight;
	char serial[DISK_SERIAL_MAX + 1];
	int completion_fd;
	void *zeros; /* DISK_ZERO_BUFFER_SIZE aligned zero bytes */

	const struct disk_engine_ops *engine_ops;
	void *engine; /* the engine's own state */

	/* Guards in_flight, plugs, the completed list and the engine's
	 * queues. */
	pthread_mutex_t lock;
	/* Submitted and not yet taken for their callback. */
	unsigned int in_flight;
	/* disk_plug calls not yet matched by disk_unplug: while any, the
	 * engine holds what it is given. */
	unsigned int plugs;
	/* Finished, waiting for their callbacks. */
	struct disk_request *completed_head, **completed_tail;
	/* Bounce buffers lent (at most DISK_BOUNCE_BUFFERS), and the
	 * requests waiting for one, in order. */
	unsigned int bounce_buffers;
	struct disk_request *bounce_waiting_head, **bounce_waiting_tail;

	/* Held while callbacks run, so that they never run two at a time. */
	pthread_mutex_t callback_lock;
};

/* Buffers for O_DIRECT are aligned to a page, which satisfies every
 * logical block size Linux supports up to 4 KiB. */
#define DISK_DIRECT_ALIGNMENT 4096
#define DISK_ZERO_BUFFER_SIZE (256 * 1024)

/* What a request does after its current operation. */
enum disk_next {
	DISK_NEXT_DONE, /* finished, with request->result set */
	DISK_NEXT_STAGE, /* start request->stage, as its cursor says */
	/* Waits for a bounce buffer: the disk starts it again, through
	 * engine_ops->start, once another request gives one back. */
	DISK_NEXT_WAIT,
};

/* Takes the result of request's current operation (bytes moved, or
 * -errno); disk->lock not held. */
enum disk_next disk_request_advance(struct disk *disk,
				    struct disk_request *request, int result);

/* Sets request's result and gives back what its stages held (a bounce
 * buffer, to the next request waiting for one); disk->lock not held. */
void disk_request_finish(struct disk *disk, struct disk_request *request,
			 int result);

/* Queues a finished request for its callback; disk->lock held. wake: from
 * outside disk_process_completions, so completion_fd must be signalled. */
void disk_complete(struct disk *disk, struct disk_request *request,
		   bool wake);

#endif
