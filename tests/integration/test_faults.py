"""coffer snapshot over a bad network: the fault proxy (faultproxy.py) between the command and the store.

Every snapshot command (create from a directory and from -, restore to a directory and to -,
verify, ls, prune) meets each fault once on the request that matters to it: a fault that goes
away is ridden out by retries (and the proxy's counters show the retry happened); one that
stays fails the command with a clear message and exit code 1. Whatever happens, no damaged
snapshot is ever listed (after a failed create, ls through a good network shows nothing new and
every listed snapshot verifies), and no wrong byte reaches a destination (a failed restore
leaves no directory behind; a failed restore to - exits non-zero, having written at most a
prefix of the right bytes). Timing assertions are lower bounds only.
"""
import email.utils
import hashlib
import json
import os
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY
from faultproxy import Bandwidth, Error, FaultProxy, Latency, Reset, Stall, Truncate

# The archive's key (GET, PUT, or a part of its multipart upload: a resumable create always
# uploads in parts), not the manifest's.
ARCHIVE = r"/ns/[^/?]+\.tar[^/?]*(\?partNumber=\d+&uploadId=[^&/]+)?$"
MANIFEST = r"/ns/[^/?]+\.json$"
LIST = r"list-type=2"
# Short limits, so that a fault that stays ends the command quickly.
NET = ["--retries", "3", "--stall-timeout", "1s"]
GIVE_UP = ["--retries", "1", "--stall-timeout", "1s"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(os.urandom(150_000))
    (src / "sub" / "b.txt").write_text("hello\n" * 5000)
    stream = os.urandom(300_000)
    return src, stream


@pytest.fixture(scope="module")
def env_direct(server, s3):
    s3.create_bucket(Bucket="faults")
    return dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY,
                COFFER_SECRET_KEY=SECRET_KEY)


@pytest.fixture()
def net(server, env_direct):
    proxy = FaultProxy(server.port)
    yield proxy, dict(env_direct, COFFER_ENDPOINT=proxy.endpoint)
    proxy.close()


@pytest.fixture()
def repo(tmp_path):
    return f"s3://faults/{tmp_path.name}/ns"


def snap(env, *args, stdin=None, timeout=90):
    t0 = time.monotonic()
    p = subprocess.run([COFFER_BIN, "snapshot", *args], env=env, input=stdin, capture_output=True,
                       timeout=timeout)
    p.elapsed = time.monotonic() - t0
    p.err = p.stderr.decode(errors="replace")
    return p


def ok(p):
    assert p.returncode == 0, p.err
    return p.stdout.decode().strip()


def listed(env, repo, *net):
    return [json.loads(line)["id"] for line in ok(snap(env, "ls", repo, "--json", *net)).splitlines()]


def assert_repo_sound(env_direct, repo, before):
    """Through a good network: no snapshot other than those before, and each of them verifies."""
    assert sorted(listed(env_direct, repo)) == sorted(before)
    if before:
        ok(snap(env_direct, "verify", repo, "--all"))


def same_tree(a, b):
    files = lambda r: sorted(os.path.relpath(os.path.join(d, f), r) for d, _, fs in os.walk(r) for f in fs)
    assert files(a) == files(b)
    for f in files(a):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def seeded(env_direct, repo, data):
    """A repository holding one snapshot of the directory and one of the stream, made directly."""
    src, stream = data
    ids = [ok(snap(env_direct, "create", str(src), repo)), ok(snap(env_direct, "create", "-", repo, stdin=stream))]
    return ids


# ---- faults that go away: the command succeeds, and the proxy saw the retry ----

# fault(direction, after): `after` body bytes go through first (0: the fault strikes before the
# request is forwarded, so it hits requests without a body too).
PASSING = {
    "503": (lambda d, n: Error(503, "SlowDown"), 2),
    "500": (lambda d, n: Error(500, "InternalError"), 2),
    "reset": (lambda d, n: Reset(after=n, direction=d), 1),
    "stall": (lambda d, n: Stall(4, after=n, direction=d), 1),
}


@pytest.mark.parametrize("fault", sorted(PASSING))
def test_create_rides_out(net, env_direct, repo, data, fault, tmp_path):
    proxy, env = net
    src, stream = data
    make, times = PASSING[fault]
    rules = [proxy.add(make("request", 20_000), method="PUT", path=ARCHIVE, times=times),
             proxy.add(make("request", 20_000), method="PUT", path=ARCHIVE, first=times + 2, times=times)]
    sid_dir = ok(snap(env, "create", str(src), repo, *NET))
    sid_stream = ok(snap(env, "create", "-", repo, *NET, stdin=stream))
    assert [r.hits for r in rules] == [times, times]
    assert proxy.count("PUT", ARCHIVE) == 2 * (times + 1)  # each archive sent again after its fault
    assert sorted(listed(env_direct, repo)) == sorted([sid_dir, sid_stream])
    ok(snap(env_direct, "restore", f"{repo}@{sid_dir}", str(tmp_path / "out")))
    same_tree(src, tmp_path / "out")
    assert snap(env_direct, "restore", f"{repo}@{sid_stream}", "-").stdout == stream


@pytest.mark.parametrize("fault", sorted(PASSING) + ["truncate"])
def test_restore_and_verify_ride_out(net, env_direct, repo, data, fault, tmp_path):
    proxy, env = net
    src, stream = data
    sid_dir, sid_stream = seeded(env_direct, repo, data)
    make, times = PASSING.get(fault, (lambda d, n: Truncate(after=n), 1))
    for n, args in enumerate([["restore", f"{repo}@{sid_dir}", str(tmp_path / "out")],
                              ["restore", f"{repo}@{sid_stream}", "-"],
                              ["verify", repo, "--all"]]):
        proxy.clear()
        rule = proxy.add(make("response", 20_000), method="GET", path=ARCHIVE, times=times)
        before = proxy.count("GET", ARCHIVE)
        p = snap(env, *args, *NET)
        out = ok(p) if args[-1] != "-" else p.stdout
        assert rule.hits == times
        assert proxy.count("GET", ARCHIVE) - before > times, (args, proxy.requests)
        if args[-1] == "-":
            assert p.returncode == 0 and out == stream
    same_tree(src, tmp_path / "out")


@pytest.mark.parametrize("fault", sorted(PASSING))
def test_ls_and_prune_ride_out(net, env_direct, repo, data, fault):
    proxy, env = net
    ids = seeded(env_direct, repo, data)
    make, times = PASSING[fault]
    rule = proxy.add(make("response", 100), method="GET", path=LIST, times=times)
    assert sorted(listed(env, repo, *NET)) == sorted(ids)
    assert rule.hits == times and proxy.count("GET", LIST) > times
    rule = proxy.add(make("response", 100), method="GET", path=MANIFEST, times=times)
    assert sorted(listed(env, repo, *NET)) == sorted(ids)
    assert rule.hits == times
    proxy.clear()
    rule = proxy.add(make("request", 0), method="DELETE,POST", times=times)
    ok(snap(env, "prune", repo, "--keep-last", "1", "--grace", "1s", *NET))
    assert rule.hits == times and proxy.count("DELETE") + proxy.count("POST") > times
    assert len(listed(env_direct, repo)) == 1
    ok(snap(env_direct, "verify", repo, "--all"))


def test_multipart_create_rides_out_faults_on_parts(net, env_direct, s3, repo, tmp_path):
    """An archive above one part (16 MiB) goes up as a multipart upload, parts in parallel: a
    reset in the middle of part 1, 503s on part 2, a stall on part 3 and a 500 on the completion
    are each retried; the restore gives back the very bytes. Then parts that always fail: the
    command fails, nothing is listed, and prune --grace 1s removes the upload left behind."""
    proxy, env = net
    big = os.urandom(40 << 20)
    rules = [proxy.add(Reset(after=1 << 20, direction="request"), method="PUT", path=r"partNumber=1&", times=1),
             proxy.add(Error(503, "SlowDown"), method="PUT", path=r"partNumber=2&", times=2),
             proxy.add(Stall(4, after=1 << 20, direction="request"), method="PUT", path=r"partNumber=3&", times=1),
             proxy.add(Error(500, "InternalError"), method="POST", path=r"uploadId=", times=1)]
    sid = ok(snap(env, "create", "-", repo, "--compress", "none", "--expected-size", "40M", *NET, stdin=big))
    assert [r.hits for r in rules] == [1, 2, 1, 1]
    assert proxy.count("PUT", r"partNumber=1&") == 2 and proxy.count("PUT", r"partNumber=2&") == 3
    assert proxy.count("PUT", r"partNumber=3&") == 2
    assert snap(env_direct, "restore", f"{repo}@{sid}", "-").stdout == big
    proxy.clear()
    rule = proxy.add(Reset(after=1 << 20, direction="request"), method="PUT", path=r"partNumber=2&", times=None)
    p = snap(env, "create", "-", repo, "--compress", "none", *GIVE_UP, stdin=big)
    assert p.returncode == 1 and "after 2 attempts" in p.err, p.err
    # libcurl sends a request again by itself, once, when a reused connection dies under it.
    assert 2 <= rule.hits <= 4
    assert_repo_sound(env_direct, repo, [sid])
    prefix = repo.split("/", 3)[3] + "/"
    uploads = lambda: s3.list_multipart_uploads(Bucket="faults", Prefix=prefix).get("Uploads", [])
    assert uploads() == []  # the failed create aborted its upload
    # Now the abort fails too: the upload stays behind, and prune is what removes it.
    aborts = proxy.add(Error(503, "SlowDown"), method="DELETE", path=r"uploadId=", times=None)
    p = snap(env, "create", "-", repo, "--compress", "none", *GIVE_UP, stdin=big)
    assert p.returncode == 1 and aborts.hits >= 1, p.err
    assert len(uploads()) == 1
    time.sleep(2.1)  # --grace 1s, in whole seconds of the upload's start
    out = ok(snap(env_direct, "prune", repo, "--keep-last", "5", "--grace", "1s"))
    assert listed(env_direct, repo) == [sid] and uploads() == [], (out, uploads())


def test_slow_network_is_only_slow(net, env_direct, repo, data, tmp_path):
    """Latency on every request and a bandwidth cap: everything works, nothing is retried."""
    proxy, env = net
    src, stream = data
    capped = proxy.add(Bandwidth(300_000), method="PUT,GET", path=ARCHIVE, times=None)
    slow = proxy.add(Latency(0.2), times=None)  # every other request
    t0 = time.monotonic()
    sid = ok(snap(env, "create", "-", repo, stdin=stream))
    ok(snap(env, "verify", repo))
    assert snap(env, "restore", f"{repo}@{sid}", "-").stdout == stream
    assert time.monotonic() - t0 >= 3 * 300_000 / 300_000 * 0.9  # 3 archive transfers at the cap
    assert capped.hits == 3 and slow.hits >= 3, proxy.requests
    assert proxy.count("PUT", ARCHIVE) == 1 and proxy.count("GET", ARCHIVE) == 2  # no retry


# ---- faults that stay: a clear failure, nothing damaged listed, no wrong byte written ----

STAYING = {
    "503": lambda d, n: Error(503, "SlowDown"),
    "500": lambda d, n: Error(500, "InternalError"),
    "reset": lambda d, n: Reset(after=n, direction=d),
    "truncate": lambda d, n: Truncate(after=n),
    # Then reset, so that nothing sent before the stall reaches the store after the command
    # gave up (test_manifest_delivered_late_is_whole has that case).
    "stall": lambda d, n: Stall(3, after=n, direction=d, then="reset"),
}
WHY = {"503": "SlowDown", "500": "InternalError", "reset": "s3 ", "truncate": "s3 ", "stall": "stalled"}


@pytest.mark.parametrize("fault", sorted(set(STAYING) - {"truncate"}))  # a PUT's answer has no body
def test_create_fails_cleanly(net, env_direct, repo, data, fault):
    proxy, env = net
    src, stream = data
    before = seeded(env_direct, repo, data)
    for target in (ARCHIVE, MANIFEST):
        proxy.clear()
        rule = proxy.add(STAYING[fault]("request", 100), method="PUT", path=target, times=None)
        for args, stdin in (([str(src)], None), (["-"], stream)):
            p = snap(env, "create", *args, repo, *GIVE_UP, stdin=stdin)
            assert p.returncode == 1, (target, p.err)
            assert WHY[fault] in p.err and "after 2 attempts" in p.err, p.err
            assert rule.hits >= 2
            assert_repo_sound(env_direct, repo, before)


@pytest.mark.parametrize("fault", sorted(STAYING))
def test_restore_fails_cleanly(net, env_direct, repo, data, fault, tmp_path):
    proxy, env = net
    src, stream = data
    sid_dir, sid_stream = seeded(env_direct, repo, data)
    proxy.add(STAYING[fault]("response", 20_000), method="GET", path=ARCHIVE, times=None)
    dest = tmp_path / "dest"
    p = snap(env, "restore", f"{repo}@{sid_dir}", str(dest), *GIVE_UP)
    assert p.returncode == 1 and WHY[fault] in p.err, p.err
    assert not dest.exists()
    assert not [n for n in os.listdir(tmp_path) if "coffer-restore" in n]
    dest.mkdir()
    (dest / "mine").write_text("keep")
    p = snap(env, "restore", f"{repo}@{sid_dir}", str(dest), "--force", *GIVE_UP)
    assert p.returncode == 1 and sorted(os.listdir(dest)) == ["mine"]
    p = snap(env, "restore", f"{repo}@{sid_stream}", "-", *GIVE_UP)
    assert p.returncode == 1 and WHY[fault] in p.err, p.err
    assert stream.startswith(p.stdout)  # at most the right bytes, in order
    p = snap(env, "verify", repo, "--all", *GIVE_UP)
    assert p.returncode == 1 and WHY[fault] in p.err, p.err
    proxy.clear()
    ok(snap(env, "verify", repo, "--all"))


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_ls_and_prune_fail_cleanly(net, env_direct, repo, data, fault):
    proxy, env = net
    ids = seeded(env_direct, repo, data)
    proxy.add(STAYING[fault]("response", 100), method="GET", path=LIST, times=None)
    p = snap(env, "ls", repo, *GIVE_UP)
    assert p.returncode == 1 and WHY[fault] in p.err and p.stdout == b"", p.err
    proxy.clear()
    proxy.add(STAYING[fault]("request", 0), method="DELETE,POST", times=None)
    p = snap(env, "prune", repo, "--keep-last", "1", "--grace", "1s", *GIVE_UP)
    assert p.returncode == 1 and WHY[fault] in p.err, p.err
    left = listed(env_direct, repo)
    assert set(left) <= set(ids) and ids[-1] in left  # the one kept is still there
    ok(snap(env_direct, "verify", repo, "--all"))


def test_manifest_delivered_late_is_whole(net, env_direct, repo, data, tmp_path):
    """The network holds the manifest's PUT until after the command gave up, then delivers it: the
    command failed, yet the snapshot appears. It is whole (the manifest goes only after the
    archive is stored), so it verifies and restores to the right bytes."""
    proxy, env = net
    src, stream = data
    rule = proxy.add(Stall(3, after=100, direction="request"), method="PUT", path=MANIFEST, times=None)
    p = snap(env, "create", "-", repo, "--retries", "1", "--stall-timeout", "1s", stdin=stream)
    assert p.returncode == 1 and "stalled" in p.err, p.err
    assert rule.hits == 2
    for _ in range(100):  # the stalled bodies arrive once the stalls end
        late = listed(env_direct, repo)
        if late:
            break
        time.sleep(0.1)
    assert len(late) == 1
    ok(snap(env_direct, "verify", repo, "--all"))
    assert snap(env_direct, "restore", f"{repo}@{late[0]}", "-").stdout == stream


# ---- the client's limits ----

def test_retry_after_is_honoured(net, env_direct, repo, data):
    proxy, env = net
    src, stream = data
    rule = proxy.add(Error(503, "SlowDown", retry_after=2), method="PUT", path=ARCHIVE, times=1)
    p = snap(env, "create", "-", repo, *NET, stdin=stream)
    sid = ok(p)
    assert rule.hits == 1 and p.elapsed >= 2.0
    date = email.utils.formatdate(time.time() + 3, usegmt=True)
    rule = proxy.add(Error(503, "SlowDown", retry_after=date), method="GET", path=ARCHIVE, times=1)
    p = snap(env, "restore", f"{repo}@{sid}", "-", *NET)
    assert p.stdout == stream and rule.hits == 1 and p.elapsed >= 1.5


def test_retry_budget_bounds_a_store_that_always_fails(net, env_direct, repo, data):
    """--retries 99 would take minutes; the budget ends the command, naming the last answer."""
    proxy, env = net
    src, stream = data
    rule = proxy.add(Error(503, "SlowDown", retry_after=1), method="PUT", path=ARCHIVE, times=None)
    p = snap(env, "create", "-", repo, "--retries", "99", "--retry-budget", "3s", stdin=stream)
    assert p.returncode == 1, p.err
    assert "SlowDown" in p.err and "HTTP 503" in p.err and "retry budget of 3 s is spent" in p.err, p.err
    assert p.elapsed >= 2.0 and 3 <= rule.hits < 99
    # A Retry-After past the budget: given up at once rather than waited for.
    proxy.clear()
    rule = proxy.add(Error(503, "SlowDown", retry_after=3600), method="PUT", path=ARCHIVE, times=None)
    p = snap(env, "create", "-", repo, "--retry-budget", "1m", stdin=stream)
    assert p.returncode == 1 and "asked to wait 3600 s (Retry-After), longer than the retry budget of 60 s" in p.err, p.err
    assert rule.hits == 1
    assert_repo_sound(env_direct, repo, [])


def test_stall_is_detected_not_waited_for(net, env_direct, repo, data, tmp_path):
    proxy, env = net
    sid_dir, _ = seeded(env_direct, repo, data)
    rule = proxy.add(Stall(5, after=20_000, direction="response"), method="GET", path=ARCHIVE, times=None)
    p = snap(env, "restore", f"{repo}@{sid_dir}", str(tmp_path / "out"), "--retries", "0",
             "--stall-timeout", "2s", timeout=60)
    assert p.returncode == 1 and "stalled: no byte moved for 2 s" in p.err, p.err
    assert rule.hits == 1 and p.elapsed >= 2.0
    assert not (tmp_path / "out").exists()


def test_bad_network_flags_are_refused(env_direct, repo):
    for args in (["--retries", "-1"], ["--retries", "100"], ["--retries", "x"], ["--retry-budget", "0"],
                 ["--retry-budget", "2d"], ["--stall-timeout", "soon"], ["--stall-timeout", ""]):
        p = snap(env_direct, "ls", repo, *args)
        assert p.returncode == 2 and args[0] in p.err, (args, p.err)


def test_mirror_takes_the_same_limits(net, env_direct, s3, data, tmp_path):
    """coffer mirror rides out 503s with its retries, and gives up on a stall with
    --stall-timeout, naming it (exit 3: that file failed, the others were done)."""
    proxy, env = net
    src, _ = data
    dst = f"s3://faults/{tmp_path.name}-mirror"

    def mirror(*args):
        t0 = time.monotonic()
        p = subprocess.run([COFFER_BIN, "mirror", str(src), dst, "--no-progress", *args], env=env,
                           capture_output=True, timeout=90)
        p.elapsed, p.err = time.monotonic() - t0, p.stderr.decode(errors="replace")
        return p

    slow = proxy.add(Error(503, "SlowDown", retry_after=1), method="PUT", path=r"/a\.bin$", times=2)
    p = mirror("--retries", "2")
    assert p.returncode == 0, p.err
    assert slow.hits == 2 and proxy.count("PUT", r"/a\.bin$") == 3 and p.elapsed >= 2.0
    body = s3.get_object(Bucket="faults", Key=f"{tmp_path.name}-mirror/a.bin")["Body"].read()
    assert body == (src / "a.bin").read_bytes()
    (src / "sub" / "c.bin").write_bytes(os.urandom(100_000))
    try:
        proxy.add(Stall(5, after=1000, direction="request", then="reset"), method="PUT", path=r"/c\.bin$",
                  times=None)
        p = mirror("--retries", "0", "--stall-timeout", "1s")
        assert p.returncode == 3 and "stalled: no byte moved for 1 s" in p.err, p.err
    finally:
        (src / "sub" / "c.bin").unlink()
    for args in (["--retries", "100"], ["--stall-timeout", "0"], ["--retry-budget", "later"]):
        p = mirror(*args)
        assert p.returncode == 2 and args[0] in p.err, (args, p.err)
