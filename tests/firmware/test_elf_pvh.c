/* The ELF/PVH loader: synthetic ELFs, good and broken, and what boot_load
 * leaves in guest memory for a PVH kernel. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../../firmware/boot.h"
#include "../../firmware/layout.h"
#include "../../firmware/little_endian.h"
#include "fixtures.h"

static char err[256];

static int parse_elf(const struct fixture_elf *elf, size_t size,
		     struct kernel_image *image)
{
	err[0] = '\0';
	return kernel_image_parse("test.elf", fixture_elf_build(elf), size,
				  image, err, sizeof(err));
}

Test(elf_pvh, good_elf64)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	cr_assert_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), 0, "%s", err);
	cr_expect_eq(image.format, KERNEL_FORMAT_PVH_ELF);
	cr_expect_eq(image.entry_point, 2 * MIB + 0x10);
	cr_expect_eq(image.load_address, 2 * MIB);
	cr_expect_eq(image.kernel_end, 2 * MIB + 0x2000);
	cr_expect_eq(image.cmdline_max, LAYOUT_CMDLINE_MAX - 1);
	kernel_image_close(&image);
}

Test(elf_pvh, good_elf32_with_4_byte_note)
{
	struct fixture_elf elf = fixture_elf_defaults(false);
	struct kernel_image image;

	cr_assert_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), 0, "%s", err);
	cr_expect_eq(image.entry_point, 2 * MIB + 0x10);
	cr_expect_eq(image.kernel_end, 2 * MIB + 0x2000);
	kernel_image_close(&image);
}

Test(elf_pvh, missing_note)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.with_note = false;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "no PVH entry note") && strstr(err, "test.elf"),
		  "%s", err);
}

Test(elf_pvh, entry_outside_segments)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.entry = 64 * MIB;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "entry"), "%s", err);
}

Test(elf_pvh, segment_outside_ram)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;
	struct guest_memory memory;
	struct boot_entry entry;
	struct boot_request request = {
		.kernel = &image, .cmdline = "", .cpu_count = 1,
		.machine = machine_layout_firmware()};

	/* Valid as a file, but beyond a 64 MiB guest. */
	elf.load_paddr = 512 * MIB;
	elf.entry = 512 * MIB;
	cr_assert_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), 0, "%s", err);
	cr_expect_eq(boot_check(&request, 64 * MIB, err, sizeof(err)),
		     -EINVAL);
	cr_expect(strstr(err, "test.elf") && strstr(err, "64 MiB"), "%s", err);
	fixture_memory_create(&memory, 64 * MIB);
	cr_expect_lt(boot_load(&request, &memory, &entry, err, sizeof(err)),
		     0);
	cr_expect_eq(boot_check(&request, 1024 * MIB, err, sizeof(err)), 0,
		     "%s", err);
	fixture_memory_destroy(&memory);
	kernel_image_close(&image);
}

Test(elf_pvh, segment_below_1mib)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.load_paddr = 0x7000; /* over the zero page */
	elf.entry = 0x7010;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "segment 0"), "%s", err);
}

Test(elf_pvh, segment_across_4gib)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.load_paddr = 0xfffff000;
	elf.entry = 0xfffff000;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "segment 0"), "%s", err);
}

Test(elf_pvh, overflowing_file_range)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	/* p_offset + p_filesz wraps around 2^64 to a small number. */
	elf.load_offset = UINT64_MAX - 0x10;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "past the end of the file"), "%s", err);
}

Test(elf_pvh, filesz_beyond_memsz)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.load_memsz = 0x10;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "p_memsz"), "%s", err);
}

Test(elf_pvh, truncated_program_headers)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	/* The file ends in the middle of the second program header. */
	cr_expect_eq(parse_elf(&elf, 64 + 56 + 20, &image), -EINVAL);
	cr_expect(strstr(err, "program headers"), "%s", err);
}

Test(elf_pvh, program_headers_offset_overflow)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	elf.phoff = UINT64_MAX - 8;
	cr_expect_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), -EINVAL);
	cr_expect(strstr(err, "program headers"), "%s", err);
}

Test(elf_pvh, truncated_elf_header)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;

	cr_expect_eq(parse_elf(&elf, 40, &image), -EINVAL);
	cr_expect(strstr(err, "truncated ELF header"), "%s", err);
}

Test(elf_pvh, boot_load_pvh)
{
	struct fixture_elf elf = fixture_elf_defaults(true);
	struct kernel_image image;
	struct guest_memory memory;
	struct boot_entry entry;
	uint8_t initrd[0x3000];
	struct boot_request request = {
		.kernel = &image,
		.initrd = initrd,
		.initrd_size = sizeof(initrd),
		.cmdline = "console=hvc0",
		.cpu_count = 1,
		.machine = machine_layout_firmware(),
	};

	memset(initrd, 0x5a, sizeof(initrd));
	cr_assert_eq(parse_elf(&elf, FIXTURE_ELF_SIZE, &image), 0, "%s", err);
	fixture_memory_create(&memory, 64 * MIB);
	uint8_t *ram = memory.regions[0].host_addr;
	memset(ram + 2 * MIB, 0xee, 0x3000); /* bss must come out zeroed */

	cr_assert_eq(boot_load(&request, &memory, &entry, err, sizeof(err)), 0,
		     "%s", err);
	cr_expect_not(entry.long_mode);
	cr_expect_eq(entry.rip, 2 * MIB + 0x10);
	cr_expect_eq(entry.rbx, LAYOUT_PVH_START_INFO);

	for (size_t i = 0; i < FIXTURE_ELF_FILESZ; i++)
		cr_assert_eq(ram[2 * MIB + i], fixture_kernel_byte(i),
			     "segment byte %zu", i);
	for (size_t i = FIXTURE_ELF_FILESZ; i < 0x2000; i++)
		cr_assert_eq(ram[2 * MIB + i], 0, "bss byte %zu", i);
	cr_expect_eq(ram[2 * MIB + 0x2000], 0xee, "past memsz is untouched");

	const uint8_t *info = ram + LAYOUT_PVH_START_INFO;
	cr_expect_eq(le32_load(info), 0x336ec578);
	cr_expect_eq(le32_load(info + 4), 1);
	cr_expect_eq(le64_load(info + 24), LAYOUT_CMDLINE);
	cr_expect_str_eq((const char *)ram + LAYOUT_CMDLINE, "console=hvc0");
	cr_expect_eq(le64_load(info + 32), LAYOUT_ACPI_TABLES);
	cr_expect(memcmp(ram + le64_load(info + 32), "RSD PTR ", 8) == 0);

	cr_assert_eq(le32_load(info + 12), 1, "one module: the initrd");
	const uint8_t *module = ram + le64_load(info + 16);
	uint64_t initrd_address = le64_load(module);
	cr_expect_eq(le64_load(module + 8), sizeof(initrd));
	cr_expect_eq(initrd_address % 4096, 0);
	cr_expect_geq(initrd_address, image.kernel_end);
	cr_expect_leq(initrd_address + sizeof(initrd), 64 * MIB);
	cr_expect_arr_eq(ram + initrd_address, initrd, sizeof(initrd));

	cr_assert_eq(le32_load(info + 48), 3, "e820 ranges of a 64 MiB guest");
	const uint8_t *map = ram + le64_load(info + 40);
	cr_expect_eq(le64_load(map + 2 * 24), 1 * MIB);
	cr_expect_eq(le64_load(map + 2 * 24 + 8), 63 * MIB);
	cr_expect_eq(le32_load(map + 2 * 24 + 16), 1);
	cr_expect_eq(le32_load(map + 1 * 24 + 16), 2, "EBDA to 1 MiB reserved");

	fixture_memory_destroy(&memory);
	kernel_image_close(&image);
}

Test(elf_pvh, pvh_entry_registers)
{
	struct boot_entry entry = {
		.long_mode = false, .rip = 0x1000010, .rbx = 0x6000,
		.rsp = 0x8ff0};
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	memset(&regs, 0xff, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	boot_entry_registers(&entry, &regs, &sregs);
	cr_expect_eq(regs.rip, 0x1000010);
	cr_expect_eq(regs.rbx, 0x6000);
	cr_expect_eq(regs.rflags, 0x2, "IF, TF and VM clear");
	cr_expect_eq(sregs.cr0 & 0x80000001, 0x1, "PE on, PG off");
	cr_expect_eq(sregs.efer, 0);
	cr_expect_eq(sregs.cs.l, 0);
	cr_expect_eq(sregs.cs.db, 1);
	cr_expect_eq(sregs.cs.base, 0);
	cr_expect_eq(sregs.cs.limit, 0xffffffff);
	cr_expect_eq(sregs.cs.type, 0xb);
	cr_expect_eq(sregs.cs.present, 1);
	cr_expect_eq(sregs.cs.selector, 0x08);
	cr_expect_eq(sregs.ds.db, 1);
	cr_expect_eq(sregs.ss.limit, 0xffffffff);
	cr_expect_eq(sregs.es.type, 0x3);
	cr_expect_eq(sregs.tr.type, 0xb);
	cr_expect_eq(sregs.tr.limit, 0x67);
}
