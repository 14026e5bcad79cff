"""Savepoints of a running job, stop with a savepoint, restores at another parallelism,
`savepoint check` verdicts, and `state dump` (DESIGN.md "State, checkpoints, savepoints").

The job reads a seeded input through a throttled file source (2.5 s for the whole input), so it
is still running when the tests take their savepoints; they wait for the control socket and
for the job's progress instead of sleeping. Expected output comes from the reference model,
and the state a savepoint holds is compared with the windows the model holds at the
savepoint's source position.
"""
import json
import os
import re
import unittest

import checkpoint_support as support
import harness
import reference as ref

SEED = 77
N = 100000
RATE = 40000  # records per second: 2.5 s for the whole input


class SavepointTest(harness.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.shared = support.SharedInput("streamrun-e2e-sp-", SEED, N)
        cls.input, cls.items = cls.shared.path, cls.shared.items
        # Where each line ends, to find the lines before a source position.
        cls.line_ends = []
        end = 0
        for line in cls.shared.text.splitlines(True):
            end += len(line)
            cls.line_ends.append(end)
        cls.expected_out, cls.expected_late = support.model(cls.items)

    @classmethod
    def tearDownClass(cls):
        cls.shared.remove()

    # ------------------------------------------------------------------------------ helpers

    def pipeline(self, name="p.yaml", **kw):
        kw.setdefault("rate", RATE)
        kw.setdefault("interval", "200ms")
        return self.write(name, support.pipeline(self.input, name="sp", **kw))

    def state_dir(self):
        return self.path(".streamrun/sp")

    def start(self, args, progress):
        """Starts `run ARGS`, waits for its control socket and until its source has read
        `progress` (a share) of the input."""
        job = support.Job(args, self.path("run-%d.log" % len(os.listdir(self.dir))))
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        pipeline = args[1]
        support.wait_for(lambda: not job.running() or
                         support.records_read(pipeline) >= progress * N,
                         timeout=60, interval=0.05, what="the job's progress")
        self.assertTrue(job.running(), "the job ended before the savepoint:\n" + job.stderr())
        return job

    def savepoint_path(self, p):
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        path = p.stdout.decode().strip()
        self.assertTrue(os.path.isabs(path), path)
        self.assertTrue(os.path.isfile(os.path.join(path, "MANIFEST.json")), path)
        with open(os.path.join(path, "MANIFEST.json")) as f:
            self.assertEqual(json.load(f)["kind"], "savepoint")
        return path

    def assertModelOutput(self, what, late=True):
        self.assertMultisetEqual(harness.read_multiset(self.path("out/out.jsonl")),
                                 self.expected_out, what + ": out/out.jsonl")
        if late:
            self.assertMultisetEqual(harness.read_multiset(self.path("out/late.jsonl")),
                                     self.expected_late, what + ": out/late.jsonl")

    def dump(self, path, *args):
        p = harness.run(["state", "dump", path] + list(args))
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return harness.parse_lines(p.stdout)

    def assertStateIsTheModelsAtItsPosition(self, snapshot):
        """The windows the snapshot holds are those the reference model holds after the lines
        before the snapshot's source position."""
        lines = self.dump(snapshot)
        positions = [l["position"] for l in lines if l.get("source") == "ev"]
        self.assertEqual(len(positions), 1, lines[:3])
        offset = positions[0]["offset"]
        k = self.line_ends.index(offset) + 1 if offset else 0
        self.assertGreater(k, 0)
        self.assertEqual(positions[0]["max_ts"], max(ts for ts, _ in self.items[:k]))
        rows = ref.with_watermarks(self.items[:k], support.OUT_OF_ORDERNESS_MS)
        held = []
        ref.run_window(rows, ["user"], ref.Tumbling(support.WINDOW_MS), support.AGGS,
                       end_watermark=ref.watermark_after(self.items[:k],
                                                         support.OUT_OF_ORDERNESS_MS),
                       open_windows=held)
        state = []
        for l in lines:
            if l.get("step") != "w":
                continue
            self.assertFalse(l["value"]["fired"])
            record = {"user": l["key"][0], "window_start": l["window"]["start"],
                      "window_end": l["window"]["end"]}
            for agg in l["value"]["aggregates"]:
                record[agg["name"]] = agg["result"]
            state.append(record)
        self.assertGreater(len(held), 10)
        self.assertMultisetEqual(harness.multiset(state), harness.multiset(held),
                                 "windows in %s after %d lines" % (snapshot, k))

    # ------------------------------------------------------------------------------ tests

    def test_savepoint_and_stop_with_savepoint_restore_at_parallelism_2(self):
        path = self.pipeline()
        job = self.start(["run", path], progress=0.2)
        first = self.savepoint_path(harness.run(["savepoint", path]))
        self.assertEqual(os.path.dirname(first), os.path.join(self.state_dir(), "savepoints"))
        listing = self.run_ok(["checkpoints", path]).stdout.decode()
        self.assertRegex(listing, r"savepoints in .*\n.*\n\d+ +complete .*" + re.escape(first))
        support.wait_for(lambda: not job.running() or support.records_read(path) >= 0.5 * N,
                         interval=0.05, what="more progress")
        second = self.savepoint_path(harness.run(["stop", path, "--savepoint"]))
        self.assertEqual(job.wait(), 130, job.stderr())
        self.assertIn("savepoint taken: " + second, job.stderr())
        self.assertStateIsTheModelsAtItsPosition(first)
        self.assertStateIsTheModelsAtItsPosition(second)

        p = self.run_ok(["restore", second, path, "--parallelism", "2"])
        self.assertIn(b"restoring from savepoint " + second.encode(), p.stderr)
        self.assertModelOutput("restored at parallelism 2 from the stop's savepoint")
        # The earlier savepoint still restores: the sinks go back to what it had committed.
        self.run_ok(["run", path, "--from-savepoint", first, "--parallelism", "2"])
        self.assertModelOutput("restored at parallelism 2 from the first savepoint")

    def test_savepoint_at_parallelism_2_restores_at_parallelism_1(self):
        path = self.pipeline(parallelism=2)
        job = self.start(["run", path], progress=0.3)
        target = self.path("elsewhere")
        sp = self.savepoint_path(harness.run(["stop", path, "--savepoint", "--target", target]))
        self.assertEqual(os.path.dirname(sp), target)
        self.assertEqual(job.wait(), 130, job.stderr())
        self.assertStateIsTheModelsAtItsPosition(sp)
        with open(os.path.join(sp, "MANIFEST.json")) as f:
            nodes = json.load(f)["metadata"]["nodes"]
        self.assertEqual(len(nodes["w"]["subtasks"]), 2)
        self.run_ok(["restore", sp, path, "--parallelism", "1"])
        self.assertModelOutput("restored at parallelism 1 from parallelism 2")

    def test_a_throttled_sources_savepoint_restores_unthrottled_and_back(self):
        # A position is a byte offset (every line starting at or after it): a throttled source
        # (read as a line stream) and an unthrottled one (read in chunks, split) resume from
        # each other's positions.
        path = self.pipeline()
        job = self.start(["run", path], progress=0.3)
        sp = self.savepoint_path(harness.run(["stop", path, "--savepoint"]))
        self.assertEqual(job.wait(), 130, job.stderr())
        self.run_ok(["restore", sp, path, "--set", "sources.ev.rate=0", "--parallelism", "2"])
        self.assertModelOutput("a stream's savepoint restored in chunks at parallelism 2")

    def test_stop_with_savepoint_and_drain_fires_everything_then_restores(self):
        path = self.pipeline()
        job = self.start(["run", path], progress=0.3)
        sp = self.savepoint_path(harness.run(["stop", path, "--savepoint", "--drain"]))
        # Drained: its input ended where it was, every window fired, the sinks committed.
        self.assertEqual(job.wait(), 0, job.stderr())
        read = int(re.search(r"ev: (\d+) read", job.stderr()).group(1))
        self.assertLess(read, N)
        self.assertIn(b"no checkpoints", self.run_ok(["checkpoints", path]).stdout)
        out, late = support.model(self.items[:read])
        self.assertMultisetEqual(harness.read_multiset(self.path("out/out.jsonl")), out,
                                 "drained after %d lines: out" % read)
        self.assertMultisetEqual(harness.read_multiset(self.path("out/late.jsonl")), late,
                                 "drained after %d lines: late" % read)
        # The savepoint was taken before the drain: restored, the job reads on from there.
        self.run_ok(["restore", sp, path])
        self.assertModelOutput("restored from the savepoint of a drained job")

    def test_crash_while_writing_a_savepoint(self):
        path = self.pipeline()
        job = support.Job(["run", path], self.path("run.log"),
                          env={"STREAMRUN_FAILPOINT": "savepoint.after_manifest"})
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        support.wait_for(lambda: support.complete_checkpoints(self.state_dir()),
                         what="a checkpoint")
        p = harness.run(["savepoint", path])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(job.wait(), 86, job.stderr())
        # Written but never renamed: no savepoint, an incomplete directory.
        listing = self.run_ok(["checkpoints", path]).stdout.decode()
        leftover = re.search(r"savepoints in .*\n.*\n- +in progress .* (/\S+/sp-\S+\.tmp)\n",
                             listing)
        self.assertIsNotNone(leftover, listing)
        self.assertTrue(os.path.isfile(os.path.join(leftover.group(1), "MANIFEST.json")))
        log = self.run_ok(["run", path]).stderr.decode()
        self.assertIn("resuming from checkpoint", log)
        # The next job on the state directory removes what the crash left.
        self.assertIn("removed %s: a savepoint left unfinished by a crash" % leftover.group(1), log)
        self.assertFalse(os.path.exists(leftover.group(1)))
        self.assertEqual(os.listdir(os.path.join(self.state_dir(), "savepoints")), [])
        self.assertModelOutput("after a crash while writing a savepoint")

    def test_crash_while_writing_a_savepoint_into_a_target_is_tidied_by_the_next(self):
        path = self.pipeline()
        target = self.path("elsewhere")
        job = support.Job(["run", path], self.path("run.log"),
                          env={"STREAMRUN_FAILPOINT": "savepoint.before_manifest"})
        self.addCleanup(job.kill)
        support.wait_for_socket(self.state_dir(), job)
        p = harness.run(["savepoint", path, "--target", target])
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(job.wait(), 86, job.stderr())
        [leftover] = os.listdir(target)
        self.assertRegex(leftover, r"^sp-\S+\.tmp$")
        # Not the state directory's: the job's start leaves it; its next savepoint there removes it.
        job = self.start(["run", path], progress=0.2)
        self.assertEqual(os.listdir(target), [leftover])
        sp = self.savepoint_path(harness.run(["stop", path, "--savepoint", "--target", target]))
        self.assertEqual(job.wait(), 130, job.stderr())
        self.assertEqual(os.listdir(target), [os.path.basename(sp)])
        self.assertIn("removed %s: a savepoint left unfinished by a crash" %
                      os.path.join(target, leftover), job.stderr())
        self.run_ok(["restore", sp, path])
        self.assertModelOutput("restored from a savepoint taken after a crash in another")

    def test_savepoint_check_verdicts(self):
        w2 = """
  w2:
    type: window
    from: ev
    key_by: [user]
    window: {type: tumbling, size: 5s}
    aggregate: {c: count()}"""
        out2 = "\n  out2: {type: file, from: w2, path: out/out2.jsonl}"
        w3 = w2.replace("w2", "w3").replace("5s", "20s")
        out3 = out2.replace("2", "3")
        full = self.pipeline("a.yaml", extra_steps=w2, extra_sinks=out2)
        job = self.start(["run", full], progress=0.3)
        sp = self.savepoint_path(harness.run(["stop", full, "--savepoint"]))
        self.assertEqual(job.wait(), 130)

        def check(pipeline):
            p = harness.run(["savepoint", "check", sp, pipeline])
            verdicts = {}
            for line in p.stdout.decode().splitlines():
                name, role, verdict = line.split()[:3]
                verdicts[name] = (role, verdict)
            return p.returncode, verdicts

        code, verdicts = check(full)
        self.assertEqual(code, 0)
        self.assertEqual(verdicts, {"ev": ("source", "restored"), "w": ("step", "restored"),
                                    "w2": ("step", "restored"), "out": ("sink", "restored"),
                                    "late": ("sink", "restored"), "out2": ("sink", "restored")})

        more = self.pipeline("b.yaml", extra_steps=w2 + w3, extra_sinks=out2 + out3)
        code, verdicts = check(more)
        self.assertEqual(code, 0)
        self.assertEqual(verdicts["w3"], ("step", "new"))
        self.assertEqual(verdicts["out3"], ("sink", "new"))
        self.assertEqual(verdicts["w"], ("step", "restored"))

        fewer = self.pipeline("c.yaml")
        code, verdicts = check(fewer)
        self.assertEqual(code, 1)
        self.assertEqual(verdicts["w2"], ("step", "dropped"))
        self.assertEqual(verdicts["out2"], ("sink", "dropped"))
        self.assertEqual(verdicts["w"], ("step", "restored"))
        p = harness.run(["run", fewer, "--from-savepoint", sp])
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertIn(b"--allow-non-restored-state", p.stderr)
        self.assertIn(b"'w2'", p.stderr)
        self.run_ok(["run", fewer, "--from-savepoint", sp, "--allow-non-restored-state"])
        self.assertModelOutput("restored without the dropped step")

        changed = self.pipeline(
            "d.yaml", extra_steps=w2, extra_sinks=out2,
            aggregates="{n: count(), total: sum(v), last_v: last(v), d: count_distinct(v), "
                       "hi: max(v)}")
        code, verdicts = check(changed)
        self.assertEqual(code, 1)
        self.assertEqual(verdicts["w"], ("step", "incompatible"))
        self.assertEqual(verdicts["w2"], ("step", "restored"))
        p = harness.run(["restore", sp, changed])
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertIn(b"cannot restore step 'w'", p.stderr)

    def test_state_dump_filters_by_step_and_key_and_refuses_a_damaged_snapshot(self):
        path = self.pipeline()
        p = harness.run(["run", path], env={"STREAMRUN_FAILPOINT": "checkpoint.before_barrier@3"})
        self.assertEqual(p.returncode, 86, p.stderr.decode())
        chk = os.path.join(self.state_dir(), "checkpoints",
                           "chk-%d" % support.complete_checkpoints(self.state_dir())[-1])
        everything = self.dump(chk)
        kinds = collections_count(everything)
        self.assertEqual(kinds["source"], 1)
        self.assertEqual(kinds["sink"], 2)
        self.assertGreater(kinds["step"], 100)
        for line in everything:
            if "step" in line:
                self.assertEqual(set(line), {"step", "key_group", "key", "window", "value"})
                self.assertEqual([a["name"] for a in line["value"]["aggregates"]],
                                 ["n", "total", "last_v", "d"])
                self.assertEqual([a["kind"] for a in line["value"]["aggregates"]],
                                 ["count", "sum", "last", "count_distinct"])
                self.assertEqual(line["value"]["aggregates"][3]["result"],
                                 len(line["value"]["aggregates"][3]["accumulator"]["distinct"]))
        user = next(l for l in everything if "step" in l)["key"][0]
        mine = [l for l in everything if l.get("key") == [user]]
        self.assertEqual(self.dump(chk, "--key", user), mine)
        self.assertEqual(self.dump(chk, "--key", json.dumps([user])), mine)
        self.assertEqual(self.dump(chk, "--step", "w", "--key", user), mine)
        self.assertEqual(self.dump(chk, "--key", "nobody"), [])
        sink = self.dump(chk, "--step", "out")
        self.assertEqual(len(sink), 1)
        self.assertEqual(sink[0]["sink"], "out")
        self.assertIsInstance(sink[0]["committed"], int)
        self.assertEqual(self.dump(chk, "--step", "ev"),
                         [l for l in everything if l.get("source") == "ev"])
        p = harness.run(["state", "dump", chk, "--step", "ww"])
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"did you mean 'w'", p.stderr)

        state = os.path.join(chk, "w", "0.state")
        with open(state, "r+b") as f:
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 1]))
        p = harness.run(["state", "dump", chk])
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"w/0.state: checksum", p.stderr)
        self.assertEqual(p.stdout, b"")


def collections_count(lines):
    counts = {"source": 0, "step": 0, "sink": 0}
    for line in lines:
        for kind in counts:
            if kind in line:
                counts[kind] += 1
    return counts


if __name__ == "__main__":
    unittest.main()
