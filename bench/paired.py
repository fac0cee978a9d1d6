#!/usr/bin/env python3
"""Paired, alternating timing of N commands (bench/runtime.sh, step 5).

usage: paired.py ROUNDS WARMUP OUT.json NAME=CMD [NAME=CMD ...]
  CMD is split on whitespace (no shell), like hyperfine -N.

Each round runs every command once, in an order rotated by one every round
(round i starts with command i mod N), timed with time.perf_counter_ns()
(CLOCK_MONOTONIC) around subprocess.run (posix_spawn/vfork, stdio on
/dev/null; the same spawn cost for every command).  Since the commands of one
round run back to back, machine noise that lasts longer than a round hits all
of them alike; the median of the per-round ratios cancels most of it.
Writes the raw per-round times (ns) to OUT.json; prints nothing on success.
A command that exits non-zero aborts the whole run (exit 1).
"""
import json
import subprocess
import sys
import time


def main() -> int:
    rounds, warmup, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cmds = []
    for arg in sys.argv[4:]:
        name, _, cmd = arg.partition("=")
        cmds.append((name, cmd.split()))
    times = {name: [] for name, _ in cmds}
    n = len(cmds)
    for i in range(warmup + rounds):
        for k in range(n):
            name, argv = cmds[(i + k) % n]
            t0 = time.perf_counter_ns()
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE).returncode
            t1 = time.perf_counter_ns()
            if rc != 0:
                print(f"paired.py: {name}: {' '.join(argv)} exited {rc}",
                      file=sys.stderr)
                return 1
            if i >= warmup:
                times[name].append(t1 - t0)
    with open(out, "w") as f:
        json.dump({"rounds": rounds, "warmup": warmup,
                   "order": "rotated by one each round",
                   "commands": {name: " ".join(argv) for name, argv in cmds},
                   "times_ns": times}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
