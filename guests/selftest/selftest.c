/*
 * vessel's selftest guest: a freestanding PVH kernel that tests and
 * benchmarks drive through its command line (hvm_start_info.cmdline_paddr):
 *
 *   mode=hello     print a line and power off (the default)
 *   mode=spin N    run N loop iterations at CPL3, print the TSC cycles taken
 *   mode=echo      echo bytes from COM1 until it reads 'q'
 *   mode=reset     ask for a reset through the i8042 (0xfe to port 0x64)
 *   mode=fault     at CPL0, load an x87 value from an address no RAM or
 *                  device backs: KVM must emulate the MMIO access and its
 *                  emulator has no x87 loads, so every KVM stops the guest
 *   mode=triple    at CPL0, mark every IDT gate not present and raise
 *                  int3: no exception can be delivered, the CPU shuts down
 *   mode=cpuid     print CPUID.1 ECX/EDX and CPUID.7.0 EBX
 *   mode=rtc       print the CMOS RTC's date and time
 *   mode=flood [SECONDS] [calm]
 *                  flood the virtio-rng and the first virtio-blk disk
 *                  while reading the second disk, and print that disk's
 *                  reads a second (flood.c)
 *   mode=count [N] [DELAY]
 *                  print 1, 2, 3, ... one number a line, N of them (none
 *                  or 0: forever), with DELAY busy-loop iterations
 *                  between lines (default 5000000, a few hundred lines a
 *                  second), then power off: a paused guest prints
 *                  nothing, and after resume it goes on with the next
 *                  number
 *   mode=write MIB KIB [DELAY]
 *                  fill MIB MiB of RAM from 16 MiB on with non-zero
 *                  data, print "selftest: filled", then count as
 *                  mode=count does; a byte received on COM1 rewrites
 *                  the next KIB KiB of that area (in turn, wrapping) and
 *                  prints "selftest: touched": a known share of RAM
 *                  written, for dirty tracking and diff snapshots. The
 *                  byte 'r' instead has the virtio-rng fill a page the
 *                  guest never writes itself ("selftest: entropy
 *                  filled", the page left unread: a read may mark it
 *                  dirty too), and 's' prints that page's sum
 *                  ("selftest: entropy HEX")
 *   mode=display   draw a white rectangle (x 100-399, y 100-199) on a
 *                  1024x768x32 framebuffer at 0xfd000000 (what vessel's
 *                  --display sdl gives), turn the mouse's reporting on,
 *                  then print every byte the i8042 delivers, in hex, as
 *                  "key" or "mouse", until Q's make code
 *
 * CPL0 only sets up long mode, the IDT, a TSS and the syscall MSRs, then
 * iretq's to CPL3 with IOPL 3: on a PVM host CPL0 code is emulated, while
 * CPL3 code (port I/O included) runs natively. CPL3 comes back through
 * syscall only for what needs CPL0 (hlt, the fault test).
 */
#include <stddef.h>
#include <stdint.h>

#include "selftest.h"
#include "virtio_pci.h"

#define XEN_HVM_START_MAGIC 0x336ec578u

#define COM1 0x3f8
#define UART_LSR (COM1 + 5)
#define UART_LSR_DATA_READY 0x01
#define UART_LSR_THR_EMPTY 0x20

/* ACPI fixed hardware, where vmm/machine_layout.h has it (ACPI 6.5
 * §4.8.3.2). */
#define ACPI_PM1_CONTROL_PORT 0x604
#define ACPI_S5_SLEEP_TYPE 5
#define ACPI_SLP_EN (1u << 13)

#define I8042_COMMAND_PORT 0x64
#define I8042_PULSE_RESET 0xfe

#define CMOS_INDEX_PORT 0x70
#define CMOS_DATA_PORT 0x71
#define RTC_MAX_POLLS 100000

#define MSR_STAR 0xc0000081u
#define MSR_LSTAR 0xc0000082u
#define MSR_FMASK 0xc0000084u

#define KERNEL_CS 0x08
#define USER_DS (0x18 | 3)
#define USER_CS (0x20 | 3)
#define TSS_SELECTOR 0x28
/* SYSRET takes %ss = base + 8 and %cs = base + 16, with RPL 3. */
#define STAR_SYSRET_BASE (0x10 | 3)

#define RFLAGS_RESERVED (1u << 1)
#define RFLAGS_IOPL3 (3u << 12)
#define RFLAGS_TF (1u << 8)
#define RFLAGS_IF (1u << 9)
#define RFLAGS_DF (1u << 10)

#define SPIN_DEFAULT_ITERATIONS 100000000ull
/* ~2 ms at CPL3's ~2.5 G iterations/s, plus ~10 port exits per line. */
#define COUNT_DEFAULT_DELAY 5000000ull
#define CMDLINE_MAX 4096
#define IDENTITY_MAP_END 0x100000000ull
/* Inside the 32-bit PCI hole (vmm/machine_layout.h), where nothing is
 * mapped. */
#define UNBACKED_ADDRESS 0xd0000000ull

enum syscall_number {
	SYSCALL_HALT,
	SYSCALL_FAULT,
	SYSCALL_TRIPLE_FAULT,
};

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

/*
 * The 64-bit TSS (Intel SDM vol. 3 §8.7) with an I/O permission bitmap that
 * allows every port (§19.5.2: a zero bit grants the port, and the byte after
 * the bitmap must be all ones). IOPL 3 alone should grant CPL3 port I/O, but
 * a PVM host keeps the real IOPL at 0 and checks the guest's bitmap instead.
 */
#define IO_BITMAP_BYTES (65536 / 8)

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
	uint8_t io_bitmap[IO_BITMAP_BYTES + 1];
} __attribute__((packed));

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attributes;
	uint16_t offset_middle;
	uint32_t offset_high;
	uint32_t reserved;
} __attribute__((packed));

/* What exception_common hands selftest_exception. */
struct exception_frame {
	uint64_t vector;
	uint64_t error_code;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t ss;
};

/* From entry.S. */
extern uint64_t gdt_tss[2];
extern const char exception_stubs[];
extern const char syscall_entry[];
extern char user_stack_top[];

void selftest_start(uint32_t start_info_address);
void selftest_syscall(long number);
void selftest_exception(struct exception_frame *frame);

static struct tss tss;
static struct idt_gate idt[32];
static char kernel_interrupt_stack[8192] __attribute__((aligned(16)));
static const char *cmdline = "";

/* GCC may emit calls to these even in a freestanding build. */
void *memset(void *destination, int value, size_t size)
{
	unsigned char *bytes = destination;
	while (size--)
		*bytes++ = (unsigned char)value;
	return destination;
}

void *memcpy(void *destination, const void *source, size_t size)
{
	unsigned char *to = destination;
	const unsigned char *from = source;
	while (size--)
		*to++ = *from++;
	return destination;
}

static inline void wrmsr(uint32_t index, uint64_t value)
{
	__asm__ volatile("wrmsr"
			 :
			 : "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

static void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(registers[0]), "=b"(registers[1]), "=c"(registers[2]),
			   "=d"(registers[3])
			 : "a"(leaf), "c"(subleaf));
}

static void user_syscall(long number)
{
	__asm__ volatile("syscall"
			 : "+D"(number)
			 :
			 : "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11",
			   "memory");
}

static void uart_put(char c)
{
	while (!(inb(UART_LSR) & UART_LSR_THR_EMPTY))
		;
	outb(COM1, (uint8_t)c);
}

static char uart_get(void)
{
	while (!(inb(UART_LSR) & UART_LSR_DATA_READY))
		;
	return (char)inb(COM1);
}

void print(const char *text)
{
	while (*text)
		uart_put(*text++);
}

static void print_hex(uint64_t value, int digits)
{
	print("0x");
	while (digits--)
		uart_put("0123456789abcdef"[(value >> (digits * 4)) & 0xf]);
}

void print_decimal(uint64_t value, int min_digits)
{
	char digits[20];
	int count = 0;
	do {
		digits[count++] = (char)('0' + value % 10);
		value /= 10;
	} while (value);
	while (min_digits-- > count)
		uart_put('0');
	while (count)
		uart_put(digits[--count]);
}

static __attribute__((noreturn)) void power_off(void)
{
	print("selftest: powering off\n");
	outw(ACPI_PM1_CONTROL_PORT, (ACPI_S5_SLEEP_TYPE << 10) | ACPI_SLP_EN);
	print("selftest: power off did not happen, halting\n");
	user_syscall(SYSCALL_HALT);
	for (;;)
		;
}

/* Runs at CPL0, entered from syscall_entry. */
void selftest_syscall(long number)
{
	switch (number) {
	case SYSCALL_FAULT:
		/* fld m64 (x87) from the PCI hole, where vessel puts no
		 * device: KVM exits with an emulation failure. */
		__asm__ volatile("fldl (%0)" : : "r"(UNBACKED_ADDRESS) : "memory");
		return;
	case SYSCALL_TRIPLE_FAULT:
		/* No gate present: int3 finds none, nor does the #NP that
		 * follows, nor the #DF after it (Intel SDM vol. 3A, §6.15,
		 * interrupt 8). The IDT itself stays loaded, as a PVM host
		 * refuses lidt. */
		for (size_t vector = 0; vector < sizeof(idt) / sizeof(idt[0]);
		     vector++)
			idt[vector].type_attributes = 0;
		__asm__ volatile("int3" : : : "memory");
		return;
	case SYSCALL_HALT:
	default:
		for (;;)
			__asm__ volatile("cli; hlt");
	}
}

/* Runs at CPL0 on the IDT's gates. */
void selftest_exception(struct exception_frame *frame)
{
	print("selftest: exception ");
	print_decimal(frame->vector, 1);
	print(" error ");
	print_hex(frame->error_code, 8);
	print(" at cpl");
	print_decimal(frame->cs & 3, 1);
	print(" rip ");
	print_hex(frame->rip, 16);
	print("\n");
	if (frame->vector == 3)
		return;
	outw(ACPI_PM1_CONTROL_PORT, (ACPI_S5_SLEEP_TYPE << 10) | ACPI_SLP_EN);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static int starts_with(const char *text, const char *prefix)
{
	while (*prefix)
		if (*text++ != *prefix++)
			return 0;
	return 1;
}

int word_is(const char *text, const char *word)
{
	while (*word)
		if (*text++ != *word++)
			return 0;
	return *text == ' ' || *text == '\0';
}

const char *next_word(const char *text)
{
	while (*text && *text != ' ')
		text++;
	while (*text == ' ')
		text++;
	return text;
}

/* The value of "mode=" on the command line, or "" if absent. */
static const char *find_mode(void)
{
	const char *word = cmdline;
	while (*word == ' ')
		word++;
	for (; *word; word = next_word(word))
		if (starts_with(word, "mode="))
			return word + 5;
	return "";
}

/* Parses the decimal number at *text, if one is there, and steps past it. */
int parse_decimal(const char **text, uint64_t *value)
{
	const char *digit = *text;
	if (*digit < '0' || *digit > '9')
		return 0;
	*value = 0;
	while (*digit >= '0' && *digit <= '9')
		*value = *value * 10 + (uint64_t)(*digit++ - '0');
	*text = digit;
	return 1;
}

static void busy_wait(uint64_t iterations)
{
	for (uint64_t i = 0; i < iterations; i++)
		__asm__ volatile("" : : : "memory");
}

static void run_spin(const char *mode)
{
	const char *argument = next_word(mode);
	uint64_t iterations = SPIN_DEFAULT_ITERATIONS;
	parse_decimal(&argument, &iterations);
	uint64_t start = rdtsc();
	busy_wait(iterations);
	uint64_t cycles = rdtsc() - start;
	print("selftest: spin done, ");
	print_decimal(iterations, 1);
	print(" iterations in ");
	print_decimal(cycles, 1);
	print(" tsc cycles\n");
}

static void run_count(const char *mode)
{
	const char *argument = next_word(mode);
	uint64_t count = 0, delay = COUNT_DEFAULT_DELAY;
	if (parse_decimal(&argument, &count)) {
		argument = next_word(argument);
		parse_decimal(&argument, &delay);
	}
	for (uint64_t number = 1; count == 0 || number <= count; number++) {
		print_decimal(number, 1);
		uart_put('\n');
		busy_wait(delay);
	}
}

/* mode=write's area: above the selftest's image, stacks and buffers. */
#define WRITE_AREA 0x1000000ull
#define WRITE_PAGE 4096ull

/* Every word of the page at offset in the area: its address and the
 * round, so each round's data differs and none is zero. */
static void write_page(uint64_t offset, uint64_t round)
{
	volatile uint64_t *page = (volatile uint64_t *)(WRITE_AREA + offset);

	for (uint64_t i = 0; i < WRITE_PAGE / sizeof(*page); i++)
		page[i] = (WRITE_AREA + offset + i * 8) ^ (round << 48) ^ 1;
}

/* A page only the virtio-rng writes: the loader leaves the section alone
 * and nothing clears it, so it reads zero until the device fills it. */
static struct {
	struct virtqueue_memory rings;
	uint8_t page[WRITE_PAGE] __attribute__((aligned(4096)));
} entropy __attribute__((section(".bss.buffers"), aligned(4096)));

static void print_entropy_sum(void)
{
	const volatile uint64_t *words = (const volatile uint64_t *)entropy.page;
	uint64_t sum = 0;

	for (uint64_t i = 0; i < WRITE_PAGE / sizeof(*words); i++)
		sum = sum * 31 + words[i];
	print("selftest: entropy ");
	print_hex(sum, 16);
	uart_put('\n');
}

/* Asks the virtio-rng for the page and waits for it: the device, not the
 * guest, writes it. */
static void fill_entropy(void)
{
	static struct virtio_function rng;
	static int started;
	uint32_t id, length;

	if (!started && virtio_function_start(&rng, VIRTIO_TYPE_RNG, 0,
					      &entropy.rings, 4))
		return;
	started = 1;
	rng.rings->desc[0] = (struct virtq_desc){
		.addr = (uintptr_t)entropy.page,
		.len = WRITE_PAGE,
		.flags = VIRTQ_DESC_F_WRITE,
	};
	virtqueue_make_available(&rng, 0);
	virtqueue_kick(&rng, 1);
	while (!virtqueue_take_used(&rng, &id, &length))
		;
	print("selftest: entropy filled\n");
}

static void run_write(const char *mode)
{
	const char *argument = next_word(mode);
	uint64_t fill_mib = 0, touch_kib = 0, delay = COUNT_DEFAULT_DELAY;

	if (parse_decimal(&argument, &fill_mib)) {
		argument = next_word(argument);
		if (parse_decimal(&argument, &touch_kib)) {
			argument = next_word(argument);
			parse_decimal(&argument, &delay);
		}
	}
	uint64_t size = fill_mib << 20, next = 0, round = 1;
	for (uint64_t offset = 0; offset < size; offset += WRITE_PAGE)
		write_page(offset, round);
	print("selftest: filled ");
	print_decimal(fill_mib, 1);
	print(" MiB\n");
	for (uint64_t number = 1;; number++) {
		char command = (inb(UART_LSR) & UART_LSR_DATA_READY) ?
				       (char)inb(COM1) : 0;
		if (command == 'r')
			fill_entropy();
		else if (command == 's')
			print_entropy_sum();
		else if (command && size) {
			round++;
			for (uint64_t done = 0; done < touch_kib << 10;
			     done += WRITE_PAGE) {
				write_page(next, round);
				next = (next + WRITE_PAGE) % size;
			}
			print("selftest: touched ");
			print_decimal(touch_kib, 1);
			print(" KiB\n");
		}
		print_decimal(number, 1);
		uart_put('\n');
		busy_wait(delay);
	}
}

static void run_echo(void)
{
	print("selftest: echo ready, q quits\n");
	for (;;) {
		char c = uart_get();
		if (c == 'q')
			break;
		uart_put(c);
	}
	print("\nselftest: echo done\n");
}

#define FRAMEBUFFER ((volatile uint32_t *)0xfd000000)
#define FRAMEBUFFER_WIDTH 1024
#define I8042_DATA_PORT 0x60
#define I8042_STATUS_OUTPUT_FULL 0x01
#define I8042_STATUS_AUX_DATA 0x20
#define SET1_Q_MAKE 0x10
#define I8042_AUX_ENABLE 0xa8
#define I8042_WRITE_AUX 0xd4
#define MOUSE_ENABLE_REPORTING 0xf4

static void run_display(void)
{
	for (int y = 100; y < 200; y++)
		for (int x = 100; x < 400; x++)
			FRAMEBUFFER[y * FRAMEBUFFER_WIDTH + x] = 0x00ffffff;
	/* The mouse's first byte is the acknowledgement of this. */
	outb(I8042_COMMAND_PORT, I8042_AUX_ENABLE);
	outb(I8042_COMMAND_PORT, I8042_WRITE_AUX);
	outb(I8042_DATA_PORT, MOUSE_ENABLE_REPORTING);
	print("selftest: drew, type into the window, q quits\n");
	for (;;) {
		uint8_t status = inb(I8042_COMMAND_PORT);
		if (!(status & I8042_STATUS_OUTPUT_FULL))
			continue;
		uint8_t byte = inb(I8042_DATA_PORT);
		if (status & I8042_STATUS_AUX_DATA) {
			print("selftest: mouse ");
			print_hex(byte, 2);
			print("\n");
			continue;
		}
		print("selftest: key ");
		print_hex(byte, 2);
		print("\n");
		if (byte == SET1_Q_MAKE)
			break;
	}
	print("selftest: display done\n");
}

static void run_reset(void)
{
	print("selftest: resetting through the i8042\n");
	outb(I8042_COMMAND_PORT, I8042_PULSE_RESET);
	print("selftest: reset did not happen\n");
}

static void run_triple_fault(void)
{
	print("selftest: triple fault: int3 with no IDT gate present at cpl0\n");
	user_syscall(SYSCALL_TRIPLE_FAULT);
	print("selftest: triple fault: int3 returned\n");
}

static void run_fault(void)
{
	print("selftest: fault: x87 load from unbacked memory at cpl0\n");
	user_syscall(SYSCALL_FAULT);
	print("selftest: fault: the load completed, no emulation failure\n");
}

/*
 * CPUID as KVM answers it, read at CPL0: a PVM host lets CPUID at CPL3 run
 * on the real CPU, which would show the host's bits, not the vCPU's.
 */
static uint32_t cpuid_leaf1[4], cpuid_leaf7[4];

static void read_cpuid(void)
{
	uint32_t leaf0[4];

	cpuid(0, 0, leaf0);
	cpuid(1, 0, cpuid_leaf1);
	if (leaf0[0] >= 7)
		cpuid(7, 0, cpuid_leaf7);
}

static void run_cpuid(void)
{
	const uint32_t *leaf1 = cpuid_leaf1, *leaf7 = cpuid_leaf7;
	print("selftest: cpuid 1 ecx=");
	print_hex(leaf1[2], 8);
	print(" edx=");
	print_hex(leaf1[3], 8);
	print(" 7.0 ebx=");
	print_hex(leaf7[1], 8);
	print("\n");
}

static int same_bytes(const uint8_t *a, const uint8_t *b, int size)
{
	while (size--)
		if (*a++ != *b++)
			return 0;
	return 1;
}

static uint8_t cmos_read(uint8_t index)
{
	outb(CMOS_INDEX_PORT, index);
	return inb(CMOS_DATA_PORT);
}

static uint8_t from_bcd(uint8_t value)
{
	return (uint8_t)((value >> 4) * 10 + (value & 0xf));
}

/* MC146818 registers: 0 s, 2 min, 4 h, 7 day, 8 month, 9 year, 0x32 century. */
static void run_rtc(void)
{
	static const uint8_t indexes[7] = {0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32};
	uint8_t now[7] = {0}, before[7] = {0};
	int tries = 0;
	/* Read until two passes agree, so an update between reads cannot tear. */
	do {
		for (int i = 0; i < 7; i++)
			before[i] = now[i];
		/* Update in progress lasts < 2 ms; no CMOS at all reads 0xff. */
		int polls = 0;
		while ((cmos_read(0x0a) & 0x80) && ++polls < RTC_MAX_POLLS)
			;
		if (polls == RTC_MAX_POLLS) {
			print("selftest: rtc not responding\n");
			return;
		}
		for (int i = 0; i < 7; i++)
			now[i] = cmos_read(indexes[i]);
	} while (++tries < 2 || (tries < 8 && !same_bytes(now, before, 7)));
	uint8_t status_b = cmos_read(0x0b);
	int pm = now[2] & 0x80;
	now[2] &= 0x7f;
	if (!(status_b & 0x04)) /* BCD */
		for (int i = 0; i < 7; i++)
			now[i] = from_bcd(now[i]);
	if (!(status_b & 0x02)) /* 12-hour clock */
		now[2] = (uint8_t)(now[2] % 12 + (pm ? 12 : 0));
	unsigned year = now[6] ? now[6] * 100u + now[5] : 2000u + now[5];
	print("selftest: rtc ");
	print_decimal(year, 4);
	uart_put('-');
	print_decimal(now[4], 2);
	uart_put('-');
	print_decimal(now[3], 2);
	uart_put(' ');
	print_decimal(now[2], 2);
	uart_put(':');
	print_decimal(now[1], 2);
	uart_put(':');
	print_decimal(now[0], 2);
	print("\n");
}

static __attribute__((noreturn)) void user_main(void)
{
	print("selftest: hello from cpl3\n");
	const char *mode = find_mode();
	if (word_is(mode, "hello") || word_is(mode, ""))
		;
	else if (word_is(mode, "spin"))
		run_spin(mode);
	else if (word_is(mode, "echo"))
		run_echo();
	else if (word_is(mode, "reset"))
		run_reset();
	else if (word_is(mode, "fault"))
		run_fault();
	else if (word_is(mode, "triple"))
		run_triple_fault();
	else if (word_is(mode, "cpuid"))
		run_cpuid();
	else if (word_is(mode, "rtc"))
		run_rtc();
	else if (word_is(mode, "count"))
		run_count(mode);
	else if (word_is(mode, "write"))
		run_write(mode);
	else if (word_is(mode, "display"))
		run_display();
	else if (word_is(mode, "flood"))
		run_flood(next_word(mode));
	else
		print("selftest: unknown mode\n");
	power_off();
}

static void set_tss_descriptor(void)
{
	uint64_t base = (uint64_t)&tss, limit = sizeof(tss) - 1;
	/* Intel SDM vol. 3 §8.2.3: type 9 (available 64-bit TSS), present. */
	gdt_tss[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		     ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt_tss[1] = base >> 32;
}

static void set_idt(void)
{
	for (int vector = 0; vector < 32; vector++) {
		uint64_t handler = (uint64_t)(exception_stubs + 16 * vector);
		idt[vector] = (struct idt_gate){
			.offset_low = (uint16_t)handler,
			.selector = KERNEL_CS,
			.type_attributes = 0x8e, /* present, DPL 0, interrupt gate */
			.offset_middle = (uint16_t)(handler >> 16),
			.offset_high = (uint32_t)(handler >> 32),
		};
	}
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} pointer = {sizeof(idt) - 1, (uint64_t)idt};
	__asm__ volatile("lidt %0" : : "m"(pointer));
}

/* CPL0, from entry.S, long mode with the identity map. */
void selftest_start(uint32_t start_info_address)
{
	const struct hvm_start_info *start_info =
		(const struct hvm_start_info *)(uintptr_t)start_info_address;
	if (start_info && start_info->magic == XEN_HVM_START_MAGIC) {
		if (start_info->cmdline_paddr && start_info->cmdline_paddr < IDENTITY_MAP_END)
			cmdline = (const char *)(uintptr_t)start_info->cmdline_paddr;
	} else {
		print("selftest: no hvm_start_info, using the default mode\n");
	}

	read_cpuid();

	tss.rsp[0] = (uint64_t)(kernel_interrupt_stack + sizeof(kernel_interrupt_stack));
	tss.iomap_base = __builtin_offsetof(struct tss, io_bitmap);
	tss.io_bitmap[IO_BITMAP_BYTES] = 0xff;
	set_tss_descriptor();
	__asm__ volatile("ltr %w0" : : "r"(TSS_SELECTOR));
	set_idt();

	wrmsr(MSR_STAR, ((uint64_t)STAR_SYSRET_BASE << 48) | ((uint64_t)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
	wrmsr(MSR_FMASK, RFLAGS_TF | RFLAGS_IF | RFLAGS_DF);

	/* sysretq (Intel SDM vol. 2B, SYSRET) loads %rip from %rcx and RFLAGS
	 * from %r11, with CS and SS from STAR[63:48]. */
	register uint64_t user_rflags __asm__("r11") =
		RFLAGS_RESERVED | RFLAGS_IOPL3;
	__asm__ volatile("movq %0, %%rsp\n\t"
			 "sysretq"
			 :
			 /* as if called: %rsp + 8 16-byte aligned at entry */
			 : "r"((uint64_t)user_stack_top - 8),
			   "c"((uint64_t)user_main), "r"(user_rflags)
			 : "memory");
	__builtin_unreachable();
}
