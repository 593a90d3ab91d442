"""The kvstore example on libcoffer's snapshotter, against a real coffer server as the s3://
repository: 20,000 entries with a 10,000-entry threshold give two snapshots and a log file that no
longer holds the truncated entries; the node keeps appending; retention keeps 3 of 5; a new node
bootstraps from the newest snapshot plus the leader's tail and reaches the leader's state; a
damaged newest snapshot makes bootstrap take the one before and say so.
"""
import os
import re
import resource
import signal
import subprocess
import time

from conftest import ACCESS_KEY, SECRET_KEY, run_checked, s3_client, scrubbed_env
from faultproxy import Error, FaultProxy
from test_kvstore_example import KVSTORE_BIN, SANITIZER_MARKERS, kv, parse_log_file


def node_env(server):
    return scrubbed_env(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                        COFFER_ENDPOINT=server.endpoint, COFFER_SNAPSHOT_LOG_THRESHOLD="10000",
                        COFFER_SNAPSHOT_RETENTION_COUNT="3")


def snap_args(bucket):
    return ["--repo", f"s3://{bucket}/snapshots", "--topic", "orders", "--partition", "1",
            "--node-id", "n1", "--snapshot-env"]


def run(node, args, env, commands=None):
    return run_checked([KVSTORE_BIN, "-d", str(node), *args], input=commands, text=True, env=env,
                       timeout=300)


def manifests(server, bucket):
    objs = s3_client(server.endpoint).list_objects_v2(Bucket=bucket, Prefix="snapshots/orders/1/")
    return sorted(o["Key"] for o in objs.get("Contents", []) if o["Key"].endswith(".json"))


def test_snapshots_truncation_retention_bootstrap(server, tmp_path):
    bucket = "kv-snapshots"
    s3_client(server.endpoint).create_bucket(Bucket=bucket)
    env = node_env(server)
    leader = tmp_path / "n1"
    p = run(leader, snap_args(bucket) + ["serve"], env,
            "bench-fill 10000\nsnapshot-wait 1\nbench-fill 10000\nsnapshot-wait 2\nsnapshot-stats\n"
            "put after truncation\nquit\n")
    assert p.returncode == 0, p.stderr
    assert "error:" not in p.stdout, p.stdout + p.stderr
    assert re.search(r"taken=2 failed=0 last_index=20000 last_term=1 truncated_through=20000", p.stdout), p.stdout
    assert len(manifests(server, bucket)) == 2

    # The log file holds nothing up to 20,000: its base moved and its records start after it.
    base_index, _, _, records = parse_log_file(leader / "log")
    assert base_index == 20000
    assert [r[0] for r in records] == [20001]
    assert records[0][3:] == (b"after", b"truncation")
    assert kv(leader, "get", "after").stdout == b"truncation\n"

    # Three more snapshots: the three newest remain.
    p = run(leader, snap_args(bucket) + ["serve"], env,
            "put a 1\nsnapshot-now\nput b 2\nsnapshot-now\nput c 3\nsnapshot-now\nsnapshot-stats\nquit\n")
    assert p.returncode == 0 and "error:" not in p.stdout, p.stdout + p.stderr
    assert "last_index=20004" in p.stdout, p.stdout
    assert len(manifests(server, bucket)) == 3

    # More entries after the newest snapshot: a new node takes the snapshot plus the tail.
    kv(leader, "put", "d", "4")
    kv(leader, "put", "e", "5")
    follower = tmp_path / "n2"
    p = run(follower, snap_args(bucket) + ["bootstrap"], env)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^index=20004 term=1 id=\S+ fell_back=0$", p.stdout, re.M), p.stdout
    tail = kv(leader, "tail-from", "20004").stdout
    kv(follower, "append-entries", input=tail)
    assert kv(follower, "digest").stdout == kv(leader, "digest").stdout
    assert kv(follower, "get", "e").stdout == b"5\n"


def test_bootstrap_falls_back_past_a_damaged_newest(server, tmp_path):
    bucket = "kv-damaged"
    s3 = s3_client(server.endpoint)
    s3.create_bucket(Bucket=bucket)
    env = node_env(server)
    leader = tmp_path / "n1"
    p = run(leader, snap_args(bucket) + ["serve"], env,
            "put a 1\nsnapshot-now\nput b 2\nsnapshot-now\nsnapshot-stats\nquit\n")
    assert p.returncode == 0 and "error:" not in p.stdout, p.stdout + p.stderr
    # Two ids of one second sort by their random part: the newest is the one the node names.
    newest = "snapshots/orders/1/" + re.search(r"last_id=(\S+)", p.stdout).group(1)
    assert newest + ".json" in manifests(server, bucket)
    archive = next(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
                   if o["Key"].startswith(newest) and not o["Key"].endswith(".json"))
    data = bytearray(s3.get_object(Bucket=bucket, Key=archive)["Body"].read())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0x5A
    s3.put_object(Bucket=bucket, Key=archive, Body=bytes(data))

    p = run(tmp_path / "n2", snap_args(bucket) + ["bootstrap"], env)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^index=1 term=1 id=\S+ fell_back=1$", p.stdout, re.M), p.stdout
    assert "damaged" in p.stderr
    assert kv(tmp_path / "n2", "get", "a").stdout == b"1\n"
    assert kv(tmp_path / "n2", "get", "b", check=False).returncode == 1


class Serve:
    """A `kvstore serve` kept open: one command at a time, its answer's lines up to ok / error."""

    def __init__(self, node, args, env, preexec_fn=None):
        self.proc = subprocess.Popen([KVSTORE_BIN, "-d", str(node), *args, "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     preexec_fn=preexec_fn)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            assert line, "serve ended: " + self.proc.stderr.read()
            if line == "ok\n" or line.startswith("error:"):
                return line.strip(), "".join(lines)
            lines.append(line)

    def quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0
        err = self.proc.stderr.read()
        for marker in SANITIZER_MARKERS:
            assert marker not in err, err
        return err


def test_store_down_truncates_nothing_then_recovers(make_server, tmp_path):
    srv = make_server().start()
    s3_client(srv.endpoint).create_bucket(Bucket="kv-down")
    assert srv.stop() == 0
    node = tmp_path / "n1"
    serve = Serve(node, snap_args("kv-down"), node_env(srv))
    assert serve.ask("bench-fill 10000")[0] == "ok"  # the threshold: the snapshotter tries
    answer, _ = serve.ask("snapshot-now")
    assert answer.startswith("error:")
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=0 failed=[1-9]\d* .*truncated_through=0 ", stats), stats
    assert "last_error=input/output error" in stats
    base_index, _, _, records = parse_log_file(node / "log")
    assert base_index == 0 and len(records) == 10000  # nothing truncated

    srv.start()  # the store is back: the retry (backoff from 1 s) succeeds
    assert serve.ask("snapshot-wait 1")[0] == "ok"
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=1 failed=[1-9]\d* last_index=10000 .*truncated_through=10000 ", stats), stats
    assert "Couldn't connect" in serve.quit()
    base_index, _, _, records = parse_log_file(node / "log")
    assert base_index == 10000 and records == []
    assert len(manifests(srv, "kv-down")) == 1


def test_staging_failure_says_why(tmp_path):
    """The state cannot be staged (the file may not grow: a full disk's failure, made here by a
    file size limit on the node): the node's write_state returns the status the snapshotter's
    write gave it, so the stats say input/output error, not "an application callback failed",
    and the message names the staging directory and the system's reason. Nothing is stored or
    truncated; once files may grow again the snapshot is stored."""
    stage = tmp_path / "stage"
    stage.mkdir()
    env = scrubbed_env(TMPDIR=str(stage))
    repo = tmp_path / "repo"
    node = tmp_path / "n1"

    def ignore_sigxfsz():  # a write past the limit then fails (EFBIG) instead of killing the node
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    serve = Serve(node, ["--repo", str(repo), "--partition", "0"], env, preexec_fn=ignore_sigxfsz)
    assert serve.ask("bench-fill 5000 5000")[0] == "ok"  # a state of ~150 KB
    unlimited = resource.prlimit(serve.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(serve.proc.pid, resource.RLIMIT_FSIZE, (16384, unlimited[1]))
    answer, _ = serve.ask("snapshot-now")
    assert answer.startswith("error:"), answer
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=0 failed=[1-9]\d* .*truncated_through=0 ", stats), stats
    assert "last_error=input/output error" in stats, stats
    base_index, _, _, records = parse_log_file(node / "log")
    assert base_index == 0 and len(records) == 5000

    resource.prlimit(serve.proc.pid, resource.RLIMIT_FSIZE, unlimited)
    assert serve.ask("snapshot-now")[0] == "ok"
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=1 .*last_index=5000 .*truncated_through=5000 ", stats), stats
    err = serve.quit()
    assert f"cannot stage the state in {stage}: File too large" in err, err
    assert "an application callback failed" not in err
    assert list(stage.iterdir()) == []  # the staging file was unlinked from the start


def test_topic_that_climbs_or_splits_is_refused(tmp_path):
    """--topic is appended to --repo as one path segment: '..' or 'a/b' would put the snapshots
    in another repository (here: beside it), so the node refuses to start, naming the option."""
    repo = tmp_path / "repos" / "snapshots"
    for topic in ["..", "../escaped", "a/b", ".", "", "tab\there"]:
        node = tmp_path / "node"
        p = run(node, ["--repo", str(repo), "--topic", topic, "--partition", "0", "bootstrap"],
                dict(os.environ))
        assert p.returncode == 2, (topic, p.stderr)
        assert "--topic" in p.stderr, p.stderr
    assert not (tmp_path / "repos" / "escaped").exists()
    assert not repo.parent.exists() or not any(repo.parent.iterdir())


def test_snapshot_wait_takes_a_count_only(tmp_path):
    """serve's snapshot-wait N: "-1" (which strtoull reads as 2^64 - 1) and "+1" are not counts;
    they are refused at once instead of waiting out the 30 s for snapshots that never come."""
    serve = Serve(tmp_path / "n1", ["--repo", str(tmp_path / "repo"), "--partition", "0"], dict(os.environ))
    for bad in ["-1", "+1", "1x", "18446744073709551616"]:
        t0 = time.monotonic()
        assert serve.ask(f"snapshot-wait {bad}")[0].startswith("error:"), bad
        assert time.monotonic() - t0 < 5, bad
    assert serve.ask("snapshot-wait 0")[0] == "ok"
    serve.quit()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_network_cut_mid_upload_and_503s_truncate_nothing_then_recover(server, tmp_path):
    """The connection to the store drops in the middle of a snapshot's upload, then the store
    answers 503 for a while: each attempt fails and is counted, the log keeps every entry, no
    snapshot is listed, and the retries wait (the node uses little CPU meanwhile); once the
    network is good again the retry stores the snapshot and truncates."""
    s3_client(server.endpoint).create_bucket(Bucket="kv-flaky")
    net = FaultProxy(server.port)
    env = node_env(server)
    env.update({"COFFER_ENDPOINT": net.endpoint, "COFFER_SNAPSHOT_LOG_THRESHOLD": "10000000"})
    node = tmp_path / "n1"
    serve = Serve(node, snap_args("kv-flaky"), env)
    assert serve.ask("bench-fill 20000 20000")[0] == "ok"  # ~600 KB of state, ~100 KB stored

    net.go_down_after(30_000)  # the upload starts, then the network goes
    answer, _ = serve.ask("snapshot-now")
    assert answer.startswith("error:"), answer
    assert net.down
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=0 failed=[1-9]\d* .*truncated_through=0 ", stats), stats

    busy = net.add(Error(503, "SlowDown"), times=None)  # every request, before any gets through
    net.go_up()
    time.sleep(1)
    before = cpu_seconds(serve.proc.pid)
    time.sleep(3)
    assert cpu_seconds(serve.proc.pid) - before < 0.5  # backoff, not a spin
    for _ in range(100):  # at least one attempt against the 503s (each retried by the S3 client)
        _, stats = serve.ask("snapshot-stats")
        failed = int(re.search(r"failed=(\d+)", stats).group(1))
        if failed >= 2:
            break
        time.sleep(0.1)
    assert 2 <= failed < 20, stats
    assert "truncated_through=0 " in stats
    assert manifests(server, "kv-flaky") == []
    base_index, _, _, records = parse_log_file(node / "log")
    assert base_index == 0 and len(records) == 20000

    assert busy.hits >= 2
    net.clear()
    assert serve.ask("snapshot-wait 1")[0] == "ok"
    _, stats = serve.ask("snapshot-stats")
    assert re.search(r"taken=1 .*last_index=20000 .*truncated_through=20000 ", stats), stats
    serve.quit()
    assert len(manifests(server, "kv-flaky")) == 1
