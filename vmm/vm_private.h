/*
 * The machine's parts, shared by the files that make up vm.h's promise:
 * vm.c (assembly), vm_run.c (running, pausing, stopping) and
 * snapshot_vm.c (saving and restoring). Nothing else includes it.
 */
#ifndef VESSEL_VMM_VM_PRIVATE_H
#define VESSEL_VMM_VM_PRIVATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <linux/kvm.h>

#include "../devices/acpi_pm.h"
#include "../devices/bus.h"
#include "../devices/cmos_rtc.h"
#include "../devices/device.h"
#include "../devices/device_context.h"
#include "../devices/i8042.h"
#include "../devices/pci.h"
#include "../devices/serial.h"
#include "../devices/virtio/pci.h"
#include "dirty_log.h"
#include "interrupts.h"
#include "memory.h"
#include "state_fdt.h"
#include "vcpu.h"
#include "vm.h"

/* The legacy devices, a disk and a NIC for each option, and the rng. */
#define VM_MAX_DEVICES (8 + OPTIONS_MAX_DISKS + OPTIONS_MAX_NICS)
#define VM_DEVICE_NAME_SIZE 24

struct vm {
	const struct vm_config *config;
	const struct kvm_host *host;
	struct event_loop *loop;
	struct console *console;
	struct vm_owner owner;
	int fd;
	struct vm_memory memory;
	struct dirty_log dirty_log; /* started by the first snapshot */
	struct bus *pio_bus;
	struct bus *mmio_bus;
	struct serial *serial;
	struct i8042 *i8042;
	struct cmos_rtc *rtc;
	struct pci_bus *pci;
	struct acpi_pm *acpi_pm;
	struct interrupts interrupts;
	struct device_context device_context;
	struct virtio_pci_platform virtio_platform;
	uint64_t next_bar_address; /* the PCI MMIO window, handed out upwards */
	struct virtio_rng *rng;
	struct virtio_pci *rng_function;
	struct vm_disk {
		struct disk *disk;
		struct virtio_blk *blk;
		struct virtio_pci *function;
	} disks[OPTIONS_MAX_DISKS];
	struct vm_nic {
		struct virtio_net *net;
		struct virtio_pci *function;
	} nics[OPTIONS_MAX_NICS];

	/* Every device in the order they were created: the order pause
	 * quiesces them in (resume goes backwards) and the API lists them. */
	struct device_record devices[VM_MAX_DEVICES];
	char device_names[VM_MAX_DEVICES][VM_DEVICE_NAME_SIZE];
	unsigned int device_count;

	struct vcpu *vcpus;
	unsigned int vcpu_count; /* created so far */
	struct display *display; /* NULL with --display none */
	atomic_bool window_closed_once; /* the power button was pressed */
	bool started;
	/* The guest's kvmclock when it was paused (vm_pause). */
	struct kvm_clock_data paused_clock;
	bool clock_frozen;
	/* The host's CLOCK_REALTIME when it was, in ns: a snapshot keeps it,
	 * so the restored guest's clock can catch up with the time passed. */
	int64_t paused_realtime_ns;

	pthread_mutex_t stop_lock;
	bool stop_requested;
	enum vm_stop_reason stop_reason;
	char stop_message[256];
};

/* Restores a machine vm.c assembled without booting it: the VM's KVM
 * state, the devices and the vCPUs from reader. snapshot_vm.c. */
int vm_restore_state(struct vm *vm, struct state_reader *reader, char *err,
		     size_t err_len);

#endif
