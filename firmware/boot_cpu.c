#include "boot_cpu.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "boot.h"
#include "layout.h"
#include "little_endian.h"

/* Segment descriptor types (Intel SDM vol. 3 §3.4.5.1). */
#define SEGMENT_TYPE_DATA_READ_WRITE_ACCESSED 0x3
#define SEGMENT_TYPE_CODE_EXECUTE_READ_ACCESSED 0xb
#define SEGMENT_TYPE_TSS_BUSY 0xb /* 32-bit busy TSS, 64-bit in long mode */

/* Flat descriptors: base 0, limit 0xfffff in 4 KiB units, present, DPL 0
 * (Intel SDM vol. 3 §3.4.5). */
#define GDT_CODE32 0x00cf9b000000ffffULL /* G, D/B */
#define GDT_CODE64 0x00af9b000000ffffULL /* G, L */
#define GDT_DATA 0x00cf93000000ffffULL /* G, D/B */

/* Page-table entry bits (Intel SDM vol. 3 §4.5). */
#define PTE_PRESENT (1ULL << 0)
#define PTE_WRITABLE (1ULL << 1)
#define PTE_LARGE_PAGE (1ULL << 7)

#define PAGE_TABLE_SIZE 0x1000
#define PAGE_TABLE_ENTRIES 512
#define IDENTITY_MAP_DIRECTORIES 4 /* one per GiB, up to 4 GiB */
#define LARGE_PAGE_SIZE (2ULL << 20)

#define PML4_ADDRESS LAYOUT_PAGE_TABLES
#define PDPT_ADDRESS (PML4_ADDRESS + PAGE_TABLE_SIZE)
#define PD_ADDRESS (PDPT_ADDRESS + PAGE_TABLE_SIZE)
#define PAGE_TABLES_SIZE ((2 + IDENTITY_MAP_DIRECTORIES) * PAGE_TABLE_SIZE)

_Static_assert(LAYOUT_PAGE_TABLES % PAGE_TABLE_SIZE == 0,
	       "page tables must be 4 KiB aligned");
_Static_assert(LAYOUT_PAGE_TABLES + PAGE_TABLES_SIZE <= LAYOUT_CMDLINE,
	       "page tables overlap the command line");

#define CR0_PE (1ULL << 0)
#define CR0_ET (1ULL << 4)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define RFLAGS_RESERVED_ONE 0x2

int boot_gdt_write(const struct guest_memory *memory)
{
	uint8_t gdt[BOOT_GDT_ENTRIES * 8] = {0};

	le64_store(gdt + BOOT_GDT_CODE32_SELECTOR, GDT_CODE32);
	le64_store(gdt + BOOT_GDT_CODE64_SELECTOR, GDT_CODE64);
	le64_store(gdt + BOOT_GDT_DATA_SELECTOR, GDT_DATA);
	return guest_memory_write(memory, LAYOUT_BOOT_GDT, gdt, sizeof(gdt));
}

int boot_page_tables_write(const struct guest_memory *memory)
{
	uint8_t *tables = guest_memory_ptr(memory, LAYOUT_PAGE_TABLES,
					   PAGE_TABLES_SIZE);
	uint8_t *pml4 = tables;
	uint8_t *pdpt = tables + PAGE_TABLE_SIZE;
	uint8_t *directories = tables + 2 * PAGE_TABLE_SIZE;

	if (!tables)
		return -EFAULT;
	memset(tables, 0, PAGE_TABLES_SIZE);
	le64_store(pml4, PDPT_ADDRESS | PTE_PRESENT | PTE_WRITABLE);
	for (unsigned int gib = 0; gib < IDENTITY_MAP_DIRECTORIES; gib++)
		le64_store(pdpt + gib * 8,
			   (PD_ADDRESS + gib * PAGE_TABLE_SIZE) | PTE_PRESENT |
				   PTE_WRITABLE);
	for (uint64_t page = 0;
	     page < IDENTITY_MAP_DIRECTORIES * PAGE_TABLE_ENTRIES; page++)
		le64_store(directories + page * 8,
			   (page * LARGE_PAGE_SIZE) | PTE_PRESENT |
				   PTE_WRITABLE | PTE_LARGE_PAGE);
	return 0;
}

/* The hidden part of a flat segment, as the descriptor at selector would
 * load it (KVM takes the cached state from kvm_segment, not the GDT). */
static struct kvm_segment flat_segment(uint16_t selector, uint8_t type,
				       bool long_mode_code)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = long_mode_code ? 0 : 1,
		.s = 1,
		.l = long_mode_code ? 1 : 0,
		.g = 1,
	};
}

void boot_entry_registers(const struct boot_entry *entry,
			  struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	struct kvm_segment data = flat_segment(
		BOOT_GDT_DATA_SELECTOR, SEGMENT_TYPE_DATA_READ_WRITE_ACCESSED,
		false);

	memset(regs, 0, sizeof(*regs));
	regs->rflags = RFLAGS_RESERVED_ONE; /* IF clear: interrupts off */
	regs->rip = entry->rip;
	regs->rsi = entry->rsi;
	regs->rbx = entry->rbx;
	regs->rsp = entry->rsp;

	sregs->gdt.base = LAYOUT_BOOT_GDT;
	sregs->gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;
	sregs->ds = data;
	sregs->es = data;
	sregs->fs = data;
	sregs->gs = data;
	sregs->ss = data;
	/* VM entry needs a usable busy TSS; the PVH ABI asks for a 32-bit one
	 * with base 0 and limit 0x67, which serves long mode as well. */
	sregs->tr = (struct kvm_segment){
		.limit = 0x67,
		.type = SEGMENT_TYPE_TSS_BUSY,
		.present = 1,
	};

	if (entry->long_mode) {
		/* Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst,
		 * "64-bit Boot Protocol"): long mode, paging on with an
		 * identity map, __BOOT_CS and __BOOT_DS loaded. */
		sregs->cs = flat_segment(BOOT_GDT_CODE64_SELECTOR,
					 SEGMENT_TYPE_CODE_EXECUTE_READ_ACCESSED,
					 true);
		sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs->cr3 = entry->cr3;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	} else {
		/* PVH boot ABI (Xen's docs/misc/pvh.pandoc): 32-bit
		 * protected mode, paging off, flat CS and data segments. */
		sregs->cs = flat_segment(BOOT_GDT_CODE32_SELECTOR,
					 SEGMENT_TYPE_CODE_EXECUTE_READ_ACCESSED,
					 false);
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	}
}
