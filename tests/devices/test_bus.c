#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "devices/bus.h"

/* A device that answers every read with its tag and records the last
 * access it saw. */
struct recording_device {
	uint8_t tag;
	uint64_t last_offset;
	uint32_t last_size;
	uint8_t last_written;
	unsigned int accesses;
};

static void recording_read(void *opaque, uint64_t offset, uint8_t *data,
			   uint32_t size)
{
	struct recording_device *device = opaque;

	device->last_offset = offset;
	device->last_size = size;
	device->accesses++;
	memset(data, device->tag, size);
}

static void recording_write(void *opaque, uint64_t offset, const uint8_t *data,
			    uint32_t size)
{
	struct recording_device *device = opaque;

	device->last_offset = offset;
	device->last_size = size;
	device->last_written = data[0];
	device->accesses++;
}

static const struct bus_device_ops recording_ops = {
	.read = recording_read,
	.write = recording_write,
};

static struct bus *bus;

static void setup(void)
{
	bus = bus_create("test");
	cr_assert_not_null(bus);
}

static void teardown(void)
{
	bus_destroy(bus);
}

TestSuite(bus, .init = setup, .fini = teardown);

Test(bus, dispatches_with_offset_from_base)
{
	struct recording_device device = { .tag = 0x5a };
	uint8_t data[4] = { 0 };

	cr_assert_eq(bus_register(bus, 0x3f8, 8, &recording_ops, &device, "d"),
		     0);
	cr_assert(bus_read(bus, 0x3fa, data, 2));
	cr_assert_eq(device.last_offset, 2);
	cr_assert_eq(device.last_size, 2);
	cr_assert_eq(data[0], 0x5a);
	cr_assert_eq(data[1], 0x5a);
	cr_assert_eq(data[2], 0);

	uint8_t value = 0x42;

	cr_assert(bus_write(bus, 0x3ff, &value, 1));
	cr_assert_eq(device.last_offset, 7);
	cr_assert_eq(device.last_written, 0x42);
}

Test(bus, refuses_overlaps_but_accepts_neighbours)
{
	struct recording_device device = { 0 };

	cr_assert_eq(bus_register(bus, 0x100, 0x10, &recording_ops, &device,
				  "a"),
		     0);
	/* Same range, straddling the start, the end, inside, around it. */
	cr_assert_eq(bus_register(bus, 0x100, 0x10, &recording_ops, &device,
				  "b"),
		     -EEXIST);
	cr_assert_eq(bus_register(bus, 0xf8, 0x10, &recording_ops, &device,
				  "b"),
		     -EEXIST);
	cr_assert_eq(bus_register(bus, 0x10f, 0x4, &recording_ops, &device,
				  "b"),
		     -EEXIST);
	cr_assert_eq(bus_register(bus, 0x104, 0x2, &recording_ops, &device,
				  "b"),
		     -EEXIST);
	cr_assert_eq(bus_register(bus, 0x0, 0x1000, &recording_ops, &device,
				  "b"),
		     -EEXIST);
	/* Adjacent on both sides is fine. */
	cr_assert_eq(bus_register(bus, 0xf0, 0x10, &recording_ops, &device,
				  "b"),
		     0);
	cr_assert_eq(bus_register(bus, 0x110, 0x10, &recording_ops, &device,
				  "c"),
		     0);
}

Test(bus, refuses_empty_and_wrapping_ranges)
{
	struct recording_device device = { 0 };

	cr_assert_eq(bus_register(bus, 0x100, 0, &recording_ops, &device, "a"),
		     -EINVAL);
	cr_assert_eq(bus_register(bus, UINT64_MAX - 3, 8, &recording_ops,
				  &device, "a"),
		     -EINVAL);
	/* Ending exactly at the top of the address space does not wrap. */
	cr_assert_eq(bus_register(bus, UINT64_MAX - 7, 8, &recording_ops,
				  &device, "a"),
		     0);
	uint8_t data[8];

	cr_assert(bus_read(bus, UINT64_MAX - 7, data, 8));
	cr_assert_not(bus_read(bus, UINT64_MAX, data, 2));
}

Test(bus, routes_only_accesses_wholly_inside_one_range)
{
	struct recording_device left = { .tag = 1 };
	struct recording_device right = { .tag = 2 };
	uint8_t data[4] = { 0xee, 0xee, 0xee, 0xee };

	cr_assert_eq(bus_register(bus, 0x60, 1, &recording_ops, &left, "l"), 0);
	cr_assert_eq(bus_register(bus, 0x61, 1, &recording_ops, &right, "r"),
		     0);
	cr_assert_not(bus_read(bus, 0x60, data, 2));
	cr_assert_not(bus_read(bus, 0x5f, data, 2));
	cr_assert_not(bus_read(bus, 0x62, data, 1));
	cr_assert_not(bus_write(bus, 0x61, data, 4));
	cr_assert_eq(left.accesses + right.accesses, 0);
	/* A refused read leaves the caller's buffer alone. */
	cr_assert_eq(data[0], 0xee);
	cr_assert_eq(data[1], 0xee);
}

Test(bus, unregister_releases_only_an_exact_base)
{
	struct recording_device device = { .tag = 7 };
	uint8_t data;

	cr_assert_eq(bus_register(bus, 0x70, 2, &recording_ops, &device, "d"),
		     0);
	cr_assert_eq(bus_unregister(bus, 0x71), -ENOENT);
	cr_assert(bus_read(bus, 0x71, &data, 1));
	cr_assert_eq(bus_unregister(bus, 0x70), 0);
	cr_assert_not(bus_read(bus, 0x70, &data, 1));
	cr_assert_eq(bus_unregister(bus, 0x70), -ENOENT);
	/* The range can be claimed again. */
	cr_assert_eq(bus_register(bus, 0x70, 2, &recording_ops, &device, "d"),
		     0);
}

Test(bus, finds_each_of_many_ranges_registered_out_of_order)
{
	static struct recording_device devices[64];

	/* 64 ranges of 4 ports at 0x1000 + 8 * i, registered in a stride
	 * order so that inserts land everywhere in the sorted array. */
	for (unsigned int n = 0; n < 64; n++) {
		unsigned int i = (n * 37) % 64;

		devices[i].tag = (uint8_t)i;
		cr_assert_eq(bus_register(bus, 0x1000 + 8 * i, 4,
					  &recording_ops, &devices[i], "d"),
			     0);
	}
	for (unsigned int i = 0; i < 64; i++) {
		uint8_t data = 0xff;

		cr_assert(bus_read(bus, 0x1000 + 8 * i + 3, &data, 1));
		cr_assert_eq(data, i);
		cr_assert_eq(devices[i].last_offset, 3);
		cr_assert_not(bus_read(bus, 0x1000 + 8 * i + 4, &data, 1));
	}
}

Test(bus, a_device_without_read_handler_reads_as_all_ones)
{
	static const struct bus_device_ops write_only = {
		.write = recording_write,
	};
	struct recording_device device = { 0 };
	uint8_t data[2] = { 0 };

	cr_assert_eq(bus_register(bus, 0x80, 1, &write_only, &device, "d"), 0);
	cr_assert(bus_read(bus, 0x80, data, 1));
	cr_assert_eq(data[0], 0xff);
}

/* Readers dispatch to a fixed range while a writer adds and removes
 * another: every read must reach the fixed device. */
static void *churn_ranges(void *opaque)
{
	static struct recording_device churned = { .tag = 0x11 };

	(void)opaque;
	for (int i = 0; i < 2000; i++) {
		cr_assert_eq(bus_register(bus, 0x2000 + (i % 16) * 16, 16,
					  &recording_ops, &churned, "c"),
			     0);
		cr_assert_eq(bus_unregister(bus, 0x2000 + (i % 16) * 16), 0);
	}
	return NULL;
}

/* Reads the tag without recording, so concurrent readers share nothing
 * they write. */
static void tag_read(void *opaque, uint64_t offset, uint8_t *data,
		     uint32_t size)
{
	const struct recording_device *device = opaque;

	(void)offset;
	memset(data, device->tag, size);
}

static struct recording_device fixed_device = { .tag = 0x22 };

static void *read_fixed(void *opaque)
{
	(void)opaque;
	for (int i = 0; i < 20000; i++) {
		uint8_t data = 0;

		cr_assert(bus_read(bus, 0x3000, &data, 1));
		cr_assert_eq(data, 0x22);
	}
	return NULL;
}

Test(bus, dispatch_is_safe_while_ranges_change)
{
	static const struct bus_device_ops read_only = {
		.read = tag_read,
	};
	pthread_t readers[3];
	pthread_t writer;

	cr_assert_eq(bus_register(bus, 0x3000, 1, &read_only, &fixed_device,
				  "f"),
		     0);
	for (int i = 0; i < 3; i++)
		pthread_create(&readers[i], NULL, read_fixed, NULL);
	pthread_create(&writer, NULL, churn_ranges, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(readers[i], NULL);
	pthread_join(writer, NULL);
}
