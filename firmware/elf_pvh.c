#include "elf_pvh.h"

#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "layout.h"
#include "little_endian.h"

/* A program header with the fields vessel uses, whichever the ELF class. */
struct elf_segment {
	uint32_t type;
	uint64_t offset;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
};

struct elf_layout {
	bool is64;
	uint64_t phoff;
	uint16_t phnum;
};

#define FOUR_GIB 0x100000000ULL

/* struct hvm_start_info and friends (Xen's public/arch-x86/hvm/start_info.h),
 * as offsets. */
#define START_INFO_VERSION 1
#define START_INFO_SIZE 56
#define SI_MAGIC 0
#define SI_VERSION 4
#define SI_NR_MODULES 12
#define SI_MODLIST_PADDR 16
#define SI_CMDLINE_PADDR 24
#define SI_RSDP_PADDR 32
#define SI_MEMMAP_PADDR 40
#define SI_MEMMAP_ENTRIES 48
#define MODLIST_ENTRY_SIZE 32 /* paddr, size, cmdline_paddr, reserved */
#define MEMMAP_ENTRY_SIZE 24 /* addr, size, type, reserved */
#define MODLIST_OFFSET START_INFO_SIZE
#define MEMMAP_OFFSET (MODLIST_OFFSET + MODLIST_ENTRY_SIZE)
#define START_INFO_AREA (MEMMAP_OFFSET + E820_MAX_ENTRIES * MEMMAP_ENTRY_SIZE)

_Static_assert(LAYOUT_PVH_START_INFO + START_INFO_AREA <= LAYOUT_ZERO_PAGE,
	       "PVH start info overlaps the zero page");

/* [offset, offset + length) inside a file of size bytes, without overflow. */
static bool range_in_file(uint64_t offset, uint64_t length, size_t size)
{
	return offset <= size && length <= size - offset;
}

static int elf_header(const struct kernel_image *image,
		      struct elf_layout *layout, char *err, size_t err_len)
{
	const uint8_t *data = image->data;
	uint16_t machine = 0, phentsize = 0;

	if (image->size < EI_NIDENT) {
		snprintf(err, err_len, "%s: truncated ELF identification",
			 image->path);
		return -EINVAL;
	}
	if (data[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, err_len, "%s: ELF data encoding %u is not little-endian",
			 image->path, data[EI_DATA]);
		return -EINVAL;
	}
	if (data[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr ehdr;

		if (image->size < sizeof(ehdr))
			goto truncated;
		memcpy(&ehdr, data, sizeof(ehdr));
		layout->is64 = true;
		layout->phoff = ehdr.e_phoff;
		layout->phnum = ehdr.e_phnum;
		machine = ehdr.e_machine;
		phentsize = ehdr.e_phentsize;
		if (machine != EM_X86_64 || phentsize != sizeof(Elf64_Phdr))
			goto unsupported;
	} else if (data[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr ehdr;

		if (image->size < sizeof(ehdr))
			goto truncated;
		memcpy(&ehdr, data, sizeof(ehdr));
		layout->is64 = false;
		layout->phoff = ehdr.e_phoff;
		layout->phnum = ehdr.e_phnum;
		machine = ehdr.e_machine;
		phentsize = ehdr.e_phentsize;
		if (machine != EM_386 || phentsize != sizeof(Elf32_Phdr))
			goto unsupported;
	} else {
		snprintf(err, err_len, "%s: ELF class %u is neither 32- nor 64-bit",
			 image->path, data[EI_CLASS]);
		return -EINVAL;
	}

	if (layout->phnum == 0 ||
	    !range_in_file(layout->phoff, (uint64_t)layout->phnum * phentsize,
			   image->size)) {
		snprintf(err, err_len,
			 "%s: %u program headers at offset 0x%" PRIx64 " do not fit in the file of %zu bytes",
			 image->path, layout->phnum, layout->phoff, image->size);
		return -EINVAL;
	}
	return 0;

truncated:
	snprintf(err, err_len, "%s: truncated ELF header (%zu bytes)",
		 image->path, image->size);
	return -EINVAL;
unsupported:
	snprintf(err, err_len,
		 "%s: not an x86 ELF kernel (e_machine %u, e_phentsize %u)",
		 image->path, machine, phentsize);
	return -EINVAL;
}

/* Program header index, already known to lie inside the file. */
static struct elf_segment elf_segment(const struct kernel_image *image,
				      const struct elf_layout *layout,
				      unsigned int index)
{
	struct elf_segment segment;

	if (layout->is64) {
		Elf64_Phdr phdr;

		memcpy(&phdr, image->data + layout->phoff + index * sizeof(phdr),
		       sizeof(phdr));
		segment = (struct elf_segment){phdr.p_type, phdr.p_offset,
					       phdr.p_paddr, phdr.p_filesz,
					       phdr.p_memsz};
	} else {
		Elf32_Phdr phdr;

		memcpy(&phdr, image->data + layout->phoff + index * sizeof(phdr),
		       sizeof(phdr));
		segment = (struct elf_segment){phdr.p_type, phdr.p_offset,
					       phdr.p_paddr, phdr.p_filesz,
					       phdr.p_memsz};
	}
	return segment;
}

static uint64_t align4(uint64_t value)
{
	return (value + 3) & ~3ULL;
}

/* Looks through one PT_NOTE for XEN_ELFNOTE_PHYS32_ENTRY (ELF gABI "Note
 * Section": namesz, descsz, type, then name and descriptor, each padded to 4
 * bytes). Returns 1 when found, 0 when not, -EINVAL when malformed. */
static int elf_find_pvh_note(const struct kernel_image *image,
			     const struct elf_segment *note, uint64_t *entry,
			     char *err, size_t err_len)
{
	const uint8_t *bytes = image->data + note->offset;
	uint64_t position = 0;

	while (note->filesz - position >= 12) {
		uint32_t namesz = le32_load(bytes + position);
		uint32_t descsz = le32_load(bytes + position + 4);
		uint32_t type = le32_load(bytes + position + 8);
		uint64_t remaining = note->filesz - position - 12;
		const uint8_t *name = bytes + position + 12;
		const uint8_t *desc = name + align4(namesz);

		if (align4(namesz) > remaining ||
		    align4(descsz) > remaining - align4(namesz)) {
			snprintf(err, err_len,
				 "%s: malformed ELF note at file offset 0x%" PRIx64,
				 image->path, note->offset + position);
			return -EINVAL;
		}
		position += 12 + align4(namesz) + align4(descsz);

		if (namesz != 4 || memcmp(name, "Xen", 4) != 0 ||
		    type != XEN_ELFNOTE_PHYS32_ENTRY)
			continue;
		if (descsz == 4) {
			*entry = le32_load(desc);
		} else if (descsz == 8 && le64_load(desc) < FOUR_GIB) {
			*entry = le64_load(desc);
		} else {
			snprintf(err, err_len,
				 "%s: PVH entry note holds no 32-bit address (%u-byte descriptor)",
				 image->path, descsz);
			return -EINVAL;
		}
		return 1;
	}
	return 0;
}

static int elf_check_load_segment(const struct kernel_image *image,
				  unsigned int index,
				  const struct elf_segment *segment, char *err,
				  size_t err_len)
{
	if (!range_in_file(segment->offset, segment->filesz, image->size)) {
		snprintf(err, err_len,
			 "%s: segment %u: file bytes 0x%" PRIx64 "+0x%" PRIx64 " run past the end of the file (%zu bytes)",
			 image->path, index, segment->offset, segment->filesz,
			 image->size);
		return -EINVAL;
	}
	if (segment->filesz > segment->memsz) {
		snprintf(err, err_len,
			 "%s: segment %u: p_filesz 0x%" PRIx64 " exceeds p_memsz 0x%" PRIx64,
			 image->path, index, segment->filesz, segment->memsz);
		return -EINVAL;
	}
	/* Below 1 MiB live vessel's tables; PVH starts with paging off, so
	 * everything must sit below 4 GiB. */
	if (segment->paddr < LAYOUT_HIGH_MEMORY_START ||
	    segment->paddr >= FOUR_GIB ||
	    segment->memsz > FOUR_GIB - segment->paddr) {
		snprintf(err, err_len,
			 "%s: segment %u at 0x%" PRIx64 " (0x%" PRIx64 " bytes) is outside 1 MiB-4 GiB",
			 image->path, index, segment->paddr, segment->memsz);
		return -EINVAL;
	}
	return 0;
}

int elf_pvh_parse(struct kernel_image *image, char *err, size_t err_len)
{
	struct elf_layout layout;
	uint64_t lowest = UINT64_MAX, highest = 0, entry = 0;
	bool found_entry = false;
	int ret = elf_header(image, &layout, err, err_len);

	if (ret < 0)
		return ret;

	for (unsigned int i = 0; i < layout.phnum; i++) {
		struct elf_segment segment = elf_segment(image, &layout, i);

		if (segment.type == PT_LOAD) {
			ret = elf_check_load_segment(image, i, &segment, err,
						     err_len);
			if (ret < 0)
				return ret;
			if (segment.paddr < lowest)
				lowest = segment.paddr;
			if (segment.paddr + segment.memsz > highest)
				highest = segment.paddr + segment.memsz;
		} else if (segment.type == PT_NOTE && !found_entry) {
			if (!range_in_file(segment.offset, segment.filesz,
					   image->size)) {
				snprintf(err, err_len,
					 "%s: note segment %u runs past the end of the file",
					 image->path, i);
				return -EINVAL;
			}
			ret = elf_find_pvh_note(image, &segment, &entry, err,
						err_len);
			if (ret < 0)
				return ret;
			found_entry = ret == 1;
		}
	}

	if (!found_entry) {
		snprintf(err, err_len,
			 "%s: no PVH entry note (Xen note XEN_ELFNOTE_PHYS32_ENTRY); vessel boots ELF kernels only through PVH",
			 image->path);
		return -EINVAL;
	}
	if (entry < lowest || entry >= highest) {
		snprintf(err, err_len,
			 "%s: PVH entry 0x%" PRIx64 " is outside the loaded segments",
			 image->path, entry);
		return -EINVAL;
	}

	image->format = KERNEL_FORMAT_PVH_ELF;
	image->boot_protocol_version = 0;
	image->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	/* PVH modules lie below 4 GiB; boot_check keeps the initrd in the
	 * machine's RAM below that. */
	image->initrd_addr_max = UINT32_MAX;
	image->load_address = lowest;
	image->entry_point = entry;
	image->kernel_end = highest;
	image->setup_size = 0;
	image->setup_header_end = 0;
	return 0;
}

int elf_pvh_load(const struct kernel_image *image,
		 const struct guest_memory *memory, char *err, size_t err_len)
{
	struct elf_layout layout;
	int ret = elf_header(image, &layout, err, err_len);

	if (ret < 0)
		return ret;
	for (unsigned int i = 0; i < layout.phnum; i++) {
		struct elf_segment segment = elf_segment(image, &layout, i);
		uint8_t *target;

		if (segment.type != PT_LOAD)
			continue;
		target = guest_memory_ptr(memory, segment.paddr, segment.memsz);
		if (!target) {
			snprintf(err, err_len,
				 "%s: segment %u at 0x%" PRIx64 " (0x%" PRIx64 " bytes) is outside guest RAM",
				 image->path, i, segment.paddr, segment.memsz);
			return -EFAULT;
		}
		memcpy(target, image->data + segment.offset, segment.filesz);
		memset(target + segment.filesz, 0,
		       segment.memsz - segment.filesz);
	}
	return 0;
}

int pvh_start_info_write(const struct guest_memory *memory,
			 const struct boot_handoff *handoff, char *err,
			 size_t err_len)
{
	uint8_t area[START_INFO_AREA] = {0};
	const struct e820_table *e820 = handoff->e820;

	le32_store(area + SI_MAGIC, HVM_START_MAGIC);
	le32_store(area + SI_VERSION, START_INFO_VERSION);
	le64_store(area + SI_CMDLINE_PADDR, handoff->cmdline_address);
	le64_store(area + SI_RSDP_PADDR, handoff->rsdp_address);
	if (handoff->initrd_size != 0) {
		uint8_t *module = area + MODLIST_OFFSET;

		le32_store(area + SI_NR_MODULES, 1);
		le64_store(area + SI_MODLIST_PADDR,
			   LAYOUT_PVH_START_INFO + MODLIST_OFFSET);
		le64_store(module, handoff->initrd_address);
		le64_store(module + 8, handoff->initrd_size);
	}
	le64_store(area + SI_MEMMAP_PADDR, LAYOUT_PVH_START_INFO + MEMMAP_OFFSET);
	le32_store(area + SI_MEMMAP_ENTRIES, e820->count);
	for (unsigned int i = 0; i < e820->count; i++) {
		uint8_t *entry = area + MEMMAP_OFFSET + i * MEMMAP_ENTRY_SIZE;

		le64_store(entry, e820->entries[i].address);
		le64_store(entry + 8, e820->entries[i].size);
		le32_store(entry + 16, e820->entries[i].type);
	}

	if (guest_memory_write(memory, LAYOUT_PVH_START_INFO, area,
			       sizeof(area)) < 0) {
		snprintf(err, err_len, "PVH start info at 0x%x is outside guest RAM",
			 LAYOUT_PVH_START_INFO);
		return -EFAULT;
	}
	return 0;
}
