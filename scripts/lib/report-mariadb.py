#!/usr/bin/env python3
"""results.md for scripts/bench-mariadb: report-mariadb.py OUT N SMALL."""

import json
import os
import sys

out, n, small = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def k(x):
    return f"{x // 1000}k" if x >= 1000 and x % 1000 == 0 else str(x)


def hf(name):
    with open(os.path.join(out, name)) as f:
        return {r["command"]: (r["mean"], r["stddev"] or 0.0) for r in json.load(f)["results"]}


def ms(v):
    mean, sd = v[0] * 1000, v[1] * 1000
    if mean >= 100:
        return f"{mean:.0f} ± {sd:.0f} ms"
    return f"{mean:.2f} ± {sd:.2f} ms"


def met(ok):
    return "met" if ok else "**not met**"


def read(name):
    with open(os.path.join(out, name)) as f:
        return f.read().strip()


def rss(name):
    return int(read(f"list-{name}.rss")) / 1024


rows = []
r = hf("replay.json")
ratio = r["verify-mariadb"][0] / r["mariadb-client"][0]
rows.append((f"`mb-2fa-verify` replayed TOTP code (exit 1), MariaDB over the local socket, {k(n)} accounts",
             f"{ms(r['verify-mariadb'])} vs `mariadb -e 'SELECT 1'` {ms(r['mariadb-client'])} = **{ratio:.2f}×**",
             "≤ 1.3× the client", met(ratio <= 1.3)))
ratio = r["verify-sqlite"][0] / r["sqlite3-shell"][0]
rows.append((f"`mb-2fa-verify` replayed TOTP code (exit 1), SQLite, {k(n)} accounts",
             f"{ms(r['verify-sqlite'])} vs `sqlite3 db 'SELECT 1'` {ms(r['sqlite3-shell'])} = **{ratio:.2f}×**",
             "≤ 1.1× the shell", met(ratio <= 1.1)))
for floor, label, verify in (
    ("mariadb-client-insert", "the mariadb client committing one INSERT (autocommit) on the same server", "verify-mariadb"),
    ("sqlite3-update", "the sqlite3 shell committing one UPDATE (synchronous=FULL) to a copy of the database", "verify-sqlite"),
):
    rows.append((f"floor: {label}",
                 f"{ms(r[floor])}; the replayed verify above = {r[verify][0] / r[floor][0]:.2f}× it",
                 "(context)", "-"))

after = dict(line.split(" ", 1) for line in read("replay-after.txt").splitlines())
reasons = []
for store in ("mariadb", "sqlite"):
    try:
        doc = json.loads(read(f"replay-{store}.json"))
        err = doc.get("error") or {}
        reasons.append(f"{store}: ok={str(doc.get('ok')).lower()}, \"{err.get('message', '?')}\"")
    except (OSError, ValueError):
        reasons.append(f"{store}: ?")
clean = all(v.split() == ["0", "NULL"] for v in after.values())
rows.append(("the replays above were not counted toward the lockout",
             "failed_attempts, locked_until after the runs: "
             + "; ".join(f"{s} {v}" for s, v in after.items())
             + " (one more replay with --json: " + ", ".join(reasons) + ")",
             "0, NULL", met(clean)))

a = hf("accept.json")
rows.append((f"`mb-2fa-verify` TOTP code accepted, MariaDB, {k(n)} (the client moves `last_step` back before each run)",
             f"{ms(a['verify-mariadb-accepted'])} vs the client {ms(a['mariadb-client'])} = "
             f"{a['verify-mariadb-accepted'][0] / a['mariadb-client'][0]:.2f}×",
             "(context)", "-"))

li = hf("list.json")
for store, label in (("mariadb", "MariaDB"), ("sqlite", "SQLite")):
    t, big, little = li[f"list-{store}"], rss(store), rss(f"{store}-small")
    ok = t[0] < 1.0 and big <= little * 1.5
    rows.append((f"`mb-2fa-list --json`, {k(n)} accounts, {label}",
                 f"{ms(t)}; max RSS {big:.1f} MiB ({k(small)} accounts: {ms(li[f'list-{store}-small'])} and {little:.1f} MiB)",
                 "< 1 s, memory flat", met(ok)))


def load(name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def load_row(label, name):
    d = load(name)
    errors = d["busy_errors"] + d["other_errors"]
    text = (f"**{d['per_second']:.0f} verifications/s**, {d['accepted']} accepted, "
            f"{d['busy_errors']} busy, {d['other_errors']} other errors; latency p50 {d['p50_ms']:.1f} ms, "
            f"**p99 {d['p99_ms']:.1f} ms**, worst {d['max_ms']:.0f} ms")
    if d.get("first_other_error"):
        text += f" (first error: `{d['first_other_error'][:160]}`)"
    for i, p in enumerate(d.get("per_store", [])):
        text += (f"; node {i}: {p['workers']} workers, {p['per_second']:.0f}/s, "
                 f"p99 {p['p99_ms']:.1f} ms")
    rows.append((label, text, "no errors", met(errors == 0)))


for label, name in (
    ("SQLite (`mb2fa-bench load`)", "load-sqlite.json"),
    ("one mariadbd, socket (`mb2fa-bench load`)", "load-mariadb.json"),
    ("SQLite (`scripts/lib/load.py`)", "load-py-sqlite.json"),
    ("one mariadbd, socket (`scripts/lib/load.py`)", "load-py-mariadb.json"),
    ("3-node Galera, workers spread over the nodes (`scripts/lib/load.py`)", "load-py-galera.json"),
):
    w, s = load(name)["workers"], round(load(name)["seconds"])
    load_row(f"{w} concurrent verifiers, {k(n)} accounts, {s} s: {label}", name)

rows.append((f"context: `mb-2fa-store copy --to` of {k(n)} accounts to one mariadbd (one transaction)",
             read("copy-single.time") + f" (Galera: the same rows by `mariadb-dump` into node 0 in {read('load-galera.time')})", "(context)", "-"))

print("| what | measured | target | |")
print("| --- | --- | --- | --- |")
for row in rows:
    print("| " + " | ".join(row) + " |")
print()
print("Galera after the load run: " + "; ".join(read("galera-status.txt").splitlines()))
