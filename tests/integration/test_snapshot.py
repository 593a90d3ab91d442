"""coffer snapshot create / ls / restore against the coffer server and a directory repository."""
import filecmp
import json
import os
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client


MiB = 1 << 20
SPARSE_SIZE = 64 * MiB
# (offset, bytes) written into the otherwise empty sparse file: its start, 20 MiB, and its end.
SPARSE_DATA = ((0, b"head" * 1024), (20 * MiB, b"middle" * 512), (SPARSE_SIZE - 4096, b"tail" * 1024))


def tree(root):
    """A small tree with the kinds of entries a data directory holds."""
    os.makedirs(f"{root}/sub/deeper")
    os.makedirs(f"{root}/empty")
    with open(f"{root}/a.txt", "w") as f:
        f.write("hello\n")
    with open(f"{root}/sub/big.bin", "wb") as f:
        f.write(os.urandom(3 << 20))
    with open(f"{root}/sub/deeper/zeros", "wb") as f:
        f.write(b"\0" * (9 << 20))       # spans several chunks, compresses to nearly nothing
    with open(f"{root}/sub/deeper/\u00e9t\u00e9.txt", "w") as f:
        f.write("non-ASCII name\n")
    # Old mtimes on the files large enough to be preallocated when restored: preallocation
    # touches the mtime, so it must be over before the restore sets them.
    for big in ("sub/big.bin", "sub/deeper/zeros"):
        os.utime(f"{root}/{big}", (1_600_000_000, 1_600_000_000))
    os.symlink("a.txt", f"{root}/link")
    os.chmod(f"{root}/a.txt", 0o640)
    os.utime(f"{root}/a.txt", (1_700_000_000, 1_700_000_000))
    # Two names for one file, the second in a subdirectory.
    with open(f"{root}/linked.dat", "wb") as f:
        f.write(os.urandom(100_000))
    os.link(f"{root}/linked.dat", f"{root}/sub/linked-too.dat")
    # A 64 MiB file holding a few KiB of data; the rest is holes.
    with open(f"{root}/sparse.img", "wb") as f:
        f.truncate(SPARSE_SIZE)
        for off, data in SPARSE_DATA:
            f.seek(off)
            f.write(data)
    st = os.stat(f"{root}/sparse.img")
    assert st.st_size == SPARSE_SIZE and st.st_blocks * 512 < MiB, "the test file system makes no holes"
    return root


def same_tree(a, b):
    def same_entries(a, b):
        cmp = filecmp.dircmp(a, b)
        assert not cmp.left_only and not cmp.right_only and not cmp.diff_files, (cmp.left_only, cmp.right_only, cmp.diff_files)
        for sub in cmp.common_dirs:
            same_entries(os.path.join(a, sub), os.path.join(b, sub))
        for name in cmp.common_files:
            assert os.lstat(os.path.join(a, name)).st_mode == os.lstat(os.path.join(b, name)).st_mode, name
    same_entries(a, b)
    # Contents byte for byte (dircmp alone compares only type, size and mtime).
    for d, _, files in os.walk(a):
        for name in files:
            pa = os.path.join(d, name)
            if os.path.isfile(pa) and not os.path.islink(pa):
                pb = os.path.join(b, os.path.relpath(pa, a))
                assert filecmp.cmp(pa, pb, shallow=False), f"content differs: {pb}"
                assert int(os.lstat(pa).st_mtime) == int(os.lstat(pb).st_mtime), f"mtime differs: {pb}"
    # Hard links: both names exist, share one inode, and that inode has exactly these two names.
    la, lb = os.stat(f"{a}/linked.dat"), os.stat(f"{a}/sub/linked-too.dat")
    assert la.st_ino == lb.st_ino and la.st_nlink == 2
    ra, rb = os.stat(f"{b}/linked.dat"), os.stat(f"{b}/sub/linked-too.dat")
    assert ra.st_ino == rb.st_ino, "the restored hard-link names are two separate files"
    assert ra.st_nlink == 2 and rb.st_nlink == 2, (ra.st_nlink, rb.st_nlink)
    # The sparse file: same data at the same offsets, and its holes are still holes.
    with open(f"{b}/sparse.img", "rb") as f:
        for off, data in SPARSE_DATA:
            f.seek(off)
            assert f.read(len(data)) == data, off
    st = os.stat(f"{b}/sparse.img")
    assert st.st_size == SPARSE_SIZE
    assert st.st_blocks * 512 < MiB, f"restored sparse.img is dense: {st.st_blocks * 512} bytes allocated"
    return True


def run(*args, env=None, stdin=None, check=True):
    p = subprocess.run([COFFER_BIN, "snapshot", *args], env=env, input=stdin, capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr.decode()
    return p


@pytest.fixture(scope="module")
def s3env(server, s3):
    s3.create_bucket(Bucket="snaps")
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY,
               COFFER_SECRET_KEY=SECRET_KEY)
    return env


@pytest.fixture(params=["s3", "dir"])
def repo(request, s3env, tmp_path):
    if request.param == "s3":
        return f"s3://snaps/{tmp_path.name}/ns", s3env
    return str(tmp_path / "repo" / "ns"), dict(os.environ)


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip", "none"])
@pytest.mark.parametrize("encrypted", [False, True])
def test_round_trip(repo, tmp_path, codec, encrypted):
    url, env = repo
    src = tree(str(tmp_path / "src"))
    extra = []
    if encrypted:
        (tmp_path / "k").write_bytes(os.urandom(32))
        extra = ["--encrypt-key-file", str(tmp_path / "k")]
    sid = run("create", src, url, "--compress", codec, "--label", "height=42", *extra, env=env).stdout.decode().strip()
    listed = [json.loads(line) for line in run("ls", url, "--json", env=env).stdout.decode().splitlines()]
    assert [s["id"] for s in listed] == [sid]
    assert listed[0]["labels"] == {"height": "42"} and listed[0]["encrypted"] == encrypted
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), *extra, env=env)
    assert same_tree(src, str(tmp_path / "out"))
    shown = json.loads(run("show", f"{url}@latest", env=env).stdout)
    assert shown["id"] == sid and shown["archive"]["compression"] == codec
    assert shown["source"]["path"] == os.path.realpath(src) and len(shown["chunks"]) >= 2
    assert os.readlink(tmp_path / "out" / "link") == "a.txt"
    assert os.stat(tmp_path / "out" / "a.txt").st_mtime == 1_700_000_000


@pytest.mark.parametrize("codec,suffix,decoder", [("zstd", ".tar.zst", "zstd -d"), ("lz4", ".tar.lz4", "lz4 -d"),
                                                  ("gzip", ".tar.gz", "gzip -d"), ("none", ".tar", "cat")])
def test_standard_tools_read_an_unencrypted_snapshot(s3env, tmp_path, codec, suffix, decoder):
    """curl URL | DECODER | tar -x, with a presigned URL of the archive on the coffer server,
    and plain tar on a directory repository's archive."""
    src = tree(str(tmp_path / "src"))
    url = f"s3://snaps/{tmp_path.name}/ns"
    sid = run("create", src, url, "--compress", codec, env=s3env).stdout.decode().strip()
    presigned = subprocess.run([COFFER_BIN, "presign", f"s3://snaps/{tmp_path.name}/ns/{sid}{suffix}",
                                "--endpoint", s3env["COFFER_ENDPOINT"]], env=s3env, capture_output=True,
                               check=True).stdout.decode().strip()
    out = tmp_path / "plain"
    out.mkdir()
    subprocess.run(f"curl -sf '{presigned}' | {decoder} | tar -x -C {out}", shell=True, check=True)
    assert same_tree(src, str(out))

    repo = tmp_path / "repo" / "ns"
    sid = run("create", src, str(repo), "--compress", codec).stdout.decode().strip()
    out = tmp_path / "plain-dir"
    out.mkdir()
    flag = {"zstd": "--zstd", "lz4": "--use-compress-program=lz4", "gzip": "-z", "none": ""}[codec]
    subprocess.run(f"tar {flag} -xf {repo}/{sid}{suffix} -C {out}", shell=True, check=True)
    assert same_tree(src, str(out))


def test_stream_snapshot_and_latest(repo, tmp_path):
    url, env = repo
    dump = os.urandom(1 << 20) + b"-- end of dump\n"
    run("create", "-", url, env=env, stdin=dump)
    time.sleep(1.1)  # ids order by the second; within one second the order is not defined
    second = dump + b"more"
    run("create", "-", url, env=env, stdin=second)
    assert run("restore", f"{url}@latest", "-", env=env).stdout == second
    ids = [line.split()[0] for line in run("ls", url, env=env).stdout.decode().splitlines()]
    assert len(ids) == 2 and ids == sorted(ids)
    assert run("restore", f"{url}@{ids[0]}", "-", env=env).stdout == dump


def test_file_source_and_symlinked_sources(repo, tmp_path):
    """A regular file is stored as a stream snapshot of its bytes; a symlink named as SOURCE is
    followed, to a file or to a directory (which once made an empty snapshot); what is neither a
    directory, a regular file nor a FIFO is refused, naming it."""
    url, env = repo
    dump = os.urandom(5 * MiB + 3)
    (tmp_path / "app.pgdump").write_bytes(dump)
    os.symlink("app.pgdump", tmp_path / "latest.pgdump")
    sid = run("create", str(tmp_path / "latest.pgdump"), url, "--label", "db=app", env=env).stdout.decode().strip()
    assert run("restore", f"{url}@{sid}", "-", env=env).stdout == dump
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    assert shown["source"]["kind"] == "stream" and shown["archive"]["raw_size"] == len(dump)
    p = run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env, check=False)
    assert p.returncode == 2 and b"holds a stream" in p.stderr and not (tmp_path / "out").exists()

    (tmp_path / "empty.pgdump").write_bytes(b"")
    sid = run("create", str(tmp_path / "empty.pgdump"), url, env=env).stdout.decode().strip()
    assert run("restore", f"{url}@{sid}", "-", env=env).stdout == b""

    src = tree(str(tmp_path / "src"))
    os.symlink(src, tmp_path / "current")
    sid = run("create", str(tmp_path / "current"), url, env=env).stdout.decode().strip()
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env)
    assert same_tree(src, str(tmp_path / "out"))
    assert json.loads(run("show", f"{url}@{sid}", env=env).stdout)["source"]["path"] == os.path.realpath(src)

    p = run("create", "/dev/null", url, env=env, check=False)
    assert p.returncode == 2 and b"'/dev/null' is a character device" in p.stderr, p.stderr
    p = run("create", str(tmp_path / "gone.pgdump"), url, env=env, check=False)
    assert p.returncode == 2 and b"gone.pgdump': No such file or directory" in p.stderr, p.stderr
    (tmp_path / "locked.pgdump").write_bytes(b"secret")
    os.chmod(tmp_path / "locked.pgdump", 0)
    if os.geteuid() != 0:  # root reads it anyway
        p = run("create", str(tmp_path / "locked.pgdump"), url, env=env, check=False)
        assert p.returncode == 8 and b"locked.pgdump" in p.stderr, p.stderr
    assert len(run("ls", url, env=env).stdout.decode().splitlines()) == 3


def test_failures_are_named_and_leave_destination_untouched(s3env, s3, tmp_path):
    url = f"s3://snaps/{tmp_path.name}/ns"
    src = tree(str(tmp_path / "src"))
    (tmp_path / "k").write_bytes(os.urandom(32))
    (tmp_path / "wrong").write_bytes(os.urandom(32))
    sid = run("create", src, url, "--encrypt-key-file", str(tmp_path / "k"), env=s3env).stdout.decode().strip()
    dest = tmp_path / "dest"
    p = run("restore", url, str(dest), "--encrypt-key-file", str(tmp_path / "wrong"), env=s3env, check=False)
    assert p.returncode == 5 and b"wrong key" in p.stderr
    assert not dest.exists()
    p = run("restore", url, str(dest), env=s3env, check=False)
    assert p.returncode == 5 and b"encrypted" in p.stderr
    # One flipped byte in the stored archive: the damaged chunk is named, nothing is extracted.
    key = f"{tmp_path.name}/ns/{sid}.tar.zst.enc"
    data = bytearray(s3.get_object(Bucket="snaps", Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    s3.put_object(Bucket="snaps", Key=key, Body=bytes(data))
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    p = run("restore", url, str(dest), "--encrypt-key-file", str(tmp_path / "k"), "--force", env=s3env, check=False)
    assert p.returncode == 4 and b"chunk" in p.stderr, p.stderr
    assert sorted(os.listdir(dest)) == ["keep.txt"] and (dest / "keep.txt").read_text() == "mine"
    assert not [n for n in os.listdir(tmp_path) if "coffer-restore" in n]
    p = run("restore", f"s3://snaps/{tmp_path.name}/nothing-here", str(tmp_path / "x"), env=s3env, check=False)
    assert p.returncode == 3
    p = run("create", str(tmp_path / "no-such-dir"), url, env=s3env, check=False)
    assert p.returncode == 2 and b"no-such-dir" in p.stderr
    p = run("ls", "s3://snaps", env=s3env, check=False)
    assert p.returncode == 2


def test_verify_rm_and_prune(repo, tmp_path):
    url, env = repo
    ids = []
    for i in range(3):
        if i:
            time.sleep(1.1)
        ids.append(run("create", "-", url, env=env, stdin=f"dump {i}".encode()).stdout.decode().strip())
    assert run("verify", url, "--all", env=env).stdout.decode().count(": ok") == 3
    assert run("verify", f"{url}@{ids[0]}", env=env).stdout.decode().strip() == f"{ids[0]}: ok"
    p = run("prune", url, env=env, check=False)
    assert p.returncode == 2 and b"no retention rule" in p.stderr
    out = run("prune", url, "--keep-last", "1", "--dry-run", env=env).stdout.decode()
    assert f"keep   {ids[2]} (last)" in out and f"would remove {ids[0]}" in out
    assert len(run("ls", url, env=env).stdout.decode().splitlines()) == 3
    out = run("prune", url, "--keep-last", "2", env=env).stdout.decode()
    assert f"remove {ids[0]}" in out
    listed = [line.split()[0] for line in run("ls", url, env=env).stdout.decode().splitlines()]
    assert listed == ids[1:]
    p = run("restore", f"{url}@{ids[0]}", "-", env=env, check=False)
    assert p.returncode == 3
    run("rm", f"{url}@{ids[1]}", env=env)
    assert [line.split()[0] for line in run("ls", url, env=env).stdout.decode().splitlines()] == ids[2:]
    assert run("restore", f"{url}@latest", "-", env=env).stdout == b"dump 2"


def test_prune_removes_archives_left_without_manifest(tmp_path):
    repo = tmp_path / "repo" / "ns"
    run("create", "-", str(repo), stdin=b"kept")
    orphan = repo / "20200101T000000Z-dead.tar.zst"
    orphan.write_bytes(b"half an interrupted upload")
    os.utime(orphan, (1_600_000_000, 1_600_000_000))
    fresh = repo / "20200101T000001Z-beef.tar.zst"
    fresh.write_bytes(b"a create still running")
    out = run("prune", str(repo), "--keep-last", "5", "--grace", "1h").stdout.decode()
    assert "20200101T000000Z-dead (archive without a manifest" in out
    assert not orphan.exists() and fresh.exists()


def test_verify_names_the_damaged_chunk(tmp_path):
    repo = tmp_path / "repo" / "ns"
    sid = run("create", "-", str(repo), stdin=os.urandom(1 << 20)).stdout.decode().strip()
    archive = repo / f"{sid}.tar.zst"
    data = bytearray(archive.read_bytes())
    data[100] ^= 0xFF
    archive.write_bytes(bytes(data))
    p = run("verify", str(repo), check=False)
    assert p.returncode == 4 and b"chunk 0" in p.stderr, p.stderr


def test_from_command_to_command_and_metrics_file(repo, tmp_path):
    url, env = repo
    metrics = tmp_path / "coffer.prom"
    sid = run("create", "--from-command", "printf 'row 1\\nrow 2\\n'", url, "--metrics-file", str(metrics),
              env=env).stdout.decode().strip()
    text = metrics.read_text()
    assert 'coffer_snapshot_success{command="create",namespace="ns"} 1' in text
    assert 'coffer_snapshot_raw_bytes{command="create",namespace="ns"} 12' in text
    ok_time = [l for l in text.splitlines() if l.startswith("coffer_snapshot_last_success_timestamp_seconds")][0]
    # A failing command makes no snapshot, and the metrics say so while keeping the last success.
    p = run("create", "--from-command", "echo partial; exit 3", url, "--metrics-file", str(metrics),
            env=env, check=False)
    assert p.returncode == 1 and b"exited with status 3" in p.stderr and b"no snapshot" in p.stderr
    assert [line.split()[0] for line in run("ls", url, env=env).stdout.decode().splitlines()] == [sid]
    text = metrics.read_text()
    assert 'coffer_snapshot_success{command="create",namespace="ns"} 0' in text
    assert ok_time in text
    out = tmp_path / "restored.txt"
    run("restore", f"{url}@{sid}", "--to-command", f"cat > {out}", env=env)
    assert out.read_bytes() == b"row 1\nrow 2\n"
    p = run("restore", f"{url}@{sid}", "--to-command", "exit 5", env=env, check=False)
    assert p.returncode != 0


def test_kill_during_create_leaves_no_snapshot_and_prune_cleans_up(repo, tmp_path):
    import signal as sig
    url, env = repo
    run("create", "-", url, env=env, stdin=b"before")
    # A create killed while its archive streams in: 96 MiB, then a producer that stalls (the
    # compression pipeline holds up to 5 chunks, so most of it has reached the repository).
    p = subprocess.Popen([COFFER_BIN, "snapshot", "create", "--compress", "none", "--from-command",
                          "head -c 100663296 /dev/zero; sleep 60", url], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def leftover_exists():
        if url.startswith("s3://"):
            c = s3_client(env["COFFER_ENDPOINT"])
            return bool(c.list_multipart_uploads(Bucket="snaps").get("Uploads"))
        return any(".tmp-" in f for _, _, fs in os.walk(url) for f in fs)
    deadline = time.monotonic() + 30
    while not leftover_exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftover_exists()
    p.send_signal(sig.SIGKILL)
    p.wait()
    assert len(run("ls", url, env=env).stdout.decode().splitlines()) == 1
    time.sleep(2.2)  # past the 1 s grace, with whole-second file times
    out = run("prune", url, "--keep-last", "5", "--grace", "1s", env=env).stdout.decode()
    assert "leftover" in out, out
    if not url.startswith("s3://"):
        leftovers = [f for _, _, fs in os.walk(url) for f in fs if ".tmp-" in f]
        assert leftovers == []
    assert run("restore", f"{url}@latest", "-", env=env).stdout == b"before"


def test_passphrase_encryption(repo, tmp_path):
    url, env = repo
    (tmp_path / "pass").write_text("correct horse battery staple\n")
    (tmp_path / "wrong").write_text("incorrect horse battery staple\n")
    (tmp_path / "short").write_text("short\n")
    sid = run("create", "-", url, "--passphrase-file", str(tmp_path / "pass"), env=env,
              stdin=b"secret rows").stdout.decode().strip()
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    assert shown["encryption"]["key_source"] == "passphrase" and shown["encryption"]["scrypt"]["n"] == 32768
    assert run("restore", f"{url}@{sid}", "-", "--passphrase-file", str(tmp_path / "pass"), env=env).stdout == b"secret rows"
    p = run("restore", f"{url}@{sid}", "-", "--passphrase-file", str(tmp_path / "wrong"), env=env, check=False)
    assert p.returncode == 5 and b"wrong key" in p.stderr
    p = run("restore", f"{url}@{sid}", "-", env=env, check=False)
    assert p.returncode == 5 and b"--passphrase-file" in p.stderr
    p = run("create", "-", url, "--passphrase-file", str(tmp_path / "short"), env=env, stdin=b"x", check=False)
    assert p.returncode == 2 and b"shorter than 8" in p.stderr
