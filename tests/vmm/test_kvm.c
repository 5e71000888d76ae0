/*
 * Reading the host's CPU flags: vmx or svm on any "flags" line means KVM
 * has hardware virtualization; their absence (a nested kvm_pvm host) means
 * a kernel's CPL0 code runs emulated.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../vmm/kvm.h"

static int flags_virtualize(const char *text)
{
	FILE *file = fmemopen((void *)text, strlen(text), "r");

	cr_assert_not_null(file);
	int result = kvm_cpu_flags_virtualize(file);
	fclose(file);
	return result;
}

Test(kvm_cpu_flags, vmx_or_svm_is_found)
{
	cr_assert_eq(flags_virtualize("processor\t: 0\n"
				      "flags\t\t: fpu vme de pse vmx sse2\n"), 1);
	cr_assert_eq(flags_virtualize("flags\t\t: fpu svm\n\n"), 1);
}

Test(kvm_cpu_flags, a_pvm_host_has_neither)
{
	/* Names that merely contain the letters do not count. */
	cr_assert_eq(flags_virtualize("processor\t: 0\n"
				      "flags\t\t: fpu vme svme vmxx hypervisor\n"
				      "vmx flags\t: ept vpid\n"
				      "model name\t: svm vmx\n"), 0);
	cr_assert_eq(flags_virtualize(""), 0);
}
