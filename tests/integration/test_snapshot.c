/*
 * Snapshot and restore with real vessel processes on this machine's own
 * /dev/kvm, the selftest guest counting on its console at CPL3: a restored
 * guest goes on from the next number in a new process, none lost or
 * repeated, lazily or eagerly; a snapshot is taken of a paused VM only,
 * into a new directory; and restore refuses each kind of damaged snapshot
 * with one line naming what is wrong.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libfdt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "guest_session.h"

#define TIMEOUT 60

extern char **environ;

static char socket_path[108], dir[128];
/* The copy of a snapshot a test damages. */
static char damaged[160];

static void name_paths(void)
{
	snprintf(socket_path, sizeof(socket_path), "/tmp/vessel-snapshot-%d.sock",
		 getpid());
	snprintf(dir, sizeof(dir), "/tmp/vessel-snapshot-%d", getpid());
	unlink(socket_path);
}

/* Runs `vessel ARGS...`: its exit status. */
static int vessel(char *const args[])
{
	const char *binary = getenv("VESSEL_BINARY");
	char *argv[16] = { (char *)binary };
	pid_t pid;
	int status;

	for (int i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	cr_assert_eq(posix_spawn(&pid, binary, NULL, NULL, argv, environ), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int client(const char *command)
{
	return vessel((char *[]){ (char *)command, "--api-sock", socket_path,
				  NULL });
}

/* Whether the API socket takes connections: vessel binds it, sets its
 * mode and only then listens, so the file alone is not enough. */
static bool socket_listens(void)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path);
	bool listens = fd >= 0 && !connect(fd, (struct sockaddr *)&address,
					   sizeof(address));
	if (fd >= 0)
		close(fd);
	return listens;
}

static void wait_for_socket(void)
{
	for (int tries = 0; tries < 500 && !socket_listens(); tries++)
		usleep(10000);
	cr_assert(socket_listens(), "no API socket");
}

/* vessel run of the selftest guest in mode, with the API on socket_path,
 * once it counts. */
static void start_guest(struct guest_session *session, const char *memory,
			const char *mode)
{
	char *argv[] = { "vessel", "run", "--kernel",
			 getenv("VESSEL_SELFTEST_GUEST"), "--memory",
			 (char *)memory, "--cmdline", (char *)mode,
			 "--api-sock", socket_path, NULL };

	cr_assert(argv[3], "VESSEL_SELFTEST_GUEST is not set");
	cr_assert_eq(guest_session_start(session, argv), 0);
	wait_for_socket();
	cr_assert(guest_session_expect(session, "\n20\n", TIMEOUT),
		  "the guest does not count: %s", session->output);
}

static void start_counting(struct guest_session *session, const char *memory)
{
	start_guest(session, memory, "mode=count 0 2000000");
}

/* Pauses the counting guest, snapshots it into dir and stops it. */
static void snapshot_and_stop(struct guest_session *session)
{
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(vessel((char *[]){ "snapshot", "--api-sock", socket_path,
					dir, NULL }), 0);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(session, TIMEOUT), 0);
}

/* The guest's console text in output: up to vessel's first own line. */
static size_t console_length(const char *output)
{
	const char *end = strstr(output, "\r\nvessel: ");

	return end ? (size_t)(end - output) : strlen(output);
}

/*
 * text is one count: after the greeting, lines 1, 2, 3, ... in order;
 * a line cut by the snapshot is finished by the restored guest. Returns
 * the last number.
 */
static unsigned long assert_one_count(char *text)
{
	unsigned long expected = 1;

	for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
		if (!strncmp(line, "selftest: ", 10))
			continue;
		char *end;
		unsigned long number = strtoul(line, &end, 10);
		cr_assert(!*end, "not a number: '%s'", line);
		cr_assert_eq(number, expected, "after %lu comes %lu", expected - 1,
			     number);
		expected++;
	}
	return expected - 1;
}

/*
 * Restores with argv (its --api-sock added) the guest first ran until
 * its last snapshot, and checks that the two consoles make one count
 * that the restored guest carries on.
 */
static void assert_restored_counts_on(struct guest_session *first,
				      const char *const argv[])
{
	struct guest_session second;
	char *args[12];
	unsigned int count = 0;

	for (; *argv; argv++)
		args[count++] = (char *)*argv;
	args[count++] = "--api-sock";
	args[count++] = socket_path;
	args[count] = NULL;
	size_t first_length = console_length(first->output);
	unlink(socket_path);
	cr_assert_eq(guest_session_start(&second, args), 0);
	wait_for_socket();
	/* 100 more lines after the restore. */
	guest_session_collect(&second, 1000);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&second, TIMEOUT), 0, "%s", second.output);

	size_t second_length = console_length(second.output);
	char *whole = malloc(first_length + second_length + 1);
	memcpy(whole, first->output, first_length);
	memcpy(whole + first_length, second.output, second_length);
	whole[first_length + second_length] = '\0';
	/* The stop may cut the last line short. */
	*(strrchr(whole, '\n') ?: whole) = '\0';
	/* The first process's count, to its last whole line. */
	char *before = strndup(first->output, first_length);
	*(strrchr(before, '\n') ?: before) = '\0';
	unsigned long paused_at = assert_one_count(before);
	unsigned long last = assert_one_count(whole);
	cr_assert_gt(last, paused_at + 10, "the restored guest counted from %lu "
		     "to %lu only", paused_at, last);
	free(before);
	free(whole);
	guest_session_close(&second);
}

static void restore_and_check(const char *const options[])
{
	struct guest_session first;
	const char *argv[8] = { "vessel", "restore", dir };
	unsigned int count = 3;

	name_paths();
	start_counting(&first, "64M");
	snapshot_and_stop(&first);
	for (; *options; options++)
		argv[count++] = *options;
	argv[count] = NULL;
	assert_restored_counts_on(&first, argv);
	guest_session_close(&first);
}

/* The snapshot and any damaged copy of it, even after a failed test. */
static void remove_snapshot(void)
{
	char command[320];

	snprintf(command, sizeof(command), "rm -rf %s %s-damaged", dir, dir);
	cr_assert_eq(system(command), 0);
	unlink(socket_path);
}

Test(snapshot, a_restored_guest_counts_on_from_the_next_number,
     .fini = remove_snapshot)
{
	restore_and_check((const char *[]){ NULL });
}

Test(snapshot, eagerly_restored_too, .fini = remove_snapshot)
{
	restore_and_check((const char *[]){ "--eager", NULL });
}

Test(snapshot, only_of_a_paused_vm_into_a_new_directory,
     .fini = remove_snapshot)
{
	struct guest_session session;
	struct stat info;

	name_paths();
	start_counting(&session, "64M");
	/* Refused while the guest runs ("cannot snapshot: the VM is
	 * active"). */
	cr_assert_eq(vessel((char *[]){ "snapshot", "--api-sock", socket_path,
					dir, NULL }), 1);
	cr_assert_neq(stat(dir, &info), 0, "a refused snapshot left %s", dir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(vessel((char *[]){ "snapshot", "--api-sock", socket_path,
					dir, NULL }), 1);
	cr_assert_eq(stat(dir, &info), 0, "the directory that was there is gone");
	cr_assert_eq(rmdir(dir), 0);
	/* The VM stayed paused; --resume runs it on. */
	cr_assert_eq(vessel((char *[]){ "snapshot", "--api-sock", socket_path,
					dir, "--resume", NULL }), 0);
	size_t printed = session.output_len;
	guest_session_collect(&session, 1000);
	cr_assert_gt(session.output_len, printed + 20, "the guest did not resume");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	char *text = strndup(session.output, console_length(session.output));
	*(strrchr(text, '\n') ?: text) = '\0';
	assert_one_count(text);
	free(text);
	guest_session_close(&session);
}

/* --- damaged snapshots --------------------------------------------------- */


static void copy_snapshot(void)
{
	char command[512];

	snprintf(damaged, sizeof(damaged), "%s-damaged", dir);
	snprintf(command, sizeof(command), "rm -rf %s && cp -r --sparse=always "
		 "%s %s", damaged, dir, damaged);
	cr_assert_eq(system(command), 0);
}

static void *read_whole(const char *name, size_t *size, size_t spare)
{
	char path[256];
	struct stat info;

	snprintf(path, sizeof(path), "%s/%s", damaged, name);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &info), 0);
	*size = (size_t)info.st_size;
	void *data = malloc(*size + spare);
	cr_assert_eq(read(fd, data, *size), (ssize_t)*size);
	close(fd);
	return data;
}

static void write_whole(const char *name, const void *data, size_t size)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", damaged, name);
	int fd = open(path, O_WRONLY | O_TRUNC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
}

/* state.dtb's checksum made right again, so the damage behind it shows. */
static void fix_state_checksum(void)
{
	size_t state_size, checksum_size;
	void *state = read_whole("state.dtb", &state_size, 0);
	char *checksum = read_whole("checksum", &checksum_size, 1);
	char line[64];

	snprintf(line, sizeof(line), "xxh3-64 %016" PRIx64,
		 (uint64_t)XXH3_64bits(state, state_size));
	memcpy(checksum, line, strlen(line));
	write_whole("checksum", checksum, checksum_size);
	free(state);
	free(checksum);
}

/* Edits the damaged copy's state tree with libfdt. */
static void edit_state(void (*edit)(void *fdt))
{
	size_t size;
	void *fdt = read_whole("state.dtb", &size, 0);
	void *larger = malloc(size + 4096);

	cr_assert_eq(fdt_open_into(fdt, larger, (int)size + 4096), 0);
	edit(larger);
	cr_assert_eq(fdt_pack(larger), 0);
	write_whole("state.dtb", larger, fdt_totalsize(larger));
	free(fdt);
	free(larger);
	fix_state_checksum();
}

/* vessel restore of the damaged copy: exit 1 and message on one line. */
/* vessel restore of the damaged snapshot, with option if not NULL. */
static void assert_refused_with(const char *option, const char *message)
{
	struct guest_session session;
	char *argv[] = { "vessel", "restore", damaged, (char *)option, NULL };

	cr_assert_eq(guest_session_start(&session, argv), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 1, "%s",
		     session.output);
	cr_assert(strstr(session.output, message), "expected \"%s\", got \"%s\"",
		  message, session.output);
	cr_assert(!strncmp(session.output, "vessel restore: ", 16), "%s",
		  session.output);
	cr_assert_eq(strchr(session.output, '\n'),
		     session.output + session.output_len - 1,
		     "not one line: %s", session.output);
	guest_session_close(&session);
}

static void assert_refused(const char *message)
{
	assert_refused_with(NULL, message);
}

static void version_3(void *fdt)
{
	cr_assert_eq(fdt_setprop_u32(fdt, fdt_path_offset(fdt, "/snapshot"),
				     "version", 3), 0);
}

static void another_machine(void *fdt)
{
	cr_assert_eq(fdt_setprop_string(fdt, fdt_path_offset(fdt, "/snapshot"),
					"machine", "aarch64-kvm-virt"), 0);
}

static void short_regs(void *fdt)
{
	cr_assert_eq(fdt_setprop_u64(fdt, fdt_path_offset(fdt, "/vcpu0"),
				     "regs", 1), 0);
}

static void no_serial(void *fdt)
{
	cr_assert_eq(fdt_del_node(fdt, fdt_path_offset(fdt, "/devices/serial0")), 0);
}

static void wrong_uart_value(void *fdt)
{
	cr_assert_eq(fdt_setprop_u64(fdt, fdt_path_offset(fdt, "/devices/serial0"),
				     "input-count", 1000), 0);
}

static void tap_by_descriptor(void *fdt)
{
	cr_assert_eq(fdt_setprop_string(fdt, fdt_path_offset(fdt, "/config"),
					"json", "{\"version\": 1, \"kernel\": "
					"\"/gone\", \"memory\": 67108864, "
					"\"nets\": [{\"backend\": \"tap\", "
					"\"fd\": 3}]}"), 0);
}

static void extra_device(void *fdt)
{
	int devices = fdt_path_offset(fdt, "/devices");
	int node = fdt_add_subnode(fdt, devices, "virtio-blk0");

	cr_assert_geq(node, 0);
	cr_assert_eq(fdt_setprop_u32(fdt, node, "version", 1), 0);
}

static void bad_config(void *fdt)
{
	cr_assert_eq(fdt_setprop_string(fdt, fdt_path_offset(fdt, "/config"),
					"json", "{\"memory\": \"lots\"}"), 0);
}

Test(snapshot, restore_refuses_each_kind_of_damage, .fini = remove_snapshot)
{
	struct guest_session session;

	name_paths();
	start_counting(&session, "64M");
	snapshot_and_stop(&session);
	guest_session_close(&session);

	static const struct {
		void (*edit)(void *fdt);
		const char *message;
	} edits[] = {
		{ version_3, "state.dtb: snapshot is of a version this vessel does "
			     "not read (it reads 1, and 2 for a diff)" },
		{ another_machine, "the snapshot is of a aarch64-kvm-virt machine" },
		{ bad_config, "state.dtb: config: " },
		{ tap_by_descriptor, "its network device 0 is a TAP device "
				     "inherited as fd=3" },
		{ short_regs, "vcpu0/regs: 8 bytes, expected 144" },
		{ no_serial, "devices/serial0 is missing" },
		{ wrong_uart_value, "devices/serial0: a value out of range" },
		{ extra_device, "the snapshot has a device virtio-blk0 this machine "
				"does not" },
	};
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		copy_snapshot();
		edit_state(edits[i].edit);
		assert_refused(edits[i].message);
	}

	char path[256];
	size_t size;
	/* A state cut short, its checksum made to match. */
	copy_snapshot();
	char *cut = read_whole("state.dtb", &size, 0);
	write_whole("state.dtb", cut, size - 100);
	free(cut);
	fix_state_checksum();
	assert_refused("state.dtb: the state is not a valid device tree");
	/* Damage the checksums catch. */
	copy_snapshot();
	char *state = read_whole("state.dtb", &size, 0);
	state[size / 2] ^= 1;
	write_whole("state.dtb", state, size);
	free(state);
	assert_refused("state.dtb does not match its checksum");
	copy_snapshot();
	snprintf(path, sizeof(path), "%s/memory", damaged);
	int fd = open(path, O_WRONLY);
	cr_assert_eq(pwrite(fd, "\x01", 1, 0x100000), 1);
	close(fd);
	assert_refused("memory does not match its checksum");
	cr_assert_eq(truncate(path, 32 << 20), 0);
	assert_refused("memory holds 33554432 bytes; the machine has 67108864");
	copy_snapshot();
	snprintf(path, sizeof(path), "%s/checksum", damaged);
	cr_assert_eq(unlink(path), 0);
	assert_refused("checksum: No such file or directory");
	copy_snapshot();
	write_whole("checksum", "xxh3-64 0 state.dtb\n", 20);
	assert_refused("checksum is not two lines");
	snprintf(path, sizeof(path), "rm -rf %s", damaged);
	cr_assert_eq(system(path), 0);
}

/* --skip-memory-check leaves the memory file's checksum unread, and
 * nothing else: a changed byte in a page the guest does not use is
 * refused without it and restored with it; a memory file of the wrong
 * size, or a damaged state, is still refused. */
Test(snapshot, skip_memory_check_leaves_only_the_memory_checksum_unread,
     .fini = remove_snapshot)
{
	struct guest_session first;
	char path[256];

	name_paths();
	start_counting(&first, "64M");
	snapshot_and_stop(&first);
	snprintf(path, sizeof(path), "%s/memory", dir);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "\x5a", 1, 48 << 20), 1);
	close(fd);
	snprintf(damaged, sizeof(damaged), "%s", dir);
	assert_refused("memory does not match its checksum");
	assert_restored_counts_on(&first, (const char *[]){
		"vessel", "restore", dir, "--skip-memory-check", NULL });
	guest_session_close(&first);

	copy_snapshot();
	snprintf(path, sizeof(path), "%s/memory", damaged);
	cr_assert_eq(truncate(path, 32 << 20), 0);
	assert_refused_with("--skip-memory-check",
			    "memory holds 33554432 bytes; the machine has 67108864");
	copy_snapshot();
	size_t size;
	char *state = read_whole("state.dtb", &size, 0);
	state[size / 2] ^= 1;
	write_whole("state.dtb", state, size);
	free(state);
	assert_refused_with("--skip-memory-check",
			    "state.dtb does not match its checksum");
}

/* Whether process pid maps guest RAM's memfd. */
static bool maps_guest_ram(pid_t pid)
{
	char path[64], line[512];
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "r");
	cr_assert_not_null(maps);
	while (fgets(line, sizeof(line), maps))
		found = found || strstr(line, "vessel-guest-ram");
	fclose(maps);
	return found;
}

Test(snapshot, suspend_releases_the_vm_and_resume_brings_it_back,
     .fini = remove_snapshot)
{
	struct guest_session session;

	name_paths();
	start_counting(&session, "64M");
	cr_assert(maps_guest_ram(session.pid));
	cr_assert_eq(vessel((char *[]){ "suspend", "--api-sock", socket_path,
					dir, NULL }), 0);
	cr_assert(!maps_guest_ram(session.pid), "guest memory is still mapped");
	guest_session_collect(&session, 500);
	size_t printed = session.output_len;
	guest_session_collect(&session, 300);
	cr_assert_eq(session.output_len, printed, "a suspended guest printed");
	/* Suspended twice, or snapshotted while suspended: refused. */
	cr_assert_eq(vessel((char *[]){ "suspend", "--api-sock", socket_path,
					"/tmp/vessel-snapshot-never", NULL }), 1);
	cr_assert_eq(client("resume"), 0);
	guest_session_collect(&session, 1000);
	cr_assert_gt(session.output_len, printed + 20, "the guest did not resume");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	char *text = strndup(session.output, console_length(session.output));
	*(strrchr(text, '\n') ?: text) = '\0';
	assert_one_count(text);
	free(text);
	guest_session_close(&session);
}

static char full_dir[160];

static void unmount_full(void)
{
	umount(full_dir);
	rmdir(full_dir);
}

/* A 64 KiB tmpfs at full_dir, room for a state and not for guest memory
 * (after name_paths), and target, name in it. Skips the test without
 * root. */
static void mount_full(char *target, size_t size, const char *name)
{
	if (getuid() != 0)
		cr_skip_test("mounting a small tmpfs needs root");
	snprintf(full_dir, sizeof(full_dir), "%s-full", dir);
	mkdir(full_dir, 0700);
	cr_assert_eq(mount("tmpfs", full_dir, "tmpfs", 0, "size=64k"), 0, "%s",
		     strerror(errno));
	snprintf(target, size, "%s/%s", full_dir, name);
}

Test(snapshot, a_full_disk_leaves_no_directory_and_the_vm_paused,
     .fini = unmount_full)
{
	struct guest_session session;
	char target[192];
	struct stat info;

	name_paths();
	mount_full(target, sizeof(target), "snap");
	start_counting(&session, "64M");
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(vessel((char *[]){ "snapshot", "--api-sock", socket_path,
					target, NULL }), 1);
	cr_assert_neq(stat(target, &info), 0, "the partial snapshot is left");
	size_t printed = session.output_len;
	cr_assert_eq(client("resume"), 0, "the VM is no longer paused");
	guest_session_collect(&session, 1000);
	cr_assert_gt(session.output_len, printed + 20, "the guest did not resume");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);
}

static char image[160];

static void remove_image_and_snapshot(void)
{
	unlink(image);
	remove_snapshot();
}

Test(snapshot, restore_takes_the_disk_only_as_it_was,
     .fini = remove_image_and_snapshot)
{
	struct guest_session session, restored;

	name_paths();
	snprintf(image, sizeof(image), "%s.img", dir);
	int fd = open(image, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	char *argv[] = { "vessel", "run", "--kernel",
			 getenv("VESSEL_SELFTEST_GUEST"), "--memory", "64M",
			 "--cmdline", "mode=count 0 2000000", "--disk", image,
			 "--api-sock", socket_path, NULL };
	cr_assert_eq(guest_session_start(&session, argv), 0);
	wait_for_socket();
	cr_assert(guest_session_expect(&session, "\n20\n", TIMEOUT));
	snapshot_and_stop(&session);
	guest_session_close(&session);

	/* As it was: restored, and it counts on. */
	unlink(socket_path);
	cr_assert_eq(guest_session_start(&restored, (char *[]){
		"vessel", "restore", dir, "--api-sock", socket_path, NULL }), 0);
	wait_for_socket();
	guest_session_collect(&restored, 1000);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&restored, TIMEOUT), 0, "%s",
		     restored.output);
	cr_assert_gt(restored.output_len, 100, "%s", restored.output);
	guest_session_close(&restored);

	/* Written since: refused. */
	snprintf(damaged, sizeof(damaged), "%s", dir);
	fd = open(image, O_WRONLY);
	cr_assert_eq(pwrite(fd, "x", 1, 4096), 1);
	close(fd);
	assert_refused("is not the file it was at the snapshot (its mtime-ns "
		       "changed)");
	/* Unless the user allows it: a warning naming the disk, and the
	 * guest goes on. */
	unlink(socket_path);
	cr_assert_eq(guest_session_start(&restored, (char *[]){
		"vessel", "restore", dir, "--allow-changed-disks", "--api-sock",
		socket_path, NULL }), 0);
	wait_for_socket();
	guest_session_collect(&restored, 1000);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&restored, TIMEOUT), 0, "%s",
		     restored.output);
	char warning[512];
	snprintf(warning, sizeof(warning), "vessel restore: %s: restoring anyway: "
		 "disk %s changed since the snapshot (its mtime-ns)", dir, image);
	cr_assert(!strncmp(restored.output, warning, strlen(warning)), "%s",
		  restored.output);
	cr_assert_gt(restored.output_len, 100 + strlen(warning), "%s",
		     restored.output);
	guest_session_close(&restored);
	/* A disk that is gone is refused all the same: the VM needs it. */
	cr_assert_eq(unlink(image), 0);
	assert_refused(": No such file or directory");
	cr_assert_eq(guest_session_start(&restored, (char *[]){
		"vessel", "restore", dir, "--allow-changed-disks", NULL }), 0);
	cr_assert_eq(guest_session_wait(&restored, TIMEOUT), 1, "%s",
		     restored.output);
	cr_assert(strstr(restored.output, ": No such file or directory"), "%s",
		  restored.output);
	guest_session_close(&restored);
}

/* PUT path with body on the API socket: the answer's status and text. */
static int put(const char *path, const char *body, char *answer, size_t size)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	char request[1024];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int status = 0;
	size_t got = 0;

	snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	snprintf(request, sizeof(request),
		 "PUT %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s", path, strlen(body), body);
	cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	for (ssize_t count; got < size - 1 &&
			    (count = read(fd, answer + got, size - 1 - got)) > 0;)
		got += (size_t)count;
	answer[got] = '\0';
	close(fd);
	cr_assert_eq(sscanf(answer, "HTTP/1.1 %d", &status), 1, "%s", answer);
	return status;
}

Test(snapshot, restored_through_the_api_of_vessel_serve,
     .fini = remove_snapshot)
{
	struct guest_session session, served;
	char body[256], answer[2048];

	name_paths();
	start_counting(&session, "64M");
	snapshot_and_stop(&session);
	size_t first_length = console_length(session.output);

	unlink(socket_path);
	cr_assert_eq(guest_session_start(&served, (char *[]){
		"vessel", "serve", "--api-sock", socket_path, NULL }), 0);
	wait_for_socket();
	cr_assert_eq(put("/api/v1/vm/restore", "{\"source\": \"/nonexistent\"}",
			 answer, sizeof(answer)), 400);
	cr_assert(strstr(answer, "/nonexistent: No such file or directory"), "%s",
		  answer);
	snprintf(body, sizeof(body), "{\"source\": \"%s\", \"eager\": true}", dir);
	cr_assert_eq(put("/api/v1/vm/restore", body, answer, sizeof(answer)), 204,
		     "%s", answer);
	cr_assert_eq(put("/api/v1/vm/restore", body, answer, sizeof(answer)), 409,
		     "a second restore into a running VM: %s", answer);
	guest_session_collect(&served, 1000);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&served, TIMEOUT), 0);

	size_t second_length = console_length(served.output);
	char *whole = malloc(first_length + second_length + 1);
	memcpy(whole, session.output, first_length);
	memcpy(whole + first_length, served.output, second_length);
	whole[first_length + second_length] = '\0';
	*(strrchr(whole, '\n') ?: whole) = '\0';
	cr_assert_gt(assert_one_count(whole), 40);
	free(whole);
	guest_session_close(&session);
	guest_session_close(&served);
}

static char kernel_copy[160];

static void remove_kernel_and_snapshot(void)
{
	unlink(kernel_copy);
	remove_snapshot();
}

/* Restore loads no kernel: the file may be gone. Restored paused, the
 * guest prints nothing until resumed. */
Test(snapshot, restore_needs_no_kernel_and_can_wait_paused,
     .fini = remove_kernel_and_snapshot)
{
	struct guest_session session, restored;
	char command[512];

	name_paths();
	snprintf(kernel_copy, sizeof(kernel_copy), "%s.elf", dir);
	snprintf(command, sizeof(command), "cp %s %s",
		 getenv("VESSEL_SELFTEST_GUEST"), kernel_copy);
	cr_assert_eq(system(command), 0);
	char *argv[] = { "vessel", "run", "--kernel", kernel_copy, "--memory",
			 "64M", "--cmdline", "mode=count 0 2000000", "--api-sock",
			 socket_path, NULL };
	cr_assert_eq(guest_session_start(&session, argv), 0);
	wait_for_socket();
	cr_assert(guest_session_expect(&session, "\n20\n", TIMEOUT));
	snapshot_and_stop(&session);
	guest_session_close(&session);
	cr_assert_eq(unlink(kernel_copy), 0);

	unlink(socket_path);
	cr_assert_eq(guest_session_start(&restored, (char *[]){
		"vessel", "restore", dir, "--paused", "--api-sock", socket_path,
		NULL }), 0);
	wait_for_socket();
	guest_session_collect(&restored, 300);
	cr_assert_eq(restored.output_len, 0, "a paused restore printed: %s",
		     restored.output);
	cr_assert_eq(client("resume"), 0);
	guest_session_collect(&restored, 1000);
	cr_assert_gt(restored.output_len, 20, "the guest did not resume");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&restored, TIMEOUT), 0);
	guest_session_close(&restored);
}

/* `timeout 1 vessel restore DIR`, its output dropped: its exit status. */
static int restore_briefly(const char *directory)
{
	char *argv[] = { "timeout", "-s", "TERM", "1", getenv("VESSEL_BINARY"),
			 "restore", (char *)directory, NULL };
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int status;

	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	cr_assert_eq(posix_spawnp(&pid, "timeout", &actions, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&actions);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Random damage to the state, its checksum made to match: restore
 * refuses it (1), or runs what it got until the guest stops (0, 1) or the
 * timeout ends it (124); it never crashes. */
Test(snapshot, random_damage_to_the_state_never_crashes_restore,
     .fini = remove_snapshot)
{
	struct guest_session session;
	unsigned int refused = 0;

	name_paths();
	start_counting(&session, "64M");
	snapshot_and_stop(&session);
	guest_session_close(&session);
	srand(19);
	for (int round = 0; round < 25; round++) {
		size_t size;
		copy_snapshot();
		uint8_t *state = read_whole("state.dtb", &size, 0);
		for (int flips = 1 + rand() % 3; flips > 0; flips--)
			state[(size_t)rand() % size] ^= (uint8_t)(1 + rand() % 255);
		write_whole("state.dtb", state, size);
		free(state);
		fix_state_checksum();
		int status = restore_briefly(damaged);
		cr_assert(status == 0 || status == 1 || status == 124,
			  "round %d: vessel restore ended with %d", round, status);
		refused += status == 1;
	}
	cr_log_info("%u of 25 damaged states refused", refused);
	char command[256];
	snprintf(command, sizeof(command), "rm -rf %s", damaged);
	cr_assert_eq(system(command), 0);
}

/* --- diff snapshots ------------------------------------------------------ */

static char diff_dir[160], second_diff[160];

static void name_diff_paths(void)
{
	name_paths();
	snprintf(diff_dir, sizeof(diff_dir), "%s-diff", dir);
	snprintf(second_diff, sizeof(second_diff), "%s-diff2", dir);
}

static void remove_diffs(void)
{
	char command[512];

	snprintf(command, sizeof(command), "rm -rf %s %s %s-damaged", diff_dir,
		 second_diff, dir);
	cr_assert_eq(system(command), 0);
	remove_snapshot();
}

/* Bytes the file name holds on disk (its holes left out). */
static long long allocated(const char *directory, const char *name)
{
	char path[256];
	struct stat info;

	snprintf(path, sizeof(path), "%s/%s", directory, name);
	cr_assert_eq(stat(path, &info), 0, "%s: %s", path, strerror(errno));
	return (long long)info.st_blocks * 512;
}

/* vessel snapshot of the paused VM into directory, a diff or not, the
 * VM run on after or not. */
static int snapshot_into(const char *directory, bool diff, bool resume)
{
	char *argv[8] = { "snapshot", "--api-sock", socket_path,
			  (char *)directory };
	unsigned int count = 4;

	if (diff)
		argv[count++] = "--diff";
	if (resume)
		argv[count++] = "--resume";
	argv[count] = NULL;
	return vessel(argv);
}

/* mode=write: 8 MiB written at boot, 256 KiB more for each byte sent. */
static void start_writing(struct guest_session *session)
{
	start_guest(session, "64M", "mode=write 8 256 2000000");
}

/* The guest rewrites 256 KiB, counts on a little, and is paused. */
static void touch_and_pause(struct guest_session *session)
{
	cr_assert_eq(guest_session_send(session, "x"), 0);
	cr_assert(guest_session_expect(session, "selftest: touched", TIMEOUT),
		  "%s", session->output);
	guest_session_collect(session, 200);
	cr_assert_eq(client("pause"), 0);
}

/* A full snapshot into dir, a diff into diff_dir, the guest writing
 * between them; then a second diff over the first when second is set.
 * The VM is stopped at the last one. */
static void full_then_diffs(struct guest_session *session, bool second)
{
	start_writing(session);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(snapshot_into(dir, false, true), 0);
	touch_and_pause(session);
	cr_assert_eq(snapshot_into(diff_dir, true, second), 0);
	if (second) {
		touch_and_pause(session);
		cr_assert_eq(snapshot_into(second_diff, true, false), 0);
	}
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(session, TIMEOUT), 0);
}

Test(snapshot, a_diff_holds_the_pages_written_since_and_restores_over_its_base,
     .fini = remove_diffs)
{
	struct guest_session session;
	struct stat info;

	name_diff_paths();
	full_then_diffs(&session, true);
	long long full = allocated(dir, "memory");
	long long diff = allocated(diff_dir, "memory");
	/* 8 MiB and more in the full one; the 256 KiB rewritten, the
	 * guest's stack and the console's work in the diff. */
	cr_assert_gt(full, 8 << 20, "the full snapshot holds %lld bytes", full);
	cr_assert_geq(diff, 256 << 10, "the diff holds %lld bytes", diff);
	cr_assert_lt(diff, full / 8, "the diff holds %lld bytes, the full one "
		     "%lld", diff, full);
	char pages[256];
	snprintf(pages, sizeof(pages), "%s/pages", diff_dir);
	cr_assert_eq(stat(pages, &info), 0);
	cr_assert_geq(info.st_size, 64 * 8, "%lld bytes of page numbers",
		      (long long)info.st_size);
	/* The second diff, over the first over the full one: the guest
	 * counts on from where it was, lazily and eagerly. */
	assert_restored_counts_on(&session, (const char *[]){
		"vessel", "restore", second_diff, NULL });
	assert_restored_counts_on(&session, (const char *[]){
		"vessel", "restore", second_diff, "--eager", NULL });
	guest_session_close(&session);
}

Test(snapshot, a_diff_needs_its_own_base, .fini = remove_diffs)
{
	struct guest_session session;
	struct stat info;
	char command[512];

	name_diff_paths();
	/* No full snapshot yet: no base to take a diff over. */
	start_writing(&session);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(snapshot_into(diff_dir, true, false), 1);
	cr_assert_neq(stat(diff_dir, &info), 0, "a refused diff left %s",
		      diff_dir);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);

	full_then_diffs(&session, false);
	guest_session_close(&session);
	snprintf(damaged, sizeof(damaged), "%s", diff_dir);
	/* The base moved away. */
	snprintf(command, sizeof(command), "mv %s %s-damaged", dir, dir);
	cr_assert_eq(system(command), 0);
	assert_refused("its base ");
	assert_refused(": No such file or directory");
	/* Another snapshot where the base was. */
	start_counting(&session, "64M");
	snapshot_and_stop(&session);
	guest_session_close(&session);
	assert_refused("is not the snapshot it was taken over");
	snprintf(command, sizeof(command), "rm -rf %s && mv %s-damaged %s", dir,
		 dir, dir);
	cr_assert_eq(system(command), 0);
	/* The base damaged. */
	char path[256];
	snprintf(path, sizeof(path), "%s/memory", dir);
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "\x01", 1, 0x1000000), 1);
	cr_assert_eq(pwrite(fd, "\x00", 1, 0x1000000 + 8), 1);
	close(fd);
	assert_refused("its base ");
	assert_refused("memory does not match its checksum");
}

Test(snapshot, a_damaged_diff_is_refused, .fini = remove_diffs)
{
	struct guest_session session;
	size_t size;

	name_diff_paths();
	full_then_diffs(&session, false);
	guest_session_close(&session);
	snprintf(damaged, sizeof(damaged), "%s-damaged", dir);
	char command[512];
	snprintf(command, sizeof(command), "rm -rf %s && cp -r --sparse=always "
		 "%s %s", damaged, diff_dir, damaged);
	cr_assert_eq(system(command), 0);
	/* A list cut short. */
	uint64_t *list = read_whole("pages", &size, 0);
	write_whole("pages", list, size - 3);
	assert_refused("pages: ");
	assert_refused("not a whole number of 8-byte page numbers");
	/* A page beyond RAM. */
	list[size / 8 - 1] = 1u << 20;
	write_whole("pages", list, size);
	assert_refused("page 1048576 is beyond guest RAM's 16384 pages");
	/* A page left out: the checksum holds the list too. */
	write_whole("pages", list, size - 8);
	assert_refused("memory does not match its checksum");
	free(list);
	/* A diff of a machine with less RAM than its base's. */
	write_whole("pages", "", 0);
	snprintf(command, sizeof(command), "%s/memory", damaged);
	cr_assert_eq(truncate(command, 32 << 20), 0);
	assert_refused("memory holds 33554432 bytes");
}

static void unmount_and_remove_diffs(void)
{
	unmount_full();
	remove_diffs();
}

Test(snapshot, a_failed_diff_leaves_its_pages_to_the_next,
     .fini = unmount_and_remove_diffs)
{
	struct guest_session session;
	char target[192];

	name_diff_paths();
	/* Not room for the 256 KiB the guest rewrites. */
	mount_full(target, sizeof(target), "diff");
	start_writing(&session);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(snapshot_into(dir, false, true), 0);
	touch_and_pause(&session);
	cr_assert_eq(snapshot_into(target, true, false), 1);
	unmount_full();
	/* The next diff has the pages the failed one had taken. */
	cr_assert_eq(snapshot_into(diff_dir, true, false), 0);
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	cr_assert_geq(allocated(diff_dir, "memory"), 256 << 10);
	assert_restored_counts_on(&session, (const char *[]){
		"vessel", "restore", diff_dir, NULL });
	guest_session_close(&session);
}

/* The sum the guest prints next for its entropy page ("0x" and 16 hex
 * digits). */
static void entropy_sum(struct guest_session *session, char sum[19])
{
	static const char label[] = "selftest: entropy ";

	cr_assert(guest_session_expect(session, label, TIMEOUT), "%s",
		  session->output);
	guest_session_collect(session, 100);
	const char *found = session->output, *next;
	while ((next = strstr(found + 1, label)))
		found = next;
	snprintf(sum, 19, "%s", found + strlen(label));
}

Test(snapshot, a_page_only_vessel_wrote_is_in_the_diff, .fini = remove_diffs)
{
	struct guest_session session, restored;
	char written[19], read[19];

	name_diff_paths();
	start_writing(&session);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(snapshot_into(dir, false, true), 0);
	/* The virtio-rng fills a page the guest neither writes nor reads
	 * before the diff (under shadow paging KVM may log a read of a page
	 * whose guest PTE is dirty as a write): only vessel's own mark puts
	 * it in the diff. */
	cr_assert_eq(guest_session_send(&session, "r"), 0);
	cr_assert(guest_session_expect(&session, "selftest: entropy filled",
				       TIMEOUT), "%s", session.output);
	cr_assert_eq(client("pause"), 0);
	cr_assert_eq(snapshot_into(diff_dir, true, true), 0);
	cr_assert_eq(guest_session_send(&session, "s"), 0);
	entropy_sum(&session, written);
	cr_assert_str_neq(written, "0x0000000000000000", "the page stayed zero");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0);
	guest_session_close(&session);

	unlink(socket_path);
	cr_assert_eq(guest_session_start(&restored, (char *[]){
		"vessel", "restore", diff_dir, "--api-sock", socket_path, NULL }),
		0);
	wait_for_socket();
	cr_assert_eq(guest_session_send(&restored, "s"), 0);
	entropy_sum(&restored, read);
	cr_assert_str_eq(read, written, "the restored page is not the one the "
			 "rng wrote");
	cr_assert_eq(client("stop"), 0);
	cr_assert_eq(guest_session_wait(&restored, TIMEOUT), 0);
	guest_session_close(&restored);
}
