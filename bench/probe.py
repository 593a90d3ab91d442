#!/usr/bin/env python3
"""A well-behaved client for bench/flood.sh: RATE requests per second for SECONDS over one
keep-alive connection from 127.0.0.1, each timed alone; prints "p50_ms p99_ms max_ms count".

  probe.py get    --host H:P --bucket B --count N   signed GETs of B/small/k00000..N-1
                                                    (objects stored by sigv4_presign.py populate)
  probe.py health --host H:P                        GET /health/ready

Unlike a closed-loop load generator, the requests come at a fixed pace, as from a client that
is not trying to saturate the server, so the latencies measure waiting on the server, not a
queue the client made. Any answer but 200, or a connection error, fails the run.
Credentials for get: BENCH_ACCESS_KEY, BENCH_SECRET_KEY.
"""
import argparse
import datetime
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigv4_presign import EMPTY_SHA256, sigv4_headers  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("get", "health"))
    ap.add_argument("--host", required=True)
    ap.add_argument("--bucket", default="bucket")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--region", default="us-east-1")
    a = ap.parse_args()
    access, secret = os.environ.get("BENCH_ACCESS_KEY", ""), os.environ.get("BENCH_SECRET_KEY", "")
    host, port = a.host.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=("127.0.0.1", 0))
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    requests = []
    for i in range(a.count if a.what == "get" else 1):
        if a.what == "get":
            path = f"/{a.bucket}/small/k{i:05d}"
            requests.append((path, sigv4_headers("GET", a.host, path, EMPTY_SHA256, access, secret,
                                                 a.region, amz_date)))
        else:
            requests.append(("/health/ready", {"Host": a.host}))
    lat = []
    n = int(a.rate * a.seconds)
    start = time.monotonic()
    for i in range(n):
        due = start + i / a.rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        path, headers = requests[i % len(requests)]
        t0 = time.monotonic()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        lat.append((time.monotonic() - t0) * 1000)
        if resp.status != 200:
            sys.exit(f"probe: GET {path}: HTTP {resp.status}: {body[:300]!r}")
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    print(f"{p(0.50):.3f} {p(0.99):.3f} {lat[-1]:.3f} {len(lat)}")


if __name__ == "__main__":
    main()
