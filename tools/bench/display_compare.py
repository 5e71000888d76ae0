#!/usr/bin/env python3
"""vessel's SDL display beside QEMU's `-display sdl`, in one run.

Boots the default guest (kernel and initramfs, no command: a shell on the
serial console, and one on tty1 on the framebuffer console) under vessel
`--display sdl` and under QEMU `-M pc -enable-kvm -vga std -display sdl`,
one after the other in each round, both under the same Xvfb, with the same
memory and one vCPU. Both guests drive the same 1024x768x32 VESA linear
framebuffer with the kernel's vesafb: vessel announces it in boot_params;
under QEMU, SeaBIOS's VGA BIOS sets VESA mode 0x144 (1024x768x32) during
the kernel's real-mode boot (`vga=0x344`; 0x318 would be 1024x768x24).
The run checks each guest's "vesafb: mode is" line.

For each boot it measures:
  - idle: the CPU the display's threads use over --seconds while tty1
    shows its shell's prompt (the cursor blinking), as % of one core,
    from utime + stime in /proc/PID/task/*/stat. vessel: its display
    thread and every SDL or GL helper thread (any thread that is not a
    vCPU, the event thread or a disk worker); QEMU (`-name
    debug-threads=on`): its main thread, which runs SDL and its display
    refresh (and also QEMU's main loop), and every helper thread that is
    not a vCPU, an RCU or a worker thread. Each line names the threads
    counted; the X server's own CPU is printed beside them.
  - scroll: the same while the guest writes lines to /dev/tty1 as fast as
    it can (fbcon on vesafb scrolls by redrawing the screen).
  - latency: from a change of the guest's framebuffer to the first capture
    of the window that shows it. The serial console's shell clears tty1,
    writes a row of '#' on line 1 or 3 (in turn) and at once prints a
    line on the serial console; the host captures the window over and
    over (XGetImage of its top rows through Xlib, as `xwd -id` does)
    from the moment it sends the command, and times from the serial
    line's arrival to the end of the first capture with the row in its
    new place. A capture that shows it before the line arrives gives a
    negative figure; so the time from the command's sending is printed
    too, which the serial line's own delay does not touch. The capture's
    own time and interval (its resolution) are printed.
Then vessel/QEMU ratios per round, and their medians over the rounds.
Both VMMs render with the SDL renderer SDL picks (OpenGL through Mesa's
llvmpipe under Xvfb) unless --render-driver names one for both
(`software`: no GL at all). Inside
the emulated host llvmpipe runs under TCG and takes both inner CPUs for
either VMM: there the display thread's and QEMU's main thread's own
ticks, printed beside the totals, are the displays' own cost.

Run it where /dev/kvm can boot Linux, e.g. inside the emulated AMD-V host:
    flock /tmp/vessel-emuhost.lock tools/emuhost/run --timeout 1500 -- \\
        tools/bench/display_compare.py --rounds 2
"""
import argparse
import ctypes
import ctypes.util
import os
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The display test's Xvfb start-up, shared.
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import xvfb  # noqa: E402
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FB_WIDTH, FB_HEIGHT = 1024, 768
GLYPH_WIDTH, GLYPH_HEIGHT = 8, 16
MARKER_COLUMNS = 64
# Lines 1 and 3 (0 and 2 counted from the top) take the marker in turn.
MARKER_ROWS = (0, 2)
# A green value above this is a lit pixel; fbcon's text is 0xaa grey.
LIT_LEVEL = 0x40
# Seconds between two captures of the window while a change is awaited.
POLL_INTERVAL = 0.001
DARK_TO_ZERO = bytes(0 if value <= LIT_LEVEL else 1 for value in range(256))


class Console:
    """A VMM with its serial console on stdin and stdout; output is kept
    as it comes."""

    def __init__(self, argv, env):
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.output = b""
        self.search_from = 0
        self.commands = 0

    def read_some(self, timeout):
        """Reads what has come within timeout; False once the VMM ended."""
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if ready:
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return False
            self.output += chunk
        return True

    def seen(self, text):
        """Whether text came after the previous match; moves past it."""
        found = self.output.find(text.encode(), self.search_from)
        if found < 0:
            return False
        self.search_from = found + len(text)
        return True

    def expect(self, text, timeout):
        deadline = time.monotonic() + timeout
        while not self.seen(text):
            left = deadline - time.monotonic()
            if left <= 0 or not self.read_some(min(left, 1.0)):
                raise RuntimeError(f"no '{text}' on the console within {timeout} s;"
                                   " its end:\n" + self.tail())
        return True

    def send(self, text):
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def command_tag(self):
        """A word the guest's shell prints after a command, and the text
        to type for it: $((0+N)) keeps the echoed command from matching."""
        self.commands += 1
        return f"bench-done-{self.commands}", f"echo bench-done-$((0+{self.commands}))"

    def run(self, command, timeout=120):
        """Runs command at the guest's serial shell and waits for it."""
        tag, echo = self.command_tag()
        self.send(f"{command}; {echo}\n")
        self.expect(tag, timeout)

    def tail(self):
        return self.output.decode(errors="replace")[-2000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def find_window(display, name, timeout):
    """The id of the window whose title matches name, and its size."""
    env = dict(os.environ, DISPLAY=display)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--name", name], env=env,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        if found.returncode == 0 and found.stdout.split():
            window = found.stdout.split()[0]
            geometry = subprocess.run(
                ["xdotool", "getwindowgeometry", "--shell", window], env=env,
                stdout=subprocess.PIPE, text=True, check=True).stdout
            fields = dict(line.split("=", 1) for line in geometry.split())
            return int(window), int(fields["WIDTH"]), int(fields["HEIGHT"])
        time.sleep(0.5)
    raise RuntimeError(f"no window named {name} within {timeout} s")


class XImage(ctypes.Structure):
    """The head of Xlib's XImage, up to the fields read here."""
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int),
                ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
                ("data", ctypes.c_void_p), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int),
                ("bitmap_bit_order", ctypes.c_int),
                ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
                ("bytes_per_line", ctypes.c_int),
                ("bits_per_pixel", ctypes.c_int)]


X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class WindowCapture:
    """Reads a window's pixels with XGetImage on one connection kept open:
    what `xwd -id` does, without a process and a file per capture, so that
    one capture takes milliseconds."""

    def __init__(self, display):
        self.xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
        self.xlib.XOpenDisplay.restype = ctypes.c_void_p
        self.xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self.xlib.XGetImage.restype = ctypes.POINTER(XImage)
        self.xlib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                        ctypes.c_int, ctypes.c_int,
                                        ctypes.c_uint, ctypes.c_uint,
                                        ctypes.c_ulong, ctypes.c_int]
        self.xlib.XDestroyImage.argtypes = [ctypes.POINTER(XImage)]
        self.xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        # Xlib's default handler ends the process on any error: a window
        # that went away or is not yet mapped is just no capture.
        self.error_handler = X_ERROR_HANDLER(lambda display, event: 0)
        self.xlib.XSetErrorHandler(self.error_handler)
        self.display = self.xlib.XOpenDisplay(display.encode())
        if not self.display:
            raise RuntimeError("cannot open X display " + display)

    def green(self, window, width, height):
        """The green bytes of the window's top-left width x height pixels,
        row by row, or None (the window is not there)."""
        all_planes, z_pixmap = (1 << 64) - 1, 2
        image = self.xlib.XGetImage(self.display, window, 0, 0, width, height,
                                    all_planes, z_pixmap)
        if not image:
            return None
        try:
            head = image.contents
            if head.bits_per_pixel != 32:
                raise RuntimeError(f"the X server gives {head.bits_per_pixel}"
                                   " bits per pixel, not 32")
            data = ctypes.string_at(head.data, head.bytes_per_line * height)
            rows = [data[y * head.bytes_per_line + 1:
                         y * head.bytes_per_line + 4 * width:4]
                    for y in range(height)]
            return rows
        finally:
            self.xlib.XDestroyImage(image)

    def close(self):
        self.xlib.XCloseDisplay(self.display)


def lit_pixels(rows):
    return sum(len(row) - row.translate(DARK_TO_ZERO).count(0) for row in rows)


class MarkerProbe:
    """Captures the window's first text lines and says on which of
    MARKER_ROWS the marker stands, scaled to the window's size."""

    def __init__(self, capture, window, width, height):
        self.capture, self.window = capture, window
        self.scale_x, self.scale_y = width / FB_WIDTH, height / FB_HEIGHT
        self.width = int(MARKER_COLUMNS * GLYPH_WIDTH * self.scale_x)
        self.height = int((max(MARKER_ROWS) + 1) * GLYPH_HEIGHT * self.scale_y)
        # A row of '#' lights about a third of its cells' pixels.
        self.enough = self.width * GLYPH_HEIGHT * self.scale_y / 8
        self.durations, self.ends = [], []

    def band(self, rows, text_row):
        top = int((text_row * GLYPH_HEIGHT + 1) * self.scale_y)
        bottom = int(((text_row + 1) * GLYPH_HEIGHT - 1) * self.scale_y)
        return rows[top:bottom]

    def marker_row(self):
        """(the marker's row or None, the time the capture ended)."""
        start = time.monotonic()
        rows = self.capture.green(self.window, self.width, self.height)
        end = time.monotonic()
        self.durations.append(end - start)
        self.ends.append(end)
        if rows is None:
            return None, end
        lit = {row: lit_pixels(self.band(rows, row)) for row in MARKER_ROWS}
        shown = [row for row, count in lit.items() if count >= self.enough]
        quiet = all(count < self.enough / 20 for row, count in lit.items()
                    if row not in shown)
        return (shown[0] if len(shown) == 1 and quiet else None), end


def marker_command(text_row):
    """Shell words that clear tty1, hide its cursor and write the marker on
    text_row, then print a line on the serial console at once."""
    return (f"printf '\\033[H\\033[2J\\033[?25l\\033[{text_row + 1};1H%s' "
            f"'{'#' * MARKER_COLUMNS}' > /dev/tty1")


def time_marker(console, probe, text_row, timeout):
    """One trial: seconds from the serial line to the first capture that
    shows the marker on text_row (negative when it showed first), and from
    the command's sending to that capture."""
    tag, echo = console.command_tag()
    console.send(f"{marker_command(text_row)}; {echo}\n")
    sent_at = time.monotonic()
    line_at = shown_at = None
    deadline = time.monotonic() + timeout
    while line_at is None or shown_at is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"marker on line {text_row + 1}: serial line "
                               f"{'seen' if line_at else 'missing'}, window "
                               f"{'shows it' if shown_at else 'does not show it'}"
                               f" after {timeout} s")
        if line_at is None:
            if not console.read_some(0):
                raise RuntimeError("the VMM ended:\n" + console.tail())
            if console.seen(tag):
                line_at = time.monotonic()
        if shown_at is None:
            row, captured_at = probe.marker_row()
            if row == text_row:
                shown_at = captured_at
        # Leaves the CPU to the VMM and the X server between captures.
        time.sleep(POLL_INTERVAL)
    return shown_at - line_at, shown_at - sent_at


def measure_latency(console, probe, trials, timeout):
    # The first trial puts the screen in a known state; it is not counted.
    time_marker(console, probe, MARKER_ROWS[-1], timeout)
    probe.durations.clear()
    probe.ends.clear()
    latencies = []
    for trial in range(trials):
        # A random pause, so that the change falls anywhere in the
        # display's refresh period.
        time.sleep(random.uniform(0.3, 0.6))
        latencies.append(time_marker(console, probe,
                                     MARKER_ROWS[trial % 2], timeout))
    return latencies


def thread_ticks(pid):
    """{thread id: (name, utime + stime in clock ticks)}."""
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                line = stat.read()
        except FileNotFoundError:
            continue
        name = line[line.index("(") + 1:line.rindex(")")]
        fields = line[line.rindex(")") + 2:].split()
        # utime and stime are fields 14 and 15 of stat, 12 and 13 here.
        ticks[int(tid)] = (name, int(fields[11]) + int(fields[12]))
    return ticks


def is_kvm_worker(name):
    """KVM's own kernel threads of the VM (kvm-nx-lpage-recovery), which
    show among the process's tasks."""
    return name.startswith("kvm-")


def is_vessel_display_thread(pid, tid, name):
    """Not the event thread (the process's first), a vCPU or a disk worker:
    the display thread and the SDL and GL helpers it started (the threads
    SDL starts take the display thread's name)."""
    return (tid != pid and not name.startswith("vcpu")
            and name != "disk-worker" and not is_kvm_worker(name))


def is_qemu_display_thread(pid, tid, name):
    """The main thread (SDL and the display's refresh run there, with the
    main loop), and helpers that are not vCPUs, RCU or worker threads."""
    if tid == pid:
        return True
    return not (name.startswith("CPU ") or name == "call_rcu"
                or name.startswith("worker") or is_kvm_worker(name))


def name_group(name):
    """A thread's name without a trailing number: llvmpipe-0..N together."""
    return re.sub(r"[-:]?[0-9]+$", "", name) if re.search(r"[-:][0-9]+$", name) else name


def measure_cpu(pid, is_display_thread, x_server_pid, seconds):
    """(% of one core the display's threads used, a description of the
    threads counted and of the others, % of the X server) over seconds."""
    before, x_before = thread_ticks(pid), sum(
        ticks for _, ticks in thread_ticks(x_server_pid).values())
    time.sleep(seconds)
    after, x_after = thread_ticks(pid), sum(
        ticks for _, ticks in thread_ticks(x_server_pid).values())
    counted, other = {}, {}
    for tid, (name, ticks) in after.items():
        used = ticks - before.get(tid, (name, 0))[1]
        label = "main" if tid == pid else name_group(name)
        group = counted if is_display_thread(pid, tid, name) else other
        threads, total = group.get(label, (0, 0))
        group[label] = (threads + 1, total + used)
    total = sum(ticks for _, ticks in counted.values())

    def describe(group):
        return ", ".join(f"{label}{f' x{threads}' if threads > 1 else ''} "
                         f"{ticks}" for label, (threads, ticks)
                         in sorted(group.items()))
    percent = 100.0 * total / CLOCK_TICKS / seconds
    x_percent = 100.0 * (x_after - x_before) / CLOCK_TICKS / seconds
    return percent, describe(counted), describe(other), x_percent


def vessel_argv(args, name):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    return [args.vessel, "run", "--kernel", kernel, "--initrd", initrd,
            "--memory", args.memory, "--cpus", "1", "--display", "sdl",
            "--name", name, "--cmdline", f"console=ttyS0 reboot=k panic=1 "
            f"consoleblank=0"]


def qemu_argv(args, name):
    kernel = os.path.join(args.guest_dir, "vmlinuz")
    initrd = os.path.join(args.guest_dir, "initramfs.cpio.gz")
    accel = ["-enable-kvm", "-cpu", "host"] if args.qemu_accel == "kvm" else []
    return ["qemu-system-x86_64", *accel, "-M", "pc", "-m", args.memory,
            "-smp", "1", "-nodefaults", "-no-user-config",
            "-name", f"{name},debug-threads=on", "-vga", "std",
            "-display", "sdl", "-serial", "stdio",
            "-kernel", kernel, "-initrd", initrd, "-append",
            f"console=ttyS0 reboot=k panic=1 consoleblank=0 vga={args.qemu_vga}"]


def sdl_environment(args):
    """SDL's settings for both VMMs. SDL's software renderer presents
    through the window's surface, and SDL backs that surface with an
    OpenGL texture when it can, llvmpipe under Xvfb: only
    SDL_FRAMEBUFFER_ACCELERATION=0 keeps GL out of it (measured: the
    llvmpipe threads worked as hard with SDL_RENDER_DRIVER=software alone)."""
    if not args.render_driver:
        return {}
    settings = {"SDL_RENDER_DRIVER": args.render_driver}
    if args.render_driver == "software":
        settings["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    return settings


def boot(argv, env, args):
    """The VMM with its guest's userspace up; a guest that does not get
    there (the emulated host's nested guests now and then stop while
    booting) is replaced, --boots times in all."""
    for attempt in range(1, args.boots + 1):
        start = time.monotonic()
        console = Console(argv, env)
        try:
            console.expect("vessel-guest: userspace up", args.timeout)
            print(f"{argv[0]}: userspace up after "
                  f"{time.monotonic() - start:.1f} s", flush=True)
            return console
        except RuntimeError as error:
            console.stop()
            print(f"{argv[0]}: boot {attempt} failed: {error}", flush=True)
    raise RuntimeError(f"no boot of {args.boots} reached userspace")


def run_once(args, vmm, round_number, x_server, x_display):
    """Boots the guest under vmm and measures it: a dict of figures."""
    name = f"display-bench-{vmm}-{round_number}"
    argv = vessel_argv(args, name) if vmm == "vessel" else qemu_argv(args, name)
    is_display_thread = (is_vessel_display_thread if vmm == "vessel"
                         else is_qemu_display_thread)
    env = dict(os.environ, DISPLAY=x_display)
    env.update(sdl_environment(args))
    console = boot(argv, env, args)
    capture = WindowCapture(x_display)
    try:
        boot_log = console.output.decode(errors="replace")
        mode = ""
        if "vesafb: mode is" in boot_log:
            mode = boot_log[boot_log.index("vesafb: mode is"):].split("\n")[0].strip()
        console.run("echo serial shell up")
        window, width, height = find_window(x_display, name, 60)
        # The tty1 shell's prompt is drawn, the boot's work is done.
        time.sleep(args.settle)
        figures = {"mode": mode or "no vesafb line", "window": f"{width}x{height}",
                   "seconds": args.seconds}
        figures["idle"] = measure_cpu(console.process.pid, is_display_thread,
                                      x_server.pid, args.seconds)
        console.run("sh -c 'i=0; while :; do i=$((i+1)); echo \"scroll $i: "
                    "the quick brown fox jumps over the lazy dog\"; done' "
                    "> /dev/tty1 2>&1 & scroll_pid=$!")
        time.sleep(2)
        figures["scroll"] = measure_cpu(console.process.pid, is_display_thread,
                                        x_server.pid, args.seconds)
        console.run("kill $scroll_pid; wait $scroll_pid 2>/dev/null")
        probe = MarkerProbe(capture, window, width, height)
        trials = measure_latency(console, probe, args.trials, args.trial_timeout)
        figures["latency"] = [from_line for from_line, _ in trials]
        figures["from_send"] = [from_send for _, from_send in trials]
        figures["capture"] = statistics.median(probe.durations)
        figures["capture_interval"] = statistics.median(
            later - earlier for earlier, later in zip(probe.ends, probe.ends[1:])
            if later - earlier < 0.1)
        figures["captures"] = len(probe.durations)
        return figures
    except Exception as error:
        raise RuntimeError(f"{vmm}, round {round_number}: {error}") from error
    finally:
        capture.close()
        console.stop()


def print_run(round_number, vmm, figures):
    latencies = [value * 1e3 for value in figures["latency"]]
    unlike = "" if "1024x768x32" in figures["mode"] else " (NOT 1024x768x32)"
    print(f"round {round_number} {vmm:6s} guest: {figures['mode']}{unlike}; "
          f"window {figures['window']}", flush=True)
    for what in ("idle", "scroll"):
        percent, counted, other, x_percent = figures[what]
        print(f"round {round_number} {vmm:6s} {what:6s} CPU {percent:6.2f}% "
              f"of a core over {figures['seconds']:g} s; ticks of the threads "
              f"counted: {counted}; not counted: {other}; Xvfb "
              f"{x_percent:.2f}%", flush=True)
    print(f"round {round_number} {vmm:6s} latency median "
          f"{statistics.median(latencies):6.1f} ms, min {min(latencies):6.1f}, "
          f"max {max(latencies):6.1f} ({len(latencies)} trials); one capture "
          f"takes {figures['capture'] * 1e3:.2f} ms, one every "
          f"{figures['capture_interval'] * 1e3:.2f} ms (medians of "
          f"{figures['captures']}); all: "
          + " ".join(f"{value:.1f}" for value in latencies), flush=True)
    from_send = [value * 1e3 for value in figures["from_send"]]
    print(f"round {round_number} {vmm:6s} from the command's sending to the "
          f"window: median {statistics.median(from_send):6.1f} ms, min "
          f"{min(from_send):6.1f}, max {max(from_send):6.1f}", flush=True)


def ratios(vessel, qemu):
    """vessel/QEMU per figure; None where QEMU's is zero."""
    def ratio(ours, theirs):
        return ours / theirs if theirs else None
    return {"idle CPU": ratio(vessel["idle"][0], qemu["idle"][0]),
            "scroll CPU": ratio(vessel["scroll"][0], qemu["scroll"][0]),
            "latency": ratio(statistics.median(vessel["latency"]),
                             statistics.median(qemu["latency"])),
            "from send": ratio(statistics.median(vessel["from_send"]),
                               statistics.median(qemu["from_send"]))}


def show(value):
    return "n/a" if value is None else f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20,
                        help="length of each CPU measurement")
    parser.add_argument("--trials", type=int, default=10,
                        help="latency trials per boot")
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--settle", type=float, default=3,
                        help="seconds between the shell's start and the idle "
                        "measurement")
    parser.add_argument("--timeout", type=float, default=150,
                        help="seconds for the guest to reach userspace")
    parser.add_argument("--boots", type=int, default=3,
                        help="boots to try per measurement when the guest "
                        "does not reach userspace")
    parser.add_argument("--render-driver", default="",
                        help="SDL_RENDER_DRIVER for both VMMs (software: "
                        "SDL's own, with SDL_FRAMEBUFFER_ACCELERATION=0, so "
                        "without GL); default SDL's choice")
    parser.add_argument("--trial-timeout", type=float, default=20)
    parser.add_argument("--vmms", default="vessel,qemu",
                        help="which to run, in each round's order")
    parser.add_argument("--qemu-vga", default="0x344",
                        help="the kernel's vga= under QEMU (a VESA mode + 0x200)")
    parser.add_argument("--qemu-accel", choices=("kvm", "tcg"), default="kvm",
                        help="tcg only to try the script where /dev/kvm cannot "
                        "boot Linux; its figures mean nothing")
    parser.add_argument("--vessel", default=os.path.join(TOP, "build/vmm/vessel"))
    parser.add_argument("--guest-dir", default=os.path.join(TOP, "guests/out"))
    args = parser.parse_args()
    vmms = args.vmms.split(",")

    print("vessel: " + " ".join(vessel_argv(args, "NAME")))
    print("QEMU:   " + " ".join(qemu_argv(args, "NAME")))
    print("SDL: " + (" ".join(f"{name}={value}" for name, value
                             in sdl_environment(args).items())
                    or "SDL's choice of renderer"), flush=True)
    x_server, x_display = xvfb.start()
    results, runs = [], {vmm: [] for vmm in vmms}
    try:
        for round_number in range(1, args.rounds + 1):
            figures = {}
            for vmm in vmms:
                figures[vmm] = run_once(args, vmm, round_number, x_server, x_display)
                print_run(round_number, vmm, figures[vmm])
                runs[vmm].append(figures[vmm])
            if "vessel" in figures and "qemu" in figures:
                round_ratios = ratios(figures["vessel"], figures["qemu"])
                results.append(round_ratios)
                print(f"round {round_number} vessel/QEMU: " + ", ".join(
                    f"{what} {show(value)}" for what, value in round_ratios.items()),
                    flush=True)
    finally:
        x_server.terminate()
        x_server.wait()
    print(f"\nmedians over {args.rounds} rounds:")
    for vmm, figures in runs.items():
        print(f"  {vmm:6s} idle CPU "
              f"{statistics.median(run['idle'][0] for run in figures):6.2f}%, "
              f"scroll CPU "
              f"{statistics.median(run['scroll'][0] for run in figures):6.2f}%, "
              f"latency {statistics.median(value * 1e3 for run in figures for value in run['latency']):6.1f} ms, "
              f"from sending {statistics.median(value * 1e3 for run in figures for value in run['from_send']):6.1f} ms "
              f"(all trials)")
    if results:
        print("vessel/QEMU per round (median of the rounds, range):")
        for what in results[0]:
            values = [result[what] for result in results if result[what] is not None]
            if values:
                print(f"  {what:10s} {statistics.median(values):5.2f} "
                      f"({min(values):.2f}-{max(values):.2f})")
            else:
                print(f"  {what:10s} n/a (QEMU's figure was 0)")


if __name__ == "__main__":
    sys.exit(main())
