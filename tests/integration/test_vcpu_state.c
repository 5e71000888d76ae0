/*
 * vCPU and VM state on this machine's own /dev/kvm: what is saved from one
 * VM and restored into a fresh one saves again the same, part for part
 * (the TSC, which runs on, excepted); the TSC comes back moved on by the
 * time between save and restore; a damaged part is refused with a message
 * naming it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <libfdt.h>
#include <linux/kvm.h>

#include "../../vmm/kvm.h"
#include "../../vmm/vcpu_state.h"

#define MSR_IA32_TSC 0x10

struct test_vm {
	int fd, vcpu_fd;
};

static struct kvm_host host;

static void open_host(void)
{
	char err[256];

	cr_assert_eq(kvm_host_open(&host, err, sizeof(err)), 0, "%s", err);
}

static void create_vm(struct test_vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	vm->fd = ioctl(host.fd, KVM_CREATE_VM, 0);
	cr_assert_geq(vm->fd, 0, "KVM_CREATE_VM: %s", strerror(errno));
	cr_assert_eq(ioctl(vm->fd, KVM_SET_TSS_ADDR, 0xfffbd000ul), 0);
	cr_assert_eq(ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0), 0);
	cr_assert_eq(ioctl(vm->fd, KVM_CREATE_PIT2, &pit), 0);
	vm->vcpu_fd = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	cr_assert_geq(vm->vcpu_fd, 0);
	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_SET_CPUID2, host.supported_cpuid), 0,
		     "KVM_SET_CPUID2: %s", strerror(errno));
}

static void destroy_vm(struct test_vm *vm)
{
	close(vm->vcpu_fd);
	close(vm->fd);
}

/* Saves vm's vCPU 0 and its irqchip into a fresh blob. */
static void *save(const struct test_vm *vm, size_t *size)
{
	struct state_writer writer;
	const void *data;
	char err[256];

	cr_assert_eq(state_writer_init(&writer), 0);
	cr_assert_eq(vcpu_state_save(host.fd, vm->fd, vm->vcpu_fd, &writer,
				     "/vcpu0", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(state_writer_begin(&writer, "/vm", VM_KVM_STATE_VERSION), 0);
	cr_assert_eq(vm_kvm_state_save(vm->fd, &writer, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(state_writer_finish(&writer, &data, size), 0);
	void *blob = malloc(*size);
	memcpy(blob, data, *size);
	state_writer_release(&writer);
	return blob;
}

static int restore(const struct test_vm *vm, const void *blob, size_t size,
		   char *err, size_t err_len)
{
	struct state_reader reader;

	cr_assert_eq(state_reader_open(&reader, blob, size), 0, "%s", reader.err);
	int result = vcpu_state_restore(vm->fd, vm->vcpu_fd, &reader, "/vcpu0",
					err, err_len);
	if (result)
		return result;
	result = state_reader_begin(&reader, "/vm", VM_KVM_STATE_VERSION);
	cr_assert_eq(result, 0, "%s", reader.err);
	return vm_kvm_state_restore(vm->fd, &reader, err, err_len);
}

/* A vCPU that is not in its reset state, so a part left out shows. */
static void make_distinct(const struct test_vm *vm)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs debugregs = { .db = { 0x1000, 0x2000 } };

	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs), 0);
	regs.rax = 0x1122334455667788;
	regs.rip = 0xfff0 + 0x10;
	regs.r15 = 15;
	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs), 0);
	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs), 0);
	sregs.cr2 = 0xdead000;
	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs), 0);
	cr_assert_eq(ioctl(vm->vcpu_fd, KVM_SET_DEBUGREGS, &debugregs), 0);
}

/* Hyper-V's partition reference counter, which KVM lists among the MSRs
 * to save: read-only, a host write is ignored, and its value is the VM's
 * clock in 100 ns units, which a restored VM gets only when it runs. */
#define HV_X64_MSR_TIME_REF_COUNT 0x40000020

/* The MSRs of a and b, all equal but the running counters: the TSC, and
 * the reference counter where KVM lists it. */
static void assert_same_msrs(const void *a, const void *b, int size)
{
	const uint8_t *bytes_a = a, *bytes_b = b;

	/* A property's data is aligned to 4 bytes only: copy each entry. */
	for (size_t i = 0; i < (size_t)size / sizeof(struct kvm_msr_entry); i++) {
		struct kvm_msr_entry first, second;

		memcpy(&first, bytes_a + i * sizeof(first), sizeof(first));
		memcpy(&second, bytes_b + i * sizeof(second), sizeof(second));
		cr_assert_eq(first.index, second.index);
		if (first.index == MSR_IA32_TSC ||
		    first.index == HV_X64_MSR_TIME_REF_COUNT)
			continue;
		cr_expect_eq(first.data, second.data,
			     "MSR 0x%x: 0x%llx, then 0x%llx", first.index,
			     (unsigned long long)first.data,
			     (unsigned long long)second.data);
	}
}

/* The PITs of a and b, equal but for when each channel's count was
 * loaded: host time, which KVM_SET_PIT2 sets to its own now. */
static void assert_same_pit(const void *a, const void *b)
{
	struct kvm_pit_state2 first, second;

	memcpy(&first, a, sizeof(first));
	memcpy(&second, b, sizeof(second));
	for (int i = 0; i < 3; i++)
		first.channels[i].count_load_time = second.channels[i].count_load_time = 0;
	cr_expect_arr_eq(&first, &second, sizeof(first), "/vm/pit differs after a restore");
}

static void assert_same_node(const void *a, const void *b, const char *path)
{
	int node_a = fdt_path_offset(a, path), node_b = fdt_path_offset(b, path);
	int property;

	cr_assert_geq(node_a, 0);
	cr_assert_geq(node_b, 0);
	fdt_for_each_property_offset(property, a, node_a) {
		const char *name;
		int len_a, len_b;
		const void *value_a = fdt_getprop_by_offset(a, property, &name, &len_a);
		const void *value_b = fdt_getprop(b, node_b, name, &len_b);

		cr_assert_not_null(value_b, "%s/%s is not saved again", path, name);
		cr_assert_eq(len_a, len_b, "%s/%s: %d bytes, then %d", path, name,
			     len_a, len_b);
		if (!strcmp(name, "msrs-realtime-ns"))
			continue; /* when each save read them */
		if (!strcmp(name, "msrs"))
			assert_same_msrs(value_a, value_b, len_a);
		else if (!strcmp(name, "pit"))
			assert_same_pit(value_a, value_b);
		else
			cr_expect_arr_eq(value_a, value_b, (size_t)len_a,
					 "%s/%s differs after a restore", path, name);
	}
}

Test(vcpu_state, round_trips_into_a_fresh_vm, .init = open_host)
{
	struct test_vm first, second;
	size_t size, size_again;
	char err[256];

	create_vm(&first);
	make_distinct(&first);
	void *blob = save(&first, &size);
	create_vm(&second);
	cr_assert_eq(restore(&second, blob, size, err, sizeof(err)), 0, "%s", err);
	void *again = save(&second, &size_again);
	assert_same_node(blob, again, "/vcpu0");
	assert_same_node(blob, again, "/vm");
	free(blob);
	free(again);
	destroy_vm(&first);
	destroy_vm(&second);
}

/* Rewrites one property of blob's /vcpu0 with size bytes of fill. */
static void *damage(const void *blob, size_t size, const char *name,
		    size_t new_size, size_t *damaged_size)
{
	size_t capacity = size + new_size + 256;
	void *copy = malloc(capacity);
	void *fill = calloc(1, new_size + 1);

	cr_assert_eq(fdt_open_into(blob, copy, (int)capacity), 0);
	cr_assert_eq(fdt_setprop(copy, fdt_path_offset(copy, "/vcpu0"), name, fill,
				 (int)new_size), 0);
	cr_assert_eq(fdt_pack(copy), 0);
	*damaged_size = fdt_totalsize(copy);
	free(fill);
	return copy;
}

Test(vcpu_state, refuses_parts_of_the_wrong_size, .init = open_host)
{
	static const struct {
		const char *name;
		size_t size;
		const char *message;
	} cases[] = {
		{ "regs", 12, "vcpu0/regs: 12 bytes, expected 144" },
		{ "cpuid", 41, "vcpu0/cpuid: 41 bytes, not a whole number of "
			       "40-byte entries" },
		{ "msrs", 20, "vcpu0/msrs: 20 bytes, not a whole number of "
			      "16-byte entries" },
		{ "tsc-khz", 4, "vcpu0/tsc-khz: 4 bytes, expected 8" },
		{ "events", 1, "vcpu0/events: 1 bytes, expected 64" },
		{ "xsave", 1 << 20, "vcpu0/xsave: the saved XSAVE area does not "
				    "fit this host's" },
	};
	struct test_vm vm;
	size_t size;
	char err[256];

	create_vm(&vm);
	void *blob = save(&vm, &size);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t damaged_size;
		void *damaged = damage(blob, size, cases[i].name, cases[i].size,
				       &damaged_size);
		struct test_vm fresh;

		create_vm(&fresh);
		cr_expect_neq(restore(&fresh, damaged, damaged_size, err,
				      sizeof(err)), 0, "%s was accepted",
			      cases[i].name);
		cr_expect(!strncmp(err, cases[i].message, strlen(cases[i].message)),
			  "%s: the message reads \"%s\"", cases[i].name, err);
		destroy_vm(&fresh);
		free(damaged);
	}
	free(blob);
	destroy_vm(&vm);
}

/* A host without XSAVE (an AMD-V host emulated with QEMU's qemu64 CPU)
 * saves no XCRs, and its KVM refuses KVM_SET_XCRS whatever it holds: such
 * a vCPU restores without them. */
Test(vcpu_state, restores_a_vcpu_saved_without_xcrs, .init = open_host)
{
	struct test_vm vm, fresh;
	size_t size, damaged_size;
	char err[256];

	create_vm(&vm);
	void *blob = save(&vm, &size);
	void *no_xcrs = damage(blob, size, "xcrs", sizeof(struct kvm_xcrs),
			       &damaged_size);
	create_vm(&fresh);
	cr_assert_eq(restore(&fresh, no_xcrs, damaged_size, err, sizeof(err)), 0,
		     "%s", err);
	free(no_xcrs);
	free(blob);
	destroy_vm(&fresh);
	destroy_vm(&vm);
}

Test(vcpu_state, the_guest_clock_catches_up_with_the_time_passed)
{
	/* Paused at guest time 5 s, restored 60 s of real time later. */
	cr_assert_eq(vcpu_state_clock_after(5000000000ull, 1000000000000ll,
					    1060000000000ll),
		     65000000000ull);
	/* The host's clock went back: the guest's does not. */
	cr_assert_eq(vcpu_state_clock_after(5000000000ull, 1000000000000ll,
					    900000000000ll),
		     5000000000ull);
	/* Nothing that passed overflows. */
	cr_assert_eq(vcpu_state_clock_after(UINT64_MAX - 10, 0, INT64_MAX),
		     UINT64_MAX);
}

Test(vcpu_state, the_tsc_catches_up_with_the_time_passed)
{
	/* Read at 1000 s at 2 GHz, restored 60 s later. */
	cr_assert_eq(vcpu_state_tsc_after(1000, 2000000, 1000000000000ll,
					  1060000000000ll),
		     1000 + 120000000000ull);
	cr_assert_eq(vcpu_state_tsc_after(1000, 2000000, 1000000000000ll,
					  900000000000ll),
		     1000);
	/* A year at 5 GHz does not overflow the product; the sum saturates. */
	cr_assert_eq(vcpu_state_tsc_after(0, 5000000, 0, 31536000000000000ll),
		     157680000000000000ull);
	cr_assert_eq(vcpu_state_tsc_after(UINT64_MAX - 10, 5000000, 0,
					  INT64_MAX),
		     UINT64_MAX);
	/* A saved time from a damaged snapshot, as far back as it goes. */
	cr_assert_eq(vcpu_state_tsc_after(0, 1, INT64_MIN, INT64_MAX),
		     UINT64_MAX / 1000000);
}

static uint64_t read_tsc_msr(int vcpu_fd)
{
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) +
					      sizeof(struct kvm_msr_entry));

	cr_assert_not_null(msrs);
	msrs->nmsrs = 1;
	msrs->entries[0].index = MSR_IA32_TSC;
	cr_assert_eq(ioctl(vcpu_fd, KVM_GET_MSRS, msrs), 1);
	uint64_t tsc = msrs->entries[0].data;
	free(msrs);
	return tsc;
}

/* A guest whose clocksource is the TSC keeps the right time across a
 * restore only if its TSC is moved on by the time the snapshot waited. */
Test(vcpu_state, the_tsc_is_moved_on_by_the_time_between_save_and_restore,
     .init = open_host)
{
	struct test_vm vm, fresh;
	size_t size;
	char err[256];
	const useconds_t wait_us = 400000;

	create_vm(&vm);
	uint64_t before = read_tsc_msr(vm.vcpu_fd);
	void *blob = save(&vm, &size);
	int khz = ioctl(vm.vcpu_fd, KVM_GET_TSC_KHZ, 0);
	cr_assert_gt(khz, 0);
	usleep(wait_us);
	create_vm(&fresh);
	cr_assert_eq(restore(&fresh, blob, size, err, sizeof(err)), 0, "%s", err);
	uint64_t after = read_tsc_msr(fresh.vcpu_fd);
	uint64_t waited = (uint64_t)khz * (wait_us / 1000);

	cr_assert_geq(after, before + waited,
		      "the TSC moved %llu cycles over a wait of %llu",
		      (unsigned long long)(after - before),
		      (unsigned long long)waited);
	cr_assert_lt(after, before + 10 * waited, "the TSC moved %llu cycles",
		     (unsigned long long)(after - before));
	free(blob);
	destroy_vm(&fresh);
	destroy_vm(&vm);
}
