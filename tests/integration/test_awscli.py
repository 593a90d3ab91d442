"""The AWS CLI (Debian's awscli 2.9.19, /usr/bin/aws) against coffer.

`aws s3` (mb, cp, ls, rm, sync, rb) and `aws s3api` edge cases. Every command runs with
aws_env, whose config keeps transfers below the multipart threshold (multipart is not built
yet); awscli 2.9 has no AWS_ENDPOINT_URL, so each command gets --endpoint-url.
"""
import base64
import hashlib
import json
import os
import random
import urllib.parse

import pytest
from botocore.exceptions import ClientError

from helpers_clients import run_aws


@pytest.fixture(scope="module")
def aws(server, aws_env):
    def run(*args, stdin=None, check=True):
        return run_aws(aws_env, "--endpoint-url", server.endpoint, *args, stdin=stdin,
                       check=check)
    return run


def aws_json(aws, *args):
    out = aws(*args, "--output", "json").stdout
    return json.loads(out) if out.strip() else {}


def utf8_sorted(items):
    return sorted(items, key=lambda s: s.encode("utf-8"))


def all_keys(s3, bucket):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def read_tree(root):
    """{relative path with '/': bytes} of every file under root."""
    tree = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            with open(path, "rb") as f:
                tree[rel] = f.read()
    return tree


def write_tree(root, tree):
    for rel, data in tree.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def test_mb_ls_and_mb_again(aws, s3):
    out = aws("s3", "mb", "s3://cli-mb").stdout.decode()
    assert "make_bucket: cli-mb" in out
    s3.head_bucket(Bucket="cli-mb")
    listing = aws("s3", "ls").stdout.decode()
    assert any(line.split()[-1] == "cli-mb" for line in listing.splitlines()), listing
    again = aws("s3", "mb", "s3://cli-mb", check=False)
    assert again.returncode != 0
    assert b"BucketAlreadyOwnedByYou" in again.stderr


def test_cp_ls_rm(aws, s3, tmp_path):
    s3.create_bucket(Bucket="cli-cp")
    src = tmp_path / "local file.txt"
    data = b"copied by the cli\n" * 100
    src.write_bytes(data)
    out = aws("s3", "cp", str(src), "s3://cli-cp/dir/ünï cøde+plus.txt").stdout.decode()
    assert "upload:" in out
    assert s3.get_object(Bucket="cli-cp", Key="dir/ünï cøde+plus.txt")["Body"].read() == data

    ls = aws("s3", "ls", "s3://cli-cp/dir/").stdout.decode()
    lines = [line for line in ls.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].endswith(" ünï cøde+plus.txt"), ls
    assert str(len(data)) in lines[0].split()
    top = aws("s3", "ls", "s3://cli-cp/").stdout.decode()
    assert "PRE dir/" in top, top

    dst = tmp_path / "back.txt"
    aws("s3", "cp", "s3://cli-cp/dir/ünï cøde+plus.txt", str(dst))
    assert dst.read_bytes() == data

    out = aws("s3", "rm", "s3://cli-cp/dir/ünï cøde+plus.txt").stdout.decode()
    assert "delete:" in out
    assert all_keys(s3, "cli-cp") == []


SYNC_TREE = {
    "a.txt": b"alpha\n",
    "space name.txt": b"with a space\n",
    "plus+name.txt": b"with a plus\n",
    "percent%20name.txt": b"with a percent\n",
    "ünïcödé/日本語.txt": "こんにちは\n".encode(),
    "emoji 😀.txt": b"smile\n",
    "nested/empty.txt": b"",
    "nested/deep/er/file.bin": random.Random(7).randbytes(150_000),
    "nested/deep/er/[brackets] & amp.txt": b"xml-ish name\n",
}


def test_sync_round_trip(aws, s3, tmp_path):
    s3.create_bucket(Bucket="cli-sync")
    up = tmp_path / "up"
    write_tree(up, SYNC_TREE)

    out = aws("s3", "sync", str(up), "s3://cli-sync/tree").stdout.decode()
    assert out.count("upload:") == len(SYNC_TREE), out
    assert utf8_sorted(all_keys(s3, "cli-sync")) == utf8_sorted("tree/" + k for k in SYNC_TREE)
    for rel, data in SYNC_TREE.items():
        assert s3.get_object(Bucket="cli-sync", Key="tree/" + rel)["Body"].read() == data

    # Nothing changed: nothing to do.
    out = aws("s3", "sync", str(up), "s3://cli-sync/tree").stdout.decode()
    assert "upload:" not in out, out

    # Modify one file (new size), delete one, add one; sync --delete mirrors that.
    expected = dict(SYNC_TREE)
    expected["a.txt"] = b"alpha, rewritten and longer\n"
    (up / "a.txt").write_bytes(expected["a.txt"])
    del expected["space name.txt"]
    os.remove(up / "space name.txt")
    expected["new dir/added+1.txt"] = b"added later\n"
    write_tree(up, {"new dir/added+1.txt": expected["new dir/added+1.txt"]})
    out = aws("s3", "sync", "--delete", str(up), "s3://cli-sync/tree").stdout.decode()
    assert out.count("upload:") == 2, out
    assert out.count("delete:") == 1 and "space name.txt" in out, out
    assert utf8_sorted(all_keys(s3, "cli-sync")) == utf8_sorted("tree/" + k for k in expected)
    assert s3.get_object(Bucket="cli-sync", Key="tree/a.txt")["Body"].read() == expected["a.txt"]

    down = tmp_path / "down"
    out = aws("s3", "sync", "s3://cli-sync/tree", str(down)).stdout.decode()
    assert out.count("download:") == len(expected), out
    assert read_tree(down) == expected == read_tree(up)
    out = aws("s3", "sync", "s3://cli-sync/tree", str(down)).stdout.decode()
    assert "download:" not in out, out


def test_cp_stdin_and_stdout(aws, s3):
    s3.create_bucket(Bucket="cli-stream")
    data = random.Random(11).randbytes(300_000) + b"\n\x00tail"
    aws("s3", "cp", "-", "s3://cli-stream/from stdin.bin", stdin=data)
    obj = s3.get_object(Bucket="cli-stream", Key="from stdin.bin")
    assert obj["Body"].read() == data
    assert obj["ETag"] == '"%s"' % hashlib.md5(data).hexdigest()
    out = aws("s3", "cp", "s3://cli-stream/from stdin.bin", "-").stdout
    assert out == data


LIST_KEYS = ([f"dir1/k{i:02d}" for i in range(6)] + [f"dir2/k{i:02d}" for i in range(6)] +
             ["dir2/sub/deep", "top1", "top2", "sp ace/x y", "plus+/a+b", "ünï/ködé", "pct%/q",
              "z-last"])


@pytest.fixture(scope="module")
def list_bucket(s3):
    s3.create_bucket(Bucket="cli-list")
    for k in LIST_KEYS:
        s3.put_object(Bucket="cli-list", Key=k, Body=k.encode())
    return "cli-list"


def test_s3api_list_delimiter_and_prefix(aws, list_bucket):
    r = aws_json(aws, "s3api", "list-objects-v2", "--bucket", list_bucket, "--delimiter", "/")
    assert [o["Key"] for o in r["Contents"]] == ["top1", "top2", "z-last"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == utf8_sorted(
        ["dir1/", "dir2/", "sp ace/", "plus+/", "ünï/", "pct%/"])

    r = aws_json(aws, "s3api", "list-objects-v2", "--bucket", list_bucket, "--prefix", "dir2/",
                 "--delimiter", "/", "--no-paginate")
    assert [o["Key"] for o in r["Contents"]] == [f"dir2/k{i:02d}" for i in range(6)]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["dir2/sub/"]
    assert r["KeyCount"] == 7 and r["Prefix"] == "dir2/"


def test_s3api_list_pagination_max_items(aws, list_bucket):
    seen, token, calls = [], None, 0
    while True:
        args = ["s3api", "list-objects-v2", "--bucket", list_bucket, "--max-items", "7",
                "--page-size", "3"]
        if token:
            args += ["--starting-token", token]
        r = aws_json(aws, *args)
        calls += 1
        page = [o["Key"] for o in r.get("Contents", [])]
        assert len(page) <= 7
        seen += page
        token = r.get("NextToken")
        if not token:
            break
        assert len(page) == 7
        assert calls < 10
    assert calls == 3
    assert seen == utf8_sorted(LIST_KEYS)
    assert len(seen) == len(set(seen))


def test_s3api_list_start_after(aws, list_bucket):
    r = aws_json(aws, "s3api", "list-objects-v2", "--bucket", list_bucket,
                 "--start-after", "dir2/k03", "--no-paginate")
    want = [k for k in utf8_sorted(LIST_KEYS) if k.encode() > b"dir2/k03"]
    assert [o["Key"] for o in r["Contents"]] == want
    assert r["StartAfter"] == "dir2/k03"


def test_s3api_list_encoding_type_url(aws, list_bucket):
    # Asked for explicitly, the CLI prints the keys as the server encoded them.
    r = aws_json(aws, "s3api", "list-objects-v2", "--bucket", list_bucket,
                 "--encoding-type", "url", "--prefix", "p", "--delimiter", "/", "--no-paginate")
    assert r["EncodingType"] == "url"
    assert r["Prefix"] == "p"
    assert [urllib.parse.unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"]] == [
        "pct%/", "plus+/"]
    r = aws_json(aws, "s3api", "list-objects-v2", "--bucket", list_bucket,
                 "--encoding-type", "url")
    raws = [o["Key"] for o in r["Contents"]]
    assert [urllib.parse.unquote_plus(k) for k in raws] == utf8_sorted(LIST_KEYS)
    assert all(k.isascii() and " " not in k for k in raws), raws


def test_s3api_get_object_range(aws, s3, tmp_path):
    s3.create_bucket(Bucket="cli-range")
    data = bytes(range(256)) * 4
    s3.put_object(Bucket="cli-range", Key="r.bin", Body=data)
    out = tmp_path / "part"
    r = aws_json(aws, "s3api", "get-object", "--bucket", "cli-range", "--key", "r.bin",
                 "--range", "bytes=100-299", str(out))
    assert out.read_bytes() == data[100:300]
    assert r["ContentRange"] == f"bytes 100-299/{len(data)}"
    assert r["ContentLength"] == 200
    bad = aws("s3api", "get-object", "--bucket", "cli-range", "--key", "r.bin", "--range",
              f"bytes={len(data)}-", str(out), check=False)
    assert bad.returncode != 0 and b"InvalidRange" in bad.stderr


def test_head_object_metadata_and_content_type(aws, s3, tmp_path):
    s3.create_bucket(Bucket="cli-meta")
    body = tmp_path / "body.txt"
    body.write_bytes(b"metadata body")
    aws("s3api", "put-object", "--bucket", "cli-meta", "--key", "api.txt", "--body", str(body),
        "--content-type", "text/x-test; charset=utf-8", "--metadata", "color=blue,size=XL",
        "--cache-control", "no-cache")
    r = aws_json(aws, "s3api", "head-object", "--bucket", "cli-meta", "--key", "api.txt")
    assert r["Metadata"] == {"color": "blue", "size": "XL"}
    assert r["ContentType"] == "text/x-test; charset=utf-8"
    assert r["CacheControl"] == "no-cache"
    assert r["ContentLength"] == len(b"metadata body")
    assert r["ETag"] == '"%s"' % hashlib.md5(b"metadata body").hexdigest()
    assert r["LastModified"]

    # `aws s3 cp` guesses the type from the extension unless told.
    aws("s3", "cp", str(body), "s3://cli-meta/guessed.txt", "--metadata", "origin=cp")
    r = aws_json(aws, "s3api", "head-object", "--bucket", "cli-meta", "--key", "guessed.txt")
    assert r["ContentType"] == "text/plain"
    assert r["Metadata"] == {"origin": "cp"}


def test_put_object_wrong_content_md5(aws, s3, tmp_path):
    s3.create_bucket(Bucket="cli-md5")
    body = tmp_path / "b.bin"
    body.write_bytes(b"the real body")
    s3.put_object(Bucket="cli-md5", Key="k", Body=b"previous")
    wrong = base64.b64encode(hashlib.md5(b"some other body").digest()).decode()
    r = aws("s3api", "put-object", "--bucket", "cli-md5", "--key", "k", "--body", str(body),
            "--content-md5", wrong, check=False)
    assert r.returncode != 0
    assert b"BadDigest" in r.stderr, r.stderr
    assert s3.get_object(Bucket="cli-md5", Key="k")["Body"].read() == b"previous"


def test_rb_non_empty_bucket(aws, s3):
    s3.create_bucket(Bucket="cli-rb")
    s3.put_object(Bucket="cli-rb", Key="one", Body=b"1")
    s3.put_object(Bucket="cli-rb", Key="dir/two", Body=b"2")
    r = aws("s3", "rb", "s3://cli-rb", check=False)
    assert r.returncode != 0
    assert b"BucketNotEmpty" in r.stderr, r.stderr
    assert utf8_sorted(all_keys(s3, "cli-rb")) == ["dir/two", "one"]

    out = aws("s3", "rb", "--force", "s3://cli-rb").stdout.decode()
    assert "remove_bucket: cli-rb" in out
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket="cli-rb")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
