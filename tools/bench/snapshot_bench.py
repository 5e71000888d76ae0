#!/usr/bin/env python3
"""Snapshot and restore times of the selftest guest on this host's /dev/kvm.

For each memory size: starts the selftest guest counting at CPL3, pauses
it, times `vessel snapshot` (the client's whole run: the request, the
state, the memory image and its fsyncs), stops it, then times `vessel
restore` (lazy and --eager) from the process's start to the guest's first
console byte and to the end of that line. Prints the median of the rounds
and the snapshot's size on disk.

Usage: tools/bench/snapshot_bench.py [--rounds N] [--memory 64M,1G]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VESSEL = os.path.join(TOP, 'build', 'vmm', 'vessel')
GUEST = os.path.join(TOP, 'build', 'guests', 'selftest.elf')


def wait_for(path):
    for _ in range(500):
        if os.path.exists(path):
            return
        time.sleep(0.01)
    raise SystemExit(f'no API socket at {path}')


def take_snapshot(work, memory):
    """Runs the counting guest and snapshots it: seconds taken, KiB used."""
    sock = os.path.join(work, 'api.sock')
    snap = os.path.join(work, 'snap')
    guest = subprocess.Popen(
        [VESSEL, 'run', '--kernel', GUEST, '--memory', memory,
         '--cmdline', 'mode=count 0 2000000', '--api-sock', sock],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    wait_for(sock)
    time.sleep(0.3)
    subprocess.check_call([VESSEL, 'pause', '--api-sock', sock])
    start = time.monotonic()
    subprocess.check_call([VESSEL, 'snapshot', '--api-sock', sock, snap])
    taken = time.monotonic() - start
    subprocess.check_call([VESSEL, 'stop', '--api-sock', sock])
    guest.communicate()
    used = int(subprocess.check_output(['du', '-sk', snap]).split()[0])
    return taken, used


def restore(work, eager):
    """Seconds from `vessel restore`'s start to the guest's first console
    byte, and to the end of that line."""
    args = [VESSEL, 'restore', os.path.join(work, 'snap')]
    if eager:
        args.append('--eager')
    start = time.monotonic()
    guest = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = guest.stdout.read(1)
    to_byte = time.monotonic() - start
    if first != b'\n':
        guest.stdout.readline()
    to_line = time.monotonic() - start
    guest.terminate()
    guest.communicate()
    return to_byte, to_line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--memory', default='64M,1G')
    options = parser.parse_args()
    print(f'{"memory":>8} {"snapshot ms":>12} {"on disk KiB":>12} '
          f'{"lazy: byte ms":>14} {"line ms":>8} {"eager: byte ms":>15} '
          f'{"line ms":>8}')
    for memory in options.memory.split(','):
        taken, used, lazy, eager = [], [], [], []
        for _ in range(options.rounds):
            work = tempfile.mkdtemp(prefix='vessel-bench-snapshot-')
            try:
                seconds, kib = take_snapshot(work, memory)
                taken.append(seconds)
                used.append(kib)
                lazy.append(restore(work, False))
                eager.append(restore(work, True))
            finally:
                shutil.rmtree(work)
        ms = lambda values: statistics.median(values) * 1000
        print(f'{memory:>8} {ms(taken):12.1f} {statistics.median(used):12.0f} '
              f'{ms([v[0] for v in lazy]):14.1f} {ms([v[1] for v in lazy]):8.1f} '
              f'{ms([v[0] for v in eager]):15.1f} {ms([v[1] for v in eager]):8.1f}')


if __name__ == '__main__':
    main()
