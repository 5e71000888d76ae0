/* vessel run's command line: good values parse, bad ones are refused with a
 * message naming the option and the value. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../vmm/options.h"

static char err[256];

static int parse(struct vm_config *config, int argc, char **argv)
{
	err[0] = '\0';
	return options_parse_run(argc, argv, config, err, sizeof(err));
}

#define PARSE(config, ...)                                               \
	({                                                               \
		char *argv_[] = { "run", __VA_ARGS__ };                  \
		parse(config, sizeof(argv_) / sizeof(argv_[0]), argv_); \
	})

Test(options, defaults)
{
	struct vm_config config;

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
	struct vm_config config;

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
	struct vm_config config;

	cr_redirect_stdout();
	cr_assert_eq(PARSE(&config, "--help"), OPTIONS_HELP);
}

Test(options, kernel_is_required)
{
	struct vm_config config;

	cr_assert_eq(PARSE(&config, "--memory", "1G"), -EINVAL);
	cr_assert(strstr(err, "--kernel"), "%s", err);
}

Test(options, bad_memory_values)
{
	static const char *bad[] = { "", "0", "-1", "12Q", "1.5G", "M",
				     "99999999999999999999", "16777216T", "1000" };
	struct vm_config config;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(PARSE(&config, "-k", "/k", "--memory", (char *)bad[i]),
			     -EINVAL, "accepted --memory '%s'", bad[i]);
		cr_assert(strstr(err, "--memory"), "%s", err);
	}
}

Test(options, bad_cpu_counts)
{
	static const char *bad[] = { "0", "-2", "255", "four", "2x", "" };
	struct vm_config config;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(PARSE(&config, "-k", "/k", "--cpus", (char *)bad[i]),
			     -EINVAL, "accepted --cpus '%s'", bad[i]);
		cr_assert(strstr(err, "--cpus"), "%s", err);
	}
	cr_assert_eq(PARSE(&config, "-k", "/k", "--cpus", "254"), OPTIONS_OK);
}

Test(options, bad_cpu_features)
{
	struct vm_config config;

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
	struct vm_config config;

	cr_assert_eq(PARSE(&config, "-k", "/k", "--frobnicate"), -EINVAL);
	cr_assert(strstr(err, "--frobnicate"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "extra"), -EINVAL);
	cr_assert(strstr(err, "extra"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k"), -EINVAL);
	cr_assert(strstr(err, "needs a value"), "%s", err);
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
	struct vm_config config;
	char first[] = "/images/root.img,readonly,serial=root-disk";
	char second[] = "/dev/sdb,cache=none";

	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", first, "--disk", second),
		     OPTIONS_OK, "%s", err);
	cr_assert_eq(config.disk_count, 2);
	cr_assert_str_eq(config.disks[0].path, "/images/root.img");
	cr_assert(config.disks[0].read_only);
	cr_assert_str_eq(config.disks[0].serial, "root-disk");
	cr_assert_not(config.disks[0].direct);
	cr_assert_str_eq(config.disks[1].path, "/dev/sdb");
	cr_assert_not(config.disks[1].read_only);
	cr_assert(config.disks[1].direct);
	cr_assert_str_eq(config.disks[1].serial, "");
}

Test(options, bad_disks)
{
	struct vm_config config;
	char empty[] = ",readonly";
	char unknown[] = "/img,fast";
	char long_serial[] = "/img,serial=this-serial-is-longer-than-20";
	char bad_cache[] = "/img,cache=unsafe";

	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", empty), -EINVAL);
	cr_assert(strstr(err, "--disk"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", unknown), -EINVAL);
	cr_assert(strstr(err, "fast"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", long_serial), -EINVAL);
	cr_assert(strstr(err, "serial"), "%s", err);
	cr_assert_eq(PARSE(&config, "-k", "/k", "--disk", bad_cache), -EINVAL);
	cr_assert(strstr(err, "cache=unsafe"), "%s", err);
}

Test(options, at_most_eight_disks)
{
	struct vm_config config;
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
