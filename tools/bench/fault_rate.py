#!/usr/bin/env python3
"""How often nested guests crash or stop, and inner hosts stall, in each
configuration of the emulated AMD-V host.

Each configuration (emulator, inner kernel, kvm_amd parameters, CPU model,
TCG options, memory, huge page policy: tools/emuhost/run's options) boots
several inner hosts, in turn with the other configurations, so that a bad
period of the machine hits all of them alike. Inside each inner host this
script boots reproducers again and again, under vessel and under QEMU:
  console  the default guest, 2 vCPUs, writing `seq 1 10000` to its serial
           console (the console order test's guest), --no-reboot;
  tap      the default guest, 2 vCPUs, sending 100 MB (--tap-mb) over TCP to the host
           through a TAP device in a network namespace, --no-reboot;
  plain    the default guest, 2 vCPUs, booting and powering off;
  pause    the default guest, 4 vCPUs, counting on its console every 0.1 s
           with two shell loops spinning, paused and resumed --pause-cycles
           times by its VMM (vessel's control API, QEMU's QMP stop/cont)
           as the snapshot test's guest is.
A boot ends "ok", "crash" (a crash sign on the console, a second boot, or
the VMM ending before the guest's command did), "stop" (the console silent
and, for tap, no bytes arriving for STOP_SECONDS while the VMM runs) or "wrong" (it ended but its output or
transfer is not what it must be). An inner host that stops responding, goes
down or times out is "lost", and every boot it did not run counts as a
fault of its configuration.

Usage, on the build machine (every inner host takes the emulated-host lock
on its own, and releases it before the next):
  tools/bench/fault_rate.py --hosts 3 --boots 4 \\
      --config default \\
      --config 'qemu72=VESSEL_EMUHOST_QEMU=qemu-system-x86_64' \\
      --config "quiet-svm=--kvm-amd-params 'avic=0 vgif=0'"
A configuration is LABEL[=SPEC]: SPEC's words are NAME=VALUE environment
settings (VESSEL_EMUHOST_QEMU) followed by tools/emuhost/run options.
"""
import argparse
import base64
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from guest_crash import kernel_crashed

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(TOP, "tools", "emuhost", "run")
REPRODUCERS = ("console", "tap", "plain", "pause")
VMMS = ("vessel", "qemu")
# A guest whose console says nothing for this long while its VMM runs (and,
# for tap, that sends nothing either) has stopped.
STOP_SECONDS = 120
# Longest a boot may take in all, however busy its console.
BOOT_SECONDS = 400
SEQ_LINES = 10000
NAMESPACE = "vessel-faults"
TAP = "vftap0"
HOST_ADDRESS = "192.168.77.1"
GUEST_ADDRESS = "192.168.77.2"
SINK_PORT = 5300
# The host end of tap: counts what one connection brings, says so every
# 10 MB (a transfer that moves is no stopped guest, however long the console
# is silent), and at the end the total.
SINK = f"""
import socket
server = socket.create_server(("{HOST_ADDRESS}", {SINK_PORT}))
print("listening", flush=True)
connection, _ = server.accept()
total = 0
while data := connection.recv(1 << 20):
    if (total + len(data)) // 10**7 > total // 10**7:
        print("at", total + len(data), flush=True)
    total += len(data)
print(total, flush=True)
"""
# The pause reproducer: the guest counts, one number every 0.1 s (about 10
# in each cycle's run under the emulator: it counts to COUNTS_PER_CYCLE
# per cycle so that it outlasts the cycles), while its VMM
# pauses it for PAUSE_SECONDS and lets it run for RUN_SECONDS, --pause-cycles
# times; it counts to at least MIN_PAUSE_COUNT.
MIN_PAUSE_COUNT = 300
COUNTS_PER_CYCLE = 14
PAUSE_SECONDS = 0.5
RUN_SECONDS = 0.7
RESULT = "fault_rate-boot "
BOOT_MARK = "vessel-guest: userspace up"
EXIT_OK = "vessel-guest: exit=0"
LOCK = "/tmp/vessel-emuhost.lock"
CONTROL_SOCKET = "/tmp/vessel-fault-rate.sock"
# --trace-kvm: the inner host's KVM trace events of each boot, in a ring of
# TRACE_BUFFER_KB per inner CPU; a failed boot's last TRACE_LINES go to the
# log. On AMD, KVM resets a vCPU that triple-faults, so the trace (the exits,
# the injected exceptions and interrupts, the kvmclock updates before it)
# is where the guest was.
TRACING = "/sys/kernel/tracing"
TRACE_BUFFER_KB = 8192
TRACE_LINES = 3000


# Inside an inner host: the reproducers.

def pause_count(args):
    return max(MIN_PAUSE_COUNT, COUNTS_PER_CYCLE * args.pause_cycles)


def guest_command(reproducer, args):
    if reproducer == "console":
        return f"seq 1 {SEQ_LINES}"
    if reproducer == "tap":
        return (f"head -c {args.tap_mb * 1000000} /dev/zero | nc {HOST_ADDRESS} {SINK_PORT}")
    if reproducer == "pause":
        return ("(while :; do :; done) & a=$!; (while :; do :; done) & b=$!; "
                f"i=0; while [ $i -lt {pause_count(args)} ]; do i=$((i+1)); "
                "echo n=$i; sleep 0.1; done; kill $a $b")
    return "true"


def vmm_argv(vmm, reproducer, args):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    # The console order test's command line; the others keep the kernel
    # quiet so that only their own output is on the console.
    loglevel = "loglevel=1" if reproducer == "console" else "quiet"
    command = base64.b64encode(guest_command(reproducer, args).encode()).decode()
    address = f" vessel.ip={GUEST_ADDRESS}/24" if reproducer == "tap" else ""
    # Without KASLR a traced RIP reads against guests/out/vmlinux's
    # disassembly (objdump -d) or the kernel's -dbg package's System.map.
    kaslr = " nokaslr" if args.trace_kvm else ""
    cmdline = (f"console=ttyS0 {loglevel} panic=1{address}{kaslr} "
               f"vessel.run64={command}")
    cpus = "4" if reproducer == "pause" else "2"
    if vmm == "vessel":
        argv = [args.vessel, "run", "--no-reboot", "--kernel", kernel,
                "--initrd", initrd, "--memory", "512M", "--cpus", cpus,
                "--cmdline", cmdline]
        if reproducer == "tap":
            argv += ["--net", f"tap,ifname={TAP}"]
        if reproducer == "pause":
            argv += ["--api-sock", CONTROL_SOCKET]
    else:
        argv = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M", "pc",
                "-m", "512M", "-smp", cpus, "-nodefaults", "-no-user-config",
                "-nographic", "-serial", "stdio", "-no-reboot",
                "-kernel", kernel, "-initrd", initrd, "-append", cmdline]
        if reproducer == "pause":
            argv += ["-qmp", f"unix:{CONTROL_SOCKET},server=on,wait=off"]
        if reproducer == "tap":
            argv += ["-netdev", f"tap,id=n0,ifname={TAP},script=no,"
                     "downscript=no,vhost=off",
                     "-device", "virtio-net-pci,netdev=n0"]
    if reproducer == "tap":
        argv = ["ip", "netns", "exec", NAMESPACE] + argv
    return argv


def make_namespace():
    subprocess.run(["ip", "netns", "del", NAMESPACE], stderr=subprocess.DEVNULL)
    inside = ["ip", "netns", "exec", NAMESPACE]
    for argv in (["ip", "netns", "add", NAMESPACE],
                 inside + ["ip", "link", "set", "lo", "up"],
                 inside + ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                 inside + ["ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", TAP],
                 inside + ["ip", "link", "set", TAP, "up"]):
        subprocess.run(argv, check=True)


class Output:
    """A process's output, read on a thread of its own, with the time of
    its last byte."""

    def __init__(self, stream):
        self.text = ""
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(stream,),
                                       daemon=True)
        self.thread.start()

    def _read(self, stream):
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            with self.lock:
                self.text += chunk.decode(errors="replace")
                self.last = time.monotonic()

    def snapshot(self):
        with self.lock:
            return self.text, self.last


def seq_in_order(console):
    """Whether the console carries seq's lines 1..SEQ_LINES in order (other
    lines, the kernel's and init's, are skipped as the test does)."""
    expected = 1
    for line in re.split(r"[\r\n]+", console):
        if line.isdigit():
            if int(line) != expected:
                return f"line {expected} reads {line}"
            expected += 1
    return None if expected == SEQ_LINES + 1 else f"{expected - 1} lines"


def counted_in_order(console, count):
    """Whether the pause reproducer's n=1..count are all there, in
    order: None, or what is wrong."""
    numbers = [int(n) for n in re.findall(r"^n=(\d+)\r?$", console, re.M)]
    if numbers != list(range(1, len(numbers) + 1)):
        wrong = next(i for i, n in enumerate(numbers, 1) if n != i)
        return f"n={numbers[wrong - 1]} where n={wrong} belonged"
    return None if len(numbers) == count else f"counted to {len(numbers)}"


class QmpClient:
    """QEMU's QMP on a Unix socket, past its capabilities handshake."""

    def __init__(self, path):
        self.socket = socket.socket(socket.AF_UNIX)
        self.socket.connect(path)
        self.file = self.socket.makefile("rw")
        self.file.readline()  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command):
        self.file.write(json.dumps({"execute": command}) + "\n")
        self.file.flush()
        # Events may come before the answer.
        while "return" not in (answer := json.loads(self.file.readline())):
            if "error" in answer:
                raise RuntimeError(f"QMP {command}: {answer['error']}")

    def close(self):
        self.socket.close()


def pause_cycles(vmm, args, process, failures):
    """Pauses and resumes the VMM's guest --pause-cycles times, as the
    snapshot test does, while it runs; what went wrong goes to failures."""
    try:
        if vmm == "qemu":
            qmp = QmpClient(CONTROL_SOCKET)
            stop, resume = (lambda: qmp.execute("stop")), (lambda: qmp.execute("cont"))
        else:
            def request(verb):
                done = subprocess.run([args.vessel, verb, "--api-sock", CONTROL_SOCKET],
                                      capture_output=True, text=True, timeout=30)
                if done.returncode:
                    raise RuntimeError(f"vessel {verb}: {done.stderr.strip()}")
            stop, resume = (lambda: request("pause")), (lambda: request("resume"))
        for _ in range(args.pause_cycles):
            if process.poll() is not None:
                return
            stop()
            time.sleep(PAUSE_SECONDS)
            resume()
            time.sleep(RUN_SECONDS)
        if vmm == "qemu":
            qmp.close()
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        if process.poll() is None:
            failures.append(f"pause/resume failed: {error}")


def tail(console, lines=4):
    return " | ".join(line.strip() for line in console.strip().splitlines()[-lines:])


def boot_once(vmm, reproducer, args):
    """One boot: {"vmm", "reproducer", "result", "seconds", "detail"}, and
    its console."""
    sink = sink_output = None
    if reproducer == "tap":
        sink = subprocess.Popen(["ip", "netns", "exec", NAMESPACE, "python3",
                                 "-c", SINK], stdout=subprocess.PIPE)
        sink.stdout.readline()
        sink_output = Output(sink.stdout)
    if reproducer == "pause" and os.path.exists(CONTROL_SOCKET):
        os.unlink(CONTROL_SOCKET)
    start = time.monotonic()
    process = subprocess.Popen(vmm_argv(vmm, reproducer, args),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = Output(process.stdout)
    result = None
    pauser, pause_failures = None, []
    while process.poll() is None:
        time.sleep(0.5)
        console, last = output.snapshot()
        if reproducer == "pause" and not pauser and "n=1\r" in console:
            pauser = threading.Thread(target=pause_cycles, daemon=True,
                                      args=(vmm, args, process, pause_failures))
            pauser.start()
        if pauser and pauser.is_alive():
            # A paused guest is silent by design.
            last = time.monotonic()
        if sink_output:
            last = max(last, sink_output.snapshot()[1])
        now = time.monotonic()
        if kernel_crashed(console) or console.count(BOOT_MARK) > 1:
            result = "crash"
        elif now - last > STOP_SECONDS or now - start > BOOT_SECONDS:
            result = "stop"
        if result:
            process.kill()
            break
    process.wait()
    output.thread.join(5)
    seconds = time.monotonic() - start
    console, _ = output.snapshot()
    detail = ""
    if result is None:
        if kernel_crashed(console) or console.count(BOOT_MARK) > 1:
            result = "crash"
        elif EXIT_OK not in console:
            # --no-reboot: a triple fault or a panic's reboot ends the VMM.
            result, detail = "crash", f"ended early (status {process.returncode})"
        elif process.returncode != 0:
            result, detail = "wrong", f"status {process.returncode}"
        elif reproducer == "console" and seq_in_order(console):
            result, detail = "wrong", seq_in_order(console)
        elif reproducer == "pause" and (pause_failures or counted_in_order(console, pause_count(args))):
            result = "wrong"
            detail = ("; ".join(pause_failures)
                      or counted_in_order(console, pause_count(args)))
        else:
            result = "ok"
    if sink:
        # Its total comes once the guest's connection has closed.
        try:
            sink.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()
        sink_output.thread.join(5)
        lines = sink_output.snapshot()[0].split()
        received = lines[-1] if lines else ""
        if result == "ok" and received != str(args.tap_mb * 1000000):
            result, detail = "wrong", f"the host got {received or 'nothing'}"
    if result != "ok":
        # A nested vCPU that did not run for tens of seconds (the emulator
        # starved) makes the guest's kernel say so in the middle of seq's
        # output.
        if "soft lockup" in console:
            detail = "soft lockup; " + detail
        detail = (detail + "; " if detail else "") + tail(console)
    return {"vmm": vmm, "reproducer": reproducer, "result": result,
            "seconds": round(seconds, 1), "detail": detail}, console


def write_tracing(name, value):
    with open(os.path.join(TRACING, name), "w") as control:
        control.write(value)


def start_kvm_trace():
    """An empty ring of the inner host's KVM events, recording."""
    if not os.path.exists(os.path.join(TRACING, "trace")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACING], check=True)
    write_tracing("tracing_on", "0")
    write_tracing("buffer_size_kb", str(TRACE_BUFFER_KB))
    write_tracing("events/kvm/enable", "1")
    write_tracing("trace", "")
    write_tracing("tracing_on", "1")


def kvm_trace_tail():
    write_tracing("tracing_on", "0")
    with open(os.path.join(TRACING, "trace"), errors="replace") as trace:
        lines = trace.readlines()
    return "".join(lines[-TRACE_LINES:])


SHUTDOWN_EXIT = re.compile(r"kvm_exit: vcpu (\d+) reason shutdown rip (0x[0-9a-f]+)"
                           r".* intr_info (0x[0-9a-f]+)")
ENTRY = re.compile(r"kvm_entry: vcpu (\d+), rip (0x[0-9a-f]+)")
EVENT_TYPES = {0: "interrupt", 2: "NMI", 3: "exception", 4: "software interrupt"}


def shutdown_signature(trace):
    """What the inner host's KVM saw when a vCPU shut down (triple fault):
    where, whether the vCPU ran since its last VMRUN, and the event it was
    delivering (SVM's EXITINTINFO: bit 31 valid, bits 10:8 the type, 7:0
    the vector). The emulator's known fault shuts a vCPU down delivering an
    event before it runs an instruction: at the RIP it entered at, or
    inside the inner host's VMRUN (tests/integration/inner_kvm_trace.h)."""
    entries = {}
    for line in trace.splitlines():
        entry = ENTRY.search(line)
        if entry:
            entries[entry.group(1)] = entry.group(2)
            continue
        match = SHUTDOWN_EXIT.search(line)
        if match:
            break
    else:
        return ""
    vcpu, rip, info = match.group(1), match.group(2), int(match.group(3), 16)
    event = "nothing in delivery"
    if info & (1 << 31):
        kind = EVENT_TYPES.get((info >> 8) & 7, f"type {(info >> 8) & 7}")
        event = f"delivering {kind} {info & 0xff:#x}"
    start, end = inner_vmrun_range()
    if start <= int(rip, 16) < end:
        ran = f"inside the inner host's {INNER_VMRUN_FUNCTION}"
    elif entries.get(vcpu) == rip:
        ran = "at the RIP of its VMRUN"
    else:
        ran = "after running since its VMRUN"
    return f"shutdown of vCPU {vcpu} at {rip} {ran}, {event}"


INNER_VMRUN_FUNCTION = "__svm_vcpu_run"


def inner_vmrun_range():
    """The inner host's function that runs VMRUN, from /proc/kallsyms:
    (start, the next symbol's address), or (0, 0). A shutdown whose RIP
    is there came inside VMRUN, before the guest's RIP was loaded."""
    try:
        with open("/proc/kallsyms") as kallsyms:
            symbols = [(int(fields[0], 16), fields[2]) for fields in
                       (line.split() for line in kallsyms) if len(fields) >= 3]
    except OSError:
        return 0, 0
    starts = [address for address, name in symbols if name == INNER_VMRUN_FUNCTION]
    if not starts:
        return 0, 0
    later = [address for address, _ in symbols if address > starts[0]]
    return starts[0], min(later, default=starts[0] + 1)


def inner(args):
    if "tap" in args.reproducers:
        make_namespace()
    for round_number in range(args.boots):
        for reproducer in args.reproducers:
            for vmm in args.vmms:
                if args.trace_kvm:
                    start_kvm_trace()
                boot, console = boot_once(vmm, reproducer, args)
                boot["round"] = round_number + 1
                if boot["result"] != "ok":
                    # The whole console of a failure, for the log.
                    print(f"fault_rate: console of that boot:\n{console}\n"
                          "fault_rate: end of console", flush=True)
                    if args.trace_kvm:
                        trace = kvm_trace_tail()
                        print(f"fault_rate: KVM trace of that boot:\n"
                              f"{trace}fault_rate: end of trace", flush=True)
                        boot["detail"] = "; ".join(
                            filter(None, [shutdown_signature(trace), boot["detail"]]))
                print(RESULT + json.dumps(boot), flush=True)
    return 0


# On the build machine: the inner hosts, one configuration after another.

def parse_config(text):
    """LABEL[=SPEC] -> (label, environment, run options)."""
    label, _, spec = text.partition("=")
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", label):
        raise argparse.ArgumentTypeError(f"bad configuration label {label!r}")
    words = shlex.split(spec)
    environment = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        environment[name] = value
    return label, environment, words


class Tally:
    def __init__(self):
        self.planned = self.ok = self.crash = self.stop = self.wrong = 0
        self.hosts = self.hosts_lost = self.boots_lost = 0
        self.seconds = 0.0
        self.by_vmm = {vmm: [0, 0] for vmm in VMMS}  # boots, faults

    def faults(self):
        return self.crash + self.stop + self.wrong + self.boots_lost

    def line(self, label):
        run = self.ok + self.crash + self.stop + self.wrong
        per_boot = self.seconds / run if run else float("nan")
        vmms = "  ".join(f"{vmm} {faults}/{boots}" for vmm, (boots, faults)
                         in self.by_vmm.items() if boots)
        return (f"{label:16s} {run:5d}/{self.planned:<5d} {self.crash:6d} "
                f"{self.stop:5d} {self.wrong:5d} {self.hosts_lost:3d}/{self.hosts:<3d}"
                f" {self.boots_lost:5d} {self.faults():6d} {per_boot:7.1f}   {vmms}")


HEADER = (f"{'configuration':16s} {'boots':>11s} {'crash':>6s} {'stop':>5s} "
          f"{'wrong':>5s} {'lost':>7s} {'unrun':>5s} {'faults':>6s} {'s/boot':>7s}"
          "   faults/boots per VMM")


def one_host(label, environment, options, args, tally, log):
    """Boots one inner host of a configuration under the lock and runs the
    reproducers in it; adds what happened to tally."""
    planned = args.boots * len(args.reproducers) * len(args.vmms)
    tally.planned += planned
    tally.hosts += 1
    command = [RUN, "--timeout", str(args.host_timeout)] + options + [
        "--", sys.executable, os.path.abspath(__file__), "--inner",
        "--boots", str(args.boots), "--reproducers", ",".join(args.reproducers),
        "--vmms", ",".join(args.vmms), "--tap-mb", str(args.tap_mb), "--vessel", args.vessel,
        "--guest-dir", args.guest_dir, "--pause-cycles", str(args.pause_cycles)] + (
            ["--trace-kvm"] if args.trace_kvm else [])
    with open(args.lock, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        print(f"fault_rate: {label}: inner host {tally.hosts} "
              f"({time.strftime('%H:%M:%S')})", file=sys.stderr, flush=True)
        process = subprocess.Popen(command, env={**os.environ, **environment},
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        done = 0
        for line in process.stdout:
            log.write(line)
            log.flush()
            if not line.startswith(RESULT):
                continue
            boot = json.loads(line[len(RESULT):])
            done += 1
            setattr(tally, boot["result"], getattr(tally, boot["result"]) + 1)
            tally.seconds += boot["seconds"]
            counts = tally.by_vmm[boot["vmm"]]
            counts[0] += 1
            counts[1] += boot["result"] != "ok"
            note = f" ({boot['detail']})" if boot["detail"] else ""
            print(f"fault_rate: {label}: {boot['vmm']} {boot['reproducer']}: "
                  f"{boot['result']} in {boot['seconds']:.0f} s{note}",
                  file=sys.stderr, flush=True)
        status = process.wait()
    log.write(f"fault_rate: run exited {status} after "
              f"{time.monotonic() - started:.0f} s\n")
    if done < planned:
        # 126: stopped responding or went down; 124: timed out; 125: did
        # not come up. Whatever it was, its boots not run are faults.
        tally.hosts_lost += 1
        tally.boots_lost += planned - done
        print(f"fault_rate: {label}: inner host lost (run exited {status}) "
              f"after {done} of {planned} boots", file=sys.stderr, flush=True)
    # Let whoever waits for the lock have it before the next inner host.
    time.sleep(args.pause)


def outer(args):
    configs = [parse_config(text) for text in args.config or ["default"]]
    tallies = {label: Tally() for label, _, _ in configs}
    os.makedirs(args.log_dir, exist_ok=True)
    for host in range(args.hosts):
        # Each round starts with another configuration.
        shift = host % len(configs)
        for label, environment, options in configs[shift:] + configs[:shift]:
            path = os.path.join(args.log_dir, f"{label}.log")
            with open(path, "a") as log:
                one_host(label, environment, options, args, tallies[label], log)
            # The table so far after every inner host: a run cut short
            # still leaves its figures.
            print(f"\nafter {sum(t.hosts for t in tallies.values())} inner hosts; "
                  f"each: {args.boots} rounds of {'+'.join(args.reproducers)} "
                  f"under {'+'.join(args.vmms)}; faults = crash + stop + "
                  "wrong + boots of lost inner hosts")
            print(HEADER)
            for name, tally in tallies.items():
                print(tally.line(name))
            sys.stdout.flush()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", metavar="LABEL[=SPEC]",
                        help="a configuration (repeatable; default: default)")
    parser.add_argument("--hosts", type=int, default=2,
                        help="inner hosts per configuration")
    parser.add_argument("--boots", type=int, default=2,
                        help="rounds of every reproducer under every VMM "
                             "per inner host")
    parser.add_argument("--reproducers", default=",".join(REPRODUCERS))
    parser.add_argument("--vmms", default=",".join(VMMS))
    parser.add_argument("--tap-mb", type=int, default=100,
                        help="MB the tap reproducer's guest sends")
    parser.add_argument("--host-timeout", type=int, default=840,
                        help="tools/emuhost/run --timeout of each inner host")
    parser.add_argument("--lock", default=LOCK,
                        help="the emulated-host lock, held per inner host")
    parser.add_argument("--pause", type=float, default=5,
                        help="seconds between inner hosts without the lock")
    parser.add_argument("--log-dir", default=os.path.join(TOP, "build", "fault-rate"),
                        help="every inner host's output, per configuration")
    parser.add_argument("--vessel", default=os.path.join(TOP, "build", "vmm", "vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests", "out"))
    parser.add_argument("--pause-cycles", type=int, default=20,
                        help="pauses of each pause reproducer's guest")
    parser.add_argument("--trace-kvm", action="store_true",
                        help="trace the inner host's KVM events and log a "
                             "failed boot's last ones; guests boot nokaslr")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.reproducers = args.reproducers.split(",")
    args.vmms = args.vmms.split(",")
    for name, allowed in (("reproducers", REPRODUCERS), ("vmms", VMMS)):
        unknown = set(getattr(args, name)) - set(allowed)
        if unknown:
            parser.error(f"--{name}: unknown {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
