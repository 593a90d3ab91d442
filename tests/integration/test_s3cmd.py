"""s3cmd (Debian's s3cmd, /usr/bin/s3cmd) against coffer.

One config file in tmp: path-style addressing (host_bucket without %(bucket)s), plain HTTP,
SigV4. mb, put (small and a 20 MiB multipart upload in 5 MiB parts), ls, la, get, info, del, rb,
sync both ways, and s3cmd's listing checked against boto3's.
"""
import hashlib
import os
import re
import subprocess

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY

S3CMD = "/usr/bin/s3cmd"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3cmd(server, tmp_path_factory):
    """run(*args, check=True) -> CompletedProcess of s3cmd with a config for this server."""
    host = f"127.0.0.1:{server.port}"
    cfg = tmp_path_factory.mktemp("s3cmd") / "s3cmd.cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {ACCESS_KEY}\n"
        f"secret_key = {SECRET_KEY}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"
        f"bucket_location = {REGION}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "check_ssl_certificate = False\n"
        "progress_meter = False\n"
        "socket_timeout = 60\n"
        "max_retries = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3CMD"))}
    env["HOME"] = str(cfg.parent)

    def run(*args, check=True):
        proc = subprocess.run([S3CMD, "-c", str(cfg), "--no-progress", *args],
                              capture_output=True, text=True, timeout=120, env=env)
        if check and proc.returncode != 0:
            pytest.fail(f"s3cmd {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
                        f"server log tail:\n{server.log()[-3000:]}")
        return proc
    return run


def ls_entries(out):
    """[(size or 'DIR', s3 url)] of the lines of `s3cmd ls`/`la` output."""
    entries = []
    for line in out.splitlines():
        m = re.match(r"^\s*(?:\S+ \S+\s+)?(DIR|\d+)\s+(s3://\S.*)$", line)
        if m:
            entries.append((m.group(1), m.group(2).strip()))
    return entries


def boto_listing(s3, bucket, prefix=""):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_mb_put_ls_get_info(s3cmd, s3, tmp_path):
    bucket = "s3cmd-basic"
    out = s3cmd("mb", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/" in out
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert bucket in s3cmd("ls").stdout

    small = b"hello from s3cmd\n" * 37
    write(str(tmp_path / "small.txt"), small)
    s3cmd("put", str(tmp_path / "small.txt"), f"s3://{bucket}/docs/small.txt")
    got = s3.get_object(Bucket=bucket, Key="docs/small.txt")
    assert got["Body"].read() == small
    assert got["ETag"].strip('"') == hashlib.md5(small).hexdigest()

    big = os.urandom(20 * MiB)
    write(str(tmp_path / "big.bin"), big)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(tmp_path / "big.bin"),
          f"s3://{bucket}/big.bin")
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(big)
    assert head["ETag"].strip('"').endswith("-4"), head["ETag"]
    parts = [big[i:i + 5 * MiB] for i in range(0, len(big), 5 * MiB)]
    expect = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-4"
    assert head["ETag"].strip('"') == expect

    # ls: the top level shows the object and the common prefix; -r shows every object.
    top = ls_entries(s3cmd("ls", f"s3://{bucket}").stdout)
    assert ("DIR", f"s3://{bucket}/docs/") in top
    assert (str(len(big)), f"s3://{bucket}/big.bin") in top
    rec = ls_entries(s3cmd("ls", "-r", f"s3://{bucket}").stdout)
    assert sorted(rec) == sorted([(str(len(small)), f"s3://{bucket}/docs/small.txt"),
                                  (str(len(big)), f"s3://{bucket}/big.bin")])

    # la: every object of every bucket.
    la = ls_entries(s3cmd("la", "-r").stdout)
    assert (str(len(small)), f"s3://{bucket}/docs/small.txt") in la
    assert (str(len(big)), f"s3://{bucket}/big.bin") in la

    # get: byte-identical, small and multipart.
    s3cmd("get", f"s3://{bucket}/docs/small.txt", str(tmp_path / "small.out"))
    s3cmd("get", f"s3://{bucket}/big.bin", str(tmp_path / "big.out"))
    assert (tmp_path / "small.out").read_bytes() == small
    assert (tmp_path / "big.out").read_bytes() == big

    # info: size and MD5 (s3cmd keeps the real MD5 of a multipart upload in its metadata).
    info = s3cmd("info", f"s3://{bucket}/docs/small.txt").stdout
    assert re.search(r"File size:\s+%d\b" % len(small), info), info
    assert hashlib.md5(small).hexdigest() in info, info
    info = s3cmd("info", f"s3://{bucket}/big.bin").stdout
    assert re.search(r"File size:\s+%d\b" % len(big), info), info
    assert hashlib.md5(big).hexdigest() in info, info
    binfo = s3cmd("info", f"s3://{bucket}").stdout
    assert f"s3://{bucket}/ (bucket)" in binfo, binfo

    # del, then rb of the emptied bucket.
    s3cmd("del", f"s3://{bucket}/docs/small.txt", f"s3://{bucket}/big.bin")
    assert boto_listing(s3, bucket) == {}
    assert ls_entries(s3cmd("ls", "-r", f"s3://{bucket}").stdout) == []
    s3cmd("rb", f"s3://{bucket}")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # A bucket that is gone: s3cmd says so and fails.
    proc = s3cmd("ls", f"s3://{bucket}", check=False)
    assert proc.returncode != 0
    assert "NoSuchBucket" in proc.stderr or "does not exist" in proc.stderr, proc.stderr


def test_sync_tree_and_listing_matches_boto3(s3cmd, s3, tmp_path):
    bucket = "s3cmd-sync"
    s3cmd("mb", f"s3://{bucket}")
    src = tmp_path / "src"
    tree = {
        "a.txt": b"alpha\n",
        "empty": b"",
        "dir1/b.bin": os.urandom(70_000),
        "dir1/dir2/c.txt": b"gamma " * 1000,
        "dir1/dir2/dir3/d.dat": os.urandom(1234),
        "sp ace/\u00e9t\u00e9 & co+plus.txt": "unicode key\n".encode(),
    }
    for rel, data in tree.items():
        write(str(src / rel), data)

    s3cmd("sync", str(src) + "/", f"s3://{bucket}/tree/")
    listing = boto_listing(s3, bucket)
    assert sorted(listing) == sorted("tree/" + k for k in tree)
    for rel, data in tree.items():
        assert s3.get_object(Bucket=bucket, Key="tree/" + rel)["Body"].read() == data, rel
        assert listing["tree/" + rel]["Size"] == len(data)

    # s3cmd's recursive listing names exactly boto3's keys with boto3's sizes.
    rec = ls_entries(s3cmd("ls", "-r", f"s3://{bucket}").stdout)
    assert sorted(rec) == sorted((str(o["Size"]), f"s3://{bucket}/{k}") for k, o in listing.items())
    top = ls_entries(s3cmd("ls", f"s3://{bucket}/tree/").stdout)
    assert sorted(top) == sorted([
        (str(len(tree["a.txt"])), f"s3://{bucket}/tree/a.txt"),
        ("0", f"s3://{bucket}/tree/empty"),
        ("DIR", f"s3://{bucket}/tree/dir1/"),
        ("DIR", f"s3://{bucket}/tree/sp ace/"),
    ])

    # A second sync with one change, one addition and one deletion (--delete-removed).
    write(str(src / "a.txt"), b"alpha, changed\n")
    write(str(src / "dir1/new.txt"), b"new file\n")
    os.remove(str(src / "dir1/dir2/dir3/d.dat"))
    out = s3cmd("sync", "--delete-removed", str(src) + "/", f"s3://{bucket}/tree/").stdout
    assert "d.dat" in out  # reported as deleted
    listing = boto_listing(s3, bucket)
    assert "tree/dir1/dir2/dir3/d.dat" not in listing
    assert "tree/dir1/new.txt" in listing
    assert s3.get_object(Bucket=bucket, Key="tree/a.txt")["Body"].read() == b"alpha, changed\n"
    # Nothing left to do: a third sync uploads nothing.
    out = s3cmd("sync", "--delete-removed", "--stats", str(src) + "/",
                f"s3://{bucket}/tree/").stdout
    assert "upload:" not in out and "delete:" not in out, out

    # And back down: the bucket's tree equals the local one.
    dst = tmp_path / "dst"
    dst.mkdir()
    s3cmd("sync", f"s3://{bucket}/tree/", str(dst) + "/")
    got = {}
    for dirpath, _, files in os.walk(dst):
        for name in files:
            p = os.path.join(dirpath, name)
            got[os.path.relpath(p, dst)] = open(p, "rb").read()
    want = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            p = os.path.join(dirpath, name)
            want[os.path.relpath(p, src)] = open(p, "rb").read()
    assert got == want

    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/")
    assert boto_listing(s3, bucket) == {}
    s3cmd("rb", f"s3://{bucket}")
