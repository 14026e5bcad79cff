"""The Kafka sink's failures end to end, against `streamrun kafka-mock`: transactions that fail
in every attempt or are fenced fail the job, whose restart strategy runs it again from its
checkpoint and commits exactly once; secret properties stay out of every output while brokers
fail.

Input goes in with `streamrun replay`, output comes out with `streamrun record`. Expected
windows come from reference.py. The faults are injected on AddPartitionsToTxn, the request
that comes before any record of a transaction reaches the log: the mock shows the records of
aborted transactions to every reader (no read_committed), so a fault after them could not be
told from a duplicate.
"""
import os
import stat
import subprocess
import time

import harness
import kafka_harness
import reference as ref

TIMEOUT = 120
BASE_TS = 1700000000000
SECRET = "hunter2-do-not-print"


def click_records(count):
    """Recording lines for one partition: users u0..u4, one record every 100 ms."""
    return [{"partition": 0, "key": "u%d" % (i % 5), "timestamp": BASE_TS + i * 100,
             "value": {"user": "u%d" % (i % 5), "ts": BASE_TS + i * 100, "n": i}} for i in range(count)]


def expected_counts(records):
    rows = [(r["value"]["ts"], r["value"], ref.NEG_INF) for r in records]
    results, late = ref.run_window(rows, ["user"], ref.Tumbling(1000),
                                   [("c", "count", None), ("s", "sum", ref.field("n"))])
    assert not late
    return harness.multiset(results)


WINDOW_JOB = """name: delivery
checkpoints: { interval: 200ms }
restart: { strategy: fixed_delay, attempts: 3, delay: 100ms }
sources:
  in:
    type: kafka
    brokers: ${BROKERS}
    topic: in
    event_time: ts
steps:
  w:
    type: window
    from: in
    key_by: [user]
    window: { type: tumbling, size: 1s }
    aggregate: { c: count(), s: sum(n) }
sinks:
  out:
    type: kafka
    from: w
    brokers: ${BROKERS}
    topic: out
    key: user
    delivery: exactly_once
"""


class KafkaDeliveryTest(harness.TempDirTest):
    def start_mock(self, **kw):
        kafka = kafka_harness.KafkaMock(**kw)
        self.addCleanup(kafka.close, False)
        return kafka

    def replay(self, kafka, records, topic="in"):
        path = self.write_jsonl("in-%d.jsonl" % len(records), records)
        self.run_ok(["replay", path, "--brokers", kafka.servers, "--topic", topic], timeout=TIMEOUT)

    def record(self, kafka, topic="out"):
        out = self.path("recorded-%s.jsonl" % topic)
        self.run_ok(["record", "--brokers", kafka.servers, "--topic", topic, "--until", "end", "-o", out],
                    timeout=TIMEOUT)
        return harness.read_jsonl(out)

    def start_job(self, path, kafka, args=()):
        """`run PATH` in the background; its stdout and stderr go to files."""
        out = open(self.path("job.out"), "wb")
        err = open(self.path("job.err"), "wb")
        env = dict(os.environ, BROKERS=kafka.servers, KAFKA_PASSWORD=SECRET)
        proc = subprocess.Popen([harness.binary(), "run", path] + list(args), stdout=out, stderr=err, env=env)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            out.close()
            err.close()
        self.addCleanup(cleanup)
        return proc

    def job_stderr(self):
        with open(self.path("job.err"), "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for(self, what, done, proc=None):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if done():
                return
            if proc is not None and proc.poll() is not None:
                self.fail("the job ended (%d) before %s:\n%s" % (proc.returncode, what, self.job_stderr()[-4000:]))
            time.sleep(0.05)
        self.fail("timed out waiting for %s:\n%s" % (what, self.job_stderr()[-4000:]))

    def run_until_restarted_then_finish(self, kafka):
        """Runs WINDOW_JOB (unbounded) until its restart committed a checkpoint's staged output,
        stops it, and runs it again to the end of its input, as kafka_test.py does after a kill.
        Returns the first run's stderr."""
        path = self.write("p.yaml", WINDOW_JOB)
        env = {"BROKERS": kafka.servers}
        proc = self.start_job(path, kafka)
        self.wait_for("the restart's commit", lambda: "committing the staged output of checkpoint" in self.job_stderr(),
                      proc)
        self.run_ok(["stop", path], env=env, timeout=TIMEOUT)
        self.assertIn(proc.wait(TIMEOUT), (0, 130), self.job_stderr())
        self.run_ok(["run", path, "--set", "sources.in.stop_at=end"], env=env, timeout=TIMEOUT)
        return self.job_stderr()

    def test_abortable_errors_in_every_attempt_restart_the_job_from_its_checkpoint(self):
        kafka = self.start_mock(brokers=1, topics=["in:1", "out:2"])
        records = click_records(300)
        self.replay(kafka, records)
        # Each attempt of the first transaction fails with an abortable error and is aborted; the
        # third fails the job.
        kafka.command("push-errors AddPartitionsToTxn 3 TOPIC_AUTHORIZATION_FAILED")
        err = self.run_until_restarted_then_finish(kafka)
        self.assertEqual(err.count("(trying again)"), 2, err)
        self.assertIn("restarting in 100 ms from the last checkpoint (restart 1 of 3)", err)
        self.assertNotIn("restart 2 of 3", err)
        out = self.record(kafka)
        self.assertMultisetEqual(harness.multiset(r["value"] for r in out), expected_counts(records))

    def test_a_fenced_sink_fails_the_job_at_once_and_the_restart_commits_exactly_once(self):
        kafka = self.start_mock(brokers=1, topics=["in:1", "out:2"])
        records = click_records(300)
        self.replay(kafka, records)
        # The mock does not fence by itself: its answer says another producer took the id.
        kafka.command("push-errors AddPartitionsToTxn 1 PRODUCER_FENCED")
        err = self.run_until_restarted_then_finish(kafka)
        self.assertIn("took over", err)
        self.assertNotIn("(trying again)", err)  # no second attempt against the other producer
        self.assertIn("(restart 1 of 3)", err)
        out = self.record(kafka)
        self.assertMultisetEqual(harness.multiset(r["value"] for r in out), expected_counts(records))

    def test_secrets_stay_out_of_logs_status_and_errors(self):
        # Partition in[0] on broker 1, out[0] on broker 2, which then fails: the sink's deliveries
        # time out and the job fails with an error message.
        kafka = self.start_mock(brokers=2, topics=["in:1", "out:1"])
        kafka.command("leader in 0 1")
        kafka.command("leader out 0 2")
        self.replay(kafka, click_records(20))
        path = self.write("secret.yaml", """name: secret
checkpoints: { interval: 200ms }
sources:
  in:
    type: kafka
    brokers: ${BROKERS}
    topic: in
    group: secret-job
    properties:
      sasl.username: alice
      sasl.password: ${KAFKA_PASSWORD}
      ssl.key.password: %s
      debug: conf,broker,security
sinks:
  out:
    type: kafka
    from: in
    brokers: ${BROKERS}
    topic: out
    properties:
      sasl.password: ${KAFKA_PASSWORD}
      ssl.keystore.password: %s
      message.timeout.ms: 2000
      debug: conf,msg
""" % (SECRET, SECRET))
        outputs = {}
        env = {"BROKERS": kafka.servers, "KAFKA_PASSWORD": SECRET}
        for args in (["validate", path], ["graph", path], ["graph", path, "--format", "mermaid"]):
            p = harness.run(args, env=env, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            outputs[" ".join(args)] = p.stdout + p.stderr
        proc = self.start_job(path, kafka, ["--log-level", "debug"])
        state = os.path.join(self.dir, ".streamrun", "secret")
        self.wait_for("the records in the output topic",
                      lambda: len(self.record(kafka)) == 20, proc)
        for args in (["status", path], ["status", path, "--json"], ["checkpoints", path]):
            p = harness.run(args, env=env, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            outputs[" ".join(args)] = p.stdout + p.stderr
        kafka.command("broker-down 2")
        self.replay(kafka, click_records(5))
        self.assertEqual(proc.wait(TIMEOUT), 1)
        err = self.job_stderr()
        self.assertIn("could not be delivered to 'out'", err)
        self.assertIn("sasl.password", err)  # librdkafka's configuration was logged (redacted)
        with open(self.path("job.out"), "rb") as f:
            outputs["run stdout"] = f.read()
        outputs["run stderr"] = err.encode()
        for root, _, files in os.walk(state):  # the checkpoints, and whatever else the job wrote
            for name in files:
                full = os.path.join(root, name)
                if stat.S_ISREG(os.lstat(full).st_mode):
                    with open(full, "rb") as f:
                        outputs[full] = f.read()
        self.assertTrue(any("MANIFEST.json" in k for k in outputs), list(outputs))
        for what, data in outputs.items():
            self.assertNotIn(SECRET.encode(), data, what)


if __name__ == "__main__":
    import unittest
    unittest.main()
