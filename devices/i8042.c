/*
 * The controller follows the IBM PS/2 Technical Reference (keyboard/auxiliary
 * device controller: status register, commands 0x20-0xFF).
 *
 * Model: a keyboard (devices/ps2_keyboard.h) on the keyboard port and a
 * wheel mouse (devices/ps2_mouse.h) on the auxiliary port, each with its
 * own buffer. The controller has a one-byte output buffer, which the
 * status register describes; when the guest empties it, the controller
 * fills it from its own replies first, then from the keyboard, then from
 * the mouse, each port only while its interface is enabled in the command
 * byte. Keyboard bytes pass through the set 2 to set 1 translation when
 * the command byte asks for it, as the 8042 does.
 */
#include "i8042.h"

#include "array.h"
#include "device_state.h"

#include <string.h>
#include <errno.h>
#include "ps2_keyboard.h"
#include "ps2_mouse.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define STATUS_LAST_WAS_COMMAND 0x08
#define STATUS_NOT_INHIBITED 0x10 /* keylock off */
#define STATUS_AUX_DATA 0x20

#define CTR_KEYBOARD_INTERRUPT 0x01
#define CTR_AUX_INTERRUPT 0x02
#define CTR_SYSTEM_FLAG 0x04
#define CTR_KEYBOARD_DISABLED 0x10
#define CTR_AUX_DISABLED 0x20
#define CTR_TRANSLATE 0x40
/* What a PC BIOS leaves behind: the mouse is the operating system's
 * to enable. */
#define CTR_DEFAULT (CTR_KEYBOARD_INTERRUPT | CTR_SYSTEM_FLAG | \
		     CTR_AUX_DISABLED | CTR_TRANSLATE)

#define OUTPUT_PORT_RESET_HIGH 0x01 /* low = CPU in reset */
#define OUTPUT_PORT_A20 0x02
#define OUTPUT_PORT_DEFAULT (OUTPUT_PORT_RESET_HIGH | OUTPUT_PORT_A20)

/* Controller commands (port 0x64). */
#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_AUX_DISABLE 0xa7
#define CMD_AUX_ENABLE 0xa8
#define CMD_AUX_TEST 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_KEYBOARD_TEST 0xab
#define CMD_KEYBOARD_DISABLE 0xad
#define CMD_KEYBOARD_ENABLE 0xae
#define CMD_READ_OUTPUT_PORT 0xd0
#define CMD_WRITE_OUTPUT_PORT 0xd1
#define CMD_WRITE_KEYBOARD_OUTPUT 0xd2
#define CMD_WRITE_AUX_OUTPUT 0xd3
#define CMD_WRITE_AUX_DEVICE 0xd4
#define CMD_PULSE_OUTPUT_FIRST 0xf0 /* 0xf0-0xff: low nibble 0 = pulse */

#define SELF_TEST_PASSED 0x55
#define INTERFACE_TEST_PASSED 0x00

#define CONTROLLER_QUEUE_SIZE 16

/* The 8042's translation of scancode set 2 to set 1 (IBM PS/2 Technical
 * Reference, "Scan Code Translation"), for set-2 bytes 0x00-0x84; every
 * other byte (0xe0, 0xe1, the keyboard's replies) passes unchanged, and
 * 0xf0, the break prefix, is swallowed and sets bit 7 of the next byte. */
static const uint8_t set2_to_set1[0x85] = {
	0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58,
	0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
	0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a,
	0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
	0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c,
	0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
	0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e,
	0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
	0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60,
	0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
	0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e,
	0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
	0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b,
	0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
	0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45,
	0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
	0x80, 0x81, 0x82, 0x41, 0x54,
};
#define SET2_BREAK 0xf0

struct i8042_output {
	uint8_t data;
	uint8_t status; /* STATUS_AUX_DATA for a byte from the mouse port */
};

struct i8042 {
	pthread_mutex_t lock; /* everything down to the mouse */
	uint8_t ctr; /* controller command byte */
	uint8_t output_port;
	uint8_t status_flags; /* STATUS_LAST_WAS_COMMAND */
	uint8_t pending_command; /* controller command awaiting its data byte */
	uint8_t last_output; /* what the data port reads when nothing waits */
	bool output_full;
	struct i8042_output output; /* the output buffer */
	bool translated_break; /* a set-2 0xf0 was swallowed */
	/* The controller's own replies, ahead of the devices' bytes. */
	struct i8042_output queue[CONTROLLER_QUEUE_SIZE];
	unsigned int queue_head;
	unsigned int queue_count;
	struct ps2_keyboard keyboard;
	struct ps2_mouse mouse;

	/* Serialises applying output levels (see i8042_update_irqs). */
	pthread_mutex_t irq_lock;
	bool keyboard_level;
	bool mouse_level;
	struct irq_line keyboard_irq;
	struct irq_line mouse_irq;

	void (*reset_requested)(void *opaque);
	void *opaque;
};

struct i8042 *i8042_create(struct irq_line keyboard_irq,
			   struct irq_line mouse_irq,
			   void (*reset_requested)(void *opaque), void *opaque)
{
	struct i8042 *controller = calloc(1, sizeof(*controller));

	if (!controller)
		return NULL;
	if (pthread_mutex_init(&controller->lock, NULL)) {
		free(controller);
		return NULL;
	}
	if (pthread_mutex_init(&controller->irq_lock, NULL)) {
		pthread_mutex_destroy(&controller->lock);
		free(controller);
		return NULL;
	}
	controller->ctr = CTR_DEFAULT;
	controller->output_port = OUTPUT_PORT_DEFAULT;
	ps2_keyboard_init(&controller->keyboard);
	ps2_mouse_init(&controller->mouse);
	controller->keyboard_irq = keyboard_irq;
	controller->mouse_irq = mouse_irq;
	controller->reset_requested = reset_requested;
	controller->opaque = opaque;
	return controller;
}

void i8042_destroy(struct i8042 *controller)
{
	if (!controller)
		return;
	pthread_mutex_destroy(&controller->irq_lock);
	pthread_mutex_destroy(&controller->lock);
	free(controller);
}

/* Queues a reply of the controller itself; status carries STATUS_AUX_DATA
 * for bytes it presents as coming from the auxiliary port. The guest
 * reads each reply before its next command, so the queue cannot fill up
 * unless the guest ignores replies; then the newest is dropped. */
static void i8042_queue(struct i8042 *controller, uint8_t data, uint8_t status)
{
	if (controller->queue_count == CONTROLLER_QUEUE_SIZE)
		return;
	unsigned int tail = (controller->queue_head + controller->queue_count) %
			    CONTROLLER_QUEUE_SIZE;

	controller->queue[tail] = (struct i8042_output){ data, status };
	controller->queue_count++;
}

/* The controller's replies share the keyboard's interrupt line. */
static void i8042_queue_keyboard(struct i8042 *controller, uint8_t data)
{
	i8042_queue(controller, data, 0);
}

/* The next keyboard byte as the guest sees it: translated to set 1 when
 * the command byte asks for it. */
static bool i8042_next_keyboard_byte(struct i8042 *controller, uint8_t *data)
{
	uint8_t byte;

	while (ps2_keyboard_read(&controller->keyboard, &byte)) {
		if (!(controller->ctr & CTR_TRANSLATE)) {
			*data = byte;
			return true;
		}
		if (byte == SET2_BREAK) {
			controller->translated_break = true;
			continue;
		}
		if (byte < sizeof(set2_to_set1))
			byte = set2_to_set1[byte];
		if (controller->translated_break)
			byte |= 0x80;
		controller->translated_break = false;
		*data = byte;
		return true;
	}
	return false;
}

/* Fills an empty output buffer: the controller's replies first, then the
 * keyboard, then the mouse, each port only with its interface enabled. */
static void i8042_fill_output(struct i8042 *controller)
{
	uint8_t byte;

	if (controller->output_full)
		return;
	if (controller->queue_count > 0) {
		controller->output = controller->queue[controller->queue_head];
		controller->queue_head =
			(controller->queue_head + 1) % CONTROLLER_QUEUE_SIZE;
		controller->queue_count--;
		controller->output_full = true;
	} else if (!(controller->ctr & CTR_KEYBOARD_DISABLED) &&
		   i8042_next_keyboard_byte(controller, &byte)) {
		controller->output = (struct i8042_output){ byte, 0 };
		controller->output_full = true;
	} else if (!(controller->ctr & CTR_AUX_DISABLED) &&
		   ps2_mouse_read(&controller->mouse, &byte)) {
		controller->output = (struct i8042_output){ byte,
							    STATUS_AUX_DATA };
		controller->output_full = true;
	}
}

/* The levels each line should have: the output buffer holds a byte from
 * that port and the command byte enables its interrupt. */
static void i8042_levels(const struct i8042 *controller, bool *keyboard,
			 bool *mouse)
{
	*keyboard = false;
	*mouse = false;
	if (!controller->output_full)
		return;
	if (controller->output.status & STATUS_AUX_DATA)
		*mouse = controller->ctr & CTR_AUX_INTERRUPT;
	else
		*keyboard = controller->ctr & CTR_KEYBOARD_INTERRUPT;
}

static void i8042_apply_level(const struct irq_line *line, bool *applied,
			      bool level)
{
	if (level != *applied) {
		*applied = level;
		irq_line_set(line, level);
	}
}

/* Brings both lines to the levels the state calls for, without the state
 * lock held. consumed says the guest just emptied the output buffer: a
 * line that stays high because another byte follows is lowered first, so
 * that the next byte is a new edge, as on hardware where each byte fills
 * the buffer anew. */
static void i8042_update_irqs(struct i8042 *controller, bool consumed)
{
	bool keyboard;
	bool mouse;

	pthread_mutex_lock(&controller->irq_lock);
	pthread_mutex_lock(&controller->lock);
	i8042_fill_output(controller);
	i8042_levels(controller, &keyboard, &mouse);
	pthread_mutex_unlock(&controller->lock);

	if (consumed) {
		i8042_apply_level(&controller->keyboard_irq,
				  &controller->keyboard_level, false);
		i8042_apply_level(&controller->mouse_irq,
				  &controller->mouse_level, false);
	}
	i8042_apply_level(&controller->keyboard_irq,
			  &controller->keyboard_level, keyboard);
	i8042_apply_level(&controller->mouse_irq, &controller->mouse_level,
			  mouse);
	pthread_mutex_unlock(&controller->irq_lock);
}

static uint8_t i8042_read_status(const struct i8042 *controller)
{
	uint8_t status = STATUS_NOT_INHIBITED | controller->status_flags;

	if (controller->ctr & CTR_SYSTEM_FLAG)
		status |= STATUS_SYSTEM_FLAG;
	if (controller->output_full)
		status |= STATUS_OUTPUT_FULL | controller->output.status;
	return status;
}

static uint8_t i8042_read_data(struct i8042 *controller)
{
	if (controller->output_full) {
		controller->last_output = controller->output.data;
		controller->output_full = false;
	}
	return controller->last_output;
}

/* Returns true when the command asks for a CPU reset. */
static bool i8042_write_command(struct i8042 *controller, uint8_t command)
{
	controller->status_flags |= STATUS_LAST_WAS_COMMAND;
	controller->pending_command = 0;

	switch (command) {
	case CMD_READ_CTR:
		i8042_queue_keyboard(controller, controller->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPUT_PORT:
	case CMD_WRITE_KEYBOARD_OUTPUT:
	case CMD_WRITE_AUX_OUTPUT:
	case CMD_WRITE_AUX_DEVICE:
		controller->pending_command = command;
		break;
	case CMD_AUX_DISABLE:
		controller->ctr |= CTR_AUX_DISABLED;
		break;
	case CMD_AUX_ENABLE:
		controller->ctr &= ~CTR_AUX_DISABLED;
		break;
	case CMD_AUX_TEST:
	case CMD_KEYBOARD_TEST:
		i8042_queue_keyboard(controller, INTERFACE_TEST_PASSED);
		break;
	case CMD_SELF_TEST:
		i8042_queue_keyboard(controller, SELF_TEST_PASSED);
		break;
	case CMD_KEYBOARD_DISABLE:
		controller->ctr |= CTR_KEYBOARD_DISABLED;
		break;
	case CMD_KEYBOARD_ENABLE:
		controller->ctr &= ~CTR_KEYBOARD_DISABLED;
		break;
	case CMD_READ_OUTPUT_PORT:
		i8042_queue_keyboard(controller, controller->output_port);
		break;
	default:
		/* 0xf0-0xff pulse output port bits 0-3 low where the
		 * command's bit is 0; bit 0 is the CPU reset line. */
		if (command >= CMD_PULSE_OUTPUT_FIRST && !(command & 0x01))
			return true;
		break;
	}
	return false;
}

/* Returns true when the byte asks for a CPU reset. */
static bool i8042_write_data(struct i8042 *controller, uint8_t data)
{
	uint8_t command = controller->pending_command;

	controller->status_flags &= ~STATUS_LAST_WAS_COMMAND;
	controller->pending_command = 0;

	switch (command) {
	case CMD_WRITE_CTR:
		controller->ctr = data;
		return false;
	case CMD_WRITE_OUTPUT_PORT:
		controller->output_port = data;
		return !(data & OUTPUT_PORT_RESET_HIGH);
	case CMD_WRITE_KEYBOARD_OUTPUT:
		i8042_queue_keyboard(controller, data);
		return false;
	case CMD_WRITE_AUX_OUTPUT:
		i8042_queue(controller, data, STATUS_AUX_DATA);
		return false;
	case CMD_WRITE_AUX_DEVICE:
		ps2_mouse_write(&controller->mouse, data);
		return false;
	default:
		ps2_keyboard_write(&controller->keyboard, data);
		return false;
	}
}

static void i8042_data_read(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t size)
{
	struct i8042 *controller = opaque;

	(void)offset;
	(void)size; /* the range is one port wide: size is 1 */
	pthread_mutex_lock(&controller->lock);
	bool consumed = controller->output_full;

	data[0] = i8042_read_data(controller);
	pthread_mutex_unlock(&controller->lock);

	if (consumed)
		i8042_update_irqs(controller, true);
}

static void i8042_data_write(void *opaque, uint64_t offset,
			     const uint8_t *data, uint32_t size)
{
	struct i8042 *controller = opaque;

	(void)offset;
	(void)size;
	pthread_mutex_lock(&controller->lock);
	bool reset = i8042_write_data(controller, data[0]);
	pthread_mutex_unlock(&controller->lock);

	i8042_update_irqs(controller, false);
	if (reset && controller->reset_requested)
		controller->reset_requested(controller->opaque);
}

static void i8042_command_read(void *opaque, uint64_t offset, uint8_t *data,
			       uint32_t size)
{
	struct i8042 *controller = opaque;

	(void)offset;
	(void)size;
	pthread_mutex_lock(&controller->lock);
	data[0] = i8042_read_status(controller);
	pthread_mutex_unlock(&controller->lock);
}

static void i8042_command_write(void *opaque, uint64_t offset,
				const uint8_t *data, uint32_t size)
{
	struct i8042 *controller = opaque;

	(void)offset;
	(void)size;
	pthread_mutex_lock(&controller->lock);
	bool reset = i8042_write_command(controller, data[0]);
	pthread_mutex_unlock(&controller->lock);

	i8042_update_irqs(controller, false);
	if (reset && controller->reset_requested)
		controller->reset_requested(controller->opaque);
}

bool i8042_key_event(struct i8042 *controller, uint16_t usage, bool pressed)
{
	pthread_mutex_lock(&controller->lock);
	bool taken = ps2_keyboard_key(&controller->keyboard, usage, pressed);
	pthread_mutex_unlock(&controller->lock);
	i8042_update_irqs(controller, false);
	return taken;
}

void i8042_mouse_event(struct i8042 *controller, int32_t dx, int32_t dy,
		       int32_t dz, uint8_t buttons)
{
	pthread_mutex_lock(&controller->lock);
	ps2_mouse_event(&controller->mouse, dx, dy, dz, buttons);
	pthread_mutex_unlock(&controller->lock);
	i8042_update_irqs(controller, false);
}

uint8_t i8042_keyboard_leds(struct i8042 *controller)
{
	pthread_mutex_lock(&controller->lock);
	uint8_t leds = controller->keyboard.leds;
	pthread_mutex_unlock(&controller->lock);
	return leds;
}

static const struct bus_device_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_device_ops i8042_command_ops = {
	.read = i8042_command_read,
	.write = i8042_command_write,
};

int i8042_attach(struct i8042 *controller, struct bus *pio_bus,
		 uint16_t data_port, uint16_t command_port)
{
	int ret = bus_register(pio_bus, data_port, 1, &i8042_data_ops,
			       controller, "i8042");

	if (ret)
		return ret;
	ret = bus_register(pio_bus, command_port, 1, &i8042_command_ops,
			   controller, "i8042");
	if (ret)
		bus_unregister(pio_bus, data_port);
	return ret;
}

/*
 * Saved: the controller's registers, its output register and its own
 * queue, then the keyboard's and the mouse's state with their buffers,
 * each queue oldest byte first. Everything read back is checked (queue
 * lengths against their limits, the mouse's settings against their
 * ranges) before any of it is applied.
 */
struct i8042_saved_queue {
	uint8_t bytes[PS2_QUEUE_CAPACITY];
	unsigned int count;
};

static void save_ps2_queue(const struct ps2_queue *queue,
			   struct i8042_saved_queue *saved)
{
	saved->count = queue->count;
	for (unsigned int i = 0; i < queue->count; i++)
		saved->bytes[i] = queue->bytes[(queue->head + i) %
					       PS2_QUEUE_CAPACITY];
}

static void restore_ps2_queue(struct ps2_queue *queue,
			      const struct i8042_saved_queue *saved)
{
	queue->head = 0;
	queue->count = saved->count;
	memcpy(queue->bytes, saved->bytes, saved->count);
}

/* The fields of the state, bound to where they are saved from or read
 * into; the same table serves both ways. */
struct i8042_fields {
	uint8_t ctr, output_port, status_flags, pending_command, last_output;
	bool output_full, translated_break;
	uint8_t output_data, output_status;
	unsigned int controller_count;
	uint8_t controller_queue[2 * CONTROLLER_QUEUE_SIZE];
	struct ps2_keyboard keyboard;
	struct i8042_saved_queue keyboard_queue;
	struct ps2_mouse mouse;
	struct i8042_saved_queue mouse_queue;
	uint32_t motion[3]; /* the mouse's dx, dy, dz as 32-bit patterns */
};

#define I8042_REGISTERS(f)                                                   \
	{                                                                     \
		DEVICE_REGISTER("ctr", (f)->ctr),                             \
		DEVICE_REGISTER("output-port", (f)->output_port),             \
		DEVICE_REGISTER("status-flags", (f)->status_flags),           \
		DEVICE_REGISTER("pending-command", (f)->pending_command),     \
		DEVICE_REGISTER("last-output", (f)->last_output),             \
		DEVICE_REGISTER("output-full", (f)->output_full),             \
		DEVICE_REGISTER("translated-break", (f)->translated_break),   \
		DEVICE_REGISTER("output-data", (f)->output_data),             \
		DEVICE_REGISTER("output-status", (f)->output_status),         \
		DEVICE_REGISTER("queue-count", (f)->controller_count),        \
		DEVICE_REGISTER("keyboard-pending", (f)->keyboard.pending_command), \
		DEVICE_REGISTER("keyboard-scanning", (f)->keyboard.scanning), \
		DEVICE_REGISTER("keyboard-leds", (f)->keyboard.leds),         \
		DEVICE_REGISTER("keyboard-typematic", (f)->keyboard.typematic), \
		DEVICE_REGISTER("keyboard-last-sent", (f)->keyboard.last_sent), \
		DEVICE_REGISTER("keyboard-count", (f)->keyboard_queue.count), \
		DEVICE_REGISTER("mouse-pending", (f)->mouse.pending_command), \
		DEVICE_REGISTER("mouse-id", (f)->mouse.id),                   \
		DEVICE_REGISTER("mouse-reporting", (f)->mouse.reporting),     \
		DEVICE_REGISTER("mouse-remote", (f)->mouse.remote),           \
		DEVICE_REGISTER("mouse-wrap", (f)->mouse.wrap),               \
		DEVICE_REGISTER("mouse-scaling", (f)->mouse.scaling_2_to_1),  \
		DEVICE_REGISTER("mouse-resolution", (f)->mouse.resolution),   \
		DEVICE_REGISTER("mouse-sample-rate", (f)->mouse.sample_rate), \
		DEVICE_REGISTER("mouse-buttons", (f)->mouse.buttons),         \
		DEVICE_REGISTER("mouse-changed", (f)->mouse.changed),         \
		DEVICE_REGISTER("mouse-last-sent", (f)->mouse.last_sent),     \
		DEVICE_REGISTER("mouse-dx", (f)->motion[0]),                  \
		DEVICE_REGISTER("mouse-dy", (f)->motion[1]),                  \
		DEVICE_REGISTER("mouse-dz", (f)->motion[2]),                  \
		DEVICE_REGISTER("mouse-count", (f)->mouse_queue.count),       \
	}

static int i8042_save(void *opaque, struct device_state_writer *writer)
{
	struct i8042 *controller = opaque;
	struct i8042_fields fields = { 0 };
	const struct device_register registers[] = I8042_REGISTERS(&fields);

	pthread_mutex_lock(&controller->lock);
	fields.ctr = controller->ctr;
	fields.output_port = controller->output_port;
	fields.status_flags = controller->status_flags;
	fields.pending_command = controller->pending_command;
	fields.last_output = controller->last_output;
	fields.output_full = controller->output_full;
	fields.translated_break = controller->translated_break;
	fields.output_data = controller->output.data;
	fields.output_status = controller->output.status;
	fields.controller_count = controller->queue_count;
	for (unsigned int i = 0; i < controller->queue_count; i++) {
		const struct i8042_output *output = &controller->queue[
			(controller->queue_head + i) % CONTROLLER_QUEUE_SIZE];
		fields.controller_queue[2 * i] = output->data;
		fields.controller_queue[2 * i + 1] = output->status;
	}
	fields.keyboard = controller->keyboard;
	save_ps2_queue(&controller->keyboard.queue, &fields.keyboard_queue);
	fields.mouse = controller->mouse;
	save_ps2_queue(&controller->mouse.queue, &fields.mouse_queue);
	memcpy(&fields.motion[0], &controller->mouse.dx, sizeof(uint32_t));
	memcpy(&fields.motion[1], &controller->mouse.dy, sizeof(uint32_t));
	memcpy(&fields.motion[2], &controller->mouse.dz, sizeof(uint32_t));
	pthread_mutex_unlock(&controller->lock);

	int result = device_save_registers(writer, registers,
					   ARRAY_SIZE(registers));
	if (!result)
		result = writer->put_bytes(writer, "queue", fields.controller_queue,
					   sizeof(fields.controller_queue));
	if (!result)
		result = writer->put_bytes(writer, "keyboard-queue",
					   fields.keyboard_queue.bytes,
					   PS2_QUEUE_CAPACITY);
	if (!result)
		result = writer->put_bytes(writer, "mouse-queue",
					   fields.mouse_queue.bytes,
					   PS2_QUEUE_CAPACITY);
	return result;
}

static int i8042_restore(void *opaque, struct device_state_reader *reader)
{
	struct i8042 *controller = opaque;
	struct i8042_fields fields = { 0 };
	const struct device_register registers[] = I8042_REGISTERS(&fields);

	/* The parts no register names keep their power-on values. */
	ps2_keyboard_init(&fields.keyboard);
	ps2_mouse_init(&fields.mouse);
	int result = device_restore_registers(reader, registers,
					      ARRAY_SIZE(registers));
	if (!result)
		result = reader->get_bytes(reader, "queue", fields.controller_queue,
					   sizeof(fields.controller_queue));
	if (!result)
		result = reader->get_bytes(reader, "keyboard-queue",
					   fields.keyboard_queue.bytes,
					   PS2_QUEUE_CAPACITY);
	if (!result)
		result = reader->get_bytes(reader, "mouse-queue",
					   fields.mouse_queue.bytes,
					   PS2_QUEUE_CAPACITY);
	if (result)
		return result;
	if (fields.controller_count > CONTROLLER_QUEUE_SIZE ||
	    fields.keyboard_queue.count > fields.keyboard.queue.limit ||
	    fields.mouse_queue.count > fields.mouse.queue.limit ||
	    fields.mouse.resolution > 3)
		return -EINVAL;

	pthread_mutex_lock(&controller->lock);
	controller->ctr = fields.ctr;
	controller->output_port = fields.output_port;
	controller->status_flags = fields.status_flags;
	controller->pending_command = fields.pending_command;
	controller->last_output = fields.last_output;
	controller->output_full = fields.output_full;
	controller->translated_break = fields.translated_break;
	controller->output = (struct i8042_output){ .data = fields.output_data,
						    .status = fields.output_status };
	controller->queue_head = 0;
	controller->queue_count = fields.controller_count;
	for (unsigned int i = 0; i < fields.controller_count; i++)
		controller->queue[i] = (struct i8042_output){
			.data = fields.controller_queue[2 * i],
			.status = fields.controller_queue[2 * i + 1] };
	controller->keyboard = fields.keyboard;
	restore_ps2_queue(&controller->keyboard.queue, &fields.keyboard_queue);
	controller->mouse = fields.mouse;
	restore_ps2_queue(&controller->mouse.queue, &fields.mouse_queue);
	memcpy(&controller->mouse.dx, &fields.motion[0], sizeof(uint32_t));
	memcpy(&controller->mouse.dy, &fields.motion[1], sizeof(uint32_t));
	memcpy(&controller->mouse.dz, &fields.motion[2], sizeof(uint32_t));
	pthread_mutex_unlock(&controller->lock);
	/* The lines to the levels the state calls for. */
	i8042_update_irqs(controller, false);
	return 0;
}

static const struct device_ops i8042_record_ops = {
	.save = i8042_save,
	.restore = i8042_restore,
	.state_version = 2,
};

struct device_record i8042_record(struct i8042 *controller, const char *name)
{
	return (struct device_record){ .name = name, .ops = &i8042_record_ops,
				       .opaque = controller };
}
