"""Window state larger than `state.cache`: windows evicted to the LMDB working store and read
back give exactly the reference model's results, also across a crash and the resume from a
checkpoint that holds evicted windows.
"""
import os
import unittest

import harness
import reference as ref
import windows_test

# The smallest cache: a window subtask keeps 8 windows in memory, the rest goes to LMDB.
TINY_CACHE = "state.cache=1"


class TinyCacheWindowTest(windows_test.WindowTest):
    """Every window test of windows_test.py, with a cache of 8 windows per subtask."""

    PARALLELISM = (1, 2)

    def run_ok(self, args, **kw):
        if args and args[0] == "run":
            args = list(args) + ["--set", TINY_CACHE]
        p = super().run_ok(args, **kw)
        self.evicted = getattr(self, "evicted", False) or b"evicting the coldest" in p.stderr
        return p

    def check(self, *args, **kw):
        out = super().check(*args, **kw)
        self.assertTrue(self.evicted, "the tiny cache evicted nothing")
        return out


class TinyCacheCheckpointTest(harness.TempDirTest):
    def test_crash_after_a_checkpoint_with_evicted_windows_then_resume(self):
        lines, items = windows_test.data()
        self.write("events.jsonl", "\n".join(lines) + "\n")
        # Slowed down so that checkpoints every 100 ms happen while it runs.
        self.write("p.yaml", """name: cached
checkpoints: { interval: 100ms }
sources:
  events:
    type: file
    path: events.jsonl
    event_time: ts
    rate: 30000
    watermark: { max_out_of_orderness: 2000ms }
steps:
  w:
    type: window
    from: events
    key_by: [user]
    window: { type: tumbling, size: 10s }
    allowed_lateness: 5s
    aggregate:%s
sinks:
  out: { type: file, from: w, path: out/results.jsonl }
""" % windows_test.AGGS_YAML)
        rows = ref.with_watermarks(items, 2000)
        results, _ = ref.run_window(rows, ["user"], ref.Tumbling(10000), windows_test.AGGS, 5000)
        crashed = harness.run(["run", self.path("p.yaml"), "--set", TINY_CACHE],
                              env={"STREAMRUN_FAILPOINT": "checkpoint.after_rename@5"})
        self.assertEqual(crashed.returncode, 86, crashed.stderr.decode(errors="replace")[-2000:])
        self.assertIn(b"evicting the coldest", crashed.stderr)
        resumed = self.run_ok(["run", self.path("p.yaml"), "--set", TINY_CACHE])
        self.assertIn(b"resuming from checkpoint", resumed.stderr)
        self.assertMultisetEqual(harness.read_multiset(self.path("out/results.jsonl")),
                                 harness.multiset(results), "results after the resume")


if __name__ == "__main__":
    unittest.main()
