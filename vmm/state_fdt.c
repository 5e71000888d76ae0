#include "state_fdt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfdt.h>

#define INITIAL_CAPACITY (64u << 10)
/* No snapshot's state comes near this; a runaway writer stops here. */
#define MAX_CAPACITY (256u << 20)

static int fdt_errno(int fdt_error)
{
	switch (fdt_error) {
	case -FDT_ERR_NOTFOUND:
		return -ENOENT;
	case -FDT_ERR_EXISTS:
		return -EEXIST;
	case -FDT_ERR_NOSPACE:
		return -ENOSPC;
	default:
		return -EINVAL;
	}
}

/* Doubles the buffer the tree lives in. */
static int grow(struct state_writer *writer)
{
	size_t capacity = writer->capacity * 2;

	if (capacity > MAX_CAPACITY)
		return -E2BIG;
	void *blob = malloc(capacity);
	if (!blob)
		return -ENOMEM;
	if (fdt_open_into(writer->blob, blob, (int)capacity)) {
		free(blob);
		return -EINVAL;
	}
	free(writer->blob);
	writer->blob = blob;
	writer->capacity = capacity;
	return 0;
}

static int set_property(struct state_writer *writer, const char *name,
			const void *data, size_t size)
{
	if (writer->node < 0 || size > MAX_CAPACITY)
		return -EINVAL;
	for (;;) {
		int result = fdt_setprop(writer->blob, writer->node, name, data,
					 (int)size);
		if (result != -FDT_ERR_NOSPACE)
			return result ? fdt_errno(result) : 0;
		/* Growing moves the tree but keeps node offsets. */
		result = grow(writer);
		if (result)
			return result;
	}
}

static int put_u64(struct device_state_writer *base, const char *name,
		   uint64_t value)
{
	fdt64_t cell = cpu_to_fdt64(value);

	return set_property((struct state_writer *)base, name, &cell,
			    sizeof(cell));
}

static int put_bytes(struct device_state_writer *base, const char *name,
		     const void *data, size_t size)
{
	return set_property((struct state_writer *)base, name, data, size);
}

int state_writer_init(struct state_writer *writer)
{
	*writer = (struct state_writer){
		.base = { .put_u64 = put_u64, .put_bytes = put_bytes },
		.capacity = INITIAL_CAPACITY,
		.node = -1,
	};
	writer->blob = malloc(writer->capacity);
	if (!writer->blob)
		return -ENOMEM;
	if (fdt_create_empty_tree(writer->blob, (int)writer->capacity)) {
		state_writer_release(writer);
		return -EINVAL;
	}
	return 0;
}

void state_writer_release(struct state_writer *writer)
{
	free(writer->blob);
	writer->blob = NULL;
}

/* The subnode name of parent, created when missing. */
static int subnode(struct state_writer *writer, int parent, const char *name,
		   int name_len, bool must_be_new)
{
	for (;;) {
		int node = fdt_subnode_offset_namelen(writer->blob, parent, name,
						      name_len);
		if (node >= 0)
			return must_be_new ? -EEXIST : node;
		if (node != -FDT_ERR_NOTFOUND)
			return fdt_errno(node);
		node = fdt_add_subnode_namelen(writer->blob, parent, name,
					       name_len);
		if (node >= 0)
			return node;
		if (node != -FDT_ERR_NOSPACE)
			return fdt_errno(node);
		int result = grow(writer);
		if (result)
			return result;
	}
}

int state_writer_begin(struct state_writer *writer, const char *path,
		       uint32_t version)
{
	int node = 0;

	if (path[0] != '/' || strlen(path) >= sizeof(writer->path))
		return -EINVAL;
	writer->node = -1;
	for (const char *name = path + 1; *name;) {
		const char *end = strchrnul(name, '/');
		if (end == name)
			return -EINVAL;
		node = subnode(writer, node, name, (int)(end - name), !*end);
		if (node < 0)
			return node;
		name = *end ? end + 1 : end;
	}
	writer->node = node;
	snprintf(writer->path, sizeof(writer->path), "%s", path);
	fdt32_t cell = cpu_to_fdt32(version);
	return set_property(writer, "version", &cell, sizeof(cell));
}

int state_writer_put_string(struct state_writer *writer, const char *name,
			    const char *value)
{
	return set_property(writer, name, value, strlen(value) + 1);
}

int state_writer_finish(struct state_writer *writer, const void **blob,
			size_t *size)
{
	int result = fdt_pack(writer->blob);

	if (result)
		return fdt_errno(result);
	*blob = writer->blob;
	*size = fdt_totalsize(writer->blob);
	return 0;
}

/* The open node's path without its leading slash, for messages. */
static const char *where(const struct state_reader *reader)
{
	return reader->path[0] == '/' ? reader->path + 1 : reader->path;
}

/* The property name of the open node, its size checked against min and
 * max. */
static int property(struct state_reader *reader, const char *name, size_t min,
		    size_t max, const void **data, size_t *size)
{
	int len;

	if (reader->node < 0) {
		snprintf(reader->err, sizeof(reader->err),
			 "%s: no node is open", name);
		return -EINVAL;
	}
	*data = fdt_getprop(reader->blob, reader->node, name, &len);
	if (!*data) {
		snprintf(reader->err, sizeof(reader->err), "%s/%s is missing",
			 where(reader), name);
		return -ENOENT;
	}
	if ((size_t)len < min || (size_t)len > max) {
		if (min == max)
			snprintf(reader->err, sizeof(reader->err),
				 "%s/%s: %d bytes, expected %zu", where(reader),
				 name, len, min);
		else
			snprintf(reader->err, sizeof(reader->err),
				 "%s/%s: %d bytes, expected %zu to %zu",
				 where(reader), name, len, min, max);
		return -EINVAL;
	}
	*size = (size_t)len;
	return 0;
}

static int get_u64(struct device_state_reader *base, const char *name,
		   uint64_t *value)
{
	struct state_reader *reader = (struct state_reader *)base;
	const void *data;
	size_t size;
	int result = property(reader, name, sizeof(fdt64_t), sizeof(fdt64_t),
			      &data, &size);

	if (!result)
		*value = fdt64_ld(data);
	return result;
}

static int get_bytes(struct device_state_reader *base, const char *name,
		     void *out, size_t size)
{
	struct state_reader *reader = (struct state_reader *)base;
	const void *data;
	size_t len;
	int result = property(reader, name, size, size, &data, &len);

	if (!result)
		memcpy(out, data, size);
	return result;
}

static int get_size(struct device_state_reader *base, const char *name,
		    size_t *size)
{
	const void *data;

	return property((struct state_reader *)base, name, 0, MAX_CAPACITY,
			&data, size);
}

static int refuse(struct device_state_reader *base, const char *reason)
{
	struct state_reader *reader = (struct state_reader *)base;

	snprintf(reader->err, sizeof(reader->err), "%s", reason);
	return -EINVAL;
}

int state_reader_open(struct state_reader *reader, const void *blob,
		      size_t size)
{
	*reader = (struct state_reader){
		.base = { .get_u64 = get_u64, .get_bytes = get_bytes,
			  .get_size = get_size, .refuse = refuse },
		.blob = blob,
		.node = -1,
	};
	/* fdt_check_full reads the header's totalsize only after checking
	 * it against bufsize, and walks every tag and string offset. */
	int result = size < sizeof(struct fdt_header) || size > MAX_CAPACITY ?
		-FDT_ERR_TRUNCATED : fdt_check_full(blob, size);
	if (!result && fdt_totalsize(blob) != size)
		result = -FDT_ERR_BADSTRUCTURE;
	if (result) {
		snprintf(reader->err, sizeof(reader->err),
			 "the state is not a valid device tree (%s)",
			 fdt_strerror(result));
		return -EINVAL;
	}
	return 0;
}

int state_reader_begin(struct state_reader *reader, const char *path,
		       uint32_t version)
{
	const void *data;
	size_t size;

	reader->node = fdt_path_offset(reader->blob, path);
	snprintf(reader->path, sizeof(reader->path), "%s", path);
	if (reader->node < 0) {
		snprintf(reader->err, sizeof(reader->err), "%s is missing",
			 where(reader));
		return -ENOENT;
	}
	int result = property(reader, "version", sizeof(fdt32_t),
			      sizeof(fdt32_t), &data, &size);
	if (result)
		return result;
	uint32_t found = fdt32_ld(data);
	if (found != version) {
		snprintf(reader->err, sizeof(reader->err),
			 "%s is version %u; this vessel reads version %u",
			 where(reader), found, version);
		return -EPROTO;
	}
	return 0;
}

int state_reader_get_blob(struct state_reader *reader, const char *name,
			  size_t min, size_t max, const void **data,
			  size_t *size)
{
	return property(reader, name, min, max, data, size);
}

int state_reader_get_string(struct state_reader *reader, const char *name,
			    size_t max, const char **value)
{
	const void *data;
	size_t size;
	int result = property(reader, name, 1, max, &data, &size);

	if (result)
		return result;
	if (((const char *)data)[size - 1] || strlen(data) != size - 1) {
		snprintf(reader->err, sizeof(reader->err),
			 "%s/%s is not a string", where(reader), name);
		return -EINVAL;
	}
	*value = data;
	return 0;
}

int state_reader_for_each_child(struct state_reader *reader, const char *path,
				int (*visit)(void *opaque, const char *name),
				void *opaque)
{
	int parent = fdt_path_offset(reader->blob, path);
	int child;

	if (parent < 0)
		return 0;
	fdt_for_each_subnode(child, reader->blob, parent) {
		int result = visit(opaque, fdt_get_name(reader->blob, child, NULL));
		if (result)
			return result;
	}
	return 0;
}
