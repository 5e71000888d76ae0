/* The AML encoder, byte for byte against ACPI 6.4 §20.2 and the resource
 * descriptor layouts of §6.4: what ACPICA in the guest must parse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/aml.h"

static uint8_t bytes[256];
static struct aml_builder aml;

static void setup(void)
{
	memset(bytes, 0xee, sizeof(bytes));
	aml_init(&aml, bytes, sizeof(bytes));
}

TestSuite(aml, .init = setup);

/* The builder's output equals expected, and nothing past it was touched. */
static void expect_bytes(const uint8_t *expected, size_t size)
{
	size_t length;

	cr_assert_eq(aml_finish(&aml, &length), 0);
	cr_assert_eq(length, size, "length %zu, expected %zu", length, size);
	for (size_t i = 0; i < size; i++)
		cr_expect_eq(bytes[i], expected[i], "byte %zu: 0x%02x, expected 0x%02x",
			     i, bytes[i], expected[i]);
	if (size < sizeof(bytes))
		cr_expect_eq(bytes[size], 0xee, "wrote past its length");
}

#define EXPECT_BYTES(...)                                                     \
	do {                                                                  \
		const uint8_t expected[] = { __VA_ARGS__ };                   \
		expect_bytes(expected, sizeof(expected));                     \
	} while (0)

Test(aml, integers_take_the_shortest_encoding)
{
	aml_integer(&aml, 0);
	aml_integer(&aml, 1);
	aml_integer(&aml, UINT64_MAX);
	aml_integer(&aml, 2);
	aml_integer(&aml, 0xff);
	aml_integer(&aml, 0x100);
	aml_integer(&aml, 0xffff);
	aml_integer(&aml, 0x10000);
	aml_integer(&aml, 0xffffffff);
	aml_integer(&aml, 0x100000000);
	EXPECT_BYTES(0x00, 0x01, 0xff,
		     0x0a, 0x02,
		     0x0a, 0xff,
		     0x0b, 0x00, 0x01,
		     0x0b, 0xff, 0xff,
		     0x0c, 0x00, 0x00, 0x01, 0x00,
		     0x0c, 0xff, 0xff, 0xff, 0xff,
		     0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
}

Test(aml, strings_end_in_a_null_char)
{
	aml_string(&aml, "Hi");
	aml_string(&aml, "");
	EXPECT_BYTES(0x0d, 'H', 'i', 0x00, 0x0d, 0x00);
}

Test(aml, names_are_padded_segments_with_prefixes)
{
	aml_name(&aml, "_S5_");
	aml_name(&aml, "_SB");
	aml_name(&aml, "\\_SB");
	aml_name(&aml, "\\_SB.PCI0");
	aml_name(&aml, "_SB.PCI0.S1");
	EXPECT_BYTES(0x08, '_', 'S', '5', '_',
		     0x08, '_', 'S', 'B', '_',
		     0x08, 0x5c, '_', 'S', 'B', '_',
		     0x08, 0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
		     0x08, 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
		     'S', '1', '_', '_');
}

Test(aml, invalid_names_are_refused)
{
	const char *names[] = { "", "\\", "PCI00", "0PCI", "pci0", "_SB..X",
				"_SB.", ".X", "A-B" };
	size_t length;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		setup();
		aml_name(&aml, names[i]);
		cr_expect_eq(aml_finish(&aml, &length), -EINVAL, "\"%s\"",
			     names[i]);
	}
}

/* ASL EISAID("PNP0A03") compiles to 0x030AD041 (§19.6.35). */
Test(aml, eisa_id_compresses_to_32_bits)
{
	uint32_t value;

	cr_assert_eq(aml_eisa_id_encode("PNP0A03", &value), 0);
	cr_expect_eq(value, 0x030ad041, "0x%08x", value);
	cr_assert_eq(aml_eisa_id_encode("PNP0A08", &value), 0);
	cr_expect_eq(value, 0x080ad041, "0x%08x", value);
	cr_expect_eq(aml_eisa_id_encode("PNP0a03", &value), -EINVAL);
	cr_expect_eq(aml_eisa_id_encode("PNP0A0", &value), -EINVAL);
	cr_expect_eq(aml_eisa_id_encode("PNP0A030", &value), -EINVAL);
	cr_expect_eq(aml_eisa_id_encode("P1P0A03", &value), -EINVAL);

	aml_eisa_id(&aml, "PNP0A03");
	EXPECT_BYTES(0x0c, 0x41, 0xd0, 0x0a, 0x03);
}

Test(aml, package_counts_its_elements)
{
	aml_name(&aml, "_S5_");
	aml_package_begin(&aml);
	aml_integer(&aml, 5);
	aml_integer(&aml, 5);
	aml_integer(&aml, 0);
	aml_package_begin(&aml); /* a nested package is one element */
	aml_string(&aml, "a");
	aml_end(&aml);
	aml_end(&aml);
	EXPECT_BYTES(0x08, '_', 'S', '5', '_',
		     0x12, 0x0d, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00,
		     0x12, 0x05, 0x01, 0x0d, 'a', 0x00);
}

Test(aml, package_of_more_than_255_elements_is_refused)
{
	size_t length;

	aml_package_begin(&aml);
	for (int i = 0; i < 256; i++)
		aml_integer(&aml, 0);
	aml_end(&aml);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL);
}

Test(aml, device_in_scope)
{
	aml_scope_begin(&aml, "\\_SB");
	aml_device_begin(&aml, "PCI0");
	aml_name(&aml, "_UID");
	aml_integer(&aml, 0);
	aml_end(&aml);
	aml_end(&aml);
	EXPECT_BYTES(0x10, 0x13, 0x5c, '_', 'S', 'B', '_',
		     0x5b, 0x82, 0x0b, 'P', 'C', 'I', '0',
		     0x08, '_', 'U', 'I', 'D', 0x00);
}

/*
 * A scope holding a four-character name and one string of n characters
 * (n + 2 bytes) has a body of n + 6 bytes after its PkgLength; returns
 * the AML, for PkgLength checks at the encoding boundaries.
 */
static uint8_t *scope_with_string(size_t n, size_t *length)
{
	size_t capacity = n + 16;
	uint8_t *out = malloc(capacity);
	char *string = malloc(n + 1);
	struct aml_builder big;

	cr_assert_not_null(out);
	cr_assert_not_null(string);
	memset(string, 'x', n);
	string[n] = '\0';
	aml_init(&big, out, capacity);
	aml_scope_begin(&big, "_SB_");
	aml_string(&big, string);
	aml_end(&big);
	cr_assert_eq(aml_finish(&big, length), 0, "string of %zu", n);
	free(string);
	return out;
}

/* The PkgLength bytes of a scope whose body after them is body bytes. */
static void expect_pkg_length(size_t body, const uint8_t *expected,
			      size_t expected_size)
{
	size_t length;
	uint8_t *out = scope_with_string(body - 6, &length);

	cr_expect_eq(length, 1 + expected_size + body, "body %zu", body);
	cr_expect_eq(out[0], 0x10, "ScopeOp");
	for (size_t i = 0; i < expected_size; i++)
		cr_expect_eq(out[1 + i], expected[i],
			     "body %zu, PkgLength byte %zu: 0x%02x, expected 0x%02x",
			     body, i, out[1 + i], expected[i]);
	cr_expect(memcmp(out + 1 + expected_size, "_SB_\x0dxxx", 8) == 0,
		  "content follows the PkgLength, body %zu", body);
	cr_expect_eq(out[length - 1], 0x00, "the string's NullChar last");
	free(out);
}

#define EXPECT_PKG_LENGTH(body, ...)                                          \
	do {                                                                  \
		const uint8_t expected[] = { __VA_ARGS__ };                   \
		expect_pkg_length(body, expected, sizeof(expected));          \
	} while (0)

/* §20.2.4: the length counts the PkgLength bytes themselves; one byte holds
 * up to 63, two up to 4095, three up to 1 MiB - 1, four up to 2^28 - 1. */
Test(aml, pkg_length_at_each_encoding_boundary)
{
	EXPECT_PKG_LENGTH(62, 63);                      /* 62 + 1 = 63 */
	EXPECT_PKG_LENGTH(63, 0x41, 0x04);              /* 63 + 2 = 65 */
	EXPECT_PKG_LENGTH(4093, 0x4f, 0xff);            /* 4095 */
	EXPECT_PKG_LENGTH(4094, 0x81, 0x00, 0x01);      /* 4097 */
	EXPECT_PKG_LENGTH(0xfffff - 3, 0x8f, 0xff, 0xff); /* 1 MiB - 1 */
	EXPECT_PKG_LENGTH(0xfffff - 2, 0xc1, 0x00, 0x00, 0x01); /* 1 MiB + 1 */
}

Test(aml, too_small_a_buffer_is_enospc_without_overflow)
{
	uint8_t small[16];
	struct aml_builder tight;
	size_t length;

	/* Room for the content, but not for the PkgLength aml_end() adds. */
	memset(small, 0xee, sizeof(small));
	aml_init(&tight, small, 10);
	aml_scope_begin(&tight, "_SB_");
	aml_integer(&tight, 0x1234);
	aml_string(&tight, "");
	aml_end(&tight);
	cr_expect_eq(aml_finish(&tight, &length), -ENOSPC);
	for (size_t i = 10; i < sizeof(small); i++)
		cr_expect_eq(small[i], 0xee, "byte %zu written", i);

	/* No room for a QWord integer; nothing after the first error. */
	aml_init(&tight, small, 8);
	aml_integer(&tight, 0x100000000);
	aml_integer(&tight, 0);
	cr_expect_eq(aml_finish(&tight, &length), -ENOSPC);
	cr_expect_eq(tight.length, 0);

	/* Scope (\_SB) { Device (PCI0) { ResourceTemplate () { WordIO } } }
	 * takes 36 bytes: Buffer 1 + 1 + 2 + 16 + 2 = 22, Device 2 + 1 + 4 +
	 * 22 = 29, Scope 1 + 1 + 5 + 29 = 36. Every smaller buffer fails
	 * cleanly, without a byte written past its end. */
	for (size_t capacity = 0; capacity <= 36; capacity++) {
		uint8_t out[48];
		int ret;

		memset(out, 0xee, sizeof(out));
		aml_init(&tight, out, capacity);
		aml_scope_begin(&tight, "\\_SB");
		aml_device_begin(&tight, "PCI0");
		aml_resource_template_begin(&tight);
		aml_word_io(&tight, 0, 0xcf7);
		aml_end(&tight);
		aml_end(&tight);
		aml_end(&tight);
		ret = aml_finish(&tight, &length);

		cr_expect_eq(ret, capacity < 36 ? -ENOSPC : 0, "capacity %zu",
			     capacity);
		for (size_t i = capacity; i < sizeof(out); i++)
			cr_expect_eq(out[i], 0xee, "capacity %zu, byte %zu",
				     capacity, i);
	}
	cr_expect_eq(length, 36);
}

Test(aml, unbalanced_or_misplaced_objects_are_refused)
{
	size_t length;

	aml_end(&aml);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL, "end without begin");

	setup();
	aml_scope_begin(&aml, "_SB_");
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL, "scope left open");

	setup();
	aml_word_io(&aml, 0, 1);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL,
		     "descriptor outside a template");

	setup();
	aml_resource_template_begin(&aml);
	aml_integer(&aml, 0);
	aml_end(&aml);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL,
		     "integer inside a template");

	setup();
	aml_resource_template_begin(&aml);
	aml_word_io(&aml, 2, 1);
	aml_end(&aml);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL, "min above max");

	setup();
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_package_begin(&aml);
	cr_expect_eq(aml_finish(&aml, &length), -EINVAL, "too deep");
}

/* A resource template is a Buffer (§20.2.5.4) of BufferSize, then the
 * descriptors and an end tag (§6.4.2.9). */
static void expect_template(const uint8_t *descriptor, size_t size)
{
	uint8_t expected[128];
	size_t buffer_size = size + 2;

	cr_assert_lt(size + 6, sizeof(expected));
	cr_assert_lt(buffer_size + 3, 64, "one-byte PkgLength in this test");
	expected[0] = 0x11; /* BufferOp */
	expected[1] = (uint8_t)(buffer_size + 3); /* PkgLength */
	expected[2] = 0x0a; /* BytePrefix */
	expected[3] = (uint8_t)buffer_size;
	memcpy(expected + 4, descriptor, size);
	expected[4 + size] = 0x79; /* end tag */
	expected[5 + size] = 0x00; /* checksum 0: treated as valid */
	expect_bytes(expected, size + 6);
}

#define EXPECT_TEMPLATE(...)                                                  \
	do {                                                                  \
		const uint8_t descriptor[] = { __VA_ARGS__ };                 \
		expect_template(descriptor, sizeof(descriptor));              \
	} while (0)

Test(aml, empty_resource_template_is_an_end_tag)
{
	aml_resource_template_begin(&aml);
	aml_end(&aml);
	EXPECT_BYTES(0x11, 0x05, 0x0a, 0x02, 0x79, 0x00);
}

/* §6.4.2.5: IO (Decode16, 0xcf8, 0xcf8, 1, 8). */
Test(aml, io_port_descriptor)
{
	aml_resource_template_begin(&aml);
	aml_io(&aml, 0xcf8, 0xcf8, 1, 8);
	aml_end(&aml);
	EXPECT_TEMPLATE(0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08);
}

/* §6.4.3.5.3: WordBusNumber (ResourceProducer, MinFixed, MaxFixed,
 * PosDecode, 0, 0, 0xff, 0, 0x100). */
Test(aml, word_bus_number_descriptor)
{
	aml_resource_template_begin(&aml);
	aml_word_bus_number(&aml, 0, 0xff);
	aml_end(&aml);
	EXPECT_TEMPLATE(0x88, 0x0d, 0x00, /* Word Address Space, 13 bytes */
			0x02, 0x0c, 0x00, /* bus numbers, fixed, flags */
			0x00, 0x00, 0x00, 0x00, 0xff, 0x00, /* _GRA _MIN _MAX */
			0x00, 0x00, 0x00, 0x01); /* _TRA _LEN */
}

/* §6.4.3.5.3: WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode,
 * EntireRange, 0, 0xd00, 0xffff, 0, 0xf300). */
Test(aml, word_io_descriptor)
{
	aml_resource_template_begin(&aml);
	aml_word_io(&aml, 0xd00, 0xffff);
	aml_end(&aml);
	EXPECT_TEMPLATE(0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03,
			0x00, 0x00, 0x00, 0x0d, 0xff, 0xff,
			0x00, 0x00, 0x00, 0xf3);
}

/* §6.4.3.5.2: DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 * NonCacheable, ReadWrite, 0, 0xc0000000, 0xfebfffff, 0, 0x3ec00000). */
Test(aml, dword_memory_descriptor)
{
	aml_resource_template_begin(&aml);
	aml_dword_memory(&aml, AML_MEMORY_NON_CACHEABLE, true, 0xc0000000,
			 0xfebfffff);
	aml_end(&aml);
	EXPECT_TEMPLATE(0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,
			0x00, 0x00, 0x00, 0x00, /* _GRA */
			0x00, 0x00, 0x00, 0xc0, /* _MIN */
			0xff, 0xff, 0xbf, 0xfe, /* _MAX */
			0x00, 0x00, 0x00, 0x00, /* _TRA */
			0x00, 0x00, 0xc0, 0x3e); /* _LEN */
}

/* §6.4.3.5.1: QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
 * Prefetchable, ReadOnly, 0, 1 << 40, (1 << 40) + 0xffffffff, 0,
 * 1 << 32). */
Test(aml, qword_memory_descriptor)
{
	aml_resource_template_begin(&aml);
	aml_qword_memory(&aml, AML_MEMORY_PREFETCHABLE, false, 1ULL << 40,
			 (1ULL << 40) + 0xffffffff);
	aml_end(&aml);
	EXPECT_TEMPLATE(0x8a, 0x2b, 0x00, 0x00, 0x0c, 0x06,
			0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0x01, 0, 0,
			0xff, 0xff, 0xff, 0xff, 0, 0x01, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0x01, 0, 0, 0);
}

/* A template over 63 bytes: a two-byte PkgLength and a BufferSize that
 * counts the end tag. */
Test(aml, resource_template_with_two_byte_pkg_length)
{
	size_t length;

	aml_resource_template_begin(&aml);
	aml_word_bus_number(&aml, 0, 0);
	aml_io(&aml, 0xcf8, 0xcf8, 1, 8);
	aml_word_io(&aml, 0, 0xcf7);
	aml_word_io(&aml, 0xd00, 0xffff);
	aml_dword_memory(&aml, AML_MEMORY_NON_CACHEABLE, true, 0xc0000000,
			 0xfebfffff);
	aml_end(&aml);
	cr_assert_eq(aml_finish(&aml, &length), 0);

	/* 16 + 8 + 16 + 16 + 26 + 2 = 84 buffer bytes, BytePrefix size,
	 * PkgLength 2 + 2 + 84 = 88 = 0x58. */
	cr_expect_eq(length, 1 + 88);
	cr_expect_eq(bytes[0], 0x11);
	cr_expect_eq(bytes[1], 0x48, "0x40 | (88 & 0xf)");
	cr_expect_eq(bytes[2], 0x05, "88 >> 4");
	cr_expect_eq(bytes[3], 0x0a);
	cr_expect_eq(bytes[4], 84);
	cr_expect_eq(bytes[5], 0x88, "first descriptor right after");
	cr_expect_eq(bytes[length - 2], 0x79, "end tag last");
}
