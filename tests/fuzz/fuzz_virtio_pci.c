/*
 * The virtio-pci transport (devices/virtio/pci.c): a guest's accesses to
 * the function's configuration space (capabilities, BAR sizing and moves,
 * memory decoding) through configuration mechanism #1, and to its BAR of
 * any size at any offset (the common configuration's feature
 * negotiation, device status and reset, queue set-up and enable; the
 * notification area; the MSI-X table and pending bits with masking), with
 * the event thread's turns (activation, reset, kicks) in between. The
 * device behind it has two queues and serves each kick by giving every
 * chain back, so that the transport's interrupts fire.
 *
 * Input: operations, a byte each: its low 3 bits pick a configuration
 * space write or read, a BAR write or read, an event-loop turn, or a
 * driver operation (fuzz_driver_operate) on queue (op >> 3) & 1.
 */
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/virtio/pci.h"
#include "vmm/machine_layout.h"
#include "fuzz_driver.h"

#define CONFIG_DATA_PORT (LAYOUT_PCI_CONFIG_PORT + PCI_CONFIG_DATA_OFFSET)

#define BAR_ADDRESS 0xc0000000ull
#define SLOT 1
#define CONFIG_SIZE 8

static struct fuzz_driver driver;

struct fuzz_device {
	struct virtio_device virtio;
	uint8_t config[CONFIG_SIZE];
};

static void device_read_config(struct virtio_device *device, uint32_t offset,
			       uint8_t *data, uint32_t size)
{
	memcpy(data, ((struct fuzz_device *)device)->config + offset, size);
}

static void device_write_config(struct virtio_device *device, uint32_t offset,
				const uint8_t *data, uint32_t size)
{
	memcpy(((struct fuzz_device *)device)->config + offset, data, size);
}

static int device_activate(struct virtio_device *device)
{
	(void)device;
	return 0;
}

static void device_reset(struct virtio_device *device)
{
	(void)device;
}

static void device_queue_notify(struct virtio_device *device, unsigned int index)
{
	struct virtqueue *queue = &device->queues[index];
	static struct virtqueue_element element;

	for (unsigned int i = 0; i < queue->size; i++) {
		uint16_t last_avail_idx = queue->last_avail_idx;
		int ret = virtqueue_pop(queue, &element);

		if (ret == 0 || (ret < 0 && queue->last_avail_idx == last_avail_idx))
			break;
		if (ret > 0)
			virtqueue_push(queue, element.head, 0);
	}
	device->notify_queue(device, index);
}

static const struct virtio_device_ops device_ops = {
	.read_config = device_read_config,
	.write_config = device_write_config,
	.activate = device_activate,
	.reset = device_reset,
	.queue_notify = device_queue_notify,
};

static int route(void *opaque, const void *function, unsigned int vector,
		 uint64_t address, uint32_t data)
{
	(void)opaque;
	(void)function;
	(void)vector;
	(void)address;
	(void)data;
	return 0;
}

static void signal_vector(void *opaque, const void *function,
			  unsigned int vector)
{
	(void)opaque;
	(void)function;
	(void)vector;
}

static int ioeventfd(void *opaque, uint64_t address, uint32_t length, int fd,
		     bool assign)
{
	(void)opaque;
	(void)address;
	(void)length;
	(void)fd;
	(void)assign;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_driver_init(&driver);
	return 0;
}

static void select_register(struct bus *pio, uint32_t offset)
{
	uint32_t address = 0x80000000u | SLOT << 11 | (offset & 0xfc);

	bus_write(pio, LAYOUT_PCI_CONFIG_PORT, (uint8_t *)&address, 4);
}

static uint32_t config_read32(struct bus *pio, uint32_t offset)
{
	uint32_t value = 0;

	select_register(pio, offset);
	bus_read(pio, CONFIG_DATA_PORT, (uint8_t *)&value, 4);
	return value;
}

/* Where the guest has put BAR 0 (64-bit) now. */
static uint64_t bar_address(struct bus *pio)
{
	return (config_read32(pio, PCI_BAR0) & ~UINT32_C(0xf)) |
	       (uint64_t)config_read32(pio, PCI_BAR0 + 4) << 32;
}

static void access(struct bus *pio, struct bus *mmio, uint8_t op,
		   struct fuzz_input *input)
{
	static const uint32_t sizes[] = { 1, 2, 4, 8 };
	uint32_t size = sizes[(op >> 3) & 3];
	uint64_t value = fuzz_take_u64(input);
	bool write = !(op & 1);

	if (op & 2) { /* the BAR */
		uint64_t address = bar_address(pio) +
				   fuzz_take_u16(input) % VIRTIO_PCI_BAR_SIZE;

		if (write)
			bus_write(mmio, address, (uint8_t *)&value, size);
		else
			bus_read(mmio, address, (uint8_t *)&value, size);
		return;
	}
	/* Configuration space: the data port is 4 bytes wide. */
	uint32_t offset = fuzz_take_u8(input);

	size = size > 4 ? 4 : size;
	select_register(pio, offset);
	offset = CONFIG_DATA_PORT + (offset & 3 & (4 - size));
	if (write)
		bus_write(pio, offset, (uint8_t *)&value, size);
	else
		bus_read(pio, offset, (uint8_t *)&value, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	struct bus *pio = bus_create("pio"), *mmio = bus_create("mmio");
	struct pci_bus *pci = pci_bus_create();
	struct fuzz_device device = {
		.virtio = {
			.name = "fuzz",
			.device_id = VIRTIO_ID_BLOCK,
			.device_features = UINT64_C(1) << VIRTIO_F_VERSION_1 |
					   UINT64_C(1) << VIRTIO_F_EVENT_IDX |
					   UINT64_C(1) << VIRTIO_F_INDIRECT_DESC | 3,
			.config_size = CONFIG_SIZE,
			.queue_count = 2,
			.ops = &device_ops,
			.context = fuzz_event_context(&driver.memory),
		},
	};
	struct virtio_pci_platform platform = {
		.mmio_bus = mmio, .msi_route = route,
		.msi_signal = signal_vector, .ioeventfd = ioeventfd,
	};
	struct virtio_pci *function;

	fuzz_driver_clear(&driver);
	if (!pio || !mmio || !pci ||
	    pci_bus_attach(pci, pio, LAYOUT_PCI_CONFIG_PORT))
		abort();
	function = virtio_pci_create(&device.virtio, &platform, BAR_ADDRESS);
	if (!function || pci_bus_add_device(pci, virtio_pci_function(function)))
		abort();
	while (!fuzz_input_empty(&input)) {
		uint8_t op = fuzz_take_u8(&input);

		switch (op & 7) {
		case 4:
		case 5:
			fuzz_events_run(false);
			break;
		case 6:
		case 7:
			/* Rings where the driver put them, if it did. */
			fuzz_driver_operate(&driver,
					    &device.virtio.queues[(op >> 3) & 1],
					    op >> 4, &input);
			break;
		default:
			access(pio, mmio, op, &input);
			break;
		}
	}
	virtio_pci_destroy(function);
	pci_bus_destroy(pci);
	bus_destroy(mmio);
	bus_destroy(pio);
	return 0;
}
