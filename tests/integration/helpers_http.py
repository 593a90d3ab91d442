"""Helpers for tests that speak HTTP to coffer below boto3: SigV4-signed raw requests, response
parsing, and inspection of the data directory's layout (docs/internals/store.md).

The layout these helpers know: DATA/tmp/ holds bodies being received, DATA/objects/ab/cd/<id>
holds committed data files (<id> = 32 hex digits), DATA/index.lmdb/ is the index, which also holds
the bodies of objects of at most INLINE_MAX bytes (those have no data file, nor a file in tmp/
while they arrive).
"""
import hashlib
import os
import re
import socket
import time
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, SECRET_KEY

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DATA_FILE_RE = re.compile(r"^[0-9a-f]{32}$")
INLINE_MAX = 16384  # CF_STORE_INLINE_MAX (src/store/store.h)


class _FixedPayloadAuth(S3SigV4Auth):
    """S3 SigV4 with the x-amz-content-sha256 value chosen by the caller (so a test can sign a
    hash that does not match the body it sends, or UNSIGNED-PAYLOAD)."""

    def __init__(self, credentials, payload_hash):
        super().__init__(credentials, "s3", REGION)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def sign_headers(method, host, raw_path, headers=None, payload_hash=None, body=b"",
                 access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """Headers (including Host) for a SigV4-signed request. raw_path is sent exactly as given
    (already percent-encoded, query string included). Every header given is signed."""
    if payload_hash is None:
        payload_hash = hashlib.sha256(body).hexdigest()
    headers = dict(headers or {})
    req = AWSRequest(method=method, url=f"http://{host}{raw_path}", headers=headers)
    _FixedPayloadAuth(Credentials(access_key, secret_key), payload_hash).add_auth(req)
    out = {"Host": host}
    out.update({k: v for k, v in req.headers.items()})
    return out


def key_path(bucket, key):
    """The raw path boto3 would send for bucket/key (percent-encoded UTF-8, '/' kept)."""
    if isinstance(key, str):
        key = key.encode("utf-8")
    return "/" + bucket + "/" + quote(key, safe="/~")


def build_request(method, raw_path, headers, body=b""):
    lines = [f"{method} {raw_path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case names
        self.body = body

    @property
    def code(self):
        m = re.search(rb"<Code>([^<]*)</Code>", self.body or b"")
        return m.group(1).decode() if m else None

    def __repr__(self):
        return f"<Response {self.status} {self.reason} {self.body[:400]!r}>"


def _recv_exactly(sock, n):
    """Up to n bytes from sock, fewer only when the server closed (or reset) the connection."""
    out = b""
    try:
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                break
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return out


def read_response(sock, timeout=30):
    """Reads one HTTP/1.1 response from sock, and not a byte more: the bytes of a pipelined
    request's response that arrived with it stay in the socket for the next call (a plain recv
    would take them in and lose them). Returns None when the server closed the connection (or
    reset it) before sending a status line."""
    sock.settimeout(timeout)
    head = b""
    try:
        while True:
            seen = sock.recv(65536, socket.MSG_PEEK)
            if not seen:
                return None
            end = (head + seen).find(b"\r\n\r\n")
            if end >= 0:
                head += _recv_exactly(sock, end + 4 - len(head))
                break
            head += _recv_exactly(sock, len(seen))
    except (ConnectionResetError, BrokenPipeError):
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    return Response(status, reason, headers, _recv_exactly(sock, length))


def raw_exchange(port, data, timeout=30):
    """Sends data on a new connection, reads one response (None if closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_response(s, timeout)


def signed_request(port, method, raw_path, body=b"", headers=None, payload_hash=None, timeout=60,
                   sign_path=None):
    """A complete signed request on a fresh connection; returns its Response. sign_path, when
    given, is the canonical path signed in place of raw_path (same key, other encoding)."""
    host = f"127.0.0.1:{port}"
    hdrs = dict(headers or {})
    if method in ("PUT", "POST") or body:
        hdrs.setdefault("Content-Length", str(len(body)))
    signed = sign_headers(method, host, sign_path or raw_path, hdrs, payload_hash, body)
    return raw_exchange(port, build_request(method, raw_path, signed, body), timeout)


# ---- the data directory ----

def tmp_files(data_dir):
    path = os.path.join(data_dir, "tmp")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def data_files(data_dir):
    """Every file under DATA/objects/, as paths relative to it."""
    root = os.path.join(data_dir, "objects")
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def with_data_file(sizes):
    """How many of the objects of these sizes have a data file (a single PUT each)."""
    return sum(1 for n in sizes if n > INLINE_MAX)


def wait_for(predicate, timeout=10, interval=0.05):
    """Polls predicate until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def wait_tmp_empty(data_dir, timeout=10):
    """tmp/ may briefly hold a readiness probe or a request the server is still tearing down;
    returns the files still there after timeout (an empty list when it emptied)."""
    wait_for(lambda: not tmp_files(data_dir), timeout)
    return tmp_files(data_dir)
