#!/usr/bin/env python3
"""Holds a connection flood against a server for bench/flood.sh.

IDLE connections that send nothing, and SLOW connections that send one byte of a request
header every --trickle seconds, spread over source addresses 127.0.0.2 and up (at most
--per-address each; every 127/8 address is the loopback interface on Linux). A connection
the server closes is opened again at once, so the counts hold for as long as this runs.
When all are open for the first time, --ready FILE is written. On SIGTERM it prints one line:
"reopened_idle=N reopened_slow=N connect_errors=N".
"""
import argparse
import errno
import select
import signal
import socket
import sys
import time

HEADER = b"GET /bucket/small/k00000 HTTP/1.1\r\nHost: flood\r\nX-Pad: " + b"a" * 4000


class Conn:
    __slots__ = ("sock", "kind", "source", "sent")

    def __init__(self, kind, source):
        self.kind, self.source, self.sock, self.sent = kind, source, None, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--per-address", type=int, default=200)
    ap.add_argument("--trickle", type=float, default=5.0, help="seconds between header bytes")
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conns = []
    for i in range(a.idle + a.slow):
        k = i // a.per_address
        source = f"127.0.{k // 254}.{2 + k % 254}"
        conns.append(Conn("idle" if i < a.idle else "slow", source))
    reopened = {"idle": 0, "slow": 0}
    errors = 0
    poller = select.poll()
    by_fd = {}

    def open_conn(c):
        nonlocal errors
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((c.source, 0))
            s.connect(("127.0.0.1", a.port))
        except OSError as e:
            s.close()
            errors += 1
            if e.errno not in (errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT):
                raise
            return False
        s.setblocking(False)
        c.sock, c.sent = s, 0
        by_fd[s.fileno()] = c
        poller.register(s, select.POLLIN)
        return True

    def close_conn(c):
        poller.unregister(c.sock)
        del by_fd[c.sock.fileno()]
        c.sock.close()
        c.sock = None

    for c in conns:
        open_conn(c)
    with open(a.ready, "w") as f:
        f.write(f"{sum(1 for c in conns if c.sock)}\n")
    next_trickle = time.monotonic() + a.trickle
    while not stop:
        for fd, _ in poller.poll(200):
            c = by_fd.get(fd)
            if c is None:
                continue
            try:
                data = c.sock.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed by the server: open another, as an attacker would
                close_conn(c)
                reopened[c.kind] += 1
        if time.monotonic() >= next_trickle:
            next_trickle += a.trickle
            for c in conns:
                if c.sock and c.kind == "slow" and c.sent < len(HEADER):
                    try:
                        c.sock.send(HEADER[c.sent:c.sent + 1])
                        c.sent += 1
                    except OSError:
                        pass
        for c in conns:
            if c.sock is None and not stop:
                open_conn(c)
    print(f"reopened_idle={reopened['idle']} reopened_slow={reopened['slow']} connect_errors={errors}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
