/*
 * PCI bus 0 as the guest sees it through configuration mechanism #1 (an address
 * port and four data ports 4 above it, 0xCF8 and 0xCFC-0xCFF on a PC; PCI Local
 * Bus 3.0 §3.2.2.3.2), with a host bridge at 00:00.0, and the device side of a
 * PCI function: a type 0 configuration header with per-byte write masks, memory
 * BARs and a capability list.
 *
 * Promise: the guest changes only the bits the spec makes writable, so
 * IDs, class, header type, BAR type bits and capability links stay as the
 * device declared them; absent functions read as all ones. A device learns
 * of every change of where a memory BAR decodes (the guest moved it, or
 * toggled memory decoding) through its bar_mapping_changed hook. Hooks run
 * without the device's configuration lock held; the hooks of one device are
 * serialised and come in the order of the guest's writes.
 */
#ifndef VESSEL_DEVICES_PCI_H
#define VESSEL_DEVICES_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "device.h"

#define PCI_CONFIG_DATA_OFFSET 4 /* from the address port */
#define PCI_CONFIG_PORT_COUNT 8

#define PCI_CONFIG_SPACE_SIZE 256
#define PCI_BAR_COUNT 6
#define PCI_SLOT_COUNT 32

/* Type 0 header fields (PCI Local Bus 3.0 §6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_CODE 0x09 /* 3 bytes: programming interface first */
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID 0x2e
#define PCI_CAPABILITIES_POINTER 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_IO 0x0001
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_BUS_MASTER 0x0004
#define PCI_COMMAND_PARITY_ERROR_RESPONSE 0x0040
#define PCI_COMMAND_SERR 0x0100
#define PCI_COMMAND_INTERRUPT_DISABLE 0x0400

#define PCI_STATUS_CAPABILITIES 0x0010

#define PCI_BAR_MEMORY_TYPE_64 0x04
#define PCI_BAR_PREFETCHABLE 0x08

/* The first byte after the header, where capabilities start. */
#define PCI_CAPABILITIES_START 0x40

struct pci_device_ops {
	/* All optional. opaque is the one given to pci_device_init. */

	/* After a guest read was filled from configuration space: replace
	 * the bytes of fields the device computes. offset + size <= 256. */
	void (*config_read)(void *opaque, uint32_t offset, uint8_t *data,
			    uint32_t size);
	/* After a guest write was applied through the write masks; data is
	 * what the guest wrote. */
	void (*config_write)(void *opaque, uint32_t offset, const uint8_t *data,
			     uint32_t size);
	/* Memory BAR bar now decodes [address, address + size) when mapped,
	 * or nothing when not (memory decoding off, or the guest is sizing
	 * the BAR). The device moves its range on the MMIO bus. */
	void (*bar_mapping_changed)(void *opaque, unsigned int bar,
				    uint64_t address, bool mapped);
};

struct pci_device_id {
	uint16_t vendor_id;
	uint16_t device_id;
	uint32_t class_code; /* base class << 16 | subclass << 8 | prog. if */
	uint8_t revision;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint8_t interrupt_pin; /* 0 none, 1-4 INTA#-INTD# */
};

enum pci_bar_type {
	PCI_BAR_MEMORY_32,
	PCI_BAR_MEMORY_64, /* takes this BAR register and the next */
};

struct pci_bar {
	uint64_t size; /* 0: BAR not implemented */
	enum pci_bar_type type;
	bool mapped; /* the mapping last reported to the hook */
	uint64_t address;
};

/*
 * One PCI function. Embed it in the device; its fields belong to pci.c.
 * Set it up (init, BARs, capabilities) before adding it to a bus.
 */
struct pci_device {
	pthread_mutex_t lock; /* the configuration state below */
	pthread_mutex_t write_lock; /* orders guest writes and their hooks */
	uint8_t config[PCI_CONFIG_SPACE_SIZE];
	uint8_t write_mask[PCI_CONFIG_SPACE_SIZE];
	struct pci_bar bars[PCI_BAR_COUNT];
	bool bar_sizing[PCI_BAR_COUNT]; /* the guest wrote all ones there */
	uint16_t capabilities_end; /* where the next capability goes */
	uint8_t last_capability; /* 0 while the list is empty */
	const struct pci_device_ops *ops;
	void *opaque;
};

/* A type 0 header with the given identity. ops may be NULL. 0 or -errno. */
int pci_device_init(struct pci_device *device, const struct pci_device_id *id,
		    const struct pci_device_ops *ops, void *opaque);
/* Releases what init took; the memory stays the caller's. */
void pci_device_destroy(struct pci_device *device);

/* Declares memory BAR bar (0-5) of size bytes, a power of two of at least
 * 16 (4 GiB at most for a 32-bit BAR). A 64-bit BAR also takes register
 * bar + 1. 0, or -EINVAL for a bad index, size or an occupied register. */
int pci_device_set_bar(struct pci_device *device, unsigned int bar,
		       uint64_t size, enum pci_bar_type type,
		       bool prefetchable);

/* Programs memory BAR bar with address, as firmware does before the guest
 * runs; it decodes there once the guest enables memory decoding. 0, or
 * -EINVAL for an undeclared BAR or an address not aligned to its size. */
int pci_device_place_bar(struct pci_device *device, unsigned int bar,
			 uint64_t address);

/* Appends a capability to the list: capability[0] is its ID, capability[1]
 * is overwritten with the link to the next one. write_mask (NULL: all
 * read-only) gives the guest-writable bits of each byte; the first two
 * bytes are always read-only. Stores where it went in *offset. 0, -EINVAL
 * for length < 2, -ENOSPC when configuration space is full. */
int pci_device_add_capability(struct pci_device *device,
			      const uint8_t *capability, uint8_t length,
			      const uint8_t *write_mask, uint8_t *offset);

struct pci_bus;

/* Bus 0 with the host bridge at 00:00.0. NULL on allocation failure. */
struct pci_bus *pci_bus_create(void);
/* Does not destroy the devices added to it. */
void pci_bus_destroy(struct pci_bus *bus);

/* Claims PCI_CONFIG_PORT_COUNT configuration ports from address_port. */
int pci_bus_attach(struct pci_bus *bus, struct bus *pio_bus,
		   uint16_t address_port);

/* The guest-visible state of a function: its configuration space and
 * which BARs the guest is sizing. Restore takes only the bits the guest
 * may write (a read-only bit that differs is -EINVAL: another device),
 * and reports the BAR mappings the restored registers call for through
 * bar_mapping_changed. The function's own hooks are not called. */
int pci_device_save(struct pci_device *device, struct device_state_writer *writer);
int pci_device_restore(struct pci_device *device,
		       struct device_state_reader *reader);

/* The bus's device record (device.h): the address register and the host
 * bridge's configuration space; the functions save their own. */
struct device_record pci_bus_record(struct pci_bus *bus, const char *name);

/* Puts device, function 0, in the next free slot. 0, -ENOSPC. */
int pci_bus_add_device(struct pci_bus *bus, struct pci_device *device);

#endif
