"""Recognising a guest whose kernel crashed, for the benchmarks.

Inside the emulated AMD-V host a guest's kernel now and then dies in its
entry code under sustained interrupt load, QEMU's guests as much as
vessel's (tools/emuhost/README.md, "Known fault"). A benchmark boots its
guests with --no-reboot / -no-reboot, so such a guest ends its VMM, and
measures that round again with a new guest instead of reporting a figure
of a machine that was not there.
"""

import sys

SIGNS = ("Kernel panic - not syncing", "double fault:", "stack guard page",
         "guest triple-faulted")
ATTEMPTS = 3


class GuestCrashed(RuntimeError):
    """The guest's kernel crashed during a measurement."""


def kernel_crashed(console):
    """Whether the console text shows the guest's kernel crashing."""
    return any(sign in console for sign in SIGNS)


def with_new_guests(what, measure_once, retry_on=GuestCrashed):
    """measure_once(), booting a new guest (calling it again) after a
    failure of type retry_on, ATTEMPTS times at most; every retry is
    reported on stderr with what (the VMM, the backend)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return measure_once()
        except retry_on as failure:
            print(f"{what}: {str(failure).splitlines()[0]} (attempt {attempt} "
                  f"of {ATTEMPTS}; see tools/emuhost/README.md)",
                  file=sys.stderr, flush=True)
    raise RuntimeError(f"{what}: no measurement in {ATTEMPTS} attempts")
