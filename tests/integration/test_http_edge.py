"""Bad input at the HTTP level: each test sends something a broken or hostile client could send,
asserts the answer AWS S3 would give (an XML error with its Code, or a closed connection), and
then that nothing changed: the old object reads back intact, the listing is the same, tmp/ is
empty and objects/ holds exactly one data file per object (no leftover of the failed write).
"""
import base64
import hashlib
import os
import re
import socket
import struct
import time
import uuid

import pytest
import requests

from conftest import ACCESS_KEY, SECRET_KEY, s3_client
from helpers_http import (DATA_FILE_RE, EMPTY_SHA256, INLINE_MAX, build_request, data_files,
                          key_path, raw_exchange, read_response, sign_headers, signed_request,
                          tmp_files, wait_for, wait_tmp_empty, with_data_file)

OLD = b"the old content, which no failed request may change\n" * 3


# ---- fixtures and checks ----

@pytest.fixture(scope="module")
def bucket(s3):
    name = "edge-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture()
def old_object(s3, bucket):
    """A key holding OLD, for tests that try to overwrite it with a bad request."""
    key = "victim/" + uuid.uuid4().hex
    s3.put_object(Bucket=bucket, Key=key, Body=OLD)
    return key


def list_keys(s3, bucket):
    keys, token = {}, None
    while True:
        kw = {"Bucket": bucket}
        if token:
            kw["ContinuationToken"] = token
        page = s3.list_objects_v2(**kw)
        for o in page.get("Contents", []):
            keys[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
        if not page.get("IsTruncated"):
            return keys
        token = page["NextContinuationToken"]


def all_objects(s3):
    out = {}
    for b in s3.list_buckets()["Buckets"]:
        for k, v in list_keys(s3, b["Name"]).items():
            out[(b["Name"], k)] = v
    return out


def assert_store_clean(s3, data_dir):
    """tmp/ empty and exactly one data file per object larger than INLINE_MAX: no partial body
    left anywhere."""
    left = wait_tmp_empty(data_dir)
    assert left == [], f"files left in tmp/: {left}"
    objs = all_objects(s3)
    want = with_data_file(size for size, _etag in objs.values())
    # A failed request's cleanup runs in the completion callback, which may finish just after
    # the client saw the connection end: give it a moment before judging.
    wait_for(lambda: len(data_files(data_dir)) == want, timeout=10)
    files = data_files(data_dir)
    assert len(files) == want, (
        f"{len(files)} data files for {want} objects over {INLINE_MAX} bytes: a failed write left "
        f"a file behind")


def assert_old_intact(s3, bucket, key):
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == OLD
    assert got["ETag"].strip('"') == hashlib.md5(OLD).hexdigest()


def assert_healthy(server, s3, bucket):
    r = requests.get(server.endpoint + "/health/ready", timeout=10)
    assert r.status_code == 200
    key = "health-check/" + uuid.uuid4().hex
    s3.put_object(Bucket=bucket, Key=key, Body=b"alive")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"alive"
    s3.delete_object(Bucket=bucket, Key=key)


def host_of(server):
    return f"127.0.0.1:{server.port}"


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# ---- health ----

@pytest.mark.parametrize("path,body", [("/health/live", b"ok\n"), ("/health/ready", b"ready\n")])
def test_health_endpoints_answer_200_without_credentials(server, path, body):
    r = requests.get(server.endpoint + path, timeout=10)
    assert r.status_code == 200, r.text
    assert r.content == body
    h = requests.head(server.endpoint + path, timeout=10)
    assert h.status_code == 200


# ---- authentication ----

def test_missing_authorization_is_access_denied(server, s3, bucket, old_object):
    r = requests.get(f"{server.endpoint}/{bucket}/{old_object}", timeout=10)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    assert r.headers["Content-Type"] == "application/xml"
    r = requests.put(f"{server.endpoint}/{bucket}/{old_object}", data=b"anonymous overwrite",
                     timeout=10)
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    r = requests.get(f"{server.endpoint}/{bucket}?list-type=2", timeout=10)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


GARBAGE_AUTHZ = [
    "garbage",
    "Basic aXRlc3Qtcm9vdDpzZWNyZXQ=",
    "AWS itest-root:c2lnbmF0dXJl",
    "AWS4-HMAC-SHA256 garbage",
    "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
    "AWS4-HMAC-SHA256 Credential=itest-root/20200101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=" + "0" * 64,
    "AWS4-HMAC-SHA256 Credential=itest-root/x, SignedHeaders=host;;;, Signature=zz",
    "AWS4-HMAC-SHA256 " + "A" * 20000,
    "AWS4-HMAC-SHA256 Credential=" + "\u00e9\u00e8".encode().decode("latin-1") + ", SignedHeaders=host, Signature=00",
]
AUTH_ERRORS = {"AccessDenied", "InvalidRequest", "InvalidArgument", "AuthorizationHeaderMalformed",
               "SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed"}


@pytest.mark.parametrize("authz", GARBAGE_AUTHZ, ids=range(len(GARBAGE_AUTHZ)))
def test_garbage_authorization_is_refused(server, s3, bucket, old_object, authz):
    body = b"overwrite attempt with a garbage signature"
    for method, payload in (("GET", b""), ("PUT", body)):
        head = {"Host": host_of(server), "Authorization": authz,
                "x-amz-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                "x-amz-content-sha256": hashlib.sha256(payload).hexdigest(),
                "Content-Length": str(len(payload))}
        resp = raw_exchange(server.port,
                            build_request(method, key_path(bucket, old_object), head, payload))
        assert resp is not None, "the server closed the connection instead of answering"
        assert resp.status in (400, 403), resp
        assert resp.code in AUTH_ERRORS, resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


def test_wrong_secret_is_signature_does_not_match(server, s3, bucket, old_object):
    path = key_path(bucket, old_object)
    body = b"signed with the wrong secret"
    head = sign_headers("PUT", host_of(server), path, {"Content-Length": str(len(body))},
                        body=body, secret_key="not-the-secret-key-at-all")
    resp = raw_exchange(server.port, build_request("PUT", path, head, body))
    assert resp.status == 403 and resp.code == "SignatureDoesNotMatch", resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


def test_unknown_access_key_is_invalid_access_key_id(server, s3, bucket, old_object):
    path = key_path(bucket, old_object)
    body = b"signed by a stranger"
    head = sign_headers("PUT", host_of(server), path, {"Content-Length": str(len(body))},
                        body=body, access_key="AKIANOBODY0000000000")
    resp = raw_exchange(server.port, build_request("PUT", path, head, body))
    assert resp.status == 403 and resp.code == "InvalidAccessKeyId", resp
    assert_old_intact(s3, bucket, old_object)


def test_tampered_body_after_signing_is_refused(server, s3, bucket, old_object):
    """The signature covers the payload hash; swapping the body must not get through."""
    path = key_path(bucket, old_object)
    signed_body = b"A" * 1000
    sent_body = b"B" * 1000
    head = sign_headers("PUT", host_of(server), path, {"Content-Length": "1000"}, body=signed_body)
    resp = raw_exchange(server.port, build_request("PUT", path, head, sent_body))
    assert resp.status == 400 and resp.code == "XAmzContentSHA256Mismatch", resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


# ---- digests ----

@pytest.mark.parametrize("size", [0, 1, 100_000, 3 << 20])
def test_wrong_content_md5_is_bad_digest(server, s3, bucket, old_object, size):
    body = os.urandom(size)
    resp = signed_request(server.port, "PUT", key_path(bucket, old_object), body,
                          {"Content-MD5": md5_b64(body + b"x")})
    assert resp.status == 400 and resp.code == "BadDigest", resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


def test_right_content_md5_is_accepted(server, s3, bucket, old_object):
    body = os.urandom(200_000)
    resp = signed_request(server.port, "PUT", key_path(bucket, old_object), body,
                          {"Content-MD5": md5_b64(body)})
    assert resp.status == 200, resp
    assert resp.headers["etag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert s3.get_object(Bucket=bucket, Key=old_object)["Body"].read() == body
    assert_store_clean(s3, server.data_dir)


@pytest.mark.parametrize("md5", ["not base64!", "AAAA", base64.b64encode(b"x" * 17).decode(), ""])
def test_malformed_content_md5_is_invalid_digest(server, s3, bucket, old_object, md5):
    body = b"body with a malformed Content-MD5"
    resp = signed_request(server.port, "PUT", key_path(bucket, old_object), body,
                          {"Content-MD5": md5})
    assert resp.status == 400 and resp.code == "InvalidDigest", resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


@pytest.mark.parametrize("size", [0, 10, 2 << 20])
def test_content_sha256_mismatch(server, s3, bucket, old_object, size):
    body = os.urandom(size)
    resp = signed_request(server.port, "PUT", key_path(bucket, old_object), body,
                          payload_hash=hashlib.sha256(b"something else").hexdigest())
    assert resp.status == 400 and resp.code == "XAmzContentSHA256Mismatch", resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


def test_content_sha256_not_hex_is_refused(server, s3, bucket, old_object):
    body = b"payload"
    resp = signed_request(server.port, "PUT", key_path(bucket, old_object), body,
                          payload_hash="z" * 64)
    assert resp.status == 400 and resp.code in ("InvalidArgument", "XAmzContentSHA256Mismatch"), resp
    assert_old_intact(s3, bucket, old_object)


# ---- keys ----

def test_key_of_1025_bytes_is_key_too_long(server, s3, bucket):
    before = list_keys(s3, bucket)
    for key in ("k" * 1025, "\u00e9" * 512 + "kk", "d/" * 600):
        assert len(key.encode()) > 1024
        resp = signed_request(server.port, "PUT", key_path(bucket, key), b"too long")
        assert resp.status == 400 and resp.code == "KeyTooLongError", resp
    assert list_keys(s3, bucket) == before
    assert_store_clean(s3, server.data_dir)


def test_key_of_1024_bytes_round_trips(server, s3, bucket):
    for key in ("k" * 1024, "\u00e9" * 512, "\U0001F600" * 256):
        assert len(key.encode()) == 1024
        body = key.encode()[:50]
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
        assert key in list_keys(s3, bucket)
        s3.delete_object(Bucket=bucket, Key=key)
    assert_store_clean(s3, server.data_dir)


INVALID_UTF8 = ["%FF%FE", "abc%80", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "ok%E2%82", "%C3"]


@pytest.mark.parametrize("raw_key", INVALID_UTF8)
def test_invalid_utf8_key_is_refused(server, s3, bucket, raw_key):
    before = list_keys(s3, bucket)
    files_before = data_files(server.data_dir)
    resp = signed_request(server.port, "PUT", f"/{bucket}/{raw_key}", b"bytes under a bad key")
    assert resp is not None and resp.status == 400, resp
    assert resp.code in ("InvalidArgument", "InvalidURI"), resp
    assert list_keys(s3, bucket) == before
    assert data_files(server.data_dir) == files_before
    assert_store_clean(s3, server.data_dir)


TRAVERSAL_KEYS = ["../../etc/passwd", "a/../../b", "../../../../../../../../tmp/coffer-escape",
                  "..", ".", "./x", "/abs/path", "a//b", "..\\..\\win.ini", "objects/../tmp/x",
                  "tmp/evil", "index.lmdb/data.mdb", "%2e%2e/literal-percent"]


def files_named(root, names):
    found = []
    for dirpath, dirs, files in os.walk(root):
        for f in files + dirs:
            if f in names:
                found.append(os.path.join(dirpath, f))
    return found


def test_path_traversal_keys_are_plain_keys(server, s3, bucket):
    data_dir = server.data_dir
    base = os.path.dirname(data_dir)  # holds the data dir and the server's logs only
    with open("/etc/passwd", "rb") as f:
        etc_passwd = f.read()
    base_before = sorted(os.listdir(base))
    contents = {}
    for i, key in enumerate(TRAVERSAL_KEYS):
        body = f"{i}:{key}".encode() * 7
        contents[key] = body
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    # The same, sent raw with the dots percent-encoded.
    raw_key = "%2E%2E/%2E%2E/raw-dotdot"
    resp = signed_request(server.port, "PUT", f"/{bucket}/{raw_key}", b"raw dots",
                          sign_path=f"/{bucket}/../../raw-dotdot")
    assert resp.status == 200, resp
    contents["../../raw-dotdot"] = b"raw dots"

    listed = list_keys(s3, bucket)
    for key, body in contents.items():
        assert key in listed, f"{key!r} not listed as a plain key: {sorted(listed)}"
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body, key
        assert listed[key] == (len(body), hashlib.md5(body).hexdigest())

    # Nothing outside the data dir was touched, and nothing inside is named after a key.
    with open("/etc/passwd", "rb") as f:
        assert f.read() == etc_passwd
    assert not os.path.exists("/tmp/coffer-escape")
    assert sorted(os.listdir(base)) == base_before
    names = {"passwd", "b", "x", "path", "win.ini", "..\\..\\win.ini", "evil", "raw-dotdot",
             "literal-percent", "coffer-escape"}
    assert files_named(base, names) == []
    assert set(os.listdir(data_dir)) <= {"index.lmdb", "objects", "tmp", "credentials",
                                         "clean-shutdown"}
    for rel in data_files(data_dir):
        parts = rel.split(os.sep)
        assert len(parts) == 3 and DATA_FILE_RE.match(parts[2]), rel
        assert parts[0] == parts[2][:2] and parts[1] == parts[2][2:4], rel
    assert sorted(os.listdir(os.path.join(data_dir, "index.lmdb"))) in (
        ["data.mdb", "lock.mdb"], ["data.mdb"])

    for key in contents:
        s3.delete_object(Bucket=bucket, Key=key)
    assert not (set(contents) & set(list_keys(s3, bucket)))
    assert_store_clean(s3, data_dir)


# ---- bodies that end early ----

def start_put(server, path, length, payload_hash="UNSIGNED-PAYLOAD"):
    head = sign_headers("PUT", host_of(server), path, {"Content-Length": str(length)},
                        payload_hash=payload_hash)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(build_request("PUT", path, head))
    return s


def reset_close(s):
    """Close with RST (SO_LINGER 0): the client vanished."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@pytest.mark.parametrize("how", ["close", "reset", "half-close"])
@pytest.mark.parametrize("existing", [True, False], ids=["overwrite", "new-key"])
@pytest.mark.parametrize("length", [1000, 4 * INLINE_MAX], ids=["held", "in-tmp"])
def test_body_shorter_than_content_length(server, s3, bucket, how, existing, length):
    key = "short/" + uuid.uuid4().hex
    if existing:
        s3.put_object(Bucket=bucket, Key=key, Body=OLD)
    before = list_keys(s3, bucket)
    files_before = data_files(server.data_dir)
    s = start_put(server, key_path(bucket, key), length)
    s.sendall(b"n" * (length // 2))
    if length > INLINE_MAX:
        # The server has started receiving: the body is in tmp/ by now.
        assert wait_for(lambda: tmp_files(server.data_dir), timeout=5)
    else:
        time.sleep(0.2)
    if how == "half-close":
        s.shutdown(socket.SHUT_WR)
        resp = read_response(s, timeout=15)
        # Either an IncompleteBody error or a plain close; never a success.
        assert resp is None or (resp.status == 400 and resp.code == "IncompleteBody"), resp
        s.close()
    elif how == "reset":
        reset_close(s)
    else:
        s.close()
    assert wait_tmp_empty(server.data_dir) == []
    if existing:
        assert_old_intact(s3, bucket, key)
    else:
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=bucket, Key=key)
    assert list_keys(s3, bucket) == before
    wait_for(lambda: data_files(server.data_dir) == files_before)
    assert data_files(server.data_dir) == files_before
    assert_store_clean(s3, server.data_dir)


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnects_mid_large_put(server, s3, bucket, old_object, how):
    total = 64 << 20
    sent_target = 24 << 20
    files_before = data_files(server.data_dir)
    s = start_put(server, key_path(bucket, old_object), total)
    chunk = os.urandom(1 << 20)
    for _ in range(sent_target >> 20):
        s.sendall(chunk)
    # Part of the body has reached tmp/.
    tmp = os.path.join(server.data_dir, "tmp")
    assert wait_for(lambda: any(os.path.getsize(os.path.join(tmp, f)) > (1 << 20)
                                for f in tmp_files(server.data_dir)
                                if os.path.exists(os.path.join(tmp, f))), timeout=15)
    if how == "reset":
        reset_close(s)
    else:
        s.close()
    assert wait_tmp_empty(server.data_dir, timeout=20) == []
    assert_old_intact(s3, bucket, old_object)
    wait_for(lambda: data_files(server.data_dir) == files_before)
    assert data_files(server.data_dir) == files_before
    assert_store_clean(s3, server.data_dir)
    assert_healthy(server, s3, bucket)


def test_signed_body_cut_short_leaves_nothing(server, s3, bucket, old_object):
    """Same with a signed payload hash: the server hashes as it goes; the cut body is dropped."""
    body = os.urandom(3 << 20)
    s = start_put(server, key_path(bucket, old_object), len(body),
                  payload_hash=hashlib.sha256(body).hexdigest())
    s.sendall(body[: len(body) // 2])
    assert wait_for(lambda: tmp_files(server.data_dir), timeout=5)
    s.close()
    assert wait_tmp_empty(server.data_dir) == []
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


# ---- malformed HTTP ----

@pytest.mark.parametrize("size", [100 * 1024, 300 * 1024, 2 * 1024 * 1024], ids=["100KB", "300KB", "2MB"])
def test_oversized_header_is_refused(server, s3, bucket, old_object, size):
    path = key_path(bucket, old_object)
    head = sign_headers("GET", host_of(server), path)
    head["X-Filler"] = "a" * size
    resp = raw_exchange(server.port, build_request("GET", path, head))
    # AWS refuses a header section over 8 KB (400 RequestHeaderSectionTooLarge); 431 is HTTP's
    # own answer. Either way the request must not be served, and the server must survive.
    assert resp is not None, "connection closed without an answer"
    assert resp.status in (400, 431), resp
    if resp.status == 400:
        assert resp.code in ("RequestHeaderSectionTooLarge", "MetadataTooLarge"), resp
    assert_healthy(server, s3, bucket)
    assert_old_intact(s3, bucket, old_object)


def test_oversized_metadata_header_on_put_is_refused(server, s3, bucket, old_object):
    path = key_path(bucket, old_object)
    body = b"new body with a huge metadata header"
    head = sign_headers("PUT", host_of(server), path,
                        {"Content-Length": str(len(body)), "x-amz-meta-big": "m" * 100_000},
                        body=body)
    resp = raw_exchange(server.port, build_request("PUT", path, head, body))
    assert resp is not None
    assert resp.status in (400, 431), resp
    if resp.status == 400:
        assert resp.code in ("MetadataTooLarge", "RequestHeaderSectionTooLarge"), resp
    assert_old_intact(s3, bucket, old_object)
    assert_store_clean(s3, server.data_dir)


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b" / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET / FOO/1.1\r\nHost: x\r\n\r\n",
    b"GET  /  HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nNoColonHeader\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
    b"\xff\xfe\xfd\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(64)) + b"\r\n\r\n",
    # Not here: b"\x00\r\n\r\n". The HTTP layer reads a NUL line as an empty line, which RFC
    # 9112 §2.2 says a server should skip before the request line, and then waits for one; the
    # idle connection is closed by the connection timeout (docs/S3-COMPAT.md).
]


@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_request_is_refused_or_closed(server, s3, bucket, raw):
    t0 = time.monotonic()
    try:
        resp = raw_exchange(server.port, raw, timeout=5)
    except socket.timeout:
        pytest.fail(f"no answer and no close within 5 s for {raw[:40]!r}")
    assert time.monotonic() - t0 < 5
    if resp is not None:
        assert 400 <= resp.status < 500 or resp.status == 505, resp
    assert_healthy(server, s3, bucket)
    assert_store_clean(s3, server.data_dir)


def test_bad_percent_encoding_in_path(server, s3, bucket):
    before = list_keys(s3, bucket)
    for raw_key in ("%zz", "abc%4", "%"):
        resp = signed_request(server.port, "PUT", f"/{bucket}/{raw_key}", b"x")
        assert resp is not None and resp.status == 400, resp
        assert resp.code in ("InvalidURI", "InvalidArgument", "SignatureDoesNotMatch"), resp
    resp = signed_request(server.port, "PUT", f"/{bucket}/nul%00byte", b"x")
    assert resp.status == 400 and resp.code in ("InvalidURI", "InvalidArgument"), resp
    assert list_keys(s3, bucket) == before
    assert_store_clean(s3, server.data_dir)


# ---- the access log ----

REQUEST_LINE = re.compile(r"msg=request ")


def log_fields(line):
    fields = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[m.group(1)] = v
    return fields


def request_lines(server):
    return [log_fields(l) for l in server.log().splitlines() if REQUEST_LINE.search(l)]


def test_access_log_line_per_request(server, s3, bucket):
    key = "logged/" + uuid.uuid4().hex + ".bin"
    body = os.urandom(12345)
    path = key_path(bucket, key)
    host = host_of(server)
    signatures = []

    def send(method, payload=b"", k=path):
        head = sign_headers(method, host, k,
                            {"Content-Length": str(len(payload))} if method == "PUT" else {},
                            body=payload)
        signatures.append(re.search(r"Signature=([0-9a-f]{64})", head["Authorization"]).group(1))
        return raw_exchange(server.port, build_request(method, k, head, payload))

    assert send("PUT", body).status == 200
    assert send("GET").status == 200
    missing = key_path(bucket, "logged/missing-" + uuid.uuid4().hex)
    assert send("GET", k=missing).status == 404
    bad = {"Host": host, "Authorization": "AWS4-HMAC-SHA256 Credential=itest-root/x, "
           "SignedHeaders=host, Signature=" + "ab" * 32, "x-amz-date": "20200101T000000Z"}
    assert raw_exchange(server.port, build_request("GET", path, bad)).status in (400, 403)

    def mine():
        return [f for f in request_lines(server) if f.get("key") in (key, missing[len(bucket) + 2:])
                and f.get("bucket") == bucket]

    wait_for(lambda: len(mine()) >= 4, timeout=10)
    lines = mine()
    assert len(lines) == 4, lines
    # A line is written when its request's answer has gone out, so a loaded machine can log the
    # GET that followed the PUT's answer before the PUT: match the lines, not their order.
    def one(pred):
        found = [f for f in lines if pred(f)]
        assert len(found) == 1, lines
        return found[0]
    put = one(lambda f: f.get("method") == "PUT")
    get = one(lambda f: f.get("method") == "GET" and f.get("status") == "200")
    notfound = one(lambda f: f.get("status") == "404")
    denied = one(lambda f: f.get("status") in ("400", "403"))
    for f in lines:
        for field in ("method", "bucket", "key", "status", "ms", "bytes_in", "bytes_out"):
            assert field in f, f"access log line lacks {field}: {f}"
        assert re.fullmatch(r"\d+(\.\d+)?", f["ms"]), f
    assert (put["method"], put["status"], put["bytes_in"]) == ("PUT", "200", str(len(body)))
    assert (get["method"], get["status"], get["bytes_out"]) == ("GET", "200", str(len(body)))
    assert (notfound["method"], notfound["status"]) == ("GET", "404")
    assert denied["status"] in ("400", "403")

    text = server.log()
    assert SECRET_KEY not in text
    for sig in signatures + ["ab" * 32]:
        assert sig not in text, "a request signature appeared in the server log"
    assert "Signature=" not in text
    assert "AWS4-HMAC-SHA256 Credential" not in text
