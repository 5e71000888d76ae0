/*
 * The worker pool, for hosts where io_uring cannot be set up. A few
 * threads take requests from a queue and run each one's stages with
 * plain system calls (preadv, pwritev, fdatasync, fallocate), then post
 * it to the disk's completed list, which signals completion_fd. A plug
 * holds requests aside and wakes the workers once, at its end.
 */
#include "disk_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define DISK_WORKER_COUNT 8

struct pool {
	pthread_cond_t work_cond; /* workers wait for work */
	/* Requests to run, and requests a plug holds; disk->lock guards
	 * them and stopping. */
	struct disk_request *queue_head, **queue_tail;
	struct disk_request *held_head, **held_tail;
	bool stopping;
	pthread_t workers[DISK_WORKER_COUNT];
	unsigned int worker_count;
};

/* Performs request's current stage: bytes moved or -errno, as io_uring
 * would report it. */
static int run_stage(const struct disk *disk, struct disk_request *request)
{
	off_t offset = (off_t)(request->offset + request->done);
	off_t length = (off_t)(request->length - request->done);
	ssize_t ret = 0;

	switch ((enum disk_stage)request->stage) {
	case DISK_STAGE_TRANSFER:
	case DISK_STAGE_ZERO_BYTES:
		if (request->cursor_count == 0)
			return 0;
		do {
			ret = request->operation == DISK_READ
				      ? preadv(disk->fd, request->cursor,
					       (int)request->cursor_count,
					       offset)
				      : pwritev(disk->fd, request->cursor,
						(int)request->cursor_count,
						offset);
		} while (ret < 0 && errno == EINTR);
		break;
	case DISK_STAGE_SYNC:
		ret = fdatasync(disk->fd);
		break;
	case DISK_STAGE_DISCARD:
	case DISK_STAGE_PUNCH:
		ret = fallocate(disk->fd,
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				offset, length);
		break;
	case DISK_STAGE_ZERO_RANGE:
		ret = fallocate(disk->fd,
				FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				offset, length);
		break;
	}
	/* Linux moves at most INT_MAX & PAGE_MASK bytes per call. */
	return ret < 0 ? -errno : (int)ret;
}

static void *worker_main(void *opaque)
{
	struct disk *disk = opaque;
	struct pool *pool = disk->engine;

	pthread_mutex_lock(&disk->lock);
	for (;;) {
		struct disk_request *request;

		while (!pool->queue_head && !pool->stopping)
			pthread_cond_wait(&pool->work_cond, &disk->lock);
		if (!pool->queue_head)
			break;
		request = pool->queue_head;
		pool->queue_head = request->next;
		if (!pool->queue_head)
			pool->queue_tail = &pool->queue_head;
		pthread_mutex_unlock(&disk->lock);

		enum disk_next next;
		do
			next = disk_request_advance(disk, request,
						    run_stage(disk, request));
		while (next == DISK_NEXT_STAGE);

		pthread_mutex_lock(&disk->lock);
		/* A request waiting for a bounce buffer comes back through
		 * pool_start. */
		if (next == DISK_NEXT_DONE)
			disk_complete(disk, request, true);
	}
	pthread_mutex_unlock(&disk->lock);
	return NULL;
}

/* Moves what the plugs held to the queue, waking a worker for each
 * request, up to all of them; disk->lock held. */
static void pool_release(struct disk *disk)
{
	struct pool *pool = disk->engine;
	unsigned int wakes = 0;

	if (!pool->held_head)
		return;
	for (struct disk_request *r = pool->held_head;
	     r && wakes < pool->worker_count; r = r->next, wakes++)
		pthread_cond_signal(&pool->work_cond);
	*pool->queue_tail = pool->held_head;
	pool->queue_tail = pool->held_tail;
	pool->held_head = NULL;
	pool->held_tail = &pool->held_head;
}

static int pool_start(struct disk *disk, struct disk_request *request)
{
	struct pool *pool = disk->engine;

	request->next = NULL;
	*pool->held_tail = request;
	pool->held_tail = &request->next;
	if (disk->plugs == 0)
		pool_release(disk);
	return 0;
}

static void stop_workers(struct disk *disk)
{
	struct pool *pool = disk->engine;

	pthread_mutex_lock(&disk->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work_cond);
	pthread_mutex_unlock(&disk->lock);
	for (unsigned int i = 0; i < pool->worker_count; i++)
		pthread_join(pool->workers[i], NULL);
}

static void pool_close(struct disk *disk)
{
	struct pool *pool = disk->engine;

	stop_workers(disk);
	pthread_cond_destroy(&pool->work_cond);
	free(pool);
}

/* Workers block every signal, so that vCPU kicks and signalfd keep going
 * to the threads that expect them. */
static int pool_open(struct disk *disk)
{
	struct pool *pool = calloc(1, sizeof(*pool));
	sigset_t all, saved;
	int ret = 0;

	if (!pool)
		return -ENOMEM;
	pool->queue_tail = &pool->queue_head;
	pool->held_tail = &pool->held_head;
	pthread_cond_init(&pool->work_cond, NULL);
	disk->engine = pool;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	while (pool->worker_count < DISK_WORKER_COUNT) {
		ret = -pthread_create(&pool->workers[pool->worker_count], NULL,
				      worker_main, disk);
		if (ret < 0)
			break;
		pthread_setname_np(pool->workers[pool->worker_count], "disk-worker");
		pool->worker_count++;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (ret < 0) {
		pool_close(disk);
		disk->engine = NULL;
	}
	return ret;
}

const struct disk_engine_ops disk_pool_ops = {
	.open = pool_open,
	.start = pool_start,
	.release = pool_release,
	.reap = NULL,
	.reapable = NULL,
	.close = pool_close,
};
