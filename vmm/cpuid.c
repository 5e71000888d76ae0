#include "cpuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define FEATURE(n, fn, idx, r, b) \
	{ .name = n, .function = fn, .index = idx, .reg = r, .bit = b }

/* Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E. */
static const struct cpuid_feature known_features[] = {
	FEATURE("fpu", 1, 0, CPUID_EDX, 0),
	FEATURE("vme", 1, 0, CPUID_EDX, 1),
	FEATURE("de", 1, 0, CPUID_EDX, 2),
	FEATURE("pse", 1, 0, CPUID_EDX, 3),
	FEATURE("tsc", 1, 0, CPUID_EDX, 4),
	FEATURE("msr", 1, 0, CPUID_EDX, 5),
	FEATURE("pae", 1, 0, CPUID_EDX, 6),
	FEATURE("mce", 1, 0, CPUID_EDX, 7),
	FEATURE("cx8", 1, 0, CPUID_EDX, 8),
	FEATURE("apic", 1, 0, CPUID_EDX, 9),
	FEATURE("sep", 1, 0, CPUID_EDX, 11),
	FEATURE("mtrr", 1, 0, CPUID_EDX, 12),
	FEATURE("pge", 1, 0, CPUID_EDX, 13),
	FEATURE("mca", 1, 0, CPUID_EDX, 14),
	FEATURE("cmov", 1, 0, CPUID_EDX, 15),
	FEATURE("pat", 1, 0, CPUID_EDX, 16),
	FEATURE("pse36", 1, 0, CPUID_EDX, 17),
	FEATURE("clflush", 1, 0, CPUID_EDX, 19),
	FEATURE("mmx", 1, 0, CPUID_EDX, 23),
	FEATURE("fxsr", 1, 0, CPUID_EDX, 24),
	FEATURE("sse", 1, 0, CPUID_EDX, 25),
	FEATURE("sse2", 1, 0, CPUID_EDX, 26),
	FEATURE("ss", 1, 0, CPUID_EDX, 27),
	FEATURE("ht", 1, 0, CPUID_EDX, 28),
	FEATURE("pni", 1, 0, CPUID_ECX, 0),
	FEATURE("pclmulqdq", 1, 0, CPUID_ECX, 1),
	FEATURE("ssse3", 1, 0, CPUID_ECX, 9),
	FEATURE("fma", 1, 0, CPUID_ECX, 12),
	FEATURE("cx16", 1, 0, CPUID_ECX, 13),
	FEATURE("pcid", 1, 0, CPUID_ECX, 17),
	FEATURE("sse4_1", 1, 0, CPUID_ECX, 19),
	FEATURE("sse4_2", 1, 0, CPUID_ECX, 20),
	FEATURE("x2apic", 1, 0, CPUID_ECX, 21),
	FEATURE("movbe", 1, 0, CPUID_ECX, 22),
	FEATURE("popcnt", 1, 0, CPUID_ECX, 23),
	FEATURE("tsc_deadline_timer", 1, 0, CPUID_ECX, 24),
	FEATURE("aes", 1, 0, CPUID_ECX, 25),
	FEATURE("xsave", 1, 0, CPUID_ECX, 26),
	FEATURE("avx", 1, 0, CPUID_ECX, 28),
	FEATURE("f16c", 1, 0, CPUID_ECX, 29),
	FEATURE("rdrand", 1, 0, CPUID_ECX, 30),
	FEATURE("fsgsbase", 7, 0, CPUID_EBX, 0),
	FEATURE("bmi1", 7, 0, CPUID_EBX, 3),
	FEATURE("hle", 7, 0, CPUID_EBX, 4),
	FEATURE("avx2", 7, 0, CPUID_EBX, 5),
	FEATURE("smep", 7, 0, CPUID_EBX, 7),
	FEATURE("bmi2", 7, 0, CPUID_EBX, 8),
	FEATURE("erms", 7, 0, CPUID_EBX, 9),
	FEATURE("invpcid", 7, 0, CPUID_EBX, 10),
	FEATURE("rtm", 7, 0, CPUID_EBX, 11),
	FEATURE("avx512f", 7, 0, CPUID_EBX, 16),
	FEATURE("avx512dq", 7, 0, CPUID_EBX, 17),
	FEATURE("rdseed", 7, 0, CPUID_EBX, 18),
	FEATURE("adx", 7, 0, CPUID_EBX, 19),
	FEATURE("smap", 7, 0, CPUID_EBX, 20),
	FEATURE("avx512ifma", 7, 0, CPUID_EBX, 21),
	FEATURE("clflushopt", 7, 0, CPUID_EBX, 23),
	FEATURE("clwb", 7, 0, CPUID_EBX, 24),
	FEATURE("avx512cd", 7, 0, CPUID_EBX, 28),
	FEATURE("sha_ni", 7, 0, CPUID_EBX, 29),
	FEATURE("avx512bw", 7, 0, CPUID_EBX, 30),
	FEATURE("avx512vl", 7, 0, CPUID_EBX, 31),
	FEATURE("avx512vbmi", 7, 0, CPUID_ECX, 1),
	FEATURE("umip", 7, 0, CPUID_ECX, 2),
	FEATURE("pku", 7, 0, CPUID_ECX, 3),
	FEATURE("gfni", 7, 0, CPUID_ECX, 8),
	FEATURE("vaes", 7, 0, CPUID_ECX, 9),
	FEATURE("vpclmulqdq", 7, 0, CPUID_ECX, 10),
	FEATURE("la57", 7, 0, CPUID_ECX, 16),
	FEATURE("rdpid", 7, 0, CPUID_ECX, 22),
	FEATURE("xsaveopt", 0xd, 1, CPUID_EAX, 0),
	FEATURE("xsavec", 0xd, 1, CPUID_EAX, 1),
	FEATURE("xgetbv1", 0xd, 1, CPUID_EAX, 2),
	FEATURE("xsaves", 0xd, 1, CPUID_EAX, 3),
	FEATURE("lahf_lm", 0x80000001, 0, CPUID_ECX, 0),
	FEATURE("abm", 0x80000001, 0, CPUID_ECX, 5),
	FEATURE("sse4a", 0x80000001, 0, CPUID_ECX, 6),
	FEATURE("3dnowprefetch", 0x80000001, 0, CPUID_ECX, 8),
	FEATURE("syscall", 0x80000001, 0, CPUID_EDX, 11),
	FEATURE("nx", 0x80000001, 0, CPUID_EDX, 20),
	FEATURE("pdpe1gb", 0x80000001, 0, CPUID_EDX, 26),
	FEATURE("rdtscp", 0x80000001, 0, CPUID_EDX, 27),
	FEATURE("kvmclock", 0x40000001, 0, CPUID_EAX, 3),
	FEATURE("kvm_pv_eoi", 0x40000001, 0, CPUID_EAX, 6),
	FEATURE("kvm_steal_time", 0x40000001, 0, CPUID_EAX, 5),
};

#define KNOWN_FEATURE_COUNT (sizeof(known_features) / sizeof(known_features[0]))

static const struct cpuid_feature *feature_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < KNOWN_FEATURE_COUNT; i++) {
		if (strlen(known_features[i].name) == len &&
		    memcmp(known_features[i].name, name, len) == 0)
			return &known_features[i];
	}
	return NULL;
}

int cpuid_parse_features(const char *text, struct cpuid_feature_mask *mask,
			 char *err, size_t err_len)
{
	const char *item = text;

	mask->count = 0;
	while (*item) {
		size_t len = strcspn(item, ",");
		const char *name = item + 1;

		if (len < 2 || (item[0] != '+' && item[0] != '-')) {
			snprintf(err, err_len,
				 "--cpu-features: '%.*s' is not +NAME or -NAME",
				 (int)len, item);
			return -EINVAL;
		}
		const struct cpuid_feature *feature =
			feature_by_name(name, len - 1);
		if (!feature) {
			snprintf(err, err_len,
				 "--cpu-features: unknown feature '%.*s' (see vessel run --help)",
				 (int)(len - 1), name);
			return -EINVAL;
		}
		if (mask->count == CPUID_MAX_FEATURE_CHANGES) {
			snprintf(err, err_len,
				 "--cpu-features: more than %d changes",
				 CPUID_MAX_FEATURE_CHANGES);
			return -EINVAL;
		}
		mask->changes[mask->count].feature = feature;
		mask->changes[mask->count].enable = item[0] == '+';
		mask->count++;
		item += len;
		if (*item == ',')
			item++;
	}
	return 0;
}

void cpuid_print_feature_names(void)
{
	size_t column = 0;

	for (size_t i = 0; i < KNOWN_FEATURE_COUNT; i++) {
		size_t len = strlen(known_features[i].name) + 1;

		if (column + len > 72) {
			printf("\n");
			column = 0;
		}
		printf("%s%s", column ? " " : "    ", known_features[i].name);
		column += len + (column ? 0 : 4);
	}
	printf("\n");
}

struct kvm_cpuid2 *cpuid_supported(int kvm_fd, char *err, size_t err_len)
{
	/* KVM says E2BIG until the buffer is large enough. */
	for (unsigned int entries = 64; entries <= 4096; entries *= 2) {
		struct kvm_cpuid2 *cpuid = calloc(
			1, sizeof(*cpuid) + entries * sizeof(cpuid->entries[0]));

		if (!cpuid) {
			snprintf(err, err_len, "out of memory for CPUID");
			return NULL;
		}
		cpuid->nent = entries;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
			cpuid_add_unlisted_features(
				cpuid, ioctl(kvm_fd, KVM_CHECK_EXTENSION,
					     KVM_CAP_TSC_DEADLINE_TIMER) > 0);
			return cpuid;
		}
		int saved = errno;
		free(cpuid);
		if (saved != E2BIG) {
			snprintf(err, err_len, "KVM_GET_SUPPORTED_CPUID: %s",
				 strerror(saved));
			return NULL;
		}
	}
	snprintf(err, err_len, "KVM_GET_SUPPORTED_CPUID: too many entries");
	return NULL;
}

static uint32_t *entry_register(struct kvm_cpuid_entry2 *entry, uint8_t reg)
{
	switch (reg) {
	case CPUID_EAX:
		return &entry->eax;
	case CPUID_EBX:
		return &entry->ebx;
	case CPUID_ECX:
		return &entry->ecx;
	default:
		return &entry->edx;
	}
}

static struct kvm_cpuid_entry2 *find_entry(struct kvm_cpuid2 *cpuid,
					   uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *entry = &cpuid->entries[i];

		if (entry->function != function)
			continue;
		if ((entry->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
		    entry->index != index)
			continue;
		return entry;
	}
	return NULL;
}

/*
 * Kernels before 6.14 leave the TSC-deadline timer out of
 * KVM_GET_SUPPORTED_CPUID although the in-kernel LAPIC emulates it (api.rst,
 * "Known KVM API problems"); QEMU sets the bit itself. Without it a Linux
 * guest runs its LAPIC timer one-shot through TMICT, at a bus-clock rate it
 * has to calibrate first, instead of writing absolute TSC deadlines (see
 * docs/decisions.md for how that showed up). The bit's place comes from
 * known_features, like every other feature's.
 */
void cpuid_add_unlisted_features(struct kvm_cpuid2 *cpuid, bool tsc_deadline)
{
	static const char name[] = "tsc_deadline_timer";
	const struct cpuid_feature *feature =
		feature_by_name(name, sizeof(name) - 1);
	struct kvm_cpuid_entry2 *entry =
		find_entry(cpuid, feature->function, feature->index);

	if (entry && tsc_deadline)
		*entry_register(entry, feature->reg) |= UINT32_C(1)
							 << feature->bit;
}

int cpuid_apply_mask(struct kvm_cpuid2 *cpuid,
		     const struct cpuid_feature_mask *mask, char *err,
		     size_t err_len)
{
	for (unsigned int i = 0; i < mask->count; i++) {
		const struct cpuid_feature *feature = mask->changes[i].feature;
		struct kvm_cpuid_entry2 *entry =
			find_entry(cpuid, feature->function, feature->index);
		uint32_t bit = UINT32_C(1) << feature->bit;

		if (mask->changes[i].enable) {
			if (!entry || !(*entry_register(entry, feature->reg) & bit)) {
				snprintf(err, err_len,
					 "--cpu-features: +%s is not available from this host's KVM",
					 feature->name);
				return -ENOTSUP;
			}
			continue;
		}
		if (entry)
			*entry_register(entry, feature->reg) &= ~bit;
	}
	return 0;
}

/* Number of bits needed to give each of count IDs its own value. */
static unsigned int id_width(unsigned int count)
{
	unsigned int width = 0;

	while ((1u << width) < count)
		width++;
	return width;
}

void cpuid_set_vcpu_identity(struct kvm_cpuid2 *cpuid, unsigned int apic_id,
			     unsigned int cpu_count)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *entry = &cpuid->entries[i];

		switch (entry->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, [23:16] logical
			 * processors per package; ECX[31] hypervisor. */
			entry->ebx = (entry->ebx & 0xffff) | (apic_id << 24) |
				     ((cpu_count & 0xff) << 16);
			if (cpu_count > 1)
				entry->edx |= UINT32_C(1) << 28;
			entry->ecx |= UINT32_C(1) << 31;
			break;
		case 4:
			/* EAX[31:26]: cores per package minus one. */
			entry->eax = (entry->eax & 0x03ffffff) |
				     ((cpu_count - 1) & 0x3f) << 26;
			break;
		case 0xb:
		case 0x1f:
			/* One thread per core, every vCPU a core of one
			 * package (Intel SDM vol. 2A, CPUID leaf 0BH). */
			entry->edx = apic_id;
			if (entry->index == 0) {
				entry->eax = 0;
				entry->ebx = 1;
				entry->ecx = (1u << 8) | 0;
			} else if (entry->index == 1) {
				entry->eax = id_width(cpu_count);
				entry->ebx = cpu_count;
				entry->ecx = (2u << 8) | 1;
			} else {
				entry->eax = 0;
				entry->ebx = 0;
				entry->ecx = entry->index;
			}
			break;
		case 0x80000008:
			/* ECX[7:0]: cores in the package minus one (AMD). */
			entry->ecx = (entry->ecx & ~0xffu) | ((cpu_count - 1) & 0xff);
			break;
		default:
			break;
		}
	}
}
