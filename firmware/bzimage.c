#include "bzimage.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "little_endian.h"
#include "screen_info.h"

/* Setup header fields: offsets in the file and, for the copy of the header,
 * in boot_params (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel
 * Header"). */
#define HDR_START 0x1f1
#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP_OFFSET 0x201 /* header ends at 0x202 + this byte */
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
/* Protocol 2.12 defines every field up to handover_offset, 0x264-0x267. */
#define HDR_MIN_END 0x268

#define BZIMAGE_LOAD_LIMIT (UINT64_C(1) << 32)

#define BOOT_FLAG 0xaa55
#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x0001
#define SECTOR_SIZE 512
#define DEFAULT_SETUP_SECTS 4 /* setup_sects 0 means 4 */
#define SYSSIZE_UNIT 16
#define TYPE_OF_LOADER_UNDEFINED 0xff
#define PROTOCOL_ACPI_RSDP 0x020e
/* boot.rst's example heap end for a protocol 2.02+ kernel; the 64-bit entry
 * skips the real-mode code that would use it. */
#define HEAP_END 0xe000

/* boot_params beyond the setup header (Documentation/arch/x86/zero-page.rst). */
#define ZERO_PAGE_SIZE 0x1000
#define BP_SCREEN_INFO 0x000
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_LIMIT 0x290 /* edd_mbr_sig_buffer follows the header */
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20
#define BP_E820_MAX 128

_Static_assert(E820_MAX_ENTRIES <= BP_E820_MAX,
	       "boot_params holds at most 128 e820 entries");

static uint64_t align_up(uint64_t value, uint64_t alignment)
{
	return (value + alignment - 1) & ~(alignment - 1);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

int bzimage_parse(struct kernel_image *image, char *err, size_t err_len)
{
	const uint8_t *data = image->data;
	size_t size = image->size;
	const char *path = image->path;

	if (size < HDR_VERSION + 2) {
		snprintf(err, err_len,
			 "%s: %zu bytes is too small for a Linux kernel", path,
			 size);
		return -EINVAL;
	}
	if (memcmp(data + HDR_MAGIC, "HdrS", 4) != 0 ||
	    le16_load(data + HDR_BOOT_FLAG) != BOOT_FLAG) {
		snprintf(err, err_len,
			 "%s: not a Linux bzImage (no \"HdrS\" setup header at 0x%x)",
			 path, HDR_MAGIC);
		return -EINVAL;
	}

	uint16_t version = le16_load(data + HDR_VERSION);
	if (version < BZIMAGE_MIN_PROTOCOL) {
		snprintf(err, err_len,
			 "%s: boot protocol %u.%02u is older than 2.12, which vessel needs for the 64-bit entry",
			 path, version >> 8, version & 0xff);
		return -EINVAL;
	}

	size_t header_end = HDR_MAGIC + (size_t)data[HDR_JUMP_OFFSET];
	if (header_end < HDR_MIN_END) {
		snprintf(err, err_len,
			 "%s: setup header ends at 0x%zx, before the fields of boot protocol 2.12 (0x%x)",
			 path, header_end, HDR_MIN_END);
		return -EINVAL;
	}
	if (size < header_end) {
		snprintf(err, err_len,
			 "%s: truncated: %zu bytes, but the setup header runs to 0x%zx",
			 path, size, header_end);
		return -EINVAL;
	}

	uint16_t xloadflags = le16_load(data + HDR_XLOADFLAGS);
	if (!(xloadflags & XLF_KERNEL_64)) {
		snprintf(err, err_len,
			 "%s: no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags 0x%x)",
			 path, xloadflags);
		return -EINVAL;
	}
	if (!(data[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, err_len,
			 "%s: a zImage (LOADED_HIGH clear in loadflags 0x%x); vessel boots bzImages",
			 path, data[HDR_LOADFLAGS]);
		return -EINVAL;
	}

	unsigned int setup_sects = data[HDR_SETUP_SECTS];
	if (setup_sects == 0)
		setup_sects = DEFAULT_SETUP_SECTS;
	size_t setup_size = (size_t)(setup_sects + 1) * SECTOR_SIZE;
	if (setup_size >= size) {
		snprintf(err, err_len,
			 "%s: setup_sects %u (%zu bytes of setup) does not fit the file size of %zu bytes",
			 path, setup_sects, setup_size, size);
		return -EINVAL;
	}
	size_t kernel_size = size - setup_size;
	uint64_t syssize = (uint64_t)le32_load(data + HDR_SYSSIZE) * SYSSIZE_UNIT;
	if (syssize > kernel_size) {
		snprintf(err, err_len,
			 "%s: truncated: protected-mode kernel is %zu bytes, syssize says %" PRIu64,
			 path, kernel_size, syssize);
		return -EINVAL;
	}

	uint32_t alignment = le32_load(data + HDR_KERNEL_ALIGNMENT);
	if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
		snprintf(err, err_len,
			 "%s: kernel_alignment 0x%x is not a power of two",
			 path, alignment);
		return -EINVAL;
	}
	uint64_t pref_address = le64_load(data + HDR_PREF_ADDRESS);
	/* The boot page tables map the first 4 GiB, where the kernel
	 * decompresses; whether the machine has RAM there is boot_check's
	 * question. */
	if (pref_address >= BZIMAGE_LOAD_LIMIT) {
		snprintf(err, err_len,
			 "%s: pref_address 0x%" PRIx64 " lies beyond 4 GiB",
			 path, pref_address);
		return -EINVAL;
	}

	image->format = KERNEL_FORMAT_BZIMAGE;
	image->boot_protocol_version = version;
	image->cmdline_max = le32_load(data + HDR_CMDLINE_SIZE);
	if (image->cmdline_max > LAYOUT_CMDLINE_MAX - 1)
		image->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	image->initrd_addr_max = le32_load(data + HDR_INITRD_ADDR_MAX);
	image->load_address = LAYOUT_HIGH_MEMORY_START;
	image->entry_point = image->load_address + BZIMAGE_ENTRY_64_OFFSET;
	image->setup_size = setup_size;
	image->setup_header_end = header_end;

	/* startup_64 decompresses to the load address rounded up to
	 * kernel_alignment, but never below pref_address (LOAD_PHYSICAL_ADDR),
	 * and needs init_size bytes there (boot.rst, "init_size"). */
	uint64_t runtime_start =
		max_u64(align_up(image->load_address, alignment), pref_address);
	image->kernel_end =
		max_u64(runtime_start + le32_load(data + HDR_INIT_SIZE),
			image->load_address + kernel_size);
	return 0;
}

int bzimage_load(const struct kernel_image *image,
		 const struct guest_memory *memory,
		 const struct boot_handoff *handoff, char *err,
		 size_t err_len)
{
	uint8_t zero_page[ZERO_PAGE_SIZE] = {0};
	size_t kernel_size = image->size - image->setup_size;
	size_t header_end = image->setup_header_end < BP_HDR_LIMIT ?
				    image->setup_header_end :
				    BP_HDR_LIMIT;

	if (guest_memory_write(memory, image->load_address,
			       image->data + image->setup_size,
			       kernel_size) < 0) {
		snprintf(err, err_len,
			 "%s: kernel of %zu bytes at 0x%" PRIx64 " is outside guest RAM",
			 image->path, kernel_size, image->load_address);
		return -EFAULT;
	}

	/* The setup header goes to boot_params as the file has it; then the
	 * fields a boot loader must fill (boot.rst, "Details of Header
	 * Fields"). */
	memcpy(zero_page + HDR_START, image->data + HDR_START,
	       header_end - HDR_START);
	zero_page[HDR_TYPE_OF_LOADER] = TYPE_OF_LOADER_UNDEFINED;
	zero_page[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	le16_store(zero_page + HDR_HEAP_END_PTR, HEAP_END - 0x200);
	le32_store(zero_page + HDR_CMD_LINE_PTR,
		   (uint32_t)handoff->cmdline_address);
	le32_store(zero_page + BP_EXT_CMD_LINE_PTR,
		   (uint32_t)(handoff->cmdline_address >> 32));
	le32_store(zero_page + HDR_RAMDISK_IMAGE,
		   (uint32_t)handoff->initrd_address);
	le32_store(zero_page + BP_EXT_RAMDISK_IMAGE,
		   (uint32_t)(handoff->initrd_address >> 32));
	le32_store(zero_page + HDR_RAMDISK_SIZE,
		   (uint32_t)handoff->initrd_size);
	le32_store(zero_page + BP_EXT_RAMDISK_SIZE,
		   (uint32_t)(handoff->initrd_size >> 32));
	if (image->boot_protocol_version >= PROTOCOL_ACPI_RSDP)
		le64_store(zero_page + BP_ACPI_RSDP_ADDR,
			   handoff->rsdp_address);

	if (handoff->framebuffer)
		screen_info_write(zero_page + BP_SCREEN_INFO,
				  handoff->framebuffer);

	const struct e820_table *e820 = handoff->e820;
	zero_page[BP_E820_ENTRIES] = (uint8_t)e820->count;
	for (unsigned int i = 0; i < e820->count; i++) {
		uint8_t *entry = zero_page + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

		le64_store(entry, e820->entries[i].address);
		le64_store(entry + 8, e820->entries[i].size);
		le32_store(entry + 16, e820->entries[i].type);
	}

	if (guest_memory_write(memory, LAYOUT_ZERO_PAGE, zero_page,
			       sizeof(zero_page)) < 0) {
		snprintf(err, err_len,
			 "boot_params at 0x%x is outside guest RAM",
			 LAYOUT_ZERO_PAGE);
		return -EFAULT;
	}
	return 0;
}
