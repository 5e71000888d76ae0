/*
 * The virtio-pci transport as a driver sees it: configuration space and
 * capabilities, BAR placement, feature negotiation (with the FEATURES_OK
 * refusal), activation and reset on the event thread, kicks, and MSI-X
 * delivery with masking.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pci.h"
#include "devices/virtio/pci.h"
#include "vmm/state_fdt.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define BAR_ADDRESS 0xc0000000ull
#define RAM_SIZE (1u << 20)
#define FEATURE_DEVICE_SPECIFIC 0
#define SLOT 1

static struct guest_memory memory;

static uint8_t *device_ram(void)
{
	return memory.regions[0].host_addr;
}

/* --- a device with two queues and 8 bytes of configuration ------------- */

struct fake_device {
	struct virtio_device virtio;
	unsigned int activations, resets, notifies[2];
	unsigned int quiesces, resumes;
};

static void fake_read_config(struct virtio_device *device, uint32_t offset,
			     uint8_t *data, uint32_t size)
{
	(void)device;
	for (uint32_t i = 0; i < size; i++)
		data[i] = (uint8_t)(0xa0 + offset + i);
}

static int fake_activate(struct virtio_device *device)
{
	((struct fake_device *)device)->activations++;
	return 0;
}

static void fake_reset(struct virtio_device *device)
{
	((struct fake_device *)device)->resets++;
}

/* A driver that makes a chain available again as soon as the device
 * takes one, until it has made total in all; the fake device takes every
 * chain it is given. Queue 0's rings are where start_device puts them. */
#define FLOOD_AVAIL 0x11000
static struct {
	unsigned int total, made, taken;
} flood;
static struct virtqueue_element flood_element;

static void flood_make_available(void)
{
	uint8_t *ram = device_ram();
	uint16_t idx = ram_get16(ram, FLOOD_AVAIL + 2);

	ram_put16(ram, FLOOD_AVAIL + 4 + 2 * (idx % 256), 0);
	ram_put16(ram, FLOOD_AVAIL + 2, idx + 1);
	flood.made++;
}

static void fake_queue_notify(struct virtio_device *device, unsigned int queue)
{
	struct virtqueue *ring = &device->queues[queue];

	((struct fake_device *)device)->notifies[queue]++;
	while (flood.total && virtqueue_pop(ring, &flood_element) > 0) {
		flood.taken++;
		virtqueue_push(ring, flood_element.head, 0);
		if (flood.made < flood.total)
			flood_make_available();
	}
}

static int fake_quiesce(struct virtio_device *device)
{
	((struct fake_device *)device)->quiesces++;
	return 0;
}

static void fake_resume(struct virtio_device *device)
{
	((struct fake_device *)device)->resumes++;
}

static unsigned int fake_counters(struct virtio_device *device,
				  struct device_counter *out, unsigned int max)
{
	cr_assert_geq(max, 1);
	out[0] = (struct device_counter){ "kicks",
		((struct fake_device *)device)->notifies[1] };
	return 1;
}

/* The device's own rule: device-specific bit 1 only with bit 0. */
static bool fake_features_acceptable(const struct virtio_device *device)
{
	return !(device->driver_features & (UINT64_C(1) << 1)) ||
	       (device->driver_features & (UINT64_C(1) << 0));
}

static const struct virtio_device_ops fake_ops = {
	.features_acceptable = fake_features_acceptable,
	.read_config = fake_read_config,
	.activate = fake_activate,
	.reset = fake_reset,
	.queue_notify = fake_queue_notify,
	.quiesce = fake_quiesce,
	.resume = fake_resume,
	.counters = fake_counters,
};

/* --- the platform and the event thread, recorded ------------------------ */

#define MAX_WATCHES 8
static struct {
	int fd;
	device_fd_handler handler;
	void *opaque;
} watches[MAX_WATCHES];
static unsigned int watch_count;
static unsigned int signals[4], routes[4], ioeventfds_assigned;
static uint64_t routed_address[4];

static int fake_watch(void *context, int fd, uint32_t events,
		      device_fd_handler handler, void *opaque)
{
	(void)context;
	(void)events;
	cr_assert_lt(watch_count, MAX_WATCHES);
	watches[watch_count].fd = fd;
	watches[watch_count].handler = handler;
	watches[watch_count].opaque = opaque;
	watch_count++;
	return 0;
}

static int fake_unwatch(void *context, int fd)
{
	(void)context;
	(void)fd;
	return 0;
}

/* Runs the handlers whose eventfd has something: one event-loop turn. */
static void run_event_thread(void)
{
	for (unsigned int i = 0; i < watch_count; i++) {
		uint64_t value;
		if (read(watches[i].fd, &value, sizeof(value)) == sizeof(value)) {
			/* The handler reads the fd itself: give the count back. */
			eventfd_write(watches[i].fd, value);
			watches[i].handler(watches[i].opaque, 1);
		}
	}
}

static int fake_route(void *opaque, const void *function, unsigned int vector,
		      uint64_t address, uint32_t data)
{
	(void)opaque;
	(void)function;
	(void)data;
	routes[vector]++;
	routed_address[vector] = address;
	return 0;
}

static void fake_signal(void *opaque, const void *function, unsigned int vector)
{
	(void)opaque;
	(void)function;
	signals[vector]++;
}

static int fake_ioeventfd(void *opaque, uint64_t address, uint32_t length, int fd,
			  bool assign)
{
	(void)opaque;
	(void)fd;
	cr_assert_eq(length, 2);
	cr_assert_geq(address, BAR_ADDRESS + VIRTIO_PCI_NOTIFY_OFFSET);
	ioeventfds_assigned += assign ? 1 : -1;
	return 0;
}

/* --- fixture ------------------------------------------------------------ */

static struct bus *pio, *mmio;
static struct pci_bus *pci;
static struct fake_device device;
static struct virtio_pci *function;

static void setup_with_features(uint64_t features)
{
	memory.region_count = 1;
	memory.regions[0] = (struct guest_region){ .size = RAM_SIZE,
						   .host_addr = calloc(1, RAM_SIZE) };
	pio = bus_create("pio");
	mmio = bus_create("mmio");
	pci = pci_bus_create();
	cr_assert_eq(pci_bus_attach(pci, pio, LAYOUT_PCI_CONFIG_PORT), 0);
	memset(&device, 0, sizeof(device));
	memset(&flood, 0, sizeof(flood));
	memset(signals, 0, sizeof(signals));
	memset(routes, 0, sizeof(routes));
	watch_count = 0;
	ioeventfds_assigned = 0;
	device.virtio = (struct virtio_device){
		.name = "fake",
		.device_id = VIRTIO_ID_BLOCK,
		.device_features = features,
		.config_size = 8,
		.queue_count = 2,
		.ops = &fake_ops,
		.context = { .memory = &memory, .watch_fd = fake_watch,
			     .unwatch_fd = fake_unwatch },
	};
	struct virtio_pci_platform platform = {
		.mmio_bus = mmio, .msi_route = fake_route,
		.msi_signal = fake_signal, .ioeventfd = fake_ioeventfd,
	};
	function = virtio_pci_create(&device.virtio, &platform, BAR_ADDRESS);
	cr_assert_not_null(function);
	cr_assert_eq(pci_bus_add_device(pci, virtio_pci_function(function)), 0);
}

static void setup(void)
{
	setup_with_features((UINT64_C(1) << VIRTIO_F_VERSION_1) |
			    (UINT64_C(1) << FEATURE_DEVICE_SPECIFIC));
}

static void teardown(void)
{
	virtio_pci_destroy(function);
	pci_bus_destroy(pci);
	bus_destroy(mmio);
	bus_destroy(pio);
	free(memory.regions[0].host_addr);
}

TestSuite(virtio_pci, .init = setup, .fini = teardown);

static uint32_t config_read32(unsigned int offset)
{
	port_write32(pio, 0xcf8, 0x80000000u | SLOT << 11 | offset);
	return port_read32(pio, 0xcfc);
}

static void config_write32(unsigned int offset, uint32_t value)
{
	port_write32(pio, 0xcf8, 0x80000000u | SLOT << 11 | offset);
	port_write32(pio, 0xcfc, value);
}

static uint64_t bar_read(uint64_t offset, uint32_t size)
{
	uint64_t value = 0;
	cr_assert(bus_read(mmio, BAR_ADDRESS + offset, (uint8_t *)&value, size),
		  "BAR 0 is not mapped at 0x%llx", BAR_ADDRESS);
	return value;
}

static void bar_write(uint64_t offset, uint32_t size, uint64_t value)
{
	cr_assert(bus_write(mmio, BAR_ADDRESS + offset, (uint8_t *)&value, size));
}

static void enable_memory_decoding(void)
{
	config_write32(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
}

/* Finds the first capability of id (and virtio cfg_type, for vendor ones). */
static unsigned int find_capability(uint8_t id, uint8_t cfg_type)
{
	unsigned int offset = config_read32(PCI_CAPABILITIES_POINTER) & 0xff;
	for (int hops = 0; offset && hops < 48; hops++) {
		uint32_t head = config_read32(offset);
		if ((head & 0xff) == id &&
		    (id != 0x09 || ((head >> 24) & 0xff) == cfg_type))
			return offset;
		offset = (head >> 8) & 0xff;
	}
	return 0;
}

/* Negotiates features and starts the device with both queues. */
static void start_device(uint64_t features)
{
	enable_memory_decoding();
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(0x08, 4, 0);
	bar_write(0x0c, 4, (uint32_t)features);
	bar_write(0x08, 4, 1);
	bar_write(0x0c, 4, (uint32_t)(features >> 32));
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				   VIRTIO_STATUS_FEATURES_OK);
	for (uint16_t queue = 0; queue < 2; queue++) {
		uint64_t base = 0x10000 + queue * 0x10000;
		bar_write(0x16, 2, queue);
		bar_write(0x18, 2, 256);
		bar_write(0x20, 4, base); /* 64-bit fields as two halves */
		bar_write(0x24, 4, 0);
		bar_write(0x28, 4, base + 0x1000);
		bar_write(0x2c, 4, 0);
		bar_write(0x30, 8, base + 0x2000);
		bar_write(0x1c, 2, 1);
	}
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	run_event_thread();
}

Test(virtio_pci, identity_and_capabilities)
{
	cr_assert_eq(config_read32(0) & 0xffff, 0x1af4);
	cr_assert_eq(config_read32(0) >> 16, 0x1040 + VIRTIO_ID_BLOCK);
	cr_assert_eq(config_read32(0x08) >> 8, 0x018000, "class");
	cr_assert_eq(config_read32(0x08) & 0xff, 1, "revision 1: modern");
	for (uint8_t type = 1; type <= 5; type++)
		cr_assert_neq(find_capability(0x09, type), 0, "no cfg_type %u", type);
	unsigned int notify = find_capability(0x09, 2);
	cr_assert_eq(config_read32(notify + 16), VIRTIO_PCI_NOTIFY_MULTIPLIER);
	unsigned int msix = find_capability(0x11, 0);
	cr_assert_neq(msix, 0);
	cr_assert_eq((config_read32(msix) >> 16) & 0x7ff, 2, "3 vectors: 2 queues + config");
}

Test(virtio_pci, bar_survives_sizing_and_maps_on_decode)
{
	cr_assert_eq(config_read32(PCI_BAR0) & ~0xfu, (uint32_t)BAR_ADDRESS,
		     "the BAR is placed before the guest runs");
	config_write32(PCI_BAR0, 0xffffffff);
	config_write32(PCI_BAR0 + 4, 0xffffffff);
	cr_assert_eq(config_read32(PCI_BAR0) & ~0xfu, (uint32_t)~(VIRTIO_PCI_BAR_SIZE - 1));
	cr_assert_eq(config_read32(PCI_BAR0 + 4), 0xffffffff);
	config_write32(PCI_BAR0, (uint32_t)BAR_ADDRESS);
	config_write32(PCI_BAR0 + 4, 0);
	uint8_t byte;
	cr_assert_not(bus_read(mmio, BAR_ADDRESS, &byte, 1), "mapped before decoding");
	enable_memory_decoding();
	cr_assert_eq(bar_read(0x12, 2), 2, "num_queues");
	cr_assert_eq(ioeventfds_assigned, 2, "one ioeventfd a queue");
	config_write32(PCI_COMMAND, 0);
	cr_assert_eq(ioeventfds_assigned, 0);
	cr_assert_not(bus_read(mmio, BAR_ADDRESS, &byte, 1));
}

Test(virtio_pci, features_ok_for_an_offered_subset)
{
	enable_memory_decoding();
	bar_write(0x00, 4, 1);
	cr_assert_eq(bar_read(0x04, 4), 1, "VERSION_1 is bit 32");
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	cr_assert(bar_read(0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	cr_assert_eq(device.virtio.driver_features, UINT64_C(1) << VIRTIO_F_VERSION_1);
	cr_assert_eq(device.activations, 1);
	cr_assert_eq(device.notifies[0], 1, "queues are looked at on activation");
	cr_assert_eq(device.notifies[1], 1);
}

Test(virtio_pci, features_ok_refused_for_unoffered_or_legacy)
{
	start_device((UINT64_C(1) << VIRTIO_F_VERSION_1) | (UINT64_C(1) << 5));
	cr_assert_eq(bar_read(0x14, 1) & VIRTIO_STATUS_FEATURES_OK, 0,
		     "accepted a feature the device did not offer");
	cr_assert_eq(device.activations, 0);

	bar_write(0x14, 1, 0);
	run_event_thread();
	start_device(UINT64_C(1) << FEATURE_DEVICE_SPECIFIC);
	cr_assert_eq(bar_read(0x14, 1) & VIRTIO_STATUS_FEATURES_OK, 0,
		     "accepted a driver without VERSION_1");
	cr_assert_eq(device.activations, 0);
}

Test(virtio_pci, features_ok_refused_when_the_device_says_they_clash)
{
	teardown();
	setup_with_features((UINT64_C(1) << VIRTIO_F_VERSION_1) | 3);
	start_device((UINT64_C(1) << VIRTIO_F_VERSION_1) | 2);
	cr_assert_eq(bar_read(0x14, 1) & VIRTIO_STATUS_FEATURES_OK, 0,
		     "accepted bit 1 without the bit it needs");
	cr_assert_eq(device.activations, 0);

	bar_write(0x14, 1, 0);
	run_event_thread();
	start_device((UINT64_C(1) << VIRTIO_F_VERSION_1) | 3);
	cr_assert(bar_read(0x14, 1) & VIRTIO_STATUS_FEATURES_OK);
	cr_assert_eq(device.activations, 1);
}

Test(virtio_pci, reset_completes_on_the_event_thread)
{
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	bar_write(0x14, 1, 0);
	cr_assert_neq(bar_read(0x14, 1), 0, "reset is not done before the device stops");
	run_event_thread();
	cr_assert_eq(bar_read(0x14, 1), 0);
	cr_assert_eq(device.resets, 2, "once at creation, once for the driver");
	cr_assert_eq(device.virtio.driver_features, 0);
	bar_write(0x16, 2, 0);
	cr_assert_eq(bar_read(0x1c, 2), 0, "queue disabled");
	cr_assert_eq(bar_read(0x20, 8), 0, "queue address forgotten");
}

/* Linux's first probe: a reset of a device whose status reads 0 already,
 * and the set-up right after it, before the event thread runs. */
Test(virtio_pci, a_reset_before_any_start_is_done_at_once)
{
	const uint64_t features = UINT64_C(1) << VIRTIO_F_VERSION_1;
	const uint8_t set_up = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			       VIRTIO_STATUS_FEATURES_OK;

	enable_memory_decoding();
	cr_assert_eq(bar_read(0x14, 1), 0);
	bar_write(0x14, 1, 0);
	cr_assert_eq(bar_read(0x14, 1), 0);
	bar_write(0x14, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	bar_write(0x08, 4, 1);
	bar_write(0x0c, 4, (uint32_t)(features >> 32));
	bar_write(0x14, 1, set_up);
	run_event_thread();
	cr_assert_eq(bar_read(0x14, 1), set_up);
	cr_assert_eq(device.virtio.driver_features, features);
	bar_write(0x14, 1, set_up | VIRTIO_STATUS_DRIVER_OK);
	run_event_thread();
	cr_assert_eq(bar_read(0x14, 1), set_up | VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(device.activations, 1);
}

Test(virtio_pci, kicks_reach_the_device_on_the_event_thread)
{
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	bar_write(VIRTIO_PCI_NOTIFY_OFFSET + VIRTIO_PCI_NOTIFY_MULTIPLIER, 2, 1);
	cr_assert_eq(device.notifies[1], 1, "no device work on the vCPU");
	run_event_thread();
	cr_assert_eq(device.notifies[1], 2);
	cr_assert_eq(device.notifies[0], 1);
}

/* A driver that refills its queue as fast as the device empties it gets
 * VIRTIO_QUEUE_BUDGET chains a round of the event loop, and the rest in
 * the rounds after, with what else waits running in between. */
Test(virtio_pci, a_queue_kept_full_is_served_a_budget_a_round)
{
	const unsigned int total = 3 * VIRTIO_QUEUE_BUDGET + 10;
	unsigned int rounds = 0;

	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	ram_put64(device_ram(), 0x10000, 0x30000); /* descriptor 0 */
	ram_put32(device_ram(), 0x10000 + 8, 16);
	flood.total = total;
	flood_make_available();
	bar_write(VIRTIO_PCI_NOTIFY_OFFSET, 2, 0);
	while (flood.taken < total) {
		unsigned int before = flood.taken;

		cr_assert_lt(rounds++, 10, "the queue was left waiting");
		run_event_thread();
		cr_assert_leq(flood.taken - before, VIRTIO_QUEUE_BUDGET,
			      "round %u took %u chains", rounds,
			      flood.taken - before);
	}
	cr_assert_eq(rounds, 4);
	unsigned int notifies = device.notifies[0];
	run_event_thread();
	cr_assert_eq(device.notifies[0], notifies, "nothing left, no round");
}

Test(virtio_pci, device_configuration_through_the_bar)
{
	enable_memory_decoding();
	cr_assert_eq(bar_read(0x2000 + 2, 2), 0xa3a2);
	uint8_t byte;
	cr_assert(bus_read(mmio, BAR_ADDRESS + 0x2000 + 8, &byte, 1));
	cr_assert_eq(byte, 0, "beyond config_size reads as zero");
}

/* Interrupt set-up: MSI-X on, vector 0 for queue 0, its table entry
 * programmed; masked as the caller says. */
static void set_up_msix(bool entry_masked)
{
	unsigned int msix = find_capability(0x11, 0);
	start_device((UINT64_C(1) << VIRTIO_F_VERSION_1));
	bar_write(0x4000, 8, 0xfee00000);
	bar_write(0x4008, 4, 0x4041);
	bar_write(0x400c, 4, entry_masked);
	config_write32(msix, config_read32(msix) | 0x80000000u); /* enable */
	bar_write(0x16, 2, 0);
	bar_write(0x1a, 2, 0);
	cr_assert_eq(bar_read(0x1a, 2), 0);
}

static void make_queue_zero_notifiable(void)
{
	/* An empty avail ring without NO_INTERRUPT: the driver wants it. */
	memset(memory.regions[0].host_addr + 0x11000, 0, 4);
}

Test(virtio_pci, msix_message_for_a_queue)
{
	set_up_msix(false);
	cr_assert_eq(routes[0], 1);
	cr_assert_eq(routed_address[0], 0xfee00000);
	make_queue_zero_notifiable();
	device.virtio.notify_queue(&device.virtio, 0);
	cr_assert_eq(signals[0], 1);
}

Test(virtio_pci, masked_vector_is_pending_until_unmasked)
{
	set_up_msix(true);
	make_queue_zero_notifiable();
	device.virtio.notify_queue(&device.virtio, 0);
	cr_assert_eq(signals[0], 0, "a masked vector fired");
	cr_assert_eq(bar_read(0x5000, 8) & 1, 1, "pending bit");
	bar_write(0x400c, 4, 0);
	cr_assert_eq(signals[0], 1, "unmasking delivers the pending message");
	cr_assert_eq(bar_read(0x5000, 8) & 1, 0);
}

Test(virtio_pci, vector_out_of_range_reads_no_vector)
{
	enable_memory_decoding();
	bar_write(0x10, 2, 7);
	cr_assert_eq(bar_read(0x10, 2), VIRTIO_PCI_NO_VECTOR);
	bar_write(0x16, 2, 1);
	bar_write(0x1a, 2, 3);
	cr_assert_eq(bar_read(0x1a, 2), VIRTIO_PCI_NO_VECTOR);
}

Test(virtio_pci, configuration_change_interrupts_with_a_new_generation)
{
	unsigned int msix = find_capability(0x11, 0);
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	bar_write(0x4000 + 2 * 16, 8, 0xfee00000);
	bar_write(0x4000 + 2 * 16 + 8, 4, 0x4042);
	bar_write(0x4000 + 2 * 16 + 12, 4, 0);
	config_write32(msix, config_read32(msix) | 0x80000000u);
	bar_write(0x10, 2, 2);
	bar_read(0x1000, 1); /* clears the ISR */
	uint8_t generation = (uint8_t)bar_read(0x15, 1);

	device.virtio.notify_config(&device.virtio);
	cr_assert_eq(signals[2], 1, "the configuration vector fired");
	cr_assert_neq(bar_read(0x15, 1), generation,
		      "the driver must see the configuration changed");
	cr_assert_eq(bar_read(0x1000, 1), 2, "ISR: a configuration change");
	cr_assert_eq(bar_read(0x14, 1) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
	cr_assert_eq(signals[0] + signals[1], 0);
}

Test(virtio_pci, configuration_change_without_msix_sets_the_isr)
{
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	bar_read(0x1000, 1);
	device.virtio.notify_config(&device.virtio);
	cr_assert_eq(bar_read(0x1000, 1), 2);
	cr_assert_eq(bar_read(0x1000, 1), 0, "reading the ISR clears it");
	cr_assert_eq(signals[0] + signals[1] + signals[2], 0);
}

/* --- the device record: pause and resume -------------------------------- */

Test(virtio_pci, kicks_wait_while_quiesced_and_are_served_on_resume)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	cr_assert_str_eq(record.name, "virtio-fake0");
	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	cr_assert_eq(device.quiesces, 1, "the device finished its work");
	bar_write(VIRTIO_PCI_NOTIFY_OFFSET + VIRTIO_PCI_NOTIFY_MULTIPLIER, 2, 1);
	run_event_thread();
	cr_assert_eq(device.notifies[1], 1, "a kick while paused waits");
	record.ops->resume(record.opaque);
	cr_assert_eq(device.resumes, 1);
	run_event_thread();
	cr_assert_eq(device.notifies[1], 2, "and is served after resume");
	run_event_thread();
	cr_assert_eq(device.notifies[1], 2, "once");
}

Test(virtio_pci, a_reset_written_while_quiesced_happens_on_resume)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	bar_write(0x14, 1, 0);
	run_event_thread();
	cr_assert_eq(device.resets, 1, "no reset while paused");
	record.ops->resume(record.opaque);
	run_event_thread();
	cr_assert_eq(device.resets, 2, "the reset came after resume");
	cr_assert_eq(bar_read(0x14, 1), 0);
}

Test(virtio_pci, an_inactive_device_is_not_asked_to_quiesce)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	record.ops->resume(record.opaque);
	cr_assert_eq(device.quiesces, 0);
	cr_assert_eq(device.resumes, 0);
}

Test(virtio_pci, the_record_reports_the_device_counters)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");
	struct device_counter counters[DEVICE_MAX_COUNTERS];

	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	bar_write(VIRTIO_PCI_NOTIFY_OFFSET + VIRTIO_PCI_NOTIFY_MULTIPLIER, 2, 1);
	run_event_thread();
	cr_assert_eq(record.ops->counters(record.opaque, counters,
					  DEVICE_MAX_COUNTERS), 1);
	cr_assert_str_eq(counters[0].name, "kicks");
	cr_assert_eq(counters[0].value, 2);
}

/* --- snapshots ----------------------------------------------------------- */

static struct state_writer snapshot_writer;
static struct state_reader snapshot_reader;

static int save_function(void)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");
	const void *blob;
	size_t size;

	cr_assert_eq(state_writer_init(&snapshot_writer), 0);
	cr_assert_eq(state_writer_begin(&snapshot_writer, "/devices/virtio-fake0",
					record.ops->state_version), 0);
	int result = record.ops->save(record.opaque, &snapshot_writer.base);
	cr_assert_eq(state_writer_finish(&snapshot_writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&snapshot_reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&snapshot_reader, "/devices/virtio-fake0",
					record.ops->state_version), 0);
	return result;
}

Test(virtio_pci, a_driven_device_is_saved_only_when_the_transport_holds_its_state)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	cr_assert_eq(save_function(), -EOPNOTSUPP);
	state_writer_release(&snapshot_writer);
}

Test(virtio_pci, a_driven_device_restored_into_a_fresh_transport_goes_on)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	device.virtio.saved_by_transport = true;
	set_up_msix(false);
	device.virtio.queues[0].last_avail_idx = 5;
	device.virtio.queues[0].used_idx = 5;
	bar_write(0x16, 2, 1); /* queue 1 selected */
	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	cr_assert_eq(save_function(), 0);

	teardown();
	setup();
	device.virtio.saved_by_transport = true;
	record = virtio_pci_record(function, "virtio-fake0");
	cr_assert_eq(record.ops->restore(record.opaque, &snapshot_reader.base), 0);
	state_writer_release(&snapshot_writer);
	cr_assert_eq(device.activations, 1, "the device type is active again");
	cr_assert_eq(device.quiesces, 1, "and quiesced, as the machine is paused");
	cr_assert_eq(bar_read(0x14, 1), VIRTIO_STATUS_ACKNOWLEDGE |
					VIRTIO_STATUS_DRIVER |
					VIRTIO_STATUS_FEATURES_OK |
					VIRTIO_STATUS_DRIVER_OK);
	cr_assert_eq(bar_read(0x16, 2), 1);
	bar_write(0x16, 2, 0);
	cr_assert_eq(bar_read(0x20, 4), 0x10000);
	cr_assert_eq(bar_read(0x1a, 2), 0, "queue 0's MSI-X vector");
	cr_assert_eq(device.virtio.queues[0].last_avail_idx, 5);
	cr_assert_eq(device.virtio.queues[0].used_idx, 5);
	cr_assert_eq(bar_read(0x4000, 8), 0xfee00000, "the MSI-X table");
	cr_assert_eq(routes[0], 1, "the vector's route is made again");
	cr_assert_gt(ioeventfds_assigned, 0, "kicks go to eventfds again");
	record.ops->resume(record.opaque);
	run_event_thread();
	cr_assert_eq(device.notifies[0], 1, "the queues are looked at on resume");
	make_queue_zero_notifiable();
	device.virtio.notify_queue(&device.virtio, 0);
	cr_assert_eq(signals[0], 1, "and interrupt the guest as before");
}

Test(virtio_pci, restore_refuses_a_queue_the_device_cannot_use)
{
	struct device_record record = virtio_pci_record(function, "virtio-fake0");

	device.virtio.saved_by_transport = true;
	start_device(UINT64_C(1) << VIRTIO_F_VERSION_1);
	device.virtio.queues[1].size = 3; /* not a power of two */
	cr_assert_eq(record.ops->quiesce(record.opaque), 0);
	cr_assert_eq(save_function(), 0);
	teardown();
	setup();
	device.virtio.saved_by_transport = true;
	record = virtio_pci_record(function, "virtio-fake0");
	cr_assert_eq(record.ops->restore(record.opaque, &snapshot_reader.base),
		     -EINVAL);
	state_writer_release(&snapshot_writer);
}
