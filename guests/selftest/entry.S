/*
 * The selftest guest's entry and its CPL0 trampolines.
 *
 * A PVH loader enters at pvh_start in 32-bit protected mode with paging off
 * and %ebx pointing at the hvm_start_info (xen/include/public/arch-x86/
 * hvm/start_info.h). We switch to long mode with an identity map of the
 * first 4 GiB and call selftest_start(start_info) in C. The page tables and
 * the GDT are static data, so the CPL0 part (emulated on a PVM host) stays a
 * few dozen instructions long.
 */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

#define MSR_EFER 0xc0000080
#define EFER_SCE (1 << 0)
#define EFER_LME (1 << 8)
#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)

/* Page table entry bits: present, writable, user, and (in a PD) 2 MiB. */
#define PTE_TABLE 0x7
#define PTE_LARGE 0x87

#define KERNEL_CS 0x08
#define KERNEL_DS 0x10

	/* The Xen ELF note that tells a PVH loader where to enter. */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4
	.long 4
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.long pvh_start

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cld
	/* .bss must be zero whatever the loader did; %ebx survives. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl

	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $MSR_EFER, %ecx
	rdmsr
	orl $(EFER_LME | EFER_SCE), %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_WP | CR0_PE), %eax
	movl %eax, %cr0
	lgdt gdt_pointer
	ljmp $KERNEL_CS, $long_mode

	.code64
long_mode:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $kernel_stack_top, %rsp
	movl %ebx, %edi
	call selftest_start
1:	cli
	hlt
	jmp 1b

/*
 * syscall from CPL3 lands here at CPL0 (AMD APM vol. 2 §6.1.1): %rcx holds
 * the user %rip, %r11 the user RFLAGS, and %rsp is still the user stack.
 * The CPL0 C code that set things up never resumes, so its stack is free.
 * selftest_syscall(number in %rdi) does the work.
 */
	.text
	.globl syscall_entry
syscall_entry:
	movq %rsp, user_rsp(%rip)
	movq $kernel_stack_top, %rsp
	pushq %rcx
	pushq %r11
	call selftest_syscall
	popq %r11
	popq %rcx
	movq user_rsp(%rip), %rsp
	sysretq

/*
 * One 16-byte stub per exception vector 0-31; the ones the CPU gives no
 * error code push a zero, so exception_common sees one frame layout:
 * vector, error code, then the CPU's %rip, %cs, RFLAGS, %rsp, %ss.
 */
	.balign 16
	.globl exception_stubs
exception_stubs:
	.set vector, 0
	.rept 32
	.balign 16
	.if (vector != 8) && (vector != 10) && (vector != 11) && (vector != 12) && \
	    (vector != 13) && (vector != 14) && (vector != 17) && (vector != 21) && \
	    (vector != 29) && (vector != 30)
	pushq $0
	.endif
	pushq $vector
	jmp exception_common
	.set vector, vector + 1
	.endr

exception_common:
	/* Nine pushes keep the ABI's 16-byte call alignment. */
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	leaq 72(%rsp), %rdi
	call selftest_exception
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .data.page_tables, "aw"
	.balign 4096
pml4:
	.quad pdpt + PTE_TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + PTE_TABLE
	.quad pd + 0x1000 + PTE_TABLE
	.quad pd + 0x2000 + PTE_TABLE
	.quad pd + 0x3000 + PTE_TABLE
	.fill 508, 8, 0
	/* 2048 2 MiB pages: guest-physical 0-4 GiB, reachable from CPL3. */
pd:
	.set page, 0
	.rept 2048
	.quad (page << 21) + PTE_LARGE
	.set page, page + 1
	.endr

	.data
	.balign 16
	/*
	 * SYSCALL loads %cs/%ss from STAR[47:32] (0x08, 0x10); SYSRET from
	 * STAR[63:48] + 16 and + 8 (0x23, 0x1b), so user data precedes user
	 * code. The TSS descriptor is filled in by selftest_start.
	 */
	.globl gdt, gdt_tss
gdt:
	.quad 0
	.quad 0x00af9a000000ffff /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff /* 0x10 kernel data */
	.quad 0x00cff2000000ffff /* 0x18 user data */
	.quad 0x00affa000000ffff /* 0x20 user code, 64-bit */
gdt_tss:
	.quad 0, 0               /* 0x28 TSS, 16 bytes in long mode */
gdt_end:
	.balign 8
	.word 0
gdt_pointer:
	.word gdt_end - gdt - 1
	.long gdt

	.section .bss
	.balign 8
user_rsp:
	.quad 0

	.section .stack, "aw", @nobits
	.balign 16
	.space 16384
kernel_stack_top:
	.globl user_stack_top
	.space 16384
user_stack_top:
