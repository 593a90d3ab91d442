"""Additional checksums (x-amz-checksum-*): verified on upload, stored, returned on request."""
import base64
import hashlib
import os
import zlib

import pytest
from botocore.exceptions import ClientError

from helpers_clients import signed_request

MiB = 1 << 20


def b64(raw):
    return base64.b64encode(raw).decode()


def crc32(data):
    return b64(zlib.crc32(data).to_bytes(4, "big"))


LOCAL = {
    "CRC32": crc32,
    "SHA1": lambda d: b64(hashlib.sha1(d).digest()),
    "SHA256": lambda d: b64(hashlib.sha256(d).digest()),
}


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="sums")
    return "sums"


@pytest.mark.parametrize("alg", sorted(LOCAL))
def test_put_checksum_is_verified_stored_and_returned(s3, bucket, alg):
    body = os.urandom(100_000)
    res = s3.put_object(Bucket=bucket, Key=f"obj-{alg}", Body=body, ChecksumAlgorithm=alg)
    assert res[f"Checksum{alg}"] == LOCAL[alg](body)
    head = s3.head_object(Bucket=bucket, Key=f"obj-{alg}", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == LOCAL[alg](body)
    got = s3.get_object(Bucket=bucket, Key=f"obj-{alg}", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got[f"Checksum{alg}"] == LOCAL[alg](body)
    # Not asked for, not sent; nor for a range, which the checksum does not describe.
    assert f"Checksum{alg}" not in s3.head_object(Bucket=bucket, Key=f"obj-{alg}")
    ranged = s3.get_object(Bucket=bucket, Key=f"obj-{alg}", Range="bytes=0-9", ChecksumMode="ENABLED")
    assert f"Checksum{alg}" not in ranged


def test_wrong_checksum_is_bad_digest_and_changes_nothing(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="guarded", Body=b"original")
    body = b"replacement"
    for header, value in [("x-amz-checksum-crc32", crc32(b"something else")),
                          ("x-amz-checksum-sha256", LOCAL["SHA256"](b"x"))]:
        r = signed_request(server.endpoint, "PUT", f"/{bucket}/guarded", body=body, headers={header: value})
        assert r.status_code == 400 and b"<Code>BadDigest</Code>" in r.content, r.content
    r = signed_request(server.endpoint, "PUT", f"/{bucket}/guarded", body=body,
                       headers={"x-amz-checksum-crc32": "not base64!"})
    assert r.status_code == 400 and b"<Code>InvalidRequest</Code>" in r.content
    r = signed_request(server.endpoint, "PUT", f"/{bucket}/guarded", body=body,
                       headers={"x-amz-checksum-crc32": crc32(body), "x-amz-checksum-sha1": LOCAL["SHA1"](body)})
    assert r.status_code == 400 and b"<Code>InvalidRequest</Code>" in r.content
    assert s3.get_object(Bucket=bucket, Key="guarded")["Body"].read() == b"original"


def test_multipart_composite_checksum(s3, bucket):
    parts = [os.urandom(5 * MiB), os.urandom(1000)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA256")["UploadId"]
    done = []
    for i, p in enumerate(parts, 1):
        res = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=i, Body=p, ChecksumAlgorithm="SHA256")
        assert res["ChecksumSHA256"] == LOCAL["SHA256"](p)
        done.append({"PartNumber": i, "ETag": res["ETag"], "ChecksumSHA256": res["ChecksumSHA256"]})
    listed = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [p["ChecksumSHA256"] for p in listed] == [d["ChecksumSHA256"] for d in done]
    res = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": done})
    composite = b64(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()) + "-2"
    assert res["ChecksumSHA256"] == composite
    head = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite


def test_multipart_part_checksum_mismatch_in_completion(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp2", ChecksumAlgorithm="CRC32")["UploadId"]
    res = s3.upload_part(Bucket=bucket, Key="mp2", UploadId=uid, PartNumber=1, Body=b"tail only",
                         ChecksumAlgorithm="CRC32")
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp2", UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": res["ETag"], "ChecksumCRC32": crc32(b"other")}]})
    assert e.value.response["Error"]["Code"] == "InvalidPart"
    res2 = s3.complete_multipart_upload(Bucket=bucket, Key="mp2", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": res["ETag"], "ChecksumCRC32": res["ChecksumCRC32"]}]})
    assert res2["ChecksumCRC32"] == b64(zlib.crc32(base64.b64decode(crc32(b"tail only"))).to_bytes(4, "big")) + "-1"
