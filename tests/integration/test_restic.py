"""restic (Debian's restic, /usr/bin/restic) with its s3 backend against coffer over plain HTTP.

restic's minio-go client signs PUT bodies as aws-chunked streaming uploads
(x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD) when the endpoint is not HTTPS, so this
suite also covers the server's aws-chunked decoder with a real client. init, backup of a
generated tree (a few hundred files, one of 30 MiB, nested dirs, symlinks), check --read-data,
restore and compare, a second backup after changes, snapshots --json.
"""
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess

import pytest

from conftest import ACCESS_KEY, SECRET_KEY

RESTIC = "/usr/bin/restic"
MiB = 1024 * 1024
BUCKET = "restic"


@pytest.fixture(scope="module")
def restic(server, tmp_path_factory):
    """run(*args, check=True) -> CompletedProcess of restic on s3:ENDPOINT/restic/repo."""
    home = tmp_path_factory.mktemp("restic")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_"))}
    env.update({
        "HOME": str(home),
        "RESTIC_REPOSITORY": f"s3:{server.endpoint}/{BUCKET}/repo",
        "RESTIC_PASSWORD": "correct horse battery staple",
        "RESTIC_CACHE_DIR": str(home / "cache"),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    })

    def run(*args, check=True):
        proc = subprocess.run([RESTIC, "--no-lock" if args[0] == "snapshots" else "--quiet",
                               *args], capture_output=True, text=True, timeout=150, env=env)
        assert SECRET_KEY not in proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            pytest.fail(f"restic {' '.join(args)} exited {proc.returncode}\n"
                        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}\n"
                        f"server log tail:\n{server.log()[-6000:]}")
        return proc
    return run


def make_tree(root, rng):
    """A few hundred small files in nested dirs, a 30 MiB random file, symlinks, an empty dir."""
    os.makedirs(root)
    for i in range(300):
        d = os.path.join(root, f"lvl1-{i % 5}", f"lvl2-{i % 7}", *([f"lvl3-{i % 3}"] if i % 2 else []))
        os.makedirs(d, exist_ok=True)
        size = rng.choice([0, 1, 17, 512, 4096, 10_000, 65_537, 200_000])
        with open(os.path.join(d, f"file-{i:03d}.dat"), "wb") as f:
            f.write(rng.randbytes(size))
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(rng.randbytes(30 * MiB))
    with open(os.path.join(root, "text with spaces \u00e9.txt"), "w") as f:
        f.write("restic over coffer\n" * 100)
    os.symlink("lvl1-0/lvl2-0/file-000.dat", os.path.join(root, "link-to-file"))
    os.symlink("lvl1-1", os.path.join(root, "link-to-dir"))
    os.symlink("does/not/exist", os.path.join(root, "dangling"))
    os.makedirs(os.path.join(root, "empty-dir"))


def snapshot_of(root):
    """{relative path: ('f', size, sha256) | ('l', target) | ('d',)} of everything under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("f", st.st_size, hashlib.sha256(f.read()).hexdigest())
    return out


def test_backup_check_restore(restic, s3, tmp_path):
    rng = random.Random(20261123)
    src = str(tmp_path / "src")
    make_tree(src, rng)
    before = snapshot_of(src)
    assert sum(1 for v in before.values() if v[0] == "f") > 300

    restic("init")
    assert BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    objs = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="repo/")
            .get("Contents", [])]
    assert "repo/config" in objs and any(k.startswith("repo/keys/") for k in objs), objs

    out = restic("backup", "--json", "--host", "itest", src).stdout
    summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]
    assert summary["files_new"] == sum(1 for v in before.values() if v[0] == "f")
    assert summary["total_bytes_processed"] >= 30 * MiB
    first_id = summary["snapshot_id"]

    # The repository's pack files are really in the bucket, and all of them read back whole.
    packs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="repo/data/"):
        packs += page.get("Contents", [])
    assert packs and sum(o["Size"] for o in packs) >= 30 * MiB
    restic("check", "--read-data")

    dst = str(tmp_path / "restore1")
    restic("restore", first_id, "--target", dst)
    restored = os.path.join(dst, src.lstrip("/"))
    assert snapshot_of(restored) == before

    # Second backup after changes: modified, added, deleted files and a retargeted symlink.
    with open(os.path.join(src, "text with spaces \u00e9.txt"), "a") as f:
        f.write("second generation\n")
    with open(os.path.join(src, "lvl1-2", "added.bin"), "wb") as f:
        f.write(rng.randbytes(3 * MiB + 5))
    os.remove(os.path.join(src, "lvl1-0", "lvl2-0", "file-070.dat"))
    shutil.rmtree(os.path.join(src, "lvl1-4", "lvl2-4"))
    os.remove(os.path.join(src, "link-to-dir"))
    os.symlink("lvl1-3", os.path.join(src, "link-to-dir"))
    after = snapshot_of(src)
    assert after != before

    out = restic("backup", "--json", "--host", "itest", src).stdout
    summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]
    assert summary["files_new"] == 1 and summary["files_changed"] >= 1
    second_id = summary["snapshot_id"]
    assert second_id != first_id

    snaps = json.loads(restic("snapshots", "--json").stdout)
    assert len(snaps) == 2
    assert {s["short_id"] for s in snaps} == {first_id[:8], second_id[:8]}
    assert all(s["hostname"] == "itest" and s["paths"] == [src] for s in snaps)

    restic("check", "--read-data")
    dst2 = str(tmp_path / "restore2")
    restic("restore", "latest", "--target", dst2)
    assert snapshot_of(os.path.join(dst2, src.lstrip("/"))) == after
