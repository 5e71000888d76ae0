#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/pci.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define ADDRESS LAYOUT_PCI_CONFIG_PORT
#define DATA (LAYOUT_PCI_CONFIG_PORT + PCI_CONFIG_DATA_OFFSET)

static uint32_t config_address(unsigned int bus_number, unsigned int slot,
			       unsigned int function, unsigned int reg)
{
	return 0x80000000u | bus_number << 16 | slot << 11 | function << 8 |
	       (reg & 0xfc);
}

static struct bus *pio;
static struct pci_bus *pci;

static void setup(void)
{
	pio = bus_create("pio");
	pci = pci_bus_create();
	cr_assert_not_null(pio);
	cr_assert_not_null(pci);
	cr_assert_eq(pci_bus_attach(pci, pio, LAYOUT_PCI_CONFIG_PORT), 0);
}

static void teardown(void)
{
	pci_bus_destroy(pci);
	bus_destroy(pio);
}

TestSuite(pci, .init = setup, .fini = teardown);

static uint32_t config_read32(unsigned int slot, unsigned int reg)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	return port_read32(pio, DATA);
}

static uint16_t config_read16(unsigned int slot, unsigned int reg)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	return port_read16(pio, DATA + (reg & 2));
}

static uint8_t config_read8(unsigned int slot, unsigned int reg)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	return port_read8(pio, DATA + (reg & 3));
}

static void config_write32(unsigned int slot, unsigned int reg,
			   uint32_t value)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	port_write32(pio, DATA, value);
}

static void config_write16(unsigned int slot, unsigned int reg,
			   uint16_t value)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	port_write16(pio, DATA + (reg & 2), value);
}

static void config_write8(unsigned int slot, unsigned int reg, uint8_t value)
{
	port_write32(pio, ADDRESS, config_address(0, slot, 0, reg));
	port_write8(pio, DATA + (reg & 3), value);
}

Test(pci, address_register_keeps_only_defined_bits)
{
	port_write32(pio, ADDRESS, 0x80000000u);
	cr_assert_eq(port_read32(pio, ADDRESS), 0x80000000u);
	port_write32(pio, ADDRESS, 0xffffffffu);
	cr_assert_eq(port_read32(pio, ADDRESS), 0x80fffffcu);
	/* Only dword accesses reach it. */
	port_write8(pio, ADDRESS, 0x00);
	port_write16(pio, ADDRESS, 0x0000);
	port_write16(pio, ADDRESS + 2, 0x0000);
	cr_assert_eq(port_read32(pio, ADDRESS), 0x80fffffcu);
}

/* Linux's pci_check_type1() (arch/x86/pci/direct.c): a byte write to
 * 0xcfb must not disturb the address register, which reads back. */
Test(pci, linux_type1_check_passes)
{
	port_write32(pio, ADDRESS, 0x12345678u & 0x80fffffcu);
	port_write8(pio, ADDRESS + 3, 0x01);
	uint32_t saved = port_read32(pio, ADDRESS);

	cr_assert_eq(saved, 0x12345678u & 0x80fffffcu);
	port_write32(pio, ADDRESS, 0x80000000u);
	cr_assert_eq(port_read32(pio, ADDRESS), 0x80000000u);
	cr_assert_eq(port_read8(pio, ADDRESS), 0xff,
		     "byte reads of 0xcf8 pass through to nothing");
	/* pci_sanity_check: a host bridge class on bus 0. */
	cr_assert_eq(config_read16(0, 0x0a), 0x0600);
}

Test(pci, host_bridge_sits_at_00_00_0)
{
	cr_assert_eq(config_read32(0, PCI_VENDOR_ID), 0x0d578086u);
	cr_assert_eq(config_read32(0, 0x08) >> 8, 0x060000u, "class");
	cr_assert_eq(config_read8(0, PCI_HEADER_TYPE), 0x00);
	cr_assert_eq(config_read8(0, PCI_INTERRUPT_PIN), 0);
	cr_assert_eq(config_read32(0, PCI_BAR0), 0, "no BARs");
}

Test(pci, narrow_accesses_reach_each_byte_lane)
{
	port_write32(pio, ADDRESS, config_address(0, 0, 0, 0));
	cr_assert_eq(port_read8(pio, DATA), 0x86);
	cr_assert_eq(port_read8(pio, DATA + 1), 0x80);
	cr_assert_eq(port_read8(pio, DATA + 2), 0x57);
	cr_assert_eq(port_read8(pio, DATA + 3), 0x0d);
	cr_assert_eq(port_read16(pio, DATA + 2), 0x0d57);
	cr_assert_eq(port_read16(pio, DATA + 1), 0x5780, "0xcfd word");

	uint8_t data[4];

	cr_assert_not(bus_read(pio, DATA + 2, data, 4),
			"crosses the end of the data window");
}

Test(pci, absent_functions_read_all_ones)
{
	cr_assert_eq(config_read32(5, 0), 0xffffffffu, "empty slot");
	port_write32(pio, ADDRESS, config_address(0, 0, 1, 0));
	cr_assert_eq(port_read32(pio, DATA), 0xffffffffu, "function 1");
	port_write32(pio, ADDRESS, config_address(1, 0, 0, 0));
	cr_assert_eq(port_read32(pio, DATA), 0xffffffffu, "bus 1");
	port_write32(pio, ADDRESS, 0x00000000u);
	cr_assert_eq(port_read32(pio, DATA), 0xffffffffu, "enable bit clear");
	cr_assert_eq(port_read8(pio, DATA + 3), 0xff);
	/* Writes there go nowhere. */
	port_write32(pio, ADDRESS, config_address(0, 5, 0, 0));
	port_write32(pio, DATA, 0);
	cr_assert_eq(config_read32(5, 0), 0xffffffffu);
}

Test(pci, identity_is_read_only)
{
	config_write32(0, PCI_VENDOR_ID, 0x12341234u);
	config_write32(0, 0x08, 0xffffffffu);
	config_write8(0, PCI_HEADER_TYPE, 0x80);
	config_write8(0, PCI_CAPABILITIES_POINTER, 0x40);
	cr_assert_eq(config_read32(0, PCI_VENDOR_ID), 0x0d578086u);
	cr_assert_eq(config_read32(0, 0x08), 0x06000000u);
	cr_assert_eq(config_read8(0, PCI_HEADER_TYPE), 0x00);
	cr_assert_eq(config_read8(0, PCI_CAPABILITIES_POINTER), 0x00);
}

Test(pci, command_register_keeps_only_implemented_bits)
{
	config_write16(0, PCI_COMMAND, 0xffff);
	cr_assert_eq(config_read16(0, PCI_COMMAND), 0x0547);
	config_write16(0, PCI_STATUS, 0xffff);
	cr_assert_eq(config_read16(0, PCI_STATUS), 0x0000,
		     "status is read-only, nothing to clear");
	config_write8(0, PCI_INTERRUPT_LINE, 0x0b);
	cr_assert_eq(config_read8(0, PCI_INTERRUPT_LINE), 0x0b);
}

/* A test function with a 32-bit BAR 0, a 64-bit prefetchable BAR 2-3,
 * two capabilities, and hooks that record what they are told. */
struct test_function {
	struct pci_device pci;
	unsigned int mapping_calls;
	unsigned int last_bar;
	uint64_t last_address;
	bool last_mapped;
	unsigned int config_writes;
	uint32_t last_write_offset;
};

static void record_mapping(void *opaque, unsigned int bar, uint64_t address,
			   bool mapped)
{
	struct test_function *function = opaque;

	function->mapping_calls++;
	function->last_bar = bar;
	function->last_address = address;
	function->last_mapped = mapped;
}

static void record_config_write(void *opaque, uint32_t offset,
				const uint8_t *data, uint32_t size)
{
	struct test_function *function = opaque;

	(void)data;
	(void)size;
	function->config_writes++;
	function->last_write_offset = offset;
}

/* Makes byte 0x60 (outside any capability) read as 0x77, as a device
 * with a computed register would. */
static void computed_config_read(void *opaque, uint32_t offset, uint8_t *data,
				 uint32_t size)
{
	(void)opaque;
	if (offset <= 0x60 && offset + size > 0x60)
		data[0x60 - offset] = 0x77;
}

static const struct pci_device_ops test_ops = {
	.config_read = computed_config_read,
	.config_write = record_config_write,
	.bar_mapping_changed = record_mapping,
};

static const struct pci_device_id test_id = {
	.vendor_id = 0x1af4,
	.device_id = 0x1041,
	.class_code = 0x020000,
	.revision = 1,
	.subsystem_vendor_id = 0x1af4,
	.subsystem_id = 0x0001,
	.interrupt_pin = 1,
};

static struct test_function function;
static uint8_t vendor_capability_offset;
static uint8_t msix_capability_offset;

static void add_test_function(void)
{
	static const uint8_t vendor_capability[] = { 0x09, 0xee, 8, 1,
						      2, 3, 4, 5 };
	/* MSI-X: only the enable and function-mask bits of the message
	 * control word are writable. */
	static const uint8_t msix_capability[] = { 0x11, 0xee, 0x03, 0x00,
						   0x01, 0x00, 0x00, 0x00,
						   0x01, 0x08, 0x00, 0x00 };
	static const uint8_t msix_mask[] = { 0xff, 0xff, 0x00, 0xc0,
					     0, 0, 0, 0, 0, 0, 0, 0 };

	memset(&function, 0, sizeof(function));
	cr_assert_eq(pci_device_init(&function.pci, &test_id, &test_ops,
				     &function),
		     0);
	cr_assert_eq(pci_device_set_bar(&function.pci, 0, 0x1000,
					PCI_BAR_MEMORY_32, false),
		     0);
	cr_assert_eq(pci_device_set_bar(&function.pci, 2, 0x4000,
					PCI_BAR_MEMORY_64, true),
		     0);
	cr_assert_eq(pci_device_add_capability(&function.pci,
					       vendor_capability,
					       sizeof(vendor_capability), NULL,
					       &vendor_capability_offset),
		     0);
	cr_assert_eq(pci_device_add_capability(&function.pci, msix_capability,
					       sizeof(msix_capability),
					       msix_mask,
					       &msix_capability_offset),
		     0);
	cr_assert_eq(pci_bus_add_device(pci, &function.pci), 0);
}

Test(pci, devices_take_the_next_slots_until_full)
{
	static struct pci_device devices[PCI_SLOT_COUNT];

	for (unsigned int i = 1; i < PCI_SLOT_COUNT; i++) {
		struct pci_device_id id = { .vendor_id = 0x1af4,
					    .device_id = (uint16_t)i };

		cr_assert_eq(pci_device_init(&devices[i], &id, NULL, NULL), 0);
		cr_assert_eq(pci_bus_add_device(pci, &devices[i]), 0);
		cr_assert_eq(config_read16(i, PCI_DEVICE_ID), i);
	}
	cr_assert_eq(pci_bus_add_device(pci, &devices[0]), -ENOSPC);
	for (unsigned int i = 1; i < PCI_SLOT_COUNT; i++)
		pci_device_destroy(&devices[i]);
}

Test(pci, test_function_identity)
{
	add_test_function();
	cr_assert_eq(config_read32(1, PCI_VENDOR_ID), 0x10411af4u);
	cr_assert_eq(config_read32(1, 0x08), 0x02000001u);
	cr_assert_eq(config_read32(1, PCI_SUBSYSTEM_VENDOR_ID), 0x00011af4u);
	cr_assert_eq(config_read8(1, PCI_INTERRUPT_PIN), 1);
	pci_device_destroy(&function.pci);
}

Test(pci, bar_sizing_returns_the_size_mask)
{
	add_test_function();
	cr_assert_eq(config_read32(1, 0x10), 0x00000000u, "32-bit, not prefetchable");
	cr_assert_eq(config_read32(1, 0x18), 0x0000000cu, "64-bit, prefetchable");

	config_write32(1, 0x10, 0xffffffffu);
	cr_assert_eq(config_read32(1, 0x10), 0xfffff000u, "4 KiB");
	config_write32(1, 0x18, 0xffffffffu);
	cr_assert_eq(config_read32(1, 0x18), 0xffffc00cu, "16 KiB");
	config_write32(1, 0x1c, 0xffffffffu);
	cr_assert_eq(config_read32(1, 0x1c), 0xffffffffu, "upper half");
	config_write32(1, 0x14, 0xffffffffu);
	cr_assert_eq(config_read32(1, 0x14), 0, "BAR 1 is not implemented");
	config_write32(1, 0x30, 0xffffffffu);
	cr_assert_eq(config_read32(1, 0x30), 0, "no expansion ROM");

	config_write32(1, 0x18, 0xe0004000u);
	config_write32(1, 0x1c, 0x00000001u);
	cr_assert_eq(config_read32(1, 0x18), 0xe000400cu);
	cr_assert_eq(config_read32(1, 0x1c), 0x00000001u);
	pci_device_destroy(&function.pci);
}

Test(pci, set_bar_refuses_bad_layouts)
{
	struct pci_device device;

	cr_assert_eq(pci_device_init(&device, &test_id, NULL, NULL), 0);
	cr_assert_eq(pci_device_set_bar(&device, 0, 0x1800, PCI_BAR_MEMORY_32,
					false),
		     -EINVAL, "not a power of two");
	cr_assert_eq(pci_device_set_bar(&device, 0, 8, PCI_BAR_MEMORY_32,
					false),
		     -EINVAL, "below 16 bytes");
	cr_assert_eq(pci_device_set_bar(&device, 0, 1ull << 33,
					PCI_BAR_MEMORY_32, false),
		     -EINVAL, "too big for 32 bits");
	cr_assert_eq(pci_device_set_bar(&device, 5, 0x1000, PCI_BAR_MEMORY_64,
					false),
		     -EINVAL, "no room for the upper half");
	cr_assert_eq(pci_device_set_bar(&device, 6, 0x1000, PCI_BAR_MEMORY_32,
					false),
		     -EINVAL);
	cr_assert_eq(pci_device_set_bar(&device, 1, 0x1000, PCI_BAR_MEMORY_64,
					false),
		     0);
	cr_assert_eq(pci_device_set_bar(&device, 2, 0x1000, PCI_BAR_MEMORY_32,
					false),
		     -EINVAL, "upper half of BAR 1");
	cr_assert_eq(pci_device_set_bar(&device, 0, 0x1000, PCI_BAR_MEMORY_64,
					false),
		     -EINVAL, "would take BAR 1's register");
	cr_assert_eq(pci_device_set_bar(&device, 3, 1ull << 33,
					PCI_BAR_MEMORY_64, false),
		     0, "8 GiB fits a 64-bit BAR");
	pci_device_destroy(&device);
}

Test(pci, capability_chain_walks_to_the_end)
{
	add_test_function();
	cr_assert(config_read16(1, PCI_STATUS) & PCI_STATUS_CAPABILITIES);

	uint8_t ids[8];
	unsigned int count = 0;
	uint8_t pointer = config_read8(1, PCI_CAPABILITIES_POINTER);

	while (pointer && count < 8) {
		cr_assert_geq(pointer, 0x40);
		cr_assert_eq(pointer & 3, 0, "dword aligned");
		ids[count++] = config_read8(1, pointer);
		pointer = config_read8(1, pointer + 1);
	}
	cr_assert_eq(count, 2);
	cr_assert_eq(ids[0], 0x09);
	cr_assert_eq(ids[1], 0x11);
	cr_assert_eq(vendor_capability_offset, 0x40);
	cr_assert_eq(msix_capability_offset, 0x48);
	cr_assert_eq(config_read8(1, 0x42), 8, "body copied");
	cr_assert_eq(config_read32(1, 0x50), 0x00000801u, "MSI-X PBA");

	/* The host bridge has no list. */
	cr_assert_eq(config_read16(0, PCI_STATUS) & PCI_STATUS_CAPABILITIES, 0);
	pci_device_destroy(&function.pci);
}

Test(pci, capability_write_mask_guards_read_only_bytes)
{
	add_test_function();
	uint8_t control = (uint8_t)(msix_capability_offset + 2);

	config_write16(1, control, 0xffff);
	cr_assert_eq(config_read16(1, control), 0xc003,
		     "enable and mask set, table size kept");
	/* The mask given for MSI-X covers ID and link too: ignored there. */
	config_write16(1, msix_capability_offset, 0x9000);
	cr_assert_eq(config_read8(1, msix_capability_offset), 0x11);
	cr_assert_eq(config_read8(1, msix_capability_offset + 1), 0,
		     "last link stays 0");
	config_write8(1, vendor_capability_offset + 1, 0x90);
	cr_assert_eq(config_read8(1, vendor_capability_offset + 1),
		     msix_capability_offset, "links are read-only");
	config_write8(1, vendor_capability_offset + 3, 0x55);
	cr_assert_eq(config_read8(1, vendor_capability_offset + 3), 1);
	pci_device_destroy(&function.pci);
}

Test(pci, capability_list_refuses_to_overflow)
{
	struct pci_device device;
	uint8_t capability[64] = { 0x09 };
	uint8_t offset;

	cr_assert_eq(pci_device_init(&device, &test_id, NULL, NULL), 0);
	cr_assert_eq(pci_device_add_capability(&device, capability, 1, NULL,
					       &offset),
		     -EINVAL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pci_device_add_capability(&device, capability, 64,
						       NULL, &offset),
			     0);
	cr_assert_eq(offset, 0xc0);
	cr_assert_eq(pci_device_add_capability(&device, capability, 4, NULL,
					       &offset),
		     -ENOSPC);
	pci_device_destroy(&device);
}

Test(pci, hook_reports_decoding_and_moves)
{
	add_test_function();
	config_write32(1, 0x10, 0xc0000000u);
	config_write32(1, 0x18, 0xc0004000u);
	config_write32(1, 0x1c, 0x1u);
	cr_assert_eq(function.mapping_calls, 0, "decoding is off");

	config_write16(1, PCI_COMMAND, PCI_COMMAND_MEMORY);
	cr_assert_eq(function.mapping_calls, 2, "both BARs map");
	cr_assert_eq(function.last_bar, 2);
	cr_assert_eq(function.last_address, 0x1c0004000ull);
	cr_assert(function.last_mapped);

	config_write32(1, 0x10, 0xc0010000u);
	cr_assert_eq(function.mapping_calls, 3);
	cr_assert_eq(function.last_bar, 0);
	cr_assert_eq(function.last_address, 0xc0010000u);
	cr_assert(function.last_mapped);

	config_write32(1, 0x10, 0xc0010000u);
	cr_assert_eq(function.mapping_calls, 3, "same address: no call");
	config_write16(1, PCI_COMMAND, PCI_COMMAND_MEMORY |
						   PCI_COMMAND_BUS_MASTER);
	cr_assert_eq(function.mapping_calls, 3, "bus master: no call");

	config_write16(1, PCI_COMMAND, 0);
	cr_assert_eq(function.mapping_calls, 5);
	cr_assert_not(function.last_mapped);
	pci_device_destroy(&function.pci);
}

Test(pci, sizing_with_decoding_on_unmaps_until_restored)
{
	add_test_function();
	config_write32(1, 0x10, 0xc0000000u);
	config_write16(1, PCI_COMMAND, PCI_COMMAND_MEMORY);
	unsigned int calls = function.mapping_calls;

	config_write32(1, 0x10, 0xffffffffu);
	cr_assert_eq(function.mapping_calls, calls + 1);
	cr_assert_eq(function.last_bar, 0);
	cr_assert_not(function.last_mapped, "no mapping at the size mask");
	config_write32(1, 0x10, 0xc0000000u);
	cr_assert_eq(function.mapping_calls, calls + 2);
	cr_assert(function.last_mapped);
	cr_assert_eq(function.last_address, 0xc0000000u);

	/* The upper half of a 64-bit BAR sizes the same way. */
	config_write32(1, 0x1c, 0xffffffffu);
	cr_assert_eq(function.last_bar, 2);
	cr_assert_not(function.last_mapped);
	config_write32(1, 0x1c, 0);
	cr_assert_eq(function.last_bar, 2);
	cr_assert(function.last_mapped);
	pci_device_destroy(&function.pci);
}

Test(pci, config_hooks_see_accesses)
{
	add_test_function();
	config_write8(1, PCI_INTERRUPT_LINE, 5);
	cr_assert_eq(function.config_writes, 1);
	cr_assert_eq(function.last_write_offset, PCI_INTERRUPT_LINE);
	cr_assert_eq(config_read8(1, 0x60), 0x77, "computed by the device");
	cr_assert_eq(config_read32(1, 0x60), 0x77);
	cr_assert_eq(config_read8(1, 0x61), 0x00);
	pci_device_destroy(&function.pci);
}
