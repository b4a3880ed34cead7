#!/usr/bin/env python3
"""W concurrent verifiers spread over one or more stores, for scripts/bench-mariadb.

The same run as `mb2fa-bench load` (each worker its own slice of the accounts,
each account at most once, a fresh TOTP code each time, every verification a
real `mb-2fa-verify` process), but `--db` may be given several times: worker i
uses store i mod n, so 16 workers over the three nodes of a Galera cluster is
6 + 5 + 5. Latencies of all workers are merged, so p50/p99 are those of the
whole run, and also given per store.

    load.py --bin mb-2fa-verify --key-file K --secrets F --workers 16 --seconds 20 \
        --db URL1 [--db URL2 ...] --out load.json
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys
import threading
import time


def totp(secret: bytes, now: float) -> str:
    """RFC 6238 with the core's parameters: SHA1, 6 digits, 30 s."""
    mac = hmac.new(secret, struct.pack(">Q", int(now) // 30), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def b32(s: str) -> bytes:
    return base64.b32decode(s + "=" * (-len(s) % 8))


def pct(lat, p):
    if not lat:
        return 0.0
    return lat[round((len(lat) - 1) * p)] * 1000.0


def summary(results, elapsed, workers):
    lat = sorted(r[1] for r in results)
    ok = sum(1 for r in results if r[0] == "ok")
    return {
        "workers": workers,
        "seconds": elapsed,
        "launched": len(results),
        "accepted": ok,
        "busy_errors": sum(1 for r in results if r[0] == "busy"),
        "other_errors": sum(1 for r in results if r[0] == "other"),
        "per_second": ok / elapsed,
        "p50_ms": pct(lat, 0.50),
        "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", action="append", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--secrets", required=True)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    accounts = []
    with open(a.secrets) as f:
        for line in f:
            email, s = line.split()
            accounts.append((email, b32(s)))
    per = len(accounts) // a.workers
    if per == 0:
        sys.exit("load.py: need at least one account per worker")

    env = dict(os.environ, MB2FA_SYSLOG_SOCKET="")
    results = [[] for _ in range(a.workers)]  # (kind, seconds, db index)
    first_other = []
    deadline = time.monotonic() + a.seconds

    def worker(w):
        db = w % len(a.db)
        out = results[w]
        for email, secret in accounts[w * per : (w + 1) * per]:
            if time.monotonic() >= deadline:
                break
            code = totp(secret, time.time())
            argv = [a.bin, "--db", a.db[db], "--key-file", a.key_file, "--email", email, "--code", code]
            t = time.monotonic()
            p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            dt = time.monotonic() - t
            err = p.stderr.decode(errors="replace")
            if p.returncode == 0:
                kind = "ok"
            elif "busy" in err or "locked" in err:
                kind = "busy"
            else:
                kind = "other"
                if not first_other:
                    first_other.append("exit %d: %s" % (p.returncode, err.strip()))
            out.append((kind, dt, db))

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    every = [r for rs in results for r in rs]
    doc = summary(every, elapsed, a.workers)
    doc["first_other_error"] = first_other[0] if first_other else None
    doc["driver"] = "scripts/lib/load.py"
    if len(a.db) > 1:
        doc["per_store"] = [
            dict(summary([r for r in every if r[2] == i], elapsed,
                         len(range(i, a.workers, len(a.db)))), db=d)
            for i, d in enumerate(a.db)
        ]
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "per_store"}))


if __name__ == "__main__":
    main()
