#!/usr/bin/env python3
"""virtio-blk throughput and latency of vessel beside QEMU's virtio-blk-pci.

Each round boots the default guest from its Debian image (read-only root)
under vessel and under QEMU -M pc in two configurations, all -enable-kvm,
with the same data disk (a raw file) as vdb, and runs fio inside the guest:
4 KiB random reads at iodepth 32 (IOPS) and at iodepth 1 (IOPS and
completion latency), and 1 MiB sequential reads and writes (MiB/s), direct
I/O, libaio. The data file lives in the host's /tmp, so the figures compare
the VMMs' I/O paths rather than the host's disk.

The QEMU configurations:
- qemu-threads: QEMU's defaults, aio=threads on the main loop;
- qemu-fast: what QEMU offers for this job: an iothread (with its adaptive
  polling, poll-max-ns), aio=native with cache=none where the data file's
  file system takes O_DIRECT, else aio=io_uring (tmpfs, as inside the
  emulated host, refuses O_DIRECT on Linux 6.1).
Both have QEMU's default of one queue per vCPU (num-queues).

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run --memory 4G -- tools/bench/disk_compare.py --rounds 3

--vessel LABEL=PATH (repeatable) puts several vessel binaries side by side
in the same run, e.g. two builds of the disk backend; each gets its own
line and its own ratios to QEMU.
"""
import argparse
import base64
import json
import os
import queue
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from guest_crash import ATTEMPTS, GuestCrashed, kernel_crashed, with_new_guests
from vmm_counters import (KVM_DEBUGFS, KVM_EXIT_REASONS, KVM_STATS, KvmStats,
                          thread_cpu_seconds)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# name: (fio options, what the figure is)
JOBS = {
    "randread-4k": ("--rw=randread --bs=4k --iodepth=32", "IOPS"),
    "randread-4k-qd1": ("--rw=randread --bs=4k --iodepth=1", "IOPS"),
    "seqread-1m": ("--rw=read --bs=1m --iodepth=8", "MiB/s"),
    "seqwrite-1m": ("--rw=write --bs=1m --iodepth=8", "MiB/s"),
}
QEMUS = ("qemu-threads", "qemu-fast")


class GuestStopped(RuntimeError):
    """The guest said nothing for too long: its VMM was stopped."""


def guest_command(runtime, jobs):
    # First the guest idles, disk and all, for the VMM's CPU time then.
    runs = [f"echo job-begin-idle && sleep {runtime} && echo job-end-idle"]
    for name in jobs:
        options, _ = JOBS[name]
        # The markers let the host count exits and CPU for this job alone.
        runs.append(
            f"echo job-begin-{name} && "
            f"fio --name={name} --filename=/dev/vdb --direct=1 --ioengine=libaio "
            f"{options} --runtime={runtime} --time_based --size=192m "
            f"--output-format=json --output=/tmp/{name}.json && "
            f"echo job-end-{name}")
    dump = " ".join(f"/tmp/{name}.json" for name in jobs)
    return " && ".join(runs) + f" && echo fio-begin && cat {dump} && echo fio-end"


def vessel_binaries(specs):
    """LABEL=PATH or PATH (labelled "vessel") -> {label: path}."""
    binaries = {}
    for spec in specs or [os.path.join(TOP, "build/vmm/vessel")]:
        label, _, path = spec.rpartition("=")
        label = label or "vessel"
        if label in binaries or label in QEMUS:
            sys.exit(f"disk_compare: --vessel label {label} given twice")
        if not os.access(path, os.X_OK):
            sys.exit(f"disk_compare: {path} is not an executable")
        binaries[label] = path
    return binaries


def takes_direct_io(path):
    """Whether path's file system lets it be opened with O_DIRECT."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


def commands(args, data):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    root = os.path.join(args.guest_dir, "rootfs-tests.ext4")
    # One word: the kernel hands init at most 32 arguments, and panics
    # ("Too many boot init vars") at more, which the jobs' words reach.
    command = base64.b64encode(
        guest_command(args.runtime, args.jobs).encode()).decode()
    cmdline = ("console=ttyS0 reboot=k panic=1 quiet root=/dev/vda ro "
               f"vessel.run64={command}")
    runs = {
        label: [path, "run", "--no-reboot", "--kernel", kernel, "--initrd", initrd,
                "--memory", "512M", "--cpus", str(args.cpus),
                "--disk", f"{root},readonly", "--disk", data,
                "--cmdline", cmdline]
        for label, path in vessel_binaries(args.vessel).items()
    }
    qemu = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host",
            "-M", "pc", "-m", "512M", "-smp", str(args.cpus),
            "-name", "bench,debug-threads=on",
            "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
            "-append", cmdline,
            "-drive", f"file={root},format=raw,if=none,id=root,readonly=on",
            "-device", "virtio-blk-pci,drive=root"]
    runs["qemu-threads"] = qemu + [
        "-drive", f"file={data},format=raw,if=none,id=data,aio=threads",
        "-device", "virtio-blk-pci,drive=data"]
    fast_aio = ("aio=native,cache.direct=on" if takes_direct_io(data)
                else "aio=io_uring")
    runs["qemu-fast"] = qemu + [
        "-object", "iothread,id=io0",
        "-drive", f"file={data},format=raw,if=none,id=data,{fast_aio}",
        "-device", f"virtio-blk-pci,drive=data,iothread=io0,num-queues={args.cpus}"]
    return runs


def engine_of(label, argv, output):
    """What moved the data: vessel says when it falls back to its worker
    pool; QEMU's drive options say it."""
    if label in QEMUS:
        return [word for word in argv if "id=data" in word][0].split(",", 4)[-1]
    return ("worker pool" if "io_uring unavailable" in output
            else "io_uring")


def read_lines(stream, lines):
    for line in iter(stream.readline, b""):
        lines.put(line.decode(errors="replace").rstrip("\r\n"))
    lines.put(None)


def parse_reports(output):
    """{job: {"value", "ios", "p50", "p99"}} from fio's JSON reports."""
    match = re.search(r"fio-begin\n(.*)fio-end", output, re.S)
    if not match:
        return None
    figures = {}
    decoder = json.JSONDecoder()
    text, position = match.group(1), 0
    while position < len(text):
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        report, position = decoder.raw_decode(text, position)
        job = report["jobs"][0]
        name = job["jobname"]
        side = job["write"] if "write" in name else job["read"]
        percentiles = side["clat_ns"].get("percentile", {})
        figures[name] = {
            "value": side["iops"] if JOBS[name][1] == "IOPS" else side["bw_bytes"] / 2**20,
            "ios": side["total_ios"],
            "p50": percentiles.get("50.000000", 0) / 1e3,
            "p99": percentiles.get("99.000000", 0) / 1e3,
        }
    return figures


def run_once(label, argv, args):
    """One guest: {job: figures}, with "exits" and "cpu" per request when
    asked. A guest silent for longer than a job could take, or running
    past --timeout, is stopped (GuestStopped)."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines),
                     daemon=True).start()
    output, counters, cpu = [], {}, {}
    counter, cpu_before = None, None
    deadline = time.monotonic() + args.timeout
    silence = args.runtime * 2 + 120
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, min(silence, deadline - time.monotonic())))
            except queue.Empty:
                raise GuestStopped(f"{label}: the guest stopped answering")
            if line is None:
                break
            output.append(line)
            marker = re.search(r"job-(begin|end)-([\w-]+)", line)
            if marker and marker.group(1) == "begin":
                if args.exits:
                    try:
                        counter = KvmStats(process.pid, {**KVM_STATS, **KVM_EXIT_REASONS})
                    except (OSError, RuntimeError) as failure:
                        print(f"{label}: no KVM counters ({failure}); "
                              "going on without them", file=sys.stderr)
                        args.exits = False
                cpu_before = thread_cpu_seconds(process.pid)
            elif marker and cpu_before:
                job = marker.group(2)
                after = thread_cpu_seconds(process.pid)
                cpu[job] = {kind: after[kind] - cpu_before[kind] for kind in after}
                if counter:
                    counters[job] = counter.stop()
                    counter = None
            if time.monotonic() > deadline:
                raise GuestStopped(f"{label}: still running after {args.timeout} s")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    text = "\n".join(output) + "\n"
    figures = parse_reports(text)
    if figures is None and kernel_crashed(text):
        print(f"{label}: the end of the console:\n{text[-1500:]}",
              file=sys.stderr, flush=True)
        raise GuestCrashed(f"{label}: the guest kernel crashed")
    if figures is None:
        raise GuestStopped(f"{label}: no fio results:\n{text[-3000:]}")
    if "idle" in cpu:
        figures["idle"] = {kind: seconds / args.runtime * 1e3
                           for kind, seconds in cpu["idle"].items()}
    for job, measured in figures.items():
        if job == "idle":
            continue
        ios = measured["ios"] or 1
        if job in cpu:
            measured["vcpu-us"] = cpu[job]["vcpu"] / ios * 1e6
            measured["other-us"] = cpu[job]["other"] / ios * 1e6
        for name, count in counters.get(job, {}).items():
            measured[name] = count / ios
    return figures, engine_of(label, argv, text)


def spread(values):
    return f"{min(values):.2f}-{max(values):.2f}"


def summarise(args, names, results):
    """The ratios of each vessel to each QEMU, over the rounds where both
    measured: the median of the per-round ratios, and their spread."""
    print(f"\n{args.cpus} vCPU(s), {args.runtime} s a job; randread in IOPS, "
          "seq in MiB/s; median over rounds; per-round: the median of the "
          "ratios taken within each round, and their range")
    vessels = [name for name in names if name not in QEMUS]
    for job in args.jobs:
        for qemu in QEMUS:
            for name in vessels:
                rounds = [r for r in range(args.rounds)
                          if results[name][r] and results[qemu][r]]
                if not rounds:
                    print(f"  {job:16s} {name:10s} no round measured both {name} and {qemu}")
                    continue
                ours = [results[name][r][job]["value"] for r in rounds]
                theirs = [results[qemu][r][job]["value"] for r in rounds]
                ratios = [v / q for v, q in zip(ours, theirs)]
                print(f"  {job:16s} {name:10s} {statistics.median(ours):8.1f}  "
                      f"{qemu:12s} {statistics.median(theirs):8.1f}  "
                      f"per-round {statistics.median(ratios):5.2f} "
                      f"({spread(ratios)}, {len(rounds)} rounds)")
    latency_jobs = [job for job in args.jobs if job.endswith("qd1")]
    for job in latency_jobs:
        print(f"\n{job} completion latency (fio clat, us), medians over rounds:")
        for name in names:
            measured = [results[name][r][job] for r in range(args.rounds)
                        if results[name][r]]
            if measured:
                print(f"  {name:14s} p50 {statistics.median(m['p50'] for m in measured):8.1f}"
                      f"  p99 {statistics.median(m['p99'] for m in measured):8.1f}")
    print("\nidle guest (the first seconds after its boot), CPU ms a second, "
          "medians over rounds:")
    for name in names:
        measured = [results[name][r]["idle"] for r in range(args.rounds)
                    if results[name][r] and "idle" in results[name][r]]
        if measured:
            print(f"  {name:14s} vCPU threads {statistics.median(m['vcpu'] for m in measured):7.2f}"
                  f"  others {statistics.median(m['other'] for m in measured):7.2f}")
    keys = ["vcpu-us", "other-us"] + (list(KVM_STATS.values()) +
                                      list(KVM_EXIT_REASONS.values())
                                      if args.exits else [])
    print("\nper request (medians over rounds): CPU us of the vCPU threads "
          "and of the others (vessel's event loop and io_uring workers, "
          "QEMU's main loop, iothread and pool)" +
          ("; KVM's exits, interrupts injected, halts, vCPU wake-ups, "
           "and of the exits: host interrupts, interrupt windows, "
           "instructions emulated, port and MMIO exits to the VMM"
           if args.exits else ""))
    for job in args.jobs:
        for name in names:
            measured = [results[name][r][job] for r in range(args.rounds)
                        if results[name][r] and keys[0] in results[name][r][job]]
            if measured:
                print(f"  {job:16s} {name:14s} " + "  ".join(
                    f"{key} {statistics.median(m.get(key, 0) for m in measured):7.2f}"
                    for key in keys))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--runtime", type=int, default=10, help="seconds a job")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds a guest may run in all")
    parser.add_argument("--vessel", action="append", metavar="[LABEL=]PATH",
                        help="a vessel binary (default: build/vmm/vessel); "
                        "repeat to compare several in one run")
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help="comma-separated subset of: " + ", ".join(JOBS))
    parser.add_argument("--exits", action="store_true",
                        help="also count KVM's exits, interrupts injected, "
                        "halts and vCPU wake-ups per request (its debugfs)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="measure from the first guest on")
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()
    args.jobs = args.jobs.split(",")
    for job in args.jobs:
        if job not in JOBS:
            parser.error(f"unknown job {job}")
    if args.exits and not os.path.isdir(KVM_DEBUGFS):
        parser.error(f"--exits reads KVM's counters in {KVM_DEBUGFS}: "
                     "mount -t debugfs none /sys/kernel/debug")

    with tempfile.NamedTemporaryFile(prefix="vessel-bench-", suffix=".img") as data:
        data.truncate(256 << 20)
        runs = commands(args, data.name)
        names = list(runs)
        for name in QEMUS:
            print(f"{name}: {shlex.join(runs[name])}")
        results = {name: [None] * args.rounds for name in names}
        engines = {}
        if args.warm_up:
            # The emulated host translates a guest's code the first time
            # it runs: a first guest that nobody measures pays for that.
            try:
                run_once("warm-up", runs[names[0]], args)
            except RuntimeError as failure:
                print(f"warm-up: {str(failure).splitlines()[0]}", flush=True)
        for round_number in range(args.rounds):
            # Each round starts with the next VMM: a drift of the
            # machine's load during a round hits each one as often.
            start = round_number % len(names)
            for name in names[start:] + names[:start]:
                def measure(name=name):
                    return run_once(name, runs[name], args)
                try:
                    figures, engine = with_new_guests(
                        name, measure, retry_on=(GuestCrashed, GuestStopped))
                except RuntimeError as failure:
                    print(f"round {round_number + 1} {name:14s} no figure: "
                          f"{failure}", flush=True)
                    continue
                if name not in engines:
                    engines[name] = engine
                    print(f"{name}: data disk moved by {engine}", flush=True)
                results[name][round_number] = figures
                print(f"round {round_number + 1} {name:14s} " + "  ".join(
                    f"{job} {figures[job]['value']:8.1f}" for job in args.jobs),
                    flush=True)
            # The ratios of this round, as they come.
            for qemu in QEMUS:
                if not results[qemu][round_number]:
                    continue
                for name in names:
                    if name in QEMUS or not results[name][round_number]:
                        continue
                    print(f"round {round_number + 1} {name}/{qemu} " + "  ".join(
                        f"{job} {results[name][round_number][job]['value'] / results[qemu][round_number][job]['value']:5.2f}"
                        for job in args.jobs), flush=True)
    summarise(args, names, results)
    print(f"\n(a VMM is measured again with a new guest after a crash or a stop, "
          f"{ATTEMPTS} attempts at most)")


if __name__ == "__main__":
    sys.exit(main())
