/*
 * A machine's configuration, owned: built from the command line
 * (options.c) or from JSON (the control API), written back as JSON (the
 * API's answers, later the snapshot).
 *
 * Promise: a configuration owns every string it holds (release or free it
 * with the calls below); nothing in it points into argv or into memory that
 * can go away (the CPU feature changes point into cpuid.c's constant table,
 * which lives as long as the program). vm_config_from_json() applies the
 * same checks as the command line (options.c's, shared) and refuses an
 * unknown key, a value of the wrong type or out of range with one line
 * naming the field.
 */
#ifndef VESSEL_VMM_VM_CONFIG_H
#define VESSEL_VMM_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../devices/net_slirp.h"
#include "cpuid.h"
#include "display.h"

/* The JSON form's version: a reader refuses any other. */
#define VM_CONFIG_VERSION 1

#define OPTIONS_MAX_CPUS 254 /* APIC IDs 0-253; the IOAPIC takes the next */

#define OPTIONS_MAX_DISKS 8
#define OPTIONS_DISK_SERIAL_MAX 20 /* virtio-blk's ID string */
#define OPTIONS_MAX_DISK_QUEUES 16 /* VIRTIO_MAX_QUEUES */

struct disk_config {
	char *path;
	bool read_only;
	bool direct; /* cache=none: O_DIRECT, no host page cache */
	char serial[OPTIONS_DISK_SERIAL_MAX + 1];
	/* Request queues, 1 to OPTIONS_MAX_DISK_QUEUES; 0: one per vCPU, up
	 * to that many (as QEMU's virtio-blk-pci num-queues). */
	unsigned int queues;
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
	char *tap_name; /* tap: ifname=, or NULL when fd= */
	int tap_fd; /* fd= (-1 when ifname=) */
};

struct vm_config {
	char *kernel_path;
	char *initrd_path; /* NULL without one */
	char *cmdline;
	uint64_t memory_size;
	unsigned int cpu_count;
	bool no_reboot;
	struct cpuid_feature_mask feature_mask;
	struct disk_config disks[OPTIONS_MAX_DISKS];
	unsigned int disk_count;
	struct net_config nics[OPTIONS_MAX_NICS];
	unsigned int nic_count;
	struct display_config display; /* zeroed: --display none */
	char *name; /* --name: the window title's */
};

struct json_object;

/* Frees the strings config owns and zeroes it (a struct on the stack). */
void vm_config_release(struct vm_config *config);
/* Releases and frees a configuration from vm_config_copy() or
 * vm_config_from_json(); NULL is allowed. */
void vm_config_free(struct vm_config *config);

/* A heap copy that owns its own strings; NULL when out of memory. */
struct vm_config *vm_config_copy(const struct vm_config *config);

/* The JSON form (docs/api.md); NULL when out of memory. json_object_put()
 * it. */
struct json_object *vm_config_to_json(const struct vm_config *config);

/* 0 and a heap configuration in *config, or -EINVAL (-ENOMEM) with one
 * line in err naming the field. */
int vm_config_from_json(struct json_object *object,
			struct vm_config **config, char *err, size_t err_len);

#endif
