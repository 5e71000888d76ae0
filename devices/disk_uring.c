/*
 * The io_uring engine. A request's stage goes on the ring from the thread
 * that submits it, and the kernel completes a read the page cache can
 * serve right there (its non-blocking attempt) and hands anything that
 * would block to its own worker threads. Completions land on the ring,
 * which signals completion_fd (io_uring_register_eventfd); a request with
 * another stage to go goes back on the ring from there.
 */
#include "disk_engine.h"

#include <errno.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>

/* Submission queue entries; a plugged batch that fills them is submitted
 * in parts. */
#define DISK_SUBMISSION_ENTRIES 64

/* Fills sqe with request's operation for its stage. */
static void prepare(const struct disk *disk, struct io_uring_sqe *sqe,
		    struct disk_request *request)
{
	uint64_t offset = request->offset + request->done;
	off_t length = (off_t)(request->length - request->done);

	switch ((enum disk_stage)request->stage) {
	case DISK_STAGE_TRANSFER:
	case DISK_STAGE_ZERO_BYTES:
		/* Nothing to move: the request still completes through
		 * the ring, like every other. */
		if (request->cursor_count == 0)
			io_uring_prep_nop(sqe);
		else if (request->operation == DISK_READ)
			io_uring_prep_readv(sqe, disk->fd, request->cursor,
					    request->cursor_count, offset);
		else
			io_uring_prep_writev(sqe, disk->fd, request->cursor,
					     request->cursor_count, offset);
		break;
	case DISK_STAGE_SYNC:
		io_uring_prep_fsync(sqe, disk->fd, IORING_FSYNC_DATASYNC);
		break;
	case DISK_STAGE_DISCARD:
	case DISK_STAGE_PUNCH:
		io_uring_prep_fallocate(sqe, disk->fd,
					FALLOC_FL_PUNCH_HOLE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)offset, length);
		break;
	case DISK_STAGE_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, disk->fd,
					FALLOC_FL_ZERO_RANGE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)offset, length);
		break;
	}
	io_uring_sqe_set_data(sqe, request);
}

/* Puts request's stage on the ring, and starts it unless the disk is
 * plugged; disk->lock held. A full submission queue (a plugged batch) is
 * submitted first. 0, or -EAGAIN when it stays full: entries the kernel
 * could not take (it had no memory for them) wait there for the next
 * submission. */
static int uring_start(struct disk *disk, struct disk_request *request)
{
	struct io_uring *ring = disk->engine;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
		if (!sqe)
			return -EAGAIN;
	}
	prepare(disk, sqe, request);
	if (disk->plugs == 0)
		io_uring_submit(ring);
	return 0;
}

/* Also retries entries the kernel could not take before. */
static void uring_release(struct disk *disk)
{
	struct io_uring *ring = disk->engine;

	if (io_uring_sq_ready(ring) > 0)
		io_uring_submit(ring);
}

static void uring_reap(struct disk *disk)
{
	struct io_uring *ring = disk->engine;
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		struct disk_request *request = io_uring_cqe_get_data(cqe);
		enum disk_next next = disk_request_advance(disk, request,
							   cqe->res);
		int ret = 0;

		/* Free the slot first: the next stage may need it. */
		io_uring_cqe_seen(ring, cqe);
		if (next == DISK_NEXT_WAIT)
			continue;
		if (next == DISK_NEXT_STAGE) {
			pthread_mutex_lock(&disk->lock);
			ret = uring_start(disk, request);
			pthread_mutex_unlock(&disk->lock);
			if (ret == 0)
				continue;
			disk_request_finish(disk, request, ret);
		}
		pthread_mutex_lock(&disk->lock);
		disk_complete(disk, request, false);
		pthread_mutex_unlock(&disk->lock);
	}
}

/* The completion ring's tail, which the kernel moves: no system call. */
static bool uring_reapable(struct disk *disk)
{
	return io_uring_cq_ready(disk->engine) > 0;
}

static int uring_open(struct disk *disk)
{
	struct io_uring_params params = {
		/* Room for a completion of every request in flight. */
		.flags = IORING_SETUP_CQSIZE,
		.cq_entries = disk->max_in_flight > DISK_SUBMISSION_ENTRIES
				      ? disk->max_in_flight
				      : DISK_SUBMISSION_ENTRIES,
	};
	struct io_uring *ring = calloc(1, sizeof(*ring));
	int ret;

	if (!ring)
		return -ENOMEM;
	ret = io_uring_queue_init_params(DISK_SUBMISSION_ENTRIES, ring,
					 &params);
	if (ret < 0) {
		free(ring);
		return ret;
	}
	/* Not a registered file: the ring would keep the image's open file
	 * description, and with it the lock, past disk_close. */
	ret = io_uring_register_eventfd(ring, disk->completion_fd);
	if (ret < 0) {
		io_uring_queue_exit(ring);
		free(ring);
		return ret;
	}
	disk->engine = ring;
	return 0;
}

static void uring_close(struct disk *disk)
{
	io_uring_queue_exit(disk->engine);
	free(disk->engine);
}

const struct disk_engine_ops disk_uring_ops = {
	.open = uring_open,
	.start = uring_start,
	.release = uring_release,
	.reap = uring_reap,
	.reapable = uring_reapable,
	.close = uring_close,
};
