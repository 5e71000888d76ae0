/*
 * Checks a parsed configuration against the files it names and the host,
 * before any VM exists: the kernel is readable and is a kernel, the initrd
 * is readable, the memory fits the host, and the kernel accepts the command
 * line and initrd in that much memory (firmware/boot.h), and each disk
 * image opens and is not in use by another vessel.
 *
 * Promise: 0, or -errno with one line in err naming the file or value.
 */
#ifndef VESSEL_VMM_CONFIG_H
#define VESSEL_VMM_CONFIG_H

#include <stddef.h>

#include "../devices/disk.h"
#include "kvm.h"
#include "options.h"

int config_check_files(const struct vm_config *config, char *err,
		       size_t err_len);

/* How the disk backend opens a --disk. */
struct disk_options config_disk_options(const struct disk_config *disk);

/* The checks that need /dev/kvm: the vCPU count against KVM's limit. */
int config_check_host(const struct vm_config *config,
		      const struct kvm_host *host, char *err, size_t err_len);

#endif
