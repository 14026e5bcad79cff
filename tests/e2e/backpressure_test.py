"""Backpressure: a slow sink slows the source, and memory stays flat.

The test reads the job's stdout slowly (64 KiB, then 10 ms of sleep) for about 5 s while it
samples VmRSS from /proc/PID/status every 200 ms, then reads the rest quickly and checks the
output is complete. No timing assertions: only memory, counts and how far the source got.
"""
import os
import re
import subprocess
import threading
import time
import pty

import harness

RSS_LIMIT_KB = 150 * 1024
SLOW_SECONDS = 5.0


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


class BackpressureTest(harness.TempDirTest):
    def drive(self, pipeline_text, expected_lines, progress=False):
        """Runs the pipeline with a slow reader of stdout, then a fast one. Returns (RSS samples
        in kB, lines read during the slow phase, last "records read" of the progress line seen
        during the slow phase or None)."""
        path = self.write("p.yaml", pipeline_text)
        master = slave = None
        if progress:
            master, slave = pty.openpty()
        proc = subprocess.Popen([harness.binary(), "run", path], stdout=subprocess.PIPE,
                                stderr=slave if progress else subprocess.DEVNULL, bufsize=0)
        read_so_far = [0]
        progress_text = []
        if progress:
            os.close(slave)

            def pump():
                while True:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        return
                    if not chunk:
                        return
                    progress_text.append(chunk)
            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
        samples = []
        lines = 0
        try:
            start = time.monotonic()
            next_sample = start
            while time.monotonic() - start < SLOW_SECONDS:
                chunk = proc.stdout.read(65536)
                if not chunk:
                    break
                lines += chunk.count(b"\n")
                time.sleep(0.01)
                if time.monotonic() >= next_sample:
                    r = rss_kb(proc.pid)
                    if r is not None:
                        samples.append(r)
                    next_sample += 0.2
            slow_lines = lines
            seen = None
            if progress:
                text = b"".join(progress_text).decode(errors="replace")
                counts = re.findall(r"(\d+(?:\.\d+)?)([kM]?) records read", text)
                if counts:  # "1.28M records read"
                    number, unit = counts[-1]
                    seen = int(float(number) * {"": 1, "k": 1e3, "M": 1e6}[unit])
            while True:  # the rest, quickly
                chunk = proc.stdout.read(1 << 20)
                if not chunk:
                    break
                lines += chunk.count(b"\n")
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            if master is not None:
                os.close(master)
        self.assertEqual(rc, 0)
        self.assertEqual(lines, expected_lines)
        self.assertLess(slow_lines, expected_lines // 2, "the slow phase read most of the output")
        self.assertGreaterEqual(len(samples), 10)
        if not os.environ.get("STREAMRUN_SANITIZED"):
            # Under AddressSanitizer (make asan) the resident set starts at ~165 MB (shadow
            # memory, the allocator's quarantine): only the flatness below means anything there.
            self.assertLess(max(samples), RSS_LIMIT_KB, "RSS samples (kB): %s" % samples)
        # Flat, not growing steadily: the second half of the slow phase stays within 20 MB of
        # the first half's peak.
        half = len(samples) // 2
        self.assertLess(max(samples[half:]) - max(samples[2:half]), 20 * 1024,
                        "RSS samples (kB): %s" % samples)
        return samples, slow_lines, seen

    def test_generator_is_slowed_by_a_slow_stdout(self):
        count = 3000000
        _, slow_lines, seen = self.drive("""name: bp
sources:
  gen: { type: generator, profile: clickstream, count: %d }
steps:
  keep: { type: filter, from: gen, where: ts > 0 }
sinks:
  out: { type: stdout, from: keep }
""" % count, count, progress=True)
        # The source cannot race ahead of the reader: what it read beyond what the reader took
        # fits in the bounded queues and the pipe.
        self.assertIsNotNone(seen, "no progress line on the terminal")
        self.assertLess(seen, count)
        self.assertLess(seen - slow_lines, 1000000, (seen, slow_lines))

    def test_file_source_is_slowed_by_a_slow_stdout(self):
        line = '{"ts":%d,"user":"u%04d","page":"/product/%d","action":"view","pad":"%s"}\n'
        path = self.path("big.jsonl")
        n = 0
        with open(path, "w") as f:
            block = "".join(line % (1700000000000 + i, i % 9973, i % 50, "x" * 100)
                            for i in range(10000))
            while f.tell() < 200 * 1000 * 1000:
                f.write(block)
                n += 10000
        self.drive("""name: bpf
sources:
  src: { type: file, path: big.jsonl }
sinks:
  out: { type: stdout, from: src }
""", n)
