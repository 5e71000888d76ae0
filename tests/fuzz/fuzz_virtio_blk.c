/*
 * virtio-blk requests (devices/virtio/blk.c) on real image files in a
 * temporary directory, one writable and one read-only: any request a
 * driver can make (headers of any type, sector and size, segments of any
 * layout, discard and write-zeroes ranges, GET_ID) in rings it writes
 * anything into, with completions run by the event thread as they come.
 * Each input starts with a freshly negotiated device and ends with the
 * driver's reset, which waits for the requests in flight.
 *
 * Input: a byte picking the disk, the features and queue set-up
 * (fuzz_transport_start), then operations, a byte each: 0 or 1 mod 4, a
 * driver operation (fuzz_driver_operate); 2, a kick; 3, an event-loop
 * turn, every request in flight completed (disk_drain, which runs their
 * completions as the event thread would), or a read of the configuration
 * space.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/virtio/blk.h"
#include "fuzz_driver.h"

#define IMAGE_SIZE (1u << 20)
#define DISK_COUNT 2

static char directory[] = "/tmp/vessel-fuzz-blk-XXXXXX";
static char paths[DISK_COUNT][PATH_MAX];
static struct disk *disks[DISK_COUNT];
static struct virtio_blk *devices[DISK_COUNT];
static struct fuzz_driver driver;

static void remove_images(void)
{
	for (unsigned int i = 0; i < DISK_COUNT; i++) {
		virtio_blk_destroy(devices[i]);
		disk_close(disks[i]);
		unlink(paths[i]);
	}
	rmdir(directory);
}

static void create_disk(unsigned int i, bool read_only)
{
	struct device_context context = fuzz_event_context(&driver.memory);
	struct disk_options options = {
		.path = paths[i],
		.read_only = read_only,
		.serial = "fuzz",
	};
	char err[256];
	FILE *image;

	snprintf(paths[i], sizeof(paths[i]), "%s/disk%u.img", directory, i);
	image = fopen(paths[i], "w");
	if (!image || ftruncate(fileno(image), IMAGE_SIZE) || fclose(image))
		abort();
	if (disk_open(&disks[i], &options, err, sizeof(err))) {
		fprintf(stderr, "fuzz_virtio_blk: %s\n", err);
		abort();
	}
	devices[i] = virtio_blk_create(disks[i], 1, &context);
	if (!devices[i])
		abort();
	fuzz_transport_attach(virtio_blk_device(devices[i]));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_driver_init(&driver);
	if (!mkdtemp(directory))
		abort();
	create_disk(0, false);
	create_disk(1, true);
	atexit(remove_images);
	return 0;
}

static void read_config(struct virtio_device *device, struct fuzz_input *input)
{
	uint8_t data[8];
	uint32_t size = 1u << (fuzz_take_u8(input) % 4);
	uint32_t offset = fuzz_take_u8(input) % device->config_size;

	if (offset + size <= device->config_size)
		device->ops->read_config(device, offset, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	unsigned int disk = fuzz_take_u8(&input) % DISK_COUNT;
	struct virtio_device *device = virtio_blk_device(devices[disk]);

	fuzz_driver_clear(&driver);
	if (fuzz_transport_start(device, &driver, &input) == 0) {
		while (!fuzz_input_empty(&input)) {
			uint8_t op = fuzz_take_u8(&input);

			switch (op % 4) {
			case 2:
				device->ops->queue_notify(device, 0);
				fuzz_transport_serve_later(device);
				break;
			case 3:
				if (op & 0x40)
					read_config(device, &input);
				else if (op & 0x80)
					disk_drain(disks[disk]);
				else
					fuzz_events_run(false);
				break;
			default:
				fuzz_driver_operate(&driver, &device->queues[0],
						    op >> 2, &input);
				break;
			}
		}
	}
	device->ops->reset(device);
	return 0;
}
