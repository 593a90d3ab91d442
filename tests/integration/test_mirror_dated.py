"""coffer mirror --dated: nightly dated copies of a bucket in a directory, against the real server.

Simulated nights (--as-of) with files changed, added and deleted: each night's directory holds
exactly that night's tree, unchanged files are one inode shared across nights, a changed file is a
new inode and the older nights keep the old bytes, --keep-daily/weekly/monthly leave what the
snapshot prune's rules leave, a failed night publishes nothing and changes nothing, and entries of
the directory that are not dated copies are never touched.
"""
import datetime
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, run_checked, s3_client

NIGHTS = [f"2026-03-{d:02d}" for d in range(1, 11)]


def env_for(endpoint):
    return dict(os.environ, COFFER_ENDPOINT=endpoint, COFFER_ACCESS_KEY=ACCESS_KEY, COFFER_SECRET_KEY=SECRET_KEY)


def mirror(env, *args, timeout=120):
    return run_checked([COFFER_BIN, "mirror", "--no-progress", *args], env=env, timeout=timeout)


def night(env, bucket, dest, as_of, *extra):
    """One night; must succeed. Its --json summary."""
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", as_of, "--json", *extra)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def tree(path):
    """{relative path: bytes} of the regular files under path."""
    out = {}
    for d, _, files in os.walk(path):
        for name in files:
            full = os.path.join(d, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def published_names(path):
    """The files under path a reader may see: not the temporary names of writes in flight (which
    may vanish while walking)."""
    out = set()
    for d, _, files in os.walk(path):
        out.update(os.path.relpath(os.path.join(d, n), path) for n in files if ".tmp-" not in n)
    return out


def inodes(path):
    return {rel: os.lstat(os.path.join(path, rel)).st_ino for rel in tree(path)}


def is_date(name):
    try:
        return len(name) == 10 and datetime.date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def dated_dirs(dest):
    return sorted(n for n in os.listdir(dest) if is_date(n) and os.path.isdir(os.path.join(dest, n))
                  and not os.path.islink(os.path.join(dest, n)))


def hidden_leftovers(dest):
    return sorted(n for n in os.listdir(dest) if n.startswith("."))


@pytest.fixture(scope="module")
def env(server):
    return env_for(server.endpoint)


def bucket_with(s3, name, files):
    s3.create_bucket(Bucket=name)
    for key, body in files.items():
        s3.put_object(Bucket=name, Key=key, Body=body)


def test_ten_nights_share_unchanged_files_and_keep_seven(env, s3, tmp_path):
    bucket = "dated-ten-nights"
    state = {f"img/{i}.jpg": bytes([65 + i]) * (1000 + i) for i in range(6)}
    state["css/site.css"] = b"body { color: #333 }"  # never changes: shared by every night
    bucket_with(s3, bucket, state)
    dest = tmp_path / "backups" / "images"
    seen, removed = {}, []
    for n, as_of in enumerate(NIGHTS):
        changed, added, deleted = set(), set(), set()
        if n:
            key = f"img/{n % 6}.jpg"  # a new size: told apart whatever the second it lands in
            state[key] = os.urandom(2000 + n)
            changed.add(key)
            key = f"new/{n}.png"
            state[key] = os.urandom(300 + n)
            added.add(key)
            if n % 3 == 0:
                key = f"new/{n - 2}.png"
                del state[key]
                deleted.add(key)
            for key in changed | added:
                s3.put_object(Bucket=bucket, Key=key, Body=state[key])
            for key in deleted:
                s3.delete_object(Bucket=bucket, Key=key)
        out = night(env, bucket, dest, as_of, "--keep-daily", "7")
        assert out["dated"]["name"] == as_of
        assert out["dated"]["path"] == str(dest / as_of)
        assert out["files"]["failed"] == 0
        assert tree(dest / as_of) == state, as_of
        if n:
            prev = NIGHTS[n - 1]
            unchanged = set(state) - changed - added
            assert out["files"]["linked"] == len(unchanged), out
            assert out["files"]["copied"] == len(changed | added), out
            now, before = inodes(dest / as_of), inodes(dest / prev)
            for key in unchanged:
                assert now[key] == before[key], f"{key} is not shared with {prev}"
            for key in changed:
                assert now[key] != before[key], f"{key} changed but shares {prev}'s inode"
            # The older night kept its bytes: a link is never written through.
            assert tree(dest / prev) == seen[prev]
            for key in deleted:
                assert key not in now and key in before
        else:
            assert out["files"]["copied"] == len(state) and out["files"]["linked"] == 0
        seen[as_of] = dict(state)
        removed += out["dated"]["removed"]
    assert dated_dirs(dest) == NIGHTS[-7:]
    assert removed == NIGHTS[:3]
    assert hidden_leftovers(dest) == []
    for as_of in NIGHTS[-7:]:
        assert tree(dest / as_of) == seen[as_of], as_of
    # One copy of the file that never changed, named by all seven nights.
    st = [os.stat(dest / as_of / "css" / "site.css") for as_of in NIGHTS[-7:]]
    assert len({s.st_ino for s in st}) == 1
    assert st[0].st_nlink == 7


def expected_after(nights, daily, weekly, monthly):
    """The copies left after running the nights in order, each followed by the retention, by the
    rules written out independently of the code: for the last N days (ISO weeks, months) that have
    copies, the newest copy of each; tonight's copy always stays."""
    present = set()
    for tonight in nights:
        present.add(tonight)
        dates = sorted((datetime.date.fromisoformat(d) for d in present), reverse=True)
        keep = {tonight}
        for count, period in ((daily, lambda d: d), (weekly, lambda d: d.isocalendar()[:2]),
                              (monthly, lambda d: (d.year, d.month))):
            last, left = None, count
            for d in dates:
                if left <= 0:
                    break
                if period(d) == last:
                    continue
                keep.add(d.isoformat())
                last, left = period(d), left - 1
        present = keep
    return sorted(present)


def test_weekly_and_monthly_keep_older_copies(env, s3, tmp_path):
    bucket = "dated-weeks-months"
    bucket_with(s3, bucket, {"a.jpg": b"a" * 100})
    dest = tmp_path / "backups"
    nights = [(datetime.date(2026, 1, 1) + datetime.timedelta(days=4 * i)).isoformat() for i in range(23)]
    for as_of in nights:
        night(env, bucket, dest, as_of, "--keep-daily", "2", "--keep-weekly", "3", "--keep-monthly", "3")
    want = expected_after(nights, 2, 3, 3)
    assert dated_dirs(dest) == want
    # Read by hand: the two newest nights (03-30, a Monday, and 03-26), the newest of the last
    # three ISO weeks (03-30, 03-26, and 03-22, a Sunday), and the newest of March, February
    # (02-26) and January (01-29: the next night is 02-02).
    assert want == ["2026-01-29", "2026-02-26", "2026-03-22", "2026-03-26", "2026-03-30"]
    # All of them are the one unchanged file.
    assert len({os.stat(dest / d / "a.jpg").st_ino for d in want}) == 1


def test_failed_night_publishes_nothing_and_keeps_earlier_copies(make_server, tmp_path):
    srv = make_server().start()
    s3 = s3_client(srv.endpoint)
    env = env_for(srv.endpoint)
    bucket_with(s3, "photos", {"a.jpg": b"a" * 500, "b/c.png": b"c" * 700})
    dest = tmp_path / "nfs" / "photos"
    night(env, "photos", dest, "2026-03-01", "--keep-daily", "1")
    s3.put_object(Bucket="photos", Key="a.jpg", Body=b"changed" * 100)
    night(env, "photos", dest, "2026-03-02", "--keep-daily", "2")
    before = {d: (tree(dest / d), inodes(dest / d)) for d in dated_dirs(dest)}
    assert list(before) == ["2026-03-01", "2026-03-02"]

    # The source is gone for the night: nothing published, no retention, nothing changed.
    srv.stop()
    p = mirror(env, "s3://photos", str(dest), "--dated", "--as-of", "2026-03-03", "--keep-daily", "1")
    assert p.returncode == 1, p.stderr.decode()
    assert b"coffer mirror:" in p.stderr
    assert dated_dirs(dest) == ["2026-03-01", "2026-03-02"]
    assert {d: (tree(dest / d), inodes(dest / d)) for d in dated_dirs(dest)} == before

    # A bucket that does not exist: exit 6, the same.
    srv.start()
    p = mirror(env, "s3://no-such-bucket", str(dest), "--dated", "--as-of", "2026-03-03", "--keep-daily", "1")
    assert p.returncode == 6, p.stderr.decode()
    assert {d: (tree(dest / d), inodes(dest / d)) for d in dated_dirs(dest)} == before

    # The next good night publishes and only then applies the retention.
    out = night(env, "photos", dest, "2026-03-03", "--keep-daily", "1")
    assert out["dated"]["removed"] == ["2026-03-01", "2026-03-02"]
    assert dated_dirs(dest) == ["2026-03-03"]
    assert tree(dest / "2026-03-03") == before["2026-03-02"][0]
    assert hidden_leftovers(dest) == []


def test_a_failed_file_publishes_nothing_and_the_next_run_resumes(env, s3, tmp_path):
    bucket = "dated-failed-file"
    files = {f"ok/{i}.jpg": bytes([i]) * (100 + i) for i in range(5)}
    bucket_with(s3, bucket, files)
    dest = tmp_path / "backups"
    night(env, bucket, dest, "2026-03-01")
    before = (tree(dest / "2026-03-01"), inodes(dest / "2026-03-01"))
    # A key and a "directory" of one name: a directory cannot hold both, so one file fails.
    s3.put_object(Bucket=bucket, Key="clash", Body=b"file")
    s3.put_object(Bucket=bucket, Key="clash/inside", Body=b"under it")
    s3.put_object(Bucket=bucket, Key="ok/new.jpg", Body=b"n" * 50)
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-02", "--keep-daily", "1",
               "--json")
    assert p.returncode == 1, p.stderr.decode()
    out = json.loads(p.stdout)
    assert out["files"]["failed"] == 1 and [f["key"] for f in out["failures"]][0].startswith("clash")
    assert b"not published" in p.stderr
    assert dated_dirs(dest) == ["2026-03-01"]  # no retention either
    assert (tree(dest / "2026-03-01"), inodes(dest / "2026-03-01")) == before
    assert (dest / ".2026-03-02.partial" / "ok" / "new.jpg").read_bytes() == b"n" * 50
    s3.delete_object(Bucket=bucket, Key="clash")
    out = night(env, bucket, dest, "2026-03-02", "--keep-daily", "1")
    assert out["files"]["copied"] == 0, out  # the failed run staged everything else already
    assert dated_dirs(dest) == ["2026-03-02"]
    assert tree(dest / "2026-03-02") == dict(files, **{"clash/inside": b"under it", "ok/new.jpg": b"n" * 50})


def test_killed_night_leaves_no_copy_and_the_rerun_reuses_its_files(env, s3, tmp_path):
    bucket = "dated-killed"
    files = {f"p/{i:04d}.bin": os.urandom(64 * 1024) for i in range(400)}
    bucket_with(s3, bucket, files)
    dest = tmp_path / "backups"
    partial = dest / ".2026-03-01.partial"
    proc = subprocess.Popen([COFFER_BIN, "mirror", "--no-progress", "--jobs", "1", f"s3://{bucket}", str(dest),
                             "--dated", "--as-of", "2026-03-01"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(published_names(partial)) >= 20:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail("the run ended before it could be killed: make it longer")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (dest / "2026-03-01").exists()
    staged = published_names(partial)
    assert staged, "nothing was staged before the kill"
    for key in staged:  # whole files only: a write in flight has a temporary name
        with open(partial / key, "rb") as f:
            assert f.read() == files[key], key
    out = night(env, bucket, dest, "2026-03-01")
    assert tree(dest / "2026-03-01") == files
    assert out["files"]["skipped"] >= len(staged)
    assert out["files"]["copied"] <= len(files) - len(staged)
    assert hidden_leftovers(dest) == []


def test_second_run_the_same_night_replaces_the_copy(env, s3, tmp_path):
    bucket = "dated-same-night"
    bucket_with(s3, bucket, {"keep.jpg": b"k" * 10, "change.jpg": b"1" * 10, "drop.jpg": b"d" * 10})
    dest = tmp_path / "backups"
    night(env, bucket, dest, "2026-02-28")
    night(env, bucket, dest, "2026-03-01")
    s3.put_object(Bucket=bucket, Key="change.jpg", Body=b"2" * 20)
    s3.delete_object(Bucket=bucket, Key="drop.jpg")
    out = night(env, bucket, dest, "2026-03-01")
    assert tree(dest / "2026-03-01") == {"keep.jpg": b"k" * 10, "change.jpg": b"2" * 20}
    # Linked, like the first run of the night, to the night before, which is as it was.
    assert out["files"]["linked"] == 1 and out["files"]["copied"] == 1
    assert inodes(dest / "2026-03-01")["keep.jpg"] == inodes(dest / "2026-02-28")["keep.jpg"]
    assert tree(dest / "2026-02-28") == {"keep.jpg": b"k" * 10, "change.jpg": b"1" * 10, "drop.jpg": b"d" * 10}
    assert dated_dirs(dest) == ["2026-02-28", "2026-03-01"]
    assert hidden_leftovers(dest) == []


def test_entries_that_are_not_dated_copies_are_left_alone(env, s3, tmp_path):
    bucket = "dated-unrelated"
    bucket_with(s3, bucket, {"a.jpg": b"a"})
    dest = tmp_path / "backups"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"precious")
    dest.mkdir()
    (dest / "README").write_bytes(b"notes")
    (dest / "2026-1-1").mkdir()
    (dest / "2026-1-1" / "x").write_bytes(b"x")
    (dest / "notes").mkdir()
    (dest / "notes" / "2026-01-01").mkdir()
    (dest / "2026-02-02").write_bytes(b"a file named like a copy")
    os.symlink(outside, dest / "2026-02-01")
    (dest / "2026-02-30").mkdir()  # not a calendar date: not a copy
    for as_of in NIGHTS[:3]:
        night(env, bucket, dest, as_of, "--keep-daily", "1")
    assert dated_dirs(dest) == ["2026-03-03"]
    assert (dest / "README").read_bytes() == b"notes"
    assert (dest / "2026-1-1" / "x").exists() and (dest / "notes" / "2026-01-01").is_dir()
    assert (dest / "2026-02-02").read_bytes() == b"a file named like a copy"
    assert os.path.islink(dest / "2026-02-01") and (outside / "precious.txt").read_bytes() == b"precious"
    assert (dest / "2026-02-30").is_dir()
    # Tonight's name taken by a file: refused before anything is copied, the file untouched.
    (dest / "2026-03-04").write_bytes(b"mine")
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-04")
    assert p.returncode != 0 and b"not a dated copy" in p.stderr
    assert (dest / "2026-03-04").read_bytes() == b"mine"
    assert not (dest / ".2026-03-04.partial").exists()


def test_dry_run_changes_nothing(env, s3, tmp_path):
    bucket = "dated-dry-run"
    bucket_with(s3, bucket, {"a.jpg": b"a" * 10, "b.jpg": b"b" * 10})
    dest = tmp_path / "backups"
    night(env, bucket, dest, "2026-03-01")
    night(env, bucket, dest, "2026-03-02")
    s3.put_object(Bucket=bucket, Key="b.jpg", Body=b"B" * 30)
    listing = sorted(os.listdir(dest))
    before = {d: inodes(dest / d) for d in dated_dirs(dest)}
    out = night(env, bucket, dest, "2026-03-03", "--dry-run", "--keep-daily", "1")
    assert out["dry_run"] is True
    assert out["dated"]["removed"] == ["2026-03-01", "2026-03-02"]
    assert sorted(os.listdir(dest)) == listing
    assert {d: inodes(dest / d) for d in dated_dirs(dest)} == before
    # a.jpg is unchanged since the night before: the real run would link it, and so says the dry run.
    assert out["files"]["copied"] == 1 and out["bytes"]["copied"] == 30
    assert out["files"]["linked"] == 1 and out["bytes"]["linked"] == 10
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-03", "--dry-run", "--keep-daily", "1")
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert "would link a.jpg (10 bytes)" in lines and "would copy b.jpg (30 bytes)" in lines
    assert not any("would copy a.jpg" in line for line in lines)
    assert sorted(os.listdir(dest)) == listing
    out = night(env, bucket, dest, "2026-03-03", "--keep-daily", "1")
    assert (out["files"]["copied"], out["files"]["linked"]) == (1, 1)  # what the dry run said


def test_human_summary_names_the_copy_and_what_retention_removed(env, s3, tmp_path):
    bucket = "dated-human"
    bucket_with(s3, bucket, {"a.jpg": b"a" * 10})
    dest = tmp_path / "backups"
    night(env, bucket, dest, "2026-03-01")
    night(env, bucket, dest, "2026-03-02")
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-03", "--keep-daily", "1",
               "--dry-run")
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert f"would publish {dest}/2026-03-03" in lines
    assert "would remove by retention: 2026-03-01, 2026-03-02" in lines
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-03", "--keep-daily", "1")
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert lines[0].startswith("copied 0 files (0 bytes), skipped 0, deleted 0, failed 0, linked 1 in ")
    assert lines[1:] == [f"dated copy {dest}/2026-03-03", "removed by retention: 2026-03-01, 2026-03-02"]
    assert dated_dirs(dest) == ["2026-03-03"]
    p = mirror(env, f"s3://{bucket}", str(dest), "--dated", "--as-of", "2026-03-04")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().splitlines()[1:] == [f"dated copy {dest}/2026-03-04", "removed by retention: none"]


@pytest.mark.parametrize("as_of", ["2026-02-30", "2026-1-1", "../x", "2026-13-01", "2026-01-01/../..",
                                   "1969-12-31", "2026-01- 1", "2026-+1-01", ""])
def test_as_of_refuses_what_is_not_a_date(env, tmp_path, as_of):
    dest = tmp_path / "backups"
    p = mirror(env, str(tmp_path), str(dest), "--dated", "--as-of", as_of)
    assert p.returncode == 2, p.stderr.decode()
    assert b"--as-of" in p.stderr
    assert not dest.exists() and not (tmp_path / "x").exists()


def test_flags_that_do_not_go_with_dated(env, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    dest = tmp_path / "backups"
    p = mirror(env, str(src), str(dest), "--dated", "--delete")
    assert p.returncode == 2 and b"--delete" in p.stderr
    p = mirror(env, str(src), str(dest), "--keep-daily", "7")
    assert p.returncode == 2 and b"--dated" in p.stderr
    # A bad command line (2), refused before any server is asked: the bucket need not exist.
    p = mirror(env, str(src), "s3://some-bucket/x", "--dated")
    assert p.returncode == 2, p.stderr.decode()
    assert b"--dated" in p.stderr and b"directory destination" in p.stderr and b"s3://some-bucket/x" in p.stderr
    p = mirror(env, "s3://some-bucket", "s3://other-bucket", "--dated", "--as-of", "2026-03-01")
    assert p.returncode == 2 and b"--dated" in p.stderr and b"s3://other-bucket" in p.stderr
    assert not dest.exists()
