/*
 * The 8-bit checksum of firmware tables (ACPI 6.4 §5.2.5.3, §5.2.6; Intel
 * MultiProcessor Specification 1.4 §4.1, §4.2): all bytes of a table,
 * checksum byte included, sum to zero modulo 256.
 *
 * Promise: table_checksum() returns the value to store in the checksum byte
 * when that byte is zero while it runs.
 */
#ifndef VESSEL_FIRMWARE_TABLE_CHECKSUM_H
#define VESSEL_FIRMWARE_TABLE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint8_t table_checksum(const uint8_t *table, size_t length)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < length; i++)
		sum = (uint8_t)(sum + table[i]);
	return (uint8_t)-sum;
}

#endif
