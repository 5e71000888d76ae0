#!/usr/bin/env python3
"""Runs one libFuzzer target for a bounded time, from its seed corpus, and
says what it did: executions per second, coverage (libFuzzer's final
cov: and ft:), and the reproducer of each crash, hang or leak.

What the run finds goes to WORKDIR/corpus (the seed directory stays as
committed) and WORKDIR/crashes/. Exit status 0 when nothing was found,
1 otherwise.

Usage: run_fuzzer.py TARGET SEED_DIR WORKDIR SECONDS
"""
import os
import re
import subprocess
import sys

STATUS = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+)")
STAT = re.compile(r"^stat::(\w+):\s+(\d+)")


def run(target, seeds, workdir, seconds):
    """A dict: name, execs, exec_per_sec, cov, ft, crashes (paths), status,
    log (libFuzzer's output)."""
    corpus = os.path.join(workdir, "corpus")
    crashes = os.path.join(workdir, "crashes")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    before = set(os.listdir(crashes))
    command = [target, f"-max_total_time={seconds}", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1",
               f"-artifact_prefix={crashes}/", corpus, seeds]
    # ASan's leak check at exit counts: a guest must not make vessel leak.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    process = subprocess.run(command, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=env,
                             errors="replace")
    result = {"name": os.path.basename(target), "execs": 0,
              "exec_per_sec": 0, "cov": 0, "ft": 0,
              "status": process.returncode, "log": process.stdout}
    for line in process.stdout.splitlines():
        status = STATUS.match(line)
        if status:
            result["execs"] = int(status.group(1))
            result["cov"] = int(status.group(2))
            result["ft"] = int(status.group(3))
        stat = STAT.match(line)
        if stat and stat.group(1) == "average_exec_per_sec":
            result["exec_per_sec"] = int(stat.group(2))
        elif stat and stat.group(1) == "number_of_executed_units":
            result["execs"] = int(stat.group(2))
    result["crashes"] = sorted(os.path.join(crashes, name)
                               for name in set(os.listdir(crashes)) - before)
    return result


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    target, seeds, workdir, seconds = argv
    result = run(target, seeds, workdir, int(seconds))
    found = result["status"] != 0 or result["crashes"]
    if found:
        print(result["log"])
    print(f"run_fuzzer: {result['name']}: {result['execs']} runs, "
          f"{result['exec_per_sec']} exec/s, cov {result['cov']}, "
          f"ft {result['ft']}, exit status {result['status']}")
    for path in result["crashes"]:
        print(f"run_fuzzer: {result['name']}: found {path}; "
              f"reproduce with {target} {path}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
