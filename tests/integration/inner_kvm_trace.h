/*
 * The emulated host's own KVM, as its trace saw a nested guest shut down.
 *
 * On AMD, KVM resets a vCPU that triple-faults before vessel can read it,
 * so where the guest was and what its CPU was delivering are only in the
 * inner host's trace. tests/integration/run_group.py records two trace
 * instances while a test group runs: SHUTDOWN_INSTANCE holds only the
 * kvm_exit events of shutdowns (it never wraps), ENTRY_INSTANCE every
 * kvm_entry (a ring: the last few MiB).
 */
#ifndef VESSEL_TESTS_INNER_KVM_TRACE_H
#define VESSEL_TESTS_INNER_KVM_TRACE_H

#include <stdbool.h>

#define INNER_TRACING "/sys/kernel/tracing"
#define SHUTDOWN_INSTANCE "vessel-shutdowns"
#define ENTRY_INSTANCE "vessel-entries"

struct shutdown_exit {
	unsigned int vcpu;
	unsigned long long rip;
	/* SVM's EXITINTINFO: bit 31 an event was being delivered, bits 10:8
	 * its type, 7:0 its vector. */
	unsigned int intr_info;
	/* The vCPU thread that shut down (its task's pid in the trace), and
	 * the trace's timestamp of the shutdown. */
	unsigned long thread;
	double seconds;
	/* The vCPU's last VMRUN before the shutdown was at rip: it ran no
	 * instruction in between. */
	bool at_entry_rip;
	/* rip is the inner host's own, in the function that runs VMRUN: the
	 * emulator shut the vCPU down inside VMRUN, before its guest's RIP
	 * was loaded. */
	bool in_inner_vmrun;
};

/* How many shutdown exits trace text (tracefs `trace` format) holds; the
 * last one goes into exit, its at_entry_rip and in_inner_vmrun false. */
unsigned int shutdown_exit_parse_last(const char *trace,
				      struct shutdown_exit *exit);

/* Sets exit->at_entry_rip from trace text holding kvm_entry events: the
 * last entry of exit's vCPU thread before the shutdown. */
void shutdown_exit_match_entry(const char *trace, struct shutdown_exit *exit);

/* The inner host's function that runs VMRUN, as /proc/kallsyms names it. */
#define INNER_VMRUN_FUNCTION "__svm_vcpu_run"

/* Sets exit->in_inner_vmrun from kallsyms text (/proc/kallsyms format). */
void shutdown_exit_match_vmrun(const char *kallsyms, struct shutdown_exit *exit);

/* How many shutdown exits this host's trace has recorded (0 if it cannot
 * be read). */
unsigned int shutdown_exit_count(void);

/* The last shutdown exit this host's trace instances recorded, matched
 * with its vCPU's entry and this host's VMRUN function: how many shutdowns
 * there were, 0 if none or the trace cannot be read. */
unsigned int shutdown_exit_read_last(struct shutdown_exit *exit);

/* The kind of event in delivery ("interrupt", "NMI", "exception",
 * "software interrupt"), or "nothing" when none was. */
const char *shutdown_exit_event_kind(const struct shutdown_exit *exit);

/* The emulated host's known fault, which strikes QEMU's guests too
 * (tools/emuhost/README.md): the vCPU shut down in the middle of
 * delivering an interrupt or exception without running an instruction,
 * either at the RIP it had just entered at (as if the emulator's nested
 * paging had lost the guest's kernel at VMRUN) or inside the inner host's
 * VMRUN itself. A guest that breaks its own IDT, stack or page tables runs
 * instructions before its triple fault; a broken state that faults at
 * once can look alike, which the reruns' limit (three) is there for. */
bool shutdown_exit_is_known_fault(const struct shutdown_exit *exit);

#endif
