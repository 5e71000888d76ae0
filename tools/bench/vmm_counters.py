"""What a VMM's process spends during a measurement, for the benchmarks:
KVM's exits and interrupts (perf stat on KVM's tracepoints) and the CPU
time of its threads, the vCPU threads apart from the rest."""

import os
import signal
import subprocess

# What --exits counts in the VMM's process during a measurement (KVM's
# tracepoints, read with perf stat): what a frame or a request costs the
# guest beyond moving its bytes. On a nested host every exit is dear, and
# these figures move far less from run to run than the throughput does.
EXIT_EVENTS = {
    "kvm:kvm_exit": "exits",
    "kvm:kvm_msi_set_irq": "interrupts",  # MSIs: the queues' notifications
    "kvm:kvm_mmio": "mmio",  # the driver's kicks, and any other MMIO
    "kvm:kvm_vcpu_wakeup": "wakeups",  # halted vCPUs woken
}


class ExitCounter:
    """perf stat on the VMM's process for the length of one measurement:
    the EXIT_EVENTS it counted."""

    def __init__(self, pid):
        self.perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-p", str(pid)] +
            [argument for event in EXIT_EVENTS for argument in ("-e", event)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        """{name: count}, from perf's CSV lines ("count,unit,event,...")."""
        self.perf.send_signal(signal.SIGINT)
        _, report = self.perf.communicate(timeout=30)
        counts = {}
        for line in report.decode(errors="replace").splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2] in EXIT_EVENTS:
                counts[EXIT_EVENTS[fields[2]]] = (
                    int(fields[0]) if fields[0].isdigit() else 0)
        if len(counts) != len(EXIT_EVENTS):
            text = report.decode(errors="replace")
            raise RuntimeError(f"perf stat counted no KVM events:\n{text[-800:]}")
        return counts


def thread_cpu_seconds(pid):
    """{"vcpu": seconds, "other": seconds} of CPU the VMM has used: its
    vCPU threads (vessel's vcpuN, QEMU's "CPU N/KVM" with
    debug-threads=on), whose time includes the guest's own, and the rest
    of the process (the event loop, QEMU's main loop, workers), taken as
    the whole process's time less the vCPU threads': the process's count
    keeps the time of threads that have ended (io_uring's and QEMU's
    short-lived workers), which a sum over the living threads would lose."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(stat_path):
        with open(stat_path) as stat:
            text = stat.read()
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        return name, (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    vcpu = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name, seconds = used(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue  # the thread ended
        if name.startswith(("vcpu", "CPU ")):
            vcpu += seconds
    _, total = used(f"/proc/{pid}/stat")
    return {"vcpu": vcpu, "other": max(0.0, total - vcpu)}


# KVM's own counters of a VM, summed over its vCPUs, in debugfs: read at
# the start and the end of a measurement, without attaching anything to
# the VMM's process (perf stat's tracepoints did not suit every nested
# guest). exits: all of them, the driver's kicks through ioeventfds
# included; irq_injections: interrupts injected; halt_wakeup: halted vCPUs
# woken.
KVM_DEBUGFS = "/sys/kernel/debug/kvm"
KVM_STATS = {
    "exits": "exits",
    "irq_injections": "interrupts",
    "halt_exits": "halts",
    "halt_wakeup": "wakeups",
}
# Where the exits went, for --exits: host interrupts that took a CPU out
# of the guest (a kick of a running vCPU to deliver an MSI among them),
# waits for the guest to take an interrupt, instructions KVM emulated (an
# MMIO kick, on AMD, is one), and exits to the VMM for port and MMIO
# accesses.
KVM_EXIT_REASONS = {
    "irq_exits": "host-irqs",
    "irq_window_exits": "irq-windows",
    "insn_emulation": "emulated",
    "io_exits": "pio-vmm",
    "mmio_exits": "mmio-vmm",
}


class KvmStats:
    """The stats (KVM_STATS by default: debugfs file: name) of the VMs of
    the process pid, from the creation of this object to stop()."""

    def __init__(self, pid, stats=KVM_STATS):
        self.stats = stats
        self.directories = [os.path.join(KVM_DEBUGFS, name)
                            for name in os.listdir(KVM_DEBUGFS)
                            if name.startswith(f"{pid}-")]
        if not self.directories:
            raise RuntimeError(f"no VM of process {pid} in {KVM_DEBUGFS}")
        self.before = self.read()

    def read(self):
        counts = dict.fromkeys(self.stats.values(), 0)
        for directory in self.directories:
            for stat, name in self.stats.items():
                with open(os.path.join(directory, stat)) as value:
                    counts[name] += int(value.read())
        return counts

    def stop(self):
        after = self.read()
        return {name: after[name] - self.before[name] for name in after}
