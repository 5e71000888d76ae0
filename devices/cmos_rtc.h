/*
 * The MC146818 CMOS real-time clock and its 128 bytes of CMOS memory behind an
 * index port and the data port after it (0x70 and 0x71 on a PC): time and date
 * in BCD or binary, 12 or 24 hour mode as register B says, the
 * update-in-progress flag of register A, and guest writes that set the clock
 * (kept as an offset from the host's clock). Bit 7 of the index write is the
 * NMI mask and is ignored.
 *
 * Promise: a guest that reads the clock sees the host's UTC date and time
 * (plus whatever offset it set); all state is locked inside the device.
 * The RTC raises no interrupt yet: periodic, alarm and update-ended
 * interrupts need a timer, which the device context does not offer, so
 * register C's update-ended flag is only seen by a guest that polls it.
 */
#ifndef VESSEL_DEVICES_CMOS_RTC_H
#define VESSEL_DEVICES_CMOS_RTC_H

#include <time.h>

#include "bus.h"

#define CMOS_RTC_PORT_COUNT 2

struct cmos_rtc;

/* now reads the host's clock as UTC; NULL means CLOCK_REALTIME. Its
 * sub-second part drives register A's update-in-progress flag (set for the
 * last 244 us of every second, as on the MC146818). Tests pass a fixed
 * clock. The periodic, alarm and update interrupts (IRQ 8 on a PC) are
 * not modelled: Linux reads the clock without them. */
struct cmos_rtc *cmos_rtc_create(void (*now)(struct timespec *now));
void cmos_rtc_destroy(struct cmos_rtc *rtc);

/* Claims CMOS_RTC_PORT_COUNT ports from index_port: index, then data. */
int cmos_rtc_attach(struct cmos_rtc *rtc, struct bus *pio_bus,
		    uint16_t index_port);

/* The RTC's device record (device.h): its state saved and restored. */
struct device_record cmos_rtc_record(struct cmos_rtc *rtc, const char *name);

#endif
