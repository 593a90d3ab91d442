"""Interrupted creates (docs/SNAPSHOTS.md, "Interrupted runs"): a create of a directory or of a
regular file into S3 killed mid-upload is continued by the same command run again, sending only
the parts the store does not hold; a source changed in between starts a new snapshot and says
why; a stream (-, a command, a FIFO) cannot be replayed and the next run says so; the final
snapshot verifies and restores byte-identical.

The create is stopped (SIGSTOP) as soon as the server holds a few of its parts, then killed with
SIGKILL, so the interruption lands mid-upload however fast the machine is."""
import glob
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import SANITIZER_MARKERS
from test_snapshot_upload import env_for, run, same_files, snapshot_keys, uploads

MiB = 1 << 20


def tree(root, n=6, size=24 * MiB):
    """Incompressible files, so that the archive takes n * size / 16 MiB parts."""
    os.makedirs(f"{root}/sub")
    for i in range(n):
        with open(f"{root}/sub/f{i}.bin" if i % 2 else f"{root}/f{i}.bin", "wb") as f:
            f.write(os.urandom(size + i * 4099))
    with open(f"{root}/note.txt", "w") as f:
        f.write("a small file\n")
    return root


def metric(server, name, op):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0
    for m in re.finditer(r'^%s\{op="%s"(?:,status="(\d+)")?\} (\d+)$' % (name, op), text, re.M):
        if m.group(1) in (None, "200"):
            total += int(m.group(2))
    return total


def settled(server, name, op):
    """metric() once the killed run's last bodies are counted: the same twice, 0.3 s apart."""
    last = metric(server, name, op)
    for _ in range(50):
        time.sleep(0.3)
        now = metric(server, name, op)
        if now == last:
            return now
        last = now
    return last


def parts_held(s3, bucket):
    ups = uploads(s3, bucket)
    if not ups:
        return 0, None
    u = ups[0]
    return len(s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])), u


def kill_when(args, env, ready, what):
    """Runs coffer snapshot ARGS; once ready() returns something, stops the process (SIGSTOP, so
    that it goes no further) and kills it with SIGKILL, and returns that."""
    p = subprocess.Popen([os.environ.get("COFFER_BIN", "coffer"), "snapshot", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            got = ready()
            if got is not None:
                p.send_signal(signal.SIGSTOP)
                p.kill()
                p.wait()
                return got
            time.sleep(0.01)
        raise AssertionError(f"the run ended (or stalled) before {what}: {p.poll()} "
                             f"{p.stderr.read().decode()[-2000:]}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def interrupt(args, env, s3, bucket, after_parts=3):
    """Kills a create once the store holds after_parts parts of its upload; returns the upload."""
    def ready():
        n, u = parts_held(s3, bucket)
        return u if n >= after_parts else None
    u = kill_when(args, env, ready, f"{after_parts} parts were stored")
    # A part whose body had arrived whole is stored a moment after the kill: wait until the
    # parts held stop changing, so that what a test counts as held is what the next run finds.
    last = None
    for _ in range(50):
        now = s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
        if now == last:
            break
        last = now
        time.sleep(0.3)
    return u


def check_clean(err):
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err[-8000:]


def state_keys(s3, bucket):
    return [k for k in snapshot_keys(s3, bucket) if "/.resume/" in k]


def interrupted_dir(server, s3, tmp_path, bucket, extra=()):
    """A bucket, a tree, and a create of it killed mid-upload: (env, src, url, args, upload)."""
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    src = tree(str(tmp_path / "src"))
    url = f"s3://{bucket}/ns"
    args = ["create", src, url, "--compress", "none", "--jobs", "2", *extra]
    return env, src, url, args, interrupt(args, env, s3, bucket)


def test_killed_create_resumes_and_sends_only_missing_parts(server, s3, tmp_path):
    bucket = "rs-dir"
    env, src, url, args, u = interrupted_dir(server, s3, tmp_path, bucket)
    held, _ = parts_held(s3, bucket)
    assert held >= 3
    held_bytes = sum(p["Size"] for p in s3.list_parts(Bucket=bucket, Key=u["Key"],
                                                        UploadId=u["UploadId"])["Parts"])
    # Nothing listed, and the state names the upload.
    assert run("ls", url, env=env).stdout == b""
    states = state_keys(s3, bucket)
    assert len(states) == 1, states
    state = json.loads(s3.get_object(Bucket=bucket, Key=states[0])["Body"].read())
    assert state["upload_id"] == u["UploadId"] and not state["stream"]

    bytes_before = settled(server, "coffer_s3_received_bytes_total", "UploadPart")
    parts_before = metric(server, "coffer_s3_requests_total", "UploadPart")
    p = run(*args, env=env)
    err = p.stderr.decode()
    check_clean(err)
    sid = p.stdout.decode().strip()
    assert f"resuming ns@{state['id']}" in err, err
    assert sid == state["id"], (sid, state["id"])
    sent_parts = metric(server, "coffer_s3_requests_total", "UploadPart") - parts_before
    sent_bytes = metric(server, "coffer_s3_received_bytes_total", "UploadPart") - bytes_before
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    total_parts = (shown["archive"]["size"] + 16 * MiB - 1) // (16 * MiB)
    # The parts the store held were not sent again; the rest were, once.
    assert sent_parts == total_parts - held, (sent_parts, total_parts, held)
    assert f"{held} part(s) ({held_bytes >> 20} MiB) the store held were kept, {sent_parts} sent" in err, err
    # Bytes: those of the parts sent, and perhaps the bodies the killed run had in flight (at most
    # 4 parts), which a slow server (a sanitizer build) counts only as their connections end.
    missing = shown["archive"]["size"] - held_bytes
    assert missing <= sent_bytes <= missing + 4 * 16 * MiB, (sent_bytes, held_bytes)
    assert uploads(s3, bucket) == [] and state_keys(s3, bucket) == []
    assert run("verify", f"{url}@{sid}", env=env).stdout.decode().strip() == f"{sid}: ok"
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env)
    assert same_files(src, str(tmp_path / "out"))
    assert os.path.getsize(tmp_path / "out" / "note.txt") == 13


def test_a_held_part_that_differs_is_sent_again(server, s3, tmp_path):
    """The store's part 2 replaced by other bytes of the same size (as a source rewritten without
    a trace in its metadata would make it): its MD5 no longer matches the part made again, so it
    is sent again; the snapshot holds the source's bytes."""
    bucket = "rs-tampered"
    env, src, url, args, u = interrupted_dir(server, s3, tmp_path, bucket)
    part = next(p for p in s3.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])["Parts"]
                if p["PartNumber"] == 2)
    s3.upload_part(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"], PartNumber=2,
                   Body=os.urandom(part["Size"]))
    held, _ = parts_held(s3, bucket)
    parts_before = metric(server, "coffer_s3_requests_total", "UploadPart")
    p = run(*args, env=env)
    assert "resuming" in p.stderr.decode(), p.stderr.decode()
    sid = p.stdout.decode().strip()
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    total_parts = (shown["archive"]["size"] + 16 * MiB - 1) // (16 * MiB)
    assert metric(server, "coffer_s3_requests_total", "UploadPart") - parts_before == total_parts - held + 1
    assert run("verify", f"{url}@{sid}", env=env).returncode == 0
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env)
    assert same_files(src, str(tmp_path / "out"))


def test_changed_source_starts_a_new_snapshot(server, s3, tmp_path):
    bucket = "rs-changed"
    env, src, url, args, old = interrupted_dir(server, s3, tmp_path, bucket)
    old_id = json.loads(s3.get_object(Bucket=bucket, Key=state_keys(s3, bucket)[0])["Body"].read())["id"]
    with open(f"{src}/note.txt", "a") as f:
        f.write("changed\n")
    p = run(*args, env=env)
    err = p.stderr.decode()
    check_clean(err)
    sid = p.stdout.decode().strip()
    assert "the source changed since the interrupted run" in err and old_id in err, err
    assert "resuming" not in err, err
    assert sid != old_id
    # The stale upload was aborted, not left for prune.
    assert all(u["UploadId"] != old["UploadId"] for u in uploads(s3, bucket))
    assert uploads(s3, bucket) == [] and state_keys(s3, bucket) == []
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env)
    assert same_files(src, str(tmp_path / "out"))


def test_encrypted_create_resumes(server, s3, tmp_path):
    bucket = "rs-enc"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    src = tree(str(tmp_path / "src"), n=5)
    pw = tmp_path / "pass"
    pw.write_text("correct horse battery staple\n")
    url = f"s3://{bucket}/ns"
    args = ["create", src, url, "--compress", "lz4", "--jobs", "2", "--passphrase-file", str(pw)]
    interrupt(args, env, s3, bucket)
    held, _ = parts_held(s3, bucket)
    state = json.loads(s3.get_object(Bucket=bucket, Key=state_keys(s3, bucket)[0])["Body"].read())
    # Salts only: no key, no passphrase.
    assert "correct horse" not in json.dumps(state) and set(state["encryption"]) >= {"salt", "key_id"}
    parts_before = metric(server, "coffer_s3_requests_total", "UploadPart")
    p = run(*args, env=env)
    err = p.stderr.decode()
    sid = p.stdout.decode().strip()
    assert "resuming" in err and sid == state["id"], err
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    total_parts = (shown["archive"]["size"] + 16 * MiB - 1) // (16 * MiB)
    assert metric(server, "coffer_s3_requests_total", "UploadPart") - parts_before == total_parts - held
    assert run("verify", f"{url}@{sid}", "--passphrase-file", str(pw), env=env).returncode == 0
    run("restore", f"{url}@{sid}", str(tmp_path / "out"), "--passphrase-file", str(pw), env=env)
    assert same_files(src, str(tmp_path / "out"))


def test_interrupted_stream_is_not_replayed(server, s3, tmp_path):
    """The next run says what the interrupted one left and makes a new snapshot; it aborts nothing,
    since runs of one command may overlap (the stream tests of test_snapshot_order start several
    at once): prune removes it after its grace period (next test)."""
    bucket = "rs-stream"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    url = f"s3://{bucket}/ns"
    cmd = "head -c 134217728 /dev/urandom"
    args = ["create", "--from-command", cmd, url, "--compress", "none"]
    old = interrupt(args, env, s3, bucket)
    left = state_keys(s3, bucket)
    assert len(left) == 1
    old_id = json.loads(s3.get_object(Bucket=bucket, Key=left[0])["Body"].read())["id"]
    p = run(*args, env=env)
    err = p.stderr.decode()
    check_clean(err)
    assert f"an earlier run of this stream snapshot (ns@{old_id}" in err and "cannot be replayed" in err, err
    assert p.stdout.decode().strip() != old_id
    assert [u["UploadId"] for u in uploads(s3, bucket)] == [old["UploadId"]]
    assert state_keys(s3, bucket) == left
    assert len(run("ls", url, env=env).stdout.decode().splitlines()) == 1
    # A stream run that completes leaves nothing, and says nothing, when nothing was left before.
    s3.abort_multipart_upload(Bucket=bucket, Key=old["Key"], UploadId=old["UploadId"])
    s3.delete_object(Bucket=bucket, Key=left[0])
    p = run("create", "-", url, env=env, stdin=b"small")
    assert p.stderr == b"" and state_keys(s3, bucket) == [] and uploads(s3, bucket) == []


def test_prune_removes_what_an_interrupted_stream_left(server, s3, tmp_path):
    bucket = "rs-prune"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    url = f"s3://{bucket}/ns"
    interrupt(["create", "--from-command", "head -c 134217728 /dev/urandom", url, "--compress", "none"], env,
              s3, bucket)
    assert uploads(s3, bucket) and state_keys(s3, bucket)
    time.sleep(2.1)  # older than the grace of 1 s
    run("prune", url, "--keep-last", "1", "--grace", "1s", env=env)
    assert uploads(s3, bucket) == [] and state_keys(s3, bucket) == []


def test_no_resume_leaves_no_state_and_does_not_resume(server, s3, tmp_path):
    """--no-resume: the create as before, an interrupted upload left to prune's sweep, no state."""
    bucket = "rs-off"
    env, src, url, args, u = interrupted_dir(server, s3, tmp_path, bucket, ["--no-resume"])
    assert state_keys(s3, bucket) == [] and [x["UploadId"] for x in uploads(s3, bucket)] == [u["UploadId"]]
    p = run(*args, env=env)
    assert "resum" not in p.stderr.decode(), p.stderr.decode()
    assert state_keys(s3, bucket) == []
    assert [x["UploadId"] for x in uploads(s3, bucket)] == [u["UploadId"]]  # prune's, after --grace


def interrupt_restore(args, env, dest, at_least):
    """Kills a restore once its state file beside dest records a checkpoint at or past at_least
    bytes of the tar stream; returns that state."""
    def ready():
        for name in glob.glob(f"{dest}.coffer-restore-*.state"):
            try:
                with open(name) as f:
                    state = json.load(f)
            except (OSError, ValueError):
                continue
            if state["offset"] >= at_least:
                return state
        return None
    return kill_when(args, env, ready, f"a checkpoint at {at_least}")


def same_dirs(a, b):
    """Directories alike: modes and modification times (set last by an extraction)."""
    for d, dirs, _ in os.walk(a):
        for name in dirs:  # the root is not stored: the destination stands for it
            sa, sb = os.stat(os.path.join(d, name)), os.stat(os.path.join(b, os.path.relpath(d, a), name))
            # Seconds: a ustar header without a pax extension holds no fraction.
            assert (sa.st_mode, int(sa.st_mtime)) == (sb.st_mode, int(sb.st_mtime)), os.path.join(d, name)


def test_killed_restore_resumes_from_its_checkpoint(server, s3, tmp_path):
    bucket = "rs-restore"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    src = tree(str(tmp_path / "src"), n=8, size=12 * MiB)
    for i in range(3):  # directories on both sides of the checkpoint, with their own modes and times
        os.makedirs(f"{src}/d{i}/e")
        os.chmod(f"{src}/d{i}/e", 0o750)
        os.utime(f"{src}/d{i}", (1_600_000_000, 1_600_000_000 + i))
    os.utime(f"{src}/sub", (1_500_000_000, 1_500_000_000))
    url = f"s3://{bucket}/ns"
    sid = run("create", src, url, "--compress", "none", env=env).stdout.decode().strip()
    size = json.loads(run("show", f"{url}@{sid}", env=env).stdout)["archive"]["size"]
    dest = str(tmp_path / "out")
    state = interrupt_restore(["restore", f"{url}@{sid}", dest], env, dest, 48 * MiB)
    assert state["id"] == sid and not os.path.exists(dest)
    sent_before = settled(server, "coffer_s3_sent_bytes_total", "GetObject")
    p = run("restore", f"{url}@{sid}", dest, env=env)
    err = p.stderr.decode()
    check_clean(err)
    assert f"resuming the restore of ns@{sid}" in err, err
    sent = metric(server, "coffer_s3_sent_bytes_total", "GetObject") - sent_before
    # From the chunk holding the checkpoint on: what came before was not downloaded again.
    assert 0 < sent <= size - state["offset"] + 2 * MiB, (sent, size, state["offset"])
    assert same_files(src, dest)
    same_dirs(src, dest)
    assert glob.glob(f"{dest}.coffer-restore-*") == []

    # An interrupted restore of this snapshot, then another snapshot into the same place.
    other_src = tree(str(tmp_path / "other"), n=1, size=1 * MiB)
    other = run("create", other_src, url, env=env).stdout.decode().strip()
    dest2 = str(tmp_path / "out2")
    interrupt_restore(["restore", f"{url}@{sid}", dest2], env, dest2, 32 * MiB)
    p = run("restore", f"{url}@{other}", dest2, env=env)
    err = p.stderr.decode()
    assert f"an interrupted restore of {sid} into '{dest2}' is removed" in err, err
    assert "resuming" not in err
    assert same_files(other_src, dest2) and sorted(os.listdir(dest2)) == sorted(os.listdir(other_src))
    assert glob.glob(f"{dest2}.coffer-restore-*") == []


def big_file(path, size):
    """Incompressible, so that the archive takes size / 16 MiB parts."""
    with open(path, "wb") as f:
        for _ in range(size // (8 * MiB)):
            f.write(os.urandom(8 * MiB))
        f.write(os.urandom(size % (8 * MiB)))
    return str(path)


def same_bytes(path, data):
    """The restored stream is the file's bytes, compared without holding the file twice."""
    with open(path, "rb") as f:
        assert f.read() == data, "the restored stream differs from the file"
    return True


def interrupted_file(server, s3, tmp_path, bucket, size=128 * MiB):
    """A bucket, a file (through a symlink) and a create of it killed mid-upload:
    (env, path, url, args, upload)."""
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    path = big_file(tmp_path / "app.pgdump", size)
    os.symlink(path, tmp_path / "latest.pgdump")
    url = f"s3://{bucket}/ns"
    args = ["create", str(tmp_path / "latest.pgdump"), url, "--compress", "none", "--jobs", "2"]
    return env, path, url, args, interrupt(args, env, s3, bucket)


def test_killed_file_create_resumes_and_sends_only_missing_parts(server, s3, tmp_path):
    """A regular file is a stream snapshot that can be read again: the same command continues the
    upload, named by the file's real path (the symlink followed) and checked by its fingerprint."""
    bucket = "rs-file"
    env, path, url, args, u = interrupted_file(server, s3, tmp_path, bucket)
    held, _ = parts_held(s3, bucket)
    assert held >= 3
    states = state_keys(s3, bucket)
    assert len(states) == 1, states
    state = json.loads(s3.get_object(Bucket=bucket, Key=states[0])["Body"].read())
    assert state["upload_id"] == u["UploadId"] and not state["stream"]
    # No --expected-size: the file's size planned the upload (16 MiB parts for 128 MiB).
    assert state["part_size"] == 16 * MiB

    settled(server, "coffer_s3_requests_total", "UploadPart")
    parts_before = metric(server, "coffer_s3_requests_total", "UploadPart")
    p = run(*args, env=env)
    err = p.stderr.decode()
    check_clean(err)
    sid = p.stdout.decode().strip()
    assert f"resuming ns@{state['id']}" in err and sid == state["id"], err
    sent_parts = metric(server, "coffer_s3_requests_total", "UploadPart") - parts_before
    shown = json.loads(run("show", f"{url}@{sid}", env=env).stdout)
    assert shown["source"]["kind"] == "stream"
    total_parts = (shown["archive"]["size"] + 16 * MiB - 1) // (16 * MiB)
    assert sent_parts == total_parts - held, (sent_parts, total_parts, held)
    assert f"{held} part(s)" in err and f"kept, {sent_parts} sent" in err, err
    assert uploads(s3, bucket) == [] and state_keys(s3, bucket) == []
    assert same_bytes(path, run("restore", f"{url}@{sid}", "-", env=env).stdout)
    # What a stream snapshot says when asked for a directory, as for one made from standard input.
    p = run("restore", f"{url}@{sid}", str(tmp_path / "out"), env=env, check=False)
    assert p.returncode == 2 and b"holds a stream" in p.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("change", ["touch", "append"])
def test_changed_file_starts_a_new_snapshot(server, s3, tmp_path, change):
    """The same bytes with another mtime count as changed too: the fingerprint is the metadata."""
    bucket = f"rs-file-{change}"
    env, path, url, args, old = interrupted_file(server, s3, tmp_path, bucket)
    old_id = json.loads(s3.get_object(Bucket=bucket, Key=state_keys(s3, bucket)[0])["Body"].read())["id"]
    if change == "touch":
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    else:
        with open(path, "ab") as f:
            f.write(b"!")
    p = run(*args, env=env)
    err = p.stderr.decode()
    check_clean(err)
    sid = p.stdout.decode().strip()
    assert "the source changed since the interrupted run" in err and old_id in err, err
    assert f"file '{os.path.realpath(path)}' has another size, modification or change time" in err, err
    assert "resuming" not in err and sid != old_id, err
    assert all(u["UploadId"] != old["UploadId"] for u in uploads(s3, bucket))
    assert uploads(s3, bucket) == [] and state_keys(s3, bucket) == []
    with open(path, "rb") as f:
        assert run("restore", f"{url}@{sid}", "-", env=env).stdout == f.read()


def start_writer(fifo, size):
    """A dump writing size random bytes into fifo (it blocks until a reader opens it)."""
    return subprocess.Popen(["sh", "-c", f"exec head -c {size} /dev/urandom > '{fifo}'"],
                            stderr=subprocess.DEVNULL)


def test_fifo_is_a_stream_that_is_not_resumed(server, s3, tmp_path):
    """mkfifo p; pg_dump > p & coffer snapshot create p: read as a stream (like -), so an
    interrupted run is not continued: the next run says so and makes a new snapshot."""
    bucket = "rs-fifo"
    s3.create_bucket(Bucket=bucket)
    env = env_for(server)
    url = f"s3://{bucket}/ns"
    fifo = str(tmp_path / "dump.fifo")
    os.mkfifo(fifo)
    data = os.urandom(3 * MiB + 11)
    (tmp_path / "small").write_bytes(data)
    writer = subprocess.Popen(["sh", "-c", f"exec cat '{tmp_path}/small' > '{fifo}'"])
    p = run("create", fifo, url, env=env)
    writer.wait(timeout=30)
    assert p.stderr == b"" and state_keys(s3, bucket) == []
    sid = p.stdout.decode().strip()
    assert run("restore", f"{url}@{sid}", "-", env=env).stdout == data

    args = ["create", fifo, url, "--compress", "none"]
    writer = start_writer(fifo, 128 * MiB)
    try:
        old = interrupt(args, env, s3, bucket)
    finally:
        writer.kill()
        writer.wait()
    left = state_keys(s3, bucket)
    assert len(left) == 1
    state = json.loads(s3.get_object(Bucket=bucket, Key=left[0])["Body"].read())
    assert state["stream"]
    writer = start_writer(fifo, 2 * MiB)
    try:
        p = run(*args, env=env)
    finally:
        writer.wait(timeout=30)
    err = p.stderr.decode()
    check_clean(err)
    assert f"an earlier run of this stream snapshot (ns@{state['id']}" in err and "cannot be replayed" in err, err
    assert "resuming" not in err and p.stdout.decode().strip() != state["id"]
    # Nothing aborted: prune's after its grace period, as for any stream.
    assert [u["UploadId"] for u in uploads(s3, bucket)] == [old["UploadId"]]
