"""coffer mirror against real servers: coffer (one, and two at once) and s3rver.

Directory → bucket → directory with awkward keys, incremental re-runs that copy nothing, a
changed file copied again, --delete, --dry-run, --exclude, --jobs, bucket → bucket within one
server (CopyObject: no byte through the client, seen in the server's metrics) and across servers
(content type, standard headers and user metadata kept), kill -9 in the middle of large files,
and what an attacker can try: keys that would leave the destination directory, a symbolic link
planted in the destination, a symbolic link in the source. Exit codes, --json and
--metrics-file are checked as a cron job or a monitoring system would read them.
"""
import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, CofferServer, run_checked, s3_client, scrubbed_env
from foreign_s3 import S3RVER_KEY
from helpers_http import wait_for

MiB = 1 << 20


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Secret files: coffer's root secret and s3rver's."""
    d = tmp_path_factory.mktemp("keys")
    (d / "coffer").write_text(SECRET_KEY + "\n")
    (d / "s3rver").write_text(S3RVER_KEY + "\n")
    (d / "wrong").write_text("not-the-secret-0123456789\n")
    return d


@pytest.fixture(scope="module")
def server2(tmp_path_factory):
    """A second coffer server: bucket → bucket across two endpoints."""
    base = tmp_path_factory.mktemp("coffer2")
    srv = CofferServer(base / "data", base).start()
    yield srv
    code = srv.stop()
    srv.assert_clean_log()
    assert code == 0


def clean_env(home):
    return scrubbed_env(HOME=str(home))


def mirror(*args, srv=None, keys=None, check=True, timeout=300, env=None, prefix=()):
    """coffer mirror ARGS with srv's endpoint and coffer's root keys as the common target."""
    cmd = [*prefix, COFFER_BIN, "mirror", "--no-progress"]
    if srv is not None:
        cmd += ["--endpoint", srv.endpoint, "--access-key", ACCESS_KEY, "--secret-key-file",
                str(keys / "coffer")]
    cmd += list(args)
    p = run_checked(cmd, env=env or clean_env(tempfile.gettempdir()), timeout=timeout,
                    check=0 if check else None)
    assert b"Sanitizer" not in p.stderr, p.stderr.decode()
    return p


def summary(p):
    return json.loads(p.stdout)


def make_tree(root, files):
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def read_tree(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            if os.path.islink(path):
                continue
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def bucket_objects(s3, bucket, prefix=""):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def metric(srv, name, **labels):
    with urllib.request.urlopen(srv.endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


AWKWARD = {
    "plain.txt": b"plain\n",
    "with space/a file.txt": b"spaces\n",
    "ünïcødé/日本語.txt": "unicode".encode(),
    "100%/a%2Fb+c=d.txt": b"percent and plus\n",
    "a": b"a file that is a prefix of others\n",
    "a.b": b"sorts between a and a/\n",
    "ab/c": b"prefix without slash\n",
    ".hidden/.dotfile": b"dot\n",
    "empty": b"",
    "/".join(["deep"] * 40) + "/leaf": b"deep\n",
}


def test_directory_to_bucket_to_directory(server, s3, keys, tmp_path):
    s3.create_bucket(Bucket="m-round")
    src, back = tmp_path / "src", tmp_path / "back"
    make_tree(src, AWKWARD)
    os.symlink("/etc/passwd", src / "link-out")  # never followed, never uploaded
    old = time.time() - 86400
    os.utime(src / "plain.txt", (old, old))

    p = mirror("--json", str(src), "s3://m-round/pre/", srv=server, keys=keys)
    s = summary(p)
    assert s["files"] == {"copied": len(AWKWARD), "skipped": 0, "linked": 0, "deleted": 0, "failed": 0}
    assert s["bytes"]["copied"] == sum(len(v) for v in AWKWARD.values())
    assert b"link-out" in p.stderr  # said as left out
    assert bucket_objects(s3, "m-round", "pre/") == AWKWARD
    head = s3.head_object(Bucket="m-round", Key="pre/plain.txt")
    assert head["Metadata"]["mtime"] == str(int(old))

    # Nothing changed: nothing copied, and no HEAD or GET per object was needed to know it.
    heads = metric(server, "coffer_s3_requests_total", op="HeadObject")
    s = summary(mirror("--json", str(src), "s3://m-round/pre", srv=server, keys=keys))
    assert s["files"]["copied"] == 0 and s["files"]["skipped"] == len(AWKWARD)
    assert metric(server, "coffer_s3_requests_total", op="HeadObject") == heads

    # A changed file is copied again, alone.
    time.sleep(1.1)
    (src / "plain.txt").write_bytes(b"changed\n")
    s = summary(mirror("--json", str(src), "s3://m-round/pre", srv=server, keys=keys))
    assert s["files"]["copied"] == 1 and s["bytes"]["copied"] == 8
    assert s3.get_object(Bucket="m-round", Key="pre/plain.txt")["Body"].read() == b"changed\n"

    # Back to a directory: the same bytes, each file's mtime the object's LastModified.
    s = summary(mirror("--json", "s3://m-round/pre", str(back), srv=server, keys=keys))
    assert s["files"]["copied"] == len(AWKWARD)
    expect = dict(AWKWARD, **{"plain.txt": b"changed\n"})
    assert read_tree(back) == expect
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="m-round", Prefix="pre/"):
        for o in page["Contents"]:
            st = os.stat(back / o["Key"][4:])
            assert int(st.st_mtime) == int(o["LastModified"].timestamp())
            assert stat.S_IMODE(st.st_mode) & 0o044  # an ordinary file, readable by the web server
    assert not any(".tmp-" in n for _, _, ns in os.walk(back) for n in ns)
    s = summary(mirror("--json", "s3://m-round/pre", str(back), srv=server, keys=keys))
    assert s["files"]["copied"] == 0 and s["files"]["skipped"] == len(AWKWARD)

    # A file touched in the destination is not what the mirror wrote: copied again.
    os.utime(back / "a", (old, old))
    s = summary(mirror("--json", "s3://m-round/pre", str(back), srv=server, keys=keys))
    assert s["files"]["copied"] == 1


def test_delete_dry_run_and_exclude(server, s3, keys, tmp_path):
    s3.create_bucket(Bucket="m-del")
    src = tmp_path / "src"
    make_tree(src, {"keep/a": b"a", "keep/b": b"b", "logs/x.log": b"x", "c": b"c"})
    mirror(str(src), "s3://m-del", srv=server, keys=keys)
    for k in ("extra1", "sub/extra2", "logs/old.log"):
        s3.put_object(Bucket="m-del", Key=k, Body=b"extra")
    os.remove(src / "c")
    (src / "keep/a").write_bytes(b"AA")
    before = bucket_objects(s3, "m-del")

    s = summary(mirror("--json", "--dry-run", "--delete", "--exclude", "logs/", str(src), "s3://m-del",
                       srv=server, keys=keys))
    assert s["dry_run"] is True
    assert s["files"]["copied"] == 1 and s["files"]["deleted"] == 3  # extra1, sub/extra2, c
    assert bucket_objects(s3, "m-del") == before  # nothing changed

    s = summary(mirror("--json", "--delete", "--exclude", "logs/", str(src), "s3://m-del", srv=server,
                       keys=keys))
    assert s["files"]["deleted"] == 3 and s["files"]["copied"] == 1
    after = bucket_objects(s3, "m-del")
    assert set(after) == {"keep/a", "keep/b", "logs/x.log", "logs/old.log"}  # excluded: untouched
    assert after["keep/a"] == b"AA"

    # --delete into a directory removes files and the directories they leave empty.
    dst = tmp_path / "dst"
    mirror("s3://m-del", str(dst), srv=server, keys=keys)
    make_tree(dst, {"gone/deeper/x": b"x", "keep/zz": b"z"})
    s = summary(mirror("--json", "--delete", "s3://m-del", str(dst), srv=server, keys=keys))
    assert s["files"]["deleted"] == 2
    assert not (dst / "gone").exists() and (dst / "keep/b").exists()
    assert set(read_tree(dst)) == set(after)


def test_jobs_1_and_32_give_the_same_result(server, s3, keys, tmp_path):
    src = tmp_path / "src"
    files = {f"d{i % 7}/f{i:03d}": os.urandom(i * 37 % 5000) for i in range(150)}
    make_tree(src, files)
    for jobs, bucket in (("1", "m-jobs1"), ("32", "m-jobs32")):
        s3.create_bucket(Bucket=bucket)
        s = summary(mirror("--json", "--jobs", jobs, str(src), f"s3://{bucket}", srv=server, keys=keys))
        assert s["files"]["copied"] == 150
        back = tmp_path / f"back{jobs}"
        mirror("--jobs", jobs, f"s3://{bucket}", str(back), srv=server, keys=keys)
        assert read_tree(back) == files
    assert bucket_objects(s3, "m-jobs1") == bucket_objects(s3, "m-jobs32")


HEADERS = dict(ContentType="image/png", CacheControl="public, max-age=31536000",
               ContentDisposition='inline; filename="p.png"', ContentLanguage="de-DE",
               ContentEncoding="identity", Metadata={"owner": "shop", "sku": "A-1"})


def seed_with_headers(s3, bucket, n=5):
    s3.create_bucket(Bucket=bucket)
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"img/{i}.png", Body=os.urandom(1000 + i), **HEADERS)
    s3.put_object(Bucket=bucket, Key="plain.bin", Body=b"x" * 10)


def assert_headers_kept(s3, bucket, n=5):
    for i in range(n):
        h = s3.head_object(Bucket=bucket, Key=f"img/{i}.png")
        h["Metadata"].pop("mtime", None)  # an upload from a directory adds the file's
        for k in ("ContentType", "CacheControl", "ContentDisposition", "ContentLanguage", "ContentEncoding",
                  "Metadata"):
            assert h.get(k) == HEADERS[k], (k, h.get(k))


def test_bucket_to_bucket_on_one_server_copies_server_side(server, s3, keys):
    seed_with_headers(s3, "m-ss-a")
    s3.create_bucket(Bucket="m-ss-b")
    copies = metric(server, "coffer_s3_requests_total", op="CopyObject", status="200")
    put_bytes = metric(server, "coffer_s3_received_bytes_total", op="PutObject")
    gets = metric(server, "coffer_s3_requests_total", op="GetObject")
    s = summary(mirror("--json", "s3://m-ss-a", "s3://m-ss-b/copy", srv=server, keys=keys))
    assert s["files"]["copied"] == 6
    # Every object by CopyObject; no byte went up, none came down.
    assert metric(server, "coffer_s3_requests_total", op="CopyObject", status="200") == copies + 6
    assert metric(server, "coffer_s3_received_bytes_total", op="PutObject") == put_bytes
    assert metric(server, "coffer_s3_requests_total", op="GetObject") == gets
    assert bucket_objects(s3, "m-ss-b", "copy/") == bucket_objects(s3, "m-ss-a")
    for i in range(5):
        h = s3.head_object(Bucket="m-ss-b", Key=f"copy/img/{i}.png")
        assert h["CacheControl"] == HEADERS["CacheControl"] and h["Metadata"] == HEADERS["Metadata"]
    s = summary(mirror("--json", "s3://m-ss-a", "s3://m-ss-b/copy", srv=server, keys=keys))
    assert s["files"]["copied"] == 0 and s["files"]["skipped"] == 6


def test_bucket_to_bucket_across_two_coffer_servers(server, server2, s3, keys):
    seed_with_headers(s3, "m-x-a")
    s3b = s3_client(server2.endpoint)
    s3b.create_bucket(Bucket="m-x-b")
    s = summary(mirror("--json", "--src-endpoint", server.endpoint, "--dst-endpoint", server2.endpoint,
                       "s3://m-x-a", "s3://m-x-b", srv=server, keys=keys))
    assert s["files"]["copied"] == 6
    assert bucket_objects(s3b, "m-x-b") == bucket_objects(s3, "m-x-a")
    assert_headers_kept(s3b, "m-x-b")
    s = summary(mirror("--json", "--src-endpoint", server.endpoint, "--dst-endpoint", server2.endpoint,
                       "s3://m-x-a", "s3://m-x-b", srv=server, keys=keys))
    assert s["files"]["copied"] == 0


def test_coffer_to_s3rver_and_back(server, s3, s3rver, keys, tmp_path):
    seed_with_headers(s3, "m-f-a")
    foreign = s3_client(s3rver.endpoint, S3RVER_KEY, S3RVER_KEY)
    foreign.create_bucket(Bucket="m-f-b")
    dst_keys = ["--dst-endpoint", s3rver.endpoint, "--dst-access-key", S3RVER_KEY, "--dst-secret-key-file",
                str(keys / "s3rver")]
    s = summary(mirror("--json", *dst_keys, "s3://m-f-a", "s3://m-f-b/x", srv=server, keys=keys))
    assert s["files"]["copied"] == 6, s
    assert bucket_objects(foreign, "m-f-b", "x/") == bucket_objects(s3, "m-f-a")
    for i in range(5):
        h = foreign.head_object(Bucket="m-f-b", Key=f"x/img/{i}.png")
        assert h["ContentType"] == "image/png" and h["Metadata"] == HEADERS["Metadata"]
        assert h["CacheControl"] == HEADERS["CacheControl"]
    s = summary(mirror("--json", *dst_keys, "s3://m-f-a", "s3://m-f-b/x", srv=server, keys=keys))
    assert s["files"]["copied"] == 0
    # s3rver → a directory, as the nightly mirror to the NFS share does.
    src_keys = [a.replace("--dst-", "--src-") for a in dst_keys]
    out = tmp_path / "nfs"
    s = summary(mirror("--json", *src_keys, "s3://m-f-b/x", str(out), srv=server, keys=keys))
    assert s["files"]["copied"] == 6
    assert read_tree(out) == bucket_objects(s3, "m-f-a")
    # ... and back up from the directory: the types, headers and metadata went along (extended
    # attributes), so the round trip through a directory loses none of them.
    s3.create_bucket(Bucket="m-f-c")
    s = summary(mirror("--json", str(out), "s3://m-f-c", srv=server, keys=keys))
    assert s["files"]["copied"] == 6
    assert_headers_kept(s3, "m-f-c")


def test_hostile_keys_never_leave_the_destination(server, s3, keys, tmp_path):
    s3.create_bucket(Bucket="m-evil")
    hostile = ["../escape", "a/../../escape2", "ok/../../../escape3", "//abs", "/abs2", "dot/./x",
               "ctl\x01name", "esc\x1b[2J"]
    stored = []
    for k in hostile:
        try:
            s3.put_object(Bucket="m-evil", Key=k, Body=b"evil")
            stored.append(k)
        except Exception:
            pass  # the server refused it itself
    s3.put_object(Bucket="m-evil", Key="good/file", Body=b"good")
    assert any(".." in k for k in stored), stored  # the attack must reach the mirror to test it
    box = tmp_path / "box"
    dst = box / "dst"
    p = mirror("--json", "s3://m-evil", str(dst), srv=server, keys=keys, check=False)
    assert p.returncode == 3, p.stderr.decode()
    s = summary(p)
    failed = {f["key"] for f in s["failures"]}
    assert failed == set(stored) and s["files"]["copied"] == 1
    assert (dst / "good/file").read_bytes() == b"good"
    assert sorted(os.listdir(box)) == ["dst"]  # nothing beside or above the destination
    assert not os.path.exists(tmp_path / "escape") and not os.path.exists("/abs2")
    for k in stored:
        if "\x01" not in k and "\x1b" not in k:
            assert f"coffer mirror: {k}: ".encode() in p.stderr
    assert b"\x1b[2J" not in p.stderr  # a control character is never echoed to a terminal


def test_planted_symlink_in_destination_is_not_followed(server, s3, keys, tmp_path):
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    make_tree(src, {"sub/file": b"new", "top": b"t"})
    outside.mkdir()
    dst.mkdir()
    os.symlink(outside, dst / "sub")  # where the subdirectory should be
    os.symlink(outside / "target", dst / "top")  # where a file goes
    p = mirror("--json", str(src), str(dst), check=False)
    assert p.returncode == 3
    assert [f["key"] for f in summary(p)["failures"]] == ["sub/file"]
    assert os.listdir(outside) == []  # nothing written through either link
    assert not os.path.islink(dst / "top") and (dst / "top").read_bytes() == b"t"  # replaced, not followed


def test_unreadable_source_file_fails_alone(tmp_path):
    # Root reads everything: as root, the run is made as nobody.
    base = tempfile.mkdtemp(prefix="mirror-perm-")
    try:
        os.chmod(base, 0o755)
        src, dst = os.path.join(base, "src"), os.path.join(base, "dst")
        make_tree(src, {"a": b"a", "secret/b": b"b", "c": b"c"})
        for d, dirs, files in os.walk(src):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        os.chmod(os.path.join(src, "secret/b"), 0o000)
        os.mkdir(dst)
        os.chmod(dst, 0o777)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        p = mirror("--json", src, dst, check=False, prefix=as_nobody)
        assert p.returncode == 3, p.stderr.decode()
        assert b"coffer mirror: secret/b: " in p.stderr
        s = summary(p)
        assert s["files"]["copied"] == 2 and s["files"]["failed"] == 1
        assert [f["key"] for f in s["failures"]] == ["secret/b"]
        assert sorted(read_tree(dst)) == ["a", "c"]
    finally:
        shutil.rmtree(base)


def test_missing_bucket_and_wrong_keys(server, keys, tmp_path):
    src = tmp_path / "src"
    make_tree(src, {"a": b"a"})
    p = mirror(str(src), "s3://m-no-such-bucket", srv=server, keys=keys, check=False)
    assert p.returncode == 6, p.stderr.decode()
    assert b"m-no-such-bucket" in p.stderr
    p = mirror("s3://m-no-such-bucket", str(tmp_path / "d"), srv=server, keys=keys, check=False)
    assert p.returncode == 6
    p = mirror("--endpoint", server.endpoint, "--access-key", ACCESS_KEY, "--secret-key-file",
               str(keys / "wrong"), str(src), "s3://m-round", check=False)
    assert p.returncode == 7, p.stderr.decode()
    p = mirror("--endpoint", server.endpoint, "--access-key", "NOSUCHKEY", "--secret-key-file",
               str(keys / "wrong"), str(src), "s3://m-round", check=False)
    assert p.returncode == 7
    # A source directory that does not exist is never made (an empty source would mean "delete
    # everything" with --delete).
    p = mirror("--delete", str(tmp_path / "typo"), str(tmp_path / "d"), check=False)
    assert p.returncode == 1 and not (tmp_path / "typo").exists()


@pytest.mark.parametrize("args", [
    [], ["only-one"], ["--jobs", "0", "a", "b"], ["--jobs", "257", "a", "b"], ["--jobs", "x", "a", "b"],
    ["--dated", "--delete", "a", "b"], ["--as-of", "2026-13-01", "--dated", "a", "b"],
    ["--as-of", "2026-01-01", "a", "b"], ["--keep-daily", "-1", "--dated", "a", "b"],
    ["--fix-content-types", "a", "b"], ["--fix-content-types", "/tmp"], ["--fix-content-types", "file:///tmp"],
    ["--no-such-flag", "a", "b"], ["--log-level", "loud", "a", "b"],
    ["s3://", "b"],
])
def test_bad_command_lines_exit_2(args, tmp_path):
    p = mirror(*args, check=False)
    assert p.returncode == 2, (args, p.stderr.decode())
    assert p.stdout == b""


def test_json_and_metrics_file(keys, tmp_path):
    src, dst, prom = tmp_path / "src", tmp_path / "dst", tmp_path / "mirror.prom"
    make_tree(src, {"a": b"12345", "b/c": b"678"})
    s = summary(mirror("--json", "--metrics-file", str(prom), str(src), str(dst)))
    assert set(s) >= {"source", "destination", "dry_run", "files", "bytes", "failures", "seconds"}
    assert s["source"] == str(src) and s["destination"] == str(dst) and s["dry_run"] is False
    assert s["files"] == {"copied": 2, "skipped": 0, "linked": 0, "deleted": 0, "failed": 0}
    assert s["bytes"] == {"copied": 8, "skipped": 0, "linked": 0}
    assert s["failures"] == [] and s["seconds"] >= 0
    text = prom.read_text()
    labels = f'source="{src}",destination="{dst}"'
    assert f'coffer_mirror_files{{{labels},result="copied"}} 2\n' in text
    assert f'coffer_mirror_bytes{{{labels},result="copied"}} 8\n' in text
    assert f"coffer_mirror_verify_mismatches{{{labels}}} 0\n" in text
    for name in ("last_run_timestamp_seconds", "last_success_timestamp_seconds", "duration_seconds"):
        assert f"# TYPE coffer_mirror_{name} gauge" in text
    ok = int(text.split("coffer_mirror_last_success_timestamp_seconds{")[1].split("} ")[1].split()[0])
    assert abs(ok - time.time()) < 60
    # A run with a failed file updates the run's time and keeps the last success's.
    time.sleep(1.1)
    shutil.rmtree(dst / "b")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dst / "b")  # b/c can no longer be written
    (src / "b/c").write_bytes(b"changed")
    p = mirror("--json", "--metrics-file", str(prom), str(src), str(dst), check=False)
    assert p.returncode == 3
    text = prom.read_text()
    assert f"coffer_mirror_last_success_timestamp_seconds{{{labels}}} {ok}\n" in text
    assert f'coffer_mirror_files{{{labels},result="failed"}} 1\n' in text
    run = int(text.split("coffer_mirror_last_run_timestamp_seconds{")[1].split("} ")[1].split()[0])
    assert run > ok
    # A run that fails as a whole: its error in the JSON, the exit code 1.
    bad = tmp_path / "bad-dst"
    bad.write_text("a file where the destination directory should be")
    p = mirror("--json", str(src), str(bad), check=False)
    assert p.returncode == 1 and summary(p)["error"]


PROM_SAMPLE = re.compile(r'^[a-z_]+\{(?:[a-z_]+="(?:[^"\\\n]|\\[\\"n])*",?)*\} [0-9.]+$')


def test_metrics_file_labels_from_hostile_paths(keys, tmp_path):
    """The paths become Prometheus label values: a quote, backslash, newline or brace in them is
    escaped so that every sample stays one well-formed line, and a failed run still finds the
    last success's time behind such labels."""
    src = tmp_path / 'we"ird\\dir}\nname {x}'
    dst, prom = tmp_path / "dst", tmp_path / "mirror.prom"
    make_tree(src, {"a": b"12345", "b/c": b"678"})
    started = int(time.time())
    mirror("--metrics-file", str(prom), str(src), str(dst))
    text = prom.read_text()
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(samples) == 12, text
    for line in samples:
        assert PROM_SAMPLE.match(line), line
    escaped = str(src).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    labels = f'source="{escaped}",destination="{dst}"'
    assert f'coffer_mirror_files{{{labels},result="copied"}} 2\n' in text, text
    ok = re.search(r"^coffer_mirror_last_success_timestamp_seconds\{.*\} (\d+)$", text, re.M).group(1)
    assert started <= int(ok) <= time.time()

    time.sleep(1.1)
    shutil.rmtree(dst / "b")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dst / "b")  # b/c can no longer be written
    (src / "b/c").write_bytes(b"changed")
    assert mirror("--metrics-file", str(prom), str(src), str(dst), check=False).returncode == 3
    text = prom.read_text()
    assert f"coffer_mirror_last_success_timestamp_seconds{{{labels}}} {ok}\n" in text, text


def test_metrics_file_with_long_paths(keys, tmp_path):
    """Paths of a few hundred bytes each still give a metrics file, whole (it was silently not
    written once the two paths' labels no longer fitted the buffer)."""
    deep = "/".join(["d" * 200] * 4)
    src, dst, prom = tmp_path / "s" / deep, tmp_path / "t" / deep, tmp_path / "mirror.prom"
    make_tree(src, {"a": b"12345"})
    mirror("--metrics-file", str(prom), str(src), str(dst))
    text = prom.read_text()
    labels = f'source="{src}",destination="{dst}"'
    assert f'coffer_mirror_files{{{labels},result="copied"}} 1\n' in text, text[:400]
    assert text.endswith(f"coffer_mirror_verify_mismatches{{{labels}}} 0\n")


def test_progress_bar_on_a_terminal(tmp_path):
    src = tmp_path / "src"
    make_tree(src, {f"f{i}": os.urandom(2000) for i in range(50)})
    master, slave = pty.openpty()
    p = subprocess.Popen([COFFER_BIN, "mirror", str(src), str(tmp_path / "dst")], stdout=subprocess.PIPE,
                         stderr=slave, env=clean_env(tmp_path))
    os.close(slave)
    err = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out, _ = p.communicate(timeout=60)
    os.close(master)
    assert p.returncode == 0
    assert b"\r\x1b[K" in err and b"50/50 files" in err
    assert out.startswith(b"copied 50 files")
    # Not a terminal: no bar.
    q = mirror(str(src), str(tmp_path / "dst2"))
    assert b"\x1b[K" not in q.stderr


def big_files(root, n, size):
    files = {}
    for i in range(n):
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32)
        files[f"big/{i}.bin"] = data
    make_tree(root, files)
    return files


def kill_midway(cmd, watch, env):
    """Starts cmd, kills it with SIGKILL once watch() says it is under way; asserts it had not
    finished by then."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not watch():
        assert p.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.005)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stderr.close()


def test_kill_9_leaves_no_partial_file_and_a_rerun_completes(server, s3, keys, tmp_path):
    src = tmp_path / "src"
    files = big_files(src, 6, 24 * MiB)
    common = ["--endpoint", server.endpoint, "--access-key", ACCESS_KEY, "--secret-key-file",
              str(keys / "coffer"), "--jobs", "2", "--no-progress"]
    env = clean_env(tmp_path)

    # Directory → bucket: an object appears whole or not at all.
    s3.create_bucket(Bucket="m-kill")

    def some_object():
        return s3.list_objects_v2(Bucket="m-kill").get("KeyCount", 0) > 0

    open_before = metric(server, "coffer_http_connections")
    kill_midway([COFFER_BIN, "mirror", *common, str(src), "s3://m-kill"], some_object, env)
    # A request whose body had gone out completes on the server (whole): the server lets go of
    # the killed run's connections only after their requests are done, so wait for that rather
    # than for a time a loaded machine may exceed.
    assert wait_for(lambda: metric(server, "coffer_http_connections") <= open_before, timeout=60), \
        "the killed run's connections are still open on the server"
    seen = bucket_objects(s3, "m-kill")
    assert 0 < len(seen) < len(files)
    for k, v in seen.items():
        assert v == files[k], f"{k}: a partial object is visible"
    s = summary(mirror("--json", str(src), "s3://m-kill", srv=server, keys=keys))
    assert s["files"]["copied"] == len(files) - len(seen) and s["files"]["skipped"] == len(seen)
    assert bucket_objects(s3, "m-kill") == files

    # Bucket → directory: a file appears whole or not at all (the temporary files are never at
    # an object's name, and the next run removes them).
    dst = tmp_path / "dst"

    def some_file():
        return any(not n.count(".tmp-") for _, _, ns in os.walk(dst) for n in ns) if dst.exists() else False

    kill_midway([COFFER_BIN, "mirror", *common, "s3://m-kill", str(dst)], some_file, env)
    got = read_tree(dst)
    whole = {k: v for k, v in got.items() if ".tmp-" not in k}
    assert 0 < len(whole) < len(files)
    for k, v in whole.items():
        assert v == files[k], f"{k}: a partial file is visible"
    s = summary(mirror("--json", "s3://m-kill", str(dst), srv=server, keys=keys))
    assert s["files"]["copied"] == len(files) - len(whole)
    assert read_tree(dst) == files  # the interrupted run's temporary files are gone too


def test_directory_without_extended_attributes_drops_metadata_with_one_warning(server, s3, keys, tmp_path):
    # ramfs keeps no user extended attributes, as many NFS mounts: the files must still be written.
    mnt = tmp_path / "ramfs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a ramfs here (not root, or no ramfs)")
    try:
        seed_with_headers(s3, "m-noxattr")
        p = mirror("--json", "s3://m-noxattr", str(mnt / "dst"), srv=server, keys=keys)
        assert summary(p)["files"] == {"copied": 6, "skipped": 0, "linked": 0, "deleted": 0, "failed": 0}
        assert read_tree(mnt / "dst") == bucket_objects(s3, "m-noxattr")
        assert p.stderr.count(b"keeps no extended attributes") == 1
        s = summary(mirror("--json", "s3://m-noxattr", str(mnt / "dst"), srv=server, keys=keys))
        assert s["files"]["copied"] == 0  # the mtimes were kept all the same
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_file_and_directory_of_one_name_going_to_a_directory(server, s3, keys, tmp_path):
    # S3 holds "a" and "a/b"; a directory cannot hold both. The file is refused, named; the tree
    # under a/ is mirrored, and so are the keys that sort between them.
    s3.create_bucket(Bucket="m-clash")
    for k in ("a", "a.txt", "a-1", "a/b", "a/c/d"):
        s3.put_object(Bucket="m-clash", Key=k, Body=k.encode())
    dst = tmp_path / "dst"
    p = mirror("--json", "s3://m-clash", str(dst), srv=server, keys=keys, check=False)
    assert p.returncode == 3
    s = summary(p)
    assert [f["key"] for f in s["failures"]] == ["a"]
    assert "directory" in s["failures"][0]["error"]
    assert read_tree(dst) == {"a.txt": b"a.txt", "a-1": b"a-1", "a/b": b"a/b", "a/c/d": b"a/c/d"}
    # Into a bucket both are fine.
    s3.create_bucket(Bucket="m-clash2")
    s = summary(mirror("--json", "s3://m-clash", "s3://m-clash2", srv=server, keys=keys))
    assert s["files"]["copied"] == 5


def test_a_key_that_becomes_a_directory_and_back(server, s3, keys, tmp_path):
    # The bucket had x/y and now has x (and the other way round): with --delete the directory x/
    # is emptied and removed before the file x takes its name, and the file x goes before x/y
    # is written. Keys sorting between x and x/ (x-1, x.txt) must not change the order.
    s3.create_bucket(Bucket="m-retype")
    dst = tmp_path / "dst"

    def bucket_is(files):
        for o in s3.list_objects_v2(Bucket="m-retype").get("Contents", []):
            s3.delete_object(Bucket="m-retype", Key=o["Key"])
        for k, body in files.items():
            s3.put_object(Bucket="m-retype", Key=k, Body=body)
        s = summary(mirror("--json", "--delete", "s3://m-retype", str(dst), srv=server, keys=keys))
        assert s["files"]["failed"] == 0 and read_tree(dst) == files
        return s

    bucket_is({"x/y": b"1", "x/z/w": b"2", "x-1": b"3"})
    s = bucket_is({"x": b"now a file", "x-1": b"3"})
    assert (s["files"]["copied"], s["files"]["deleted"]) == (1, 2)
    assert sorted(os.listdir(dst)) == ["x", "x-1"]  # x/ and x/z/ went with their files
    s = bucket_is({"x/y": b"a directory again", "x.txt": b"4"})
    assert (s["files"]["copied"], s["files"]["deleted"]) == (2, 2)
    p = mirror("--delete", "s3://m-retype", str(dst), srv=server, keys=keys)
    assert p.stdout.startswith(b"copied 0 files")


def test_overlapping_sides_are_refused(server, s3, keys, tmp_path):
    src = tmp_path / "src"
    make_tree(src, {"a": b"a"})
    for dst in (src, src / "inner", tmp_path):
        p = mirror(str(src), str(dst), check=False)
        assert p.returncode == 2 and b"overlap" in p.stderr, dst
    assert not (src / "inner").exists()  # refused before anything was made
    s3.create_bucket(Bucket="m-overlap")
    for a, b in (("s3://m-overlap", "s3://m-overlap/sub"), ("s3://m-overlap/p", "s3://m-overlap/p/q"),
                 ("s3://m-overlap/p/", "s3://m-overlap/p")):
        p = mirror(a, b, srv=server, keys=keys, check=False)
        assert p.returncode == 2 and b"overlap" in p.stderr, (a, b)
    mirror(str(src), "s3://m-overlap/p", srv=server, keys=keys)
    s = summary(mirror("--json", "s3://m-overlap/p", "s3://m-overlap/pq", srv=server, keys=keys))
    assert s["files"]["copied"] == 1  # "p" and "pq" are different directories


def test_dry_run_prints_the_plan(server, s3, keys, tmp_path):
    src = tmp_path / "src"
    make_tree(src, {"new file": b"12345", "same": b"s"})
    s3.create_bucket(Bucket="m-dry")
    mirror(str(src), "s3://m-dry", srv=server, keys=keys)
    (src / "newer").write_bytes(b"abc")
    s3.put_object(Bucket="m-dry", Key="extra\x01", Body=b"x")
    p = mirror("--dry-run", "--delete", str(src), "s3://m-dry", srv=server, keys=keys)
    out = p.stdout.decode()
    assert "would copy newer (3 bytes)\n" in out
    assert "would delete extra\\x01 (1 bytes)\n" in out  # escaped, never raw
    assert "same" not in out.split("would have")[0]
    assert "would have copied 1 files (3 bytes), skipped 2, deleted 1, failed 0" in out
    assert set(bucket_objects(s3, "m-dry")) == {"new file", "same", "extra\x01"}


def test_dry_run_into_a_missing_directory_makes_nothing(server, s3, keys, tmp_path):
    # "change nothing" holds for the file system too: the destination (and its parents) stays
    # missing, planned as empty, for a mirror, a verification and a dated copy alike.
    src = tmp_path / "src"
    make_tree(src, {"a": b"1", "d/b": b"22"})
    dst = tmp_path / "not" / "there"
    s = summary(mirror("--json", "--dry-run", str(src), str(dst)))
    assert s["files"]["copied"] == 2 and s["bytes"]["copied"] == 3
    p = mirror("--dry-run", "--verify", str(src), str(dst), check=False)
    assert p.returncode == 4, p.stderr.decode()  # both files missing from the destination
    s = summary(mirror("--json", "--dry-run", "--dated", "--as-of", "2026-03-01", str(src), str(dst)))
    assert s["files"]["copied"] == 2 and s["dated"]["name"] == "2026-03-01"
    s3.create_bucket(Bucket="m-dry-missing")
    s3.put_object(Bucket="m-dry-missing", Key="k", Body=b"x")
    mirror("--dry-run", "s3://m-dry-missing", str(dst), srv=server, keys=keys)
    assert not (tmp_path / "not").exists()
    mirror(str(src), str(dst))  # the real run makes it
    assert read_tree(dst) == {"a": b"1", "d/b": b"22"}
