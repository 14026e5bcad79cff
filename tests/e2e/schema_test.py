"""schemas/pipeline.schema.json: a valid JSON Schema that accepts the example pipelines and
rejects the mistakes the loader rejects.

Run: /usr/bin/python3 -m unittest discover -s tests/e2e -p '*_test.py'
"""
import glob
import json
import os
import unittest

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(ROOT, "schemas", "pipeline.schema.json")

GOOD = {
    "name": "clickstream",
    "parallelism": 2,
    "state": {"dir": ".streamrun/clickstream"},
    "checkpoints": {"interval": "10s", "mode": "exactly_once", "retain": 3},
    "restart": {"strategy": "fixed_delay", "attempts": 3, "delay": "1s"},
    "sources": {
        "clicks": {
            "type": "file",
            "path": "data/clicks.jsonl",
            "format": "json",
            "event_time": "ts",
            "watermark": {"max_out_of_orderness": "5s"},
            "on_error": "dead_letter",
        }
    },
    "steps": {
        "clean": {"type": "filter", "from": "clicks", "where": 'userId != null && action != "bot"'},
        "per_user_minute": {
            "type": "window",
            "from": ["clean"],
            "key_by": ["userId"],
            "window": {"type": "tumbling", "size": "1m"},
            "aggregate": {"clicks": "count()"},
            "allowed_lateness": "0s",
        },
    },
    "sinks": {
        "counts": {"type": "file", "from": "per_user_minute", "path": "out/counts.jsonl"},
        "late": {"type": "file", "from": "per_user_minute.late", "path": "out/late.jsonl"},
        "errors": {"type": "stdout", "from": "clicks.errors"},
    },
}


def with_changes(change):
    doc = json.loads(json.dumps(GOOD))
    change(doc)
    return doc


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH, encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.validator_class = jsonschema.validators.validator_for(cls.schema)
        cls.validator = cls.validator_class(cls.schema)

    def errors(self, doc):
        return list(self.validator.iter_errors(doc))

    def test_schema_is_a_valid_json_schema(self):
        self.validator_class.check_schema(self.schema)

    def test_every_example_pipeline_is_valid(self):
        files = [f for f in sorted(glob.glob(os.path.join(ROOT, "pipelines", "*.yaml")))
                 if not f.endswith(".test.yaml")]
        for path in files:
            with self.subTest(pipeline=os.path.relpath(path, ROOT)):
                with open(path, encoding="utf-8") as f:
                    doc = yaml.safe_load(f)
                self.assertEqual(self.errors(doc), [])

    def test_a_complete_pipeline_is_valid(self):
        self.assertEqual(self.errors(GOOD), [])

    def test_env_variables_are_allowed_in_typed_settings(self):
        doc = with_changes(lambda d: d.update(parallelism="${PARALLELISM:-2}"))
        self.assertEqual(self.errors(doc), [])

    def test_steps_may_be_absent(self):
        doc = with_changes(lambda d: (d.pop("steps"), d["sinks"].pop("late"),
                                      d["sinks"]["counts"].update({"from": "clicks"})))
        self.assertEqual(self.errors(doc), [])

    def assertInvalid(self, change):
        self.assertNotEqual(self.errors(with_changes(change)), [])

    def test_missing_name_is_invalid(self):
        self.assertInvalid(lambda d: d.pop("name"))

    def test_unknown_top_level_key_is_invalid(self):
        self.assertInvalid(lambda d: d.update(paralelism=2))

    def test_parallelism_out_of_range_is_invalid(self):
        self.assertInvalid(lambda d: d.update(parallelism=0))

    def test_unknown_step_type_is_invalid(self):
        self.assertInvalid(lambda d: d["steps"]["clean"].update(type="filtr"))

    def test_unknown_setting_of_a_type_is_invalid(self):
        self.assertInvalid(lambda d: d["steps"]["clean"].update(wher="x"))

    def test_missing_required_setting_is_invalid(self):
        self.assertInvalid(lambda d: d["steps"]["clean"].pop("where"))

    def test_step_without_from_is_invalid(self):
        self.assertInvalid(lambda d: d["steps"]["clean"].pop("from"))

    def test_bad_duration_is_invalid(self):
        self.assertInvalid(lambda d: d["checkpoints"].update(interval="10x"))

    def test_node_name_with_a_dot_is_invalid(self):
        self.assertInvalid(lambda d: d["sources"].update({"a.b": {"type": "stdin"}}))

    def test_no_sink_is_invalid(self):
        self.assertInvalid(lambda d: d.update(sinks={}))


if __name__ == "__main__":
    unittest.main()
