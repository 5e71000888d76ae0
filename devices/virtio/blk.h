/*
 * virtio-blk (virtio 1.2 §5.2): request queues, one or one per vCPU
 * (VIRTIO_BLK_F_MQ), backed by a host disk.
 *
 * Promise: every request header, segment and buffer layout comes from the
 * guest and is checked before the disk sees it; a bad request gets
 * VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP and leaves the image untouched.
 * Disk I/O never blocks the event thread (see ../disk.h); completions
 * come back on it. reset() returns only once no request is in flight, and
 * nothing finished after a reset reaches the driver's rings.
 */
#ifndef VESSEL_DEVICES_VIRTIO_BLK_H
#define VESSEL_DEVICES_VIRTIO_BLK_H

#include "../device_context.h"
#include "../disk.h"
#include "virtio.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP 1
#define VIRTIO_BLK_SECTOR_SIZE 512
#define VIRTIO_BLK_ID_BYTES 20

/* Offsets in the configuration space (§5.2.4), little-endian. */
#define VIRTIO_BLK_CONFIG_CAPACITY 0 /* le64, in 512-byte sectors */
#define VIRTIO_BLK_CONFIG_SEG_MAX 12 /* le32 */
#define VIRTIO_BLK_CONFIG_BLK_SIZE 20 /* le32 */
#define VIRTIO_BLK_CONFIG_NUM_QUEUES 34 /* le16 */
#define VIRTIO_BLK_CONFIG_MAX_DISCARD_SECTORS 36 /* le32 */
#define VIRTIO_BLK_CONFIG_MAX_DISCARD_SEG 40 /* le32 */
#define VIRTIO_BLK_CONFIG_DISCARD_SECTOR_ALIGNMENT 44 /* le32 */
#define VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SECTORS 48 /* le32 */
#define VIRTIO_BLK_CONFIG_MAX_WRITE_ZEROES_SEG 52 /* le32 */
#define VIRTIO_BLK_CONFIG_WRITE_ZEROES_MAY_UNMAP 56 /* u8 */
#define VIRTIO_BLK_CONFIG_SIZE 60

struct virtio_blk;

/* A virtio-blk device on disk with queue_count request queues (1 to
 * VIRTIO_MAX_QUEUES; more than one offers VIRTIO_BLK_F_MQ), which the
 * caller keeps open until virtio_blk_destroy. A request's chain and its
 * interrupt go back on the queue it came from. The device watches
 * disk_completion_fd through context. NULL with errno set on failure
 * (EINVAL for a queue count out of range). */
struct virtio_blk *virtio_blk_create(struct disk *disk,
				     unsigned int queue_count,
				     const struct device_context *context);

/* What the transport presents. */
struct virtio_device *virtio_blk_device(struct virtio_blk *blk);

/* Waits for requests in flight, stops watching the disk, frees. */
void virtio_blk_destroy(struct virtio_blk *blk);

#endif
