#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cpuid.h"

static const struct {
	int capability;
	const char *name;
} required_capabilities[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
};

int kvm_host_open(struct kvm_host *host, char *err, size_t err_len)
{
	*host = (struct kvm_host){ .fd = -1 };
	host->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (host->fd < 0) {
		int saved = errno;
		snprintf(err, err_len, "cannot open /dev/kvm: %s", strerror(saved));
		return -saved;
	}
	int version = ioctl(host->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, err_len, "/dev/kvm speaks API version %d, vessel needs %d",
			 version, KVM_API_VERSION);
		kvm_host_close(host);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required_capabilities) /
					sizeof(required_capabilities[0]); i++) {
		if (ioctl(host->fd, KVM_CHECK_EXTENSION,
			  required_capabilities[i].capability) <= 0) {
			snprintf(err, err_len, "/dev/kvm lacks %s",
				 required_capabilities[i].name);
			kvm_host_close(host);
			return -ENOTSUP;
		}
	}
	int max_vcpus = ioctl(host->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = ioctl(host->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	host->max_vcpus = max_vcpus > 0 ? (unsigned int)max_vcpus : 1;
	int mmap_size = ioctl(host->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size <= 0) {
		snprintf(err, err_len, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		kvm_host_close(host);
		return -ENOTSUP;
	}
	host->vcpu_mmap_size = (size_t)mmap_size;
	host->supported_cpuid = cpuid_supported(host->fd, err, err_len);
	if (!host->supported_cpuid) {
		kvm_host_close(host);
		return -ENOTSUP;
	}
	return 0;
}

void kvm_host_close(struct kvm_host *host)
{
	if (host->fd >= 0)
		close(host->fd);
	free(host->supported_cpuid);
	*host = (struct kvm_host){ .fd = -1 };
}

int kvm_cpu_flags_virtualize(FILE *cpuinfo)
{
	char *line = NULL;
	size_t capacity = 0;
	int found = 0;

	while (!found && getline(&line, &capacity, cpuinfo) >= 0) {
		/* "flags\t\t: fpu vme ... vmx ...", one such line per CPU. */
		if (strncmp(line, "flags", 5) != 0 || !strchr(line, ':'))
			continue;
		char *save = NULL;
		for (char *flag = strtok_r(strchr(line, ':') + 1, " \t\n", &save);
		     flag; flag = strtok_r(NULL, " \t\n", &save)) {
			if (!strcmp(flag, "vmx") || !strcmp(flag, "svm")) {
				found = 1;
				break;
			}
		}
	}
	free(line);
	return found;
}

bool kvm_host_emulates_cpl0(void)
{
	FILE *cpuinfo = fopen("/proc/cpuinfo", "re");

	if (!cpuinfo)
		return false;
	int virtualize = kvm_cpu_flags_virtualize(cpuinfo);
	fclose(cpuinfo);
	return !virtualize;
}
