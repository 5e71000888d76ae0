#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../firmware/boot.h"
#include "machine_layout.h"
#include "memory.h"

static int initrd_size(const char *path, uint64_t *size, char *err,
		       size_t err_len)
{
	struct stat info;
	char reason[256];
	int fd = boot_file_open(path, &info, reason, sizeof(reason));

	if (fd < 0) {
		snprintf(err, err_len, "--initrd %s", reason);
		return fd;
	}
	close(fd);
	*size = (uint64_t)info.st_size;
	return 0;
}

struct disk_options config_disk_options(const struct disk_config *disk)
{
	return (struct disk_options){
		.path = disk->path,
		.read_only = disk->read_only,
		.cache = disk->direct ? DISK_CACHE_NONE : DISK_CACHE_WRITEBACK,
		.serial = disk->serial,
	};
}

/* An image given to two disks of this VM, one of them writable, would be
 * refused by the second disk's lock as if another process held it: say
 * what is wrong instead. Paths are compared as the files they name. */
static int check_image_given_twice(const struct vm_config *config,
				   unsigned int index, char *err,
				   size_t err_len)
{
	const struct disk_config *disk = &config->disks[index];
	struct stat image, earlier;

	if (stat(disk->path, &image))
		return 0; /* disk_open says why */
	for (unsigned int i = 0; i < index; i++) {
		const struct disk_config *other = &config->disks[i];

		if (stat(other->path, &earlier) == 0 &&
		    earlier.st_dev == image.st_dev &&
		    earlier.st_ino == image.st_ino &&
		    !(disk->read_only && other->read_only)) {
			snprintf(err, err_len,
				 "--disk %s: the image is given twice (already "
				 "used by this VM as %s)",
				 disk->path, other->path);
			return -EBUSY;
		}
	}
	return 0;
}

/* Opens (and locks) each disk once, so a missing image, a bad cache mode
 * or an image another vessel is using is refused before any VM exists. */
static int check_disks(const struct vm_config *config, char *err,
		       size_t err_len)
{
	for (unsigned int i = 0; i < config->disk_count; i++) {
		const struct disk_options options =
			config_disk_options(&config->disks[i]);
		struct disk *disk;
		char reason[256];
		int result = check_image_given_twice(config, i, err, err_len);

		if (result)
			return result;
		result = disk_open(&disk, &options, reason, sizeof(reason));
		if (result) {
			snprintf(err, err_len, "--disk: %s", reason);
			return result;
		}
		disk_close(disk);
	}
	return 0;
}

int config_check_files(const struct vm_config *config, char *err,
		       size_t err_len)
{
	struct kernel_image kernel;
	uint64_t host_memory = vm_memory_host_total();
	uint64_t initrd_bytes = 0;
	int result;

	if (host_memory && config->memory_size > host_memory) {
		snprintf(err, err_len,
			 "--memory %llu MiB is more than this host's %llu MiB of RAM",
			 (unsigned long long)(config->memory_size >> 20),
			 (unsigned long long)(host_memory >> 20));
		return -ENOMEM;
	}
	if (config->initrd_path) {
		result = initrd_size(config->initrd_path, &initrd_bytes, err,
				     err_len);
		if (result)
			return result;
	}
	result = check_disks(config, err, err_len);
	if (result)
		return result;
	char reason[256];
	result = kernel_image_open(config->kernel_path, &kernel, reason,
				   sizeof(reason));
	if (result) {
		snprintf(err, err_len, "--kernel %s", reason);
		return result;
	}
	struct boot_request request = {
		.kernel = &kernel,
		.initrd_size = initrd_bytes,
		.cmdline = config->cmdline,
		.cpu_count = config->cpu_count,
		.machine = machine_layout_firmware(),
	};
	result = boot_check(&request, config->memory_size, err, err_len);
	kernel_image_close(&kernel);
	return result;
}

int config_check_host(const struct vm_config *config,
		      const struct kvm_host *host, char *err, size_t err_len)
{
	if (config->cpu_count > host->max_vcpus) {
		snprintf(err, err_len,
			 "--cpus %u is more than this host's KVM allows (%u)",
			 config->cpu_count, host->max_vcpus);
		return -EINVAL;
	}
	return 0;
}
