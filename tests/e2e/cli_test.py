"""The command line: validate's error positions, graph, variables and --set, exit codes,
on_error, SIGINT, the progress line and --log-level.
"""
import glob
import json
import os
import pty
import re
import signal
import subprocess
import time
import unittest

import harness

SIMPLE = """name: t
sources:
  s: { type: file, path: d.jsonl, event_time: ts }
steps:
  keep:
    type: filter
    from: s
    where: u != "z"
  w:
    type: window
    from: keep
    key_by: [u]
    window: { type: tumbling, size: 10s }
    aggregate: { n: count() }
sinks:
  out: { type: stdout, from: w }
  late: { type: file, from: w.late, path: late.jsonl }
"""


def position(text, line_no, token, nth=1):
    """The 1-based column of the nth occurrence of token on line line_no of text."""
    line = text.split("\n")[line_no - 1]
    col = -1
    for _ in range(nth):
        col = line.index(token, col + 1)
    return col + 1


class ValidateTest(harness.TempDirTest):
    def assertInvalid(self, text, line, token, message_re, nth=1):
        path = self.write("bad.yaml", text)
        p = harness.run(["validate", path], timeout=20)
        err = p.stderr.decode() + p.stdout.decode()
        self.assertEqual(p.returncode, 2, err)
        col = position(text, line, token, nth)
        m = re.search(r"^(.*bad\.yaml):(\d+):(\d+): (.*)$", err, re.M)
        self.assertIsNotNone(m, "no FILE:LINE:COL: message in %r" % err)
        self.assertEqual((int(m.group(2)), int(m.group(3))), (line, col), err)
        self.assertRegex(m.group(4), message_re)

    def test_unknown_step_type_did_you_mean(self):
        text = SIMPLE.replace("type: filter", "type: filtr")
        self.assertInvalid(text, 6, "filtr", r"filtr.*did you mean.*filter")

    def test_dangling_from(self):
        text = SIMPLE.replace("from: keep", "from: kept")
        self.assertInvalid(text, 11, "kept", r"kept")

    def test_bad_expression_points_at_token(self):
        text = SIMPLE.replace('where: u != "z"', 'where: u != "z" && * 3')
        self.assertInvalid(text, 8, "*", r"expression")

    def test_bad_duration(self):
        text = SIMPLE.replace("size: 10s", "size: 10 parsecs")
        self.assertInvalid(text, 13, "10 parsecs", r"parsecs")

    def test_unknown_key(self):
        text = SIMPLE.replace("event_time: ts }", "event_time: ts, colour: red }")
        self.assertInvalid(text, 3, "colour", r"colour")

    def test_yaml_syntax_error(self):
        text = SIMPLE.replace("s: { type: file, path: d.jsonl, event_time: ts }",
                              "s: { type: file, path: d.jsonl, event_time: ts")
        path = self.write("bad.yaml", text)
        p = harness.run(["validate", path], timeout=20)
        self.assertEqual(p.returncode, 2)
        m = re.search(r"bad\.yaml:(\d+):(\d+): \S", p.stderr.decode())
        self.assertIsNotNone(m, p.stderr)
        self.assertIn(int(m.group(1)), (3, 4))  # where the flow mapping should have closed

    def test_alias_bomb_rejected_fast(self):
        lines = ["name: t", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 15):
            lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 10)))
        lines += ["sources:", "  s: { type: stdin }", "sinks:", "  o: { type: stdout, from: s }"]
        path = self.write("bomb.yaml", "\n".join(lines) + "\n")
        start = time.monotonic()
        p = harness.run(["validate", path], timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertLess(time.monotonic() - start, 10)  # generous; 10^15 nodes never finish
        self.assertRegex(p.stderr.decode(), r"bomb\.yaml:\d+:\d+: .*alias")

    def test_examples_are_valid(self):
        files = sorted(glob.glob(os.path.join(harness.PIPELINES, "*.yaml")))
        self.assertTrue(files)
        for path in files:  # pipelines and their test files (*.test.yaml)
            with self.subTest(path=os.path.basename(path)):
                p = harness.run(["validate", path])
                self.assertEqual(p.returncode, 0, p.stderr)

    def test_run_of_bad_pipeline_exits_2(self):
        path = self.write("bad.yaml", SIMPLE.replace("from: keep", "from: kept"))
        p = harness.run(["run", path], timeout=20)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr.decode(), r"bad\.yaml:11:\d+: ")


class GraphTest(harness.TempDirTest):
    NODES = ["s", "keep", "w", "out", "late"]
    EDGES = [("s", "keep"), ("keep", "w"), ("w", "out"), ("w", "late")]

    def test_dot(self):
        path = self.write("p.yaml", SIMPLE)
        p = harness.run(["graph", path, "--format", "dot"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertTrue(out.lstrip().startswith("digraph"), (out, p.stderr))
        for n in self.NODES:
            self.assertRegex(out, r'(?m)^\s*"%s" \[' % n)
        edges = set(re.findall(r'"(\w+)" -> "(\w+)"', out))
        self.assertEqual(edges, set(self.EDGES))

    def test_mermaid(self):
        path = self.write("p.yaml", SIMPLE)
        p = harness.run(["graph", path, "--format", "mermaid"])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertTrue(out.lstrip().startswith(("flowchart", "graph")), (out, p.stderr))
        ids = {}
        for n in self.NODES:
            m = re.search(r'(?m)^\s*(\S+?)[\[\(\{/\\>]+"?%s(<br/>|")' % n, out)
            self.assertIsNotNone(m, "node %s not in\n%s" % (n, out))
            ids[m.group(1)] = n
        edges = set()
        for a, b in re.findall(r"(?m)^\s*(\S+)\s*-[-.]+>(?:\|[^|]*\|)?\s*(\S+)\s*$", out):
            edges.add((ids.get(a, a), ids.get(b, b)))
        self.assertEqual(edges, set(self.EDGES))


class RunTest(harness.TempDirTest):
    DATA = [{"ts": 1000, "u": "a"}, {"ts": 2000, "u": "b"}, {"ts": 3000, "u": "a"},
            {"ts": 15000, "u": "a"}, {"ts": 1500, "u": "b"}, {"ts": 16000, "u": "z"}]
    # by hand: window [0,10s) a:2 b:1; [10s,20s) a:1; the record at 1500 comes after the
    # watermark 15000-0-1 passed 9999: late. u == "z" is filtered out.
    EXPECTED = [{"u": "a", "window_start": 0, "window_end": 10000, "n": 2},
                {"u": "b", "window_start": 0, "window_end": 10000, "n": 1},
                {"u": "a", "window_start": 10000, "window_end": 20000, "n": 1}]

    def test_finished_bounded_input_exits_0(self):
        self.write_jsonl("d.jsonl", self.DATA)
        path = self.write("p.yaml", SIMPLE)
        p = self.run_ok(["run", path])
        self.assertEqual(harness.multiset(harness.parse_lines(p.stdout)),
                         harness.multiset(self.EXPECTED))
        self.assertEqual(harness.read_jsonl(self.path("late.jsonl")), [{"ts": 1500, "u": "b"}])
        self.assertIn("info", p.stderr.decode())  # the summary

    def test_log_level_warn_silences_summary(self):
        self.write_jsonl("d.jsonl", self.DATA)
        path = self.write("p.yaml", SIMPLE)
        for args in (["--log-level", "warn", "run", path], ["run", path, "--log-level", "warn"]):
            with self.subTest(args=args):
                p = self.run_ok(args)
                self.assertEqual(p.stderr.decode(), "")
                self.assertEqual(len(harness.parse_lines(p.stdout)), 3)

    def test_env_variables_and_set(self):
        self.write_jsonl("d.jsonl", self.DATA)
        self.write_jsonl("other.jsonl", [{"ts": 5, "u": "q"}])
        # Quoted: unquoted, the braces would end the YAML flow mappings these settings sit in.
        text = SIMPLE.replace("path: d.jsonl", 'path: "${INPUT:-d.jsonl}"').replace(
            "size: 10s", 'size: "${SIZE}"')
        path = self.write("p.yaml", text)
        p = self.run_ok(["run", path], env={"SIZE": "10s"})  # INPUT unset: the default
        self.assertEqual(harness.multiset(harness.parse_lines(p.stdout)),
                         harness.multiset(self.EXPECTED))
        p = self.run_ok(["run", path], env={"SIZE": "1m", "INPUT": "other.jsonl"})
        self.assertEqual(harness.parse_lines(p.stdout),
                         [{"u": "q", "window_start": 0, "window_end": 60000, "n": 1}])
        p = self.run_ok(["run", path, "--set", "steps.w.window.size=1m",
                         "--set", 'steps.keep.where=u == "b"'], env={"SIZE": "10s"})
        self.assertEqual(harness.multiset(harness.parse_lines(p.stdout)),
                         harness.multiset([{"u": "b", "window_start": 0, "window_end": 60000,
                                            "n": 2}]))

    def write_damaged(self, on_error):
        self.write("d.jsonl", b'{"ts":1,"u":"a"}\n{"ts":2,"u":\n{"ts":3,"u":"b"}\n'
                   b'{"ts":4,"u":"\xff"}\n{"ts":5,"u":"c"}\n')
        return self.write("p.yaml", """name: e
sources:
  src: { type: file, path: d.jsonl, on_error: %s }
sinks:
  out: { type: stdout, from: src }
""" % on_error)

    def test_on_error_fail(self):
        path = self.write_damaged("fail")
        p = harness.run(["run", path])
        self.assertEqual(p.returncode, 1, p.stderr)
        err = p.stderr.decode()
        self.assertIn("src", err)
        self.assertRegex(err, r"offset\D{0,3}17\b")  # the damaged line starts at byte 17

    def test_on_error_drop(self):
        path = self.write_damaged("drop")
        p = self.run_ok(["run", path])
        self.assertEqual(harness.parse_lines(p.stdout),
                         [{"ts": 1, "u": "a"}, {"ts": 3, "u": "b"}, {"ts": 5, "u": "c"}])

    def interrupt(self, text, prepare=None, during=None, within=5):
        path = self.write("p.yaml", text)
        if prepare:
            prepare()
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)
            self.assertIsNone(proc.poll(), "an unbounded job ended by itself")
            if during:
                during(path)
            proc.send_signal(signal.SIGINT)
            start = time.monotonic()
            rc = proc.wait(timeout=within + 10)
            self.assertLess(time.monotonic() - start, within)
            self.assertEqual(rc, 130, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()

    def test_sigint_unbounded_generator(self):
        self.interrupt("""name: g
sources:
  gen: { type: generator, profile: clickstream }
steps:
  f: { type: filter, from: gen, where: "true" }
sinks:
  out: { type: file, from: f, path: out.jsonl }
""")

    def test_sigint_file_follow(self):
        self.interrupt("""name: f
sources:
  src: { type: file, path: d.jsonl, follow: true }
sinks:
  out: { type: file, from: src, path: out.jsonl }
""", prepare=lambda: self.write_jsonl("d.jsonl", self.DATA))

    def test_sigint_while_a_kafka_sink_cannot_reach_its_brokers(self):
        # The sink's producer waits for brokers that never answer (librdkafka's timeouts run to
        # a minute): `run` gives the job 5 s after the interrupt, then exits 130 anyway.
        def still_starting(path):
            # Still opening its sink: `status` says so (it said "restarting").
            st = harness.run(["status", path], timeout=10)
            self.assertEqual(st.returncode, 1, st.stdout)
            self.assertIn("no job is running (starting)", st.stderr.decode())

        self.interrupt("""name: ks
sources:
  gen: { type: generator, profile: clickstream, rate: 100 }
sinks:
  out: { type: kafka, from: gen, brokers: "127.0.0.1:1", topic: t }
""", during=still_starting, within=8)

    def progress_pipeline(self):
        self.write("big.jsonl", "".join('{"ts":%d,"u":"x"}\n' % i for i in range(3000)))
        return self.write("p.yaml", """name: pr
sources:
  s: { type: file, path: big.jsonl, rate: 2000 }
sinks:
  o: { type: file, from: s, path: out.jsonl }
""")

    def test_progress_line_on_a_terminal(self):
        path = self.progress_pipeline()
        master, slave = pty.openpty()
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.DEVNULL,
                                stderr=slave)
        os.close(slave)
        buf = b""
        try:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the other side closed
                    break
                if not chunk:
                    break
                buf += chunk
        finally:
            os.close(master)
            rc = proc.wait(timeout=60)
        self.assertEqual(rc, 0, buf)
        text = buf.decode(errors="replace")
        self.assertRegex(text, r"\d+ records read")
        self.assertRegex(text, r"\d+(\.\d+)?% done")
        self.assertEqual(len(harness.read_jsonl(self.path("out.jsonl"))), 3000)

    def test_no_progress_line_on_a_pipe(self):
        path = self.progress_pipeline()
        p = self.run_ok(["run", path])
        err = p.stderr.decode()
        self.assertNotIn("records read", err)
        self.assertNotIn("% done", err)
        self.assertNotIn("\x1b[K", err)


if __name__ == "__main__":
    unittest.main()
