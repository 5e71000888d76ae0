/*
 * A host disk image (a raw file or a host block device) that a device
 * reads and writes asynchronously: through io_uring, or on a pool of
 * worker threads where io_uring is unavailable (kernel.io_uring_disabled,
 * a container's seccomp filter, an old kernel), which disk_open says once
 * on stderr.
 *
 * Promise: disk_submit never blocks on I/O, so a slow host disk stalls
 * neither a vCPU nor the event loop: with io_uring, a read the page cache
 * holds is done while it is submitted and anything that would wait goes
 * to the kernel's io_uring workers; with the pool, every request goes to
 * a worker. A request's completion callback runs from
 * disk_process_completions (the event thread, woken by
 * disk_completion_fd) or from disk_drain/disk_close, never inside
 * disk_submit nor on a worker, and never two at a time. The disk never
 * reads or writes outside [0, disk_size()), so an image never grows. An
 * image is locked while open: exclusively when writable, shared when
 * read-only. With cache=none, a request whose buffers O_DIRECT refuses
 * moves through bounce buffers of DISK_BOUNCE_CHUNK bytes, one chunk at a
 * time, and a disk lends at most DISK_BOUNCE_BUFFERS of them at once (a
 * request that finds none waits for one): the memory a guest's requests
 * can make a disk allocate is bounded, whatever their size and number.
 */
#ifndef VESSEL_DEVICES_DISK_H
#define VESSEL_DEVICES_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DISK_SERIAL_MAX 20 /* VIRTIO_BLK_ID_BYTES, virtio 1.2 §5.2.6 */
#define DISK_DEFAULT_MAX_IN_FLIGHT 128
/* 1 MiB a chunk keeps a chunk's copy and system call long against their
 * fixed costs; 8 of them let as many unaligned requests move at once. */
#define DISK_BOUNCE_CHUNK (1u << 20)
#define DISK_BOUNCE_BUFFERS 8

enum disk_cache {
	DISK_CACHE_WRITEBACK, /* through the host's page cache */
	DISK_CACHE_NONE, /* O_DIRECT: the host's page cache is bypassed */
};

struct disk_options {
	const char *path;
	bool read_only;
	enum disk_cache cache;
	const char *serial; /* NULL or up to DISK_SERIAL_MAX bytes */
	unsigned int max_in_flight; /* 0: DISK_DEFAULT_MAX_IN_FLIGHT */
};

enum disk_operation {
	DISK_READ,
	DISK_WRITE,
	DISK_FLUSH, /* everything completed so far is on the host's disk */
	DISK_DISCARD, /* the range may be deallocated; its contents undefined */
	DISK_WRITE_ZEROES, /* the range reads as zeros afterwards */
};

struct disk_request;

/* result: 0 or -errno. The request belongs to its owner again. */
typedef void (*disk_completion)(struct disk_request *request, int result);

/* Filled by the owner, which keeps it alive until its completion. */
struct disk_request {
	enum disk_operation operation;
	uint64_t offset; /* bytes; unused by FLUSH */
	uint64_t length; /* bytes; for READ and WRITE, the sum of iov lengths */
	/* READ and WRITE. The disk consumes the array: its entries are
	 * undefined after completion (the buffers they point to are not). */
	struct iovec *iov;
	unsigned int iov_count;
	/* WRITE_ZEROES: the range may be deallocated rather than written. */
	bool may_unmap;
	/* WRITE and WRITE_ZEROES: complete only once the data is on the
	 * host's disk, as if a FLUSH followed (a write-through cache). */
	bool stable;
	disk_completion complete;
	void *opaque;

	/* Kept by the disk. */
	unsigned int stage;
	uint64_t done; /* bytes moved so far */
	struct iovec *cursor; /* what is left to move */
	unsigned int cursor_count;
	struct iovec vector; /* a one-entry cursor of the disk's own */
	void *bounce; /* an aligned chunk for O_DIRECT, lent by the disk */
	/* While bouncing: the owner's buffers left to fill or take. */
	struct iovec *buffers;
	unsigned int buffer_count;
	int result;
	struct disk_request *next; /* on the disk's queues */
};

struct disk;

/* Opens and locks options->path: 0, or -errno with a one-line reason in
 * err (such as "PATH is in use by another process"). */
int disk_open(struct disk **disk, const struct disk_options *options,
	      char *err, size_t err_len);

/* Waits for every request in flight (running their callbacks), then
 * closes the image and releases its lock. */
void disk_close(struct disk *disk);

/* Starts request: 0, -EAGAIN when disk_max_in_flight requests are already
 * in flight (or the kernel has no memory for another), -EROFS for a
 * change to a read-only disk, -EINVAL for a range outside the disk or an
 * inconsistent request. Only on 0 is complete called, later.
 * Thread-safe. */
int disk_submit(struct disk *disk, struct disk_request *request);

/* Requests disk_submit accepts between disk_plug and the matching
 * disk_unplug start together at disk_unplug (with one system call, or one
 * wake-up of the workers): for a device that submits a batch. Pairs may
 * nest. Any thread. */
void disk_plug(struct disk *disk);
void disk_unplug(struct disk *disk);

/* Readable (EPOLLIN) when completed requests wait for
 * disk_process_completions. */
int disk_completion_fd(const struct disk *disk);

/* Whether disk_process_completions has callbacks to run, without a
 * system call: for a device that polls for completions rather than wait
 * for disk_completion_fd. The event thread. */
bool disk_completions_pending(struct disk *disk);

/* Calls the callbacks of every completed request; the event thread calls
 * it when disk_completion_fd is readable. */
void disk_process_completions(struct disk *disk);

/* Returns once no request is in flight, having run every callback,
 * including those of requests the callbacks submit; starts requests a
 * plug holds. Any thread. */
void disk_drain(struct disk *disk);

uint64_t disk_size(const struct disk *disk); /* bytes */
uint32_t disk_logical_block_size(const struct disk *disk);
/* The granularity at which discarding frees space, in bytes. */
uint32_t disk_discard_granularity(const struct disk *disk);
bool disk_read_only(const struct disk *disk);
unsigned int disk_max_in_flight(const struct disk *disk);
/* The serial as given, NUL-terminated; "" when none. */
const char *disk_serial(const struct disk *disk);

#endif
