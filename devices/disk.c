/*
 * What both engines share: opening, probing and locking the image,
 * validating requests, counting them in flight, the stages a request goes
 * through, and the list of finished requests whose callbacks
 * disk_process_completions runs. disk_open starts the io_uring engine
 * (disk_uring.c) and falls back to the worker pool (disk_pool.c) where
 * io_uring cannot be set up; docs/decisions.md has the measurement behind
 * preferring io_uring.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk_engine.h"

static bool fallocate_unsupported(int error)
{
	return error == EOPNOTSUPP || error == ENOTSUP || error == ENOSYS;
}

/* Moves *cursor past bytes, and past empty iovecs after them; the first
 * iovec left is trimmed in place. */
static void skip(struct iovec **cursor, unsigned int *count, size_t bytes)
{
	while (*count > 0 && bytes >= (*cursor)->iov_len) {
		bytes -= (*cursor)->iov_len;
		(*cursor)++;
		(*count)--;
	}
	if (*count > 0) {
		(*cursor)->iov_base = (uint8_t *)(*cursor)->iov_base + bytes;
		(*cursor)->iov_len -= bytes;
	}
}

/* Moves the request's cursor past done bytes. */
static void consume(struct disk_request *request, size_t done)
{
	request->done += done;
	skip(&request->cursor, &request->cursor_count, done);
}

/*
 * Bouncing. O_DIRECT refuses buffers that are not aligned for the device
 * (before it moves a byte, so the owner's iovecs are still intact): the
 * transfer goes on through an aligned buffer the disk lends, a chunk at a
 * time, each chunk a TRANSFER of request->vector that the engines perform
 * like any other. Lending at most DISK_BOUNCE_BUFFERS keeps what a guest's
 * requests can make vessel allocate to a few MiB a disk.
 */

/* Copies length bytes between the bounce buffer and the owner's buffers
 * left, without moving past them. */
static void copy_chunk(struct disk_request *request, size_t length,
		       bool to_owner)
{
	uint8_t *bounce = request->bounce;

	for (unsigned int i = 0; i < request->buffer_count && length; i++) {
		struct iovec *buffer = &request->buffers[i];
		size_t n = buffer->iov_len < length ? buffer->iov_len : length;

		if (to_owner)
			memcpy(buffer->iov_base, bounce, n);
		else
			memcpy(bounce, buffer->iov_base, n);
		bounce += n;
		length -= n;
	}
}

/* The next chunk from request->done on: taken from the owner's buffers
 * first when writing. */
static void next_bounce_chunk(struct disk_request *request)
{
	uint64_t left = request->length - request->done;
	size_t length = left < DISK_BOUNCE_CHUNK ? (size_t)left
						  : DISK_BOUNCE_CHUNK;

	if (request->operation == DISK_WRITE)
		copy_chunk(request, length, false);
	request->vector = (struct iovec){ request->bounce, length };
	request->cursor = &request->vector;
	request->cursor_count = 1;
}

/* Takes a bounce buffer for request, or puts it in line for one:
 * DISK_NEXT_STAGE, DISK_NEXT_WAIT or (out of memory) DISK_NEXT_DONE. */
static enum disk_next start_bounce(struct disk *disk,
				   struct disk_request *request)
{
	/* Allocated before the count is looked at, so that a failure leaves
	 * no buffer counted that a waiting request would never get. */
	void *buffer = aligned_alloc(DISK_DIRECT_ALIGNMENT, DISK_BOUNCE_CHUNK);

	if (!buffer) {
		disk_request_finish(disk, request, -ENOMEM);
		return DISK_NEXT_DONE;
	}
	request->buffers = request->cursor;
	request->buffer_count = request->cursor_count;
	pthread_mutex_lock(&disk->lock);
	if (disk->bounce_buffers == DISK_BOUNCE_BUFFERS) {
		request->next = NULL;
		*disk->bounce_waiting_tail = request;
		disk->bounce_waiting_tail = &request->next;
		pthread_mutex_unlock(&disk->lock);
		free(buffer);
		return DISK_NEXT_WAIT;
	}
	disk->bounce_buffers++;
	pthread_mutex_unlock(&disk->lock);
	request->bounce = buffer;
	next_bounce_chunk(request);
	return DISK_NEXT_STAGE;
}

/* A chunk moved result bytes (or failed): true when the request is done,
 * with request->result set. */
static bool bounce_advance(struct disk_request *request, int result)
{
	if (result < 0)
		return true;
	if (result == 0) {
		request->result = -EIO; /* the image ends early */
		return true;
	}
	if (request->operation == DISK_READ)
		copy_chunk(request, (size_t)result, true);
	skip(&request->buffers, &request->buffer_count, (size_t)result);
	request->done += (size_t)result;
	if (request->done == request->length)
		return true;
	next_bounce_chunk(request);
	return false;
}

/* Hands buffer to the requests waiting for one, the first that can start
 * keeping it, or frees it. */
static void give_back_bounce(struct disk *disk, void *buffer)
{
	for (;;) {
		pthread_mutex_lock(&disk->lock);
		struct disk_request *waiting = disk->bounce_waiting_head;
		if (!waiting) {
			disk->bounce_buffers--;
			pthread_mutex_unlock(&disk->lock);
			free(buffer);
			return;
		}
		disk->bounce_waiting_head = waiting->next;
		if (!disk->bounce_waiting_head)
			disk->bounce_waiting_tail = &disk->bounce_waiting_head;
		pthread_mutex_unlock(&disk->lock);

		waiting->bounce = buffer;
		next_bounce_chunk(waiting);
		pthread_mutex_lock(&disk->lock);
		int ret = disk->engine_ops->start(disk, waiting);
		if (ret < 0) {
			waiting->bounce = NULL;
			waiting->result = ret;
			disk_complete(disk, waiting, true);
		}
		pthread_mutex_unlock(&disk->lock);
		if (ret == 0)
			return;
	}
}

void disk_request_finish(struct disk *disk, struct disk_request *request,
			 int result)
{
	request->result = result;
	if (request->bounce) {
		void *buffer = request->bounce;

		request->bounce = NULL;
		give_back_bounce(disk, buffer);
	}
}

/* The next chunk of zeros for DISK_STAGE_ZERO_BYTES. */
static void next_zero_chunk(struct disk *disk, struct disk_request *request)
{
	uint64_t left = request->length - request->done;

	request->vector = (struct iovec){
		.iov_base = disk->zeros,
		.iov_len = left < DISK_ZERO_BUFFER_SIZE ? (size_t)left
							 : DISK_ZERO_BUFFER_SIZE,
	};
	request->cursor = &request->vector;
	request->cursor_count = 1;
}

/* Sets the stage that follows a change that succeeded: true when the
 * request is done. */
static bool after_change(struct disk_request *request)
{
	if (!request->stable || request->stage == DISK_STAGE_SYNC)
		return true;
	request->stage = DISK_STAGE_SYNC;
	return false;
}

enum disk_next disk_request_advance(struct disk *disk,
				    struct disk_request *request, int result)
{
	bool done = false;

	request->result = result < 0 ? result : 0;
	switch ((enum disk_stage)request->stage) {
	case DISK_STAGE_TRANSFER:
		if (request->bounce) {
			done = bounce_advance(request, result) &&
			       (request->result < 0 || after_change(request));
			break;
		}
		if (result == -EINVAL && disk->direct && request->done == 0) {
			request->result = 0;
			return start_bounce(disk, request);
		}
		/* fallthrough */
	case DISK_STAGE_ZERO_BYTES:
		if (result < 0) {
			done = true;
		} else if (result == 0 && request->cursor_count > 0) {
			request->result = -EIO; /* the image ends early */
			done = true;
		} else {
			consume(request, (size_t)result);
			if (request->stage == DISK_STAGE_ZERO_BYTES &&
			    request->cursor_count == 0 &&
			    request->done < request->length)
				next_zero_chunk(disk, request);
			done = request->cursor_count == 0 &&
			       after_change(request);
		}
		break;
	case DISK_STAGE_SYNC:
		done = true;
		break;
	case DISK_STAGE_DISCARD:
		/* Discarding is a hint: a file system that cannot punch
		 * holes simply keeps the blocks. */
		if (result < 0 && fallocate_unsupported(-result))
			request->result = 0;
		done = true;
		break;
	case DISK_STAGE_PUNCH:
		/* A punched hole reads as zeros, on files and on block
		 * devices; where none can be punched, zero the range. */
		if (result == 0)
			done = after_change(request);
		else
			request->stage = DISK_STAGE_ZERO_RANGE;
		request->result = 0;
		break;
	case DISK_STAGE_ZERO_RANGE:
		if (result == 0) {
			done = after_change(request);
		} else if (fallocate_unsupported(-result)) {
			request->stage = DISK_STAGE_ZERO_BYTES;
			request->result = 0;
			next_zero_chunk(disk, request);
		} else {
			done = true;
		}
		break;
	}
	if (!done)
		return DISK_NEXT_STAGE;
	disk_request_finish(disk, request, request->result);
	return DISK_NEXT_DONE;
}

void disk_complete(struct disk *disk, struct disk_request *request,
		   bool wake)
{
	const uint64_t one = 1;

	/* Whoever takes the list takes all of it: only the first of a batch
	 * needs to signal. */
	wake = wake && !disk->completed_head;
	request->next = NULL;
	*disk->completed_tail = request;
	disk->completed_tail = &request->next;
	/* Fails only past 2^64 - 2 unread completions. */
	if (wake && write(disk->completion_fd, &one, sizeof(one)) < 0)
		abort();
}

void disk_plug(struct disk *disk)
{
	pthread_mutex_lock(&disk->lock);
	disk->plugs++;
	pthread_mutex_unlock(&disk->lock);
}

void disk_unplug(struct disk *disk)
{
	pthread_mutex_lock(&disk->lock);
	if (--disk->plugs == 0)
		disk->engine_ops->release(disk);
	pthread_mutex_unlock(&disk->lock);
}

/* Runs the callbacks of the requests that have finished; callback_lock
 * held. */
static void run_completions(struct disk *disk)
{
	struct disk_request *request;
	uint64_t count;

	/* Reset the eventfd before looking, so that a completion posted
	 * after the look signals it again. */
	if (read(disk->completion_fd, &count, sizeof(count)) < 0 &&
	    errno != EAGAIN)
		abort();
	/* What the callbacks and later stages submit starts together. */
	disk_plug(disk);
	if (disk->engine_ops->reap)
		disk->engine_ops->reap(disk);
	pthread_mutex_lock(&disk->lock);
	request = disk->completed_head;
	disk->completed_head = NULL;
	disk->completed_tail = &disk->completed_head;
	/* Free the slots first: the callbacks may submit. */
	for (struct disk_request *r = request; r; r = r->next)
		disk->in_flight--;
	pthread_mutex_unlock(&disk->lock);
	while (request) {
		struct disk_request *next = request->next;

		request->complete(request, request->result);
		request = next;
	}
	disk_unplug(disk);
}

bool disk_completions_pending(struct disk *disk)
{
	pthread_mutex_lock(&disk->lock);
	bool pending = disk->completed_head != NULL;
	pthread_mutex_unlock(&disk->lock);
	return pending || (disk->engine_ops->reapable &&
			   disk->engine_ops->reapable(disk));
}

void disk_process_completions(struct disk *disk)
{
	pthread_mutex_lock(&disk->callback_lock);
	run_completions(disk);
	pthread_mutex_unlock(&disk->callback_lock);
}

void disk_drain(struct disk *disk)
{
	pthread_mutex_lock(&disk->callback_lock);
	for (;;) {
		struct pollfd completion = { .fd = disk->completion_fd,
					     .events = POLLIN };
		bool idle;

		run_completions(disk);
		pthread_mutex_lock(&disk->lock);
		idle = disk->in_flight == 0;
		/* Requests held by a plug would never complete. */
		if (!idle)
			disk->engine_ops->release(disk);
		pthread_mutex_unlock(&disk->lock);
		if (idle)
			break;
		/* Both engines signal completion_fd; only the holder of
		 * callback_lock reads it. */
		while (poll(&completion, 1, -1) < 0)
			if (errno != EINTR)
				abort();
	}
	pthread_mutex_unlock(&disk->callback_lock);
}

static bool request_valid(const struct disk *disk,
			  const struct disk_request *request)
{
	uint64_t total = 0;

	if (request->operation == DISK_FLUSH)
		return true;
	if (request->offset > disk->size ||
	    request->length > disk->size - request->offset)
		return false;
	if (request->operation != DISK_READ &&
	    request->operation != DISK_WRITE)
		return request->operation == DISK_DISCARD ||
		       request->operation == DISK_WRITE_ZEROES;
	if (request->iov_count > IOV_MAX)
		return false;
	for (unsigned int i = 0; i < request->iov_count; i++)
		total += request->iov[i].iov_len;
	return total == request->length;
}

static enum disk_stage first_stage(const struct disk_request *request)
{
	switch (request->operation) {
	case DISK_READ:
	case DISK_WRITE:
		return DISK_STAGE_TRANSFER;
	case DISK_FLUSH:
		return DISK_STAGE_SYNC;
	case DISK_DISCARD:
		return DISK_STAGE_DISCARD;
	case DISK_WRITE_ZEROES:
		break;
	}
	return request->may_unmap ? DISK_STAGE_PUNCH : DISK_STAGE_ZERO_RANGE;
}

int disk_submit(struct disk *disk, struct disk_request *request)
{
	bool change = request->operation == DISK_WRITE ||
		      request->operation == DISK_DISCARD ||
		      request->operation == DISK_WRITE_ZEROES;
	int ret;

	if (change && disk->read_only)
		return -EROFS;
	if (!request_valid(disk, request))
		return -EINVAL;

	request->stage = first_stage(request);
	request->done = 0;
	request->cursor = request->iov;
	request->cursor_count = request->iov_count;
	request->bounce = NULL;
	request->buffers = NULL;
	request->buffer_count = 0;
	request->result = 0;
	/* Past leading empty iovecs: cursor_count 0 is nothing to move. */
	consume(request, 0);
	pthread_mutex_lock(&disk->lock);
	if (disk->in_flight >= disk->max_in_flight) {
		pthread_mutex_unlock(&disk->lock);
		return -EAGAIN;
	}
	ret = disk->engine_ops->start(disk, request);
	if (ret == 0)
		disk->in_flight++;
	pthread_mutex_unlock(&disk->lock);
	return ret;
}

/* Capacity and block sizes of the open image. */
static int probe(struct disk *disk, const char *path, char *err,
		 size_t err_len)
{
	struct stat st;
	int block_size;

	if (fstat(disk->fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (S_ISREG(st.st_mode)) {
		disk->size = (uint64_t)st.st_size;
		disk->logical_block_size = 512;
		disk->discard_granularity = st.st_blksize > 512
						    ? (uint32_t)st.st_blksize
						    : 512;
		return 0;
	}
	if (!S_ISBLK(st.st_mode)) {
		snprintf(err, err_len,
			 "%s is neither a regular file nor a block device",
			 path);
		return -EINVAL;
	}
	if (ioctl(disk->fd, BLKGETSIZE64, &disk->size) < 0 ||
	    ioctl(disk->fd, BLKSSZGET, &block_size) < 0) {
		snprintf(err, err_len, "%s: cannot read the device's size: %s",
			 path, strerror(errno));
		return -errno;
	}
	if (block_size < 512 || block_size > DISK_DIRECT_ALIGNMENT ||
	    (block_size & (block_size - 1))) {
		snprintf(err, err_len,
			 "%s: unsupported logical block size %d", path,
			 block_size);
		return -EINVAL;
	}
	disk->logical_block_size = (uint32_t)block_size;
	disk->discard_granularity = (uint32_t)block_size;
	return 0;
}

static int make_blocking(struct disk *disk, const char *path, char *err,
			 size_t err_len)
{
	int flags = fcntl(disk->fd, F_GETFL);

	if (flags < 0 || fcntl(disk->fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

/* An open file description lock (fcntl(2), F_OFD_SETLK): it belongs to
 * this open of the image, so a second open conflicts even in the same
 * process, and it goes away with the descriptor. */
static int lock_image(struct disk *disk, const char *path, char *err,
		      size_t err_len)
{
	struct flock lock = {
		.l_type = disk->read_only ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};

	if (fcntl(disk->fd, F_OFD_SETLK, &lock) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES) {
		snprintf(err, err_len, "%s is in use by another process",
			 path);
		return -EBUSY;
	}
	snprintf(err, err_len, "%s: cannot lock: %s", path, strerror(errno));
	return -errno;
}

/* Opens without waiting: a FIFO given as a read-only image would hold the
 * open until a writer came. probe() then refuses anything but a regular
 * file or a block device, and make_blocking() clears O_NONBLOCK again
 * before the engine starts (io_uring fails a non-blocking file's reads
 * with EAGAIN rather than wait). */
static int open_image(struct disk *disk, const struct disk_options *options,
		      char *err, size_t err_len)
{
	int flags = (options->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC |
		    O_NONBLOCK;

	if (options->cache == DISK_CACHE_NONE)
		flags |= O_DIRECT;
	disk->fd = open(options->path, flags);
	if (disk->fd >= 0)
		return 0;
	if (errno == EINVAL && options->cache == DISK_CACHE_NONE)
		snprintf(err, err_len,
			 "%s: the file system refuses O_DIRECT (cache=none); "
			 "use cache=writeback",
			 options->path);
	else
		snprintf(err, err_len, "%s: %s", options->path,
			 strerror(errno));
	return -errno;
}

/* The eventfd and the zero buffer. */
static int prepare_completions(struct disk *disk, const char *path,
			       char *err, size_t err_len)
{
	int ret;

	disk->completion_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	disk->zeros = aligned_alloc(DISK_DIRECT_ALIGNMENT,
				    DISK_ZERO_BUFFER_SIZE);
	if (disk->completion_fd < 0 || !disk->zeros) {
		ret = disk->zeros ? -errno : -ENOMEM;
		snprintf(err, err_len, "%s: %s", path, strerror(-ret));
		return ret;
	}
	memset(disk->zeros, 0, DISK_ZERO_BUFFER_SIZE);
	return 0;
}

/* io_uring where it can be set up; the worker pool otherwise, which the
 * user hears about once per process. */
static int start_engine(struct disk *disk, const char *path, char *err,
			size_t err_len)
{
	static atomic_bool fallback_said;
	int uring_error = disk_uring_ops.open(disk);
	int ret;

	if (uring_error == 0) {
		disk->engine_ops = &disk_uring_ops;
		return 0;
	}
	ret = disk_pool_ops.open(disk);
	if (ret < 0) {
		snprintf(err, err_len,
			 "%s: cannot start disk I/O threads: %s (io_uring: "
			 "%s)",
			 path, strerror(-ret), strerror(-uring_error));
		return ret;
	}
	disk->engine_ops = &disk_pool_ops;
	if (!atomic_exchange(&fallback_said, true))
		fprintf(stderr,
			"vessel: io_uring unavailable (%s); disk I/O on "
			"worker threads\n",
			strerror(-uring_error));
	return 0;
}

static void free_disk(struct disk *disk)
{
	if (disk->engine_ops)
		disk->engine_ops->close(disk);
	if (disk->fd >= 0)
		close(disk->fd);
	if (disk->completion_fd >= 0)
		close(disk->completion_fd);
	free(disk->zeros);
	pthread_mutex_destroy(&disk->callback_lock);
	pthread_mutex_destroy(&disk->lock);
	free(disk);
}

int disk_open(struct disk **out, const struct disk_options *options,
	      char *err, size_t err_len)
{
	const char *serial = options->serial ? options->serial : "";
	struct disk *disk;
	int ret;

	if (strlen(serial) > DISK_SERIAL_MAX) {
		snprintf(err, err_len,
			 "disk serial '%s' is longer than %d bytes", serial,
			 DISK_SERIAL_MAX);
		return -EINVAL;
	}
	disk = calloc(1, sizeof(*disk));
	if (!disk) {
		snprintf(err, err_len, "%s: out of memory", options->path);
		return -ENOMEM;
	}
	disk->fd = -1;
	disk->completion_fd = -1;
	disk->read_only = options->read_only;
	disk->direct = options->cache == DISK_CACHE_NONE;
	disk->max_in_flight = options->max_in_flight
				      ? options->max_in_flight
				      : DISK_DEFAULT_MAX_IN_FLIGHT;
	strcpy(disk->serial, serial);
	disk->completed_tail = &disk->completed_head;
	disk->bounce_waiting_tail = &disk->bounce_waiting_head;
	pthread_mutex_init(&disk->lock, NULL);
	pthread_mutex_init(&disk->callback_lock, NULL);

	ret = open_image(disk, options, err, err_len);
	if (ret == 0)
		ret = probe(disk, options->path, err, err_len);
	if (ret == 0)
		ret = make_blocking(disk, options->path, err, err_len);
	if (ret == 0)
		ret = lock_image(disk, options->path, err, err_len);
	if (ret == 0)
		ret = prepare_completions(disk, options->path, err, err_len);
	if (ret == 0)
		ret = start_engine(disk, options->path, err, err_len);
	if (ret < 0) {
		free_disk(disk);
		return ret;
	}
	*out = disk;
	return 0;
}

void disk_close(struct disk *disk)
{
	if (!disk)
		return;
	disk_drain(disk);
	free_disk(disk);
}

int disk_completion_fd(const struct disk *disk)
{
	return disk->completion_fd;
}

uint64_t disk_size(const struct disk *disk)
{
	return disk->size;
}

uint32_t disk_logical_block_size(const struct disk *disk)
{
	return disk->logical_block_size;
}

uint32_t disk_discard_granularity(const struct disk *disk)
{
	return disk->discard_granularity;
}

bool disk_read_only(const struct disk *disk)
{
	return disk->read_only;
}

unsigned int disk_max_in_flight(const struct disk *disk)
{
	return disk->max_in_flight;
}

const char *disk_serial(const struct disk *disk)
{
	return disk->serial;
}
