"""The stdin source, json and text formats, to the stdout sink."""
import json
import random
import unittest

import harness
import reference as ref


def ascii_upper(s):
    """upper() as documented: ASCII letters only."""
    return "".join(c.upper() if "a" <= c <= "z" else c for c in s)


class StdinTest(harness.TempDirTest):
    def pipeline(self, source, steps="", sink_from="in"):
        return self.write("p.yaml", """name: s
sources:
  in: %s
steps:%s
sinks:
  out: { type: stdout, from: %s }
""" % (source, steps or " {}", sink_from))

    def test_json_passthrough(self):
        rnd = random.Random(5)
        records = [{"i": i, "name": rnd.choice(["ä", "b\"q", "c\\d", "日本"]),
                    "nested": {"x": [1, 2.5, None, True]}, "f": i / 4}
                   for i in range(5000)]
        path = self.pipeline("{ type: stdin, format: json }")
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        p = self.run_ok(["run", path], input_bytes=data)
        self.assertMultisetEqual(harness.multiset(harness.parse_lines(p.stdout)),
                                 harness.multiset(records))

    def test_json_filter_and_window(self):
        rnd = random.Random(6)
        items = []
        for i in range(3000):
            ts = 1000 * i + rnd.randint(-1500, 0)
            items.append((ts, {"ts": ts, "k": rnd.choice("abc"), "v": rnd.randint(0, 9)}))
        steps = """
  odd: { type: filter, from: in, where: v % 2 == 1 }
  w:
    type: window
    from: odd
    key_by: [k]
    window: { type: tumbling, size: 1m }
    aggregate: { n: count(), total: sum(v) }"""
        path = self.pipeline("{ type: stdin, event_time: ts, watermark: { max_out_of_orderness: 1s } }",
                             steps, "w")
        rows = [r for r in ref.with_watermarks(items, 1000) if r[1]["v"] % 2 == 1]
        results, late = ref.run_window(rows, ["k"], ref.Tumbling(60000),
                                       [("n", "count", None), ("total", "sum", ref.field("v"))])
        self.assertEqual(late, [])
        data = "".join(harness.dumps(r) + "\n" for _, r in items).encode()
        p = self.run_ok(["run", path], input_bytes=data)
        self.assertMultisetEqual(harness.multiset(harness.parse_lines(p.stdout)),
                                 harness.multiset(results))

    def test_json_dead_letters(self):
        path = self.pipeline("{ type: stdin, on_error: dead_letter }", sink_from="[in, in.errors]")
        p = self.run_ok(["run", path], input_bytes=b'{"a":1}\n{"a":\n{"a":3}\n')
        out = harness.parse_lines(p.stdout)
        self.assertEqual([r for r in out if "a" in r], [{"a": 1}, {"a": 3}])
        errors = [r for r in out if "a" not in r]
        self.assertEqual(len(errors), 1, out)
        self.assertEqual(errors[0].get("text"), '{"a":')
        self.assertEqual(errors[0].get("source"), "in")

    def test_text_through_map(self):
        lines = ["hello", '{"a":1}', "tab\there", "ünïcödé", 'quote " and \\ backslash']
        steps = """
  m: { type: map, from: in, set: { n: length(line), up: upper(line) } }"""
        path = self.pipeline("{ type: stdin, format: text }", steps, "m")
        p = self.run_ok(["run", path], input_bytes=("\n".join(lines) + "\n").encode())
        self.assertEqual(harness.parse_lines(p.stdout),
                         [{"line": l, "n": len(l), "up": ascii_upper(l)} for l in lines])

    # A text record that no step changed leaves as the line it came in as (records pass through
    # as their original bytes); expressions see it as {"line": LINE} (see test_text_through_map).
    def test_text_to_stdout(self):
        lines = ["hello", '{"a":1}', "last line without newline"]
        path = self.pipeline("{ type: stdin, format: text }")
        p = self.run_ok(["run", path], input_bytes="\n".join(lines).encode())
        self.assertEqual(p.stdout.decode().splitlines(), lines)


if __name__ == "__main__":
    unittest.main()
