"""The control socket of a running job: status, stop, and one job per state directory."""
import json
import os
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
