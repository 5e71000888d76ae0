/*
 * ACPI fixed-hardware power management registers: the PM1a event block
 * (status and enable, 2 bytes each) and the PM1a control block, as the FADT
 * that firmware/ builds points to them (ACPI 6.4 §4.8.3).
 *
 * Promise: a write of SLP_EN with the sleep type firmware/ declares for S5
 * (soft off) reports a power-off through the hook; SCI_EN always reads as
 * set, because vessel's machine has no legacy (SMM) mode. The fixed power
 * button sets PWRBTN_STS, and the SCI is raised while an enabled status
 * bit is set (§4.8.3.1): the guest's ACPI driver takes it as a press of
 * the button, as QEMU's system_powerdown.
 */
#ifndef VESSEL_DEVICES_ACPI_PM_H
#define VESSEL_DEVICES_ACPI_PM_H

#include <stdint.h>

#include "bus.h"
#include "irq_line.h"

#define ACPI_PM1_EVENT_LENGTH 4
#define ACPI_PM1_CONTROL_LENGTH 2

struct acpi_pm;

struct acpi_pm *acpi_pm_create(uint8_t s5_sleep_type, struct irq_line sci,
			       void (*power_off)(void *opaque), void *opaque);

/* A press of the power button: any thread. */
void acpi_pm_press_power_button(struct acpi_pm *pm);
void acpi_pm_destroy(struct acpi_pm *pm);

/* Claims the event block at event_base and the control block at
 * control_base on the port-I/O bus. */
int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio_bus,
		   uint16_t event_base, uint16_t control_base);

#endif
