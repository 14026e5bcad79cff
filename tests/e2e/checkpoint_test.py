"""Checkpoints and recovery of the real binary (DESIGN.md "State, checkpoints, savepoints").

One seeded input of 1 M lines, a tumbling window per user, a file sink for the results and one
for the `.late` stream. The failure-free run (checkpoints every 100 ms) must equal the reference
model; every run that crashes, is killed, fails or loses a checkpoint must, once re-run with
the same command, leave the same committed output as the failure-free run: nothing lost,
nothing twice.
"""
import json
import os
import random
import re
import shutil
import subprocess
import time
import unittest

import checkpoint_support as support
import harness

SEED = 20240611
N = 1000000
# Rates of the throttled source. Kill -9 tests: the whole input takes 4 s, so every kill at a
# random moment below lands in a running job whatever the machine's speed. Failpoints at the
# N-th checkpoint: 2 s, so that N checkpoints come before the end of the input on a fast machine
# too (unthrottled, it can end within 300 ms).
RATE = 250000
RATE_FAILPOINT = 500000


class CheckpointTest(harness.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.shared = support.SharedInput("streamrun-e2e-ckpt-", SEED, N)
        cls.input, cls.items = cls.shared.path, cls.shared.items
        # The failure-free run, with checkpoints (debug log: it says when they complete). At
        # RATE it lasts ~4 s: unthrottled it can end within 0.6 s, before a second checkpoint
        # completes (one took 450 ms to sync on a busy disk).
        free = os.path.join(cls.shared.dir, "free")
        os.makedirs(free)
        with open(os.path.join(free, "p.yaml"), "w") as f:
            f.write(support.pipeline(cls.input, rate=RATE))
        p = harness.run(["run", os.path.join(free, "p.yaml"), "--log-level", "debug"], timeout=300)
        if p.returncode != 0:
            raise AssertionError("the failure-free run failed:\n" + p.stderr.decode()[-4000:])
        cls.free_log = p.stderr.decode()
        cls.expected_out = support.line_counter(os.path.join(free, "out/out.jsonl"))
        cls.expected_late = support.line_counter(os.path.join(free, "out/late.jsonl"))
        cls.free_dir = free

    @classmethod
    def tearDownClass(cls):
        cls.shared.remove()

    # ------------------------------------------------------------------------------ helpers

    def pipeline(self, **kw):
        return self.write("p.yaml", support.pipeline(self.input, **kw))

    def state_dir(self):
        return self.path(".streamrun/ck")

    def assertFailureFreeOutput(self, what):
        self.assertMultisetEqual(support.line_counter(self.path("out/out.jsonl")),
                                 self.expected_out, what + ": out/out.jsonl")
        self.assertMultisetEqual(support.line_counter(self.path("out/late.jsonl")),
                                 self.expected_late, what + ": out/late.jsonl (the .late stream)")

    def crash(self, args, failpoint):
        p = harness.run(args, env={"STREAMRUN_FAILPOINT": failpoint}, timeout=180)
        self.assertEqual(p.returncode, 86, "STREAMRUN_FAILPOINT=%s: expected the simulated crash "
                         "(exit 86), got %d:\n%s" % (failpoint, p.returncode,
                                                     p.stderr.decode()[-3000:]))
        return p.stderr.decode()

    def resume(self, args):
        return self.run_ok(args, timeout=180).stderr.decode()

    def checkpoints(self, *extra):
        return harness.run(["checkpoints", self.state_dir()] + list(extra), timeout=60)

    def assertIntactCheckpoint(self, what):
        """At least one complete checkpoint, and no damaged one."""
        p = self.checkpoints("--verify")
        self.assertEqual(p.returncode, 0, "%s: checkpoints --verify:\n%s%s" % (
            what, p.stdout.decode(), p.stderr.decode()))
        self.assertIn(b" complete ", p.stdout, what + ": no complete checkpoint")

    def sink_meta(self, sink):
        """The sink's data in the newest complete checkpoint's manifest."""
        newest = support.complete_checkpoints(self.state_dir())[-1]
        with open(os.path.join(self.state_dir(), "checkpoints", "chk-%d" % newest,
                               "MANIFEST.json")) as f:
            manifest = json.load(f)
        return manifest["metadata"]["nodes"][sink]["subtasks"][0]["meta"]

    # ------------------------------------------------------------------------------ tests

    def test_a_run_with_checkpoints_equals_the_reference_model(self):
        completed = re.findall(r"checkpoint \d+ complete", self.free_log)
        self.assertGreaterEqual(len(completed), 2, "the failure-free run took no checkpoints:\n" +
                                self.free_log[-2000:])
        out = harness.multiset(harness.read_jsonl(os.path.join(self.free_dir, "out/out.jsonl")))
        late = harness.multiset(harness.read_jsonl(os.path.join(self.free_dir, "out/late.jsonl")))
        expected_out, expected_late = support.model(self.items)
        self.assertGreater(sum(expected_out.values()), 50000)
        self.assertGreater(sum(expected_late.values()), 5000)
        self.assertMultisetEqual(out, expected_out, "results of the run with checkpoints")
        self.assertMultisetEqual(late, expected_late, "late records of the run with checkpoints")
        # Nothing is left to resume after a job whose input ended.
        self.assertFalse(os.path.exists(os.path.join(self.free_dir, ".streamrun/ck/checkpoints")))

    def kill_loop(self, parallelism, seed, rate, kills, min_kills, after_checkpoint,
                  aggregates=support.AGGS_YAML, check_output=None):
        """Starts the same `run` again and again, killing it with SIGKILL at a random moment
        (seeded): `after_checkpoint` false, 0.1 to 0.5 s after the start; true, 0 to 20 ms
        after the job completed a checkpoint it had not resumed from (checkpoints every 20 ms;
        an unthrottled job reads ~100 000 records in 20 ms, so a later kill would let it reach the
        end of its input in a few attempts).
        Then lets it finish. `check_output` checks the output (default: equal to the failure-free
        run's)."""
        path = self.pipeline(parallelism=parallelism, rate=rate,
                             interval="100ms" if rate else "20ms", aggregates=aggregates)
        args = ["run", path]
        rnd = random.Random(seed)
        killed, logs, finished = 0, [], False
        for attempt in range(kills):
            job = support.Job(args, self.path("run-%d.log" % attempt))
            self.addCleanup(job.kill)
            if after_checkpoint:
                before = (support.complete_checkpoints(self.state_dir()) or [0])[-1]
                support.wait_for(lambda: not job.running() or
                                 (support.complete_checkpoints(self.state_dir()) or [0])[-1] > before,
                                 timeout=120, what="a new checkpoint")
                delay = rnd.uniform(0, 0.02)
            else:
                delay = rnd.uniform(0.1, 0.5)
                if os.environ.get("STREAMRUN_SANITIZED"):
                    # make asan starts the job and reaches a checkpoint several times slower:
                    # killed within 0.5 s it may never complete one to resume from.
                    delay *= 4
            # The random moment of the kill: a sleep is the point here, not a synchronisation.
            time.sleep(delay)
            was_running = job.kill()
            logs.append(job.stderr())
            if not was_running:
                self.assertEqual(job.proc.returncode, 0, logs[-1])
                finished = True
                break
            if ": done in " in logs[-1]:
                # Killed after it had finished its input (and forgotten its checkpoints), on
                # its way out: it finished.
                finished = True
                break
            killed += 1
            if not os.path.isdir(self.state_dir()):
                continue  # killed before it created its state: nothing to verify
            # A kill -9 never leaves a damaged complete checkpoint behind.
            p = self.checkpoints("--verify")
            self.assertEqual(p.returncode, 0, "after kill %d: %s%s" % (
                killed, p.stdout.decode(), p.stderr.decode()))
        self.assertGreaterEqual(killed, min_kills, "the job ended before it was killed %d times" %
                                min_kills)
        if not finished:
            logs.append(self.resume(args))
        # The run that finished carried on from a checkpoint, with the state it restored.
        self.assertIn("resuming from checkpoint", logs[-1])
        resumed = sum("resuming from checkpoint" in log for log in logs)
        self.assertGreaterEqual(resumed, 2, "the re-runs did not resume from checkpoints:\n" +
                                "\n---\n".join(log[-800:] for log in logs))
        what = "after %d kills at parallelism %d" % (killed, parallelism)
        if check_output:
            check_output(what)
        else:
            self.assertFailureFreeOutput(what)
        self.assertIn(b"no checkpoints", self.checkpoints().stdout)

    def test_kill_9_at_random_moments_parallelism_1(self):
        self.kill_loop(1, seed=1, rate=RATE, kills=6, min_kills=6, after_checkpoint=False)

    def test_kill_9_at_random_moments_parallelism_2(self):
        self.kill_loop(2, seed=2, rate=RATE, kills=6, min_kills=6, after_checkpoint=False)

    def test_kill_9_after_checkpoints_of_a_split_file_parallelism_2(self):
        # Unthrottled: two subtasks read the file in chunks and agree where each barrier goes.
        self.kill_loop(2, seed=3, rate=None, kills=8, min_kills=4, after_checkpoint=True)

    def test_kill_9_after_checkpoints_of_a_split_file_counts_only_parallelism_2(self):
        # Counts only: each window subtask reads the two source subtasks as their batches come
        # and aligns barriers, instead of reading in chunk order.
        expected_out, expected_late = support.model(self.items, support.COUNTS)

        def check(what):
            read = lambda name: harness.multiset(harness.read_jsonl(self.path("out/" + name)))
            self.assertMultisetEqual(read("out.jsonl"), expected_out, what + ": out/out.jsonl")
            self.assertMultisetEqual(read("late.jsonl"), expected_late, what + ": out/late.jsonl")

        self.kill_loop(2, seed=4, rate=None, kills=8, min_kills=4, after_checkpoint=True,
                       aggregates=support.COUNTS_YAML, check_output=check)

    # Each phase of a checkpoint, and of the sink's commit after it. @N: not the first one, so
    # that a checkpoint completed before the crash. Hits per checkpoint at parallelism 1: one
    # barrier, one state file (two writes with the manifest), two sinks committing.
    PHASES = [
        # (failpoint, parallelism, checkpoint interval, source rate, what the re-run must say
        # besides resuming)
        ("checkpoint.before_barrier@2", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.write@3", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.before_fsync@2", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.after_file@2", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.before_dir_fsync@2", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.before_manifest@2", 1, "100ms", RATE_FAILPOINT, None),
        ("checkpoint.after_manifest@2", 1, "100ms", RATE_FAILPOINT, None),
        # The checkpoint is complete, its output staged but not committed: recovery commits it.
        ("checkpoint.after_rename@2", 1, "100ms", RATE_FAILPOINT,
         "committing the staged output of checkpoint 2"),
        ("sink.before_commit@3", 1, "100ms", RATE_FAILPOINT,
         "committing the staged output of checkpoint 2"),
        # A second of output (about 250 000 records) is over 1 MiB: the commit copies it in
        # 1 MiB pieces, and the crash comes after the first of checkpoint 1's.
        ("sink.commit@2", 1, "1s", RATE, "committing the staged output of checkpoint 1"),
        # Unthrottled, two subtasks read the file in chunks and agree where each barrier goes;
        # both pass each barrier, two window subtasks write state files. Checkpoints every 30 ms
        # come often enough before the end of the input.
        ("checkpoint.before_barrier@3", 2, "30ms", None, None),
        ("checkpoint.write@4", 2, "30ms", None, None),
        ("checkpoint.after_rename@2", 2, "30ms", None, "committing the staged output of checkpoint 2"),
        ("sink.commit@2", 2, "1s", RATE, "committing the staged output of checkpoint 1"),
    ]

    def test_crash_in_each_phase_of_a_checkpoint_recovers(self):
        for failpoint, parallelism, interval, rate, says in self.PHASES:
            with self.subTest(failpoint=failpoint, parallelism=parallelism):
                shutil.rmtree(self.path(".streamrun"), True)
                shutil.rmtree(self.path("out"), True)
                mid_commit = failpoint.startswith("sink.commit")
                if mid_commit and os.environ.get("STREAMRUN_SANITIZED"):
                    # Which commit the second hit falls in depends on the job reaching RATE
                    # (how much a checkpoint stages): under make asan it does not. `make test`
                    # runs these phases.
                    continue
                args = ["run", self.pipeline(parallelism=parallelism, interval=interval, rate=rate)]
                self.crash(args, failpoint)
                self.assertIntactCheckpoint("after " + failpoint)
                if "after_manifest" in failpoint:
                    # Written but not renamed: a .tmp, listed as not (yet) complete.
                    self.assertRegex(self.checkpoints().stdout.decode(),
                                     r"\d+ +in progress .*/chk-\d+\.tmp")
                if mid_commit:
                    # The output file ends inside the range the checkpoint staged for it.
                    meta = self.sink_meta("out")
                    size = os.path.getsize(self.path("out/out.jsonl"))
                    self.assertTrue(any(p["start"] < size < p["start"] + p["bytes"]
                                        for p in meta["pending"]), (size, meta))
                log = self.resume(args)
                self.assertIn("resuming from checkpoint", log)
                if says:
                    self.assertIn(says, log)
                self.assertFailureFreeOutput("after a crash at " + failpoint)

    def damage_newest_checkpoint(self, damage):
        args = ["run", self.pipeline(rate=RATE_FAILPOINT)]
        self.crash(args, "checkpoint.before_barrier@4")
        ids = support.complete_checkpoints(self.state_dir())
        self.assertGreaterEqual(len(ids), 2, ids)
        newest = os.path.join(self.state_dir(), "checkpoints", "chk-%d" % ids[-1])
        previous = os.path.join(self.state_dir(), "checkpoints", "chk-%d" % ids[-2])
        damage(os.path.join(newest, "w", "0.state"))
        return args, newest, previous

    def check_damage_is_skipped(self, args, newest, previous, reason):
        p = self.checkpoints("--verify")
        self.assertEqual(p.returncode, 1, p.stdout.decode() + p.stderr.decode())
        err = p.stderr.decode()
        self.assertIn(newest + ": w/0.state: ", err)
        self.assertIn(reason, err)
        self.assertRegex(p.stdout.decode(), r"\d+ +damaged .*" + re.escape(newest))
        dump = harness.run(["state", "dump", newest])
        self.assertEqual(dump.returncode, 1)
        self.assertIn(b"w/0.state", dump.stderr)
        self.assertEqual(dump.stdout, b"")
        log = self.resume(args)
        self.assertRegex(log, r"skipping damaged checkpoint .*%s.*w/0\.state.*%s" % (
            re.escape(newest), re.escape(reason)))
        self.assertIn("resuming from checkpoint " + previous, log)
        self.assertFailureFreeOutput("resumed from the checkpoint before the damaged one")

    def test_flipped_byte_in_the_newest_checkpoint_is_skipped_for_the_previous(self):
        def flip(path):
            with open(path, "r+b") as f:
                f.seek(os.path.getsize(path) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0x10]))
        args, newest, previous = self.damage_newest_checkpoint(flip)
        # Sizes alone do not show a flipped byte; --verify reads the checksums.
        self.assertEqual(self.checkpoints().returncode, 0)
        self.check_damage_is_skipped(args, newest, previous, "the contents are damaged")

    def test_truncated_file_in_the_newest_checkpoint_is_skipped_for_the_previous(self):
        def truncate(path):
            os.truncate(path, os.path.getsize(path) // 2)
        args, newest, previous = self.damage_newest_checkpoint(truncate)
        p = self.checkpoints()  # sizes are enough to see this one
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"truncated", p.stderr)
        self.check_damage_is_skipped(args, newest, previous, "truncated")

    def test_fresh_moves_the_old_state_aside_and_starts_empty(self):
        args = ["run", self.pipeline(rate=RATE_FAILPOINT)]
        self.crash(args, "checkpoint.before_barrier@3")
        log = self.resume(args + ["--fresh"])
        moved = re.search(r"starting fresh; the old state was moved to (\S+)", log)
        self.assertIsNotNone(moved, log)
        self.assertTrue(os.path.exists(os.path.join(moved.group(1), "checkpoints", "chk-1",
                                                    "MANIFEST.json")))
        self.assertEqual(os.path.dirname(moved.group(1)), self.path(".streamrun"))
        self.assertNotIn("resuming", log)
        self.assertFailureFreeOutput("a fresh run")

    def test_a_finished_job_leaves_nothing_to_resume_and_the_next_run_starts_empty(self):
        args = ["run", self.pipeline()]
        self.resume(args)
        self.assertFailureFreeOutput("the first run")
        p = self.checkpoints()
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"no checkpoints in " + self.state_dir().encode(), p.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.state_dir(), "sinks")))
        # The next run starts from the beginning with empty sink files: crashed before its first
        # checkpoint, it has committed nothing.
        log = self.crash(args, "checkpoint.before_barrier@1")
        self.assertNotIn("resuming", log)
        self.assertEqual(os.path.getsize(self.path("out/out.jsonl")), 0)
        self.assertEqual(os.path.getsize(self.path("out/late.jsonl")), 0)
        self.resume(args)
        self.assertFailureFreeOutput("the run after the finished one")

    def test_full_disk_aborts_the_checkpoint_and_the_job_goes_on(self):
        args = ["run", self.pipeline(rate=RATE_FAILPOINT)]
        # The third write (checkpoint 2's state file) finds the disk full; later a crash.
        log = self.crash(args, "checkpoint.write@3=enospc,checkpoint.before_barrier@5")
        self.assertIn("No space left on device (the disk is full; free space and retry)", log)
        failed = re.search(r"checkpoint (\d+) failed, the job goes on", log)
        self.assertIsNotNone(failed, log)
        failed = int(failed.group(1))
        ids = support.complete_checkpoints(self.state_dir())
        self.assertNotIn(failed, ids)
        self.assertTrue(any(i < failed for i in ids) and any(i > failed for i in ids),
                        "checkpoints before and after the full disk: %s" % ids)
        leftovers = os.listdir(os.path.join(self.state_dir(), "checkpoints"))
        self.assertFalse([n for n in leftovers if n.startswith("chk-%d" % failed)], leftovers)
        self.assertIntactCheckpoint("after the full disk")
        self.resume(args)
        self.assertFailureFreeOutput("after a full disk and a crash")

    def test_full_disk_on_a_small_tmpfs(self):
        mount = self.path("tmpfs")
        os.makedirs(mount)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mount],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            raise unittest.SkipTest("cannot mount a tmpfs: " + p.stdout.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mount])
        # State that outgrows the disk: 20000 keys, one window each, open until the end. The
        # output (through a filter) is small, so the sink's staging still fits.
        n, users = 40000, 20000
        lines, items = [], []
        for i in range(n):
            rec = {"ts": support.T0 + i * 2, "user": i % users}
            lines.append(harness.dumps(rec))
            items.append((rec["ts"], rec))
        data = self.write("small.jsonl", "\n".join(lines) + "\n")
        self.write("p.yaml", """name: disk
checkpoints: {interval: 100ms, retain: 3}
sources:
  ev: {type: file, path: small.jsonl, event_time: ts, rate: 10000}
steps:
  w: {type: window, from: ev, key_by: [user], window: {type: tumbling, size: 1h}, aggregate: {n: count()}}
  few: {type: filter, from: w, where: user < 50}
sinks:
  out: {type: file, from: few, path: out/out.jsonl}
""")
        self.assertTrue(os.path.exists(data))
        args = ["run", self.path("p.yaml"), "--state-dir", mount]
        job = support.Job(args, self.path("run-1.log"))
        self.addCleanup(job.kill)
        support.wait_for(lambda: "No space left on device" in job.stderr() or not job.running(),
                         timeout=120, what="a full disk")
        self.assertTrue(job.running(), job.stderr())
        self.assertIn("failed, the job goes on", job.stderr())
        p = harness.run(["checkpoints", mount, "--verify"])
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertIn(b" complete ", p.stdout)
        job.kill()
        log = self.resume(args)
        self.assertIn("resuming from checkpoint " + mount, log)
        rows = support.ref.with_watermarks(items, 0)
        results, _ = support.ref.run_window(rows, ["user"], support.ref.Tumbling(3600000),
                                            [("n", "count", None)])
        expected = harness.multiset(r for r in results if r["user"] < 50)
        self.assertEqual(sum(expected.values()), 50)
        self.assertMultisetEqual(harness.read_multiset(self.path("out/out.jsonl")), expected,
                                 "output after a full disk")

    RESTART = "{strategy: fixed_delay, attempts: 2, delay: 100ms}"

    def test_a_failed_task_restarts_from_the_last_checkpoint(self):
        args = ["run", self.pipeline(restart=self.RESTART, rate=RATE_FAILPOINT)]
        p = harness.run(args, env={"STREAMRUN_FAILPOINT": "task.fail@5=error"}, timeout=180)
        log = p.stderr.decode()
        self.assertEqual(p.returncode, 0, log)
        self.assertIn("failpoint task.fail: injected error; restarting in 100 ms from the last "
                      "checkpoint (restart 1 of 2)", log)
        self.assertRegex(log, r"restarting from \S+/checkpoints/chk-\d+")
        self.assertFailureFreeOutput("after a restart")

    def test_restarts_exhausted_fail_the_job(self):
        args = ["run", self.pipeline(restart=self.RESTART)]
        p = harness.run(args, env={"STREAMRUN_FAILPOINT": "task.fail=error"}, timeout=180)
        log = p.stderr.decode()
        self.assertEqual(p.returncode, 1, log)
        self.assertEqual(log.count("restarting in 100 ms"), 2, log)
        self.assertIn("failed after 2 restart(s), giving up", log)
        self.assertIn("streamrun: failpoint task.fail: injected error", log)


class CheckpointTimeoutTest(harness.TempDirTest):
    def test_a_checkpoint_stuck_behind_a_blocked_sink_times_out_and_the_job_goes_on(self):
        n = 200000
        text = "".join('{"i":%d,"pad":"%s"}\n' % (i, "x" * (i % 50)) for i in range(n))
        self.write("in.jsonl", text)
        path = self.write("p.yaml", """name: to
checkpoints: {interval: 50ms, timeout: 300ms}
sources:
  ev: {type: file, path: in.jsonl, rate: 100000}
sinks:
  out: {type: stdout, from: ev}
""")
        log_path = self.path("run.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([harness.binary(), "run", path, "--log-level", "debug"],
                                    stdout=subprocess.PIPE, stderr=log)
            self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
            # Nobody reads the job's standard output for 2 s: the sink blocks on the full pipe,
            # the queues fill, the source waits, and no barrier gets through.
            time.sleep(2)
            out = proc.stdout.read()
            proc.stdout.close()
            self.assertEqual(proc.wait(timeout=60), 0)
        with open(log_path) as f:
            log = f.read()
        self.assertTrue(out == text.encode(), "the output differs from the input")
        timed_out = [int(m) for m in re.findall(
            r"checkpoint (\d+) timed out after 300 ms and was aborted; the job goes on", log)]
        self.assertTrue(timed_out, log[-3000:])
        completed = [int(m) for m in re.findall(r"checkpoint (\d+) complete", log)]
        self.assertTrue(any(c > max(timed_out) for c in completed),
                        "no checkpoint completed after the timed out ones:\n" + log[-3000:])


if __name__ == "__main__":
    unittest.main()
