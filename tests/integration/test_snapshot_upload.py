"""coffer snapshot create into S3 when the archive takes many parts: the multipart upload runs on
a thread of its own while the tree is read and compressed. Round trip, and failures of the upload
(a key without write permission, the bucket deleted mid-way, the source failing mid-way): a clear
message, a nonzero exit, no snapshot and no multipart upload left behind."""
import json
import os
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, SANITIZER_MARKERS, s3_client

MiB = 1 << 20


def run(*args, env, stdin=None, check=True, timeout=300):
    p = subprocess.run([COFFER_BIN, "snapshot", *args], env=env, input=stdin, capture_output=True,
                       timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err[-8000:]
    if check:
        assert p.returncode == 0, err
    return p


def env_for(server, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=access_key,
               COFFER_SECRET_KEY=secret_key)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(k, None)
    return env


def new_key(server, policy, bucket):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "COFFER_ACCESS_KEY", "COFFER_SECRET_KEY"):
        env.pop(k, None)
    p = subprocess.run([COFFER_BIN, "admin", "key", "add", "--json", "--policy", policy, "--bucket", bucket],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return out["access_key"], out["secret_key"]


def uploads(s3, bucket):
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def snapshot_keys(s3, bucket):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def big_tree(root):
    """About 100 MiB: incompressible files (so the archive is as large) and a compressible one."""
    os.makedirs(f"{root}/a/b")
    for i in range(3):
        with open(f"{root}/a/random{i}.bin", "wb") as f:
            f.write(os.urandom(30 * MiB + i * 12345))
    with open(f"{root}/a/b/text.log", "wb") as f:
        f.write(b"".join(b"line %08d of a log that compresses well\n" % i for i in range(200_000)))
    with open(f"{root}/small.txt", "w") as f:
        f.write("small\n")
    return root


def same_files(a, b):
    for d, _, files in os.walk(a):
        for name in files:
            pa = os.path.join(d, name)
            pb = os.path.join(b, os.path.relpath(pa, a))
            with open(pa, "rb") as fa, open(pb, "rb") as fb:
                while True:
                    x, y = fa.read(MiB), fb.read(MiB)
                    assert x == y, f"content differs: {pb}"
                    if not x:
                        break
    return True


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
def test_large_archive_round_trip(server, s3, tmp_path, codec):
    bucket = f"up-rt-{codec}"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    src = big_tree(str(tmp_path / "src"))
    url = f"s3://{bucket}/r/ns"
    sid = run("create", src, url, "--compress", codec, env=env).stdout.decode().strip()
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    size = shown["archive"]["size"]
    assert size > 64 * MiB, size
    # Stored as a multipart upload of 16 MiB parts: the ETag counts them.
    head = s3.head_object(Bucket=bucket, Key=f"r/{shown['archive']['key']}")
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith(f"-{(size + 16 * MiB - 1) // (16 * MiB)}"), head["ETag"]
    assert uploads(s3, bucket) == []
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env)
    assert same_files(src, str(tmp_path / "out"))
    assert run("verify", f"{url}@{sid}", env=env).stdout.decode().strip() == f"{sid}: ok"


def test_stream_of_many_parts_from_a_write_only_key(server, s3, tmp_path):
    """A backup job's key may write but not read: the upload needs nothing more."""
    s3.create_bucket(Bucket="up-wo")
    ak, sk = new_key(server, "writeonly", "up-wo")
    data = os.urandom(70 * MiB)
    run("create", "-", "s3://up-wo/ns", "--compress", "none", env=env_for(server, ak, sk), stdin=data)
    assert uploads(s3, "up-wo") == []
    assert run("restore", "s3://up-wo/ns@latest", "-", env=env_for(server)).stdout == data
    # The key only creates, never replaces: the next snapshot of the namespace writes new keys.
    more = os.urandom(1 * MiB)
    run("create", "-", "s3://up-wo/ns", "--compress", "none", env=env_for(server, ak, sk), stdin=more)
    assert run("restore", "s3://up-wo/ns@latest", "-", env=env_for(server)).stdout == more


@pytest.mark.parametrize("size", [1 * MiB, 40 * MiB])
def test_read_only_key_fails_clearly(server, s3, tmp_path, size):
    """One PUT (small) or the multipart upload's first request on the upload thread (large): the
    create stops with the server's refusal, and nothing is left."""
    bucket = f"up-ro-{size // MiB}"
    s3.create_bucket(Bucket=bucket)
    ak, sk = new_key(server, "readonly", bucket)
    started = time.monotonic()
    p = run("create", "-", f"s3://{bucket}/ns", "--compress", "none", env=env_for(server, ak, sk),
            stdin=os.urandom(size), check=False)
    err = p.stderr.decode()
    assert p.returncode != 0 and p.stdout == b""
    assert "AccessDenied" in err or "denied" in err.lower(), err
    assert bucket in err, err
    assert time.monotonic() - started < 60
    assert snapshot_keys(s3, bucket) == [] and uploads(s3, bucket) == []


def wait_for_parts(s3, bucket, n, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ups = uploads(s3, bucket)
        if ups:
            parts = s3.list_parts(Bucket=bucket, Key=ups[0]["Key"], UploadId=ups[0]["UploadId"]).get("Parts", [])
            if len(parts) >= n:
                return True
        time.sleep(0.1)
    return False


def test_bucket_deleted_mid_upload(server, s3, tmp_path):
    """Parts already stored, then the bucket (and with it the upload) disappears: the next parts
    fail, the create says why and exits nonzero, and no snapshot or upload remains."""
    bucket = "up-gone"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    # 112 MiB (7 parts) arrive at once, then nothing for a while, then more: by the pause at
    # least 3 parts are stored (the compression pipeline holds at most a few chunks).
    cmd = "head -c 117440512 /dev/urandom; sleep 5; head -c 33554432 /dev/urandom"
    p = subprocess.Popen([COFFER_BIN, "snapshot", "create", "--compress", "none", "--jobs", "2",
                          "--from-command", cmd, f"s3://{bucket}/ns"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for_parts(s3, bucket, 3), "the upload never stored 3 parts"
        # The create's resume state (docs/SNAPSHOTS.md, "Interrupted runs") goes first, or the
        # bucket is not empty; the create writes it again after each part, so until the bucket
        # is gone it may be back.
        for _ in range(50):
            for key in snapshot_keys(s3, bucket):
                s3.delete_object(Bucket=bucket, Key=key)
            try:
                s3.delete_bucket(Bucket=bucket)
                break
            except s3.exceptions.ClientError as e:
                if e.response["Error"]["Code"] != "BucketNotEmpty":
                    raise
        else:
            raise AssertionError("the bucket could not be emptied")
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err.decode()
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err[-8000:]
    assert p.returncode != 0 and out == b"", err
    assert "NoSuchBucket" in err or "NoSuchUpload" in err, err
    assert bucket in err, err
    s3.create_bucket(Bucket=bucket)
    assert run("ls", f"s3://{bucket}/ns", env=env).stdout == b""
    assert snapshot_keys(s3, bucket) == [] and uploads(s3, bucket) == []


def test_source_failing_mid_upload_aborts_the_upload(server, s3, tmp_path):
    """The caller aborts while the upload thread has parts in flight: the thread stops promptly
    and the multipart upload is aborted on the server."""
    bucket = "up-abort"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    started = time.monotonic()
    p = run("create", "--compress", "none", "--from-command", "head -c 100663296 /dev/urandom; exit 3",
            f"s3://{bucket}/ns", env=env, check=False)
    assert p.returncode == 1 and b"exited with status 3" in p.stderr, p.stderr
    assert time.monotonic() - started < 60
    assert run("ls", f"s3://{bucket}/ns", env=env).stdout == b""
    assert snapshot_keys(s3, bucket) == [] and uploads(s3, bucket) == []


@pytest.mark.parametrize("expected,parts", [(None, 5), ("300G", 3)])
def test_expected_size_plans_the_parts(server, s3, tmp_path, expected, parts):
    """S3 allows 10,000 parts: a stream expected to be large is sent in larger parts (300 GiB /
    9,000 -> 35 MiB) so that it would fit; without a hint, 16 MiB parts."""
    bucket = f"up-plan-{'hint' if expected else 'none'}"
    s3.create_bucket(Bucket=bucket)
    data = os.urandom(75 * MiB)
    extra = ["--expected-size", expected] if expected else []
    sid = run("create", "-", f"s3://{bucket}/ns", "--compress", "none", *extra, env=env_for(server),
              stdin=data).stdout.decode().strip()
    head = s3.head_object(Bucket=bucket, Key=f"ns/{sid}.tar")
    assert head["ETag"].strip('"').endswith(f"-{parts}"), head["ETag"]
    assert run("restore", f"s3://{bucket}/ns@{sid}", "-", env=env_for(server)).stdout == data
    p = run("create", "-", f"s3://{bucket}/ns", "--expected-size", "12X", env=env_for(server), stdin=b"x",
            check=False)
    assert p.returncode == 2 and b"--expected-size" in p.stderr
