"""aws-chunked request bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) built and signed here, chunk by
chunk, to check what real clients cannot be made to send: a tampered chunk, a truncated body, a
wrong declared length. Each failure must leave the previous object and no data file behind."""
import hashlib
import hmac
import os

import pytest
import requests

from conftest import REGION, SECRET_KEY
from helpers_clients import sign
from helpers_http import data_files, wait_tmp_empty

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def streaming_put(server, path, chunks, *, decoded_length=None, tamper=None, drop_final=False):
    decoded = sum(len(c) for c in chunks) if decoded_length is None else decoded_length
    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(decoded)}
    url, hdrs = sign(server.endpoint, "PUT", path, headers=headers,
                     payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    amz_date = hdrs["X-Amz-Date"]
    seed = hdrs["Authorization"].rsplit("Signature=", 1)[1]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + SECRET_KEY).encode(), amz_date[:8]), REGION), "s3"), "aws4_request")
    body, prev = b"", seed
    for data in list(chunks) + ([] if drop_final else [b""]):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA256,
                         hashlib.sha256(data).hexdigest()])
        prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        sent = tamper(data) if (tamper and data) else data
        body += f"{len(sent):x};chunk-signature={prev}\r\n".encode() + sent + b"\r\n"
    return requests.put(url, headers=hdrs, data=body, timeout=30)


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="chunky")
    return "chunky"


def test_signed_chunks_store_the_decoded_bytes(server, s3, bucket):
    chunks = [os.urandom(64 * 1024), os.urandom(64 * 1024), b"tail"]
    r = streaming_put(server, f"/{bucket}/good", chunks)
    assert r.status_code == 200, r.content
    got = s3.get_object(Bucket=bucket, Key="good")
    assert got["Body"].read() == b"".join(chunks)          # no framing inside the object
    assert got.get("ContentEncoding") in (None, "")         # aws-chunked is not the object's


@pytest.mark.parametrize("case", ["tampered", "truncated", "length"])
def test_bad_streaming_bodies_change_nothing(server, s3, bucket, case):
    s3.put_object(Bucket=bucket, Key="victim", Body=b"previous version")
    files = len(data_files(server.data_dir))
    chunks = [os.urandom(70000), b"end"]
    if case == "tampered":
        r = streaming_put(server, f"/{bucket}/victim", chunks,
                          tamper=lambda d: bytes([d[0] ^ 1]) + d[1:])
        assert r.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in r.content, r.content
    elif case == "truncated":
        r = streaming_put(server, f"/{bucket}/victim", chunks, drop_final=True)
        assert r.status_code == 400, r.content
    else:
        r = streaming_put(server, f"/{bucket}/victim", chunks, decoded_length=70000)
        assert r.status_code == 400, r.content
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"previous version"
    assert len(data_files(server.data_dir)) == files
    assert wait_tmp_empty(server.data_dir) == []


def test_streaming_needs_the_decoded_length(server, bucket):
    url, hdrs = sign(server.endpoint, "PUT", f"/{bucket}/x", headers={"Content-Encoding": "aws-chunked"},
                     payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    r = requests.put(url, headers=hdrs, data=b"0;chunk-signature=" + b"0" * 64 + b"\r\n\r\n", timeout=10)
    assert r.status_code == 411 and b"MissingContentLength" in r.content
