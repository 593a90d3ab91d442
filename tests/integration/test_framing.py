"""Request smuggling shapes (RFC 9112): a head whose body length two HTTP parsers could read two
ways is refused, and the connection closed, so that the bytes after it are never read as a
request.

Each test sends a signed PUT with one framing fault, followed on the same connection by a second
request: the answer must be the error (400, or 501 for a transfer coding we do not implement),
with Connection: close, and nothing else: neither the PUT nor the request hidden behind it may
run, and the object under the key keeps its old content.
"""
import re
import socket

import pytest
import requests

from helpers_http import build_request, read_response, sign_headers

BUCKET = "framing"
OLD = b"the old content\n"
BODY = b"smuggled?"


@pytest.fixture()
def victim(s3, request):
    """A key of BUCKET holding OLD, which no refused request may change."""
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    key = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)
    s3.put_object(Bucket=BUCKET, Key=key, Body=OLD)
    return key


def signed_head(server, bucket, key, extra_lines, body=BODY, content_length=True):
    """A signed PUT's head with extra header lines inserted after the signed ones."""
    headers = {"Content-Length": str(len(body))} if content_length else {}
    signed = sign_headers("PUT", f"127.0.0.1:{server.port}", f"/{bucket}/{key}", headers, body=body)
    head = build_request("PUT", f"/{bucket}/{key}", signed)[:-2]  # without the final CRLF
    return head + b"".join(line + b"\r\n" for line in extra_lines) + b"\r\n"


def exchange_all(port, data, timeout=5):
    """Sends data; returns every byte the server sent until it closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        except socket.timeout:
            pytest.fail(f"the connection stayed open after: {out[:300]!r}")
        except ConnectionResetError:
            return out


def hidden_request(bucket):
    """A second request behind the first: any answer to it means it was read as a request."""
    return f"DELETE /{bucket}/hidden HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def assert_refused(out, status, code):
    assert len(re.findall(rb"HTTP/1\.[01] \d{3} ", out)) == 1, f"not one response: {out[:600]!r}"
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), out[:300]
    assert re.search(rb"(?im)^connection:\s*close\s*$", head), head
    assert f"<Code>{code}</Code>".encode() in body, body


FAULTS = {
    "two Content-Length": ([b"Content-Length: 3"], 400, "InvalidRequest"),
    "two equal Content-Length": ([f"Content-Length: {len(BODY)}".encode()], 400, "InvalidRequest"),
    "Content-Length and Transfer-Encoding": ([b"Transfer-Encoding: chunked"], 400, "InvalidRequest"),
    "space before colon": ([b"Content-Length : 3"], 400, "InvalidRequest"),
    "tab before colon": ([b"X-Thing\t: 3"], 400, "InvalidRequest"),
    "folded Content-Length": ([b"Content-Length: 9", b" 1"], 400, "InvalidRequest"),
    "bare CR in a value": ([b"X-Note: a\rTransfer-Encoding: chunked"], 400, "InvalidRequest"),
    "second Host": ([b"Host: elsewhere.example"], 400, "InvalidRequest"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_ambiguous_length_is_refused_and_the_connection_closed(server, s3, victim, fault):
    lines, status, code = FAULTS[fault]
    head = signed_head(server, BUCKET, victim, lines)
    if fault == "folded Content-Length":  # the signed Content-Length is the folded one
        head = head.replace(f"Content-Length: {len(BODY)}\r\n".encode(), b"", 1)
    out = exchange_all(server.port, head + BODY + hidden_request(BUCKET))
    assert_refused(out, status, code)
    assert s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read() == OLD


TE_FAULTS = {
    "two Transfer-Encoding": ([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], 400,
                              "InvalidRequest"),
    "gzip then chunked": ([b"Transfer-Encoding: gzip, chunked"], 501, "NotImplemented"),
    "chunked not last": ([b"Transfer-Encoding: chunked, identity"], 400, "InvalidRequest"),
    "unknown coding": ([b"Transfer-Encoding: xchunked"], 400, "InvalidRequest"),
    "padded chunked": ([b"Transfer-Encoding:  chunked "], 400, "InvalidRequest"),
    "folded Transfer-Encoding": ([b"Transfer-Encoding:", b" chunked"], 400, "InvalidRequest"),
}


@pytest.mark.parametrize("fault", TE_FAULTS)
def test_transfer_encoding_faults(server, s3, victim, fault):
    lines, status, code = TE_FAULTS[fault]
    head = signed_head(server, BUCKET, victim, lines, content_length=False)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    out = exchange_all(server.port, head + chunked + hidden_request(BUCKET))
    assert_refused(out, status, code)
    if status == 501:
        assert b"<Header>Transfer-Encoding</Header>" in out
    assert s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read() == OLD


def test_http10_with_transfer_encoding(server, s3, victim):
    raw = (f"PUT /{BUCKET}/{victim} HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           f"3\r\nabc\r\n0\r\n\r\n").encode() + hidden_request(BUCKET)
    assert_refused(exchange_all(server.port, raw), 400, "InvalidRequest")


def test_http11_without_host(server):
    out = exchange_all(server.port, b"GET /health/ready HTTP/1.1\r\n\r\n")
    assert_refused(out, 400, "InvalidRequest")
    # HTTP/1.0 needs none.
    out = exchange_all(server.port, b"GET /health/ready HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") or out.startswith(b"HTTP/1.0 200 "), out[:200]


def test_well_framed_requests_still_work(server, s3, victim):
    """One Content-Length (leading zeros and leading space are still one decimal number), or
    Transfer-Encoding: chunked alone, in any letter case; and pipelining works."""
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        head = signed_head(server, BUCKET, victim, [])
        s.sendall(head + BODY + head + BODY)
        for _ in range(2):
            r = read_response(s)
            assert r is not None and r.status == 200, r
    assert s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read() == BODY

    signed = sign_headers("PUT", f"127.0.0.1:{port}", f"/{BUCKET}/{victim}",
                          {"Content-Length": "00" + str(len(BODY))}, body=BODY)
    signed["Content-Length"] = " 00" + str(len(BODY))  # the signature trims the space
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(build_request("PUT", f"/{BUCKET}/{victim}", signed, BODY))
        r = read_response(s)
        assert r is not None and r.status == 200, r

    for te in ("chunked", "Chunked"):
        payload = te.encode() + b" body"
        signed = sign_headers("PUT", f"127.0.0.1:{port}", f"/{BUCKET}/{victim}", {}, body=payload)
        signed["Transfer-Encoding"] = te
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(build_request("PUT", f"/{BUCKET}/{victim}", signed, chunked))
            r = read_response(s)
            assert r is not None and r.status == 200, r
        assert s3.get_object(Bucket=BUCKET, Key=victim)["Body"].read() == payload
    assert requests.get(server.endpoint + "/health/ready", timeout=10).status_code == 200
