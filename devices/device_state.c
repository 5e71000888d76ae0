#include "device_state.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define MAX_REGISTERS 32

static uint64_t load(const struct device_register *reg)
{
	switch (reg->size) {
	case 1: return *(const uint8_t *)reg->field;
	case 2: return *(const uint16_t *)reg->field;
	case 4: return *(const uint32_t *)reg->field;
	default: return *(const uint64_t *)reg->field;
	}
}

static void store(const struct device_register *reg, uint64_t value)
{
	switch (reg->size) {
	case 1: *(uint8_t *)reg->field = (uint8_t)value; break;
	case 2: *(uint16_t *)reg->field = (uint16_t)value; break;
	case 4: *(uint32_t *)reg->field = (uint32_t)value; break;
	default: *(uint64_t *)reg->field = value; break;
	}
}

int device_save_registers(struct device_state_writer *writer,
			  const struct device_register *registers,
			  size_t count)
{
	for (size_t i = 0; i < count; i++) {
		int result = writer->put_u64(writer, registers[i].name,
					     load(&registers[i]));
		if (result)
			return result;
	}
	return 0;
}

int device_restore_registers(struct device_state_reader *reader,
			     const struct device_register *registers,
			     size_t count)
{
	uint64_t values[MAX_REGISTERS];

	if (count > MAX_REGISTERS)
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		int result = reader->get_u64(reader, registers[i].name, &values[i]);
		if (result)
			return result;
		if (registers[i].size < 8 &&
		    values[i] >> (8 * registers[i].size))
			return -EINVAL;
	}
	for (size_t i = 0; i < count; i++)
		store(&registers[i], values[i]);
	return 0;
}
