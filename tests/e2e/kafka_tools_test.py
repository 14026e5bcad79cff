"""record, replay and kafka-mock: recordings go into a topic and come back the same, faults of
the mock cluster are survived or reported, recording lines follow schemas/recording.schema.json.

Expected records come from the test's own input, never from the binary.
"""
import base64
import json
import os
import signal
import subprocess
import threading
import time
import unittest

import harness
import kafka_harness

try:
    import jsonschema
except ImportError:  # python3-jsonschema is in `make deps`
    jsonschema = None

BASE_TS = 1700000000000  # 2023-11-14T22:13:20Z
TIMEOUT = 120


def b64(data):
    return base64.b64encode(data).decode()


def sample_records(n=30, partitions=3):
    """Records of every payload form: JSON values, text, binary, null values and keys,
    headers (unique names, repeated names, null and binary values), timestamps rising per
    partition."""
    records = []
    for i in range(n):
        r = {"partition": i % partitions, "timestamp": BASE_TS + i * 1000}
        if i % 11 == 2:
            r["key_b64"] = b64(bytes([0xFF, 0, i]))
        elif i % 5 != 4:  # every fifth record has a null key
            r["key"] = "u%d" % (i % 7)
        if i % 3 == 0:
            r["headers"] = {"source": "test", "seq": str(i)}
        elif i % 7 == 1:
            r["headers"] = [["h", "1"], ["h", None], ["bin", {"b64": b64(b"\x00\x01\xff")}]]
        kind = i % 6
        if kind == 0:
            r["value"] = {"user": "u%d" % i, "n": i, "nested": {"ok": True, "list": [1, 2.5, None]}}
        elif kind == 1:
            r["value_text"] = "plain text %d, gr\u00fc\u00df" % i
        elif kind == 2:
            r["value_b64"] = b64(bytes([0xFF, 0xFE, i, 0]))
        elif kind == 3:
            r["value"] = None  # a tombstone
        elif kind == 4:
            r["value"] = i
        else:
            r["value"] = "a JSON string %d" % i
        records.append(r)
    return records


def without_position(record):
    """The record without what a replay does not keep (topic and offset)."""
    return {k: v for k, v in record.items() if k not in ("topic", "offset")}


class StderrWatcher:
    """Collects a child's stderr lines on a thread, so a test can wait for one of them with a
    timeout instead of blocking on the pipe."""

    def __init__(self, proc):
        self.lines = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            with self._cond:
                self.lines.append(line.decode(errors="replace"))
                self._cond.notify_all()

    def wait_for(self, text, timeout=TIMEOUT):
        """True once a line containing `text` came, False after `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: any(text in l for l in self.lines), timeout)

    def text(self):
        self._thread.join(TIMEOUT)  # call after the child exited: all of it
        return "".join(self.lines)


class KafkaTestCase(harness.TempDirTest):
    def popen(self, args, **kw):
        """Starts `streamrun ARGS`; killed (if still running) and its pipes closed at cleanup."""
        proc = subprocess.Popen([harness.binary()] + list(args), **kw)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f:
                    f.close()
        self.addCleanup(cleanup)
        return proc


class KafkaToolsTest(KafkaTestCase):
    def setUp(self):
        super().setUp()
        with open(os.path.join(harness.ROOT, "schemas", "recording.schema.json")) as f:
            self.schema = json.load(f)

    def start_mock(self, **kw):
        kafka = kafka_harness.KafkaMock(**kw)
        self.addCleanup(kafka.close, False)
        return kafka

    def assertFollowsSchema(self, records):
        if jsonschema is None:
            self.skipTest("python3-jsonschema is not installed")
        for r in records:
            jsonschema.validate(r, self.schema)

    def replay(self, kafka, records, topic="t", extra=()):
        path = self.write_jsonl("in.jsonl", records)
        return harness.run(["replay", path, "--brokers", kafka.servers, "--topic", topic] + list(extra),
                           timeout=TIMEOUT)

    def replay_ok(self, kafka, records, topic="t"):
        p = self.replay(kafka, records, topic)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))

    def record_ok(self, kafka, topic="t", extra=()):
        out = self.path("out.jsonl")
        self.run_ok(["record", "--brokers", kafka.servers, "--topic", topic, "-o", out] + list(extra),
                    timeout=TIMEOUT)
        return harness.read_jsonl(out)

    def lead_each_partition_by_its_own_broker(self, kafka, partitions=3):
        """Partition p led by broker p + 1 (the mock picks leaders at random)."""
        for p in range(partitions):
            kafka.command("leader t %d %d" % (p, p + 1))

    def assertOffsetsArePrefixes(self, recorded, topic="t"):
        """Each partition's records carry offsets 0, 1, 2, ... in file order: read from the
        start, in order, nothing skipped within a partition."""
        by_partition = {}
        for r in recorded:
            self.assertEqual(r["topic"], topic)
            by_partition.setdefault(r["partition"], []).append(r["offset"])
        for p, offsets in by_partition.items():
            self.assertEqual(offsets, list(range(len(offsets))), "partition %d" % p)

    def test_replay_then_record_gives_back_every_record(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records()
        self.assertFollowsSchema(records)
        self.replay_ok(kafka, records)
        recorded = self.record_ok(kafka)
        self.assertFollowsSchema(recorded)
        self.assertOffsetsArePrefixes(recorded)
        self.assertMultisetEqual(harness.multiset(without_position(r) for r in recorded),
                                 harness.multiset(records), "recorded topic")

    def test_binary_values_and_keys_come_back_as_the_same_base64(self):
        kafka = self.start_mock(topics=["bin:1"])
        raw = bytes(range(256))
        records = [{"partition": 0, "timestamp": BASE_TS, "key_b64": b64(b"\xfe\xff"), "value_b64": b64(raw)},
                   {"partition": 0, "timestamp": BASE_TS, "value_b64": b64(b"\xc3")}]
        self.replay_ok(kafka, records, topic="bin")
        recorded = self.record_ok(kafka, topic="bin")
        self.assertEqual([r.get("value_b64") for r in recorded], [b64(raw), b64(b"\xc3")])
        self.assertEqual(recorded[0]["key_b64"], b64(b"\xfe\xff"))
        self.assertEqual(base64.b64decode(recorded[0]["value_b64"]), raw)

    def test_until_count_stops_after_that_many_records(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records(60)
        self.replay_ok(kafka, records)
        recorded = self.record_ok(kafka, extra=["--until", "10"])
        self.assertEqual(len(recorded), 10)
        self.assertOffsetsArePrefixes(recorded)
        # Every recorded record is one of the topic's.
        extra = harness.multiset(without_position(r) for r in recorded) - harness.multiset(records)
        self.assertFalse(extra, "records that were never produced: %s" % list(extra)[:3])

    def test_until_count_waits_for_records_produced_later(self):
        kafka = self.start_mock(topics=["t:2"])
        records = sample_records(8, partitions=2)
        self.replay_ok(kafka, records[:4])
        out = self.path("out.jsonl")
        proc = self.popen(["record", "--brokers", kafka.servers, "--topic", "t", "-o", out, "--until", "8"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Whether record starts before or after these arrive, it must end with all eight.
        p = self.replay(kafka, records[4:])
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        _, err = proc.communicate(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, err.decode(errors="replace"))
        self.assertMultisetEqual(harness.multiset(without_position(r) for r in harness.read_jsonl(out)),
                                 harness.multiset(records), "recorded topic")

    def test_from_a_time_starts_at_the_first_record_that_recent(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records()
        self.replay_ok(kafka, records)
        expected = harness.multiset(r for r in records if r["timestamp"] >= BASE_TS + 12000)
        for when in ("2023-11-14T22:13:32Z", str(BASE_TS + 12000), "2023-11-14T23:13:32+01:00"):
            with self.subTest(when=when):
                recorded = self.record_ok(kafka, extra=["--from", when])
                self.assertMultisetEqual(harness.multiset(without_position(r) for r in recorded),
                                         expected, "records from %s" % when)

    def test_from_a_time_after_every_record_or_latest_records_nothing(self):
        kafka = self.start_mock(topics=["t:3"])
        self.replay_ok(kafka, sample_records())
        self.assertEqual(self.record_ok(kafka, extra=["--from", str(BASE_TS + 10**9)]), [])
        self.assertEqual(self.record_ok(kafka, extra=["--from", "latest"]), [])

    def test_from_latest_until_a_count_records_only_records_produced_later(self):
        kafka = self.start_mock(topics=["t:2"])
        old = sample_records(10, partitions=2)
        self.replay_ok(kafka, old)
        new = [dict({k: v for k, v in r.items() if not k.startswith("value")}, value={"new": i})
               for i, r in enumerate(sample_records(8, partitions=2))]
        out = self.path("out.jsonl")
        proc = self.popen(["record", "--brokers", kafka.servers, "--topic", "t", "-o", out,
                           "--from", "latest", "--until", "5"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = StderrWatcher(proc)
        # Once record says where it starts, the ends it took as "latest" are known.
        self.assertTrue(stderr.wait_for("from latest until 5 records"), "".join(stderr.lines))
        p = self.replay(kafka, new)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, stderr.text())
        recorded = harness.read_jsonl(out)
        self.assertEqual(len(recorded), 5)
        extra = harness.multiset(without_position(r) for r in recorded) - harness.multiset(new)
        self.assertFalse(extra, "records that were not produced after the start: %s" % list(extra)[:3])
        for r in recorded:  # after the 5 old records of each partition
            self.assertGreaterEqual(r["offset"], 5)

    def test_record_survives_a_leader_that_is_down_at_start(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records()
        self.replay_ok(kafka, records)
        self.lead_each_partition_by_its_own_broker(kafka)
        kafka.command("broker-down 2")  # the leader of t[1]
        out = self.path("out.jsonl")
        proc = self.popen(["record", "--brokers", kafka.servers, "--topic", "t", "-o", out, "--timeout", "120s"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = StderrWatcher(proc)
        # record says it is waiting for partition 1's leader; only then does it come back.
        self.assertTrue(stderr.wait_for("cannot list the offsets of t[1]"),
                        "record never waited for t[1]:\n" + "".join(stderr.lines))
        kafka.command("broker-up 2")
        proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, stderr.text())
        self.assertMultisetEqual(harness.multiset(without_position(r) for r in harness.read_jsonl(out)),
                                 harness.multiset(records), "recorded topic")

    def test_record_survives_failing_fetches(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records()
        self.replay_ok(kafka, records)
        kafka.command("push-errors Fetch 5 NOT_LEADER_FOR_PARTITION")
        recorded = self.record_ok(kafka)
        self.assertMultisetEqual(harness.multiset(without_position(r) for r in recorded),
                                 harness.multiset(records), "recorded topic")

    def test_record_fails_clearly_when_a_leader_stays_down(self):
        kafka = self.start_mock(topics=["t:3"])
        self.replay_ok(kafka, sample_records())
        self.lead_each_partition_by_its_own_broker(kafka)
        kafka.command("broker-down 2")  # the leader of t[1]
        p = harness.run(["record", "--brokers", kafka.servers, "--topic", "t", "-o", self.path("o.jsonl"),
                         "--timeout", "3s"], timeout=TIMEOUT)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("cannot list the offsets of t[1]: _TIMED_OUT", err)
        self.assertIn("gave up after 3 s", err)

    def test_record_fails_clearly_when_every_broker_goes_away(self):
        kafka = self.start_mock(topics=["t:3"])
        records = sample_records()
        self.replay_ok(kafka, records)
        out = self.path("out.jsonl")
        proc = self.popen(["record", "--brokers", kafka.servers, "--topic", "t", "-o", out,
                           "--until", "1000", "--timeout", "3s"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = StderrWatcher(proc)
        self.assertTrue(stderr.wait_for("until 1000 records"), "record did not start:\n" + "".join(stderr.lines))
        for broker in (1, 2, 3):
            kafka.command("broker-down %d" % broker)
        proc.wait(timeout=TIMEOUT)
        err = stderr.text()
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("lost every Kafka broker at %s for 3 s" % kafka.servers, err)
        # What was read before is kept, and is the topic's.
        kept = harness.multiset(without_position(r) for r in harness.read_jsonl(out))
        self.assertFalse(kept - harness.multiset(records))

    def test_unreachable_brokers_fail_clearly_within_the_timeout(self):
        # Port 1 on loopback: nothing listens there.
        path = self.write_jsonl("in.jsonl", sample_records(3))
        for args in (["record", "--topic", "t", "-o", self.path("o.jsonl")],
                     ["replay", path, "--topic", "t"]):
            with self.subTest(command=args[0]):
                start = time.monotonic()
                p = harness.run(args + ["--brokers", "127.0.0.1:1", "--timeout", "2s"], timeout=TIMEOUT)
                err = p.stderr.decode(errors="replace")
                self.assertEqual(p.returncode, 1, err)
                self.assertIn("cannot reach the Kafka brokers at 127.0.0.1:1 within 2 s", err)
                self.assertLess(time.monotonic() - start, 60)

    def test_replay_refuses_a_partition_the_topic_lacks_and_sends_nothing(self):
        kafka = self.start_mock(topics=["t:2"])
        records = sample_records(6, partitions=2)
        records[4]["partition"] = 5
        p = self.replay(kafka, records)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("in.jsonl:5: partition 5 does not exist: topic 't' has 2 partition(s)", err)
        self.assertEqual(self.record_ok(kafka), [])

    def test_replay_refuses_a_bad_line_and_sends_nothing(self):
        kafka = self.start_mock(topics=["t:1"])
        path = self.write("in.jsonl", '{"value":1}\n\n{"vaule":2}\n')
        p = harness.run(["replay", path, "--brokers", kafka.servers, "--topic", "t"], timeout=TIMEOUT)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("in.jsonl:3: unknown field 'vaule'; did you mean 'value'?", err)
        self.assertEqual(self.record_ok(kafka), [])

    def test_replay_without_partitions_spreads_by_key(self):
        kafka = self.start_mock(topics=["t:4"])
        records = [{"key": "k%d" % (i % 5), "value": {"i": i}} for i in range(40)]
        self.replay_ok(kafka, records)
        recorded = self.record_ok(kafka)
        self.assertEqual(len(recorded), 40)
        partition_of = {}
        for r in recorded:
            self.assertIn("timestamp", r)  # the producer's time
            self.assertEqual(partition_of.setdefault(r["key"], r["partition"]), r["partition"],
                             "one key, one partition")

    def test_replay_reports_records_the_brokers_refuse(self):
        kafka = self.start_mock(topics=["t:1"])
        kafka.command("push-errors Produce 50 MSG_SIZE_TOO_LARGE")
        p = self.replay(kafka, sample_records(5, partitions=1))
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 1, err)
        self.assertIn("could not be delivered to t", err)
        self.assertIn("MSG_SIZE_TOO_LARGE", err)

    def test_replay_speed_paces_by_the_timestamps(self):
        kafka = self.start_mock(topics=["t:1"])
        records = [{"partition": 0, "timestamp": BASE_TS + i * 200, "value": i} for i in range(6)]
        start = time.monotonic()
        p = self.replay(kafka, records, extra=["--speed", "2"])
        took = time.monotonic() - start
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        # 1 s of recorded time at twice the speed: at least 0.5 s (an upper bound would be luck).
        self.assertGreaterEqual(took, 0.5)
        self.assertEqual([r["value"] for r in self.record_ok(kafka)], list(range(6)))

    def test_usage_errors_exit_2(self):
        for args in (["record", "--brokers", "b", "--topic", "t", "-o", "x", "--from", "yesterday"],
                     ["record", "--brokers", "b", "--topic", "t", "-o", "x", "--until", "0"],
                     ["record", "--brokers", "b", "--topic", "t", "-o", "x", "--timeout", "soon"],
                     ["record", "--brokers", "b", "--topic", "t"],
                     ["replay", "f", "--brokers", "b", "--topic", "t", "--speed", "0"],
                     ["kafka-mock", "--brokers", "0"],
                     ["kafka-mock", "--topic", "t"]):
            with self.subTest(args=args):
                p = harness.run(args, timeout=TIMEOUT, input_bytes=b"")
                self.assertEqual(p.returncode, 2, p.stderr.decode(errors="replace"))


@unittest.skipIf(jsonschema is None, "python3-jsonschema is not installed")
class RecordingSchemaTest(unittest.TestCase):
    """schemas/recording.schema.json takes what the decoder takes and rejects what it rejects
    (the decoder's own cases are in tests/engine/recording_test.cc)."""

    def setUp(self):
        with open(os.path.join(harness.ROOT, "schemas", "recording.schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        self.validator = jsonschema.Draft202012Validator(schema)

    def test_good_lines(self):
        for line in ({"topic": "t", "partition": 0, "offset": 42, "timestamp": 1700000000000, "key": "u1",
                      "headers": {"h": "v"}, "value": {"a": 1}},
                     {}, {"value": None}, {"key": None, "value_text": ""}, {"key": 7, "value": [1]},
                     {"key_b64": "/w==", "value_b64": "AAE="},
                     {"headers": [["a", "1"], ["a", None], ["b", {"b64": "AA=="}]]}):
            with self.subTest(line=line):
                self.assertEqual(list(self.validator.iter_errors(line)), [])

    def test_bad_lines(self):
        for line in ({"vaule": 1}, {"value": 1, "value_text": "1"}, {"key": "a", "key_b64": "YQ=="},
                     {"partition": -1}, {"partition": "0"}, {"offset": 1.5}, {"topic": 1},
                     {"value_b64": "not base64"}, {"headers": [["a"]]}, {"headers": {"a": 1}},
                     {"headers": {"a": {"b64": "AA==", "x": 1}}}, [1]):
            with self.subTest(line=line):
                self.assertNotEqual(list(self.validator.iter_errors(line)), [])


class KafkaMockCommandTest(KafkaTestCase):
    def test_commands_are_answered_and_stdin_end_stops_it(self):
        kafka = kafka_harness.KafkaMock(brokers=2, topics=["a:2"])
        try:
            self.assertEqual(kafka.servers.count(","), 1)
            self.assertEqual(kafka.send("topic b:1"), "ok")
            self.assertEqual(kafka.send("broker-down 1"), "ok")
            self.assertEqual(kafka.send("broker-up 1"), "ok")
            self.assertEqual(kafka.send("rtt 2 10"), "ok")
            self.assertEqual(kafka.send("leader a 1 2"), "ok")
            self.assertEqual(kafka.send("push-errors Produce 2 REQUEST_TIMED_OUT"), "ok")
            self.assertEqual(kafka.send("clear-errors Produce"), "ok")
            self.assertEqual(kafka.send("broker-down 3"), "error: no broker 3 (the brokers are 1 to 2)")
            self.assertEqual(kafka.send("topic a:2"),
                             "error: cannot create topic 'a': TOPIC_ALREADY_EXISTS (Broker: Topic already exists)")
            self.assertTrue(kafka.send("launch rockets").startswith("error: unknown command 'launch'"))
        finally:
            self.assertEqual(kafka.close(check=False), 0)

    def test_port_file_and_sigterm(self):
        port_file = self.path("servers")
        proc = self.popen(["kafka-mock", "--port-file", port_file, "--ignore-stdin"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = proc.stdout.readline().decode().strip()  # printed after the port file is written
        self.assertTrue(first.startswith("bootstrap.servers="), first)
        with open(port_file) as f:
            self.assertEqual(f.read().strip(), first[len("bootstrap.servers="):])
        self.assertEqual(len(first.split(",")), 3)  # 3 brokers by default
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr.read().decode(errors="replace"))
        self.assertFalse(os.path.exists(port_file))

    def test_help_names_the_limits(self):
        p = harness.run(["kafka-mock", "--help"], timeout=TIMEOUT)
        text = p.stdout.decode()
        self.assertEqual(p.returncode, 0)
        for word in ("read_committed", "fenced", "push-errors", "broker-down"):
            self.assertIn(word, text)


if __name__ == "__main__":
    unittest.main()
