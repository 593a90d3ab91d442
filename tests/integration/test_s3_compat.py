"""Details of the S3 API that real clients look at, checked against what AWS documents: request
integrity on XML bodies, metadata and tag edge cases, response headers, listings, conditional
and ranged reads, and the error document (docs/S3-COMPAT.md)."""
import base64
import datetime
import hashlib
import zlib

import pytest
from botocore.exceptions import ClientError

from helpers_clients import assert_s3_error, parse_error, signed_request


def b64(raw):
    return base64.b64encode(raw).decode()


def _reflected_crc(width, poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    mask = (1 << width) - 1

    def crc(data):
        c = mask
        for byte in data:
            c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
        return (c ^ mask).to_bytes(width // 8, "big")
    return crc


_crc32c = _reflected_crc(32, 0x82F63B78)
_crc64nvme = _reflected_crc(64, 0x9A6C9329AC4BC9B5)
# The catalogue check values, so that a wrong local CRC cannot make a test pass.
assert _crc32c(b"123456789") == bytes.fromhex("e3069283")
assert _crc64nvme(b"123456789") == bytes.fromhex("ae8b14860a799888")

CHECKSUMS = {
    "crc32": lambda d: b64(zlib.crc32(d).to_bytes(4, "big")),
    "crc32c": lambda d: b64(_crc32c(d)),
    "crc64nvme": lambda d: b64(_crc64nvme(d)),
    "sha1": lambda d: b64(hashlib.sha1(d).digest()),
    "sha256": lambda d: b64(hashlib.sha256(d).digest()),
}


def content_md5(data):
    return b64(hashlib.md5(data).digest())


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="compat")
    return "compat"


# --- DeleteObjects: the integrity header is verified, not only required -----------------------

DELETE_BODY = b"<Delete><Object><Key>victim-1</Key></Object><Object><Key>victim-2</Key></Object></Delete>"


@pytest.fixture()
def victims(s3, bucket):
    for k in ("victim-1", "victim-2"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    yield ["victim-1", "victim-2"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "victim-1"}, {"Key": "victim-2"}]})


def post_delete(server, bucket, headers, body=DELETE_BODY):
    return signed_request(server.endpoint, "POST", f"/{bucket}", query="delete=", body=body, headers=headers)


def still_there(s3, bucket, victims):
    return all(k in keys(s3, bucket) for k in victims)


def test_delete_objects_wrong_content_md5_is_bad_digest(server, s3, bucket, victims):
    resp = post_delete(server, bucket, {"Content-MD5": content_md5(b"another body")})
    assert_s3_error(resp, "BadDigest", 400)
    assert still_there(s3, bucket, victims)


@pytest.mark.parametrize("value", ["!!notbase64", "AAAA", "", content_md5(b"x")[:-2]])
def test_delete_objects_malformed_content_md5_is_invalid_digest(server, s3, bucket, victims, value):
    resp = post_delete(server, bucket, {"Content-MD5": value})
    assert_s3_error(resp, "InvalidDigest", 400)
    assert still_there(s3, bucket, victims)


def test_delete_objects_right_content_md5_deletes(server, s3, bucket, victims):
    resp = post_delete(server, bucket, {"Content-MD5": content_md5(DELETE_BODY)})
    assert resp.status_code == 200, resp.text
    assert not any(k in keys(s3, bucket) for k in victims)


@pytest.mark.parametrize("alg", sorted(CHECKSUMS))
def test_delete_objects_checksum_is_verified(server, s3, bucket, victims, alg):
    header = f"x-amz-checksum-{alg}"
    resp = post_delete(server, bucket, {header: CHECKSUMS[alg](b"another body")})
    assert_s3_error(resp, "BadDigest", 400)
    assert still_there(s3, bucket, victims)
    resp = post_delete(server, bucket, {header: CHECKSUMS[alg](DELETE_BODY)})
    assert resp.status_code == 200, resp.text
    assert not any(k in keys(s3, bucket) for k in victims)


def test_delete_objects_needs_a_value_to_verify(server, s3, bucket, victims):
    # Naming an algorithm without sending its value verifies nothing (AWS: 400).
    for headers in ({}, {"x-amz-sdk-checksum-algorithm": "CRC32"}):
        resp = post_delete(server, bucket, headers)
        assert_s3_error(resp, "InvalidRequest", 400)
        assert still_there(s3, bucket, victims)


@pytest.mark.parametrize("alg", [None, "CRC32", "SHA256"])
def test_delete_objects_boto3(s3, bucket, victims, alg):
    # boto3 sends Content-MD5 by default and x-amz-checksum-* when asked for an algorithm.
    extra = {"ChecksumAlgorithm": alg} if alg else {}
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in victims]}, **extra)
    assert sorted(d["Key"] for d in res["Deleted"]) == victims
    assert not any(k in keys(s3, bucket) for k in victims)


# --- the other XML bodies: Content-MD5 verified when given ------------------------------------

def test_put_object_tagging_content_md5(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"x", Tagging="keep=me")
    body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    for value, code in ((content_md5(b"other"), "BadDigest"), ("!!notbase64", "InvalidDigest")):
        resp = signed_request(server.endpoint, "PUT", f"/{bucket}/tagged", query="tagging=", body=body,
                              headers={"Content-MD5": value})
        assert_s3_error(resp, code, 400)
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "keep", "Value": "me"}]
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/tagged", query="tagging=", body=body,
                          headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 200, resp.text
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "k", "Value": "v"}]


def test_put_bucket_policy_content_md5(server, s3):
    s3.create_bucket(Bucket="compat-policy")
    body = (b'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
            b'"Action":"s3:GetObject","Resource":"arn:aws:s3:::compat-policy/pub/*"}]}')
    resp = signed_request(server.endpoint, "PUT", "/compat-policy", query="policy=", body=body,
                          headers={"Content-MD5": content_md5(b"other")})
    assert_s3_error(resp, "BadDigest", 400)
    with pytest.raises(ClientError) as ei:
        s3.get_bucket_policy(Bucket="compat-policy")
    assert ei.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    resp = signed_request(server.endpoint, "PUT", "/compat-policy", query="policy=", body=body,
                          headers={"Content-MD5": content_md5(body)})
    assert resp.status_code in (200, 204), resp.text
    assert s3.get_bucket_policy(Bucket="compat-policy")["Policy"]


def test_create_bucket_content_md5(server, s3):
    body = b"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>"
    resp = signed_request(server.endpoint, "PUT", "/compat-md5-bucket", body=body,
                          headers={"Content-MD5": content_md5(b"other")})
    assert_s3_error(resp, "BadDigest", 400)
    assert "compat-md5-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_complete_multipart_content_md5(server, s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp-md5")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp-md5", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>"
            "</CompleteMultipartUpload>").encode()
    resp = signed_request(server.endpoint, "POST", f"/{bucket}/mp-md5", query=f"uploadId={up}", body=body,
                          headers={"Content-MD5": content_md5(b"other")})
    assert_s3_error(resp, "BadDigest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="mp-md5")
    # The upload is intact and completes with the right digest.
    resp = signed_request(server.endpoint, "POST", f"/{bucket}/mp-md5", query=f"uploadId={up}", body=body,
                          headers={"Content-MD5": content_md5(body)})
    assert resp.status_code == 200, resp.text
    assert s3.get_object(Bucket=bucket, Key="mp-md5")["Body"].read() == b"part"
