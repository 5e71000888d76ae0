/* vessel run's command line: good values parse, bad ones are refused with a
 * message naming the option and the value; then the checks of the files
 * the options name (vmm/config.h). */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/config.h"
#include "../../vmm/options.h"

static char err[256];

static int parse(struct vm_config *config, int argc, char **argv)
{
	err[0] = '\0';
	return options_parse_run(argc, argv, config, NULL, err, sizeof(err));
}

/* Every test parses into this one, released after it. */
static struct vm_config config;

static void release_config(void)
{
	vm_config_release(&config);
}

TestSuite(options, .fini = release_config);

#define PARSE(config, ...)                                               \
	({                                                               \
		char *argv_[] = { "run", __VA_ARGS__ };                  \
		parse(config, sizeof(argv_) / sizeof(argv_[0]), argv_); \
	})

Test(options, defaults)
{

	cr_assert_eq(PARSE(&config, "--kernel", "/k"), OPTIONS_OK);
	cr_assert_str_eq(config.kernel_path, "/k");
	cr_assert_null(config.initrd_path);
	cr_assert_eq(config.memory_size, 512ULL << 20);
	cr_assert_eq(config.cpu_count, 1);
	cr_assert_not(config.no_reboot);
	cr_assert_str_eq(config.cmdline, OPTIONS_DEFAULT_CMDLINE);
	cr_assert_eq(config.feature_mask.count, 0);
}

Test(options, every_option)
{

	cr_assert_eq(PARSE(&config, "-k", "/k", "--initrd", "/i", "--cmdline",
			   "console=ttyS0 quiet", "--memory", "2G", "--cpus", "4",
			   "--cpu-features", "-xsave,-cx16,+sse2", "--no-reboot"),
		     OPTIONS_OK, "%s", err);
	cr_assert_str_eq(config.initrd_path, "/i");
	cr_assert_str_eq(config.cmdline, "console=ttyS0 quiet");
	cr_assert_eq(config.memory_size, 2ULL << 30);
	cr_assert_eq(config.cpu_count, 4);
	cr_assert(config.no_reboot);
	cr_assert_eq(config.feature_mask.count, 3);
	cr_assert_str_eq(config.feature_mask.changes[0].feature->name, "xsave");
	cr_assert_not(config.feature_mask.changes[0].enable);
	cr_assert(config.feature_mask.changes[2].enable);
}

Test(options, help_is_not_an_error)
{

	cr_redirect_stdout();
	cr_assert_eq(PARSE(&config, "--help"), OPTIONS_HELP);
}

Test(options, kernel_is_required)
{

	cr_assert_eq(PARSE(&config, "--memory", "1G"), -EINVAL);
	cr_assert(strstr(err, "--kernel"), "%s", err);
}

Test(options, bad_memory_values)
{
	static const char *bad[] = { "", "0", "-1", "12Q", "1.5G", "M",
				     "99999999999999999999", "16777216T", "1000" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(PARSE(&config, "-k", "/k", "--memory", (char *)bad[i]),
			     -EINVAL, "accepted --memory '%s'", bad[i]);
		cr_assert(strstr(err, "--memory"), "%s", err);
	}
}

Test(options, bad_cpu_counts)
{
	static const char *bad[] = { "0", "-2", "255", "four", "2x", "" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(PARSE(&config, "-k", "/k", "--cpus", (char *)bad[i]),
			     -EINVAL, "accepted --cpus '%s'", bad[i]);
		cr_assert(strstr(err, "--cpus"), "%s", err);
	}
	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpus", "254"), OPTIONS_OK);
}

Test(options, bad_cpu_features)
{

	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpu-features", "-nosuch"),
		     -EINVAL);
	cr_assert(strstr(err, "nosuch"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpu-features", "xsave"),
		     -EINVAL);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpu-features", "-xsave,,"),
		     -EINVAL);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpu-features", "-"), -EINVAL);
}

Test(options, unknown_option_and_stray_argument)
{

	cr_assert_eq(PARSE(&config, "-k", "/k", "--frobnicate"), -EINVAL);
	cr_assert(strstr(err, "--frobnicate"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "extra"), -EINVAL);
	cr_assert(strstr(err, "extra"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k"), -EINVAL);
	cr_assert(strstr(err, "needs a value"), "%s", err);
}

/* An unknown letter in a group of short options is named as itself, not
 * as the argument before the group. */
Test(options, unknown_option_in_a_group)
{

	cr_assert_eq(PARSE(&config, "-xk", "/k"), -EINVAL);
	cr_assert_str_eq(err, "unknown option '-x' (see vessel run --help)");
	cr_assert_eq(PARSE(&config, "-k", "/k", "-y"), -EINVAL);
	cr_assert_str_eq(err, "unknown option '-y' (see vessel run --help)");
}

Test(options, sizes)
{
	uint64_t bytes;

	cr_assert_eq(options_parse_size("512M", &bytes), 0);
	cr_assert_eq(bytes, 512ULL << 20);
	cr_assert_eq(options_parse_size("4GiB", &bytes), 0);
	cr_assert_eq(bytes, 4ULL << 30);
	cr_assert_eq(options_parse_size("64k", &bytes), 0);
	cr_assert_eq(bytes, 64ULL << 10);
	cr_assert_eq(options_parse_size("4096", &bytes), 0);
	cr_assert_eq(bytes, 4096);
	cr_assert_eq(options_parse_size("1MB", &bytes), 0);
	cr_assert_eq(bytes, 1ULL << 20);
	cr_assert_eq(options_parse_size(" 1M", &bytes), -EINVAL);
	cr_assert_eq(options_parse_size("1Mx", &bytes), -EINVAL);
}

Test(options, disks)
{
	char first[] = "/images/root.img,readonly,serial=root-disk";
	char second[] = "/dev/sdb,cache=none,queues=4";

	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", first, "--disk", second),
		     OPTIONS_OK, "%s", err);
	cr_assert_eq(config.disk_count, 2);
	cr_assert_str_eq(config.disks[0].path, "/images/root.img");
	cr_assert(config.disks[0].read_only);
	cr_assert_str_eq(config.disks[0].serial, "root-disk");
	cr_assert_not(config.disks[0].direct);
	cr_assert_eq(config.disks[0].queues, 0, "one per vCPU");
	cr_assert_str_eq(config.disks[1].path, "/dev/sdb");
	cr_assert_eq(config.disks[1].queues, 4);
	cr_assert_not(config.disks[1].read_only);
	cr_assert(config.disks[1].direct);
	cr_assert_str_eq(config.disks[1].serial, "");
}

Test(options, bad_disks)
{
	char empty[] = ",readonly";
	char unknown[] = "/img,fast";
	char long_serial[] = "/img,serial=this-serial-is-longer-than-20";
	char bad_cache[] = "/img,cache=unsafe";
	char no_queues[] = "/img,queues=0";
	char many_queues[] = "/img,queues=17";

	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", empty), -EINVAL);
	cr_assert(strstr(err, "--disk"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", unknown), -EINVAL);
	cr_assert(strstr(err, "fast"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", long_serial), -EINVAL);
	cr_assert(strstr(err, "serial"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", bad_cache), -EINVAL);
	cr_assert(strstr(err, "cache=unsafe"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", no_queues), -EINVAL);
	cr_assert(strstr(err, "--disk /img: queues: '0'"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", many_queues), -EINVAL);
	cr_assert(strstr(err, "from 1 to 16"), "%s", err);
}

Test(options, at_most_eight_disks)
{
	char disks[9][8];
	char *argv[21] = { "run", "-k", "/k" };
	int argc = 3;

	for (int i = 0; i < 9; i++) {
		snprintf(disks[i], sizeof(disks[i]), "/d%d", i);
		argv[argc++] = "--disk";
		argv[argc++] = disks[i];
	}
	cr_assert_eq(parse(&config, argc, argv), -EINVAL);
	cr_assert(strstr(err, "more than 8"), "%s", err);
}

Test(options, nics)
{
	char user[] = "user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.15:53,restrict=on";
	char tap[] = "tap,ifname=tap0,mac=52:54:00:ab:cd:ef";
	char tap_fd[] = "tap,fd=5";

	cr_assert_eq(PARSE(&config, "-k", "/k", "--net", user, "--net", tap,
			   "--net", tap_fd),
		     OPTIONS_OK, "%s", err);
	cr_assert_eq(config.nic_count, 3);

	const struct net_config *first = &config.nics[0];
	cr_assert_eq(first->backend, NET_BACKEND_USER);
	cr_assert(first->user.restricted);
	cr_assert_eq(first->user.hostfwd_count, 2);
	cr_assert_not(first->user.hostfwd[0].udp);
	cr_assert_eq(first->user.hostfwd[0].host_port, 8080);
	cr_assert_eq(first->user.hostfwd[0].guest_port, 80);
	cr_assert(first->user.hostfwd[1].udp);
	cr_assert_eq(first->user.hostfwd[1].guest_port, 53);
	/* Default MACs differ by position. */
	const uint8_t first_mac[6] = { 0x02, 0x76, 0x73, 0, 0, 1 };
	cr_assert_arr_eq(first->mac, first_mac, 6);

	const struct net_config *second = &config.nics[1];
	const uint8_t second_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
	cr_assert_eq(second->backend, NET_BACKEND_TAP);
	cr_assert_str_eq(second->tap_name, "tap0");
	cr_assert_eq(second->tap_fd, -1);
	cr_assert_arr_eq(second->mac, second_mac, 6);

	const struct net_config *third = &config.nics[2];
	const uint8_t third_mac[6] = { 0x02, 0x76, 0x73, 0, 0, 3 };
	cr_assert_null(third->tap_name);
	cr_assert_eq(third->tap_fd, 5);
	cr_assert_arr_eq(third->mac, third_mac, 6);
}

Test(options, bad_nics)
{
	static const char *bad[] = {
		"", "slirp", "user,ifname=tap0", "tap", "tap,ifname=a,fd=3",
		"tap,ifname=", "tap,ifname=name-longer-than-15", "tap,fd=-1",
		"tap,fd=x", "user,mac=01:00:00:00:00:01", "user,mac=00:00:00:00:00:00",
		"user,mac=52:54:00:12:34", "user,mac=52:54:00:12:34:567",
		"user,restrict=maybe", "user,hostfwd=tcp:8080:80", "user,bogus",
		"tap,ifname=tap0,hostfwd=tcp::1-:2",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "%s", bad[i]);
		cr_assert_eq(PARSE(&config, "-k", "/k", "--net", text), -EINVAL,
			     "'%s' accepted", bad[i]);
		cr_assert(strstr(err, "--net") || strstr(err, "hostfwd"),
			  "'%s': %s", bad[i], err);
		cr_assert_null(strchr(err, '\n'), "%s", err);
	}
}

Test(options, at_most_four_nics)
{
	char nets[5][8];
	char *argv[16] = { "run", "-k", "/k" };
	int argc = 3;

	for (int i = 0; i < 5; i++) {
		snprintf(nets[i], sizeof(nets[i]), "user");
		argv[argc++] = "--net";
		argv[argc++] = nets[i];
	}
	cr_assert_eq(parse(&config, argc, argv), -EINVAL);
	cr_assert(strstr(err, "more than 4"), "%s", err);
}

/* A FIFO with no writer would hold a blocking open for ever: given as the
 * kernel or the initrd, it is refused at once, naming the option. */
static char fifo_dir[] = "/tmp/vessel-test-options-XXXXXX", fifo[64];

static void make_fifo(void)
{
	cr_assert_not_null(mkdtemp(fifo_dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", fifo_dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
}

static void remove_fifo(void)
{
	unlink(fifo);
	rmdir(fifo_dir);
}

Test(options, a_fifo_as_initrd_is_refused_without_waiting, .timeout = 5,
     .init = make_fifo, .fini = remove_fifo)
{
	char expected[128];

	cr_assert_eq(PARSE(&config, "--kernel", fifo, "--initrd", fifo,
			   "--memory", "64M"),
		     OPTIONS_OK, "%s", err);
	cr_assert_eq(config_check_files(&config, err, sizeof(err)), -EINVAL);
	snprintf(expected, sizeof(expected), "--initrd %s: not a regular file",
		 fifo);
	cr_assert_str_eq(err, expected);
	vm_config_release(&config);
}

Test(options, a_fifo_as_kernel_is_refused_without_waiting, .timeout = 5,
     .init = make_fifo, .fini = remove_fifo)
{
	char expected[128];

	cr_assert_eq(PARSE(&config, "--kernel", fifo, "--memory", "64M"),
		     OPTIONS_OK, "%s", err);
	cr_assert_eq(config_check_files(&config, err, sizeof(err)), -EINVAL);
	snprintf(expected, sizeof(expected), "--kernel %s: not a regular file",
		 fifo);
	cr_assert_str_eq(err, expected);
	vm_config_release(&config);
}

/* One image for two disks of the VM, one of them writable, is named as
 * given twice, not as used by another process. */
Test(options, an_image_given_twice_is_named_so)
{
	char image[] = "/tmp/vessel-test-options-XXXXXX", expected[256];
	int fd = mkstemp(image);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	cr_assert_eq(PARSE(&config, "--kernel", "/nonexistent", "--memory",
			   "64M", "--disk", image, "--disk", image),
		     OPTIONS_OK, "%s", err);
	int result = config_check_files(&config, err, sizeof(err));
	unlink(image);
	cr_assert_eq(result, -EBUSY);
	snprintf(expected, sizeof(expected),
		 "--disk %s: the image is given twice (already used by this VM "
		 "as %s)",
		 image, image);
	cr_assert_str_eq(err, expected);
	vm_config_release(&config);
}

Test(options, display)
{
	cr_assert_eq(PARSE(&config, "--kernel", "/k"), OPTIONS_OK);
	cr_expect_eq(config.display.kind, DISPLAY_NONE, "none by default");
	cr_expect_str_eq(config.name, OPTIONS_DEFAULT_NAME);

	vm_config_release(&config);
	cr_assert_eq(PARSE(&config, "--kernel", "/k", "--display", "sdl",
			   "--name", "web1"), OPTIONS_OK, "%s", err);
	cr_expect_eq(config.display.kind, DISPLAY_SDL);
	cr_expect_eq(config.display.width, 1024);
	cr_expect_eq(config.display.height, 768);
	cr_expect_eq(config.display.depth, 32);
	cr_expect_str_eq(config.name, "web1");

	vm_config_release(&config);
	cr_assert_eq(PARSE(&config, "--kernel", "/k", "--display",
			   "sdl,width=800,height=600,depth=16"), OPTIONS_OK,
		     "%s", err);
	cr_expect_eq(config.display.width, 800);
	cr_expect_eq(config.display.height, 600);
	cr_expect_eq(config.display.depth, 16);

	vm_config_release(&config);
	cr_assert_eq(PARSE(&config, "--kernel", "/k", "--display", "sdl",
			   "--display", "none"), OPTIONS_OK);
	cr_expect_eq(config.display.kind, DISPLAY_NONE, "the last one counts");
}

Test(options, bad_display_values)
{
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display", "vnc"), -EINVAL);
	cr_expect(strstr(err, "'vnc'"), "%s", err);
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display", "sdl,depth=8"),
		     -EINVAL);
	cr_expect(strstr(err, "depth"), "%s", err);
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display",
			   "sdl,width=9000"), -EINVAL);
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display",
			   "sdl,width=-1024"), -EINVAL);
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display",
			   "sdl,zoom=2"), -EINVAL);
	cr_expect(strstr(err, "zoom"), "%s", err);
	cr_expect_eq(PARSE(&config, "--kernel", "/k", "--display", "none,width=1"),
		     -EINVAL);
}
