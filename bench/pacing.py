#!/usr/bin/env python3
"""Load generator of bench/pacing.sh: concurrent downloads of pre-signed URLs, per tier.

Each connection is a process (no GIL between them) that GETs its URL over and over on one
keep-alive connection, reading into a 1 MiB buffer and adding what it got to a shared counter.
The parent samples the counters when the window opens (after --warmup s) and when it closes
(--window s later): a connection's share is what it received in the window, the tier's rate
the sum over the window's length.

  run --tier NAME=N:URLFILE [...]   N connections for tier NAME, cycling through the URLs
                                    of URLFILE (one per line); prints one JSON line:
                                    {"NAME": {"bytes": [per connection...], "seconds": W}, ...}
"""
import argparse
import http.client
import json
import multiprocessing as mp
import sys
import time
import urllib.parse


def download_loop(url, counter, stop):
    u = urllib.parse.urlsplit(url)
    target = u.path + ("?" + u.query if u.query else "")
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            conn.request("GET", target)
            resp = conn.getresponse()
            if resp.status != 200:
                sys.stderr.write(f"bench: GET answered HTTP {resp.status}: {resp.read(300)!r}\n")
                stop.set()
                return
            while not stop.is_set():
                n = resp.readinto(view)
                if not n:
                    break
                with counter.get_lock():
                    counter.value += n
            if stop.is_set():
                break
        except (OSError, http.client.HTTPException) as e:
            if stop.is_set():
                break
            sys.stderr.write(f"bench: download failed, reconnecting: {e}\n")
            conn = None
    if conn is not None:
        conn.close()


def cmd_run(a):
    stop = mp.Event()
    tiers = {}
    procs = []
    for spec in a.tier:
        name, rest = spec.split("=", 1)
        n, urlfile = rest.split(":", 1)
        with open(urlfile) as f:
            urls = [line.strip() for line in f if line.strip()]
        counters = [mp.Value("Q", 0) for _ in range(int(n))]
        tiers[name] = counters
        for i, c in enumerate(counters):
            p = mp.Process(target=download_loop, args=(urls[i % len(urls)], c, stop), daemon=True)
            procs.append(p)
    for p in procs:
        p.start()
    time.sleep(a.warmup)
    t0 = time.monotonic()
    start = {name: [c.value for c in cs] for name, cs in tiers.items()}
    time.sleep(a.window)
    t1 = time.monotonic()
    end = {name: [c.value for c in cs] for name, cs in tiers.items()}
    failed = stop.is_set()
    stop.set()
    for p in procs:
        p.join(timeout=10)
        if p.is_alive():
            p.terminate()
    if failed:
        sys.exit("bench: a download failed (see above)")
    out = {name: {"bytes": [e - s for s, e in zip(start[name], end[name])], "seconds": t1 - t0}
           for name in tiers}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--tier", action="append", required=True, metavar="NAME=N:URLFILE")
    r.add_argument("--warmup", type=float, default=2.0)
    r.add_argument("--window", type=float, default=20.0)
    a = ap.parse_args()
    cmd_run(a)


if __name__ == "__main__":
    main()
