/*
 * An encoder for the ACPI Machine Language (ACPI 6.4 §20.2) that the DSDT
 * and later definition blocks are written in: named objects, integers,
 * strings, packages, scopes, devices, and resource templates (§6.4).
 *
 * Promise: the builder never writes outside the buffer it was given. It
 * emits front to back; a package, scope, device or resource template is
 * opened by its *_begin() call and closed by aml_end(), which then inserts
 * the minimal PkgLength (§20.2.4) and, for a package, the element count and,
 * for a resource template, the buffer size and the end tag. Errors are
 * sticky: the first one stops all further output, and aml_finish() reports
 * it, so a caller checks once after emitting everything.
 *
 * Usage, for Scope (\_SB) { Name (_UID, 0) }:
 *
 *	aml_init(&aml, bytes, sizeof(bytes));
 *	aml_scope_begin(&aml, "\\_SB");
 *	aml_name(&aml, "_UID");
 *	aml_integer(&aml, 0);
 *	aml_end(&aml);
 *	ret = aml_finish(&aml, &length);
 */
#ifndef VESSEL_FIRMWARE_AML_H
#define VESSEL_FIRMWARE_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How deep packages, scopes, devices and templates may nest. */
#define AML_MAX_DEPTH 8

enum aml_frame_kind {
	AML_FRAME_PACKAGE,
	AML_FRAME_SCOPE, /* a Scope or a Device: PkgLength, then the name */
	AML_FRAME_RESOURCE_TEMPLATE,
};

/* An open package, scope, device or resource template. */
struct aml_frame {
	enum aml_frame_kind kind;
	size_t start; /* offset of its first byte after the opcode */
	unsigned int elements; /* data objects directly inside a package */
};

struct aml_builder {
	uint8_t *bytes;
	size_t capacity;
	size_t length;
	int error; /* 0, or the first -errno */
	unsigned int depth;
	struct aml_frame frames[AML_MAX_DEPTH];
};

/* Starts an empty AML byte stream in bytes[0..capacity). */
void aml_init(struct aml_builder *aml, uint8_t *bytes, size_t capacity);

/*
 * 0 with *length set to the bytes written, or the first error: -ENOSPC when
 * the buffer was too small; -E2BIG when an object outgrew what PkgLength can
 * express (2^28 - 1 bytes); -EINVAL for an invalid name, string or EISA ID,
 * a package of more than 255 elements, a descriptor outside a resource
 * template (or a data object inside one), a descriptor whose minimum lies
 * above its maximum, nesting deeper than AML_MAX_DEPTH, an aml_end() with
 * nothing open, or a package, scope, device or template still open.
 */
int aml_finish(const struct aml_builder *aml, size_t *length);

/*
 * Names are ASL-style paths: an optional root prefix '\', then one or more
 * dot-separated segments of 1 to 4 characters from [A-Z0-9_] (not starting
 * with a digit); short segments are padded with '_' ("_SB" is "_SB_").
 */

/* NameOp: declares name; the next object emitted is its value. */
void aml_name(struct aml_builder *aml, const char *name);

/* The shortest encoding of value: ZeroOp, OneOp, OnesOp (all 64 bits set),
 * or a Byte, Word, DWord or QWord prefix (§20.2.3). */
void aml_integer(struct aml_builder *aml, uint64_t value);

/* A String of 7-bit ASCII characters other than NUL (§20.2.3). */
void aml_string(struct aml_builder *aml, const char *string);

/*
 * The ASL EISAID() macro (§19.6.35): a seven-character ID of three capital
 * letters and four hexadecimal digits ("PNP0A03") compressed to the 32-bit
 * integer a _HID or _CID holds. aml_eisa_id_encode() returns 0 with *value
 * set, or -EINVAL for any other string.
 */
int aml_eisa_id_encode(const char *id, uint32_t *value);
void aml_eisa_id(struct aml_builder *aml, const char *id);

/* Package () { ... } (§20.2.5.4, DefPackage): elements up to aml_end(). */
void aml_package_begin(struct aml_builder *aml);

/* Scope (name) { ... } (§20.2.5.1, DefScope). */
void aml_scope_begin(struct aml_builder *aml, const char *name);

/* Device (name) { ... } (§20.2.5.2, DefDevice). */
void aml_device_begin(struct aml_builder *aml, const char *name);

/*
 * ResourceTemplate () { ... } (§19.3.3): a Buffer of resource descriptors
 * (§6.4) that aml_end() closes with an end tag whose checksum byte is 0,
 * which §6.4.2.9 defines as "treat the checksum as valid".
 */
void aml_resource_template_begin(struct aml_builder *aml);

/* Closes the innermost open package, scope, device or resource template. */
void aml_end(struct aml_builder *aml);

/*
 * Resource descriptors, only inside a resource template.
 *
 * The address space descriptors describe a window a bridge decodes for the
 * devices below it, as ASL writes it: ResourceProducer, PosDecode, MinFixed,
 * MaxFixed, granularity 0, no translation, length max - min + 1 (the
 * fixed-size, fixed-location combination of §6.4.3.5).
 */

/* I/O port descriptor (§6.4.2.5) with 16-bit decode: IO (Decode16, min,
 * max, alignment, length). */
void aml_io(struct aml_builder *aml, uint16_t min, uint16_t max,
	    uint8_t alignment, uint8_t length);

/* WordBusNumber (§6.4.3.5.3): bus numbers min..max. */
void aml_word_bus_number(struct aml_builder *aml, uint16_t min, uint16_t max);

/* WordIO (§6.4.3.5.3), EntireRange: ports min..max. */
void aml_word_io(struct aml_builder *aml, uint16_t min, uint16_t max);

/* Memory cacheability, the _MEM field of the memory resource flags
 * (§6.4.3.5.5). */
enum aml_memory_cache {
	AML_MEMORY_NON_CACHEABLE = 0,
	AML_MEMORY_CACHEABLE = 1,
	AML_MEMORY_WRITE_COMBINING = 2,
	AML_MEMORY_PREFETCHABLE = 3,
};

/* DWordMemory (§6.4.3.5.2) and QWordMemory (§6.4.3.5.1): addresses
 * min..max, read-write or read-only. */
void aml_dword_memory(struct aml_builder *aml, enum aml_memory_cache cache,
		      bool read_write, uint32_t min, uint32_t max);
void aml_qword_memory(struct aml_builder *aml, enum aml_memory_cache cache,
		      bool read_write, uint64_t min, uint64_t max);

#endif
