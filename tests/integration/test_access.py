"""Access keys with policies, the admin API and CLI, and anonymous reads by bucket policy."""
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client
from helpers_clients import assert_s3_error, signed_request


def admin(server, *args, check=True):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "COFFER_ACCESS_KEY", "COFFER_SECRET_KEY"):
        env.pop(k, None)
    p = subprocess.run([COFFER_BIN, "admin", *args], env=env, capture_output=True, text=True, timeout=30)
    assert SECRET_KEY not in p.stdout + p.stderr
    if check:
        assert p.returncode == 0, p.stderr
    return p


def new_key(server, *args):
    out = json.loads(admin(server, "key", "add", "--json", *args).stdout)
    return out["access_key"], out["secret_key"]


def denied(fn, *a, **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    assert e.value.response["Error"]["Code"] == "AccessDenied", e.value.response
    return True


@pytest.fixture(scope="module")
def buckets(s3):
    for b in ("team", "other"):
        s3.create_bucket(Bucket=b)
        s3.put_object(Bucket=b, Key="shared/a.txt", Body=b"a")
        s3.put_object(Bucket=b, Key="private/b.txt", Body=b"b")
    return "team", "other"


def test_readonly_key_on_a_prefix(server, s3, buckets):
    ak, sk = new_key(server, "--policy", "readonly", "--bucket", "team", "--prefix", "shared/")
    c = s3_client(server.endpoint, ak, sk)
    assert c.get_object(Bucket="team", Key="shared/a.txt")["Body"].read() == b"a"
    assert [o["Key"] for o in c.list_objects_v2(Bucket="team", Prefix="shared/")["Contents"]] == ["shared/a.txt"]
    denied(c.get_object, Bucket="team", Key="private/b.txt")
    denied(c.list_objects_v2, Bucket="team")            # the whole bucket is beyond the prefix
    denied(c.get_object, Bucket="other", Key="shared/a.txt")
    denied(c.put_object, Bucket="team", Key="shared/new", Body=b"x")
    denied(c.delete_object, Bucket="team", Key="shared/a.txt")
    denied(c.create_bucket, Bucket="newbucket")
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["team"]
    assert s3.get_object(Bucket="team", Key="shared/a.txt")["Body"].read() == b"a"


def test_writeonly_key_cannot_read_or_delete(server, s3, buckets):
    ak, sk = new_key(server, "--policy", "writeonly", "--bucket", "team", "--prefix", "backups/")
    c = s3_client(server.endpoint, ak, sk)
    c.put_object(Bucket="team", Key="backups/db.dump", Body=b"dump")
    c.head_bucket(Bucket="team")
    denied(c.get_object, Bucket="team", Key="backups/db.dump")
    denied(c.delete_object, Bucket="team", Key="backups/db.dump")
    denied(c.put_object, Bucket="team", Key="elsewhere", Body=b"x")
    # Copying reads the source, which a write-only key may not.
    denied(c.copy_object, Bucket="team", Key="backups/copy", CopySource={"Bucket": "team", "Key": "private/b.txt"})
    assert s3.get_object(Bucket="team", Key="backups/db.dump")["Body"].read() == b"dump"


def test_readwrite_key_and_multi_delete_scope(server, s3, buckets):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", "other")
    c = s3_client(server.endpoint, ak, sk)
    c.put_object(Bucket="other", Key="x", Body=b"x")
    assert c.get_object(Bucket="other", Key="x")["Body"].read() == b"x"
    c.delete_object(Bucket="other", Key="x")
    denied(c.get_object, Bucket="team", Key="shared/a.txt")
    ak2, sk2 = new_key(server, "--policy", "readwrite", "--bucket", "team", "--prefix", "tmp/")
    c2 = s3_client(server.endpoint, ak2, sk2)
    c2.put_object(Bucket="team", Key="tmp/1", Body=b"1")
    res = c2.delete_objects(Bucket="team", Delete={"Objects": [{"Key": "tmp/1"}, {"Key": "shared/a.txt"}]})
    assert [d["Key"] for d in res["Deleted"]] == ["tmp/1"]
    assert [(e["Key"], e["Code"]) for e in res["Errors"]] == [("shared/a.txt", "AccessDenied")]
    assert s3.get_object(Bucket="team", Key="shared/a.txt")["Body"].read() == b"a"


def test_key_listing_and_removal(server, s3, buckets):
    ak, sk = new_key(server, "--policy", "readonly", "--name", "ci-reader")
    assert ak == "ci-reader"
    listed = json.loads(admin(server, "key", "ls", "--json").stdout)["keys"]
    entry = [k for k in listed if k["access_key"] == "ci-reader"][0]
    assert entry["policy"] == "readonly" and "secret_key" not in entry
    table = admin(server, "key", "ls").stdout
    assert "ci-reader" in table and sk not in table
    c = s3_client(server.endpoint, ak, sk)
    assert c.get_object(Bucket="other", Key="shared/a.txt")["Body"].read() == b"a"   # every bucket
    admin(server, "key", "rm", "ci-reader")
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket="other", Key="shared/a.txt")
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    p = admin(server, "key", "rm", "ci-reader", check=False)
    assert p.returncode == 1 and "InvalidAccessKeyId" in p.stderr
    # A name too long for the request path is refused before any request: cut short, it would
    # name another key (or the list). The key stays.
    ak2, sk2 = new_key(server, "--policy", "readonly")
    p = admin(server, "key", "rm", "k" * 1100, check=False)
    assert p.returncode == 1 and "too large" in p.stderr, p.stderr
    c2 = s3_client(server.endpoint, ak2, sk2)
    assert c2.get_object(Bucket="other", Key="shared/a.txt")["Body"].read() == b"a"
    p = admin(server, "key", "add", "--policy", "everything", check=False)
    assert p.returncode == 1 and "policy must be" in p.stderr
    # Only root may use the admin API.
    ak3, sk3 = new_key(server, "--policy", "readwrite")
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ak3, COFFER_SECRET_KEY=sk3)
    for k in ("COFFER_ROOT_USER", "COFFER_ROOT_PASSWORD"):
        env.pop(k, None)
    p = subprocess.run([COFFER_BIN, "admin", "key", "ls"], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "AccessDenied" in p.stderr


def test_public_bucket_prefix(server, s3, buckets):
    def anon(key):
        try:
            with urllib.request.urlopen(f"{server.endpoint}/team/{key}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    assert anon("shared/a.txt")[0] == 403
    out = admin(server, "bucket", "set-public", "team", "--prefix", "shared/").stdout
    # The message says what is granted, to whom, and what is not (each checked below).
    assert "public read of arn:aws:s3:::team/shared/*" in out
    assert 'GET and HEAD of the objects whose keys begin with "shared/"' in out
    assert "not granted: listing the bucket, the other keys, any write" in out
    assert "readable by anyone" not in out
    assert anon("shared/a.txt") == (200, b"a")
    head = urllib.request.Request(f"{server.endpoint}/team/shared/a.txt", method="HEAD")
    with urllib.request.urlopen(head, timeout=5) as r:
        assert r.status == 200
    status, body = anon("private/b.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert anon("")[0] == 403                                   # no listing granted
    policy = json.loads(s3.get_bucket_policy(Bucket="team")["Policy"])
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::team/shared/*"
    # Anonymous writes are never allowed.
    req = urllib.request.Request(f"{server.endpoint}/team/shared/evil", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 403
    out = admin(server, "bucket", "set-private", "team").stdout
    assert "private" in out and "every request needs credentials" in out
    assert anon("shared/a.txt")[0] == 403
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket="team")
    assert e.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_public_whole_bucket_message_and_wildcard_prefix(server, s3, buckets):
    out = admin(server, "bucket", "set-public", "team").stdout
    assert "public read of arn:aws:s3:::team/*" in out
    assert "GET and HEAD of every object in the bucket" in out
    assert "not granted: listing the bucket, any write" in out
    try:
        with urllib.request.urlopen(f"{server.endpoint}/team", timeout=5):
            raise AssertionError("an anonymous listing was allowed")
    except urllib.error.HTTPError as e:
        assert e.code == 403
    # A wildcard in the prefix would grant more than the keys it names: refused, policy kept.
    for prefix in ("sh*", "a?b/"):
        p = admin(server, "bucket", "set-public", "team", "--prefix", prefix, check=False)
        assert p.returncode == 2 and "must not contain" in p.stderr, (p.returncode, p.stderr)
    policy = json.loads(s3.get_bucket_policy(Bucket="team")["Policy"])
    assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::team/*"
    admin(server, "bucket", "set-private", "team")


def test_policy_api_refuses_what_it_cannot_enforce(s3, buckets):
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                                                   "Action": "s3:GetObject", "Resource": "arn:aws:s3:::team/*",
                                                   "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket="team", Policy=json.dumps(bad))
    assert e.value.response["Error"]["Code"] == "MalformedPolicy"
    assert "aws:SecureTransport" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket="team")
    assert e.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_writeonly_key_creates_but_never_replaces(server, s3, buckets):
    """A backup job's key cannot destroy a backup by writing over it: PUT (even empty), copy
    and multipart completion onto an existing key are refused, and the backup is intact."""
    ak, sk = new_key(server, "--policy", "writeonly", "--bucket", "team", "--prefix", "vault/")
    c = s3_client(server.endpoint, ak, sk)
    backup = os.urandom(4096)
    c.put_object(Bucket="team", Key="vault/db.dump", Body=backup)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket="team", Key="vault/db.dump", Body=b"")
    err = e.value.response["Error"]
    assert (err["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    assert "only create" in err["Message"]
    # Asked for explicitly, the same condition is a precondition that failed.
    r = signed_request(server.endpoint, "PUT", "/team/vault/db.dump", headers={"If-None-Match": "*"},
                       access_key=ak, secret_key=sk)
    assert_s3_error(r, "PreconditionFailed", 412)
    denied(c.copy_object, Bucket="team", Key="vault/db.dump", CopySource={"Bucket": "team", "Key": "vault/db.dump"})

    # Multipart: the upload may be made, its completion onto the existing key may not.
    uid = c.create_multipart_upload(Bucket="team", Key="vault/db.dump")["UploadId"]
    etag = c.upload_part(Bucket="team", Key="vault/db.dump", UploadId=uid, PartNumber=1, Body=b"evil")["ETag"]
    denied(c.complete_multipart_upload, Bucket="team", Key="vault/db.dump", UploadId=uid,
           MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    # A part copied from the backup would read it, which the key may not.
    denied(c.upload_part_copy, Bucket="team", Key="vault/db.dump", UploadId=uid, PartNumber=2,
           CopySource={"Bucket": "team", "Key": "vault/db.dump"})
    c.abort_multipart_upload(Bucket="team", Key="vault/db.dump", UploadId=uid)
    assert s3.get_object(Bucket="team", Key="vault/db.dump")["Body"].read() == backup

    # New keys are still created, by PUT and by multipart.
    uid = c.create_multipart_upload(Bucket="team", Key="vault/new.dump")["UploadId"]
    etag = c.upload_part(Bucket="team", Key="vault/new.dump", UploadId=uid, PartNumber=1, Body=b"new")["ETag"]
    c.complete_multipart_upload(Bucket="team", Key="vault/new.dump", UploadId=uid,
                                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket="team", Key="vault/new.dump")["Body"].read() == b"new"
    # Root (and readwrite keys) still overwrite.
    s3.put_object(Bucket="team", Key="vault/db.dump", Body=b"rotated")
    assert s3.get_object(Bucket="team", Key="vault/db.dump")["Body"].read() == b"rotated"


def test_racing_writeonly_puts_of_one_new_key_make_one_object(server, s3, buckets):
    """The create-only check is the commit's: of two PUTs racing to create a key, exactly one
    wins and the other is refused, never both written."""
    ak, sk = new_key(server, "--policy", "writeonly", "--bucket", "team", "--prefix", "race/")
    clients = [s3_client(server.endpoint, ak, sk) for _ in range(2)]
    for round_ in range(25):
        key = f"race/{round_}"
        bodies = [os.urandom(2048), os.urandom(2048)]
        barrier = threading.Barrier(2)

        def put(i):
            barrier.wait()
            try:
                clients[i].put_object(Bucket="team", Key=key, Body=bodies[i])
                return "ok"
            except ClientError as e:
                return e.response["Error"]["Code"]

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(put, range(2)))
        assert sorted(results) == ["AccessDenied", "ok"], results
        assert s3.get_object(Bucket="team", Key=key)["Body"].read() == bodies[results.index("ok")]
