"""Every row of the one table from coffer's error codes to S3 errors (src/s3/error.c), driven
through the real server: the same store code becomes NoSuchBucket, NoSuchKey, NoSuchUpload,
NoSuchBucketPolicy or NoSuchCORSConfiguration depending on what the request looked up, with the
status AWS sends. And abuse of each lookup (a refused write) leaves the previous state intact."""
import json

import pytest
import requests

from helpers_clients import assert_s3_error, signed_request

BUCKET = "table"


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="obj", Body=b"kept")
    return BUCKET


def send(server, method, path, **kw):
    return signed_request(server.endpoint, method, path, **kw)


@pytest.mark.parametrize("method,path,query,code,status", [
    ("GET", "/no-such-bucket-x", "", "NoSuchBucket", 404),
    ("GET", "/no-such-bucket-x/k", "", "NoSuchBucket", 404),
    ("PUT", "/no-such-bucket-x/k", "", "NoSuchBucket", 404),
    ("DELETE", "/no-such-bucket-x", "", "NoSuchBucket", 404),
    ("GET", f"/{BUCKET}/missing", "", "NoSuchKey", 404),
    ("GET", f"/{BUCKET}/missing", "tagging", "NoSuchKey", 404),
    ("GET", f"/{BUCKET}/obj", "uploadId=0123456789abcdef0123456789abcdef", "NoSuchUpload", 404),
    ("DELETE", f"/{BUCKET}/obj", "uploadId=0123456789abcdef0123456789abcdef", "NoSuchUpload", 404),
    ("PUT", f"/{BUCKET}/obj", "partNumber=1&uploadId=0123456789abcdef0123456789abcdef", "NoSuchUpload",
     404),
    ("GET", f"/{BUCKET}", "policy", "NoSuchBucketPolicy", 404),
    ("GET", f"/{BUCKET}", "cors", "NoSuchCORSConfiguration", 404),
    ("PUT", f"/{BUCKET}", "", "BucketAlreadyOwnedByYou", 409),
    ("DELETE", f"/{BUCKET}", "", "BucketNotEmpty", 409),
])
def test_code_and_subject_give_the_s3_error(server, bucket, method, path, query, code, status):
    resp = send(server, method, path, query=query)
    assert_s3_error(resp, code, status)


def test_not_found_key_in_missing_bucket_is_no_such_bucket_with_tagging(server, bucket):
    """The store's NOTFOUND does not say what is missing; the handler asks, and the table answers
    for the bucket."""
    assert_s3_error(send(server, "GET", "/no-such-bucket-x/k", query="tagging"), "NoSuchBucket", 404)


def test_unknown_access_key_is_invalid_access_key_id(server, bucket):
    resp = send(server, "GET", f"/{bucket}/obj", access_key="AKNOSUCHKEY000000000", secret_key="x" * 40)
    assert_s3_error(resp, "InvalidAccessKeyId", 403)


def test_malformed_policy_document_keeps_no_policy(server, bucket):
    resp = send(server, "PUT", f"/{bucket}", query="policy", body=b"{not json",
                headers={"Content-Type": "application/json"})
    assert_s3_error(resp, "MalformedPolicy", 400)
    assert_s3_error(send(server, "GET", f"/{bucket}", query="policy"), "NoSuchBucketPolicy", 404)


def test_malformed_cors_document_keeps_no_configuration(server, bucket):
    resp = send(server, "PUT", f"/{bucket}", query="cors", body=b"<CORSConfiguration><CORSRule>")
    assert_s3_error(resp, "MalformedXML", 400)
    assert_s3_error(send(server, "GET", f"/{bucket}", query="cors"), "NoSuchCORSConfiguration", 404)


def test_cors_rule_beyond_s3_limits_is_invalid_request(server, bucket):
    body = ("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
            "<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>").encode()
    assert_s3_error(send(server, "PUT", f"/{bucket}", query="cors", body=body), "InvalidRequest", 400)
    assert_s3_error(send(server, "GET", f"/{bucket}", query="cors"), "NoSuchCORSConfiguration", 404)


def test_preflight_to_bucket_without_cors_is_access_forbidden(server, bucket):
    resp = requests.options(f"{server.endpoint}/{bucket}/obj",
                            headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"})
    assert_s3_error(resp, "AccessForbidden", 403)


def test_admin_key_errors(server, bucket):
    resp = send(server, "DELETE", "/_admin/v1/keys/AKNOSUCHKEY000000000")
    assert_s3_error(resp, "InvalidAccessKeyId", 403)
    body = json.dumps({"policy": "readonly", "access_key": "AKDUPLICATE000000000"}).encode()
    first = send(server, "POST", "/_admin/v1/keys", body=body, headers={"Content-Type": "application/json"})
    assert first.status_code == 200, first.text
    again = send(server, "POST", "/_admin/v1/keys", body=body, headers={"Content-Type": "application/json"})
    assert_s3_error(again, "InvalidArgument", 400)
    assert "AKDUPLICATE000000000" in again.text


def test_refused_writes_leave_the_object(server, bucket, s3):
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"kept"
