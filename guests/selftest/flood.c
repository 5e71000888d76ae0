/*
 * mode=flood: a hostile virtio driver at CPL3. It keeps the virtio-rng
 * queue and the first virtio-blk disk's queue full at all times, putting
 * every chain back the moment the device returns it, with valid requests
 * and malformed ones mixed in; meanwhile it reads the second disk the way a
 * well-behaved driver does, one 4 KiB read at a time, and prints how many
 * of those completed each second. Nothing waits for an interrupt: every
 * queue's used ring is polled.
 *
 *   mode=flood [SECONDS] [calm]
 *
 * SECONDS (none or 0: until vessel is stopped) counts report lines, one a
 * second; calm leaves the rng and the first disk alone, for the second
 * disk's rate without the flood.
 *
 * The first disk needs 64 MiB at least, holding data there (not holes)
 * for its big reads to cost what they should; the second disk must hold
 * its own sector numbers: the first 8 bytes of every 512-byte sector are
 * its number, little-endian, and every read is checked against them.
 */
#include <stdint.h>

#include "selftest.h"
#include "virtio_pci.h"

/* virtio-blk requests (§5.2.6). */
#define BLK_T_IN 0
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_SECTOR_SIZE 512
#define BLK_ID_BYTES 20
#define BLK_CONFIG_CAPACITY 0 /* le64, sectors */

/* What the flood asks for: vessel's bound for one rng request (64 KiB)
 * and reads of a page. */
#define RNG_REQUEST_BYTES (64 * 1024)
#define READ_BYTES 4096
#define READ_SECTORS (READ_BYTES / BLK_SECTOR_SIZE)

#define RNG_QUEUE_SIZE 256
#define DISK_QUEUE_SIZE VIRTQUEUE_DRIVER_MAX_SIZE
#define CALM_QUEUE_SIZE 16
/* Every 16th rng request is malformed. */
#define RNG_MALFORMED_EVERY 16

/* The first disk's queue: BIG_READS big reads, then slots of four
 * descriptors (header, data, status, one spare) for the mix of small
 * requests. A big read's buffers all start one byte into the same MiB of
 * RAM: valid, but where the disk holds data (not holes), a cache=none disk
 * (O_DIRECT) needs an aligned copy of all 64 MiB of it unless vessel
 * bounds its bounce buffers. */
#define BIG_READS 4
#define BIG_READ_SEGMENTS 64
#define BIG_READ_DESCRIPTORS (BIG_READ_SEGMENTS + 2)
#define BIG_READ_SEGMENT_BYTES (1024 * 1024)
#define BIG_READ_BYTES ((uint64_t)BIG_READ_SEGMENTS * BIG_READ_SEGMENT_BYTES)
#define DISK_SLOT_DESCRIPTORS 4
#define DISK_SLOT_FIRST (BIG_READS * BIG_READ_DESCRIPTORS)
#define DISK_SLOTS ((DISK_QUEUE_SIZE - DISK_SLOT_FIRST) / DISK_SLOT_DESCRIPTORS)
#define DISK_SLOT_HEAD(slot) (DISK_SLOT_FIRST + (slot) * DISK_SLOT_DESCRIPTORS)

/* Far beyond any guest RAM vessel gives, and not a device either. */
#define OUT_OF_RAM_ADDRESS 0x7f0000000000ull

/* The i8254 PIT's channel 2, gated through port 0x61, times the TSC. */
#define PIT_HZ 1193182u
#define PIT_CHANNEL2_PORT 0x42
#define PIT_COMMAND_PORT 0x43
#define PIT_GATE_PORT 0x61
#define PIT_GATE2 0x01
#define PIT_SPEAKER 0x02
#define PIT_OUT2 0x20
#define PIT_CHANNEL2_MODE0 0xb0 /* channel 2, low then high byte, mode 0 */
#define PIT_CALIBRATION_TICKS (PIT_HZ / 20) /* 50 ms */
#define PIT_MAX_POLLS 10000000

struct blk_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* What the first disk's slots carry, by slot number modulo 8. */
enum disk_request_kind {
	DISK_READ_0, DISK_READ_1, DISK_READ_2, /* 4 KiB reads */
	DISK_GET_ID_0, DISK_GET_ID_1,
	DISK_LOOP, /* the data descriptor leads back to the header */
	DISK_OUT_OF_RAM, /* the data buffer is nowhere in RAM */
	DISK_BAD_HEADER, /* four kinds, by slot / 8 */
	DISK_REQUEST_KINDS,
};

/* Guest RAM the devices read and write: in a section the loader leaves
 * alone and no CPL0 code clears (the rings are cleared at set-up). */
static struct {
	struct virtqueue_memory rng_rings, disk_rings, calm_rings;
	uint8_t entropy[RNG_REQUEST_BYTES] __attribute__((aligned(4096)));
	uint8_t flood_data[READ_BYTES] __attribute__((aligned(4096)));
	uint8_t calm_data[READ_BYTES] __attribute__((aligned(4096)));
	/* One byte more, so that a read can start one byte in. */
	uint8_t big_data[BIG_READ_SEGMENT_BYTES + 1] __attribute__((aligned(4096)));
	struct blk_header big_header;
	uint8_t big_status[BIG_READS];
	struct blk_header disk_headers[DISK_SLOTS];
	struct blk_header calm_header;
	uint8_t disk_status[DISK_SLOTS];
	uint8_t calm_status;
	uint8_t id[BLK_ID_BYTES];
} memory __attribute__((section(".bss.buffers"), aligned(4096)));

struct flood {
	int flooding;
	uint64_t tsc_per_second;
	struct virtio_function rng, disk, calm;
	uint64_t disk_sectors, calm_sectors;
	uint64_t calm_sector; /* of the read in flight */
	/* Since the last report. */
	uint64_t rng_done, disk_done, calm_done, calm_wrong;
};

/* TSC ticks in 50 ms of the PIT's channel 2, counting down in mode 0
 * until its output goes high (the way Linux's pit_calibrate_tsc does). */
static uint64_t tsc_per_second(void)
{
	uint8_t gate = inb(PIT_GATE_PORT);

	outb(PIT_GATE_PORT, (uint8_t)((gate & ~PIT_SPEAKER) | PIT_GATE2));
	outb(PIT_COMMAND_PORT, PIT_CHANNEL2_MODE0);
	outb(PIT_CHANNEL2_PORT, PIT_CALIBRATION_TICKS & 0xff);
	outb(PIT_CHANNEL2_PORT, PIT_CALIBRATION_TICKS >> 8);
	uint64_t start = rdtsc();
	for (int polls = 0; !(inb(PIT_GATE_PORT) & PIT_OUT2); polls++)
		if (polls == PIT_MAX_POLLS)
			return 0;
	return (rdtsc() - start) * (PIT_HZ / PIT_CALIBRATION_TICKS);
}

static void set_descriptor(struct virtio_function *function, uint16_t index,
			   const volatile void *address, uint32_t length,
			   uint16_t flags, uint16_t next)
{
	function->rings->desc[index] = (struct virtq_desc){
		.addr = (uintptr_t)address,
		.len = length,
		.flags = flags,
		.next = next,
	};
}

/* One-descriptor chains of 64 KiB, all into the same buffer; every 16th a
 * descriptor that loops to itself or points outside RAM. */
static void build_rng_requests(struct virtio_function *rng)
{
	for (uint16_t slot = 0; slot < rng->size; slot++) {
		if (slot % RNG_MALFORMED_EVERY != RNG_MALFORMED_EVERY - 1)
			set_descriptor(rng, slot, memory.entropy,
				       RNG_REQUEST_BYTES, VIRTQ_DESC_F_WRITE, 0);
		else if (slot / RNG_MALFORMED_EVERY % 2)
			set_descriptor(rng, slot,
				       (void *)(uintptr_t)OUT_OF_RAM_ADDRESS,
				       RNG_REQUEST_BYTES, VIRTQ_DESC_F_WRITE, 0);
		else
			set_descriptor(rng, slot, memory.entropy,
				       RNG_REQUEST_BYTES,
				       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
				       slot);
		virtqueue_make_available(rng, slot);
	}
}

/* The malformed headers: too short, of no known type, past the disk's
 * end, and a chain with no status byte. */
static void build_bad_header(struct virtio_function *disk, uint16_t slot,
			     uint16_t head, uint64_t sectors)
{
	struct blk_header *header = &memory.disk_headers[slot];
	uint16_t data = (uint16_t)(head + 1), status = (uint16_t)(head + 2);

	*header = (struct blk_header){ .type = BLK_T_IN };
	switch (slot / DISK_REQUEST_KINDS % 4) {
	case 0:
		set_descriptor(disk, head, header, sizeof(*header) / 2,
			       VIRTQ_DESC_F_NEXT, status);
		break;
	case 1:
		header->type = 0xbad;
		set_descriptor(disk, head, header, sizeof(*header),
			       VIRTQ_DESC_F_NEXT, status);
		break;
	case 2:
		header->sector = sectors;
		set_descriptor(disk, head, header, sizeof(*header),
			       VIRTQ_DESC_F_NEXT, data);
		set_descriptor(disk, data, memory.flood_data, READ_BYTES,
			       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, status);
		break;
	default:
		set_descriptor(disk, head, header, sizeof(*header), 0, 0);
		return;
	}
	set_descriptor(disk, status, &memory.disk_status[slot], 1,
		       VIRTQ_DESC_F_WRITE, 0);
}

/* A big read of the disk's first 64 MiB: a header, BIG_READ_SEGMENTS
 * buffers, a status byte. */
static void build_big_read(struct virtio_function *disk, unsigned int index)
{
	uint16_t head = (uint16_t)(index * BIG_READ_DESCRIPTORS);
	uint16_t status = (uint16_t)(head + BIG_READ_DESCRIPTORS - 1);

	memory.big_header = (struct blk_header){ .type = BLK_T_IN };
	set_descriptor(disk, head, &memory.big_header, sizeof(memory.big_header),
		       VIRTQ_DESC_F_NEXT, (uint16_t)(head + 1));
	for (uint16_t segment = (uint16_t)(head + 1); segment < status; segment++)
		set_descriptor(disk, segment, memory.big_data + 1,
			       BIG_READ_SEGMENT_BYTES,
			       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			       (uint16_t)(segment + 1));
	set_descriptor(disk, status, &memory.big_status[index], 1,
		       VIRTQ_DESC_F_WRITE, 0);
	virtqueue_make_available(disk, head);
}

static void build_disk_request(struct virtio_function *disk, uint16_t slot,
			       uint64_t sectors)
{
	uint16_t head = (uint16_t)DISK_SLOT_HEAD(slot);
	uint16_t data = (uint16_t)(head + 1), status = (uint16_t)(head + 2);
	struct blk_header *header = &memory.disk_headers[slot];
	const volatile void *buffer = memory.flood_data;
	uint32_t length = READ_BYTES;

	*header = (struct blk_header){
		.type = BLK_T_IN,
		.sector = slot * READ_SECTORS % (sectors - READ_SECTORS + 1),
	};
	switch ((enum disk_request_kind)(slot % DISK_REQUEST_KINDS)) {
	case DISK_GET_ID_0:
	case DISK_GET_ID_1:
		header->type = BLK_T_GET_ID;
		buffer = memory.id;
		length = BLK_ID_BYTES;
		break;
	case DISK_LOOP:
		set_descriptor(disk, head, header, sizeof(*header),
			       VIRTQ_DESC_F_NEXT, data);
		set_descriptor(disk, data, buffer, length,
			       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, head);
		virtqueue_make_available(disk, head);
		return;
	case DISK_OUT_OF_RAM:
		buffer = (void *)(uintptr_t)OUT_OF_RAM_ADDRESS;
		break;
	case DISK_BAD_HEADER:
		build_bad_header(disk, slot, head, sectors);
		virtqueue_make_available(disk, head);
		return;
	default:
		break;
	}
	set_descriptor(disk, head, header, sizeof(*header), VIRTQ_DESC_F_NEXT,
		       data);
	set_descriptor(disk, data, buffer, length,
		       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, status);
	set_descriptor(disk, status, &memory.disk_status[slot], 1,
		       VIRTQ_DESC_F_WRITE, 0);
	virtqueue_make_available(disk, head);
}

static uint64_t disk_sectors(const struct virtio_function *disk)
{
	return virtio_function_config32(disk, BLK_CONFIG_CAPACITY) |
	       (uint64_t)virtio_function_config32(disk, BLK_CONFIG_CAPACITY + 4)
		       << 32;
}

/* Puts back every chain the device returned, as it came: a queue that
 * never runs dry. Returns how many came back. */
static uint64_t refill(struct virtio_function *function)
{
	uint32_t id, length;
	uint64_t returned = 0;

	while (virtqueue_take_used(function, &id, &length)) {
		returned++;
		if (id < function->size)
			virtqueue_make_available(function, (uint16_t)id);
	}
	virtqueue_kick(function, 0);
	return returned;
}

static void start_calm_read(struct flood *flood)
{
	struct virtio_function *calm = &flood->calm;

	memory.calm_header = (struct blk_header){
		.type = BLK_T_IN,
		.sector = flood->calm_sector,
	};
	memory.calm_status = 0xff;
	set_descriptor(calm, 0, &memory.calm_header, sizeof(memory.calm_header),
		       VIRTQ_DESC_F_NEXT, 1);
	set_descriptor(calm, 1, memory.calm_data, READ_BYTES,
		       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_descriptor(calm, 2, &memory.calm_status, 1, VIRTQ_DESC_F_WRITE, 0);
	virtqueue_make_available(calm, 0);
	virtqueue_kick(calm, 1);
}

/* The second disk's read, if done: checked, counted, and the next one
 * started. */
static void serve_calm_read(struct flood *flood)
{
	uint32_t id, length;
	uint64_t stamp = 0;

	if (!virtqueue_take_used(&flood->calm, &id, &length))
		return;
	for (int i = 0; i < 8; i++)
		stamp |= (uint64_t)memory.calm_data[i] << (8 * i);
	if (memory.calm_status != BLK_S_OK || stamp != flood->calm_sector)
		flood->calm_wrong++;
	flood->calm_done++;
	flood->calm_sector += READ_SECTORS;
	if (flood->calm_sector + READ_SECTORS > flood->calm_sectors)
		flood->calm_sector = 0;
	start_calm_read(flood);
}

/* A device that gave up on its queue says why the figures stopped. */
static void note_needs_reset(const struct virtio_function *function,
			     const char *name)
{
	if (function->common && virtio_function_needs_reset(function)) {
		print("selftest: flood: ");
		print(name);
		print(" needs a reset\n");
	}
}

static void report(struct flood *flood)
{
	note_needs_reset(&flood->rng, "the rng");
	note_needs_reset(&flood->disk, "the first disk");
	note_needs_reset(&flood->calm, "the second disk");
	print(flood->flooding ? "selftest: flood: " : "selftest: calm: ");
	print("second disk ");
	print_decimal(flood->calm_done, 1);
	print(" reads/s, ");
	print_decimal(flood->calm_wrong, 1);
	print(" wrong; rng ");
	print_decimal(flood->rng_done, 1);
	print(", first disk ");
	print_decimal(flood->disk_done, 1);
	print(" requests/s\n");
	flood->calm_done = flood->calm_wrong = 0;
	flood->rng_done = flood->disk_done = 0;
}

static int start_devices(struct flood *flood)
{
	if (virtio_function_start(&flood->calm, VIRTIO_TYPE_BLOCK, 1,
				  &memory.calm_rings, CALM_QUEUE_SIZE))
		return -1;
	flood->calm_sectors = disk_sectors(&flood->calm);
	if (flood->calm_sectors < READ_SECTORS) {
		print("selftest: flood: the second disk is smaller than a read\n");
		return -1;
	}
	if (!flood->flooding)
		return 0;
	if (virtio_function_start(&flood->disk, VIRTIO_TYPE_BLOCK, 0,
				  &memory.disk_rings, DISK_QUEUE_SIZE) ||
	    virtio_function_start(&flood->rng, VIRTIO_TYPE_RNG, 0,
				  &memory.rng_rings, RNG_QUEUE_SIZE))
		return -1;
	flood->disk_sectors = disk_sectors(&flood->disk);
	if (flood->disk_sectors * BLK_SECTOR_SIZE < BIG_READ_BYTES ||
	    flood->disk.size < DISK_QUEUE_SIZE) {
		print("selftest: flood: the first disk needs 64 MiB and a "
		      "queue of 1024\n");
		return -1;
	}
	for (unsigned int index = 0; index < BIG_READS; index++)
		build_big_read(&flood->disk, index);
	for (uint16_t slot = 0; slot < DISK_SLOTS; slot++)
		build_disk_request(&flood->disk, slot, flood->disk_sectors);
	build_rng_requests(&flood->rng);
	virtqueue_kick(&flood->disk, 1);
	virtqueue_kick(&flood->rng, 1);
	return 0;
}

void run_flood(const char *arguments)
{
	static struct flood flood;
	uint64_t seconds = 0;

	if (parse_decimal(&arguments, &seconds))
		arguments = next_word(arguments);
	flood.flooding = !word_is(arguments, "calm");
	flood.tsc_per_second = tsc_per_second();
	if (!flood.tsc_per_second) {
		print("selftest: flood: the PIT never counted down\n");
		return;
	}
	if (start_devices(&flood))
		return;
	print(flood.flooding ? "selftest: flood: flooding the rng and the first "
			       "disk, reading the second\n"
			     : "selftest: calm: reading the second disk\n");
	start_calm_read(&flood);
	uint64_t next_report = rdtsc() + flood.tsc_per_second;
	for (uint64_t reports = 0; seconds == 0 || reports < seconds;) {
		if (flood.flooding) {
			flood.rng_done += refill(&flood.rng);
			flood.disk_done += refill(&flood.disk);
		}
		serve_calm_read(&flood);
		if (rdtsc() >= next_report) {
			report(&flood);
			reports++;
			next_report += flood.tsc_per_second;
		}
	}
}
