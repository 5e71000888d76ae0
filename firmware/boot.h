/*
 * Loading a Linux kernel into guest memory and describing the machine to it.
 *
 * Two steps, so that bad configuration is refused before any VM exists:
 * kernel_image_open() reads and validates the kernel file alone, and
 * boot_check() checks a whole request (command line length, initrd
 * placement, memory size) against it. boot_load() then writes the kernel,
 * initrd, command line, boot_params or PVH start info, e820 map, MP tables,
 * ACPI tables, GDT and identity page tables into guest memory and returns the
 * boot vCPU's entry state.
 *
 * Formats: a bzImage through the Linux 64-bit boot protocol (protocol 2.12
 * or later, entered in long mode at startup_64), and an ELF vmlinux (or any
 * ELF) with a Xen PVH entry note, entered in 32-bit protected mode.
 *
 * Errors: functions return 0 or -errno and write one line saying what is
 * wrong, naming the file, value or address, into err.
 */
#ifndef VESSEL_FIRMWARE_BOOT_H
#define VESSEL_FIRMWARE_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "../devices/guest_memory.h"
#include "machine.h"
#include "screen_info.h"

enum kernel_format {
	KERNEL_FORMAT_BZIMAGE,
	KERNEL_FORMAT_PVH_ELF,
};

struct kernel_image {
	enum kernel_format format;
	const char *path;
	uint8_t *data; /* the whole file */
	size_t size;
	size_t mapping_size; /* kernel_image_open's own buffer; 0 for parse */
	/* From the bzImage setup header (or vessel's defaults for PVH). */
	uint16_t boot_protocol_version;
	uint32_t cmdline_max; /* bytes, without the terminating NUL */
	uint64_t initrd_addr_max; /* highest byte address an initrd may use */
	uint64_t load_address;
	uint64_t entry_point; /* guest-physical */
	/* First byte above all the kernel occupies while it starts (bzImage:
	 * its init_size from where it decompresses; ELF: the end of the
	 * highest segment). The initrd goes above it. */
	uint64_t kernel_end;
	/* bzImage only: bytes of real-mode setup before the protected-mode
	 * kernel, and the end of the setup header in the file. */
	size_t setup_size;
	size_t setup_header_end;
};

struct boot_request {
	const struct kernel_image *kernel;
	const uint8_t *initrd; /* NULL without one */
	size_t initrd_size;
	const char *cmdline; /* never NULL; may be "" */
	unsigned int cpu_count;
	/* The machine the tables describe; its RAM below 4 GiB bounds where
	 * the kernel and initrd may go. Never NULL. */
	const struct firmware_machine *machine;
	/* A linear framebuffer to announce, or NULL without a display. Only
	 * a bzImage learns of it (boot_params.screen_info): PVH start info
	 * has no field for a screen. */
	const struct boot_framebuffer *framebuffer;
};

/* Register state of the boot vCPU at the kernel's entry. */
struct boot_entry {
	bool long_mode; /* false: 32-bit protected mode, paging off (PVH) */
	uint64_t rip;
	uint64_t rsi; /* bzImage: address of boot_params */
	uint64_t rbx; /* PVH: address of hvm_start_info */
	uint64_t rsp;
	uint64_t cr3;
};

/* Opens path, a kernel or an initrd, for reading: a descriptor, with
 * *info filled in, or -errno. Anything but a regular file is refused
 * ("<path>: not a regular file"), and the open itself does not wait: a
 * FIFO with no writer would hold vessel before any check. */
struct stat;
int boot_file_open(const char *path, struct stat *info, char *err,
		   size_t err_len);

int kernel_image_open(const char *path, struct kernel_image *image, char *err,
		      size_t err_len);
/* Parse an image already in memory; takes ownership of data (free()d by
 * kernel_image_close, or at once when parsing fails, leaving image zeroed).
 * A file starting with the ELF magic is taken as a PVH ELF, anything else
 * as a bzImage. The unit tests' entry point. */
int kernel_image_parse(const char *path, uint8_t *data, size_t size,
		       struct kernel_image *image, char *err, size_t err_len);
void kernel_image_close(struct kernel_image *image);

/* Validates request against a guest of memory_size bytes of RAM, of which
 * up to request->machine->low_ram_end lies below 4 GiB, before any memory
 * exists. */
int boot_check(const struct boot_request *request, uint64_t memory_size,
	       char *err, size_t err_len);

int boot_load(const struct boot_request *request,
	      const struct guest_memory *memory, struct boot_entry *entry,
	      char *err, size_t err_len);

/* The boot vCPU's registers for entry. regs and sregs come in as KVM
 * returned them (so hidden segment state is sane) and are updated. */
void boot_entry_registers(const struct boot_entry *entry,
			  struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
