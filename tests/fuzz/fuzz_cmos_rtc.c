/*
 * The CMOS RTC (devices/cmos_rtc.c): a guest's index and data accesses in
 * any order (any register, BCD or binary, 12 or 24 hour, setting the
 * clock to any value), through a real port-I/O bus, with the host's clock
 * at any time the input gives, from 1970 to the year 2^40.
 *
 * Input: the host clock's seconds (8 bytes, 40 bits used) and nanoseconds
 * (4 bytes), then port accesses (fuzz_port_access).
 */
#include <stdlib.h>

#include "devices/cmos_rtc.h"
#include "vmm/machine_layout.h"
#include "fuzz_port_io.h"

static struct timespec host_clock;

static void now(struct timespec *when)
{
	*when = host_clock;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input input = { data, size };
	uint64_t clock = fuzz_take_u64(&input);
	struct bus *bus = bus_create("pio");
	struct cmos_rtc *rtc = cmos_rtc_create(now);

	if (!bus || !rtc || cmos_rtc_attach(rtc, bus, LAYOUT_CMOS_RTC_PORT))
		abort();
	host_clock.tv_sec = (time_t)(clock & ((UINT64_C(1) << 40) - 1));
	host_clock.tv_nsec = (long)(fuzz_take_u32(&input) % 1000000000);
	while (!fuzz_input_empty(&input))
		fuzz_port_access(bus, LAYOUT_CMOS_RTC_PORT - 1, 4, &input);
	cmos_rtc_destroy(rtc);
	bus_destroy(bus);
	return 0;
}
