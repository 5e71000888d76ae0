#include "aml.h"

#include <errno.h>
#include <string.h>

#include "little_endian.h"

/* Opcodes and prefixes (ACPI 6.4 §20.3, Table 20.1). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_ROOT_CHAR 0x5c
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ONES_OP 0xff

/* PkgLength (§20.2.4): one byte holds lengths up to 63 in bits 5:0; with
 * 1-3 following bytes, the lead byte holds the count in bits 7:6 and the
 * low nibble in bits 3:0, each following byte 8 more bits. */
#define PKG_LENGTH_MAX ((1u << 28) - 1)
#define PKG_LENGTH_MAX_BYTES 4

#define NAME_SEG_SIZE 4
#define PACKAGE_MAX_ELEMENTS 255 /* NumElements is a ByteData */

/* Resource descriptors (§6.4): small ones carry type and length in their
 * first byte (§6.4.2), large ones a type byte and a 16-bit length of what
 * follows (§6.4.3). */
#define RESOURCE_IO_PORT 0x47 /* small item 0x08, length 7 */
#define RESOURCE_IO_DECODE_16 0x01
#define RESOURCE_END_TAG 0x79 /* small item 0x0f, length 1 */
#define RESOURCE_QWORD_ADDRESS 0x8a
#define RESOURCE_DWORD_ADDRESS 0x87
#define RESOURCE_WORD_ADDRESS 0x88
#define RESOURCE_LARGE_HEADER 3

/* Address space descriptor fields (§6.4.3.5.1-3). */
#define ADDRESS_SPACE_MEMORY 0
#define ADDRESS_SPACE_IO 1
#define ADDRESS_SPACE_BUS_NUMBER 2
/* General flags: _MAF and _MIF set; _DEC clear (positive decode); bit 0
 * clear, a resource the bridge produces for the devices below it. */
#define ADDRESS_FIXED_WINDOW 0x0c
#define IO_ENTIRE_RANGE 0x03 /* _RNG: ISA and non-ISA ports */
#define MEMORY_READ_WRITE 0x01 /* _RW */
#define MEMORY_CACHE_SHIFT 1 /* _MEM in bits 2:1 */

void aml_init(struct aml_builder *aml, uint8_t *bytes, size_t capacity)
{
	*aml = (struct aml_builder){ .bytes = bytes, .capacity = capacity };
}

int aml_finish(const struct aml_builder *aml, size_t *length)
{
	if (aml->error)
		return aml->error;
	if (aml->depth != 0)
		return -EINVAL;
	*length = aml->length;
	return 0;
}

static void fail(struct aml_builder *aml, int error)
{
	if (!aml->error)
		aml->error = error;
}

static void put(struct aml_builder *aml, const void *bytes, size_t size)
{
	if (aml->error)
		return;
	if (size > aml->capacity - aml->length) {
		fail(aml, -ENOSPC);
		return;
	}
	memcpy(aml->bytes + aml->length, bytes, size);
	aml->length += size;
}

static void put_byte(struct aml_builder *aml, uint8_t byte)
{
	put(aml, &byte, 1);
}

static struct aml_frame *innermost(struct aml_builder *aml)
{
	return aml->depth ? &aml->frames[aml->depth - 1] : NULL;
}

static bool in_resource_template(struct aml_builder *aml)
{
	struct aml_frame *frame = innermost(aml);

	return frame && frame->kind == AML_FRAME_RESOURCE_TEMPLATE;
}

/* Called before emitting a data object: refuses one among resource
 * descriptors and counts it as an element of an enclosing package. */
static void begin_data_object(struct aml_builder *aml)
{
	struct aml_frame *frame = innermost(aml);

	if (!frame)
		return;
	if (frame->kind == AML_FRAME_RESOURCE_TEMPLATE)
		fail(aml, -EINVAL);
	else if (frame->kind == AML_FRAME_PACKAGE &&
		 ++frame->elements > PACKAGE_MAX_ELEMENTS)
		fail(aml, -EINVAL);
}

/* Opens a frame whose content starts at the current end; aml_end() puts
 * the PkgLength before it. */
static void push(struct aml_builder *aml, enum aml_frame_kind kind)
{
	if (aml->error)
		return;
	if (aml->depth == AML_MAX_DEPTH) {
		fail(aml, -EINVAL);
		return;
	}
	aml->frames[aml->depth++] = (struct aml_frame){
		.kind = kind,
		.start = aml->length,
	};
}

/* LeadNameChar and NameChar (§20.2.2). */
static bool is_lead_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
	return is_lead_name_char(c) || (c >= '0' && c <= '9');
}

/* The number of NameSegs in a dotted path, or 0 when it is not one. */
static unsigned int name_segment_count(const char *path)
{
	unsigned int segments = 1;
	size_t segment_length = 0;

	for (const char *c = path;; c++) {
		if (*c == '.' || *c == '\0') {
			if (segment_length == 0)
				return 0;
			if (*c == '\0')
				return segments <= 255 ? segments : 0;
			segments++;
			segment_length = 0;
		} else if (++segment_length > NAME_SEG_SIZE ||
			   !(segment_length == 1 ? is_lead_name_char(*c) :
						   is_name_char(*c))) {
			return 0;
		}
	}
}

/* NameString (§20.2.2): RootChar when rooted, then one NameSeg, or
 * DualNamePrefix and two, or MultiNamePrefix, a count and more. */
static void put_name(struct aml_builder *aml, const char *name)
{
	bool rooted = name[0] == '\\';
	const char *segment = name + rooted;
	unsigned int segments = name_segment_count(segment);

	if (segments == 0) {
		fail(aml, -EINVAL);
		return;
	}
	if (rooted)
		put_byte(aml, AML_ROOT_CHAR);
	if (segments == 2) {
		put_byte(aml, AML_DUAL_NAME_PREFIX);
	} else if (segments > 2) {
		put_byte(aml, AML_MULTI_NAME_PREFIX);
		put_byte(aml, (uint8_t)segments);
	}
	for (unsigned int i = 0; i < segments; i++) {
		uint8_t padded[NAME_SEG_SIZE] = { '_', '_', '_', '_' };
		size_t length = strcspn(segment, ".");

		memcpy(padded, segment, length);
		put(aml, padded, sizeof(padded));
		segment += length + 1; /* past the dot */
	}
}

void aml_name(struct aml_builder *aml, const char *name)
{
	if (in_resource_template(aml))
		fail(aml, -EINVAL);
	put_byte(aml, AML_NAME_OP);
	put_name(aml, name);
}

/* The shortest integer encoding, without counting it as an element. */
static void put_integer(struct aml_builder *aml, uint64_t value)
{
	uint8_t bytes[1 + sizeof(value)];
	size_t size;

	if (value == 0) {
		put_byte(aml, AML_ZERO_OP);
		return;
	}
	if (value == 1) {
		put_byte(aml, AML_ONE_OP);
		return;
	}
	/* OnesOp is all ones in the definition block's integer width: 64
	 * bits from revision 2 on (§5.2.11.1), the revision vessel writes. */
	if (value == UINT64_MAX) {
		put_byte(aml, AML_ONES_OP);
		return;
	}
	if (value <= UINT8_MAX) {
		bytes[0] = AML_BYTE_PREFIX;
		size = 1;
	} else if (value <= UINT16_MAX) {
		bytes[0] = AML_WORD_PREFIX;
		size = 2;
	} else if (value <= UINT32_MAX) {
		bytes[0] = AML_DWORD_PREFIX;
		size = 4;
	} else {
		bytes[0] = AML_QWORD_PREFIX;
		size = 8;
	}
	le64_store(bytes + 1, value); /* little endian: the low bytes first */
	put(aml, bytes, 1 + size);
}

void aml_integer(struct aml_builder *aml, uint64_t value)
{
	begin_data_object(aml);
	put_integer(aml, value);
}

void aml_string(struct aml_builder *aml, const char *string)
{
	begin_data_object(aml);
	for (const char *c = string; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			fail(aml, -EINVAL);
			return;
		}
	}
	put_byte(aml, AML_STRING_PREFIX);
	put(aml, string, strlen(string) + 1); /* with its NullChar */
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aml_eisa_id_encode(const char *id, uint32_t *value)
{
	uint32_t packed = 0;

	if (strlen(id) != 7)
		return -EINVAL;
	/* Three letters of 5 bits each ('A' is 1), then 16 bits of product
	 * number, with bit 31 reserved as 0; stored as a big-endian DWord. */
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
		packed = packed << 5 | (uint32_t)(id[i] - 'A' + 1);
	}
	for (int i = 3; i < 7; i++) {
		int digit = hex_digit(id[i]);

		if (digit < 0)
			return -EINVAL;
		packed = packed << 4 | (uint32_t)digit;
	}
	*value = __builtin_bswap32(packed);
	return 0;
}

void aml_eisa_id(struct aml_builder *aml, const char *id)
{
	uint32_t value;
	int ret = aml_eisa_id_encode(id, &value);

	if (ret < 0)
		fail(aml, ret);
	else
		aml_integer(aml, value);
}

void aml_package_begin(struct aml_builder *aml)
{
	begin_data_object(aml);
	put_byte(aml, AML_PACKAGE_OP);
	push(aml, AML_FRAME_PACKAGE);
}

void aml_scope_begin(struct aml_builder *aml, const char *name)
{
	if (in_resource_template(aml))
		fail(aml, -EINVAL);
	put_byte(aml, AML_SCOPE_OP);
	push(aml, AML_FRAME_SCOPE);
	put_name(aml, name);
}

void aml_device_begin(struct aml_builder *aml, const char *name)
{
	const uint8_t opcode[] = { AML_EXT_OP_PREFIX, AML_DEVICE_OP };

	if (in_resource_template(aml))
		fail(aml, -EINVAL);
	put(aml, opcode, sizeof(opcode));
	push(aml, AML_FRAME_SCOPE);
	put_name(aml, name);
}

void aml_resource_template_begin(struct aml_builder *aml)
{
	begin_data_object(aml);
	put_byte(aml, AML_BUFFER_OP);
	push(aml, AML_FRAME_RESOURCE_TEMPLATE);
}

/* The fewest PkgLength bytes for an object whose bytes after its PkgLength
 * number body; 0 when PkgLength cannot express it. */
static size_t pkg_length_size(size_t body)
{
	for (size_t count = 1; count <= PKG_LENGTH_MAX_BYTES; count++) {
		size_t limit = count == 1 ? 0x3f : (1u << (4 + 8 * (count - 1))) - 1;

		if (body + count <= limit)
			return count;
	}
	return 0;
}

/* Writes a PkgLength of count bytes holding total, itself included. */
static void pkg_length_encode(uint32_t total, size_t count, uint8_t *bytes)
{
	if (count == 1) {
		bytes[0] = (uint8_t)total;
		return;
	}
	bytes[0] = (uint8_t)((count - 1) << 6 | (total & 0x0f));
	for (size_t i = 1; i < count; i++)
		bytes[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

void aml_end(struct aml_builder *aml)
{
	struct aml_frame *frame = innermost(aml);
	uint8_t header[PKG_LENGTH_MAX_BYTES + 1 + sizeof(uint64_t)];
	uint8_t extra[1 + sizeof(uint64_t)];
	size_t extra_size = 0, header_size, content, count;

	if (aml->error)
		return;
	if (!frame) {
		fail(aml, -EINVAL);
		return;
	}
	if (frame->kind == AML_FRAME_RESOURCE_TEMPLATE) {
		const uint8_t end_tag[] = { RESOURCE_END_TAG, 0 };

		put(aml, end_tag, sizeof(end_tag));
		if (aml->error)
			return;
	}
	content = aml->length - frame->start;

	/* What follows the PkgLength before the content: a package's
	 * NumElements, a buffer's BufferSize (§20.2.5.4). */
	if (frame->kind == AML_FRAME_PACKAGE) {
		extra[0] = (uint8_t)frame->elements;
		extra_size = 1;
	} else if (frame->kind == AML_FRAME_RESOURCE_TEMPLATE) {
		struct aml_builder size = { .bytes = extra,
					    .capacity = sizeof(extra) };

		put_integer(&size, content);
		extra_size = size.length;
	}

	count = pkg_length_size(extra_size + content);
	if (count == 0) {
		fail(aml, -E2BIG);
		return;
	}
	pkg_length_encode((uint32_t)(count + extra_size + content), count,
			  header);
	memcpy(header + count, extra, extra_size);
	header_size = count + extra_size;
	if (header_size > aml->capacity - aml->length) {
		fail(aml, -ENOSPC);
		return;
	}
	memmove(aml->bytes + frame->start + header_size,
		aml->bytes + frame->start, content);
	memcpy(aml->bytes + frame->start, header, header_size);
	aml->length += header_size;
	aml->depth--;
}

/* A descriptor's bytes, only where descriptors belong. */
static void put_descriptor(struct aml_builder *aml, const uint8_t *bytes,
			   size_t size)
{
	if (!in_resource_template(aml))
		fail(aml, -EINVAL);
	put(aml, bytes, size);
}

void aml_io(struct aml_builder *aml, uint16_t min, uint16_t max,
	    uint8_t alignment, uint8_t length)
{
	uint8_t descriptor[8] = { RESOURCE_IO_PORT, RESOURCE_IO_DECODE_16 };

	if (min > max)
		fail(aml, -EINVAL);
	le16_store(descriptor + 2, min);
	le16_store(descriptor + 4, max);
	descriptor[6] = alignment;
	descriptor[7] = length;
	put_descriptor(aml, descriptor, sizeof(descriptor));
}

/*
 * The address space descriptors share one layout (§6.4.3.5.1-3): type,
 * length, resource type, general flags, type-specific flags, then
 * granularity, minimum, maximum, translation offset and length, each as wide
 * as the descriptor's addresses.
 */
static void put_address_space(struct aml_builder *aml, uint8_t type,
			      size_t width, uint8_t space, uint8_t flags,
			      uint64_t min, uint64_t max)
{
	uint8_t descriptor[RESOURCE_LARGE_HEADER + 3 + 5 * sizeof(uint64_t)];
	size_t size = RESOURCE_LARGE_HEADER + 3 + 5 * width;
	const uint64_t fields[] = { 0, min, max, 0, max - min + 1 };

	if (min > max)
		fail(aml, -EINVAL);
	descriptor[0] = type;
	le16_store(descriptor + 1, (uint16_t)(size - RESOURCE_LARGE_HEADER));
	descriptor[3] = space;
	descriptor[4] = ADDRESS_FIXED_WINDOW;
	descriptor[5] = flags;
	for (size_t i = 0; i < 5; i++) {
		uint8_t field[sizeof(uint64_t)];

		le64_store(field, fields[i]); /* the low width bytes */
		memcpy(descriptor + RESOURCE_LARGE_HEADER + 3 + i * width, field,
		       width);
	}
	put_descriptor(aml, descriptor, size);
}

void aml_word_bus_number(struct aml_builder *aml, uint16_t min, uint16_t max)
{
	put_address_space(aml, RESOURCE_WORD_ADDRESS, sizeof(uint16_t),
			  ADDRESS_SPACE_BUS_NUMBER, 0, min, max);
}

void aml_word_io(struct aml_builder *aml, uint16_t min, uint16_t max)
{
	put_address_space(aml, RESOURCE_WORD_ADDRESS, sizeof(uint16_t),
			  ADDRESS_SPACE_IO, IO_ENTIRE_RANGE, min, max);
}

static uint8_t memory_flags(enum aml_memory_cache cache, bool read_write)
{
	return (uint8_t)((cache & 3) << MEMORY_CACHE_SHIFT |
			 (read_write ? MEMORY_READ_WRITE : 0));
}

void aml_dword_memory(struct aml_builder *aml, enum aml_memory_cache cache,
		      bool read_write, uint32_t min, uint32_t max)
{
	put_address_space(aml, RESOURCE_DWORD_ADDRESS, sizeof(uint32_t),
			  ADDRESS_SPACE_MEMORY, memory_flags(cache, read_write),
			  min, max);
}

void aml_qword_memory(struct aml_builder *aml, enum aml_memory_cache cache,
		      bool read_write, uint64_t min, uint64_t max)
{
	put_address_space(aml, RESOURCE_QWORD_ADDRESS, sizeof(uint64_t),
			  ADDRESS_SPACE_MEMORY, memory_flags(cache, read_write),
			  min, max);
}
