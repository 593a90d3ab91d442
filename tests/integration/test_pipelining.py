"""HTTP/1.1 pipelining (RFC 9112 §9.3.2): requests sent back to back on one connection, before
any answer, are each answered, in order, on that connection.

Writes run on the blocking pool with their connection suspended (docs/internals/http.md), so
the requests behind a write wait in the connection's read buffer while it is suspended; reads
are answered on the event thread, a large object from its file. A round mixes both, and the
answers must show each request seeing the state the ones before it left.

The answers to small requests often reach the client in one TCP segment: read_response must
take one response from the socket and leave the next (it used to drop it, and the next read
waited for an answer the server had already sent). One round waits until every answer has
arrived before reading any, so they sit together in the socket's receive buffer.
"""
import socket
import time

from helpers_http import INLINE_MAX, build_request, read_response, sign_headers

BUCKET = "pipelining"
ROUNDS = 30


def signed(port, method, key, body=b""):
    headers = {"Content-Length": str(len(body))} if method == "PUT" else {}
    path = f"/{BUCKET}/{key}"
    return build_request(method, path, sign_headers(method, f"127.0.0.1:{port}", path, headers, body=body),
                         body)


def one_round(port, n, wait_before_reading):
    """Pipelines one round on a fresh connection; returns the statuses and bodies it got."""
    key = f"k{n}"
    small = f"small {n}".encode()
    large = bytes([n % 251]) * (INLINE_MAX + 1)  # a data file, sent with sendfile
    expected = [
        ("PUT", small, 200, b""),
        ("GET", b"", 200, small),
        ("PUT", large, 200, b""),
        ("GET", b"", 200, large),
        ("DELETE", b"", 204, b""),
        ("GET", b"", 404, None),
        ("DELETE", b"", 204, b""),
        ("PUT", small, 200, b""),
        ("GET", b"", 200, small),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(signed(port, method, key, body) for method, body, _, _ in expected))
        if wait_before_reading:
            time.sleep(0.5)
        for i, (method, _, status, body) in enumerate(expected):
            r = read_response(s, timeout=10)
            assert r is not None, f"round {n}: connection closed before answer {i} ({method})"
            assert r.status == status, f"round {n}, answer {i} ({method}): {r}"
            if body is not None:
                assert r.body == body, f"round {n}, answer {i} ({method}): {r}"
            else:
                assert r.code == "NoSuchKey", r
        if wait_before_reading:  # every answer has arrived: any byte more is one too many
            s.setblocking(False)
            try:
                extra = s.recv(65536)
            except BlockingIOError:
                extra = b""
            assert extra == b"", f"round {n}: more than one answer per request: {extra[:300]!r}"


def test_pipelined_requests_are_each_answered_in_order(server, s3):
    s3.create_bucket(Bucket=BUCKET)
    one_round(server.port, 0, wait_before_reading=True)
    for n in range(1, ROUNDS):
        one_round(server.port, n, wait_before_reading=False)
    assert s3.get_object(Bucket=BUCKET, Key=f"k{ROUNDS - 1}")["Body"].read() == f"small {ROUNDS - 1}".encode()
