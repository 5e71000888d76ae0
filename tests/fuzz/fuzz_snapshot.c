/*
 * A snapshot's state tree as restore reads it (vmm/snapshot.c): state.dtb,
 * its configuration, the VM's and each vCPU's parts, its disks. The
 * checksum file the harness writes matches the input, so the fuzzer gets
 * past the checksum to the structure behind it, as a snapshot damaged
 * before its checksum was taken, or made by hand, would. A refusal must
 * say why in one line; nothing may crash or leak.
 *
 * Input: the bytes of state.dtb. The memory file is empty, so a tree good
 * enough to get that far is refused there.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "vmm/snapshot.h"

static char dir[] = "/tmp/vessel-fuzz-snapshot-XXXXXX";

static void write_file(const char *name, const void *data, size_t size)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
}

static void remove_dir(void)
{
	static const char *const names[] = { "state.dtb", "checksum", "memory" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir) || atexit(remove_dir))
		abort();
	write_file("memory", NULL, 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot snapshot;
	char checksums[128], err[512] = "";

	write_file("state.dtb", data, size);
	/* The memory file is empty: no page, the checksum of nothing. */
	snprintf(checksums, sizeof(checksums),
		 "xxh3-64 %016" PRIx64 " state.dtb\nxxh3-64 %016" PRIx64 " memory\n",
		 (uint64_t)XXH3_64bits(data, size), (uint64_t)0);
	write_file("checksum", checksums, strlen(checksums));
	if (snapshot_open(dir, NULL, &snapshot, err, sizeof(err)) == 0) {
		snapshot_close(&snapshot);
		return 0;
	}
	if (!err[0] || strchr(err, '\n'))
		abort();
	return 0;
}
