#!/usr/bin/env python3
"""virtio-net TCP throughput of vessel beside QEMU's virtio-net-pci, in one run.

Each round boots the default guest from its Debian image (read-only root,
2 vCPUs) under vessel and under QEMU -M pc (both -enable-kvm), once with
user-mode networking (libslirp, a port forward to the guest) and once with
a TAP device (in a network namespace the benchmark makes; QEMU with
vhost=off, so both VMMs move the frames in userspace), and runs iperf3:
the server in the guest, the client on the host, one run host to guest and
one reversed (guest to host). With --latency it also times request and
echo over one TCP connection (TCP_NODELAY): the round trip through the
VMM's network path, which throughput alone does not show.

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    tools/emuhost/run --memory 4G --timeout 3600 -- tools/bench/net_compare.py --rounds 3
"""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

from guest_crash import GuestCrashed, kernel_crashed, with_new_guests
from vmm_counters import EXIT_EVENTS, ExitCounter, thread_cpu_seconds

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE = "vessel-bench"
TAP = "vbtap0"
HOST_ADDRESS = "192.168.77.1"
GUEST_ADDRESS = "192.168.77.2"
PORT = 5201
ECHO_PORT = 5202
# --latency's request sizes: one byte, one full frame, one TSO-sized chunk.
ECHO_SIZES = (1, 1400, 60000)
# The guest's echo server, beside iperf3's: its root has Debian's python3.
ECHO_SERVER = f"""
import socket
server = socket.create_server(("", {ECHO_PORT}))
while True:
    connection, _ = server.accept()
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := connection.recv(65536):
        connection.sendall(data)
    connection.close()
"""
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


def on_host_side(backend, argv):
    """argv run where the backend's host end is: in the namespace for TAP."""
    return ["ip", "netns", "exec", NAMESPACE] + argv if backend == "tap" else argv


def guest_server(backend):
    """The address a host-side client reaches the guest's servers at: the
    port forwards on 127.0.0.1 for user-mode networking."""
    return "127.0.0.1" if backend == "user" else GUEST_ADDRESS


def vmm_command(vmm, backend, args):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    root = os.path.join(args.guest_dir, "rootfs-tests.ext4")
    address = "dhcp" if backend == "user" else f"{GUEST_ADDRESS}/24"
    command = "iperf3 -s"
    if args.latency:
        script = base64.b64encode(ECHO_SERVER.encode()).decode()
        command = (f"python3 -c \"$(echo {script} | base64 -d)\" & "
                   f"exec {command}")
    command = base64.b64encode(command.encode()).decode()
    cmdline = ("console=ttyS0 reboot=k panic=1 quiet root=/dev/vda ro "
               f"vessel.ip={address} vessel.run64={command}")
    forward = ",".join(f"hostfwd=tcp:127.0.0.1:{port}-:{port}"
                       for port in (PORT, ECHO_PORT))
    if vmm == "vessel":
        net = f"user,{forward}" if backend == "user" else f"tap,ifname={TAP}"
        argv = [args.vessel, "run", "--no-reboot", "--kernel", kernel, "--initrd", initrd,
                "--memory", "512M", "--cpus", str(args.cpus),
                "--disk", f"{root},readonly", "--net", net, "--cmdline", cmdline]
    else:
        netdev = (f"user,id=n0,{forward}" if backend == "user" else
                  f"tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=off")
        # debug-threads names the vCPU threads for thread_cpu_seconds.
        argv = ["qemu-system-x86_64", "-name", "bench,debug-threads=on",
                "-enable-kvm", "-cpu", "host", "-M", "pc",
                "-m", "512M", "-smp", str(args.cpus), "-nodefaults",
                "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                "-drive", f"file={root},format=raw,if=none,id=root,readonly=on",
                "-device", "virtio-blk-pci,drive=root",
                "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    return on_host_side(backend, argv)


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


def tap_frames():
    """{"from": (frames, bytes), "to": (frames, bytes)}: what the TAP has
    carried from the guest (the VMM's writes, the kernel's receive side)
    and to it; AttemptFailed when a counter cannot be read. A guest
    whose TCP sends smaller TSO frames pays the per-frame cost (a chain,
    a kick or an interrupt, an exit) more often per byte; the mean size
    shows how much its TCP put in each frame."""
    names = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")
    paths = [f"/sys/class/net/{TAP}/statistics/{name}" for name in names]
    result = subprocess.run(on_host_side("tap", ["cat"] + paths),
                            capture_output=True)
    try:
        rx_packets, rx_bytes, tx_packets, tx_bytes = map(int, result.stdout.split())
    except ValueError:
        raise AttemptFailed(f"reading the TAP's counters: "
                            f"{result.stderr.decode(errors='replace').strip()}")
    return {"from": (rx_packets, rx_bytes), "to": (tx_packets, tx_bytes)}


class AttemptFailed(Exception):
    """One try of a host-side client failed; the message says how."""


def in_three_attempts(what, console, attempt):
    """attempt()'s result; a try that raises AttemptFailed (the guest's
    server may still be settling) is made again, twice at most, each
    failure reported with the end of the guest's console. GuestCrashed
    when the guest's kernel crashed, RuntimeError after three failures."""
    for number in range(3):
        try:
            return attempt()
        except AttemptFailed as failure:
            error = str(failure)
        if console.crashed():
            raise GuestCrashed(f"the guest kernel crashed during {what}")
        print(f"{what}: attempt {number + 1} failed: {error}\n"
              f"the end of the guest's console:\n{console.tail(1500)}",
              file=sys.stderr, flush=True)
        time.sleep(2)
    raise RuntimeError(f"{what} failed three times")


def sender_figures(report, reverse):
    """{figure: value} of the sending side's TCP from iperf3's JSON report:
    its retransmits and its largest congestion window (KiB), which
    throughput alone hides: a sender that lost frames, or one that never
    opened its window. Reversed, the sender is the guest's server, whose
    window is only in its own text report (--get-server-output): the
    interval lines end in "<retransmits> <window> <unit>"."""
    figures = {"retransmits": report["end"]["sum_sent"].get("retransmits", 0)}
    if not reverse:
        figures["cwnd"] = report["end"]["streams"][0]["sender"]["max_snd_cwnd"] / 1024
        return figures
    units = {"KBytes": 1, "MBytes": 1024, "GBytes": 1024 * 1024}
    windows = [float(fields[-2]) * units[fields[-1]]
               for fields in map(str.split, report["server_output_text"].splitlines())
               if len(fields) > 2 and fields[-1] in units and "sec" in fields]
    figures["cwnd"] = max(windows, default=0)
    return figures


def iperf(backend, reverse, args, console, pid):
    """(Mbit/s the receiving side saw, {exit figure: per MB moved} or None
    without --exits, {figure: value}: sender_figures, the VMM's CPU
    seconds per GB moved, "vcpu" and "other" as thread_cpu_seconds, and
    over TAP the frames per MB moved and their mean size in bytes,
    "frames from"/"size from" the guest and "frames to"/"size to" it), in
    three attempts (in_three_attempts)."""
    argv = ["iperf3", "-c", guest_server(backend), "-p", str(PORT),
            "-t", str(args.runtime), "-J"]
    if reverse:
        argv += ["--get-server-output", "-R"]
    argv = on_host_side(backend, argv)

    def attempt():
        counter = ExitCounter(pid) if args.exits else None
        try:
            frames_before = tap_frames() if backend == "tap" else None
            cpu_before = thread_cpu_seconds(pid)
            result = subprocess.run(argv, capture_output=True,
                                    timeout=args.runtime + 60)
            cpu_after = thread_cpu_seconds(pid)
            frames_after = tap_frames() if backend == "tap" else None
            report = json.loads(result.stdout)
            received = report["end"]["sum_received"]
            exits = None
            megabytes = received["bytes"] / 1e6
            if counter:
                exits = {name: count / megabytes
                         for name, count in counter.stop().items()}
            figures = sender_figures(report, reverse)
            for kind in cpu_before:
                figures[kind] = (cpu_after[kind] - cpu_before[kind]) / megabytes * 1e3
            if frames_before:
                for way in ("from", "to"):
                    count, carried = (after - before for after, before in
                                      zip(frames_after[way], frames_before[way]))
                    figures[f"frames {way}"] = count / megabytes
                    figures[f"size {way}"] = carried / count if count else 0
            return received["bits_per_second"] / 1e6, exits, figures
        except subprocess.TimeoutExpired:
            raise AttemptFailed("timed out")
        except (ValueError, KeyError, ZeroDivisionError):
            raise AttemptFailed((result.stdout.decode(errors="replace")[-500:] +
                                 result.stderr.decode(errors="replace")[-500:]).strip())
        finally:
            if counter and counter.perf.poll() is None:
                counter.perf.kill()
                counter.perf.wait()

    return in_three_attempts(f"iperf3 {' '.join(argv[-6:])}", console, attempt)


def echo_latency(backend, console):
    """{request size: median round trip in µs} over one connection to the
    guest's echo server, 1000 requests of each size after 100 unmeasured
    ones, in three attempts (in_three_attempts)."""
    server = guest_server(backend)
    program = f"""
import socket, statistics, time
connection = socket.create_connection(("{server}", {ECHO_PORT}), timeout=30)
connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for size in {ECHO_SIZES!r}:
    request = bytes(size)
    times = []
    for i in range(1100):
        start = time.perf_counter()
        connection.sendall(request)
        echoed = 0
        while echoed < size:
            chunk = connection.recv(65536)
            if not chunk:
                raise SystemExit("the echo server closed the connection")
            echoed += len(chunk)
        if i >= 100:
            times.append(time.perf_counter() - start)
    print(size, statistics.median(times) * 1e6)
"""
    argv = on_host_side(backend, [sys.executable, "-c", program])

    def attempt():
        try:
            result = subprocess.run(argv, capture_output=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise AttemptFailed("timed out")
        if result.returncode != 0:
            raise AttemptFailed(result.stderr.decode(errors="replace")[-500:].strip())
        return {int(size): float(micro) for size, micro in
                (line.split() for line in result.stdout.decode().splitlines())}

    return in_three_attempts("the echo test", console, attempt)


def measure_once(vmm, backend, args):
    """({direction: (Mbit/s, exit figures or None)}, {request size: µs} or
    None without --latency) for one boot of one VMM with one backend."""
    process = subprocess.Popen(vmm_command(vmm, backend, args),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    console = Console(process)
    try:
        console.wait_for("Server listening on", args.boot_timeout)
        # `ip netns exec` execs the VMM: with either backend the process
        # is the VMM's.
        figures = {direction: iperf(backend, direction == "guest-to-host", args,
                                    console, process.pid)
                   for direction in DIRECTIONS}
        latency = echo_latency(backend, console) if args.latency else None
        # A guest that died at the end of a run gives no figure to trust.
        if console.crashed():
            raise GuestCrashed("the guest kernel crashed during the measurements")
        return figures, latency
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


def huge_page_policy():
    """The host's transparent huge page policies, which decide whether each
    VMM's guest RAM gets 2 MiB pages: QEMU's anonymous memory follows
    "enabled", vessel's memfd follows "shmem_enabled"."""
    policies = []
    for name in ("enabled", "shmem_enabled"):
        try:
            with open(f"/sys/kernel/mm/transparent_hugepage/{name}") as knob:
                policies.append(f"{name} {knob.read().split('[')[1].split(']')[0]}")
        except (OSError, IndexError):
            policies.append(f"{name} unknown")
    return ", ".join(policies)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--runtime", type=int, default=10)
    parser.add_argument("--boot-timeout", type=float, default=600)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    parser.add_argument("--exits", action="store_true",
                        help="also count KVM exits, interrupts, MMIO writes "
                        "and vCPU wakeups per MB moved (needs perf)")
    parser.add_argument("--latency", action="store_true",
                        help="also time request and echo round trips "
                        f"of {', '.join(map(str, ECHO_SIZES))} bytes")
    args = parser.parse_args()
    if args.exits and not shutil.which("perf"):
        parser.error("--exits needs perf (Debian's linux-perf package)")
    backends = args.backends.split(",")
    if any(backend not in BACKENDS for backend in backends):
        parser.error(f"--backends: a comma-separated subset of {', '.join(BACKENDS)}")
    if "tap" in backends:
        make_namespace()
    print(f"host huge pages: {huge_page_policy()}", flush=True)

    results = {(vmm, backend, direction): []
               for vmm in ("vessel", "qemu") for backend in backends
               for direction in DIRECTIONS}
    exit_results = {key: [] for key in results}
    cpu_results = {key: [] for key in results}
    latency_results = {(vmm, backend): [] for vmm in ("vessel", "qemu")
                       for backend in backends}
    try:
        for round_number in range(args.rounds):
            for backend in backends:
                # Both VMMs or neither: a round counts for a backend only
                # with a figure of each from the same emulated host.
                try:
                    pair = {vmm: measure(vmm, backend, args)
                            for vmm in ("vessel", "qemu")}
                except RuntimeError as failure:
                    print(f"round {round_number + 1} {backend}: not counted, "
                          f"{failure}", flush=True)
                    continue
                for vmm, (figures, latency) in pair.items():
                    for direction, (value, exits, _) in figures.items():
                        results[(vmm, backend, direction)].append(value)
                        if exits:
                            exit_results[(vmm, backend, direction)].append(exits)
                    print(f"round {round_number + 1} {vmm:6s} {backend:4s} " +
                          "  ".join(f"{direction} {value:8.1f}"
                                    for direction, (value, _, _) in figures.items()),
                          flush=True)
                    for direction, (_, _, more) in figures.items():
                        cpu_results[(vmm, backend, direction)].append(more)
                        print(f"    {direction}: sender's retransmits "
                              f"{more['retransmits']}, largest window "
                              f"{more['cwnd']:.0f} KiB; CPU s per GB: vCPU "
                              f"threads {more['vcpu']:.2f}, other threads "
                              f"{more['other']:.2f}", flush=True)
                        if "frames from" in more:
                            print(f"    {direction}: TAP frames per MB from the "
                                  f"guest {more['frames from']:.2f} "
                                  f"({more['size from']:,.0f} B each), to it "
                                  f"{more['frames to']:.2f} "
                                  f"({more['size to']:,.0f} B each)", flush=True)
                    for direction, (_, exits, _) in figures.items():
                        if exits:
                            print(f"    {direction} per MB: " + "  ".join(
                                f"{name} {count:.2f}"
                                for name, count in exits.items()), flush=True)
                    if latency:
                        latency_results[(vmm, backend)].append(latency)
                        print("    round trip µs: " + "  ".join(
                            f"{size} B {micro:.0f}"
                            for size, micro in latency.items()), flush=True)
    finally:
        if "tap" in backends:
            subprocess.run(["ip", "netns", "del", NAMESPACE])

    counted = {backend: len(results[("vessel", backend, DIRECTIONS[0])])
               for backend in backends}
    backends = [backend for backend in backends if counted[backend]]
    if not backends:
        print("no round measured both VMMs", file=sys.stderr)
        return 1
    print(f"\nmedian over the rounds counted ({args.cpus} vCPUs, iperf3 "
          f"{args.runtime} s, Mbit/s):")
    for backend in backends:
        print(f"  {backend:4s} {counted[backend]} of {args.rounds} rounds")
    for backend in backends:
        for direction in DIRECTIONS:
            vessel = statistics.median(results[("vessel", backend, direction)])
            qemu = statistics.median(results[("qemu", backend, direction)])
            print(f"  {backend:4s} {direction:14s} vessel {vessel:8.1f}  "
                  f"qemu {qemu:8.1f}  vessel/qemu {vessel / qemu:5.2f}")
    print("\nmedian CPU seconds per GB moved, the VMM's vCPU threads (with "
          "the guest's own time) and its other threads (vessel/qemu: below "
          "1.00 is less for vessel):")
    for backend in backends:
        for direction in DIRECTIONS:
            figures = []
            for kind in ("vcpu", "other"):
                vessel, qemu = (statistics.median(
                    more[kind] for more in cpu_results[(vmm, backend, direction)])
                    for vmm in ("vessel", "qemu"))
                figures.append(f"{kind} {vessel:.2f}/{qemu:.2f}"
                               f" = {vessel / qemu if qemu else float('inf'):.2f}")
            print(f"  {backend:4s} {direction:14s} " + "  ".join(figures))
    if "tap" in backends:
        print("\nmedian TAP frames per MB moved and their mean size, from the "
              "guest and to it (vessel/qemu):")
        for direction in DIRECTIONS:
            def median(vmm, figure):
                return statistics.median(
                    more[figure] for more in cpu_results[(vmm, "tap", direction)])
            figures = [f"{way} {median('vessel', f'frames {way}'):.2f}/"
                       f"{median('qemu', f'frames {way}'):.2f} "
                       f"({median('vessel', f'size {way}'):,.0f}/"
                       f"{median('qemu', f'size {way}'):,.0f} B)"
                       for way in ("from", "to")]
            print(f"  tap  {direction:14s} " + "  ".join(figures))
    if args.exits:
        print("\nmedian per MB moved (vessel/qemu: below 1.00 is fewer for vessel):")
        for backend in backends:
            for direction in DIRECTIONS:
                figures = []
                for name in EXIT_EVENTS.values():
                    vessel = statistics.median(
                        exits[name] for exits in
                        exit_results[("vessel", backend, direction)])
                    qemu = statistics.median(
                        exits[name] for exits in
                        exit_results[("qemu", backend, direction)])
                    figures.append(f"{name} {vessel:.2f}/{qemu:.2f}"
                                   f" = {vessel / qemu if qemu else float('inf'):.2f}")
                print(f"  {backend:4s} {direction:14s} " + "  ".join(figures))
    if args.latency:
        print("\nmedian round trip, µs (vessel/qemu: below 1.00 is faster "
              "for vessel):")
        for backend in backends:
            figures = []
            for size in ECHO_SIZES:
                vessel = statistics.median(
                    latency[size] for latency in latency_results[("vessel", backend)])
                qemu = statistics.median(
                    latency[size] for latency in latency_results[("qemu", backend)])
                figures.append(f"{size} B {vessel:.0f}/{qemu:.0f} = {vessel / qemu:.2f}")
            print(f"  {backend:4s} " + "  ".join(figures))


if __name__ == "__main__":
    sys.exit(main())
