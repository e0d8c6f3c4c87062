#!/usr/bin/env python3
"""Interleaved timing of several commands, side by side in one run (stdlib only).

  timeit.py SPEC.json OUT.json

SPEC: {"rounds": R, "warmup": W, "commands": [{"name": N, "argv": [...], "setup": [...]?,
       "cwd": DIR?, "env": {VAR: VALUE}?}, ...]}

Every round runs each command once, in a random order (a fresh order each round), so a slow
stretch of a loaded machine hits all commands alike. `setup` (untimed) runs just before its
command, e.g. to copy a fresh output for patchelf. Per run we record the wall time and the CPU
time (user + sys of the command and all its waited-for descendants, from wait4's rusage),
in seconds. A command that fails aborts the measurement.
"""

import json
import os
import random
import subprocess
import sys
import time


def run(argv, cwd, env=None):
    env = dict(os.environ, **env) if env else None
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"timeit.py: {argv} exited {p.returncode}")
    return wall, ru.ru_utime + ru.ru_stime


def main():
    spec = json.load(open(sys.argv[1]))
    cmds = spec["commands"]
    rounds, warmup = spec.get("rounds", 10), spec.get("warmup", 1)
    rng = random.Random(spec.get("seed", 6))
    res = {c["name"]: {"wall": [], "cpu": []} for c in cmds}
    for r in range(warmup + rounds):
        order = list(cmds)
        rng.shuffle(order)
        for c in order:
            if c.get("setup"):
                subprocess.run(c["setup"], check=True, cwd=c.get("cwd"))
            wall, cpu = run(c["argv"], c.get("cwd"), c.get("env"))
            if r >= warmup:
                res[c["name"]]["wall"].append(wall)
                res[c["name"]]["cpu"].append(cpu)
    json.dump({"rounds": rounds, "warmup": warmup, "results": res}, open(sys.argv[2], "w"),
              indent=1)


if __name__ == "__main__":
    main()
