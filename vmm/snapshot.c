#include "snapshot.h"

#include "../devices/array.h"
#include "memory.h"
#include "page_list.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define STATE_FILE "state.dtb"
#define MEMORY_FILE "memory"
#define CHECKSUM_FILE "checksum"
#define PAGES_FILE "pages"
#define SNAPSHOT_NODE "/snapshot"
#define CONFIG_NODE "/config"
#define DISKS_NODE "/disks"
#define DISK_STATE_VERSION 1
#define BASE_NODE "/base"
#define BASE_STATE_VERSION 1
/* The machine a snapshot is of: vessel's x86 PC on KVM. */
#define SNAPSHOT_MACHINE "x86_64-kvm-pc"
/* Far more than the state of any machine vessel builds. */
#define MAX_STATE_SIZE (64u << 20)
#define MAX_CONFIG_JSON (64u << 10)

static const char *const snapshot_files[] = {
	CHECKSUM_FILE, STATE_FILE, MEMORY_FILE, PAGES_FILE,
};

/* Removes what snapshot_write made of dir, and dir. */
static void remove_partial(int dir_fd, const char *dir)
{
	for (size_t i = 0; i < ARRAY_SIZE(snapshot_files); i++)
		unlinkat(dir_fd, snapshot_files[i], 0);
	close(dir_fd);
	rmdir(dir);
}

static int write_file(int dir_fd, const char *name, const void *data,
		      size_t size)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			0600);
	const uint8_t *bytes = data;
	int result = 0;

	if (fd < 0)
		return -errno;
	while (size && !result) {
		ssize_t written = write(fd, bytes, size);
		if (written < 0 && errno != EINTR)
			result = -errno;
		if (written > 0) {
			bytes += written;
			size -= (size_t)written;
		}
	}
	if (!result && fsync(fd))
		result = -errno;
	if (close(fd) && !result)
		result = -errno;
	return result;
}

/*
 * A disk as it was at the snapshot: what is on it belongs with the guest's
 * memory, so restore refuses a disk written since (its size or
 * modification time changed). A copy that keeps the time (cp -p) is the
 * same disk.
 */
static const char *const disk_fields[] = { "size", "mtime-ns" };
#define DISK_FIELDS (ARRAY_SIZE(disk_fields))

static int refused(const struct snapshot *snapshot, int result, char *err,
		   size_t err_len);

static int disk_identity(const char *path, uint64_t identity[DISK_FIELDS])
{
	struct stat info;

	if (stat(path, &info))
		return -errno;
	identity[0] = (uint64_t)info.st_size;
	identity[1] = (uint64_t)info.st_mtim.tv_sec * 1000000000u +
		      (uint64_t)info.st_mtim.tv_nsec;
	return 0;
}

static int write_disks(const struct vm_config *config,
		       struct state_writer *writer, char *err, size_t err_len)
{
	char path[STATE_PATH_SIZE];
	uint64_t identity[DISK_FIELDS] = { 0 };

	for (unsigned int i = 0; i < config->disk_count; i++) {
		const char *disk = config->disks[i].path;
		int result = disk_identity(disk, identity);
		if (result) {
			snprintf(err, err_len, "disk %s: %s", disk, strerror(-result));
			return result;
		}
		snprintf(path, sizeof(path), DISKS_NODE "/disk%u", i);
		result = state_writer_begin(writer, path, DISK_STATE_VERSION);
		if (!result)
			result = state_writer_put_string(writer, "path", disk);
		for (size_t field = 0; field < DISK_FIELDS && !result; field++)
			result = writer->base.put_u64(&writer->base,
						      disk_fields[field],
						      identity[field]);
		if (result) {
			snprintf(err, err_len, "writing disk %s: %s", disk,
				 strerror(-result));
			return result;
		}
	}
	return 0;
}

/* A disk that changed refuses the restore, or with allow_changed is only
 * named in the snapshot's warning. */
static int check_disks(struct snapshot *snapshot, bool allow_changed,
		       char *err, size_t err_len)
{
	struct state_reader *reader = &snapshot->reader;
	char path[STATE_PATH_SIZE];
	uint64_t saved, identity[DISK_FIELDS] = { 0 };

	for (unsigned int i = 0; i < snapshot->config->disk_count; i++) {
		const char *disk = snapshot->config->disks[i].path;
		snprintf(path, sizeof(path), DISKS_NODE "/disk%u", i);
		int result = state_reader_begin(reader, path, DISK_STATE_VERSION);
		if (result)
			return refused(snapshot, result, err, err_len);
		result = disk_identity(disk, identity);
		if (result) {
			snprintf(err, err_len, "disk %s: %s", disk, strerror(-result));
			return result;
		}
		for (size_t field = 0; field < DISK_FIELDS; field++) {
			result = reader->base.get_u64(&reader->base,
						      disk_fields[field], &saved);
			if (result)
				return refused(snapshot, result, err, err_len);
			if (saved == identity[field])
				continue;
			if (!allow_changed) {
				snprintf(err, err_len, "disk %s is not the file it "
					 "was at the snapshot (its %s changed): the "
					 "guest's memory would not match it "
					 "(--allow-changed-disks restores it anyway)",
					 disk, disk_fields[field]);
				return -EINVAL;
			}
			size_t used = strlen(snapshot->warning);
			snprintf(snapshot->warning + used,
				 sizeof(snapshot->warning) - used, "%sdisk %s "
				 "changed since the snapshot (its %s): the guest's "
				 "caches of it may not match it", used ? "; " : "",
				 disk, disk_fields[field]);
			break;
		}
	}
	return 0;
}

/* The state tree: the format's node and the configuration, then the
 * machine's own. */
static int write_state(struct vm *vm, const struct vm_config *config,
		       const struct snapshot_diff *diff,
		       struct state_writer *writer, char *err, size_t err_len)
{
	struct json_object *json = vm_config_to_json(config);
	const char *text = json ? json_object_to_json_string_ext(json,
						JSON_C_TO_STRING_PLAIN) : NULL;
	int result = text ? 0 : -ENOMEM;

	if (!result)
		result = state_writer_begin(writer, SNAPSHOT_NODE, diff ?
					    SNAPSHOT_DIFF_VERSION : SNAPSHOT_VERSION);
	if (!result)
		result = state_writer_put_string(writer, "machine", SNAPSHOT_MACHINE);
	if (!result && diff)
		result = state_writer_begin(writer, BASE_NODE, BASE_STATE_VERSION);
	if (!result && diff)
		result = state_writer_put_string(writer, "path", diff->base_dir);
	if (!result && diff)
		result = writer->base.put_u64(&writer->base, "identity",
					      diff->base_identity);
	if (!result)
		result = state_writer_begin(writer, CONFIG_NODE, VM_CONFIG_VERSION);
	if (!result)
		result = state_writer_put_string(writer, "json", text);
	json_object_put(json);
	if (result) {
		snprintf(err, err_len, "writing the configuration: %s",
			 strerror(-result));
		return result;
	}
	result = write_disks(config, writer, err, err_len);
	return result ? result : vm_save(vm, writer, err, err_len);
}

/* Guest memory into the new file memory (and, for a diff, pages). */
static int write_memory(struct vm *vm, int dir_fd, const char *dir,
			const struct snapshot_diff *diff, uint64_t *checksum,
			char *err, size_t err_len)
{
	uint64_t *pages = NULL;
	size_t count = 0;
	struct progress progress;
	int result = 0;

	if (diff && page_list_from_bitmap(diff->written, diff->words, &pages,
					  &count)) {
		snprintf(err, err_len, "out of memory for the list of pages");
		return -ENOMEM;
	}
	if (diff)
		result = write_file(dir_fd, PAGES_FILE,
				    pages ? (const void *)pages : "",
				    count * sizeof(*pages));
	if (result) {
		snprintf(err, err_len, "%s/" PAGES_FILE ": %s", dir,
			 strerror(-result));
		free(pages);
		return result;
	}
	int memory_fd = openat(dir_fd, MEMORY_FILE,
			       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (memory_fd < 0) {
		result = -errno;
		snprintf(err, err_len, "%s/" MEMORY_FILE ": %s", dir,
			 strerror(-result));
		free(pages);
		return result;
	}
	progress_begin(&progress, "writing guest memory");
	result = diff ? vm_save_memory_pages(vm, memory_fd, pages, count,
					     checksum, &progress, err, err_len) :
			vm_save_memory(vm, memory_fd, checksum, &progress, err,
				       err_len);
	if (!result && fsync(memory_fd)) {
		result = -errno;
		snprintf(err, err_len, "writing guest memory: %s",
			 strerror(-result));
	}
	progress_end(&progress);
	close(memory_fd);
	free(pages);
	return result;
}

int snapshot_write(struct vm *vm, const struct vm_config *config,
		   const char *dir, const struct snapshot_diff *diff,
		   uint64_t *identity, char *err, size_t err_len)
{
	struct state_writer writer;
	const void *state;
	size_t state_size;
	uint64_t memory_checksum;
	char checksums[128];

	if (!dir || !*dir) {
		snprintf(err, err_len, "no directory to write the snapshot to");
		return -EINVAL;
	}
	if (mkdir(dir, 0700)) {
		int saved = errno;
		snprintf(err, err_len, "%s: %s", dir, saved == EEXIST ?
			 "exists already (a snapshot goes into a new directory)" :
			 strerror(saved));
		return -saved;
	}
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		int saved = errno;
		snprintf(err, err_len, "%s: %s", dir, strerror(saved));
		rmdir(dir);
		return -saved;
	}
	int result = state_writer_init(&writer);
	if (result) {
		snprintf(err, err_len, "out of memory for the state");
		remove_partial(dir_fd, dir);
		return result;
	}
	result = write_state(vm, config, diff, &writer, err, err_len);
	if (!result && (result = state_writer_finish(&writer, &state, &state_size)))
		snprintf(err, err_len, "writing the state: %s", strerror(-result));
	if (!result)
		result = write_memory(vm, dir_fd, dir, diff, &memory_checksum, err,
				      err_len);
	if (!result) {
		const char *what = STATE_FILE;
		result = write_file(dir_fd, STATE_FILE, state, state_size);
		snprintf(checksums, sizeof(checksums),
			 "xxh3-64 %016" PRIx64 " " STATE_FILE "\n"
			 "xxh3-64 %016" PRIx64 " " MEMORY_FILE "\n",
			 (uint64_t)XXH3_64bits(state, state_size), memory_checksum);
		*identity = XXH3_64bits(checksums, strlen(checksums));
		if (!result) {
			what = CHECKSUM_FILE;
			result = write_file(dir_fd, CHECKSUM_FILE, checksums,
					    strlen(checksums));
		}
		if (!result && fsync(dir_fd))
			result = -errno;
		if (result)
			snprintf(err, err_len, "%s/%s: %s", dir, what,
				 strerror(-result));
	}
	state_writer_release(&writer);
	if (result)
		remove_partial(dir_fd, dir);
	else
		close(dir_fd);
	return result;
}

/* The checksum file's two lines, and the snapshot's identity: the
 * XXH3-64 of the whole file, which a diff over it records. */
static int read_checksums(int dir_fd, uint64_t *state, uint64_t *memory,
			  uint64_t *identity, bool *read_whole, char *err,
			  size_t err_len)
{
	char text[256] = "";
	int fd = openat(dir_fd, CHECKSUM_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t size = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
	int consumed = 0;

	if (fd >= 0)
		close(fd);
	if (size < 0) {
		snprintf(err, err_len, CHECKSUM_FILE ": %s", strerror(errno));
		return -errno;
	}
	text[size] = '\0';
	*identity = XXH3_64bits(text, (size_t)size);
	*read_whole = true;
	if (sscanf(text, "xxh3-64 %16" SCNx64 " " STATE_FILE
		   " xxh3-64 %16" SCNx64 " " MEMORY_FILE "%n",
		   state, memory, &consumed) != 2 || !consumed ||
	    strspn(text + consumed, "\n") != strlen(text + consumed)) {
		snprintf(err, err_len, CHECKSUM_FILE " is not two lines "
			 "\"xxh3-64 HEX FILE\" for " STATE_FILE " and " MEMORY_FILE);
		return -EINVAL;
	}
	return 0;
}

/* state.dtb into a new buffer, checked against its checksum, and a
 * reader opened on it. */
static int read_state(int dir_fd, uint64_t checksum, void **state,
		      size_t *state_size, struct state_reader *reader,
		      char *err, size_t err_len)
{
	struct stat info;
	int fd = openat(dir_fd, STATE_FILE, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &info)) {
		int saved = errno;
		snprintf(err, err_len, STATE_FILE ": %s", strerror(saved));
		if (fd >= 0)
			close(fd);
		return -saved;
	}
	if (!S_ISREG(info.st_mode) || info.st_size > MAX_STATE_SIZE) {
		snprintf(err, err_len, STATE_FILE " is not a file of at most %u "
			 "MiB", MAX_STATE_SIZE >> 20);
		close(fd);
		return -EINVAL;
	}
	*state_size = (size_t)info.st_size;
	*state = malloc(*state_size + 1);
	ssize_t got = *state ? pread(fd, *state, *state_size, 0) : -1;
	close(fd);
	if (got != (ssize_t)*state_size) {
		snprintf(err, err_len, STATE_FILE ": cannot be read in full");
		return -EIO;
	}
	if (XXH3_64bits(*state, *state_size) != checksum) {
		snprintf(err, err_len, STATE_FILE " does not match its checksum "
			 "(damaged or changed since the snapshot)");
		return -EINVAL;
	}
	int result = state_reader_open(reader, *state, *state_size);
	if (result)
		snprintf(err, err_len, STATE_FILE ": %s", reader->err);
	return result;
}

static int refused(const struct snapshot *snapshot, int result, char *err,
		   size_t err_len)
{
	snprintf(err, err_len, STATE_FILE ": %s", snapshot->reader.err);
	return result;
}

/* The format's node: the machine, and whether it is a diff. */
static int read_format(struct state_reader *reader, bool *diff, char *err,
		       size_t err_len)
{
	const char *machine;
	int result = state_reader_begin(reader, SNAPSHOT_NODE, SNAPSHOT_VERSION);

	*diff = false;
	if (result == -EPROTO) {
		result = state_reader_begin(reader, SNAPSHOT_NODE,
					    SNAPSHOT_DIFF_VERSION);
		*diff = !result;
		if (result == -EPROTO)
			snprintf(reader->err, sizeof(reader->err), "%s is of a "
				 "version this vessel does not read (it reads %u, "
				 "and %u for a diff)", &SNAPSHOT_NODE[1],
				 SNAPSHOT_VERSION, SNAPSHOT_DIFF_VERSION);
	}
	if (!result)
		result = state_reader_get_string(reader, "machine", 64, &machine);
	if (result) {
		snprintf(err, err_len, STATE_FILE ": %s", reader->err);
		return result;
	}
	if (strcmp(machine, SNAPSHOT_MACHINE)) {
		snprintf(err, err_len, "the snapshot is of a %s machine; this "
			 "vessel restores %s", machine, SNAPSHOT_MACHINE);
		return -EINVAL;
	}
	return 0;
}

/* The format's node and the configuration it was taken with. */
static int read_config(struct snapshot *snapshot, char *err, size_t err_len)
{
	struct state_reader *reader = &snapshot->reader;
	const char *text;
	int result = state_reader_begin(reader, CONFIG_NODE, VM_CONFIG_VERSION);
	if (!result)
		result = state_reader_get_string(reader, "json", MAX_CONFIG_JSON,
						 &text);
	if (result)
		return refused(snapshot, result, err, err_len);
	struct json_object *json = json_tokener_parse(text);
	char config_err[256];
	result = json ? vm_config_from_json(json, &snapshot->config, config_err,
					    sizeof(config_err)) : -EINVAL;
	json_object_put(json);
	if (result)
		snprintf(err, err_len, STATE_FILE ": config: %s",
			 json ? config_err : "not JSON");
	return result;
}

/* A memory file of the machine's size, opened for reading. */
static int open_memory_file(int dir_fd, const struct snapshot *snapshot,
			    int *fd, char *err, size_t err_len)
{
	struct stat info;

	*fd = openat(dir_fd, MEMORY_FILE, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &info)) {
		snprintf(err, err_len, MEMORY_FILE ": %s", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(info.st_mode) ||
	    (uint64_t)info.st_size != snapshot->config->memory_size) {
		snprintf(err, err_len, MEMORY_FILE " holds %lld bytes; the "
			 "machine has %llu bytes of RAM",
			 (long long)info.st_size,
			 (unsigned long long)snapshot->config->memory_size);
		return -EINVAL;
	}
	return 0;
}

static int checksum_refused(int result, uint64_t found, uint64_t checksum,
			    char *err, size_t err_len)
{
	if (result)
		snprintf(err, err_len, MEMORY_FILE ": %s", strerror(-result));
	else if (found != checksum)
		snprintf(err, err_len, MEMORY_FILE " does not match its checksum "
			 "(damaged or changed since the snapshot)");
	return result ? result : found != checksum ? -EINVAL : 0;
}

/* A full snapshot's memory: the image at the bottom of the restore. */
static int check_memory(int dir_fd, struct snapshot *snapshot,
			uint64_t checksum, struct progress *progress, char *err,
			size_t err_len)
{
	uint64_t found = 0;
	int result = open_memory_file(dir_fd, snapshot, &snapshot->memory_fd,
				      err, err_len);

	if (result || snapshot->memory_unchecked)
		return result;
	result = vm_memory_image_checksum(snapshot->memory_fd,
					  snapshot->config->memory_size, &found,
					  progress);
	return checksum_refused(result, found, checksum, err, err_len);
}

/* A diff's pages and memory: the next layer over what is below. */
static int check_diff_memory(int dir_fd, struct snapshot *snapshot,
			     uint64_t checksum, struct progress *progress,
			     char *err, size_t err_len)
{
	struct vm_memory_layer *layer = &snapshot->layers[snapshot->layer_count];
	uint64_t *pages = NULL, found = 0;
	size_t count = 0;
	char why[256];
	int fd, result;

	int pages_fd = openat(dir_fd, PAGES_FILE, O_RDONLY | O_CLOEXEC);
	if (pages_fd < 0) {
		snprintf(err, err_len, PAGES_FILE ": %s", strerror(errno));
		return -errno;
	}
	result = page_list_read(pages_fd, snapshot->config->memory_size /
				VM_MEMORY_PAGE_SIZE, &pages, &count, why,
				sizeof(why));
	close(pages_fd);
	if (result) {
		snprintf(err, err_len, PAGES_FILE ": %s", why);
		return result;
	}
	result = open_memory_file(dir_fd, snapshot, &fd, err, err_len);
	if (!result && !snapshot->memory_unchecked) {
		result = vm_memory_pages_checksum(fd, pages, count, &found,
						  progress);
		result = checksum_refused(result, found, checksum, err, err_len);
	}
	if (result) {
		if (fd >= 0)
			close(fd);
		free(pages);
		return result;
	}
	*layer = (struct vm_memory_layer){ .fd = fd, .pages = pages,
					   .count = count };
	snapshot->layer_count++;
	return 0;
}

static int open_base(struct snapshot *snapshot, const char *dir,
		     uint64_t identity, unsigned int depth,
		     struct progress *progress, char *err, size_t err_len);

/* The memory of the snapshot whose state reader is open, depth diffs
 * above it: for a diff, its bases' first (read from /base), then its own
 * layer. */
static int open_memory(int dir_fd, struct snapshot *snapshot,
		       struct state_reader *reader, bool diff,
		       uint64_t checksum, unsigned int depth,
		       struct progress *progress, char *err, size_t err_len)
{
	const char *base;
	uint64_t identity;

	if (!diff)
		return check_memory(dir_fd, snapshot, checksum, progress, err,
				    err_len);
	if (depth == SNAPSHOT_MAX_LAYERS) {
		snprintf(err, err_len, "more than %u diffs over one full snapshot",
			 SNAPSHOT_MAX_LAYERS);
		return -ELOOP;
	}
	int result = state_reader_begin(reader, BASE_NODE, BASE_STATE_VERSION);
	if (!result)
		result = state_reader_get_string(reader, "path", PATH_MAX, &base);
	if (!result)
		result = reader->base.get_u64(&reader->base, "identity", &identity);
	if (result) {
		snprintf(err, err_len, STATE_FILE ": %s", reader->err);
		return result;
	}
	result = open_base(snapshot, base, identity, depth + 1, progress, err,
			   err_len);
	return result ? result : check_diff_memory(dir_fd, snapshot, checksum,
						   progress, err, err_len);
}

/* The base a diff was taken over: the very snapshot (its checksum file
 * hashes to identity), its state intact, its memory (and its own bases')
 * checked and opened. A refusal names the base. */
static int open_base(struct snapshot *snapshot, const char *dir,
		     uint64_t identity, unsigned int depth,
		     struct progress *progress, char *err, size_t err_len)
{
	uint64_t state_checksum, memory_checksum, found;
	struct state_reader reader;
	void *state = NULL;
	size_t state_size;
	bool diff = false;
	char why[400];

	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		snprintf(err, err_len, "its base %s: %s", dir, strerror(errno));
		return -errno;
	}
	bool read_whole = false;
	int result = read_checksums(dir_fd, &state_checksum, &memory_checksum,
				    &found, &read_whole, why, sizeof(why));
	/* Another snapshot there, or this one's checksum file damaged: it
	 * is not the base either way. */
	if (read_whole && found != identity) {
		snprintf(err, err_len, "its base %s is not the snapshot it was "
			 "taken over (the base's checksum file differs)", dir);
		close(dir_fd);
		return -EINVAL;
	}
	if (!result)
		result = read_state(dir_fd, state_checksum, &state, &state_size,
				    &reader, why, sizeof(why));
	if (!result)
		result = read_format(&reader, &diff, why, sizeof(why));
	if (!result)
		result = open_memory(dir_fd, snapshot, &reader, diff,
				     memory_checksum, depth, progress, why,
				     sizeof(why));
	if (result)
		snprintf(err, err_len, "its base %s: %s", dir, why);
	free(state);
	close(dir_fd);
	return result;
}

int snapshot_open(const char *dir, const struct snapshot_leniency *leniency,
		  struct snapshot *snapshot, char *err, size_t err_len)
{
	static const struct snapshot_leniency strict;
	uint64_t state_checksum, memory_checksum;
	struct progress progress;
	bool diff = false;
	int result;

	if (!leniency)
		leniency = &strict;
	*snapshot = (struct snapshot){
		.memory_fd = -1,
		.memory_unchecked = leniency->skip_memory_check,
	};
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	bool read_whole;
	result = read_checksums(dir_fd, &state_checksum, &memory_checksum,
				&snapshot->identity, &read_whole, err, err_len);
	if (!result)
		result = read_state(dir_fd, state_checksum, &snapshot->state,
				    &snapshot->state_size, &snapshot->reader, err,
				    err_len);
	if (!result)
		result = read_format(&snapshot->reader, &diff, err, err_len);
	if (!result)
		result = read_config(snapshot, err, err_len);
	if (!result)
		result = vm_check_state(snapshot->config, &snapshot->reader, err,
					err_len);
	if (!result)
		result = check_disks(snapshot, leniency->allow_changed_disks, err,
				     err_len);
	if (!result) {
		progress_begin(&progress, snapshot->memory_unchecked ?
					  "opening the snapshot's memory" :
					  "checking the snapshot's memory");
		result = open_memory(dir_fd, snapshot, &snapshot->reader, diff,
				     memory_checksum, 0, &progress, err, err_len);
		progress_end(&progress);
	}
	close(dir_fd);
	if (result)
		snapshot_close(snapshot);
	return result;
}

int snapshot_check_new_process(const struct snapshot *snapshot, char *err,
			       size_t err_len)
{
	for (unsigned int i = 0; i < snapshot->config->nic_count; i++) {
		const struct net_config *nic = &snapshot->config->nics[i];
		if (nic->backend == NET_BACKEND_TAP && !nic->tap_name) {
			snprintf(err, err_len, "its network device %u is a TAP "
				 "device inherited as fd=%d, which cannot be "
				 "reattached in another process (ifname= can)",
				 i, nic->tap_fd);
			return -EINVAL;
		}
	}
	return 0;
}

void snapshot_close(struct snapshot *snapshot)
{
	free(snapshot->state);
	vm_config_free(snapshot->config);
	if (snapshot->memory_fd >= 0)
		close(snapshot->memory_fd);
	for (unsigned int i = 0; i < snapshot->layer_count; i++) {
		close(snapshot->layers[i].fd);
		free((uint64_t *)snapshot->layers[i].pages);
	}
	*snapshot = (struct snapshot){ .memory_fd = -1 };
}
