#include "boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acpi.h"
#include "boot_cpu.h"
#include "boot_handoff.h"
#include "bzimage.h"
#include "e820.h"
#include "elf_pvh.h"
#include "layout.h"
#include "mptable.h"

#define INITRD_ALIGNMENT 0x1000ULL
#define MIB (UINT64_C(1) << 20)
/* The file is read whole into vessel's memory, and no guest of vessel's
 * has more RAM below 4 GiB to load it into (vmm/machine_layout.h). */
#define KERNEL_FILE_MAX_SIZE (UINT64_C(3) << 30)

_Static_assert(LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX <= LAYOUT_EBDA_START,
	       "the command line overlaps the EBDA");

/* mapping_size: 0 when data came from malloc(), else the length of the
 * anonymous mapping that holds it. */
static int parse_image(const char *path, uint8_t *data, size_t size,
		       size_t mapping_size, struct kernel_image *image,
		       char *err, size_t err_len)
{
	int ret;

	memset(image, 0, sizeof(*image));
	image->path = path;
	image->data = data;
	image->size = size;
	image->mapping_size = mapping_size;

	if (size >= SELFMAG && memcmp(data, ELFMAG, SELFMAG) == 0)
		ret = elf_pvh_parse(image, err, err_len);
	else
		ret = bzimage_parse(image, err, err_len);
	if (ret < 0)
		kernel_image_close(image);
	return ret;
}

int kernel_image_parse(const char *path, uint8_t *data, size_t size,
		       struct kernel_image *image, char *err, size_t err_len)
{
	return parse_image(path, data, size, 0, image, err, err_len);
}

int boot_file_open(const char *path, struct stat *info, char *err,
		   size_t err_len)
{
	/* O_NONBLOCK changes nothing for a regular file's reads (open(2)). */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int ret;

	if (fd < 0 || fstat(fd, info) < 0) {
		ret = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	if (!S_ISREG(info->st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int kernel_image_open(const char *path, struct kernel_image *image, char *err,
		      size_t err_len)
{
	struct stat status;
	uint8_t *data = NULL;
	size_t done = 0, mapping_size = 0;
	int fd, ret;

	memset(image, 0, sizeof(*image));
	fd = boot_file_open(path, &status, err, err_len);
	if (fd < 0)
		return fd;
	/* A kernel must fit in guest RAM below the PCI hole. */
	if ((uint64_t)status.st_size > KERNEL_FILE_MAX_SIZE) {
		ret = -EFBIG;
		snprintf(err, err_len,
			 "%s: %jd bytes is more than vessel's 3 GiB of low RAM",
			 path, (intmax_t)status.st_size);
		goto fail;
	}
	/* An anonymous mapping rather than malloc(): unmapping it gives the
	 * pages back at once, where a freed heap block of this size could stay
	 * resident in vessel for the guest's whole life. */
	mapping_size = status.st_size > 0 ? (size_t)status.st_size : 1;
	data = mmap(NULL, mapping_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (data == MAP_FAILED) {
		data = NULL;
		ret = -ENOMEM;
		snprintf(err, err_len, "%s: out of memory for %jd bytes", path,
			 (intmax_t)status.st_size);
		goto fail;
	}
	while (done < (size_t)status.st_size) {
		ssize_t count = read(fd, data + done,
				     (size_t)status.st_size - done);

		if (count < 0 && errno == EINTR)
			continue;
		if (count < 0) {
			ret = -errno;
			snprintf(err, err_len, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (count == 0)
			break; /* shrank while read: parse what is there */
		done += (size_t)count;
	}
	close(fd);
	return parse_image(path, data, done, mapping_size, image, err, err_len);

fail:
	if (data)
		munmap(data, mapping_size);
	close(fd);
	return ret;
}

void kernel_image_close(struct kernel_image *image)
{
	if (image->mapping_size)
		munmap(image->data, image->mapping_size);
	else
		free(image->data);
	memset(image, 0, sizeof(*image));
}

/* Where a request puts things in a guest whose RAM below the PCI hole ends
 * at low_memory_end: the one computation boot_check and boot_load share. */
struct boot_plan {
	size_t cmdline_length;
	uint64_t initrd_address;
};

static int boot_plan(const struct boot_request *request,
		     uint64_t low_memory_end, struct boot_plan *plan,
		     char *err, size_t err_len)
{
	const struct kernel_image *kernel = request->kernel;
	int ret;

	if (!kernel || !kernel->data) {
		snprintf(err, err_len, "no kernel image to boot");
		return -EINVAL;
	}
	if (!request->machine) {
		snprintf(err, err_len, "no machine to describe to the kernel");
		return -EINVAL;
	}
	ret = mptable_check_cpu_count(request->cpu_count, err, err_len);
	if (ret < 0)
		return ret;

	plan->cmdline_length = strlen(request->cmdline);
	if (plan->cmdline_length > kernel->cmdline_max) {
		snprintf(err, err_len,
			 "kernel command line of %zu bytes is longer than the %" PRIu32 " bytes %s accepts",
			 plan->cmdline_length, kernel->cmdline_max,
			 kernel->path);
		return -EINVAL;
	}

	if (kernel->kernel_end > low_memory_end) {
		snprintf(err, err_len,
			 "%s needs guest RAM up to %" PRIu64 " MiB, but the guest has %" PRIu64 " MiB below the PCI hole",
			 kernel->path, (kernel->kernel_end + MIB - 1) / MIB,
			 low_memory_end / MIB);
		return -EINVAL;
	}

	plan->initrd_address = 0;
	if (request->initrd_size == 0)
		return 0;
	/* As high as allowed (boot.rst, "initrd_addr_max"), 4 KiB aligned,
	 * and clear of the kernel's decompression area. */
	uint64_t ceiling = kernel->initrd_addr_max >= low_memory_end ?
				   low_memory_end :
				   kernel->initrd_addr_max + 1;
	if (ceiling < kernel->kernel_end ||
	    request->initrd_size > ceiling - kernel->kernel_end ||
	    ((ceiling - request->initrd_size) & ~(INITRD_ALIGNMENT - 1)) <
		    kernel->kernel_end) {
		snprintf(err, err_len,
			 "initrd of %zu bytes does not fit in guest RAM between the end of %s at 0x%" PRIx64 " and 0x%" PRIx64,
			 request->initrd_size, kernel->path, kernel->kernel_end,
			 ceiling);
		return -EINVAL;
	}
	plan->initrd_address =
		(ceiling - request->initrd_size) & ~(INITRD_ALIGNMENT - 1);
	return 0;
}

int boot_check(const struct boot_request *request, uint64_t memory_size,
	       char *err, size_t err_len)
{
	struct boot_plan plan;
	uint64_t low_ram_end =
		request->machine ? request->machine->low_ram_end : 0;
	uint64_t low_memory_end = memory_size < low_ram_end ? memory_size :
							      low_ram_end;

	return boot_plan(request, low_memory_end, &plan, err, err_len);
}

/* The tables every guest gets, whatever its kernel's format. */
static int boot_write_tables(const struct boot_request *request,
			     const struct guest_memory *memory,
			     size_t cmdline_length, uint64_t *rsdp_address)
{
	int ret = guest_memory_write(memory, LAYOUT_CMDLINE, request->cmdline,
				     cmdline_length + 1);

	if (ret == 0)
		ret = acpi_tables_write(memory, request->machine,
					request->cpu_count, rsdp_address);
	if (ret == 0)
		ret = mptable_write(memory, request->machine,
				    request->cpu_count);
	if (ret == 0)
		ret = boot_gdt_write(memory);
	return ret;
}

int boot_load(const struct boot_request *request,
	      const struct guest_memory *memory, struct boot_entry *entry,
	      char *err, size_t err_len)
{
	const struct kernel_image *kernel = request->kernel;
	struct e820_table e820;
	struct boot_plan plan;
	struct boot_handoff handoff = {
		.cmdline_address = LAYOUT_CMDLINE,
		.initrd_size = request->initrd_size,
		.e820 = &e820,
		.framebuffer = request->framebuffer,
	};
	int ret;

	ret = boot_plan(request, e820_low_memory_end(memory), &plan, err,
			err_len);
	if (ret < 0)
		return ret;
	handoff.initrd_address = plan.initrd_address;

	if (e820_build(memory, &e820) < 0 ||
	    boot_write_tables(request, memory, plan.cmdline_length,
			      &handoff.rsdp_address) < 0) {
		snprintf(err, err_len,
			 "guest RAM must start at address 0 and extend past 1 MiB for vessel's firmware tables");
		return -EFAULT;
	}
	if (request->initrd_size != 0 && !request->initrd) {
		snprintf(err, err_len, "initrd of %zu bytes without its contents",
			 request->initrd_size);
		return -EINVAL;
	}
	if (request->initrd_size != 0 &&
	    guest_memory_write(memory, plan.initrd_address, request->initrd,
			       request->initrd_size) < 0) {
		snprintf(err, err_len,
			 "initrd of %zu bytes at 0x%" PRIx64 " is outside guest RAM",
			 request->initrd_size, plan.initrd_address);
		return -EFAULT;
	}

	memset(entry, 0, sizeof(*entry));
	entry->rip = kernel->entry_point;
	entry->rsp = LAYOUT_BOOT_STACK;
	if (kernel->format == KERNEL_FORMAT_BZIMAGE) {
		ret = bzimage_load(kernel, memory, &handoff, err, err_len);
		if (ret < 0)
			return ret;
		if (boot_page_tables_write(memory) < 0) {
			snprintf(err, err_len,
				 "page tables at 0x%x are outside guest RAM",
				 LAYOUT_PAGE_TABLES);
			return -EFAULT;
		}
		entry->long_mode = true;
		entry->rsi = LAYOUT_ZERO_PAGE;
		entry->cr3 = LAYOUT_PAGE_TABLES;
	} else {
		ret = elf_pvh_load(kernel, memory, err, err_len);
		if (ret == 0)
			ret = pvh_start_info_write(memory, &handoff, err,
						   err_len);
		if (ret < 0)
			return ret;
		entry->long_mode = false;
		entry->rbx = LAYOUT_PVH_START_INFO;
	}
	return 0;
}
