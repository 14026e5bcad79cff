"""Helpers of the end-to-end tests: they drive the real binary (path in $STREAMRUN).

Expected results never come from the engine: the tests compute them with reference.py or by hand.
"""
import collections
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PIPELINES = os.path.join(ROOT, "pipelines")


def binary():
    path = os.environ.get("STREAMRUN") or os.path.join(ROOT, "build", "streamrun")
    if not os.path.exists(path):
        raise unittest.SkipTest("no streamrun binary at %s (set $STREAMRUN)" % path)
    return path


def run(args, timeout=120, stdin=None, env=None, input_bytes=None):
    """Runs `streamrun ARGS`; returns the CompletedProcess (bytes stdout/stderr)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([binary()] + list(args), input=input_bytes, stdin=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          env=full_env)


def records_out(pipeline_path, node, env=None, timeout=30):
    """The records_out of `node` (all its subtasks) in the running job of `pipeline_path`, from
    `streamrun status --json`; 0 when the job does not answer."""
    p = run(["status", pipeline_path, "--json"], timeout=timeout, env=env)
    if p.returncode != 0:
        return 0
    try:
        status = json.loads(p.stdout)
    except ValueError:
        return 0
    return sum(n.get("records_out", 0) for n in status.get("nodes", []) if n.get("name") == node)


class TempDirTest(unittest.TestCase):
    """A test case with its own temporary directory, self.dir."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="streamrun-e2e-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(path, mode) as f:
            f.write(text)
        return path

    def write_jsonl(self, name, records):
        return self.write(name, "".join(dumps(r) + "\n" for r in records))

    def run_ok(self, args, **kw):
        p = run(args, **kw)
        if p.returncode != 0:
            self.fail("streamrun %s exited %d\nstderr:\n%s" % (
                " ".join(args), p.returncode, p.stderr.decode(errors="replace")[-4000:]))
        return p

    def assertMultisetEqual(self, actual, expected, what="output"):
        """actual, expected: Counters of canonical JSON texts."""
        if actual == expected:
            return
        missing = expected - actual
        extra = actual - expected
        lines = ["%s differs: %d expected records missing, %d unexpected records" % (
            what, sum(missing.values()), sum(extra.values()))]
        for title, c in (("missing", missing), ("unexpected", extra)):
            for text, n in sorted(c.items())[:8]:
                lines.append("  %s x%d: %s" % (title, n, text))
        self.fail("\n".join(lines))


def dumps(record):
    return json.dumps(record, separators=(",", ":"))


def canonical(record):
    return json.dumps(record, sort_keys=True)


def multiset(records):
    return collections.Counter(canonical(r) for r in records)


def parse_lines(data):
    """JSON lines (bytes or str) to a list of values."""
    if isinstance(data, bytes):
        data = data.decode()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return parse_lines(f.read())


def read_multiset(path):
    return multiset(read_jsonl(path))


def yaml_str(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)
