/*
 * The host's /dev/kvm: opened once per vessel process, checked for the API
 * version and every capability vessel relies on.
 *
 * Promise: kvm_host_open() fails with one line naming the missing piece
 * (no /dev/kvm, no permission, an old API, a missing capability), so a VM is
 * never half-built on a host that cannot run it.
 */
#ifndef VESSEL_VMM_KVM_H
#define VESSEL_VMM_KVM_H

#include <stddef.h>

#include <linux/kvm.h>

struct kvm_host {
	int fd;
	unsigned int max_vcpus;
	size_t vcpu_mmap_size;
	struct kvm_cpuid2 *supported_cpuid;
};

int kvm_host_open(struct kvm_host *host, char *err, size_t err_len);
void kvm_host_close(struct kvm_host *host);

#endif
