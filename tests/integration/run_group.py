#!/usr/bin/env python3
"""Runs one group of emulated-host tests (a criterion program) and gives a
test that failed because its guest crashed or stopped more runs.

Inside the emulated AMD-V host a guest's kernel now and then dies in its
entry code, a vCPU triple-faults before it runs an instruction after its
VMRUN, or the guest stops with a vCPU spinning in guest mode, QEMU's
guests as much as vessel's (tools/emuhost/README.md, "Known fault").
guest_session prints "the guest kernel crashed" as soon as the console
shows such a crash, "the guest triple-faulted before its first instruction
after VMRUN" when the emulated host's KVM trace (recorded here) shows the
vCPU shut down delivering an interrupt or exception at the RIP it had just
entered at or inside the inner host's VMRUN, "the guest restarted by
itself" when the guest boots again though the test did not reboot it (a
crash that left no readable sign), and "the guest stopped" when a wait
gives up on a silent console while a vCPU keeps running guest code. A
failed test whose own output has one of those lines is run again, alone,
up to RERUNS times while each failure has such a line; the group passes if
every such test passes in the end. A test that failed any other way (a
triple fault after the guest ran instructions, or with nothing in
delivery, among them), or on every try, fails the group: nothing else is
ever retried.

Usage: run_group.py PROGRAM [CRITERION OPTIONS...]
"""
import os
import re
import subprocess
import sys

# The faults come in bursts: in two fresh-clone CI runs five and nine of
# about twenty-five guests triple-faulted early in their boot, one test
# twice in a row, where 40 boots of the same tests run in between saw
# none.
RERUNS = 3
KNOWN_FAULTS = ("guest_session: the guest kernel crashed",
                "guest_session: the guest triple-faulted before its first instruction after VMRUN",
                "guest_session: the guest restarted by itself",
                "guest_session: the guest stopped")
# The trace instances guest_session reads (inner_kvm_trace.h).
TRACING = "/sys/kernel/tracing"
SHUTDOWN_INSTANCE = "vessel-shutdowns"
ENTRY_INSTANCE = "vessel-entries"
ENTRY_BUFFER_KB = 4096
# SVM's exit code for a shutdown (a triple fault): the emulated host is AMD.
SVM_EXIT_SHUTDOWN = 0x7f
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
RUN = re.compile(r"\[RUN \] (\S+)")
# A failed check ends "[FAIL] NAME: (TIME)", a test killed by a signal
# "[FAIL] NAME: CRASH!".
FAIL = re.compile(r"\[FAIL\] (\S+): (\(|CRASH!)")


def run(argv):
    """Runs argv with its output passed through: exit status and lines."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    lines = []
    for raw in process.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        lines.append(COLOUR.sub("", raw.decode(errors="replace")))
    return process.wait(), lines


def failures(lines):
    """{test: whether its guest met the known fault} for every failed test;
    with --jobs=1 a test's output lies between its RUN line and its
    result."""
    current, faulted, failed = None, False, {}
    for line in lines:
        started = RUN.search(line)
        if started:
            current, faulted = started.group(1), False
            continue
        if any(fault in line for fault in KNOWN_FAULTS):
            faulted = True
        ended = FAIL.search(line)
        if ended:
            failed[ended.group(1)] = faulted and ended.group(1) == current
    return failed


def record_shutdown_exits():
    """Has the emulated host's KVM trace record, in two instances of its
    own, every shutdown exit of a nested vCPU and every VMRUN (the last
    ENTRY_BUFFER_KB per inner CPU): on AMD the vCPU is reset before vessel
    sees it, so that is where guest_session reads what its CPU was doing
    (tests/integration/inner_kvm_trace.h)."""
    instances = os.path.join(TRACING, "instances")
    settings = {
        SHUTDOWN_INSTANCE: (("events/kvm/kvm_exit/filter",
                             f"exit_reason == {SVM_EXIT_SHUTDOWN}"),
                            ("events/kvm/kvm_exit/enable", "1")),
        ENTRY_INSTANCE: (("buffer_size_kb", str(ENTRY_BUFFER_KB)),
                         ("events/kvm/kvm_entry/enable", "1")),
    }
    try:
        if not os.path.isdir(instances):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING],
                           check=True)
        for instance, writes in settings.items():
            path = os.path.join(instances, instance)
            # A new instance starts empty and recording.
            if os.path.isdir(path):
                os.rmdir(path)
            os.mkdir(path)
            for name, value in writes:
                with open(os.path.join(path, name), "w") as control:
                    control.write(value)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"run_group: no KVM trace of shutdown exits ({error}): no "
              "triple fault will be taken for the known fault", flush=True)


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    record_shutdown_exits()
    status, lines = run(argv)
    if status == 0:
        return 0
    failed = failures(lines)
    if not failed or not all(failed.values()):
        return status
    for test in failed:
        for attempt in range(1, RERUNS + 1):
            # tools/test-summary counts these lines (one per rerun) and
            # prints the count above its summary line.
            print(f"\nrun_group: {test} failed after its guest crashed or "
                  "stopped (the emulated host's known fault); running it "
                  f"again ({attempt} of {RERUNS})", flush=True)
            # criterion's filter names a test suite/name.
            rerun, lines = run(argv + ["--filter", test.replace("::", "/", 1)])
            if rerun == 0:
                break
            if attempt == RERUNS or not failures(lines).get(test):
                return rerun
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
