"""A single-threaded reference model of the window step, written from DESIGN.md
("Semantics the tests rely on") and Flink's event-time WindowOperator, independently of the engine.

Input of the model: the rows that reach the window step, in processing order, each as
(event_time_ms, record, watermark_before). The watermark comes from the source (see
with_watermarks), so records a filter drops upstream still advance it.

Output: (results, late): results are the window output records (in firing order; tests compare
them as multisets), late the records dropped from all their windows (the `<step>.late` stream).
"""
import datetime
import heapq
import itertools
import json
import re

NEG_INF = float("-inf")
POS_INF = float("inf")


# ----------------------------------------------------------------------------- watermarks

def with_watermarks(items, max_out_of_orderness_ms):
    """items: (event_time, record) in source order. Returns (event_time, record, wm) where wm is
    the largest event time before the record minus max_out_of_orderness minus 1 ms (-inf for the
    first record)."""
    out = []
    top = NEG_INF
    for ts, rec in items:
        wm = top - max_out_of_orderness_ms - 1 if top != NEG_INF else NEG_INF
        out.append((ts, rec, wm))
        if ts > top:
            top = ts
    return out


def merge_by_time(*inputs):
    """Merges several event-time-ordered inputs [(ts, record), ...] by ts; on ties the input
    listed first comes first (a stable sort of the concatenation)."""
    tagged = []
    for i, items in enumerate(inputs):
        for j, (ts, rec) in enumerate(items):
            tagged.append((ts, i, j, rec))
    tagged.sort(key=lambda t: (t[0], t[1], t[2]))
    return [(t[0], t[3]) for t in tagged]


# ----------------------------------------------------------------------------- event time

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def event_time(value):
    """Epoch milliseconds (an integer) or an RFC 3339 string to epoch ms; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _RFC3339.match(value)
        if not m:
            return None
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        frac = m.group(7) or ""
        ms = int((frac[1:] + "000")[:3]) if frac else 0
        tz = m.group(8)
        try:
            dt = datetime.datetime(y, mo, d, h, mi, s, tzinfo=datetime.timezone.utc)
        except ValueError:
            return None
        offset = 0
        if tz not in ("Z", "z"):
            sign = 1 if tz[0] == "+" else -1
            offset = sign * (int(tz[1:3]) * 60 + int(tz[4:6])) * 60000
        return int(dt.timestamp()) * 1000 + ms - offset
    return None


# ----------------------------------------------------------------------------- aggregates

def _distinct_key(v):
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return json.dumps(v, sort_keys=True)


class _Acc:
    """One aggregate of one window. kind: count, count_if, sum, min, max, avg, first, last,
    count_distinct. Values that are None (null or missing) never reach it, except for count."""

    def __init__(self, kind):
        self.kind = kind
        self.n = 0
        self.total = 0
        self.saw_float = False
        self.value = None
        self.seq = None
        self.distinct = set()

    def add(self, v, seq):
        k = self.kind
        if k == "count":
            self.n += 1
            return
        if v is None:
            return
        if k == "count_if":
            if v is True:
                self.n += 1
        elif k in ("sum", "avg"):
            self.n += 1
            self.total += v
            if isinstance(v, float):
                self.saw_float = True
        elif k == "min":
            if self.n == 0 or v < self.value:
                self.value = v
            self.n += 1
        elif k == "max":
            if self.n == 0 or v > self.value:
                self.value = v
            self.n += 1
        elif k == "first":
            if self.seq is None or seq < self.seq:
                self.value, self.seq = v, seq
        elif k == "last":
            if self.seq is None or seq > self.seq:
                self.value, self.seq = v, seq
        elif k == "count_distinct":
            self.distinct.add(_distinct_key(v))
        else:
            raise ValueError(k)

    def merge(self, o):
        k = self.kind
        if k in ("count", "count_if"):
            self.n += o.n
        elif k in ("sum", "avg"):
            self.n += o.n
            self.total += o.total
            self.saw_float = self.saw_float or o.saw_float
        elif k in ("min", "max"):
            if o.n:
                if self.n == 0 or (o.value < self.value if k == "min" else o.value > self.value):
                    self.value = o.value
                self.n += o.n
        elif k == "first":
            if o.seq is not None and (self.seq is None or o.seq < self.seq):
                self.value, self.seq = o.value, o.seq
        elif k == "last":
            if o.seq is not None and (self.seq is None or o.seq > self.seq):
                self.value, self.seq = o.value, o.seq
        elif k == "count_distinct":
            self.distinct |= o.distinct

    def result(self):
        k = self.kind
        if k in ("count", "count_if"):
            return self.n
        if k == "sum":
            if self.n == 0:
                return None
            return float(self.total) if self.saw_float else self.total
        if k == "avg":
            return None if self.n == 0 else self.total / self.n
        if k == "count_distinct":
            return len(self.distinct)
        return self.value


# ----------------------------------------------------------------------------- windows

class Tumbling:
    def __init__(self, size):
        self.size = size

    def assign(self, ts):
        s = ts - ts % self.size
        return [(s, s + self.size)]


class Sliding:
    def __init__(self, size, slide):
        self.size, self.slide = size, slide

    def assign(self, ts):
        last = ts - ts % self.slide
        out = []
        s = last
        while s > ts - self.size:
            out.append((s, s + self.size))
            s -= self.slide
        return out


class Session:
    def __init__(self, gap):
        self.gap = gap

    def assign(self, ts):
        return [(ts, ts + self.gap)]


class _Win:
    __slots__ = ("key", "start", "end", "accs")

    def __init__(self, key, start, end, kinds):
        self.key, self.start, self.end = key, start, end
        self.accs = [_Acc(k) for k in kinds]


def run_window(rows, key_by, window, aggregates, allowed_lateness=0, fire_on=None,
               end_watermark=POS_INF, open_windows=None):
    """rows: [(ts, record, wm)]; key_by: field names; window: Tumbling | Sliding | Session;
    aggregates: [(name, kind, fn)] with fn(record) -> value or None (None for count());
    fire_on: fn(record) -> True to fire and purge the record's windows.
    end_watermark: where the watermark goes after the last row (+inf: the end of the input;
    the watermark after the rows, for the state at a checkpoint taken after them).
    open_windows: a list that receives, after that, every window still held, as the result
    record it would give now.
    Returns (results, late)."""
    kinds = [k for _, k, _ in aggregates]
    fns = [f for _, _, f in aggregates]
    names = [n for n, _, _ in aggregates]
    merging = isinstance(window, Session)
    windows = {}  # key -> {(start, end): _Win}
    timers = []  # (end - 1, tie, win): fire when the watermark reaches end - 1
    cleanups = []  # (end - 1 + lateness, tie, win)
    tie = itertools.count()
    results, late = [], []
    wm = NEG_INF

    def alive(w):
        return windows.get(w.key, {}).get((w.start, w.end)) is w

    def record(w):
        out = {}
        for name, kv in zip(key_by, w.key):
            out[name] = kv
        out["window_start"] = w.start
        out["window_end"] = w.end
        for name, acc in zip(names, w.accs):
            out[name] = acc.result()
        return out

    def emit(w):
        results.append(record(w))

    def remove(w):
        del windows[w.key][(w.start, w.end)]

    def schedule(w):
        if w.end - 1 > wm:
            heapq.heappush(timers, (w.end - 1, next(tie), w))
        heapq.heappush(cleanups, (w.end - 1 + allowed_lateness, next(tie), w))

    def advance(new):
        nonlocal wm
        if new <= wm:
            return
        wm = new
        while timers and timers[0][0] <= wm:
            _, _, w = heapq.heappop(timers)
            if alive(w):
                emit(w)
        while cleanups and cleanups[0][0] <= wm:
            _, _, w = heapq.heappop(cleanups)
            if alive(w):
                remove(w)

    for seq, (ts, rec, rec_wm) in enumerate(rows):
        advance(rec_wm)
        key = tuple(rec.get(k) for k in key_by)
        kw = windows.setdefault(key, {})
        targets = []
        if merging:
            s, e = window.assign(ts)[0]
            touching = [w for w in kw.values() if w.start <= e and s <= w.end]
            if not touching and e - 1 + allowed_lateness <= wm:
                late.append(rec)
                continue
            ns = min([s] + [w.start for w in touching])
            ne = max([e] + [w.end for w in touching])
            if len(touching) == 1 and (touching[0].start, touching[0].end) == (ns, ne):
                targets.append(touching[0])
            else:
                merged = _Win(key, ns, ne, kinds)
                for w in touching:
                    for a, b in zip(merged.accs, w.accs):
                        a.merge(b)
                    remove(w)
                kw[(ns, ne)] = merged
                schedule(merged)
                targets.append(merged)
        else:
            for s, e in window.assign(ts):
                if e - 1 + allowed_lateness <= wm:
                    continue
                w = kw.get((s, e))
                if w is None:
                    w = _Win(key, s, e, kinds)
                    kw[(s, e)] = w
                    schedule(w)
                targets.append(w)
            if not targets:
                late.append(rec)
                continue
        fire = fire_on is not None and fire_on(rec) is True
        for w in targets:
            for acc, fn in zip(w.accs, fns):
                acc.add(fn(rec) if fn is not None else None, seq)
            if fire:
                emit(w)
                remove(w)
            elif w.end - 1 <= wm:
                emit(w)  # a late record in a fired window (allowed_lateness > 0) fires it again
    advance(end_watermark)  # POS_INF: the end of the input
    if open_windows is not None:
        for kw in windows.values():
            open_windows.extend(record(w) for w in kw.values())
    return results, late


def watermark_after(items, max_out_of_orderness_ms):
    """The watermark after all of items [(ts, record)]: as with_watermarks gives it to a record
    that would come next."""
    if not items:
        return NEG_INF
    return max(ts for ts, _ in items) - max_out_of_orderness_ms - 1


def field(name):
    """fn(record) -> the field's value, None when missing or null."""
    return lambda r: r.get(name)
