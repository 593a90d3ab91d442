"""Abuse of the round-2 features against a real server: what an attacker or a hostile network
would send to CORS, POST Object, bucket policies, inline small objects, recorded completions,
the unsigned-header check and the HTTP framing. Each test states what must hold; a refused
request leaves the stored state as it was and nothing behind in DATA/tmp/.
"""
import hashlib
import json
import os
import socket
import subprocess
import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client
from helpers_http import (build_request, raw_exchange, read_response, sign_headers, signed_request,
                          wait_tmp_empty)

ORIGIN_NOMATCH = "https://nowhere.example"


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="abuse")
    s3.put_object(Bucket="abuse", Key="small", Body=b"hello")
    return "abuse"


def host_of(server):
    return f"127.0.0.1:{server.port}"


def server_cpu_seconds(server):
    with open(f"/proc/{server.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- CORS ----

def big_cors_configuration():
    """100 rules (AWS's limit) of wildcard origins, close to the 64 KB document limit."""
    rules = [{"AllowedMethods": ["GET", "PUT", "POST", "DELETE", "HEAD"],
              "AllowedOrigins": [f"https://*.site{i}-{j}.example" for j in range(3)],
              "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag", "x-amz-meta-a"], "MaxAgeSeconds": 100}
             for i in range(100)]
    return {"CORSRules": rules}


def test_origin_header_does_not_multiply_the_cost_of_a_request(server, s3):
    """Anyone can send Origin; an anonymous, refused GET with one must not cost the server a
    parse of the bucket's whole CORS document each time (it cost 3.7x the CPU of the same GET
    without Origin)."""
    s3.create_bucket(Bucket="corscost")
    s3.put_object(Bucket="corscost", Key="k", Body=b"x")
    s3.put_bucket_cors(Bucket="corscost", CORSConfiguration=big_cors_configuration())
    session = requests.Session()
    url = server.endpoint + "/corscost/k"

    def cpu_per_request(headers, n=2000):
        session.get(url, headers=headers, timeout=10)
        before = server_cpu_seconds(server)
        for _ in range(n):
            assert session.get(url, headers=headers, timeout=10).status_code == 403
        return (server_cpu_seconds(server) - before) / n

    # 2,000 requests a measure: the server's CPU time moves in clock ticks of 10 ms, which at 400
    # requests was a quarter of one request's cost, and one tick more or less decided the ratio.
    # Matching an origin against the 300 rules is a real cost (1.3x in a release build, up to
    # 1.9x under ASan on a loaded machine); what must not come back is a parse per request (3.7x).
    plain = min(cpu_per_request({}) for _ in range(2))
    with_origin = min(cpu_per_request({"Origin": ORIGIN_NOMATCH}) for _ in range(2))
    assert with_origin < 2.5 * plain + 0.00005, (plain, with_origin)
    # The answers themselves are unchanged: a matching origin gets its rule's headers.
    r = session.get(url, headers={"Origin": "https://a.site7-2.example"}, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "https://a.site7-2.example"
    r = session.get(url, headers={"Origin": ORIGIN_NOMATCH}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_configuration_changes_are_seen_at_once(server, s3):
    """Whatever keeps parsed configurations must never answer from an old one."""
    s3.create_bucket(Bucket="corsfresh")
    url = server.endpoint + "/corsfresh/k"
    for i in range(5):
        origin = f"https://v{i}.example"
        s3.put_bucket_cors(Bucket="corsfresh", CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": [origin], "AllowedMethods": ["GET"]}]})
        assert requests.get(url, headers={"Origin": origin}, timeout=10).headers.get(
            "Access-Control-Allow-Origin") == origin
        old = requests.get(url, headers={"Origin": f"https://v{i - 1}.example"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in old.headers
    s3.delete_bucket_cors(Bucket="corsfresh")
    assert "Access-Control-Allow-Origin" not in requests.get(url, headers={"Origin": origin}, timeout=10).headers
    # Dropped with the bucket: a new bucket of the same name starts without one.
    s3.put_bucket_cors(Bucket="corsfresh", CORSConfiguration={
        "CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
    assert requests.get(url, headers={"Origin": origin}, timeout=10).headers["Access-Control-Allow-Origin"] == "*"
    s3.delete_bucket(Bucket="corsfresh")
    s3.create_bucket(Bucket="corsfresh")
    assert "Access-Control-Allow-Origin" not in requests.get(url, headers={"Origin": origin}, timeout=10).headers


def test_preflight_does_not_tell_anyone_which_buckets_exist(server, s3):
    """An anonymous GET answers 403 AccessDenied whether the bucket exists or not; the
    unauthenticated preflight must not tell them apart either ("Bucket not found")."""
    s3.create_bucket(Bucket="hidden-but-real")
    answers = []
    for b in ("hidden-but-real", "no-such-bucket-here"):
        r = requests.options(f"{server.endpoint}/{b}/x", timeout=10,
                             headers={"Origin": ORIGIN_NOMATCH, "Access-Control-Request-Method": "GET"})
        g = requests.get(f"{server.endpoint}/{b}/x", timeout=10)
        answers.append((r.status_code, r.text.split("<RequestId>")[0].replace(b, "B"),
                        g.status_code, g.text.split("<RequestId>")[0].replace(b, "B")))
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 403 and "CORS is not enabled for this bucket" in answers[0][1]


# ---- POST Object ----

def form_post(form, fields=None, file=b"<html><script>alert(1)</script></html>", filename="a.png"):
    data = dict(form["fields"])
    data.update(fields or {})
    return requests.post(form["url"], data=data, files={"file": (filename, file)}, allow_redirects=False,
                         timeout=30)


def assert_absent(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["Error"]["Code"] in ("404", "NoSuchKey")


@pytest.mark.parametrize("field,value", [
    ("Content-Type", "image/png\r\nX-Injected: 1"),
    ("Content-Type", "image/\n"),
    ("Cache-Control", "max-age=1\rX: y"),
    ("Content-Disposition", "inline\x01"),
    ("x-amz-meta-note", "line one\nline two"),
    ("x-amz-meta-note", "del\x7f"),
])
def test_form_fields_that_cannot_be_headers_are_refused(server, s3, bucket, field, value):
    """A form field may hold any byte, a header may not: a Content-Type of "image/png<CRLF>..."
    met ["starts-with", "$Content-Type", "image/"], was stored, and then every GET dropped the
    header, so that browsers sniffed the HTML the "image" held. Refused, nothing stored."""
    prefix = value[:6] if field == "Content-Type" else ""
    cond = ["starts-with", f"${field}", prefix]
    form = s3.generate_presigned_post(bucket, "form/ctl.png", Fields={field: value}, Conditions=[cond])
    r = form_post(form)
    assert r.status_code == 400, r.text
    assert "<Code>InvalidArgument</Code>" in r.text and field in r.text, r.text
    assert_absent(s3, bucket, "form/ctl.png")
    assert wait_tmp_empty(server.data_dir) == []
    # The same form with a clean value stores it, and GET gives the header back.
    clean = "image/png" if field == "Content-Type" else "x\ty"
    form = s3.generate_presigned_post(bucket, "form/ok.png", Fields={field: clean}, Conditions=[cond])
    assert form_post(form).status_code == 204
    got = requests.get(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "form/ok.png"}),
                       timeout=10)
    assert got.headers[field] == clean


def test_preflight_with_a_huge_header_list_is_cheap(server, s3):
    """The preflight is unauthenticated and Access-Control-Request-Headers is the sender's:
    20,000 names against 100 rules of 13 header patterns each cost 261 ms of CPU per preflight,
    four a second filled a core; the 32 KiB header section still holds 8,000 of them. A browser
    lists the few headers a page sets."""
    s3.create_bucket(Bucket="corsheaders")
    rules = [{"AllowedMethods": ["GET", "PUT"], "AllowedOrigins": ["*"],
              "AllowedHeaders": [f"h{i}-{j}-*" for j in range(12)] + ["a*"]} for i in range(100)]
    s3.put_bucket_cors(Bucket="corsheaders", CORSConfiguration={"CORSRules": rules})
    url = server.endpoint + "/corsheaders/x"

    def preflight(names):
        return requests.options(url, timeout=30, headers={
            "Origin": ORIGIN_NOMATCH, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": ", ".join(names)})

    before = server_cpu_seconds(server)
    for _ in range(5):
        r = preflight(["a"] * 8000 + ["zz"])
        assert r.status_code == 400 and "<Code>BadRequest</Code>" in r.text, r.text
    assert server_cpu_seconds(server) - before < 0.1
    # What browsers send still works, up to a list far longer than any page sets.
    r = preflight(["authorization", "amz-sdk-request"] + [f"a-{i}" for i in range(120)])
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert preflight(["zz"]).status_code == 403


# ---- keys and policies ----

def new_key(server, *args):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    out = subprocess.run([COFFER_BIN, "admin", "key", "add", "--json", *args], env=env, capture_output=True,
                         text=True, check=True, timeout=30).stdout
    k = json.loads(out)
    return k["access_key"], s3_client(server.endpoint, k["access_key"], k["secret_key"])


def error_code(fn, *args, **kwargs):
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return e.value.response["Error"]["Code"]


def test_writeonly_key_cannot_retag_existing_objects(server, s3, bucket):
    """Tags decide access (s3:ExistingObjectTag): with "Deny anonymous GetObject of objects tagged
    confidential=true" next to a public read, a writeonly key erased the tag with an empty
    PutObjectTagging and the backup became readable by anyone. DeleteObjectTagging, which does
    the same, was already refused. A writeonly key tags what it creates, in the PUT."""
    s3.put_object(Bucket=bucket, Key="vault/db.dump", Body=b"confidential", Tagging="confidential=true")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/confidential": "true"}}}]}))
    try:
        url = f"{server.endpoint}/{bucket}/vault/db.dump"
        assert requests.get(url, timeout=10).status_code == 403
        _, writer = new_key(server, "--policy", "writeonly", "--bucket", bucket)
        assert error_code(writer.put_object_tagging, Bucket=bucket, Key="vault/db.dump",
                          Tagging={"TagSet": []}) == "AccessDenied"
        assert error_code(writer.put_object_tagging, Bucket=bucket, Key="vault/db.dump",
                          Tagging={"TagSet": [{"Key": "confidential", "Value": "false"}]}) == "AccessDenied"
        assert s3.get_object_tagging(Bucket=bucket, Key="vault/db.dump")["TagSet"] == [
            {"Key": "confidential", "Value": "true"}]
        assert requests.get(url, timeout=10).status_code == 403
        # Tags given with the creating PUT stay the writeonly key's to set.
        writer.put_object(Bucket=bucket, Key="vault/new.dump", Body=b"n", Tagging="confidential=true")
        assert s3.get_object_tagging(Bucket=bucket, Key="vault/new.dump")["TagSet"] == [
            {"Key": "confidential", "Value": "true"}]
        # A readwrite key still retags.
        _, editor = new_key(server, "--policy", "readwrite", "--bucket", bucket)
        editor.put_object_tagging(Bucket=bucket, Key="vault/new.dump", Tagging={"TagSet": []})
        assert s3.get_object_tagging(Bucket=bucket, Key="vault/new.dump")["TagSet"] == []
    finally:
        s3.delete_bucket_policy(Bucket=bucket)


def test_responses_to_an_origin_no_rule_allows_still_vary_on_it(server, s3):
    """A shared cache keyed on the URL stored the answer to an origin no rule allows (no
    Access-Control-* headers and no Vary) and served it to the shop's own pages, whose browsers
    then refused it: one request from anywhere poisoned the cache for everyone."""
    s3.create_bucket(Bucket="corsvary")
    s3.put_object(Bucket="corsvary", Key="img.png", Body=b"png")
    s3.put_bucket_cors(Bucket="corsvary", CORSConfiguration={
        "CORSRules": [{"AllowedOrigins": ["https://shop.example"], "AllowedMethods": ["GET"]}]})
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "corsvary", "Key": "img.png"})
    r = requests.get(url, headers={"Origin": ORIGIN_NOMATCH}, timeout=10)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    assert "Origin" in r.headers.get("Vary", ""), r.headers
    r = requests.get(url, headers={"Origin": "https://shop.example"}, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in r.headers["Vary"]


# ---- probes that held: kept so that they keep holding ----

def test_post_filenames_are_literal_key_text(server, s3, bucket):
    """${filename} is the sender's: "../" stays text inside the signed prefix (keys are not
    paths), a NUL in a part header is malformed, and an overlong name is refused."""
    form = s3.generate_presigned_post(bucket, "up/${filename}", Conditions=[["starts-with", "$key", "up/"]])
    assert form_post(form, filename="../../etc/passwd", file=b"p").status_code == 204
    assert s3.get_object(Bucket=bucket, Key="up/../../etc/passwd")["Body"].read() == b"p"
    r = form_post(form, filename="a" * 1100)
    assert r.status_code == 400 and "MalformedPOSTRequest" in r.text
    fields = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
                      for k, v in form["fields"].items())
    body = fields + b'--b\r\nContent-Disposition: form-data; name="file"; filename="x\x00y"\r\n\r\nz\r\n--b--\r\n'
    r = requests.post(form["url"], data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=10)
    assert r.status_code == 400 and "MalformedPOSTRequest" in r.text
    assert_absent(s3, bucket, "up/x")
    # A file part over content-length-range is cut off at the first byte too many.
    form = s3.generate_presigned_post(bucket, "up/big", Conditions=[["content-length-range", 0, 1000]])
    r = form_post(form, file=b"z" * 100_000)
    assert r.status_code == 400 and "EntityTooLarge" in r.text
    assert_absent(s3, bucket, "up/big")
    assert wait_tmp_empty(server.data_dir) == []


def test_redirects_that_are_not_http_urls_are_not_followed(server, s3, bucket):
    for target in ("javascript:alert(1)", "//evil.example/x", "https://evil.example/\r\nSet-Cookie: a=b"):
        form = s3.generate_presigned_post(bucket, "redir.txt", Fields={"success_action_redirect": target},
                                          Conditions=[{"success_action_redirect": target}])
        r = form_post(form, file=b"r")
        assert r.status_code == 204 and r.headers["Location"].endswith(f"/{bucket}/redir.txt"), (target, r.headers)
        assert "Set-Cookie" not in r.headers


def test_injected_headers_and_pipelining_after_a_refusal(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="victim", Body=b"orig")
    host = host_of(server)
    h = sign_headers("PUT", host, f"/{bucket}/victim", {"Content-Length": "3"}, body=b"new")
    h["X-AMZ-META-EVIL"] = "1"
    assert raw_exchange(server.port, build_request("PUT", f"/{bucket}/victim", h, b"new")).status == 403
    h = sign_headers("PUT", host, f"/{bucket}/victim", {"Content-Length": "3", "x-amz-meta-a": "1"}, body=b"new")
    req = build_request("PUT", f"/{bucket}/victim", h, b"new").replace(b"\r\n\r\n", b"\r\nX-Amz-Meta-A: 2\r\n\r\n", 1)
    assert raw_exchange(server.port, req).code == "SignatureDoesNotMatch"
    # A refused PUT whose body is a request: the connection closes, the inner one never runs.
    inner = build_request("DELETE", f"/{bucket}/victim", sign_headers("DELETE", host, f"/{bucket}/victim"))
    h = sign_headers("PUT", host, f"/{bucket}/victim", {"Content-Length": str(len(inner))}, body=inner)
    h["x-amz-copy-source"] = f"{bucket}/small"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(build_request("PUT", f"/{bucket}/victim", h, inner) + inner)
        assert read_response(s).status == 403
        assert read_response(s, 3) is None
    # Expect: 100-continue with an early refusal: answered before any body, then closed.
    h = sign_headers("PUT", host, f"/{bucket}/victim", {"Content-Length": "100000", "Expect": "100-continue"},
                     payload_hash="UNSIGNED-PAYLOAD")
    h["x-amz-meta-x"] = "1"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(build_request("PUT", f"/{bucket}/victim", h))
        r = read_response(s, 10)
        assert r.status == 403 and r.headers.get("connection") == "close"
    got = s3.get_object(Bucket=bucket, Key="victim")
    assert got["Body"].read() == b"orig" and got["Metadata"] == {}
    assert wait_tmp_empty(server.data_dir) == []


def aws_chunked(data, piece):
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + piece]), data[i:i + piece]) for i in range(0, len(data), piece))
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("size", [16383, 16384, 16385, 40000])
def test_aws_chunked_bodies_across_the_inline_limit(server, s3, bucket, size):
    body = os.urandom(size)
    for piece in (7, 1000, 16384):
        enc = aws_chunked(body, piece)
        r = signed_request(server.port, "PUT", f"/{bucket}/chunk{size}", body=enc, headers={
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(size)},
            payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        assert r.status == 200, r
        assert s3.get_object(Bucket=bucket, Key=f"chunk{size}")["Body"].read() == body
    # Declared 10 bytes, sent 20 KiB; declared 20,000, sent 100: refused, the object kept.
    for declared, sent in ((10, 20480), (20000, 100)):
        enc = aws_chunked(b"A" * sent, 8192)
        r = signed_request(server.port, "PUT", f"/{bucket}/chunk{size}", body=enc, headers={
            "Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(declared)},
            payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        assert r.status == 400 and r.code == "IncompleteBody", r
    assert s3.get_object(Bucket=bucket, Key=f"chunk{size}")["Body"].read() == body
    assert wait_tmp_empty(server.data_dir) == []


def test_completion_retries_never_resurrect(server, s3, bucket):
    def upload(key, body):
        up = s3.create_multipart_upload(Bucket=bucket, Key=key)
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=body)["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload=parts)
        return up["UploadId"], parts

    uid, parts = upload("mpu/gone", b"old")
    s3.delete_object(Bucket=bucket, Key="mpu/gone")
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu/gone", UploadId=uid, MultipartUpload=parts)
    assert_absent(s3, bucket, "mpu/gone")
    uid, parts = upload("mpu/over", b"old")
    s3.put_object(Bucket=bucket, Key="mpu/over", Body=b"new")
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu/over", UploadId=uid, MultipartUpload=parts)
    assert s3.get_object(Bucket=bucket, Key="mpu/over")["Body"].read() == b"new"
    assert error_code(s3.complete_multipart_upload, Bucket=bucket, Key="mpu/other", UploadId=uid,
                      MultipartUpload=parts) == "NoSuchUpload"
    assert error_code(s3.complete_multipart_upload, Bucket=bucket, Key="mpu/over", UploadId=uid,
                      MultipartUpload={"Parts": []}) in ("NoSuchUpload", "MalformedXML", "InvalidRequest")
    # Another key's retry of the same completion: only what its own rights allow.
    _, reader = new_key(server, "--policy", "readonly")
    assert error_code(reader.complete_multipart_upload, Bucket=bucket, Key="mpu/over", UploadId=uid,
                      MultipartUpload=parts) == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="mpu/over")["Body"].read() == b"new"


def test_racing_writeonly_creations_have_one_winner(server, s3, bucket):
    _, writer = new_key(server, "--policy", "writeonly", "--bucket", bucket)
    for round_ in range(10):
        key, wins = f"race/{round_}", []
        start = threading.Barrier(8)

        def create(i):
            body = b"%d" % i * (10 if i % 2 else 3000)  # inline and not
            start.wait()
            try:
                writer.put_object(Bucket=bucket, Key=key, Body=body)
                wins.append(body)
            except ClientError:
                pass

        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1, (key, len(wins))
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == wins[0]


def test_writeonly_key_cannot_read_through_copies(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"TOPSECRET")
    _, writer = new_key(server, "--policy", "writeonly", "--bucket", bucket)
    assert error_code(writer.copy_object, Bucket=bucket, Key="copy/new", CopySource=f"{bucket}/secret.txt") == \
        "AccessDenied"
    up = writer.create_multipart_upload(Bucket=bucket, Key="copy/part")
    # The part's ETag would be the MD5 of one byte: the object read a byte at a time.
    assert error_code(writer.upload_part_copy, Bucket=bucket, Key="copy/part", UploadId=up["UploadId"],
                      PartNumber=1, CopySource=f"{bucket}/secret.txt", CopySourceRange="bytes=0-0") == \
        "AccessDenied"


def test_bucket_deleted_while_puts_are_batched(server, s3):
    """Writes queued in a group commit when their bucket goes: none lands in the bucket of the
    same name made next."""
    s3.create_bucket(Bucket="batched")
    generation, stop = [0], threading.Event()
    writer = s3_client(server.endpoint, max_pool_connections=8)

    def put(t):
        i = 0
        while not stop.is_set():
            try:
                writer.put_object(Bucket="batched", Key=f"g{generation[0]}/{t}/{i}", Body=b"x" * 100)
            except ClientError:
                pass
            i += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=put, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    deleted, leftovers, deadline = 0, [], time.monotonic() + 8
    try:
        while time.monotonic() < deadline:
            try:
                keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket="batched").get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket="batched", Delete={"Objects": keys})
                s3.delete_bucket(Bucket="batched")
            except ClientError:
                continue
            deleted += 1
            gone = generation[0]
            generation[0] += 1
            time.sleep(0.03)
            s3.create_bucket(Bucket="batched")
            leftovers += [o["Key"] for o in s3.list_objects_v2(Bucket="batched").get("Contents", [])
                          if int(o["Key"].split("/")[0][1:]) <= gone]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert deleted >= 3 and leftovers == []


def test_more_cors_buckets_than_kept_parsed_each_answer_their_own(server, s3):
    names = [f"corsmany{i}" for i in range(20)]
    for i, b in enumerate(names):
        s3.create_bucket(Bucket=b)
        s3.put_bucket_cors(Bucket=b, CORSConfiguration={
            "CORSRules": [{"AllowedOrigins": [f"https://b{i}.example"], "AllowedMethods": ["GET"]}]})
    session = requests.Session()
    for _ in range(3):
        for i, b in enumerate(reversed(names)):
            i = len(names) - 1 - i
            r = session.get(f"{server.endpoint}/{b}/k", headers={"Origin": f"https://b{i}.example"}, timeout=10)
            assert r.headers.get("Access-Control-Allow-Origin") == f"https://b{i}.example", b
            r = session.get(f"{server.endpoint}/{b}/k", headers={"Origin": f"https://b{(i + 1) % 20}.example"},
                            timeout=10)
            assert "Access-Control-Allow-Origin" not in r.headers, b
    assert s3.get_bucket_cors(Bucket=names[3])["CORSRules"][0]["AllowedOrigins"] == ["https://b3.example"]


def test_a_recreated_bucket_does_not_inherit_the_old_policy(server, s3):
    s3.create_bucket(Bucket="reborn")
    s3.put_bucket_policy(Bucket="reborn", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reborn/*"}]}))
    s3.put_object(Bucket="reborn", Key="k", Body=b"public")
    url = f"{server.endpoint}/reborn/k"
    session = requests.Session()
    assert session.get(url, timeout=10).content == b"public"  # parsed and kept
    s3.delete_object(Bucket="reborn", Key="k")
    s3.delete_bucket(Bucket="reborn")
    s3.create_bucket(Bucket="reborn")
    s3.put_object(Bucket="reborn", Key="k", Body=b"private")
    assert session.get(url, timeout=10).status_code == 403
    assert error_code(s3.get_bucket_policy, Bucket="reborn") == "NoSuchBucketPolicy"


def test_a_prefix_condition_holds_against_listing_tricks(server, s3):
    """Anonymous listing allowed for s3:prefix public/*: a second prefix, v1 and v2, markers,
    tokens pointing elsewhere and a NUL never list outside it."""
    s3.create_bucket(Bucket="listing")
    for k in ("public/a", "private/b"):
        s3.put_object(Bucket="listing", Key=k, Body=b"x")
    s3.put_bucket_policy(Bucket="listing", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::listing",
         "Condition": {"StringLike": {"s3:prefix": "public/*"}}}]}))
    token = "cHJpdmF0ZS9i"  # base64("private/b")
    for query in ("prefix=public/", "prefix=public/&prefix=private/", "prefix=private/&prefix=public/",
                  "list-type=2&prefix=public/&start-after=a", "list-type=2&prefix=public/&prefix=",
                  "prefix=public%2F", "prefix=public/%00x", f"list-type=2&prefix=public/&continuation-token={token}",
                  "prefix=public/&delimiter=/&marker=private/a", "prefix=public/../private/", "", "list-type=2"):
        r = requests.get(f"{server.endpoint}/listing?{query}", timeout=10)
        assert "private/b" not in r.text, (query, r.text)
        assert r.status_code in (200, 400, 403), (query, r.status_code)


@pytest.mark.parametrize("param,value", [
    ("ResponseContentType", "text/plain\r\nX-Injected: 1"),
    ("ResponseContentDisposition", 'attachment; filename="a\n.html"'),
    ("ResponseCacheControl", "no-store\x01"),
])
def test_response_overrides_that_cannot_be_headers_are_refused(server, s3, bucket, param, value):
    """A presigned GET with response-content-disposition=attachment; filename="<an uploaded
    name holding LF>" went out with neither the stored nor the asked header: the download
    became an inline page, typeless for browsers to sniff."""
    s3.put_object(Bucket=bucket, Key="page.bin", Body=b"<script>1</script>", ContentType="application/octet-stream")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "page.bin", param: value})
    r = requests.get(url, timeout=10)
    assert r.status_code == 400 and "<Code>InvalidArgument</Code>" in r.text, (r.status_code, r.headers, r.text)
    # A clean override is applied; without one the stored type is sent.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "page.bin",
                                                          "ResponseContentDisposition": "attachment"})
    r = requests.get(url, timeout=10)
    assert r.headers["Content-Disposition"] == "attachment"
    assert r.headers["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize("tagging", ["a=%01x", "a%1F=v", "a=x%0Cy"])
def test_tags_that_xml_cannot_carry_are_refused(server, s3, bucket, tagging):
    """x-amz-tagging "a=%01x" was stored, and GetObjectTagging then answered a document no XML
    parser accepts (&#1; is not allowed in XML 1.0): no client could read that object's tags."""
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"v1", Tagging="ok=1")
    assert error_code(s3.put_object, Bucket=bucket, Key="tagged", Body=b"v2", Tagging=tagging) == "InvalidTag"
    assert s3.get_object(Bucket=bucket, Key="tagged")["Body"].read() == b"v1"
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "ok", "Value": "1"}]
    # Tab and line breaks are XML text, and stay allowed.
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"v3", Tagging="a=x%09y%0Az")
    assert s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"] == [{"Key": "a", "Value": "x\ty\nz"}]
