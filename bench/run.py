#!/usr/bin/python3
"""`make bench`: the quality-bar benchmarks of docs/DESIGN ("Quality bars").

  a. throughput: file -> filter -> 1-minute tumbling count per user (100,000 users) -> file, at
     parallelism 1 and 2, against a plain RapidJSON DOM parse of the same file; beside them, two
     independent parallelism-1 jobs at once, pinned one per CPU, each on half of the file (what
     the two cores give this workload in that minute with nothing shared; no bar);
  b. a stateless filter against `jq -c 'select(.action == "purchase")'`;
  c. memory: a stateless pipeline over 5 GB of input (peak resident set size);
  d. keyed state under checkpoints: a 1-hour tumbling count over 1,000,000 users, with
     checkpoints every second against none (throughput ratio), the pause at each barrier (from
     the engine's debug log) and the progress gaps seen from outside (the status socket polled
     every 2 ms), and recovery of the 1 M keys after a crash;
  e. state larger than the cache: the same job over 10,000,000 users (every one in state), all in
     memory against a small `state.cache` (windows evicted to LMDB), with and without
     checkpoints: time, peak memory (anonymous and LMDB's mapped file pages), and the output's
     multiset checked equal.
  f. Kafka: the same filter from a topic to a topic through `streamrun kafka-mock` (librdkafka's
     mock cluster, one broker, 24 partitions: it keeps about 5 MB per partition), against
     `kcat -C` reading the same topic to its end. Both include connecting and metadata.

Data is generated into bench/data/ (deterministic seeds) and reused when present. Each figure is
the median of several runs (min and max reported too), printed with the machine and the commit,
and written to bench/results.json. `--quick` uses smaller inputs (and more runs). In a and b the
figures compared run in rounds (baseline, p1, p2, then again), and a ratio is the median of the
ratios within each round: the machine is shared, and its speed drifts by tens of percent over a
minute, which separate series of runs would read as a difference between them.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
DATA = os.path.join(BENCH, "data")


def log(msg):
    print(msg, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
            "load_avg_1m_at_start": round(load, 2)}


def commit():
    try:
        rev = sh(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT).strip()
        # The results file itself does not make the code dirty: runs in a row rewrite it.
        dirty = sh(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                    ":(exclude)bench/results.json"], cwd=ROOT).strip() != ""
        return rev + ("-dirty" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                return n
            n += b.count(b"\n")


def ensure_clicks(lines):
    path = os.path.join(DATA, "clicks_%d.jsonl" % lines)
    if not os.path.exists(path):
        log("generating %s (%d lines, seed 42)" % (path, lines))
        subprocess.run([sys.executable, os.path.join(BENCH, "gen_clicks.py"), path, str(lines),
                        "--users", "100000", "--seed", "42"], check=True)
    return path


def ensure_users(lines, users):
    """Clicks of `users` distinct users (seed 7), for the keyed-state benchmark."""
    path = os.path.join(DATA, "clicks_%dk_users_%d.jsonl" % (users // 1000, lines))
    if not os.path.exists(path):
        log("generating %s (%d lines, %d users, seed 7)" % (path, lines, users))
        subprocess.run([sys.executable, os.path.join(BENCH, "gen_clicks.py"), path, str(lines),
                        "--users", str(users), "--seed", "7"], check=True)
    return path


def ensure_every_user(lines, users):
    """Clicks going through all `users`, each once per pass (gen_clicks.py --every-user)."""
    path = os.path.join(DATA, "clicks_%dk_every_user_%d.jsonl" % (users // 1000, lines))
    if not os.path.exists(path):
        log("generating %s (%d lines, every one of %d users per pass)" % (path, lines, users))
        subprocess.run([sys.executable, os.path.join(BENCH, "gen_clicks.py"), path, str(lines),
                        "--users", str(users), "--seed", "7", "--every-user"], check=True)
    return path


def multiset_digest(path):
    """An order-independent digest of a file's lines, and their count."""
    import hashlib
    total, n = 0, 0
    with open(path, "rb") as f:
        for line in f:
            total = (total + int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(),
                                            "little")) & ((1 << 64) - 1)
            n += 1
    return "%016x" % total, n


def ensure_prefix(src, lines):
    path = os.path.join(DATA, "clicks_prefix_%d.jsonl" % lines)
    if not os.path.exists(path):
        with open(src, "rb") as f, open(path + ".tmp", "wb") as out:
            for _, line in zip(range(lines), f):
                out.write(line)
        os.replace(path + ".tmp", path)
    return path


def ensure_halves(src):
    """The first and the second half of `src`'s lines, for two jobs that split it between them."""
    base = os.path.splitext(os.path.basename(src))[0]
    paths = [os.path.join(DATA, "%s_half%d.jsonl" % (base, k)) for k in (1, 2)]
    if all(os.path.exists(p) for p in paths):
        return paths
    half = count_lines(src) // 2
    with open(src, "rb") as f:
        for k, path in enumerate(paths):
            with open(path + ".tmp", "wb") as out:
                if k == 0:
                    for _, line in zip(range(half), f):
                        out.write(line)
                else:
                    shutil.copyfileobj(f, out, 1 << 24)
            os.replace(path + ".tmp", path)
    return paths


def ensure_big(src, gib):
    """~gib GiB made of a ~50 MB piece of `src` repeated."""
    path = os.path.join(DATA, "big_%dg.jsonl" % gib)
    target = gib << 30
    if os.path.exists(path) and os.path.getsize(path) >= target:
        return path
    free = shutil.disk_usage(DATA).free
    if free < target * 1.2 + (1 << 30):
        raise SystemExit("not enough disk space for %s: %.1f GB free" % (path, free / 1e9))
    log("generating %s (%d GiB)" % (path, gib))
    with open(src, "rb") as f:
        piece = f.read(50 << 20)
    piece = piece[:piece.rfind(b"\n") + 1]
    with open(path + ".tmp", "wb") as out:
        written = 0
        while written < target:
            out.write(piece)
            written += len(piece)
    os.replace(path + ".tmp", path)
    return path


def warm(path):
    """Reads the file so that the next run finds it in the page cache. Runs call it right before
    they start (untimed): a kernel that reclaims cold page cache on its own (this machine's
    DAMON evicted 270 MB of the 700 MB click file within 30 idle seconds) would otherwise make
    some runs read from disk."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


CPU_SECONDS = []  # CPU seconds (user + sys) of the last timed() command, for the report


def timed(cmd, env=None, stdout=subprocess.DEVNULL, rss=False):
    """Runs cmd; returns (wall seconds, peak RSS in MB or None). Its CPU seconds (user + sys of
    every thread) go to CPU_SECONDS[-1]: on a shared machine they show what the wall clock hides."""
    if rss:
        cmd = ["/usr/bin/time", "-f", "%M"] + cmd
    before = os.times()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    secs = time.perf_counter() - t0
    after = os.times()
    CPU_SECONDS.append((after.children_user - before.children_user) +
                       (after.children_system - before.children_system))
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-2000:]))
    peak = None
    if rss:
        peak = int(p.stderr.strip().splitlines()[-1]) / 1024.0  # KiB -> MiB
    return secs, peak


def summary(values, cpu_rates=None):
    s = {"median": statistics.median(values), "min": min(values), "max": max(values),
         "runs": len(values)}
    if cpu_rates:
        s["per_cpu_second_median"] = statistics.median(cpu_rates)
    return s


class Runner:
    def __init__(self, build, runs):
        self.streamrun = os.path.join(build, "streamrun")
        self.baseline = os.path.join(build, "rapidjson_baseline")
        self.core_latency_tool = os.path.join(build, "core_latency")
        self.latencies = []  # core_latency() results, in order
        self.runs = runs
        self.tmp = tempfile.mkdtemp(prefix="streamrun-bench-")

    def streamrun_once(self, pipeline, data, lines, parallelism, rss=False):
        """One run: (events/s, events per CPU-second, peak RSS MB or None)."""
        out = os.path.join(self.tmp, "out.jsonl")
        state = os.path.join(self.tmp, "state")
        env = dict(os.environ, BENCH_INPUT=data, BENCH_OUTPUT=out, BENCH_STATE=state)
        warm(data)
        secs, peak = timed([self.streamrun, "run", os.path.join(BENCH, pipeline),
                            "--parallelism", str(parallelism)], env=env, rss=rss)
        shutil.rmtree(state, ignore_errors=True)
        if os.path.exists(out):
            os.remove(out)
        return lines / secs, lines / CPU_SECONDS[-1], peak

    def streamrun_rate(self, pipeline, data, lines, parallelism, runs=None, rss=False):
        rates, peaks, cpu = [], [], []
        for _ in range(runs or self.runs):
            rate, cpu_rate, peak = self.streamrun_once(pipeline, data, lines, parallelism, rss)
            rates.append(rate)
            cpu.append(cpu_rate)
            if peak is not None:
                peaks.append(peak)
        return summary(rates, cpu), (summary(peaks) if rss else None)

    def core_latency(self):
        """One-way cache-line hand-over between CPU 0 and 1 in ns (BENCHMARKS.md, session 7):
        ~30 when the host runs the two vCPUs near each other, ~160 when far apart."""
        try:
            ns = float(sh([self.core_latency_tool]).strip())
        except (OSError, subprocess.CalledProcessError, ValueError):
            return None
        self.latencies.append(ns)
        return ns

    def pair_once(self, pipeline, halves, lines):
        """Two independent parallelism-1 jobs at once, each pinned to one of the first two CPUs
        this process may use and reading one half of the input: what two cores give this
        workload in this minute with nothing shared between the halves (no exchange, no
        chunk hand-over, two sinks). A pinned job has no reader thread (one usable CPU)."""
        cpus = sorted(os.sched_getaffinity(0))[:2]
        procs, outs, states = [], [], []
        for half in halves:
            warm(half)
        before = os.times()
        t0 = time.perf_counter()
        for k, (cpu, half) in enumerate(zip(cpus, halves)):
            outs.append(os.path.join(self.tmp, "pair%d.jsonl" % k))
            states.append(os.path.join(self.tmp, "pair-state%d" % k))
            env = dict(os.environ, BENCH_INPUT=half, BENCH_OUTPUT=outs[-1], BENCH_STATE=states[-1])
            procs.append(subprocess.Popen(
                ["taskset", "-c", str(cpu), self.streamrun, "run", os.path.join(BENCH, pipeline),
                 "--parallelism", "1"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True))
        errors = [p.communicate()[1] for p in procs]
        secs = time.perf_counter() - t0
        after = os.times()
        CPU_SECONDS.append((after.children_user - before.children_user) +
                           (after.children_system - before.children_system))
        for p, err in zip(procs, errors):
            if p.returncode != 0:
                raise SystemExit("failed (%d): pinned p1 job\n%s" % (p.returncode, err[-2000:]))
        for out, state in zip(outs, states):
            shutil.rmtree(state, ignore_errors=True)
            if os.path.exists(out):
                os.remove(out)
        return lines / secs, lines / CPU_SECONDS[-1], None

    def baseline_once(self, data, lines):
        warm(data)
        secs, _ = timed([self.baseline, data])
        return lines / secs, lines / CPU_SECONDS[-1], None

    def jq_once(self, data, lines):
        warm(data)
        secs, _ = timed(["jq", "-c", 'select(.action == "purchase")', data])
        return lines / secs, lines / CPU_SECONDS[-1], None

    def rounds(self, measures, runs=None):
        """Runs every measure (name -> function returning (rate, cpu rate, peak)) once per
        round, in turn, so that the machine's drift hits all of them alike. Returns, per name,
        its summary, and, per round, the rates (for ratios within a round)."""
        rates = {name: [] for name in measures}
        cpu = {name: [] for name in measures}
        for _ in range(runs or self.runs):
            for name, measure in measures.items():
                rate, cpu_rate, _ = measure()
                rates[name].append(rate)
                cpu[name].append(cpu_rate)
        return {name: summary(rates[name], cpu[name]) for name in measures}, rates


    def kafka_rates(self, data, lines):
        """(kcat, streamrun) rates of reading `lines` records from a mock cluster's topic."""
        if shutil.which("kcat") is None:
            raise SystemExit("kcat is not installed (make deps installs it)")
        mock = subprocess.Popen([self.streamrun, "kafka-mock", "--brokers", "1", "--topic", "in:24",
                                 "--topic", "out:4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            first = mock.stdout.readline().strip()
            if not first.startswith("bootstrap.servers="):
                raise SystemExit("kafka-mock did not start: %r" % first)
            servers = first.split("=", 1)[1]
            recording = os.path.join(self.tmp, "clicks.recording.jsonl")
            with open(data, "rb") as f, open(recording, "wb") as out:
                for i, line in enumerate(f):
                    out.write(b'{"partition":%d,"value":%s}\n' % (i % 24, line.rstrip(b"\n")))
            sh([self.streamrun, "replay", recording, "--brokers", servers, "--topic", "in"])
            os.remove(recording)
            kcat, ours, kcat_cpu, ours_cpu = [], [], [], []
            for i in range(self.runs):  # alternating, so that load on the machine hits both
                out = subprocess.run(["kcat", "-C", "-b", servers, "-t", "in", "-o", "beginning", "-e",
                                      "-q", "-f", "%s\n"], capture_output=True, check=True).stdout
                if out.count(b"\n") != lines:
                    raise SystemExit("kcat read %d records, not %d (the mock dropped some?)"
                                     % (out.count(b"\n"), lines))
                secs, _ = timed(["kcat", "-C", "-b", servers, "-t", "in", "-o", "beginning", "-e",
                                 "-q", "-f", "%s\n"])
                kcat.append(lines / secs)
                kcat_cpu.append(lines / CPU_SECONDS[-1])
                state = os.path.join(self.tmp, "state-k%d" % i)
                env = dict(os.environ, BROKERS=servers, BENCH_STATE=state)
                secs, _ = timed([self.streamrun, "run", os.path.join(BENCH, "kafka_filter.yaml")], env=env)
                ours.append(lines / secs)
                ours_cpu.append(lines / CPU_SECONDS[-1])
                shutil.rmtree(state, ignore_errors=True)
            return summary(kcat, kcat_cpu), summary(ours, ours_cpu)
        finally:
            mock.stdin.close()
            try:
                mock.wait(timeout=30)
            except subprocess.TimeoutExpired:
                mock.kill()
                mock.wait()

    def check_filter_matches_jq(self, data):
        """The filter benchmark selects exactly what jq selects."""
        out = os.path.join(self.tmp, "check.jsonl")
        env = dict(os.environ, BENCH_INPUT=data, BENCH_OUTPUT=out,
                   BENCH_STATE=os.path.join(self.tmp, "state-check"))
        subprocess.run([self.streamrun, "run", os.path.join(BENCH, "filter.yaml")], env=env,
                       check=True, capture_output=True)
        with open(out) as f:
            ours = sorted(f.read().splitlines())
        theirs = sorted(sh(["jq", "-c", 'select(.action == "purchase")', data]).splitlines())
        os.remove(out)
        shutil.rmtree(os.path.join(self.tmp, "state-check"), ignore_errors=True)
        if ours != theirs:
            raise SystemExit("filter output differs from jq's (%d vs %d lines)"
                             % (len(ours), len(theirs)))


def paired_ratio(rates, num, den):
    """The median over rounds of rate[num] / rate[den] within each round."""
    return statistics.median(a / b for a, b in zip(rates[num], rates[den]))


def percentile(values, q):
    """The q-quantile (0..1) of `values` by the nearest rank, as pause_stats() computes it."""
    v = sorted(values)
    return v[int(round(q * (len(v) - 1)))] if v else 0.0


class StatusPoller(threading.Thread):
    """Asks a running job for its status every `period` seconds through STATE_DIR/control.sock
    and records (time, records_in of `node`). From outside, a stall in processing is a stretch
    of polls that see no new records."""

    def __init__(self, sock_path, node, period=0.002):
        super().__init__(daemon=True)
        self.sock_path, self.node, self.period = sock_path, node, period
        self.samples = []  # (perf_counter, records_in)
        self.stop = threading.Event()

    def ask(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            s.connect(self.sock_path)
            s.sendall(b'{"command":"status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return json.loads(data)
        finally:
            s.close()

    def run(self):
        while not self.stop.is_set():
            try:
                st = self.ask()
                for n in st.get("nodes", []):
                    if n["name"] == self.node:
                        self.samples.append((time.perf_counter(), n["records_in"]))
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(self.period)

    def gaps(self, total):
        """Seconds from the first poll that saw each records_in value to the first poll that saw
        a larger one, until records_in reaches `total` (the job has read its input)."""
        out, first_seen, prev = [], None, None
        for t, n in self.samples:
            if n <= 0:
                continue
            if n != prev:
                if first_seen is not None:
                    out.append(t - first_seen)
                first_seen, prev = t, n
            if n >= total:
                break
        return out

    def first_progress(self):
        for t, n in self.samples:
            if n > 0:
                return t
        return None


def bench_state(r, lines, runs):
    """d. Keyed state under checkpoints (see the module comment). Returns the results dict."""
    data = ensure_users(lines, 1_000_000)
    warm(data)
    pipeline = os.path.join(BENCH, "window_state.yaml")
    out = os.path.join(r.tmp, "state-out.jsonl")
    res = {"lines": lines, "users": 1_000_000}

    def run_once(checkpoints, poll, extra_env=None, expect=0):
        state = os.path.join(r.tmp, "state-d")
        env = dict(os.environ, BENCH_INPUT=data, BENCH_OUTPUT=out, BENCH_STATE=state)
        env.update(extra_env or {})
        cmd = [r.streamrun, "run", pipeline, "--log-level", "debug"]
        if checkpoints:
            cmd += ["--set", "checkpoints.interval=1s"]
        warm(data)  # as before every timed run of a and b: the kernel evicts idle page cache
        poller = None
        if poll:
            poller = StatusPoller(os.path.join(state, "window_state", "control.sock"),
                                  "per_user_hour")
            poller.start()
        before = os.times()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        secs = time.perf_counter() - t0
        after = os.times()
        cpu = ((after.children_user - before.children_user) +
               (after.children_system - before.children_system))
        if poller:
            poller.stop.set()
            poller.join()
        if p.returncode != expect:
            raise SystemExit("failed (%d, expected %d): %s\n%s" % (
                p.returncode, expect, " ".join(cmd), p.stderr[-2000:]))
        return secs, cpu, p.stderr, poller, t0, state

    plain, chk, cpu_plain, cpu_chk = [], [], [], []
    pauses, chk_ms, chk_bytes, gaps_plain, gaps_chk = [], [], [], [], []
    copies, effective = [], []
    def plain_once():
        secs, cpu, _, poller, _, state = run_once(False, True)
        plain.append(lines / secs)
        cpu_plain.append(lines / cpu)
        gaps_plain.extend(poller.gaps(lines))
        shutil.rmtree(state, ignore_errors=True)

    for i in range(runs):
        # Alternate, so that both see the same machine, and in turn which goes first.
        if i % 2 == 0:
            plain_once()
        secs, cpu, err, poller, _, state = run_once(True, True)
        chk.append(lines / secs)
        cpu_chk.append(lines / cpu)
        gaps_chk += poller.gaps(lines)
        barrier = [int(m) / 1000.0 for m in re.findall(r"paused (\d+) us at the barrier", err)]
        # The copy-on-write copies a checkpoint causes after its barrier, reported at the next.
        cow = [int(m) / 1000.0 for m in
               re.findall(r"segment\(s\) copied \(\d+ of them ahead[^)]*\) in (\d+) us", err)]
        pauses += barrier
        copies += cow
        effective += [b + c for b, c in zip(barrier, cow)]
        for ms, b in re.findall(r"checkpoint \d+ complete in (\d+) ms \((\d+) bytes", err):
            if int(b) > 0:
                chk_ms.append(int(ms))
                chk_bytes.append(int(b))
        shutil.rmtree(state, ignore_errors=True)
        if i % 2 == 1:
            plain_once()
    res["no_checkpoints"] = summary(plain, cpu_plain)
    res["checkpoints_1s"] = summary(chk, cpu_chk)
    res["throughput_ratio"] = statistics.median(chk) / statistics.median(plain)
    stats = lambda v: {"samples": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99),
                       "max": max(v) if v else 0}
    res["pause_ms"] = stats(pauses)
    res["copy_after_barrier_ms"] = stats(copies)
    res["pause_with_copies_ms"] = stats(effective)
    res["checkpoint_ms_median"] = statistics.median(chk_ms) if chk_ms else None
    res["checkpoint_bytes_median"] = statistics.median(chk_bytes) if chk_bytes else None
    to_ms = lambda g: {"samples": len(g), "p99": percentile(g, 0.99) * 1000,
                       "max": (max(g) if g else 0) * 1000}
    res["progress_gap_ms"] = {"no_checkpoints": to_ms(gaps_plain), "checkpoints_1s": to_ms(gaps_chk)}

    # Recovery: crash right after the second checkpoint (~2 s in: ~1 M keys), then run again
    # and time it from the start of the process to the first record processed.
    rec_ext, rec_log = [], []
    for i in range(runs):
        run_once(True, False, {"STREAMRUN_FAILPOINT": "checkpoint.after_rename@2"}, expect=86)
        secs, _, err, poller, t0, state = run_once(True, True)
        first = poller.first_progress()
        if first is not None:
            rec_ext.append((first - t0) * 1000)
        m = re.search(r"state restored in (\d+) ms", err)
        if m:
            rec_log.append(int(m.group(1)))
        shutil.rmtree(state, ignore_errors=True)
    res["recovery_ms"] = {"first_record_after_start": summary(rec_ext) if rec_ext else None,
                          "restore_logged": summary(rec_log) if rec_log else None}
    if os.path.exists(out):
        os.remove(out)
    return res


def bench_big_state(r, keys, lines, cache, runs):
    """e. State larger than the cache (see the module comment). Returns the results dict."""
    data = ensure_every_user(lines, keys)
    warm(data)
    pipeline = os.path.join(BENCH, "window_state.yaml")
    out = os.path.join(r.tmp, "big-out.jsonl")
    res = {"lines": lines, "keys": keys, "cache": cache}

    def run_once(sets):
        state = os.path.join(r.tmp, "state-e")
        env = dict(os.environ, BENCH_INPUT=data, BENCH_OUTPUT=out, BENCH_STATE=state)
        cmd = [r.streamrun, "run", pipeline, "--log-level", "debug"]
        for kv in sets:
            cmd += ["--set", kv]
        peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        err = tempfile.TemporaryFile(mode="w+")
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        while p.poll() is None:
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        k = line.split(":")[0]
                        if k in peak:
                            peak[k] = max(peak[k], int(line.split()[1]) // 1024)
            except OSError:
                pass
            time.sleep(0.05)
        secs = time.perf_counter() - t0
        err.seek(0)
        stderr = err.read()
        if p.returncode != 0:
            raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), stderr[-2000:]))
        digest = multiset_digest(out)
        os.remove(out)
        shutil.rmtree(state, ignore_errors=True)
        m = re.search(r"(\d+) windows evicted to the cache's store, (\d+) read back", stderr)
        pauses = [int(x) / 1000.0 for x in re.findall(r"paused (\d+) us at the barrier", stderr)]
        chk = [(int(ms), int(b)) for ms, b in
               re.findall(r"checkpoint \d+ complete in (\d+) ms \((\d+) bytes", stderr) if int(b)]
        return {"seconds": secs, "rate": lines / secs, "peak_mb": peak, "digest": digest[0],
                "results": digest[1], "evicted": int(m.group(1)) if m else 0,
                "read_back": int(m.group(2)) if m else 0, "pauses_ms": pauses,
                "checkpoints_ms_bytes": chk}

    variants = [("in_memory", ["state.cache=8GiB"]),
                ("cache", ["state.cache=%s" % cache]),
                ("cache_checkpoints_1s", ["state.cache=%s" % cache, "checkpoints.interval=1s"])]
    for name, sets in variants:
        rs = [run_once(sets) for _ in range(runs)]
        best = sorted(rs, key=lambda x: x["seconds"])[len(rs) // 2]
        pauses = [p for x in rs for p in x["pauses_ms"]]
        chk = [c for x in rs for c in x["checkpoints_ms_bytes"]]
        res[name] = {"rate": summary([x["rate"] for x in rs]),
                     "peak_mb": {k: max(x["peak_mb"][k] for x in rs) for k in rs[0]["peak_mb"]},
                     "evicted": best["evicted"], "read_back": best["read_back"],
                     "results": best["results"], "digests": sorted({x["digest"] for x in rs})}
        if pauses:
            res[name]["pause_ms"] = {"samples": len(pauses), "p50": percentile(pauses, 0.5),
                                     "p99": percentile(pauses, 0.99), "max": max(pauses)}
        if chk:
            res[name]["checkpoint_ms_median"] = statistics.median(c[0] for c in chk)
            res[name]["checkpoint_bytes_median"] = statistics.median(c[1] for c in chk)
    res["same_output"] = len({d for v, _ in variants for d in res[v]["digests"]}) == 1
    return res


def fmt_rate(s):
    return "%.2fM/s (min %.2fM, max %.2fM, %d runs; %.2fM per CPU-second)" % (
        s["median"] / 1e6, s["min"] / 1e6, s["max"] / 1e6, s["runs"],
        s.get("per_cpu_second_median", 0) / 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="smaller inputs: 2 M lines, 1 GiB")
    ap.add_argument("--runs", type=int, default=0,
                    help="runs per figure (default 3, quick 5; benchmark a at least 7)")
    ap.add_argument("--only", default="abcdef", help="which benchmarks: a subset of 'abcdef'")
    ap.add_argument("--output", default=os.path.join(BENCH, "results.json"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    runs = args.runs or (5 if args.quick else 3)
    lines = 2_000_000 if args.quick else 10_000_000
    big_gib = 1 if args.quick else 5
    os.makedirs(DATA, exist_ok=True)

    info = {"machine": machine(), "commit": commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick, "lines": lines, "benchmarks": {}}
    m = info["machine"]
    header = "machine: %s, %d cores, %.0f GB (load %.2f)   commit: %s   date: %s%s" % (
        m["cpu"], m["cores"], m["memory_gb"], m["load_avg_1m_at_start"], info["commit"],
        info["date"], "   (quick)" if args.quick else "")
    log(header)
    du = shutil.disk_usage(DATA)
    log("disk: %.1f GB free under %s" % (du.free / 1e9, DATA))

    r = Runner(build, runs)
    results = info["benchmarks"]
    rows = []  # (name, value, bar, pass)
    try:
        data = ensure_clicks(lines)
        warm(data)
        if "a" in args.only:
            log("\n[a] throughput: filter + 1-minute tumbling count per user, %d lines" % lines)
            measures = {
                "base": lambda: r.baseline_once(data, lines),
                "p1": lambda: r.streamrun_once("window_count.yaml", data, lines, 1),
                "p2": lambda: (r.core_latency(),
                               r.streamrun_once("window_count.yaml", data, lines, 2))[1]}
            two_cpus = len(os.sched_getaffinity(0)) >= 2
            if two_cpus:
                halves = ensure_halves(data)
                measures["pair"] = lambda: r.pair_once("window_count.yaml", halves, lines)
            # At least 7 rounds: p2's speed swings most from minute to minute on this shared
            # machine (BENCHMARKS.md, session 14), and a median of 3 is one bad round away from
            # another answer.
            sums, per_round = r.rounds(measures, runs=max(runs, 7))
            base, p1, p2 = sums["base"], sums["p1"], sums["p2"]
            log("  rapidjson DOM baseline: " + fmt_rate(base))
            log("  streamrun p1:           " + fmt_rate(p1))
            log("  streamrun p2:           " + fmt_rate(p2))
            if two_cpus:
                log("  two pinned p1 jobs, one half of the file each, at once: "
                    + fmt_rate(sums["pair"]))
                log("  per round, p2 / p1: %s;" % ", ".join(
                    "%.2f" % (a / b) for a, b in zip(per_round["p2"], per_round["p1"])))
                log("  two jobs / p1 (what two cores gave this minute): %s" % ", ".join(
                    "%.2f" % (a / b) for a, b in zip(per_round["pair"], per_round["p1"])))
            if r.latencies:
                log("  cross-core latency before each p2 run: %s ns (~30: near, ~160: far apart)"
                    % ", ".join("%.0f" % x for x in r.latencies))
            results["window_throughput"] = {"baseline_rapidjson": base, "p1": p1, "p2": p2,
                                            "unit": "events/s",
                                            "core_latency_ns_before_p2": list(r.latencies)}
            rows.append(("window p1 vs RapidJSON DOM", paired_ratio(per_round, "p1", "base"),
                         "> 1.0x"))
            rows.append(("window p2 vs p1", paired_ratio(per_round, "p2", "p1"), ">= 1.6x"))
            results["window_throughput"]["p1_vs_baseline"] = rows[-2][1]
            results["window_throughput"]["p2_vs_p1"] = rows[-1][1]
            # Not a bar of the design: the same pair of cores without an exchange, to tell the
            # engine's cost of parallelism from the machine's (see BENCHMARKS.md, session 14).
            if two_cpus:
                wt = results["window_throughput"]
                wt["two_jobs"] = sums["pair"]
                wt["two_jobs_vs_p1"] = paired_ratio(per_round, "pair", "p1")
                wt["p2_vs_two_jobs"] = paired_ratio(per_round, "p2", "pair")
                log("  two jobs vs p1 %.2fx; p2 vs two jobs %.2fx (medians of the rounds' "
                    "ratios)" % (wt["two_jobs_vs_p1"], wt["p2_vs_two_jobs"]))
        if "b" in args.only:
            jq_lines = 1_000_000
            prefix = ensure_prefix(data, jq_lines)
            log("\n[b] stateless filter (action == \"purchase\") vs jq, %d lines (jq: %d-line "
                "prefix)" % (lines, jq_lines))
            r.check_filter_matches_jq(prefix)
            sums, per_round = r.rounds({
                "jq": lambda: r.jq_once(prefix, jq_lines),
                "p1": lambda: r.streamrun_once("filter.yaml", data, lines, 1),
                "p2": lambda: r.streamrun_once("filter.yaml", data, lines, 2)})
            jq, f1, f2 = sums["jq"], sums["p1"], sums["p2"]
            log("  jq:           " + fmt_rate(jq))
            log("  streamrun p1: " + fmt_rate(f1))
            log("  streamrun p2: " + fmt_rate(f2))
            results["filter_vs_jq"] = {"jq": jq, "p1": f1, "p2": f2, "unit": "events/s",
                                       "p1_vs_jq": paired_ratio(per_round, "p1", "jq"),
                                       "p2_vs_jq": paired_ratio(per_round, "p2", "jq")}
            rows.append(("filter p1 vs jq", results["filter_vs_jq"]["p1_vs_jq"], ">= 20x"))
            rows.append(("filter p2 vs jq", results["filter_vs_jq"]["p2_vs_jq"], ">= 20x"))
        if "c" in args.only:
            big = ensure_big(data, big_gib)
            size = os.path.getsize(big)
            big_lines = count_lines(big)
            log("\n[c] memory: stateless filter over %.1f GB (%d lines)" % (size / 1e9, big_lines))
            mem_runs = 3
            res = {}
            for p in (1, 2):
                rate, peak = r.streamrun_rate("filter.yaml", big, big_lines, p, runs=mem_runs,
                                              rss=True)
                log("  p%d: peak RSS %.0f MB (min %.0f, max %.0f, %d runs), %s" % (
                    p, peak["median"], peak["min"], peak["max"], peak["runs"], fmt_rate(rate)))
                res["p%d" % p] = {"peak_rss_mb": peak, "rate": rate}
                rows.append(("memory p%d, peak RSS MB (max of runs)" % p, peak["max"], "< 200"))
            res["input_bytes"] = size
            results["memory"] = res
        if "d" in args.only:
            state_lines = 10_000_000 if args.quick else 20_000_000
            log("\n[d] keyed state: 1-hour tumbling count over 1 M users, %d lines, checkpoints "
                "every 1 s vs none" % state_lines)
            d = bench_state(r, state_lines, runs)
            log("  no checkpoints:       " + fmt_rate(d["no_checkpoints"]))
            log("  checkpoints every 1s: " + fmt_rate(d["checkpoints_1s"]))
            pm = d["pause_ms"]
            log("  pause at the barrier (engine): p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d)" % (
                pm["p50"], pm["p99"], pm["max"], pm["samples"]))
            cm = d["copy_after_barrier_ms"]
            log("  copy-on-write after a barrier: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d)" % (
                cm["p50"], cm["p99"], cm["max"], cm["samples"]))
            em = d["pause_with_copies_ms"]
            log("  barrier + copies, per checkpoint: p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d)" % (
                em["p50"], em["p99"], em["max"], em["samples"]))
            g = d["progress_gap_ms"]
            log("  progress gaps seen from outside (2 ms polls): p99 %.1f / max %.1f ms without "
                "checkpoints, p99 %.1f / max %.1f ms with" % (
                    g["no_checkpoints"]["p99"], g["no_checkpoints"]["max"],
                    g["checkpoints_1s"]["p99"], g["checkpoints_1s"]["max"]))
            log("  checkpoint: %s ms to complete (median), %s bytes of state" % (
                d["checkpoint_ms_median"], d["checkpoint_bytes_median"]))
            rec = d["recovery_ms"]
            if rec["first_record_after_start"]:
                log("  recovery: first record %.0f ms after start (median; min %.0f, max %.0f), "
                    "state restored in %s ms (logged)" % (
                        rec["first_record_after_start"]["median"],
                        rec["first_record_after_start"]["min"],
                        rec["first_record_after_start"]["max"],
                        rec["restore_logged"]["median"] if rec["restore_logged"] else "?"))
            results["keyed_state"] = d
            rows.append(("checkpoints 1s vs none, 1 M keys", d["throughput_ratio"], ">= 0.95x"))
            rows.append(("pause p99 (barrier + copies), ms", em["p99"] if em["samples"] else pm["p99"],
                         "< 10"))
            if rec["first_record_after_start"]:
                rows.append(("recovery of 1 M keys, ms", rec["first_record_after_start"]["median"],
                             "< 1000"))
        if "e" in args.only:
            keys, big_lines, cache = 10_000_000, 20_000_000, "256MiB"
            log("\n[e] state larger than the cache: %d users, %d lines, state.cache %s" % (
                keys, big_lines, cache))
            e = bench_big_state(r, keys, big_lines, cache, 1 if args.quick else 2)
            for name in ("in_memory", "cache", "cache_checkpoints_1s"):
                v = e[name]
                line = "  %-22s %s; peak RSS %d MB (anonymous %d, file %d); %d results" % (
                    name + ":", fmt_rate(v["rate"]), v["peak_mb"]["VmRSS"],
                    v["peak_mb"]["RssAnon"], v["peak_mb"]["RssFile"], v["results"])
                if v["evicted"]:
                    line += "; %d windows evicted, %d read back" % (v["evicted"], v["read_back"])
                log(line)
                if "pause_ms" in v:
                    log("  %-22s pause at the barrier p50 %.2f ms, p99 %.2f ms, max %.2f ms; "
                        "checkpoints %s ms, %s bytes (medians)" % (
                            "", v["pause_ms"]["p50"], v["pause_ms"]["p99"], v["pause_ms"]["max"],
                            v.get("checkpoint_ms_median"), v.get("checkpoint_bytes_median")))
            log("  same output (multiset of lines) in every run: %s" % e["same_output"])
            results["state_larger_than_cache"] = e
            rows.append(("10 M keys, cache %s: output as in memory" % cache,
                         1.0 if e["same_output"] else 0.0, ">= 1x"))
        if "f" in args.only:
            kafka_lines = 1_000_000
            prefix = ensure_prefix(data, kafka_lines)
            log("\n[f] Kafka to Kafka filter through kafka-mock vs kcat reading the topic, %d records"
                % kafka_lines)
            kcat, ours = r.kafka_rates(prefix, kafka_lines)
            log("  kcat -C:      " + fmt_rate(kcat))
            log("  streamrun p1: " + fmt_rate(ours))
            results["kafka_filter_vs_kcat"] = {"kcat": kcat, "p1": ours, "unit": "events/s",
                                               "p1_vs_kcat": ours["median"] / kcat["median"]}
            rows.append(("kafka filter p1 vs kcat", ours["median"] / kcat["median"], ">= 0.8x"))
    finally:
        shutil.rmtree(r.tmp, ignore_errors=True)

    log("\nsummary (%s)" % header)
    ok_all = True
    for name, value, bar in rows:
        if bar.startswith("<"):
            ok = value < float(bar[1:])
            shown = "%.0f" % value
        else:
            limit = float(bar.lstrip(">= ").rstrip("x"))
            ok = value >= limit if bar.startswith(">=") else value > limit
            shown = "%.2fx" % value
        ok_all = ok_all and ok
        log("  %-40s %10s   bar %-8s %s" % (name, shown, bar, "PASS" if ok else "FAIL"))
    info["bars"] = [{"name": n, "value": v, "bar": b} for n, v, b in rows]
    for b in results.values():
        b["commit"], b["date"], b["quick"] = info["commit"], info["date"], args.quick
    if set(args.only) != set("abcdef") and os.path.exists(args.output):
        # A partial run keeps the other benchmarks' figures of earlier runs (each is dated).
        with open(args.output) as f:
            old = json.load(f)
        merged = old.get("benchmarks", {})
        for b in merged.values():
            b.setdefault("commit", old.get("commit"))
            b.setdefault("date", old.get("date"))
            b.setdefault("quick", old.get("quick"))
        merged.update(results)
        info["benchmarks"] = merged
        names = {n for n, _, _ in rows}
        info["bars"] = [b for b in old.get("bars", []) if b["name"] not in names] + info["bars"]
    with open(args.output, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    log("wrote " + os.path.relpath(args.output, ROOT))
    # Benchmarks report; they do not fail the build on a missed bar.
    return 0


if __name__ == "__main__":
    sys.exit(main())
