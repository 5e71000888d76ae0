/* boot_params.screen_info as Linux 6.1's vesafb and sysfb read it
 * (include/uapi/linux/screen_info.h offsets), on its own and through
 * boot_load of a bzImage. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../firmware/boot.h"
#include "../../firmware/layout.h"
#include "../../firmware/little_endian.h"
#include "../../firmware/screen_info.h"
#include "fixtures.h"

static const struct boot_framebuffer xrgb_1024x768 = {
	.address = 0xfd000000,
	.size = 1024 * 768 * 4,
	.width = 1024,
	.height = 768,
	.depth = 32,
	.line_length = 4096,
	.red = { 8, 16 },
	.green = { 8, 8 },
	.blue = { 8, 0 },
	.reserved = { 8, 24 },
};

static void expect_xrgb_1024x768(const uint8_t *si)
{
	cr_expect_eq(si[0x0f], 0x23, "orig_video_isVGA = VIDEO_TYPE_VLFB");
	cr_expect_eq(le16_load(si + 0x12), 1024, "lfb_width");
	cr_expect_eq(le16_load(si + 0x14), 768, "lfb_height");
	cr_expect_eq(le16_load(si + 0x16), 32, "lfb_depth");
	cr_expect_eq(le32_load(si + 0x18), 0xfd000000, "lfb_base");
	cr_expect_eq(le32_load(si + 0x1c), 48, "lfb_size in 64 KiB units");
	cr_expect_eq(le16_load(si + 0x24), 4096, "lfb_linelength");
	cr_expect_eq(si[0x26], 8, "red_size");
	cr_expect_eq(si[0x27], 16, "red_pos");
	cr_expect_eq(si[0x28], 8, "green_size");
	cr_expect_eq(si[0x29], 8, "green_pos");
	cr_expect_eq(si[0x2a], 8, "blue_size");
	cr_expect_eq(si[0x2b], 0, "blue_pos");
	cr_expect_eq(si[0x2c], 8, "rsvd_size");
	cr_expect_eq(si[0x2d], 24, "rsvd_pos");
	/* Text-mode fields stay zero: the decompressor prints to VGA text
	 * memory only with lines and columns set. */
	cr_expect_eq(si[0x07], 0, "orig_video_cols");
	cr_expect_eq(si[0x0e], 0, "orig_video_lines");
	cr_expect_eq(le16_load(si + 0x2e), 0, "vesapm_seg: no protected-mode BIOS");
	cr_expect_eq(le32_load(si + 0x36), 0, "capabilities: 32-bit base");
}

Test(screen_info, vesa_linear_framebuffer_fields)
{
	uint8_t si[SCREEN_INFO_SIZE];

	memset(si, 0xa5, sizeof(si));
	screen_info_write(si, &xrgb_1024x768);
	expect_xrgb_1024x768(si);
}

Test(screen_info, size_rounds_up_to_64_kib_units)
{
	struct boot_framebuffer framebuffer = xrgb_1024x768;
	uint8_t si[SCREEN_INFO_SIZE];

	framebuffer.size = 65536 + 1;
	screen_info_write(si, &framebuffer);
	cr_expect_eq(le32_load(si + 0x1c), 2);
}

static struct kernel_image image;

Test(screen_info, boot_load_announces_the_framebuffer)
{
	struct guest_memory memory;
	struct boot_entry entry;
	char err[256];
	struct boot_request request = {
		.kernel = &image,
		.cmdline = "",
		.cpu_count = 1,
		.machine = machine_layout_firmware(),
		.framebuffer = &xrgb_1024x768,
	};

	cr_assert_eq(kernel_image_parse("test.bzImage", fixture_bzimage(),
					FIXTURE_BZIMAGE_SIZE, &image, err,
					sizeof(err)), 0, "%s", err);
	fixture_memory_create(&memory, 64 * MIB);
	cr_assert_eq(boot_load(&request, &memory, &entry, err, sizeof(err)), 0,
		     "%s", err);
	expect_xrgb_1024x768(memory.regions[0].host_addr + LAYOUT_ZERO_PAGE);

	/* Without a display the screen_info stays zero: no framebuffer. */
	request.framebuffer = NULL;
	cr_assert_eq(boot_load(&request, &memory, &entry, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_eq(memory.regions[0].host_addr[LAYOUT_ZERO_PAGE + 0x0f], 0);
	fixture_memory_destroy(&memory);
	kernel_image_close(&image);
}

Test(screen_info, framebuffer_lies_in_the_pci_hole_outside_bars)
{
	cr_expect_geq(LAYOUT_FRAMEBUFFER_ADDRESS, LAYOUT_PCI_MMIO_END);
	cr_expect_leq(LAYOUT_FRAMEBUFFER_ADDRESS + LAYOUT_FRAMEBUFFER_MAX_SIZE,
		      LAYOUT_IOAPIC_ADDRESS);
	cr_expect_geq(LAYOUT_FRAMEBUFFER_ADDRESS, LAYOUT_PCI_HOLE_START);
}
