/*
 * Little-endian loads and stores at byte offsets, for the guest's tables and
 * for the headers of kernel files.
 *
 * Promise: every access goes through memcpy, so neither the alignment of the
 * buffer nor the host's strict-aliasing rules matter. Callers check bounds.
 */
#ifndef VESSEL_FIRMWARE_LITTLE_ENDIAN_H
#define VESSEL_FIRMWARE_LITTLE_ENDIAN_H

#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "firmware/ assumes a little-endian (x86_64) host"
#endif

static inline uint16_t le16_load(const uint8_t *bytes)
{
	uint16_t value;

	memcpy(&value, bytes, sizeof(value));
	return value;
}

static inline uint32_t le32_load(const uint8_t *bytes)
{
	uint32_t value;

	memcpy(&value, bytes, sizeof(value));
	return value;
}

static inline uint64_t le64_load(const uint8_t *bytes)
{
	uint64_t value;

	memcpy(&value, bytes, sizeof(value));
	return value;
}

static inline void le16_store(uint8_t *bytes, uint16_t value)
{
	memcpy(bytes, &value, sizeof(value));
}

static inline void le32_store(uint8_t *bytes, uint32_t value)
{
	memcpy(bytes, &value, sizeof(value));
}

static inline void le64_store(uint8_t *bytes, uint64_t value)
{
	memcpy(bytes, &value, sizeof(value));
}

#endif
