#include "pci.h"

#include "../array.h"
#include "../device_state.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Regions of BAR 0 (see pci.h). */
#define COMMON_OFFSET 0x0000
#define COMMON_SIZE 0x40
#define ISR_OFFSET 0x1000
#define DEVICE_OFFSET 0x2000
#define DEVICE_SIZE 0x1000
#define NOTIFY_SIZE (VIRTIO_MAX_QUEUES * VIRTIO_PCI_NOTIFY_MULTIPLIER)
#define MSIX_TABLE_OFFSET 0x4000
#define MSIX_PBA_OFFSET 0x5000
#define MSIX_MAX_VECTORS (VIRTIO_MAX_QUEUES + 1) /* a vector per queue, one
						   * for configuration changes */

_Static_assert(MSIX_MAX_VECTORS <= PCI_MSIX_MAX_VECTORS,
	       "a vector for each queue and one for configuration changes");

/* Vendor capability types (virtio 1.2 §4.1.4). */
#define CAP_COMMON_CFG 1
#define CAP_NOTIFY_CFG 2
#define CAP_ISR_CFG 3
#define CAP_DEVICE_CFG 4
#define CAP_PCI_CFG 5
#define PCI_CAP_ID_VENDOR 0x09

/* Common configuration registers (§4.1.4.3). */
enum {
	COMMON_DEVICE_FEATURE_SELECT = 0x00,
	COMMON_DEVICE_FEATURE = 0x04,
	COMMON_DRIVER_FEATURE_SELECT = 0x08,
	COMMON_DRIVER_FEATURE = 0x0c,
	COMMON_CONFIG_MSIX_VECTOR = 0x10,
	COMMON_NUM_QUEUES = 0x12,
	COMMON_DEVICE_STATUS = 0x14,
	COMMON_CONFIG_GENERATION = 0x15,
	COMMON_QUEUE_SELECT = 0x16,
	COMMON_QUEUE_SIZE = 0x18,
	COMMON_QUEUE_MSIX_VECTOR = 0x1a,
	COMMON_QUEUE_ENABLE = 0x1c,
	COMMON_QUEUE_NOTIFY_OFF = 0x1e,
	COMMON_QUEUE_DESC = 0x20,
	COMMON_QUEUE_DRIVER = 0x28,
	COMMON_QUEUE_DEVICE = 0x30,
};

/* A queue's notification eventfd and what its handler needs. */
struct queue_notifier {
	struct virtio_pci *function;
	unsigned int queue;
	int fd;
};

struct virtio_pci {
	struct pci_device pci;
	struct virtio_device *device;
	struct virtio_pci_platform platform;

	/* Guards the transport state below and every call into the device
	 * (ops run on the event thread, under this lock). */
	pthread_mutex_t lock;
	uint64_t bar_address;
	bool bar_mapped;
	uint32_t device_feature_select;
	uint32_t driver_feature_select;
	uint8_t status;
	bool reset_pending; /* the driver wrote 0; the event thread resets */
	bool activate_pending; /* the driver wrote DRIVER_OK */
	bool active;
	/* Paused (virtio_pci_record): kicks and status changes wait in
	 * held_queues and the pending flags until resume. */
	bool quiesced;
	uint32_t held_queues; /* a bit per queue kicked while quiesced */
	uint16_t queue_select;
	uint8_t isr;
	uint8_t pci_cfg_offset; /* the VIRTIO_PCI_CAP_PCI_CFG capability */
	struct queue_notifier notifiers[VIRTIO_MAX_QUEUES];
	int control_fd; /* the vCPU side asks the event thread to act */

	struct pci_msix msix; /* the table and PBA, in BAR 0 */
	/* Guards the status, the ISR and which vector each source uses;
	 * taken alone from any thread. */
	pthread_mutex_t msix_lock;
	unsigned int vector_count;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	uint8_t config_generation; /* §4.1.4.3: changes with the device's
				    * configuration */
};

static uint64_t load_le(const uint8_t *data, uint32_t size)
{
	uint64_t value = 0;

	memcpy(&value, data, size > 8 ? 8 : size);
	return value;
}

static void store_le(uint8_t *data, uint32_t size, uint64_t value)
{
	memcpy(data, &value, size > 8 ? 8 : size);
}

static void wake_event_thread(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* An eventfd counter far from overflow cannot fail. */
	}
}

/* --- interrupts --------------------------------------------------------- */

static void notify_queue(struct virtio_device *device, unsigned int queue)
{
	struct virtio_pci *function = device->transport;

	if (queue >= device->queue_count ||
	    !virtqueue_should_notify(&device->queues[queue]))
		return;
	pthread_mutex_lock(&function->msix_lock);
	uint16_t vector = function->queue_vector[queue];
	function->isr |= 1; /* §4.1.4.5: a queue interrupt */
	pthread_mutex_unlock(&function->msix_lock);
	if (vector != VIRTIO_PCI_NO_VECTOR)
		pci_msix_raise(&function->msix, vector);
}

/* A configuration change notification (§4.1.4.5): ISR bit 1 and the
 * configuration vector, for a device that needs a reset (§2.1.2) or whose
 * configuration changed, which then reads with a new generation. */
static void signal_config_change(struct virtio_pci *function,
				 bool device_needs_reset)
{
	pthread_mutex_lock(&function->msix_lock);
	if (device_needs_reset)
		function->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	else
		function->config_generation++;
	function->isr |= 2;
	uint16_t vector = function->config_vector;
	pthread_mutex_unlock(&function->msix_lock);
	if (vector != VIRTIO_PCI_NO_VECTOR)
		pci_msix_raise(&function->msix, vector);
}

static void needs_reset(struct virtio_device *device)
{
	signal_config_change(device->transport, true);
}

static void notify_config(struct virtio_device *device)
{
	signal_config_change(device->transport, false);
}

/* The queue's own notifier, as if the driver had kicked: epoll has
 * already reported the events of this round, so they run first. */
static void serve_queue_later(struct virtio_device *device, unsigned int queue)
{
	struct virtio_pci *function = device->transport;

	if (queue < device->queue_count)
		wake_event_thread(function->notifiers[queue].fd);
}

/* One bounded call of the device's queue handler (virtio_serve_queue).
 * Chains left over wait for the next round with kicks off: the device
 * turns them on again when it finds the ring empty. */
static void serve_queue(struct virtio_pci *function, unsigned int queue)
{
	struct virtio_device *device = function->device;

	if (virtio_serve_queue(device, queue)) {
		virtqueue_set_notification(&device->queues[queue], false);
		serve_queue_later(device, queue);
	}
}

/* --- common configuration ---------------------------------------------- */

static struct virtqueue *selected_queue(struct virtio_pci *function)
{
	if (function->queue_select >= function->device->queue_count)
		return NULL;
	return &function->device->queues[function->queue_select];
}

static uint64_t common_read(struct virtio_pci *function, uint64_t offset,
			    uint32_t size)
{
	struct virtio_device *device = function->device;
	struct virtqueue *queue = selected_queue(function);
	uint64_t value = 0;

	switch (offset) {
	case COMMON_DEVICE_FEATURE_SELECT:
		return function->device_feature_select;
	case COMMON_DEVICE_FEATURE:
		return function->device_feature_select < 2 ?
			(uint32_t)(device->device_features >>
				   (32 * function->device_feature_select)) : 0;
	case COMMON_DRIVER_FEATURE_SELECT:
		return function->driver_feature_select;
	case COMMON_DRIVER_FEATURE:
		return function->driver_feature_select < 2 ?
			(uint32_t)(device->driver_features >>
				   (32 * function->driver_feature_select)) : 0;
	case COMMON_CONFIG_MSIX_VECTOR:
		pthread_mutex_lock(&function->msix_lock);
		value = function->config_vector;
		pthread_mutex_unlock(&function->msix_lock);
		return value;
	case COMMON_NUM_QUEUES:
		return device->queue_count;
	case COMMON_DEVICE_STATUS: {
		pthread_mutex_lock(&function->msix_lock);
		value = function->status;
		pthread_mutex_unlock(&function->msix_lock);
		return value;
	}
	case COMMON_CONFIG_GENERATION:
		pthread_mutex_lock(&function->msix_lock);
		value = function->config_generation;
		pthread_mutex_unlock(&function->msix_lock);
		return value;
	case COMMON_QUEUE_SELECT:
		return function->queue_select;
	case COMMON_QUEUE_SIZE:
		return queue ? queue->size : 0;
	case COMMON_QUEUE_MSIX_VECTOR:
		if (!queue)
			return VIRTIO_PCI_NO_VECTOR;
		pthread_mutex_lock(&function->msix_lock);
		value = function->queue_vector[function->queue_select];
		pthread_mutex_unlock(&function->msix_lock);
		return value;
	case COMMON_QUEUE_ENABLE:
		return queue ? queue->ready : 0;
	case COMMON_QUEUE_NOTIFY_OFF:
		return function->queue_select;
	case COMMON_QUEUE_DESC:
	case COMMON_QUEUE_DESC + 4:
		value = queue ? queue->desc_addr : 0;
		break;
	case COMMON_QUEUE_DRIVER:
	case COMMON_QUEUE_DRIVER + 4:
		value = queue ? queue->avail_addr : 0;
		break;
	case COMMON_QUEUE_DEVICE:
	case COMMON_QUEUE_DEVICE + 4:
		value = queue ? queue->used_addr : 0;
		break;
	default:
		return 0;
	}
	/* 64-bit fields: the driver may read them as two halves. */
	if (offset % 8)
		return value >> 32;
	return size == 8 ? value : (uint32_t)value;
}

/* A 64-bit ring address written whole or as two 32-bit halves. */
static void write_address(uint64_t *field, uint64_t offset, uint32_t size,
			  uint64_t value)
{
	if (size == 8)
		*field = value;
	else if (offset % 8)
		*field = (*field & 0xffffffffu) | (value << 32);
	else
		*field = (*field & ~UINT64_C(0xffffffff)) | (uint32_t)value;
}

/* §3.1.1 step 5: FEATURES_OK only for a subset of what was offered, with
 * VERSION_1 (vessel has no legacy interface), that the device type finds
 * consistent (§2.2.2). */
static bool features_acceptable(const struct virtio_device *device)
{
	return !(device->driver_features & ~device->device_features) &&
	       (device->driver_features & (UINT64_C(1) << VIRTIO_F_VERSION_1)) &&
	       (!device->ops->features_acceptable ||
		device->ops->features_acceptable(device));
}

static void reset_transport(struct virtio_pci *function);

/*
 * The driver wrote 0 to device_status and reads it until it is 0 again
 * (§2.4, §4.1.4.3.2), then sets the device up anew. device_status must not
 * read 0 before the reset is done, and a reset done late must not undo
 * that new set-up. A device that was started (DRIVER_OK) may have work on
 * the event thread or at its backend, so the event thread resets it, and
 * until then device_status keeps its old value, which has DRIVER_OK set:
 * never 0. A device never started has no such work, so its reset happens
 * here, at once: Linux's first probe resets a device whose status already
 * reads 0, and goes on as soon as it reads 0.
 */
static void request_reset(struct virtio_pci *function)
{
	if (!function->active && !function->activate_pending) {
		reset_transport(function);
		return;
	}
	pthread_mutex_lock(&function->msix_lock);
	function->reset_pending = true;
	pthread_mutex_unlock(&function->msix_lock);
	wake_event_thread(function->control_fd);
}

static void write_status(struct virtio_pci *function, uint8_t status)
{
	struct virtio_device *device = function->device;

	if (status == 0) {
		request_reset(function);
		return;
	}
	pthread_mutex_lock(&function->msix_lock);
	uint8_t old = function->status;
	if ((status & VIRTIO_STATUS_FEATURES_OK) &&
	    !(old & VIRTIO_STATUS_FEATURES_OK) && !features_acceptable(device))
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	/* Bits the device owns stay as the device set them. */
	function->status = status | (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	bool start = (status & VIRTIO_STATUS_DRIVER_OK) &&
		     !(old & VIRTIO_STATUS_DRIVER_OK) &&
		     (status & VIRTIO_STATUS_FEATURES_OK);
	pthread_mutex_unlock(&function->msix_lock);
	if (start) {
		function->activate_pending = true;
		wake_event_thread(function->control_fd);
	}
}

static void common_write(struct virtio_pci *function, uint64_t offset,
			 uint32_t size, uint64_t value)
{
	struct virtio_device *device = function->device;
	struct virtqueue *queue = selected_queue(function);
	/* The driver sets features and queues up only before DRIVER_OK
	 * (§3.1.1); afterwards such writes are ignored. */
	bool configuring = !(function->status & VIRTIO_STATUS_DRIVER_OK);
	bool features_open = !(function->status & VIRTIO_STATUS_FEATURES_OK);

	switch (offset) {
	case COMMON_DEVICE_FEATURE_SELECT:
		function->device_feature_select = (uint32_t)value;
		break;
	case COMMON_DRIVER_FEATURE_SELECT:
		function->driver_feature_select = (uint32_t)value;
		break;
	case COMMON_DRIVER_FEATURE:
		if (features_open && function->driver_feature_select < 2) {
			unsigned int shift = 32 * function->driver_feature_select;
			device->driver_features =
				(device->driver_features &
				 ~(UINT64_C(0xffffffff) << shift)) |
				((uint64_t)(uint32_t)value << shift);
		}
		break;
	case COMMON_CONFIG_MSIX_VECTOR:
		pthread_mutex_lock(&function->msix_lock);
		/* A vector the function does not have reads back as
		 * NO_VECTOR, which tells the driver it failed (§4.1.5.1.2). */
		function->config_vector = value < function->vector_count ?
			(uint16_t)value : VIRTIO_PCI_NO_VECTOR;
		pthread_mutex_unlock(&function->msix_lock);
		break;
	case COMMON_DEVICE_STATUS:
		write_status(function, (uint8_t)value);
		break;
	case COMMON_QUEUE_SELECT:
		function->queue_select = (uint16_t)value;
		break;
	case COMMON_QUEUE_SIZE:
		if (queue && configuring && !queue->ready)
			queue->size = (uint16_t)value;
		break;
	case COMMON_QUEUE_MSIX_VECTOR:
		if (!queue)
			break;
		pthread_mutex_lock(&function->msix_lock);
		function->queue_vector[function->queue_select] =
			value < function->vector_count ? (uint16_t)value :
							 VIRTIO_PCI_NO_VECTOR;
		pthread_mutex_unlock(&function->msix_lock);
		break;
	case COMMON_QUEUE_ENABLE:
		/* Only 1 may be written (§4.1.4.3.2); the rings are checked
		 * when the device starts. */
		if (queue && configuring && value == 1)
			queue->ready = true;
		break;
	case COMMON_QUEUE_DESC:
	case COMMON_QUEUE_DESC + 4:
		if (queue && configuring && !queue->ready)
			write_address(&queue->desc_addr, offset, size, value);
		break;
	case COMMON_QUEUE_DRIVER:
	case COMMON_QUEUE_DRIVER + 4:
		if (queue && configuring && !queue->ready)
			write_address(&queue->avail_addr, offset, size, value);
		break;
	case COMMON_QUEUE_DEVICE:
	case COMMON_QUEUE_DEVICE + 4:
		if (queue && configuring && !queue->ready)
			write_address(&queue->used_addr, offset, size, value);
		break;
	default:
		break; /* read-only or reserved */
	}
}

/* --- BAR 0 --------------------------------------------------------------- */

static void bar_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t size)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;

	memset(data, 0, size);
	if (offset < COMMON_SIZE) {
		pthread_mutex_lock(&function->lock);
		store_le(data, size, common_read(function, offset, size));
		pthread_mutex_unlock(&function->lock);
	} else if (offset == ISR_OFFSET) {
		/* Reading the ISR clears it (§4.1.4.5). */
		pthread_mutex_lock(&function->msix_lock);
		data[0] = function->isr;
		function->isr = 0;
		pthread_mutex_unlock(&function->msix_lock);
	} else if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + DEVICE_SIZE) {
		uint64_t field = offset - DEVICE_OFFSET;
		if (field + size <= device->config_size) {
			pthread_mutex_lock(&function->lock);
			device->ops->read_config(device, (uint32_t)field, data, size);
			pthread_mutex_unlock(&function->lock);
		}
	} else {
		pci_msix_bar_read(&function->msix, offset, data, size);
	}
}

static void bar_write(void *opaque, uint64_t offset, const uint8_t *data,
		      uint32_t size)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;

	if (offset < COMMON_SIZE) {
		pthread_mutex_lock(&function->lock);
		common_write(function, offset, size, load_le(data, size));
		pthread_mutex_unlock(&function->lock);
	} else if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + DEVICE_SIZE) {
		uint64_t field = offset - DEVICE_OFFSET;
		if (field + size <= device->config_size &&
		    device->ops->write_config) {
			pthread_mutex_lock(&function->lock);
			device->ops->write_config(device, (uint32_t)field, data, size);
			pthread_mutex_unlock(&function->lock);
		}
	} else if (offset >= VIRTIO_PCI_NOTIFY_OFFSET &&
		   offset < VIRTIO_PCI_NOTIFY_OFFSET + NOTIFY_SIZE) {
		/* KVM's ioeventfd normally takes these writes; one that
		 * reaches vessel goes the same way to the event thread. */
		unsigned int queue = (offset - VIRTIO_PCI_NOTIFY_OFFSET) /
				     VIRTIO_PCI_NOTIFY_MULTIPLIER;
		if (queue < device->queue_count)
			wake_event_thread(function->notifiers[queue].fd);
	} else {
		pci_msix_bar_write(&function->msix, offset, data, size);
	}
}

static const struct bus_device_ops bar_ops = {
	.read = bar_read,
	.write = bar_write,
};

static void set_notify_eventfds(struct virtio_pci *function, bool assign)
{
	for (unsigned int queue = 0; queue < function->device->queue_count; queue++)
		function->platform.ioeventfd(
			function->platform.opaque,
			function->bar_address + VIRTIO_PCI_NOTIFY_OFFSET +
				queue * VIRTIO_PCI_NOTIFY_MULTIPLIER,
			2, function->notifiers[queue].fd, assign);
}

/* The guest moved BAR 0 or switched memory decoding. */
static void bar_mapping_changed(void *opaque, unsigned int bar, uint64_t address,
				bool mapped)
{
	struct virtio_pci *function = opaque;

	if (bar != 0)
		return;
	pthread_mutex_lock(&function->lock);
	if (function->bar_mapped) {
		set_notify_eventfds(function, false);
		bus_unregister(function->platform.mmio_bus, function->bar_address);
	}
	function->bar_mapped = false;
	function->bar_address = address;
	if (mapped && bus_register(function->platform.mmio_bus, address,
				   VIRTIO_PCI_BAR_SIZE, &bar_ops, function,
				   function->device->name) == 0) {
		function->bar_mapped = true;
		set_notify_eventfds(function, true);
	}
	pthread_mutex_unlock(&function->lock);
}

/* --- configuration space: MSI-X control and the PCI_CFG window ---------- */

/* §4.1.4.9: an access of size bytes at offset that hits pci_cfg_data goes
 * to BAR 0 at the capability's offset, for its length of 1, 2 or 4 bytes. */
static bool pci_cfg_window(const struct virtio_pci *function, uint32_t offset,
			   uint32_t size, uint32_t *bar_offset, uint32_t *length)
{
	const uint8_t *cap = function->pci.config + function->pci_cfg_offset;

	if (offset != function->pci_cfg_offset + 16u)
		return false;
	*bar_offset = (uint32_t)load_le(cap + 8, 4);
	*length = (uint32_t)load_le(cap + 12, 4);
	return cap[4] == 0 && (*length == 1 || *length == 2 || *length == 4) &&
	       *length <= size;
}

static void config_write(void *opaque, uint32_t offset, const uint8_t *data,
			 uint32_t size)
{
	struct virtio_pci *function = opaque;

	pci_msix_config_written(&function->msix, offset, size);
	uint32_t bar_offset, length;
	if (pci_cfg_window(function, offset, size, &bar_offset, &length))
		bar_write(function, bar_offset, data, length);
}

static void config_read(void *opaque, uint32_t offset, uint8_t *data,
			uint32_t size)
{
	struct virtio_pci *function = opaque;
	uint32_t bar_offset, length;

	if (pci_cfg_window(function, offset, size, &bar_offset, &length))
		bar_read(function, bar_offset, data, length);
}

static const struct pci_device_ops pci_ops = {
	.config_read = config_read,
	.config_write = config_write,
	.bar_mapping_changed = bar_mapping_changed,
};

/* --- the event thread ---------------------------------------------------- */

static void reset_transport(struct virtio_pci *function)
{
	struct virtio_device *device = function->device;

	device->ops->reset(device);
	for (unsigned int queue = 0; queue < device->queue_count; queue++) {
		virtqueue_reset(&device->queues[queue]);
		device->queues[queue].size = VIRTQUEUE_MAX_SIZE;
		device->queues[queue].memory = device->context.memory;
	}
	device->driver_features = 0;
	function->active = false;
	function->device_feature_select = 0;
	function->driver_feature_select = 0;
	function->queue_select = 0;
	pthread_mutex_lock(&function->msix_lock);
	function->config_vector = VIRTIO_PCI_NO_VECTOR;
	for (unsigned int queue = 0; queue < VIRTIO_MAX_QUEUES; queue++)
		function->queue_vector[queue] = VIRTIO_PCI_NO_VECTOR;
	function->isr = 0;
	function->status = 0;
	function->reset_pending = false;
	pthread_mutex_unlock(&function->msix_lock);
}

static int activate(struct virtio_pci *function)
{
	struct virtio_device *device = function->device;

	for (unsigned int queue = 0; queue < device->queue_count; queue++) {
		struct virtqueue *ring = &device->queues[queue];

		if (!ring->ready)
			continue;
		ring->event_idx = virtio_has_feature(device, VIRTIO_F_EVENT_IDX);
		ring->indirect = virtio_has_feature(device, VIRTIO_F_INDIRECT_DESC);
		if (virtqueue_validate(ring))
			return -EINVAL;
	}
	int result = device->ops->activate(device);
	if (result)
		return result;
	function->active = true;
	/* Kicks that came before activation were dropped: look now. */
	for (unsigned int queue = 0; queue < device->queue_count; queue++) {
		if (device->queues[queue].ready)
			serve_queue(function, queue);
	}
	return 0;
}

static void on_control(void *opaque, uint32_t events)
{
	struct virtio_pci *function = opaque;
	uint64_t count;

	(void)events;
	if (read(function->control_fd, &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&function->lock);
	if (function->quiesced) {
		/* Resume looks at the pending flags again. */
	} else if (function->reset_pending) {
		function->activate_pending = false;
		reset_transport(function);
	} else if (function->activate_pending) {
		function->activate_pending = false;
		if (activate(function))
			needs_reset(function->device);
	}
	pthread_mutex_unlock(&function->lock);
}

static void on_notify(void *opaque, uint32_t events)
{
	struct queue_notifier *notifier = opaque;
	struct virtio_pci *function = notifier->function;
	uint64_t count;

	(void)events;
	if (read(notifier->fd, &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&function->lock);
	if (function->quiesced)
		function->held_queues |= UINT32_C(1) << notifier->queue;
	else if (function->active &&
		 function->device->queues[notifier->queue].ready)
		serve_queue(function, notifier->queue);
	pthread_mutex_unlock(&function->lock);
}

/* --- set-up -------------------------------------------------------------- */

/* A virtio_pci_cap (§4.1.4) for a region of BAR 0. */
static int add_virtio_capability(struct virtio_pci *function, uint8_t type,
				 uint32_t offset, uint32_t length,
				 uint32_t notify_multiplier, uint8_t *where)
{
	uint8_t cap[20] = { PCI_CAP_ID_VENDOR, 0, 16, type, 0 /* BAR 0 */ };
	uint8_t cap_length = 16;

	store_le(cap + 8, 4, offset);
	store_le(cap + 12, 4, length);
	if (type == CAP_NOTIFY_CFG) {
		store_le(cap + 16, 4, notify_multiplier);
		cap_length = 20;
	}
	cap[2] = cap_length;
	return pci_device_add_capability(&function->pci, cap, cap_length, NULL,
					 where);
}

/* VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): bar, offset, length and the data
 * window are the driver's to write. */
static int add_pci_cfg_capability(struct virtio_pci *function)
{
	uint8_t cap[20] = { PCI_CAP_ID_VENDOR, 0, 20, CAP_PCI_CFG };
	uint8_t mask[20] = { 0 };

	mask[4] = 0xff;
	memset(mask + 8, 0xff, 12);
	return pci_device_add_capability(&function->pci, cap, sizeof(cap), mask,
					 &function->pci_cfg_offset);
}

/* The table and PBA in BAR 0 (layout in pci.h), the PBA to the BAR's end. */
static int add_msix_capability(struct virtio_pci *function)
{
	const struct pci_msix_layout layout = {
		.bar = 0,
		.table_offset = MSIX_TABLE_OFFSET,
		.table_size = MSIX_PBA_OFFSET - MSIX_TABLE_OFFSET,
		.pba_offset = MSIX_PBA_OFFSET,
		.pba_size = VIRTIO_PCI_BAR_SIZE - MSIX_PBA_OFFSET,
	};
	const struct pci_msix_delivery delivery = {
		.route = function->platform.msi_route,
		.signal = function->platform.msi_signal,
		.opaque = function->platform.opaque,
		.function = function,
	};

	return pci_msix_init(&function->msix, &function->pci,
			     function->vector_count, &layout, &delivery);
}

/* PCI IDs of modern virtio functions (§4.1.2.1) and a class that says
 * what the device is. */
static uint32_t class_code(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		return 0x018000; /* mass storage, other */
	case VIRTIO_ID_NET:
		return 0x020000; /* ethernet */
	default:
		return 0xff0000; /* unclassified */
	}
}

static int build_configuration_space(struct virtio_pci *function,
				     uint64_t bar_address)
{
	struct virtio_device *device = function->device;
	const struct pci_device_id id = {
		.vendor_id = 0x1af4,
		.device_id = (uint16_t)(0x1040 + device->device_id),
		.class_code = class_code(device->device_id),
		.revision = 1,
		.subsystem_vendor_id = 0x1af4,
		.subsystem_id = 0x40,
	};
	uint8_t ignored;
	int result = pci_device_init(&function->pci, &id, &pci_ops, function);

	if (result)
		return result;
	if ((result = pci_device_set_bar(&function->pci, 0, VIRTIO_PCI_BAR_SIZE,
					 PCI_BAR_MEMORY_64, false)) ||
	    (result = pci_device_place_bar(&function->pci, 0, bar_address)) ||
	    (result = add_virtio_capability(function, CAP_COMMON_CFG, COMMON_OFFSET,
					    COMMON_SIZE, 0, &ignored)) ||
	    (result = add_virtio_capability(function, CAP_ISR_CFG, ISR_OFFSET, 1,
					    0, &ignored)) ||
	    (result = add_virtio_capability(function, CAP_NOTIFY_CFG,
					    VIRTIO_PCI_NOTIFY_OFFSET,
					    device->queue_count *
						    VIRTIO_PCI_NOTIFY_MULTIPLIER,
					    VIRTIO_PCI_NOTIFY_MULTIPLIER,
					    &ignored)) ||
	    (device->config_size &&
	     (result = add_virtio_capability(function, CAP_DEVICE_CFG,
					     DEVICE_OFFSET, device->config_size,
					     0, &ignored))) ||
	    (result = add_pci_cfg_capability(function)) ||
	    (result = add_msix_capability(function))) {
		pci_device_destroy(&function->pci);
		return result;
	}
	return 0;
}

struct virtio_pci *virtio_pci_create(struct virtio_device *device,
				     const struct virtio_pci_platform *platform,
				     uint64_t bar_address)
{
	if (device->queue_count == 0 || device->queue_count > VIRTIO_MAX_QUEUES ||
	    device->config_size > DEVICE_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	struct virtio_pci *function = calloc(1, sizeof(*function));
	if (!function)
		return NULL;
	function->device = device;
	function->platform = *platform;
	function->vector_count = device->queue_count + 1;
	function->control_fd = -1;
	for (unsigned int queue = 0; queue < VIRTIO_MAX_QUEUES; queue++)
		function->notifiers[queue] = (struct queue_notifier){
			.function = function, .queue = queue, .fd = -1 };
	pthread_mutex_init(&function->lock, NULL);
	pthread_mutex_init(&function->msix_lock, NULL);
	device->transport = function;
	device->notify_queue = notify_queue;
	device->needs_reset = needs_reset;
	device->notify_config = notify_config;
	device->serve_queue_later = serve_queue_later;
	reset_transport(function);

	int result = build_configuration_space(function, bar_address);
	if (result) {
		pthread_mutex_destroy(&function->msix_lock);
		pthread_mutex_destroy(&function->lock);
		free(function);
		errno = -result;
		return NULL;
	}
	function->bar_address = bar_address;
	const struct device_context *context = &device->context;
	function->control_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	result = function->control_fd < 0 ? -errno :
		context->watch_fd(context->context_opaque, function->control_fd,
				  EPOLLIN, on_control, function);
	for (unsigned int queue = 0; queue < device->queue_count && !result; queue++) {
		struct queue_notifier *notifier = &function->notifiers[queue];

		notifier->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		result = notifier->fd < 0 ? -errno :
			context->watch_fd(context->context_opaque, notifier->fd,
					  EPOLLIN, on_notify, notifier);
	}
	if (result) {
		virtio_pci_destroy(function);
		errno = -result;
		return NULL;
	}
	return function;
}

static void close_watched(const struct device_context *context, int fd)
{
	if (fd < 0)
		return;
	context->unwatch_fd(context->context_opaque, fd);
	close(fd);
}

void virtio_pci_destroy(struct virtio_pci *function)
{
	if (!function)
		return;
	const struct device_context *context = &function->device->context;

	pthread_mutex_lock(&function->lock);
	if (function->bar_mapped) {
		set_notify_eventfds(function, false);
		bus_unregister(function->platform.mmio_bus, function->bar_address);
	}
	function->bar_mapped = false;
	pthread_mutex_unlock(&function->lock);
	close_watched(context, function->control_fd);
	for (unsigned int queue = 0; queue < VIRTIO_MAX_QUEUES; queue++)
		close_watched(context, function->notifiers[queue].fd);
	pci_msix_destroy(&function->msix);
	pci_device_destroy(&function->pci);
	pthread_mutex_destroy(&function->msix_lock);
	pthread_mutex_destroy(&function->lock);
	free(function);
}

struct pci_device *virtio_pci_function(struct virtio_pci *function)
{
	return &function->pci;
}

/* --- the device record --------------------------------------------------- */

static int record_quiesce(void *opaque)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;
	int result = 0;

	pthread_mutex_lock(&function->lock);
	function->quiesced = true;
	if (function->active && device->ops->quiesce)
		result = device->ops->quiesce(device);
	if (result)
		function->quiesced = false;
	pthread_mutex_unlock(&function->lock);
	return result;
}

static void record_resume(void *opaque)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;

	pthread_mutex_lock(&function->lock);
	function->quiesced = false;
	if (function->active && device->ops->resume)
		device->ops->resume(device);
	uint32_t held = function->held_queues;
	function->held_queues = 0;
	bool control_held = function->reset_pending || function->activate_pending;
	pthread_mutex_unlock(&function->lock);
	/* What came in while paused is served from the event loop, as the
	 * kicks and status writes would have been. */
	for (unsigned int queue = 0; queue < device->queue_count; queue++) {
		if (held & (UINT32_C(1) << queue))
			wake_event_thread(function->notifiers[queue].fd);
	}
	if (control_held)
		wake_event_thread(function->control_fd);
}

static unsigned int record_counters(void *opaque, struct device_counter *out,
				    unsigned int max)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;

	return device->ops->counters ? device->ops->counters(device, out, max) : 0;
}

/*
 * The transport's state, saved while quiesced (no request in flight, kicks
 * and status writes held): the registers, the negotiated features, each
 * queue's addresses and positions, the MSI-X table, pending bits and
 * vector assignments, and the PCI configuration space, then the device
 * type's own state through its save op. A device type with state of its
 * own and no save op cannot be saved once the driver has begun to set it
 * up: -EOPNOTSUPP.
 */

/* A queue's saved fields, as u64 cells in this order. */
#define QUEUE_FIELDS 8

static void queue_fields(const struct virtqueue *queue, uint64_t out[QUEUE_FIELDS])
{
	out[0] = queue->size;
	out[1] = queue->ready;
	out[2] = queue->desc_addr;
	out[3] = queue->avail_addr;
	out[4] = queue->used_addr;
	out[5] = queue->last_avail_idx;
	out[6] = queue->used_idx;
	out[7] = (uint64_t)queue->signalled_used |
		 (uint64_t)queue->signalled_used_valid << 16;
}

static int record_save(void *opaque, struct device_state_writer *writer)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;
	uint64_t queues[VIRTIO_MAX_QUEUES][QUEUE_FIELDS] = { { 0 } };
	uint8_t table[MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
	uint16_t vectors[VIRTIO_MAX_QUEUES + 1];

	pthread_mutex_lock(&function->lock);
	uint64_t pending = pci_msix_save(&function->msix, table,
					 MSIX_MAX_VECTORS);
	pthread_mutex_lock(&function->msix_lock);
	uint8_t status = function->status;
	uint8_t isr = function->isr;
	vectors[0] = function->config_vector;
	memcpy(vectors + 1, function->queue_vector, sizeof(function->queue_vector));
	pthread_mutex_unlock(&function->msix_lock);
	bool set_up = status || function->active || function->activate_pending;
	bool savable = device->saved_by_transport || device->ops->save;
	int result = set_up && !savable ? -EOPNOTSUPP : 0;
	uint8_t flags = (uint8_t)(function->active | function->reset_pending << 1 |
				  function->activate_pending << 2);
	const struct device_register registers[] = {
		DEVICE_REGISTER("device-feature-select",
				function->device_feature_select),
		DEVICE_REGISTER("driver-feature-select",
				function->driver_feature_select),
		DEVICE_REGISTER("queue-select", function->queue_select),
		DEVICE_REGISTER("status", status),
		DEVICE_REGISTER("isr", isr),
		DEVICE_REGISTER("flags", flags),
		DEVICE_REGISTER("held-queues", function->held_queues),
		DEVICE_REGISTER("config-generation", function->config_generation),
		DEVICE_REGISTER("driver-features", device->driver_features),
		DEVICE_REGISTER("msix-pending", pending),
	};
	for (unsigned int queue = 0; queue < device->queue_count; queue++)
		queue_fields(&device->queues[queue], queues[queue]);
	pthread_mutex_unlock(&function->lock);
	for (unsigned int queue = 0; queue < VIRTIO_MAX_QUEUES; queue++)
		for (unsigned int field = 0; field < QUEUE_FIELDS; field++)
			queues[queue][field] = htobe64(queues[queue][field]);
	if (!result)
		result = device_save_registers(writer, registers,
					       ARRAY_SIZE(registers));
	if (!result)
		result = writer->put_bytes(writer, "queues", queues, sizeof(queues));
	if (!result)
		result = writer->put_bytes(writer, "msix-table", table, sizeof(table));
	if (!result)
		result = writer->put_bytes(writer, "msix-vectors", vectors,
					   sizeof(vectors));
	if (!result && device->ops->save)
		result = device->ops->save(device, writer);
	return result ? result : pci_device_save(&function->pci, writer);
}

/* The saved queues into the device's, checked: a size the transport
 * would not take, or a ring the device could not use, is -EINVAL. */
static int restore_queues(struct virtio_pci *function,
			  const uint64_t saved[VIRTIO_MAX_QUEUES][QUEUE_FIELDS])
{
	struct virtio_device *device = function->device;

	for (unsigned int queue = 0; queue < VIRTIO_MAX_QUEUES; queue++) {
		uint64_t field[QUEUE_FIELDS];
		for (unsigned int i = 0; i < QUEUE_FIELDS; i++)
			field[i] = be64toh(saved[queue][i]);
		if (queue >= device->queue_count) {
			if (field[1])
				return -EINVAL;
			continue;
		}
		struct virtqueue *ring = &device->queues[queue];
		if (!field[0] || field[0] > VIRTQUEUE_MAX_SIZE ||
		    (field[0] & (field[0] - 1)) || field[1] > 1 ||
		    field[5] > UINT16_MAX || field[6] > UINT16_MAX ||
		    field[7] >> 17)
			return -EINVAL;
		ring->size = (uint16_t)field[0];
		ring->ready = field[1];
		ring->desc_addr = field[2];
		ring->avail_addr = field[3];
		ring->used_addr = field[4];
		ring->last_avail_idx = (uint16_t)field[5];
		ring->used_idx = (uint16_t)field[6];
		ring->signalled_used = (uint16_t)field[7];
		ring->signalled_used_valid = field[7] >> 16;
		ring->event_idx = virtio_has_feature(device, VIRTIO_F_EVENT_IDX);
		ring->indirect = virtio_has_feature(device, VIRTIO_F_INDIRECT_DESC);
		if (ring->ready && virtqueue_validate(ring))
			return -EINVAL;
	}
	return 0;
}

/* The table and pending bits, with enable and function mask from the
 * configuration space restored before, then the vector assignments. */
static int restore_msix(struct virtio_pci *function, const uint8_t *table,
			const uint16_t *vectors, uint64_t pending)
{
	int result = pci_msix_restore(&function->msix, table, MSIX_MAX_VECTORS,
				      pending);

	if (result)
		return result;
	pthread_mutex_lock(&function->msix_lock);
	function->config_vector = vectors[0];
	memcpy(function->queue_vector, vectors + 1, sizeof(function->queue_vector));
	pthread_mutex_unlock(&function->msix_lock);
	return 0;
}

static int record_restore(void *opaque, struct device_state_reader *reader)
{
	struct virtio_pci *function = opaque;
	struct virtio_device *device = function->device;
	uint32_t device_feature_select, driver_feature_select, held_queues;
	uint16_t queue_select;
	uint8_t status, isr, flags, config_generation;
	uint64_t driver_features, pending;
	uint64_t queues[VIRTIO_MAX_QUEUES][QUEUE_FIELDS];
	uint8_t table[MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
	uint16_t vectors[VIRTIO_MAX_QUEUES + 1];
	const struct device_register registers[] = {
		DEVICE_REGISTER("device-feature-select", device_feature_select),
		DEVICE_REGISTER("driver-feature-select", driver_feature_select),
		DEVICE_REGISTER("queue-select", queue_select),
		DEVICE_REGISTER("status", status),
		DEVICE_REGISTER("isr", isr),
		DEVICE_REGISTER("flags", flags),
		DEVICE_REGISTER("held-queues", held_queues),
		DEVICE_REGISTER("config-generation", config_generation),
		DEVICE_REGISTER("driver-features", driver_features),
		DEVICE_REGISTER("msix-pending", pending),
	};
	int result = device_restore_registers(reader, registers,
					      ARRAY_SIZE(registers));

	if (!result)
		result = reader->get_bytes(reader, "queues", queues, sizeof(queues));
	if (!result)
		result = reader->get_bytes(reader, "msix-table", table, sizeof(table));
	if (!result)
		result = reader->get_bytes(reader, "msix-vectors", vectors,
					   sizeof(vectors));
	if (result)
		return result;
	bool active = flags & 1;
	if (flags > 7 || driver_features & ~device->device_features ||
	    held_queues >> device->queue_count ||
	    ((status || active) && !device->saved_by_transport &&
	     !device->ops->restore))
		return -EINVAL;
	/* The configuration space first: BAR 0 maps (with its notify
	 * ioeventfds) as the restored registers say, outside our lock. */
	result = pci_device_restore(&function->pci, reader);
	if (result)
		return result;
	pthread_mutex_lock(&function->lock);
	device->driver_features = driver_features;
	result = restore_queues(function, queues);
	if (!result) {
		function->device_feature_select = device_feature_select;
		function->driver_feature_select = driver_feature_select;
		function->queue_select = queue_select;
		function->status = status;
		function->isr = isr;
		function->config_generation = config_generation;
		function->reset_pending = flags & 2;
		function->activate_pending = flags & 4;
		/* The machine is restored paused: the device is quiesced,
		 * and resume serves every ready queue, as after activation,
		 * besides what was held. */
		function->quiesced = true;
		function->held_queues = held_queues;
		for (unsigned int queue = 0; queue < device->queue_count; queue++)
			if (active && device->queues[queue].ready)
				function->held_queues |= UINT32_C(1) << queue;
	}
	if (!result && active) {
		result = device->ops->activate(device);
		if (!result && device->ops->quiesce)
			result = device->ops->quiesce(device);
		function->active = result == 0;
	}
	pthread_mutex_unlock(&function->lock);
	if (!result && device->ops->restore)
		result = device->ops->restore(device, reader);
	return result ? result : restore_msix(function, table, vectors, pending);
}

static const struct device_ops record_ops = {
	.quiesce = record_quiesce,
	.resume = record_resume,
	.counters = record_counters,
	.save = record_save,
	.restore = record_restore,
	.state_version = 2,
};

struct device_record virtio_pci_record(struct virtio_pci *function,
				       const char *name)
{
	return (struct device_record){ .name = name, .ops = &record_ops,
				       .opaque = function };
}
