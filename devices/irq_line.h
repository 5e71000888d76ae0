/*
 * An interrupt line as a device sees it: one guest GSI it can raise and
 * lower. vmm/ backs it with KVM's in-kernel irqchip; tests back it with a
 * recorder.
 *
 * Promise: set_level may be called from any thread; devices call it only on
 * a change of their output level.
 */
#ifndef VESSEL_DEVICES_IRQ_LINE_H
#define VESSEL_DEVICES_IRQ_LINE_H

#include <stdbool.h>
#include <stdint.h>

struct irq_line {
	void (*set_level)(void *opaque, uint32_t gsi, bool level);
	void *opaque;
	uint32_t gsi;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
	if (line->set_level)
		line->set_level(line->opaque, line->gsi, level);
}

#endif
