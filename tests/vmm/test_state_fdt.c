/*
 * The snapshot state's device tree: what is written reads back exactly,
 * and every kind of damage (truncated, corrupted, a wrong version, a
 * property of the wrong size, a missing node) is refused with a message
 * naming it, never read.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfdt.h>

#include "../../vmm/state_fdt.h"

static struct state_writer writer;
static void *blob;
static size_t blob_size;

/* A tree with /devices/serial0 (version 2) and /vcpu0 (version 1). */
static void write_sample(void)
{
	const uint8_t fifo[3] = { 'a', 'b', 'c' };
	const void *data;

	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/devices/serial0", 2), 0);
	cr_assert_eq(writer.base.put_u64(&writer.base, "lcr", 0x1234567890ull), 0);
	cr_assert_eq(writer.base.put_bytes(&writer.base, "fifo", fifo,
					   sizeof(fifo)), 0);
	cr_assert_eq(state_writer_begin(&writer, "/vcpu0", 1), 0);
	cr_assert_eq(state_writer_put_string(&writer, "name", "vcpu0"), 0);
	cr_assert_eq(state_writer_finish(&writer, &data, &blob_size), 0);
	blob = malloc(blob_size);
	memcpy(blob, data, blob_size);
	state_writer_release(&writer);
}

static void drop_sample(void)
{
	free(blob);
}

TestSuite(state_fdt, .init = write_sample, .fini = drop_sample);

Test(state_fdt, reads_back_what_was_written)
{
	struct state_reader reader;
	uint64_t value;
	uint8_t fifo[3];
	const char *name;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0, "%s",
		     reader.err);
	cr_assert_eq(state_reader_begin(&reader, "/devices/serial0", 2), 0, "%s",
		     reader.err);
	cr_assert_eq(reader.base.get_u64(&reader.base, "lcr", &value), 0);
	cr_assert_eq(value, 0x1234567890ull);
	cr_assert_eq(reader.base.get_bytes(&reader.base, "fifo", fifo,
					   sizeof(fifo)), 0);
	cr_assert_arr_eq(fifo, "abc", 3);
	cr_assert_eq(state_reader_begin(&reader, "/vcpu0", 1), 0);
	cr_assert_eq(state_reader_get_string(&reader, "name", 16, &name), 0);
	cr_assert_str_eq(name, "vcpu0");
}

Test(state_fdt, a_node_written_twice_is_refused)
{
	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/vm", 1), 0);
	cr_assert_eq(state_writer_begin(&writer, "/vm", 1), -EEXIST);
	state_writer_release(&writer);
}

Test(state_fdt, grows_past_its_first_buffer)
{
	static uint8_t page[4096];
	struct state_reader reader;
	const void *data;
	size_t size;

	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/big", 1), 0);
	for (int i = 0; i < 100; i++) {
		char name[16];
		snprintf(name, sizeof(name), "page%d", i);
		page[0] = (uint8_t)i;
		cr_assert_eq(writer.base.put_bytes(&writer.base, name, page,
						   sizeof(page)), 0);
	}
	cr_assert_eq(state_writer_finish(&writer, &data, &size), 0);
	cr_assert_gt(size, 400000);
	cr_assert_eq(state_reader_open(&reader, data, size), 0, "%s", reader.err);
	cr_assert_eq(state_reader_begin(&reader, "/big", 1), 0);
	cr_assert_eq(reader.base.get_bytes(&reader.base, "page99", page,
					   sizeof(page)), 0);
	cr_assert_eq(page[0], 99);
	state_writer_release(&writer);
}

Test(state_fdt, refuses_a_truncated_blob)
{
	struct state_reader reader;

	for (size_t size = 0; size < blob_size; size += 7) {
		cr_assert_eq(state_reader_open(&reader, blob, size), -EINVAL,
			     "%zu of %zu bytes were accepted", size, blob_size);
		cr_assert(strstr(reader.err, "not a valid device tree"), "%s",
			  reader.err);
	}
}

Test(state_fdt, refuses_trailing_bytes)
{
	struct state_reader reader;
	uint8_t *longer = calloc(1, blob_size + 16);

	memcpy(longer, blob, blob_size);
	cr_assert_eq(state_reader_open(&reader, longer, blob_size + 16), -EINVAL);
	free(longer);
}

Test(state_fdt, refuses_a_corrupted_header_or_structure)
{
	struct state_reader reader;
	struct fdt_header *header = blob;

	header->magic = 0;
	cr_assert_eq(state_reader_open(&reader, blob, blob_size), -EINVAL);
	cr_assert(strstr(reader.err, "not a valid device tree"));
	header->magic = cpu_to_fdt32(FDT_MAGIC);
	/* A string offset pointing past the strings block. */
	header->size_dt_strings = cpu_to_fdt32(1);
	cr_assert_eq(state_reader_open(&reader, blob, blob_size), -EINVAL);
}

Test(state_fdt, never_crashes_on_random_damage)
{
	struct state_reader reader;
	uint8_t *copy = malloc(blob_size);
	uint64_t value;

	srand(19);
	for (int round = 0; round < 2000; round++) {
		memcpy(copy, blob, blob_size);
		for (int flips = 1 + rand() % 4; flips > 0; flips--)
			copy[(size_t)rand() % blob_size] ^= (uint8_t)(1 + rand() % 255);
		if (state_reader_open(&reader, copy, blob_size))
			continue;
		if (state_reader_begin(&reader, "/devices/serial0", 2))
			continue;
		reader.base.get_u64(&reader.base, "lcr", &value);
	}
	free(copy);
}

Test(state_fdt, refuses_another_version)
{
	struct state_reader reader;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/serial0", 3), -EPROTO);
	cr_assert_str_eq(reader.err, "devices/serial0 is version 2; this vessel "
		     "reads version 3");
}

Test(state_fdt, refuses_a_missing_node_or_property)
{
	struct state_reader reader;
	uint64_t value;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/i8042", 1), -ENOENT);
	cr_assert_str_eq(reader.err, "devices/i8042 is missing");
	cr_assert_eq(state_reader_begin(&reader, "/devices/serial0", 2), 0);
	cr_assert_eq(reader.base.get_u64(&reader.base, "ier", &value), -ENOENT);
	cr_assert_str_eq(reader.err, "devices/serial0/ier is missing");
}

Test(state_fdt, refuses_a_property_of_the_wrong_size)
{
	struct state_reader reader;
	uint64_t value;
	uint8_t fifo[4];
	const void *data;
	size_t size;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/serial0", 2), 0);
	cr_assert_eq(reader.base.get_u64(&reader.base, "fifo", &value), -EINVAL);
	cr_assert_str_eq(reader.err, "devices/serial0/fifo: 3 bytes, expected 8");
	cr_assert_eq(reader.base.get_bytes(&reader.base, "fifo", fifo,
					   sizeof(fifo)), -EINVAL);
	cr_assert_eq(state_reader_get_blob(&reader, "fifo", 4, 16, &data, &size),
		     -EINVAL);
	cr_assert_str_eq(reader.err,
			 "devices/serial0/fifo: 3 bytes, expected 4 to 16");
}

Test(state_fdt, refuses_a_string_without_its_end)
{
	struct state_reader reader;
	const char *name;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/serial0", 2), 0);
	cr_assert_eq(state_reader_get_string(&reader, "fifo", 16, &name), -EINVAL);
	cr_assert_str_eq(reader.err, "devices/serial0/fifo is not a string");
}

static int count_child(void *opaque, const char *name)
{
	(void)name;
	++*(int *)opaque;
	return 0;
}

Test(state_fdt, lists_the_children_of_a_node)
{
	struct state_reader reader;
	int count = 0;

	cr_assert_eq(state_reader_open(&reader, blob, blob_size), 0);
	cr_assert_eq(state_reader_for_each_child(&reader, "/", count_child,
						 &count), 0);
	cr_assert_eq(count, 2);
}
