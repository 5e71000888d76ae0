#include "fuzz_port_io.h"

void fuzz_port_access(struct bus *bus, uint64_t base, uint64_t span,
		      struct fuzz_input *input)
{
	static const uint32_t sizes[] = { 1, 1, 2, 4 };
	uint8_t kind = fuzz_take_u8(input);
	uint32_t size = sizes[(kind >> 1) & 3];
	uint64_t port = base + fuzz_take_u8(input) % span;
	uint32_t value = fuzz_take_u32(input);
	uint8_t data[4];

	if (kind & 1) {
		bus_read(bus, port, data, size);
		return;
	}
	for (uint32_t i = 0; i < size; i++)
		data[i] = (uint8_t)(value >> (8 * i));
	bus_write(bus, port, data, size);
}
