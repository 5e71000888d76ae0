#!/usr/bin/env python3
"""Pause and resume latency of vessel beside QEMU, in one run.

Boots the default guest (kernel and initramfs, the guest's command
`sleep`, or a busy loop on every vCPU with --busy) under vessel with its
control API (`--api-sock`) and under QEMU (`-M pc`, QMP on a Unix socket),
one after the other in each round. Once the guest's userspace is up, it
times each request from sending it to its answer on a connection opened
beforehand: vessel's `PUT /api/v1/vm/pause` and `/resume`, QEMU's QMP
`stop` and `cont` (both answer once every vCPU has stopped or runs
again). It also reads each VMM's own resident memory with the guest up
(vessel with its API open), guest RAM left out (a memfd, RssShmem): as
RssAnon + RssFile, and as its private part, which leaves out the shared
libraries' pages that every process mapping them shares.

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run -- tools/bench/pause_compare.py --cpus 1
    tools/emuhost/run -- tools/bench/pause_compare.py --cpus 4
"""
import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MARKER = b"vessel-guest: userspace up"
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class HttpOverUnix:
    """A keep-alive HTTP/1.1 connection to vessel's API socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.buffer = b""

    def request(self, method, path):
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                          f"Content-Length: 0\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self._recv()
        self.buffer = rest[length:]
        status = int(head.split()[1])
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {rest[:length]!r}")
        return rest[:length]

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("vessel closed the API connection")
        return chunk


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self):
        while True:
            message = json.loads(self.file.readline())
            if "event" not in message:
                return message

    def execute(self, command):
        self.file.write(json.dumps({"execute": command}).encode() + b"\n")
        self.file.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"QMP {command}: {answer['error']}")


def wait_for_marker(process, timeout):
    seen, start = b"", time.monotonic()
    while MARKER not in seen:
        left = start + timeout - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no userspace within {timeout} s")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError("the VMM ended early:\n" +
                                   seen.decode(errors="replace")[-2000:])
            seen += chunk


def own_rss_kib(pid):
    """The VMM's own resident memory, guest RAM (a memfd: RssShmem) left
    out, two ways: (RssAnon + RssFile, its private part). The shared
    libraries' pages in the first are in every process that maps them;
    the second is what one more VM adds to the host."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _, value = line.partition(":")
            if key in ("Private_Clean", "Private_Dirty"):
                fields[key] = int(value.split()[0])
    private = fields["Private_Clean"] + fields["Private_Dirty"] - fields["RssShmem"]
    return fields["RssAnon"] + fields["RssFile"], private


def guest_command(args):
    if args.busy:
        loops = " & ".join(["sh -c 'while :; do :; done'"] * args.cpus)
        return f"vessel.run=sh -c \"{loops} & sleep 3600\""
    return "vessel.run=sleep 3600"


def measure(pause, resume, rounds):
    pauses, resumes = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        pause()
        pauses.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.05)
        start = time.perf_counter()
        resume()
        resumes.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.05)
    return pauses, resumes


def run_vessel(args, workdir):
    sock = os.path.join(workdir, "vessel.sock")
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    argv = [args.vessel, "run", "--kernel", kernel, "--initrd", initrd,
            "--memory", args.memory, "--cpus", str(args.cpus),
            "--api-sock", sock, "--cmdline",
            f"console=ttyS0 reboot=k panic=1 {guest_command(args)}"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_marker(process, args.timeout)
        time.sleep(1)
        api = HttpOverUnix(sock)
        rss = own_rss_kib(process.pid)
        pauses, resumes = measure(lambda: api.request("PUT", "/api/v1/vm/pause"),
                                  lambda: api.request("PUT", "/api/v1/vm/resume"),
                                  args.requests)
        return pauses, resumes, rss
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def run_qemu(args, workdir):
    sock = os.path.join(workdir, "qmp.sock")
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    argv = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M", "pc",
            "-m", args.memory, "-smp", str(args.cpus), "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio",
            "-qmp", f"unix:{sock},server=on,wait=off",
            "-kernel", kernel, "-initrd", initrd, "-append",
            f"console=ttyS0 reboot=k panic=1 {guest_command(args)}"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_marker(process, args.timeout)
        time.sleep(1)
        qmp = Qmp(sock)
        pauses, resumes = measure(lambda: qmp.execute("stop"),
                                  lambda: qmp.execute("cont"), args.requests)
        return pauses, resumes, own_rss_kib(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20,
                        help="pause/resume pairs per boot")
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--busy", action="store_true",
                        help="every vCPU runs a busy loop instead of idling")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()

    figures = {"vessel": ([], [], []), "qemu": ([], [], [])}
    with tempfile.TemporaryDirectory() as workdir:
        for round_number in range(args.rounds):
            for name, run in (("vessel", run_vessel), ("qemu", run_qemu)):
                pauses, resumes, rss = run(args, workdir)
                figures[name][0].extend(pauses)
                figures[name][1].extend(resumes)
                figures[name][2].append(rss)
                print(f"round {round_number + 1} {name:6s} pause median "
                      f"{statistics.median(pauses):7.2f} ms, resume median "
                      f"{statistics.median(resumes):7.2f} ms, own RSS "
                      f"{rss[0] / 1024:5.1f} MiB ({rss[1] / 1024:4.1f} private)",
                      flush=True)

    print(f"\n{args.cpus} vCPU(s), {'busy' if args.busy else 'idle'} guest, "
          f"{args.rounds} rounds of {args.requests} pairs:")
    for index, what in ((0, "pause"), (1, "resume")):
        ours = statistics.median(figures["vessel"][index])
        theirs = statistics.median(figures["qemu"][index])
        print(f"  {what:6s} median vessel {ours:7.2f} ms, QEMU {theirs:7.2f} ms, "
              f"vessel/QEMU {ours / theirs:5.2f}; p90 vessel "
              f"{statistics.quantiles(figures['vessel'][index], n=10)[-1]:7.2f} ms, "
              f"QEMU {statistics.quantiles(figures['qemu'][index], n=10)[-1]:7.2f} ms")
    for index, what in ((0, "RssAnon + RssFile"), (1, "private")):
        ours = statistics.median(rss[index] for rss in figures["vessel"][2])
        theirs = statistics.median(rss[index] for rss in figures["qemu"][2])
        print(f"  own memory with the API open, {what}: vessel "
              f"{ours / 1024:5.1f} MiB, QEMU {theirs / 1024:5.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
