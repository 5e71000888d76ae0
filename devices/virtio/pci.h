/*
 * The virtio over PCI transport, modern interface only (virtio 1.2 §4.1):
 * a PCI function whose 64-bit memory BAR 0 holds the common configuration,
 * ISR, device configuration and notification structures, and the MSI-X
 * table and pending-bit array, each found through a vendor capability.
 *
 * Layout of BAR 0 (VIRTIO_PCI_BAR_SIZE bytes):
 *   0x0000 common configuration    0x1000 ISR status
 *   0x2000 device configuration    0x3000 notifications (4 bytes a queue)
 *   0x4000 MSI-X table             0x5000 MSI-X pending bits
 *
 * Promise: feature negotiation follows §3.1.1: FEATURES_OK stays clear when
 * the driver accepted a feature the device did not offer or left out
 * VERSION_1. A queue kick never runs device work on the vCPU: notification
 * writes go to a per-queue eventfd (a KVM ioeventfd while the BAR is
 * mapped) that the event thread reads. Interrupts are MSI-X messages
 * (../pci_msix.h) delivered by the platform (vmm/): masked vectors set
 * their pending bit and fire on unmask.
 */
#ifndef VESSEL_DEVICES_VIRTIO_PCI_H
#define VESSEL_DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "../bus.h"
#include "../device.h"
#include "../pci.h"
#include "../pci_msix.h"
#include "virtio.h"

#define VIRTIO_PCI_BAR_SIZE 0x8000
#define VIRTIO_PCI_NOTIFY_OFFSET 0x3000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4
#define VIRTIO_PCI_NO_VECTOR 0xffff

/* What the VMM provides to a virtio-pci function. */
struct virtio_pci_platform {
	struct bus *mmio_bus;
	/* The function's MSI-X vectors (../pci_msix.h), the function
	 * being the virtio_pci. */
	pci_msix_route_fn *msi_route;
	pci_msix_signal_fn *msi_signal;
	/* Have KVM signal fd on a write of length bytes at address (assign)
	 * or stop doing so. 0 or -errno. */
	int (*ioeventfd)(void *opaque, uint64_t address, uint32_t length, int fd,
			 bool assign);
	void *opaque;
};

struct virtio_pci;

/* A function presenting device, its BAR to be placed at bar_address by
 * the caller's address plan. NULL with errno set on failure. */
struct virtio_pci *virtio_pci_create(struct virtio_device *device,
				     const struct virtio_pci_platform *platform,
				     uint64_t bar_address);
void virtio_pci_destroy(struct virtio_pci *function);

struct pci_device *virtio_pci_function(struct virtio_pci *function);

/* The function's device record (../device.h), named name (kept by the
 * caller): quiesce holds the guest's kicks and the driver's status changes
 * back and quiesces the device; resume serves what was held back. */
struct device_record virtio_pci_record(struct virtio_pci *function,
				       const char *name);

#endif
