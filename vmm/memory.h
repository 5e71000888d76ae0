/*
 * Guest RAM: one memfd, mapped MAP_SHARED as one region below the PCI hole
 * and, for guests larger than the hole's start, a second region above 4 GiB
 * (firmware/layout.h), each registered as a KVM memory slot.
 *
 * Promise: the memfd is what later snapshot and migration code reads and
 * what restore replaces; pages are allocated only when the guest touches
 * them, so vessel's own footprint stays apart from the guest's. The
 * mappings ask for transparent huge pages, which a host grants to a memfd
 * only when its shmem_enabled policy is not "never" (docs/decisions.md).
 */
#ifndef VESSEL_VMM_MEMORY_H
#define VESSEL_VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "../devices/guest_memory.h"

struct vm_memory {
	int fd; /* memfd holding all of guest RAM */
	struct guest_memory guest;
};

int vm_memory_create(struct vm_memory *memory, uint64_t size, char *err,
		     size_t err_len);
/* Registers every region as a KVM memory slot of vm_fd. */
int vm_memory_register(const struct vm_memory *memory, int vm_fd, char *err,
		       size_t err_len);
void vm_memory_destroy(struct vm_memory *memory);

/* The host's physical RAM in bytes (the ceiling for --memory). */
uint64_t vm_memory_host_total(void);

#endif
