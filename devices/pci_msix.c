#include "pci_msix.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* Message control (§6.8.2.3) and vector control (§6.8.2.9). */
#define CONTROL_ENABLE 0x8000
#define CONTROL_FUNCTION_MASK 0x4000
#define VECTOR_MASKED 1u

/* A table entry's fields (§6.8.2.6-9). */
#define ENTRY_ADDRESS 0
#define ENTRY_DATA 8
#define ENTRY_CONTROL 12

#define PBA_SIZE 8

static uint64_t entry_field(const uint8_t *entry, unsigned int field,
			    unsigned int size)
{
	uint64_t value = 0;

	memcpy(&value, entry + field, size);
	return le64toh(value);
}

static bool vector_deliverable(const struct pci_msix *msix, unsigned int vector)
{
	return msix->enabled && !msix->function_masked &&
	       !(entry_field(msix->table[vector], ENTRY_CONTROL, 4) &
		 VECTOR_MASKED);
}

/* After a mask or message change: route what is deliverable, send what
 * was pending there. */
static void refresh(struct pci_msix *msix)
{
	const struct pci_msix_delivery *delivery = &msix->delivery;
	uint64_t deliver = 0;

	pthread_mutex_lock(&msix->lock);
	for (unsigned int vector = 0; vector < msix->vector_count; vector++) {
		const uint8_t *entry = msix->table[vector];

		if (!vector_deliverable(msix, vector))
			continue;
		delivery->route(delivery->opaque, delivery->function, vector,
				entry_field(entry, ENTRY_ADDRESS, 8),
				(uint32_t)entry_field(entry, ENTRY_DATA, 4));
		if (msix->pending & (UINT64_C(1) << vector)) {
			msix->pending &= ~(UINT64_C(1) << vector);
			deliver |= UINT64_C(1) << vector;
		}
	}
	pthread_mutex_unlock(&msix->lock);
	for (unsigned int vector = 0; vector < msix->vector_count; vector++) {
		if (deliver & (UINT64_C(1) << vector))
			delivery->signal(delivery->opaque, delivery->function,
					 vector);
	}
}

void pci_msix_raise(struct pci_msix *msix, unsigned int vector)
{
	bool send = false;

	pthread_mutex_lock(&msix->lock);
	if (vector < msix->vector_count && msix->enabled) {
		send = vector_deliverable(msix, vector);
		if (!send)
			msix->pending |= UINT64_C(1) << vector;
	}
	pthread_mutex_unlock(&msix->lock);
	if (send)
		msix->delivery.signal(msix->delivery.opaque,
				      msix->delivery.function, vector);
}

/* Enable and function mask as configuration space holds them; the PCI
 * layer applied the guest's write through the capability's write mask. */
static void read_control(struct pci_msix *msix)
{
	const uint8_t *control = msix->pci->config + msix->cap_offset + 2;
	uint16_t value = (uint16_t)(control[0] | control[1] << 8);

	msix->enabled = value & CONTROL_ENABLE;
	msix->function_masked = value & CONTROL_FUNCTION_MASK;
}

void pci_msix_config_written(struct pci_msix *msix, uint32_t offset,
			     uint32_t size)
{
	uint32_t control_offset = msix->cap_offset + 2u;

	if (offset >= control_offset + 2 || offset + size <= control_offset)
		return;
	pthread_mutex_lock(&msix->lock);
	read_control(msix);
	pthread_mutex_unlock(&msix->lock);
	refresh(msix);
}

/* §6.8.2: the table takes aligned DWORD and QWORD accesses; vessel reads
 * anything else as all ones and drops it when written, as it does for
 * entries beyond the function's vectors. */
static void table_access(struct pci_msix *msix, uint64_t offset,
			 uint8_t *data, const uint8_t *written, uint32_t size)
{
	unsigned int vector = offset / PCI_MSIX_ENTRY_SIZE;
	unsigned int field = offset % PCI_MSIX_ENTRY_SIZE;

	if (vector >= msix->vector_count || (size != 4 && size != 8) ||
	    field % size) {
		if (data)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&msix->lock);
	uint8_t *entry = msix->table[vector];
	if (data) {
		memcpy(data, entry + field, size);
		pthread_mutex_unlock(&msix->lock);
		return;
	}
	memcpy(entry + field, written, size);
	/* Only the mask bit of vector control is defined. */
	entry[ENTRY_CONTROL] &= VECTOR_MASKED;
	memset(entry + ENTRY_CONTROL + 1, 0, 3);
	pthread_mutex_unlock(&msix->lock);
	refresh(msix);
}

static bool in_region(uint64_t offset, uint32_t start, uint32_t size)
{
	return offset >= start && offset - start < size;
}

bool pci_msix_bar_read(struct pci_msix *msix, uint64_t offset, uint8_t *data,
		       uint32_t size)
{
	const struct pci_msix_layout *layout = &msix->layout;

	if (in_region(offset, layout->table_offset, layout->table_size)) {
		table_access(msix, offset - layout->table_offset, data, NULL,
			     size);
		return true;
	}
	if (!in_region(offset, layout->pba_offset, layout->pba_size))
		return false;
	offset -= layout->pba_offset;
	pthread_mutex_lock(&msix->lock);
	uint64_t pending = htole64(msix->pending);
	pthread_mutex_unlock(&msix->lock);
	memset(data, 0, size);
	if (offset < PBA_SIZE)
		memcpy(data, (uint8_t *)&pending + offset,
		       size < PBA_SIZE - offset ? size : PBA_SIZE - offset);
	return true;
}

bool pci_msix_bar_write(struct pci_msix *msix, uint64_t offset,
			const uint8_t *data, uint32_t size)
{
	const struct pci_msix_layout *layout = &msix->layout;

	if (in_region(offset, layout->table_offset, layout->table_size)) {
		table_access(msix, offset - layout->table_offset, NULL, data,
			     size);
		return true;
	}
	/* The PBA is read only (§6.8.2.10): the write ends here. */
	return in_region(offset, layout->pba_offset, layout->pba_size);
}

static bool layout_fits(const struct pci_msix_layout *layout,
			unsigned int vector_count)
{
	uint64_t table_end = (uint64_t)layout->table_offset + layout->table_size;
	uint64_t pba_end = (uint64_t)layout->pba_offset + layout->pba_size;

	/* The offsets share their register with the BAR indicator in the
	 * low three bits (§6.8.2.4-5). */
	return layout->bar < PCI_BAR_COUNT && !(layout->table_offset & 7) &&
	       !(layout->pba_offset & 7) &&
	       layout->table_size >= vector_count * PCI_MSIX_ENTRY_SIZE &&
	       layout->pba_size >= PBA_SIZE &&
	       (table_end <= layout->pba_offset ||
		pba_end <= layout->table_offset);
}

int pci_msix_init(struct pci_msix *msix, struct pci_device *pci,
		  unsigned int vector_count,
		  const struct pci_msix_layout *layout,
		  const struct pci_msix_delivery *delivery)
{
	uint8_t cap[12] = { PCI_CAP_ID_MSIX };
	uint8_t mask[12] = { 0 };
	uint16_t table_size = (uint16_t)(vector_count - 1); /* N-1 encoded */
	uint32_t table = htole32(layout->table_offset | layout->bar);
	uint32_t pba = htole32(layout->pba_offset | layout->bar);
	uint16_t writable = htole16(CONTROL_ENABLE | CONTROL_FUNCTION_MASK);

	if (vector_count == 0 || vector_count > PCI_MSIX_MAX_VECTORS ||
	    !layout_fits(layout, vector_count))
		return -EINVAL;
	memset(msix, 0, sizeof(*msix));
	msix->pci = pci;
	msix->layout = *layout;
	msix->delivery = *delivery;
	msix->vector_count = vector_count;
	for (unsigned int vector = 0; vector < PCI_MSIX_MAX_VECTORS; vector++)
		msix->table[vector][ENTRY_CONTROL] = VECTOR_MASKED;

	table_size = htole16(table_size);
	memcpy(cap + 2, &table_size, 2);
	memcpy(cap + 4, &table, 4);
	memcpy(cap + 8, &pba, 4);
	memcpy(mask + 2, &writable, 2);
	int result = pci_device_add_capability(pci, cap, sizeof(cap), mask,
					       &msix->cap_offset);
	if (result == 0)
		pthread_mutex_init(&msix->lock, NULL);
	return result;
}

void pci_msix_destroy(struct pci_msix *msix)
{
	pthread_mutex_destroy(&msix->lock);
}

uint64_t pci_msix_save(struct pci_msix *msix, uint8_t *table,
		       unsigned int entries)
{
	pthread_mutex_lock(&msix->lock);
	memcpy(table, msix->table, (size_t)entries * PCI_MSIX_ENTRY_SIZE);
	uint64_t pending = msix->pending;
	pthread_mutex_unlock(&msix->lock);
	return pending;
}

int pci_msix_restore(struct pci_msix *msix, const uint8_t *table,
		     unsigned int entries, uint64_t pending)
{
	uint64_t vectors = msix->vector_count == PCI_MSIX_MAX_VECTORS ?
				   ~UINT64_C(0) :
				   (UINT64_C(1) << msix->vector_count) - 1;

	if (pending & ~vectors)
		return -EINVAL;
	pthread_mutex_lock(&msix->lock);
	memcpy(msix->table, table, (size_t)entries * PCI_MSIX_ENTRY_SIZE);
	msix->pending = pending;
	read_control(msix);
	pthread_mutex_unlock(&msix->lock);
	/* Routes and irqfds are the host's, not state: made again. */
	refresh(msix);
	return 0;
}
