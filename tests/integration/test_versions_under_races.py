"""A read sends one whole version, whatever overwrites race it (docs/internals/store.md,
"Reading"): a slow GET of a multipart object, and copies whose source is being overwritten."""
import hashlib
import os
import socket
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY
from helpers_http import build_request, key_path, sign_headers

MiB = 1 << 20


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="races")
    return "races"


def put_multipart(s3, bucket, key, parts):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = []
    for i, body in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=body)["ETag"]
        done.append({"PartNumber": i, "ETag": etag})
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": done})["ETag"]


def slow_get(port, path, before_rest):
    """A signed GET read by a client that takes its first 64 KiB, calls before_rest() (while
    the server still holds most of the body), then reads the rest. Returns (status, body)."""
    host = f"127.0.0.1:{port}"
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)  # before connect: a small window
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    s.sendall(build_request("GET", path, sign_headers("GET", host, path)))
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    length = int([ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")][0])
    while len(body) < 64 << 10:
        body += s.recv(65536)
    before_rest()
    while len(body) < length:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        body += chunk
    s.close()
    return status, body


def test_slow_get_of_a_multipart_object_overwritten_mid_read_sends_the_old_version(server, s3, bucket):
    old = [os.urandom(5 * MiB) for _ in range(3)]
    put_multipart(s3, bucket, "mp", old)
    whole = b"".join(old)

    def overwrite():
        # Replaced and then deleted: every data file of the old version is reclaimed.
        put_multipart(s3, bucket, "mp", [os.urandom(5 * MiB), b"new"])
        s3.delete_object(Bucket=bucket, Key="mp")
        time.sleep(0.2)

    status, body = slow_get(server.port, key_path(bucket, "mp"), overwrite)
    assert status == 200
    assert len(body) == 15 * MiB
    assert hashlib.md5(body).hexdigest() == hashlib.md5(whole).hexdigest()


def test_old_version_files_are_reclaimed_after_the_read(server, s3, bucket):
    """The held version's files are unlinked by the end of the read, not leaked."""
    def count():
        return sum(len(f) for _, _, f in os.walk(os.path.join(server.data_dir, "objects")))

    base = count()
    put_multipart(s3, bucket, "held", [os.urandom(5 * MiB), os.urandom(5 * MiB), b"x"])
    assert count() == base + 3
    seen = {}

    def overwrite():
        s3.delete_object(Bucket=bucket, Key="held")
        seen["during"] = count()

    status, body = slow_get(server.port, key_path(bucket, "held"), overwrite)
    assert status == 200 and len(body) == 10 * MiB + 1
    assert seen["during"] == base + 3  # still held by the read
    deadline = time.time() + 10
    while count() != base and time.time() < deadline:
        time.sleep(0.05)
    assert count() == base


def no_retry_client(server):
    """A client that reports every error: botocore's retries would hide a 500 that a race caused."""
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"total_max_attempts": 1}))


def race(s3, bucket, versions, n_copies, copy_once):
    """Overwrites the source with each of versions in turn while copy_once() runs n_copies
    times; returns the copies' outcomes ("ok" or an error code)."""
    stop = threading.Event()

    def overwrite():
        i = 0
        while not stop.is_set():
            s3.put_object(Bucket=bucket, Key="src", Body=versions[i % len(versions)])
            i += 1

    t = threading.Thread(target=overwrite)
    t.start()
    outcomes = []
    try:
        for _ in range(n_copies):
            try:
                copy_once()
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])
    finally:
        stop.set()
        t.join()
    return outcomes


def test_copy_racing_an_overwrite_of_its_source_copies_one_whole_version(server, s3, bucket):
    versions = [os.urandom(256 << 10) for _ in range(3)]
    s3.put_object(Bucket=bucket, Key="src", Body=versions[0])
    md5s = {'"%s"' % hashlib.md5(v).hexdigest() for v in versions}
    etags = []

    copier = no_retry_client(server)

    def copy_once():
        etags.append(copier.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
                     ["CopyObjectResult"]["ETag"])

    outcomes = race(s3, bucket, versions, 300, copy_once)
    assert outcomes == ["ok"] * len(outcomes), {o for o in outcomes if o != "ok"}
    assert set(etags) <= md5s


def test_upload_part_copy_racing_an_overwrite_copies_one_whole_version(server, s3, bucket):
    versions = [os.urandom(256 << 10) for _ in range(3)]
    s3.put_object(Bucket=bucket, Key="src", Body=versions[0])
    md5s = {'"%s"' % hashlib.md5(v).hexdigest() for v in versions}
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    etags = []

    copier = no_retry_client(server)

    def copy_once():
        etags.append(copier.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                                         CopySource={"Bucket": bucket, "Key": "src"})["CopyPartResult"]["ETag"])

    outcomes = race(s3, bucket, versions, 300, copy_once)
    s3.abort_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid)
    assert outcomes == ["ok"] * len(outcomes), {o for o in outcomes if o != "ok"}
    assert set(etags) <= md5s


def test_copy_errors_name_what_is_missing(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "never-was"})
    assert e.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": "no-such-bucket", "Key": "src"})
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="no-such-bucket", Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
