#!/usr/bin/env python3
"""virtio-blk throughput of vessel beside QEMU's virtio-blk-pci, in one run.

Each round boots the default guest from its Debian image (read-only root)
under vessel and under QEMU -M pc, both -enable-kvm, with the same data disk
(a raw file) as vdb, and runs fio inside the guest: 4 KiB random reads
(IOPS) and 1 MiB sequential reads and writes (MiB/s), direct I/O, libaio.
The data file lives in the host's /tmp, so the figures compare the VMMs'
I/O paths rather than the host's disk.

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run --memory 4G -- tools/bench/disk_compare.py --rounds 3

--vessel LABEL=PATH (repeatable) puts several vessel binaries side by side
in the same run, e.g. two builds of the disk backend; each gets its own
line and its own ratio to QEMU.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

from guest_crash import GuestCrashed, kernel_crashed, with_new_guests

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBS = {
    "randread-4k": "--rw=randread --bs=4k --iodepth=32",
    "seqread-1m": "--rw=read --bs=1m --iodepth=8",
    "seqwrite-1m": "--rw=write --bs=1m --iodepth=8",
}


def guest_command(runtime, jobs):
    runs = []
    for name in jobs:
        options = JOBS[name]
        runs.append(
            f"fio --name={name} --filename=/dev/vdb --direct=1 --ioengine=libaio "
            f"{options} --runtime={runtime} --time_based --size=192m "
            f"--output-format=json --output=/tmp/{name}.json")
    dump = " ".join(f"/tmp/{name}.json" for name in jobs)
    return " && ".join(runs) + f" && echo fio-begin && cat {dump} && echo fio-end"


def vessel_binaries(specs):
    """LABEL=PATH or PATH (labelled "vessel") -> {label: path}."""
    binaries = {}
    for spec in specs or [os.path.join(TOP, "build/vmm/vessel")]:
        label, _, path = spec.rpartition("=")
        label = label or "vessel"
        if label in binaries or label == "qemu-pc":
            sys.exit(f"disk_compare: --vessel label {label} given twice")
        if not os.access(path, os.X_OK):
            sys.exit(f"disk_compare: {path} is not an executable")
        binaries[label] = path
    return binaries


def commands(args, data):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    root = os.path.join(args.guest_dir, "rootfs-tests.ext4")
    cmdline = ("console=ttyS0 reboot=k panic=1 quiet root=/dev/vda ro "
               f"vessel.run={guest_command(args.runtime, args.jobs)}")
    runs = {
        label: [path, "run", "--no-reboot", "--kernel", kernel, "--initrd", initrd,
                "--memory", "512M", "--cpus", str(args.cpus),
                "--disk", f"{root},readonly", "--disk", data,
                "--cmdline", cmdline]
        for label, path in vessel_binaries(args.vessel).items()
    }
    runs.update({
        "qemu-pc": ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host",
                    "-M", "pc", "-m", "512M", "-smp", str(args.cpus),
                    "-nodefaults", "-no-user-config", "-nographic",
                    "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
                    "-append", cmdline,
                    "-drive", f"file={root},format=raw,if=none,id=root,readonly=on",
                    "-device", "virtio-blk-pci,drive=root",
                    "-drive", f"file={data},format=raw,if=none,id=data,aio=threads",
                    "-device", "virtio-blk-pci,drive=data"],
    })
    return runs


def run_once(argv, timeout):
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout)
    output = result.stdout.decode(errors="replace").replace("\r", "")
    match = re.search(r"fio-begin\n(.*)fio-end", output, re.S)
    if not match and kernel_crashed(output + result.stderr.decode(errors="replace")):
        raise GuestCrashed(f"{argv[0]}: the guest kernel crashed")
    if not match:
        raise RuntimeError(f"{argv[0]}: no fio results:\n{output[-3000:]}")
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
        figures[name] = side["iops"] if "4k" in name else side["bw_bytes"] / 2**20
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--runtime", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--vessel", action="append", metavar="[LABEL=]PATH",
                        help="a vessel binary (default: build/vmm/vessel); "
                        "repeat to compare several in one run")
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help="comma-separated subset of: " + ", ".join(JOBS))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()
    args.jobs = args.jobs.split(",")
    for job in args.jobs:
        if job not in JOBS:
            parser.error(f"unknown job {job}")

    with tempfile.NamedTemporaryFile(prefix="vessel-bench-", suffix=".img") as data:
        data.truncate(256 << 20)
        runs = commands(args, data.name)
        results = {name: {job: [] for job in args.jobs} for name in runs}
        for round_number in range(args.rounds):
            for name, argv in runs.items():
                figures = with_new_guests(name, lambda: run_once(argv, args.timeout))
                for job, value in figures.items():
                    results[name][job].append(value)
                print(f"round {round_number + 1} {name:12s} " +
                      "  ".join(f"{job} {value:9.1f}" for job, value in figures.items()),
                      flush=True)

    # The load of a shared machine drifts during a run: a ratio taken
    # within each round (the VMMs ran one after the other) says more than
    # the ratio of the medians.
    print(f"\nmedian over {args.rounds} rounds ({args.cpus} vCPUs; "
          "randread-4k in IOPS, the others in MiB/s; per-round: the median "
          "of each round's ratio):")
    for job in args.jobs:
        qemu_figures = results["qemu-pc"][job]
        qemu = statistics.median(qemu_figures)
        for name in runs:
            if name == "qemu-pc":
                continue
            figures = results[name][job]
            vessel = statistics.median(figures)
            paired = statistics.median(
                v / q for v, q in zip(figures, qemu_figures))
            print(f"  {job:12s} {name:12s} {vessel:9.1f}  qemu {qemu:9.1f}  "
                  f"{name}/qemu {vessel / qemu:5.2f}  per-round {paired:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
