/*
 * Registers as the Motorola MC146818A datasheet describes them (address
 * map, registers A-D); the century byte at 0x32 is the IBM PC/AT
 * convention that ACPI's FADT CENTURY field points to.
 *
 * The clock is never stored: every read converts the host's clock plus the
 * guest's offset, so the time keeps running without a timer. While the
 * guest holds register B's SET bit, reads and writes go to a frozen copy
 * that becomes the new offset when SET clears.
 */
#include "cmos_rtc.h"

#include "array.h"
#include "device_state.h"

#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define RTC_DATA_PORT_OFFSET 1
#define RTC_INDEX_MASK 0x7f /* bit 7 of the index write masks NMIs */
#define RTC_RAM_SIZE 128

#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_WEEKDAY 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_CENTURY 0x32

#define A_UPDATE_IN_PROGRESS 0x80
/* 32.768 kHz time base, 1024 Hz periodic rate: the usual programming. */
#define A_DEFAULT 0x26

#define B_SET 0x80
#define B_PERIODIC_ENABLE 0x40
#define B_ALARM_ENABLE 0x20
#define B_UPDATE_ENDED_ENABLE 0x10
#define B_BINARY 0x04
#define B_24_HOUR 0x02
#define B_DEFAULT B_24_HOUR /* BCD, 24-hour */

#define C_IRQ 0x80
#define C_UPDATE_ENDED 0x10

#define D_VALID_RAM_AND_TIME 0x80

#define HOUR_PM 0x80

/* UIP rises 244 us before each update (datasheet, register A). */
#define UIP_WINDOW_NS 244000L
#define NS_PER_SECOND 1000000000L

struct cmos_rtc {
	pthread_mutex_t lock;
	void (*now)(struct timespec *now);
	uint8_t index;
	/* Alarm bytes, registers A and B, and the battery-backed RAM. The
	 * clock registers, C, D and the century are computed on read. */
	uint8_t ram[RTC_RAM_SIZE];
	int64_t offset; /* guest clock minus host clock, in seconds */
	struct tm frozen; /* the guest's clock while B.SET is held */
	time_t last_flags_read; /* host second when C was last read */
};

static time_t cmos_rtc_host_time(const struct cmos_rtc *rtc, long *nanoseconds)
{
	struct timespec now;

	if (rtc->now)
		rtc->now(&now);
	else
		clock_gettime(CLOCK_REALTIME, &now);
	*nanoseconds = now.tv_nsec;
	return now.tv_sec;
}

struct cmos_rtc *cmos_rtc_create(void (*now)(struct timespec *now))
{
	struct cmos_rtc *rtc = calloc(1, sizeof(*rtc));
	long nanoseconds;

	if (!rtc)
		return NULL;
	if (pthread_mutex_init(&rtc->lock, NULL)) {
		free(rtc);
		return NULL;
	}
	rtc->now = now;
	rtc->ram[REG_A] = A_DEFAULT;
	rtc->ram[REG_B] = B_DEFAULT;
	rtc->last_flags_read = cmos_rtc_host_time(rtc, &nanoseconds);
	return rtc;
}

void cmos_rtc_destroy(struct cmos_rtc *rtc)
{
	if (!rtc)
		return;
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

static uint8_t cmos_rtc_encode(const struct cmos_rtc *rtc, int value)
{
	if (rtc->ram[REG_B] & B_BINARY)
		return (uint8_t)value;
	return (uint8_t)(((value / 10) << 4) | (value % 10));
}

/* Guest bytes are not checked for valid BCD digits: timegm() normalises
 * whatever they decode to. */
static int cmos_rtc_decode(const struct cmos_rtc *rtc, uint8_t value)
{
	if (rtc->ram[REG_B] & B_BINARY)
		return value;
	return (value >> 4) * 10 + (value & 0x0f);
}

/* The guest's current date and time. */
static void cmos_rtc_guest_time(const struct cmos_rtc *rtc, struct tm *tm)
{
	long nanoseconds;

	if (rtc->ram[REG_B] & B_SET) {
		*tm = rtc->frozen;
		return;
	}
	time_t now = cmos_rtc_host_time(rtc, &nanoseconds) + rtc->offset;

	gmtime_r(&now, tm);
}

/* Makes tm the guest's clock: the frozen copy while SET is held (left as
 * written, so that setting day then month never carries over an
 * intermediate invalid date), otherwise a new offset. */
static void cmos_rtc_set_guest_time(struct cmos_rtc *rtc, struct tm *tm)
{
	long nanoseconds;

	if (rtc->ram[REG_B] & B_SET) {
		rtc->frozen = *tm;
		return;
	}
	time_t guest = timegm(tm);

	if (guest == (time_t)-1)
		return; /* a date time_t cannot hold: the clock is not set */
	rtc->offset = (int64_t)guest -
		      (int64_t)cmos_rtc_host_time(rtc, &nanoseconds);
}

static uint8_t cmos_rtc_read_hours(const struct cmos_rtc *rtc, int hour)
{
	if (rtc->ram[REG_B] & B_24_HOUR)
		return cmos_rtc_encode(rtc, hour);
	/* 12-hour mode: 12, 1-11 with bit 7 set for PM. */
	int twelve_hour = hour % 12 == 0 ? 12 : hour % 12;

	return cmos_rtc_encode(rtc, twelve_hour) | (hour >= 12 ? HOUR_PM : 0);
}

static int cmos_rtc_write_hours(const struct cmos_rtc *rtc, uint8_t value)
{
	if (rtc->ram[REG_B] & B_24_HOUR)
		return cmos_rtc_decode(rtc, value);
	int hour = cmos_rtc_decode(rtc, value & ~HOUR_PM) % 12;

	return (value & HOUR_PM) ? hour + 12 : hour;
}

static uint8_t cmos_rtc_read_clock(const struct cmos_rtc *rtc, uint8_t index)
{
	struct tm tm;

	cmos_rtc_guest_time(rtc, &tm);
	int year = tm.tm_year + 1900;

	switch (index) {
	case REG_SECONDS:
		return cmos_rtc_encode(rtc, tm.tm_sec);
	case REG_MINUTES:
		return cmos_rtc_encode(rtc, tm.tm_min);
	case REG_HOURS:
		return cmos_rtc_read_hours(rtc, tm.tm_hour);
	case REG_WEEKDAY: {
		/* Derived from the date (1 = Sunday); a frozen date may not be
		 * normalised yet. */
		struct tm normalised = tm;

		timegm(&normalised);
		return cmos_rtc_encode(rtc, normalised.tm_wday + 1);
	}
	case REG_DAY:
		return cmos_rtc_encode(rtc, tm.tm_mday);
	case REG_MONTH:
		return cmos_rtc_encode(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return cmos_rtc_encode(rtc, year % 100);
	default: /* REG_CENTURY */
		return cmos_rtc_encode(rtc, year / 100);
	}
}

static void cmos_rtc_write_clock(struct cmos_rtc *rtc, uint8_t index,
				 uint8_t value)
{
	struct tm tm;

	cmos_rtc_guest_time(rtc, &tm);
	int year = tm.tm_year + 1900;

	switch (index) {
	case REG_SECONDS:
		tm.tm_sec = cmos_rtc_decode(rtc, value);
		break;
	case REG_MINUTES:
		tm.tm_min = cmos_rtc_decode(rtc, value);
		break;
	case REG_HOURS:
		tm.tm_hour = cmos_rtc_write_hours(rtc, value);
		break;
	case REG_WEEKDAY:
		return; /* the weekday follows from the date */
	case REG_DAY:
		tm.tm_mday = cmos_rtc_decode(rtc, value);
		break;
	case REG_MONTH:
		tm.tm_mon = cmos_rtc_decode(rtc, value) - 1;
		break;
	case REG_YEAR:
		tm.tm_year = year / 100 * 100 + cmos_rtc_decode(rtc, value) - 1900;
		break;
	default: /* REG_CENTURY */
		tm.tm_year = cmos_rtc_decode(rtc, value) * 100 + year % 100 - 1900;
		break;
	}
	cmos_rtc_set_guest_time(rtc, &tm);
}

static bool cmos_rtc_is_clock(uint8_t index)
{
	return index == REG_SECONDS || index == REG_MINUTES ||
	       index == REG_HOURS || (index >= REG_WEEKDAY && index <= REG_YEAR) ||
	       index == REG_CENTURY;
}

static uint8_t cmos_rtc_read_a(const struct cmos_rtc *rtc)
{
	long nanoseconds;

	cmos_rtc_host_time(rtc, &nanoseconds);
	bool updating = !(rtc->ram[REG_B] & B_SET) &&
			nanoseconds >= NS_PER_SECOND - UIP_WINDOW_NS;

	return rtc->ram[REG_A] | (updating ? A_UPDATE_IN_PROGRESS : 0);
}

/* Register C: the update-ended flag is set when the clock has ticked since
 * the last read; reading clears it. Periodic and alarm flags never rise. */
static uint8_t cmos_rtc_read_c(struct cmos_rtc *rtc)
{
	long nanoseconds;
	time_t now = cmos_rtc_host_time(rtc, &nanoseconds);
	uint8_t flags = 0;

	if (!(rtc->ram[REG_B] & B_SET) && now != rtc->last_flags_read)
		flags |= C_UPDATE_ENDED;
	rtc->last_flags_read = now;
	if (flags & rtc->ram[REG_B] &
	    (B_PERIODIC_ENABLE | B_ALARM_ENABLE | B_UPDATE_ENDED_ENABLE))
		flags |= C_IRQ;
	return flags;
}

static void cmos_rtc_write_b(struct cmos_rtc *rtc, uint8_t value)
{
	uint8_t old = rtc->ram[REG_B];
	long nanoseconds;

	/* Setting SET clears UIE (datasheet, register B bit 7). */
	if (value & B_SET)
		value &= ~B_UPDATE_ENDED_ENABLE;
	if (!(old & B_SET) && (value & B_SET)) {
		cmos_rtc_guest_time(rtc, &rtc->frozen);
	} else if ((old & B_SET) && !(value & B_SET)) {
		time_t guest = timegm(&rtc->frozen);

		if (guest != (time_t)-1)
			rtc->offset = (int64_t)guest -
				      (int64_t)cmos_rtc_host_time(rtc,
								  &nanoseconds);
	}
	rtc->ram[REG_B] = value;
}

static uint8_t cmos_rtc_read_register(struct cmos_rtc *rtc, uint8_t index)
{
	if (cmos_rtc_is_clock(index))
		return cmos_rtc_read_clock(rtc, index);
	switch (index) {
	case REG_A:
		return cmos_rtc_read_a(rtc);
	case REG_C:
		return cmos_rtc_read_c(rtc);
	case REG_D:
		return D_VALID_RAM_AND_TIME;
	default:
		return rtc->ram[index];
	}
}

static void cmos_rtc_write_register(struct cmos_rtc *rtc, uint8_t index,
				    uint8_t value)
{
	if (cmos_rtc_is_clock(index)) {
		cmos_rtc_write_clock(rtc, index, value);
		return;
	}
	switch (index) {
	case REG_A:
		rtc->ram[REG_A] = value & ~A_UPDATE_IN_PROGRESS;
		break;
	case REG_B:
		cmos_rtc_write_b(rtc, value);
		break;
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		rtc->ram[index] = value;
		break;
	}
}

/* Port 0x70 is the index (write-only: reads float), 0x71 the data. A
 * two-byte access covers both, index first. */
static void cmos_rtc_io_read(void *opaque, uint64_t offset, uint8_t *data,
			     uint32_t size)
{
	struct cmos_rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < size; i++) {
		if (offset + i == RTC_DATA_PORT_OFFSET)
			data[i] = cmos_rtc_read_register(rtc, rtc->index);
		else
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&rtc->lock);
}

static void cmos_rtc_io_write(void *opaque, uint64_t offset,
			      const uint8_t *data, uint32_t size)
{
	struct cmos_rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	for (uint32_t i = 0; i < size; i++) {
		if (offset + i == RTC_DATA_PORT_OFFSET)
			cmos_rtc_write_register(rtc, rtc->index, data[i]);
		else
			rtc->index = data[i] & RTC_INDEX_MASK;
	}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct bus_device_ops cmos_rtc_ops = {
	.read = cmos_rtc_io_read,
	.write = cmos_rtc_io_write,
};

int cmos_rtc_attach(struct cmos_rtc *rtc, struct bus *pio_bus,
		    uint16_t index_port)
{
	return bus_register(pio_bus, index_port, CMOS_RTC_PORT_COUNT,
			    &cmos_rtc_ops, rtc, "cmos_rtc");
}

/* The battery-backed RAM and registers A and B, and the guest's clock as
 * an offset from the host's: a restored guest's clock runs on from the
 * host's time as it did before, so it is right after a restore. */
static int cmos_rtc_save(void *opaque, struct device_state_writer *writer)
{
	struct cmos_rtc *rtc = opaque;

	pthread_mutex_lock(&rtc->lock);
	struct tm frozen = rtc->frozen;
	uint64_t frozen_time = (uint64_t)timegm(&frozen);
	uint8_t ram[RTC_RAM_SIZE];
	memcpy(ram, rtc->ram, sizeof(ram));
	const struct device_register registers[] = {
		DEVICE_REGISTER("index", rtc->index),
		DEVICE_REGISTER("offset", rtc->offset),
		DEVICE_REGISTER("frozen-time", frozen_time),
	};
	int result = device_save_registers(writer, registers,
					   ARRAY_SIZE(registers));
	pthread_mutex_unlock(&rtc->lock);
	return result ? result : writer->put_bytes(writer, "ram", ram, sizeof(ram));
}

static int cmos_rtc_restore(void *opaque, struct device_state_reader *reader)
{
	struct cmos_rtc *rtc = opaque;
	uint8_t index;
	int64_t offset;
	uint64_t frozen_time;
	uint8_t ram[RTC_RAM_SIZE];
	struct tm frozen;
	const struct device_register registers[] = {
		DEVICE_REGISTER("index", index),
		DEVICE_REGISTER("offset", offset),
		DEVICE_REGISTER("frozen-time", frozen_time),
	};
	int result = device_restore_registers(reader, registers,
					      ARRAY_SIZE(registers));

	if (!result)
		result = reader->get_bytes(reader, "ram", ram, sizeof(ram));
	if (result)
		return result;
	time_t frozen_seconds = (time_t)frozen_time;
	if (!gmtime_r(&frozen_seconds, &frozen))
		return -EINVAL;
	pthread_mutex_lock(&rtc->lock);
	rtc->index = index;
	rtc->offset = offset;
	rtc->frozen = frozen;
	memcpy(rtc->ram, ram, sizeof(ram));
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

static const struct device_ops cmos_rtc_record_ops = {
	.save = cmos_rtc_save,
	.restore = cmos_rtc_restore,
	.state_version = 1,
};

struct device_record cmos_rtc_record(struct cmos_rtc *rtc, const char *name)
{
	return (struct device_record){ .name = name, .ops = &cmos_rtc_record_ops,
				       .opaque = rtc };
}
