"""Power-loss crash tests: the server is killed at one file-system call of an operation and its
data directory rebuilt as a power cut would leave it (only what was fsynced survives:
tests/crash/powerfail.c, docs/internals/store.md "Power-loss testing"); a fresh server must then
open it cleanly, hold every acknowledged write with the right bytes, and show nothing half-done.

Each scenario prepares a baseline with a normal server, runs the operation once to count the
calls it makes (K), then crashes at a selection of the points 1..K (every kind of call at least
once, the rest evenly spaced, POWERLOSS_POINTS at most), and once after the answer. Each runs
under two models of directory entries: strict (a name is durable only once its directory is
synced) and eager-names (every name change durable at once, bytes only when synced).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading

import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import COFFER_BIN, CofferServer, REGION, ACCESS_KEY, SECRET_KEY
from helpers_powerloss import (PowerfailServer, layer_env, powerfail_library, read_log, recover, run_under_layer,
                               write_crash_point)

ASAN = "asan" in COFFER_BIN
POINTS = int(os.environ.get("POWERLOSS_POINTS", "24" if ASAN else "80"))
BUCKET = "powerloss"
KEY = "obj"
MiB = 1 << 20


def client(endpoint):
    import boto3
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1, "mode": "standard"},
                      connect_timeout=5, read_timeout=15))


def body(tag, size):
    """size bytes that differ for every tag (no two versions share a prefix)."""
    seed = hashlib.sha256(tag.encode()).digest()
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def etag_of(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def read_object(s3, bucket, key):
    """(bytes, ETag) or None when the key is absent; any other answer fails the test."""
    try:
        r = s3.get_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response
        return None
    return r["Body"].read(), r["ETag"]


def assert_one_of(s3, bucket, key, versions, acked=None):
    """The key holds exactly one of versions (name -> (bytes, ETag); None: absent), whole, and the
    acknowledged one when acked is given. Returns the name found."""
    got = read_object(s3, bucket, key)
    for name, want in versions.items():
        if (want is None and got is None) or (want is not None and got is not None and got == want):
            if acked is not None:
                assert name == acked, f"{key}: acknowledged '{acked}' but found '{name}'"
            return name
    seen = None if got is None else (len(got[0]), got[1])
    pytest.fail(f"{key}: half-visible or wrong: {seen}, expected one of {list(versions)}")


def assert_usable(s3, bucket):
    """A bucket that exists takes a write and gives it back (the store is not read-only)."""
    data = body("after-recovery", 3000)
    s3.put_object(Bucket=bucket, Key="after-recovery", Body=data)
    assert s3.get_object(Bucket=bucket, Key="after-recovery")["Body"].read() == data
    s3.list_objects_v2(Bucket=bucket)


# ---- scenarios: prepare(s3) builds the baseline, op(s3, acks) runs against the crashing
# server and records each answer in acks, check(s3, acks) runs on the recovered directory.

OLD_SMALL, NEW_SMALL = body("old-small", 1000), body("new-small", 9000)
OLD_LARGE, NEW_LARGE = body("old-large", 2 * MiB + 17), body("new-large", 3 * MiB + 5)
PART1, PART2 = body("part1", 5 * MiB), body("part2", MiB + 3)


def prepare_bucket(s3):
    s3.create_bucket(Bucket=BUCKET)


def prepare_with(data):
    def prepare(s3):
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
    return prepare


def op_put(data):
    def op(s3, acks):
        r = s3.put_object(Bucket=BUCKET, Key=KEY, Body=data)
        acks["put"] = r["ETag"]
    return op


def check_put(old, new):
    def check(s3, acks):
        if "put" in acks:
            assert acks["put"] == etag_of(new)
        assert_one_of(s3, BUCKET, KEY, {"old": (old, etag_of(old)), "new": (new, etag_of(new))},
                      "new" if "put" in acks else None)
        assert_usable(s3, BUCKET)
    return check


def op_delete(s3, acks):
    s3.delete_object(Bucket=BUCKET, Key=KEY)
    acks["delete"] = True


def check_delete(s3, acks):
    assert_one_of(s3, BUCKET, KEY, {"old": (OLD_LARGE, etag_of(OLD_LARGE)), "gone": None},
                  "gone" if "delete" in acks else None)
    assert_usable(s3, BUCKET)


def op_multipart(s3, acks):
    up = s3.create_multipart_upload(Bucket=BUCKET, Key=KEY)["UploadId"]
    acks["upload"] = up
    acks["parts"] = []
    for n, data in ((1, PART1), (2, PART2)):
        r = s3.upload_part(Bucket=BUCKET, Key=KEY, UploadId=up, PartNumber=n, Body=data)
        assert r["ETag"] == etag_of(data)
        acks["parts"].append({"PartNumber": n, "ETag": r["ETag"]})
    r = s3.complete_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=up,
                                     MultipartUpload={"Parts": acks["parts"]})
    acks["complete"] = r["ETag"]


def check_multipart(s3, acks):
    whole = (PART1 + PART2, multipart_etag([PART1, PART2]))
    found = assert_one_of(s3, BUCKET, KEY, {"absent": None, "whole": whole},
                          "whole" if "complete" in acks else None)
    if found == "absent" and "upload" in acks:
        # The completion did not last: the upload must, with every part it acknowledged.
        listed = s3.list_parts(Bucket=BUCKET, Key=KEY, UploadId=acks["upload"]).get("Parts", [])
        have = {p["PartNumber"]: p["ETag"] for p in listed}
        for p in acks["parts"]:
            assert have.get(p["PartNumber"]) == p["ETag"], f"acknowledged part {p} lost: {listed}"
        if len(acks["parts"]) == 2:
            s3.complete_multipart_upload(Bucket=BUCKET, Key=KEY, UploadId=acks["upload"],
                                         MultipartUpload={"Parts": acks["parts"]})
            assert_one_of(s3, BUCKET, KEY, {"whole": whole}, "whole")
    assert_usable(s3, BUCKET)


def op_create_bucket(s3, acks):
    s3.create_bucket(Bucket="fresh")
    acks["bucket"] = True


def check_create_bucket(s3, acks):
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    if "bucket" in acks:
        assert "fresh" in names, f"acknowledged bucket lost: {names}"
    if "fresh" in names:
        assert_usable(s3, "fresh")


CONCURRENT = {f"c{i}": body(f"concurrent-{i}", 4000 if i % 2 else 1 * MiB + i) for i in range(4)}


def op_concurrent_puts(s3, acks):
    """Four PUTs at once, so that the small ones share a group commit (txn.c)."""
    def put(key, data):
        try:
            r = s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            errors.append(e)
            return
        acks[key] = r["ETag"]

    errors = []
    threads = [threading.Thread(target=put, args=kv) for kv in CONCURRENT.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def check_concurrent_puts(s3, acks):
    for key, data in CONCURRENT.items():
        assert_one_of(s3, BUCKET, key, {"absent": None, "whole": (data, etag_of(data))},
                      "whole" if key in acks else None)
    assert_usable(s3, BUCKET)


SCENARIOS = {
    # A fresh data directory: the server's first start creates the index, then a bucket. LMDB
    # never synced index.lmdb/ itself, so data.mdb's name (and the bucket) did not survive.
    "create_bucket_first_start": (None, op_create_bucket, check_create_bucket),
    "create_bucket": (prepare_bucket, op_create_bucket, check_create_bucket),
    "put_small_overwrite": (prepare_with(OLD_SMALL), op_put(NEW_SMALL), check_put(OLD_SMALL, NEW_SMALL)),
    "put_large_overwrite": (prepare_with(OLD_LARGE), op_put(NEW_LARGE), check_put(OLD_LARGE, NEW_LARGE)),
    "delete_large": (prepare_with(OLD_LARGE), op_delete, check_delete),
    "multipart": (prepare_bucket, op_multipart, check_multipart),
    "concurrent_puts": (prepare_bucket, op_concurrent_puts, check_concurrent_puts),
}


def make_baseline(tmp_path, prepare):
    base = str(tmp_path / "baseline")
    if prepare is None:
        os.mkdir(base, 0o700)
        return base
    srv = CofferServer(base, str(tmp_path))
    srv.start()
    try:
        prepare(client(srv.endpoint))
    finally:
        code = srv.stop()
    assert code == 0
    return base


def crash_run(tmp_path, name, baseline, lib, op, offset, model, kind=None):
    """One run crashed at the offset-th call of op (None: after op's last answer). Returns the
    acknowledgements, the recovered directory, the calls the op made and the call crashed at."""
    work = str(tmp_path / name)
    os.mkdir(work)
    data = os.path.join(work, "data")
    shutil.copytree(baseline, data, symlinks=True)
    srv = PowerfailServer(work, os.path.realpath(data), lib, model).start()
    try:
        start = srv.calls()
        if offset is not None:
            srv.arm(offset, kind)
        acks = {}
        try:
            op(client(srv.endpoint), acks)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            assert srv.crashed(), f"the operation failed on a live server: {e}\n{srv.log()[-3000:]}"
        end = srv.calls()
    finally:
        code = srv.power_off()
    assert code == -9, f"server exited with {code}:\n{srv.log()[-3000:]}"
    calls, crashed = read_log(srv.log_path)
    recovered = os.path.join(work, "recovered")
    recover(srv.shadow, recovered)
    return acks, recovered, [c for c in calls if start < c[0] <= end], crashed


def check_recovered(tmp_path, name, recovered, check, acks):
    srv = CofferServer(recovered, str(tmp_path / name))
    srv.start()
    try:
        check(client(srv.endpoint), acks)
    finally:
        code = srv.stop()
    srv.assert_clean_log()
    assert code == 0, f"server on the recovered directory exited with {code}"


def select_points(calls, budget):
    """Offsets (1-based) to crash at: the first call of each kind, then evenly spaced ones."""
    chosen, kinds = [], set()
    for i, (_, kind, _) in enumerate(calls):
        if kind not in kinds:
            kinds.add(kind)
            chosen.append(i + 1)
    rest = [i + 1 for i in range(len(calls)) if i + 1 not in chosen]
    room = max(0, budget - len(chosen))
    if rest and room:
        step = len(rest) / min(room, len(rest))
        chosen += [rest[int(j * step)] for j in range(min(room, len(rest)))]
    return sorted(set(chosen))


def crash_everywhere(what, calls, run_at, model="strict"):
    """Runs run_at(offset) (which returns the call crashed at, and fails by assertion) at the
    selected points of calls; every kind of call must have been crashed at. The eager-names
    model differs from the strict one only around renames and creates: a third of the points."""
    kinds_hit, failures = set(), []

    def crash_at(off):
        try:
            crashed = run_at(off)
            if crashed:
                kinds_hit.add(crashed[1])
        except (AssertionError, botocore.exceptions.ClientError, RuntimeError, pytest.fail.Exception) as e:
            failures.append(f"crash at call {off} {calls[off - 1]}: {e}")

    offsets = select_points(calls, POINTS if model == "strict" else max(8, POINTS // 3))
    for off in offsets:
        crash_at(off)
    kinds = sorted({c[1] for c in calls})
    # Threads interleave differently from run to run: a kind the chosen call no longer was is
    # tried again at the other calls of that kind in the dry run.
    for kind in set(kinds) - kinds_hit:
        for off in [i + 1 for i, c in enumerate(calls) if c[1] == kind][:8]:
            if kind in kinds_hit:
                break
            crash_at(off)
            offsets.append(off)
    print(f"\npowerloss {what}: {len(calls)} calls ({', '.join(kinds)}), crashed at {len(offsets)} of them"
          f" and after the last; kinds crashed at: {', '.join(sorted(kinds_hit))}")
    assert not failures, "\n".join(failures)
    assert kinds_hit == set(kinds), f"kinds never crashed at: {set(kinds) - kinds_hit}"


MODELS = ["strict", "eager-names"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_power_loss_during(scenario, model, tmp_path):
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built (cmake target powerfail, beside the coffer binary)"
    prepare, op, check = SCENARIOS[scenario]
    baseline = make_baseline(tmp_path, prepare)

    # The dry run: no crash during the op, power lost after its last answer.
    acks, recovered, calls, _ = crash_run(tmp_path, "dry", baseline, lib, op, None, model)
    assert calls, "the operation made no call the layer saw: is it preloaded?"
    check_recovered(tmp_path, "dry", recovered, check, acks)

    def run_at(off):
        name = f"crash{off}"
        acks, recovered, _, crashed = crash_run(tmp_path, name, baseline, lib, op, off, model,
                                                calls[off - 1][1])
        try:
            check_recovered(tmp_path, name, recovered, check, acks)
        except Exception as e:
            raise AssertionError(f"crashed at {crashed}, acknowledged {sorted(acks)}: {e}") from e
        shutil.rmtree(str(tmp_path / name), ignore_errors=True)
        return crashed

    crash_everywhere(f"{scenario} ({model})", calls, run_at, model)


LAYER_SCRIPT = r"""
import os, sys
d = sys.argv[1]

def sync_dir():
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)

def write(name, data, sync):
    fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)

write("synced", b"kept", True)
write("bytes-unsynced", b"lost", False)
os.mkdir(os.path.join(d, "sub"))
sync_dir()                                   # the names so far are durable
write("baseline", b"overwritten in place", False)  # bytes never synced: the old ones stay
write("tmp", b"renamed", True)
os.rename(os.path.join(d, "tmp"), os.path.join(d, "sub", "renamed"))  # sub never synced
write("name-unsynced", b"synced bytes, no name", True)
fd = os.open(os.path.join(d, "dsync"), os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o600)
os.write(fd, b"dsync")                       # durable by itself, the name is not
os.close(fd)
os.kill(os.getpid(), 9)
"""


LAYER_EXPECTED = {
    "strict": {"synced": b"kept", "bytes-unsynced": b"", "baseline": b"baseline bytes"},
    # Every name change durable at once; bytes only where synced (or written O_DSYNC).
    "eager-names": {"synced": b"kept", "bytes-unsynced": b"", "baseline": b"baseline bytes",
                    "sub/renamed": b"renamed", "name-unsynced": b"synced bytes, no name", "dsync": b"dsync"},
}


@pytest.mark.parametrize("model", MODELS)
def test_layer_keeps_only_what_was_synced(model, tmp_path):
    """The layer itself: unsynced bytes and (in the strict model) unsynced names are lost, synced
    ones kept, and what was there at the start is the baseline."""
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    data = tmp_path / "data"
    data.mkdir()
    (data / "baseline").write_bytes(b"baseline bytes")
    env = layer_env(lib, str(data), str(tmp_path), model)
    proc = subprocess.run([sys.executable, "-c", LAYER_SCRIPT, str(data)], env=env)
    assert proc.returncode == -9
    assert not (data / "tmp").exists() and (data / "sub" / "renamed").exists()  # the real directory
    out = tmp_path / "recovered"
    recover(str(tmp_path / "shadow"), str(out))
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == LAYER_EXPECTED[model], got
    assert (out / "sub").is_dir()
    kinds = [c[1] for c in read_log(str(tmp_path / "calls.log"))[0]]
    assert kinds.count("fsync") == 4 and "rename" in kinds and "mkdir" in kinds, kinds


def test_layer_crashes_at_the_chosen_call(tmp_path):
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    data = tmp_path / "data"
    data.mkdir()
    ctl = tmp_path / "ctl"
    ctl.write_text("2 fsync")  # create, write, then the fsync: killed before it runs
    env = dict(os.environ, LD_PRELOAD=lib, POWERFAIL_ROOT=str(data), POWERFAIL_SHADOW=str(tmp_path / "shadow"),
               POWERFAIL_LOG=str(tmp_path / "log"), POWERFAIL_CTL=str(ctl))
    script = ("import os,sys\nfd=os.open(sys.argv[1]+'/f',os.O_WRONLY|os.O_CREAT,0o600)\n"
              "os.write(fd,b'x')\nos.fsync(fd)\nprint('survived')\n")
    proc = subprocess.run([sys.executable, "-c", script, str(data)], env=env, capture_output=True)
    assert proc.returncode == -9 and b"survived" not in proc.stdout
    calls, crashed = read_log(str(tmp_path / "log"))
    assert [c[1] for c in calls] == ["create", "write", "fsync"] and crashed[:2] == (3, "fsync")
    out = tmp_path / "recovered"
    recover(str(tmp_path / "shadow"), str(out))
    assert list(out.iterdir()) == []


def snapshot_source(root):
    os.makedirs(f"{root}/sub")
    with open(f"{root}/small.txt", "wb") as f:
        f.write(body("snap-small", 5000))
    with open(f"{root}/sub/big.bin", "wb") as f:
        f.write(body("snap-big", 3 * MiB))
    return root


def listed_snapshots(repo):
    out = subprocess.run([COFFER_BIN, "snapshot", "ls", repo, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, f"snapshot ls failed on the recovered repository: {out.stdout}{out.stderr}"
    return [json.loads(line)["id"] for line in out.stdout.splitlines() if line.strip()]  # one per line


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("command", ["create", "rm"])
def test_power_loss_during_snapshot(command, model, tmp_path):
    """A directory repository of coffer snapshot: a crash at any call of a create (or an rm)
    never leaves a listed snapshot without its archive (every listed one verifies), keeps the
    snapshots the command does not remove, and lists a create that exited 0."""
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    src = snapshot_source(str(tmp_path / "src"))
    baseline = str(tmp_path / "baseline")
    os.mkdir(baseline)
    for _ in range(1 if command == "create" else 2):
        made = subprocess.run([COFFER_BIN, "snapshot", "create", src, f"{baseline}/ns", "--compress", "none",
                               "--no-progress"], capture_output=True, text=True)
        assert made.returncode == 0, made.stdout + made.stderr
    before = listed_snapshots(f"{baseline}/ns")
    kept = before if command == "create" else before[1:]

    def run(name, crash_at):
        work = str(tmp_path / name)
        os.mkdir(work)
        repo = os.path.join(work, "repo")
        shutil.copytree(baseline, repo, symlinks=True)
        if command == "create":
            cmd = [COFFER_BIN, "snapshot", "create", src, f"{repo}/ns", "--compress", "none", "--no-progress"]
        else:
            cmd = [COFFER_BIN, "snapshot", "rm", f"{repo}/ns@{before[0]}"]
        code, out, calls, crashed = run_under_layer(cmd, lib, os.path.realpath(repo), work, crash_at,
                                                    model=model)
        assert code in (0, -9), f"{command} exited {code}: {out}"
        recovered = os.path.join(work, "recovered")
        recover(os.path.join(work, "shadow"), recovered)
        ids = listed_snapshots(f"{recovered}/ns")
        assert set(kept) <= set(ids), f"a snapshot the {command} keeps was lost: {ids}"
        if code == 0 and command == "create":
            assert len(ids) == 2, f"a create that exited 0 is not listed: {ids}"
        for sid in ids:
            v = subprocess.run([COFFER_BIN, "snapshot", "verify", f"{recovered}/ns@{sid}"], capture_output=True,
                               text=True)
            assert v.returncode == 0, f"listed snapshot {sid} does not verify: {v.stdout}{v.stderr}"
        return calls, crashed

    calls, _ = run("dry", None)
    assert calls, f"the {command} made no call the layer saw"

    def run_at(off):
        _, crashed = run(f"crash{off}", (off, calls[off - 1][1]))
        shutil.rmtree(str(tmp_path / f"crash{off}"), ignore_errors=True)
        return crashed

    crash_everywhere(f"snapshot_{command} ({model})", calls, run_at, model)


@pytest.mark.parametrize("model", MODELS)
def test_power_loss_during_start_up_recovery(model, tmp_path):
    """The server's own start on a directory a crash left (a body in tmp/, an uncommitted data
    file, replaced data still listed as garbage, no clean-shutdown marker): a power cut at any
    call of that recovery leaves a directory the next start opens with every object intact."""
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    base = str(tmp_path / "baseline")
    srv = CofferServer(base, str(tmp_path))
    srv.start()
    s3 = client(srv.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=OLD_LARGE)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=NEW_LARGE)
    s3.put_object(Bucket=BUCKET, Key="small", Body=NEW_SMALL)
    srv.kill()
    with open(os.path.join(base, "tmp", "0" * 32), "wb") as f:
        f.write(b"a body being received")
    orphan_dir = os.path.join(base, "objects", "ee", "ee")
    os.makedirs(orphan_dir, exist_ok=True)
    with open(os.path.join(orphan_dir, "e" * 32), "wb") as f:
        f.write(b"renamed, never committed")

    def check(s3c, acks):
        assert_one_of(s3c, BUCKET, KEY, {"new": (NEW_LARGE, etag_of(NEW_LARGE))}, "new")
        assert_one_of(s3c, BUCKET, "small", {"new": (NEW_SMALL, etag_of(NEW_SMALL))}, "new")
        assert_usable(s3c, BUCKET)

    def run(name, crash_at):
        work = str(tmp_path / name)
        os.mkdir(work)
        data = os.path.join(work, "data")
        shutil.copytree(base, data, symlinks=True)
        pf = PowerfailServer(work, os.path.realpath(data), lib, model)
        if crash_at is not None:
            write_crash_point(pf.ctl, *crash_at)
        try:
            pf.start()
        except RuntimeError:
            assert pf.crashed(), pf.log()[-3000:]
        pf.power_off()
        calls, crashed = read_log(pf.log_path)
        recovered = os.path.join(work, "recovered")
        recover(pf.shadow, recovered)
        check_recovered(tmp_path, name, recovered, check, {})
        return calls, crashed

    calls, _ = run("dry", None)
    def run_at(off):
        _, crashed = run(f"crash{off}", (off, calls[off - 1][1]))
        shutil.rmtree(str(tmp_path / f"crash{off}"), ignore_errors=True)
        return crashed

    crash_everywhere(f"start_up_recovery ({model})", calls, run_at, model)


@pytest.mark.parametrize("command", ["rm", "prune"])
def test_snapshot_removal_that_exited_0_survives_power_loss(command, tmp_path):
    """A directory repository's delete syncs the directory after the unlink: an rm (or a prune)
    that exited 0 stays done after a power cut (before, the snapshot came back whole)."""
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    src = snapshot_source(str(tmp_path / "src"))
    repo = str(tmp_path / "repo")
    os.mkdir(repo)
    for _ in range(2 if command == "prune" else 1):
        made = subprocess.run([COFFER_BIN, "snapshot", "create", src, f"{repo}/ns", "--compress", "none",
                               "--no-progress"], capture_output=True, text=True)
        assert made.returncode == 0, made.stdout + made.stderr
    before = listed_snapshots(f"{repo}/ns")
    if command == "rm":
        cmd, kept = [COFFER_BIN, "snapshot", "rm", f"{repo}/ns@{before[0]}"], []
    else:
        cmd, kept = [COFFER_BIN, "snapshot", "prune", f"{repo}/ns", "--keep-last", "1"], [before[-1]]
    code, out, calls, _ = run_under_layer(cmd, lib, os.path.realpath(repo), str(tmp_path))
    assert code == 0, out
    assert any(kind.startswith("unlink") for _, kind, _ in calls), calls
    recover(str(tmp_path / "shadow"), str(tmp_path / "recovered"))
    assert listed_snapshots(f"{tmp_path}/recovered/ns") == kept


def test_mirror_delete_that_exited_0_survives_power_loss(tmp_path):
    """coffer mirror --delete into a directory: the files it removed (and the directories it
    emptied) stay removed after a power cut once it exited 0, also in a run that copied nothing
    (the run's one syncfs covers deletes too, no fsync per file)."""
    lib = powerfail_library()
    assert lib, "libpowerfail.so is not built"
    src, dst = tmp_path / "src", tmp_path / "dst"
    os.makedirs(src / "keep")
    os.makedirs(dst / "keep")
    os.makedirs(dst / "gone" / "deep")
    (src / "keep" / "a").write_bytes(b"kept")
    shutil.copy2(src / "keep" / "a", dst / "keep" / "a")
    for i in range(20):
        (dst / f"extra{i}").write_bytes(b"extra")
    (dst / "gone" / "deep" / "b").write_bytes(b"extra")
    code, out, calls, _ = run_under_layer([COFFER_BIN, "mirror", "--no-progress", "--delete", str(src), str(dst)],
                                          lib, os.path.realpath(dst), str(tmp_path))
    assert code == 0, out
    assert sorted(os.listdir(dst)) == ["keep"], out  # nothing to copy: a delete-only run
    kinds = [kind for _, kind, _ in calls]
    assert kinds.count("fsync") == 0, f"one fsync a removed file: {kinds}"
    recover(str(tmp_path / "shadow"), str(tmp_path / "recovered"))
    assert sorted(os.listdir(tmp_path / "recovered")) == ["keep"]
    assert (tmp_path / "recovered" / "keep" / "a").read_bytes() == b"kept"
