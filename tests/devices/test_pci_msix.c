/*
 * MSI-X as a capability of any PCI function: a function of its own with
 * four vectors, its table and PBA in BAR 2 (not where virtio puts them),
 * configuration space reached through configuration mechanism #1, and
 * recording route and signal hooks in place of KVM's.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/pci_msix.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define VECTORS 4
#define SLOT 1
#define BAR 2
#define TABLE 0x100
#define TABLE_SIZE 0x100
#define PBA 0x800
#define CONFIG_DATA_PORT (LAYOUT_PCI_CONFIG_PORT + PCI_CONFIG_DATA_OFFSET)

#define CONTROL_ENABLE 0x8000
#define CONTROL_FUNCTION_MASK 0x4000

struct test_function {
	struct pci_device pci;
	struct pci_msix msix;
};

static struct bus *pio;
static struct pci_bus *pci_bus;
static struct test_function function;
static unsigned int routes[PCI_MSIX_MAX_VECTORS];
static uint64_t routed_address[PCI_MSIX_MAX_VECTORS];
static uint32_t routed_data[PCI_MSIX_MAX_VECTORS];
static unsigned int signals[PCI_MSIX_MAX_VECTORS];

static int record_route(void *opaque, const void *key, unsigned int vector,
			uint64_t address, uint32_t data)
{
	cr_assert_eq(opaque, &routes);
	cr_assert_eq(key, &function, "the platform's key for the function");
	cr_assert_lt(vector, VECTORS);
	routes[vector]++;
	routed_address[vector] = address;
	routed_data[vector] = data;
	return 0;
}

static void record_signal(void *opaque, const void *key, unsigned int vector)
{
	cr_assert_eq(opaque, &routes);
	cr_assert_eq(key, &function);
	cr_assert_lt(vector, VECTORS);
	signals[vector]++;
}

static void on_config_write(void *opaque, uint32_t offset, const uint8_t *data,
			    uint32_t size)
{
	struct test_function *written = opaque;

	(void)data;
	pci_msix_config_written(&written->msix, offset, size);
}

static const struct pci_device_ops ops = { .config_write = on_config_write };

static const struct pci_msix_layout layout = {
	.bar = BAR,
	.table_offset = TABLE,
	.table_size = TABLE_SIZE, /* room for more entries than it has */
	.pba_offset = PBA,
	.pba_size = 8,
};

static const struct pci_msix_delivery delivery = {
	.route = record_route,
	.signal = record_signal,
	.opaque = &routes,
	.function = &function,
};

static void function_init(struct test_function *made)
{
	static const struct pci_device_id id = { .vendor_id = 0x1af4,
						 .device_id = 0x10f0 };

	cr_assert_eq(pci_device_init(&made->pci, &id, &ops, made), 0);
	cr_assert_eq(pci_device_set_bar(&made->pci, BAR, 0x1000,
					PCI_BAR_MEMORY_32, false), 0);
	cr_assert_eq(pci_msix_init(&made->msix, &made->pci, VECTORS, &layout,
				   &delivery), 0);
}

static void setup(void)
{
	memset(routes, 0, sizeof(routes));
	memset(signals, 0, sizeof(signals));
	pio = bus_create("pio");
	pci_bus = pci_bus_create();
	cr_assert_not_null(pio);
	cr_assert_not_null(pci_bus);
	cr_assert_eq(pci_bus_attach(pci_bus, pio, LAYOUT_PCI_CONFIG_PORT), 0);
	function_init(&function);
	cr_assert_eq(pci_bus_add_device(pci_bus, &function.pci), 0);
}

static void teardown(void)
{
	pci_msix_destroy(&function.msix);
	pci_device_destroy(&function.pci);
	pci_bus_destroy(pci_bus);
	bus_destroy(pio);
}

TestSuite(pci_msix, .init = setup, .fini = teardown);

static void select_register(unsigned int reg)
{
	port_write32(pio, LAYOUT_PCI_CONFIG_PORT,
		     0x80000000u | SLOT << 11 | (reg & 0xfc));
}

static uint32_t config_read32(unsigned int reg)
{
	select_register(reg);
	return port_read32(pio, CONFIG_DATA_PORT);
}

static void config_write16(unsigned int reg, uint16_t value)
{
	select_register(reg);
	port_write16(pio, CONFIG_DATA_PORT + (reg & 2), value);
}

/* The MSI-X capability's offset, through the capability list. */
static unsigned int capability(void)
{
	unsigned int at = config_read32(PCI_CAPABILITIES_POINTER) & 0xff;

	while (at && (config_read32(at) & 0xff) != PCI_CAP_ID_MSIX)
		at = (config_read32(at) >> 8) & 0xff;
	cr_assert_neq(at, 0, "no MSI-X capability");
	return at;
}

static void set_control(uint16_t control)
{
	config_write16(capability() + 2, control);
}

static uint64_t bar_read(uint64_t offset, uint32_t size)
{
	uint64_t value = 0;

	cr_assert(pci_msix_bar_read(&function.msix, offset, (uint8_t *)&value,
				    size),
		  "0x%lx is MSI-X's", (unsigned long)offset);
	return value;
}

static void bar_write(uint64_t offset, uint32_t size, uint64_t value)
{
	cr_assert(pci_msix_bar_write(&function.msix, offset,
				     (const uint8_t *)&value, size),
		  "0x%lx is MSI-X's", (unsigned long)offset);
}

static uint64_t entry(unsigned int vector, unsigned int field)
{
	return TABLE + vector * PCI_MSIX_ENTRY_SIZE + field;
}

/* Vector's message, left masked or not. */
static void program(unsigned int vector, uint64_t address, uint32_t data,
		    bool masked)
{
	bar_write(entry(vector, 0), 8, address);
	bar_write(entry(vector, 8), 4, data);
	bar_write(entry(vector, 12), 4, masked);
}

Test(pci_msix, capability_says_where_table_and_pba_are)
{
	unsigned int cap = capability();

	cr_assert_eq(config_read32(cap) >> 16, VECTORS - 1,
		     "table size N-1, MSI-X off, nothing masked");
	cr_assert_eq(config_read32(cap + 4), TABLE | BAR,
		     "table offset and BIR");
	cr_assert_eq(config_read32(cap + 8), PBA | BAR, "PBA offset and BIR");
	cr_assert(config_read32(PCI_STATUS & ~3u) >> 16 &
		  PCI_STATUS_CAPABILITIES);
	set_control(0xffff);
	cr_assert_eq(config_read32(cap) >> 16,
		     CONTROL_ENABLE | CONTROL_FUNCTION_MASK | (VECTORS - 1),
		     "only enable and function mask are the guest's");
}

Test(pci_msix, every_vector_starts_masked)
{
	for (unsigned int vector = 0; vector < VECTORS; vector++)
		cr_assert_eq(bar_read(entry(vector, 12), 4), 1);
}

Test(pci_msix, table_takes_aligned_dword_and_qword_accesses)
{
	bar_write(entry(1, 0), 8, 0x00000001fee01000ULL);
	cr_assert_eq(bar_read(entry(1, 0), 8), 0x00000001fee01000ULL);
	cr_assert_eq(bar_read(entry(1, 0), 4), 0xfee01000);
	cr_assert_eq(bar_read(entry(1, 4), 4), 1, "the upper address dword");
	bar_write(entry(1, 4), 4, 0);
	bar_write(entry(1, 8), 4, 0x4041);
	cr_assert_eq(bar_read(entry(1, 0), 8), 0xfee01000);
	cr_assert_eq(bar_read(entry(1, 8), 8), 0x100004041ULL,
		     "data and vector control as one qword");
	bar_write(entry(1, 8), 8, 0xffffffff00000077ULL);
	cr_assert_eq(bar_read(entry(1, 8), 4), 0x77);
	cr_assert_eq(bar_read(entry(1, 12), 4), 1,
		     "vector control keeps only its mask bit");
}

Test(pci_msix, misaligned_and_odd_sized_table_accesses_are_refused)
{
	program(0, 0xfee00000, 0x4041, true);
	cr_assert_eq(bar_read(entry(0, 0), 1), 0xff);
	cr_assert_eq(bar_read(entry(0, 0), 2), 0xffff);
	cr_assert_eq(bar_read(entry(0, 2), 4), 0xffffffff);
	cr_assert_eq(bar_read(entry(0, 4), 8), UINT64_MAX);
	bar_write(entry(0, 0), 1, 0x11);
	bar_write(entry(0, 0), 2, 0x1111);
	bar_write(entry(0, 2), 4, 0x11111111);
	bar_write(entry(0, 4), 8, UINT64_MAX);
	bar_write(entry(0, 12), 2, 0);
	cr_assert_eq(bar_read(entry(0, 0), 8), 0xfee00000, "address unchanged");
	cr_assert_eq(bar_read(entry(0, 8), 4), 0x4041, "data unchanged");
	cr_assert_eq(bar_read(entry(0, 12), 4), 1, "still masked");
	cr_assert_eq(routes[0], 0, "no refused write reached the platform");
}

Test(pci_msix, vectors_beyond_the_function_are_not_there)
{
	cr_assert_eq(bar_read(entry(VECTORS, 0), 8), UINT64_MAX);
	bar_write(entry(VECTORS, 12), 4, 0);
	cr_assert_eq(bar_read(entry(VECTORS, 12), 4), 0xffffffff);
	set_control(CONTROL_ENABLE);
	pci_msix_raise(&function.msix, VECTORS);
	pci_msix_raise(&function.msix, PCI_MSIX_MAX_VECTORS);
	pci_msix_raise(&function.msix, UINT32_MAX);
	cr_assert_eq(bar_read(PBA, 8), 0, "nothing pending");
}

Test(pci_msix, accesses_outside_its_regions_are_left_to_the_device)
{
	uint64_t value = 0;

	cr_assert_not(pci_msix_bar_read(&function.msix, 0, (uint8_t *)&value,
					4));
	cr_assert_not(pci_msix_bar_read(&function.msix, TABLE + TABLE_SIZE,
					(uint8_t *)&value, 4));
	cr_assert_not(pci_msix_bar_write(&function.msix, PBA + 8,
					 (const uint8_t *)&value, 4));
}

Test(pci_msix, an_unmasked_vector_is_routed_and_sent)
{
	set_control(CONTROL_ENABLE);
	program(2, 0xfee00000, 0x4042, false);
	cr_assert_eq(routes[2], 1);
	cr_assert_eq(routed_address[2], 0xfee00000);
	cr_assert_eq(routed_data[2], 0x4042);
	pci_msix_raise(&function.msix, 2);
	cr_assert_eq(signals[2], 1);
	cr_assert_eq(bar_read(PBA, 8), 0);
}

Test(pci_msix, a_masked_vector_is_pending_until_unmasked)
{
	set_control(CONTROL_ENABLE);
	program(1, 0xfee00000, 0x4041, true);
	pci_msix_raise(&function.msix, 1);
	pci_msix_raise(&function.msix, 1);
	cr_assert_eq(signals[1], 0, "a masked vector fired");
	cr_assert_eq(bar_read(PBA, 8), 1u << 1, "its pending bit");
	cr_assert_eq(bar_read(PBA, 1), 1u << 1, "the PBA read a byte at a time");
	bar_write(entry(1, 12), 4, 0);
	cr_assert_eq(routes[1], 1, "routed before it is sent");
	cr_assert_eq(signals[1], 1, "unmasking sends the pending message once");
	cr_assert_eq(bar_read(PBA, 8), 0);
}

Test(pci_msix, the_function_mask_holds_every_vector)
{
	set_control(CONTROL_ENABLE | CONTROL_FUNCTION_MASK);
	program(0, 0xfee00000, 0x4040, false);
	program(3, 0xfee00000, 0x4043, false);
	pci_msix_raise(&function.msix, 0);
	pci_msix_raise(&function.msix, 3);
	cr_assert_eq(signals[0] + signals[3], 0);
	cr_assert_eq(routes[0] + routes[3], 0, "nothing routed while masked");
	cr_assert_eq(bar_read(PBA, 8), 0x9);
	set_control(CONTROL_ENABLE);
	cr_assert_eq(signals[0], 1);
	cr_assert_eq(signals[3], 1);
	cr_assert_eq(bar_read(PBA, 8), 0);
}

Test(pci_msix, with_msix_off_a_vector_is_dropped)
{
	program(0, 0xfee00000, 0x4040, false);
	pci_msix_raise(&function.msix, 0);
	cr_assert_eq(signals[0], 0);
	cr_assert_eq(bar_read(PBA, 8), 0, "not pending either");
	set_control(CONTROL_ENABLE);
	cr_assert_eq(signals[0], 0, "nothing to send when it is turned on");
}

Test(pci_msix, the_pba_is_read_only)
{
	set_control(CONTROL_ENABLE);
	pci_msix_raise(&function.msix, 0); /* masked: pending */
	bar_write(PBA, 8, 0);
	bar_write(PBA, 4, 0xf);
	cr_assert_eq(bar_read(PBA, 8), 1, "the guest cannot set or clear a bit");
	cr_assert_eq(bar_read(PBA + 4, 4), 0);
	cr_assert_eq(signals[0], 0);
}

Test(pci_msix, saved_table_and_pending_bits_come_back)
{
	uint8_t table[VECTORS * PCI_MSIX_ENTRY_SIZE];
	struct test_function restored;

	set_control(CONTROL_ENABLE);
	program(0, 0xfee00000, 0x4040, false);
	program(1, 0xfee01000, 0x4041, true);
	program(2, 0xfee02000, 0x4042, false);
	pci_msix_raise(&function.msix, 1);
	cr_assert_eq(pci_msix_save(&function.msix, table, VECTORS), 1u << 1);
	cr_assert_eq(memcmp(table + PCI_MSIX_ENTRY_SIZE, "\x00\x10\xe0\xfe",
			    4),
		     0, "entries as the guest reads them");

	memset(routes, 0, sizeof(routes));
	function_init(&restored);
	/* Configuration space comes back first, with MSI-X on. */
	restored.pci.config[restored.msix.cap_offset + 3] = CONTROL_ENABLE >> 8;
	cr_assert_eq(pci_msix_restore(&restored.msix, table, VECTORS,
				      1u << 2 | 1u << 1), 0);
	cr_assert_eq(routes[0], 1, "the unmasked vector is routed again");
	cr_assert_eq(routed_address[0], 0xfee00000);
	cr_assert_eq(signals[2], 1,
		     "a restored pending bit of an unmasked vector is sent");
	uint64_t pending = 0;
	cr_assert(pci_msix_bar_read(&restored.msix, PBA, (uint8_t *)&pending,
				    8));
	cr_assert_eq(pending, 1u << 1, "the masked one stays pending");
	cr_assert_eq(pci_msix_save(&restored.msix, table, VECTORS), 1u << 1);
	pci_msix_destroy(&restored.msix);
	pci_device_destroy(&restored.pci);
}

Test(pci_msix, restore_refuses_pending_bits_of_vectors_it_lacks)
{
	uint8_t table[VECTORS * PCI_MSIX_ENTRY_SIZE];

	program(0, 0xfee00000, 0x4040, true);
	pci_msix_save(&function.msix, table, VECTORS);
	memset(table, 0, sizeof(table));
	cr_assert_eq(pci_msix_restore(&function.msix, table, VECTORS,
				      1u << VECTORS), -EINVAL);
	cr_assert_eq(bar_read(entry(0, 0), 8), 0xfee00000, "nothing changed");
}

Test(pci_msix, init_refuses_what_the_regions_cannot_hold)
{
	struct test_function other;
	struct pci_msix_layout bad = layout;
	static const struct pci_device_id id = { .vendor_id = 0x1af4 };

	cr_assert_eq(pci_device_init(&other.pci, &id, NULL, NULL), 0);
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci, 0, &layout,
				   &delivery), -EINVAL);
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci,
				   PCI_MSIX_MAX_VECTORS + 1, &layout, &delivery),
		     -EINVAL);
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci,
				   TABLE_SIZE / PCI_MSIX_ENTRY_SIZE + 1, &layout,
				   &delivery),
		     -EINVAL, "table region too small");
	bad.pba_offset = TABLE + 0x10;
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci, VECTORS, &bad,
				   &delivery), -EINVAL, "regions overlap");
	bad = layout;
	bad.table_offset = TABLE + 4;
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci, VECTORS, &bad,
				   &delivery),
		     -EINVAL, "offset not 8-byte aligned");
	bad = layout;
	bad.bar = PCI_BAR_COUNT;
	cr_assert_eq(pci_msix_init(&other.msix, &other.pci, VECTORS, &bad,
				   &delivery), -EINVAL, "no such BAR");
	pci_device_destroy(&other.pci);
}
