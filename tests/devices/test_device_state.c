/*
 * Devices saved through their records and restored into fresh ones, with
 * the snapshot's own state tree (vmm/state_fdt.c): the guest finds the
 * same registers, unread input and pending interrupts; values that do not
 * fit, and a configuration space or screen mode that is not the device's,
 * are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/framebuffer.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/serial.h"
#include "vmm/state_fdt.h"
#include "fakes.h"

#define COM1 0x3f8

static struct state_writer writer;
static struct state_reader reader;

/* Saves record into the node /devices/name and opens it for reading. */
static void save(struct device_record record)
{
	const void *blob;
	size_t size;

	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/devices/d",
					record.ops->state_version), 0);
	cr_assert_eq(record.ops->save(record.opaque, &writer.base), 0);
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/d",
					record.ops->state_version), 0);
}

static void discard(void *opaque, const uint8_t *data, size_t len)
{
	(void)opaque, (void)data, (void)len;
}

static struct serial *new_serial(struct bus *bus, struct irq_recorder *irq)
{
	struct serial *serial = serial_create(
		irq_recorder_line(irq, 4),
		(struct serial_backend){ .write = discard });

	cr_assert_not_null(serial);
	cr_assert_eq(serial_attach(serial, bus, COM1), 0);
	return serial;
}

Test(device_state, serial_keeps_registers_unread_input_and_its_interrupt)
{
	struct irq_recorder irq = { 0 }, irq_again = { 0 };
	struct bus *bus = bus_create("pio"), *bus_again = bus_create("pio");
	struct serial *serial = new_serial(bus, &irq);

	port_write8(bus, COM1 + 2, 0x01); /* FIFOs on */
	port_write8(bus, COM1 + 3, 0x03); /* 8N1 */
	port_write8(bus, COM1 + 7, 0x5a); /* scratch */
	port_write8(bus, COM1 + 4, 0x08); /* OUT2: the line reaches the PIC */
	port_write8(bus, COM1 + 1, 0x01); /* receive interrupts */
	cr_assert_eq(serial_receive(serial, (const uint8_t *)"abc", 3), 3);
	cr_assert_eq(port_read8(bus, COM1), 'a');
	cr_assert(irq.level);
	save(serial_record(serial, "serial0"));

	struct serial *restored = new_serial(bus_again, &irq_again);
	struct device_record record = serial_record(restored, "serial0");
	cr_assert_eq(record.ops->restore(record.opaque, &reader.base), 0);
	cr_assert(irq_again.level, "the restored UART does not raise its line");
	cr_assert_eq(port_read8(bus_again, COM1 + 3), 0x03);
	cr_assert_eq(port_read8(bus_again, COM1 + 7), 0x5a);
	cr_assert_eq(port_read8(bus_again, COM1 + 1), 0x01);
	cr_assert_eq(port_read8(bus_again, COM1), 'b');
	cr_assert_eq(port_read8(bus_again, COM1), 'c');
	cr_assert_eq(port_read8(bus_again, COM1 + 5) & 0x01, 0, "input left over");
	cr_assert(!irq_again.level);
	state_writer_release(&writer);
	serial_destroy(serial);
	serial_destroy(restored);
	bus_destroy(bus);
	bus_destroy(bus_again);
}

Test(device_state, serial_refuses_a_value_that_does_not_fit)
{
	struct irq_recorder irq = { 0 };
	struct bus *bus = bus_create("pio");
	struct serial *serial = new_serial(bus, &irq);
	struct device_record record = serial_record(serial, "serial0");

	save(record);
	/* More unread input than the FIFO holds. */
	cr_assert_eq(state_writer_begin(&writer, "/devices/e", 1), 0);
	cr_assert_eq(record.ops->save(record.opaque, &writer.base), 0);
	cr_assert_eq(writer.base.put_u64(&writer.base, "input-count", 17), 0);
	cr_assert_eq(writer.base.put_u64(&writer.base, "lcr", 0x100), 0);
	const void *blob;
	size_t size;
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/e", 1), 0);
	cr_assert_eq(record.ops->restore(record.opaque, &reader.base), -EINVAL);
	state_writer_release(&writer);
	serial_destroy(serial);
	bus_destroy(bus);
}

static void ignore_reset(void *opaque)
{
	(void)opaque;
}

Test(device_state, i8042_keeps_its_command_byte_and_output)
{
	struct irq_recorder keyboard = { 0 }, mouse = { 0 };
	struct bus *bus = bus_create("pio"), *bus_again = bus_create("pio");
	struct i8042 *controller = i8042_create(irq_recorder_line(&keyboard, 1),
						irq_recorder_line(&mouse, 12),
						ignore_reset, NULL);
	struct i8042 *restored = i8042_create(irq_recorder_line(&keyboard, 1),
					      irq_recorder_line(&mouse, 12),
					      ignore_reset, NULL);

	cr_assert_eq(i8042_attach(controller, bus, 0x60, 0x64), 0);
	cr_assert_eq(i8042_attach(restored, bus_again, 0x60, 0x64), 0);
	port_write8(bus, 0x64, 0x60); /* write the command byte */
	port_write8(bus, 0x60, 0x44);
	port_write8(bus, 0x64, 0x20); /* read it: one byte waits */
	save(i8042_record(controller, "i8042"));
	struct device_record record = i8042_record(restored, "i8042");
	cr_assert_eq(record.ops->restore(record.opaque, &reader.base), 0);
	cr_assert_eq(port_read8(bus_again, 0x64) & 0x01, 0x01);
	cr_assert_eq(port_read8(bus_again, 0x60), 0x44);
	state_writer_release(&writer);
	i8042_destroy(controller);
	i8042_destroy(restored);
	bus_destroy(bus);
	bus_destroy(bus_again);
}

Test(device_state, pci_refuses_another_devices_configuration)
{
	static const struct pci_device_id id = { .vendor_id = 0x1af4,
						 .device_id = 0x1044 };
	static const struct pci_device_id other = { .vendor_id = 0x1af4,
						    .device_id = 0x1042 };
	struct pci_device device, same, different;

	cr_assert_eq(pci_device_init(&device, &id, NULL, NULL), 0);
	cr_assert_eq(pci_device_init(&same, &id, NULL, NULL), 0);
	cr_assert_eq(pci_device_init(&different, &other, NULL, NULL), 0);
	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/devices/d", 1), 0);
	cr_assert_eq(pci_device_save(&device, &writer.base), 0);
	const void *blob;
	size_t size;
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/d", 1), 0);
	cr_assert_eq(pci_device_restore(&different, &reader.base), -EINVAL);
	cr_assert_eq(pci_device_restore(&same, &reader.base), 0);
	state_writer_release(&writer);
	pci_device_destroy(&device);
	pci_device_destroy(&same);
	pci_device_destroy(&different);
}

static void new_framebuffer(struct framebuffer *framebuffer, uint32_t width,
			    uint32_t height)
{
	struct framebuffer_mode mode;

	cr_assert_eq(framebuffer_mode_init(&mode, width, height, 32, 16u << 20),
		     0);
	cr_assert_eq(framebuffer_create(framebuffer, &mode), 0);
}

/* Saves framebuffer into /devices/d and opens it for reading. */
static void save_framebuffer(const struct framebuffer *framebuffer)
{
	const void *blob;
	size_t size;

	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(state_writer_begin(&writer, "/devices/d", 1), 0);
	cr_assert_eq(framebuffer_save(framebuffer, &writer.base), 0);
	cr_assert_eq(state_writer_finish(&writer, &blob, &size), 0);
	cr_assert_eq(state_reader_open(&reader, blob, size), 0);
	cr_assert_eq(state_reader_begin(&reader, "/devices/d", 1), 0);
}

Test(device_state, framebuffer_keeps_every_pixel)
{
	struct framebuffer framebuffer, restored;

	new_framebuffer(&framebuffer, 1024, 768);
	new_framebuffer(&restored, 1024, 768);
	for (uint32_t i = 0; i < framebuffer.mode.size; i++)
		framebuffer.pixels[i] = (uint8_t)(i * 7 + i / 4096);
	save_framebuffer(&framebuffer);
	cr_assert_eq(framebuffer_restore(&restored, &reader.base), 0);
	cr_assert_eq(memcmp(restored.pixels, framebuffer.pixels,
			    framebuffer.mode.size), 0,
		     "the restored screen differs from the saved one");
	state_writer_release(&writer);
	framebuffer_destroy(&framebuffer);
	framebuffer_destroy(&restored);
}

Test(device_state, framebuffer_refuses_another_mode_naming_both)
{
	struct framebuffer framebuffer, smaller;

	new_framebuffer(&framebuffer, 1024, 768);
	new_framebuffer(&smaller, 800, 600);
	memset(framebuffer.pixels, 0x5a, framebuffer.mode.size);
	save_framebuffer(&framebuffer);
	cr_assert_eq(framebuffer_restore(&smaller, &reader.base), -EINVAL);
	cr_assert(strstr(reader.err, "1024x768") && strstr(reader.err, "800x600"),
		  "the refusal does not name both modes: %s", reader.err);
	for (uint32_t i = 0; i < smaller.mode.size; i++)
		cr_assert_eq(smaller.pixels[i], 0, "a refused restore drew");
	state_writer_release(&writer);
	framebuffer_destroy(&framebuffer);
	framebuffer_destroy(&smaller);
}
