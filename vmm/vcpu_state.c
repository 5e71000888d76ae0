#include "vcpu_state.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <linux/kvm.h>

#include "../devices/array.h"

/* More than any CPU has leaves, and than KVM reports MSRs. */
#define MAX_CPUID_ENTRIES 256
#define MAX_MSRS 1024
/* An XSAVE area with every feature a CPU of today has is under 12 KiB. */
#define MAX_XSAVE_SIZE (64u << 10)
/* The time-stamp counter as an MSR (Intel SDM vol. 4, table 2-2). */
#define MSR_IA32_TSC 0x10

/* A part of fixed size, read and written with one ioctl each. */
struct fixed_part {
	const char *name;
	unsigned long get, set;
	size_t size;
};

static const struct fixed_part regs_part = {
	"regs", KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs) };
static const struct fixed_part sregs_part = {
	"sregs", KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs) };
static const struct fixed_part xcrs_part = {
	"xcrs", KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs) };
static const struct fixed_part debugregs_part = {
	"debugregs", KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
	sizeof(struct kvm_debugregs) };
static const struct fixed_part lapic_part = {
	"lapic", KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state) };
static const struct fixed_part mp_state_part = {
	"mp-state", KVM_GET_MP_STATE, KVM_SET_MP_STATE,
	sizeof(struct kvm_mp_state) };

static const struct fixed_part *const fixed_parts[] = {
	&regs_part, &sregs_part, &xcrs_part, &debugregs_part, &lapic_part,
	&mp_state_part,
};

/* Room for any fixed part. */
union fixed_buffer {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp_state;
};

static int failed(char *err, size_t err_len, const char *path,
		  const char *what, int error)
{
	snprintf(err, err_len, "%s: %s: %s", path + 1, what, strerror(error));
	return -error;
}

static int put(struct state_writer *writer, const char *name,
	       const void *data, size_t size, const char *path, char *err,
	       size_t err_len)
{
	int result = writer->base.put_bytes(&writer->base, name, data, size);

	return result ? failed(err, err_len, path, name, -result) : 0;
}

static int save_fixed(int vcpu_fd, const struct fixed_part *part,
		      struct state_writer *writer, const char *path, char *err,
		      size_t err_len)
{
	union fixed_buffer buffer;

	if (ioctl(vcpu_fd, part->get, &buffer))
		return failed(err, err_len, path, part->name, errno);
	return put(writer, part->name, &buffer, part->size, path, err, err_len);
}

/* The XSAVE area's size on this VM: KVM_CAP_XSAVE2 gives it, features
 * enabled through arch_prctl included; without it, the fixed 4 KiB
 * struct kvm_xsave. */
static size_t xsave_size(int vm_fd, unsigned long *get)
{
	int size = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	if (size > (int)sizeof(struct kvm_xsave) && size <= (int)MAX_XSAVE_SIZE) {
		*get = KVM_GET_XSAVE2;
		return (size_t)size;
	}
	*get = KVM_GET_XSAVE;
	return sizeof(struct kvm_xsave);
}

static int save_xsave(int vm_fd, int vcpu_fd, struct state_writer *writer,
		      const char *path, char *err, size_t err_len)
{
	unsigned long get;
	size_t size = xsave_size(vm_fd, &get);
	void *area = calloc(1, size);

	if (!area)
		return failed(err, err_len, path, "xsave", ENOMEM);
	int result = ioctl(vcpu_fd, get, area) ?
		failed(err, err_len, path, "xsave", errno) :
		put(writer, "xsave", area, size, path, err, err_len);
	free(area);
	return result;
}

static int save_cpuid(int vcpu_fd, struct state_writer *writer,
		      const char *path, char *err, size_t err_len)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + MAX_CPUID_ENTRIES *
					      sizeof(cpuid->entries[0]));

	if (!cpuid)
		return failed(err, err_len, path, "cpuid", ENOMEM);
	cpuid->nent = MAX_CPUID_ENTRIES;
	int result = ioctl(vcpu_fd, KVM_GET_CPUID2, cpuid) ?
		failed(err, err_len, path, "cpuid", errno) :
		put(writer, "cpuid", cpuid->entries,
		    cpuid->nent * sizeof(cpuid->entries[0]), path, err, err_len);
	free(cpuid);
	return result;
}

/* The MSRs KVM lists, in its order, without those this vCPU does not
 * have: KVM_GET_MSRS stops at the first it cannot read and says how many
 * it read, so that one is dropped and the rest asked again. */
static int save_msrs(int kvm_fd, int vcpu_fd, struct state_writer *writer,
		     const char *path, char *err, size_t err_len)
{
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + MAX_MSRS * sizeof(uint32_t));
	struct kvm_msrs *kept = calloc(1, sizeof(*kept) + MAX_MSRS *
					      sizeof(kept->entries[0]));
	struct kvm_msrs *request = calloc(1, sizeof(*request) + MAX_MSRS *
						 sizeof(request->entries[0]));
	int result = 0;

	if (!list || !kept || !request) {
		result = failed(err, err_len, path, "msrs", ENOMEM);
		goto out;
	}
	list->nmsrs = MAX_MSRS;
	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list)) {
		result = failed(err, err_len, path, "KVM_GET_MSR_INDEX_LIST", errno);
		goto out;
	}
	for (unsigned int next = 0; next < list->nmsrs;) {
		request->nmsrs = list->nmsrs - next;
		for (unsigned int i = 0; i < request->nmsrs; i++)
			request->entries[i] = (struct kvm_msr_entry){
				.index = list->indices[next + i] };
		int read = ioctl(vcpu_fd, KVM_GET_MSRS, request);
		if (read < 0) {
			result = failed(err, err_len, path, "KVM_GET_MSRS", errno);
			goto out;
		}
		memcpy(&kept->entries[kept->nmsrs], request->entries,
		       (size_t)read * sizeof(request->entries[0]));
		kept->nmsrs += (unsigned int)read;
		next += (unsigned int)read + 1;
	}
	result = put(writer, "msrs", kept->entries,
		     kept->nmsrs * sizeof(kept->entries[0]), path, err, err_len);
	/* When the TSC among them was read: restore moves it on from there. */
	if (!result) {
		result = writer->base.put_u64(&writer->base, "msrs-realtime-ns",
					      (uint64_t)vcpu_state_realtime_ns());
		if (result)
			result = failed(err, err_len, path, "msrs-realtime-ns",
					-result);
	}
out:
	free(list);
	free(kept);
	free(request);
	return result;
}

int vcpu_state_save(int kvm_fd, int vm_fd, int vcpu_fd,
		    struct state_writer *writer, const char *path, char *err,
		    size_t err_len)
{
	int result = state_writer_begin(writer, path, VCPU_STATE_VERSION);

	if (result)
		return failed(err, err_len, path, "writing the node", -result);
	for (size_t i = 0; i < ARRAY_SIZE(fixed_parts); i++) {
		result = save_fixed(vcpu_fd, fixed_parts[i], writer, path, err,
				    err_len);
		if (result)
			return result;
	}
	struct kvm_vcpu_events events;
	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events))
		return failed(err, err_len, path, "events", errno);
	result = put(writer, "events", &events, sizeof(events), path, err, err_len);
	if (result)
		return result;
	int tsc_khz = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	if (tsc_khz <= 0)
		return failed(err, err_len, path, "KVM_GET_TSC_KHZ",
			      tsc_khz < 0 ? errno : EINVAL);
	result = writer->base.put_u64(&writer->base, "tsc-khz", (uint64_t)tsc_khz);
	if (result)
		return failed(err, err_len, path, "tsc-khz", -result);
	result = save_xsave(vm_fd, vcpu_fd, writer, path, err, err_len);
	if (!result)
		result = save_cpuid(vcpu_fd, writer, path, err, err_len);
	if (!result)
		result = save_msrs(kvm_fd, vcpu_fd, writer, path, err, err_len);
	return result;
}

/* A refusal of the reader: its own line already names the property. */
static int refused(struct state_reader *reader, int result, char *err,
		   size_t err_len)
{
	snprintf(err, err_len, "%s", reader->err);
	return result;
}

static int restore_fixed(int vcpu_fd, const struct fixed_part *part,
			 struct state_reader *reader, const char *path,
			 char *err, size_t err_len)
{
	const void *data;
	size_t size;
	int result = state_reader_get_blob(reader, part->name, part->size,
					   part->size, &data, &size);
	union fixed_buffer buffer;

	if (result)
		return refused(reader, result, err, err_len);
	memcpy(&buffer, data, size);
	/* A host without XSAVE reads no XCRs and refuses KVM_SET_XCRS
	 * (EINVAL) whatever it holds: nothing saved, nothing to write. */
	if (part == &xcrs_part && buffer.xcrs.nr_xcrs == 0)
		return 0;
	if (ioctl(vcpu_fd, part->set, &buffer))
		return failed(err, err_len, path, part->name, errno);
	return 0;
}

static int restore_cpuid(int vcpu_fd, struct state_reader *reader,
			 const char *path, char *err, size_t err_len)
{
	const size_t entry = sizeof(struct kvm_cpuid_entry2);
	const void *data;
	size_t size;
	int result = state_reader_get_blob(reader, "cpuid", entry,
					   MAX_CPUID_ENTRIES * entry, &data, &size);

	if (result)
		return refused(reader, result, err, err_len);
	if (size % entry) {
		snprintf(err, err_len, "%s/cpuid: %zu bytes, not a whole number "
			 "of %zu-byte entries", path + 1, size, entry);
		return -EINVAL;
	}
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + size);
	if (!cpuid)
		return failed(err, err_len, path, "cpuid", ENOMEM);
	cpuid->nent = (uint32_t)(size / entry);
	memcpy(cpuid->entries, data, size);
	result = ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid) ?
		failed(err, err_len, path, "cpuid", errno) : 0;
	free(cpuid);
	return result;
}

static int restore_xsave(int vm_fd, int vcpu_fd, struct state_reader *reader,
			 const char *path, char *err, size_t err_len)
{
	unsigned long get;
	size_t host_size = xsave_size(vm_fd, &get);
	const void *data;
	size_t size;
	int result = state_reader_get_blob(reader, "xsave",
					   sizeof(struct kvm_xsave), host_size,
					   &data, &size);

	if (result == -EINVAL) {
		snprintf(err, err_len, "%s/xsave: the saved XSAVE area does not "
			 "fit this host's %zu bytes (%s)", path + 1, host_size,
			 reader->err);
		return result;
	}
	if (result)
		return refused(reader, result, err, err_len);
	/* KVM_SET_XSAVE reads the host's size; a smaller saved area has
	 * no state for the features beyond it (XSTATE_BV says so). */
	void *area = calloc(1, host_size);
	if (!area)
		return failed(err, err_len, path, "xsave", ENOMEM);
	memcpy(area, data, size);
	result = ioctl(vcpu_fd, KVM_SET_XSAVE, area) ?
		failed(err, err_len, path, "xsave", errno) : 0;
	free(area);
	return result;
}

static int restore_tsc_khz(int vcpu_fd, struct state_reader *reader,
			   const char *path, char *err, size_t err_len)
{
	uint64_t khz;
	int result = reader->base.get_u64(&reader->base, "tsc-khz", &khz);

	if (result)
		return refused(reader, result, err, err_len);
	if (khz == 0 || khz > UINT32_MAX) {
		snprintf(err, err_len, "%s/tsc-khz: %llu is no TSC frequency",
			 path + 1, (unsigned long long)khz);
		return -EINVAL;
	}
	int current = ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0);
	if (current > 0 && (uint64_t)current == khz)
		return 0;
	if (ioctl(vcpu_fd, KVM_SET_TSC_KHZ, (unsigned long)khz)) {
		int saved = errno;
		snprintf(err, err_len, "%s: the guest's TSC runs at %llu kHz and "
			 "this host cannot give it (its own: %d kHz): %s",
			 path + 1, (unsigned long long)khz, current,
			 strerror(saved));
		return -saved;
	}
	return 0;
}

uint64_t vcpu_state_tsc_after(uint64_t tsc, uint64_t tsc_khz,
			      int64_t read_realtime_ns, int64_t now_realtime_ns)
{
	if (now_realtime_ns <= read_realtime_ns)
		return tsc;
	/* In unsigned arithmetic: a saved time far in the past must not
	 * overflow the difference. */
	uint64_t elapsed_ns = (uint64_t)now_realtime_ns - (uint64_t)read_realtime_ns;
	unsigned __int128 passed = (unsigned __int128)elapsed_ns * tsc_khz /
				   1000000;
	return passed > UINT64_MAX - tsc ? UINT64_MAX : tsc + (uint64_t)passed;
}

/* The saved TSC (MSR_IA32_TSC), moved on by the real time since it was
 * read, as the kvmclock is (vcpu_state_clock_after): a guest whose
 * clocksource is the TSC (Linux prefers it to kvm-clock when the TSC is
 * invariant) would otherwise come back behind by the time on disk. */
static int move_tsc_on(struct kvm_msrs *msrs, struct state_reader *reader,
		       char *err, size_t err_len)
{
	uint64_t khz, read_at;
	int result = reader->base.get_u64(&reader->base, "tsc-khz", &khz);

	if (!result)
		result = reader->base.get_u64(&reader->base, "msrs-realtime-ns",
					      &read_at);
	if (result)
		return refused(reader, result, err, err_len);
	int64_t now = vcpu_state_realtime_ns();
	for (uint32_t i = 0; i < msrs->nmsrs; i++)
		if (msrs->entries[i].index == MSR_IA32_TSC)
			msrs->entries[i].data = vcpu_state_tsc_after(
				msrs->entries[i].data, khz,
				(int64_t)read_at, now);
	return 0;
}

static int restore_msrs(int vcpu_fd, struct state_reader *reader,
			const char *path, char *err, size_t err_len)
{
	const size_t entry = sizeof(struct kvm_msr_entry);
	const void *data;
	size_t size;
	int result = state_reader_get_blob(reader, "msrs", 0, MAX_MSRS * entry,
					   &data, &size);

	if (result)
		return refused(reader, result, err, err_len);
	if (size % entry) {
		snprintf(err, err_len, "%s/msrs: %zu bytes, not a whole number "
			 "of %zu-byte entries", path + 1, size, entry);
		return -EINVAL;
	}
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + size);
	if (!msrs)
		return failed(err, err_len, path, "msrs", ENOMEM);
	msrs->nmsrs = (uint32_t)(size / entry);
	memcpy(msrs->entries, data, size);
	result = move_tsc_on(msrs, reader, err, err_len);
	if (result) {
		free(msrs);
		return result;
	}
	int set = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
	if (set < 0)
		result = failed(err, err_len, path, "KVM_SET_MSRS", errno);
	else if ((uint32_t)set != msrs->nmsrs) {
		/* KVM stops at the first MSR it refuses. */
		snprintf(err, err_len, "%s: this host refuses MSR 0x%x "
			 "(value 0x%llx)", path + 1, msrs->entries[set].index,
			 (unsigned long long)msrs->entries[set].data);
		result = -EINVAL;
	}
	free(msrs);
	return result;
}

static int restore_events(int vcpu_fd, struct state_reader *reader,
			  const char *path, char *err, size_t err_len)
{
	struct kvm_vcpu_events events;
	int result = reader->base.get_bytes(&reader->base, "events", &events,
					    sizeof(events));

	if (result)
		return refused(reader, result, err, err_len);
	/* KVM_GET_VCPU_EVENTS leaves these two out of flags, yet both are
	 * state: ask for them to be set (KVM API, KVM_SET_VCPU_EVENTS). */
	events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING |
			KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &events))
		return failed(err, err_len, path, "events", errno);
	return 0;
}

int vcpu_state_restore(int vm_fd, int vcpu_fd, struct state_reader *reader,
		       const char *path, char *err, size_t err_len)
{
	int result = state_reader_begin(reader, path, VCPU_STATE_VERSION);

	if (result)
		return refused(reader, result, err, err_len);
	result = restore_cpuid(vcpu_fd, reader, path, err, err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &sregs_part, reader, path, err,
				       err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &regs_part, reader, path, err,
				       err_len);
	if (!result)
		result = restore_xsave(vm_fd, vcpu_fd, reader, path, err, err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &xcrs_part, reader, path, err,
				       err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &debugregs_part, reader, path,
				       err, err_len);
	if (!result)
		result = restore_tsc_khz(vcpu_fd, reader, path, err, err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &lapic_part, reader, path, err,
				       err_len);
	if (!result)
		result = restore_msrs(vcpu_fd, reader, path, err, err_len);
	if (!result)
		result = restore_fixed(vcpu_fd, &mp_state_part, reader, path,
				       err, err_len);
	if (!result)
		result = restore_events(vcpu_fd, reader, path, err, err_len);
	return result;
}

/* A property of a whole number of size-byte entries, at most max of them. */
static int check_entries(struct state_reader *reader, const char *path,
			 const char *name, size_t size, size_t max, char *err,
			 size_t err_len)
{
	const void *data;
	size_t found;
	int result = state_reader_get_blob(reader, name, 0, max * size, &data,
					   &found);

	if (result)
		return refused(reader, result, err, err_len);
	if (found % size) {
		snprintf(err, err_len, "%s/%s: %zu bytes, not a whole number of "
			 "%zu-byte entries", path + 1, name, found, size);
		return -EINVAL;
	}
	return 0;
}

int vcpu_state_check(struct state_reader *reader, const char *path, char *err,
		     size_t err_len)
{
	const void *data;
	size_t size;
	int result = state_reader_begin(reader, path, VCPU_STATE_VERSION);

	for (size_t i = 0; !result && i < ARRAY_SIZE(fixed_parts);
	     i++)
		result = state_reader_get_blob(reader, fixed_parts[i]->name,
					       fixed_parts[i]->size,
					       fixed_parts[i]->size, &data, &size);
	if (!result)
		result = state_reader_get_blob(reader, "events",
					       sizeof(struct kvm_vcpu_events),
					       sizeof(struct kvm_vcpu_events),
					       &data, &size);
	if (!result)
		result = state_reader_get_blob(reader, "tsc-khz", 8, 8, &data, &size);
	if (!result)
		result = state_reader_get_blob(reader, "msrs-realtime-ns", 8, 8,
					       &data, &size);
	if (!result)
		result = state_reader_get_blob(reader, "xsave",
					       sizeof(struct kvm_xsave),
					       MAX_XSAVE_SIZE, &data, &size);
	if (result)
		return refused(reader, result, err, err_len);
	result = check_entries(reader, path, "cpuid",
			       sizeof(struct kvm_cpuid_entry2), MAX_CPUID_ENTRIES,
			       err, err_len);
	return result ? result : check_entries(reader, path, "msrs",
					       sizeof(struct kvm_msr_entry),
					       MAX_MSRS, err, err_len);
}

uint64_t vcpu_state_clock_after(uint64_t paused_clock_ns,
				int64_t paused_realtime_ns,
				int64_t now_realtime_ns)
{
	if (now_realtime_ns <= paused_realtime_ns)
		return paused_clock_ns;
	uint64_t passed = (uint64_t)now_realtime_ns - (uint64_t)paused_realtime_ns;
	return passed > UINT64_MAX - paused_clock_ns ? UINT64_MAX :
						       paused_clock_ns + passed;
}

int64_t vcpu_state_realtime_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* The in-kernel irqchip's three chips, by KVM's ids. */
static const struct {
	const char *name;
	uint32_t id;
} chips[] = {
	{ "pic-master", KVM_IRQCHIP_PIC_MASTER },
	{ "pic-slave", KVM_IRQCHIP_PIC_SLAVE },
	{ "ioapic", KVM_IRQCHIP_IOAPIC },
};

int vm_kvm_state_save(int vm_fd, struct state_writer *writer, char *err,
		      size_t err_len)
{
	const char *path = writer->path;

	for (size_t i = 0; i < ARRAY_SIZE(chips); i++) {
		struct kvm_irqchip chip = { .chip_id = chips[i].id };
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip))
			return failed(err, err_len, path, chips[i].name, errno);
		int result = put(writer, chips[i].name, &chip.chip,
				 sizeof(chip.chip), path, err, err_len);
		if (result)
			return result;
	}
	struct kvm_pit_state2 pit;
	if (ioctl(vm_fd, KVM_GET_PIT2, &pit))
		return failed(err, err_len, path, "pit", errno);
	return put(writer, "pit", &pit, sizeof(pit), path, err, err_len);
}

int vm_kvm_state_check(struct state_reader *reader, char *err, size_t err_len)
{
	const void *data;
	size_t size;
	int result = 0;

	for (size_t i = 0; !result && i < ARRAY_SIZE(chips); i++)
		result = state_reader_get_blob(reader, chips[i].name,
					       sizeof(((struct kvm_irqchip *)0)->chip),
					       sizeof(((struct kvm_irqchip *)0)->chip),
					       &data, &size);
	if (!result)
		result = state_reader_get_blob(reader, "pit",
					       sizeof(struct kvm_pit_state2),
					       sizeof(struct kvm_pit_state2),
					       &data, &size);
	return result ? refused(reader, result, err, err_len) : 0;
}

int vm_kvm_state_restore(int vm_fd, struct state_reader *reader, char *err,
			 size_t err_len)
{
	const char *path = reader->path;
	int result;

	for (size_t i = 0; i < ARRAY_SIZE(chips); i++) {
		struct kvm_irqchip chip = { .chip_id = chips[i].id };
		result = reader->base.get_bytes(&reader->base, chips[i].name,
						&chip.chip, sizeof(chip.chip));
		if (result)
			return refused(reader, result, err, err_len);
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chip))
			return failed(err, err_len, path, chips[i].name, errno);
	}
	struct kvm_pit_state2 pit;
	result = reader->base.get_bytes(&reader->base, "pit", &pit, sizeof(pit));
	if (result)
		return refused(reader, result, err, err_len);
	if (ioctl(vm_fd, KVM_SET_PIT2, &pit))
		return failed(err, err_len, path, "pit", errno);
	return 0;
}
