#include <criterion/criterion.h>

#include "devices/acpi_pm.h"
#include "fakes.h"

#define EVENT_BASE 0x600
#define CONTROL_BASE 0x604
#define PM1_STS EVENT_BASE
#define PM1_EN (EVENT_BASE + 2)
#define PM1_CNT CONTROL_BASE

#define S5_SLEEP_TYPE 5
#define SLP_TYP(type) ((uint16_t)((type) << 10))
#define SLP_EN 0x2000
#define SCI_EN 0x0001
#define WAK_STS 0x8000
#define PWRBTN 0x0100 /* PWRBTN_STS in PM1_STS, PWRBTN_EN in PM1_EN */
#define SCI_GSI 9

static struct bus *bus;
static struct acpi_pm *pm;
static struct irq_recorder sci;
static unsigned int power_offs;

static void count_power_off(void *opaque)
{
	cr_assert_eq(opaque, &power_offs);
	power_offs++;
}

static void setup(void)
{
	power_offs = 0;
	sci = (struct irq_recorder){ 0 };
	bus = bus_create("pio");
	pm = acpi_pm_create(S5_SLEEP_TYPE, irq_recorder_line(&sci, SCI_GSI),
			    count_power_off, &power_offs);
	cr_assert_not_null(bus);
	cr_assert_not_null(pm);
	cr_assert_eq(acpi_pm_attach(pm, bus, EVENT_BASE, CONTROL_BASE), 0);
}

static void teardown(void)
{
	acpi_pm_destroy(pm);
	bus_destroy(bus);
}

TestSuite(acpi_pm, .init = setup, .fini = teardown);

Test(acpi_pm, claims_both_blocks_exactly)
{
	uint8_t data[4];

	cr_assert(bus_read(bus, EVENT_BASE, data, 4));
	cr_assert(bus_read(bus, CONTROL_BASE, data, 2));
	cr_assert_not(bus_read(bus, CONTROL_BASE + 2, data, 1));
	cr_assert_not(bus_read(bus, EVENT_BASE - 1, data, 1));
}

Test(acpi_pm, slp_en_with_s5_type_powers_off)
{
	port_write16(bus, PM1_CNT, SLP_TYP(S5_SLEEP_TYPE) | SLP_EN);
	cr_assert_eq(power_offs, 1);
}

Test(acpi_pm, s5_written_as_a_high_byte_powers_off)
{
	port_write8(bus, PM1_CNT + 1,
		    (uint8_t)((SLP_TYP(S5_SLEEP_TYPE) | SLP_EN) >> 8));
	cr_assert_eq(power_offs, 1);
}

Test(acpi_pm, s5_type_without_slp_en_does_nothing)
{
	port_write16(bus, PM1_CNT, SLP_TYP(S5_SLEEP_TYPE));
	cr_assert_eq(power_offs, 0);
	cr_assert_eq(port_read16(bus, PM1_CNT),
		     SLP_TYP(S5_SLEEP_TYPE) | SCI_EN, "SLP_TYP is kept");
	/* Then SLP_EN alone in the high byte completes the request. */
	port_write8(bus, PM1_CNT + 1,
		    (uint8_t)((SLP_TYP(S5_SLEEP_TYPE) | SLP_EN) >> 8));
	cr_assert_eq(power_offs, 1);
}

Test(acpi_pm, other_sleep_types_wake_at_once_instead)
{
	for (unsigned int type = 0; type < 8; type++) {
		if (type == S5_SLEEP_TYPE)
			continue;
		port_write16(bus, PM1_STS, WAK_STS);
		port_write16(bus, PM1_CNT, SLP_TYP(type) | SLP_EN);
		cr_assert_eq(power_offs, 0, "sleep type %u", type);
		cr_assert_eq(port_read16(bus, PM1_STS) & WAK_STS, WAK_STS,
			     "the guest's sleep path waits for WAK_STS");
	}
}

Test(acpi_pm, sci_en_always_reads_set_and_slp_en_reads_clear)
{
	cr_assert_eq(port_read16(bus, PM1_CNT), SCI_EN);
	cr_assert_eq(port_read8(bus, PM1_CNT) & SCI_EN, SCI_EN);
	port_write16(bus, PM1_CNT, 0);
	cr_assert_eq(port_read16(bus, PM1_CNT), SCI_EN);
	port_write16(bus, PM1_CNT, SLP_TYP(1) | SLP_EN);
	cr_assert_eq(port_read16(bus, PM1_CNT) & SLP_EN, 0);
}

Test(acpi_pm, status_bits_are_write_one_to_clear)
{
	port_write16(bus, PM1_CNT, SLP_TYP(1) | SLP_EN);
	cr_assert_eq(port_read16(bus, PM1_STS), WAK_STS);
	port_write16(bus, PM1_STS, 0);
	cr_assert_eq(port_read16(bus, PM1_STS), WAK_STS, "0 clears nothing");
	port_write8(bus, PM1_STS, 0xff);
	cr_assert_eq(port_read16(bus, PM1_STS), WAK_STS, "other byte");
	port_write8(bus, PM1_STS + 1, 0x80);
	cr_assert_eq(port_read16(bus, PM1_STS), 0);
}

Test(acpi_pm, enable_register_is_plain_read_write)
{
	port_write16(bus, PM1_EN, 0x0121);
	cr_assert_eq(port_read16(bus, PM1_EN), 0x0121);
	port_write8(bus, PM1_EN + 1, 0x04);
	cr_assert_eq(port_read16(bus, PM1_EN), 0x0421);
	cr_assert_eq(port_read8(bus, PM1_EN), 0x21);
}

Test(acpi_pm, dword_access_covers_status_and_enable)
{
	port_write16(bus, PM1_CNT, SLP_TYP(1) | SLP_EN);
	/* Clear WAK_STS and set PM1_EN in one access. */
	port_write32(bus, PM1_STS, (uint32_t)0x0100 << 16 | WAK_STS);
	cr_assert_eq(port_read32(bus, PM1_STS), (uint32_t)0x0100 << 16);
}

Test(acpi_pm, power_button_raises_the_sci_once_enabled)
{
	acpi_pm_press_power_button(pm);
	cr_assert_eq(port_read16(bus, PM1_STS) & PWRBTN, PWRBTN);
	cr_assert_not(sci.level, "the guest has not enabled the event yet");

	port_write16(bus, PM1_EN, PWRBTN);
	cr_assert(sci.level, "an enabled status bit raises the SCI");
	cr_assert_eq(sci.last_gsi, SCI_GSI);
	cr_assert_eq(power_offs, 0, "the guest decides what the button does");

	port_write16(bus, PM1_STS, PWRBTN);
	cr_assert_not(sci.level, "clearing the status lowers the SCI");
	cr_assert_eq(port_read16(bus, PM1_STS) & PWRBTN, 0);
}

Test(acpi_pm, each_press_raises_the_sci_again)
{
	port_write16(bus, PM1_EN, PWRBTN);
	for (int press = 0; press < 3; press++) {
		acpi_pm_press_power_button(pm);
		cr_assert(sci.level, "press %d", press);
		port_write16(bus, PM1_STS, PWRBTN);
		cr_assert_not(sci.level, "press %d", press);
	}
	cr_assert_eq(sci.calls, 6, "one call per level change");
}
