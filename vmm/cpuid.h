/*
 * The CPUID a vCPU shows its guest: KVM's supported set, with each vCPU's
 * own APIC ID and topology, the hypervisor bit, and the features the user
 * masked with --cpu-features.
 *
 * Promise: a feature name is accepted only if vessel knows where it lives;
 * cpuid_apply_mask() clears exactly the masked bits and reports a '+' feature
 * that KVM cannot provide.
 */
#ifndef VESSEL_VMM_CPUID_H
#define VESSEL_VMM_CPUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#define CPUID_MAX_FEATURE_CHANGES 64

enum { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

/* One feature bit: where CPUID reports it. */
struct cpuid_feature {
	const char *name; /* as /proc/cpuinfo spells it */
	uint32_t function;
	uint32_t index;
	uint8_t reg; /* CPUID_EAX .. CPUID_EDX */
	uint8_t bit;
};

struct cpuid_feature_change {
	const struct cpuid_feature *feature;
	bool enable; /* '+name': require it; '-name': hide it */
};

struct cpuid_feature_mask {
	struct cpuid_feature_change changes[CPUID_MAX_FEATURE_CHANGES];
	unsigned int count;
};

/* "-xsave,-cx16,+avx": 0 or -EINVAL with the unknown name in err. */
int cpuid_parse_features(const char *text, struct cpuid_feature_mask *mask,
			 char *err, size_t err_len);

/* The names vessel knows, for --help. */
void cpuid_print_feature_names(void);

/* The supported set from /dev/kvm (KVM_GET_SUPPORTED_CPUID), with the
 * features KVM emulates but leaves out of that set; free() it. */
struct kvm_cpuid2 *cpuid_supported(int kvm_fd, char *err, size_t err_len);

/* Adds to a supported set what KVM emulates without listing it there: the
 * TSC-deadline LAPIC timer (CPUID.1:ECX[24]) when tsc_deadline, i.e. when
 * /dev/kvm has KVM_CAP_TSC_DEADLINE_TIMER. */
void cpuid_add_unlisted_features(struct kvm_cpuid2 *cpuid, bool tsc_deadline);

/* Applies the mask to entries in place: 0, or -ENOTSUP naming a '+'
 * feature that the entries do not offer. */
int cpuid_apply_mask(struct kvm_cpuid2 *cpuid,
		     const struct cpuid_feature_mask *mask, char *err,
		     size_t err_len);

/* Per-vCPU fix-ups of a copy of the (masked) set: APIC ID in leaf 1 and the
 * x2APIC topology leaves, the logical processor count, the hypervisor bit. */
void cpuid_set_vcpu_identity(struct kvm_cpuid2 *cpuid, unsigned int apic_id,
			     unsigned int cpu_count);

#endif
