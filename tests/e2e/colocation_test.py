"""A keyed step co-located with a split file source (docs/architecture.md "Co-location"): its
subtasks run on the source's threads, in turns. Their results are checked in windows_test.py
(parallelism 1, 2 and 4); here: failing, being stopped, and status while that happens."""
import json
import os
import signal
import subprocess
import time
import unittest

import harness


def window_pipeline(sink):
    return """name: co
sources:
  src: { type: file, path: in.jsonl, event_time: ts }
steps:
  w:
    type: window
    from: src
    key_by: [u]
    window: { type: tumbling, size: 1s }
    aggregate: { n: count(), s: sum(v) }
sinks:
  out: %s
""" % sink


class ColocationTest(harness.TempDirTest):
    def write_input(self, n, bad_at=None):
        lines = []
        for i in range(n):
            v = '"oops"' if i == bad_at else str(i % 7)
            lines.append('{"ts":%d,"u":"u%d","v":%s}' % (i, i % 5000, v))
        self.write("in.jsonl", "\n".join(lines) + "\n")
        self.assertGreater(os.path.getsize(self.path("in.jsonl")), 4 << 20,
                           "the input must span many chunks")

    def test_a_guest_failing_on_its_hosts_thread_fails_the_job(self):
        # sum() of a string fails the record; on_error is fail: the window's error, raised while
        # the source's thread runs it, must end the job with exit 1 and the window's message.
        self.write_input(300000, bad_at=250000)
        self.write("p.yaml", window_pipeline("{ type: file, from: w, path: out.jsonl }"))
        for p in (1, 2, 4):
            with self.subTest(parallelism=p):
                proc = harness.run(["run", self.path("p.yaml"), "--parallelism", str(p)],
                                   timeout=60)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                err = proc.stderr.decode()
                self.assertIn("step 'w'", err)
                self.assertIn("sum() needs numbers", err)

    def test_ctrl_c_while_the_sink_stalls_the_hosts(self):
        # Nobody reads stdout: the sink blocks in its write, the windows block pushing to it, and
        # the source threads that host them block too. Ctrl-C must still end the job with 130:
        # the blocked write cannot be cancelled, so `run` exits 5 s after the interrupt.
        self.write_input(400000)
        self.write("p.yaml", window_pipeline("{ type: stdout, from: w }"))
        proc = subprocess.Popen([harness.binary(), "run", self.path("p.yaml"), "--parallelism",
                                 "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            stalled = False
            # Wait until the job is stuck on its full stdout pipe: status shows the source
            # backpressured.
            while time.monotonic() < deadline:
                time.sleep(0.2)
                self.assertIsNone(proc.poll(), "the job ended although nobody read its output")
                st = harness.run(["status", self.path("p.yaml"), "--json"], timeout=10)
                if st.returncode != 0:
                    continue
                status = json.loads(st.stdout)
                src = [n for n in status["nodes"] if n["name"] == "src"][0]
                if src.get("records_out", 0) > 0 and src.get("backpressured", 0) > 0.5:
                    stalled = True
                    break
            self.assertTrue(stalled, "the source never showed backpressure")
            proc.send_signal(signal.SIGINT)
            start = time.monotonic()
            rc = proc.wait(timeout=15)
            self.assertLess(time.monotonic() - start, 8)
            err = proc.stderr.read().decode()
            self.assertEqual(rc, 130, err)
            self.assertIn("did not stop within 5 s", err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
