/*
 * PCI configuration space (devices/pci.c) through configuration mechanism
 * #1: a guest's address and data port accesses of any size, in any
 * order, on a bus with two functions that have 32- and 64-bit memory BARs
 * and a capability with writable bits. The guest sizes and moves BARs and
 * toggles memory decoding; the devices' hooks check that a mapped BAR is
 * aligned to its size, and at the end the identity fields and the
 * capability list read as declared.
 *
 * Input: operations, a byte each: 0 mod 3, an address port write made of
 * slot, function and register operands; otherwise a port access
 * (fuzz_port_access) of 0xcf7-0xd00.
 */
#include <stdlib.h>

#include "devices/pci.h"
#include "vmm/machine_layout.h"
#include "fuzz_port_io.h"
#include "tests/devices/fakes.h"

#define CONFIG_DATA_PORT (LAYOUT_PCI_CONFIG_PORT + PCI_CONFIG_DATA_OFFSET)

#define SLOTS_USED 3 /* the host bridge and the two functions */
#define CAPABILITY_ID 0x09 /* vendor-specific */

static const struct pci_device_id identity = {
	.vendor_id = 0x1af4,
	.device_id = 0x1042,
	.class_code = 0x018000,
	.subsystem_vendor_id = 0x1af4,
	.subsystem_id = 0x0002,
	.interrupt_pin = 1,
};

static void bar_mapping_changed(void *opaque, unsigned int bar,
				uint64_t address, bool mapped)
{
	struct pci_device *device = opaque;

	if (bar >= PCI_BAR_COUNT || !device->bars[bar].size)
		abort(); /* a hook for a BAR the device never declared */
	if (mapped && address % device->bars[bar].size)
		abort(); /* decoding at an address the BAR cannot hold */
}

static const struct pci_device_ops ops = {
	.bar_mapping_changed = bar_mapping_changed,
};

static void create(struct pci_device *device, bool second)
{
	static const uint8_t capability[8] = { CAPABILITY_ID, 0, 8, 1, 2, 3, 4, 5 };
	static const uint8_t write_mask[8] = { 0, 0, 0, 0xff, 0x0f, 0, 0xff, 0 };
	uint8_t offset;

	if (pci_device_init(device, &identity, &ops, device) ||
	    pci_device_set_bar(device, 0, second ? 16 : 0x1000,
			       second ? PCI_BAR_MEMORY_64 : PCI_BAR_MEMORY_32,
			       false) ||
	    pci_device_set_bar(device, 2, second ? UINT64_C(1) << 33 : 0x100000,
			       PCI_BAR_MEMORY_64, true) ||
	    pci_device_place_bar(device, 0, second ? 0xe0000000 : 0xc0000000) ||
	    pci_device_add_capability(device, capability, sizeof(capability),
				      write_mask, &offset) ||
	    pci_device_add_capability(device, capability, sizeof(capability),
				      NULL, &offset))
		abort();
}

static uint32_t config_read(struct bus *bus, unsigned int slot,
			    unsigned int offset)
{
	uint32_t address = 0x80000000u | slot << 11 | offset;
	uint8_t data[4];

	bus_write(bus, LAYOUT_PCI_CONFIG_PORT, (uint8_t *)&address, 4);
	bus_read(bus, CONFIG_DATA_PORT, data, 4);
	return (uint32_t)data[0] | (uint32_t)data[1] << 8 |
	       (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
}

/* What the guest must not be able to change. */
static void check_identity(struct bus *bus, unsigned int slot)
{
	uint32_t ids = config_read(bus, slot, PCI_VENDOR_ID);
	uint32_t class = config_read(bus, slot, PCI_REVISION_ID) >> 8;
	uint32_t header = config_read(bus, slot, 0x0c) >> 16 & 0xff;
	uint32_t capabilities = config_read(bus, slot, PCI_CAPABILITIES_POINTER);
	uint32_t first = config_read(bus, slot, capabilities & 0xfc);

	if (ids != ((uint32_t)identity.device_id << 16 | identity.vendor_id) ||
	    class != identity.class_code || header != 0 ||
	    (capabilities & 0xff) != PCI_CAPABILITIES_START ||
	    (first & 0xff) != CAPABILITY_ID)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct bus *bus = bus_create("pio");
	struct pci_bus *pci = pci_bus_create();
	struct pci_device devices[2];

	if (!bus || !pci || pci_bus_attach(pci, bus, LAYOUT_PCI_CONFIG_PORT))
		abort();
	for (unsigned int i = 0; i < 2; i++) {
		create(&devices[i], i == 1);
		if (pci_bus_add_device(pci, &devices[i]))
			abort();
	}
	while (!fuzz_input_empty(&input)) {
		uint8_t op = fuzz_take_u8(&input);

		if (op % 3 == 0) {
			uint32_t address = 0x80000000u |
					   (uint32_t)(op >> 2) % SLOTS_USED << 11 |
					   (uint32_t)(op >> 6) << 8 |
					   fuzz_take_u8(&input);

			bus_write(bus, LAYOUT_PCI_CONFIG_PORT,
				  (uint8_t *)&address, 4);
		} else {
			fuzz_port_access(bus, LAYOUT_PCI_CONFIG_PORT - 1,
					 PCI_CONFIG_PORT_COUNT + 2, &input);
		}
	}
	for (unsigned int slot = 1; slot < SLOTS_USED; slot++)
		check_identity(bus, slot);
	for (unsigned int i = 0; i < 2; i++)
		pci_device_destroy(&devices[i]);
	pci_bus_destroy(pci);
	bus_destroy(bus);
	return 0;
}
