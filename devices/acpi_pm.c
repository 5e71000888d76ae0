/*
 * PM1 registers as ACPI 6.4 §4.8.3 defines them (PM1 event grouping:
 * PM1_STS, PM1_EN; PM1 control grouping: PM1_CNT). vessel's machine never
 * generates a power management event, so the only status bit that ever
 * rises is WAK_STS: a sleep state other than soft off is not supported,
 * and the machine "wakes" at once so that the guest's sleep path, which
 * waits for WAK_STS after setting SLP_EN (ACPI 6.4 §16.1), returns.
 */
#include "acpi_pm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define PM1_STATUS_OFFSET 0
#define PM1_ENABLE_OFFSET 2

#define PM1_STATUS_POWER_BUTTON 0x0100 /* PWRBTN_STS, and PWRBTN_EN */
#define PM1_STATUS_WAKE 0x8000 /* WAK_STS */

#define PM1_CONTROL_SCI_ENABLE 0x0001 /* SCI_EN */
#define PM1_CONTROL_GLOBAL_RELEASE 0x0004 /* GBL_RLS: write-only */
#define PM1_CONTROL_SLEEP_TYPE_SHIFT 10
#define PM1_CONTROL_SLEEP_TYPE_MASK 0x1c00 /* SLP_TYPx */
#define PM1_CONTROL_SLEEP_ENABLE 0x2000 /* SLP_EN: write-only */
#define PM1_CONTROL_WRITE_ONLY \
	(PM1_CONTROL_GLOBAL_RELEASE | PM1_CONTROL_SLEEP_ENABLE)

struct acpi_pm {
	pthread_mutex_t lock;
	uint16_t status;
	uint16_t enable;
	uint16_t control;
	uint8_t s5_sleep_type;
	struct irq_line sci;
	/* Serialises applying the SCI's level with the state it follows. */
	pthread_mutex_t sci_lock;
	bool sci_level;
	void (*power_off)(void *opaque);
	void *opaque;
};

struct acpi_pm *acpi_pm_create(uint8_t s5_sleep_type, struct irq_line sci,
			       void (*power_off)(void *opaque), void *opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	if (pthread_mutex_init(&pm->lock, NULL)) {
		free(pm);
		return NULL;
	}
	pthread_mutex_init(&pm->sci_lock, NULL);
	pm->sci = sci;
	pm->s5_sleep_type = s5_sleep_type;
	pm->power_off = power_off;
	pm->opaque = opaque;
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (!pm)
		return;
	pthread_mutex_destroy(&pm->sci_lock);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* The SCI is a level: high while an event's status and enable bits are
 * both set (§4.8.3.1); the guest lowers it by clearing the status. */
static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->sci_lock);
	pthread_mutex_lock(&pm->lock);
	bool level = (pm->status & pm->enable & PM1_STATUS_POWER_BUTTON) != 0;
	pthread_mutex_unlock(&pm->lock);
	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_line_set(&pm->sci, level);
	}
	pthread_mutex_unlock(&pm->sci_lock);
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->status |= PM1_STATUS_POWER_BUTTON;
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_update_sci(pm);
}

/* The bytes of an access as a little-endian value and a mask of the bytes
 * it covers, both placed at the access's offset in the block. */
static uint32_t acpi_pm_bytes_to_value(uint64_t offset, const uint8_t *data,
				       uint32_t size, uint32_t *mask)
{
	uint32_t value = 0;

	*mask = 0;
	for (uint32_t i = 0; i < size; i++) {
		unsigned int shift = 8 * (unsigned int)(offset + i);

		value |= (uint32_t)data[i] << shift;
		*mask |= 0xffu << shift;
	}
	return value;
}

static void acpi_pm_value_to_bytes(uint32_t value, uint64_t offset,
				   uint8_t *data, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		data[i] = (uint8_t)(value >> (8 * (offset + i)));
}

/* The bus hands over only accesses inside the block, so offset + size is
 * at most the block length (4 or 2) and every shift stays below 32. */
static void acpi_pm_event_read(void *opaque, uint64_t offset, uint8_t *data,
			       uint32_t size)
{
	struct acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	uint32_t block = pm->status |
			 (uint32_t)pm->enable << (8 * PM1_ENABLE_OFFSET);
	pthread_mutex_unlock(&pm->lock);

	acpi_pm_value_to_bytes(block, offset, data, size);
}

static void acpi_pm_event_write(void *opaque, uint64_t offset,
				const uint8_t *data, uint32_t size)
{
	struct acpi_pm *pm = opaque;
	uint32_t mask;
	uint32_t value = acpi_pm_bytes_to_value(offset, data, size, &mask);
	uint16_t status_cleared = (uint16_t)(value & mask);
	uint16_t enable_mask = (uint16_t)(mask >> (8 * PM1_ENABLE_OFFSET));
	uint16_t enable_value = (uint16_t)(value >> (8 * PM1_ENABLE_OFFSET));

	pthread_mutex_lock(&pm->lock);
	pm->status &= ~status_cleared; /* status bits are write-1-to-clear */
	pm->enable = (pm->enable & ~enable_mask) | (enable_value & enable_mask);
	pthread_mutex_unlock(&pm->lock);
	acpi_pm_update_sci(pm);
}

static void acpi_pm_control_read(void *opaque, uint64_t offset, uint8_t *data,
				 uint32_t size)
{
	struct acpi_pm *pm = opaque;

	pthread_mutex_lock(&pm->lock);
	uint16_t control = pm->control | PM1_CONTROL_SCI_ENABLE;
	pthread_mutex_unlock(&pm->lock);

	acpi_pm_value_to_bytes(control, offset, data, size);
}

static void acpi_pm_control_write(void *opaque, uint64_t offset,
				  const uint8_t *data, uint32_t size)
{
	struct acpi_pm *pm = opaque;
	uint32_t mask;
	uint32_t value = acpi_pm_bytes_to_value(offset, data, size, &mask);
	bool power_off = false;

	pthread_mutex_lock(&pm->lock);
	uint16_t control = (uint16_t)((pm->control & ~mask) | (value & mask));

	if (control & PM1_CONTROL_SLEEP_ENABLE) {
		unsigned int sleep_type =
			(control & PM1_CONTROL_SLEEP_TYPE_MASK) >>
			PM1_CONTROL_SLEEP_TYPE_SHIFT;

		if (sleep_type == pm->s5_sleep_type)
			power_off = true;
		else
			pm->status |= PM1_STATUS_WAKE;
	}
	pm->control = control & ~PM1_CONTROL_WRITE_ONLY;
	pthread_mutex_unlock(&pm->lock);

	if (power_off && pm->power_off)
		pm->power_off(pm->opaque);
}

static const struct bus_device_ops acpi_pm_event_ops = {
	.read = acpi_pm_event_read,
	.write = acpi_pm_event_write,
};

static const struct bus_device_ops acpi_pm_control_ops = {
	.read = acpi_pm_control_read,
	.write = acpi_pm_control_write,
};

int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio_bus,
		   uint16_t event_base, uint16_t control_base)
{
	int ret = bus_register(pio_bus, event_base, ACPI_PM1_EVENT_LENGTH,
			       &acpi_pm_event_ops, pm, "acpi_pm");

	if (ret)
		return ret;
	ret = bus_register(pio_bus, control_base, ACPI_PM1_CONTROL_LENGTH,
			   &acpi_pm_control_ops, pm, "acpi_pm");
	if (ret)
		bus_unregister(pio_bus, event_base);
	return ret;
}
