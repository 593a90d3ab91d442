"""Bucket policies on requests that name a version: AWS decides GetObject with a versionId (even
"null") as s3:GetObjectVersion, DeleteObject as s3:DeleteObjectVersion, the tagging operations
as s3:*ObjectVersionTagging, so a grant of the current object does not reach its versions."""
import pytest
from botocore.exceptions import ClientError

from conftest import s3_client
from test_bucket_policy import BUCKET, anon, bucket, code_of, error_of, new_key, put_policy  # noqa: F401


def anyone(action, resource):
    return {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource}


def test_get_object_grant_does_not_reach_versions(server, s3, bucket):
    put_policy(s3, anyone("s3:GetObject", f"{bucket}/public/*"))
    url = f"{server.endpoint}/{BUCKET}/public/a.txt"
    assert anon().get(url).content == b"a"
    for q in ("?versionId=null", "?versionId=3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"):
        r = anon().get(url + q)
        assert r.status_code == 403 and code_of(r) == "AccessDenied", (q, r.text)
        assert anon().head(url + q).status_code == 403
        r = anon().get(url + "?tagging&" + q[1:])
        assert r.status_code == 403 and code_of(r) == "AccessDenied", (q, r.text)

    put_policy(s3, anyone(["s3:GetObject", "s3:GetObjectVersion"], f"{bucket}/public/*"))
    assert anon().get(url + "?versionId=null").content == b"a"
    r = anon().get(url + "?versionId=nosuch")
    assert r.status_code == 404 and code_of(r) == "NoSuchVersion", r.text


def test_delete_object_grant_does_not_delete_versions(server, s3, bucket):
    put_policy(s3, anyone(["s3:DeleteObject", "s3:GetObject"], f"{bucket}/public/*"))
    url = f"{server.endpoint}/{BUCKET}/public/a.txt"
    r = anon().delete(url + "?versionId=null")
    assert r.status_code == 403 and code_of(r) == "AccessDenied", r.text
    assert s3.get_object(Bucket=BUCKET, Key="public/a.txt")["Body"].read() == b"a"

    put_policy(s3, anyone("s3:DeleteObjectVersion", f"{bucket}/public/*"))
    assert anon().delete(url + "?versionId=null").status_code == 204
    assert error_of(s3.head_object, Bucket=BUCKET, Key="public/a.txt")["Code"] == "404"


def test_deny_of_versions_holds_for_a_key_and_in_delete_objects(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    user = s3_client(server.endpoint, access_key=ak, secret_key=sk)
    put_policy(s3, {"Effect": "Deny", "Principal": "*",
                    "Action": ["s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:PutObjectVersionTagging"],
                    "Resource": f"{bucket}/*"})
    assert user.get_object(Bucket=BUCKET, Key="private/b.txt")["Body"].read() == b"b"
    assert error_of(user.get_object, Bucket=BUCKET, Key="private/b.txt",
                    VersionId="null")["Code"] == "AccessDenied"
    assert error_of(user.put_object_tagging, Bucket=BUCKET, Key="private/b.txt", VersionId="null",
                    Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})["Code"] == "AccessDenied"
    out = user.delete_objects(Bucket=BUCKET, Delete={"Objects": [
        {"Key": "private/b.txt", "VersionId": "null"}, {"Key": "home/ann/c.txt"}]})
    assert [e["Code"] for e in out.get("Errors", [])] == ["AccessDenied"], out
    assert [d["Key"] for d in out.get("Deleted", [])] == ["home/ann/c.txt"], out
    assert s3.get_object(Bucket=BUCKET, Key="private/b.txt")["Body"].read() == b"b"


def test_copy_of_a_named_source_version_needs_get_object_version(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "writeonly", "--bucket", BUCKET)
    user = s3_client(server.endpoint, access_key=ak, secret_key=sk)
    put_policy(s3, {"Effect": "Allow", "Principal": {"AWS": ak}, "Action": "s3:GetObject",
                    "Resource": f"{bucket}/public/*"})
    user.copy_object(Bucket=BUCKET, Key="copies/1", CopySource={"Bucket": BUCKET, "Key": "public/a.txt"})
    with pytest.raises(ClientError) as e:
        user.copy_object(Bucket=BUCKET, Key="copies/2",
                         CopySource={"Bucket": BUCKET, "Key": "public/a.txt", "VersionId": "null"})
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert error_of(s3.head_object, Bucket=BUCKET, Key="copies/2")["Code"] == "404"
