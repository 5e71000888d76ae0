/*
 * What the selftest guest's modes share: port I/O and the TSC as CPL3 uses
 * them (IOPL 3 and an all-allowing I/O bitmap, set up by selftest.c), the
 * COM1 console, command-line words, and the modes kept in files of their
 * own. Everything here runs at CPL3 unless it says otherwise.
 */
#ifndef VESSEL_GUESTS_SELFTEST_H
#define VESSEL_GUESTS_SELFTEST_H

#include <stddef.h>
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t value)
{
	__asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value)
{
	__asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t value)
{
	__asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t value;
	__asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t value;
	__asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
	return value;
}

static inline uint64_t rdtsc(void)
{
	uint32_t low, high;
	__asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
	return ((uint64_t)high << 32) | low;
}

/* Keeps the compiler from moving memory accesses across it; x86 keeps
 * loads and stores to RAM in order except a load passing an older store. */
static inline void compiler_barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

/* Orders an earlier store before a later load (Intel SDM vol. 3 §9.2.2). */
static inline void full_barrier(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

void *memset(void *destination, int value, size_t size);

void print(const char *text);
void print_decimal(uint64_t value, int min_digits);

/* The word after the one at text, skipping spaces. */
const char *next_word(const char *text);
/* Is the word at text (up to a space or the end) equal to word? */
int word_is(const char *text, const char *word);
/* Parses the decimal number at *text, if one is there, and steps past it:
 * 1 when it did, 0 (value untouched) when no digit is there. */
int parse_decimal(const char **text, uint64_t *value);

/* mode=flood (flood.c); arguments are the words after the mode. */
void run_flood(const char *arguments);

#endif
