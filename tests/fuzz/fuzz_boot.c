#include "fuzz_boot.h"

#include <stdlib.h>

#include "firmware/boot.h"
#include "vmm/machine_layout.h"
#include "tests/devices/fakes.h"

static struct guest_memory memory;

void fuzz_boot_kernel(uint8_t *file, size_t size)
{
	static const uint8_t initrd[64] = { 0x1f, 0x8b };
	struct kernel_image image;
	struct boot_entry entry;
	struct boot_request request = {
		.kernel = &image,
		.initrd = initrd,
		.initrd_size = sizeof(initrd),
		.cmdline = "console=ttyS0 reboot=k panic=1",
		.cpu_count = 2,
		.machine = machine_layout_firmware(),
	};
	char err[256];

	/* Pages of it are touched only as loads reach them. */
	if (!memory.region_count)
		fake_ram_create(&memory, FUZZ_BOOT_RAM_SIZE);
	if (kernel_image_parse("fuzz", file, size, &image, err, sizeof(err)))
		return; /* freed */
	if (!boot_check(&request, FUZZ_BOOT_RAM_SIZE, err, sizeof(err)))
		boot_load(&request, &memory, &entry, err, sizeof(err));
	kernel_image_close(&image);
}
