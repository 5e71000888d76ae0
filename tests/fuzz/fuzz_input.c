#include "fuzz_input.h"

bool fuzz_input_empty(const struct fuzz_input *input)
{
	return input->size == 0;
}

static uint64_t take_le(struct fuzz_input *input, unsigned int bytes)
{
	uint64_t value = 0;

	for (unsigned int i = 0; i < bytes && input->size; i++) {
		value |= (uint64_t)input->data[0] << (8 * i);
		input->data++;
		input->size--;
	}
	return value;
}

uint8_t fuzz_take_u8(struct fuzz_input *input)
{
	return (uint8_t)take_le(input, 1);
}

uint16_t fuzz_take_u16(struct fuzz_input *input)
{
	return (uint16_t)take_le(input, 2);
}

uint32_t fuzz_take_u32(struct fuzz_input *input)
{
	return (uint32_t)take_le(input, 4);
}

uint64_t fuzz_take_u64(struct fuzz_input *input)
{
	return take_le(input, 8);
}

size_t fuzz_take_bytes(struct fuzz_input *input, size_t len,
		       const uint8_t **bytes)
{
	if (len > input->size)
		len = input->size;
	*bytes = input->data;
	input->data += len;
	input->size -= len;
	return len;
}
