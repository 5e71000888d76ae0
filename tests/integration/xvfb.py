"""Xvfb, the X server the display test and benchmark start for themselves."""
import os
import select
import subprocess
import time


def start():
    """Xvfb on a free display number: (process, DISPLAY). RuntimeError
    when it does not start within a minute."""
    # The root is read-only inside the emulated host: Xvfb writes its
    # compiled keymap to /var/lib/xkb.
    if not os.access("/var/lib/xkb", os.W_OK):
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/var/lib/xkb"],
                       check=True)
    # Xvfb picks a free display number and writes it to the pipe once it
    # accepts connections.
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-br",
                               "-nolisten", "tcp", "-screen", "0",
                               "1280x1024x24"],
                              pass_fds=[write_end], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_end)
    # It writes the number and the newline apart: read up to the newline,
    # so that it never writes into a closed pipe (and dies of SIGPIPE).
    number = b""
    deadline = time.monotonic() + 60
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read_end], [], [], 1)
        if ready:
            chunk = os.read(read_end, 16)
            if not chunk:
                break
            number += chunk
    os.close(read_end)
    number = number.decode().strip()
    if not number.isdigit():
        server.kill()
        raise RuntimeError("Xvfb did not start")
    return server, ":" + number
