#include "interrupts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#define IOAPIC_PINS 24
#define PIC_PINS 16

void interrupts_init(struct interrupts *interrupts, int vm_fd)
{
	memset(interrupts, 0, sizeof(*interrupts));
	interrupts->vm_fd = vm_fd;
	pthread_mutex_init(&interrupts->lock, NULL);
}

void interrupts_destroy(struct interrupts *interrupts)
{
	for (unsigned int i = 0; i < interrupts->vector_count; i++)
		close(interrupts->vectors[i].irqfd);
	interrupts->vector_count = 0;
	pthread_mutex_destroy(&interrupts->lock);
}

static struct msi_vector *find_vector(struct interrupts *interrupts,
				      const void *function, unsigned int vector)
{
	for (unsigned int i = 0; i < interrupts->vector_count; i++) {
		struct msi_vector *entry = &interrupts->vectors[i];

		if (entry->function == function && entry->vector == vector)
			return entry;
	}
	return NULL;
}

/* KVM's default routes (what KVM_CREATE_IRQCHIP sets up): GSIs 0-15 to
 * the PIC pin and the IOAPIC pin of the same number, 16-23 to the IOAPIC;
 * then one MSI route per vector. */
static int commit_routes(struct interrupts *interrupts)
{
	unsigned int count = PIC_PINS + IOAPIC_PINS + interrupts->vector_count;
	struct kvm_irq_routing *routing =
		calloc(1, sizeof(*routing) + count * sizeof(routing->entries[0]));
	unsigned int n = 0;

	if (!routing)
		return -ENOMEM;
	for (uint32_t gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < PIC_PINS)
			routing->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
								   KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 },
			};
		routing->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
	}
	for (unsigned int i = 0; i < interrupts->vector_count; i++) {
		const struct msi_vector *entry = &interrupts->vectors[i];

		routing->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = entry->gsi,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)entry->address,
				   .address_hi = (uint32_t)(entry->address >> 32),
				   .data = entry->data },
		};
	}
	routing->nr = n;
	int result = ioctl(interrupts->vm_fd, KVM_SET_GSI_ROUTING, routing) ? -errno : 0;
	free(routing);
	return result;
}

static int add_vector(struct interrupts *interrupts, const void *function,
		      unsigned int vector, struct msi_vector **added)
{
	if (interrupts->vector_count == INTERRUPTS_MAX_MSI)
		return -ENOSPC;
	struct msi_vector *entry = &interrupts->vectors[interrupts->vector_count];
	*entry = (struct msi_vector){
		.function = function,
		.vector = vector,
		.gsi = IOAPIC_PINS + interrupts->vector_count,
		.irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
	};
	if (entry->irqfd < 0)
		return -errno;
	interrupts->vector_count++;
	*added = entry;
	return 0;
}

int interrupts_msi_route(struct interrupts *interrupts, const void *function,
			 unsigned int vector, uint64_t address, uint32_t data)
{
	int result = 0;

	pthread_mutex_lock(&interrupts->lock);
	struct msi_vector *entry = find_vector(interrupts, function, vector);
	bool created = false;
	if (!entry) {
		result = add_vector(interrupts, function, vector, &entry);
		created = !result;
	}
	if (!result && (created || entry->address != address || entry->data != data)) {
		entry->address = address;
		entry->data = data;
		result = commit_routes(interrupts);
	}
	if (!result && created) {
		/* The route exists before the irqfd points at its GSI. */
		struct kvm_irqfd irqfd = { .fd = (uint32_t)entry->irqfd,
					   .gsi = entry->gsi };
		if (ioctl(interrupts->vm_fd, KVM_IRQFD, &irqfd))
			result = -errno;
	}
	pthread_mutex_unlock(&interrupts->lock);
	return result;
}

void interrupts_msi_signal(struct interrupts *interrupts, const void *function,
			   unsigned int vector)
{
	pthread_mutex_lock(&interrupts->lock);
	struct msi_vector *entry = find_vector(interrupts, function, vector);
	int fd = entry ? entry->irqfd : -1;
	pthread_mutex_unlock(&interrupts->lock);
	if (fd >= 0 && eventfd_write(fd, 1) < 0) {
		/* An eventfd counter far from overflow cannot fail. */
	}
}
