#!/usr/bin/env python3
"""The SDL display under a real X server (Xvfb, started here).

test_display.py linux (inside the emulated AMD-V host, as root): boots the
default guest with --display sdl and no command, so its init gives a shell
on the serial console and one on tty1, and checks what a user would: the
window shows the guest's text console (a line written on tty1 from the
serial shell, compared glyph by glyph with the VGA 8x16 font the kernel
draws it in), and what is typed into the window reaches tty1's shell,
whose command's output comes back on the serial console, and moving the
pointer reaches the guest's /dev/input/mice.

test_display.py selftest (on this machine's own /dev/kvm): the selftest
guest draws a rectangle into the framebuffer and prints the i8042's
keyboard and mouse bytes: the window shows exactly the rectangle (the dirty
log and the upload), a click grabs the pointer and the buttons reach the
guest as mouse packets, Ctrl+Alt+G releases it, keys typed into the
window arrive as set-1 scancodes, and closing the window presses the
guest's power button, closing it again stops the VM; a guest that resets
again and again is booted again in the same window.

test_display.py snapshot (on this machine's own /dev/kvm): the title
follows the VM's state (running, paused through the API, running again
after resume; keys typed while paused all arrive after the resume;
suspended, with the window and its picture kept, and
running after resume), and a snapshot of the selftest guest's drawn
screen, restored in a new vessel process, shows the same rectangle in its
window; closing a suspended VM's window ends vessel.

Environment: VESSEL_BINARY, VESSEL_GUEST_DIR, VESSEL_SELFTEST_GUEST;
VESSEL_DISPLAY_SCREENSHOT, when set, names a PNG file to write the Linux
guest's window to (the one in docs/).
"""
import gzip
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import xvfb

X_DISPLAY = None  # set by start_x_server()
NAME = "display-test"
MARKER = "VESSEL DISPLAY TEST"
FONT = "/usr/share/consolefonts/Uni2-VGA16.psf.gz"
# Typed at the serial console's shell: the screen cleared and the marker on
# its top line, where the typed command's echo follows it.
MARK_TTY1 = ("printf '\\033[H\\033[2J%s\\n' '" + MARKER + "' > /dev/tty1; "
             "echo display-test: marker on tty$((0+1))\n")
TYPED = "echo typed-$((6*7)) > /dev/ttyS0"
TYPED_RESULT = "typed-42"


def fail(message):
    print("test_display: FAIL: " + message, flush=True)
    sys.exit(1)


class Vessel:
    """vessel run with its console output collected as it comes."""

    def __init__(self, argv, env):
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self.output = b""
        self.search_from = 0

    def expect(self, text, timeout):
        """Waits for text after the previous match."""
        deadline = time.monotonic() + timeout
        want = text.encode()
        while want not in self.output[self.search_from:]:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                return False
            ready, _, _ = select.select([self.process.stdout], [], [],
                                        min(left, 1.0))
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    return False
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                self.output += chunk
        self.search_from = self.output.index(want, self.search_from) + len(want)
        return True

    def send(self, text):
        """Types text at the guest's serial console."""
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def read_psf_font(path):
    """{character code: 16 rows of 8 pixels} from a PSF 1 or 2 font, for
    the ASCII range, where the glyph index is the character code."""
    data = gzip.open(path).read()
    if data[:2] == b"\x36\x04":
        height, offset = data[3], 4
    elif data[:4] == b"\x72\xb5\x4a\x86":
        offset = int.from_bytes(data[8:12], "little")
        height = int.from_bytes(data[24:28], "little")
    else:
        fail(f"{path}: not a PSF font")
    if height != 16:
        fail(f"{path}: glyphs are {height} rows high, not 16")
    return {code: data[offset + code * 16:offset + code * 16 + 16]
            for code in range(32, 127)}


def read_ppm(path):
    """(width, height, RGB bytes) of a binary PPM (P6, 8 bits)."""
    data = open(path, "rb").read()
    fields, position = [], 0
    while len(fields) < 4:
        while data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            position = data.index(b"\n", position)
            continue
        end = position
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    if fields[0] != b"P6" or fields[3] != b"255":
        fail(f"{path}: not an 8-bit binary PPM")
    return int(fields[1]), int(fields[2]), data[position + 1:]


def lit(pixels, width, x, y):
    offset = (y * width + x) * 3
    return max(pixels[offset:offset + 3]) > 0x40


def text_matches(pixels, width, font, text, column, row):
    """Fraction of the pixels of text, drawn in font at the given cell,
    that the picture has lit or dark as the glyphs say."""
    same = total = 0
    for index, character in enumerate(text):
        glyph = font[ord(character)]
        for y in range(16):
            for x in range(8):
                want = bool(glyph[y] & (0x80 >> x))
                got = lit(pixels, width, (column + index) * 8 + x, row * 16 + y)
                same += want == got
                total += 1
    return same / total


def capture(window, name):
    """The window's picture: a PPM to read and a PNG to look at."""
    xwd = f"/tmp/{name}.xwd"
    subprocess.run(["xwd", "-silent", "-id", window, "-out", xwd], check=True,
                   env=x_env())
    subprocess.run(["/usr/bin/convert", xwd, f"/tmp/{name}.ppm"], check=True)
    subprocess.run(["/usr/bin/convert", xwd, f"/tmp/{name}.png"], check=True)
    return read_ppm(f"/tmp/{name}.ppm")


def close_window(window):
    """Asks the window to close as a window manager's close button does:
    a WM_DELETE_WINDOW client message (ICCCM 4.2.8.1), sent with Xlib
    through ctypes, since xdotool can only destroy a window."""
    import ctypes
    import ctypes.util

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                    ("message_type", ctypes.c_ulong), ("format", ctypes.c_int),
                    ("data", ctypes.c_long * 5)]

    class Event(ctypes.Union):
        _fields_ = [("client", ClientMessage), ("pad", ctypes.c_long * 24)]

    xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                ctypes.c_long, ctypes.c_void_p]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(X_DISPLAY.encode())
    if not display:
        fail("cannot open " + X_DISPLAY)
    event = Event()
    event.client.type = 33  # ClientMessage
    event.client.window = int(window)
    event.client.message_type = xlib.XInternAtom(display, b"WM_PROTOCOLS", 0)
    event.client.format = 32
    event.client.data[0] = xlib.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    xlib.XSendEvent(display, int(window), 0, 0, ctypes.byref(event))
    xlib.XFlush(display)
    xlib.XCloseDisplay(display)


def keep_picture(name):
    """Copies a capture's PNG where VESSEL_DISPLAY_SCREENSHOT says, if it
    says: the window as the test saw it."""
    screenshot = os.environ.get("VESSEL_DISPLAY_SCREENSHOT")
    if screenshot:
        shutil.copyfile(f"/tmp/{name}.png", screenshot)


def x_env():
    return dict(os.environ, DISPLAY=X_DISPLAY)


def xdotool(*args):
    return subprocess.run(["xdotool", *args], check=True, env=x_env(),
                          stdout=subprocess.PIPE, text=True).stdout.strip()


def start_x_server():
    global X_DISPLAY
    try:
        server, X_DISPLAY = xvfb.start()
    except RuntimeError as error:
        fail(str(error))
    return server


def find_window(timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--name", NAME],
                               env=x_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        if found.returncode == 0 and found.stdout.split():
            return found.stdout.split()[0]
        time.sleep(0.5)
    fail("no window named " + NAME)


def wait_for_text(window, font, text, timeout):
    """Captures the window until text shows on its top line: how well the
    last picture matched."""
    deadline = time.monotonic() + timeout
    while True:
        width, height, pixels = capture(window, "display-boot")
        if (width, height) != (1024, 768):
            fail(f"the window's picture is {width}x{height}")
        match = text_matches(pixels, width, font, text, 0, 0)
        if match >= 0.98 or time.monotonic() > deadline:
            return width, pixels, match
        time.sleep(3)


def report_input(vessel, when):
    """Has the guest's serial shell print what says whether keys reach
    it: the i8042's interrupt counts, the input devices' handlers and the
    processes (tty1's shell among them)."""
    vessel.send(f"echo input {when}:; grep -E ' (1|12): ' /proc/interrupts; "
                "grep -E '^[NH]:' /proc/bus/input/devices; ps; "
                "echo input-$((1))-done\n")
    vessel.expect("input-1-done", 60)


def test_linux():
    guests = os.environ["VESSEL_GUEST_DIR"]
    font = read_psf_font(FONT)
    server = start_x_server()
    vessel = Vessel([os.environ["VESSEL_BINARY"], "run",
                     "--kernel", os.path.join(guests, "vmlinuz"),
                     "--initrd", os.path.join(guests, "initramfs.cpio.gz"),
                     "--display", "sdl", "--name", NAME,
                     "--cmdline", "console=ttyS0 reboot=k panic=1"], x_env())
    try:
        window = find_window(60)
        title = xdotool("getwindowname", window)
        if not title.startswith(NAME) or "Ctrl+Alt+G" not in title:
            fail(f"window title '{title}' lacks the VM's name or the hotkey")
        geometry = xdotool("getwindowgeometry", window)
        if "1024x768" not in geometry:
            fail("window is not the framebuffer's 1024x768: " + geometry)
        if not vessel.expect("vessel-guest: userspace up", 300):
            fail("the guest's init did not finish")
        if not vessel.expect("vessel-guest: shell on tty1", 60):
            fail("the guest's init started no shell on tty1")
        # The serial shell may still be starting: the marker's echo, with
        # its arithmetic done, says the command ran.
        vessel.send(MARK_TTY1)
        if not vessel.expect("display-test: marker on tty1", 60):
            fail("the serial console's shell did not write the marker")
        # The display thread picks it up at its next refresh; under TCG
        # (and a software GL renderer) that may take a while.
        width, pixels, match = wait_for_text(window, font, MARKER, 60)
        if not any(lit(pixels, width, x, y) for y in range(0, 768, 2)
                   for x in range(0, 1024, 2)):
            keep_picture("display-boot")
            # Whose fault: a guest without a framebuffer driver, or a
            # window that does not show what the guest drew.
            vessel.send("echo fb: $(cat /proc/fb) vt: $(cat "
                        "/sys/class/tty/tty0/active) end-fb$((1))\n")
            vessel.expect("end-fb1", 30)
            fail("the window is blank")
        print(f"test_display: marker glyphs match {match:.1%} of their pixels",
              flush=True)
        if match < 0.98:
            keep_picture("display-boot")
            fail("the window does not show the guest's tty1 text")

        # Type into the window: keys go through the i8042 to tty1, where
        # the guest's shell runs the command. A click gives the window the
        # keyboard for certain (and grabs the pointer, whose motion goes
        # to the guest's psmouse).
        report_input(vessel, "before typing")
        xdotool("windowfocus", "--sync", window)
        xdotool("mousemove", "--window", window, "512", "384")
        xdotool("click", "1")
        time.sleep(1)
        xdotool("type", "--delay", "120", TYPED)
        xdotool("key", "Return")
        if not vessel.expect(TYPED_RESULT, 120):
            capture(window, "display-typed")
            keep_picture("display-typed")
            report_input(vessel, "after typing")
            fail("the command typed into the window did not run")
        time.sleep(2)
        width, height, pixels = capture(window, "display-typed")
        # The typed line is echoed on tty1 below the marker, after the
        # prompt: look for its first word first, then the whole line.
        echoed = any(text_matches(pixels, width, font, TYPED[:5], column, row) > 0.98
                     and text_matches(pixels, width, font, TYPED, column, row) > 0.98
                     for row in range(1, 6) for column in range(0, 40))
        keep_picture("display-typed")
        if not echoed:
            fail("the typed command is not echoed on the window")

        # The pointer is grabbed since the click: moving it reaches the
        # guest's psmouse, whose events /dev/input/mice gives out as PS/2
        # packets (3 bytes, the first with bit 3 always set).
        vessel.send("(od -An -tx1 -w3 -N3 /dev/input/mice | sed 's/^/mi''ce:/';"
                    " echo mice-d''one) &\n")
        time.sleep(2)
        for step in range(5):
            xdotool("mousemove_relative", "--", "10", "-5")
            time.sleep(0.2)
        if not vessel.expect("mice-done", 60):
            report_input(vessel, "after moving the mouse")
            fail("the guest read no mouse packet from /dev/input/mice")
        packet = vessel.output.rsplit(b"mice:", 1)[-1].split(b"mice-done")[0]
        data = [int(byte, 16) for byte in packet.split()[:3]]
        if len(data) < 3 or not data[0] & 0x08:
            fail(f"/dev/input/mice gave {packet!r}, not a PS/2 packet")
        print("test_display: mouse packet " +
              " ".join(f"{byte:02x}" for byte in data), flush=True)
        print("test_display: PASS", flush=True)
    finally:
        vessel.stop()
        server.terminate()
        server.wait()


def expect_rectangle(window, name):
    """Waits for the window to show the selftest guest's white rectangle
    (x 100-399, y 100-199) and nothing else."""
    deadline = time.monotonic() + 30
    while True:
        width, height, pixels = capture(window, name)
        inside = all(lit(pixels, width, x, y) for y in range(100, 200)
                     for x in range(100, 400))
        if inside or time.monotonic() > deadline:
            break
        time.sleep(1)
    if not inside:
        fail("the rectangle the guest drew is not in the window")
    outside = [(x, y) for y in range(0, height, 2) for x in range(0, width, 2)
               if not (100 <= x < 400 and 100 <= y < 200)
               and lit(pixels, width, x, y)]
    if outside:
        fail(f"the window has pixels the guest did not draw, at {outside[:3]}")


def selftest_vessel(*options, mode="display"):
    return Vessel([os.environ["VESSEL_BINARY"], "run",
                   "--kernel", os.environ["VESSEL_SELFTEST_GUEST"],
                   "--cmdline", "mode=" + mode,
                   "--display", "sdl", "--name", NAME, *options], x_env())


def windows_named(name):
    found = subprocess.run(["xdotool", "search", "--name", name],
                           env=x_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    return found.stdout.split()


def expect_reboots_keep_the_window():
    """A guest that resets again and again is booted again in the same
    window: the window never goes away while it reboots."""
    vessel = selftest_vessel(mode="reset")
    try:
        window = find_window(30)
        absent = 0
        for _ in range(30):
            if windows_named(NAME) != [window]:
                absent += 1
            time.sleep(0.1)
        if not vessel.expect("selftest: resetting through the i8042", 10):
            fail("the guest did not reset")
        resets = vessel.output.count(b"selftest: resetting")
        if resets < 3:
            fail(f"the guest reset {resets} times only while watched")
        if absent:
            fail(f"the window was gone in {absent} of 30 looks while the "
                 f"guest rebooted {resets} times")
    finally:
        vessel.stop()


def test_selftest():
    server = start_x_server()
    vessel = selftest_vessel()
    try:
        window = find_window(30)
        if not vessel.expect("selftest: drew", 30):
            fail("the selftest guest did not draw")
        expect_rectangle(window, "display-selftest")

        if not vessel.expect("selftest: mouse 0xfa", 10):
            fail("the mouse did not acknowledge enable data reporting")
        xdotool("windowfocus", "--sync", window)
        # A click grabs the pointer and stays with the host; then the mouse
        # reports motion and buttons. Y grows upwards for PS/2.
        xdotool("mousemove", "--window", window, "500", "400")
        xdotool("click", "1")
        title = xdotool("getwindowname", window)
        if "releases the pointer" not in title:
            fail(f"a click did not grab the pointer (title '{title}')")
        xdotool("mousedown", "3")
        # First byte: always-one bit 0x08 and the right button 0x02.
        if not vessel.expect("selftest: mouse 0x0a", 10):
            fail("the guest saw no packet with the right button down")
        xdotool("mouseup", "3")
        if not vessel.expect("selftest: mouse 0x08", 10):
            fail("the guest saw no packet with the buttons up")
        xdotool("key", "ctrl+alt+g")
        title = xdotool("getwindowname", window)
        if "grabs the pointer" not in title:
            fail(f"Ctrl+Alt+G did not release the pointer (title '{title}')")
        xdotool("type", "--delay", "100", "a")
        xdotool("key", "Right")
        # The hotkey's Ctrl and Alt reach the guest, its G does not: then
        # a: make 0x1e, break 0x9e; Right: 0xe0 0x4d, 0xe0 0xcd.
        if not vessel.expect("selftest: key 0xb8", 10):
            fail("the guest did not see the hotkey's Alt go up")
        if not vessel.expect("selftest: key 0x1e", 10):
            fail("the guest did not read scancode 0x1e")
        if b"key 0x22" in vessel.output or b"key 0xa2" in vessel.output:
            fail("the hotkey's G reached the guest")
        for code in ("0x9e", "0xe0", "0x4d", "0xe0", "0xcd"):
            if not vessel.expect("selftest: key " + code, 20):
                fail("the guest did not read scancode " + code)
        # Closing the window presses the power button, which this guest
        # does not act on; closing it again stops the VM.
        close_window(window)
        time.sleep(1)
        if vessel.process.poll() is not None:
            fail("the first close stopped the VM instead of asking the guest")
        close_window(window)
        if not vessel.expect("the display window was closed twice", 20):
            fail("closing the window twice did not stop the VM")
        status = vessel.process.wait(20)
        if status != 0:
            fail(f"vessel ended with status {status} after the window closed")
        expect_reboots_keep_the_window()
        print("test_display: PASS", flush=True)
    finally:
        vessel.stop()
        server.terminate()
        server.wait()


def vessel_command(*argv):
    """A vessel API client command, which must succeed."""
    done = subprocess.run([os.environ["VESSEL_BINARY"], *argv],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    if done.returncode != 0:
        fail(f"vessel {' '.join(argv)}: {done.stdout.strip()}")


def expect_title_state(window, state):
    """Waits for the title to name the VM's state; the display thread sets
    it when the event thread tells it, at once."""
    deadline = time.monotonic() + 10
    while True:
        title = xdotool("getwindowname", window)
        if title.startswith(f"{NAME} [{state}]"):
            return
        if time.monotonic() > deadline:
            fail(f"the title '{title}' does not say {state}")
        time.sleep(0.2)


# Letters (no q: it ends the selftest guest's display mode) and their
# set-1 make codes, as the i8042 hands them to the guest.
TYPED_AHEAD = {"a": 0x1e, "b": 0x30, "c": 0x2e, "d": 0x20, "e": 0x12,
               "f": 0x21, "h": 0x23, "i": 0x17, "j": 0x24, "k": 0x25,
               "l": 0x26, "m": 0x32, "n": 0x31, "o": 0x18, "p": 0x19,
               "r": 0x13, "s": 0x1f, "t": 0x14, "u": 0x16, "v": 0x2f}


def expect_typed_ahead(vessel, window, socket):
    """Keys typed while the guest reads none (paused) reach it after the
    resume, every one and in order: 20 letters are 60 bytes of set 2, far
    beyond the keyboard's 16-byte buffer, so the display holds the rest
    back until the guest has read."""
    vessel_command("pause", "--api-sock", socket)
    xdotool("windowfocus", "--sync", window)
    xdotool("type", "--delay", "30", "".join(TYPED_AHEAD))
    vessel_command("resume", "--api-sock", socket)
    for letter, make in TYPED_AHEAD.items():
        for code in (make, make | 0x80):
            if not vessel.expect(f"selftest: key {code:#04x}", 20):
                fail(f"the guest did not read {code:#04x} of '{letter}' "
                     "typed while it was paused")


def test_snapshot():
    server = start_x_server()
    scratch = tempfile.mkdtemp(prefix="vessel-display-")
    socket = os.path.join(scratch, "api.sock")
    snapshot = os.path.join(scratch, "snapshot")
    vessel = selftest_vessel("--api-sock", socket)
    restored = None
    try:
        window = find_window(30)
        if not vessel.expect("selftest: drew", 30):
            fail("the selftest guest did not draw")
        expect_rectangle(window, "display-drawn")
        expect_title_state(window, "running")
        vessel_command("pause", "--api-sock", socket)
        expect_title_state(window, "paused")
        vessel_command("resume", "--api-sock", socket)
        expect_title_state(window, "running")
        expect_typed_ahead(vessel, window, socket)
        # Suspended, the VM is on disk and released, its window kept with
        # the screen as it was; resume brings the VM back into it.
        vessel_command("suspend", "--api-sock", socket,
                       os.path.join(scratch, "suspended"))
        expect_title_state(window, "suspended")
        expect_rectangle(window, "display-suspended")
        vessel_command("resume", "--api-sock", socket)
        expect_title_state(window, "running")
        expect_rectangle(window, "display-resumed")

        vessel_command("pause", "--api-sock", socket)
        vessel_command("snapshot", "--api-sock", socket, snapshot)
        vessel_command("stop", "--api-sock", socket)
        if vessel.process.wait(20) != 0:
            fail("vessel did not end cleanly after the stop")
        # The framebuffer is memory of its own, not guest RAM: only the
        # snapshot's copy of it can bring the rectangle back, since the
        # guest drew it once, before the snapshot.
        socket = os.path.join(scratch, "restored.sock")
        restored = Vessel([os.environ["VESSEL_BINARY"], "restore", snapshot,
                           "--api-sock", socket], x_env())
        window = find_window(30)
        expect_rectangle(window, "display-restored")
        expect_title_state(window, "running")

        # Closing a suspended VM's window ends vessel; the VM stays on disk.
        vessel_command("suspend", "--api-sock", socket,
                       os.path.join(scratch, "suspended-again"))
        expect_title_state(window, "suspended")
        close_window(window)
        if not restored.expect("closed while the VM was suspended", 20):
            fail("closing a suspended VM's window did not end vessel")
        if restored.process.wait(20) != 0:
            fail("vessel did not end with status 0 after the window closed")
        print("test_display: PASS", flush=True)
    finally:
        vessel.stop()
        if restored:
            restored.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        server.terminate()
        server.wait()


if __name__ == "__main__":
    if sys.argv[1:] == ["linux"]:
        test_linux()
    elif sys.argv[1:] == ["selftest"]:
        test_selftest()
    elif sys.argv[1:] == ["snapshot"]:
        test_snapshot()
    else:
        sys.exit(__doc__)
