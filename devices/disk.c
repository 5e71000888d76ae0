/*
 * Requests run on a small pool of I/O threads doing preadv, pwritev,
 * fdatasync and fallocate; each thread posts its finished request to a
 * list and wakes the event thread through an eventfd.
 *
 * Why a pool rather than io_uring: io_uring is often unavailable where a
 * VMM runs (container runtimes' seccomp profiles block it, and the
 * kernel.io_uring_disabled sysctl turns it off), while threads work
 * everywhere; and the fallbacks the device needs (an aligned bounce
 * buffer when O_DIRECT refuses a guest buffer, writing zeros when the file
 * system cannot zero a range) are plain sequential code on a thread. A
 * pool costs a thread hand-off per request, which matters only at request
 * rates a benchmark would show; the disk_submit/disk_process_completions
 * API leaves room for an io_uring path then.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_WORKER_COUNT 8
/* Buffers for O_DIRECT are aligned to a page, which satisfies every
 * logical block size Linux supports up to 4 KiB. */
#define DISK_DIRECT_ALIGNMENT 4096
#define DISK_ZERO_BUFFER_SIZE (256 * 1024)

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

	pthread_mutex_t lock; /* guards the lists, in_flight and stopping */
	pthread_cond_t submitted_cond; /* workers wait for work */
	pthread_cond_t completed_cond; /* disk_drain waits for completions */
	struct disk_request *submitted_head, **submitted_tail;
	struct disk_request *completed_head, **completed_tail;
	/* Submitted and not yet taken for their callback. */
	unsigned int in_flight;
	bool stopping;

	/* Held while callbacks run, so that they never run two at a time. */
	pthread_mutex_t callback_lock;

	pthread_t workers[DISK_WORKER_COUNT];
	unsigned int worker_count;
};

/* Reads or writes iov at offset until done; advances through iov in
 * place. 0 or -errno; -EIO when the image ends early. */
static int transfer_vector(int fd, bool write, struct iovec *iov,
			   unsigned int iov_count, uint64_t offset)
{
	for (;;) {
		ssize_t done;

		while (iov_count > 0 && iov->iov_len == 0) {
			iov++;
			iov_count--;
		}
		if (iov_count == 0)
			return 0;
		done = write ? pwritev(fd, iov, (int)iov_count, (off_t)offset)
			     : preadv(fd, iov, (int)iov_count, (off_t)offset);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (done == 0)
			return -EIO;
		offset += (uint64_t)done;
		while (iov_count > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			iov_count--;
		}
		if (iov_count > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
}

/* O_DIRECT refuses buffers that are not aligned for the device: go through
 * an aligned copy. */
static int transfer_bounced(struct disk *disk, struct disk_request *request)
{
	bool write = request->operation == DISK_WRITE;
	size_t length = (size_t)request->length;
	struct iovec bounce;
	uint8_t *buffer;
	size_t copied = 0;
	int ret;

	buffer = aligned_alloc(DISK_DIRECT_ALIGNMENT,
			       (length + DISK_DIRECT_ALIGNMENT - 1) &
				       ~(size_t)(DISK_DIRECT_ALIGNMENT - 1));
	if (!buffer)
		return -ENOMEM;
	if (write) {
		for (unsigned int i = 0; i < request->iov_count; i++) {
			memcpy(buffer + copied, request->iov[i].iov_base,
			       request->iov[i].iov_len);
			copied += request->iov[i].iov_len;
		}
	}
	bounce = (struct iovec){ .iov_base = buffer, .iov_len = length };
	ret = transfer_vector(disk->fd, write, &bounce, 1, request->offset);
	if (ret == 0 && !write) {
		for (unsigned int i = 0; i < request->iov_count; i++) {
			memcpy(request->iov[i].iov_base, buffer + copied,
			       request->iov[i].iov_len);
			copied += request->iov[i].iov_len;
		}
	}
	free(buffer);
	return ret;
}

static int transfer(struct disk *disk, struct disk_request *request)
{
	int ret = transfer_vector(disk->fd, request->operation == DISK_WRITE,
				  request->iov, request->iov_count,
				  request->offset);

	/* O_DIRECT checks alignment before it moves a byte, so the iovecs
	 * are still intact when it refuses them. */
	if (ret == -EINVAL && disk->direct)
		ret = transfer_bounced(disk, request);
	return ret;
}

static int write_zero_bytes(struct disk *disk, uint64_t offset,
			    uint64_t length)
{
	while (length > 0) {
		size_t chunk = length < DISK_ZERO_BUFFER_SIZE
				       ? (size_t)length
				       : DISK_ZERO_BUFFER_SIZE;
		struct iovec iov = { .iov_base = disk->zeros, .iov_len = chunk };
		int ret = transfer_vector(disk->fd, true, &iov, 1, offset);

		if (ret < 0)
			return ret;
		offset += chunk;
		length -= chunk;
	}
	return 0;
}

static bool fallocate_unsupported(int error)
{
	return error == EOPNOTSUPP || error == ENOTSUP || error == ENOSYS;
}

static int write_zeroes(struct disk *disk, const struct disk_request *request)
{
	off_t offset = (off_t)request->offset, length = (off_t)request->length;

	/* A punched hole reads as zeros, on files and on block devices. */
	if (request->may_unmap &&
	    fallocate(disk->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      offset, length) == 0)
		return 0;
	if (fallocate(disk->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      offset, length) == 0)
		return 0;
	if (!fallocate_unsupported(errno))
		return -errno;
	return write_zero_bytes(disk, request->offset, request->length);
}

static int execute(struct disk *disk, struct disk_request *request)
{
	int ret = 0;

	switch (request->operation) {
	case DISK_READ:
	case DISK_WRITE:
		ret = transfer(disk, request);
		break;
	case DISK_FLUSH:
		return fdatasync(disk->fd) == 0 ? 0 : -errno;
	case DISK_DISCARD:
		/* Discarding is a hint: a file system that cannot punch holes
		 * simply keeps the blocks. */
		if (fallocate(disk->fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)request->offset,
			      (off_t)request->length) < 0 &&
		    !fallocate_unsupported(errno))
			return -errno;
		return 0;
	case DISK_WRITE_ZEROES:
		ret = write_zeroes(disk, request);
		break;
	}
	if (ret == 0 && request->stable && fdatasync(disk->fd) < 0)
		ret = -errno;
	return ret;
}

static void *worker_main(void *opaque)
{
	struct disk *disk = opaque;
	const uint64_t one = 1;

	pthread_mutex_lock(&disk->lock);
	for (;;) {
		struct disk_request *request;

		while (!disk->submitted_head && !disk->stopping)
			pthread_cond_wait(&disk->submitted_cond, &disk->lock);
		if (!disk->submitted_head)
			break;
		request = disk->submitted_head;
		disk->submitted_head = request->next;
		if (!disk->submitted_head)
			disk->submitted_tail = &disk->submitted_head;
		pthread_mutex_unlock(&disk->lock);

		request->result = execute(disk, request);

		pthread_mutex_lock(&disk->lock);
		/* The event thread takes the whole list per wake-up: only the
		 * first completion of a batch needs to wake it. */
		bool wake = !disk->completed_head;
		request->next = NULL;
		*disk->completed_tail = request;
		disk->completed_tail = &request->next;
		pthread_cond_broadcast(&disk->completed_cond);
		/* Fails only past 2^64 - 2 unread completions. */
		if (wake && write(disk->completion_fd, &one, sizeof(one)) < 0)
			abort();
	}
	pthread_mutex_unlock(&disk->lock);
	return NULL;
}

/* Runs the callbacks of what has completed; callback_lock held. Returns
 * whether there were any. */
static bool run_completions(struct disk *disk)
{
	struct disk_request *request;
	uint64_t count;

	if (read(disk->completion_fd, &count, sizeof(count)) < 0 &&
	    errno != EAGAIN)
		abort();
	pthread_mutex_lock(&disk->lock);
	request = disk->completed_head;
	disk->completed_head = NULL;
	disk->completed_tail = &disk->completed_head;
	for (struct disk_request *r = request; r; r = r->next)
		disk->in_flight--;
	pthread_mutex_unlock(&disk->lock);
	if (!request)
		return false;
	while (request) {
		struct disk_request *next = request->next;

		request->complete(request, request->result);
		request = next;
	}
	return true;
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
		bool idle;

		run_completions(disk);
		pthread_mutex_lock(&disk->lock);
		while (disk->in_flight > 0 && !disk->completed_head)
			pthread_cond_wait(&disk->completed_cond, &disk->lock);
		idle = disk->in_flight == 0;
		pthread_mutex_unlock(&disk->lock);
		if (idle)
			break;
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

int disk_submit(struct disk *disk, struct disk_request *request)
{
	bool change = request->operation == DISK_WRITE ||
		      request->operation == DISK_DISCARD ||
		      request->operation == DISK_WRITE_ZEROES;

	if (change && disk->read_only)
		return -EROFS;
	if (!request_valid(disk, request))
		return -EINVAL;

	pthread_mutex_lock(&disk->lock);
	if (disk->in_flight >= disk->max_in_flight) {
		pthread_mutex_unlock(&disk->lock);
		return -EAGAIN;
	}
	disk->in_flight++;
	request->next = NULL;
	*disk->submitted_tail = request;
	disk->submitted_tail = &request->next;
	pthread_cond_signal(&disk->submitted_cond);
	pthread_mutex_unlock(&disk->lock);
	return 0;
}

static void stop_workers(struct disk *disk)
{
	pthread_mutex_lock(&disk->lock);
	disk->stopping = true;
	pthread_cond_broadcast(&disk->submitted_cond);
	pthread_mutex_unlock(&disk->lock);
	for (unsigned int i = 0; i < disk->worker_count; i++)
		pthread_join(disk->workers[i], NULL);
	disk->worker_count = 0;
}

/* Workers block every signal, so that vCPU kicks and signalfd keep
 * going to the threads that expect them. */
static int start_workers(struct disk *disk)
{
	sigset_t all, saved;
	int ret = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	while (disk->worker_count < DISK_WORKER_COUNT) {
		ret = -pthread_create(&disk->workers[disk->worker_count], NULL,
				      worker_main, disk);
		if (ret < 0)
			break;
		disk->worker_count++;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (ret < 0)
		stop_workers(disk);
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

/* The eventfd, the zero buffer and the I/O threads. */
static int prepare_completions(struct disk *disk)
{
	disk->completion_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (disk->completion_fd < 0)
		return -errno;
	disk->zeros = aligned_alloc(DISK_DIRECT_ALIGNMENT,
				    DISK_ZERO_BUFFER_SIZE);
	if (!disk->zeros)
		return -ENOMEM;
	memset(disk->zeros, 0, DISK_ZERO_BUFFER_SIZE);
	return start_workers(disk);
}

static void free_disk(struct disk *disk)
{
	if (disk->fd >= 0)
		close(disk->fd);
	if (disk->completion_fd >= 0)
		close(disk->completion_fd);
	free(disk->zeros);
	pthread_mutex_destroy(&disk->callback_lock);
	pthread_cond_destroy(&disk->completed_cond);
	pthread_cond_destroy(&disk->submitted_cond);
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
	disk->submitted_tail = &disk->submitted_head;
	disk->completed_tail = &disk->completed_head;
	pthread_mutex_init(&disk->lock, NULL);
	pthread_cond_init(&disk->submitted_cond, NULL);
	pthread_cond_init(&disk->completed_cond, NULL);
	pthread_mutex_init(&disk->callback_lock, NULL);

	ret = open_image(disk, options, err, err_len);
	if (ret == 0)
		ret = probe(disk, options->path, err, err_len);
	if (ret == 0)
		ret = lock_image(disk, options->path, err, err_len);
	if (ret == 0) {
		ret = prepare_completions(disk);
		if (ret < 0)
			snprintf(err, err_len, "%s: %s", options->path,
				 strerror(-ret));
	}
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
	stop_workers(disk);
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
