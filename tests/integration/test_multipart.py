"""Multipart uploads, copies, tags and conditional requests, driven by boto3 and awscli."""
import hashlib
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import AWS_BIN
from helpers_clients import assert_s3_error, run_aws, signed_request
from test_metrics import scrape, value

MiB = 1 << 20


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def data_files(server):
    n = 0
    for _, _, files in os.walk(os.path.join(server.data_dir, "objects")):
        n += len(files)
    return n


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="mpu")
    return "mpu"


def upload(s3, bucket, key, parts, **create_args):
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create_args)["UploadId"]
    done = []
    for i, body in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i, Body=body)["ETag"]
        assert etag == '"%s"' % hashlib.md5(body).hexdigest()
        done.append({"PartNumber": i, "ETag": etag})
    return uid, done


def test_complete_assembles_parts_in_order(s3, bucket, server):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    uid, done = upload(s3, bucket, "big/object", parts, ContentType="application/x-test",
                       Metadata={"origin": "multipart"})
    before = data_files(server)
    res = s3.complete_multipart_upload(Bucket=bucket, Key="big/object", UploadId=uid,
                                       MultipartUpload={"Parts": done})
    assert res["ETag"] == multipart_etag(parts)
    # Completion copies nothing: the part files are now the object's.
    assert data_files(server) == before
    whole = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key="big/object")
    assert got["Body"].read() == whole
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"origin": "multipart"}
    assert got["ETag"] == multipart_etag(parts)
    # Ranges inside a part, across the boundary, and the tail.
    for start, end in [(10, 20), (5 * MiB - 3, 5 * MiB + 3), (10 * MiB - 1, 10 * MiB + 3), (0, len(whole) - 1)]:
        r = s3.get_object(Bucket=bucket, Key="big/object", Range=f"bytes={start}-{end}")
        assert r["Body"].read() == whole[start:end + 1]
        assert r["ContentRange"] == f"bytes {start}-{end}/{len(whole)}"
    head = s3.head_object(Bucket=bucket, Key="big/object")
    assert head["ContentLength"] == len(whole)
    # A retried completion gets the first one's answer (the client may have lost it) ...
    again = s3.complete_multipart_upload(Bucket=bucket, Key="big/object", UploadId=uid,
                                         MultipartUpload={"Parts": done})
    assert again["ETag"] == res["ETag"]
    # ... but not with another list of parts, nor for another key.
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="big/object", UploadId=uid,
                                     MultipartUpload={"Parts": done[:2]})
    assert error_code(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="big/other", UploadId=uid,
                                     MultipartUpload={"Parts": done})
    assert error_code(e) == ("NoSuchUpload", 404)


def test_parts_sent_at_once_are_hashed_side_by_side(s3, bucket, server):
    """Bodies received together share MD5 passes on the server; their ETags are still each
    body's own MD5, and the metrics show the sharing."""
    parts = [os.urandom(24 * MiB) for _ in range(4)]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="together")["UploadId"]
    before = scrape(server)

    def send(i):
        return s3.upload_part(Bucket=bucket, Key="together", UploadId=uid, PartNumber=i + 1,
                              Body=parts[i])["ETag"]

    with ThreadPoolExecutor(len(parts)) as pool:
        etags = list(pool.map(send, range(len(parts))))
    after = scrape(server)
    assert etags == ['"%s"' % hashlib.md5(p).hexdigest() for p in parts]
    res = s3.complete_multipart_upload(
        Bucket=bucket, Key="together", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]})
    assert res["ETag"] == multipart_etag(parts)
    hashed = {k: value(after, "coffer_md5_bytes_total", hashed=k) - value(before, "coffer_md5_bytes_total", hashed=k)
              for k in ("alone", "side_by_side")}
    # Every byte of the four bodies (and their padding), once.
    assert hashed["alone"] + hashed["side_by_side"] == sum(len(p) + 64 for p in parts)
    assert hashed["side_by_side"] > 0


def test_part_rules(s3, bucket, server):
    base = data_files(server)
    small, big = b"x" * 1024, os.urandom(5 * MiB)
    uid, done = upload(s3, bucket, "rules", [small, big])
    cases = [
        ([done[1], done[0]], "InvalidPartOrder"),
        ([{"PartNumber": 1, "ETag": '"%s"' % ("0" * 32)}], "InvalidPart"),
        ([done[0], {"PartNumber": 3, "ETag": done[1]["ETag"]}], "InvalidPart"),
        (done, "EntityTooSmall"),
    ]
    for parts, code in cases:
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=uid,
                                         MultipartUpload={"Parts": parts})
        assert error_code(e) == (code, 400), parts
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=uid, MultipartUpload={"Parts": []})
    assert error_code(e)[0] == "MalformedXML"
    for bad in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="rules", UploadId=uid, PartNumber=bad, Body=b"x")
        assert error_code(e) == ("InvalidArgument", 400)
    # The upload is intact after every failure: a valid completion still works.
    res = s3.complete_multipart_upload(Bucket=bucket, Key="rules", UploadId=uid,
                                       MultipartUpload={"Parts": [done[1]]})
    assert res["ETag"] == multipart_etag([big])
    assert s3.get_object(Bucket=bucket, Key="rules")["Body"].read() == big
    # The unchosen small part is reclaimed.
    assert data_files(server) == base + 1


def test_reupload_of_a_part_replaces_it(s3, bucket):
    uid, _ = upload(s3, bucket, "again", [b"first"])
    etag = s3.upload_part(Bucket=bucket, Key="again", UploadId=uid, PartNumber=1, Body=b"second")["ETag"]
    listed = s3.list_parts(Bucket=bucket, Key="again", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [(1, etag, 6)]
    s3.complete_multipart_upload(Bucket=bucket, Key="again", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="again")["Body"].read() == b"second"


def test_abort_and_listings(s3, bucket, server):
    base = data_files(server)
    ids = {}
    for key in ["logs/a", "logs/b", "logs/deep/c", "other"]:
        ids[key], _ = upload(s3, bucket, key, [b"p1", b"p2"])
    assert data_files(server) == base + 8
    res = s3.list_multipart_uploads(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [u["Key"] for u in res["Uploads"]] == ["logs/a", "logs/b"]
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["logs/deep/"]
    res = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2)
    assert res["IsTruncated"] and len(res["Uploads"]) == 2
    rest = s3.list_multipart_uploads(Bucket=bucket, KeyMarker=res["NextKeyMarker"],
                                     UploadIdMarker=res["NextUploadIdMarker"])
    seen = [u["Key"] for u in res["Uploads"]] + [u["Key"] for u in rest["Uploads"]]
    assert sorted(seen) == sorted(ids)
    parts = s3.list_parts(Bucket=bucket, Key="other", UploadId=ids["other"], MaxParts=1)
    assert parts["IsTruncated"] and [p["PartNumber"] for p in parts["Parts"]] == [1]
    parts = s3.list_parts(Bucket=bucket, Key="other", UploadId=ids["other"],
                          PartNumberMarker=parts["NextPartNumberMarker"])
    assert not parts["IsTruncated"] and [p["PartNumber"] for p in parts["Parts"]] == [2]
    # An upload id is bound to its key.
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="logs/a", UploadId=ids["other"])
    assert error_code(e) == ("NoSuchUpload", 404)
    for key, uid in ids.items():
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
    assert data_files(server) == base
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="other", UploadId=ids["other"], PartNumber=3, Body=b"late")
    assert error_code(e) == ("NoSuchUpload", 404)
    assert data_files(server) == base


def test_upload_part_copy_and_copy_object(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src, Metadata={"k": "v"}, ContentType="text/x-src")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"})["CopyPartResult"]["ETag"]
    p2 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange="bytes=100-199")["CopyPartResult"]["ETag"]
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=uid, PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=f"bytes=0-{len(src)}")
    assert error_code(e) == ("InvalidArgument", 400)
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src + src[100:200]

    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    got = s3.get_object(Bucket=bucket, Key="copy")
    assert got["Body"].read() == src and got["Metadata"] == {"k": "v"} and got["ContentType"] == "text/x-src"
    s3.create_bucket(Bucket="mp-other")
    s3.copy_object(Bucket="mp-other", Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"new": "1"}, ContentType="text/plain")
    got = s3.head_object(Bucket="mp-other", Key="replaced")
    assert got["Metadata"] == {"new": "1"} and got["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert error_code(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert error_code(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"},
                       CopySourceIfMatch='"0123"')
    assert error_code(e) == ("PreconditionFailed", 412)


def test_tagging(s3, bucket):
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="team=web&note=two words")
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("note", "two words"), ("team", "web")]
    assert s3.get_object(Bucket=bucket, Key="tagged")["TagCount"] == 2
    s3.put_object_tagging(Bucket=bucket, Key="tagged", Tagging={"TagSet": [{"Key": "a&b", "Value": "=%"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "a&b", "Value": "=%"}]
    assert s3.get_object(Bucket=bucket, Key="tagged")["Body"].read() == b"t"
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="tagged", Tagging={"TagSet": too_many})
    assert error_code(e) == ("InvalidTag", 400)
    assert len(s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]) == 1
    s3.delete_object_tagging(Bucket=bucket, Key="tagged")
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == []
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="no-such-key")
    assert error_code(e) == ("NoSuchKey", 404)


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cond", Body=b"c")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="cond", IfMatch=etag)["Body"].read() == b"c"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfMatch='"nope"')
    assert error_code(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="cond", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304


def test_awscli_multipart_200_mib(server, aws_env, tmp_path, s3, bucket):
    env = dict(aws_env)
    cfg = tmp_path / "config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n")
    env["AWS_CONFIG_FILE"] = str(cfg)
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(200):
            f.write(os.urandom(MiB))
    aws = [AWS_BIN, "--endpoint-url", server.endpoint, "--no-progress"]
    subprocess.run(aws + ["s3", "cp", str(src), f"s3://{bucket}/cli/big.bin"], env=env, check=True,
                   capture_output=True)
    head = s3.head_object(Bucket=bucket, Key="cli/big.bin")
    assert head["ContentLength"] == 200 * MiB
    assert head["ETag"].endswith('-25"')
    out = tmp_path / "back.bin"
    subprocess.run(aws + ["s3", "cp", f"s3://{bucket}/cli/big.bin", str(out)], env=env, check=True,
                   capture_output=True)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    # A server-side copy of a multipart object (awscli uses UploadPartCopy and tagging).
    subprocess.run(aws + ["s3", "cp", f"s3://{bucket}/cli/big.bin", f"s3://{bucket}/cli/copy.bin"],
                   env=env, check=True, capture_output=True)
    assert s3.head_object(Bucket=bucket, Key="cli/copy.bin")["ContentLength"] == 200 * MiB


def test_stale_uploads_are_aborted_by_the_server(make_server):
    import time
    from conftest import s3_client
    srv = make_server(extra_args=["--multipart-expiry", "2s"]).start()
    client = s3_client(srv.endpoint)
    client.create_bucket(Bucket="stale")
    uid = client.create_multipart_upload(Bucket="stale", Key="k")["UploadId"]
    client.upload_part(Bucket="stale", Key="k", UploadId=uid, PartNumber=1, Body=b"orphan part")
    assert data_files(srv) == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and client.list_multipart_uploads(Bucket="stale").get("Uploads"):
        time.sleep(0.2)
    assert client.list_multipart_uploads(Bucket="stale").get("Uploads", []) == []
    assert data_files(srv) == 0
    assert "aborted stale multipart uploads" in srv.log()
    with pytest.raises(ClientError) as e:
        client.upload_part(Bucket="stale", Key="k", UploadId=uid, PartNumber=2, Body=b"late")
    assert error_code(e) == ("NoSuchUpload", 404)


def complete_xml(parts):
    body = "".join(f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in parts)
    return f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode()


def test_retried_completion_gets_the_same_answer_even_after_a_restart(make_server):
    """An SDK that lost the first answer (a timeout) retries; the retry must not report a
    failure for an upload that succeeded. The record of the completion is durable."""
    from conftest import s3_client
    srv = make_server().start()
    client = s3_client(srv.endpoint)
    client.create_bucket(Bucket="retry")
    parts = [os.urandom(5 * MiB), b"tail"]
    uid, done = upload(client, "retry", "obj", parts)
    path, query = "/retry/obj", f"uploadId={uid}"
    first = signed_request(srv.endpoint, "POST", path, query=query, body=complete_xml(done))
    assert first.status_code == 200, first.text
    again = signed_request(srv.endpoint, "POST", path, query=query, body=complete_xml(done))
    assert (again.status_code, again.text) == (200, first.text)
    assert multipart_etag(parts).replace('"', "&quot;") in again.text
    srv.stop()
    srv.start()
    client = s3_client(srv.endpoint)
    res = client.complete_multipart_upload(Bucket="retry", Key="obj", UploadId=uid, MultipartUpload={"Parts": done})
    assert res["ETag"] == multipart_etag(parts)
    # Other parts, another key, or an id that never completed: NoSuchUpload.
    other = signed_request(srv.endpoint, "POST", path, query=query, body=complete_xml(done[:1]))
    assert "another list of parts" in assert_s3_error(other, "NoSuchUpload", 404)["Message"]
    assert_s3_error(signed_request(srv.endpoint, "POST", "/retry/elsewhere", query=query, body=complete_xml(done)),
                    "NoSuchUpload", 404)
    assert_s3_error(signed_request(srv.endpoint, "POST", path, query="uploadId=" + "0" * 32, body=complete_xml(done)),
                    "NoSuchUpload", 404)
    assert_s3_error(signed_request(srv.endpoint, "POST", path, query=query, body=b"<nonsense"), "NoSuchUpload", 404)
    assert client.get_object(Bucket="retry", Key="obj")["Body"].read() == b"".join(parts)

    # Two completions sent at once (a retry racing the first): both succeed alike.
    uid, done = upload(client, "retry", "twice", parts)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: signed_request(srv.endpoint, "POST", "/retry/twice", query=f"uploadId={uid}",
                                                         body=complete_xml(done)), range(2)))
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert answers[0].text == answers[1].text


def test_get_and_head_by_part_number(s3, bucket, server, aws_env, tmp_path):
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    uid, done = upload(s3, bucket, "numbered", parts)
    s3.complete_multipart_upload(Bucket=bucket, Key="numbered", UploadId=uid, MultipartUpload={"Parts": done})
    total = sum(map(len, parts))
    start = 0
    for n, body in enumerate(parts, 1):
        got = s3.get_object(Bucket=bucket, Key="numbered", PartNumber=n)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["Body"].read() == body
        assert got["ContentLength"] == len(body)
        assert got["ContentRange"] == f"bytes {start}-{start + len(body) - 1}/{total}"
        assert got["PartsCount"] == 3
        assert got["ETag"] == multipart_etag(parts)  # the object's, not the part's
        head = s3.head_object(Bucket=bucket, Key="numbered", PartNumber=n)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert (head["ContentLength"], head["PartsCount"]) == (len(body), 3)
        start += len(body)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="numbered", PartNumber=4)
    assert error_code(e) == ("InvalidPartNumber", 416)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="numbered", PartNumber=1, Range="bytes=0-9")
    assert error_code(e) == ("InvalidRequest", 400)

    # Parts uploaded as 1 and 3 are the object's parts 1 and 2.
    sparse = [os.urandom(5 * MiB), b"last"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="sparse")["UploadId"]
    done = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key="sparse", UploadId=uid, PartNumber=n,
                                                     Body=body)["ETag"]} for n, body in zip((1, 3), sparse)]
    s3.complete_multipart_upload(Bucket=bucket, Key="sparse", UploadId=uid, MultipartUpload={"Parts": done})
    got = s3.get_object(Bucket=bucket, Key="sparse", PartNumber=2)
    assert (got["Body"].read(), got["PartsCount"]) == (b"last", 2)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="sparse", PartNumber=3)
    assert error_code(e) == ("InvalidPartNumber", 416)

    # A plain object is one part: the whole object, as a range, and no parts count.
    s3.put_object(Bucket=bucket, Key="plain", Body=b"0123456789")
    got = s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (got["Body"].read(), got["ContentRange"]) == (b"0123456789", "bytes 0-9/10")
    assert "PartsCount" not in got
    for n in (2, 10000):
        with pytest.raises(ClientError) as e:
            s3.head_object(Bucket=bucket, Key="plain", PartNumber=n)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416
    for bad in ("0", "10001", "-1", "1x", "", "99999999999999999999"):
        r = signed_request(server.endpoint, "GET", f"/{bucket}/plain", query=f"partNumber={bad}")
        assert_s3_error(r, "InvalidArgument", 400)

    # awscli's get-object --part-number.
    out = tmp_path / "part2"
    res = run_aws(aws_env, "--endpoint-url", server.endpoint, "s3api", "get-object", "--bucket", bucket,
                  "--key", "numbered", "--part-number", "2", str(out))
    meta = json.loads(res.stdout)
    assert (meta["PartsCount"], meta["ContentLength"]) == (3, 5 * MiB)
    assert out.read_bytes() == parts[1]
