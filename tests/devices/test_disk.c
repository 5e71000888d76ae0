/*
 * The host disk backend on real image files under /tmp: requests complete
 * through the eventfd, ranges and read-only images are enforced, images
 * are locked, and closing waits for what is in flight. What a request does
 * is tested on both engines: io_uring (suite disk) and the worker pool
 * (suite disk_pool, where io_uring is forbidden as a container forbids
 * it).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "devices/disk.h"
#include "fakes.h"

/* Whether a sanitizer's allocator runs underneath; gcc and clang say it
 * differently. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#define IMAGE_SIZE (1u << 20)

static char path[] = "/tmp/vessel-test-disk-XXXXXX";
static struct disk *disk;
static char err[256];

struct completion_record {
	unsigned int calls;
	int result;
};

static void record_completion(struct disk_request *request, int result)
{
	struct completion_record *record = request->opaque;

	record->calls++;
	record->result = result;
}

/* What a container's seccomp profile does to io_uring (each test runs in
 * its own process, so the filter ends with the test). */
static void forbid_io_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog program = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program), 0);
}

static void setup(void)
{
	int fd;

	strcpy(path, "/tmp/vessel-test-disk-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, IMAGE_SIZE), 0);
	close(fd);
	disk = NULL;
	err[0] = '\0';
}

static void teardown(void)
{
	disk_close(disk);
	unlink(path);
}

/* The pool suite's tests keep the fallback's notice out of the log. */
static void setup_pool(void)
{
	setup();
	cr_redirect_stderr();
	forbid_io_uring();
}

TestSuite(disk, .init = setup, .fini = teardown);
TestSuite(disk_pool, .init = setup_pool, .fini = teardown);

/* A behaviour of both engines: the body runs once in each suite. */
#define ENGINE_TEST(name)                 \
	static void name(void);           \
	Test(disk, name)                  \
	{                                 \
		name();                   \
	}                                 \
	Test(disk_pool, name)             \
	{                                 \
		name();                   \
	}                                 \
	static void name(void)

static int open_image(struct disk **opened, bool read_only,
		      enum disk_cache cache, unsigned int max_in_flight)
{
	struct disk_options options = {
		.path = path,
		.read_only = read_only,
		.cache = cache,
		.serial = "disk-serial",
		.max_in_flight = max_in_flight,
	};

	return disk_open(opened, &options, err, sizeof(err));
}

static void open_writable(void)
{
	cr_assert_eq(open_image(&disk, false, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
}

/* Runs completions as the event thread would, until calls reaches
 * expected. */
static void wait_for(struct completion_record *record, unsigned int expected)
{
	while (record->calls < expected) {
		struct pollfd poll_fd = { .fd = disk_completion_fd(disk),
					  .events = POLLIN };

		cr_assert_eq(poll(&poll_fd, 1, 5000), 1,
			     "no completion within 5 s");
		disk_process_completions(disk);
	}
}

static int submit_range(enum disk_operation operation, uint64_t offset,
			uint64_t length, bool may_unmap,
			struct disk_request *request,
			struct completion_record *record)
{
	*request = (struct disk_request){
		.operation = operation,
		.offset = offset,
		.length = length,
		.may_unmap = may_unmap,
		.complete = record_completion,
		.opaque = record,
	};
	return disk_submit(disk, request);
}

/* A read or write of the bytes iov[0..count) describe, at offset. */
static int submit_io(enum disk_operation operation, uint64_t offset,
		     struct iovec *iov, unsigned int count,
		     struct disk_request *request,
		     struct completion_record *record)
{
	uint64_t length = 0;

	for (unsigned int i = 0; i < count; i++)
		length += iov[i].iov_len;
	*request = (struct disk_request){
		.operation = operation,
		.offset = offset,
		.length = length,
		.iov = iov,
		.iov_count = count,
		.complete = record_completion,
		.opaque = record,
	};
	return disk_submit(disk, request);
}

Test(disk, reports_size_block_size_and_serial)
{
	open_writable();
	cr_assert_eq(disk_size(disk), IMAGE_SIZE);
	cr_assert_eq(disk_logical_block_size(disk), 512);
	cr_assert_geq(disk_discard_granularity(disk), 512);
	cr_assert_not(disk_read_only(disk));
	cr_assert_eq(disk_max_in_flight(disk), DISK_DEFAULT_MAX_IN_FLIGHT);
	cr_assert_str_eq(disk_serial(disk), "disk-serial");
}

ENGINE_TEST(write_then_read_complete_on_the_eventfd)
{
	uint8_t first[1024], second[3072], back[4096], in_file[4096];
	struct iovec write_iov[] = { { first, sizeof(first) },
				     { second, sizeof(second) } };
	struct iovec read_iov[] = { { back, sizeof(back) } };
	struct completion_record record = { 0 };
	struct disk_request request;

	open_writable();
	memset(first, 0x11, sizeof(first));
	memset(second, 0x22, sizeof(second));
	cr_assert_eq(submit_io(DISK_WRITE, 8192, write_iov, 2, &request, &record),
		     0);
	cr_assert_eq(record.calls, 0, "completed outside the event thread");
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	image_read(path, 8192, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, first, sizeof(first));
	cr_assert_arr_eq(in_file + sizeof(first), second, sizeof(second));

	cr_assert_eq(submit_io(DISK_READ, 8192, read_iov, 1, &request, &record), 0);
	wait_for(&record, 2);
	cr_assert_eq(record.result, 0);
	cr_assert_arr_eq(back, in_file, sizeof(back));
}

ENGINE_TEST(flush_completes)
{
	struct completion_record record = { 0 };
	struct disk_request request;

	open_writable();
	cr_assert_eq(submit_range(DISK_FLUSH, 0, 0, false, &request, &record),
		     0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
}

ENGINE_TEST(discard_punches_a_hole)
{
	struct completion_record record = { 0 };
	struct disk_request request;
	uint8_t back[4096], zeros[4096] = { 0 };
	blkcnt_t before;

	image_fill(path, IMAGE_SIZE, 0xaa);
	before = image_blocks(path);
	open_writable();
	cr_assert_eq(submit_range(DISK_DISCARD, 0, IMAGE_SIZE / 2, false,
				  &request, &record),
		     0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	cr_assert_lt(image_blocks(path), before);
	image_read(path, 0, back, sizeof(back));
	cr_assert_arr_eq(back, zeros, sizeof(back));
	cr_assert_eq(disk_size(disk), IMAGE_SIZE);
}

ENGINE_TEST(write_zeroes_zeroes_exactly_the_range)
{
	struct completion_record record = { 0 };
	struct disk_request request;
	uint8_t back[3 * 512];

	image_fill(path, IMAGE_SIZE, 0xaa);
	open_writable();
	cr_assert_eq(submit_range(DISK_WRITE_ZEROES, 4096, 512, false,
				  &request, &record),
		     0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	image_read(path, 4096 - 512, back, sizeof(back));
	for (size_t i = 0; i < sizeof(back); i++)
		cr_assert_eq(back[i], i >= 512 && i < 1024 ? 0 : 0xaa,
			     "byte %zu", i);
}

ENGINE_TEST(write_zeroes_with_unmap_frees_blocks)
{
	struct completion_record record = { 0 };
	struct disk_request request;
	uint8_t back[4096], zeros[4096] = { 0 };
	blkcnt_t before;

	image_fill(path, IMAGE_SIZE, 0xaa);
	before = image_blocks(path);
	open_writable();
	cr_assert_eq(submit_range(DISK_WRITE_ZEROES, IMAGE_SIZE / 2,
				  IMAGE_SIZE / 2, true, &request, &record),
		     0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	cr_assert_lt(image_blocks(path), before);
	image_read(path, IMAGE_SIZE - sizeof(back), back, sizeof(back));
	cr_assert_arr_eq(back, zeros, sizeof(back));
}

Test(disk, refuses_ranges_outside_the_image)
{
	uint8_t data[1024] = { 0 };
	struct iovec iov = { data, sizeof(data) };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_WRITE,
		.offset = IMAGE_SIZE - 512,
		.length = sizeof(data),
		.iov = &iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};
	struct stat st;

	open_writable();
	cr_assert_eq(disk_submit(disk, &request), -EINVAL);
	request.offset = UINT64_MAX - 100;
	cr_assert_eq(disk_submit(disk, &request), -EINVAL);
	cr_assert_eq(submit_range(DISK_DISCARD, IMAGE_SIZE, 512, false,
				  &request, &record),
		     -EINVAL);
	/* The iovecs must add up to the length. */
	request = (struct disk_request){ .operation = DISK_WRITE,
					 .length = 512,
					 .iov = &iov,
					 .iov_count = 1 };
	cr_assert_eq(disk_submit(disk, &request), -EINVAL);
	disk_drain(disk);
	cr_assert_eq(record.calls, 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, IMAGE_SIZE);
}

ENGINE_TEST(read_only_refuses_changes)
{
	uint8_t data[512] = { 0 };
	struct iovec iov = { data, sizeof(data) };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_WRITE,
		.length = sizeof(data),
		.iov = &iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};

	cr_assert_eq(open_image(&disk, true, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
	cr_assert(disk_read_only(disk));
	cr_assert_eq(disk_submit(disk, &request), -EROFS);
	cr_assert_eq(submit_range(DISK_DISCARD, 0, 512, false, &request,
				  &record),
		     -EROFS);
	cr_assert_eq(submit_range(DISK_WRITE_ZEROES, 0, 512, false, &request,
				  &record),
		     -EROFS);
	cr_assert_eq(submit_io(DISK_READ, 0, &iov, 1, &request, &record), 0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
}

ENGINE_TEST(bounds_requests_in_flight)
{
	struct completion_record record = { 0 };
	struct disk_request first, second;

	cr_assert_eq(open_image(&disk, false, DISK_CACHE_WRITEBACK, 1), 0,
		     "%s", err);
	cr_assert_eq(submit_range(DISK_FLUSH, 0, 0, false, &first, &record),
		     0);
	cr_assert_eq(submit_range(DISK_FLUSH, 0, 0, false, &second, &record),
		     -EAGAIN);
	wait_for(&record, 1);
	cr_assert_eq(submit_range(DISK_FLUSH, 0, 0, false, &second, &record),
		     0);
	wait_for(&record, 2);
}

ENGINE_TEST(close_waits_for_requests_in_flight)
{
	static uint8_t data[8][65536];
	struct iovec iov[8];
	struct disk_request requests[8];
	struct completion_record record = { 0 };
	uint8_t back[65536];

	open_writable();
	for (int i = 0; i < 8; i++) {
		memset(data[i], i + 1, sizeof(data[i]));
		iov[i] = (struct iovec){ data[i], sizeof(data[i]) };
		cr_assert_eq(submit_io(DISK_WRITE, (uint64_t)i * sizeof(data[i]),
				       &iov[i], 1, &requests[i], &record),
			     0);
	}
	disk_close(disk);
	disk = NULL;
	cr_assert_eq(record.calls, 8);
	cr_assert_eq(record.result, 0);
	image_read(path, 7 * sizeof(back), back, sizeof(back));
	cr_assert_arr_eq(back, data[7], sizeof(back));
}

ENGINE_TEST(short_image_is_an_io_error)
{
	uint8_t data[4096];
	struct iovec iov = { data, sizeof(data) };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_READ,
		.offset = IMAGE_SIZE - sizeof(data),
		.length = sizeof(data),
		.iov = &iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};

	open_writable();
	/* Another program shrinks the image behind vessel's back. */
	cr_assert_eq(truncate(path, IMAGE_SIZE / 2), 0);
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, -EIO);
}

ENGINE_TEST(a_writable_image_is_locked)
{
	struct disk *second = NULL;
	char expected[300];

	open_writable();
	snprintf(expected, sizeof(expected), "%s is in use by another process",
		 path);
	cr_assert_eq(open_image(&second, false, DISK_CACHE_WRITEBACK, 0),
		     -EBUSY);
	cr_assert_str_eq(err, expected);
	cr_assert_eq(open_image(&second, true, DISK_CACHE_WRITEBACK, 0),
		     -EBUSY);
	cr_assert_str_eq(err, expected);
	disk_close(disk);
	disk = NULL;
	cr_assert_eq(open_image(&disk, false, DISK_CACHE_WRITEBACK, 0), 0,
		     "the lock outlived its disk: %s", err);
}

Test(disk, read_only_opens_share_the_image)
{
	struct disk *second = NULL, *writer = NULL;

	cr_assert_eq(open_image(&disk, true, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
	cr_assert_eq(open_image(&second, true, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
	cr_assert_eq(open_image(&writer, false, DISK_CACHE_WRITEBACK, 0),
		     -EBUSY);
	disk_close(second);
}

Test(disk, refuses_bad_options_and_paths)
{
	struct disk_options options = {
		.path = path,
		.serial = "123456789012345678901",
	};

	cr_assert_eq(disk_open(&disk, &options, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "longer than 20 bytes"), "%s", err);
	options = (struct disk_options){ .path = "/dev/null" };
	cr_assert_eq(disk_open(&disk, &options, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err,
			 "/dev/null is neither a regular file nor a block device");
	options.path = "/nonexistent/image.raw";
	cr_assert_eq(disk_open(&disk, &options, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err,
			 "/nonexistent/image.raw: No such file or directory");
	cr_assert_null(disk);
}

/* A FIFO with no writer would hold a read-only open for ever: the open
 * must not wait, and the FIFO is refused for what it is. */
Test(disk, refuses_a_fifo_without_waiting, .timeout = 5)
{
	char dir[] = "/tmp/vessel-test-disk-XXXXXX", fifo[64], expected[128];
	struct disk_options options = { .path = fifo, .read_only = true };

	cr_assert_not_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	int ret = disk_open(&disk, &options, err, sizeof(err));
	unlink(fifo);
	rmdir(dir);
	cr_assert_eq(ret, -EINVAL);
	snprintf(expected, sizeof(expected),
		 "%s is neither a regular file nor a block device", fifo);
	cr_assert_str_eq(err, expected);
	cr_assert_null(disk);
}

/* O_DIRECT with a buffer that is not aligned for it goes through a bounce
 * buffer; the data still lands where it should. */
ENGINE_TEST(cache_none_moves_unaligned_buffers)
{
	uint8_t *buffer = malloc(4096 + 1), back[4096];
	struct iovec iov = { buffer + 1, 4096 };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_WRITE,
		.offset = 4096,
		.length = 4096,
		.iov = &iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};
	int ret = open_image(&disk, false, DISK_CACHE_NONE, 0);

	if (ret == -EINVAL)
		cr_skip_test("%s", err);
	cr_assert_eq(ret, 0, "%s", err);
	cr_assert_not_null(buffer);
	for (int i = 0; i < 4096; i++)
		buffer[i + 1] = (uint8_t)i;
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	image_read(path, 4096, back, sizeof(back));
	cr_assert_arr_eq(back, buffer + 1, sizeof(back));

	memset(buffer, 0, 4096 + 1);
	iov = (struct iovec){ buffer + 1, 4096 };
	request.operation = DISK_READ;
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 2);
	cr_assert_eq(record.result, 0);
	cr_assert_arr_eq(buffer + 1, back, sizeof(back));
	free(buffer);
}

/* The most resident memory this process has had, in bytes. */
static uint64_t peak_resident(void)
{
	struct rusage usage;

	cr_assert_eq(getrusage(RUSAGE_SELF, &usage), 0);
	return (uint64_t)usage.ru_maxrss * 1024;
}

/* Sixteen unaligned writes of 4 MiB and 64 KiB each, all in flight at
 * once, whose buffers all point at the same 64 KiB of memory, as a guest
 * can make them: each moves through chunks, the process grows by no more
 * than the bounce buffers a disk lends (not by the 65 MiB the requests
 * add up to), the requests that find none lent wait rather than fail,
 * and every byte lands, as an unaligned read of one of them shows. */
#define BOUNCE_PIECE (64u << 10)
#define BOUNCE_PIECES 65
#define BOUNCE_REQUESTS 16
ENGINE_TEST(cache_none_bounces_through_a_bounded_number_of_chunks)
{
	static struct iovec iov[BOUNCE_REQUESTS][BOUNCE_PIECES];
	static struct disk_request requests[BOUNCE_REQUESTS];
	const uint64_t request_bytes = (uint64_t)BOUNCE_PIECE * BOUNCE_PIECES;
	uint8_t *piece = malloc(BOUNCE_PIECE + 1), *back;
	struct completion_record record = { 0 };
	struct iovec read_iov;

	cr_assert_not_null(piece);
	for (unsigned int i = 0; i < BOUNCE_PIECE; i++)
		piece[i + 1] = (uint8_t)(i * 7 + i / 251);
	cr_assert_eq(truncate(path, BOUNCE_REQUESTS * request_bytes), 0);
	int ret = open_image(&disk, false, DISK_CACHE_NONE, 0);
	if (ret == -EINVAL)
		cr_skip_test("%s", err);
	cr_assert_eq(ret, 0, "%s", err);

	uint64_t before = peak_resident();
	disk_plug(disk);
	for (unsigned int r = 0; r < BOUNCE_REQUESTS; r++) {
		for (unsigned int i = 0; i < BOUNCE_PIECES; i++)
			iov[r][i] = (struct iovec){ piece + 1, BOUNCE_PIECE };
		requests[r] = (struct disk_request){
			.operation = DISK_WRITE,
			.offset = r * request_bytes,
			.length = request_bytes,
			.iov = iov[r],
			.iov_count = BOUNCE_PIECES,
			.complete = record_completion,
			.opaque = &record,
		};
		cr_assert_eq(disk_submit(disk, &requests[r]), 0);
	}
	disk_unplug(disk);
	wait_for(&record, BOUNCE_REQUESTS);
	cr_assert_eq(record.result, 0);
	uint64_t grown = peak_resident() - before;
	/* A sanitizer's allocator keeps what is freed aside (ASan's
	 * quarantine) or adds its own: the bound holds for vessel's, which
	 * the plain build's run checks. */
	if (!UNDER_SANITIZER)
		cr_assert_lt(grown, (DISK_BOUNCE_BUFFERS + 4) *
					    (uint64_t)DISK_BOUNCE_CHUNK,
			     "grew by %llu KiB", (unsigned long long)(grown >> 10));

	back = malloc(request_bytes + 1);
	cr_assert_not_null(back);
	read_iov = (struct iovec){ back + 1, request_bytes };
	requests[0] = (struct disk_request){
		.operation = DISK_READ,
		.offset = 5 * request_bytes,
		.length = request_bytes,
		.iov = &read_iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};
	cr_assert_eq(disk_submit(disk, &requests[0]), 0);
	wait_for(&record, BOUNCE_REQUESTS + 1);
	cr_assert_eq(record.result, 0);
	for (unsigned int i = 0; i < BOUNCE_PIECES; i++)
		cr_assert_arr_eq(back + 1 + i * BOUNCE_PIECE, piece + 1,
				 BOUNCE_PIECE, "piece %u", i);
	free(back);
	free(piece);
}

/* A read of nothing, and iovecs of length 0 among others, complete like
 * any read. */
ENGINE_TEST(empty_iovecs_complete)
{
	uint8_t data[512], back[512];
	struct iovec iov[] = { { back, 0 }, { back, sizeof(back) },
			       { data, 0 } };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_READ,
		.offset = 512,
		.length = 0,
		.iov = iov,
		.iov_count = 1,
		.complete = record_completion,
		.opaque = &record,
	};

	image_fill(path, IMAGE_SIZE, 0x5a);
	open_writable();
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);

	memset(back, 0, sizeof(back));
	iov[0].iov_len = 0;
	iov[1] = (struct iovec){ back, sizeof(back) };
	iov[2] = (struct iovec){ data, 0 };
	request.length = sizeof(back);
	request.iov_count = 3;
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 2);
	cr_assert_eq(record.result, 0);
	memset(data, 0x5a, sizeof(data));
	cr_assert_arr_eq(back, data, sizeof(back));
}

/* Every request the limit allows is in flight at once, scattered over
 * many buffers, and each completes once with its own data. */
ENGINE_TEST(a_full_queue_of_scattered_reads)
{
	enum { COUNT = 256, PIECES = 8, PIECE = 512 };
	static uint8_t buffers[COUNT][PIECES * PIECE];
	static struct iovec iov[COUNT][PIECES];
	static struct disk_request requests[COUNT];
	static struct completion_record records[COUNT];
	uint8_t expected[PIECES * PIECE];
	int fd;

	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	for (int i = 0; i < COUNT; i++) {
		memset(expected, i, sizeof(expected));
		cr_assert_eq(pwrite(fd, expected, sizeof(expected),
				    (off_t)i * (off_t)sizeof(expected)),
			     (ssize_t)sizeof(expected));
	}
	close(fd);
	cr_assert_eq(open_image(&disk, false, DISK_CACHE_WRITEBACK, COUNT), 0,
		     "%s", err);
	for (int i = 0; i < COUNT; i++) {
		for (int j = 0; j < PIECES; j++)
			iov[i][j] = (struct iovec){ buffers[i] + j * PIECE,
						    PIECE };
		cr_assert_eq(submit_io(DISK_READ, (uint64_t)i * sizeof(expected),
				       iov[i], PIECES, &requests[i], &records[i]),
			     0, "request %d", i);
	}
	cr_assert_eq(disk_submit(disk, &requests[0]), -EAGAIN);
	disk_drain(disk);
	for (int i = 0; i < COUNT; i++) {
		memset(expected, i, sizeof(expected));
		cr_assert_eq(records[i].calls, 1, "request %d", i);
		cr_assert_eq(records[i].result, 0, "request %d", i);
		cr_assert_arr_eq(buffers[i], expected, sizeof(expected),
				 "request %d", i);
	}
}

/* A write-through write completes only with its data on the disk. */
ENGINE_TEST(stable_write_completes)
{
	uint8_t data[4096], back[4096];
	struct iovec iov = { data, sizeof(data) };
	struct completion_record record = { 0 };
	struct disk_request request = {
		.operation = DISK_WRITE,
		.offset = 4096,
		.length = sizeof(data),
		.iov = &iov,
		.iov_count = 1,
		.stable = true,
		.complete = record_completion,
		.opaque = &record,
	};

	open_writable();
	memset(data, 0x42, sizeof(data));
	cr_assert_eq(disk_submit(disk, &request), 0);
	wait_for(&record, 1);
	cr_assert_eq(record.result, 0);
	image_read(path, 4096, back, sizeof(back));
	cr_assert_arr_eq(back, data, sizeof(back));
}

struct chained_reads {
	struct disk_request request;
	struct iovec iov;
	uint8_t data[512];
	unsigned int left; /* reads still to submit from the callback */
	unsigned int calls;
};

static void submit_next(struct disk_request *request, int result)
{
	struct chained_reads *chain = request->opaque;

	cr_assert_eq(result, 0);
	chain->calls++;
	if (chain->left == 0)
		return;
	chain->left--;
	chain->iov = (struct iovec){ chain->data, sizeof(chain->data) };
	cr_assert_eq(disk_submit(disk, request), 0);
}

/* disk_drain also waits for what the callbacks submit. */
ENGINE_TEST(drain_runs_what_callbacks_submit)
{
	static struct chained_reads chain = { .left = 5 };

	open_writable();
	chain.iov = (struct iovec){ chain.data, sizeof(chain.data) };
	chain.request = (struct disk_request){
		.operation = DISK_READ,
		.length = sizeof(chain.data),
		.iov = &chain.iov,
		.iov_count = 1,
		.complete = submit_next,
		.opaque = &chain,
	};
	cr_assert_eq(disk_submit(disk, &chain.request), 0);
	disk_drain(disk);
	cr_assert_eq(chain.calls, 6);
	cr_assert_eq(chain.left, 0);
}

/* A plugged disk holds what it is given until it is unplugged. */
ENGINE_TEST(plugged_requests_start_at_unplug)
{
	uint8_t data[4][512];
	struct iovec iov[4];
	struct disk_request requests[4];
	struct completion_record record = { 0 };
	struct pollfd poll_fd;

	open_writable();
	disk_plug(disk);
	for (int i = 0; i < 4; i++) {
		iov[i] = (struct iovec){ data[i], sizeof(data[i]) };
		cr_assert_eq(submit_io(DISK_READ, (uint64_t)i * 512, &iov[i], 1,
				       &requests[i], &record),
			     0);
	}
	poll_fd = (struct pollfd){ .fd = disk_completion_fd(disk),
				   .events = POLLIN };
	cr_assert_eq(poll(&poll_fd, 1, 100), 0, "a plugged request started");
	disk_unplug(disk);
	wait_for(&record, 4);
	cr_assert_eq(record.result, 0);
}

/* Where io_uring is forbidden, a disk still opens, on worker threads, and
 * the user hears about it once however many disks open. */
Test(disk_pool, says_so_once_on_stderr)
{
	struct disk *second = NULL;

	cr_assert_eq(open_image(&disk, true, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
	cr_assert_eq(open_image(&second, true, DISK_CACHE_WRITEBACK, 0), 0,
		     "%s", err);
	disk_close(second);
	fflush(stderr);
	cr_assert_stderr_eq_str("vessel: io_uring unavailable (Operation not "
				"permitted); disk I/O on worker threads\n");
}

/* Where the host has io_uring, the disk suite runs on it, quietly. */
Test(disk, uses_io_uring_where_the_host_has_it)
{
	/* With no parameters io_uring_setup fails with EFAULT where it
	 * exists; ENOSYS or EPERM mean this host has none to test. */
	if (syscall(__NR_io_uring_setup, 1, NULL) < 0 && errno != EFAULT)
		cr_skip_test("no io_uring here: %s", strerror(errno));
	cr_redirect_stderr();
	open_writable();
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

/* A host block device: a loop device with 4 KiB sectors over the test's
 * image (root only; skipped where loop devices cannot be made). Its size
 * and logical block size come from the device, and data written through
 * it reaches the image. */
Test(disk, host_block_device_reports_its_size_and_sector_size)
{
	char command[256], loop[64] = "";
	FILE *output;

	if (geteuid() != 0)
		cr_skip_test("needs root for a loop device");
	snprintf(command, sizeof(command),
		 "losetup --find --show --sector-size 4096 %s 2>/dev/null", path);
	output = popen(command, "r");
	cr_assert_not_null(output);
	if (!fgets(loop, sizeof(loop), output) || strncmp(loop, "/dev/loop", 9)) {
		pclose(output);
		cr_skip_test("no loop device here");
	}
	pclose(output);
	loop[strcspn(loop, "\n")] = '\0';

	struct disk_options options = { .path = loop, .cache = DISK_CACHE_NONE };
	int opened = disk_open(&disk, &options, err, sizeof(err));
	uint64_t size = opened ? 0 : disk_size(disk);
	uint32_t block_size = opened ? 0 : disk_logical_block_size(disk);
	int written = -1;

	if (!opened) {
		static uint8_t block[4096] __attribute__((aligned(4096)));
		struct iovec iov = { block, sizeof(block) };
		struct completion_record record = { 0 };
		struct disk_request request = {
			.operation = DISK_WRITE, .offset = 8192,
			.length = sizeof(block), .iov = &iov, .iov_count = 1,
			.complete = record_completion, .opaque = &record,
		};

		memset(block, 0x5a, sizeof(block));
		cr_assert_eq(disk_submit(disk, &request), 0);
		wait_for(&record, 1);
		written = record.result;
		disk_close(disk);
		disk = NULL;
	}
	snprintf(command, sizeof(command), "losetup --detach %s", loop);
	cr_assert_eq(system(command), 0);
	cr_assert_eq(opened, 0, "%s", err);
	cr_assert_eq(size, IMAGE_SIZE);
	cr_assert_eq(block_size, 4096);
	cr_assert_eq(written, 0);
	uint8_t in_file[4096], expected[4096];
	memset(expected, 0x5a, sizeof(expected));
	image_read(path, 8192, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, expected, sizeof(expected));
}
