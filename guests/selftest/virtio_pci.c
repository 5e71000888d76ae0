#include "virtio_pci.h"

#include "selftest.h"

/* PCI configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2). */
#define PCI_CONFIG_ADDRESS_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc
#define PCI_CONFIG_ENABLE 0x80000000u
#define PCI_SLOTS 32

#define PCI_VENDOR_DEVICE 0x00
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_BAR0 0x10
#define PCI_CAPABILITIES_POINTER 0x34
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_BUS_MASTER 0x0004
#define PCI_STATUS_CAPABILITIES 0x0010
#define PCI_BAR_MEMORY_64 0x4
#define PCI_CAP_ID_VENDOR 0x09
/* At most this many capabilities fit configuration space: a bound for a
 * list whose links could loop. */
#define PCI_MAX_CAPABILITIES 48

/* Modern virtio PCI IDs (§4.1.2.1). */
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* virtio_pci_cap cfg_type values (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* Common configuration (§4.1.4.3). */
#define COMMON_DEVICE_FEATURE_SELECT 0x00
#define COMMON_DEVICE_FEATURE 0x04
#define COMMON_DRIVER_FEATURE_SELECT 0x08
#define COMMON_DRIVER_FEATURE 0x0c
#define COMMON_DEVICE_STATUS 0x14
#define COMMON_QUEUE_SELECT 0x16
#define COMMON_QUEUE_SIZE 0x18
#define COMMON_QUEUE_MSIX_VECTOR 0x1a
#define COMMON_QUEUE_ENABLE 0x1c
#define COMMON_QUEUE_NOTIFY_OFF 0x1e
#define COMMON_QUEUE_DESC 0x20
#define COMMON_QUEUE_DRIVER 0x28
#define COMMON_QUEUE_DEVICE 0x30

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_MSI_NO_VECTOR 0xffff
/* VIRTIO_F_VERSION_1, bit 0 of the second feature word (§6). */
#define FEATURE_WORD1_VERSION_1 1u

#define VIRTQ_USED_F_NO_NOTIFY 1
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

/* Every status read is an exit to the VMM (~10 us here): about a second. */
#define RESET_MAX_POLLS 100000

/* The identity map ends at 4 GiB. */
#define IDENTITY_MAP_END 0x100000000ull

static uint32_t pci_read32(unsigned int slot, uint8_t offset)
{
	outl(PCI_CONFIG_ADDRESS_PORT,
	     PCI_CONFIG_ENABLE | slot << 11 | (offset & 0xfcu));
	return inl(PCI_CONFIG_DATA_PORT);
}

static void pci_write16(unsigned int slot, uint8_t offset, uint16_t value)
{
	outl(PCI_CONFIG_ADDRESS_PORT,
	     PCI_CONFIG_ENABLE | slot << 11 | (offset & 0xfcu));
	outw((uint16_t)(PCI_CONFIG_DATA_PORT + (offset & 2)), value);
}

static uint8_t pci_read8(unsigned int slot, uint8_t offset)
{
	return (uint8_t)(pci_read32(slot, offset) >> (8 * (offset & 3)));
}

static void mmio_write8(volatile uint8_t *base, uint32_t offset, uint8_t value)
{
	*(volatile uint8_t *)(base + offset) = value;
}

static void mmio_write16(volatile uint8_t *base, uint32_t offset, uint16_t value)
{
	*(volatile uint16_t *)(base + offset) = value;
}

static void mmio_write32(volatile uint8_t *base, uint32_t offset, uint32_t value)
{
	*(volatile uint32_t *)(base + offset) = value;
}

static uint8_t mmio_read8(volatile uint8_t *base, uint32_t offset)
{
	return *(volatile uint8_t *)(base + offset);
}

static uint16_t mmio_read16(volatile uint8_t *base, uint32_t offset)
{
	return *(volatile uint16_t *)(base + offset);
}

static uint32_t mmio_read32(volatile uint8_t *base, uint32_t offset)
{
	return *(volatile uint32_t *)(base + offset);
}

/* A 64-bit register written as two halves, as §4.1.3.1 allows. */
static void mmio_write64(volatile uint8_t *base, uint32_t offset, uint64_t value)
{
	mmio_write32(base, offset, (uint32_t)value);
	mmio_write32(base, offset + 4, (uint32_t)(value >> 32));
}

static int fail(const char *what, unsigned int slot)
{
	print("selftest: virtio: ");
	print(what);
	print(" (slot ");
	print_decimal(slot, 1);
	print(")\n");
	return -1;
}

/* The slot of the index-th function of type, or -1. */
static int find_slot(uint16_t type, unsigned int index)
{
	uint32_t wanted = (uint32_t)(VIRTIO_PCI_DEVICE_BASE + type) << 16 |
			  VIRTIO_PCI_VENDOR;

	for (unsigned int slot = 0; slot < PCI_SLOTS; slot++) {
		if (pci_read32(slot, PCI_VENDOR_DEVICE) != wanted)
			continue;
		if (index-- == 0)
			return (int)slot;
	}
	return -1;
}

/* BAR 0, a 64-bit memory BAR vessel placed in the PCI hole; memory
 * decoding on, and bus mastering, which a device needs to reach RAM. */
static int enable_bar0(struct virtio_function *function, uint64_t *address)
{
	unsigned int slot = function->slot;
	uint32_t low = pci_read32(slot, PCI_BAR0);

	*address = low & ~0xfull;
	if (low & PCI_BAR_MEMORY_64)
		*address |= (uint64_t)pci_read32(slot, PCI_BAR0 + 4) << 32;
	if (*address == 0 || *address >= IDENTITY_MAP_END)
		return fail("BAR 0 is not placed below 4 GiB", slot);
	uint16_t command = (uint16_t)pci_read32(slot, PCI_COMMAND);
	pci_write16(slot, PCI_COMMAND,
		    command | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
	return 0;
}

/* Finds the common, notification and device configuration structures
 * through the vendor capabilities (§4.1.4). */
static int find_structures(struct virtio_function *function)
{
	unsigned int slot = function->slot;
	uint64_t bar;

	if (enable_bar0(function, &bar))
		return -1;
	if (!(pci_read32(slot, PCI_COMMAND) >> 16 & PCI_STATUS_CAPABILITIES))
		return fail("no capability list", slot);
	uint8_t position = pci_read8(slot, PCI_CAPABILITIES_POINTER) & 0xfc;
	for (int count = 0; position && count < PCI_MAX_CAPABILITIES; count++) {
		uint8_t id = pci_read8(slot, position);
		uint8_t type = pci_read8(slot, (uint8_t)(position + 3));
		uint8_t bar_index = pci_read8(slot, (uint8_t)(position + 4));
		uint32_t offset = pci_read32(slot, (uint8_t)(position + 8));
		volatile uint8_t *where =
			(volatile uint8_t *)(uintptr_t)(bar + offset);

		if (id == PCI_CAP_ID_VENDOR && bar_index == 0) {
			if (type == VIRTIO_PCI_CAP_COMMON_CFG) {
				function->common = where;
			} else if (type == VIRTIO_PCI_CAP_DEVICE_CFG) {
				function->device_config = where;
			} else if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
				function->notify_base = where;
				function->notify_multiplier = pci_read32(
					slot, (uint8_t)(position + 16));
			}
		}
		position = pci_read8(slot, (uint8_t)(position + 1)) & 0xfc;
	}
	if (!function->common || !function->notify_base)
		return fail("no common or notification structure", slot);
	return 0;
}

/* §3.1.1 steps 1-6: reset if needed, ACKNOWLEDGE, DRIVER, VERSION_1,
 * FEATURES_OK. */
static int negotiate(struct virtio_function *function)
{
	volatile uint8_t *common = function->common;
	int polls = 0;

	/* A device whose status reads 0 is in its reset state already: a
	 * reset written now could still be under way, unseen, when the
	 * driver sets the device up, if the device resets asynchronously.
	 * Otherwise the reset is done when device_status reads 0
	 * (§4.1.4.3.2). */
	if (mmio_read8(common, COMMON_DEVICE_STATUS) != 0)
		mmio_write8(common, COMMON_DEVICE_STATUS, 0);
	while (mmio_read8(common, COMMON_DEVICE_STATUS) != 0)
		if (++polls == RESET_MAX_POLLS)
			return fail("the reset never finished", function->slot);
	mmio_write8(common, COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE);
	mmio_write8(common, COMMON_DEVICE_STATUS,
		    STATUS_ACKNOWLEDGE | STATUS_DRIVER);
	mmio_write32(common, COMMON_DEVICE_FEATURE_SELECT, 1);
	uint32_t offered = mmio_read32(common, COMMON_DEVICE_FEATURE);
	if (!(offered & FEATURE_WORD1_VERSION_1))
		return fail("no VIRTIO_F_VERSION_1", function->slot);
	mmio_write32(common, COMMON_DRIVER_FEATURE_SELECT, 0);
	mmio_write32(common, COMMON_DRIVER_FEATURE, 0);
	mmio_write32(common, COMMON_DRIVER_FEATURE_SELECT, 1);
	mmio_write32(common, COMMON_DRIVER_FEATURE, FEATURE_WORD1_VERSION_1);
	mmio_write8(common, COMMON_DEVICE_STATUS,
		    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
	if (!(mmio_read8(common, COMMON_DEVICE_STATUS) & STATUS_FEATURES_OK))
		return fail("FEATURES_OK refused", function->slot);
	return 0;
}

/* §4.1.5.1.3: queue 0 with the driver's rings, no MSI-X vector. */
static int set_up_queue(struct virtio_function *function,
			struct virtqueue_memory *rings, uint16_t size)
{
	volatile uint8_t *common = function->common;

	mmio_write16(common, COMMON_QUEUE_SELECT, 0);
	uint16_t offered = mmio_read16(common, COMMON_QUEUE_SIZE);
	if (offered == 0)
		return fail("queue 0 does not exist", function->slot);
	if (size > offered)
		size = offered;
	memset(rings, 0, sizeof(*rings));
	rings->avail.flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	function->rings = rings;
	function->size = size;
	function->avail_idx = 0;
	function->used_seen = 0;
	mmio_write16(common, COMMON_QUEUE_SIZE, size);
	mmio_write64(common, COMMON_QUEUE_DESC, (uintptr_t)rings->desc);
	mmio_write64(common, COMMON_QUEUE_DRIVER, (uintptr_t)&rings->avail);
	mmio_write64(common, COMMON_QUEUE_DEVICE, (uintptr_t)&rings->used);
	mmio_write16(common, COMMON_QUEUE_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
	uint16_t notify_off = mmio_read16(common, COMMON_QUEUE_NOTIFY_OFF);
	uint32_t notify_offset = (uint32_t)notify_off * function->notify_multiplier;
	function->notify = (volatile uint16_t *)(function->notify_base +
						 notify_offset);
	mmio_write16(common, COMMON_QUEUE_ENABLE, 1);
	return 0;
}

int virtio_function_start(struct virtio_function *function, uint16_t type,
			  unsigned int index, struct virtqueue_memory *rings,
			  uint16_t size)
{
	int slot = find_slot(type, index);

	*function = (struct virtio_function){ 0 };
	if (slot < 0) {
		print("selftest: virtio: no such device on bus 0\n");
		return -1;
	}
	function->slot = (unsigned int)slot;
	if (find_structures(function) || negotiate(function) ||
	    set_up_queue(function, rings, size))
		return -1;
	mmio_write8(function->common, COMMON_DEVICE_STATUS,
		    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK |
			    STATUS_DRIVER_OK);
	return 0;
}

int virtio_function_needs_reset(const struct virtio_function *function)
{
	return !!(mmio_read8(function->common, COMMON_DEVICE_STATUS) &
		  STATUS_DEVICE_NEEDS_RESET);
}

uint32_t virtio_function_config32(const struct virtio_function *function,
				  uint32_t offset)
{
	return function->device_config ?
		       mmio_read32(function->device_config, offset) : 0;
}

void virtqueue_make_available(struct virtio_function *function, uint16_t head)
{
	struct virtqueue_memory *rings = function->rings;

	rings->avail.ring[function->avail_idx % function->size] = head;
	/* The entry before the index that publishes it (§2.7.13.2). */
	compiler_barrier();
	function->avail_idx++;
	*(volatile uint16_t *)&rings->avail.idx = function->avail_idx;
}

void virtqueue_kick(struct virtio_function *function, int force)
{
	/* The new index must be visible before the flag is read, or a
	 * device that just re-enabled kicks could miss it (§2.7.13.4). */
	full_barrier();
	if (force || !(*(volatile uint16_t *)&function->rings->used.flags &
		       VIRTQ_USED_F_NO_NOTIFY))
		*function->notify = 0; /* the queue's index (§4.1.5.2) */
}

int virtqueue_take_used(struct virtio_function *function, uint32_t *id,
			uint32_t *length)
{
	struct virtqueue_memory *rings = function->rings;

	if (*(volatile uint16_t *)&rings->used.idx == function->used_seen)
		return 0;
	/* The index before the entry it published. */
	compiler_barrier();
	const volatile struct virtq_used_elem *element =
		&rings->used.ring[function->used_seen % function->size];
	*id = element->id;
	*length = element->len;
	function->used_seen++;
	return 1;
}
