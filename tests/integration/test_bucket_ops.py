"""DeleteObjects, GetBucketVersioning and ListObjectVersions on an unversioned bucket (boto3)."""
import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="ops")
    return "ops"


def keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_delete_objects(s3, bucket):
    for k in ["a", "b", "c/d", "keep"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "c/d"}, {"Key": "never"}]})
    # Deleting a missing key succeeds, as in S3.
    assert sorted(d["Key"] for d in res["Deleted"]) == ["a", "c/d", "never"]
    assert "Errors" not in res
    assert keys(s3, bucket) == ["b", "keep"]
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}], "Quiet": True})
    assert "Deleted" not in res and "Errors" not in res
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep", "VersionId": "3HL4kqtJlcpXroDTDmJ"}]})
    assert res["Errors"][0]["Code"] == "NoSuchVersion"
    assert keys(s3, bucket) == ["keep"]
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert e.value.response["Error"]["Code"] == "MalformedXML"
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket="no-such-bucket", Delete={"Objects": [{"Key": "x"}]})
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"


def test_versioning_is_off_and_versions_list_current_objects(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    for k in ["v/1", "v/2", "v/sub/3"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    res = s3.list_object_versions(Bucket=bucket, Prefix="v/", Delimiter="/")
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in res["Versions"]] == [
        ("v/1", "null", True), ("v/2", "null", True)]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["v/sub/"]
    page = s3.list_object_versions(Bucket=bucket, Prefix="v/", MaxKeys=1)
    assert page["IsTruncated"] and [v["Key"] for v in page["Versions"]] == ["v/1"]
    rest = s3.list_object_versions(Bucket=bucket, Prefix="v/", KeyMarker=page["NextKeyMarker"])
    assert [v["Key"] for v in rest["Versions"]] == ["v/2", "v/sub/3"]
    assert s3.get_object(Bucket=bucket, Key="v/1", VersionId="null")["Body"].read() == b"x"


def test_virtual_host_style(make_server):
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from conftest import ACCESS_KEY, SECRET_KEY, s3_client

    srv = make_server(extra_args=["--domain", "s3.test"]).start()
    s3_client(srv.endpoint).create_bucket(Bucket="vhosted")

    def send(method, host_bucket, path, body=b""):
        url = f"http://{host_bucket}.s3.test:{srv.port}{path}"
        req = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        headers = dict(req.headers.items())
        headers["Host"] = f"{host_bucket}.s3.test:{srv.port}"  # what was signed; we dial 127.0.0.1
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()

    put = send("PUT", "vhosted", "/dir/a%20b.txt", b"virtual")
    assert put[0] == 200, put
    # The same object is reachable path style, and listed under its key.
    assert s3_client(srv.endpoint).get_object(Bucket="vhosted", Key="dir/a b.txt")["Body"].read() == b"virtual"
    status, body = send("GET", "vhosted", "/dir/a%20b.txt")
    assert (status, body) == (200, b"virtual")
    status, body = send("GET", "vhosted", "/?list-type=2")
    assert status == 200 and b"<Key>dir/a b.txt</Key>" in body
    status, body = send("GET", "nosuchbucket", "/x")
    assert status == 404 and b"NoSuchBucket" in body
    # In virtual-host style "/_admin/..." is a key of the Host's bucket, not coffer's admin API
    # (which is mounted at that path prefix).
    assert send("PUT", "vhosted", "/_admin/keys", b"not admin")[0] == 200
    assert send("GET", "vhosted", "/_admin/keys") == (200, b"not admin")


def test_conditional_writes(server, s3, bucket):
    from helpers_clients import signed_request

    def put(key, body, **headers):
        return signed_request(server.endpoint, "PUT", f"/{bucket}/{key}", body=body, headers=headers)

    # Create-only: the first writer wins, the second gets 412 and changes nothing.
    r = put("once", b"first", **{"If-None-Match": "*"})
    assert r.status_code == 200, r.content
    r = put("once", b"second", **{"If-None-Match": "*"})
    assert r.status_code == 412 and b"<Code>PreconditionFailed</Code>" in r.content
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"
    # Compare-and-swap on the ETag.
    etag = s3.head_object(Bucket=bucket, Key="once")["ETag"]
    assert put("once", b"third", **{"If-Match": '"0123456789abcdef0123456789abcdef"'}).status_code == 412
    assert put("once", b"third", **{"If-Match": etag}).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"third"
    r = put("never-written", b"x", **{"If-Match": etag})
    assert r.status_code == 404 and b"<Code>NoSuchKey</Code>" in r.content
    r = put("once", b"x", **{"If-None-Match": etag})
    assert r.status_code == 501
    # Multipart completion honours the same condition, atomically with the commit.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="once")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="once", UploadId=uid, PartNumber=1, Body=b"mp")
    xml = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part['ETag']}</ETag>"
           f"</Part></CompleteMultipartUpload>").encode()
    r = signed_request(server.endpoint, "POST", f"/{bucket}/once", query=f"uploadId={uid}", body=xml,
                       headers={"If-None-Match": "*"})
    assert r.status_code == 412, r.content
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"third"
    # The upload survives the refusal.
    assert s3.list_parts(Bucket=bucket, Key="once", UploadId=uid)["Parts"][0]["Size"] == 2


def test_list_v2_pagination_over_5000_keys(s3):
    from concurrent.futures import ThreadPoolExecutor
    s3.create_bucket(Bucket="many")
    keys = [f"d{i % 7}/k{i:05d}" for i in range(5000)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket="many", Key=k, Body=b""), keys))
    seen = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="many", PaginationConfig={"PageSize": 333}):
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] <= 333
    assert seen == sorted(keys)
    prefixes = s3.list_objects_v2(Bucket="many", Delimiter="/")["CommonPrefixes"]
    assert [p["Prefix"] for p in prefixes] == [f"d{i}/" for i in range(7)]
