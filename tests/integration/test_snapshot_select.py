"""What a directory snapshot leaves out (--exclude, --one-file-system, --allow-unreadable), the
--json answers, and the exit code of each kind of failure."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY


def run(*args, env=None, stdin=None, user=None):
    cmd = [COFFER_BIN, "snapshot", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, env=env, input=stdin, capture_output=True, timeout=120)


def ok(*args, **kw):
    p = run(*args, **kw)
    assert p.returncode == 0, p.stderr.decode()
    return p.stdout.decode()


def files_under(root):
    out = set()
    for d, dirs, names in os.walk(root):
        for n in dirs + names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture(scope="module")
def s3env(server, s3):
    s3.create_bucket(Bucket="select")
    return dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY,
                COFFER_SECRET_KEY=SECRET_KEY)


@pytest.fixture(params=["s3", "dir"])
def repo(request, s3env, tmp_path):
    if request.param == "s3":
        return f"s3://select/{tmp_path.name}/ns", s3env
    return str(tmp_path / "repo" / "ns"), dict(os.environ)


def test_exclude_patterns(repo, tmp_path):
    url, env = repo
    src = tmp_path / "src"
    for rel in ["keep.txt", "app.log", "sub/deep/trace.log", "sub/keep.bin", "cache/blob", "sub/cache/other",
                "db/tmp/scratch", "db/data", "tmp/top", "build/file"]:
        write(str(src / rel))
    os.makedirs(src / "nested" / "build")   # a directory named build …
    write(str(src / "notes" / "build"))     # … and a file named build
    out = json.loads(ok("create", str(src), url, "--exclude", "*.log", "--exclude", "cache",
                        "--exclude", "/db/tmp", "--exclude", "build/", "--json", env=env))
    ok("restore", f"{url}@{out['id']}", str(tmp_path / "dest"), env=env)
    got = files_under(tmp_path / "dest")
    assert got == {"keep.txt", "sub", "sub/deep", "sub/keep.bin", "db", "db/data", "tmp", "tmp/top", "nested",
                   "notes", "notes/build"}, got
    manifest = json.loads(ok("show", f"{url}@{out['id']}", env=env))
    assert manifest["source"]["exclude"] == ["*.log", "cache", "/db/tmp", "build/"]
    assert manifest["source"]["skipped"] == []
    assert out["files"] == manifest["archive"]["files"] == len(got)


def test_create_and_restore_json_answers(repo, tmp_path):
    url, env = repo
    src = tmp_path / "src"
    write(str(src / "a"), "a" * 100_000)
    write(str(src / "b/c"), "c")
    out = json.loads(ok("create", str(src), url, "--label", 'note=say "hi"\\', "--json", env=env))
    assert out["result"] == "created" and out["namespace"] == "ns" and out["files"] == 3
    assert out["raw_bytes"] > 100_000 and 0 < out["stored_bytes"] < out["raw_bytes"]
    assert out["seconds"] > 0 and out["raw_bytes_per_second"] > 0 and out["skipped"] == 0
    listed = [json.loads(line) for line in ok("ls", url, "--json", env=env).splitlines()]
    assert [x["id"] for x in listed] == [out["id"]]
    assert listed[0]["labels"] == {"note": 'say "hi"\\'} and listed[0]["compression"] == "zstd"
    back = json.loads(ok("restore", f"{url}@latest", str(tmp_path / "dest"), "--json", env=env))
    assert back["result"] == "restored" and back["id"] == out["id"]
    assert back["raw_bytes"] == out["raw_bytes"] and back["files"] == 3
    assert (tmp_path / "dest" / "a").read_text() == "a" * 100_000


def test_progress_bar_only_on_a_terminal(repo, tmp_path):
    url, env = repo
    src = tmp_path / "src"
    write(str(src / "f"), "data" * 1000)
    p = run("create", str(src), url, env=env)
    assert p.returncode == 0 and b"\r" not in p.stderr and p.stderr == b"", p.stderr
    # On a terminal (a pseudo-terminal from script(1)) the bar shows bytes and a rate.
    script = shutil.which("script")
    assert script, "util-linux script(1) is part of Debian's base system"
    cmd = f"{COFFER_BIN} snapshot create {src} {url} >/dev/null"
    p = subprocess.run([script, "-qec", cmd, "/dev/null"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert b"create " in p.stdout and b"/s" in p.stdout and b"\r" in p.stdout, p.stdout
    cmd = f"{COFFER_BIN} snapshot restore {url} {tmp_path / 'dest'}"
    p = subprocess.run([script, "-qec", cmd, "/dev/null"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert b"restore " in p.stdout and b"/s" in p.stdout, p.stdout
    assert (tmp_path / "dest" / "f").read_text() == "data" * 1000


@pytest.fixture
def world_tmp():
    """A directory the unprivileged user can use (pytest's own are private to root)."""
    d = tempfile.mkdtemp(prefix="coffer-unreadable-")
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run coffer as an unprivileged user")
def test_unreadable_files_fail_the_snapshot_unless_allowed(world_tmp):
    src, repo = f"{world_tmp}/src", f"{world_tmp}/repo/ns"
    write(f"{src}/fine.txt", "fine")
    write(f"{src}/secret/inner.txt", "inner")
    write(f"{src}/sub/locked.txt", "locked")
    for d, dirs, names in os.walk(src):
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    os.chmod(f"{src}/sub/locked.txt", 0)
    os.chmod(f"{src}/secret", 0)
    os.makedirs(f"{world_tmp}/repo", mode=0o777)
    os.chmod(f"{world_tmp}/repo", 0o777)
    p = run("create", src, repo, user="nobody")
    assert p.returncode == 8, p.stderr
    assert b"--allow-unreadable" in p.stderr
    assert b'"secret"' in p.stderr or b'"sub/locked.txt"' in p.stderr, p.stderr
    assert run("ls", repo, user="nobody").stdout == b""
    p = run("create", src, repo, "--allow-unreadable", "--json", user="nobody")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["skipped"] == 2
    assert b'left out "sub/locked.txt"' in p.stderr and b'left out "secret"' in p.stderr
    manifest = json.loads(ok("show", f"{repo}@{out['id']}"))
    assert sorted(s["path"] for s in manifest["source"]["skipped"]) == ["secret", "sub/locked.txt"]
    assert all(s["error"] == "Permission denied" for s in manifest["source"]["skipped"])
    ok("restore", f"{repo}@{out['id']}", f"{world_tmp}/dest")
    assert files_under(f"{world_tmp}/dest") == {"fine.txt", "secret", "sub"}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_one_file_system_stops_at_mount_points(repo, tmp_path):
    url, env = repo
    src = tmp_path / "src"
    write(str(src / "a.txt"))
    mnt = src / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "coffer-test", str(mnt)], check=True)
    try:
        write(str(mnt / "inside.txt"))
        one = json.loads(ok("create", str(src), url, "--one-file-system", "--json", env=env))
        every = json.loads(ok("create", str(src), url, "--json", env=env))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    ok("restore", f"{url}@{one['id']}", str(tmp_path / "one"), env=env)
    ok("restore", f"{url}@{every['id']}", str(tmp_path / "every"), env=env)
    assert files_under(tmp_path / "one") == {"a.txt", "mnt"}   # the mount point, empty
    assert files_under(tmp_path / "every") == {"a.txt", "mnt", "mnt/inside.txt"}
    assert json.loads(ok("show", f"{url}@{one['id']}", env=env))["source"]["one_file_system"] is True


def test_exit_codes_name_the_failure(server, s3env, tmp_path):
    src = tmp_path / "src"
    write(str(src / "f"), "data")
    url = f"s3://select/{tmp_path.name}/ns"
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    sid = ok("create", str(src), url, "--encrypt-key-file", str(key), env=s3env).strip()

    p = run("ls", f"s3://no-such-bucket-here/{tmp_path.name}/ns", env=s3env)
    assert p.returncode == 6 and b"NoSuchBucket" in p.stderr, p.stderr
    bad = dict(s3env, COFFER_SECRET_KEY="not-the-secret")
    p = run("ls", url, env=bad)
    assert p.returncode == 7 and b"SignatureDoesNotMatch" in p.stderr, p.stderr
    p = run("restore", f"{url}@{sid}", str(tmp_path / "d1"), env=s3env)
    assert p.returncode == 5 and b"--encrypt-key-file" in p.stderr
    p = run("restore", f"{url}@20200101T000000Z-0000", str(tmp_path / "d2"), env=s3env)
    assert p.returncode == 3 and b"no snapshot" in p.stderr
    p = run("restore", "s3://", str(tmp_path / "d3"), env=s3env)
    assert p.returncode == 2
    # A truncated manifest: a damaged snapshot, named, not a missing one.
    mkey = f"{tmp_path.name}/ns/{sid}.json"
    s3 = __import__("conftest").s3_client(server.endpoint)
    body = s3.get_object(Bucket="select", Key=mkey)["Body"].read()
    s3.put_object(Bucket="select", Key=mkey, Body=body[: len(body) // 2])
    p = run("restore", f"{url}@{sid}", str(tmp_path / "d4"), "--encrypt-key-file", str(key), env=s3env)
    assert p.returncode == 4 and b"manifest" in p.stderr, p.stderr
    # @latest is found from the names: the newest is the damaged one, and it is named as such.
    p = run("restore", f"{url}@latest", str(tmp_path / "d4"), "--encrypt-key-file", str(key), env=s3env)
    assert p.returncode == 4 and sid.encode() in p.stderr, p.stderr
    # A manifest too large to be one coffer wrote: damaged, and the message says why (the
    # transfer it stops must not replace that with its own "stopped by the caller").
    huge = b"{" + b" " * (65 << 20) + b"}"
    s3.put_object(Bucket="select", Key=mkey, Body=huge)
    p = run("show", f"{url}@{sid}", env=s3env)
    assert p.returncode == 4 and b"larger than 64 MiB" in p.stderr, p.stderr
    dirrepo = tmp_path / "dirrepo" / "ns"
    did = ok("create", str(src), str(dirrepo)).strip()
    (dirrepo / f"{did}.json").write_bytes(huge)
    p = run("show", f"{dirrepo}@{did}")
    assert p.returncode == 4 and b"larger than 64 MiB" in p.stderr, p.stderr
    for d in ("d1", "d2", "d3", "d4"):
        assert not (tmp_path / d).exists()
