#include "memory.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "../firmware/layout.h"

int vm_memory_create(struct vm_memory *memory, uint64_t size, char *err,
		     size_t err_len)
{
	uint64_t low_size = size < LAYOUT_PCI_HOLE_START ? size : LAYOUT_PCI_HOLE_START;
	uint64_t high_size = size - low_size;

	*memory = (struct vm_memory){ .fd = -1 };
	memory->fd = memfd_create("vessel-guest-ram", MFD_CLOEXEC);
	if (memory->fd < 0) {
		int saved = errno;
		snprintf(err, err_len, "memfd_create for guest RAM: %s",
			 strerror(saved));
		return -saved;
	}
	if (ftruncate(memory->fd, (off_t)size)) {
		int saved = errno;
		snprintf(err, err_len, "sizing guest RAM to %llu bytes: %s",
			 (unsigned long long)size, strerror(saved));
		vm_memory_destroy(memory);
		return -saved;
	}
	const struct {
		uint64_t guest_phys_addr, size, file_offset;
	} layout[] = {
		{ 0, low_size, 0 },
		{ LAYOUT_PCI_HOLE_END, high_size, low_size },
	};
	for (int i = 0; i < 2 && layout[i].size; i++) {
		/* MAP_NORESERVE: the guest touches RAM lazily; the host
		 * commits a page only when it is first written. */
		void *host = mmap(NULL, layout[i].size, PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_NORESERVE, memory->fd,
				  (off_t)layout[i].file_offset);
		if (host == MAP_FAILED) {
			int saved = errno;
			snprintf(err, err_len, "mapping %llu bytes of guest RAM: %s",
				 (unsigned long long)layout[i].size,
				 strerror(saved));
			vm_memory_destroy(memory);
			return -saved;
		}
		/* Huge pages where the host allows them for shared memory
		 * (transparent_hugepage/shmem_enabled advise, within_size or
		 * always; the kernel then also places the mapping on a huge
		 * page boundary): KVM maps a 2 MiB page with one entry, so the
		 * guest's TLB misses walk a shorter nested table. Only
		 * advice: a host without THP keeps small pages. */
		madvise(host, layout[i].size, MADV_HUGEPAGE);
		memory->guest.regions[i] = (struct guest_region){
			.guest_phys_addr = layout[i].guest_phys_addr,
			.size = layout[i].size,
			.host_addr = host,
		};
		memory->guest.region_count = i + 1;
	}
	return 0;
}

int vm_memory_register(const struct vm_memory *memory, int vm_fd, char *err,
		       size_t err_len)
{
	for (unsigned int i = 0; i < memory->guest.region_count; i++) {
		const struct guest_region *region = &memory->guest.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = region->guest_phys_addr,
			.memory_size = region->size,
			.userspace_addr = (uint64_t)(uintptr_t)region->host_addr,
		};
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot)) {
			int saved = errno;
			snprintf(err, err_len,
				 "KVM_SET_USER_MEMORY_REGION slot %u at 0x%llx: %s",
				 i, (unsigned long long)region->guest_phys_addr,
				 strerror(saved));
			return -saved;
		}
	}
	return 0;
}

void vm_memory_destroy(struct vm_memory *memory)
{
	for (unsigned int i = 0; i < memory->guest.region_count; i++)
		munmap(memory->guest.regions[i].host_addr,
		       memory->guest.regions[i].size);
	if (memory->fd >= 0)
		close(memory->fd);
	*memory = (struct vm_memory){ .fd = -1 };
}

uint64_t vm_memory_host_total(void)
{
	struct sysinfo info;

	if (sysinfo(&info))
		return 0;
	return (uint64_t)info.totalram * info.mem_unit;
}
