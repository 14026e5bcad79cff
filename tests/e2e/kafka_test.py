"""Kafka source and sink end to end, against `streamrun kafka-mock` (librdkafka's mock cluster).

Input goes in with `streamrun replay`, output comes out with `streamrun record`; expected window
results come from reference.py. Each partition's event times only grow and the watermark has no
delay, so no record is late however the partitions interleave (a record is never behind its own
partition's watermark, and the source's is the minimum over partitions): the expected output is
every window over every record, whatever the timing.

The source joins its consumer group (`kjob`): the mock cluster waits 3 s before it forms a new
group (its fixed group.initial.rebalance.delay), and a later member's join waits for the session
timeout less 1 s, so the pipelines here set session.timeout.ms to 4 s (a killed job's member is
dropped that fast too). Not less: the mock drops a member that waits for its first join longer
than its session timeout, so below 3 s nobody ever joins.

The mock's limits shape the checks: readers see aborted transactions' records too (it has no
read_committed), so an exactly-once output is checked after crashes that come before the
transaction is produced (the sink stages its records and produces them at commit time).
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
import kafka_harness
import reference as ref

TIMEOUT = 120
WINDOW_MS = 1000
AGGS = [("c", "count", None), ("s", "sum", ref.field("n"))]
# Consumer settings for tests only: the mock's rebalances wait for the session timeout less 1 s.
GROUP_PROPERTIES = "session.timeout.ms: 4000, heartbeat.interval.ms: 200"
ASSIGNMENT = re.compile(r"group '[^']*' member (\S+): (assigned|revoked) (.*?) \((eager|cooperative)")


def make_records(count, partitions, seed, start_n=0, start_ts=None):
    """Recording lines: users u0..u9, each partition's timestamps increasing."""
    rng = random.Random(seed)
    clock = list(start_ts) if start_ts else [1700000000000] * partitions
    out = []
    for i in range(start_n, start_n + count):
        p = rng.randrange(partitions)
        clock[p] += rng.randrange(0, 40)
        user = "u%d" % rng.randrange(10)
        out.append({"partition": p, "key": user, "timestamp": clock[p],
                    "value": {"user": user, "ts": clock[p], "n": i, "ok": i % 4 != 0}})
    return out, clock


def expected_windows(records):
    rows = sorted(((r["value"]["ts"], r["value"]) for r in records), key=lambda t: (t[0], t[1]["n"]))
    results, late = ref.run_window([(ts, rec, ref.NEG_INF) for ts, rec in rows], ["user"],
                                   ref.Tumbling(WINDOW_MS), AGGS)
    assert not late
    return harness.multiset(results)


PIPELINE = """name: kjob
checkpoints: {{ interval: {interval} }}
restart: {{ strategy: none }}
sources:
  in:
    type: kafka
    brokers: ${{BROKERS}}
    topic: in
    group: kjob
    event_time: ts
    properties: {{ {properties} }}
{source_extra}
steps:
  w:
    type: window
    from: {window_from}
    key_by: [user]
    window: {{ type: tumbling, size: 1s }}
    aggregate: {{ c: count(), s: sum(n) }}
{steps_extra}
sinks:
{sink}
"""

KAFKA_SINK = """  out:
    type: kafka
    from: w
    brokers: ${BROKERS}
    topic: out
    key: user
    delivery: exactly_once
"""

FILE_SINK = """  out:
    type: file
    from: w
    path: out/windows.jsonl
"""


class KafkaPipelineTest(harness.TempDirTest):
    def fresh_dir(self):
        """A new test directory: a new job state and output."""
        self.dir = tempfile.mkdtemp(prefix="streamrun-e2e-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def start_mock(self, brokers=3, topics=("in:3", "out:2")):
        kafka = kafka_harness.KafkaMock(brokers=brokers, topics=topics)
        self.addCleanup(kafka.close, False)
        return kafka

    def replay(self, kafka, records, topic="in", name="in.jsonl"):
        path = self.write_jsonl(name, records)
        p = harness.run(["replay", path, "--brokers", kafka.servers, "--topic", topic], timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))

    def record(self, kafka, topic="out"):
        out = self.path("recorded-%s.jsonl" % topic)
        self.run_ok(["record", "--brokers", kafka.servers, "--topic", topic, "--until", "end", "-o", out],
                    timeout=TIMEOUT)
        return harness.read_jsonl(out)

    def pipeline(self, sink=KAFKA_SINK, interval="100ms", source_extra="", steps_extra="", window_from="in",
                 properties=GROUP_PROPERTIES):
        return self.write("p.yaml", PIPELINE.format(interval=interval, source_extra=source_extra,
                                                    steps_extra=steps_extra, window_from=window_from,
                                                    sink=sink, properties=properties))

    def env(self, kafka, **extra):
        env = {"BROKERS": kafka.servers}
        env.update(extra)
        return env

    def popen(self, args, env):
        full = dict(os.environ)
        full.update(env)
        proc = subprocess.Popen([harness.binary()] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=full)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        self.addCleanup(cleanup)
        return proc

    def wait_for(self, what, done, timeout=TIMEOUT, detail=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(0.05)
        self.fail("timed out waiting for " + what + ("\n" + detail() if detail else ""))

    def checkpoints(self):
        d = os.path.join(self.dir, ".streamrun", "kjob", "checkpoints")
        if not os.path.isdir(d):
            return []
        return [n for n in os.listdir(d) if os.path.exists(os.path.join(d, n, "MANIFEST.json"))]

    def test_kafka_window_kafka_exactly_once(self):
        records, _ = make_records(3000, 3, seed=1)
        expected = expected_windows(records)
        for parallelism in (1, 2):
            with self.subTest(parallelism=parallelism):
                kafka = self.start_mock()
                self.replay(kafka, records)
                path = self.pipeline(source_extra="    stop_at: end")
                self.run_ok(["run", path, "--parallelism", str(parallelism), "--fresh"],
                            env=self.env(kafka), timeout=TIMEOUT)
                out = self.record(kafka)
                self.assertMultisetEqual(harness.multiset(r["value"] for r in out), expected)
                # Keys are the users, timestamps the windows' last milliseconds.
                for r in out:
                    self.assertEqual(r["key"], r["value"]["user"])
                    self.assertEqual(r["timestamp"], r["value"]["window_end"] - 1)
                kafka.close()

    def test_crash_before_the_kafka_commit_then_rerun_commits_exactly_once(self):
        for parallelism in (1, 2):
            with self.subTest(parallelism=parallelism):
                self.fresh_dir()
                self.crash_before_commit_case(parallelism)

    def crash_before_commit_case(self, parallelism):
        records, _ = make_records(3000, 3, seed=2)
        kafka = self.start_mock()
        self.replay(kafka, records)
        path = self.pipeline(interval="50ms")
        # The process dies when the first checkpoint with window results is complete but its
        # transaction not yet produced.
        p = harness.run(["run", path, "--parallelism", str(parallelism)],
                        env=self.env(kafka, STREAMRUN_FAILPOINT="sink.before_commit@1"), timeout=TIMEOUT)
        self.assertEqual(p.returncode, 86, p.stderr.decode(errors="replace"))
        self.assertEqual(self.record(kafka), [])
        p = self.run_ok(["run", path, "--parallelism", str(parallelism), "--set", "sources.in.stop_at=end"],
                        env=self.env(kafka), timeout=TIMEOUT)
        self.assertIn("committing the staged output of checkpoint", p.stderr.decode(errors="replace"))
        out = self.record(kafka)
        self.assertMultisetEqual(harness.multiset(r["value"] for r in out), expected_windows(records))

    def test_kill_9_then_rerun_gives_no_loss_and_no_duplicate(self):
        for parallelism in (1, 2):
            with self.subTest(parallelism=parallelism):
                self.fresh_dir()
                self.kill_9_case(parallelism)

    def kill_9_case(self, parallelism):
        first, clock = make_records(4000, 3, seed=3)
        second, _ = make_records(4000, 3, seed=4, start_n=4000, start_ts=clock)
        kafka = self.start_mock()
        self.replay(kafka, first, name="first.jsonl")
        path = self.pipeline(sink=FILE_SINK, interval="100ms")
        # Unbounded: the job reads what there is and waits for more; it is killed once a few
        # checkpoints exist.
        proc = self.popen(["run", path, "--parallelism", str(parallelism)], env=self.env(kafka))
        self.wait_for("three checkpoints", lambda: len(self.checkpoints()) >= 2 or proc.poll() is not None)
        self.assertRunning(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        self.replay(kafka, second, name="second.jsonl")
        # The same job again, now ending at the topic's end: it resumes from its last checkpoint.
        p = self.run_ok(["run", path, "--parallelism", str(parallelism), "--set", "sources.in.stop_at=end"],
                        env=self.env(kafka), timeout=TIMEOUT)
        self.assertIn("resum", p.stderr.decode(errors="replace").lower())
        actual = harness.read_multiset(self.path("out/windows.jsonl"))
        self.assertMultisetEqual(actual, expected_windows(first + second))

    def test_a_leader_down_for_10_s_and_request_errors_are_survived(self):
        for parallelism in (1, 2):
            with self.subTest(parallelism=parallelism):
                self.fresh_dir()
                self.leader_down_case(parallelism)

    def leader_down_case(self, parallelism):
        first, clock = make_records(2000, 3, seed=5)
        second, _ = make_records(2000, 3, seed=6, start_n=2000, start_ts=clock)
        kafka = self.start_mock()
        kafka.command("leader in 0 2")
        kafka.command("leader out 0 2")
        self.replay(kafka, first, name="first.jsonl")
        path = self.pipeline(steps_extra="""  ok:
    type: filter
    from: in
    where: ok""", window_from="ok")
        proc = self.popen(["run", path, "--parallelism", str(parallelism)], env=self.env(kafka))
        self.wait_for("a checkpoint", lambda: len(self.checkpoints()) >= 1 or proc.poll() is not None)
        kafka.command("push-errors Fetch 5 NOT_LEADER_FOR_PARTITION")
        kafka.command("push-errors Produce 3 REQUEST_TIMED_OUT")
        kafka.command("push-errors ListOffsets 2 LEADER_NOT_AVAILABLE")
        kafka.command("broker-down 2")
        # More input while partition 0's leader is away: replay waits for it too.
        replay = threading.Thread(target=self.replay, args=(kafka, second), kwargs={"name": "second.jsonl"})
        replay.start()
        time.sleep(10)
        kafka.command("broker-up 2")
        replay.join(TIMEOUT)
        self.assertRunning(proc)
        # Everything read, then the input ends: windows fire, the sink commits, exit 0.
        self.wait_for("all input read", lambda: self.source_read(path, kafka) >= 4000)
        self.run_ok(["stop", path, "--drain"], env=self.env(kafka), timeout=TIMEOUT)
        _, err = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
        ok = [r for r in first + second if r["value"]["ok"]]
        out = self.record(kafka)
        self.assertMultisetEqual(harness.multiset(r["value"] for r in out), expected_windows(ok))

    def assertRunning(self, proc):
        if proc.poll() is not None:
            self.fail("the job ended (%d):\n%s" % (proc.returncode, proc.communicate()[1].decode(errors="replace")))

    def source_read(self, path, kafka):
        return harness.records_out(path, "in", env=self.env(kafka), timeout=TIMEOUT)

    def status_of(self, path, kafka, name="in"):
        """The node's entry of `status --json`, or None while the job does not answer."""
        p = harness.run(["status", path, "--json"], env=self.env(kafka), timeout=TIMEOUT)
        if p.returncode != 0:
            return None
        try:
            status = json.loads(p.stdout)
        except ValueError:
            return None
        for node in status.get("nodes", []):
            if node.get("name") == name:
                return node
        return None

    def test_a_source_paused_by_a_slow_sink_stays_in_its_group(self):
        records, _ = make_records(60000, 2, seed=7)
        expected = harness.multiset(r["value"] for r in records)
        for parallelism in (1, 2):
            with self.subTest(parallelism=parallelism):
                self.fresh_dir()
                kafka = self.start_mock(topics=("in:2",))
                # Partition 1's records come while the source is held back: it may have taken
                # none of them when its partitions are paused, which drops what they fetched.
                self.replay(kafka, [r for r in records if r["partition"] == 0], name="p0.jsonl")
                # Unbounded, so a member of its group; the member's deadlines are far shorter
                # than the stall below.
                path = self.write("p.yaml", """name: slow
sources:
  in:
    type: kafka
    brokers: ${BROKERS}
    topic: in
    group: slow
    properties: { max.poll.interval.ms: 4000, session.timeout.ms: 4000, heartbeat.interval.ms: 200 }
sinks:
  out: { type: stdout, from: in }
""")
                proc = subprocess.Popen([harness.binary(), "run", path, "--parallelism", str(parallelism)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=dict(os.environ, BROKERS=kafka.servers), bufsize=0)

                def cleanup(proc=proc):
                    if proc.poll() is None:
                        proc.kill()
                    proc.wait()
                    proc.stdout.close()
                    proc.stderr.close()
                self.addCleanup(cleanup)
                err = []
                t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
                t.start()
                out = proc.stdout.read(4096)
                # Nobody reads: the queues fill and the source is held back for 6 s, longer than
                # max.poll.interval.ms and session.timeout.ms.
                self.replay(kafka, [r for r in records if r["partition"] == 1], name="p1.jsonl")
                time.sleep(2)
                node = self.status_of(path, kafka)
                time.sleep(4)
                while out.count(b"\n") < len(records):
                    chunk = proc.stdout.read(1 << 16)
                    if not chunk:
                        break
                    out += chunk
                self.run_ok(["stop", path, "--drain"], env=self.env(kafka), timeout=TIMEOUT)
                out += proc.stdout.read()
                proc.wait(TIMEOUT)
                t.join(TIMEOUT)
                stderr = b"".join(err).decode(errors="replace")
                self.assertEqual(proc.returncode, 0, stderr)
                self.assertIsNotNone(node, stderr)
                self.assertGreaterEqual(node["pauses"], 1, node)
                # Complete, no duplicate: paused partitions dropped what they had fetched and
                # were read again from the subtask's position.
                self.assertMultisetEqual(harness.multiset(json.loads(line) for line in out.splitlines()), expected)
                # Never left the group: one assignment, no revocation, no poll deadline missed.
                changes = ASSIGNMENT.findall(stderr)
                self.assertEqual([c[1] for c in changes], ["assigned"], stderr)
                self.assertIn("in/0@0", changes[0][2])
                self.assertIn("in/1@0", changes[0][2])
                for word in ("MAX_POLL", "revoke", "warn", "error"):
                    self.assertNotIn(word, stderr)
                kafka.close()

    def test_a_bounded_source_reads_every_partition_without_joining_its_group(self):
        records, _ = make_records(3000, 3, seed=8)
        kafka = self.start_mock(topics=("in:3",))
        self.replay(kafka, records)
        path = self.pipeline(sink=FILE_SINK, source_extra="    stop_at: end")
        # Another member holds the group: a bounded read does not share the partitions with it.
        other = subprocess.Popen(["kcat", "-b", kafka.servers, "-G", "kjob", "in", "-q",
                                  "-X", "session.timeout.ms=4000", "-X", "heartbeat.interval.ms=200"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            started = time.monotonic()
            p = self.run_ok(["run", path, "--parallelism", "2"], env=self.env(kafka), timeout=TIMEOUT)
            took = time.monotonic() - started
        finally:
            other.terminate()
            other.wait(TIMEOUT)
        err = p.stderr.decode(errors="replace")
        self.assertIn("not as a member of group 'kjob'", err)
        self.assertEqual(ASSIGNMENT.findall(err), [])
        self.assertLess(took, 3, err)  # no wait for the group to form
        actual = harness.read_multiset(self.path("out/windows.jsonl"))
        self.assertMultisetEqual(actual, expected_windows(records))

    def test_rebalances_are_handled(self):
        """Another member joins the group mid-run, takes some partitions and leaves: the job gets
        them back where it left them and its output is exact."""
        cases = [("range,roundrobin", 2), ("range,roundrobin", 1), ("cooperative-sticky", 2)]
        for strategy, parallelism in cases:
            with self.subTest(strategy=strategy, parallelism=parallelism):
                self.rebalance_case(strategy, parallelism)

    def rebalance_case(self, strategy, parallelism):
        batches, clock = [], None
        for i in range(3):
            b, clock = make_records(3000, 4, seed=20 + i, start_n=3000 * i, start_ts=clock)
            batches.append(b)
        kafka = self.start_mock(topics=("in:4",))
        self.replay(kafka, batches[0], name="b0.jsonl")
        path = self.pipeline(sink=FILE_SINK, interval="100ms",
                             properties=GROUP_PROPERTIES + ", partition.assignment.strategy: '%s'" % strategy)
        if os.path.exists(self.path("out")):
            for n in os.listdir(self.path("out")):
                os.remove(os.path.join(self.path("out"), n))
        proc = subprocess.Popen([harness.binary(), "run", path, "--fresh", "--parallelism", str(parallelism)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=dict(os.environ, BROKERS=kafka.servers))
        log = []
        reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
        reader.start()

        try:
            self.rebalance_steps(kafka, path, proc, log, batches, strategy)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(TIMEOUT)
            proc.stderr.close()
        kafka.close()

    def rebalance_steps(self, kafka, path, proc, log, batches, strategy):
        parts = ["in/%d" % p for p in range(4)]

        def text():
            return b"".join(log).decode(errors="replace")

        def held():
            """The job's partitions now, from its log; the member ids it had."""
            have, members = set(), set()
            for line in list(log):
                m = ASSIGNMENT.search(line.decode(errors="replace"))
                if not m:
                    continue
                members.add(m.group(1))
                named = set(re.findall(r"in/\d+", m.group(3)))
                if m.group(2) == "assigned":
                    have = have | named if m.group(4) == "cooperative" else named
                else:
                    have = have - named
            return have, members

        self.wait_for("the job's assignment", lambda: held()[0] == set(parts) or proc.poll() is not None,
                      detail=text)
        self.assertIsNone(proc.poll(), text())
        self.wait_for("the first input read", lambda: self.source_read(path, kafka) >= 3000, detail=text)
        other = subprocess.Popen(["kcat", "-b", kafka.servers, "-G", "kjob", "in", "-q",
                                  "-X", "session.timeout.ms=4000", "-X", "heartbeat.interval.ms=200",
                                  "-X", "partition.assignment.strategy=" + strategy],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop_other():
            if other.poll() is None:
                other.kill()
            other.communicate()
        self.addCleanup(stop_other)
        self.wait_for("the other member to take partitions",
                      lambda: (held()[0] and held()[0] != set(parts)) or proc.poll() is not None, detail=text)
        self.assertIsNone(proc.poll(), text())
        taken = set(parts) - held()[0]
        # Records for both members while the other one holds its partitions.
        self.replay(kafka, batches[1], name="b1.jsonl")
        time.sleep(1)
        # The other member leaves the group (kcat closes its consumer on SIGTERM).
        other.terminate()
        other.communicate(timeout=TIMEOUT)
        self.wait_for("the partitions back", lambda: held()[0] == set(parts) or proc.poll() is not None,
                      detail=text)
        self.assertIsNone(proc.poll(), text())
        self.replay(kafka, batches[2], name="b2.jsonl")
        self.wait_for("all input read", lambda: self.source_read(path, kafka) >= 9000 or proc.poll() is not None,
                      detail=text)
        self.assertIsNone(proc.poll(), text())
        self.run_ok(["stop", path, "--drain"], env=self.env(kafka), timeout=TIMEOUT)
        proc.wait(TIMEOUT)
        self.assertEqual(proc.returncode, 0, text())
        self.assertTrue(taken, text())
        self.assertEqual(len(held()[1]), 1, text())  # one member id throughout
        protocol = "cooperative" if strategy == "cooperative-sticky" else "eager"
        self.assertEqual({m.group(4) for m in ASSIGNMENT.finditer(text())}, {protocol})
        self.assertNotIn("MAX_POLL", text())
        # Exactly the windows of every record: none lost while the other member had them, none
        # read twice when they came back.
        actual = harness.read_multiset(self.path("out/windows.jsonl"))
        self.assertMultisetEqual(actual, expected_windows(batches[0] + batches[1] + batches[2]))

    def test_secrets_never_appear_in_messages_or_graphs(self):
        secret = "hunter2-do-not-print"
        path = self.write("p.yaml", """name: secret
sources:
  in:
    type: kafka
    brokers: 127.0.0.1:1
    topic: in
    properties:
      sasl.username: alice
      sasl.password: %s
      ssl.key.password: %s
      fetch.wait.max.ms: %s
sinks:
  out: { type: stdout, from: in }
""" % (secret, secret, "soon"))
        p = harness.run(["validate", path])
        self.assertEqual(p.returncode, 2)
        err = p.stderr.decode()
        self.assertIn("p.yaml:11:", err)
        self.assertIn("fetch.wait.max.ms", err)
        self.assertNotIn(secret, err)
        with open(path) as f:
            good = self.write("good.yaml", f.read().replace("fetch.wait.max.ms: soon", "fetch.wait.max.ms: 10"))
        for args in (["validate", good], ["graph", good], ["graph", good, "--format", "mermaid"]):
            p = harness.run(args)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertNotIn(secret, (p.stdout + p.stderr).decode())


if __name__ == "__main__":
    unittest.main()
