"""The control socket of a running job: status, stop, and one job per state directory."""
import json
import os
import re
import stat
import subprocess
import time
import unittest

import harness

PIPELINE = """name: ctl
sources:
  g: {type: generator, profile: clickstream, rate: 2000}
steps:
  f: {type: filter, from: g, where: 'action != "bot"'}
sinks:
  out: {type: file, from: f, path: out.jsonl}
"""


class ControlTest(harness.TempDirTest):
    def start(self):
        path = self.write("p.yaml", PIPELINE)
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def stop():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self.addCleanup(stop)
        sock = self.path(".streamrun/ctl/control.sock")
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        self.assertTrue(os.path.exists(sock), "the job made no control socket")
        return path, proc, sock

    def test_socket_is_owner_only(self):
        _, _, sock = self.start()
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)

    def test_status_reports_every_step(self):
        path, _, _ = self.start()
        time.sleep(1.0)
        p = self.run_ok(["status", path, "--json"])
        status = json.loads(p.stdout)
        nodes = {n["name"]: n for n in status["nodes"]}
        self.assertEqual(set(nodes), {"g", "f", "out"})
        self.assertGreater(nodes["g"]["records_in"], 0)
        self.assertLessEqual(nodes["out"]["records_in"], nodes["g"]["records_out"])
        for n in nodes.values():
            for share in ("busy", "idle", "backpressured", "queue_fill"):
                self.assertGreaterEqual(n[share], 0.0)
                self.assertLessEqual(n[share], 1.0)
        table = self.run_ok(["status", self.path(".streamrun/ctl")]).stdout.decode()
        self.assertIn("WATERMARK", table)
        for name in ("g", "f", "out"):
            self.assertIn(name, table)

    def test_status_shows_rates_watermarks_and_the_last_checkpoint(self):
        # 30 000 records one event-time millisecond apart, read at 10 000 per second.
        t0, n, rate = 1700000000000, 30000, 10000
        self.write_jsonl("in.jsonl", ({"ts": t0 + i, "u": i % 7} for i in range(n)))
        path = self.write("st.yaml", """name: st
checkpoints: {interval: 100ms}
sources:
  ev: {type: file, path: in.jsonl, event_time: ts, rate: %d,
       watermark: {max_out_of_orderness: 1s}}
steps:
  w: {type: window, from: ev, key_by: [u], window: {type: tumbling, size: 1s},
      aggregate: {n: count()}}
sinks:
  out: {type: file, from: w, path: out.jsonl}
""" % rate)
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        state = self.path(".streamrun/st")
        deadline = time.monotonic() + 30
        status = {}
        while time.monotonic() < deadline:
            p = harness.run(["status", path, "--json"], timeout=30)
            status = json.loads(p.stdout) if p.returncode == 0 else {}
            if (status.get("checkpoints") or {}).get("completed", 0) >= 2:
                break
            time.sleep(0.05)
        self.assertGreaterEqual(status["checkpoints"]["completed"], 2, status)
        last = status["checkpoints"]["last"]
        self.assertRegex(last["path"],
                         "^" + re.escape(state) + r"/checkpoints/chk-%d$" % last["id"])
        nodes = {node["name"]: node for node in status["nodes"]}
        read = nodes["ev"]["records_in"]
        self.assertGreater(read, 0)
        self.assertLess(read, n, "the input was read before the test looked")
        # The window's watermark: the largest event time it saw, less 1 s and 1 ms.
        wm = nodes["w"]["watermark"]
        self.assertIsNotNone(wm)
        self.assertGreaterEqual(wm, t0 - 1001)
        self.assertLess(wm, t0 + n - 1001)

        table = self.run_ok(["status", path]).stdout.decode()
        self.assertTrue(proc.poll() is None, "the job ended before the status was read")
        lines = table.splitlines()
        header = lines[1].split()
        self.assertEqual(header, ["STEP", "TYPE", "P", "IN", "OUT", "IN/S", "QUEUE", "BUSY", "BKPR",
                                  "WATERMARK"])
        rows = {line.split()[0]: line.split() for line in lines[2:5]}
        self.assertEqual(set(rows), {"ev", "w", "out"})
        source_rate = float(rows["ev"][5])
        self.assertGreater(source_rate, rate / 5, table)
        self.assertLess(source_rate, rate * 1.5, table)
        self.assertRegex(rows["w"][9], r"^2023-11-14T22:1\d:\d\d\.\d{3}Z$")
        self.assertRegex(table, r"last checkpoint: %s/checkpoints/chk-\d+ at \S+ \(\d+ ms, \d+ "
                         r"bytes of state\); \d+ completed, 0 failed" % re.escape(state))

    def test_status_shows_a_blocked_sink_and_the_source_it_holds_back(self):
        n = 400000
        text = "".join('{"i":%d}\n' % i for i in range(n))
        self.write("big.jsonl", text)
        # Two source subtasks read the file in chunks and send them to the one sink task.
        path = self.write("bp.yaml", """name: bp
parallelism: 2
sources:
  ev: {type: file, path: big.jsonl}
sinks:
  out: {type: stdout, from: ev}
""")
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        sock = self.path(".streamrun/bp/control.sock")
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        # Nobody reads the job's standard output: the sink waits on the full pipe, its queue
        # fills, and the sources wait on the queue most of the time.
        time.sleep(1.5)
        status = json.loads(self.run_ok(["status", path, "--json"]).stdout)
        nodes = {node["name"]: node for node in status["nodes"]}
        out = proc.stdout.read()
        proc.stdout.close()
        self.assertEqual(proc.wait(timeout=60), 0)
        self.assertEqual(out, text.encode())
        self.assertLess(nodes["out"]["records_in"], n)
        self.assertGreater(nodes["out"]["queue_fill"], 0.9, nodes)
        self.assertGreater(nodes["out"]["busy"], 0.5, nodes)  # in its write, not idle
        self.assertGreater(nodes["ev"]["backpressured"], 0.5, nodes)
        self.assertLess(nodes["ev"]["busy"], 0.5, nodes)

    def test_second_job_on_the_state_directory_is_refused(self):
        path, _, _ = self.start()
        p = harness.run(["run", path], timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"is in use by another streamrun (pid", p.stderr)

    def test_stop_ends_the_job_and_removes_the_socket(self):
        path, proc, sock = self.start()
        time.sleep(0.5)
        self.run_ok(["stop", path])
        self.assertEqual(proc.wait(timeout=10), 130)
        self.assertFalse(os.path.exists(sock))
        # The lock went with the job: the next run may start.
        p = harness.run(["status", path], timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no running job", p.stderr)


if __name__ == "__main__":
    unittest.main()
