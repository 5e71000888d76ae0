/*
 * Split virtqueues on a fake guest RAM: each test lays out the descriptor
 * table and rings by hand, as a driver would (virtio 1.2 §2.7), and checks
 * what the device side takes from them and writes back.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtqueue.h"
#include "fakes.h"

#define RAM_SIZE (4u << 20)
#define QUEUE_SIZE 16
#define DESC_ADDR 0x1000
#define AVAIL_ADDR 0x2000
#define USED_ADDR 0x3000
#define INDIRECT_ADDR 0x8000
#define DATA_ADDR 0x10000

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static uint8_t *ram;
static struct guest_memory memory;
static struct virtqueue queue;
static struct virtqueue_element element;

static void setup(void)
{
	ram = fake_ram_create(&memory, RAM_SIZE);
	queue = (struct virtqueue){
		.size = QUEUE_SIZE,
		.ready = true,
		.desc_addr = DESC_ADDR,
		.avail_addr = AVAIL_ADDR,
		.used_addr = USED_ADDR,
		.memory = &memory,
	};
	cr_assert_eq(virtqueue_validate(&queue), 0);
}

static void teardown(void)
{
	free(ram);
}

TestSuite(virtqueue, .init = setup, .fini = teardown);

static void set_desc(uint64_t table, unsigned int index, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *entry = ram + table + 16 * index;
	uint64_t addr_le = htole64(addr);
	uint32_t len_le = htole32(len);
	uint16_t flags_le = htole16(flags), next_le = htole16(next);

	memcpy(entry, &addr_le, 8);
	memcpy(entry + 8, &len_le, 4);
	memcpy(entry + 12, &flags_le, 2);
	memcpy(entry + 14, &next_le, 2);
}

/* Makes head available, as §2.7.13 describes. */
static void make_available(uint16_t head)
{
	uint16_t idx = ram_get16(ram, AVAIL_ADDR + 2);

	ram_put16(ram, AVAIL_ADDR + 4 + 2 * (idx % QUEUE_SIZE), head);
	ram_put16(ram, AVAIL_ADDR + 2, idx + 1);
}

static uint16_t used_idx(void)
{
	return ram_get16(ram, USED_ADDR + 2);
}

static void assert_used(unsigned int slot, uint32_t id, uint32_t len)
{
	cr_assert_eq(ram_get32(ram, USED_ADDR + 4 + 8 * slot), id, "used[%u].id", slot);
	cr_assert_eq(ram_get32(ram, USED_ADDR + 8 + 8 * slot), len, "used[%u].len",
		     slot);
}

/* A refused chain comes back to the driver with length 0, and the next
 * request (one readable buffer in descriptor 15) is still served. */
static void assert_refused_then_queue_goes_on(uint16_t head)
{
	uint16_t used_before = used_idx();

	make_available(head);
	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);
	cr_assert_eq(used_idx(), (uint16_t)(used_before + 1));
	assert_used(used_before % QUEUE_SIZE, head, 0);

	set_desc(DESC_ADDR, 15, DATA_ADDR, 8, 0, 0);
	make_available(15);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 15);
	cr_assert_eq(element.out_count, 1);
}

Test(virtqueue, empty_ring_gives_nothing)
{
	cr_assert_eq(virtqueue_pop(&queue, &element), 0);
	cr_assert_not(virtqueue_has_available(&queue));
}

Test(virtqueue, pop_on_a_queue_never_validated_refuses)
{
	queue.size = 0;
	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);
}

Test(virtqueue, chain_of_readable_then_writable_buffers)
{
	set_desc(DESC_ADDR, 3, DATA_ADDR, 100, F_NEXT, 7);
	set_desc(DESC_ADDR, 7, DATA_ADDR + 0x1000, 50, F_NEXT, 2);
	set_desc(DESC_ADDR, 2, DATA_ADDR + 0x2000, 200, F_WRITE, 0);
	make_available(3);
	cr_assert(virtqueue_has_available(&queue));

	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 3);
	cr_assert_eq(element.out_count, 2);
	cr_assert_eq(element.in_count, 1);
	cr_assert_eq(element.out_bytes, 150);
	cr_assert_eq(element.in_bytes, 200);
	cr_assert_eq(element.out[0].iov_base, ram + DATA_ADDR);
	cr_assert_eq(element.out[1].iov_base, ram + DATA_ADDR + 0x1000);
	cr_assert_eq(element.out[1].iov_len, 50);
	cr_assert_eq(element.in[0].iov_base, ram + DATA_ADDR + 0x2000);
	cr_assert_eq(element.in[0].iov_len, 200);
	cr_assert_eq(queue.last_avail_idx, 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), 0);
}

Test(virtqueue, copy_helpers_cross_buffer_boundaries)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 4, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 0x100, 4, F_NEXT, 2);
	set_desc(DESC_ADDR, 2, DATA_ADDR + 0x200, 3, F_WRITE | F_NEXT, 3);
	set_desc(DESC_ADDR, 3, DATA_ADDR + 0x300, 3, F_WRITE, 0);
	memcpy(ram + DATA_ADDR, "abcd", 4);
	memcpy(ram + DATA_ADDR + 0x100, "efgh", 4);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);

	char out[8] = { 0 };
	cr_assert_eq(virtqueue_copy_from_out(&element, 2, out, sizeof(out)), 6);
	cr_assert_arr_eq(out, "cdefgh", 6);

	cr_assert_eq(virtqueue_copy_to_in(&element, 1, "XYZW", 4), 4);
	cr_assert_arr_eq(ram + DATA_ADDR + 0x200, "\0XY", 3);
	cr_assert_arr_eq(ram + DATA_ADDR + 0x300, "ZW\0", 3);
	cr_assert_eq(virtqueue_copy_to_in(&element, 5, "12", 2), 1);
	cr_assert_eq(ram[DATA_ADDR + 0x302], '1');
}

Test(virtqueue, out_from_skips_a_header_split_across_buffers)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 4, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 0x100, 6, F_NEXT, 2);
	set_desc(DESC_ADDR, 2, DATA_ADDR + 0x200, 5, 0, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);

	unsigned int count;
	struct iovec *rest = virtqueue_out_from(&element, 7, &count);
	cr_assert_eq(count, 2);
	cr_assert_eq(rest[0].iov_base, ram + DATA_ADDR + 0x100 + 3);
	cr_assert_eq(rest[0].iov_len, 3);
	cr_assert_eq(rest[1].iov_base, ram + DATA_ADDR + 0x200);
	cr_assert_eq(rest[1].iov_len, 5);
}

Test(virtqueue, out_from_at_a_buffer_boundary_and_at_the_end)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 4, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 0x100, 6, 0, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);

	unsigned int count;
	struct iovec *rest = virtqueue_out_from(&element, 4, &count);
	cr_assert_eq(count, 1);
	cr_assert_eq(rest[0].iov_base, ram + DATA_ADDR + 0x100);
	cr_assert_eq(rest[0].iov_len, 6);
	virtqueue_out_from(&element, 10, &count);
	cr_assert_eq(count, 0);
}

Test(virtqueue, zero_length_buffers_are_dropped)
{
	/* Its address is outside guest RAM, which does not matter: the
	 * device never touches it. */
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, UINT64_MAX, 0, F_NEXT | F_WRITE, 2);
	set_desc(DESC_ADDR, 2, DATA_ADDR + 8, 8, F_WRITE, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.out_count, 1);
	cr_assert_eq(element.in_count, 1);
	cr_assert_eq(element.in[0].iov_base, ram + DATA_ADDR + 8);
}

Test(virtqueue, indirect_table)
{
	queue.indirect = true;
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 10, F_NEXT, 1);
	set_desc(INDIRECT_ADDR, 1, DATA_ADDR + 0x100, 20, F_WRITE | F_NEXT, 2);
	set_desc(INDIRECT_ADDR, 2, DATA_ADDR + 0x200, 30, F_WRITE, 0);
	/* The WRITE flag of the descriptor that refers to the table is
	 * ignored (§2.7.5.3.2). */
	set_desc(DESC_ADDR, 5, INDIRECT_ADDR, 3 * 16, F_INDIRECT | F_WRITE, 0);
	make_available(5);

	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 5);
	cr_assert_eq(element.out_count, 1);
	cr_assert_eq(element.in_count, 2);
	cr_assert_eq(element.out_bytes, 10);
	cr_assert_eq(element.in_bytes, 50);
	cr_assert_eq(element.in[1].iov_base, ram + DATA_ADDR + 0x200);
}

Test(virtqueue, direct_descriptors_then_an_indirect_table)
{
	queue.indirect = true;
	set_desc(DESC_ADDR, 0, DATA_ADDR, 10, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, INDIRECT_ADDR, 2 * 16, F_INDIRECT, 0);
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR + 0x100, 20, F_NEXT, 1);
	set_desc(INDIRECT_ADDR, 1, DATA_ADDR + 0x200, 30, F_WRITE, 0);
	make_available(0);

	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.out_count, 2);
	cr_assert_eq(element.in_count, 1);
	cr_assert_eq(element.out_bytes, 30);
	cr_assert_eq(element.in_bytes, 30);
}

Test(virtqueue, chain_that_loops_is_refused)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR, 8, F_NEXT, 0);
	assert_refused_then_queue_goes_on(0);
}

/* Empty buffers add nothing to the element, so only counting descriptors
 * ends this walk. */
Test(virtqueue, loop_of_empty_buffers_is_refused, .timeout = 10)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 0, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR, 0, F_NEXT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, loop_of_empty_buffers_in_an_indirect_table_is_refused,
     .timeout = 10)
{
	queue.indirect = true;
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 0, F_NEXT, 0);
	set_desc(DESC_ADDR, 0, INDIRECT_ADDR, 16, F_INDIRECT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, chain_through_every_descriptor_and_back_is_refused)
{
	/* QUEUE_SIZE distinct descriptors are fine; one more visit is not. */
	for (unsigned int i = 0; i < QUEUE_SIZE; i++)
		set_desc(DESC_ADDR, i, DATA_ADDR, 8, F_NEXT,
			 (i + 1) % QUEUE_SIZE);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);

	set_desc(DESC_ADDR, QUEUE_SIZE - 1, DATA_ADDR, 8, 0, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.out_count, QUEUE_SIZE);
}

Test(virtqueue, next_beyond_the_table_is_refused)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, F_NEXT, QUEUE_SIZE);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, head_beyond_the_table_is_refused)
{
	assert_refused_then_queue_goes_on(QUEUE_SIZE + 3);
}

Test(virtqueue, loop_inside_an_indirect_table_is_refused)
{
	queue.indirect = true;
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 8, F_NEXT, 1);
	set_desc(INDIRECT_ADDR, 1, DATA_ADDR, 8, F_NEXT, 0);
	set_desc(DESC_ADDR, 0, INDIRECT_ADDR, 2 * 16, F_INDIRECT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, buffer_outside_ram_is_refused)
{
	set_desc(DESC_ADDR, 0, RAM_SIZE, 1, 0, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, buffer_straddling_the_end_of_ram_is_refused)
{
	set_desc(DESC_ADDR, 0, RAM_SIZE - 8, 16, F_WRITE, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, buffer_ending_exactly_at_the_end_of_ram_is_taken)
{
	set_desc(DESC_ADDR, 0, RAM_SIZE - 16, 16, F_WRITE, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.in[0].iov_base, ram + RAM_SIZE - 16);
}

Test(virtqueue, buffer_whose_end_wraps_around_is_refused)
{
	set_desc(DESC_ADDR, 0, UINT64_MAX - 0xff, 0x200, 0, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, readable_after_writable_is_refused)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, F_WRITE | F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 8, 8, 0, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, readable_in_indirect_table_after_direct_writable_is_refused)
{
	queue.indirect = true;
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, F_WRITE | F_NEXT, 1);
	set_desc(DESC_ADDR, 1, INDIRECT_ADDR, 16, F_INDIRECT, 0);
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR + 8, 8, 0, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, indirect_without_the_feature_is_refused)
{
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 8, 0, 0);
	set_desc(DESC_ADDR, 0, INDIRECT_ADDR, 16, F_INDIRECT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, nested_indirect_table_is_refused)
{
	queue.indirect = true;
	set_desc(INDIRECT_ADDR + 0x100, 0, DATA_ADDR, 8, 0, 0);
	set_desc(INDIRECT_ADDR, 0, INDIRECT_ADDR + 0x100, 16, F_INDIRECT, 0);
	set_desc(DESC_ADDR, 0, INDIRECT_ADDR, 16, F_INDIRECT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, indirect_with_next_is_refused)
{
	queue.indirect = true;
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 8, 0, 0);
	set_desc(DESC_ADDR, 0, INDIRECT_ADDR, 16, F_INDIRECT | F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR, 8, F_WRITE, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, indirect_table_of_bad_length_is_refused)
{
	const uint32_t lengths[] = { 0, 17, 24,
				     (VIRTQUEUE_MAX_SEGMENTS + 1) * 16 };

	queue.indirect = true;
	set_desc(INDIRECT_ADDR, 0, DATA_ADDR, 8, 0, 0);
	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		set_desc(DESC_ADDR, 0, INDIRECT_ADDR, lengths[i], F_INDIRECT,
			 0);
		assert_refused_then_queue_goes_on(0);
	}
}

Test(virtqueue, indirect_table_outside_ram_is_refused)
{
	queue.indirect = true;
	set_desc(DESC_ADDR, 0, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	assert_refused_then_queue_goes_on(0);
}

Test(virtqueue, more_buffers_than_an_element_holds_are_refused)
{
	/* A full-size queue: a direct chain of 1023 buffers may end in an
	 * indirect table, but not one that brings it past
	 * VIRTQUEUE_MAX_SEGMENTS. */
	const uint64_t table = 0x100000, indirect = 0x200000;

	queue.size = VIRTQUEUE_MAX_SIZE;
	queue.desc_addr = table;
	queue.avail_addr = 0x110000;
	queue.used_addr = 0x120000;
	queue.indirect = true;
	cr_assert_eq(virtqueue_validate(&queue), 0);
	for (unsigned int i = 0; i < VIRTQUEUE_MAX_SIZE - 1; i++)
		set_desc(table, i, DATA_ADDR, 1, F_NEXT, i + 1);
	set_desc(table, VIRTQUEUE_MAX_SIZE - 1, indirect, 2 * 16, F_INDIRECT,
		 0);
	set_desc(indirect, 0, DATA_ADDR, 1, F_NEXT, 1);
	set_desc(indirect, 1, DATA_ADDR, 1, 0, 0);
	ram_put16(ram, 0x110000 + 4, 0);
	ram_put16(ram, 0x110000 + 2, 1);

	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);
	cr_assert_eq(ram_get16(ram, 0x120000 + 2), 1);

	/* One buffer in the table is exactly the limit. */
	set_desc(table, VIRTQUEUE_MAX_SIZE - 1, indirect, 16, F_INDIRECT, 0);
	set_desc(indirect, 0, DATA_ADDR, 1, 0, 0);
	ram_put16(ram, 0x110000 + 6, 0);
	ram_put16(ram, 0x110000 + 2, 2);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.out_count, VIRTQUEUE_MAX_SEGMENTS);
}

Test(virtqueue, available_index_too_far_ahead_consumes_nothing)
{
	ram_put16(ram, AVAIL_ADDR + 2, QUEUE_SIZE + 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);
	cr_assert_eq(queue.last_avail_idx, 0);
	cr_assert_eq(used_idx(), 0);
	cr_assert(virtqueue_has_available(&queue));

	/* Exactly size ahead is a full ring, which is fine. */
	for (unsigned int i = 0; i < QUEUE_SIZE; i++) {
		set_desc(DESC_ADDR, i, DATA_ADDR, 8, 0, 0);
		ram_put16(ram, AVAIL_ADDR + 4 + 2 * i, i);
	}
	ram_put16(ram, AVAIL_ADDR + 2, QUEUE_SIZE);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
}

Test(virtqueue, available_index_wraps_around)
{
	queue.last_avail_idx = UINT16_MAX;
	ram_put16(ram, AVAIL_ADDR + 2, 1);
	set_desc(DESC_ADDR, 4, DATA_ADDR, 8, 0, 0);
	set_desc(DESC_ADDR, 6, DATA_ADDR, 8, 0, 0);
	ram_put16(ram, AVAIL_ADDR + 4 + 2 * (UINT16_MAX % QUEUE_SIZE), 4);
	ram_put16(ram, AVAIL_ADDR + 4, 6);

	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 4);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 6);
	cr_assert_eq(virtqueue_pop(&queue, &element), 0);
}

Test(virtqueue, validate_refuses_bad_sizes)
{
	const uint16_t sizes[] = { 0, 3, 24, 2 * VIRTQUEUE_MAX_SIZE };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		queue.size = sizes[i];
		cr_assert_eq(virtqueue_validate(&queue), -EINVAL, "size %u",
			     sizes[i]);
	}
	queue.size = VIRTQUEUE_MAX_SIZE;
	cr_assert_eq(virtqueue_validate(&queue), 0);
}

Test(virtqueue, validate_refuses_misaligned_rings)
{
	queue.desc_addr = DESC_ADDR + 8;
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.desc_addr = DESC_ADDR;
	queue.avail_addr = AVAIL_ADDR + 1;
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.avail_addr = AVAIL_ADDR + 2;
	queue.used_addr = USED_ADDR + 2;
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.used_addr = USED_ADDR + 4;
	cr_assert_eq(virtqueue_validate(&queue), 0);
}

Test(virtqueue, validate_refuses_rings_outside_ram)
{
	/* Each ring ends 2 bytes too far: used_event and avail_event are
	 * part of the rings' size (§2.7's table). */
	queue.desc_addr = RAM_SIZE - 16 * QUEUE_SIZE + 16;
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.desc_addr = RAM_SIZE - 16 * QUEUE_SIZE;
	cr_assert_eq(virtqueue_validate(&queue), 0);

	queue.avail_addr = RAM_SIZE - (4 + 2 * QUEUE_SIZE);
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.avail_addr = RAM_SIZE - (6 + 2 * QUEUE_SIZE);
	cr_assert_eq(virtqueue_validate(&queue), 0);

	queue.used_addr = RAM_SIZE - (4 + 8 * QUEUE_SIZE);
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
	queue.used_addr = RAM_SIZE - (8 + 8 * QUEUE_SIZE);
	cr_assert_eq(virtqueue_validate(&queue), 0);

	queue.used_addr = UINT64_MAX - 3;
	cr_assert_eq(virtqueue_validate(&queue), -EINVAL);
}

Test(virtqueue, push_writes_the_used_element_then_the_index)
{
	virtqueue_push(&queue, 9, 1234);
	cr_assert_eq(used_idx(), 1);
	assert_used(0, 9, 1234);

	queue.used_idx = QUEUE_SIZE - 1;
	virtqueue_push(&queue, 3, 5);
	virtqueue_push(&queue, 4, 6);
	assert_used(QUEUE_SIZE - 1, 3, 5);
	assert_used(0, 4, 6);
	cr_assert_eq(used_idx(), QUEUE_SIZE + 1);
	cr_assert_eq(queue.used_idx, QUEUE_SIZE + 1);
}

Test(virtqueue, notify_follows_no_interrupt_without_event_idx)
{
	virtqueue_push(&queue, 0, 0);
	cr_assert(virtqueue_should_notify(&queue));
	ram_put16(ram, AVAIL_ADDR, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	virtqueue_push(&queue, 1, 0);
	cr_assert_not(virtqueue_should_notify(&queue));
	ram_put16(ram, AVAIL_ADDR, 0);
	virtqueue_push(&queue, 2, 0);
	cr_assert(virtqueue_should_notify(&queue));
}

Test(virtqueue, rewind_makes_taken_chains_available_again)
{
	for (uint16_t head = 0; head < 3; head++) {
		set_desc(DESC_ADDR, head, DATA_ADDR + 0x100 * head, 8, F_WRITE, 0);
		make_available(head);
	}
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	virtqueue_push(&queue, element.head, 8);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 2);
	cr_assert_not(virtqueue_has_available(&queue));

	virtqueue_rewind(&queue, 2);
	cr_assert(virtqueue_has_available(&queue));
	cr_assert_eq(used_idx(), 1, "the driver saw only the pushed chain");
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 1);
	cr_assert_eq(element.in[0].iov_base, ram + DATA_ADDR + 0x100);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 2);
	cr_assert_eq(virtqueue_pop(&queue, &element), 0);
}

Test(virtqueue, rewind_across_index_wrap_around)
{
	queue.last_avail_idx = UINT16_MAX;
	ram_put16(ram, AVAIL_ADDR + 2, UINT16_MAX);
	set_desc(DESC_ADDR, 4, DATA_ADDR, 8, F_WRITE, 0);
	set_desc(DESC_ADDR, 5, DATA_ADDR + 0x100, 8, F_WRITE, 0);
	make_available(4);
	make_available(5);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(queue.last_avail_idx, 1);

	virtqueue_rewind(&queue, 2);
	cr_assert_eq(queue.last_avail_idx, UINT16_MAX);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(element.head, 4);
}

#define USED_EVENT_ADDR (AVAIL_ADDR + 4 + 2 * QUEUE_SIZE)
#define AVAIL_EVENT_ADDR (USED_ADDR + 4 + 8 * QUEUE_SIZE)

Test(virtqueue, notify_follows_used_event_with_event_idx)
{
	queue.event_idx = true;
	/* The flag means nothing with EVENT_IDX (§2.7.7). */
	ram_put16(ram, AVAIL_ADDR, 1);
	ram_put16(ram, USED_EVENT_ADDR, 5);

	/* No interrupt sent yet: always the first time. */
	virtqueue_push(&queue, 0, 0);
	cr_assert(virtqueue_should_notify(&queue));

	/* used idx 1 -> 5: the entry at index 5 is not in the ring yet. */
	for (unsigned int i = 0; i < 4; i++)
		virtqueue_push(&queue, 0, 0);
	cr_assert_not(virtqueue_should_notify(&queue));
	/* used idx 5 -> 6 writes the entry at index 5: interrupt. */
	virtqueue_push(&queue, 0, 0);
	cr_assert(virtqueue_should_notify(&queue));
	/* Nothing pushed since: no interrupt. */
	cr_assert_not(virtqueue_should_notify(&queue));
}

Test(virtqueue, notify_with_event_idx_across_index_wrap_around)
{
	queue.event_idx = true;
	queue.used_idx = UINT16_MAX - 1;
	queue.signalled_used = UINT16_MAX - 1;
	queue.signalled_used_valid = true;

	/* Pushes bring used idx from 65534 to 0 and write the entries at
	 * 65534 and 65535. */
	ram_put16(ram, USED_EVENT_ADDR, UINT16_MAX);
	virtqueue_push(&queue, 0, 0);
	virtqueue_push(&queue, 0, 0);
	cr_assert_eq(queue.used_idx, 0);
	cr_assert(virtqueue_should_notify(&queue));

	/* From 0 to 2: the entry at 65535 was written before. */
	virtqueue_push(&queue, 0, 0);
	virtqueue_push(&queue, 0, 0);
	cr_assert_not(virtqueue_should_notify(&queue));
	/* From 2 to 4 writes the entry at 2. */
	ram_put16(ram, USED_EVENT_ADDR, 2);
	virtqueue_push(&queue, 0, 0);
	virtqueue_push(&queue, 0, 0);
	cr_assert(virtqueue_should_notify(&queue));
}

Test(virtqueue, set_notification_writes_used_flags_without_event_idx)
{
	virtqueue_set_notification(&queue, false);
	cr_assert_eq(ram_get16(ram, USED_ADDR), 1); /* VIRTQ_USED_F_NO_NOTIFY */
	virtqueue_set_notification(&queue, true);
	cr_assert_eq(ram_get16(ram, USED_ADDR), 0);
	cr_assert_eq(ram_get16(ram, AVAIL_EVENT_ADDR), 0);
}

Test(virtqueue, set_notification_writes_avail_event_with_event_idx)
{
	queue.event_idx = true;
	queue.last_avail_idx = 7;
	ram_put16(ram, AVAIL_EVENT_ADDR, 3);
	virtqueue_set_notification(&queue, false);
	cr_assert_eq(ram_get16(ram, AVAIL_EVENT_ADDR), 3);
	virtqueue_set_notification(&queue, true);
	cr_assert_eq(ram_get16(ram, AVAIL_EVENT_ADDR), 7);
	/* The device MUST keep used flags at 0 with EVENT_IDX (§2.7.10). */
	cr_assert_eq(ram_get16(ram, USED_ADDR), 0);
}

Test(virtqueue, reset_forgets_everything_but_memory)
{
	queue.last_avail_idx = 3;
	queue.used_idx = 4;
	queue.signalled_used = 4;
	queue.signalled_used_valid = true;
	queue.event_idx = true;
	virtqueue_reset(&queue);
	cr_assert_eq(queue.size, VIRTQUEUE_MAX_SIZE);
	cr_assert_not(queue.ready);
	cr_assert_not(queue.event_idx);
	cr_assert_eq(queue.desc_addr, 0);
	cr_assert_eq(queue.last_avail_idx, 0);
	cr_assert_eq(queue.used_idx, 0);
	cr_assert_not(queue.signalled_used_valid);
	cr_assert_eq(queue.memory, &memory);
}

/* A round hands out its budget, a malformed chain and what a device
 * charges counting against it, then reads as empty; ending it says chains
 * wait, and outside a round nothing is bounded. */
Test(virtqueue, a_round_hands_out_its_budget_and_no_more)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 8, 0, 0);
	set_desc(DESC_ADDR, 1, RAM_SIZE, 8, 0, 0); /* outside guest RAM */
	for (unsigned int i = 0; i < 6; i++)
		make_available(i == 1 ? 1 : 0);

	virtqueue_begin_round(&queue, 4);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), -EINVAL);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	virtqueue_charge(&queue, 5); /* more than is left: the rest */
	cr_assert_eq(virtqueue_pop(&queue, &element), 0, "budget spent");
	cr_assert_not(virtqueue_has_available(&queue));
	cr_assert(virtqueue_end_round(&queue), "three chains wait");

	virtqueue_begin_round(&queue, 4);
	for (unsigned int i = 0; i < 3; i++)
		cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	cr_assert_eq(virtqueue_pop(&queue, &element), 0);
	cr_assert_not(virtqueue_end_round(&queue), "nothing waits");

	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1, "no round, no bound");
}

/* --- vessel's writes, marked for dirty tracking (guest_memory.h) ---------- */

static uint64_t written_pages[RAM_SIZE / 4096 / 64];

static void track_writes(void)
{
	memset(written_pages, 0, sizeof(written_pages));
	memory.regions[0].written = written_pages;
}

static bool page_marked(uint64_t gpa)
{
	uint64_t page = gpa / 4096;

	return written_pages[page / 64] & (1ull << (page % 64));
}

static unsigned int pages_marked(void)
{
	unsigned int count = 0;

	for (size_t i = 0; i < sizeof(written_pages) / 8; i++)
		count += (unsigned int)__builtin_popcountll(written_pages[i]);
	return count;
}

Test(virtqueue, a_push_marks_the_used_ring_and_an_element_its_buffers)
{
	/* Three device-writable pages, a buffer across two of them. */
	set_desc(DESC_ADDR, 0, DATA_ADDR, 16, F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 0x10000 - 8, 16, F_WRITE | F_NEXT, 2);
	set_desc(DESC_ADDR, 2, DATA_ADDR + 0x20000, 4096, F_WRITE, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	track_writes();
	virtqueue_push_element(&queue, &element, 100);
	cr_assert(page_marked(USED_ADDR), "the used ring is not marked");
	cr_assert(page_marked(DATA_ADDR + 0x10000 - 8));
	cr_assert(page_marked(DATA_ADDR + 0x10000));
	cr_assert(page_marked(DATA_ADDR + 0x20000));
	cr_assert(!page_marked(DATA_ADDR), "a device-readable buffer is marked");
	cr_assert_eq(pages_marked(), 4);
}

Test(virtqueue, a_copy_marks_the_bytes_it_wrote_only)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 4096, F_WRITE | F_NEXT, 1);
	set_desc(DESC_ADDR, 1, DATA_ADDR + 0x10000, 4096, F_WRITE, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	track_writes();
	/* Bytes 4000-4099: the end of the first buffer, the second's start. */
	uint8_t bytes[100] = { 1 };
	cr_assert_eq(virtqueue_copy_to_in(&element, 4000, bytes, sizeof(bytes)),
		     sizeof(bytes));
	cr_assert(page_marked(DATA_ADDR));
	cr_assert(page_marked(DATA_ADDR + 0x10000));
	cr_assert_eq(pages_marked(), 2);
	memset(written_pages, 0, sizeof(written_pages));
	/* Into the second buffer only. */
	cr_assert_eq(virtqueue_copy_to_in(&element, 5000, bytes, 10), 10);
	cr_assert(!page_marked(DATA_ADDR));
	cr_assert(page_marked(DATA_ADDR + 0x10000));
	/* guest_memory_write marks too, and nothing outside RAM. */
	memset(written_pages, 0, sizeof(written_pages));
	cr_assert_eq(guest_memory_write(&memory, 0x5ffe, bytes, 4), 0);
	cr_assert(page_marked(0x5000) && page_marked(0x6000));
	cr_assert_eq(pages_marked(), 2);
	guest_memory_mark_written(&memory, bytes, sizeof(bytes));
	cr_assert_eq(pages_marked(), 2);
}

Test(virtqueue, nothing_is_marked_while_nothing_tracks)
{
	set_desc(DESC_ADDR, 0, DATA_ADDR, 4096, F_WRITE, 0);
	make_available(0);
	cr_assert_eq(virtqueue_pop(&queue, &element), 1);
	memset(written_pages, 0, sizeof(written_pages));
	virtqueue_copy_to_in(&element, 0, "x", 1);
	virtqueue_push_element(&queue, &element, 1);
	cr_assert_eq(pages_marked(), 0);
	cr_assert_eq(used_idx(), 1);
}
