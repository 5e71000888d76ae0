/*
 * The guest and host sides a fuzz target of a virtio device needs, all
 * driven by the fuzz input: a virtio driver that lays out split rings in a
 * fake guest RAM (virtio 1.2 §2.7), the transport's side of a device
 * (negotiation, activation, reset, interrupts asked for, queues to serve
 * again), and an event thread that runs the handlers of the descriptors a
 * device asked it to watch.
 *
 * Promise: the driver writes only inside the fake RAM, but writes anything
 * there: descriptors with any address, length, flags and next, available
 * entries with any head, ring indexes and flags with any value, so every
 * check of the device is reached. The event thread is one per process, as
 * in vessel.
 */
#ifndef VESSEL_TESTS_FUZZ_FUZZ_DRIVER_H
#define VESSEL_TESTS_FUZZ_FUZZ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/device_context.h"
#include "devices/virtio/virtio.h"
#include "fuzz_input.h"

/* Guest RAM: each queue's rings at FUZZ_QUEUE_SPAN * index (descriptors,
 * then the available ring at +0x1000, the used ring at +0x2000), indirect
 * tables from FUZZ_TABLE_AREA, buffers from FUZZ_DATA_AREA to the end. */
#define FUZZ_RAM_SIZE (256u << 10)
#define FUZZ_QUEUE_SPAN 0x3000
#define FUZZ_QUEUE_MAX_SIZE 256
#define FUZZ_MAX_QUEUES 3
#define FUZZ_TABLE_AREA 0xa000
#define FUZZ_TABLE_ENTRIES 256
#define FUZZ_DATA_AREA 0x10000

struct fuzz_driver {
	uint8_t *ram;
	struct guest_memory memory;
};

/* Once per process: the RAM, zeroed. */
void fuzz_driver_init(struct fuzz_driver *driver);
/* Before each input: zeroes the RAM again. */
void fuzz_driver_clear(struct fuzz_driver *driver);

/* Puts queue index's rings in place with 2^(size_code % 9) entries (up to
 * FUZZ_QUEUE_MAX_SIZE) and marks it ready: virtqueue_validate's result. */
int fuzz_driver_queue_setup(struct fuzz_driver *driver,
			    struct virtqueue *queue, unsigned int index,
			    uint8_t size_code);

/* One driver operation on queue's rings, op taken modulo
 * FUZZ_DRIVER_OPERATIONS, its operands from input. */
#define FUZZ_DRIVER_OPERATIONS 6
void fuzz_driver_operate(struct fuzz_driver *driver,
			 const struct virtqueue *queue, unsigned int op,
			 struct fuzz_input *input);

/* The event thread: a device_context whose watch_fd, modify_fd and
 * unwatch_fd record the descriptors, over memory. */
struct device_context fuzz_event_context(const struct guest_memory *memory);
/* One turn of the event loop: runs the handler of each watched
 * descriptor that is ready; with expire_timers, first sleeps until every
 * armed timerfd among them has expired (a device's delayed work). */
void fuzz_events_run(bool expire_timers);

/* The transport's side of device: interrupts as virtqueue_should_notify
 * decides, queues to serve again, needs_reset recorded. */
void fuzz_transport_attach(struct virtio_device *device);
/* Negotiates the offered features the input picks (as the driver would,
 * and as FEATURES_OK checks), sets up each queue on driver, activates:
 * 0, or -EINVAL when the device refused. */
int fuzz_transport_start(struct virtio_device *device,
			 struct fuzz_driver *driver, struct fuzz_input *input);
/* Runs the queue_notify calls the device asked for with
 * serve_queue_later, a bounded number of rounds. */
void fuzz_transport_serve_later(struct virtio_device *device);
/* Whether the device called needs_reset since it was started. */
bool fuzz_transport_needs_reset(void);

#endif
