/*
 * Message-signalled interrupts for vessel's PCI functions: each MSI-X
 * vector gets a GSI of its own above the IOAPIC's 24, a KVM MSI route to
 * the message the guest programmed, and an irqfd, so a device raises it
 * with one eventfd write from any thread.
 *
 * Promise: the routing table vessel gives KVM (KVM_SET_GSI_ROUTING replaces
 * it whole) always keeps KVM's default routes of GSIs 0-23 to the PIC and
 * IOAPIC, which the legacy devices and the MP and ACPI tables rely on.
 */
#ifndef VESSEL_VMM_INTERRUPTS_H
#define VESSEL_VMM_INTERRUPTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define INTERRUPTS_MAX_MSI 128

struct msi_vector {
	const void *function;
	unsigned int vector;
	uint32_t gsi;
	int irqfd;
	uint64_t address;
	uint32_t data;
};

struct interrupts {
	int vm_fd;
	pthread_mutex_t lock;
	struct msi_vector vectors[INTERRUPTS_MAX_MSI];
	unsigned int vector_count;
};

void interrupts_init(struct interrupts *interrupts, int vm_fd);
void interrupts_destroy(struct interrupts *interrupts);

/* Points function's vector at (address, data), creating its GSI and
 * irqfd on first use. 0 or -errno. */
int interrupts_msi_route(struct interrupts *interrupts, const void *function,
			 unsigned int vector, uint64_t address, uint32_t data);

/* Raises function's vector (no-op for a vector never routed). */
void interrupts_msi_signal(struct interrupts *interrupts, const void *function,
			   unsigned int vector);

#endif
