#!/usr/bin/python3
"""Compares two streamrun binaries on one benchmark pipeline, runs alternating A, B, A, B...

Usage: bench/ab.py OLD_BINARY NEW_BINARY [--pipeline window_count.yaml] [--parallelism 1]
                   [--input FILE] [--runs 7] [--set KEY=VALUE]...

On a shared, noisy machine a before/after comparison is only fair when both binaries see the same
moments: this alternates them and prints, per binary, the median and min of the wall time and of
the CPU time (user + sys), and the ratio NEW / OLD of the medians. Input defaults to the 2 M-line
click file of `make bench QUICK=1` (bench/data/clicks_2000000.jsonl).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--pipeline", default="window_count.yaml")
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--input", default=os.path.join(BENCH, "data", "clicks_2000000.jsonl"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="streamrun-ab-")
    with open(args.input, "rb") as f:
        while f.read(1 << 24):
            pass
    times = {"old": [], "new": []}
    cpus = {"old": [], "new": []}
    try:
        for i in range(args.runs):
            for name in ("old", "new"):
                binary = getattr(args, name)
                env = dict(os.environ, BENCH_INPUT=args.input,
                           BENCH_OUTPUT=os.path.join(tmp, "out.jsonl"),
                           BENCH_STATE=os.path.join(tmp, "state"))
                cmd = [binary, "run", os.path.join(BENCH, args.pipeline), "--parallelism",
                       str(args.parallelism)]
                for s in args.set:
                    cmd += ["--set", s]
                before = os.times()
                t0 = time.perf_counter()
                subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
                after = os.times()
                cpus[name].append((after.children_user - before.children_user) +
                                  (after.children_system - before.children_system))
                shutil.rmtree(os.path.join(tmp, "state"), ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ("old", "new"):
        print("%s: wall median %.3f s (min %.3f), cpu median %.3f s (min %.3f)" % (
            name, statistics.median(times[name]), min(times[name]),
            statistics.median(cpus[name]), min(cpus[name])))
    print("new/old: wall %.3f, cpu %.3f (median), cpu %.3f (min)" % (
        statistics.median(times["new"]) / statistics.median(times["old"]),
        statistics.median(cpus["new"]) / statistics.median(cpus["old"]),
        min(cpus["new"]) / min(cpus["old"])))


if __name__ == "__main__":
    main()
