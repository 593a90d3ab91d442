"""rclone (Debian's rclone, /usr/bin/rclone) against coffer.

A remote `coffer` of type s3 (provider Other, path style) in a config file in tmp, passed with
--config: the secret never appears on a command line. copy of a tree, sync with deletions,
check, a 40 MiB multipart upload in 5 MiB parts, lsf/lsd of folders that hold only folders, cat.
"""
import hashlib
import os
import subprocess

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY

RCLONE = "/usr/bin/rclone"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def rclone(server, tmp_path_factory):
    """run(*args, check=True) -> CompletedProcess of rclone with the `coffer` remote."""
    home = tmp_path_factory.mktemp("rclone")
    cfg = home / "rclone.conf"
    cfg.write_text(
        "[coffer]\n"
        "type = s3\n"
        "provider = Other\n"
        f"endpoint = {server.endpoint}\n"
        f"access_key_id = {ACCESS_KEY}\n"
        f"secret_access_key = {SECRET_KEY}\n"
        f"region = {REGION}\n"
        "force_path_style = true\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
    env["HOME"] = str(home)

    def run(*args, check=True):
        cmd = [RCLONE, "--config", str(cfg), "--retries", "1", "--low-level-retries", "1",
               "--cache-dir", str(home / "cache"), *args]
        proc = subprocess.run(cmd, capture_output=True, timeout=120, env=env)
        proc.stdout = proc.stdout.decode("utf-8", "replace") if args[0] != "cat" else proc.stdout
        proc.stderr = proc.stderr.decode("utf-8", "replace")
        assert SECRET_KEY not in proc.stderr
        if check and proc.returncode != 0:
            pytest.fail(f"rclone {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}\n"
                        f"server log tail:\n{server.log()[-3000:]}")
        return proc
    return run


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def keys(s3, bucket, prefix=""):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def test_copy_sync_check(rclone, s3, tmp_path):
    bucket = "rclone-tree"
    rclone("mkdir", f"coffer:{bucket}")
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    src = tmp_path / "src"
    tree = {f"d{i % 4}/sub{i % 3}/f{i:03d}.bin": os.urandom(100 + 997 * i) for i in range(40)}
    tree["top.txt"] = b"top level\n"
    tree["empty.dat"] = b""
    tree["caf\u00e9/na\u00efve file (1).txt"] = b"unicode\n"
    for rel, data in tree.items():
        write(str(src / rel), data)

    rclone("copy", str(src), f"coffer:{bucket}/tree")
    listing = keys(s3, bucket)
    assert listing == {"tree/" + k: len(v) for k, v in tree.items()}
    for rel in ("top.txt", "d1/sub1/f013.bin", "caf\u00e9/na\u00efve file (1).txt"):
        assert s3.get_object(Bucket=bucket, Key="tree/" + rel)["Body"].read() == tree[rel]

    proc = rclone("check", str(src), f"coffer:{bucket}/tree")
    assert "0 differences found" in proc.stderr, proc.stderr

    # sync: a changed file, a new file, two deleted ones; the remote follows, deletions included.
    write(str(src / "top.txt"), b"top level, changed and longer\n")
    write(str(src / "d9/new.txt"), b"new\n")
    os.remove(str(src / "d0/sub0/f000.bin"))
    os.remove(str(src / "d1/sub1/f013.bin"))
    rclone("sync", str(src), f"coffer:{bucket}/tree")
    listing = keys(s3, bucket)
    assert "tree/d0/sub0/f000.bin" not in listing and "tree/d1/sub1/f013.bin" not in listing
    assert listing["tree/d9/new.txt"] == 4
    assert s3.get_object(Bucket=bucket, Key="tree/top.txt")["Body"].read() == \
        b"top level, changed and longer\n"
    proc = rclone("check", str(src), f"coffer:{bucket}/tree")
    assert "0 differences found" in proc.stderr, proc.stderr

    # check does see a difference: an object changed behind rclone's back (same size).
    s3.put_object(Bucket=bucket, Key="tree/d2/sub2/f002.bin",
                  Body=bytes(len(tree["d2/sub2/f002.bin"])))
    proc = rclone("check", str(src), f"coffer:{bucket}/tree", check=False)
    assert proc.returncode != 0
    assert "1 differences found" in proc.stderr, proc.stderr

    # Download the tree back: identical to the local one.
    rclone("sync", str(src), f"coffer:{bucket}/tree")
    back = tmp_path / "back"
    rclone("copy", f"coffer:{bucket}/tree", str(back))
    for dirpath, _, files in os.walk(src):
        for name in files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, src)
            assert open(os.path.join(back, rel), "rb").read() == open(p, "rb").read(), rel
    assert sum(len(f) for _, _, f in os.walk(back)) == sum(len(f) for _, _, f in os.walk(src))

    rclone("purge", f"coffer:{bucket}")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_multipart_40mib(rclone, s3, tmp_path):
    bucket = "rclone-big"
    rclone("mkdir", f"coffer:{bucket}")
    data = os.urandom(40 * MiB)
    write(str(tmp_path / "big.bin"), data)
    rclone("copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
           "--s3-upload-concurrency", "2", str(tmp_path / "big.bin"), f"coffer:{bucket}/x/big.bin")

    head = s3.head_object(Bucket=bucket, Key="x/big.bin")
    assert head["ContentLength"] == len(data)
    etag = head["ETag"].strip('"')
    parts = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert etag == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() \
        + f"-{len(parts)}"
    assert etag.endswith("-8")
    body = s3.get_object(Bucket=bucket, Key="x/big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()

    # rclone keeps the whole-file MD5 in metadata, so md5sum and check work on the multipart ETag.
    md5 = rclone("md5sum", f"coffer:{bucket}/x/big.bin").stdout.split()[0]
    assert md5 == hashlib.md5(data).hexdigest()
    proc = rclone("check", str(tmp_path / "big.bin"), f"coffer:{bucket}/x/")
    assert "0 differences found" in proc.stderr, proc.stderr

    # A ranged read through rclone: cat with offset and count.
    out = rclone("cat", "--offset", str(7 * MiB - 10), "--count", "20",
                 f"coffer:{bucket}/x/big.bin").stdout
    assert out == data[7 * MiB - 10:7 * MiB + 10]


def test_folders_lsd_lsf_cat(rclone, s3):
    bucket = "rclone-dirs"
    s3.create_bucket(Bucket=bucket)
    objects = {
        "a/b/c/file.txt": b"deep file\n",
        "a/b/c2/other.txt": b"other\n",
        "a/b2/d/e.txt": b"e\n",
        "z.txt": b"zzz",
    }
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)

    # `a` and `a/b` hold only folders: lsd lists those folders, lsf shows them with a slash.
    lsd = rclone("lsd", f"coffer:{bucket}/a").stdout
    assert sorted(line.split()[-1] for line in lsd.splitlines()) == ["b", "b2"], lsd
    assert rclone("lsf", f"coffer:{bucket}/a").stdout.split() == ["b/", "b2/"]
    assert rclone("lsf", f"coffer:{bucket}/a/b").stdout.split() == ["c/", "c2/"]
    assert rclone("lsf", f"coffer:{bucket}").stdout.split() == ["a/", "z.txt"]
    assert rclone("lsf", "-R", "--files-only", f"coffer:{bucket}/a").stdout.split() == \
        ["b/c/file.txt", "b/c2/other.txt", "b2/d/e.txt"]
    lsd_root = rclone("lsd", "coffer:").stdout
    assert bucket in lsd_root.split()
    # A folder that does not exist is an empty listing on S3 (no directory objects).
    assert rclone("lsf", f"coffer:{bucket}/nope").stdout == ""
    assert rclone("lsf", f"coffer:{bucket}/a/b/c/file.txt/").stdout == ""

    assert rclone("cat", f"coffer:{bucket}/a/b/c/file.txt").stdout == b"deep file\n"
    cat_all = rclone("cat", "--include", "*.txt", f"coffer:{bucket}/a").stdout
    assert sorted(cat_all.splitlines()) == [b"deep file", b"e", b"other"]

    rclone("delete", f"coffer:{bucket}/a/b")
    assert sorted(keys(s3, bucket)) == ["a/b2/d/e.txt", "z.txt"]
