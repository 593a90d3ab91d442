"""An object whose data file no longer matches its record (truncated by hand, bit rot, a lost
write-back; found by test_powerloss): the server must never promise bytes it cannot send.

Found before the headers (every data file is checked with fstat when it is opened): 500
InternalError, GET and HEAD alike, and also for a range that lies in what is left of the file,
since the record no longer describes the bytes. Found while sending (a later part of a multipart
object): the connection is cut, so the client sees a body shorter than its Content-Length, an
error, at once. Either way the server logs an error naming the object and counts it in
coffer_object_read_errors_total. Clients time out after 60 s: a response that stalls fails the
test with ReadTimeoutError, which none of the assertions accepts.
"""
import os
import re
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, REGION, SECRET_KEY

MiB = 1 << 20
BUCKET = "damaged"


def data_files(server):
    out = set()
    for d, _, files in os.walk(os.path.join(server.data_dir, "objects")):
        out.update(os.path.join(d, f) for f in files)
    return out


@pytest.fixture(scope="module")
def s3(server):
    # One attempt: a retried 500 would be counted twice.
    c = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                     aws_secret_access_key=SECRET_KEY,
                     config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                   retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                                   read_timeout=60))
    c.create_bucket(Bucket=BUCKET)
    return c


def put_file_backed(server, s3, key, data):
    """PUTs data and returns the data file it went to."""
    before = data_files(server)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    new = data_files(server) - before
    assert len(new) == 1, new
    return new.pop()


def put_multipart(server, s3, key, parts):
    """Returns the object's data files in part order."""
    before = data_files(server)
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    done = []
    for n, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=p)
        done.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": done})
    new = sorted(data_files(server) - before, key=os.path.getsize)
    assert [os.path.getsize(f) for f in new] == sorted(len(p) for p in parts), new
    by_size = {os.path.getsize(f): f for f in new}
    return [by_size[len(p)] for p in parts]


def read_errors(server):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^coffer_object_read_errors_total (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def assert_internal_error(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500, e.value.response
    return e.value.response


def assert_logged(server, key, before_count, count):
    now = read_errors(server)
    assert now is not None, "coffer_object_read_errors_total is not exported"
    assert now == before_count + count
    lines = [l for l in server.log().splitlines() if "cannot read the object's data" in l and key in l]
    assert lines, f"no error naming {key} in the log"


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_damaged_data_file_answers_500_before_any_header(server, s3, damage):
    key = f"plain-{damage}"
    data = os.urandom(MiB)
    path = put_file_backed(server, s3, key, data)
    if damage == "truncated":
        os.truncate(path, 1000)
    else:
        os.unlink(path)
    before = read_errors(server)
    r = assert_internal_error(lambda: s3.get_object(Bucket=BUCKET, Key=key))
    assert r["Error"]["Code"] == "InternalError"
    # Into the missing part, and inside what is left: the record no longer describes the bytes.
    assert_internal_error(lambda: s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=500000-500099"))
    assert_internal_error(lambda: s3.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-99"))
    # HEAD opens the file as GET does: it does not promise a body GET cannot give.
    assert_internal_error(lambda: s3.head_object(Bucket=BUCKET, Key=key))
    assert_logged(server, key, before, 4)
    # Listed still (the record is there), and the damage does not spread: a rewrite heals the key.
    assert key in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_small_damaged_object_answers_500(server, s3):
    """A body under 64 KiB is read into the answer (not sent with sendfile): the same 500."""
    key = "small-truncated"
    path = put_file_backed(server, s3, key, os.urandom(20000))
    os.truncate(path, 100)
    before = read_errors(server)
    assert_internal_error(lambda: s3.get_object(Bucket=BUCKET, Key=key))
    assert_logged(server, key, before, 1)


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_damaged_later_part_cuts_the_connection(server, s3, damage):
    """A multipart object whose second part's file is damaged: the headers went out with the first
    part, so the body stops short and the client gets an error, not a stall and not a short body
    taken as whole; a range inside that part is a 500."""
    key = f"multipart-{damage}"
    parts = [os.urandom(5 * MiB), os.urandom(MiB + 3)]
    files = put_multipart(server, s3, key, parts)
    if damage == "truncated":
        os.truncate(files[1], 1000)
    else:
        os.unlink(files[1])
    before = read_errors(server)
    r = s3.get_object(Bucket=BUCKET, Key=key)
    assert r["ContentLength"] == len(parts[0]) + len(parts[1])
    with pytest.raises((botocore.exceptions.IncompleteReadError, botocore.exceptions.ResponseStreamingError)):
        r["Body"].read()
    assert_internal_error(lambda: s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={5 * MiB + 10}-{5 * MiB + 5000}"))
    # The first part alone is whole and still served.
    got = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes=0-{MiB - 1}")["Body"].read()
    assert got == parts[0][:MiB]
    assert_logged(server, key, before, 2)
    # The server goes on serving others.
    s3.put_object(Bucket=BUCKET, Key="healthy", Body=b"x" * 100000)
    assert s3.get_object(Bucket=BUCKET, Key="healthy")["Body"].read() == b"x" * 100000
