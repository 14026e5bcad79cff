"""Writes the benchmark click stream: ~70-byte JSON lines, ts mostly increasing with jitter.

Usage: gen_clicks.py OUT LINES [--users N] [--seed S]. Deterministic for a seed.
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("lines", type=int)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    users = ['"u%05d"' % i for i in range(a.users)]
    pages = ['"/p/%d"' % i for i in range(100)] + ['"/"', '"/cart"', '"/checkout"']
    # 90 % view, 6 % click, 3 % purchase, 1 % bot
    actions = ['"view"'] * 90 + ['"click"'] * 6 + ['"purchase"'] * 3 + ['"bot"']
    base = 1_700_000_000_000
    chunk = 100_000
    with open(a.out + ".tmp", "w") as f:
        i = 0
        while i < a.lines:
            n = min(chunk, a.lines - i)
            rnd = rng.random
            rows = []
            for j in range(i, i + n):
                # ~10 events per ms; 10 % arrive up to 2 s late.
                ts = base + j // 10
                if rnd() < 0.1:
                    ts -= int(rnd() * 2000)
                rows.append('{"ts":%d,"userId":%s,"page":%s,"action":%s}\n' % (
                    ts, users[int(rnd() * a.users)], pages[int(rnd() * len(pages))],
                    actions[int(rnd() * 100)]))
            f.write("".join(rows))
            i += n
    import os
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
