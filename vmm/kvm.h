/*
 * The host's /dev/kvm: opened once per vessel process, checked for the API
 * version and every capability vessel relies on.
 *
 * Promise: kvm_host_open() fails with one line naming the missing piece
 * (no /dev/kvm, no permission, an old API, a missing capability), so a VM is
 * never half-built on a host that cannot run it.
 * kvm_cpu_flags_virtualize() tells whether the host's CPU offers VMX or SVM
 * to KVM: without them (a nested /dev/kvm such as kvm_pvm) guest code at
 * CPL3 runs natively but CPL0 code is emulated instruction by instruction,
 * so an unmodified kernel takes minutes to boot or stops at an instruction
 * the emulator lacks.
 */
#ifndef VESSEL_VMM_KVM_H
#define VESSEL_VMM_KVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <linux/kvm.h>

struct kvm_host {
	int fd;
	unsigned int max_vcpus;
	size_t vcpu_mmap_size;
	struct kvm_cpuid2 *supported_cpuid;
};

int kvm_host_open(struct kvm_host *host, char *err, size_t err_len);
void kvm_host_close(struct kvm_host *host);

/* Reads cpuinfo (the text of /proc/cpuinfo): 1 when a "flags" line lists
 * vmx or svm, 0 when none does. */
int kvm_cpu_flags_virtualize(FILE *cpuinfo);

/* True when /proc/cpuinfo lists neither vmx nor svm: this /dev/kvm runs a
 * guest's CPL0 code emulated. False when it lists one or cannot be read. */
bool kvm_host_emulates_cpl0(void);

#endif
