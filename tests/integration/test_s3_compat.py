"""Details of the S3 API that real clients look at, checked against what AWS documents: request
integrity on XML bodies, metadata and tag edge cases, response headers, listings, conditional
and ranged reads, and the error document (docs/S3-COMPAT.md)."""
import base64
import datetime
import hashlib
import json
import os
import subprocess
import xml.etree.ElementTree as ET
import zlib
from urllib.parse import quote

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, ROOT, SECRET_KEY
from helpers_clients import assert_s3_error, parse_error, signed_request
from helpers_http import build_request, raw_exchange, sign_headers


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


def test_delete_objects_echoes_version_ids(s3, bucket, victims):
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "victim-1", "VersionId": "null"}, {"Key": "victim-2", "VersionId": "3HL4kqtJlcpXroDTDmJ"}]})
    assert res["Deleted"] == [{"Key": "victim-1", "VersionId": "null"}]
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in res["Errors"]] == [
        ("victim-2", "3HL4kqtJlcpXroDTDmJ", "NoSuchVersion")]
    assert keys(s3, bucket).count("victim-2") == 1 and "victim-1" not in keys(s3, bucket)


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


@pytest.mark.parametrize("alg", ["crc32", "sha256"])
def test_put_object_tagging_checksum(server, s3, bucket, alg):
    # The AWS SDK for JavaScript v3 sends x-amz-checksum-crc32 on PutObjectTagging by default.
    s3.put_object(Bucket=bucket, Key="tagged-ck", Body=b"x", Tagging="keep=me")
    body = b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/tagged-ck", query="tagging=", body=body,
                          headers={f"x-amz-checksum-{alg}": CHECKSUMS[alg](b"other")})
    assert_s3_error(resp, "BadDigest", 400)
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged-ck")["TagSet"] == [{"Key": "keep", "Value": "me"}]
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/tagged-ck", query="tagging=", body=body,
                          headers={f"x-amz-checksum-{alg}": CHECKSUMS[alg](body)})
    assert resp.status_code == 200, resp.text
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged-ck")["TagSet"] == [{"Key": "k", "Value": "v"}]


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


# --- metadata and stored headers --------------------------------------------------------------

def test_empty_metadata_value_is_stored_and_returned(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="meta-empty", Body=b"x", Metadata={"Empty": "", "Full": "v"})
    for r in (s3.head_object(Bucket=bucket, Key="meta-empty"), s3.get_object(Bucket=bucket, Key="meta-empty")):
        # Names come back lower-case, as AWS stores them.
        assert r["Metadata"] == {"empty": "", "full": "v"}
    resp = signed_request(server.endpoint, "GET", f"/{bucket}/meta-empty")
    assert resp.headers["x-amz-meta-empty"] == ""
    # A copy keeps it, and a multipart upload stores it too.
    s3.copy_object(Bucket=bucket, Key="meta-empty-copy", CopySource=f"{bucket}/meta-empty")
    assert s3.head_object(Bucket=bucket, Key="meta-empty-copy")["Metadata"] == {"empty": "", "full": "v"}
    up = s3.create_multipart_upload(Bucket=bucket, Key="meta-empty-mp", Metadata={"e": ""})["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="meta-empty-mp", UploadId=up, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="meta-empty-mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.head_object(Bucket=bucket, Key="meta-empty-mp")["Metadata"] == {"e": ""}


@pytest.mark.parametrize("signed", ["1,2", "1"])
def test_repeated_metadata_field_is_one_joined_value(server, s3, bucket, signed):
    """A field sent twice is one field with the values joined by commas (RFC 9110 §5.3; SigV4
    signs it so, S3 stores it so). Sent as two lines, whatever was signed: stored joined, or
    refused by authentication; never stored as one of its parts or as two fields."""
    host = f"127.0.0.1:{server.port}"
    path = f"/{bucket}/meta-repeated"
    hdrs = sign_headers("PUT", host, path, {"x-amz-meta-a": signed, "Content-Length": "1"}, body=b"x")
    raw = build_request("PUT", path, hdrs, b"x").replace(f"x-amz-meta-a: {signed}\r\n".encode(),
                                                           b"x-amz-meta-a: 1\r\nx-amz-meta-a: 2\r\n")
    resp = raw_exchange(server.port, raw)
    assert resp.status in (200, 403), resp
    if resp.status == 200:
        got = signed_request(server.endpoint, "GET", path)
        assert got.headers["x-amz-meta-a"] == "1,2"
        assert s3.head_object(Bucket=bucket, Key="meta-repeated")["Metadata"] == {"a": "1,2"}


def test_stored_headers_round_trip(s3, bucket):
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    s3.put_object(Bucket=bucket, Key="stored-headers", Body=b"x", ContentType="text/css",
                  ContentEncoding="gzip", ContentDisposition='inline; filename="a b.css"',
                  ContentLanguage="de-CH", CacheControl="public, max-age=31536000", Expires=expires)
    for r in (s3.head_object(Bucket=bucket, Key="stored-headers"), s3.get_object(Bucket=bucket, Key="stored-headers")):
        assert r["ContentType"] == "text/css"
        assert r["ContentEncoding"] == "gzip"
        assert r["ContentDisposition"] == 'inline; filename="a b.css"'
        assert r["ContentLanguage"] == "de-CH"
        assert r["CacheControl"] == "public, max-age=31536000"
        assert r["Expires"] == expires


@pytest.mark.parametrize("header,tags", [
    ("a=&b=2", [("a", ""), ("b", "2")]),
    ("a", [("a", "")]),
    ("a&b=", [("a", ""), ("b", "")]),
    ("k%3D=v%26&sp=two%20words", [("k=", "v&"), ("sp", "two words")]),
    ("plus=a+b", [("plus", "a b")]),
])
def test_tagging_header_with_empty_values(s3, bucket, header, tags):
    s3.put_object(Bucket=bucket, Key="tags-empty", Body=b"x", Tagging=header)
    got = s3.get_object_tagging(Bucket=bucket, Key="tags-empty")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in got) == sorted(tags)
    assert s3.head_object(Bucket=bucket, Key="tags-empty")["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-tagging-count"] == str(len(tags))


def test_tag_keys_prefixed_aws_are_reserved(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="tags-aws", Body=b"x", Tagging="mine=1")
    with pytest.raises(ClientError) as ei:
        s3.put_object_tagging(Bucket=bucket, Key="tags-aws",
                              Tagging={"TagSet": [{"Key": "aws:cloudformation", "Value": "x"}]})
    assert ei.value.response["Error"]["Code"] == "InvalidTag"
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/tags-aws", body=b"y",
                          headers={"x-amz-tagging": "AWS:x=1"})
    assert_s3_error(resp, "InvalidTag", 400)
    assert s3.get_object(Bucket=bucket, Key="tags-aws")["Body"].read() == b"x"
    assert s3.get_object_tagging(Bucket=bucket, Key="tags-aws")["TagSet"] == [{"Key": "mine", "Value": "1"}]


# --- response-* overrides need a signed request -----------------------------------------------

@pytest.fixture(scope="module")
def public_bucket(s3):
    s3.create_bucket(Bucket="compat-public")
    s3.put_bucket_policy(Bucket="compat-public", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": "arn:aws:s3:::compat-public/*"}]}))
    s3.put_object(Bucket="compat-public", Key="page.html", Body=b"<p>hi</p>", ContentType="text/html")
    return "compat-public"


def test_response_overrides_refused_for_anonymous_requests(server, public_bucket):
    url = f"{server.endpoint}/{public_bucket}/page.html"
    assert requests.get(url, timeout=10).headers["Content-Type"] == "text/html"
    for param in ("response-content-type=text/plain", "response-content-disposition=attachment",
                  "response-cache-control=no-cache", "response-expires=0",
                  "response-content-language=en", "response-content-encoding=gzip"):
        resp = requests.get(f"{url}?{param}", timeout=10)
        assert_s3_error(resp, "InvalidRequest", 400)
        assert b"anonymous" in resp.content


def test_response_overrides_with_presigned_url(server, s3, public_bucket):
    url = s3.generate_presigned_url("get_object", Params={
        "Bucket": public_bucket, "Key": "page.html", "ResponseContentType": "text/plain",
        "ResponseContentDisposition": "attachment; filename=page.txt"}, ExpiresIn=60)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "text/plain"
    assert resp.headers["Content-Disposition"] == "attachment; filename=page.txt"
    assert resp.content == b"<p>hi</p>"


def test_anonymous_missing_key_is_403_without_list_right(server, s3, public_bucket):
    # AWS: without s3:ListBucket a missing key is AccessDenied, so keys cannot be probed for.
    url = f"{server.endpoint}/{public_bucket}/no-such-page.html"
    assert_s3_error(requests.get(url, timeout=10), "AccessDenied", 403)
    assert requests.head(url, timeout=10).status_code == 403
    s3.create_bucket(Bucket="compat-listable")
    s3.put_bucket_policy(Bucket="compat-listable", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": ["arn:aws:s3:::compat-listable/*", "arn:aws:s3:::compat-listable"]}]}))
    url = f"{server.endpoint}/compat-listable/no-such-page.html"
    assert_s3_error(requests.get(url, timeout=10), "NoSuchKey", 404)
    assert requests.head(url, timeout=10).status_code == 404
    # Signed callers who may read may list: 404 as before.
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=public_bucket, Key="no-such-page.html")
    assert ei.value.response["Error"]["Code"] == "NoSuchKey"


# --- versionId: every object is its "null" version --------------------------------------------

@pytest.mark.parametrize("method,query", [
    ("GET", "versionId=3HL4kqtJlcpXroDTDmJ"), ("HEAD", "versionId=3HL4kqtJlcpXroDTDmJ"),
    ("DELETE", "versionId=3HL4kqtJlcpXroDTDmJ"), ("GET", "tagging=&versionId=abc"),
    ("DELETE", "tagging=&versionId=abc"),
])
def test_other_version_ids_name_nothing(server, s3, bucket, method, query):
    s3.put_object(Bucket=bucket, Key="versioned", Body=b"current", Tagging="t=1")
    resp = signed_request(server.endpoint, method, f"/{bucket}/versioned", query=query)
    assert_s3_error(resp, "NoSuchVersion", 404)
    if method != "HEAD":
        err = parse_error(resp.content)
        assert err["Key"] == "versioned" and err["VersionId"] == query.rsplit("=", 1)[1]
    # Above all, a DELETE of another version must not delete the current one.
    assert s3.get_object(Bucket=bucket, Key="versioned")["Body"].read() == b"current"
    assert s3.get_object_tagging(Bucket=bucket, Key="versioned")["TagSet"] == [{"Key": "t", "Value": "1"}]


def test_null_version_id_is_the_object(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="null-version", Body=b"body")
    assert s3.get_object(Bucket=bucket, Key="null-version", VersionId="null")["Body"].read() == b"body"
    resp = signed_request(server.endpoint, "GET", f"/{bucket}/null-version", query="versionId=")
    assert assert_s3_error(resp, "InvalidArgument", 400)["ArgumentName"] == "versionId"
    s3.delete_object(Bucket=bucket, Key="null-version", VersionId="null")
    assert "null-version" not in keys(s3, bucket)


# --- the extra elements of error documents ----------------------------------------------------

def test_error_elements_for_missing_key_and_bucket(server, s3, bucket):
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="dir/missing key")
    assert ei.value.response["Error"]["Key"] == "dir/missing key"
    assert ei.value.response["Error"]["BucketName"] == bucket
    with pytest.raises(ClientError) as ei:
        s3.list_objects_v2(Bucket="compat-no-such-bucket")
    assert ei.value.response["Error"]["BucketName"] == "compat-no-such-bucket"
    s3.create_bucket(Bucket="compat-full")
    s3.put_object(Bucket="compat-full", Key="k", Body=b"x")
    for call, code in ((lambda: s3.create_bucket(Bucket="compat-full"), "BucketAlreadyOwnedByYou"),
                       (lambda: s3.delete_bucket(Bucket="compat-full"), "BucketNotEmpty"),
                       (lambda: s3.get_bucket_policy(Bucket="compat-full"), "NoSuchBucketPolicy")):
        with pytest.raises(ClientError) as ei:
            call()
        assert ei.value.response["Error"]["Code"] == code
        assert ei.value.response["Error"]["BucketName"] == "compat-full"


def test_error_elements_for_range_condition_method_upload(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="ten", Body=b"0123456789")
    resp = signed_request(server.endpoint, "GET", f"/{bucket}/ten", headers={"Range": "bytes=10-20"})
    err = assert_s3_error(resp, "InvalidRange", 416)
    assert err["RangeRequested"] == "bytes=10-20" and err["ActualObjectSize"] == "10"
    assert resp.headers["Content-Range"] == "bytes */10"
    for header, cond in (({"If-Match": '"0000"'}, "If-Match"),
                         ({"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, "If-Unmodified-Since")):
        resp = signed_request(server.endpoint, "GET", f"/{bucket}/ten", headers=header)
        assert assert_s3_error(resp, "PreconditionFailed", 412)["Condition"] == cond
    resp = signed_request(server.endpoint, "POST", f"/{bucket}/ten")
    err = assert_s3_error(resp, "MethodNotAllowed", 405)
    assert err["Method"] == "POST" and err["ResourceType"] == "OBJECT"
    with pytest.raises(ClientError) as ei:
        s3.list_parts(Bucket=bucket, Key="ten", UploadId="no-such-upload")
    assert ei.value.response["Error"]["Code"] == "NoSuchUpload"
    assert ei.value.response["Error"]["UploadId"] == "no-such-upload"
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/" + "k" * 1025, body=b"x")
    err = assert_s3_error(resp, "KeyTooLongError", 400)
    assert err["Size"] == "1025" and err["MaxSizeAllowed"] == "1024"


@pytest.mark.parametrize("query,name", [
    ("list-type=2&max-keys=abc", "max-keys"), ("max-keys=-1", "max-keys"),
    ("list-type=2&encoding-type=base64", "encoding-type"),
    ("list-type=2&continuation-token=%21%21", "continuation-token"),
])
def test_invalid_listing_arguments_are_named(server, bucket, query, name):
    resp = signed_request(server.endpoint, "GET", f"/{bucket}", query=query)
    err = assert_s3_error(resp, "InvalidArgument", 400)
    assert err["ArgumentName"] == name and "ArgumentValue" in err


def test_conditional_write_names_its_condition(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cond-write", Body=b"first")
    for headers, cond in (({"If-None-Match": "*"}, "If-None-Match"), ({"If-Match": '"0000"'}, "If-Match")):
        resp = signed_request(server.endpoint, "PUT", f"/{bucket}/cond-write", body=b"second", headers=headers)
        assert assert_s3_error(resp, "PreconditionFailed", 412)["Condition"] == cond
    assert s3.get_object(Bucket=bucket, Key="cond-write")["Body"].read() == b"first"


def test_error_key_with_control_characters_stays_parseable(server, s3, bucket):
    resp = signed_request(server.endpoint, "GET", f"/{bucket}/bell%07key")
    err = assert_s3_error(resp, "NoSuchKey", 404)
    assert err["Key"] == "bell%07key"


# --- ListBuckets paging (max-buckets, continuation-token, prefix, bucket-region) --------------

def test_list_buckets_paging(server, s3):
    names = [f"compat-page-{i}" for i in range(5)]
    for n in names:
        s3.create_bucket(Bucket=n)
    seen, token = [], None
    while True:
        query = "max-buckets=2&prefix=compat-page-" + (f"&continuation-token={token}" if token else "")
        resp = signed_request(server.endpoint, "GET", "/", query=query)
        assert resp.status_code == 200, resp.text
        ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
        root = ET.fromstring(resp.content)
        page = [b.find("s3:Name", ns).text for b in root.iterfind("s3:Buckets/s3:Bucket", ns)]
        assert len(page) <= 2
        assert all(b.find("s3:BucketRegion", ns).text == "us-east-1"
                   for b in root.iterfind("s3:Buckets/s3:Bucket", ns))
        assert root.find("s3:Prefix", ns).text == "compat-page-"
        seen += page
        tok = root.find("s3:ContinuationToken", ns)
        if tok is None:
            break
        token = quote(tok.text, safe="")
    assert seen == names
    # Without parameters: every bucket, as before.
    assert set(names) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
    resp = signed_request(server.endpoint, "GET", "/", query="bucket-region=eu-west-1")
    assert resp.status_code == 200 and b"<Bucket>" not in resp.content
    for bad in ("0", "10001", "x", ""):
        resp = signed_request(server.endpoint, "GET", "/", query=f"max-buckets={bad}")
        err = assert_s3_error(resp, "InvalidArgument", 400)
        assert err["ArgumentName"] == "max-buckets"


# --- CreateBucket: the location constraint must be this region --------------------------------

def test_create_bucket_in_another_region_is_refused(s3):
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="compat-elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert ei.value.response["Error"]["Code"] == "IllegalLocationConstraintException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "compat-elsewhere" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # This region, named or not, is accepted (AWS refuses a named us-east-1; clients send it).
    s3.create_bucket(Bucket="compat-here", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    s3.create_bucket(Bucket="compat-here-2")


# --- the same details through the AWS SDK for JavaScript v3 -----------------------------------

JS_CHECKS = ["ListBuckets.paginated", "Metadata.emptyValue", "GetObject.NoSuchKey", "GetObject.InvalidRange",
             "GetObject.NotModified", "GetObject.responseOverrides", "GetObject.versionId"]


@pytest.fixture(scope="module")
def js_report(server, tmp_path_factory):
    js_dir = os.path.join(ROOT, "tests", "js")
    assert os.path.isdir(os.path.join(js_dir, "node_modules", "@aws-sdk", "client-s3")), \
        "tests/js/node_modules is missing: run scripts/install-deps.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(tmp_path_factory.mktemp("jshome")), "COFFER_ENDPOINT": server.endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_EC2_METADATA_DISABLED": "true"})
    proc = subprocess.run(["/usr/bin/node", os.path.join(js_dir, "compat_test.mjs")], capture_output=True,
                          text=True, timeout=120, env=env, cwd=js_dir)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"compat_test.mjs printed no JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-2000:]}")


@pytest.mark.parametrize("name", JS_CHECKS)
def test_sdk_js(js_report, name):
    assert name in js_report, js_report
    assert js_report[name]["ok"], js_report[name]


# --- CompleteMultipartUpload: x-amz-checksum-* is the object's, not the part list's -----------

@pytest.mark.parametrize("kind", ["FULL_OBJECT", "COMPOSITE"])
def test_complete_multipart_with_object_checksum_header(server, s3, bucket, kind):
    key = f"mp-object-checksum-{kind}"
    resp = signed_request(server.endpoint, "POST", f"/{bucket}/{key}", query="uploads=",
                          headers={"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": kind})
    assert resp.status_code == 200, resp.text
    up = ET.fromstring(resp.content).find("{http://s3.amazonaws.com/doc/2006-03-01/}UploadId").text
    part = b"the only part"
    part_ck = CHECKSUMS["crc32"](part)
    resp = signed_request(server.endpoint, "PUT", f"/{bucket}/{key}", query=f"partNumber=1&uploadId={up}",
                          body=part, headers={"x-amz-checksum-crc32": part_ck})
    assert resp.status_code == 200, resp.text
    body = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{resp.headers['ETag']}</ETag>"
            f"<ChecksumCRC32>{part_ck}</ChecksumCRC32></Part></CompleteMultipartUpload>").encode()
    # For one part, the full-object CRC is the part's; the composite one is the CRC of it, "-1".
    stated = part_ck if kind == "FULL_OBJECT" else \
        b64(zlib.crc32(base64.b64decode(part_ck)).to_bytes(4, "big")) + "-1"
    if kind == "FULL_OBJECT":
        resp = signed_request(server.endpoint, "POST", f"/{bucket}/{key}", query=f"uploadId={up}", body=body,
                              headers={"x-amz-checksum-crc32": CHECKSUMS["crc32"](b"other"),
                                       "x-amz-checksum-type": kind})
        assert_s3_error(resp, "BadDigest", 400)
    resp = signed_request(server.endpoint, "POST", f"/{bucket}/{key}", query=f"uploadId={up}", body=body,
                          headers={"x-amz-checksum-crc32": stated, "x-amz-checksum-type": kind})
    assert resp.status_code == 200, resp.text
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == stated
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == part


# --- encryption the client expects but the server would not apply -----------------------------

SSE_C_KEY = b"k" * 32


@pytest.mark.parametrize("extra", [
    {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY},
    {"ServerSideEncryption": "aws:kms"},
    {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn:aws:kms:us-east-1:1:key/x"},
])
def test_sse_c_and_kms_are_refused_not_ignored(s3, bucket, extra):
    s3.put_object(Bucket=bucket, Key="sse", Body=b"before")
    for call in (lambda: s3.put_object(Bucket=bucket, Key="sse", Body=b"secret", **extra),
                 lambda: s3.create_multipart_upload(Bucket=bucket, Key="sse", **extra),
                 lambda: s3.copy_object(Bucket=bucket, Key="sse", CopySource=f"{bucket}/sse",
                                        MetadataDirective="REPLACE", **extra)):
        with pytest.raises(ClientError) as ei:
            call()
        assert ei.value.response["Error"]["Code"] == "NotImplemented"
        assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert s3.get_object(Bucket=bucket, Key="sse")["Body"].read() == b"before"
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix="sse").get("Uploads")


def test_sse_s3_is_accepted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="sse-s3", Body=b"plain", ServerSideEncryption="AES256")
    assert s3.get_object(Bucket=bucket, Key="sse-s3")["Body"].read() == b"plain"


def test_create_bucket_with_object_lock_is_refused(s3):
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="compat-locked", ObjectLockEnabledForBucket=True)
    assert ei.value.response["Error"]["Code"] == "NotImplemented"
    assert "compat-locked" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.create_bucket(Bucket="compat-unlocked", ObjectLockEnabledForBucket=False)


def test_region_of_a_server_outside_us_east_1(make_server):
    srv = make_server(["--region", "eu-central-1"]).start()
    c = boto3.client("s3", endpoint_url=srv.endpoint, region_name="eu-central-1",
                     aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                     config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                   retries={"max_attempts": 1}))
    c.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    c.create_bucket(Bucket="eu-bucket-2")
    with pytest.raises(ClientError) as ei:
        c.create_bucket(Bucket="us-bucket", CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert ei.value.response["Error"]["Code"] == "IllegalLocationConstraintException"
    head = c.head_bucket(Bucket="eu-bucket")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-central-1"
    assert c.get_bucket_location(Bucket="eu-bucket")["LocationConstraint"] == "eu-central-1"
    assert {b["Name"] for b in c.list_buckets()["Buckets"]} == {"eu-bucket", "eu-bucket-2"}
    r = signed_request(srv.endpoint, "GET", "/", query="bucket-region=eu-central-1", region="eu-central-1")
    assert r.status_code == 200 and r.content.count(b"<BucketRegion>eu-central-1</BucketRegion>") == 2


@pytest.mark.parametrize("extra", [
    {"ObjectLockMode": "COMPLIANCE",
     "ObjectLockRetainUntilDate": datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc)},
    {"ObjectLockLegalHoldStatus": "ON"},
])
def test_object_lock_on_a_write_is_refused(s3, bucket, extra):
    # Every bucket here is without Object Lock: AWS refuses these, and accepting them would
    # promise an undeletable object.
    s3.put_object(Bucket=bucket, Key="locked", Body=b"before")
    for call in (lambda: s3.put_object(Bucket=bucket, Key="locked", Body=b"after", **extra),
                 lambda: s3.create_multipart_upload(Bucket=bucket, Key="locked", **extra)):
        with pytest.raises(ClientError) as ei:
            call()
        assert ei.value.response["Error"]["Code"] == "InvalidRequest"
        assert "Object Lock" in ei.value.response["Error"]["Message"]
    assert s3.get_object(Bucket=bucket, Key="locked")["Body"].read() == b"before"
