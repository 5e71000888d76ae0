#include "fixtures.h"

#include <elf.h>
#include <stdlib.h>
#include <string.h>

void fixture_memory_create(struct guest_memory *memory, uint64_t size)
{
	memset(memory, 0, sizeof(*memory));
	memory->regions[0].guest_phys_addr = 0;
	memory->regions[0].size = size;
	memory->regions[0].host_addr = calloc(1, size);
	if (!memory->regions[0].host_addr)
		abort();
	memory->region_count = 1;
}

void fixture_memory_destroy(struct guest_memory *memory)
{
	free(memory->regions[0].host_addr);
	memset(memory, 0, sizeof(*memory));
}

uint8_t fixture_kernel_byte(size_t offset)
{
	return (uint8_t)(offset * 7 + 3);
}

static void put16(uint8_t *at, uint16_t value)
{
	memcpy(at, &value, sizeof(value));
}

static void put32(uint8_t *at, uint32_t value)
{
	memcpy(at, &value, sizeof(value));
}

static void put64(uint8_t *at, uint64_t value)
{
	memcpy(at, &value, sizeof(value));
}

uint8_t *fixture_bzimage(void)
{
	uint8_t *image = calloc(1, FIXTURE_BZIMAGE_SIZE);

	if (!image)
		abort();
	/* Setup header fields at their boot.rst offsets. */
	image[0x1f1] = 4; /* setup_sects */
	put32(image + 0x1f4, FIXTURE_BZIMAGE_KERNEL_SIZE / 16); /* syssize */
	put16(image + 0x1fa, 0xffff); /* vid_mode: normal */
	put16(image + 0x1fe, 0xaa55); /* boot_flag */
	image[0x200] = 0xeb; /* jmp short over the header */
	image[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(image + 0x202, "HdrS", 4);
	put16(image + 0x206, 0x020f); /* version 2.15 */
	image[0x211] = 0x01; /* loadflags: LOADED_HIGH */
	put32(image + 0x214, 0x100000); /* code32_start */
	put32(image + 0x22c, 0x7fffffff); /* initrd_addr_max */
	put32(image + 0x230, 0x200000); /* kernel_alignment */
	image[0x234] = 1; /* relocatable_kernel */
	put16(image + 0x236, 0x0003); /* xloadflags: KERNEL_64, ABOVE_4G */
	put32(image + 0x238, 2047); /* cmdline_size */
	put64(image + 0x258, 16 * MIB); /* pref_address */
	put32(image + 0x260, 8 * MIB); /* init_size */
	for (size_t i = 0; i < FIXTURE_BZIMAGE_KERNEL_SIZE; i++)
		image[FIXTURE_BZIMAGE_SETUP_SIZE + i] = fixture_kernel_byte(i);
	return image;
}

struct fixture_elf fixture_elf_defaults(bool is64)
{
	return (struct fixture_elf){
		.is64 = is64,
		.with_note = true,
		.note_desc_size = is64 ? 8 : 4,
		.load_paddr = 2 * MIB,
		.load_offset = FIXTURE_ELF_LOAD_OFFSET,
		.load_filesz = FIXTURE_ELF_FILESZ,
		.load_memsz = 0x2000,
		.entry = 2 * MIB + 0x10,
		.phoff = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr),
		.phnum = 2,
	};
}

/* Xen note: namesz 4, descsz, type 18, "Xen\0", descriptor. */
static size_t put_note(uint8_t *at, const struct fixture_elf *elf)
{
	put32(at, 4);
	put32(at + 4, elf->note_desc_size);
	put32(at + 8, 18);
	memcpy(at + 12, "Xen", 4);
	if (elf->note_desc_size == 8)
		put64(at + 16, elf->entry);
	else
		put32(at + 16, (uint32_t)elf->entry);
	return 16 + elf->note_desc_size;
}

uint8_t *fixture_elf_build(const struct fixture_elf *elf)
{
	uint8_t *file = calloc(1, FIXTURE_ELF_SIZE);
	const size_t note_offset = 0x200;
	/* A note that is not the PVH one, so that a missing entry note is
	 * tested with a PT_NOTE present. */
	struct fixture_elf other = *elf;
	size_t note_size;

	if (!file)
		abort();
	other.entry = 0x1234;
	if (elf->with_note) {
		note_size = put_note(file + note_offset, elf);
	} else {
		note_size = put_note(file + note_offset, &other);
		put32(file + note_offset + 8, 17); /* another Xen note type */
	}

	memcpy(file, ELFMAG, SELFMAG);
	file[EI_DATA] = ELFDATA2LSB;
	file[EI_VERSION] = EV_CURRENT;
	if (elf->is64) {
		Elf64_Ehdr ehdr = {0};
		Elf64_Phdr phdr[2] = {0};

		memcpy(ehdr.e_ident, file, EI_NIDENT);
		ehdr.e_ident[EI_CLASS] = ELFCLASS64;
		ehdr.e_type = ET_EXEC;
		ehdr.e_machine = EM_X86_64;
		ehdr.e_version = EV_CURRENT;
		ehdr.e_phoff = elf->phoff;
		ehdr.e_ehsize = sizeof(ehdr);
		ehdr.e_phentsize = sizeof(Elf64_Phdr);
		ehdr.e_phnum = elf->phnum;
		phdr[0] = (Elf64_Phdr){.p_type = PT_LOAD,
				       .p_offset = elf->load_offset,
				       .p_vaddr = elf->load_paddr,
				       .p_paddr = elf->load_paddr,
				       .p_filesz = elf->load_filesz,
				       .p_memsz = elf->load_memsz};
		phdr[1] = (Elf64_Phdr){.p_type = PT_NOTE,
				       .p_offset = note_offset,
				       .p_filesz = note_size};
		memcpy(file, &ehdr, sizeof(ehdr));
		memcpy(file + sizeof(ehdr), phdr, sizeof(phdr));
	} else {
		Elf32_Ehdr ehdr = {0};
		Elf32_Phdr phdr[2] = {0};

		memcpy(ehdr.e_ident, file, EI_NIDENT);
		ehdr.e_ident[EI_CLASS] = ELFCLASS32;
		ehdr.e_type = ET_EXEC;
		ehdr.e_machine = EM_386;
		ehdr.e_version = EV_CURRENT;
		ehdr.e_phoff = (uint32_t)elf->phoff;
		ehdr.e_ehsize = sizeof(ehdr);
		ehdr.e_phentsize = sizeof(Elf32_Phdr);
		ehdr.e_phnum = elf->phnum;
		phdr[0] = (Elf32_Phdr){.p_type = PT_LOAD,
				       .p_offset = (uint32_t)elf->load_offset,
				       .p_vaddr = (uint32_t)elf->load_paddr,
				       .p_paddr = (uint32_t)elf->load_paddr,
				       .p_filesz = (uint32_t)elf->load_filesz,
				       .p_memsz = (uint32_t)elf->load_memsz};
		phdr[1] = (Elf32_Phdr){.p_type = PT_NOTE,
				       .p_offset = note_offset,
				       .p_filesz = (uint32_t)note_size};
		memcpy(file, &ehdr, sizeof(ehdr));
		memcpy(file + sizeof(ehdr), phdr, sizeof(phdr));
	}
	for (size_t i = 0; i < FIXTURE_ELF_FILESZ; i++)
		file[FIXTURE_ELF_LOAD_OFFSET + i] = fixture_kernel_byte(i);
	return file;
}

const uint8_t *fixture_find(const uint8_t *haystack, size_t haystack_size,
			    const void *needle, size_t needle_size)
{
	for (size_t i = 0; i + needle_size <= haystack_size; i++) {
		if (memcmp(haystack + i, needle, needle_size) == 0)
			return haystack + i;
	}
	return NULL;
}

uint8_t fixture_byte_sum(const uint8_t *bytes, size_t length)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < length; i++)
		sum = (uint8_t)(sum + bytes[i]);
	return sum;
}
