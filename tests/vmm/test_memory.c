/* Guest RAM: the memfd behind the mappings, the split around the PCI hole,
 * and the huge-page advice on every region. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/machine_layout.h"
#include "../../vmm/memory.h"

/* The VmFlags line of the mapping that starts at addr, from
 * /proc/self/smaps; false when there is no such mapping. */
static bool mapping_flags(const void *addr, char *flags, size_t flags_len)
{
	char line[512], start[32];
	bool in_mapping = false, found = false;
	FILE *smaps = fopen("/proc/self/smaps", "r");

	cr_assert_not_null(smaps);
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), smaps)) {
		if (strncmp(line, start, strlen(start)) == 0)
			in_mapping = true;
		else if (in_mapping && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, flags_len, "%.*s", (int)(flags_len - 1), line + 8);
			found = true;
			break;
		}
	}
	fclose(smaps);
	return found;
}

static void assert_advised_huge(const struct guest_region *region)
{
	char flags[256];

	cr_assert(mapping_flags(region->host_addr, flags, sizeof(flags)),
		  "no mapping at %p", (void *)region->host_addr);
	/* "hg": madvise(MADV_HUGEPAGE) took (proc(5)); the host's policy
	 * decides whether huge pages then back it. */
	cr_assert_not_null(strstr(flags, " hg"), "VmFlags:%s", flags);
}

Test(memory, small_guest_is_one_region_backed_by_the_memfd)
{
	struct vm_memory memory;
	char err[128];
	uint8_t byte = 0;

	cr_assert_eq(vm_memory_create(&memory, 16 << 20, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(memory.guest.region_count, 1);
	cr_assert_eq(memory.guest.regions[0].guest_phys_addr, 0);
	cr_assert_eq(memory.guest.regions[0].size, 16 << 20);
	/* What the guest writes is in the memfd, where snapshots read it. */
	memory.guest.regions[0].host_addr[(16 << 20) - 1] = 0x5a;
	cr_assert_eq(pread(memory.fd, &byte, 1, (16 << 20) - 1), 1);
	cr_assert_eq(byte, 0x5a);
	assert_advised_huge(&memory.guest.regions[0]);
	vm_memory_destroy(&memory);
	cr_assert_eq(memory.fd, -1);
	cr_assert_eq(memory.guest.region_count, 0);
}

Test(memory, large_guest_continues_above_the_pci_hole)
{
	const uint64_t size = LAYOUT_PCI_HOLE_START + (8 << 20);
	struct vm_memory memory;
	char err[128];
	uint8_t byte = 0;

	/* Sparse: nothing is allocated until touched. */
	cr_assert_eq(vm_memory_create(&memory, size, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(memory.guest.region_count, 2);
	cr_assert_eq(memory.guest.regions[0].size, LAYOUT_PCI_HOLE_START);
	cr_assert_eq(memory.guest.regions[1].guest_phys_addr,
		     LAYOUT_PCI_HOLE_END);
	cr_assert_eq(memory.guest.regions[1].size, 8 << 20);
	/* The part above the hole follows the part below it in the memfd. */
	memory.guest.regions[1].host_addr[0] = 0xa5;
	cr_assert_eq(pread(memory.fd, &byte, 1, (off_t)LAYOUT_PCI_HOLE_START),
		     1);
	cr_assert_eq(byte, 0xa5);
	assert_advised_huge(&memory.guest.regions[0]);
	assert_advised_huge(&memory.guest.regions[1]);
	vm_memory_destroy(&memory);
}

/* A file for an image, in the test's temporary directory. */
static int image_file(void)
{
	char path[] = "/tmp/vessel-test-image-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	return fd;
}

/* 16 MiB of guest RAM with three pages written, one of them the last. */
static void write_pages(struct vm_memory *memory)
{
	char err[256];
	uint8_t *ram;

	cr_assert_eq(vm_memory_create(memory, 16u << 20, err, sizeof(err)), 0,
		     "%s", err);
	ram = memory->guest.regions[0].host_addr;
	memset(ram + 0x1000, 0xaa, 4096);
	ram[0x5123] = 1;
	ram[(16u << 20) - 1] = 2;
}

Test(memory_image, is_sparse_and_reads_back_lazily_and_eagerly)
{
	struct vm_memory memory, lazy, eager;
	uint64_t saved, read;
	struct stat info;
	char err[256];
	int fd = image_file();

	write_pages(&memory);
	cr_assert_eq(vm_memory_save(&memory, fd, &saved, NULL, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(fstat(fd, &info), 0);
	cr_assert_eq(info.st_size, 16 << 20);
	cr_assert_leq(info.st_blocks * 512, 64 << 10, "%lld bytes allocated",
		      (long long)info.st_blocks * 512);
	cr_assert_eq(vm_memory_image_checksum(fd, 16u << 20, &read, NULL), 0);
	cr_assert_eq(read, saved);

	const struct vm_memory_source eager_source = { .fd = dup(fd), .eager = true };
	const struct vm_memory_source lazy_source = { .fd = dup(fd) };
	cr_assert_eq(vm_memory_open_image(&eager, 16u << 20, &eager_source, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert_eq(vm_memory_open_image(&lazy, 16u << 20, &lazy_source, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert(lazy.private_image);
	cr_assert(!eager.private_image);
	cr_assert_arr_eq(lazy.guest.regions[0].host_addr,
			 memory.guest.regions[0].host_addr, 16u << 20);
	cr_assert_arr_eq(eager.guest.regions[0].host_addr,
			 memory.guest.regions[0].host_addr, 16u << 20);

	/* The guest's writes to a lazily restored image stay in memory. */
	((uint8_t *)lazy.guest.regions[0].host_addr)[0x9000] = 3;
	cr_assert_eq(vm_memory_image_checksum(fd, 16u << 20, &read, NULL), 0);
	cr_assert_eq(read, saved);
	/* And a snapshot of it has them. */
	int again = image_file();
	uint64_t changed;
	cr_assert_eq(vm_memory_save(&lazy, again, &changed, NULL, err, sizeof(err)), 0);
	cr_assert_neq(changed, saved);
	cr_assert_eq(vm_memory_image_checksum(again, 16u << 20, &read, NULL), 0);
	cr_assert_eq(read, changed);
	vm_memory_destroy(&lazy);
	vm_memory_destroy(&eager);
	vm_memory_destroy(&memory);
	close(again);
	close(fd);
}

Test(memory_image, checksum_sees_a_changed_byte)
{
	struct vm_memory memory;
	uint64_t saved, read;
	char err[256];
	int fd = image_file();

	write_pages(&memory);
	cr_assert_eq(vm_memory_save(&memory, fd, &saved, NULL, err, sizeof(err)), 0);
	cr_assert_eq(pwrite(fd, "x", 1, 0x1800), 1);
	cr_assert_eq(vm_memory_image_checksum(fd, 16u << 20, &read, NULL), 0);
	cr_assert_neq(read, saved);
	/* A byte written into a hole too. */
	cr_assert_eq(pwrite(fd, "\xaa", 1, 0x1800), 1);
	cr_assert_eq(vm_memory_image_checksum(fd, 16u << 20, &read, NULL), 0);
	cr_assert_eq(read, saved);
	cr_assert_eq(pwrite(fd, "y", 1, 0x800000), 1);
	cr_assert_eq(vm_memory_image_checksum(fd, 16u << 20, &read, NULL), 0);
	cr_assert_neq(read, saved);
	vm_memory_destroy(&memory);
	close(fd);
}

/* A diff's memory: the listed pages only, a page written to zero among
 * them, read over its base lazily and eagerly. */
Test(memory_image, a_diff_holds_its_pages_and_restores_over_its_base)
{
	struct vm_memory memory, lazy, eager;
	uint64_t saved, read, diff_saved;
	struct stat info;
	char err[256];
	int base = image_file(), diff = image_file();

	write_pages(&memory);
	cr_assert_eq(vm_memory_save(&memory, base, &saved, NULL, err,
				    sizeof(err)), 0, "%s", err);
	uint8_t *ram = memory.guest.regions[0].host_addr;
	memset(ram + 0x1000, 0, 4096); /* written back to zero */
	ram[0x9000] = 7;
	ram[0xa000] = 8; /* 9 to 11 go out as one run */
	ram[0xbfff] = 9;
	ram[0x5123] = 9; /* written, but not listed: stays the base's */
	const uint64_t pages[] = { 1, 9, 10, 11 };
	cr_assert_eq(vm_memory_save_pages(&memory, diff, pages, 4, &diff_saved,
					  NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(fstat(diff, &info), 0);
	cr_assert_eq(info.st_size, 16 << 20);
	cr_assert_leq(info.st_blocks * 512, 16 << 10, "%lld bytes allocated",
		      (long long)info.st_blocks * 512);
	cr_assert_eq(vm_memory_pages_checksum(diff, pages, 4, &read, NULL), 0);
	cr_assert_eq(read, diff_saved);
	/* The list is part of what the checksum covers. */
	cr_assert_eq(vm_memory_pages_checksum(diff, pages + 1, 3, &read, NULL), 0);
	cr_assert_neq(read, diff_saved);

	const struct vm_memory_layer layer = { .fd = diff, .pages = pages,
					       .count = 4 };
	const struct vm_memory_source sources[] = {
		{ .fd = dup(base), .layers = &layer, .layer_count = 1 },
		{ .fd = dup(base), .layers = &layer, .layer_count = 1,
		  .eager = true },
	};
	cr_assert_eq(vm_memory_open_image(&lazy, 16u << 20, &sources[0], err,
					  sizeof(err)), 0, "%s", err);
	cr_assert_eq(vm_memory_open_image(&eager, 16u << 20, &sources[1], err,
					  sizeof(err)), 0, "%s", err);
	const struct vm_memory *restored[] = { &lazy, &eager };
	for (int i = 0; i < 2; i++) {
		const uint8_t *back = restored[i]->guest.regions[0].host_addr;
		cr_assert_eq(back[0x1000], 0, "the zeroed page came from the base");
		cr_assert_eq(back[0x9000], 7);
		cr_assert_eq(back[0xa000], 8);
		cr_assert_eq(back[0xbfff], 9);
		cr_assert_eq(back[0x5123], 1, "an unlisted page is not the base's");
		cr_assert_eq(back[(16u << 20) - 1], 2);
	}
	/* The base's file is never written. */
	cr_assert_eq(vm_memory_image_checksum(base, 16u << 20, &read, NULL), 0);
	cr_assert_eq(read, saved);
	vm_memory_destroy(&lazy);
	vm_memory_destroy(&eager);
	vm_memory_destroy(&memory);
	close(base);
	close(diff);
}
