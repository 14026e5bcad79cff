"""`streamrun test`: pipeline test files, recorded inputs in and expected outputs compared.

Expected outputs are written by hand here, or computed with reference.py (the example test
files' expectations are checked against the model below), never taken from the engine.
"""
import json
import os
import re

import harness
import reference as ref

FILTER_PIPELINE = """name: simple
sources:
  events: { type: file, path: data/events.jsonl }
steps:
  keep: { type: filter, from: events, where: 'kind == "keep"' }
sinks:
  kept: { type: file, from: keep, path: out/kept.jsonl }
"""

EVENTS = [{"id": 1, "kind": "keep"}, {"id": 2, "kind": "drop"}, {"id": 3, "kind": "keep"}]


def last_line(out):
    return out.decode().rstrip("\n").split("\n")[-1]


class TestCommandTest(harness.TempDirTest):
    def setup_filter(self, expected_lines, name="keeps only kept events"):
        self.write("simple.yaml", FILTER_PIPELINE)
        self.write_jsonl("tests/events.jsonl", EVENTS)
        if expected_lines is not None:
            self.write("tests/kept.expected.jsonl", "".join(l + "\n" for l in expected_lines))
        return self.write("simple.test.yaml", """pipeline: simple.yaml
cases:
  - name: %s
    inputs: { events: tests/events.jsonl }
    expect: { kept: tests/kept.expected.jsonl }
""" % name)

    def test_passing_case(self):
        # Other order, other key order and spacing than the engine writes: compared by value.
        test = self.setup_filter(['{ "kind": "keep", "id": 3 }', '{"id":1,"kind":"keep"}'])
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().splitlines()
        self.assertEqual(lines, ["PASS keeps only kept events", "1 passed, 0 failed"])
        # The real sink was not written.
        self.assertFalse(os.path.exists(self.path("out/kept.jsonl")))

    def test_failing_case_shows_a_diff(self):
        test = self.setup_filter(['{"id":1,"kind":"keep"}', '{"id":4,"kind":"keep"}'])
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 1, p.stderr)
        out = p.stdout.decode()
        self.assertIn("FAIL keeps only kept events\n", out)
        self.assertRegex(out, r"sink 'kept' differs from .*kept\.expected\.jsonl: 1 expected lines "
                              r"missing \(-\), 1 unexpected \(\+\)")
        self.assertIn('\n  - {"id":4,"kind":"keep"}\n', out)
        self.assertIn('\n  + {"id":3,"kind":"keep"}\n', out)
        self.assertNotIn('{"id":1', out)  # matched lines are not shown
        self.assertEqual(last_line(p.stdout), "0 passed, 1 failed")

    def test_a_long_diff_is_capped(self):
        test = self.setup_filter(['{"id":%d,"x":"%s"}' % (i, "y" * 500) for i in range(100, 130)])
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 1)
        out = p.stdout.decode()
        self.assertEqual(len(re.findall(r"^  - ", out, re.M)), 11)  # 10 lines and "... and 20 more"
        self.assertIn("  - ... and 20 more missing", out)
        self.assertIn("... (", out)  # long lines are cut
        self.assertLess(len(out), 10000)

    def test_multiset_semantics(self):
        # Order does not matter; how many times a record comes does.
        self.write("simple.yaml", FILTER_PIPELINE)
        self.write_jsonl("tests/events.jsonl", EVENTS + [EVENTS[0]])
        test = self.write("simple.test.yaml", """pipeline: simple.yaml
cases:
  - name: twice
    inputs: { events: tests/events.jsonl }
    expect: { kept: tests/twice.jsonl }
  - name: once
    inputs: { events: tests/events.jsonl }
    expect: { kept: tests/once.jsonl }
""")
        self.write("tests/twice.jsonl",
                   '{"id":1,"kind":"keep"}\n{"id":3,"kind":"keep"}\n\n{"kind":"keep","id":1}\n')
        self.write("tests/once.jsonl", '{"id":3,"kind":"keep"}\n{"id":1,"kind":"keep"}\n')
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 1, p.stderr)
        out = p.stdout.decode()
        self.assertIn("PASS twice\n", out)
        self.assertIn("FAIL once\n", out)
        self.assertIn('  + {"id":1,"kind":"keep"}\n', out)
        self.assertEqual(last_line(p.stdout), "1 passed, 1 failed")

    def test_update_writes_the_expected_file(self):
        test = self.setup_filter(None)
        p = harness.run(["test", test])  # no expected file yet: a bad test file
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr.decode(),
                         r"simple\.test\.yaml:5:21: cannot read expected output .*--update")
        p = harness.run(["test", test, "--update"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("UPDATED keeps only kept events\n", out)
        self.assertRegex(out, r"wrote .*tests/kept\.expected\.jsonl \(sink 'kept', 2 lines\)")
        with open(self.path("tests/kept.expected.jsonl")) as f:
            self.assertEqual(f.read(), '{"id":1,"kind":"keep"}\n{"id":3,"kind":"keep"}\n')
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # --update rewrites a wrong file too.
        self.write("tests/kept.expected.jsonl", '{"id":9}\n')
        self.run_ok(["test", test, "--update"])
        self.assertEqual(harness.read_jsonl(self.path("tests/kept.expected.jsonl")),
                         [{"id": 1, "kind": "keep"}, {"id": 3, "kind": "keep"}])

    def test_missing_input_names_the_source(self):
        self.write("two.yaml", """name: two
sources:
  a: { type: file, path: a.jsonl }
  b: { type: file, path: b.jsonl }
sinks:
  out: { type: file, from: [a, b], path: out.jsonl }
""")
        self.write("a.jsonl", '{"x":1}\n')
        test = self.write("two.test.yaml", """pipeline: two.yaml
cases:
  - name: only a
    inputs: { a: a.jsonl }
""")
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr.decode(),
                         r"two\.test\.yaml:4:13: no input for source 'b'")
        self.assertEqual(p.stdout, b"")  # nothing ran

    def test_a_failing_pipeline_fails_its_case(self):
        self.write("simple.yaml", FILTER_PIPELINE)  # on_error: fail (the default)
        self.write("tests/events.jsonl", '{"id":1,"kind":"keep"}\n{"id":2,\n')
        self.write("tests/kept.jsonl", '{"id":1,"kind":"keep"}\n')
        test = self.write("simple.test.yaml", """pipeline: simple.yaml
cases:
  - name: damaged input
    inputs: { events: tests/events.jsonl }
    expect: { kept: tests/kept.jsonl }
""")
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout.decode(), r"FAIL damaged input\n  the pipeline failed: .*")
        self.assertEqual(last_line(p.stdout), "0 passed, 1 failed")

    def test_stdout_sink_is_captured_and_text_compares_as_text(self):
        self.write("echo.yaml", """name: echo
sources:
  lines: { type: stdin, format: text }
steps:
  errors_only: { type: filter, from: lines, where: 'contains(line, "ERROR")' }
sinks:
  shown: { type: stdout, from: errors_only }
""")
        self.write("tests/log.txt", "INFO start\nERROR disk full\nINFO retry\nERROR  twice  spaced\n")
        self.write("tests/errors.txt", "ERROR  twice  spaced\nERROR disk full\n")
        test = self.write("echo.test.yaml", """pipeline: echo.yaml
cases:
  - name: errors only
    inputs: { lines: tests/log.txt }
    expect: { shown: tests/errors.txt }
""")
        p = harness.run(["test", test], input_bytes=b"")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn(b"disk full", p.stdout)  # captured, not printed
        self.assertEqual(p.stdout.decode().splitlines(), ["PASS errors only", "1 passed, 0 failed"])
        self.write("tests/errors.txt", "ERROR twice spaced\nERROR disk full\n")  # text: exact
        p = harness.run(["test", test], input_bytes=b"")
        self.assertEqual(p.returncode, 1)

    def test_a_generator_source_is_replaced_by_its_input(self):
        self.write("gen.yaml", """name: gen
sources:
  numbers: { type: generator, profile: sequence, count: 100000, event_time: ts }
steps:
  small: { type: filter, from: numbers, where: n < 10 }
sinks:
  out: { type: file, from: small, path: out.jsonl }
""")
        self.write_jsonl("in.jsonl", [{"n": 5, "ts": 1}, {"n": 50, "ts": 2}, {"n": 9, "ts": 3}])
        self.write("want.jsonl", '{"n":5,"ts":1}\n{"n":9,"ts":3}\n')
        test = self.write("gen.test.yaml", """pipeline: gen.yaml
cases:
  - name: from a file
    inputs: { numbers: in.jsonl }
    expect: { out: want.jsonl }
""")
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(self.path("out.jsonl")))

    def test_recording_input_with_kafka_metadata(self):
        # A recording (told by its first line, whatever its name) read by a pipeline that takes
        # its event time from the record timestamp and copies metadata into the records.
        self.write("orders.yaml", """name: orders
sources:
  orders:
    type: file
    path: orders.jsonl
    event_time: $timestamp
    watermark: { max_out_of_orderness: 2m }
steps:
  tag:
    type: map
    from: orders
    set:
      user: $key
      where: concat($topic, "/", $partition, "@", $offset)
      trace: $headers.trace
      headers: $headers
  per_minute:
    type: window
    from: tag
    key_by: [user]
    window: { type: tumbling, size: 1m }
    aggregate: { orders: count(), total: sum(amount) }
sinks:
  tagged: { type: file, from: tag, path: out/tagged.jsonl }
  counts: { type: file, from: per_minute, path: out/counts.jsonl }
""")
        t0 = 1714557600000
        records = [
            {"topic": "orders", "partition": 1, "offset": 10, "timestamp": t0 + 59000, "key": "u1",
             "headers": {"trace": "a"}, "value": {"amount": 5, "ts": t0}},
            {"topic": "orders", "partition": 0, "offset": 3, "timestamp": t0 + 61000, "key": "u1",
             "value": {"amount": 7}},
            {"topic": "orders", "partition": 1, "offset": 11, "timestamp": t0 + 1000,
             "key": "u2", "value": {"amount": 1}},
        ]
        self.write_jsonl("recorded.jsonl", records)
        self.write("tagged.jsonl", "\n".join([
            '{"amount":5,"ts":%d,"user":"u1","where":"orders/1@10","trace":"a","headers":{"trace":"a"}}' % t0,
            # Without headers, $headers is {} and $headers.trace null, as from the kafka source.
            '{"amount":7,"user":"u1","where":"orders/0@3","trace":null,"headers":{}}',
            '{"amount":1,"user":"u2","where":"orders/1@11","trace":null,"headers":{}}']) + "\n")
        # Windows by $timestamp, not by the value's ts.
        self.write("counts.jsonl", "\n".join([
            '{"user":"u1","window_start":%d,"window_end":%d,"orders":1,"total":5}' % (t0, t0 + 60000),
            '{"user":"u1","window_start":%d,"window_end":%d,"orders":1,"total":7}'
            % (t0 + 60000, t0 + 120000),
            '{"user":"u2","window_start":%d,"window_end":%d,"orders":1,"total":1}' % (t0, t0 + 60000),
        ]) + "\n")
        test = self.write("orders.test.yaml", """pipeline: orders.yaml
cases:
  - name: metadata
    inputs: { orders: recorded.jsonl }
    expect: { tagged: tagged.jsonl, counts: counts.jsonl }
""")
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_input_format_can_be_given(self):
        # Lines that look like a recording, read as plain JSON lines because the test says so.
        self.write("plain.yaml", """name: plain
sources:
  s: { type: file, path: x.jsonl }
sinks:
  o: { type: file, from: s, path: o.jsonl }
""")
        line = '{"partition":0,"offset":1,"value":{"a":1}}'
        self.write("in.jsonl", line + "\n")
        self.write("want_plain.jsonl", line + "\n")
        self.write("want_recording.jsonl", '{"a":1}\n')
        test = self.write("plain.test.yaml", """pipeline: plain.yaml
cases:
  - name: as json
    inputs: { s: { path: in.jsonl, format: json } }
    expect: { o: want_plain.jsonl }
  - name: as recording
    inputs: { s: in.jsonl }
    expect: { o: want_recording.jsonl }
""")
        p = harness.run(["test", test])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(last_line(p.stdout), "2 passed, 0 failed")

    def test_several_files_and_a_bad_one(self):
        good = self.setup_filter(['{"id":1,"kind":"keep"}', '{"id":3,"kind":"keep"}'])
        bad = self.write("bad.test.yaml", "pipeline: simple.yaml\ncases:\n  - name: x\n    inputz: {}\n")
        p = harness.run(["test", good, bad])
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr.decode(), r"bad\.test\.yaml:4:5: unknown setting 'inputz'")
        self.assertEqual(p.stdout, b"")
        p = harness.run(["test", good, good])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(last_line(p.stdout), "2 passed, 0 failed")

    def test_validate_checks_test_files(self):
        good = self.setup_filter(['{"id":1,"kind":"keep"}'])
        bad = self.write("bad.test.yaml",
                         "pipeline: simple.yaml\ncases:\n  - name: x\n    inputs: { event: e.jsonl }\n")
        p = harness.run(["validate", good, self.path("simple.yaml")])
        self.assertEqual(p.returncode, 0, p.stderr)
        p = harness.run(["validate", bad])
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr.decode(), r"bad\.test\.yaml:4:15: 'event' is not a source of "
                                            r"pipeline 'simple'; did you mean 'events'\?")


# ---------------------------------------------------------------- the examples' expectations

TESTS = os.path.join(harness.PIPELINES, "tests")


def read_lines(path):
    with open(path, "rb") as f:
        return [l for l in f.read().split(b"\n") if l]


def source_items(lines):
    """JSON lines or recording values to [(event_time from `ts`, record)] and the dead letters a
    file source with on_error: dead_letter makes [(offset, line)]."""
    items, bad = [], []
    offset = 0
    for line in lines:
        rec = json.loads(line)
        if "partition" in rec and "offset" in rec and "value" in rec:
            rec = rec["value"]
        ts = ref.event_time(rec.get("ts"))
        if ts is None:
            bad.append((offset, line.decode()))
        else:
            items.append((ts, rec))
        offset += len(line) + 1
    return items, bad


class ExampleExpectationsTest(harness.TempDirTest):
    """The expected files of pipelines/*.test.yaml, written by hand, agree with the model."""

    def expect(self, name, results):
        self.assertMultisetEqual(harness.multiset(harness.read_jsonl(os.path.join(TESTS, name))),
                                 harness.multiset(results), name)

    def test_clickstream(self):
        for clicks, counts, late, bad in [
                ("clicks.recording.jsonl", "counts.expected.jsonl",
                 "no_late_clicks.expected.jsonl", None),
                ("late_and_bad_clicks.jsonl", "late_and_bad_counts.expected.jsonl",
                 "late_clicks.expected.jsonl", "bad_clicks.expected.jsonl")]:
            with self.subTest(input=clicks):
                items, errors = source_items(read_lines(os.path.join(TESTS, "clickstream", clicks)))
                rows = [r for r in ref.with_watermarks(items, 5000)
                        if r[1].get("userId") is not None and r[1].get("action") != "bot"]
                results, late_rows = ref.run_window(
                    rows, ["userId"], ref.Tumbling(60000),
                    [("clicks", "count", None),
                     ("purchases", "count_if", lambda r: r.get("action") == "purchase"),
                     ("pages", "count_distinct", ref.field("page"))])
                self.expect("clickstream/" + counts, results)
                self.expect("clickstream/" + late, late_rows)
                if bad:
                    letters = harness.read_jsonl(os.path.join(TESTS, "clickstream", bad))
                    self.assertEqual(sorted((b["offset"], b["text"]) for b in letters), errors)

    def test_session_promotion(self):
        def is_(action):
            return lambda r: r.get("action") == action

        for logins, cart, promotions in [
                ("logins.jsonl", "cart.jsonl", "promotions.expected.jsonl"),
                ("frank_logins.recording.jsonl", "frank_cart.jsonl",
                 "frank_promotions.expected.jsonl")]:
            with self.subTest(input=logins):
                def load(name):
                    items, errors = source_items(
                        read_lines(os.path.join(TESTS, "session_promotion", name)))
                    self.assertEqual(errors, [])
                    return items
                rows = ref.with_watermarks(ref.merge_by_time(load(logins), load(cart)), 10000)
                results, late = ref.run_window(
                    rows, ["userId"], ref.Session(300000),
                    [("events", "count", None), ("cart_adds", "count_if", is_("cart_add")),
                     ("cart_removes", "count_if", is_("cart_remove")),
                     ("purchases", "count_if", is_("purchase")),
                     ("cart_value", "sum",
                      lambda r: r.get("price") if r.get("action") == "cart_add" else None),
                     ("logged_out", "count_if", is_("logout"))],
                    fire_on=is_("logout"))
                self.assertEqual(late, [])
                for r in results:
                    v, adds = r["cart_value"], r["cart_adds"] - r["cart_removes"]
                    if r["purchases"] > 0:
                        r["promotion"] = "none"
                    elif adds >= 2 or (v is not None and v >= 100):
                        r["promotion"] = "discount_10"
                    elif r["cart_adds"] > 0:
                        r["promotion"] = "free_shipping"
                    else:
                        r["promotion"] = "none"
                    # round(x, 2) gives a number with a fraction, also for an integer sum.
                    r["cart_value"] = None if v is None else float(round(v, 2))
                self.expect("session_promotion/" + promotions, results)

    def test_every_example_pipeline_has_a_test_file(self):
        # `make test` runs pipelines/*.test.yaml (Makefile: pipeline-tests); every example
        # pipeline must be the `pipeline:` of one of them.
        names = os.listdir(harness.PIPELINES)
        pipelines = {f for f in names if f.endswith(".yaml") and not f.endswith(".test.yaml")}
        tested = set()
        for f in names:
            if f.endswith(".test.yaml"):
                with open(os.path.join(harness.PIPELINES, f)) as text:
                    m = re.search(r"^pipeline:\s*(\S+)\s*$", text.read(), re.M)
                self.assertIsNotNone(m, f)
                tested.add(os.path.normpath(m.group(1)))
        self.assertTrue(pipelines)
        self.assertEqual(sorted(pipelines - tested), [], "example pipelines without a test file")
        with open(os.path.join(harness.ROOT, "Makefile")) as f:
            self.assertIn("streamrun test pipelines/*.test.yaml", f.read())

    def test_example_test_files_pass(self):
        files = sorted(os.path.join(harness.PIPELINES, f) for f in os.listdir(harness.PIPELINES)
                       if f.endswith(".test.yaml"))
        self.assertEqual([os.path.basename(f) for f in files],
                         ["clickstream.test.yaml", "kafka_clickstream.test.yaml",
                          "session_promotion.test.yaml"])
        p = harness.run(["test"] + files)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(last_line(p.stdout), "5 passed, 0 failed")


if __name__ == "__main__":
    import unittest
    unittest.main()
