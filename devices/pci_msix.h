/*
 * MSI-X as a capability any PCI function can carry (PCI Local Bus 3.0
 * §6.8.2): the capability in configuration space, the vector table and the
 * pending-bit array (PBA) in a region of one of the function's memory BARs,
 * and the delivery of a vector's message through the platform's route and
 * signal hooks (vmm/: a KVM GSI route and an irqfd per vector).
 *
 * Promise: the guest writes only the enable and function-mask bits of the
 * message control word and the address, data and mask bit of each table
 * entry, with aligned 4- or 8-byte accesses (§6.8.2.6: others are
 * refused, and read all ones); the PBA is read only. A vector raised while
 * masked (per vector or by the function mask) or with MSI-X off is kept as
 * its pending bit when MSI-X is on, and sent when it becomes deliverable
 * (§6.8.2.9); a deliverable vector is routed to the message the table
 * holds before it is sent. The state is locked inside; hooks are called
 * with that lock held for routes and without it for signals, from
 * whichever thread raised the vector or wrote the table.
 */
#ifndef VESSEL_DEVICES_PCI_MSIX_H
#define VESSEL_DEVICES_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define PCI_CAP_ID_MSIX 0x11
#define PCI_MSIX_ENTRY_SIZE 16
/* The PBA is one 64-bit word. */
#define PCI_MSIX_MAX_VECTORS 64

/* Point the function's vector at the message (address, data); called
 * whenever the vector becomes deliverable. 0 or -errno. function is the
 * key the platform knows the function by. */
typedef int pci_msix_route_fn(void *opaque, const void *function,
			      unsigned int vector, uint64_t address,
			      uint32_t data);
/* Send the vector's message, as last routed (any thread). */
typedef void pci_msix_signal_fn(void *opaque, const void *function,
				unsigned int vector);

/* Where the table and PBA lie in the function's memory BAR bar, and how
 * many bytes of the BAR each region claims (at least what the vectors
 * need: 16 bytes a vector, 8 bytes of PBA per 64 vectors). */
struct pci_msix_layout {
	uint8_t bar;
	uint32_t table_offset;
	uint32_t table_size;
	uint32_t pba_offset;
	uint32_t pba_size;
};

struct pci_msix_delivery {
	pci_msix_route_fn *route;
	pci_msix_signal_fn *signal;
	void *opaque;
	const void *function;
};

/* Embed in the function; its fields belong to pci_msix.c. */
struct pci_msix {
	pthread_mutex_t lock;
	struct pci_device *pci;
	struct pci_msix_layout layout;
	struct pci_msix_delivery delivery;
	unsigned int vector_count;
	uint8_t cap_offset;
	bool enabled;
	bool function_masked;
	uint64_t pending; /* the PBA, a bit per vector */
	uint8_t table[PCI_MSIX_MAX_VECTORS][PCI_MSIX_ENTRY_SIZE];
};

/* Appends the capability for vector_count vectors (1 to
 * PCI_MSIX_MAX_VECTORS) to pci, with MSI-X off and every vector masked.
 * 0, -EINVAL for a vector count or layout the regions cannot hold, or the
 * error of pci_device_add_capability. */
int pci_msix_init(struct pci_msix *msix, struct pci_device *pci,
		  unsigned int vector_count,
		  const struct pci_msix_layout *layout,
		  const struct pci_msix_delivery *delivery);
void pci_msix_destroy(struct pci_msix *msix);

/* The function's config_write hook hands every configuration write on;
 * a write that touched the message control word takes effect. */
void pci_msix_config_written(struct pci_msix *msix, uint32_t offset,
			     uint32_t size);

/* A guest access of size bytes at offset of the BAR: true when it falls
 * in the table or PBA region, which then served it. */
bool pci_msix_bar_read(struct pci_msix *msix, uint64_t offset, uint8_t *data,
		       uint32_t size);
bool pci_msix_bar_write(struct pci_msix *msix, uint64_t offset,
			const uint8_t *data, uint32_t size);

/* Sends vector's message, or keeps it pending while masked. A vector the
 * function does not have, or any vector while MSI-X is off, is dropped. */
void pci_msix_raise(struct pci_msix *msix, unsigned int vector);

/* The state a snapshot keeps: the first entries entries of the table (16
 * bytes each, as the guest reads them; at most PCI_MSIX_MAX_VECTORS) into
 * table, and the pending bits as the result. */
uint64_t pci_msix_save(struct pci_msix *msix, uint8_t *table,
		       unsigned int entries);
/* Takes saved state back, enable and function mask from configuration
 * space as already restored, and routes and delivers as after an unmask.
 * -EINVAL, changing nothing, for pending bits of vectors the function does
 * not have. */
int pci_msix_restore(struct pci_msix *msix, const uint8_t *table,
		     unsigned int entries, uint64_t pending);

#endif
