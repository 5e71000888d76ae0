#!/usr/bin/env python3
"""Snapshot and restore of a Linux guest, vessel beside QEMU, in one run.

For each memory size, boots the default guest (guests/out: kernel,
initramfs, the same command line and vCPUs) under vessel and under QEMU
(`-M pc -enable-kvm -nodefaults -serial stdio`, guest RAM a
`memory-backend-memfd` as vessel's is). The guest fills a tmpfs file of
half its RAM with non-zero data (a 1 MiB random seed repeated), then prints
a counter line (`tick N`) on its console every 100 ms. Then:

- vessel: `vessel pause`, then `vessel snapshot --api-sock S DIR` timed
  (the client's whole run: the request, the state, the memory image and its
  fsyncs), its size on disk (the allocated blocks of DIR's files: `memory`
  is sparse), `vessel stop`. Then `vessel restore DIR`, lazy, lazy with
  `--skip-memory-check` ("no check") and `--eager`, each timed from the
  process's start to the first console byte after the restore and to the
  next whole counter line. A third restore,
  `vessel serve` and `PUT /api/v1/vm/restore`, gives the moment the VM
  runs: from the process's start to the API's answer, which comes once the
  vCPUs have been let go.
- QEMU: QMP `stop`, `migrate-set-parameters` (max-bandwidth unlimited, as
  for a save to a file), `migrate` to `exec:cat > FILE` (QEMU 7.2 has no
  `file:` migration), timed from the request to `query-migrate` reading
  `completed`; FILE's size on disk; `quit`. Then a new QEMU with
  `-incoming defer`: over QMP, `migrate-incoming` from `exec:cat FILE`, the
  MIGRATION event `completed`, then `cont` (a VM saved paused stays paused
  on the destination), timed from the process's start to `cont`'s answer
  (the VM runs), the first console byte and the next whole counter line.

The guest's first instruction after a restore is not observable from
outside; the closest moments are the API's answer (vessel) and `cont`'s
answer (QEMU), printed as "runs", and the first console byte. QEMU keeps
the guest's clock where it stopped, so its first byte also waits for the
rest of the guest's 100 ms sleep; vessel moves the guest's clock on by the
time passed, so the guest's timer is due at once. The next whole line
after the restore is checked to carry the counter's next value.

Snapshots and QEMU's files go to --workdir (default: a directory in
$TMPDIR or /tmp): inside the emulated host that is its tmpfs, so the
figures are the VMMs' own work and not a disk's or the 9p share's.

Targets: vessel's restore at least 10x faster than QEMU's (QEMU/vessel of
10 or more), and nearly independent of memory size (4 GiB at most 1.5x
the 256 MiB figure).

Run it where /dev/kvm boots Linux, e.g. inside the emulated AMD-V host,
with memory for the largest guest, its snapshot and its restored copy:
    tools/emuhost/run --memory 12G --timeout 5400 -- \\
        tools/bench/snapshot_compare.py --sizes 256M,1G,4G
"""
import argparse
import base64
import http.client
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILLED = b"vessel-bench: filled"
TICK = re.compile(rb"^tick (\d+)\r?$")


class Failed(Exception):
    """A measurement that did not complete; the run goes on."""


def size_mib(text):
    units = {"M": 1, "G": 1024}
    if not text or text[-1].upper() not in units or not text[:-1].isdigit():
        raise argparse.ArgumentTypeError(f"{text}: a size is NM or NG")
    return int(text[:-1]) * units[text[-1].upper()]


def guest_command(mib):
    """The guest's script: fill half of RAM, then count on the console."""
    half = mib // 2
    script = f"""set -e
mkdir -p /fill
mount -t tmpfs -o size={half + 4}m tmpfs /fill
dd if=/dev/urandom of=/run/seed bs=1048576 count=1 2>/dev/null
i=0
while [ $i -lt {half} ]; do cat /run/seed; i=$((i + 1)); done >/fill/data
echo "vessel-bench: filled {half} MiB"
i=0
while :; do echo "tick $i"; i=$((i + 1)); sleep 0.1; done
"""
    encoded = base64.b64encode(script.encode()).decode()
    return f"console=ttyS0 reboot=k panic=1 quiet vessel.run64={encoded}"


def disk_usage(path):
    """Bytes allocated to the files at or below path."""
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += os.stat(os.path.join(directory, name)).st_blocks * 512
    return total


def kill(process):
    if process and process.poll() is None:
        process.kill()
    if process:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def start(argv):
    """A VMM with its console on a pipe and its messages in a file."""
    errors = tempfile.TemporaryFile()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=errors)
    process.errors = errors
    return process


def messages(process):
    process.errors.seek(0)
    return process.errors.read().decode(errors="replace").strip()[-400:]


class Console:
    """A VMM's stdout (the guest's serial console), read as it comes, with
    the moment of its first byte."""

    def __init__(self, process, started):
        self.process = process
        self.started = started
        self.data = b""
        self.first_byte = None

    def read(self, until, deadline, what):
        """Reads until until(data) is not None and returns that."""
        while True:
            found = until(self.data)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"{what}: nothing within the timeout; console ends "
                             f"{self.tail()!r}")
            ready, _, _ = select.select([self.process.stdout], [], [], min(left, 1))
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                self.process.wait(timeout=10)
                raise Failed(f"{what}: the VMM ended (status "
                             f"{self.process.returncode}): {messages(self.process)} "
                             f"console ends {self.tail()!r}")
            if self.first_byte is None:
                self.first_byte = time.monotonic() - self.started
            self.data += chunk

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                break
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                break
            self.data += chunk

    def tail(self):
        return self.data[-300:].decode(errors="replace")


def ticks(data):
    return [int(match.group(1)) for line in data.split(b"\n")[:-1]
            if (match := TICK.match(line))]


def counting(data):
    """Two whole counter lines after the fill line: the last one's value."""
    index = data.find(FILLED)
    if index < 0:
        return None
    seen = ticks(data[index:])
    return seen[-1] if len(seen) >= 2 else None


def last_tick(data):
    """The counter's last value the guest began printing before its pause
    (a partial last line counts)."""
    lines = data.split(b"\n")
    value = None
    for line in lines:
        match = re.match(rb"^tick (\d+)", line)
        if match:
            value = int(match.group(1))
    return value


def next_line(data):
    """The first whole counter line of a console (a partial line the
    restore began in does not match)."""
    seen = ticks(data)
    return seen[0] if seen else None


def check_counter(before, after):
    if before is not None and not before < after <= before + 3:
        raise Failed(f"the guest's counter went from {before} to {after}")


class UnixHttp(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def wait_for_socket(path, process, deadline):
    while not os.path.exists(path):
        if process.poll() is not None:
            raise Failed(f"the VMM ended (status {process.returncode}) before "
                         f"its socket: {messages(process)}")
        if time.monotonic() > deadline:
            raise Failed(f"no socket at {path}")
        time.sleep(0.002)


def run_checked(argv, timeout):
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failed(f"{' '.join(argv[1:3])}: no answer in {timeout} s")
    if result.returncode:
        raise Failed(f"{' '.join(argv[1:3])}: status {result.returncode}: "
                     f"{(result.stdout + result.stderr).decode(errors='replace').strip()}")


class Qmp:
    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb")
        self.events = []
        self._read()  # the greeting
        self.execute("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise Failed("QEMU closed QMP")
        return json.loads(line)

    def execute(self, command, arguments=None):
        message = {"execute": command}
        if arguments is not None:
            message["arguments"] = arguments
        self.file.write(json.dumps(message).encode() + b"\n")
        self.file.flush()
        while True:
            answer = self._read()
            if "event" in answer:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise Failed(f"QMP {command}: {answer['error'].get('desc')}")
            return answer.get("return")

    def wait_event(self, predicate, deadline):
        while True:
            for index, event in enumerate(self.events):
                if predicate(event):
                    return self.events.pop(index)
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                self.events.append(self._read())
            except socket.timeout:
                raise Failed("no QMP event within the timeout")


def vessel_run_argv(args, mib, sock):
    return [args.vessel, "run", "--kernel", os.path.join(args.guest_dir, "vmlinuz"),
            "--initrd", os.path.join(args.guest_dir, "initramfs.cpio.gz"),
            "--memory", f"{mib}M", "--cpus", str(args.cpus), "--api-sock", sock,
            "--cmdline", guest_command(mib)]


def qemu_argv(args, mib, sock):
    return ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host",
            "-M", "pc,memory-backend=ram", "-m", f"{mib}M",
            "-object", f"memory-backend-memfd,id=ram,size={mib}M",
            "-smp", str(args.cpus), "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio",
            "-qmp", f"unix:{sock},server=on,wait=off",
            "-kernel", os.path.join(args.guest_dir, "vmlinuz"),
            "-initrd", os.path.join(args.guest_dir, "initramfs.cpio.gz"),
            "-append", guest_command(mib)]


def boot_and_fill(argv, mib, args):
    """Boots a guest and waits for its counter: (process, console)."""
    process = start(argv)
    console = Console(process, time.monotonic())
    deadline = time.monotonic() + args.timeout + args.fill_timeout * mib / 1024
    try:
        console.read(counting, deadline, "boot and fill")
    except BaseException:
        kill(process)
        raise
    return process, console


def vessel_snapshot(args, mib, work):
    """Boots, fills, snapshots: (seconds, bytes on disk, last tick)."""
    sock = os.path.join(work, "vessel.sock")
    snap = os.path.join(work, "snapshot")
    process, console = boot_and_fill(vessel_run_argv(args, mib, sock), mib, args)
    try:
        run_checked([args.vessel, "pause", "--api-sock", sock], args.timeout)
        console.drain(0.3)
        before = last_tick(console.data)
        started = time.monotonic()
        run_checked([args.vessel, "snapshot", "--api-sock", sock, snap],
                    args.timeout)
        taken = time.monotonic() - started
        run_checked([args.vessel, "stop", "--api-sock", sock], args.timeout)
        process.wait(timeout=args.timeout)
        return taken, disk_usage(snap), before
    finally:
        kill(process)


def vessel_restore(args, work, before, *options):
    """`vessel restore` with options: (None, first byte, next line) in
    seconds."""
    argv = [args.vessel, "restore", os.path.join(work, "snapshot"), *options]
    process = start(argv)
    console = Console(process, time.monotonic())
    try:
        value = console.read(next_line, time.monotonic() + args.timeout, "restore")
        check_counter(before, value)
        return None, console.first_byte, time.monotonic() - console.started
    finally:
        kill(process)


def vessel_api_restore(args, work, before):
    """`vessel serve` and the API's restore: (runs, first byte, next line)."""
    sock = os.path.join(work, "serve.sock")
    process = start([args.vessel, "serve", "--api-sock", sock])
    console = Console(process, time.monotonic())
    try:
        deadline = time.monotonic() + args.timeout
        wait_for_socket(sock, process, deadline)
        answer = {}

        def request():
            # In a thread: the guest's first bytes may come before the answer.
            try:
                api = UnixHttp(sock, args.timeout)
                body = json.dumps({"source": os.path.join(work, "snapshot")})
                api.request("PUT", "/api/v1/vm/restore", body,
                            {"Content-Type": "application/json"})
                response = api.getresponse()
                answer["runs"] = time.monotonic() - console.started
                answer["status"] = response.status
                answer["text"] = response.read()
            except (OSError, http.client.HTTPException) as error:
                answer["error"] = error
        def refused():
            if "error" in answer:
                raise Failed(f"PUT /api/v1/vm/restore: {answer['error']}")
            if answer.get("status", 0) >= 300:
                raise Failed(f"PUT /api/v1/vm/restore: {answer['status']} "
                             f"{answer.get('text')!r}")

        def until(data):
            refused()
            return next_line(data)
        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        value = console.read(until, deadline, "restore")
        line = time.monotonic() - console.started
        thread.join(max(deadline - time.monotonic(), 0))
        refused()
        if "runs" not in answer:
            raise Failed("PUT /api/v1/vm/restore: no answer")
        check_counter(before, value)
        return answer["runs"], console.first_byte, line
    finally:
        if os.path.exists(sock):
            os.unlink(sock)
        kill(process)


def qemu_save(args, mib, work):
    """Boots, fills, migrates to a file: (seconds, bytes on disk, last tick)."""
    sock = os.path.join(work, "qmp.sock")
    path = os.path.join(work, "qemu.migration")
    process, console = boot_and_fill(qemu_argv(args, mib, sock), mib, args)
    try:
        qmp = Qmp(sock, args.timeout)
        qmp.execute("stop")
        console.drain(0.3)
        before = last_tick(console.data)
        qmp.execute("migrate-set-parameters", {"max-bandwidth": 1 << 40})
        started = time.monotonic()
        qmp.execute("migrate", {"uri": f"exec:cat > {path}"})
        deadline = started + args.timeout
        while True:
            status = qmp.execute("query-migrate").get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled") or time.monotonic() > deadline:
                raise Failed(f"migrate to {path}: {status}")
            time.sleep(0.005)
        taken = time.monotonic() - started
        qmp.execute("quit")
        process.wait(timeout=args.timeout)
        return taken, disk_usage(path), before
    finally:
        kill(process)


def qemu_restore(args, mib, work, before):
    """`-incoming defer`, migrate-incoming, cont: (runs, first byte, next
    line) in seconds from QEMU's start."""
    sock = os.path.join(work, "qmp-in.sock")
    path = os.path.join(work, "qemu.migration")
    process = start(qemu_argv(args, mib, sock) + ["-incoming", "defer"])
    console = Console(process, time.monotonic())
    try:
        deadline = time.monotonic() + args.timeout
        wait_for_socket(sock, process, deadline)
        qmp = None
        while qmp is None:
            try:
                qmp = Qmp(sock, args.timeout)
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise Failed("QMP refused the connection")
                time.sleep(0.002)
        qmp.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "events", "state": True}]})
        qmp.execute("migrate-incoming", {"uri": f"exec:cat {path}"})
        event = qmp.wait_event(
            lambda e: e.get("event") == "MIGRATION" and
            e["data"]["status"] in ("completed", "failed", "cancelled"), deadline)
        if event["data"]["status"] != "completed":
            raise Failed(f"incoming migration: {event['data']['status']}")
        qmp.execute("cont")
        runs = time.monotonic() - console.started
        value = console.read(next_line, deadline, "restore")
        check_counter(before, value)
        return runs, console.first_byte, time.monotonic() - console.started
    finally:
        if os.path.exists(sock):
            os.unlink(sock)
        kill(process)


def attempt(label, function, *arguments):
    try:
        return function(*arguments)
    except (Failed, OSError, ValueError, KeyError, http.client.HTTPException,
            subprocess.TimeoutExpired) as error:
        print(f"    {label}: failed: {error}", flush=True)
        return None


def one_size(args, mib, figures):
    work = tempfile.mkdtemp(prefix="vessel-snapshot-compare-", dir=args.workdir)
    try:
        label = f"{mib}M"
        saved = attempt(f"{label} vessel snapshot", vessel_snapshot, args, mib, work)
        if saved:
            figures["vessel save"].append(saved[:2])
            print(f"  {label} vessel snapshot {saved[0]:8.3f} s, "
                  f"{saved[1] / 2**20:7.1f} MiB", flush=True)
            for name, function, extra in (
                    ("vessel lazy", vessel_restore, ()),
                    ("vessel no check", vessel_restore,
                     ("--skip-memory-check",)),
                    ("vessel eager", vessel_restore, ("--eager",)),
                    ("vessel API lazy", vessel_api_restore, ())):
                result = attempt(f"{label} {name} restore", function, args, work,
                                 saved[2], *extra)
                if result:
                    figures[name].append(result)
                    print(f"  {label} {name:15s} restore: {describe(result)}",
                          flush=True)
        shutil.rmtree(os.path.join(work, "snapshot"), ignore_errors=True)
        saved = attempt(f"{label} QEMU save", qemu_save, args, mib, work)
        if saved:
            figures["QEMU save"].append(saved[:2])
            print(f"  {label} QEMU   save     {saved[0]:8.3f} s, "
                  f"{saved[1] / 2**20:7.1f} MiB", flush=True)
            result = attempt(f"{label} QEMU restore", qemu_restore, args, mib, work,
                             saved[2])
            if result:
                figures["QEMU"].append(result)
                print(f"  {label} {'QEMU':15s} restore: {describe(result)}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(result):
    runs = "" if result[0] is None else f"runs {result[0]:7.3f} s, "
    return f"{runs}first byte {result[1]:7.3f} s, next line {result[2]:7.3f} s"


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def seconds(value):
    return "      -" if value is None else f"{value:7.3f}"


def ratio(theirs, ours):
    return "    -" if theirs is None or not ours else f"{theirs / ours:5.1f}"


def report(args, sizes, all_figures):
    print(f"\nMedians of {args.rounds} round(s), {args.cpus} vCPU(s), seconds; "
          "'runs' = the VM runs again (vessel: the API's restore answer; QEMU: "
          "cont's answer), the closest observable to the first instruction; "
          "restore times from the process's start.")
    print(f"{'size':>5} {'VMM':16s} {'save s':>7} {'MiB':>7}   {'runs':>7} "
          f"{'1st byte':>8} {'next line':>9}   QEMU/this: {'runs':>5} "
          f"{'byte':>5} {'line':>5}")
    for mib in sorted(sizes):
        figures = all_figures[mib]
        qemu = [median([r[i] for r in figures["QEMU"]]) for i in range(3)]
        for name, save in (("vessel lazy", "vessel save"),
                           ("vessel no check", None), ("vessel eager", None),
                           ("vessel API lazy", None), ("QEMU", "QEMU save")):
            values = [median([r[i] for r in figures[name]]) for i in range(3)]
            if save and figures[save]:
                taken = f"{median([s[0] for s in figures[save]]):7.3f}"
                size = f"{median([s[1] for s in figures[save]]) / 2**20:7.1f}"
            else:
                taken = size = "       "
            ratios = "" if name == "QEMU" else (
                f"   {'':10s} {ratio(qemu[0], values[0])} "
                f"{ratio(qemu[1], values[1])} {ratio(qemu[2], values[2])}")
            print(f"{mib:>4}M {name:16s} {taken} {size}   {seconds(values[0])} "
                  f"{seconds(values[1]):>8} {seconds(values[2]):>9}{ratios}")
    if len(sizes) > 1:
        small, large = all_figures[min(sizes)], all_figures[max(sizes)]
        print(f"\nvessel restore, {max(sizes)}M / {min(sizes)}M (target at most 1.5):")
        for name in ("vessel lazy", "vessel no check", "vessel eager",
                     "vessel API lazy"):
            parts = []
            for index, what in ((0, "runs"), (1, "first byte"), (2, "next line")):
                a = median([r[index] for r in large[name]])
                b = median([r[index] for r in small[name]])
                if a is not None and b:
                    parts.append(f"{what} {a / b:5.2f}")
            print(f"  {name:16s} {', '.join(parts) if parts else 'no figures'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sizes", default="256M,1G,4G",
                        help="guest memory sizes, comma-separated (NM or NG)")
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds for a boot, a request or a restore")
    parser.add_argument("--fill-timeout", type=float, default=300,
                        help="more seconds for the guest's fill, per GiB of RAM")
    parser.add_argument("--workdir", default=None,
                        help="where snapshots and QEMU's files go (default: $TMPDIR or /tmp)")
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()
    try:
        sizes = [size_mib(size) for size in args.sizes.split(",")]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))

    names = ("vessel save", "vessel lazy", "vessel no check", "vessel eager",
             "vessel API lazy",
             "QEMU save", "QEMU")
    figures = {mib: {name: [] for name in names} for mib in sizes}
    print(f"snapshots in {args.workdir or tempfile.gettempdir()}", flush=True)
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}", flush=True)
        for mib in sizes:
            one_size(args, mib, figures[mib])
    report(args, sizes, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
