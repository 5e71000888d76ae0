#include "screen_info.h"

#include <string.h>

#include "little_endian.h"

/* Offsets in struct screen_info (include/uapi/linux/screen_info.h). */
#define SI_ORIG_VIDEO_IS_VGA 0x0f
#define SI_LFB_WIDTH 0x12
#define SI_LFB_HEIGHT 0x14
#define SI_LFB_DEPTH 0x16
#define SI_LFB_BASE 0x18
#define SI_LFB_SIZE 0x1c
#define SI_LFB_LINELENGTH 0x24
#define SI_RED_SIZE 0x26
#define SI_GREEN_SIZE 0x28
#define SI_BLUE_SIZE 0x2a
#define SI_RSVD_SIZE 0x2c

/* "VESA VGA in graphic mode": what vesafb_probe() and sysfb look for. */
#define VIDEO_TYPE_VLFB 0x23
/* For VIDEO_TYPE_VLFB, lfb_size counts 64 KiB units (vesafb_probe()
 * multiplies it by 65536), as VBE's TotalMemory field does. */
#define LFB_SIZE_UNIT 65536

static void channel_write(uint8_t *field, struct boot_pixel_channel channel)
{
	field[0] = channel.size;
	field[1] = channel.position;
}

void screen_info_write(uint8_t *screen_info,
		       const struct boot_framebuffer *framebuffer)
{
	memset(screen_info, 0, SCREEN_INFO_SIZE);
	screen_info[SI_ORIG_VIDEO_IS_VGA] = VIDEO_TYPE_VLFB;
	le16_store(screen_info + SI_LFB_WIDTH, framebuffer->width);
	le16_store(screen_info + SI_LFB_HEIGHT, framebuffer->height);
	le16_store(screen_info + SI_LFB_DEPTH, framebuffer->depth);
	le32_store(screen_info + SI_LFB_BASE, framebuffer->address);
	le32_store(screen_info + SI_LFB_SIZE,
		   (framebuffer->size + LFB_SIZE_UNIT - 1) / LFB_SIZE_UNIT);
	le16_store(screen_info + SI_LFB_LINELENGTH, framebuffer->line_length);
	channel_write(screen_info + SI_RED_SIZE, framebuffer->red);
	channel_write(screen_info + SI_GREEN_SIZE, framebuffer->green);
	channel_write(screen_info + SI_BLUE_SIZE, framebuffer->blue);
	channel_write(screen_info + SI_RSVD_SIZE, framebuffer->reserved);
}
