"""Settings of the Kafka source end to end, against `streamrun kafka-mock`: `topics` read as one
stream with each record's metadata, `start: latest`. (Group membership, pausing and rebalances
are tests/e2e/kafka_test.py's.)

Input goes in with `streamrun replay`; the expected output is the test's own input.
"""
import os
import subprocess
import threading
import time

import harness
import kafka_harness

TIMEOUT = 120
BASE_TS = 1700000000000


class KafkaSourceOptionsTest(harness.TempDirTest):
    def start_mock(self, **kw):
        kafka = kafka_harness.KafkaMock(**kw)
        self.addCleanup(kafka.close, False)
        return kafka

    def replay(self, kafka, records, topic):
        path = self.write_jsonl("%s-%d.jsonl" % (topic, time.monotonic_ns()), records)
        self.run_ok(["replay", path, "--brokers", kafka.servers, "--topic", topic], timeout=TIMEOUT)

    def test_topics_are_read_as_one_stream_with_each_records_metadata(self):
        kafka = self.start_mock(brokers=2, topics=["a:2", "b:1"])
        a = [{"partition": i % 2, "key": "k%d" % i, "timestamp": BASE_TS + i, "value": {"n": i}}
             for i in range(12)]
        b = [{"partition": 0, "timestamp": BASE_TS + i, "headers": {"h": "x%d" % i}, "value": {"n": 100 + i}}
             for i in range(5)]
        self.replay(kafka, a, "a")
        self.replay(kafka, b, "b")
        path = self.write("p.yaml", """name: topics
sources:
  in:
    type: kafka
    brokers: ${BROKERS}
    topics: [a, b]
    stop_at: end
steps:
  tag:
    type: map
    from: in
    set: { topic: $topic, partition: $partition, key: $key, h: $headers.h }
sinks:
  out: { type: file, from: tag, path: out.jsonl }
""")
        self.run_ok(["run", path], env={"BROKERS": kafka.servers}, timeout=TIMEOUT)
        expected = [dict(r["value"], topic="a", partition=r["partition"], key=r["key"], h=None) for r in a]
        expected += [dict(r["value"], topic="b", partition=0, key=None, h=r["headers"]["h"]) for r in b]
        self.assertMultisetEqual(harness.read_multiset(self.path("out.jsonl")), harness.multiset(expected))

    def test_start_latest_reads_only_records_produced_after_the_job_started(self):
        kafka = self.start_mock(brokers=1, topics=["in:1"])
        old = [{"partition": 0, "timestamp": BASE_TS + i, "value": {"old": i}} for i in range(20)]
        self.replay(kafka, old, "in")
        path = self.write("p.yaml", """name: latest
sources:
  in:
    type: kafka
    brokers: ${BROKERS}
    topic: in
    start: latest
sinks:
  out: { type: stdout, from: in }
""")
        env = {"BROKERS": kafka.servers}
        err = open(self.path("job.err"), "wb")
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.PIPE, stderr=err,
                                env=dict(os.environ, **env))
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(TIMEOUT)
            proc.stdout.close()
            err.close()
        self.addCleanup(cleanup)

        def stderr():
            with open(self.path("job.err"), "rb") as f:
                return f.read().decode(errors="replace")

        def produce_new():
            value = {"new": len(new)}
            self.replay(kafka, [{"partition": 0, "timestamp": BASE_TS + 100 + len(new), "value": value}], "in")
            new.append(value)

        # New records, one at a time, until the job has read one: those produced before the
        # source took the end of the partition are rightly skipped, all later ones must come.
        new = []
        deadline = time.monotonic() + TIMEOUT
        while not lines:
            self.assertLess(time.monotonic(), deadline, "the job read nothing:\n" + stderr())
            if proc.poll() is not None:
                self.fail("the job ended (%d):\n%s" % (proc.returncode, stderr()))
            produce_new()
            time.sleep(0.2)
        produce_new()
        last = harness.dumps(new[-1]).encode()
        while not any(l.strip() == last for l in list(lines)):
            self.assertLess(time.monotonic(), deadline, "the last record never came:\n" + stderr())
            time.sleep(0.05)
        self.run_ok(["stop", path, "--drain"], env=env, timeout=TIMEOUT)
        self.assertEqual(proc.wait(TIMEOUT), 0, stderr())
        reader.join(TIMEOUT)
        out = harness.parse_lines(b"".join(lines))
        # A suffix of the new records, in order: none of the old ones, none of the new ones lost.
        self.assertGreaterEqual(len(out), 2)
        self.assertEqual(out, new[len(new) - len(out):])


if __name__ == "__main__":
    import unittest
    unittest.main()
