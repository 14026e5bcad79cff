"""The example pipelines in pipelines/ on their bundled data, against the reference model.
Outputs are redirected to a temporary directory with --set.
"""
import base64
import json
import os
import unittest

import harness
import reference as ref

CLICKSTREAM = os.path.join(harness.PIPELINES, "clickstream.yaml")
SESSION_PROMOTION = os.path.join(harness.PIPELINES, "session_promotion.yaml")
DATA = os.path.join(harness.PIPELINES, "data")


def read_source(path):
    """A file source with on_error: dead_letter, modelled: (rows [(ts, record)], errors
    [(offset, raw line bytes)])."""
    with open(path, "rb") as f:
        raw = f.read()
    items, errors = [], []
    offset = 0
    for line in raw.split(b"\n"):
        start = offset
        offset += len(line) + 1
        if not line:
            continue
        try:
            text = line.decode("utf-8")
            rec = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            errors.append((start, line))
            continue
        ts = ref.event_time(rec.get("ts"))
        if ts is None:
            errors.append((start, line))
            continue
        items.append((ts, rec))
    return items, errors


class ClickstreamTest(harness.TempDirTest):
    def run_example(self, *extra):
        self.run_ok(["run", CLICKSTREAM,
                     "--set", "sinks.counts.path=" + self.path("counts.jsonl"),
                     "--set", "sinks.late.path=" + self.path("late.jsonl"),
                     "--set", "sinks.bad.path=" + self.path("bad.jsonl")] + list(extra))

    def test_outputs_match_model(self):
        items, errors = read_source(os.path.join(DATA, "clicks.jsonl"))
        self.assertEqual(len(errors), 3)  # cut JSON, a time that is not a time, invalid UTF-8
        rows = [r for r in ref.with_watermarks(items, 5000)
                if r[1].get("userId") is not None and r[1].get("action") != "bot"]
        results, late = ref.run_window(
            rows, ["userId"], ref.Tumbling(60000),
            [("clicks", "count", None),
             ("purchases", "count_if", lambda r: r.get("action") == "purchase"),
             ("pages", "count_distinct", ref.field("page"))])
        self.assertTrue(late)  # the data has clicks later than their minute
        for p in ("1", "2", "4"):
            with self.subTest(parallelism=p):
                self.run_example("--parallelism", p)
                self.assertMultisetEqual(harness.read_multiset(self.path("counts.jsonl")),
                                         harness.multiset(results), "counts")
                self.assertMultisetEqual(harness.read_multiset(self.path("late.jsonl")),
                                         harness.multiset(late), "late")
                bad = harness.read_jsonl(self.path("bad.jsonl"))
                self.assertEqual(len(bad), len(errors), bad)
                by_offset = {b.get("offset"): b for b in bad}
                for offset, line in errors:
                    b = by_offset.get(offset)
                    self.assertIsNotNone(b, "no dead letter at offset %d: %s" % (offset, bad))
                    self.assertEqual(b.get("source"), "clicks")
                    self.assertIsInstance(b.get("reason"), str)
                    self.assertTrue(b["reason"])
                    try:
                        self.assertEqual(b.get("text"), line.decode("utf-8"))
                    except UnicodeDecodeError:  # the original bytes, in base64
                        self.assertEqual(base64.b64decode(b.get("text_b64", "")), line)
                        self.assertIn("UTF-8", b["reason"])


class SessionPromotionTest(harness.TempDirTest):
    # Fails as of this commit: the runtime does not yet merge the bounded inputs of a union in
    # event-time order (being changed in the runtime branch). It reads logins.jsonl and
    # cart.jsonl in whatever order its threads give, so cart events reach their session after
    # the watermark of the other input has moved on or after the logout that closed it: at
    # parallelism 1 sessions are split into one-event windows ({"events": 1, ...}). At
    # parallelism 2 it also hits the keyed-union bug (see windows_test.test_union_of_two_files).
    # The model was checked against the engine on the same events pre-merged into one file
    # (one source), where they agree. Remove the mark when the merge lands.
    def test_promotions_match_model(self):
        def load(name):
            with open(os.path.join(DATA, name)) as f:
                return [(ref.event_time(r["ts"]), r) for r in map(json.loads, f)]

        # The runtime merges bounded inputs of a union in event-time order (ties: the source
        # listed first), so the run is deterministic.
        merged = ref.merge_by_time(load("logins.jsonl"), load("cart.jsonl"))
        rows = ref.with_watermarks(merged, 10000)

        def is_(action):
            return lambda r: r.get("action") == action

        results, late = ref.run_window(
            rows, ["userId"], ref.Session(300000),
            [("events", "count", None), ("cart_adds", "count_if", is_("cart_add")),
             ("cart_removes", "count_if", is_("cart_remove")),
             ("purchases", "count_if", is_("purchase")),
             ("cart_value", "sum", lambda r: r.get("price") if r.get("action") == "cart_add" else None),
             ("logged_out", "count_if", is_("logout"))],
            fire_on=is_("logout"))
        self.assertEqual(late, [])
        for r in results:
            if r["purchases"] > 0:
                r["promotion"] = "none"
            elif r["cart_adds"] - r["cart_removes"] >= 2 or (
                    r["cart_value"] is not None and r["cart_value"] >= 100):
                r["promotion"] = "discount_10"
            elif r["cart_adds"] > 0:
                r["promotion"] = "free_shipping"
            else:
                r["promotion"] = "none"
            # The map then rounds the sum (the decision above saw it unrounded).
            if r["cart_value"] is not None:
                r["cart_value"] = round(r["cart_value"], 2)
        self.assertTrue(any(r["logged_out"] for r in results))
        expected = harness.multiset(results)
        for p in ("1", "2"):
            with self.subTest(parallelism=p):
                self.run_ok(["run", SESSION_PROMOTION, "--parallelism", p,
                             "--set", "sinks.promotions.path=" + self.path("promotions.jsonl")])
                self.assertMultisetEqual(harness.read_multiset(self.path("promotions.jsonl")),
                                         expected, "promotions")


if __name__ == "__main__":
    unittest.main()
