"""coffer snapshot against an S3 server that is not coffer: s3rver (npm, pinned in tests/js).

The module starts s3rver on a free loopback port with its own data directory, creates a bucket
through boto3, and drives create / ls / show / verify / restore / rm of a directory snapshot whose
archive is far past the 16 MiB multipart threshold, and of stream snapshots from stdin. s3rver
checks that the access key exists but does not verify SigV4 signatures, so signing itself is
covered by the suites that run against coffer's own server.
"""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import COFFER_BIN, s3_client
from foreign_s3 import S3RVER_KEY
from test_snapshot import same_tree, tree

BUCKET = "foreign"
MiB = 1 << 20


@pytest.fixture(scope="module")
def foreign(s3rver):
    s3_client(s3rver.endpoint, S3RVER_KEY, S3RVER_KEY).create_bucket(Bucket=BUCKET)
    return s3rver


@pytest.fixture()
def env(foreign):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
    e.update({"COFFER_ACCESS_KEY": S3RVER_KEY, "COFFER_SECRET_KEY": S3RVER_KEY,
              "HOME": str(foreign.base)})
    return e


def run(foreign, *args, env, stdin=None, check=True):
    p = subprocess.run([COFFER_BIN, "snapshot", *args, "--endpoint", foreign.endpoint], env=env,
                       input=stdin, capture_output=True, timeout=180)
    if check:
        assert p.returncode == 0, (f"coffer snapshot {args[0]} exited {p.returncode}: {p.stderr.decode()}\n"
                                   f"s3rver log tail:\n{foreign.log()}")
    return p


def parts_stored(foreign):
    return len(re.findall(rb"Stored part \d+ of ", foreign.log_bytes()))


def test_directory_snapshot_multipart_round_trip(foreign, env, tmp_path):
    url = f"s3://{BUCKET}/{tmp_path.name}/chain"
    src = tree(str(tmp_path / "src"))
    with open(f"{src}/sub/blocks.db", "wb") as f:
        for _ in range(40):
            f.write(os.urandom(MiB))  # incompressible: the archive stays above 40 MiB
    parts_before = parts_stored(foreign)
    sid = run(foreign, "create", src, url, "--compress", "lz4", "--label", "height=7", env=env).stdout.decode().strip()
    # The archive went up as a multipart upload: s3rver logged several stored parts.
    assert parts_stored(foreign) - parts_before >= 2, foreign.log()

    listed = [json.loads(line) for line in run(foreign, "ls", url, "--json", env=env).stdout.decode().splitlines()]
    assert [s["id"] for s in listed] == [sid]
    assert listed[0]["labels"] == {"height": "7"} and listed[0]["encrypted"] is False
    shown = json.loads(run(foreign, "show", f"{url}@{sid}", env=env).stdout)
    assert shown["archive"]["compression"] == "lz4" and shown["archive"]["size"] > 40 * MiB
    # The stored object is exactly the archive the manifest describes.
    head = s3_client(foreign.endpoint, S3RVER_KEY, S3RVER_KEY).head_object(Bucket=BUCKET, Key=f"{tmp_path.name}/{shown['archive']['key']}")
    assert head["ContentLength"] == shown["archive"]["size"]

    assert run(foreign, "verify", f"{url}@{sid}", env=env).stdout.decode().strip() == f"{sid}: ok"
    out = tmp_path / "out"
    run(foreign, "restore", f"{url}@latest", str(out), env=env)
    assert same_tree(src, str(out))
    assert os.readlink(out / "link") == "a.txt"
    assert os.stat(out / "a.txt").st_mtime == 1_700_000_000


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_stream_snapshots(foreign, env, tmp_path, encrypted):
    url = f"s3://{BUCKET}/{tmp_path.name}/pg"
    keys = []
    if encrypted:
        key = tmp_path / "snapshot.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
        keys = ["--encrypt-key-file", str(key)]
    big = os.urandom(20 * MiB) + b"-- end of dump\n"  # past the multipart threshold
    parts_before = parts_stored(foreign)
    first = run(foreign, "create", "-", url, *keys, env=env, stdin=big).stdout.decode().strip()
    assert parts_stored(foreign) - parts_before >= 2, foreign.log()
    time.sleep(1.1)  # snapshot ids order by the second
    small = b"a small dump, one PUT\n"
    second = run(foreign, "create", "-", url, *keys, env=env, stdin=small).stdout.decode().strip()

    ids = [line.split()[0] for line in run(foreign, "ls", url, env=env).stdout.decode().splitlines()]
    assert ids == [first, second]
    out = run(foreign, "verify", url, "--all", *keys, env=env).stdout.decode()
    assert f"{first}: ok" in out and f"{second}: ok" in out
    assert run(foreign, "restore", f"{url}@{first}", "-", *keys, env=env).stdout == big
    assert run(foreign, "restore", f"{url}@latest", "-", *keys, env=env).stdout == small
    if encrypted:
        p = run(foreign, "restore", f"{url}@{first}", "-", env=env, check=False)
        assert p.returncode == 5 and b"encrypted" in p.stderr and p.stdout == b"", p.stderr

    # One flipped byte in the stored archive of the big snapshot is found by verify.
    shown = json.loads(run(foreign, "show", f"{url}@{first}", env=env).stdout)
    client = s3_client(foreign.endpoint, S3RVER_KEY, S3RVER_KEY)
    obj_key = f"{tmp_path.name}/{shown['archive']['key']}"
    data = bytearray(client.get_object(Bucket=BUCKET, Key=obj_key)["Body"].read())
    assert len(data) == shown["archive"]["size"]
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=BUCKET, Key=obj_key, Body=bytes(data))
    p = run(foreign, "verify", f"{url}@{first}", *keys, env=env, check=False)
    assert p.returncode == 4 and b"chunk" in p.stderr, p.stderr

    run(foreign, "rm", f"{url}@{first}", env=env)
    ids = [line.split()[0] for line in run(foreign, "ls", url, env=env).stdout.decode().splitlines()]
    assert ids == [second]
    p = run(foreign, "restore", f"{url}@{first}", "-", *keys, env=env, check=False)
    assert p.returncode == 3

    # prune works where ListMultipartUploads is not implemented: the snapshots are pruned and the
    # sweep for interrupted uploads is reported as skipped, once (501 is not retried).
    time.sleep(1.1)
    third = run(foreign, "create", "-", url, *keys, env=env, stdin=small).stdout.decode().strip()
    p = run(foreign, "prune", url, "--keep-last", "1", env=env, check=False)
    assert p.returncode == 0, p.stderr
    assert f"remove {second}".encode() in p.stdout and f"keep   {third} (last)".encode() in p.stdout
    assert b"cannot look for interrupted uploads" in p.stderr, p.stderr
    ids = [line.split()[0] for line in run(foreign, "ls", url, env=env).stdout.decode().splitlines()]
    assert ids == [third]


def test_unknown_access_key_is_refused(foreign, env):
    bad = dict(env, COFFER_ACCESS_KEY="NOT-AN-S3RVER-KEY")
    p = run(foreign, "ls", f"s3://{BUCKET}/anything/ns", env=bad, check=False)
    assert p.returncode == 7 and b"InvalidAccessKeyId" in p.stderr, p.stderr
    p = run(foreign, "create", "-", f"s3://{BUCKET}/anything/ns", env=bad, stdin=b"x", check=False)
    assert p.returncode == 7 and b"InvalidAccessKeyId" in p.stderr, p.stderr
    assert run(foreign, "ls", f"s3://{BUCKET}/anything/ns", env=env).stdout == b""
