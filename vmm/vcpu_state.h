/*
 * The state KVM holds for a machine, read out into a snapshot's device
 * tree (state_fdt.h) and written back: per vCPU the registers, segment
 * and control registers, XSAVE area, XCRs, debug registers, MSRs, LAPIC,
 * MP state, pending events, TSC frequency and CPUID table; per VM both
 * PICs, the IOAPIC and the PIT.
 *
 * Promise: save reads only from a parked vCPU (one that completed its exit
 * in progress, vcpu.h), and saves every MSR of KVM_GET_MSR_INDEX_LIST that
 * KVM_GET_MSRS returns for it. Restore writes in the order the KVM API
 * needs: CPUID first (it decides what the rest may hold), then sregs,
 * regs, XSAVE, XCRs and debug registers, the TSC frequency, the LAPIC,
 * the MSRs after the LAPIC (so the TSC deadline is kept), the MP state,
 * and the vCPU events last. Every value is checked for size before use,
 * and a part the host refuses fails the restore with one line naming it
 * (a TSC frequency this host cannot give, an MSR it does not know).
 * KVM's structures are stored as KVM lays them out, in x86 byte order.
 */
#ifndef VESSEL_VMM_VCPU_STATE_H
#define VESSEL_VMM_VCPU_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "state_fdt.h"

#define VCPU_STATE_VERSION 2
#define VM_KVM_STATE_VERSION 1

/* The vCPU vcpu_fd of vm_fd (kvm_fd the system's /dev/kvm) into the node
 * at path. 0 or -errno with err. */
int vcpu_state_save(int kvm_fd, int vm_fd, int vcpu_fd,
		    struct state_writer *writer, const char *path, char *err,
		    size_t err_len);
int vcpu_state_restore(int vm_fd, int vcpu_fd, struct state_reader *reader,
		       const char *path, char *err, size_t err_len);
/* What restore checks of the node at path that needs no vCPU: its version
 * and every part's size; before a VM is made. */
int vcpu_state_check(struct state_reader *reader, const char *path, char *err,
		     size_t err_len);

/*
 * The guest's kvmclock after a restore: the clock it had at the pause,
 * moved on by the host's real time passed since (none if the host's clock
 * went back), so the guest's wall clock is right again once it runs. The
 * guest is told it was stopped (KVM_KVMCLOCK_CTRL), as after a pause, so
 * its watchdogs take the jump for what it is.
 */
uint64_t vcpu_state_clock_after(uint64_t paused_clock_ns,
				int64_t paused_realtime_ns,
				int64_t now_realtime_ns);
/* The guest's TSC (tsc at tsc_khz, read at read_realtime_ns) moved on the
 * same way: restore gives it back as it would be now. */
uint64_t vcpu_state_tsc_after(uint64_t tsc, uint64_t tsc_khz,
			      int64_t read_realtime_ns, int64_t now_realtime_ns);
/* The host's CLOCK_REALTIME in ns. */
int64_t vcpu_state_realtime_ns(void);

/* The VM's PICs, IOAPIC and PIT, into the open node of writer (read from
 * the open node of reader). */
int vm_kvm_state_save(int vm_fd, struct state_writer *writer, char *err,
		      size_t err_len);
int vm_kvm_state_restore(int vm_fd, struct state_reader *reader, char *err,
			 size_t err_len);
/* The sizes of the open node's PIC, IOAPIC and PIT parts. */
int vm_kvm_state_check(struct state_reader *reader, char *err, size_t err_len);

#endif
