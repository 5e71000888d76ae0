/* The bzImage setup-header parser: Debian's real kernel, and synthetic
 * headers broken one field at a time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../firmware/boot.h"
#include "fixtures.h"

static char err[256];

static int parse(uint8_t *data, size_t size, struct kernel_image *image)
{
	err[0] = '\0';
	return kernel_image_parse("test.bzImage", data, size, image, err,
				  sizeof(err));
}

Test(bzimage, debian_kernel)
{
	const char *path = getenv("VESSEL_TEST_BZIMAGE");
	struct kernel_image image;

	if (!path || access(path, R_OK) != 0)
		cr_skip_test("no Debian kernel at VESSEL_TEST_BZIMAGE (%s); "
			     "guests/ builds guests/out/vmlinuz",
			     path ? path : "unset");
	cr_assert_eq(kernel_image_open(path, &image, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(image.format, KERNEL_FORMAT_BZIMAGE);
	cr_expect_geq(image.boot_protocol_version, 0x020c);
	/* Debian's x86_64 config: COMMAND_LINE_SIZE 2048, initrd below 2 GiB,
	 * decompressed at LOAD_PHYSICAL_ADDR 16 MiB. */
	cr_expect_eq(image.cmdline_max, 2047);
	cr_expect_eq(image.initrd_addr_max, 0x7fffffff);
	cr_expect_eq(image.load_address, 0x100000);
	cr_expect_eq(image.entry_point, 0x100200);
	cr_expect_gt(image.kernel_end, 16 * MIB);
	cr_expect_lt(image.kernel_end, 512 * MIB);
	kernel_image_close(&image);
	cr_expect_null(image.data);
}

Test(bzimage, synthetic_header_fields)
{
	struct kernel_image image;

	cr_assert_eq(parse(fixture_bzimage(), FIXTURE_BZIMAGE_SIZE, &image), 0,
		     "%s", err);
	cr_expect_eq(image.format, KERNEL_FORMAT_BZIMAGE);
	cr_expect_eq(image.boot_protocol_version, 0x020f);
	cr_expect_eq(image.cmdline_max, 2047);
	cr_expect_eq(image.initrd_addr_max, 0x7fffffff);
	cr_expect_eq(image.entry_point, 0x100200);
	cr_expect_eq(image.setup_size, FIXTURE_BZIMAGE_SETUP_SIZE);
	cr_expect_eq(image.kernel_end, FIXTURE_BZIMAGE_KERNEL_END);
	kernel_image_close(&image);
}

Test(bzimage, cmdline_size_capped_by_vessel)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();
	uint32_t huge = 0x100000;

	memcpy(data + 0x238, &huge, 4);
	cr_assert_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), 0, "%s", err);
	cr_expect_eq(image.cmdline_max, 0x10000 - 1);
	kernel_image_close(&image);
}

Test(bzimage, too_small_file)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();

	cr_expect_eq(parse(data, 100, &image), -EINVAL);
	cr_expect(strstr(err, "too small") && strstr(err, "test.bzImage"),
		  "%s", err);
	cr_expect_null(image.data, "a refused image owns nothing");
}

Test(bzimage, header_cut_short)
{
	struct kernel_image image;

	cr_expect_eq(parse(fixture_bzimage(), 0x230, &image), -EINVAL);
	cr_expect(strstr(err, "truncated"), "%s", err);
}

Test(bzimage, kernel_cut_short)
{
	struct kernel_image image;

	cr_expect_eq(parse(fixture_bzimage(), FIXTURE_BZIMAGE_SIZE - 16,
			   &image),
		     -EINVAL);
	cr_expect(strstr(err, "truncated") && strstr(err, "syssize"), "%s",
		  err);
}

Test(bzimage, random_bytes)
{
	struct kernel_image image;
	uint8_t *data = malloc(FIXTURE_BZIMAGE_SIZE);
	uint32_t state = 12345;

	cr_assert_not_null(data);
	for (size_t i = 0; i < FIXTURE_BZIMAGE_SIZE; i++) {
		state = state * 1103515245 + 12345;
		data[i] = (uint8_t)(state >> 16);
	}
	data[0] = 0; /* not "\177ELF" */
	cr_expect_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "not a Linux bzImage"), "%s", err);
}

Test(bzimage, protocol_too_old)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();

	data[0x206] = 0x0b; /* 2.11 */
	cr_expect_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "2.11") && strstr(err, "2.12"), "%s", err);
}

Test(bzimage, no_64bit_entry)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();

	data[0x236] = 0x02; /* XLF_CAN_BE_LOADED_ABOVE_4G alone */
	cr_expect_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "XLF_KERNEL_64"), "%s", err);
}

Test(bzimage, setup_sects_beyond_file)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();

	data[0x1f1] = 200; /* 201 sectors of setup, more than the file */
	cr_expect_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "setup_sects 200"), "%s", err);
}

Test(bzimage, zimage_refused)
{
	struct kernel_image image;
	uint8_t *data = fixture_bzimage();

	data[0x211] = 0; /* LOADED_HIGH clear */
	cr_expect_eq(parse(data, FIXTURE_BZIMAGE_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "zImage"), "%s", err);
}

Test(bzimage, open_missing_file)
{
	struct kernel_image image;

	cr_expect_eq(kernel_image_open("/nonexistent/vmlinuz", &image, err,
				       sizeof(err)),
		     -ENOENT);
	cr_expect(strstr(err, "/nonexistent/vmlinuz"), "%s", err);
}

Test(bzimage, open_reads_whole_file)
{
	char path[] = "/tmp/vessel-bzimage-XXXXXX";
	int fd = mkstemp(path);
	uint8_t *data = fixture_bzimage();
	struct kernel_image image;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, FIXTURE_BZIMAGE_SIZE),
		     FIXTURE_BZIMAGE_SIZE);
	close(fd);
	int ret = kernel_image_open(path, &image, err, sizeof(err));
	unlink(path);
	cr_assert_eq(ret, 0, "%s", err);
	cr_expect_eq(image.size, FIXTURE_BZIMAGE_SIZE);
	cr_expect_arr_eq(image.data, data, FIXTURE_BZIMAGE_SIZE);
	kernel_image_close(&image);
	free(data);
}

/* A FIFO with no writer would hold a blocking open for ever: the open
 * must not wait, and the file is refused for what it is. */
Test(bzimage, open_refuses_a_fifo_without_waiting, .timeout = 5)
{
	char dir[] = "/tmp/vessel-bzimage-XXXXXX", path[64], expected[128];
	struct kernel_image image;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	int ret = kernel_image_open(path, &image, err, sizeof(err));
	unlink(path);
	rmdir(dir);
	cr_assert_eq(ret, -EINVAL);
	snprintf(expected, sizeof(expected), "%s: not a regular file", path);
	cr_assert_str_eq(err, expected);
}
