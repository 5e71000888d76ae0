/*
 * Requests run through io_uring. disk_submit puts a request's first
 * operation on the ring and enters the kernel, which completes a read the
 * page cache can serve right there (its non-blocking attempt) and hands
 * anything that would block to its own worker threads. Completions land
 * on the ring, which signals completion_fd (io_uring_register_eventfd).
 * A request that needs more than one operation (the rest of a short
 * transfer, the flush after a stable change, zeroing by hand where
 * fallocate cannot) goes back on the ring from disk_process_completions,
 * one stage at a time. docs/decisions.md has the measurement behind the
 * choice of io_uring over a thread pool.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Submission queue entries; a plugged batch that fills them is submitted
 * in parts. */
#define DISK_SUBMISSION_ENTRIES 64
/* Buffers for O_DIRECT are aligned to a page, which satisfies every
 * logical block size Linux supports up to 4 KiB. */
#define DISK_DIRECT_ALIGNMENT 4096
#define DISK_ZERO_BUFFER_SIZE (256 * 1024)

/* What a request's operation on the ring does (disk_request.stage). */
enum stage {
	STAGE_TRANSFER, /* readv or writev of what is left */
	STAGE_SYNC, /* fdatasync: FLUSH, or after a stable change */
	STAGE_DISCARD, /* punch a hole, as a hint */
	STAGE_PUNCH, /* WRITE_ZEROES that may unmap: punch a hole */
	STAGE_ZERO_RANGE, /* WRITE_ZEROES: let the file system zero */
	STAGE_ZERO_BYTES, /* WRITE_ZEROES: write zeros, chunk by chunk */
};

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
	struct io_uring ring;
	bool ring_ready;

	/* Guards the submission queue, in_flight and plugs. */
	pthread_mutex_t lock;
	/* Submitted and not yet taken for their callback. */
	unsigned int in_flight;
	/* disk_plug calls not yet matched by disk_unplug: while any,
	 * entries wait on the submission queue. */
	unsigned int plugs;

	/* Held while the completion queue is read and callbacks run, so that
	 * they never run two at a time. */
	pthread_mutex_t callback_lock;
};

static bool fallocate_unsupported(int error)
{
	return error == EOPNOTSUPP || error == ENOTSUP || error == ENOSYS;
}

/* Fills sqe with request's operation for its stage. */
static void prepare(const struct disk *disk, struct io_uring_sqe *sqe,
		    struct disk_request *request)
{
	uint64_t offset = request->offset + request->done;
	off_t length = (off_t)(request->length - request->done);

	switch ((enum stage)request->stage) {
	case STAGE_TRANSFER:
	case STAGE_ZERO_BYTES:
		while (request->cursor_count > 0 &&
		       request->cursor->iov_len == 0) {
			request->cursor++;
			request->cursor_count--;
		}
		/* Nothing to move: the request still completes through
		 * the ring, like every other. */
		if (request->cursor_count == 0)
			io_uring_prep_nop(sqe);
		else if (request->operation == DISK_READ)
			io_uring_prep_readv(sqe, disk->fd,
					    request->cursor,
					    request->cursor_count, offset);
		else
			io_uring_prep_writev(sqe, disk->fd,
					     request->cursor,
					     request->cursor_count, offset);
		break;
	case STAGE_SYNC:
		io_uring_prep_fsync(sqe, disk->fd,
				    IORING_FSYNC_DATASYNC);
		break;
	case STAGE_DISCARD:
	case STAGE_PUNCH:
		io_uring_prep_fallocate(sqe, disk->fd,
					FALLOC_FL_PUNCH_HOLE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)offset, length);
		break;
	case STAGE_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, disk->fd,
					FALLOC_FL_ZERO_RANGE |
						FALLOC_FL_KEEP_SIZE,
					(off_t)offset, length);
		break;
	}
	io_uring_sqe_set_data(sqe, request);
}

/* Puts request's next operation on the ring, and starts it unless the
 * disk is plugged; disk->lock held. A full submission queue (a plugged
 * batch) is submitted first. 0, or -EAGAIN when it stays full: entries
 * the kernel could not take (it had no memory for them) wait there for
 * the next submission. */
static int queue_locked(struct disk *disk, struct disk_request *request)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&disk->ring);

	if (!sqe) {
		io_uring_submit(&disk->ring);
		sqe = io_uring_get_sqe(&disk->ring);
		if (!sqe)
			return -EAGAIN;
	}
	prepare(disk, sqe, request);
	if (disk->plugs == 0)
		io_uring_submit(&disk->ring);
	return 0;
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
	/* Also retries entries the kernel could not take before. */
	if (--disk->plugs == 0 && io_uring_sq_ready(&disk->ring) > 0)
		io_uring_submit(&disk->ring);
	pthread_mutex_unlock(&disk->lock);
}

static int queue(struct disk *disk, struct disk_request *request)
{
	pthread_mutex_lock(&disk->lock);
	int ret = queue_locked(disk, request);
	pthread_mutex_unlock(&disk->lock);
	return ret;
}

/* Moves the cursor past done bytes. */
static void consume(struct disk_request *request, size_t done)
{
	request->done += done;
	while (request->cursor_count > 0 &&
	       done >= request->cursor->iov_len) {
		done -= request->cursor->iov_len;
		request->cursor++;
		request->cursor_count--;
	}
	if (request->cursor_count > 0) {
		request->cursor->iov_base =
			(uint8_t *)request->cursor->iov_base + done;
		request->cursor->iov_len -= done;
	}
}

/* O_DIRECT refuses buffers that are not aligned for the device: the
 * transfer starts again through an aligned copy. 0 or -ENOMEM. */
static int start_bounce(struct disk_request *request)
{
	size_t length = (size_t)request->length, copied = 0;
	uint8_t *buffer = aligned_alloc(
		DISK_DIRECT_ALIGNMENT,
		(length + DISK_DIRECT_ALIGNMENT - 1) &
			~(size_t)(DISK_DIRECT_ALIGNMENT - 1));

	if (!buffer)
		return -ENOMEM;
	/* O_DIRECT checks alignment before it moves a byte, so the guest's
	 * iovecs are still intact. */
	if (request->operation == DISK_WRITE) {
		for (unsigned int i = 0; i < request->iov_count; i++) {
			memcpy(buffer + copied, request->iov[i].iov_base,
			       request->iov[i].iov_len);
			copied += request->iov[i].iov_len;
		}
	}
	request->bounce = buffer;
	request->vector = (struct iovec){ buffer, length };
	request->cursor = &request->vector;
	request->cursor_count = 1;
	return 0;
}

static void finish_bounce(struct disk_request *request, int result)
{
	size_t copied = 0;

	if (result == 0 && request->operation == DISK_READ) {
		for (unsigned int i = 0; i < request->iov_count; i++) {
			memcpy(request->iov[i].iov_base,
			       (uint8_t *)request->bounce + copied,
			       request->iov[i].iov_len);
			copied += request->iov[i].iov_len;
		}
	}
	free(request->bounce);
	request->bounce = NULL;
}

/* The next chunk of zeros for STAGE_ZERO_BYTES. */
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
	if (!request->stable || request->stage == STAGE_SYNC)
		return true;
	request->stage = STAGE_SYNC;
	return false;
}

/* Takes the result of request's operation: true when the request is done,
 * with its result set; otherwise its next operation is queued. */
static bool advance(struct disk *disk, struct disk_request *request,
		    int result)
{
	bool done = false;

	request->result = result < 0 ? result : 0;
	switch ((enum stage)request->stage) {
	case STAGE_TRANSFER:
		if (result == -EINVAL && disk->direct && !request->bounce &&
		    request->done == 0) {
			request->result = start_bounce(request);
			done = request->result < 0;
			break;
		}
		/* fallthrough */
	case STAGE_ZERO_BYTES:
		if (result < 0) {
			done = true;
		} else if (result == 0 && request->cursor_count > 0) {
			request->result = -EIO; /* the image ends early */
			done = true;
		} else {
			consume(request, (size_t)result);
			if (request->stage == STAGE_ZERO_BYTES &&
			    request->cursor_count == 0 &&
			    request->done < request->length)
				next_zero_chunk(disk, request);
			done = request->cursor_count == 0 &&
			       after_change(request);
		}
		break;
	case STAGE_SYNC:
		done = true;
		break;
	case STAGE_DISCARD:
		/* Discarding is a hint: a file system that cannot punch
		 * holes simply keeps the blocks. */
		if (result < 0 && fallocate_unsupported(-result))
			request->result = 0;
		done = true;
		break;
	case STAGE_PUNCH:
		/* A punched hole reads as zeros, on files and on block
		 * devices; where none can be punched, zero the range. */
		if (result == 0)
			done = after_change(request);
		else
			request->stage = STAGE_ZERO_RANGE;
		request->result = 0;
		break;
	case STAGE_ZERO_RANGE:
		if (result == 0) {
			done = after_change(request);
		} else if (fallocate_unsupported(-result)) {
			request->stage = STAGE_ZERO_BYTES;
			request->result = 0;
			next_zero_chunk(disk, request);
		} else {
			done = true;
		}
		break;
	}
	if (!done) {
		request->result = queue(disk, request);
		done = request->result < 0;
	}
	if (done && request->bounce)
		finish_bounce(request, request->result);
	return done;
}

/* Takes what the ring has completed and runs the callbacks of finished
 * requests; callback_lock held. */
static void run_completions(struct disk *disk)
{
	struct io_uring_cqe *cqe;
	uint64_t count;

	/* Reset the eventfd before looking, so that a completion posted
	 * after the look signals it again. */
	if (read(disk->completion_fd, &count, sizeof(count)) < 0 &&
	    errno != EAGAIN)
		abort();
	/* What the callbacks and later stages submit starts together. */
	disk_plug(disk);
	while (io_uring_peek_cqe(&disk->ring, &cqe) == 0) {
		struct disk_request *request = io_uring_cqe_get_data(cqe);
		int result = cqe->res;

		/* Free the slot first: the callback may submit. */
		io_uring_cqe_seen(&disk->ring, cqe);
		if (!advance(disk, request, result))
			continue;
		pthread_mutex_lock(&disk->lock);
		disk->in_flight--;
		pthread_mutex_unlock(&disk->lock);
		request->complete(request, request->result);
	}
	disk_unplug(disk);
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
		struct io_uring_cqe *cqe;
		bool idle;

		run_completions(disk);
		pthread_mutex_lock(&disk->lock);
		idle = disk->in_flight == 0;
		/* Requests held by a plug would never complete. */
		if (!idle && io_uring_sq_ready(&disk->ring) > 0)
			io_uring_submit(&disk->ring);
		pthread_mutex_unlock(&disk->lock);
		if (idle)
			break;
		/* Sleeps until the ring has a completion; only the holder of
		 * callback_lock reads the completion queue. */
		io_uring_wait_cqe(&disk->ring, &cqe);
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

static enum stage first_stage(const struct disk_request *request)
{
	switch (request->operation) {
	case DISK_READ:
	case DISK_WRITE:
		return STAGE_TRANSFER;
	case DISK_FLUSH:
		return STAGE_SYNC;
	case DISK_DISCARD:
		return STAGE_DISCARD;
	case DISK_WRITE_ZEROES:
		break;
	}
	return request->may_unmap ? STAGE_PUNCH : STAGE_ZERO_RANGE;
}

int disk_submit(struct disk *disk, struct disk_request *request)
{
	bool change = request->operation == DISK_WRITE ||
		      request->operation == DISK_DISCARD ||
		      request->operation == DISK_WRITE_ZEROES;

	if (change && disk->read_only)
		return -EROFS;
	if (!request_valid(disk, request))
		return -EINVAL;

	request->stage = first_stage(request);
	request->done = 0;
	request->cursor = request->iov;
	request->cursor_count = request->iov_count;
	request->bounce = NULL;
	request->result = 0;
	pthread_mutex_lock(&disk->lock);
	if (disk->in_flight >= disk->max_in_flight) {
		pthread_mutex_unlock(&disk->lock);
		return -EAGAIN;
	}
	int ret = queue_locked(disk, request);
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

static int open_image(struct disk *disk, const struct disk_options *options,
		      char *err, size_t err_len)
{
	int flags = (options->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;

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

/* The eventfd, the zero buffer and the ring. */
static int prepare_completions(struct disk *disk, const char *path,
			       char *err, size_t err_len)
{
	struct io_uring_params params = {
		/* Room for a completion of every request in flight. */
		.flags = IORING_SETUP_CQSIZE,
		.cq_entries = disk->max_in_flight > DISK_SUBMISSION_ENTRIES
				      ? disk->max_in_flight
				      : DISK_SUBMISSION_ENTRIES,
	};
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
	ret = io_uring_queue_init_params(DISK_SUBMISSION_ENTRIES, &disk->ring,
					 &params);
	if (ret < 0) {
		snprintf(err, err_len,
			 "%s: cannot set up io_uring: %s (is it disabled by "
			 "kernel.io_uring_disabled or a seccomp filter?)",
			 path, strerror(-ret));
		return ret;
	}
	disk->ring_ready = true;
	/* Not a registered file: the ring would keep the image's open file
	 * description, and with it the lock, past disk_close. */
	ret = io_uring_register_eventfd(&disk->ring, disk->completion_fd);
	if (ret < 0)
		snprintf(err, err_len, "%s: cannot set up io_uring: %s", path,
			 strerror(-ret));
	return ret;
}

static void free_disk(struct disk *disk)
{
	if (disk->ring_ready)
		io_uring_queue_exit(&disk->ring);
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
	pthread_mutex_init(&disk->lock, NULL);
	pthread_mutex_init(&disk->callback_lock, NULL);

	ret = open_image(disk, options, err, err_len);
	if (ret == 0)
		ret = probe(disk, options->path, err, err_len);
	if (ret == 0)
		ret = lock_image(disk, options->path, err, err_len);
	if (ret == 0)
		ret = prepare_completions(disk, options->path, err, err_len);
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
