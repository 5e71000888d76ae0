#!/usr/bin/env python3
"""Boot time and memory overhead of vessel beside QEMU, in one run.

Each round boots the same kernel and initramfs once under every VMM, in
turn, and measures from the VMM's start to the guest's first userspace
output ("vessel-guest: userspace up"). After that line, the VMM's resident
memory is read from /proc/PID/status: guest RAM is a shared memfd for both
vessel and QEMU (QEMU gets a memory-backend-memfd), so RssShmem is the guest
RAM the guest touched and RssAnon + RssFile is the VMM's own footprint.

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run -- tools/bench/boot_compare.py --rounds 5
"""
import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import time

MARKER = b"vessel-guest: userspace up"
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def commands(args):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    cmdline = "console=ttyS0 reboot=k panic=1"
    memory = args.memory
    qemu_common = [
        "qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", memory,
        "-smp", str(args.cpus), "-nodefaults", "-no-user-config",
        "-nographic", "-serial", "stdio",
        "-object", f"memory-backend-memfd,id=ram,size={memory}",
        "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
    ]
    return {
        "vessel": [args.vessel, "run", "--kernel", kernel, "--initrd", initrd,
                   "--memory", memory, "--cpus", str(args.cpus),
                   "--cmdline", cmdline],
        "qemu-microvm": qemu_common + ["-M", "microvm,memory-backend=ram"],
        "qemu-pc": qemu_common + ["-M", "pc,memory-backend=ram"],
    }


def rss_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0])
    return fields


def boot_once(argv, timeout):
    start = time.monotonic()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    try:
        while MARKER not in seen:
            left = start + timeout - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{argv[0]}: no userspace within {timeout} s")
            ready, _, _ = select.select([process.stdout], [], [], left)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"{argv[0]} ended early:\n{seen.decode(errors='replace')[-2000:]}")
                seen += chunk
        elapsed = time.monotonic() - start
        time.sleep(0.5)  # let the shell settle before reading memory
        memory = rss_kib(process.pid)
        return elapsed, memory
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()

    runs = commands(args)
    times = {name: [] for name in runs}
    overhead = {name: [] for name in runs}
    for round_number in range(args.rounds):
        for name, argv in runs.items():
            elapsed, memory = boot_once(argv, args.timeout)
            times[name].append(elapsed)
            overhead[name].append(memory["RssAnon"] + memory["RssFile"])
            print(f"round {round_number + 1} {name:13s} {elapsed:7.2f} s "
                  f"own RSS {overhead[name][-1] / 1024:6.1f} MiB "
                  f"guest RAM touched {memory['RssShmem'] / 1024:6.1f} MiB",
                  flush=True)

    print(f"\nmedian over {args.rounds} rounds ({args.cpus} vCPU, {args.memory}):")
    base = statistics.median(times["vessel"])
    for name in runs:
        median = statistics.median(times[name])
        own = statistics.median(overhead[name]) / 1024
        print(f"  {name:13s} boot to userspace {median:7.2f} s "
              f"(vessel/this = {base / median:5.2f})  own RSS {own:6.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
