"""`stop --drain` on a running job: every input ends where it is, all windows fire, the sinks
commit, and the job exits 0 leaving nothing to resume. The expected output is the reference
model (reference.py) over exactly the lines the job read, taken from its summary line."""
import os
import random
import re
import subprocess
import time

import harness
import reference

PIPELINE = """name: drain
checkpoints: {interval: 100ms}
sources:
  in: {type: file, path: in.jsonl, event_time: ts, watermark: {max_out_of_orderness: 2s},
       rate: 20000}
steps:
  w:
    type: window
    from: in
    key_by: [user]
    window: {type: tumbling, size: 5s}
    aggregate: {n: count(), s: sum(v)}
sinks:
  out: {type: file, from: w, path: out/counts.jsonl}
  late: {type: file, from: w.late, path: out/late.jsonl}
"""


class DrainTest(harness.TempDirTest):
    def test_drain_fires_everything_read_and_exits_zero(self):
        rng = random.Random(11)
        t = 1700000000000
        records = []
        for i in range(200000):
            t += rng.randint(0, 5)
            ts = t - rng.randint(0, 3000) if rng.random() < 0.1 else t
            records.append({"user": "u%d" % rng.randint(0, 300), "ts": ts, "v": i % 5})
        self.write_jsonl("in.jsonl", records)
        path = self.write("p.yaml", PIPELINE)
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        sock = self.path(".streamrun/drain/control.sock")
        deadline = time.time() + 20
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.02)
        self.assertTrue(os.path.exists(sock))
        time.sleep(1.0)  # about 20000 of 200000 lines read
        self.run_ok(["stop", path, "--drain"])
        _, err = proc.communicate(timeout=60)
        err = err.decode()
        self.assertEqual(proc.returncode, 0, err)
        m = re.search(r"in: (\d+) read", err)
        self.assertIsNotNone(m, err)
        n = int(m.group(1))
        self.assertGreater(n, 0)
        self.assertLess(n, len(records), "the input ended before the drain: the test proves nothing")

        rows = reference.with_watermarks([(r["ts"], r) for r in records[:n]], 2000)
        results, late = reference.run_window(
            rows, ["user"], reference.Tumbling(5000),
            [("n", "count", None), ("s", "sum", reference.field("v"))])
        self.assertMultisetEqual(harness.read_multiset(self.path("out/counts.jsonl")),
                                 harness.multiset(results), "window results")
        self.assertMultisetEqual(harness.read_multiset(self.path("out/late.jsonl")),
                                 harness.multiset(late), "late records")
        # A job that ended with its input leaves nothing to resume.
        self.assertFalse(os.path.exists(self.path(".streamrun/drain/checkpoints")))


if __name__ == "__main__":
    import unittest
    unittest.main()
