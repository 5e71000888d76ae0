#include "bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bus_range {
	uint64_t base;
	uint64_t last; /* inclusive, so a range may end at 2^64 - 1 */
	const struct bus_device_ops *ops;
	void *opaque;
	const char *device_name;
};

struct bus {
	const char *name;
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, never overlapping */
	size_t count;
	size_t capacity;
};

struct bus *bus_create(const char *name)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return NULL;
	if (pthread_rwlock_init(&bus->lock, NULL)) {
		free(bus);
		return NULL;
	}
	bus->name = name;
	return bus;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->ranges);
	free(bus);
}

/* Index of the first range whose base is above addr (count if none). */
static size_t bus_upper_bound(const struct bus *bus, uint64_t addr)
{
	size_t low = 0;
	size_t high = bus->count;

	while (low < high) {
		size_t middle = low + (high - low) / 2;

		if (bus->ranges[middle].base <= addr)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t length,
		 const struct bus_device_ops *ops, void *opaque,
		 const char *device_name)
{
	if (length == 0 || base + (length - 1) < base || !ops)
		return -EINVAL;
	uint64_t last = base + (length - 1);
	int ret = 0;

	pthread_rwlock_wrlock(&bus->lock);
	size_t index = bus_upper_bound(bus, base);

	if ((index > 0 && bus->ranges[index - 1].last >= base) ||
	    (index < bus->count && bus->ranges[index].base <= last)) {
		ret = -EEXIST;
		goto out;
	}
	if (bus->count == bus->capacity) {
		size_t capacity = bus->capacity ? bus->capacity * 2 : 16;
		struct bus_range *ranges =
			realloc(bus->ranges, capacity * sizeof(*ranges));

		if (!ranges) {
			ret = -ENOMEM;
			goto out;
		}
		bus->ranges = ranges;
		bus->capacity = capacity;
	}
	for (size_t i = bus->count; i > index; i--)
		bus->ranges[i] = bus->ranges[i - 1];
	bus->ranges[index] = (struct bus_range){
		.base = base,
		.last = last,
		.ops = ops,
		.opaque = opaque,
		.device_name = device_name,
	};
	bus->count++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	size_t index = bus_upper_bound(bus, base);

	if (index > 0 && bus->ranges[index - 1].base == base) {
		for (size_t i = index; i < bus->count; i++)
			bus->ranges[i - 1] = bus->ranges[i];
		bus->count--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

/* Copies the range that wholly holds [addr, addr + size) into *found. The
 * copy lets the handler run after the lock is dropped, so a handler may
 * itself register or unregister ranges. */
static bool bus_lookup(struct bus *bus, uint64_t addr, uint32_t size,
		       struct bus_range *found)
{
	if (size == 0 || addr + (size - 1) < addr)
		return false;
	bool hit = false;

	pthread_rwlock_rdlock(&bus->lock);
	size_t index = bus_upper_bound(bus, addr);

	if (index > 0 && bus->ranges[index - 1].last >= addr + (size - 1)) {
		*found = bus->ranges[index - 1];
		hit = true;
	}
	pthread_rwlock_unlock(&bus->lock);
	return hit;
}

bool bus_read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t size)
{
	struct bus_range range;

	if (!bus_lookup(bus, addr, size, &range))
		return false;
	if (range.ops->read)
		range.ops->read(range.opaque, addr - range.base, data, size);
	else
		memset(data, 0xff, size); /* a write-only device floats */
	return true;
}

bool bus_write(struct bus *bus, uint64_t addr, const uint8_t *data,
	       uint32_t size)
{
	struct bus_range range;

	if (!bus_lookup(bus, addr, size, &range))
		return false;
	if (range.ops->write)
		range.ops->write(range.opaque, addr - range.base, data, size);
	return true;
}
