#!/usr/bin/env python3
"""Writes the sample inputs of the example pipelines (deterministic: fixed seeds).

    python3 pipelines/data/make_data.py

clicks.jsonl: an e-commerce click stream over ten minutes: 25 users, slightly out of order
(up to 4 s), a few clicks much later than that (late), a few bots, and a few damaged lines.
logins.jsonl and cart.jsonl: login/logout and cart actions of 12 users over an hour, for the
session promotion example.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1714557600000  # 2024-05-01T10:00:00Z


def iso(ms):
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def clicks():
    rnd = random.Random(7)
    users = ["u%02d" % i for i in range(1, 26)]
    pages = ["/", "/search", "/product/1", "/product/2", "/product/3", "/product/4", "/cart",
             "/checkout"]
    lines = []
    t = T0
    for i in range(2400):
        t += rnd.randint(0, 500)
        ts = t - rnd.randint(0, 4000)  # out of order by up to 4 s
        action = rnd.choices(["view", "click", "add_to_cart", "purchase"], [60, 30, 8, 2])[0]
        event = {"ts": ts, "userId": rnd.choice(users), "page": rnd.choice(pages),
                 "action": action}
        if i % 97 == 13:
            event["action"] = "bot"
        if i % 5 == 0:
            event["ts"] = iso(ts)  # some producers send RFC 3339 strings
        if i % 211 == 100:
            event["ts"] = t - 75000  # 75 s late: after its minute has fired
        if i % 157 == 50:
            del event["userId"]
        lines.append(json.dumps(event, separators=(",", ":")))
    # Damaged input: cut JSON, a time that is not a time, invalid UTF-8.
    lines.insert(300, '{"ts":%d,"userId":"u03","page":"/cart","act' % (T0 + 70000))
    lines.insert(900, '{"ts":"yesterday","userId":"u04","page":"/","action":"view"}')
    raw = "\n".join(lines).encode() + b"\n"
    cut = raw.find(b"\n", len(raw) // 2) + 1
    raw = raw[:cut] + b'{"ts":%d,"userId":"u\xff\xfe","page":"/","action":"view"}\n' % (T0 + 300000) + raw[cut:]
    with open(os.path.join(HERE, "clicks.jsonl"), "wb") as f:
        f.write(raw)


def sessions():
    rnd = random.Random(11)
    logins, cart = [], []
    for u in range(1, 13):
        user = "user%d" % u
        t = T0 + rnd.randint(0, 600000)
        for _ in range(rnd.randint(2, 4)):  # sessions per user
            logins.append({"ts": t, "userId": user, "action": "login"})
            for _ in range(rnd.randint(1, 8)):
                t += rnd.randint(5000, 200000)  # < 5 min apart: same session
                action = rnd.choices(["cart_add", "cart_remove", "purchase"], [6, 2, 1])[0]
                item = {"ts": t, "userId": user, "action": action, "sku": "sku-%d" % rnd.randint(1, 9)}
                if action != "cart_remove":
                    item["price"] = round(rnd.uniform(5, 120), 2)
                cart.append(item)
            if rnd.random() < 0.6:
                t += rnd.randint(1000, 60000)
                logins.append({"ts": t, "userId": user, "action": "logout"})
            t += rnd.randint(400000, 1800000)  # a pause longer than the session gap
    for name, events in (("logins.jsonl", logins), ("cart.jsonl", cart)):
        events.sort(key=lambda e: e["ts"])
        with open(os.path.join(HERE, name), "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    clicks()
    sessions()
