/*
 * virtio-blk (virtio 1.2 §5.2) driven through its ops on a fake guest RAM,
 * with the request queue laid out by hand as a driver would, a recording
 * transport, and a real disk on an image file under /tmp. Completions are
 * run the way the event thread would: poll the watched fd, call its
 * handler.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "fakes.h"

#define RAM_SIZE (4u << 20)
#define QUEUE_SIZE 16
/* Queue q's rings lie RING_STRIDE * q above queue 0's. */
#define DESC_ADDR (0x1000 + RING_STRIDE * current_queue)
#define AVAIL_ADDR (0x2000 + RING_STRIDE * current_queue)
#define USED_ADDR (0x3000 + RING_STRIDE * current_queue)
#define RING_STRIDE 0x4000u
#define MAX_TEST_QUEUES 3
#define HEADER_ADDR 0x10000
#define STATUS_ADDR 0x11000
#define DATA_ADDR 0x100000
#define IMAGE_SIZE (1u << 20)
#define CAPACITY (IMAGE_SIZE / 512)
#define SERIAL "vessel-test-serial"

#define F_NEXT 1
#define F_WRITE 2

static uint8_t *ram;
static struct guest_memory memory;
static char path[] = "/tmp/vessel-test-blk-XXXXXX";
static struct disk *disk;
static struct virtio_blk *blk;
static struct virtio_device *device;
static unsigned int notify_calls, needs_reset_calls;
/* A bit per queue: interrupts raised, and queues to serve again. */
static unsigned int notified_queues, serve_later_queues;
/* The queue the helpers below lay chains out on, kick and wait for. */
static unsigned int current_queue;
static uint16_t next_descs[MAX_TEST_QUEUES], avail_idxs[MAX_TEST_QUEUES];

static struct {
	int fd;
	device_fd_handler handler;
	void *opaque;
} watched = { .fd = -1 };

struct buffer {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

static int fake_watch_fd(void *context_opaque, int fd, uint32_t events,
			 device_fd_handler handler, void *handler_opaque)
{
	(void)context_opaque;
	cr_assert_eq(events, POLLIN);
	cr_assert_eq(watched.fd, -1, "watched twice");
	watched.fd = fd;
	watched.handler = handler;
	watched.opaque = handler_opaque;
	return 0;
}

static int fake_unwatch_fd(void *context_opaque, int fd)
{
	(void)context_opaque;
	cr_assert_eq(fd, watched.fd);
	watched.fd = -1;
	return 0;
}

static void record_notify(struct virtio_device *notified, unsigned int queue)
{
	cr_assert_eq(notified, device);
	cr_assert_lt(queue, device->queue_count);
	notify_calls++;
	notified_queues |= 1u << queue;
}

static void record_needs_reset(struct virtio_device *failed)
{
	cr_assert_eq(failed, device);
	needs_reset_calls++;
}

static void record_serve_later(struct virtio_device *resumed, unsigned int queue)
{
	cr_assert_eq(resumed, device);
	cr_assert_lt(queue, device->queue_count);
	serve_later_queues |= 1u << queue;
}

/* A context whose event thread polls records the device's poller. */
static const struct device_poller *poller;
static void *poller_opaque;

static int fake_add_poller(void *context_opaque,
			   const struct device_poller *added, void *opaque)
{
	(void)context_opaque;
	poller = added;
	poller_opaque = opaque;
	return 0;
}

static int fake_remove_poller(void *context_opaque, void *opaque)
{
	(void)context_opaque;
	cr_assert_eq(opaque, poller_opaque);
	poller = NULL;
	return 0;
}

/* What vmm/ and the transport do: open the image, create the device with
 * queue_count queues (on a context whose event thread polls, if polled),
 * set them up, accept every feature, DRIVER_OK. */
static void attach_queues(bool read_only, unsigned int max_in_flight,
			  unsigned int queue_count, bool polled)
{
	struct disk_options options = {
		.path = path,
		.read_only = read_only,
		.serial = SERIAL,
		.max_in_flight = max_in_flight,
	};
	struct device_context context = {
		.memory = &memory,
		.watch_fd = fake_watch_fd,
		.unwatch_fd = fake_unwatch_fd,
		.add_poller = polled ? fake_add_poller : NULL,
		.remove_poller = polled ? fake_remove_poller : NULL,
	};
	char err[256];

	cr_assert_eq(disk_open(&disk, &options, err, sizeof(err)), 0, "%s",
		     err);
	blk = virtio_blk_create(disk, queue_count, &context);
	cr_assert_not_null(blk);
	cr_assert_eq(watched.fd, disk_completion_fd(disk));
	device = virtio_blk_device(blk);
	device->notify_queue = record_notify;
	device->needs_reset = record_needs_reset;
	device->serve_queue_later = record_serve_later;
	serve_later_queues = 0;
	device->driver_features = device->device_features;

	for (current_queue = 0; current_queue < queue_count; current_queue++) {
		struct virtqueue *queue = &device->queues[current_queue];

		queue->size = QUEUE_SIZE;
		queue->desc_addr = DESC_ADDR;
		queue->avail_addr = AVAIL_ADDR;
		queue->used_addr = USED_ADDR;
		queue->indirect = true;
		queue->ready = true;
		cr_assert_eq(virtqueue_validate(queue), 0);
	}
	current_queue = 0;
	cr_assert_eq(device->ops->activate(device), 0);
}

static void attach(bool read_only, unsigned int max_in_flight)
{
	attach_queues(read_only, max_in_flight, 1, false);
}

static void detach(void)
{
	virtio_blk_destroy(blk);
	cr_assert_eq(watched.fd, -1, "the completion fd is still watched");
	disk_close(disk);
	blk = NULL;
	disk = NULL;
}

static void setup(void)
{
	int fd;

	ram = fake_ram_create(&memory, RAM_SIZE);
	strcpy(path, "/tmp/vessel-test-blk-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, IMAGE_SIZE), 0);
	close(fd);
	memset(next_descs, 0, sizeof(next_descs));
	memset(avail_idxs, 0, sizeof(avail_idxs));
	current_queue = 0;
	notify_calls = needs_reset_calls = notified_queues = 0;
	attach(false, 0);
}

static void teardown(void)
{
	if (blk)
		detach();
	unlink(path);
	free(ram);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

static void set_desc(unsigned int index, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint64_t entry = DESC_ADDR + 16 * index;

	ram_put64(ram, entry, addr);
	ram_put32(ram, entry + 8, len);
	ram_put16(ram, entry + 12, flags);
	ram_put16(ram, entry + 14, next);
}

/* Lays out buffers as one chain and makes it available (§2.7.13). */
static uint16_t add_chain(const struct buffer *buffers, unsigned int count)
{
	uint16_t *next_desc = &next_descs[current_queue];
	uint16_t *avail_idx = &avail_idxs[current_queue];
	uint16_t head = *next_desc;

	for (unsigned int i = 0; i < count; i++) {
		uint16_t index = *next_desc;

		*next_desc = (*next_desc + 1) % QUEUE_SIZE;
		set_desc(index, buffers[i].gpa, buffers[i].len,
			 (buffers[i].writable ? F_WRITE : 0) |
				 (i + 1 < count ? F_NEXT : 0),
			 *next_desc);
	}
	ram_put16(ram, AVAIL_ADDR + 4 + 2 * (*avail_idx % QUEUE_SIZE), head);
	(*avail_idx)++;
	ram_put16(ram, AVAIL_ADDR + 2, *avail_idx);
	return head;
}

static uint16_t used_idx(void)
{
	return ram_get16(ram, USED_ADDR + 2);
}

/* The used ring entry of the n-th chain returned (from 0). */
static uint32_t used_id(uint16_t n)
{
	return ram_get32(ram, USED_ADDR + 4 + 8 * (n % QUEUE_SIZE));
}

static uint32_t used_len(uint16_t n)
{
	return ram_get32(ram, USED_ADDR + 8 + 8 * (n % QUEUE_SIZE));
}

/* Runs disk completions and queue rounds as the event thread would,
 * until the device has returned `expected` chains in all. */
static void wait_used(uint16_t expected)
{
	while (used_idx() != expected) {
		struct pollfd poll_fd = { .fd = watched.fd, .events = POLLIN };

		if (serve_later_queues) {
			unsigned int queue = (unsigned int)__builtin_ctz(
				serve_later_queues);

			serve_later_queues &= ~(1u << queue);
			virtio_serve_queue(device, queue);
			continue;
		}

		cr_assert_eq(poll(&poll_fd, 1, 5000), 1,
			     "no completion within 5 s (used %u of %u)",
			     used_idx(), expected);
		watched.handler(watched.opaque, POLLIN);
	}
}

static void put_header(uint64_t gpa, uint32_t type, uint64_t sector)
{
	ram_put32(ram, gpa, type);
	ram_put32(ram, gpa + 4, 0);
	ram_put64(ram, gpa + 8, sector);
}

/* Submits a chain, kicks, and waits for it: its status byte (0xff
 * when the device did not write one). */
static uint8_t run_chain(const struct buffer *buffers, unsigned int count)
{
	uint16_t head, n = used_idx();

	ram[STATUS_ADDR] = 0xff;
	head = add_chain(buffers, count);
	device->ops->queue_notify(device, current_queue);
	wait_used(n + 1);
	cr_assert_eq(used_id(n), head);
	return ram[STATUS_ADDR];
}

/* header, one data buffer, status. */
static uint8_t run_request(uint32_t type, uint64_t sector, uint32_t len,
			   bool data_writable)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, len, data_writable },
		{ STATUS_ADDR, 1, true },
	};

	put_header(HEADER_ADDR, type, sector);
	if (len == 0) {
		buffers[1] = buffers[2];
		return run_chain(buffers, 2);
	}
	return run_chain(buffers, 3);
}

static uint32_t last_used_len(void)
{
	return used_len((uint16_t)(used_idx() - 1));
}

static bool file_is_filled_with(uint8_t byte)
{
	static uint8_t data[IMAGE_SIZE];

	image_read(path, 0, data, sizeof(data));
	for (size_t i = 0; i < sizeof(data); i++)
		if (data[i] != byte)
			return false;
	return true;
}

static uint32_t config32(uint32_t offset)
{
	uint8_t bytes[4];

	device->ops->read_config(device, offset, bytes, sizeof(bytes));
	return (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
	       (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
}

static bool offers(unsigned int bit)
{
	return device->device_features & (UINT64_C(1) << bit);
}

Test(virtio_blk, identifies_as_a_block_device)
{
	cr_assert_eq(device->device_id, VIRTIO_ID_BLOCK);
	cr_assert_eq(device->queue_count, 1);
	cr_assert_eq(device->config_size, VIRTIO_BLK_CONFIG_SIZE);
	cr_assert(offers(VIRTIO_F_VERSION_1));
	cr_assert(offers(VIRTIO_F_INDIRECT_DESC));
	cr_assert(offers(VIRTIO_F_EVENT_IDX));
	cr_assert(offers(VIRTIO_BLK_F_SEG_MAX));
	cr_assert(offers(VIRTIO_BLK_F_BLK_SIZE));
	cr_assert(offers(VIRTIO_BLK_F_FLUSH));
	cr_assert(offers(VIRTIO_BLK_F_DISCARD));
	cr_assert(offers(VIRTIO_BLK_F_WRITE_ZEROES));
	cr_assert_not(offers(VIRTIO_BLK_F_RO));
}

Test(virtio_blk, config_space_describes_the_disk)
{
	uint8_t capacity[8], may_unmap;
	uint64_t sectors = 0;

	device->ops->read_config(device, VIRTIO_BLK_CONFIG_CAPACITY, capacity,
				 sizeof(capacity));
	for (int i = 7; i >= 0; i--)
		sectors = sectors << 8 | capacity[i];
	cr_assert_eq(sectors, CAPACITY);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_SEG_MAX), 126);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_BLK_SIZE), 512);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS), 1u << 22);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG), 1);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT),
		     disk_discard_granularity(disk) / 512);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS),
		     1u << 22);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG), 1);
	device->ops->read_config(device,
				 VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP,
				 &may_unmap, 1);
	cr_assert_eq(may_unmap, 1);
}

Test(virtio_blk, write_then_read_round_trip)
{
	uint8_t in_file[1024];

	for (int i = 0; i < 1024; i++)
		ram[DATA_ADDR + i] = (uint8_t)(i * 7);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 3, 1024, false),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(last_used_len(), 1);
	cr_assert_gt(notify_calls, 0);
	image_read(path, 3 * 512, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, ram + DATA_ADDR, sizeof(in_file));

	memset(ram + DATA_ADDR, 0, 1024);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, 3, 1024, true),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(last_used_len(), 1024 + 1);
	cr_assert_arr_eq(ram + DATA_ADDR, in_file, sizeof(in_file));
}

Test(virtio_blk, header_split_across_buffers)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 5, false },
		{ HEADER_ADDR + 0x100, 11, false },
		{ DATA_ADDR, 512, false },
		{ STATUS_ADDR, 1, true },
	};
	uint8_t header[16], in_file[512];

	put_header(0, VIRTIO_BLK_T_OUT, 7);
	memcpy(header, ram, sizeof(header));
	memset(ram, 0, sizeof(header));
	memcpy(ram + HEADER_ADDR, header, 5);
	memcpy(ram + HEADER_ADDR + 0x100, header + 5, 11);
	memset(ram + DATA_ADDR, 0x5c, 512);
	cr_assert_eq(run_chain(buffers, 4), VIRTIO_BLK_S_OK);
	image_read(path, 7 * 512, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, ram + DATA_ADDR, sizeof(in_file));
}

Test(virtio_blk, data_and_status_in_one_writable_buffer)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 512 + 1, true },
	};

	image_fill(path, IMAGE_SIZE, 0x3c);
	put_header(HEADER_ADDR, VIRTIO_BLK_T_IN, 1);
	ram[DATA_ADDR + 512] = 0xff;
	add_chain(buffers, 2);
	device->ops->queue_notify(device, 0);
	wait_used(1);
	cr_assert_eq(ram[DATA_ADDR + 512], VIRTIO_BLK_S_OK);
	cr_assert_eq(ram[DATA_ADDR], 0x3c);
	cr_assert_eq(ram[DATA_ADDR + 511], 0x3c);
	cr_assert_eq(used_len(0), 513);
}

Test(virtio_blk, flush)
{
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 0, 512, false),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(run_request(VIRTIO_BLK_T_FLUSH, 0, 0, false),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(last_used_len(), 1);
}

Test(virtio_blk, get_id_returns_the_serial)
{
	uint8_t expected[VIRTIO_BLK_ID_BYTES] = SERIAL;

	memset(ram + DATA_ADDR, 0xff, VIRTIO_BLK_ID_BYTES);
	cr_assert_eq(run_request(VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES,
				 true),
		     VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(ram + DATA_ADDR, expected, sizeof(expected));
	cr_assert_eq(last_used_len(), VIRTIO_BLK_ID_BYTES + 1);
}

Test(virtio_blk, discard_punches_a_hole)
{
	blkcnt_t before;

	image_fill(path, IMAGE_SIZE, 0xaa);
	before = image_blocks(path);
	put_header(HEADER_ADDR, VIRTIO_BLK_T_DISCARD, 0);
	ram_put64(ram, DATA_ADDR, 0);
	ram_put32(ram, DATA_ADDR + 8, CAPACITY / 2);
	ram_put32(ram, DATA_ADDR + 12, 0);
	cr_assert_eq(run_request(VIRTIO_BLK_T_DISCARD, 0, 16, false),
		     VIRTIO_BLK_S_OK);
	cr_assert_lt(image_blocks(path), before);
}

Test(virtio_blk, discard_with_unmap_is_unsupported)
{
	image_fill(path, IMAGE_SIZE, 0xaa);
	ram_put64(ram, DATA_ADDR, 0);
	ram_put32(ram, DATA_ADDR + 8, CAPACITY);
	ram_put32(ram, DATA_ADDR + 12, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	cr_assert_eq(run_request(VIRTIO_BLK_T_DISCARD, 0, 16, false),
		     VIRTIO_BLK_S_UNSUPP);
	cr_assert(file_is_filled_with(0xaa));
}

Test(virtio_blk, write_zeroes)
{
	uint8_t in_file[3 * 512];

	image_fill(path, IMAGE_SIZE, 0xaa);
	ram_put64(ram, DATA_ADDR, 4);
	ram_put32(ram, DATA_ADDR + 8, 2);
	ram_put32(ram, DATA_ADDR + 12, 0);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
		     VIRTIO_BLK_S_OK);
	image_read(path, 3 * 512, in_file, sizeof(in_file));
	for (size_t i = 0; i < sizeof(in_file); i++)
		cr_assert_eq(in_file[i], i < 512 ? 0xaa : 0, "byte %zu", i);
	image_read(path, 6 * 512, in_file, 1);
	cr_assert_eq(in_file[0], 0xaa);
}

Test(virtio_blk, write_zeroes_with_unmap_frees_blocks)
{
	blkcnt_t before;
	uint8_t in_file[512], zeros[512] = { 0 };

	image_fill(path, IMAGE_SIZE, 0xaa);
	before = image_blocks(path);
	ram_put64(ram, DATA_ADDR, CAPACITY / 2);
	ram_put32(ram, DATA_ADDR + 8, CAPACITY / 2);
	ram_put32(ram, DATA_ADDR + 12, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
		     VIRTIO_BLK_S_OK);
	cr_assert_lt(image_blocks(path), before);
	image_read(path, IMAGE_SIZE - 512, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, zeros, sizeof(zeros));
}

Test(virtio_blk, range_requests_are_checked)
{
	image_fill(path, IMAGE_SIZE, 0xaa);
	/* An unknown flag. */
	ram_put64(ram, DATA_ADDR, 0);
	ram_put32(ram, DATA_ADDR + 8, 8);
	ram_put32(ram, DATA_ADDR + 12, 2);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
		     VIRTIO_BLK_S_UNSUPP);
	/* Past the end of the disk, and wrapping around. */
	ram_put32(ram, DATA_ADDR + 12, 0);
	ram_put64(ram, DATA_ADDR, CAPACITY - 4);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 16, false),
		     VIRTIO_BLK_S_IOERR);
	ram_put64(ram, DATA_ADDR, UINT64_MAX - 2);
	cr_assert_eq(run_request(VIRTIO_BLK_T_DISCARD, 0, 16, false),
		     VIRTIO_BLK_S_IOERR);
	/* More segments than max_write_zeroes_seg, and a partial one. */
	ram_put64(ram, DATA_ADDR, 0);
	ram_put64(ram, DATA_ADDR + 16, 8);
	ram_put32(ram, DATA_ADDR + 24, 8);
	ram_put32(ram, DATA_ADDR + 28, 0);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 32, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run_request(VIRTIO_BLK_T_WRITE_ZEROES, 0, 12, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert(file_is_filled_with(0xaa));
}

Test(virtio_blk, read_past_capacity_is_an_error)
{
	memset(ram + DATA_ADDR, 0x5a, 1024);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, CAPACITY, 512, true),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, CAPACITY - 1, 1024, true),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, UINT64_MAX, 512, true),
		     VIRTIO_BLK_S_IOERR);
	/* sector * 512 wraps around to byte 0. */
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, UINT64_C(1) << 55, 512, true),
		     VIRTIO_BLK_S_IOERR);
	for (int i = 0; i < 1024; i++)
		cr_assert_eq(ram[DATA_ADDR + i], 0x5a);
}

Test(virtio_blk, write_past_capacity_is_an_error)
{
	struct stat st;

	image_fill(path, IMAGE_SIZE, 0xaa);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, CAPACITY - 1, 1024, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, IMAGE_SIZE);
	cr_assert(file_is_filled_with(0xaa));
}

Test(virtio_blk, read_only_disk_refuses_writes)
{
	image_fill(path, IMAGE_SIZE, 0xaa);
	detach();
	attach(true, 0);
	cr_assert(offers(VIRTIO_BLK_F_RO));
	cr_assert_not(offers(VIRTIO_BLK_F_DISCARD));
	cr_assert_not(offers(VIRTIO_BLK_F_WRITE_ZEROES));
	memset(ram + DATA_ADDR, 0, 512);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 0, 512, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert(file_is_filled_with(0xaa));
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, 0, 512, true),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(ram[DATA_ADDR], 0xaa);
}

Test(virtio_blk, header_too_short)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 8, false },
		{ STATUS_ADDR, 1, true },
	};

	put_header(HEADER_ADDR, VIRTIO_BLK_T_FLUSH, 0);
	cr_assert_eq(run_chain(buffers, 2), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(used_len(0), 1);
}

Test(virtio_blk, no_status_byte)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 512, false },
	};

	image_fill(path, IMAGE_SIZE, 0xaa);
	put_header(HEADER_ADDR, VIRTIO_BLK_T_OUT, 0);
	memset(ram + DATA_ADDR, 0, 512);
	cr_assert_eq(run_chain(buffers, 2), 0xff);
	cr_assert_eq(used_len(0), 0);
	cr_assert(file_is_filled_with(0xaa));
}

Test(virtio_blk, data_in_the_wrong_direction)
{
	image_fill(path, IMAGE_SIZE, 0xaa);
	memset(ram + DATA_ADDR, 0, 512);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 0, 512, true),
		     VIRTIO_BLK_S_IOERR);
	cr_assert(file_is_filled_with(0xaa));
	memset(ram + DATA_ADDR, 0x5a, 512);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, 0, 512, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(ram[DATA_ADDR], 0x5a);
}

Test(virtio_blk, length_not_a_whole_sector)
{
	image_fill(path, IMAGE_SIZE, 0xaa);
	memset(ram + DATA_ADDR, 0, 1000);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 0, 1000, false),
		     VIRTIO_BLK_S_IOERR);
	cr_assert(file_is_filled_with(0xaa));
}

Test(virtio_blk, unknown_type_is_unsupported)
{
	cr_assert_eq(run_request(2, 0, 0, false), VIRTIO_BLK_S_UNSUPP);
	cr_assert_eq(run_request(0x12345, 0, 512, true), VIRTIO_BLK_S_UNSUPP);
	cr_assert_eq(used_len(1), 1);
}

Test(virtio_blk, malformed_chain_leaves_the_queue_usable)
{
	struct buffer outside[] = {
		{ RAM_SIZE - 8, 16, false },
		{ STATUS_ADDR, 1, true },
	};

	add_chain(outside, 2);
	device->ops->queue_notify(device, 0);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(used_len(0), 0);
	cr_assert_gt(notify_calls, 0);
	cr_assert_eq(run_request(VIRTIO_BLK_T_FLUSH, 0, 0, false),
		     VIRTIO_BLK_S_OK);
}

/* An available index more than a queue ahead is no chain the device can
 * return: the device asks for a reset instead of spinning on the ring. */
Test(virtio_blk, broken_available_index_asks_for_a_reset, .timeout = 10)
{
	ram_put16(ram, AVAIL_ADDR + 2, QUEUE_SIZE + 5);
	device->ops->queue_notify(device, 0);
	cr_assert_eq(needs_reset_calls, 1);
	cr_assert_eq(used_idx(), 0, "nothing was consumed");
}

/* More requests than the disk takes at once: the device stops taking
 * them and resumes as they complete. */
Test(virtio_blk, requests_beyond_the_in_flight_limit_wait)
{
	struct buffer buffers[3] = {
		{ 0, 16, false }, { 0, 512, false }, { 0, 1, true }
	};
	uint8_t in_file[512];

	detach();
	attach(false, 2);
	/* Five chains of three descriptors fill the queue of 16. */
	for (int i = 0; i < 5; i++) {
		buffers[0].gpa = HEADER_ADDR + 16 * i;
		buffers[1].gpa = DATA_ADDR + 512 * i;
		buffers[2].gpa = STATUS_ADDR + i;
		put_header(buffers[0].gpa, VIRTIO_BLK_T_OUT, 10 + i);
		memset(ram + buffers[1].gpa, 0x10 + i, 512);
		ram[buffers[2].gpa] = 0xff;
		add_chain(buffers, 3);
	}
	device->ops->queue_notify(device, 0);
	wait_used(5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(ram[STATUS_ADDR + i], VIRTIO_BLK_S_OK);
		image_read(path, (10 + i) * 512, in_file, sizeof(in_file));
		cr_assert_arr_eq(in_file, ram + DATA_ADDR + 512 * i, 512);
	}
	cr_assert_eq(needs_reset_calls, 0);
}

/* reset returns once the disk is done with the request, and its
 * completion no longer reaches the rings the driver took back. The
 * test's own plug holds the request at the disk through the kick (which
 * reaps what completed at once), so that it is still in flight at the
 * reset, whose drain starts it. */
Test(virtio_blk, reset_waits_for_requests_in_flight)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 65536, false },
		{ STATUS_ADDR, 1, true },
	};
	uint8_t in_file[65536];

	put_header(HEADER_ADDR, VIRTIO_BLK_T_OUT, 0);
	memset(ram + DATA_ADDR, 0x77, 65536);
	ram[STATUS_ADDR] = 0xff;
	add_chain(buffers, 3);
	disk_plug(disk);
	device->ops->queue_notify(device, 0);
	device->ops->reset(device);
	disk_unplug(disk);
	image_read(path, 0, in_file, sizeof(in_file));
	cr_assert_arr_eq(in_file, ram + DATA_ADDR, sizeof(in_file));
	cr_assert_eq(used_idx(), 0);
	cr_assert_eq(ram[STATUS_ADDR], 0xff);
	cr_assert_eq(notify_calls, 0);
}

Test(virtio_blk, a_second_writable_open_is_refused)
{
	struct disk_options options = { .path = path };
	struct disk *second = NULL;
	char err[256], expected[300];

	snprintf(expected, sizeof(expected), "%s is in use by another process",
		 path);
	cr_assert_eq(disk_open(&second, &options, err, sizeof(err)), -EBUSY);
	cr_assert_str_eq(err, expected);
	cr_assert_null(second);
}

/* A pause: quiesce returns once the request in flight has completed, its
 * chain is in the used ring and the driver was told; requests the driver
 * adds meanwhile wait in the ring until the transport serves the queue
 * again. */
Test(virtio_blk, quiesce_drains_and_resume_serves_what_waited)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 65536, false },
		{ STATUS_ADDR, 1, true },
	};

	put_header(HEADER_ADDR, VIRTIO_BLK_T_OUT, 0);
	memset(ram + DATA_ADDR, 0x55, 65536);
	ram[STATUS_ADDR] = 0xff;
	add_chain(buffers, 3);
	device->ops->queue_notify(device, 0);
	cr_assert_eq(device->ops->quiesce(device), 0);
	cr_assert_eq(used_idx(), 1, "the request in flight completed");
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
	cr_assert_geq(notify_calls, 1, "and its interrupt went out");

	/* The transport holds kicks back while paused: the device is not
	 * asked, and a completion takes nothing from the ring. */
	put_header(HEADER_ADDR, VIRTIO_BLK_T_IN, 0);
	ram[STATUS_ADDR] = 0xff;
	buffers[1].writable = true;
	add_chain(buffers, 3);
	cr_assert_eq(used_idx(), 1);
	device->ops->resume(device);
	cr_assert_eq(used_idx(), 1, "the transport serves what waited");
	device->ops->queue_notify(device, 0);
	wait_used(2);
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
}

Test(virtio_blk, counters_count_requests_and_bytes)
{
	struct device_counter counters[DEVICE_MAX_COUNTERS];

	memset(ram + DATA_ADDR, 0x12, 4096);
	cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, 0, 4096, false), VIRTIO_BLK_S_OK);
	cr_assert_eq(run_request(VIRTIO_BLK_T_IN, 0, 1024, true), VIRTIO_BLK_S_OK);
	unsigned int count = device->ops->counters(device, counters,
						   DEVICE_MAX_COUNTERS);
	cr_assert_eq(count, 5);
	cr_assert_str_eq(counters[0].name, "requests");
	cr_assert_eq(counters[0].value, 2);
	cr_assert_str_eq(counters[1].name, "read_bytes");
	cr_assert_eq(counters[1].value, 1024);
	cr_assert_str_eq(counters[2].name, "written_bytes");
	cr_assert_eq(counters[2].value, 4096);
	cr_assert_eq(counters[3].value, 0, "no errors");
	cr_assert_str_eq(counters[4].name, "in_flight");
	cr_assert_eq(counters[4].value, 0, "both requests completed");
}

/*
 * The fastest driver there can be: the used ring lies on the available
 * ring, and the device's used index starts one ahead of its available
 * one, so every request the device gives back is, when it looks again, a
 * new request made available. A GET_ID request's used element (id 0, len
 * 21) lands on four available entries as the heads 0, 0, 21 and 0; head
 * 21, outside the queue, is a malformed chain, whose element puts 21
 * back. The device gets GET_ID requests and malformed chains, mixed.
 */
Test(virtio_blk, a_driver_that_refills_at_once_gets_a_budget_a_round,
     .timeout = 10)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, VIRTIO_BLK_ID_BYTES, true },
		{ STATUS_ADDR, 1, true },
	};
	struct virtqueue *queue = &device->queues[0];

	put_header(HEADER_ADDR, VIRTIO_BLK_T_GET_ID, 0);
	add_chain(buffers, 3);
	queue->used_addr = AVAIL_ADDR;
	queue->used_idx = 1;
	for (unsigned int round = 1; round <= 3; round++) {
		cr_assert(virtio_serve_queue(device, 0),
			  "round %u leaves requests for the next", round);
		cr_assert_eq(queue->last_avail_idx, round * VIRTIO_QUEUE_BUDGET);
	}
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
	cr_assert_eq(needs_reset_calls, 0);
}

/* --- several request queues (VIRTIO_BLK_F_MQ, §5.2.5) ------------------- */

static uint16_t config16(uint32_t offset)
{
	uint8_t bytes[2];

	device->ops->read_config(device, offset, bytes, sizeof(bytes));
	return (uint16_t)(bytes[0] | bytes[1] << 8);
}

Test(virtio_blk, one_queue_offers_no_mq)
{
	cr_assert_eq(device->queue_count, 1);
	cr_assert_not(offers(VIRTIO_BLK_F_MQ));
}

Test(virtio_blk, several_queues_offer_mq_and_num_queues)
{
	detach();
	attach_queues(false, 0, 3, false);
	cr_assert_eq(device->queue_count, 3);
	cr_assert(offers(VIRTIO_BLK_F_MQ));
	cr_assert_eq(config16(VIRTIO_BLK_CONFIG_NUM_QUEUES), 3);
	/* The fields around it are as before. */
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_BLK_SIZE), 512);
	cr_assert_eq(config32(VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS),
		     UINT32_C(1) << 22);
}

Test(virtio_blk, a_queue_count_out_of_range_is_refused)
{
	struct device_context context = {
		.memory = &memory,
		.watch_fd = fake_watch_fd,
		.unwatch_fd = fake_unwatch_fd,
	};

	errno = 0;
	cr_assert_null(virtio_blk_create(disk, 0, &context));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(virtio_blk_create(disk, VIRTIO_MAX_QUEUES + 1, &context));
	cr_assert_eq(errno, EINVAL);
}

/* Each queue's requests come back in its own used ring, with its own
 * interrupt: Linux completes a request on the vCPU whose queue it is. */
Test(virtio_blk, a_request_completes_on_the_queue_it_came_from)
{
	uint8_t in_file[512];

	detach();
	attach_queues(false, 0, 3, false);
	for (current_queue = 0; current_queue < 3; current_queue++) {
		memset(ram + DATA_ADDR, 0x30 + (int)current_queue, 512);
		notified_queues = 0;
		cr_assert_eq(run_request(VIRTIO_BLK_T_OUT, current_queue, 512,
					 false),
			     VIRTIO_BLK_S_OK);
		cr_assert_eq(notified_queues, 1u << current_queue);
		cr_assert_eq(used_idx(), 1, "queue %u's used ring",
			     current_queue);
	}
	for (unsigned int queue = 0; queue < 3; queue++) {
		image_read(path, queue * 512, in_file, sizeof(in_file));
		cr_assert_eq(in_file[0], 0x30 + queue);
	}
}

/* Without MQ the driver has one queue (§5.2.2): kicks on the others
 * take nothing. */
Test(virtio_blk, without_mq_only_the_first_queue_is_served)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ STATUS_ADDR, 1, true },
	};

	detach();
	attach_queues(false, 0, 2, false);
	device->driver_features &= ~(UINT64_C(1) << VIRTIO_BLK_F_MQ);
	current_queue = 1;
	put_header(HEADER_ADDR, VIRTIO_BLK_T_FLUSH, 0);
	add_chain(buffers, 2);
	virtio_serve_queue(device, 1);
	cr_assert_eq(device->queues[1].last_avail_idx, 0);
	cr_assert_eq(used_idx(), 0);
	cr_assert_eq(notify_calls, 0);
}

/* The in-flight limit is the disk's: a queue that stalled on it because
 * another queue's requests filled it is served again on a completion. */
Test(virtio_blk, a_queue_stalled_by_another_resumes_on_a_completion)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 65536, false },
		{ STATUS_ADDR, 1, true },
	};

	detach();
	attach_queues(false, 1, 2, false);
	put_header(HEADER_ADDR, VIRTIO_BLK_T_OUT, 0);
	add_chain(buffers, 3);
	/* Held at the disk, the first request is still in flight at the
	 * second kick, however fast the image completes it. */
	disk_plug(disk);
	device->ops->queue_notify(device, 0);
	current_queue = 1;
	buffers[1].gpa = DATA_ADDR + 65536;
	buffers[2].gpa = STATUS_ADDR + 1;
	add_chain(buffers, 3);
	device->ops->queue_notify(device, 1);
	cr_assert_eq(device->queues[1].last_avail_idx, 0,
		     "queue 1 waits for the disk");
	disk_unplug(disk);
	wait_used(1);
	cr_assert_eq(ram[STATUS_ADDR + 1], VIRTIO_BLK_S_OK);
	cr_assert(notified_queues & 2u);
	current_queue = 0;
	wait_used(1);
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
}

/* The device again, on a context whose event thread polls. */
static void attach_polled(void)
{
	detach();
	attach_queues(false, 0, 1, true);
	cr_assert_not_null(poller);
}

/* VIRTQ_USED_F_NO_NOTIFY (§2.7.10): the driver need not kick. */
static bool kicks_off(void)
{
	return ram_get16(ram, USED_ADDR) & 1;
}

static void add_flush(void)
{
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ STATUS_ADDR, 1, true },
	};

	put_header(HEADER_ADDR, VIRTIO_BLK_T_FLUSH, 0);
	ram[STATUS_ADDR] = 0xff;
	add_chain(buffers, 2);
}

/* Chains taken while the event thread polls leave kicks off; arm turns
 * them on before it sleeps. */
Test(virtio_blk, a_polled_queue_leaves_kicks_off_until_armed)
{
	attach_polled();
	add_flush();
	virtio_serve_queue(device, 0);
	cr_assert(kicks_off());
	wait_used(1);
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
	cr_assert_not(poller->arm(poller_opaque), "nothing came meanwhile");
	cr_assert_not(kicks_off());
}

/* A chain the driver made available without a kick: the poll sends it the
 * way of a kick, and so does arm's last look. */
Test(virtio_blk, a_poll_finds_a_chain_made_available_without_a_kick)
{
	attach_polled();
	cr_assert_not(poller->poll(poller_opaque));
	add_flush();
	cr_assert(poller->poll(poller_opaque));
	cr_assert_eq(serve_later_queues, 1u);
	serve_later_queues = 0;
	cr_assert(poller->arm(poller_opaque));
	cr_assert_eq(serve_later_queues, 1u);
	wait_used(1);
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
}

/* Completions are reaped by the poll, without the disk's descriptor. */
Test(virtio_blk, a_poll_reaps_completions)
{
	attach_polled();
	memset(ram + DATA_ADDR, 0x42, 4096);
	put_header(HEADER_ADDR, VIRTIO_BLK_T_OUT, 0);
	struct buffer buffers[] = {
		{ HEADER_ADDR, 16, false },
		{ DATA_ADDR, 4096, false },
		{ STATUS_ADDR, 1, true },
	};
	add_chain(buffers, 3);
	device->ops->queue_notify(device, 0);
	for (int i = 0; i < 5000 && used_idx() == 0; i++) {
		if (!poller->poll(poller_opaque))
			usleep(1000);
	}
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(ram[STATUS_ADDR], VIRTIO_BLK_S_OK);
	cr_assert_gt(notify_calls, 0);
}

/* While paused the rings are not looked at, and they are left with kicks
 * on, as a snapshot should find them. */
Test(virtio_blk, a_quiesced_device_is_not_polled)
{
	attach_polled();
	add_flush();
	virtio_serve_queue(device, 0);
	cr_assert(kicks_off());
	cr_assert_eq(device->ops->quiesce(device), 0);
	cr_assert_not(kicks_off());
	add_flush();
	cr_assert_not(poller->poll(poller_opaque));
	cr_assert_not(poller->arm(poller_opaque));
	cr_assert_eq(serve_later_queues, 0);
	device->ops->resume(device);
	cr_assert(poller->poll(poller_opaque));
}

/* A driver that broke its available index keeps no event thread spinning:
 * the queue is polled no more until a reset. */
Test(virtio_blk, a_broken_ring_is_not_polled, .timeout = 10)
{
	attach_polled();
	ram_put16(ram, AVAIL_ADDR + 2, QUEUE_SIZE + 5);
	cr_assert(poller->poll(poller_opaque), "the index moved");
	virtio_serve_queue(device, 0);
	cr_assert_eq(needs_reset_calls, 1);
	serve_later_queues = 0;
	cr_assert_not(poller->poll(poller_opaque));
	cr_assert_not(poller->arm(poller_opaque));
	cr_assert_eq(serve_later_queues, 0);
}

/* Without MQ the driver has one queue: the others are not looked at. */
Test(virtio_blk, a_poll_looks_only_at_the_queues_in_use)
{
	detach();
	attach_queues(false, 0, 2, true);
	device->driver_features &= ~(UINT64_C(1) << VIRTIO_BLK_F_MQ);
	current_queue = 1;
	add_flush();
	cr_assert_not(poller->poll(poller_opaque));
	device->driver_features |= UINT64_C(1) << VIRTIO_BLK_F_MQ;
	cr_assert(poller->poll(poller_opaque));
	cr_assert_eq(serve_later_queues, 2u);
}
