/* boot_check and boot_load of a bzImage end to end: what the guest finds in
 * memory and in its registers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/boot.h"
#include "../../firmware/layout.h"
#include "../../firmware/little_endian.h"
#include "fixtures.h"

static char err[256];
static struct kernel_image image;

static void setup(void)
{
	cr_assert_eq(kernel_image_parse("test.bzImage", fixture_bzimage(),
					FIXTURE_BZIMAGE_SIZE, &image, err,
					sizeof(err)),
		     0, "%s", err);
}

static void teardown(void)
{
	kernel_image_close(&image);
}

TestSuite(boot, .init = setup, .fini = teardown);

Test(boot, check_accepts_a_fitting_request)
{
	struct boot_request request = {
		.kernel = &image,
		.initrd = NULL,
		.initrd_size = 32 * MIB,
		.cmdline = "console=ttyS0",
		.cpu_count = 4,
		.machine = machine_layout_firmware(),
	};

	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)), 0,
		     "%s", err);
}

Test(boot, check_refuses_long_cmdline)
{
	char *cmdline = malloc(2049);
	struct boot_request request = {
		.kernel = &image, .cmdline = cmdline, .cpu_count = 1,
		.machine = machine_layout_firmware()};

	cr_assert_not_null(cmdline);
	memset(cmdline, 'a', 2047);
	cmdline[2047] = '\0';
	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)), 0,
		     "2047 bytes is the kernel's cmdline_size: %s", err);
	cmdline[2047] = 'a';
	cmdline[2048] = '\0';
	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "command line") && strstr(err, "2048") &&
			  strstr(err, "2047"),
		  "%s", err);
	free(cmdline);
}

Test(boot, check_refuses_initrd_that_does_not_fit)
{
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 1,
		.machine = machine_layout_firmware()};

	/* 64 MiB of RAM, the kernel needs everything up to 24 MiB. */
	request.initrd_size = 40 * MIB + 1;
	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "initrd"), "%s", err);
	request.initrd_size = 40 * MIB;
	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)), 0,
		     "%s", err);
}

Test(boot, check_honours_initrd_addr_max)
{
	struct kernel_image low;
	uint8_t *data = fixture_bzimage();
	uint32_t initrd_addr_max = 32 * MIB - 1;
	struct boot_request request = {
		.kernel = &low, .cmdline = "", .cpu_count = 1,
		.machine = machine_layout_firmware()};

	memcpy(data + 0x22c, &initrd_addr_max, 4);
	cr_assert_eq(kernel_image_parse("low.bzImage", data,
					FIXTURE_BZIMAGE_SIZE, &low, err,
					sizeof(err)),
		     0, "%s", err);
	/* Only 24-32 MiB is open to the initrd, whatever the RAM size. */
	request.initrd_size = 9 * MIB;
	cr_expect_eq(boot_check(&request, 1024 * MIB, err, sizeof(err)),
		     -EINVAL);
	request.initrd_size = 8 * MIB;
	cr_expect_eq(boot_check(&request, 1024 * MIB, err, sizeof(err)), 0,
		     "%s", err);
	kernel_image_close(&low);
}

Test(boot, check_refuses_too_little_memory)
{
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 1,
		.machine = machine_layout_firmware()};

	cr_expect_eq(boot_check(&request, 16 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "test.bzImage") && strstr(err, "24 MiB") &&
			  strstr(err, "16 MiB"),
		  "%s", err);
}

/* Only the RAM below the machine's PCI hole holds the kernel, however much
 * the guest has in all. */
Test(boot, check_takes_low_ram_from_the_machine)
{
	struct firmware_machine small_hole = *machine_layout_firmware();
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 1,
		.machine = &small_hole};

	small_hole.low_ram_end = 16 * MIB;
	cr_expect_eq(boot_check(&request, 1024 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "24 MiB") &&
			  strstr(err, "16 MiB below the PCI hole"),
		  "%s", err);
	small_hole.low_ram_end = 32 * MIB;
	cr_expect_eq(boot_check(&request, 1024 * MIB, err, sizeof(err)), 0,
		     "%s", err);
}

Test(boot, check_refuses_too_many_cpus)
{
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 255,
		.machine = machine_layout_firmware()};

	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "255"), "%s", err);
}

Test(boot, load_bzimage)
{
	struct guest_memory memory;
	struct boot_entry entry;
	uint8_t initrd[MIB - 100]; /* not a multiple of 4 KiB */
	struct boot_request request = {
		.kernel = &image,
		.initrd = initrd,
		.initrd_size = sizeof(initrd),
		.cmdline = "console=ttyS0 reboot=k",
		.cpu_count = 2,
		.machine = machine_layout_firmware(),
	};

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 13);
	fixture_memory_create(&memory, 64 * MIB);
	const uint8_t *ram = memory.regions[0].host_addr;
	cr_assert_eq(boot_load(&request, &memory, &entry, err, sizeof(err)), 0,
		     "%s", err);

	/* Entry state: 64-bit protocol at startup_64. */
	cr_expect(entry.long_mode);
	cr_expect_eq(entry.rip, 0x100200);
	cr_expect_eq(entry.rsi, LAYOUT_ZERO_PAGE);
	cr_expect_eq(entry.rsp, LAYOUT_BOOT_STACK);
	cr_expect_eq(entry.cr3, LAYOUT_PAGE_TABLES);

	/* The protected-mode kernel at 1 MiB. */
	for (size_t i = 0; i < FIXTURE_BZIMAGE_KERNEL_SIZE; i++)
		cr_assert_eq(ram[0x100000 + i], fixture_kernel_byte(i),
			     "kernel byte %zu", i);

	/* boot_params: setup header copied, loader fields filled. */
	const uint8_t *zero_page = ram + LAYOUT_ZERO_PAGE;
	cr_expect(memcmp(zero_page + 0x202, "HdrS", 4) == 0);
	cr_expect_eq(le16_load(zero_page + 0x206), 0x020f);
	cr_expect_eq(le16_load(zero_page + 0x1fa), 0xffff, "vid_mode copied");
	cr_expect_eq(le32_load(zero_page + 0x230), 0x200000,
		     "kernel_alignment copied");
	cr_expect_eq(zero_page[0x1ef], 0, "sentinel clear");
	cr_expect_eq(zero_page[0x210], 0xff, "type_of_loader");
	cr_expect_eq(zero_page[0x211], 0x81, "LOADED_HIGH | CAN_USE_HEAP");
	cr_expect_eq(le16_load(zero_page + 0x224), 0xde00, "heap_end_ptr");
	cr_expect_eq(le32_load(zero_page + 0x228), LAYOUT_CMDLINE);
	cr_expect_eq(le32_load(zero_page + 0xc8), 0, "ext_cmd_line_ptr");
	cr_expect_str_eq((const char *)ram + LAYOUT_CMDLINE,
			 "console=ttyS0 reboot=k");
	cr_expect_eq(le64_load(zero_page + 0x70), LAYOUT_ACPI_TABLES,
		     "acpi_rsdp_addr");

	uint32_t initrd_address = le32_load(zero_page + 0x218);
	cr_expect_eq(initrd_address, 63 * MIB,
		     "highest 4 KiB-aligned spot below 64 MiB");
	cr_expect_eq(le32_load(zero_page + 0x21c), sizeof(initrd));
	cr_expect_eq(le32_load(zero_page + 0xc0), 0, "ext_ramdisk_image");
	cr_expect_eq(le32_load(zero_page + 0xc4), 0, "ext_ramdisk_size");
	cr_expect_arr_eq(ram + initrd_address, initrd, sizeof(initrd));

	cr_assert_eq(zero_page[0x1e8], 3, "e820 entries");
	const uint8_t *e820 = zero_page + 0x2d0;
	cr_expect_eq(le64_load(e820 + 0), 0);
	cr_expect_eq(le64_load(e820 + 8), LAYOUT_EBDA_START);
	cr_expect_eq(le32_load(e820 + 16), 1);
	cr_expect_eq(le32_load(e820 + 20 + 16), 2);
	cr_expect_eq(le64_load(e820 + 40), 0x100000);
	cr_expect_eq(le64_load(e820 + 48), 63 * MIB);
	cr_expect_eq(le32_load(e820 + 56), 1);

	/* Firmware tables Linux scans for. */
	cr_expect(memcmp(ram + LAYOUT_EBDA_START, "_MP_", 4) == 0);
	cr_expect(memcmp(ram + LAYOUT_ACPI_TABLES, "RSD PTR ", 8) == 0);

	/* GDT: __BOOT_CS 64-bit code, __BOOT_DS flat data. */
	cr_expect_eq(le64_load(ram + LAYOUT_BOOT_GDT), 0);
	cr_expect_eq(le64_load(ram + LAYOUT_BOOT_GDT + 0x10),
		     0x00af9b000000ffffULL);
	cr_expect_eq(le64_load(ram + LAYOUT_BOOT_GDT + 0x18),
		     0x00cf93000000ffffULL);

	/* Identity map of 4 GiB in 2 MiB pages. */
	const uint8_t *tables = ram + LAYOUT_PAGE_TABLES;
	cr_expect_eq(le64_load(tables) & ~0xfffULL, LAYOUT_PAGE_TABLES + 0x1000);
	cr_expect_eq(le64_load(tables) & 0x3, 0x3, "present, writable");
	for (unsigned int gib = 0; gib < 4; gib++) {
		uint64_t directory = le64_load(tables + 0x1000 + gib * 8) & ~0xfffULL;

		cr_assert_eq(directory, LAYOUT_PAGE_TABLES + 0x2000 + gib * 0x1000);
		for (unsigned int i = 0; i < 512; i += 73) {
			uint64_t pde = le64_load(ram + directory + i * 8);
			uint64_t address = ((uint64_t)gib << 30) + ((uint64_t)i << 21);

			cr_assert_eq(pde, address | 0x83,
				     "PDE for 0x%lx", (unsigned long)address);
		}
	}
	cr_expect_eq(le64_load(tables + 0x1000 + 4 * 8), 0, "nothing above 4 GiB");
	fixture_memory_destroy(&memory);
}

Test(boot, load_refuses_what_check_refuses)
{
	struct guest_memory memory;
	struct boot_entry entry;
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 1,
		.machine = machine_layout_firmware(),
		.initrd = (const uint8_t *)"x", .initrd_size = 1};

	fixture_memory_create(&memory, 16 * MIB);
	cr_expect_eq(boot_load(&request, &memory, &entry, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "16 MiB"), "%s", err);
	fixture_memory_destroy(&memory);
}

Test(boot, long_mode_entry_registers)
{
	struct boot_entry entry = {
		.long_mode = true, .rip = 0x100200, .rsi = LAYOUT_ZERO_PAGE,
		.rsp = LAYOUT_BOOT_STACK, .cr3 = LAYOUT_PAGE_TABLES};
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	memset(&regs, 0xff, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	boot_entry_registers(&entry, &regs, &sregs);
	cr_expect_eq(regs.rip, 0x100200);
	cr_expect_eq(regs.rsi, LAYOUT_ZERO_PAGE);
	cr_expect_eq(regs.rsp, LAYOUT_BOOT_STACK);
	cr_expect_eq(regs.rflags, 0x2);
	cr_expect_eq(regs.rax, 0, "other registers cleared");
	cr_expect_eq(sregs.cr0 & 0x80000011, 0x80000011, "PE, ET, PG");
	cr_expect_eq(sregs.cr3, LAYOUT_PAGE_TABLES);
	cr_expect_eq(sregs.cr4 & 0x20, 0x20, "PAE");
	cr_expect_eq(sregs.efer & 0x500, 0x500, "LME, LMA");
	cr_expect_eq(sregs.cs.selector, 0x10);
	cr_expect_eq(sregs.cs.l, 1);
	cr_expect_eq(sregs.cs.db, 0);
	cr_expect_eq(sregs.cs.present, 1);
	cr_expect_eq(sregs.cs.s, 1);
	cr_expect_eq(sregs.cs.type, 0xb);
	cr_expect_eq(sregs.ds.selector, 0x18);
	cr_expect_eq(sregs.ss.selector, 0x18);
	cr_expect_eq(sregs.ss.type, 0x3);
	cr_expect_eq(sregs.ss.present, 1);
	cr_expect_eq(sregs.gdt.base, LAYOUT_BOOT_GDT);
	cr_expect_eq(sregs.gdt.limit, 31);
	cr_expect_eq(sregs.tr.present, 1);
}
