#include "pci.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* CONFIG_ADDRESS (PCI Local Bus 3.0 §3.2.2.3.2): enable bit, bus, device,
 * function, dword register; bits 30-24 and 1-0 are reserved, read as 0. */
#define CONFIG_ADDRESS_ENABLE 0x80000000u
#define CONFIG_ADDRESS_MASK 0x80fffffcu
#define CONFIG_ADDRESS_BUS(address) (((address) >> 16) & 0xff)
#define CONFIG_ADDRESS_SLOT(address) (((address) >> 11) & 0x1f)
#define CONFIG_ADDRESS_FUNCTION(address) (((address) >> 8) & 0x07)
#define CONFIG_ADDRESS_REGISTER(address) ((address) & 0xfc)

#define HEADER_TYPE_0 0x00 /* general device, single function */

/* Command bits a vessel device implements (PCI Local Bus 3.0 §6.2.2). The
 * status register stays read-only: vessel's devices never signal the
 * errors its write-1-to-clear bits record, so they read 0 and a write has
 * nothing to clear. */
#define COMMAND_WRITABLE                                                     \
	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER |      \
	 PCI_COMMAND_PARITY_ERROR_RESPONSE | PCI_COMMAND_SERR |              \
	 PCI_COMMAND_INTERRUPT_DISABLE)
#define CACHE_LINE_SIZE 0x0c
#define LATENCY_TIMER 0x0d

#define BAR_ADDRESS_MASK_32 0xfffffff0u /* low bits: type, prefetchable */
#define BAR_MIN_SIZE 16

/* Intel's ID for an unspecific host bridge: Linux's type 1 check accepts a
 * bus that holds a host bridge class or an Intel function. */
#define HOST_BRIDGE_VENDOR 0x8086
#define HOST_BRIDGE_DEVICE 0x0d57
#define HOST_BRIDGE_CLASS 0x060000

static void put_le16(uint8_t *bytes, uint16_t value)
{
	bytes[0] = (uint8_t)value;
	bytes[1] = (uint8_t)(value >> 8);
}

static void put_le32(uint8_t *bytes, uint32_t value)
{
	put_le16(bytes, (uint16_t)value);
	put_le16(bytes + 2, (uint16_t)(value >> 16));
}

static uint16_t get_le16(const uint8_t *bytes)
{
	return (uint16_t)(bytes[0] | bytes[1] << 8);
}

static uint32_t get_le32(const uint8_t *bytes)
{
	return get_le16(bytes) | (uint32_t)get_le16(bytes + 2) << 16;
}

int pci_device_init(struct pci_device *device, const struct pci_device_id *id,
		    const struct pci_device_ops *ops, void *opaque)
{
	memset(device, 0, sizeof(*device));
	if (pthread_mutex_init(&device->lock, NULL))
		return -ENOMEM;
	if (pthread_mutex_init(&device->write_lock, NULL)) {
		pthread_mutex_destroy(&device->lock);
		return -ENOMEM;
	}
	uint8_t *config = device->config;

	put_le16(config + PCI_VENDOR_ID, id->vendor_id);
	put_le16(config + PCI_DEVICE_ID, id->device_id);
	config[PCI_REVISION_ID] = id->revision;
	config[PCI_CLASS_CODE] = (uint8_t)id->class_code;
	config[PCI_CLASS_CODE + 1] = (uint8_t)(id->class_code >> 8);
	config[PCI_CLASS_CODE + 2] = (uint8_t)(id->class_code >> 16);
	config[PCI_HEADER_TYPE] = HEADER_TYPE_0;
	put_le16(config + PCI_SUBSYSTEM_VENDOR_ID, id->subsystem_vendor_id);
	put_le16(config + PCI_SUBSYSTEM_ID, id->subsystem_id);
	config[PCI_INTERRUPT_PIN] = id->interrupt_pin;

	put_le16(device->write_mask + PCI_COMMAND, COMMAND_WRITABLE);
	device->write_mask[CACHE_LINE_SIZE] = 0xff;
	device->write_mask[LATENCY_TIMER] = 0xff;
	device->write_mask[PCI_INTERRUPT_LINE] = 0xff;

	device->capabilities_end = PCI_CAPABILITIES_START;
	device->ops = ops;
	device->opaque = opaque;
	return 0;
}

void pci_device_destroy(struct pci_device *device)
{
	pthread_mutex_destroy(&device->write_lock);
	pthread_mutex_destroy(&device->lock);
}

int pci_device_set_bar(struct pci_device *device, unsigned int bar,
		       uint64_t size, enum pci_bar_type type,
		       bool prefetchable)
{
	bool wide = type == PCI_BAR_MEMORY_64;

	if (bar >= PCI_BAR_COUNT || (wide && bar + 1 >= PCI_BAR_COUNT))
		return -EINVAL;
	if (size < BAR_MIN_SIZE || (size & (size - 1)) ||
	    (!wide && size > (1ull << 32)))
		return -EINVAL;
	/* A register is taken by a BAR there, or by the upper half of a
	 * 64-bit BAR just below. */
	for (unsigned int i = bar; i <= bar + wide; i++) {
		if (device->bars[i].size ||
		    (i > 0 && device->bars[i - 1].size &&
		     device->bars[i - 1].type == PCI_BAR_MEMORY_64))
			return -EINVAL;
	}

	uint8_t *reg = device->config + PCI_BAR0 + 4 * bar;
	uint8_t *mask = device->write_mask + PCI_BAR0 + 4 * bar;
	uint64_t address_mask = ~(size - 1);
	uint32_t flags = (wide ? PCI_BAR_MEMORY_TYPE_64 : 0) |
			 (prefetchable ? PCI_BAR_PREFETCHABLE : 0);

	put_le32(reg, flags);
	put_le32(mask, (uint32_t)address_mask & BAR_ADDRESS_MASK_32);
	if (wide)
		put_le32(mask + 4, (uint32_t)(address_mask >> 32));
	device->bars[bar] = (struct pci_bar){ .size = size, .type = type };
	return 0;
}

int pci_device_place_bar(struct pci_device *device, unsigned int bar,
			 uint64_t address)
{
	if (bar >= PCI_BAR_COUNT || !device->bars[bar].size)
		return -EINVAL;
	uint64_t size = device->bars[bar].size;
	bool wide = device->bars[bar].type == PCI_BAR_MEMORY_64;
	if ((address & (size - 1)) ||
	    (!wide && address + size > (UINT64_C(1) << 32)))
		return -EINVAL;

	uint8_t *reg = device->config + PCI_BAR0 + 4 * bar;
	put_le32(reg, (get_le32(reg) & ~BAR_ADDRESS_MASK_32) | (uint32_t)address);
	if (wide)
		put_le32(reg + 4, (uint32_t)(address >> 32));
	return 0;
}

int pci_device_add_capability(struct pci_device *device,
			      const uint8_t *capability, uint8_t length,
			      const uint8_t *write_mask, uint8_t *offset)
{
	if (length < 2)
		return -EINVAL;
	unsigned int start = device->capabilities_end;

	if (start + length > PCI_CONFIG_SPACE_SIZE)
		return -ENOSPC;

	memcpy(device->config + start, capability, length);
	device->config[start + 1] = 0; /* end of the list */
	if (write_mask) {
		memcpy(device->write_mask + start, write_mask, length);
		device->write_mask[start] = 0;
		device->write_mask[start + 1] = 0;
	}
	if (device->last_capability)
		device->config[device->last_capability + 1] = (uint8_t)start;
	else
		device->config[PCI_CAPABILITIES_POINTER] = (uint8_t)start;
	put_le16(device->config + PCI_STATUS,
		 get_le16(device->config + PCI_STATUS) |
			 PCI_STATUS_CAPABILITIES);

	device->last_capability = (uint8_t)start;
	/* Capabilities start on a dword boundary (PCI 3.0 §6.7). */
	device->capabilities_end = (uint16_t)((start + length + 3) & ~3u);
	*offset = (uint8_t)start;
	return 0;
}

/* Where BAR bar decodes now. The caller holds device->lock. */
static void pci_device_bar_state(const struct pci_device *device,
				 unsigned int bar, uint64_t *address,
				 bool *mapped)
{
	const uint8_t *reg = device->config + PCI_BAR0 + 4 * bar;
	bool decoding =
		get_le16(device->config + PCI_COMMAND) & PCI_COMMAND_MEMORY;
	bool sizing = device->bar_sizing[bar];

	*address = get_le32(reg) & BAR_ADDRESS_MASK_32;
	if (device->bars[bar].type == PCI_BAR_MEMORY_64) {
		*address |= (uint64_t)get_le32(reg + 4) << 32;
		sizing = sizing || device->bar_sizing[bar + 1];
	}
	*mapped = decoding && !sizing;
}

struct pci_bar_change {
	unsigned int bar;
	uint64_t address;
	bool mapped;
};

/* The BARs whose mapping the registers changed, now recorded. The caller
 * holds device->lock. */
static unsigned int pci_device_bar_changes(struct pci_device *device,
					   struct pci_bar_change *changes)
{
	unsigned int change_count = 0;

	for (unsigned int bar = 0; bar < PCI_BAR_COUNT; bar++) {
		struct pci_bar *state = &device->bars[bar];
		uint64_t address;
		bool mapped;

		if (!state->size)
			continue;
		pci_device_bar_state(device, bar, &address, &mapped);
		if (mapped == state->mapped &&
		    (!mapped || address == state->address))
			continue;
		state->mapped = mapped;
		state->address = address;
		changes[change_count++] = (struct pci_bar_change){
			.bar = bar, .address = address, .mapped = mapped
		};
	}
	return change_count;
}

/* Without the lock: the hook moves the device's range on the bus. */
static void pci_device_report_bar_changes(struct pci_device *device,
					  const struct pci_bar_change *changes,
					  unsigned int change_count)
{
	if (!device->ops || !device->ops->bar_mapping_changed)
		return;
	for (unsigned int i = 0; i < change_count; i++)
		device->ops->bar_mapping_changed(device->opaque, changes[i].bar,
						 changes[i].address,
						 changes[i].mapped);
}

int pci_device_save(struct pci_device *device, struct device_state_writer *writer)
{
	uint8_t config[PCI_CONFIG_SPACE_SIZE];
	uint64_t sizing = 0;

	pthread_mutex_lock(&device->lock);
	memcpy(config, device->config, sizeof(config));
	for (unsigned int bar = 0; bar < PCI_BAR_COUNT; bar++)
		sizing |= (uint64_t)device->bar_sizing[bar] << bar;
	pthread_mutex_unlock(&device->lock);
	int result = writer->put_bytes(writer, "pci-config", config, sizeof(config));
	return result ? result : writer->put_u64(writer, "pci-bar-sizing", sizing);
}

int pci_device_restore(struct pci_device *device,
		       struct device_state_reader *reader)
{
	struct pci_bar_change changes[PCI_BAR_COUNT];
	uint8_t config[PCI_CONFIG_SPACE_SIZE];
	uint64_t sizing;
	int result = reader->get_bytes(reader, "pci-config", config, sizeof(config));

	if (!result)
		result = reader->get_u64(reader, "pci-bar-sizing", &sizing);
	if (result)
		return result;
	if (sizing >> PCI_BAR_COUNT)
		return -EINVAL;
	pthread_mutex_lock(&device->write_lock);
	pthread_mutex_lock(&device->lock);
	for (unsigned int i = 0; i < PCI_CONFIG_SPACE_SIZE; i++)
		if ((config[i] ^ device->config[i]) & ~device->write_mask[i])
			result = -EINVAL;
	if (!result) {
		memcpy(device->config, config, sizeof(config));
		for (unsigned int bar = 0; bar < PCI_BAR_COUNT; bar++)
			device->bar_sizing[bar] = (sizing >> bar) & 1;
	}
	unsigned int change_count = result ? 0 : pci_device_bar_changes(device, changes);
	pthread_mutex_unlock(&device->lock);
	pci_device_report_bar_changes(device, changes, change_count);
	pthread_mutex_unlock(&device->write_lock);
	return result;
}

static void pci_device_config_read(struct pci_device *device, uint32_t offset,
				   uint8_t *data, uint32_t size)
{
	pthread_mutex_lock(&device->lock);
	memcpy(data, device->config + offset, size);
	pthread_mutex_unlock(&device->lock);

	if (device->ops && device->ops->config_read)
		device->ops->config_read(device->opaque, offset, data, size);
}

static void pci_device_config_write(struct pci_device *device, uint32_t offset,
				    const uint8_t *data, uint32_t size)
{
	struct pci_bar_change changes[PCI_BAR_COUNT];
	unsigned int change_count;

	pthread_mutex_lock(&device->write_lock);
	pthread_mutex_lock(&device->lock);
	for (uint32_t i = 0; i < size; i++) {
		uint8_t mask = device->write_mask[offset + i];
		uint8_t *byte = &device->config[offset + i];

		*byte = (uint8_t)((*byte & ~mask) | (data[i] & mask));
	}
	/* Sizing (PCI 3.0 §6.2.5.1) writes all ones to a BAR register and
	 * reads back the size mask; the BAR does not decode there. */
	for (unsigned int reg = 0; reg < PCI_BAR_COUNT; reg++) {
		uint32_t reg_offset = PCI_BAR0 + 4 * reg;

		if (offset + size <= reg_offset || offset >= reg_offset + 4)
			continue;
		device->bar_sizing[reg] = offset == reg_offset && size == 4 &&
					  get_le32(data) == 0xffffffffu;
	}
	change_count = pci_device_bar_changes(device, changes);
	pthread_mutex_unlock(&device->lock);
	pci_device_report_bar_changes(device, changes, change_count);
	if (device->ops && device->ops->config_write)
		device->ops->config_write(device->opaque, offset, data, size);
	pthread_mutex_unlock(&device->write_lock);
}

struct pci_bus {
	pthread_mutex_t lock; /* the address register and the slots */
	uint32_t config_address;
	struct pci_device *slots[PCI_SLOT_COUNT];
	unsigned int slot_count;
	struct pci_device host_bridge;
};

struct pci_bus *pci_bus_create(void)
{
	static const struct pci_device_id host_bridge_id = {
		.vendor_id = HOST_BRIDGE_VENDOR,
		.device_id = HOST_BRIDGE_DEVICE,
		.class_code = HOST_BRIDGE_CLASS,
	};
	struct pci_bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return NULL;
	if (pthread_mutex_init(&bus->lock, NULL)) {
		free(bus);
		return NULL;
	}
	if (pci_device_init(&bus->host_bridge, &host_bridge_id, NULL, NULL)) {
		pthread_mutex_destroy(&bus->lock);
		free(bus);
		return NULL;
	}
	bus->slots[0] = &bus->host_bridge;
	bus->slot_count = 1;
	return bus;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	if (!bus)
		return;
	pci_device_destroy(&bus->host_bridge);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

int pci_bus_add_device(struct pci_bus *bus, struct pci_device *device)
{
	int ret = -ENOSPC;

	pthread_mutex_lock(&bus->lock);
	if (bus->slot_count < PCI_SLOT_COUNT) {
		bus->slots[bus->slot_count++] = device;
		ret = 0;
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

/* The function the address register selects for a data port access at
 * offset (4-7), and the configuration register it reaches; NULL when
 * configuration cycles are off or no function answers. */
static struct pci_device *pci_bus_select(struct pci_bus *bus, uint64_t offset,
					 uint32_t *reg)
{
	struct pci_device *device = NULL;

	pthread_mutex_lock(&bus->lock);
	uint32_t address = bus->config_address;

	if ((address & CONFIG_ADDRESS_ENABLE) &&
	    CONFIG_ADDRESS_BUS(address) == 0 &&
	    CONFIG_ADDRESS_FUNCTION(address) == 0)
		device = bus->slots[CONFIG_ADDRESS_SLOT(address)];
	pthread_mutex_unlock(&bus->lock);

	*reg = CONFIG_ADDRESS_REGISTER(address) +
	       (uint32_t)(offset - PCI_CONFIG_DATA_OFFSET);
	return device;
}

/* Only a dword access at 0xcf8 reaches CONFIG_ADDRESS; byte and word
 * accesses to 0xcf8-0xcfb pass through to a bus with nothing on it
 * (§3.2.2.3.2). The bus routes only accesses inside 0xcf8-0xcff, so a data
 * access never crosses the dword at 0xcfc. */
static void pci_bus_io_read(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t size)
{
	struct pci_bus *bus = opaque;

	memset(data, 0xff, size);
	if (offset < PCI_CONFIG_DATA_OFFSET) {
		if (offset == 0 && size == 4) {
			pthread_mutex_lock(&bus->lock);
			put_le32(data, bus->config_address);
			pthread_mutex_unlock(&bus->lock);
		}
		return;
	}
	uint32_t reg;
	struct pci_device *device = pci_bus_select(bus, offset, &reg);

	if (device)
		pci_device_config_read(device, reg, data, size);
}

static void pci_bus_io_write(void *opaque, uint64_t offset, const uint8_t *data,
			     uint32_t size)
{
	struct pci_bus *bus = opaque;

	if (offset < PCI_CONFIG_DATA_OFFSET) {
		if (offset == 0 && size == 4) {
			pthread_mutex_lock(&bus->lock);
			bus->config_address = get_le32(data) &
					      CONFIG_ADDRESS_MASK;
			pthread_mutex_unlock(&bus->lock);
		}
		return;
	}
	uint32_t reg;
	struct pci_device *device = pci_bus_select(bus, offset, &reg);

	if (device)
		pci_device_config_write(device, reg, data, size);
}

static const struct bus_device_ops pci_bus_ops = {
	.read = pci_bus_io_read,
	.write = pci_bus_io_write,
};

int pci_bus_attach(struct pci_bus *bus, struct bus *pio_bus,
		   uint16_t address_port)
{
	return bus_register(pio_bus, address_port,
			    PCI_CONFIG_PORT_COUNT, &pci_bus_ops, bus, "pci");
}

static int pci_bus_save(void *opaque, struct device_state_writer *writer)
{
	struct pci_bus *bus = opaque;

	pthread_mutex_lock(&bus->lock);
	uint32_t address = bus->config_address;
	pthread_mutex_unlock(&bus->lock);
	int result = writer->put_u64(writer, "config-address", address);
	return result ? result : pci_device_save(&bus->host_bridge, writer);
}

static int pci_bus_restore(void *opaque, struct device_state_reader *reader)
{
	struct pci_bus *bus = opaque;
	uint64_t address;
	int result = reader->get_u64(reader, "config-address", &address);

	if (result)
		return result;
	if (address > UINT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	bus->config_address = (uint32_t)address;
	pthread_mutex_unlock(&bus->lock);
	return pci_device_restore(&bus->host_bridge, reader);
}

static const struct device_ops pci_bus_record_ops = {
	.save = pci_bus_save,
	.restore = pci_bus_restore,
	.state_version = 1,
};

struct device_record pci_bus_record(struct pci_bus *bus, const char *name)
{
	return (struct device_record){ .name = name, .ops = &pci_bus_record_ops,
				       .opaque = bus };
}
