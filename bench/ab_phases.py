#!/usr/bin/python3
"""Compares two streamrun binaries at parallelism 2, split by where the host put the two vCPUs.

Usage: bench/ab_phases.py OLD_BINARY NEW_BINARY [--iterations 150] [--input FILE]
                          [--pipeline window_count.yaml] [--top 14]

On this machine the host sometimes puts the guest's two vCPUs far apart (a cache line takes
~200 ns between them instead of ~45), for minutes at a time, and parallelism 2 then does more
CPU work per record. A change meant for those minutes can only be judged in them. Each iteration
probes the cross-core latency (build/core_latency), runs both binaries in random order under
`perf record` (cpu-clock, 2 kHz), and probes again; it counts as *far* when both probes are over
120 ns and *near* when both are under 100. Per phase it prints the mean CPU samples per run of
each binary (what the work cost, whatever else the machine did) and the symbols that differ
most. Wall times under perf are not comparable, so none are printed. Input defaults to a 3 M-line
prefix of the 10 M-line click file of `make bench` (written to bench/data/ when missing).
"""
import argparse
import collections
import os
import random
import subprocess
import tempfile

from run import BENCH, DATA, ROOT, ensure_prefix, warm


def probe():
    out = subprocess.run([os.path.join(ROOT, "build", "core_latency")], capture_output=True,
                         text=True, check=True).stdout
    return float(out.split()[-1])


def samples(binary, args, tmp):
    warm(args.input)
    data = os.path.join(tmp, "perf.data")
    env = dict(os.environ, BENCH_INPUT=args.input, BENCH_OUTPUT=os.path.join(tmp, "out.jsonl"),
               BENCH_STATE=os.path.join(tmp, "state"))
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-o", data, binary,
                    "run", os.path.join(BENCH, args.pipeline), "--parallelism", "2"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.remove(os.path.join(tmp, "out.jsonl"))
    report = subprocess.run(["perf", "report", "-i", data, "--stdio", "-F", "sample,sym",
                             "--percent-limit", "0", "-g", "none"],
                            capture_output=True, text=True, check=True).stdout
    by_symbol = collections.Counter()
    for line in report.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        count, _, symbol = line.strip().partition(" ")
        if count.isdigit():
            by_symbol[symbol.strip()] += int(count)
    return by_symbol


def default_input():
    full = os.path.join(DATA, "clicks_10000000.jsonl")
    if not os.path.exists(full):
        raise SystemExit(f"{full} is missing: run `make bench` once, or pass --input")
    return ensure_prefix(full, 3_000_000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--input")
    ap.add_argument("--pipeline", default="window_count.yaml")
    ap.add_argument("--top", type=int, default=14)
    args = ap.parse_args()
    args.input = os.path.abspath(args.input or default_input())
    binaries = {"old": args.old, "new": args.new}
    totals = {(phase, name): collections.Counter() for phase in ("far", "near")
              for name in binaries}
    runs = collections.Counter()
    with tempfile.TemporaryDirectory(prefix="streamrun-ab-phases-") as tmp:
        for i in range(args.iterations):
            before = probe()
            order = list(binaries)
            random.shuffle(order)
            got = {name: samples(binaries[name], args, tmp) for name in order}
            after = probe()
            phase = ("far" if min(before, after) > 120 else
                     "near" if max(before, after) < 100 else None)
            print(f"{i + 1}: probes {before:.0f} / {after:.0f} ns ({phase or 'mixed'}): samples "
                  f"old {sum(got['old'].values())}, new {sum(got['new'].values())}", flush=True)
            if phase is None:
                continue
            runs[phase] += 1
            for name in binaries:
                totals[(phase, name)].update(got[name])
    for phase in ("far", "near"):
        n = runs[phase]
        if n == 0:
            print(f"== {phase}: no iteration")
            continue
        old = {s: v / n for s, v in totals[(phase, "old")].items()}
        new = {s: v / n for s, v in totals[(phase, "new")].items()}
        old_total, new_total = sum(old.values()), sum(new.values())
        print(f"== {phase}: {n} iterations, samples per run old {old_total:.0f}, new "
              f"{new_total:.0f} ({new_total / old_total:.3f} x)")
        for s in sorted(set(old) | set(new), key=lambda s: -abs(new.get(s, 0) - old.get(s, 0)))[
                :args.top]:
            print(f"{old.get(s, 0):8.1f} {new.get(s, 0):8.1f} {new.get(s, 0) - old.get(s, 0):+8.1f}  "
                  f"{s[:90]}")


if __name__ == "__main__":
    main()
