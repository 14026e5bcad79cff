"""Checkpoints of a window with two inputs: a union of two unbounded sources (files read with
`follow: true`, each throttled at its own rate), so the window task reads two queues and the
barriers of a checkpoint reach it at different moments (engine/input_loops.cc).

- `exactly_once` aligns them: after any number of kill -9 and re-runs, the committed output is
  exactly the reference model's.
- `at_least_once` does not align: the window snapshots once every input's barrier came and reads
  on meanwhile, so records read after an early barrier are in the snapshot and read again after
  a recovery. Nothing may be lost: every record counts at least once.

The model is computed here, independently of the engine: each source's records are in event-time
order, so with the watermark the minimum over the inputs no record is late, and each window's
count and sum are those of the records of its key and time range. The inputs never end (follow):
each ends with a marker record far in the future; once the window's watermark shows that both
markers arrived, `stop --drain` ends the inputs, every window fires and the sinks commit.
"""
import collections
import json
import os
import random
import time

import checkpoint_support as support
import harness

T0 = 1700000000000
WINDOW_MS = 1000
OUT_OF_ORDERNESS_MS = 500
MARKER_TS = T0 + 86400000
USERS = 150
# (name, records, ms between records, records per second): a takes 1.5 s, b 2.4 s in one go.
SOURCES = [("a", 45000, 2, 30000), ("b", 48000, 3, 20000)]


def generate(name, n, step_ms, seed):
    """n records of source `name` in event-time order, then the marker."""
    rnd = random.Random(seed)
    records = []
    for i in range(n):
        records.append({"ts": T0 + i * step_ms + (1 if name == "b" else 0),
                        "user": "u%d" % rnd.randrange(USERS), "v": rnd.randrange(1, 10)})
    records.append({"ts": MARKER_TS, "user": "end", "v": 1})
    return records


def model(records):
    """{(user, window_start): (count, sum of v)} over every record."""
    windows = collections.defaultdict(lambda: [0, 0])
    for r in records:
        w = windows[(r["user"], r["ts"] - r["ts"] % WINDOW_MS)]
        w[0] += 1
        w[1] += r["v"]
    return {k: tuple(v) for k, v in windows.items()}


def model_lines(windows):
    return harness.multiset({"user": user, "window_start": start, "window_end": start + WINDOW_MS,
                             "n": n, "s": s} for (user, start), (n, s) in windows.items())


PIPELINE = """name: un
checkpoints: {interval: 50ms, mode: %(mode)s, retain: 3}
sources:
  a: {type: file, path: a.jsonl, follow: true, rate: %(rate_a)d, event_time: ts,
      watermark: {max_out_of_orderness: %(ooo)dms}}
  b: {type: file, path: b.jsonl, follow: true, rate: %(rate_b)d, event_time: ts,
      watermark: {max_out_of_orderness: %(ooo)dms}}
steps:
  w:
    type: window
    from: [a, b]
    key_by: [user]
    window: {type: tumbling, size: %(window)dms}
    aggregate: {n: count(), s: sum(v)}
sinks:
  out: {type: file, from: w, path: out/out.jsonl}
  late: {type: file, from: w.late, path: out/late.jsonl}
"""


class UnionCheckpointTest(harness.TempDirTest):
    def setUp(self):
        super().setUp()
        self.records = []
        for k, (name, n, step, _) in enumerate(SOURCES):
            records = generate(name, n, step, seed=100 + k)
            self.write_jsonl(name + ".jsonl", records)
            self.records.extend(records)
        self.expected = model(self.records)

    def pipeline(self, mode):
        return self.write("p.yaml", PIPELINE % {
            "mode": mode, "rate_a": SOURCES[0][3], "rate_b": SOURCES[1][3],
            "ooo": OUT_OF_ORDERNESS_MS, "window": WINDOW_MS})

    def state_dir(self):
        return self.path(".streamrun/un")

    def window_watermark(self, path):
        p = harness.run(["status", path, "--json"], timeout=30)
        if p.returncode != 0:
            return None
        # Before the job runs its tasks, the answer is an error without nodes.
        nodes = {n["name"]: n for n in json.loads(p.stdout).get("nodes", [])}
        return nodes["w"]["watermark"] if "w" in nodes else None

    def run_to_the_end(self, path, log):
        """Runs the job until both markers reached the window (its watermark is the minimum
        over the inputs), then drains it: it must exit 0. Returns its stderr."""
        job = support.Job(["run", path], self.path(log))
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        threshold = MARKER_TS - OUT_OF_ORDERNESS_MS - 1
        support.wait_for(lambda: (self.window_watermark(path) or 0) >= threshold or
                         not job.running(),
                         timeout=120, interval=0.05, what="both markers at the window")
        self.assertTrue(job.running(), job.stderr())
        self.run_ok(["stop", path, "--drain"])
        self.assertEqual(job.wait(), 0, job.stderr())
        return job.stderr()

    def kill_loop(self, mode, seed, kills=6):
        """The same `run` killed with SIGKILL `kills` times at seeded random moments, then run to
        the end. Returns the output lines."""
        path = self.pipeline(mode)
        rnd = random.Random(seed)
        logs = []
        for attempt in range(kills):
            job = support.Job(["run", path], self.path("run-%d.log" % attempt))
            self.addCleanup(job.kill)
            support.wait_for_socket(self.state_dir(), job)
            # The random moment of the kill: a sleep is the point here, not a synchronisation.
            time.sleep(rnd.uniform(0.2, 0.6))
            self.assertTrue(job.kill(), "the job ended by itself:\n" + job.stderr())
            logs.append(job.stderr())
            p = harness.run(["checkpoints", self.state_dir(), "--verify"], timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        logs.append(self.run_to_the_end(path, "final.log"))
        resumed = sum("resuming from checkpoint" in log for log in logs)
        self.assertGreaterEqual(resumed, 3, "the re-runs did not resume from checkpoints:\n" +
                                "\n---\n".join(log[-600:] for log in logs))
        self.assertEqual(harness.read_jsonl(self.path("out/late.jsonl")), [],
                         "records of in-order inputs went to the late stream")
        return harness.read_jsonl(self.path("out/out.jsonl"))

    def test_model_sanity(self):
        # Every window of the model holds records of both sources, so both inputs matter.
        self.assertGreater(len(self.expected), 10000)
        self.assertEqual(self.expected[("end", MARKER_TS)], (2, 2))
        self.assertEqual(sum(n for n, _ in self.expected.values()),
                         sum(n for _, n, _, _ in SOURCES) + 2)

    def test_exactly_once_union_after_kill_9_equals_the_model(self):
        out = self.kill_loop("exactly_once", seed=5)
        self.assertMultisetEqual(harness.multiset(out), model_lines(self.expected),
                                 "aligned checkpoints of a union after kill -9")

    def test_at_least_once_union_failure_free_equals_the_model(self):
        # Unaligned barriers change what a snapshot holds, not what the job computes.
        self.run_to_the_end(self.pipeline("at_least_once"), "free.log")
        self.assertMultisetEqual(harness.read_multiset(self.path("out/out.jsonl")),
                                 model_lines(self.expected), "at_least_once without failures")

    def test_at_least_once_union_after_kill_9_loses_nothing(self):
        out = self.kill_loop("at_least_once", seed=6)
        # A window may be emitted more than once (it fired before a checkpoint whose snapshot
        # also held records read after an early barrier, read again after the recovery), so the
        # lines of each window are added up.
        got = collections.defaultdict(lambda: [0, 0])
        for line in out:
            self.assertEqual(line["window_end"] - line["window_start"], WINDOW_MS, line)
            w = got[(line["user"], line["window_start"])]
            w[0] += line["n"]
            w[1] += line["s"]
        unknown = sorted(set(got) - set(self.expected))
        self.assertEqual(unknown, [], "windows no record belongs to")
        short = [(k, tuple(got.get(k, (0, 0))), v) for k, v in sorted(self.expected.items())
                 if got.get(k, (0, 0))[0] < v[0] or got.get(k, (0, 0))[1] < v[1]]
        self.assertEqual(short[:10], [], "%d windows counted fewer records than they hold "
                         "(key, got (n, s), expected (n, s))" % len(short))
        counted = sum(n for n, _ in got.values())
        total = sum(n for n, _ in self.expected.values())
        self.assertGreaterEqual(counted, total)
        # At least once, not unboundedly often: a recovery reads again at most what came after
        # the restored checkpoint's earliest barrier.
        self.assertLess(counted, 2 * total)

    def test_an_input_with_nothing_new_after_a_restore_does_not_hold_back_the_watermark(self):
        # a has 20 records up to 9.5 s, b 20 up to 1.95 s and later 40 more up to 8.9 s. A
        # checkpoint taken after both inputs were read is restored; a has nothing new, so only its
        # restored position tells its watermark, which is ahead of b's.
        a = [{"ts": T0 + 500 * i, "user": "x", "v": 1} for i in range(20)]
        b = [{"ts": T0 + 100 * i + 50, "user": "y", "v": 2} for i in range(20)]
        more = [{"ts": T0 + 5000 + 100 * i, "user": "y", "v": 3} for i in range(40)]
        self.write_jsonl("a.jsonl", a)
        self.write_jsonl("b.jsonl", b)
        path = self.pipeline("exactly_once")
        job = support.Job(["run", path], self.path("first.log"))
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        support.wait_for(lambda: (self.window_watermark(path) or 0) >= T0 + 1950 - 501,
                         interval=0.05, what="both inputs read")
        def newest():
            return (support.complete_checkpoints(self.state_dir()) or [0])[-1]
        done = newest()
        support.wait_for(lambda: newest() > done + 1,
                         what="a checkpoint after both inputs were read")
        job.kill()
        with open(self.path("b.jsonl"), "a") as f:
            f.write("".join(harness.dumps(r) + "\n" for r in more))
        job = support.Job(["run", path], self.path("second.log"))
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        # b's new records alone move the window's watermark on: a's is its restored one.
        support.wait_for(lambda: (self.window_watermark(path) or 0) >= T0 + 8900 - 501
                         or not job.running(), timeout=30, interval=0.05,
                         what="the watermark to follow b's new records")
        self.assertTrue(job.running(), job.stderr())
        self.assertIn("resuming from checkpoint", job.stderr())
        self.run_ok(["stop", path, "--drain"])
        self.assertEqual(job.wait(), 0, job.stderr())
        self.assertMultisetEqual(harness.read_multiset(self.path("out/out.jsonl")),
                                 model_lines(model(a + b + more)), "output")


if __name__ == "__main__":
    import unittest
    unittest.main()
