"""A signed request must sign every x-amz-* header it carries, as AWS requires.

The reproducers: a presigned PUT URL turned into a copy of another object by an unsigned
x-amz-copy-source, and a captured header-signed PUT replayed with unsigned x-amz-meta-*,
x-amz-tagging or x-amz-copy-source. AWS refuses both with 403 AccessDenied, "There were headers
present in the request which were not signed", and names the headers in <HeadersNotSigned>; a
refused request changes nothing. x-amz-content-sha256 may go unsigned (its value is the signed
payload hash), and x-amzn-trace-id is not an x-amz- header. An anonymous request signs nothing:
its headers can ask only for what the anonymous principal may do anyway.
"""
import json
import os
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY
from helpers_clients import assert_s3_error
from helpers_http import build_request, raw_exchange, sign_headers

SECRET = b"the other bucket's secret\n" * 10
OLD = b"what incoming.bin held before\n"
UNSIGNED_MESSAGE = "There were headers present in the request which were not signed"


@pytest.fixture(scope="module")
def buckets(s3):
    for b in ("bkt1", "bkt2"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="bkt2", Key="secret.txt", Body=SECRET)
    return "bkt1", "bkt2"


@pytest.fixture()
def incoming(s3, buckets):
    """bkt1/incoming.bin with known content; the test checks that it is still there after."""
    s3.put_object(Bucket="bkt1", Key="incoming.bin", Body=OLD, Metadata={"origin": "test"})
    yield "incoming.bin"
    s3.delete_object(Bucket="bkt1", Key="incoming.bin")


def assert_unchanged(s3, key="incoming.bin"):
    got = s3.get_object(Bucket="bkt1", Key=key)
    assert got["Body"].read() == OLD
    assert got["Metadata"] == {"origin": "test"}
    assert "TagCount" not in got
    assert s3.get_object_tagging(Bucket="bkt1", Key=key)["TagSet"] == []


def assert_headers_not_signed(resp, names):
    err = assert_s3_error(resp, "AccessDenied", 403)
    assert err["Message"] == UNSIGNED_MESSAGE, err
    assert sorted(err.get("HeadersNotSigned", "").split(", ")) == sorted(names), err
    return err


def cli_presign(server, bucket, key, method="PUT", expires="15m"):
    """`coffer presign s3://BUCKET/KEY --method METHOD --expires EXPIRES`, as the issue ran it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "COFFER_"))}
    env.update({"COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": ACCESS_KEY,
                "COFFER_SECRET_KEY": SECRET_KEY})
    p = subprocess.run([COFFER_BIN, "presign", f"s3://{bucket}/{key}", "--method", method,
                        "--expires", expires], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def presigned_put(kind, server, s3, key):
    if kind == "cli":
        return cli_presign(server, "bkt1", key)
    return s3.generate_presigned_url("put_object", Params={"Bucket": "bkt1", "Key": key},
                                     ExpiresIn=900, HttpMethod="PUT")


# ---- presigned URLs (item 1 of the issue) ----

@pytest.mark.parametrize("kind", ["cli", "boto3"])
def test_presigned_put_cannot_become_a_copy(server, s3, incoming, kind):
    url = presigned_put(kind, server, s3, incoming)
    r = requests.put(url, headers={"x-amz-copy-source": "bkt2/secret.txt"}, timeout=30)
    assert_headers_not_signed(r, ["x-amz-copy-source"])
    assert_unchanged(s3)
    # Onto a key that did not exist: still nothing is created.
    url = presigned_put(kind, server, s3, "fresh.bin")
    r = requests.put(url, headers={"X-Amz-Copy-Source": "/bkt2/secret.txt"}, timeout=30)
    assert_headers_not_signed(r, ["x-amz-copy-source"])
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="bkt1", Key="fresh.bin")
    assert e.value.response["Error"]["Code"] == "404"


@pytest.mark.parametrize("headers", [
    {"x-amz-meta-owner": "mallory"},
    {"x-amz-tagging": "public=yes"},
    {"X-Amz-Storage-Class": "STANDARD"},
    {"x-amz-acl": "public-read"},
    {"x-amz-website-redirect-location": "/elsewhere"},
    {"x-amz-checksum-crc32": "AAAAAA=="},
    {"x-amz-date": "20300101T000000Z"},
    {"x-amz-meta-a": "1", "x-amz-tagging": "k=v", "x-amz-copy-source": "bkt2/secret.txt"},
], ids=lambda h: "+".join(sorted(h)))
def test_presigned_put_refuses_every_unsigned_amz_header(server, s3, incoming, headers):
    url = presigned_put("cli", server, s3, incoming)
    r = requests.put(url, data=b"new body", headers=headers, timeout=30)
    assert_headers_not_signed(r, [h.lower() for h in headers])
    assert_unchanged(s3)


def test_presigned_requests_without_injected_headers_still_work(server, s3, incoming):
    url = presigned_put("cli", server, s3, incoming)
    # What proxies and tracers add, and the one x-amz- header that may go unsigned.
    r = requests.put(url, data=b"new body", timeout=30, headers={
        "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket="bkt1", Key=incoming)["Body"].read() == b"new body"
    get = requests.get(cli_presign(server, "bkt1", incoming, "GET"), timeout=30)
    assert get.status_code == 200 and get.content == b"new body"
    # A GET is held to the same rule.
    get = requests.get(cli_presign(server, "bkt1", incoming, "GET"), timeout=30,
                       headers={"x-amz-checksum-mode": "ENABLED"})
    assert_headers_not_signed(get, ["x-amz-checksum-mode"])


def test_presigned_url_that_signs_an_amz_header(server, s3, incoming):
    """botocore signs the x-amz-* headers of a presigned request as headers (X-Amz-SignedHeaders):
    sent with the URL, they are signed and stored."""
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "bkt1", "Key": incoming, "Metadata": {"owner": "alice"}},
        ExpiresIn=900, HttpMethod="PUT")
    assert "x-amz-meta-owner" in url.lower()
    r = requests.put(url, data=b"signed meta", headers={"x-amz-meta-owner": "alice"}, timeout=30)
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket="bkt1", Key=incoming)
    assert got["Body"].read() == b"signed meta" and got["Metadata"] == {"owner": "alice"}
    # The signed header with another value breaks the signature.
    r = requests.put(url, data=b"x", headers={"x-amz-meta-owner": "mallory"}, timeout=30)
    assert_s3_error(r, "SignatureDoesNotMatch", 403)


# ---- header authentication: a captured request replayed (item 2) ----

def captured_put(server, key, body, extra=None):
    """The headers of a SigV4-signed PUT, as someone on the path would capture them."""
    headers = {"Content-Length": str(len(body)), **(extra or {})}
    return sign_headers("PUT", f"127.0.0.1:{server.port}", f"/bkt1/{key}", headers, body=body)


def send(server, key, headers, body):
    return requests.put(f"{server.endpoint}/bkt1/{key}", data=body, headers=headers, timeout=30)


@pytest.mark.parametrize("injected", [
    {"x-amz-meta-owner": "mallory"},
    {"x-amz-tagging": "public=yes"},
    {"x-amz-copy-source": "bkt2/secret.txt"},
    {"X-AMZ-META-A": "1", "x-amz-tagging": "k=v"},
], ids=lambda h: "+".join(sorted(h)))
def test_replayed_request_with_injected_headers_is_refused(server, s3, incoming, injected):
    body = b"the signer's body"
    headers = captured_put(server, incoming, body)
    assert "x-amz-date" in {k.lower() for k in headers}
    r = send(server, incoming, {**headers, **injected}, body)
    assert_headers_not_signed(r, [h.lower() for h in injected])
    assert_unchanged(s3)
    # The request exactly as signed still goes through (replays are AWS's 15-minute window).
    assert send(server, incoming, headers, body).status_code == 200
    got = s3.get_object(Bucket="bkt1", Key=incoming)
    assert got["Body"].read() == body and got["Metadata"] == {}


def test_headers_the_signer_signed_are_accepted(server, s3, incoming):
    body = b"with metadata"
    headers = captured_put(server, incoming, body, {"x-amz-meta-owner": "alice",
                                                   "x-amz-tagging": "team=a"})
    r = send(server, incoming, headers, body)
    assert r.status_code == 200, r.text
    got = s3.get_object(Bucket="bkt1", Key=incoming)
    assert got["Metadata"] == {"owner": "alice"} and got["TagCount"] == 1


def test_a_second_copy_of_a_signed_header_breaks_the_signature(server, s3, incoming):
    """The signature covers every instance of a header (joined by ','), not only the first one
    the server happens to read."""
    body = b"one owner"
    headers = captured_put(server, incoming, body, {"x-amz-meta-owner": "alice"})
    raw = build_request("PUT", f"/bkt1/{incoming}", headers, body)
    head, _, rest = raw.partition(b"\r\n\r\n")
    doubled = head + b"\r\nx-amz-meta-owner: mallory\r\n\r\n" + rest
    r = raw_exchange(server.port, doubled)
    assert r.status == 403 and r.code == "SignatureDoesNotMatch", r
    assert_unchanged(s3)


def test_unsigned_header_and_bad_signature_is_signature_error(server, s3, incoming):
    """Only a request that proves its signer hears which headers were not signed."""
    body = b"x"
    headers = captured_put(server, incoming, body)
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    r = send(server, incoming, {**headers, "x-amz-meta-owner": "mallory"}, body)
    err = assert_s3_error(r, "SignatureDoesNotMatch", 403)
    assert "HeadersNotSigned" not in err
    assert_unchanged(s3)


def test_boto3_and_awscli_sign_what_they_send(s3, buckets):
    """The SDK's own requests with every kind of x-amz-* header go through."""
    s3.put_object(Bucket="bkt1", Key="sdk.bin", Body=b"sdk", Metadata={"m": "1"}, Tagging="t=1",
                  ChecksumAlgorithm="SHA256", StorageClass="STANDARD")
    s3.copy_object(Bucket="bkt1", Key="sdk-copy.bin", CopySource={"Bucket": "bkt2", "Key": "secret.txt"},
                   MetadataDirective="REPLACE", Metadata={"n": "2"}, TaggingDirective="REPLACE",
                   Tagging="u=2")
    got = s3.get_object(Bucket="bkt1", Key="sdk-copy.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == SECRET and got["Metadata"] == {"n": "2"}


# ---- anonymous requests ----

@pytest.fixture()
def public_bucket(s3, buckets):
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bkt1/public/*"}]}
    s3.put_object(Bucket="bkt1", Key="public/a.txt", Body=b"public a")
    s3.put_bucket_policy(Bucket="bkt1", Policy=json.dumps(policy))
    yield "bkt1"
    s3.delete_bucket_policy(Bucket="bkt1")


def test_anonymous_read_with_amz_headers(server, public_bucket):
    """Nothing is signed, so nothing is refused as unsigned: the read is what the policy allows."""
    r = requests.get(f"{server.endpoint}/bkt1/public/a.txt", timeout=30,
                     headers={"x-amz-checksum-mode": "ENABLED", "x-amz-meta-x": "y"})
    assert r.status_code == 200 and r.content == b"public a"
    r = requests.get(f"{server.endpoint}/bkt1/incoming-nope", timeout=30,
                     headers={"x-amz-meta-x": "y"})
    err = assert_s3_error(r, "AccessDenied", 403)
    assert "HeadersNotSigned" not in err


def test_anonymous_copy_is_refused_by_access(server, s3, public_bucket, incoming):
    """An x-amz-copy-source makes an anonymous PUT a CopyObject, which a public read does not
    allow, from a public source or a private one."""
    for source in ("bkt1/public/a.txt", "bkt2/secret.txt"):
        for target in ("public/copy.txt", incoming):
            r = requests.put(f"{server.endpoint}/bkt1/{target}", timeout=30,
                             headers={"x-amz-copy-source": source})
            err = assert_s3_error(r, "AccessDenied", 403)
            assert "HeadersNotSigned" not in err
    with pytest.raises(ClientError):
        s3.head_object(Bucket="bkt1", Key="public/copy.txt")
    assert_unchanged(s3)


def test_refusals_are_logged_without_secrets(server, s3, incoming):
    url = presigned_put("cli", server, s3, incoming)
    r = requests.put(url, headers={"x-amz-meta-probe": "1"}, timeout=30)
    assert r.status_code == 403
    rid = r.headers["x-amz-request-id"]
    lines = [line for line in server.log().splitlines() if rid in line]
    assert any("headers not signed" in line and "x-amz-meta-probe" in line for line in lines), lines
    assert SECRET_KEY not in server.log()
