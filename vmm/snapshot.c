#include "snapshot.h"

#include "../devices/array.h"
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define STATE_FILE "state.dtb"
#define MEMORY_FILE "memory"
#define CHECKSUM_FILE "checksum"
#define SNAPSHOT_NODE "/snapshot"
#define CONFIG_NODE "/config"
#define DISKS_NODE "/disks"
#define DISK_STATE_VERSION 1
/* The machine a snapshot is of: vessel's x86 PC on KVM. */
#define SNAPSHOT_MACHINE "x86_64-kvm-pc"
/* Far more than the state of any machine vessel builds. */
#define MAX_STATE_SIZE (64u << 20)
#define MAX_CONFIG_JSON (64u << 10)

static const char *const snapshot_files[] = {
	CHECKSUM_FILE, STATE_FILE, MEMORY_FILE,
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

static int check_disks(struct snapshot *snapshot, char *err, size_t err_len)
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
			if (saved != identity[field]) {
				snprintf(err, err_len, "disk %s is not the file it "
					 "was at the snapshot (its %s changed): the "
					 "guest's memory would not match it", disk,
					 disk_fields[field]);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* The state tree: the format's node and the configuration, then the
 * machine's own. */
static int write_state(struct vm *vm, const struct vm_config *config,
		       struct state_writer *writer, char *err, size_t err_len)
{
	struct json_object *json = vm_config_to_json(config);
	const char *text = json ? json_object_to_json_string_ext(json,
						JSON_C_TO_STRING_PLAIN) : NULL;
	int result = text ? 0 : -ENOMEM;

	if (!result)
		result = state_writer_begin(writer, SNAPSHOT_NODE, SNAPSHOT_VERSION);
	if (!result)
		result = state_writer_put_string(writer, "machine", SNAPSHOT_MACHINE);
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

int snapshot_write(struct vm *vm, const struct vm_config *config,
		   const char *dir, char *err, size_t err_len)
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
	result = write_state(vm, config, &writer, err, err_len);
	if (!result && (result = state_writer_finish(&writer, &state, &state_size)))
		snprintf(err, err_len, "writing the state: %s", strerror(-result));
	if (!result) {
		int memory_fd = openat(dir_fd, MEMORY_FILE,
				       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		result = memory_fd < 0 ? -errno :
			vm_save_memory(vm, memory_fd, &memory_checksum, err,
				       err_len);
		if (memory_fd < 0)
			snprintf(err, err_len, "%s/" MEMORY_FILE ": %s", dir,
				 strerror(-result));
		if (!result && fsync(memory_fd)) {
			result = -errno;
			snprintf(err, err_len, "writing guest memory: %s",
				 strerror(-result));
		}
		if (memory_fd >= 0)
			close(memory_fd);
	}
	if (!result) {
		const char *what = STATE_FILE;
		result = write_file(dir_fd, STATE_FILE, state, state_size);
		snprintf(checksums, sizeof(checksums),
			 "xxh3-64 %016" PRIx64 " " STATE_FILE "\n"
			 "xxh3-64 %016" PRIx64 " " MEMORY_FILE "\n",
			 (uint64_t)XXH3_64bits(state, state_size), memory_checksum);
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

/* The checksum file's two lines. */
static int read_checksums(int dir_fd, uint64_t *state, uint64_t *memory,
			  char *err, size_t err_len)
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

static int read_state(int dir_fd, struct snapshot *snapshot, char *err,
		      size_t err_len)
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
	snapshot->state_size = (size_t)info.st_size;
	snapshot->state = malloc(snapshot->state_size + 1);
	ssize_t got = snapshot->state ?
		pread(fd, snapshot->state, snapshot->state_size, 0) : -1;
	close(fd);
	if (got != (ssize_t)snapshot->state_size) {
		snprintf(err, err_len, STATE_FILE ": cannot be read in full");
		return -EIO;
	}
	return 0;
}

static int refused(const struct snapshot *snapshot, int result, char *err,
		   size_t err_len)
{
	snprintf(err, err_len, STATE_FILE ": %s", snapshot->reader.err);
	return result;
}

/* The format's node and the configuration it was taken with. */
static int read_config(struct snapshot *snapshot, char *err, size_t err_len)
{
	struct state_reader *reader = &snapshot->reader;
	const char *machine, *text;
	int result = state_reader_begin(reader, SNAPSHOT_NODE, SNAPSHOT_VERSION);

	if (!result)
		result = state_reader_get_string(reader, "machine", 64, &machine);
	if (result)
		return refused(snapshot, result, err, err_len);
	if (strcmp(machine, SNAPSHOT_MACHINE)) {
		snprintf(err, err_len, "the snapshot is of a %s machine; this "
			 "vessel restores %s", machine, SNAPSHOT_MACHINE);
		return -EINVAL;
	}
	result = state_reader_begin(reader, CONFIG_NODE, VM_CONFIG_VERSION);
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

static int check_memory(int dir_fd, struct snapshot *snapshot,
			uint64_t checksum, char *err, size_t err_len)
{
	struct stat info;
	uint64_t found;

	snapshot->memory_fd = openat(dir_fd, MEMORY_FILE, O_RDONLY | O_CLOEXEC);
	if (snapshot->memory_fd < 0 || fstat(snapshot->memory_fd, &info)) {
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
	int result = vm_memory_image_checksum(snapshot->memory_fd,
					      snapshot->config->memory_size,
					      &found);
	if (result) {
		snprintf(err, err_len, MEMORY_FILE ": %s", strerror(-result));
		return result;
	}
	if (found != checksum) {
		snprintf(err, err_len, MEMORY_FILE " does not match its checksum "
			 "(damaged or changed since the snapshot)");
		return -EINVAL;
	}
	return 0;
}

int snapshot_open(const char *dir, struct snapshot *snapshot, char *err,
		  size_t err_len)
{
	uint64_t state_checksum, memory_checksum;
	int result;

	*snapshot = (struct snapshot){ .memory_fd = -1 };
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) {
		snprintf(err, err_len, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	result = read_checksums(dir_fd, &state_checksum, &memory_checksum, err,
				err_len);
	if (!result)
		result = read_state(dir_fd, snapshot, err, err_len);
	if (!result && XXH3_64bits(snapshot->state, snapshot->state_size) !=
			       state_checksum) {
		snprintf(err, err_len, STATE_FILE " does not match its checksum "
			 "(damaged or changed since the snapshot)");
		result = -EINVAL;
	}
	if (!result) {
		result = state_reader_open(&snapshot->reader, snapshot->state,
					   snapshot->state_size);
		if (result)
			refused(snapshot, result, err, err_len);
	}
	if (!result)
		result = read_config(snapshot, err, err_len);
	if (!result)
		result = vm_check_state(snapshot->config, &snapshot->reader, err,
					err_len);
	if (!result)
		result = check_disks(snapshot, err, err_len);
	if (!result)
		result = check_memory(dir_fd, snapshot, memory_checksum, err,
				      err_len);
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
	*snapshot = (struct snapshot){ .memory_fd = -1 };
}
