/* The reading of the emulated host's KVM trace that decides whether a
 * triple fault is its known fault (inner_kvm_trace.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "inner_kvm_trace.h"

/* Lines as Linux 6.12's tracefs prints them inside the emulated host. */
#define HLT_EXIT                                                                \
	" qemu-system-x86-236     [000] d..1.   127.845829: kvm_exit: vcpu 1 "  \
	"reason hlt rip 0xffffffff81a592ea info1 0x0000000000000000 info2 "    \
	"0x0000000000000000 intr_info 0x00000b0e error_code 0x00000000\n"
#define SHUTDOWN_DELIVERING_TIMER                                               \
	" qemu-system-x86-236     [000] d..1.   127.847849: kvm_exit: vcpu 1 "  \
	"reason shutdown rip 0xffffffff81a592eb info1 0x0000000000000000 "     \
	"info2 0x0000000000000000 intr_info 0x800000ec error_code "            \
	"0x00000000\n"
#define SHUTDOWN_DELIVERING_DOUBLE_FAULT                                        \
	"          vessel-412     [001] d..1.   201.000001: kvm_exit: vcpu 3 "  \
	"reason shutdown rip 0x401000 info1 0x0000000000000000 info2 "         \
	"0x0000000000000000 intr_info 0x80000b08 error_code 0x00000000\n"

Test(inner_kvm_trace, finds_the_last_shutdown_and_counts_them)
{
	struct shutdown_exit exit;

	cr_assert_eq(shutdown_exit_parse_last("# tracer: nop\n" HLT_EXIT
					      SHUTDOWN_DELIVERING_TIMER HLT_EXIT
					      SHUTDOWN_DELIVERING_DOUBLE_FAULT,
					      &exit),
		     2);
	cr_assert_eq(exit.vcpu, 3);
	cr_assert_eq(exit.rip, 0x401000ull);
	cr_assert_eq(exit.intr_info, 0x80000b08u);
}

/* kvm_entry lines of vCPUs 1 and 3: vCPU 1 last entered where it shut
 * down, vCPU 3 ran from elsewhere. */
#define ENTRIES                                                                 \
	" qemu-system-x86-236     [000] d..1.   127.847600: kvm_entry: vcpu 1, " \
	"rip 0xffffffff81000000\n"                                              \
	"          vessel-412     [001] d..1.   127.847640: kvm_entry: vcpu 3, " \
	"rip 0x400ff0\n"                                                        \
	" qemu-system-x86-236     [000] d..1.   127.847647: kvm_entry: vcpu 1, " \
	"rip 0xffffffff81a592eb\n"

Test(inner_kvm_trace, an_event_in_delivery_at_the_entry_rip_is_the_known_fault)
{
	struct shutdown_exit exit;

	cr_assert_eq(shutdown_exit_parse_last(SHUTDOWN_DELIVERING_TIMER, &exit), 1);
	cr_assert_eq(exit.vcpu, 1);
	cr_assert_eq(exit.rip, 0xffffffff81a592ebull);
	cr_assert_not(exit.at_entry_rip);
	cr_assert_not(shutdown_exit_is_known_fault(&exit));
	shutdown_exit_match_entry(ENTRIES, &exit);
	cr_assert(exit.at_entry_rip);
	cr_assert(shutdown_exit_is_known_fault(&exit));
	cr_assert_str_eq(shutdown_exit_event_kind(&exit), "interrupt");
}

Test(inner_kvm_trace, a_vcpu_that_ran_since_its_entry_is_not)
{
	struct shutdown_exit exit;

	cr_assert_eq(shutdown_exit_parse_last(SHUTDOWN_DELIVERING_DOUBLE_FAULT,
					      &exit),
		     1);
	shutdown_exit_match_entry(ENTRIES, &exit);
	cr_assert_not(exit.at_entry_rip);
	cr_assert_not(shutdown_exit_is_known_fault(&exit));
	cr_assert_str_eq(shutdown_exit_event_kind(&exit), "exception");
	/* No entry of the vCPU at all. */
	exit.vcpu = 7;
	shutdown_exit_match_entry(ENTRIES, &exit);
	cr_assert_not(exit.at_entry_rip);
}

/* What vessel's reset of the machine records next: a new thread for vCPU
 * 1 entering at the kernel's entry point, and, later, the old thread. */
#define ENTRIES_AFTER_A_RESET                                                   \
	"          vcpu1-301     [000] d..1.   127.950000: kvm_entry: vcpu 1, " \
	"rip 0x1000000\n"                                                       \
	" qemu-system-x86-236     [000] d..1.   128.000000: kvm_entry: vcpu 1, " \
	"rip 0xfff0\n"

Test(inner_kvm_trace, only_the_threads_entries_before_the_shutdown_count)
{
	struct shutdown_exit exit;

	cr_assert_eq(shutdown_exit_parse_last(SHUTDOWN_DELIVERING_TIMER, &exit), 1);
	cr_assert_eq(exit.thread, 236);
	cr_assert_float_eq(exit.seconds, 127.847849, 1e-9);
	shutdown_exit_match_entry(ENTRIES ENTRIES_AFTER_A_RESET, &exit);
	cr_assert(exit.at_entry_rip);
	cr_assert(shutdown_exit_is_known_fault(&exit));
	/* Another thread's entry of vCPU 1 alone is not this vCPU's. */
	shutdown_exit_match_entry(ENTRIES_AFTER_A_RESET, &exit);
	cr_assert_not(exit.at_entry_rip);
}

Test(inner_kvm_trace, nothing_in_delivery_is_not)
{
	struct shutdown_exit exit = { .vcpu = 1,
				      .rip = 0xffffffff81a592ebull,
				      .intr_info = 0x000000ec,
				      .thread = 236,
				      .seconds = 127.9 };

	shutdown_exit_match_entry(ENTRIES, &exit);
	cr_assert(exit.at_entry_rip);
	cr_assert_not(shutdown_exit_is_known_fault(&exit));
	cr_assert_str_eq(shutdown_exit_event_kind(&exit), "nothing");
	exit.intr_info = 0x800002ec;
	cr_assert_str_eq(shutdown_exit_event_kind(&exit), "NMI");
}

Test(inner_kvm_trace, no_shutdown_or_a_cut_line_is_none)
{
	struct shutdown_exit exit;

	cr_assert_eq(shutdown_exit_parse_last("", &exit), 0);
	cr_assert_eq(shutdown_exit_parse_last("# tracer: nop\n" HLT_EXIT, &exit), 0);
	/* A shutdown word on the next line is not this exit's reason. */
	cr_assert_eq(shutdown_exit_parse_last("kvm_exit: vcpu 0 reason hlt\n"
					      " reason shutdown \n",
					      &exit),
		     0);
	cr_assert_eq(shutdown_exit_parse_last("kvm_exit: vcpu 2 reason shutdown "
					      "rip 0x10 info1",
					      &exit),
		     0);
}

/* An entry instance holds megabytes of kvm_entry lines: each is read
 * once, not measured against all the rest (which would not end within
 * the test's timeout). */
Test(inner_kvm_trace, a_trace_of_megabytes_is_read_in_one_pass)
{
	static const char line[] = "          vessel-412     [001] d..1.   "
				   "127.847640: kvm_entry: vcpu 3, rip 0x400ff0\n";
	const size_t lines = 200000;
	char *trace = malloc(lines * (sizeof(line) - 1) + sizeof(ENTRIES));

	cr_assert_not_null(trace);
	for (size_t i = 0; i < lines; i++)
		memcpy(trace + i * (sizeof(line) - 1), line, sizeof(line) - 1);
	memcpy(trace + lines * (sizeof(line) - 1), ENTRIES, sizeof(ENTRIES));

	struct shutdown_exit exit = { .vcpu = 1,
				      .rip = 0xffffffff81a592ebull,
				      .thread = 236,
				      .seconds = 127.9 };
	shutdown_exit_match_entry(trace, &exit);
	cr_assert(exit.at_entry_rip);
	cr_assert_eq(shutdown_exit_parse_last(trace, &exit), 0);
	free(trace);
}

/* /proc/kallsyms of an inner host, unsorted as the kernel lists modules. */
#define KALLSYMS                                                                \
	"ffffffff81000000 T _text\n"                                            \
	"ffffffffc03a4c10 t svm_vcpu_enter_exit\t[kvm_amd]\n"                   \
	"ffffffffc03a4aa0 T __svm_vcpu_run\t[kvm_amd]\n"                        \
	"ffffffffc03a4c00 T __svm_sev_es_vcpu_run\t[kvm_amd]\n"                 \
	"ffffffffc03a4b80 t __svm_vcpu_run_exit\t[kvm_amd]\n"

Test(inner_kvm_trace, a_shutdown_inside_the_inner_vmrun_is_the_known_fault)
{
	struct shutdown_exit exit = { .vcpu = 0,
				      .rip = 0xffffffffc03a4b40ull,
				      .intr_info = 0x80000023 };

	shutdown_exit_match_entry(ENTRIES, &exit);
	cr_assert_not(exit.at_entry_rip);
	shutdown_exit_match_vmrun(KALLSYMS, &exit);
	cr_assert(exit.in_inner_vmrun);
	cr_assert(shutdown_exit_is_known_fault(&exit));
	/* The next symbol ends the function. */
	exit.rip = 0xffffffffc03a4b80ull;
	shutdown_exit_match_vmrun(KALLSYMS, &exit);
	cr_assert_not(exit.in_inner_vmrun);
	exit.rip = 0xffffffffc03a4a9full;
	shutdown_exit_match_vmrun(KALLSYMS, &exit);
	cr_assert_not(exit.in_inner_vmrun);
	/* Without the function in kallsyms nothing is inside it. */
	exit.rip = 0xffffffffc03a4b40ull;
	shutdown_exit_match_vmrun("ffffffff81000000 T _text\n", &exit);
	cr_assert_not(exit.in_inner_vmrun);
	cr_assert_not(shutdown_exit_is_known_fault(&exit));
}
