/*
 * A fuzz input read as a sequence of operations: each target takes an
 * operation code, then its operands, until the input runs out.
 *
 * Promise: reading past the end never fails; it yields zeros (and empty
 * byte runs), so every input, however short, is a complete program.
 */
#ifndef VESSEL_TESTS_FUZZ_FUZZ_INPUT_H
#define VESSEL_TESTS_FUZZ_FUZZ_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t *data;
	size_t size;
};

bool fuzz_input_empty(const struct fuzz_input *input);

/* Little-endian integers, as the device registers and rings are. */
uint8_t fuzz_take_u8(struct fuzz_input *input);
uint16_t fuzz_take_u16(struct fuzz_input *input);
uint32_t fuzz_take_u32(struct fuzz_input *input);
uint64_t fuzz_take_u64(struct fuzz_input *input);

/* Up to len of the next bytes, in place: how many there were. */
size_t fuzz_take_bytes(struct fuzz_input *input, size_t len,
		       const uint8_t **bytes);

#endif
