#!/usr/bin/env python3
"""Snapshot and restore times of the selftest guest on this host's /dev/kvm.

For each memory size: starts the selftest guest counting at CPL3, pauses
it, times `vessel snapshot` (the client's whole run: the request, the
state, the memory image and its fsyncs), stops it, then times `vessel
restore` (lazy and --eager) from the process's start to the guest's first
console byte and to the end of that line. Prints the median of the rounds
and the snapshot's size on disk.

With --diff: the guest (mode=write) first writes half of its memory,
then a full snapshot is taken (and the guest resumed), the guest rewrites
--written percent of its memory, and a diff snapshot is taken over the
full one: the times and sizes of both, and the diff's restore (lazy and
--eager) to the first console byte.

With --scaling: for each size the guest (mode=write) writes half of its
memory, a full snapshot is taken, and lazy restores are timed to the
guest's first console byte with the memory checksum checked (the default)
and with --skip-memory-check, each beside the smallest size's figure: how
far a restore's time grows with the guest's memory.

Usage: tools/bench/snapshot_bench.py [--rounds N] [--memory 64M,1G]
       tools/bench/snapshot_bench.py --diff [--written 1] [--memory 1G]
       tools/bench/snapshot_bench.py --scaling [--memory 256M,1G,4G]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# VESSEL_BINARY and VESSEL_SELFTEST_GUEST, as the tests take them, name
# another build's.
VESSEL = os.environ.get('VESSEL_BINARY',
                        os.path.join(TOP, 'build', 'vmm', 'vessel'))
GUEST = os.environ.get('VESSEL_SELFTEST_GUEST',
                       os.path.join(TOP, 'build', 'guests', 'selftest.elf'))


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


def restore(work, eager, name='snap', *options):
    """Seconds from `vessel restore`'s start to the guest's first console
    byte, and to the end of that line."""
    args = [VESSEL, 'restore', os.path.join(work, name), *options]
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


def mebibytes(memory):
    """'1G' or '64M' in MiB."""
    return int(memory[:-1]) * (1024 if memory[-1] in 'gG' else 1)


class Console:
    """The guest's console, read on a thread so that the pipe never fills:
    wait_for(text) returns once a line holding text has come."""

    def __init__(self, stream):
        self.lines = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(stream,))
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for(self, text, seen=0):
        with self.changed:
            if not self.changed.wait_for(
                    lambda: any(text in line for line in self.lines[seen:]),
                    timeout=120):
                raise SystemExit(f'the guest never printed {text!r}')
            return len(self.lines)


def snapshot_timed(sock, path, *options):
    subprocess.check_call([VESSEL, 'pause', '--api-sock', sock])
    start = time.monotonic()
    subprocess.check_call([VESSEL, 'snapshot', '--api-sock', sock, path,
                           *options])
    taken = time.monotonic() - start
    used = int(subprocess.check_output(['du', '-sk', path]).split()[0])
    return taken, used


def start_writer(work, memory, touch_kib):
    """The selftest guest (mode=write) once it filled half of its memory:
    (process, console, API socket, the console's line count then)."""
    sock = os.path.join(work, 'api.sock')
    size = mebibytes(memory)
    guest = subprocess.Popen(
        [VESSEL, 'run', '--kernel', GUEST, '--memory', memory, '--cmdline',
         f'mode=write {size // 2} {touch_kib} 2000000', '--api-sock', sock],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    console = Console(guest.stdout)
    wait_for(sock)
    return guest, console, sock, console.wait_for('selftest: filled')


def stop_writer(guest, console, sock):
    subprocess.check_call([VESSEL, 'stop', '--api-sock', sock])
    guest.stdin.close()
    console.thread.join()  # to the console's end, once vessel exits
    guest.wait()


def take_half_written(work, memory):
    """The writing guest's full snapshot once it wrote half of its memory:
    (seconds, KiB)."""
    guest, console, sock, _ = start_writer(work, memory, 0)
    taken = snapshot_timed(sock, os.path.join(work, 'snap'))
    stop_writer(guest, console, sock)
    return taken


def take_full_and_diff(work, memory, written_percent):
    """The writing guest's full snapshot over half of its memory, then a
    diff after it rewrote written_percent of it: (seconds, KiB) of each."""
    touch_kib = int(mebibytes(memory) * 1024 * written_percent / 100)
    guest, console, sock, seen = start_writer(work, memory, touch_kib)
    full = snapshot_timed(sock, os.path.join(work, 'snap'), '--resume')
    guest.stdin.write('x')
    guest.stdin.flush()
    console.wait_for('selftest: touched', seen)
    diff = snapshot_timed(sock, os.path.join(work, 'diff'), '--diff')
    stop_writer(guest, console, sock)
    return full, diff


def each_round(options, measure):
    """measure(work) in a new directory each round: its results."""
    results = []
    for _ in range(options.rounds):
        work = tempfile.mkdtemp(prefix='vessel-bench-snapshot-',
                                dir=options.dir)
        try:
            results.append(measure(work))
        finally:
            shutil.rmtree(work)
    return results


def main_diff(options):
    print(f'guest wrote {options.written}% of its memory after the full '
          f'snapshot (half of it before); medians of {options.rounds}')
    print(f'{"memory":>8} {"full ms":>9} {"full KiB":>10} {"diff ms":>9} '
          f'{"diff KiB":>10} {"diff/full time":>15} '
          f'{"restore diff: lazy ms":>22} {"eager ms":>9}')
    for memory in options.memory.split(','):
        def measure(work):
            snapshots = take_full_and_diff(work, memory, options.written)
            return (*snapshots, restore(work, False, 'diff'),
                    restore(work, True, 'diff'))
        full, diff, lazy, eager = zip(*each_round(options, measure))
        median = statistics.median
        full_ms = median(v[0] for v in full) * 1000
        diff_ms = median(v[0] for v in diff) * 1000
        print(f'{memory:>8} {full_ms:9.1f} {median(v[1] for v in full):10.0f} '
              f'{diff_ms:9.1f} {median(v[1] for v in diff):10.0f} '
              f'{diff_ms / full_ms:14.1%} '
              f'{median(v[0] for v in lazy) * 1000:22.1f} '
              f'{median(v[0] for v in eager) * 1000:9.1f}')


def main_scaling(options):
    print(f'guest wrote half of its memory; lazy restore to the first '
          f'console byte; medians of {options.rounds}')
    print(f'{"memory":>8} {"snapshot ms":>12} {"on disk KiB":>12} '
          f'{"checked ms":>11} {"x smallest":>11} '
          f'{"skip-check ms":>14} {"x smallest":>11}')
    smallest = None
    for memory in options.memory.split(','):
        def measure(work):
            taken, used = take_half_written(work, memory)
            return (taken, used, restore(work, False)[0],
                    restore(work, False, 'snap', '--skip-memory-check')[0])
        taken, used, checked, skipped = zip(*each_round(options, measure))
        median = statistics.median
        row = (median(checked), median(skipped))
        smallest = smallest or row
        print(f'{memory:>8} {median(taken) * 1000:12.1f} {median(used):12.0f} '
              f'{row[0] * 1000:11.1f} {row[0] / smallest[0]:11.2f} '
              f'{row[1] * 1000:14.1f} {row[1] / smallest[1]:11.2f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--memory', default=None,
                        help='sizes, comma-separated (64M,1G; 1G with --diff)')
    parser.add_argument('--diff', action='store_true',
                        help='full against diff snapshots of a writing guest')
    parser.add_argument('--scaling', action='store_true',
                        help='restore time against memory size, half of '
                             'it written (256M,1G,4G)')
    parser.add_argument('--written', type=float, default=1.0,
                        help='with --diff: percent of memory rewritten')
    parser.add_argument('--dir', default='/var/tmp',
                        help='where the snapshots go (a disk, not tmpfs)')
    options = parser.parse_args()
    if options.diff:
        options.memory = options.memory or '1G'
        return main_diff(options)
    if options.scaling:
        options.memory = options.memory or '256M,1G,4G'
        return main_scaling(options)
    options.memory = options.memory or '64M,1G'
    print(f'{"memory":>8} {"snapshot ms":>12} {"on disk KiB":>12} '
          f'{"lazy: byte ms":>14} {"line ms":>8} {"eager: byte ms":>15} '
          f'{"line ms":>8}')
    for memory in options.memory.split(','):
        def measure(work):
            return (*take_snapshot(work, memory), restore(work, False),
                    restore(work, True))
        taken, used, lazy, eager = zip(*each_round(options, measure))
        ms = lambda values: statistics.median(values) * 1000
        print(f'{memory:>8} {ms(taken):12.1f} {statistics.median(used):12.0f} '
              f'{ms([v[0] for v in lazy]):14.1f} {ms([v[1] for v in lazy]):8.1f} '
              f'{ms([v[0] for v in eager]):15.1f} {ms([v[1] for v in eager]):8.1f}')


if __name__ == '__main__':
    main()
