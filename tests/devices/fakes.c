#include "fakes.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

static void irq_recorder_set_level(void *opaque, uint32_t gsi, bool level)
{
	struct irq_recorder *recorder = opaque;

	if (recorder->calls < IRQ_RECORDER_HISTORY)
		recorder->history[recorder->calls] = level;
	recorder->calls++;
	recorder->level = level;
	recorder->last_gsi = gsi;
}

struct irq_line irq_recorder_line(struct irq_recorder *recorder, uint32_t gsi)
{
	return (struct irq_line){
		.set_level = irq_recorder_set_level,
		.opaque = recorder,
		.gsi = gsi,
	};
}

static uint64_t port_read(struct bus *bus, uint64_t port, uint32_t size)
{
	uint8_t data[4];
	uint64_t value = 0;

	cr_assert(bus_read(bus, port, data, size),
		  "no device claims port %#lx (%u bytes)", (unsigned long)port,
		  size);
	for (uint32_t i = 0; i < size; i++)
		value |= (uint64_t)data[i] << (8 * i);
	return value;
}

static void port_write(struct bus *bus, uint64_t port, uint64_t value,
		       uint32_t size)
{
	uint8_t data[4];

	for (uint32_t i = 0; i < size; i++)
		data[i] = (uint8_t)(value >> (8 * i));
	cr_assert(bus_write(bus, port, data, size),
		  "no device claims port %#lx (%u bytes)", (unsigned long)port,
		  size);
}

uint8_t port_read8(struct bus *bus, uint64_t port)
{
	return (uint8_t)port_read(bus, port, 1);
}

uint16_t port_read16(struct bus *bus, uint64_t port)
{
	return (uint16_t)port_read(bus, port, 2);
}

uint32_t port_read32(struct bus *bus, uint64_t port)
{
	return (uint32_t)port_read(bus, port, 4);
}

void port_write8(struct bus *bus, uint64_t port, uint8_t value)
{
	port_write(bus, port, value, 1);
}

void port_write16(struct bus *bus, uint64_t port, uint16_t value)
{
	port_write(bus, port, value, 2);
}

void port_write32(struct bus *bus, uint64_t port, uint32_t value)
{
	port_write(bus, port, value, 4);
}

/* x86 hosts are little-endian, like virtio's rings: plain copies. */
void ram_put16(uint8_t *ram, uint64_t gpa, uint16_t value)
{
	memcpy(ram + gpa, &value, sizeof(value));
}

void ram_put32(uint8_t *ram, uint64_t gpa, uint32_t value)
{
	memcpy(ram + gpa, &value, sizeof(value));
}

void ram_put64(uint8_t *ram, uint64_t gpa, uint64_t value)
{
	memcpy(ram + gpa, &value, sizeof(value));
}

uint16_t ram_get16(const uint8_t *ram, uint64_t gpa)
{
	uint16_t value;

	memcpy(&value, ram + gpa, sizeof(value));
	return value;
}

uint32_t ram_get32(const uint8_t *ram, uint64_t gpa)
{
	uint32_t value;

	memcpy(&value, ram + gpa, sizeof(value));
	return value;
}

void image_read(const char *path, uint64_t offset, void *buffer, size_t len)
{
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, buffer, len, (off_t)offset), (ssize_t)len);
	close(fd);
}

void image_fill(const char *path, size_t size, uint8_t byte)
{
	uint8_t *data = malloc(size);
	int fd = open(path, O_WRONLY);

	cr_assert_not_null(data);
	memset(data, byte, size);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, data, size, 0), (ssize_t)size);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	free(data);
}

blkcnt_t image_blocks(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	return st.st_blocks;
}

uint8_t *fake_ram_create(struct guest_memory *memory, size_t size)
{
	uint8_t *ram = calloc(1, size);

	cr_assert_not_null(ram);
	*memory = (struct guest_memory){
		.regions = { { .guest_phys_addr = 0, .size = size,
			       .host_addr = ram } },
		.region_count = 1,
	};
	return ram;
}
