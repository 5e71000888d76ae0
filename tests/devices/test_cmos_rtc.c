#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "devices/cmos_rtc.h"
#include "vmm/machine_layout.h"
#include "fakes.h"

#define INDEX LAYOUT_CMOS_RTC_PORT
#define DATA (LAYOUT_CMOS_RTC_PORT + 1)

#define REG_SECONDS 0x00
#define REG_ALARM_SECONDS 0x01
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

#define B_SET 0x80
#define B_UIE 0x10
#define B_BINARY 0x04
#define B_24H 0x02

static time_t fake_time;
static long fake_nanoseconds;

static void fake_now(struct timespec *now)
{
	now->tv_sec = fake_time;
	now->tv_nsec = fake_nanoseconds;
}

static time_t utc(int year, int month, int day, int hour, int minute,
		  int second)
{
	struct tm tm = {
		.tm_year = year - 1900,
		.tm_mon = month - 1,
		.tm_mday = day,
		.tm_hour = hour,
		.tm_min = minute,
		.tm_sec = second,
	};

	return timegm(&tm);
}

static struct bus *bus;
static struct cmos_rtc *rtc;

static void create_rtc(void (*now)(struct timespec *now))
{
	bus = bus_create("pio");
	rtc = cmos_rtc_create(now);
	cr_assert_not_null(bus);
	cr_assert_not_null(rtc);
	cr_assert_eq(cmos_rtc_attach(rtc, bus, LAYOUT_CMOS_RTC_PORT), 0);
}

static void setup(void)
{
	fake_time = utc(2026, 11, 28, 13, 45, 7);
	fake_nanoseconds = 0;
	create_rtc(fake_now);
}

static void teardown(void)
{
	cmos_rtc_destroy(rtc);
	bus_destroy(bus);
}

TestSuite(cmos_rtc, .init = setup, .fini = teardown);

static uint8_t cmos_read(uint8_t index)
{
	port_write8(bus, INDEX, index);
	return port_read8(bus, DATA);
}

static void cmos_write(uint8_t index, uint8_t value)
{
	port_write8(bus, INDEX, index);
	port_write8(bus, DATA, value);
}

Test(cmos_rtc, reads_the_host_clock_in_bcd_by_default)
{
	cr_assert_eq(cmos_read(REG_B), B_24H);
	cr_assert_eq(cmos_read(REG_SECONDS), 0x07);
	cr_assert_eq(cmos_read(REG_MINUTES), 0x45);
	cr_assert_eq(cmos_read(REG_HOURS), 0x13);
	cr_assert_eq(cmos_read(REG_WEEKDAY), 0x07, "a Saturday (Sunday = 1)");
	cr_assert_eq(cmos_read(REG_DAY), 0x28);
	cr_assert_eq(cmos_read(REG_MONTH), 0x11);
	cr_assert_eq(cmos_read(REG_YEAR), 0x26);
	cr_assert_eq(cmos_read(REG_CENTURY), 0x20);
}

Test(cmos_rtc, binary_mode)
{
	cmos_write(REG_B, B_24H | B_BINARY);
	cr_assert_eq(cmos_read(REG_SECONDS), 7);
	cr_assert_eq(cmos_read(REG_MINUTES), 45);
	cr_assert_eq(cmos_read(REG_HOURS), 13);
	cr_assert_eq(cmos_read(REG_DAY), 28);
	cr_assert_eq(cmos_read(REG_MONTH), 11);
	cr_assert_eq(cmos_read(REG_YEAR), 26);
	cr_assert_eq(cmos_read(REG_CENTURY), 20);
}

Test(cmos_rtc, twelve_hour_mode_sets_the_pm_bit)
{
	cmos_write(REG_B, 0); /* BCD, 12-hour */
	cr_assert_eq(cmos_read(REG_HOURS), 0x81, "1 PM");
	cmos_write(REG_B, B_BINARY);
	cr_assert_eq(cmos_read(REG_HOURS), 0x81);

	fake_time = utc(2026, 11, 28, 0, 30, 0);
	cmos_write(REG_B, 0);
	cr_assert_eq(cmos_read(REG_HOURS), 0x12, "midnight is 12 AM");
	fake_time = utc(2026, 11, 28, 12, 30, 0);
	cr_assert_eq(cmos_read(REG_HOURS), 0x92, "noon is 12 PM");

	/* Writing 2 PM in 12-hour mode reads back as 14 in 24-hour mode. */
	cmos_write(REG_HOURS, 0x82);
	cmos_write(REG_B, B_24H);
	cr_assert_eq(cmos_read(REG_HOURS), 0x14);
}

Test(cmos_rtc, clock_follows_the_host_clock)
{
	fake_time += 60 * 60 * 24 * 3 + 53; /* Tuesday 2026-12-01 13:46:00 */
	cr_assert_eq(cmos_read(REG_SECONDS), 0x00);
	cr_assert_eq(cmos_read(REG_MINUTES), 0x46);
	cr_assert_eq(cmos_read(REG_WEEKDAY), 0x03);
	cr_assert_eq(cmos_read(REG_DAY), 0x01);
	cr_assert_eq(cmos_read(REG_MONTH), 0x12);
}

Test(cmos_rtc, setting_the_time_with_set_shifts_later_reads)
{
	cmos_write(REG_B, B_24H | B_SET);
	cmos_write(REG_YEAR, 0x30);
	cmos_write(REG_DAY, 0x31); /* Nov 31 does not exist: must not carry */
	cmos_write(REG_MONTH, 0x01);
	cmos_write(REG_HOURS, 0x08);
	cmos_write(REG_MINUTES, 0x00);
	cmos_write(REG_SECONDS, 0x00);
	fake_time += 100; /* frozen while SET is held */
	cr_assert_eq(cmos_read(REG_SECONDS), 0x00);
	cr_assert_eq(cmos_read(REG_DAY), 0x31);
	cmos_write(REG_B, B_24H);

	fake_time += 10;
	cr_assert_eq(cmos_read(REG_SECONDS), 0x10);
	cr_assert_eq(cmos_read(REG_MINUTES), 0x00);
	cr_assert_eq(cmos_read(REG_HOURS), 0x08);
	cr_assert_eq(cmos_read(REG_DAY), 0x31);
	cr_assert_eq(cmos_read(REG_MONTH), 0x01);
	cr_assert_eq(cmos_read(REG_YEAR), 0x30);
	cr_assert_eq(cmos_read(REG_CENTURY), 0x20);
	cr_assert_eq(cmos_read(REG_WEEKDAY), 0x05, "2030-01-31 is a Thursday");
}

Test(cmos_rtc, setting_one_field_without_set_keeps_time_running)
{
	cmos_write(REG_MINUTES, 0x50);
	cr_assert_eq(cmos_read(REG_MINUTES), 0x50);
	cr_assert_eq(cmos_read(REG_HOURS), 0x13);
	fake_time += 60;
	cr_assert_eq(cmos_read(REG_MINUTES), 0x51);
	cr_assert_eq(cmos_read(REG_SECONDS), 0x07);
}

Test(cmos_rtc, century_register_sets_the_century)
{
	cmos_write(REG_CENTURY, 0x21);
	cr_assert_eq(cmos_read(REG_CENTURY), 0x21);
	cr_assert_eq(cmos_read(REG_YEAR), 0x26);
	cr_assert_eq(cmos_read(REG_MONTH), 0x11);
	cmos_write(REG_B, B_24H | B_BINARY);
	cr_assert_eq(cmos_read(REG_CENTURY), 21);
}

Test(cmos_rtc, register_c_reports_an_update_once_and_clears)
{
	cr_assert_eq(cmos_read(REG_C), 0x00, "no update yet");
	fake_time += 1;
	cr_assert_eq(cmos_read(REG_C), 0x10, "update-ended flag");
	cr_assert_eq(cmos_read(REG_C), 0x00, "cleared by the read");

	cmos_write(REG_B, B_24H | B_UIE);
	fake_time += 1;
	cr_assert_eq(cmos_read(REG_C), 0x90, "IRQF with UIE enabled");
	cr_assert_eq(cmos_read(REG_C), 0x00);
}

Test(cmos_rtc, status_registers_a_and_d)
{
	cr_assert_eq(cmos_read(REG_D), 0x80, "valid RAM and time");
	cr_assert_eq(cmos_read(REG_A), 0x26);
	cmos_write(REG_A, 0xa6); /* UIP is read-only */
	cr_assert_eq(cmos_read(REG_A), 0x26);
	cmos_write(REG_D, 0x00);
	cr_assert_eq(cmos_read(REG_D), 0x80);
}

Test(cmos_rtc, setting_set_clears_uie)
{
	cmos_write(REG_B, B_24H | B_UIE | B_SET);
	cr_assert_eq(cmos_read(REG_B), B_24H | B_SET);
}

Test(cmos_rtc, cmos_ram_round_trips)
{
	for (unsigned int index = 0x0e; index < 0x80; index++) {
		if (index == REG_CENTURY)
			continue;
		cmos_write((uint8_t)index, (uint8_t)(index ^ 0xa5));
	}
	cmos_write(REG_ALARM_SECONDS, 0x30);
	for (unsigned int index = 0x0e; index < 0x80; index++) {
		if (index == REG_CENTURY)
			continue;
		cr_assert_eq(cmos_read((uint8_t)index), index ^ 0xa5,
			     "CMOS byte %#x", index);
	}
	cr_assert_eq(cmos_read(REG_ALARM_SECONDS), 0x30);
	cr_assert_eq(cmos_read(REG_CENTURY), 0x20, "0x32 is the century");
}

Test(cmos_rtc, index_nmi_bit_is_ignored)
{
	cmos_write(0x40, 0x12);
	port_write8(bus, INDEX, 0x80 | 0x40);
	cr_assert_eq(port_read8(bus, DATA), 0x12);
	port_write8(bus, INDEX, 0x80 | REG_MINUTES);
	cr_assert_eq(port_read8(bus, DATA), 0x45);
}

Test(cmos_rtc, word_access_writes_index_then_data)
{
	port_write16(bus, INDEX, 0x5b << 8 | 0x41);
	cr_assert_eq(cmos_read(0x41), 0x5b);
	cr_assert_eq(port_read8(bus, INDEX), 0xff, "the index is write-only");
}

/* UIP is set only in the last 244 us of each second (MC146818 datasheet,
 * register A), and never while the guest holds the clock with SET. */
Test(cmos_rtc, uip_flag_brackets_each_update)
{
	fake_nanoseconds = 500000000;
	cr_assert_eq(cmos_read(REG_A) & 0x80, 0, "UIP mid-second");
	fake_nanoseconds = 999755999;
	cr_assert_eq(cmos_read(REG_A) & 0x80, 0, "UIP before the window");
	fake_nanoseconds = 999756000;
	cr_assert_eq(cmos_read(REG_A) & 0x80, 0x80, "no UIP in the window");
	fake_nanoseconds = 999999999;
	cr_assert_eq(cmos_read(REG_A) & 0x80, 0x80, "no UIP at the update");
	cmos_write(REG_B, cmos_read(REG_B) | B_SET);
	cr_assert_eq(cmos_read(REG_A) & 0x80, 0, "UIP while SET holds the clock");
}
