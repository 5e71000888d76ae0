/* CPUID as a vCPU sees it: masking and per-vCPU identity. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../vmm/cpuid.h"

static struct kvm_cpuid2 *make_cpuid(void)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 4 * sizeof(cpuid->entries[0]));

	cpuid->nent = 4;
	cpuid->entries[0] = (struct kvm_cpuid_entry2){ .function = 1,
		.ebx = 0x00000800, .ecx = (1u << 26) | (1u << 13) | (1u << 0),
		.edx = 0xffffffff };
	cpuid->entries[1] = (struct kvm_cpuid_entry2){ .function = 7, .index = 0,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 1u << 5 };
	cpuid->entries[2] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	cpuid->entries[3] = (struct kvm_cpuid_entry2){ .function = 0xd, .index = 1,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0xf };
	return cpuid;
}

Test(cpuid, mask_clears_only_named_bits)
{
	struct cpuid_feature_mask mask;
	char err[128];
	struct kvm_cpuid2 *cpuid = make_cpuid();

	cr_assert_eq(cpuid_parse_features("-xsave,-cx16,-avx2,-xsaveopt", &mask,
					  err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cpuid_apply_mask(cpuid, &mask, err, sizeof(err)), 0);
	cr_assert_eq(cpuid->entries[0].ecx, 1u << 0);
	cr_assert_eq(cpuid->entries[0].edx, 0xffffffff);
	cr_assert_eq(cpuid->entries[1].ebx, 0);
	cr_assert_eq(cpuid->entries[3].eax, 0xe);
	free(cpuid);
}

Test(cpuid, plus_requires_the_host_to_offer_it)
{
	struct cpuid_feature_mask mask;
	char err[128];
	struct kvm_cpuid2 *cpuid = make_cpuid();

	cr_assert_eq(cpuid_parse_features("+cx16", &mask, err, sizeof(err)), 0);
	cr_assert_eq(cpuid_apply_mask(cpuid, &mask, err, sizeof(err)), 0);
	cr_assert_eq(cpuid_parse_features("+avx512f", &mask, err, sizeof(err)), 0);
	cr_assert_eq(cpuid_apply_mask(cpuid, &mask, err, sizeof(err)), -ENOTSUP);
	cr_assert(strstr(err, "avx512f"), "%s", err);
	free(cpuid);
}

Test(cpuid, tsc_deadline_timer_is_added_only_when_kvm_emulates_it)
{
	struct kvm_cpuid2 *cpuid = make_cpuid();
	uint32_t ecx = cpuid->entries[0].ecx;

	cpuid_add_unlisted_features(cpuid, false);
	cr_assert_eq(cpuid->entries[0].ecx, ecx);
	cpuid_add_unlisted_features(cpuid, true);
	cr_assert_eq(cpuid->entries[0].ecx, ecx | (1u << 24));
	cr_assert_eq(cpuid->entries[0].edx, 0xffffffff, "only ECX[24] changes");
	free(cpuid);
}

Test(cpuid, vcpu_identity)
{
	struct kvm_cpuid2 *cpuid = make_cpuid();

	cpuid_set_vcpu_identity(cpuid, 3, 4);
	cr_assert_eq(cpuid->entries[0].ebx >> 24, 3, "APIC ID in leaf 1");
	cr_assert_eq((cpuid->entries[0].ebx >> 16) & 0xff, 4);
	cr_assert_eq(cpuid->entries[0].ebx & 0xffff, 0x0800, "CLFLUSH size kept");
	cr_assert(cpuid->entries[0].ecx & (1u << 31), "hypervisor bit");
	cr_assert_eq(cpuid->entries[2].edx, 3, "x2APIC ID");
	cr_assert_eq(cpuid->entries[2].ebx, 4, "logical processors at core level");
	cr_assert_eq(cpuid->entries[2].eax, 2, "APIC ID shift for 4 cores");
	free(cpuid);
}
