"""Writes the benchmark click stream: ~70-byte JSON lines, ts mostly increasing with jitter.

Usage: gen_clicks.py OUT LINES [--users N] [--seed S] [--every-user]. Deterministic for a seed.
With --every-user, users are not drawn at random: the file goes through all N of them, each once
per pass, in a scrambled order (user = (line * A + pass * B) mod N), so that N lines hold exactly N
distinct users.
"""
import argparse
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("lines", type=int)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--every-user", action="store_true")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    # Names as before for random users (u%05d); with --every-user all of the same width.
    width = max(5, len(str(a.users - 1))) if a.every_user else 5
    users = ['"u%0*d"' % (width, i) for i in range(a.users)]
    # A multiplier coprime with every user count that is not a multiple of 7919.
    mult = 7919 if a.users % 7919 else 104729
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
                if a.every_user:
                    user = users[(j * mult + (j // a.users) * 12345) % a.users]
                else:
                    user = users[int(rnd() * a.users)]
                rows.append('{"ts":%d,"userId":%s,"page":%s,"action":%s}\n' % (
                    ts, user, pages[int(rnd() * len(pages))],
                    actions[int(rnd() * 100)]))
            f.write("".join(rows))
            i += n
    import os
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
