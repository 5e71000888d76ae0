#include "memory.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <xxhash.h>

#include "machine_layout.h"
#include "progress.h"

/* Maps memory->fd as the guest's regions: below the PCI hole, and above
 * 4 GiB what does not fit below; the file holds them in that order. */
static int map_regions(struct vm_memory *memory, uint64_t size, int share,
		       char *err, size_t err_len)
{
	uint64_t low_size = size < LAYOUT_PCI_HOLE_START ? size : LAYOUT_PCI_HOLE_START;
	uint64_t high_size = size - low_size;
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
				  share | MAP_NORESERVE, memory->fd,
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

int vm_memory_create(struct vm_memory *memory, uint64_t size, char *err,
		     size_t err_len)
{
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
	return map_regions(memory, size, MAP_SHARED, err, err_len);
}

/* Every region as KVM memory slot i, with flags. */
static int set_slots(const struct vm_memory *memory, int vm_fd, uint32_t flags,
		     char *err, size_t err_len)
{
	for (unsigned int i = 0; i < memory->guest.region_count; i++) {
		const struct guest_region *region = &memory->guest.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = flags,
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

int vm_memory_register(const struct vm_memory *memory, int vm_fd, char *err,
		       size_t err_len)
{
	return set_slots(memory, vm_fd, 0, err, err_len);
}

int vm_memory_log_dirty_pages(const struct vm_memory *memory, int vm_fd,
			      bool on, char *err, size_t err_len)
{
	return set_slots(memory, vm_fd, on ? KVM_MEM_LOG_DIRTY_PAGES : 0, err,
			 err_len);
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

uint64_t vm_memory_image_offset(const struct vm_memory *memory, unsigned int i)
{
	uint64_t offset = 0;

	while (i-- > 0)
		offset += memory->guest.regions[i].size;
	return offset;
}

static uint64_t total_size(const struct vm_memory *memory)
{
	return vm_memory_image_offset(memory, memory->guest.region_count);
}

static bool page_is_zero(const uint8_t *page)
{
	const uint64_t *words = (const uint64_t *)page;

	for (size_t i = 0; i < VM_MEMORY_PAGE_SIZE / sizeof(*words); i++)
		if (words[i])
			return false;
	return true;
}

/* One page into the checksum: its number, then its bytes. */
static void checksum_page(XXH3_state_t *state, uint64_t number,
			  const uint8_t *page)
{
	uint64_t little_endian = htole64(number);

	XXH3_64bits_update(state, &little_endian, sizeof(little_endian));
	XXH3_64bits_update(state, page, VM_MEMORY_PAGE_SIZE);
}

/* The next range at or after *start (below end) that may hold data: the
 * memfd's allocated extents, found with SEEK_DATA/SEEK_HOLE (an untouched
 * page of a memfd is a hole, and reading it would allocate it); all of a
 * private image mapping, whose written pages the file does not show. */
static bool next_data(const struct vm_memory *memory, uint64_t *start,
		      uint64_t *stop, uint64_t end)
{
	if (*start >= end)
		return false;
	if (memory->private_image) {
		*stop = end;
		return true;
	}
	off_t data = lseek(memory->fd, (off_t)*start, SEEK_DATA);
	if (data < 0 || (uint64_t)data >= end)
		return false;
	off_t hole = lseek(memory->fd, data, SEEK_HOLE);
	*start = (uint64_t)data & ~(uint64_t)(VM_MEMORY_PAGE_SIZE - 1);
	*stop = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
	return true;
}

static int write_all(int fd, const uint8_t *data, size_t size, uint64_t offset)
{
	while (size) {
		ssize_t written = pwrite(fd, data, size, (off_t)offset);
		if (written < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += written;
		size -= (size_t)written;
		offset += (uint64_t)written;
	}
	return 0;
}

/*
 * The image file being written: its data is made durable window by
 * window as the save goes on (fdatasync), so that the progress counts
 * bytes on the disk, not in the page cache, and the caller's final fsync
 * has only the last window left. On the build machine's disk a 734 MB
 * image took 6.0 s with one fsync at the end, 6.1 s so.
 */
#define FLUSH_WINDOW (32u << 20)

struct image_out {
	int fd;
	struct progress *progress;
	uint64_t unflushed; /* bytes written since the last fdatasync */
};

static int flush_window(struct image_out *out)
{
	if (out->unflushed && fdatasync(out->fd))
		return -errno;
	if (out->progress)
		progress_add(out->progress, out->unflushed);
	out->unflushed = 0;
	return 0;
}

/* A run of pages, in pieces that fill the windows. */
static int image_write(struct image_out *out, const uint8_t *data,
		       size_t size, uint64_t offset)
{
	int result = 0;

	while (size && !result) {
		size_t piece = FLUSH_WINDOW - out->unflushed;
		if (piece > size)
			piece = size;
		result = write_all(out->fd, data, piece, offset);
		out->unflushed += piece;
		if (!result && out->unflushed >= FLUSH_WINDOW)
			result = flush_window(out);
		data += piece;
		size -= piece;
		offset += piece;
	}
	return result;
}

/* What a save writes into the image file, its pages into the checksum. */
struct save_pages {
	const uint64_t *pages; /* NULL: every non-zero page */
	size_t count;
};

/* Every non-zero page, runs of them written at once. */
static int save_all(const struct vm_memory *memory, struct image_out *out,
		    XXH3_state_t *state)
{
	int result = 0;

	for (unsigned int i = 0; i < memory->guest.region_count && !result; i++) {
		const struct guest_region *region = &memory->guest.regions[i];
		uint64_t base = vm_memory_image_offset(memory, i);
		uint64_t start = base, stop, end = base + region->size;

		for (; !result && next_data(memory, &start, &stop, end); start = stop) {
			const uint8_t *host = region->host_addr;
			uint64_t run = start; /* first page of a non-zero run */
			for (uint64_t page = start; page <= stop && !result;
			     page += VM_MEMORY_PAGE_SIZE) {
				bool zero = page == stop ||
					    page_is_zero(host + (page - base));
				if (!zero)
					checksum_page(state, page / VM_MEMORY_PAGE_SIZE,
						      host + (page - base));
				if (zero && run < page)
					result = image_write(out, host + (run - base),
							     page - run, run);
				if (zero)
					run = page + VM_MEMORY_PAGE_SIZE;
			}
		}
	}
	return result;
}

/* The host address of the image's page, or NULL beyond guest RAM. */
static const uint8_t *image_page(const struct vm_memory *memory, uint64_t page)
{
	uint64_t offset = page * VM_MEMORY_PAGE_SIZE;

	for (unsigned int i = 0; i < memory->guest.region_count; i++) {
		const struct guest_region *region = &memory->guest.regions[i];
		uint64_t base = vm_memory_image_offset(memory, i);
		if (offset >= base && offset - base < region->size)
			return region->host_addr + (offset - base);
	}
	return NULL;
}

/* The listed pages, zero ones into the checksum but left holes: the
 * list says they are the diff's. Consecutive non-zero pages are written
 * at once. */
static int save_listed(const struct vm_memory *memory, struct image_out *out,
		       const uint64_t *pages, size_t count, XXH3_state_t *state)
{
	const uint8_t *run = NULL; /* the first page of a run to write */
	uint64_t run_page = 0, run_pages = 0;
	int result = 0;

	for (size_t i = 0; i <= count && !result; i++) {
		const uint8_t *host = i < count ? image_page(memory, pages[i]) : NULL;
		if (i < count && !host)
			return -EINVAL;
		bool zero = host && page_is_zero(host);
		if (host)
			checksum_page(state, pages[i], host);
		bool extends = host && !zero && run_pages &&
			       pages[i] == run_page + run_pages &&
			       host == run + run_pages * VM_MEMORY_PAGE_SIZE;
		if (extends) {
			run_pages++;
			continue;
		}
		if (run_pages)
			result = image_write(out, run, run_pages * VM_MEMORY_PAGE_SIZE,
					     run_page * VM_MEMORY_PAGE_SIZE);
		run_pages = host && !zero;
		run = host;
		run_page = i < count ? pages[i] : 0;
		if (zero && out->progress)
			progress_add(out->progress, VM_MEMORY_PAGE_SIZE);
	}
	return result;
}

static int save_image(const struct vm_memory *memory, int fd,
		      const struct save_pages *which, uint64_t *checksum,
		      struct progress *progress, char *err, size_t err_len)
{
	XXH3_state_t *state = XXH3_createState();
	struct image_out out = { .fd = fd, .progress = progress };
	int result = 0;

	if (!state) {
		snprintf(err, err_len, "out of memory for the checksum");
		return -ENOMEM;
	}
	XXH3_64bits_reset(state);
	/* The file's size first: what is not written stays a hole. */
	if (ftruncate(fd, (off_t)total_size(memory)))
		result = -errno;
	else if (which->pages)
		result = save_listed(memory, &out, which->pages, which->count,
				     state);
	else
		result = save_all(memory, &out, state);
	/* The caller's fsync makes the last window durable. */
	if (!result && progress)
		progress_add(progress, out.unflushed);
	if (result)
		snprintf(err, err_len, "writing guest memory: %s",
			 strerror(-result));
	*checksum = XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return result;
}

int vm_memory_save(const struct vm_memory *memory, int fd, uint64_t *checksum,
		   struct progress *progress, char *err, size_t err_len)
{
	const struct save_pages all = { NULL, 0 };

	return save_image(memory, fd, &all, checksum, progress, err, err_len);
}

int vm_memory_save_pages(const struct vm_memory *memory, int fd,
			 const uint64_t *pages, size_t count, uint64_t *checksum,
			 struct progress *progress, char *err, size_t err_len)
{
	/* An empty list is a list still: nothing but the file's size. */
	static const uint64_t none[1];
	const struct save_pages listed = { count ? pages : none, count };

	return save_image(memory, fd, &listed, checksum, progress, err, err_len);
}

/* Calls visit for each run of pages of the image fd that may hold data
 * (SEEK_DATA/SEEK_HOLE), page-aligned, up to size. */
static int for_each_data_run(int fd, uint64_t size,
			     int (*visit)(void *opaque, uint64_t start,
					  uint64_t stop),
			     void *opaque)
{
	for (uint64_t start = 0; start < size;) {
		off_t data = lseek(fd, (off_t)start, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		uint64_t first = (uint64_t)data & ~(uint64_t)(VM_MEMORY_PAGE_SIZE - 1);
		uint64_t stop = (uint64_t)hole < size ? (uint64_t)hole : size;
		int result = visit(opaque, first, stop);
		if (result)
			return result;
		start = stop > (uint64_t)data ? stop : (uint64_t)data + 1;
	}
	return 0;
}

#define READ_CHUNK (1u << 20)

struct checksum_walk {
	int fd;
	XXH3_state_t *state;
	uint8_t *buffer;
	bool zero_pages_too; /* a diff's listed pages: zeros count */
	struct progress *progress;
};

static int read_all(int fd, uint8_t *buffer, size_t size, uint64_t offset)
{
	while (size) {
		ssize_t got = pread(fd, buffer, size, (off_t)offset);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		buffer += got;
		size -= (size_t)got;
		offset += (uint64_t)got;
	}
	return 0;
}

static int checksum_run(void *opaque, uint64_t start, uint64_t stop)
{
	struct checksum_walk *walk = opaque;

	while (start < stop) {
		size_t chunk = stop - start < READ_CHUNK ? (size_t)(stop - start) : READ_CHUNK;
		/* A run's end may fall inside the image's last page only if
		 * the file is not a whole number of pages: refused before. */
		int result = read_all(walk->fd, walk->buffer, chunk, start);
		if (result)
			return result;
		for (size_t page = 0; page + VM_MEMORY_PAGE_SIZE <= chunk;
		     page += VM_MEMORY_PAGE_SIZE)
			if (walk->zero_pages_too ||
			    !page_is_zero(walk->buffer + page))
				checksum_page(walk->state,
					      (start + page) / VM_MEMORY_PAGE_SIZE,
					      walk->buffer + page);
		if (walk->progress)
			progress_add(walk->progress, chunk);
		start += chunk;
	}
	return 0;
}

/* Calls visit for each run of consecutive pages of the list, as byte
 * offsets of the image. */
static int for_each_listed_run(const uint64_t *pages, size_t count,
			       int (*visit)(void *opaque, uint64_t start,
					    uint64_t stop),
			       void *opaque)
{
	for (size_t first = 0, last; first < count; first = last + 1) {
		for (last = first; last + 1 < count &&
				   pages[last + 1] == pages[last] + 1; last++)
			;
		int result = visit(opaque, pages[first] * VM_MEMORY_PAGE_SIZE,
				   (pages[last] + 1) * VM_MEMORY_PAGE_SIZE);
		if (result)
			return result;
	}
	return 0;
}

/* XXH3-64 over fd's pages: with listed, the list's, zero ones included;
 * else every non-zero page of an image of size bytes. */
static int checksum_file(int fd, bool listed, const uint64_t *pages,
			 size_t count, uint64_t size, uint64_t *checksum,
			 struct progress *progress)
{
	struct checksum_walk walk = {
		.fd = fd,
		.state = XXH3_createState(),
		.buffer = malloc(READ_CHUNK),
		.zero_pages_too = listed,
		.progress = progress,
	};
	int result = walk.state && walk.buffer ? 0 : -ENOMEM;

	if (!result) {
		XXH3_64bits_reset(walk.state);
		result = listed ?
			for_each_listed_run(pages, count, checksum_run, &walk) :
			for_each_data_run(fd, size, checksum_run, &walk);
		*checksum = XXH3_64bits_digest(walk.state);
	}
	XXH3_freeState(walk.state);
	free(walk.buffer);
	return result;
}

int vm_memory_pages_checksum(int fd, const uint64_t *pages, size_t count,
			     uint64_t *checksum, struct progress *progress)
{
	return checksum_file(fd, true, pages, count, 0, checksum, progress);
}

int vm_memory_image_checksum(int fd, uint64_t size, uint64_t *checksum,
			     struct progress *progress)
{
	return checksum_file(fd, false, NULL, 0, size, checksum, progress);
}

struct load_walk {
	const struct vm_memory *memory;
	int fd;
	struct progress *progress;
};

/* Reads the image's run into the regions it covers. */
static int load_run(void *opaque, uint64_t start, uint64_t stop)
{
	struct load_walk *walk = opaque;

	for (unsigned int i = 0; i < walk->memory->guest.region_count; i++) {
		const struct guest_region *region = &walk->memory->guest.regions[i];
		uint64_t base = vm_memory_image_offset(walk->memory, i);
		uint64_t from = start > base ? start : base;
		uint64_t to = stop < base + region->size ? stop : base + region->size;
		if (from >= to)
			continue;
		int result = read_all(walk->fd, (uint8_t *)region->host_addr +
					  (from - base), to - from, from);
		if (result)
			return result;
		if (walk->progress)
			progress_add(walk->progress, to - from);
	}
	return 0;
}

/* Each diff's pages over what is there, oldest first: into a private
 * mapping, a page so read becomes the process's own copy. */
static int apply_layers(struct vm_memory *memory,
			const struct vm_memory_source *source)
{
	for (unsigned int i = 0; i < source->layer_count; i++) {
		const struct vm_memory_layer *layer = &source->layers[i];
		struct load_walk walk = { .memory = memory, .fd = layer->fd,
					  .progress = source->progress };
		int result = for_each_listed_run(layer->pages, layer->count,
						 load_run, &walk);
		if (result)
			return result;
	}
	return 0;
}

int vm_memory_open_image(struct vm_memory *memory, uint64_t size,
			 const struct vm_memory_source *source, char *err,
			 size_t err_len)
{
	int result;

	if (!source->eager) {
		/* Pages come in from the file as the guest touches them;
		 * its writes stay in this process (copy on write). */
		*memory = (struct vm_memory){ .fd = source->fd,
					      .private_image = true };
		result = map_regions(memory, size, MAP_PRIVATE, err, err_len);
	} else {
		result = vm_memory_create(memory, size, err, err_len);
		if (result) {
			close(source->fd);
			return result;
		}
		struct load_walk walk = { .memory = memory, .fd = source->fd,
					  .progress = source->progress };
		result = for_each_data_run(source->fd, size, load_run, &walk);
		close(source->fd);
		if (result) {
			snprintf(err, err_len, "reading the memory image: %s",
				 strerror(-result));
			vm_memory_destroy(memory);
		}
	}
	if (!result && (result = apply_layers(memory, source))) {
		snprintf(err, err_len, "reading a diff's pages: %s",
			 strerror(-result));
		vm_memory_destroy(memory);
	}
	return result;
}
