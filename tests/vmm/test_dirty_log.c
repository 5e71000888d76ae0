/*
 * The dirty log on a real KVM VM: vessel's own writes, marked through
 * guest_memory.h, are harvested once and cleared; a harvest given back is
 * harvested again; a stopped log leaves the writers nothing to mark. The
 * guest's own writes reach it through KVM's log, which the snapshot tests
 * exercise with a running guest (tests/integration/test_snapshot.c).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "../../vmm/dirty_log.h"

#define RAM_SIZE (16u << 20)

static int kvm_fd = -1, vm_fd = -1;
static struct vm_memory memory;
static struct dirty_log dirty_log;

static void setup(void)
{
	char err[256];

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		cr_skip_test("no /dev/kvm");
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	cr_assert_geq(vm_fd, 0);
	cr_assert_eq(vm_memory_create(&memory, RAM_SIZE, err, sizeof(err)), 0);
	cr_assert_eq(vm_memory_register(&memory, vm_fd, err, sizeof(err)), 0,
		     "%s", err);
	dirty_log = (struct dirty_log){ 0 };
	cr_assert_eq(dirty_log_start(&dirty_log, vm_fd, &memory, err,
				     sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	dirty_log_stop(&dirty_log);
	vm_memory_destroy(&memory);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
}

TestSuite(dirty_log, .init = setup, .fini = teardown);

/* A harvest: the pages it reports, in a new bitmap. */
static uint64_t *harvest(void)
{
	char err[256];
	size_t words = dirty_log_bitmap_words(&memory);
	uint64_t *pages = calloc(words, sizeof(*pages));

	cr_assert_eq(words, RAM_SIZE / 4096 / 64);
	cr_assert_eq(dirty_log_harvest(&dirty_log, pages, err, sizeof(err)), 0,
		     "%s", err);
	return pages;
}

static unsigned int count(const uint64_t *pages)
{
	unsigned int total = 0;

	for (size_t i = 0; i < RAM_SIZE / 4096 / 64; i++)
		total += (unsigned int)__builtin_popcountll(pages[i]);
	return total;
}

static bool has(const uint64_t *pages, uint64_t page)
{
	return pages[page / 64] & (1ull << (page % 64));
}

Test(dirty_log, vessels_writes_are_harvested_once)
{
	cr_assert(dirty_log_active(&dirty_log));
	uint64_t *pages = harvest();
	cr_assert_eq(count(pages), 0, "pages written before the start");
	free(pages);

	cr_assert_eq(guest_memory_write(&memory.guest, 0x5000, "abc", 3), 0);
	guest_memory_mark_written(&memory.guest,
				  memory.guest.regions[0].host_addr + 0x7ff0,
				  0x20);
	pages = harvest();
	cr_assert_eq(count(pages), 3);
	cr_assert(has(pages, 5) && has(pages, 7) && has(pages, 8));
	free(pages);
	pages = harvest();
	cr_assert_eq(count(pages), 0, "a harvest did not clear the log");
	free(pages);
}

Test(dirty_log, a_harvest_given_back_comes_again)
{
	cr_assert_eq(guest_memory_write(&memory.guest, RAM_SIZE - 1, "z", 1), 0);
	uint64_t *pages = harvest();
	cr_assert(has(pages, RAM_SIZE / 4096 - 1));
	dirty_log_put_back(&dirty_log, pages);
	free(pages);
	cr_assert_eq(guest_memory_write(&memory.guest, 0, "a", 1), 0);
	pages = harvest();
	cr_assert_eq(count(pages), 2);
	cr_assert(has(pages, 0) && has(pages, RAM_SIZE / 4096 - 1));
	free(pages);
}

Test(dirty_log, a_stopped_log_leaves_nothing_to_mark)
{
	dirty_log_stop(&dirty_log);
	cr_assert(!dirty_log_active(&dirty_log));
	cr_assert_null(memory.guest.regions[0].written);
	cr_assert_eq(guest_memory_write(&memory.guest, 0x5000, "abc", 3), 0);
	/* Started again: a new log, with nothing of before in it. */
	char err[256];
	cr_assert_eq(dirty_log_start(&dirty_log, vm_fd, &memory, err,
				     sizeof(err)), 0, "%s", err);
	uint64_t *pages = harvest();
	cr_assert_eq(count(pages), 0);
	free(pages);
}
