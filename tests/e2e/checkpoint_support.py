"""Helpers of the checkpoint and savepoint tests: a seeded input, the pipeline under test, the
expected output from the reference model, and running, crashing and watching jobs.

The pipeline: a file of JSON lines {"ts","user","v"} -> a tumbling window per user with count,
sum, last and count_distinct -> a file sink for the results and one for the `.late` stream.
"""
import collections
import os
import random
import re
import shutil
import subprocess
import tempfile
import time

import harness
import reference as ref

T0 = 1700000000000
OUT_OF_ORDERNESS_MS = 1000
WINDOW_MS = 10000

AGGS_YAML = "{n: count(), total: sum(v), last_v: last(v), d: count_distinct(v)}"
AGGS = [
    ("n", "count", None),
    ("total", "sum", ref.field("v")),
    ("last_v", "last", ref.field("v")),
    ("d", "count_distinct", ref.field("v")),
]


def generate(seed, n, users=500, step_ms=2, disorder_ms=3000, late_share=0.01):
    """n records {"ts","user","v"}, about step_ms apart, out of order by up to disorder_ms, a
    share of them 20 s late (they go to the late stream). Returns (text, [(ts, record)])."""
    rnd = random.Random(seed)
    us = rnd.choices(range(users), k=n)
    ds = rnd.choices(range(disorder_ms), k=n)
    vs = rnd.choices(range(-20, 1000), k=n)
    late = set(rnd.sample(range(n), int(n * late_share)))
    lines, items = [], []
    for i in range(n):
        ts = T0 + i * step_ms - ds[i]
        if i in late:
            ts -= 20000
        user = "u%d" % us[i]
        lines.append('{"ts":%d,"user":"%s","v":%d}\n' % (ts, user, vs[i]))
        items.append((ts, {"ts": ts, "user": user, "v": vs[i]}))
    return "".join(lines), items


_DATA = {}


def data(seed, n):
    """generate(seed, n), once per process."""
    if (seed, n) not in _DATA:
        _DATA[(seed, n)] = generate(seed, n)
    return _DATA[(seed, n)]


class SharedInput:
    """generate(seed, n) written to events.jsonl in a temporary directory of its own, for the
    tests of a class (setUpClass); remove() deletes it (tearDownClass)."""

    def __init__(self, prefix, seed, n):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.text, self.items = data(seed, n)
        self.path = os.path.join(self.dir, "events.jsonl")
        with open(self.path, "w") as f:
            f.write(self.text)

    def remove(self):
        shutil.rmtree(self.dir, True)


# Aggregates whose result does not depend on the order of the records: at parallelism > 1 the
# window then reads its producers as batches come (engine/plan.h, row_watermarks).
COUNTS_YAML = "{n: count(), d: count_distinct(v)}"
COUNTS = [AGGS[0], AGGS[3]]


def model(items, aggs=AGGS):
    """The reference model's (results, late) as multisets of canonical JSON."""
    rows = ref.with_watermarks(items, OUT_OF_ORDERNESS_MS)
    results, late = ref.run_window(rows, ["user"], ref.Tumbling(WINDOW_MS), aggs)
    return harness.multiset(results), harness.multiset(late)


def pipeline(input_path, name="ck", parallelism=1, interval="100ms", rate=None, restart=None,
             aggregates=AGGS_YAML, extra_steps="", extra_sinks="", state_dir=None):
    """The pipeline under test as YAML; outputs go to out/out.jsonl and out/late.jsonl."""
    text = "name: %s\nparallelism: %d\n" % (name, parallelism)
    if interval:
        text += "checkpoints: {interval: %s, retain: 3}\n" % interval
    if restart:
        text += "restart: %s\n" % restart
    if state_dir:
        text += "state: {dir: %s}\n" % harness.yaml_str(state_dir)
    text += """sources:
  ev:
    type: file
    path: %s
    event_time: ts
    watermark: {max_out_of_orderness: %dms}%s
steps:
  w:
    type: window
    from: ev
    key_by: [user]
    window: {type: tumbling, size: %dms}
    aggregate: %s%s
sinks:
  out: {type: file, from: w, path: out/out.jsonl}
  late: {type: file, from: w.late, path: out/late.jsonl}%s
""" % (harness.yaml_str(input_path), OUT_OF_ORDERNESS_MS,
       "\n    rate: %d" % rate if rate else "", WINDOW_MS, aggregates, extra_steps, extra_sinks)
    return text


def line_counter(path):
    """The lines of a file as a multiset of bytes (fast; for comparing runs of one build)."""
    if not os.path.exists(path):
        return collections.Counter()
    with open(path, "rb") as f:
        return collections.Counter(f.read().splitlines())


def wait_for(condition, timeout=60, interval=0.01, what="condition"):
    """Polls condition() until it returns something true; returns it. Fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def complete_checkpoints(state_dir):
    """Ids of the checkpoints with a manifest (final names only), ascending."""
    d = os.path.join(state_dir, "checkpoints")
    if not os.path.isdir(d):
        return []
    ids = []
    for name in os.listdir(d):
        m = re.fullmatch(r"chk-(\d+)", name)
        if m and os.path.exists(os.path.join(d, name, "MANIFEST.json")):
            ids.append(int(m.group(1)))
    return sorted(ids)


class Job:
    """A streamrun process whose stderr goes to a file (no pipe to fill)."""

    def __init__(self, args, log_path, env=None):
        full_env = dict(os.environ)
        full_env.pop("STREAMRUN_FAILPOINT", None)
        if env:
            full_env.update(env)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([harness.binary()] + list(args), stdout=subprocess.DEVNULL,
                                     stderr=self._log, env=full_env)

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        """kill -9; returns whether the job was still running."""
        was_running = self.running()
        if was_running:
            self.proc.kill()
        self.proc.wait()
        self._log.close()
        return was_running

    def wait(self, timeout=120):
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._log.close()
        return code

    def stderr(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def wait_for_socket(state_dir, job, timeout=30):
    sock = os.path.join(state_dir, "control.sock")

    def ready():
        if not job.running():
            raise AssertionError("the job ended before its control socket appeared:\n" + job.stderr())
        return os.path.exists(sock)
    wait_for(ready, timeout, what="the control socket " + sock)


def records_read(pipeline_path):
    """The source's records_out of the running job, from `streamrun status --json`; 0 if it
    does not answer."""
    return harness.records_out(pipeline_path, "ev")
