/*
 * The controller follows the IBM PS/2 Technical Reference (keyboard/auxiliary
 * device controller: status register, commands 0x20-0xFF) and the keyboard
 * the IBM PS/2 keyboard command set.
 *
 * Model: a keyboard is attached (it answers its commands, sends no keys yet)
 * and the auxiliary port exists with no mouse plugged in. Bytes for the
 * guest wait in one output queue; its head is the output buffer the status
 * register describes. A byte sent to the absent mouse is answered like real
 * hardware does: 0xFE with the timeout bit, so a mouse driver gives up at
 * its first command instead of waiting for its timeouts.
 */
#include "i8042.h"

#include "array.h"
#include "device_state.h"

#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define STATUS_OUTPUT_FULL 0x01
#define STATUS_SYSTEM_FLAG 0x04
#define STATUS_LAST_WAS_COMMAND 0x08
#define STATUS_NOT_INHIBITED 0x10 /* keylock off */
#define STATUS_AUX_DATA 0x20
#define STATUS_TIMEOUT 0x40

#define CTR_KEYBOARD_INTERRUPT 0x01
#define CTR_AUX_INTERRUPT 0x02
#define CTR_SYSTEM_FLAG 0x04
#define CTR_KEYBOARD_DISABLED 0x10
#define CTR_AUX_DISABLED 0x20
#define CTR_TRANSLATE 0x40
/* What a PC BIOS leaves behind with no mouse in use. */
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

/* Keyboard commands (port 0x60). */
#define KBD_SET_LEDS 0xed
#define KBD_ECHO 0xee
#define KBD_SCANCODE_SET 0xf0
#define KBD_IDENTIFY 0xf2
#define KBD_TYPEMATIC 0xf3
#define KBD_RESET 0xff

#define KBD_ACK 0xfa
#define KBD_SELF_TEST_PASSED 0xaa
#define KBD_ID_FIRST 0xab
#define KBD_ID_SECOND 0x83
#define KBD_ID_SECOND_TRANSLATED 0x41
#define KBD_DEFAULT_SCANCODE_SET 2

/* What the controller reports for a byte sent to an absent mouse. */
#define AUX_NO_DEVICE 0xfe

#define OUTPUT_QUEUE_SIZE 16

struct i8042_output {
	uint8_t data;
	uint8_t status; /* STATUS_AUX_DATA and STATUS_TIMEOUT for this byte */
};

struct i8042 {
	pthread_mutex_t lock; /* everything down to the output queue */
	uint8_t ctr; /* controller command byte */
	uint8_t output_port;
	uint8_t status_flags; /* STATUS_LAST_WAS_COMMAND */
	uint8_t pending_command; /* controller command awaiting its data byte */
	uint8_t keyboard_pending; /* keyboard command awaiting its argument */
	uint8_t scancode_set;
	uint8_t last_output; /* what the data port reads when nothing waits */
	struct i8042_output queue[OUTPUT_QUEUE_SIZE];
	unsigned int queue_head;
	unsigned int queue_count;

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
	controller->scancode_set = KBD_DEFAULT_SCANCODE_SET;
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

/* Queues a byte for the guest; status carries STATUS_AUX_DATA for bytes
 * from the auxiliary port. A full queue drops the byte, as a keyboard
 * whose own buffer overflows does. */
static void i8042_queue(struct i8042 *controller, uint8_t data, uint8_t status)
{
	if (controller->queue_count == OUTPUT_QUEUE_SIZE)
		return;
	unsigned int tail = (controller->queue_head + controller->queue_count) %
			    OUTPUT_QUEUE_SIZE;

	controller->queue[tail] = (struct i8042_output){ data, status };
	controller->queue_count++;
}

/* Bytes from the keyboard and the controller's own replies share the
 * keyboard's interrupt line. */
static void i8042_queue_keyboard(struct i8042 *controller, uint8_t data)
{
	i8042_queue(controller, data, 0);
}

/* The levels each line should have: the output buffer holds a byte from
 * that port and the command byte enables its interrupt. */
static void i8042_levels(const struct i8042 *controller, bool *keyboard,
			 bool *mouse)
{
	*keyboard = false;
	*mouse = false;
	if (controller->queue_count == 0)
		return;
	if (controller->queue[controller->queue_head].status & STATUS_AUX_DATA)
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
	if (controller->queue_count > 0)
		status |= STATUS_OUTPUT_FULL |
			  controller->queue[controller->queue_head].status;
	return status;
}

static uint8_t i8042_read_data(struct i8042 *controller)
{
	if (controller->queue_count > 0) {
		controller->last_output =
			controller->queue[controller->queue_head].data;
		controller->queue_head =
			(controller->queue_head + 1) % OUTPUT_QUEUE_SIZE;
		controller->queue_count--;
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

/* A byte for the keyboard itself. */
static void i8042_keyboard_write(struct i8042 *controller, uint8_t data)
{
	uint8_t command = controller->keyboard_pending;

	controller->keyboard_pending = 0;
	if (command == KBD_SCANCODE_SET) {
		/* Argument 0 asks which set is in use; 1-3 select one. */
		i8042_queue_keyboard(controller, KBD_ACK);
		if (data == 0)
			i8042_queue_keyboard(controller,
					     controller->scancode_set);
		else if (data <= 3)
			controller->scancode_set = data;
		return;
	}
	if (command != 0) {
		/* The argument of set LEDs or typematic rate: there are no
		 * LEDs to light and no keys to repeat yet. */
		i8042_queue_keyboard(controller, KBD_ACK);
		return;
	}

	switch (data) {
	case KBD_RESET:
		controller->scancode_set = KBD_DEFAULT_SCANCODE_SET;
		i8042_queue_keyboard(controller, KBD_ACK);
		i8042_queue_keyboard(controller, KBD_SELF_TEST_PASSED);
		break;
	case KBD_IDENTIFY:
		/* An MF2 keyboard; the controller translates the second ID
		 * byte when translation is on (Linux accepts both forms). */
		i8042_queue_keyboard(controller, KBD_ACK);
		i8042_queue_keyboard(controller, KBD_ID_FIRST);
		i8042_queue_keyboard(controller,
				     (controller->ctr & CTR_TRANSLATE) ?
					     KBD_ID_SECOND_TRANSLATED :
					     KBD_ID_SECOND);
		break;
	case KBD_ECHO:
		i8042_queue_keyboard(controller, KBD_ECHO);
		break;
	case KBD_SET_LEDS:
	case KBD_SCANCODE_SET:
	case KBD_TYPEMATIC:
		controller->keyboard_pending = data;
		i8042_queue_keyboard(controller, KBD_ACK);
		break;
	default:
		/* Enable/disable scanning, defaults and the rest: with no
		 * keys to send, acknowledging them is all there is to do. */
		i8042_queue_keyboard(controller, KBD_ACK);
		break;
	}
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
		/* No mouse answers: the controller reports a timeout. */
		i8042_queue(controller, AUX_NO_DEVICE,
			    STATUS_AUX_DATA | STATUS_TIMEOUT);
		return false;
	default:
		i8042_keyboard_write(controller, data);
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
	bool consumed = controller->queue_count > 0;

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

static const struct bus_device_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

static const struct bus_device_ops i8042_command_ops = {
	.read = i8042_command_read,
	.write = i8042_command_write,
};

int i8042_attach(struct i8042 *controller, struct bus *pio_bus)
{
	int ret = bus_register(pio_bus, I8042_DATA_PORT, 1, &i8042_data_ops,
			       controller, "i8042");

	if (ret)
		return ret;
	ret = bus_register(pio_bus, I8042_COMMAND_PORT, 1, &i8042_command_ops,
			   controller, "i8042");
	if (ret)
		bus_unregister(pio_bus, I8042_DATA_PORT);
	return ret;
}

/* The controller's registers and its output queue, oldest byte first. */
static int i8042_save(void *opaque, struct device_state_writer *writer)
{
	struct i8042 *controller = opaque;
	uint8_t queue[2 * OUTPUT_QUEUE_SIZE] = { 0 };

	pthread_mutex_lock(&controller->lock);
	const struct device_register registers[] = {
		DEVICE_REGISTER("ctr", controller->ctr),
		DEVICE_REGISTER("output-port", controller->output_port),
		DEVICE_REGISTER("status-flags", controller->status_flags),
		DEVICE_REGISTER("pending-command", controller->pending_command),
		DEVICE_REGISTER("keyboard-pending", controller->keyboard_pending),
		DEVICE_REGISTER("scancode-set", controller->scancode_set),
		DEVICE_REGISTER("last-output", controller->last_output),
		DEVICE_REGISTER("output-count", controller->queue_count),
	};
	for (unsigned int i = 0; i < controller->queue_count; i++) {
		const struct i8042_output *output = &controller->queue[
			(controller->queue_head + i) % OUTPUT_QUEUE_SIZE];
		queue[2 * i] = output->data;
		queue[2 * i + 1] = output->status;
	}
	int result = device_save_registers(writer, registers,
					   ARRAY_SIZE(registers));
	pthread_mutex_unlock(&controller->lock);
	return result ? result : writer->put_bytes(writer, "output", queue,
						   sizeof(queue));
}

static int i8042_restore(void *opaque, struct device_state_reader *reader)
{
	struct i8042 *controller = opaque;
	uint8_t ctr, output_port, status_flags, pending_command,
		keyboard_pending, scancode_set, last_output;
	unsigned int count;
	uint8_t queue[2 * OUTPUT_QUEUE_SIZE];
	const struct device_register registers[] = {
		DEVICE_REGISTER("ctr", ctr),
		DEVICE_REGISTER("output-port", output_port),
		DEVICE_REGISTER("status-flags", status_flags),
		DEVICE_REGISTER("pending-command", pending_command),
		DEVICE_REGISTER("keyboard-pending", keyboard_pending),
		DEVICE_REGISTER("scancode-set", scancode_set),
		DEVICE_REGISTER("last-output", last_output),
		DEVICE_REGISTER("output-count", count),
	};
	int result = device_restore_registers(reader, registers,
					      ARRAY_SIZE(registers));
	if (!result)
		result = reader->get_bytes(reader, "output", queue, sizeof(queue));
	if (result)
		return result;
	if (count > OUTPUT_QUEUE_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&controller->lock);
	controller->ctr = ctr;
	controller->output_port = output_port;
	controller->status_flags = status_flags;
	controller->pending_command = pending_command;
	controller->keyboard_pending = keyboard_pending;
	controller->scancode_set = scancode_set;
	controller->last_output = last_output;
	controller->queue_head = 0;
	controller->queue_count = count;
	for (unsigned int i = 0; i < count; i++)
		controller->queue[i] = (struct i8042_output){
			.data = queue[2 * i], .status = queue[2 * i + 1] };
	pthread_mutex_unlock(&controller->lock);
	/* The lines to the levels the state calls for. */
	i8042_update_irqs(controller, false);
	return 0;
}

static const struct device_ops i8042_record_ops = {
	.save = i8042_save,
	.restore = i8042_restore,
	.state_version = 1,
};

struct device_record i8042_record(struct i8042 *controller, const char *name)
{
	return (struct device_record){ .name = name, .ops = &i8042_record_ops,
				       .opaque = controller };
}
