/*
 * Guest RAM: one memfd, mapped MAP_SHARED as one region below the PCI hole
 * and, for guests larger than the hole's start, a second region above 4 GiB
 * (vmm/machine_layout.h), each registered as a KVM memory slot.
 *
 * Promise: the memfd is what later snapshot and migration code reads and
 * what restore replaces; pages are allocated only when the guest touches
 * them, so vessel's own footprint stays apart from the guest's. The
 * mappings ask for transparent huge pages, which a host grants to a memfd
 * only when its shmem_enabled policy is not "never" (docs/decisions.md).
 */
#ifndef VESSEL_VMM_MEMORY_H
#define VESSEL_VMM_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../devices/guest_memory.h"

struct vm_memory {
	/* memfd holding all of guest RAM, or the image file a lazy restore
	 * maps privately (private_image) */
	int fd;
	bool private_image;
	struct guest_memory guest;
};

int vm_memory_create(struct vm_memory *memory, uint64_t size, char *err,
		     size_t err_len);
/* Registers every region as a KVM memory slot of vm_fd. */
int vm_memory_register(const struct vm_memory *memory, int vm_fd, char *err,
		       size_t err_len);
/* Turns KVM's dirty log of the slots vm_memory_register made on or off
 * (dirty_log.h): slot i is region i. */
int vm_memory_log_dirty_pages(const struct vm_memory *memory, int vm_fd,
			      bool on, char *err, size_t err_len);
void vm_memory_destroy(struct vm_memory *memory);

/*
 * The memory image of a snapshot: guest RAM as one file, its regions in
 * guest-physical order (the order of the memfd), so restore can map it.
 * Pages of zeros are not written (the file is sparse there) and are left
 * out of the checksum, which is XXH3-64 over each non-zero 4 KiB page's
 * number (64 bits, little-endian) and bytes, in order: the same from the
 * guest's memory and from the file, at the cost of its data alone.
 */
#define VM_MEMORY_PAGE_SIZE GUEST_MEMORY_PAGE_SIZE

/* Where region i starts in the image: the regions before it, in order. */
uint64_t vm_memory_image_offset(const struct vm_memory *memory, unsigned int i);

struct progress;

/* Writes the image into fd (empty, for writing). 0 or -errno with err.
 * progress, if not NULL, counts the bytes written. */
int vm_memory_save(const struct vm_memory *memory, int fd, uint64_t *checksum,
		   struct progress *progress, char *err, size_t err_len);
/* The checksum of an image file of size bytes, read from fd. 0 or -errno. */
int vm_memory_image_checksum(int fd, uint64_t size, uint64_t *checksum,
			     struct progress *progress);

/*
 * A diff's memory (page_list.h): a file of the image's size holding the
 * listed pages at their offsets, holes for zero ones. Its checksum is
 * XXH3-64 over every listed page's number and bytes, zero pages included:
 * a page written to zero is part of the diff.
 */
int vm_memory_save_pages(const struct vm_memory *memory, int fd,
			 const uint64_t *pages, size_t count, uint64_t *checksum,
			 struct progress *progress, char *err, size_t err_len);
int vm_memory_pages_checksum(int fd, const uint64_t *pages, size_t count,
			     uint64_t *checksum, struct progress *progress);

struct vm_memory_layer {
	int fd; /* the diff's memory file; its owner's */
	const uint64_t *pages;
	size_t count;
};

struct vm_memory_source {
	int fd; /* the full image at the bottom, taken: closed or kept */
	const struct vm_memory_layer *layers; /* diffs over it, oldest first */
	unsigned int layer_count;
	bool eager;
	struct progress *progress; /* NULL, or counts what is read */
};

/* Guest RAM of size bytes from a checked source: the image mapped
 * privately, pages read as the guest touches them, or with eager read at
 * once into a new memfd; then each layer's pages read over it. */
int vm_memory_open_image(struct vm_memory *memory, uint64_t size,
			 const struct vm_memory_source *source, char *err,
			 size_t err_len);

/* The host's physical RAM in bytes (the ceiling for --memory). */
uint64_t vm_memory_host_total(void);

#endif
