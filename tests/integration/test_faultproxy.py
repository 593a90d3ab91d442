"""The fault proxy itself: each fault does to the bytes what it says, against a small HTTP server.

Quick (a few seconds) and independent of coffer, so that a test through the proxy that passes
cannot pass because a fault silently did nothing.
"""
import hashlib
import http.client
import http.server
import os
import socket
import threading
import time

import pytest

from faultproxy import Bandwidth, Error, FaultProxy, Latency, Reset, Stall, Truncate

BLOB = os.urandom(300_000)


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.uploads = []  # (bytes received, bytes announced)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"x" * 100 if self.path == "/small" else BLOB
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()

    def do_PUT(self):
        want = int(self.headers["Content-Length"])
        got = b""
        self.connection.settimeout(5)
        try:
            while len(got) < want:
                piece = self.rfile.read1(want - len(got))
                if not piece:
                    break
                got += piece
        except OSError:
            pass
        self.server.uploads.append((len(got), want))
        if len(got) < want:
            self.close_connection = True
            return
        body = hashlib.sha256(got).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def net():
    up = Upstream()
    proxy = FaultProxy(up.server_address[1])
    yield up, proxy
    proxy.close()
    up.shutdown()


def raw_get(proxy, path="/obj", timeout=10):
    """The head and every body byte that arrives until the connection ends or times out."""
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
    data, error = b"", None
    try:
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            data += piece
    except OSError as e:
        error = e
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body, error


def test_pass_through_and_keep_alive(net):
    up, proxy = net
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    for _ in range(3):
        c.request("GET", "/obj")
        r = c.getresponse()
        assert r.read() == BLOB
    c.request("HEAD", "/obj")
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(len(BLOB)) and r.read() == b""
    c.request("PUT", "/up", body=BLOB)
    assert c.getresponse().read() == hashlib.sha256(BLOB).hexdigest().encode()
    assert proxy.count("GET") == 3 and proxy.count() == 5 and proxy.connections == 1


def test_latency_and_bandwidth(net):
    _, proxy = net
    proxy.add(Latency(0.5), method="GET", path="^/small$")
    t0 = time.monotonic()
    assert raw_get(proxy, "/small")[1] == b"x" * 100
    assert time.monotonic() - t0 >= 0.5
    proxy.add(Bandwidth(400_000), method="GET", path="^/obj$")
    t0 = time.monotonic()
    assert raw_get(proxy)[1] == BLOB
    assert time.monotonic() - t0 >= 0.7  # 300 kB at 400 kB/s


def test_stall_mid_response(net):
    _, proxy = net
    rule = proxy.add(Stall(1.5, after=10_000), method="GET")
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
    s.sendall(b"GET /obj HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    with pytest.raises(socket.timeout):
        while True:
            data += s.recv(65536)
    body = data.partition(b"\r\n\r\n")[2]
    assert body == BLOB[:10_000]  # nothing more while stalled
    s.settimeout(5)
    while True:
        piece = s.recv(65536)
        if not piece:
            break
        data += piece
    assert data.partition(b"\r\n\r\n")[2] == BLOB  # then all of it
    assert rule.hits == 1


def test_reset_mid_response(net):
    _, proxy = net
    proxy.add(Reset(after=50_000, direction="response"))
    head, body, error = raw_get(proxy)
    assert "Content-Length: %d" % len(BLOB) in head
    assert body == BLOB[:len(body)] and len(body) <= 50_000
    assert isinstance(error, ConnectionResetError)


def test_reset_mid_request_body(net):
    up, proxy = net
    proxy.add(Reset(after=100_000, direction="request"), method="PUT")
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    with pytest.raises(OSError):
        c.request("PUT", "/up", body=BLOB)
        c.getresponse().read()
    for _ in range(50):
        if up.uploads:
            break
        time.sleep(0.1)
    got, want = up.uploads[0]
    assert got <= 100_000 and want == len(BLOB)  # upstream never saw the whole body


def test_truncated_response(net):
    _, proxy = net
    proxy.add(Truncate(after=1234), method="GET", first=2)
    assert raw_get(proxy)[1] == BLOB  # the first GET is not the rule's
    head, body, error = raw_get(proxy)
    assert "Content-Length: %d" % len(BLOB) in head
    assert body == BLOB[:1234] and error is None  # a clean close, short of the length
    assert raw_get(proxy)[1] == BLOB  # times=1


def test_errors_answered_by_the_proxy(net):
    up, proxy = net
    slow = proxy.add(Error(503, "SlowDown", retry_after=3), method="PUT", times=2)
    proxy.add(Error(500, "InternalError"), method="GET", path="^/small$", times=None)
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    for _ in range(2):
        c.request("PUT", "/up", body=BLOB)
        r = c.getresponse()
        text = r.read().decode()
        assert r.status == 503 and r.getheader("Retry-After") == "3"
        assert "<Code>SlowDown</Code>" in text
    c.request("PUT", "/up", body=BLOB)  # the same connection goes on, the third gets through
    assert c.getresponse().read() == hashlib.sha256(BLOB).hexdigest().encode()
    assert slow.hits == 2 and up.uploads == [(len(BLOB), len(BLOB))]
    for _ in range(3):
        c.request("GET", "/small")
        r = c.getresponse()
        assert r.status == 500 and r.getheader("Retry-After") is None
        assert "<Code>InternalError</Code>" in r.read().decode()
    assert proxy.requests[-1] == ("GET", "/small", "Error")


def test_down_after_a_byte_budget(net):
    up, proxy = net
    proxy.go_down_after(50_000)
    c = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    with pytest.raises(OSError):
        c.request("PUT", "/up", body=BLOB)
        c.getresponse().read()
    assert proxy.down
    head, body, error = raw_get(proxy)  # accepted and closed at once
    assert head == "" and body == b""
    proxy.go_up()
    assert raw_get(proxy)[1] == BLOB


def test_fault_before_a_bodyless_request_and_method_sets(net):
    """after=0 in the request direction: the request never reaches upstream, body or not."""
    up, proxy = net
    rule = proxy.add(Reset(after=0, direction="request"), method="DELETE,GET", path="^/small$", times=2)
    for _ in range(2):
        head, body, error = raw_get(proxy, "/small")
        assert head == "" and isinstance(error, ConnectionResetError)
    assert raw_get(proxy, "/small")[1] == b"x" * 100
    assert rule.hits == 2 and rule.matched == 3
    stall = proxy.add(Stall(1, after=0, direction="request"), method="GET", path="^/small$")
    t0 = time.monotonic()
    assert raw_get(proxy, "/small")[1] == b"x" * 100
    assert time.monotonic() - t0 >= 1 and stall.hits == 1


def test_stall_then_reset(net):
    up, proxy = net
    proxy.add(Stall(0.5, after=1000, direction="response", then="reset"))
    t0 = time.monotonic()
    head, body, error = raw_get(proxy)
    assert time.monotonic() - t0 >= 0.5
    assert body == BLOB[:1000] and isinstance(error, ConnectionResetError)
