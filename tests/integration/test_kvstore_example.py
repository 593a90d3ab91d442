"""The kvstore example (examples/kvstore/): a node of a replicated key-value store, driven through
its command line as the snapshotter's tests will drive it.

The log file is read here with an independent decoder of its format (README.md, "The log file"),
so that "truncated" means the bytes are gone from the file, not that the program says so.

KVSTORE_BIN names the binary; by default the one built beside COFFER_BIN
(BUILD/examples/kvstore/kvstore), so that `make test` runs this against each build.
"""
import os
import struct
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COFFER_BIN = os.path.abspath(os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "coffer")))
KVSTORE_BIN = os.environ.get("KVSTORE_BIN") or os.path.join(
    os.path.dirname(_COFFER_BIN), "examples", "kvstore", "kvstore")
if not os.path.exists(KVSTORE_BIN):
    KVSTORE_BIN = os.path.join(ROOT, "build", "examples", "kvstore", "kvstore")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ThreadSanitizer")
LOG_HEADER = 32


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def parse_records(data, check_crc=True):
    """[(index, term, op, key, value)] of a run of records, which must end exactly at the end."""
    out, pos = [], 0
    while pos < len(data):
        body_len, crc = struct.unpack_from("<II", data, pos)
        body = data[pos + 8:pos + 8 + body_len]
        assert len(body) == body_len, "a record cut short"
        if check_crc:
            assert crc32c(body) == crc, f"record at {pos}: checksum"
        index, term, op, klen, vlen = struct.unpack_from("<QQBII", body, 0)
        assert 25 + klen + vlen == body_len
        out.append((index, term, op, body[25:25 + klen], body[25 + klen:]))
        pos += 8 + body_len
    return out


def parse_log_file(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"CFKVLOG1"
    base_index, base_term, crc = struct.unpack_from("<QQI", data, 8)
    assert crc == crc32c(data[:24])
    return base_index, base_term, data, parse_records(data[LOG_HEADER:], check_crc=False)


def kv(node, *args, input=None, check=True, sync=None):
    cmd = [KVSTORE_BIN, "-d", str(node)] + (["--sync", sync] if sync else []) + [str(a) for a in args]
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=120)
    err = proc.stderr.decode(errors="replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    if check:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}: {err}"
    return proc


def out(node, *args, **kw):
    return kv(node, *args, **kw).stdout.decode().strip()


def digest(node):
    return dict(field.split("=") for field in out(node, "digest").split())


def status(node):
    return {k: int(v) for k, v in (line.split("=") for line in out(node, "status").splitlines())}


@pytest.fixture(scope="module", autouse=True)
def built():
    if not os.access(KVSTORE_BIN, os.X_OK):
        pytest.fail(f"{KVSTORE_BIN} is not built (cmake --build build)")


def test_20000_entries_appended_and_read_back(tmp_path):
    node = tmp_path / "a"
    assert out(node, "bench-fill", 20000, 500) == "20000"
    st = status(node)
    assert st["last_index"] == 20000 and st["applied_index"] == 20000 and st["keys"] == 500
    # Read back through the program (a tail stream) and from the file itself: the same 20,000.
    stream = parse_records(kv(node, "tail-from", 0).stdout)
    assert [r[0] for r in stream] == list(range(1, 20001))
    assert stream[4999][3:] == (b"key-%06d" % (5000 % 500), b"value-5000")
    base, _, _, records = parse_log_file(node / "log")
    assert base == 0 and records == stream
    # A reopened node replays the log to the same state.
    assert digest(node) == digest(node)
    assert out(node, "get", "key-000007") == "value-19507"
    assert [r[0] for r in parse_records(kv(node, "tail-from", 19990).stdout)] == list(range(19991, 20001))


def test_truncation_before_10000_leaves_only_later_entries_and_the_store_keeps_going(tmp_path):
    node = tmp_path / "a"
    out(node, "bench-fill", 20000)
    before = (node / "log").read_bytes()
    # Without a durable state that covers 10,000 the log is not touched.
    refused = kv(node, "truncate-before", 10000, check=False)
    assert refused.returncode == 1 and b"durable state" in refused.stderr
    assert (node / "log").read_bytes() == before
    out(node, "checkpoint")
    want = digest(node)
    out(node, "truncate-before", 10000)
    base, base_term, data, records = parse_log_file(node / "log")
    assert (base, base_term) == (10000, 1)
    assert [r[0] for r in records] == list(range(10001, 20001))
    # The bytes: no entry <= 10,000 is left in the file, the ones after are.
    for gone in (b"value-5000", b"value-9999", b"value-10000"):
        assert gone not in data
    assert b"value-10001" in data and b"value-20000" in data
    assert len(data) < len(before) * 0.6
    assert kv(node, "tail-from", 9999, check=False).returncode == 1
    assert digest(node) == want
    # Appending and applying go on after truncation, and after a reopen.
    assert out(node, "put", "after", "truncation") == "20001"
    assert out(node, "del", "key-000001") == "20002"
    assert out(node, "get", "after") == "truncation"
    assert kv(node, "get", "key-000001", check=False).returncode == 1
    assert out(node, "bench-fill", 100) == "20102"
    d = digest(node)
    assert d["index"] == "20102" and d["digest"] != want["digest"]
    _, _, _, records = parse_log_file(node / "log")
    assert records[0][0] == 10001 and records[-1][0] == 20102


def test_torn_last_record_is_dropped_on_recovery(tmp_path):
    node = tmp_path / "a"
    out(node, "bench-fill", 100)
    size_99 = LOG_HEADER + sum(8 + 25 + len(r[3]) + len(r[4]) for r in parse_log_file(node / "log")[3][:99])
    whole = (node / "log").stat().st_size
    os.truncate(node / "log", whole - 5)  # a crash in the middle of the 100th append
    proc = kv(node, "status")
    assert b"torn" in proc.stderr
    assert status(node)["last_index"] == 99
    assert (node / "log").stat().st_size == size_99
    assert out(node, "put", "k", "v") == "100"
    assert parse_log_file(node / "log")[3][-1][3:] == (b"k", b"v")


def test_damage_before_the_last_record_is_refused_and_left_alone(tmp_path):
    node = tmp_path / "a"
    out(node, "bench-fill", 100)
    data = bytearray((node / "log").read_bytes())
    data[LOG_HEADER + 500] ^= 0xFF
    (node / "log").write_bytes(bytes(data))
    proc = kv(node, "digest", check=False)
    assert proc.returncode == 1 and b"corrupt" in proc.stderr
    assert (node / "log").read_bytes() == bytes(data)


def test_state_at_i_plus_tail_reproduces_the_full_logs_state(tmp_path):
    leader, follower, replica = tmp_path / "leader", tmp_path / "follower", tmp_path / "replica"
    out(leader, "bench-fill", 12000, 3000)
    out(leader, "del", "key-000005")
    state = tmp_path / "state-12001"
    assert out(leader, "save-state", state) == "index=12001 term=1"
    # The leader goes on, in a later term, with deletions among the sets.
    proc = subprocess.run([KVSTORE_BIN, "-d", str(leader), "--term", "2", "bench-fill", "7990", "2500"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for key in ("key-000010", "key-000011", "missing"):
        out(leader, "del", key)
    # A new node: the state saved at 12,001, then the leader's tail after it.
    assert out(follower, "load-state", state) == "index=12001 term=1"
    tail = kv(leader, "tail-from", 12001).stdout
    assert len(parse_records(tail)) == 7993
    assert out(follower, "append-entries", input=tail) == "appended=7993 last_index=19994"
    want = digest(leader)
    assert want["index"] == "19994" and want["term"] == "2"
    assert digest(follower) == want
    assert out(follower, "dump") == out(leader, "dump")
    # And a node that replays the whole log from the start agrees with both.
    assert out(replica, "append-entries", input=kv(leader, "tail-from", 0).stdout).endswith("last_index=19994")
    assert digest(replica) == want
    # The follower is a node like any other: it reopens from its checkpoint and log, and appends.
    assert status(follower)["base_index"] == 12001
    assert out(follower, "put", "own", "entry") == "19995"


def test_replication_refuses_what_does_not_follow(tmp_path):
    leader, follower = tmp_path / "leader", tmp_path / "follower"
    out(leader, "bench-fill", 50)
    state = tmp_path / "state"
    out(leader, "save-state", state)
    out(leader, "bench-fill", 50)
    out(follower, "load-state", state)
    before = (follower / "log").read_bytes()
    # A gap (entries after 60 when the follower is at 50): nothing appended.
    proc = kv(follower, "append-entries", input=kv(leader, "tail-from", 60).stdout, check=False)
    assert proc.returncode == 1 and b"entry 61" in proc.stderr
    assert (follower / "log").read_bytes() == before
    # A stream damaged in transit: refused at the damaged record, the ones before it kept.
    tail = bytearray(kv(leader, "tail-from", 50).stdout)
    tail[len(tail) // 2] ^= 0x01
    proc = kv(follower, "append-entries", input=bytes(tail), check=False)
    assert proc.returncode == 1 and b"corrupt" in proc.stderr
    kept = status(follower)["last_index"]
    assert 50 <= kept < 100
    assert [r[0] for r in parse_log_file(follower / "log")[3]] == list(range(51, kept + 1))
    # A new node starts only in an empty directory, and only from a good state file.
    proc = kv(follower, "load-state", state, check=False)
    assert proc.returncode == 1 and b"already holds a log" in proc.stderr
    bad = bytearray(state.read_bytes())
    bad[40] ^= 0x01
    (tmp_path / "bad").write_bytes(bytes(bad))
    proc = kv(tmp_path / "fresh", "load-state", tmp_path / "bad", check=False)
    assert proc.returncode == 1 and b"corrupt" in proc.stderr
    assert not (tmp_path / "fresh" / "log").exists()


def test_serve_keeps_one_node_open(tmp_path):
    node = tmp_path / "a"
    script = "\n".join(["bench-fill 300", "put x 1", "get x", "checkpoint", "truncate-before 200",
                        "truncate-before 400", "put y 2", "digest", "nonsense", "quit", "put never 1"]) + "\n"
    proc = subprocess.run([KVSTORE_BIN, "-d", str(node), "serve"], input=script.encode(), capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[:6] == ["300", "ok", "301", "ok", "1", "ok"]
    assert lines[6:9] == ["ok", "ok", "error: truncate-before failed"]
    assert lines[9:11] == ["302", "ok"]
    assert lines[11].startswith("index=302 term=1 keys=")
    assert lines[12:] == ["ok", "error: nonsense failed"]
    assert parse_log_file(node / "log")[0] == 200
    assert kv(node, "get", "never", check=False).returncode == 1
