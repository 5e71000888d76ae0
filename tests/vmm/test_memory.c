/* Guest RAM: the memfd behind the mappings, the split around the PCI hole,
 * and the huge-page advice on every region. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../firmware/layout.h"
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
