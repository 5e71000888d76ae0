#!/usr/bin/env python3
"""virtio-net TCP throughput of vessel beside QEMU's virtio-net-pci, in one run.

Each round boots the default guest from its Debian image (read-only root,
2 vCPUs) under vessel and under QEMU -M pc (both -enable-kvm), once with
user-mode networking (libslirp, a port forward to the guest) and once with
a TAP device (in a network namespace the benchmark makes; QEMU with
vhost=off, so both VMMs move the frames in userspace), and runs iperf3:
the server in the guest, the client on the host, one run host to guest and
one reversed (guest to host).

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run --memory 4G --timeout 3600 -- tools/bench/net_compare.py --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

from guest_crash import GuestCrashed, kernel_crashed, with_new_guests

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE = "vessel-bench"
TAP = "vbtap0"
HOST_ADDRESS = "192.168.77.1"
GUEST_ADDRESS = "192.168.77.2"
PORT = 5201
BACKENDS = ("user", "tap")
DIRECTIONS = ("host-to-guest", "guest-to-host")


def run(*argv):
    subprocess.run(argv, check=True)


def make_namespace():
    subprocess.run(["ip", "netns", "del", NAMESPACE], stderr=subprocess.DEVNULL)
    run("ip", "netns", "add", NAMESPACE)
    inside = ["ip", "netns", "exec", NAMESPACE]
    run(*inside, "ip", "link", "set", "lo", "up")
    run(*inside, "ip", "tuntap", "add", "dev", TAP, "mode", "tap")
    run(*inside, "ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", TAP)
    run(*inside, "ip", "link", "set", TAP, "up")


def vmm_command(vmm, backend, args):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    root = os.path.join(args.guest_dir, "rootfs.ext4")
    address = "dhcp" if backend == "user" else f"{GUEST_ADDRESS}/24"
    cmdline = ("console=ttyS0 reboot=k panic=1 quiet root=/dev/vda ro "
               f"vessel.ip={address} vessel.run=iperf3 -s")
    forward = f"tcp:127.0.0.1:{PORT}-:{PORT}"
    if vmm == "vessel":
        net = f"user,hostfwd={forward}" if backend == "user" else f"tap,ifname={TAP}"
        argv = [args.vessel, "run", "--no-reboot", "--kernel", kernel, "--initrd", initrd,
                "--memory", "512M", "--cpus", str(args.cpus),
                "--disk", f"{root},readonly", "--net", net, "--cmdline", cmdline]
    else:
        netdev = (f"user,id=n0,hostfwd={forward}" if backend == "user" else
                  f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off")
        argv = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M", "pc",
                "-m", "512M", "-smp", str(args.cpus), "-nodefaults",
                "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                "-drive", f"file={root},format=raw,if=none,id=root,readonly=on",
                "-device", "virtio-blk-pci,drive=root",
                "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    if backend == "tap":
        argv = ["ip", "netns", "exec", NAMESPACE] + argv
    return argv


class Console:
    """The VMM's console output, read on a thread of its own so that a
    crash is seen whenever it happens."""

    def __init__(self, process):
        self.process = process
        self.text = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.process.stdout.read1(4096), b""):
            with self.lock:
                self.text += chunk.decode(errors="replace")

    def tail(self, length):
        with self.lock:
            return self.text[-length:]

    def crashed(self):
        """Whether the guest died: its kernel crashed, or the VMM ended
        (the guest's iperf3 server never does; with --no-reboot a triple
        fault ends the VMM, QEMU without a word)."""
        with self.lock:
            return kernel_crashed(self.text) or self.process.poll() is not None

    def wait_for(self, text, timeout):
        """Waits until text appears on the console."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if text in self.text:
                    return
                tail = self.text[-3000:]
            if self.crashed():
                raise GuestCrashed(f"the guest kernel crashed:\n{tail}")
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"no '{text}' from the guest:\n{tail}")
            time.sleep(0.2)


def iperf(backend, reverse, args, console):
    """Mbit/s the receiving side saw; a run that fails (the guest's server
    may still be settling) is tried again, twice at most. GuestCrashed
    when the guest's kernel crashed."""
    server = "127.0.0.1" if backend == "user" else GUEST_ADDRESS
    argv = ["iperf3", "-c", server, "-p", str(PORT), "-t", str(args.runtime), "-J"]
    if reverse:
        argv.append("-R")
    if backend == "tap":
        argv = ["ip", "netns", "exec", NAMESPACE] + argv
    for attempt in range(3):
        try:
            result = subprocess.run(argv, capture_output=True,
                                    timeout=args.runtime + 60)
            report = json.loads(result.stdout)
            return report["end"]["sum_received"]["bits_per_second"] / 1e6
        except subprocess.TimeoutExpired:
            error = "timed out"
        except (ValueError, KeyError):
            error = (result.stdout.decode(errors="replace")[-500:] +
                     result.stderr.decode(errors="replace")[-500:]).strip()
        if console.crashed():
            raise GuestCrashed("the guest kernel crashed during iperf3")
        print(f"iperf3 {' '.join(argv[-6:])}: attempt {attempt + 1} failed: "
              f"{error}\nthe end of the guest's console:\n{console.tail(1500)}",
              file=sys.stderr, flush=True)
        time.sleep(2)
    raise RuntimeError("iperf3 failed three times")


def measure_once(vmm, backend, args):
    """{direction: Mbit/s} for one boot of one VMM with one backend."""
    process = subprocess.Popen(vmm_command(vmm, backend, args),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    console = Console(process)
    try:
        console.wait_for("Server listening on", args.boot_timeout)
        figures = {direction: iperf(backend, direction == "guest-to-host", args,
                                    console)
                   for direction in DIRECTIONS}
        # A guest that died at the end of a run gives no figure to trust.
        if console.crashed():
            raise GuestCrashed("the guest kernel crashed during iperf3")
        return figures
    finally:
        process.kill()
        process.wait()


def measure(vmm, backend, args):
    """measure_once, with a new guest when the guest died or stopped
    answering: inside the emulated host that happens to QEMU's guests and
    vessel's alike (tools/emuhost/README.md), and says nothing about
    either VMM's throughput. Every such retry is reported."""
    return with_new_guests(f"{vmm} {backend}",
                           lambda: measure_once(vmm, backend, args),
                           retry_on=RuntimeError)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--runtime", type=int, default=10)
    parser.add_argument("--boot-timeout", type=float, default=600)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()
    backends = args.backends.split(",")
    if any(backend not in BACKENDS for backend in backends):
        parser.error(f"--backends: a comma-separated subset of {', '.join(BACKENDS)}")
    if "tap" in backends:
        make_namespace()

    results = {(vmm, backend, direction): []
               for vmm in ("vessel", "qemu") for backend in backends
               for direction in DIRECTIONS}
    try:
        for round_number in range(args.rounds):
            for backend in backends:
                for vmm in ("vessel", "qemu"):
                    figures = measure(vmm, backend, args)
                    for direction, value in figures.items():
                        results[(vmm, backend, direction)].append(value)
                    print(f"round {round_number + 1} {vmm:6s} {backend:4s} " +
                          "  ".join(f"{direction} {value:8.1f}"
                                    for direction, value in figures.items()),
                          flush=True)
    finally:
        if "tap" in backends:
            subprocess.run(["ip", "netns", "del", NAMESPACE])

    print(f"\nmedian over {args.rounds} rounds ({args.cpus} vCPUs, iperf3 "
          f"{args.runtime} s, Mbit/s):")
    for backend in backends:
        for direction in DIRECTIONS:
            vessel = statistics.median(results[("vessel", backend, direction)])
            qemu = statistics.median(results[("qemu", backend, direction)])
            print(f"  {backend:4s} {direction:14s} vessel {vessel:8.1f}  "
                  f"qemu {qemu:8.1f}  vessel/qemu {vessel / qemu:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
