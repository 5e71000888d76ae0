#include "dirty_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

static uint64_t region_pages(const struct guest_region *region)
{
	return region->size / VM_MEMORY_PAGE_SIZE;
}

static size_t words_for(uint64_t pages)
{
	return (size_t)((pages + 63) / 64);
}

size_t dirty_log_bitmap_words(const struct vm_memory *memory)
{
	return words_for(vm_memory_image_offset(memory, memory->guest.region_count) /
			 VM_MEMORY_PAGE_SIZE);
}

bool dirty_log_active(const struct dirty_log *log)
{
	return log->active;
}

/* Takes the regions' bitmaps away from the writers and frees them. */
static void release_bitmaps(struct vm_memory *memory)
{
	for (unsigned int i = 0; i < memory->guest.region_count; i++)
		free(__atomic_exchange_n(&memory->guest.regions[i].written, NULL,
					 __ATOMIC_ACQ_REL));
}

int dirty_log_start(struct dirty_log *log, int vm_fd, struct vm_memory *memory,
		    char *err, size_t err_len)
{
	if (log->active)
		return 0;
	for (unsigned int i = 0; i < memory->guest.region_count; i++) {
		struct guest_region *region = &memory->guest.regions[i];
		/* The image numbers pages across regions in whole words
		 * (dirty_log_harvest): every region but the last is a
		 * multiple of 256 KiB (machine_layout.h's PCI hole). */
		if (vm_memory_image_offset(memory, i) % (64 * VM_MEMORY_PAGE_SIZE))
			abort();
		uint64_t *bitmap = calloc(words_for(region_pages(region)),
					  sizeof(*bitmap));
		if (!bitmap) {
			release_bitmaps(memory);
			snprintf(err, err_len, "out of memory for the dirty log");
			return -ENOMEM;
		}
		__atomic_store_n(&region->written, bitmap, __ATOMIC_RELEASE);
	}
	int result = vm_memory_log_dirty_pages(memory, vm_fd, true, err, err_len);
	if (result) {
		release_bitmaps(memory);
		return result;
	}
	*log = (struct dirty_log){ .vm_fd = vm_fd, .memory = memory,
				   .active = true };
	return 0;
}

void dirty_log_stop(struct dirty_log *log)
{
	char ignored[8];

	if (!log->active)
		return;
	/* The slots go back to plain memory; a VM on its way out may have
	 * lost them already, which changes nothing. */
	vm_memory_log_dirty_pages(log->memory, log->vm_fd, false, ignored,
				  sizeof(ignored));
	release_bitmaps(log->memory);
	log->active = false;
}

int dirty_log_harvest(struct dirty_log *log, uint64_t *pages, char *err,
		      size_t err_len)
{
	struct vm_memory *memory = log->memory;
	uint64_t *kvm_bitmap = NULL;
	int result = 0;

	for (unsigned int i = 0; i < memory->guest.region_count && !result; i++) {
		struct guest_region *region = &memory->guest.regions[i];
		size_t words = words_for(region_pages(region));
		uint64_t *into = pages + vm_memory_image_offset(memory, i) /
						 VM_MEMORY_PAGE_SIZE / 64;
		uint64_t *grown = realloc(kvm_bitmap, words * sizeof(*grown));

		if (!grown) {
			snprintf(err, err_len, "out of memory for the dirty log");
			result = -ENOMEM;
			break;
		}
		kvm_bitmap = grown;
		/* Without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled, KVM
		 * hands the log over and clears it in one step, write
		 * protecting the pages again: a write after it is in the
		 * next harvest. */
		struct kvm_dirty_log request = { .slot = i,
						 .dirty_bitmap = kvm_bitmap };
		if (ioctl(log->vm_fd, KVM_GET_DIRTY_LOG, &request)) {
			result = -errno;
			snprintf(err, err_len, "KVM_GET_DIRTY_LOG slot %u: %s", i,
				 strerror(-result));
			break;
		}
		for (size_t word = 0; word < words; word++)
			into[word] |= kvm_bitmap[word] |
				      __atomic_exchange_n(&region->written[word], 0,
							  __ATOMIC_ACQ_REL);
	}
	free(kvm_bitmap);
	return result;
}

void dirty_log_put_back(struct dirty_log *log, const uint64_t *pages)
{
	struct vm_memory *memory = log->memory;

	/* A log stopped since (a failed harvest) starts again empty, and
	 * only a full snapshot is a base then. */
	if (!log->active)
		return;
	for (unsigned int i = 0; i < memory->guest.region_count; i++) {
		struct guest_region *region = &memory->guest.regions[i];
		const uint64_t *from = pages + vm_memory_image_offset(memory, i) /
						       VM_MEMORY_PAGE_SIZE / 64;

		for (size_t word = 0; word < words_for(region_pages(region)); word++)
			__atomic_fetch_or(&region->written[word], from[word],
					  __ATOMIC_RELEASE);
	}
}
