/*
 * The `vessel run` command line, parsed into a machine configuration.
 *
 * Promise: options_parse_run() either fills a complete configuration with
 * every value range-checked, or returns -EINVAL with one line in err naming
 * the option and the value that is wrong. It touches no file: checks that
 * need the kernel or the host (sizes, limits) are made by vmm/config.c.
 */
#ifndef VESSEL_VMM_OPTIONS_H
#define VESSEL_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../devices/net_slirp.h"
#include "cpuid.h"
#include "display.h"

#define OPTIONS_DEFAULT_MEMORY (512ULL << 20)
#define OPTIONS_DEFAULT_NAME "vessel"
#define OPTIONS_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"
#define OPTIONS_MAX_CPUS 254 /* APIC IDs 0-253; the IOAPIC takes the next */

#define OPTIONS_MAX_DISKS 8
#define OPTIONS_DISK_SERIAL_MAX 20 /* virtio-blk's ID string */

struct disk_config {
	const char *path;
	bool read_only;
	bool direct; /* cache=none: O_DIRECT, no host page cache */
	char serial[OPTIONS_DISK_SERIAL_MAX + 1];
};

#define OPTIONS_MAX_NICS 4

enum net_backend_kind {
	NET_BACKEND_USER, /* libslirp */
	NET_BACKEND_TAP,
};

struct net_config {
	enum net_backend_kind backend;
	/* Unless mac= is given: 02:76:73:00:00:NN, NN the 1-based --net
	 * position (locally administered, "vs"). */
	uint8_t mac[6];
	struct net_slirp_options user; /* user */
	const char *tap_name; /* tap: ifname=, or NULL when */
	int tap_fd; /* fd= (-1 when ifname=) */
};

struct vm_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL without one */
	const char *cmdline;
	uint64_t memory_size;
	unsigned int cpu_count;
	bool no_reboot;
	struct cpuid_feature_mask feature_mask;
	struct disk_config disks[OPTIONS_MAX_DISKS];
	unsigned int disk_count;
	struct net_config nics[OPTIONS_MAX_NICS];
	unsigned int nic_count;
	struct display_config display; /* zeroed: --display none */
	const char *name; /* --name, for the window title */
};

enum options_result {
	OPTIONS_OK,
	OPTIONS_HELP, /* --help was given: usage printed, exit 0 */
};

/* argv[0] is "run". On success returns OPTIONS_OK or OPTIONS_HELP (>= 0). */
int options_parse_run(int argc, char **argv, struct vm_config *config,
		      char *err, size_t err_len);

/* "512M", "2G", "1048576" (bytes), "64K": 0 or -EINVAL. */
int options_parse_size(const char *text, uint64_t *bytes);

void options_print_run_usage(void);

#endif
