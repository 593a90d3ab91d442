"""Crash safety: PUTs from several clients, the server killed with SIGKILL at a random moment,
restarted on the same data dir; then every acknowledged object must be there, byte for byte,
nothing half-written may be visible, and start-up must have left no stray file behind
(docs/internals/store.md, "The commit protocol" and "Recovery").

The model, per key (each key is written by one client thread only, so its PUTs are sequential):
`acked` is the content of the last PUT answered 200 (None: never written), `inflight` the content
of a PUT sent but unanswered when the server died. After the restart the key must hold exactly
`acked` or `inflight` (absent counts as `acked` = None); what it holds becomes the new `acked`.
"""
import hashlib
import os
import random
import subprocess
import threading
import time

import botocore.exceptions
import pytest

from conftest import COFFER_BIN, s3_client
from helpers_http import INLINE_MAX, data_files, tmp_files, with_data_file

ASAN = "asan" in COFFER_BIN
ROUNDS = 20
THREADS = 4
KEYS_PER_THREAD = 3
MAX_SIZE = (2 << 20) if ASAN else (8 << 20)
BUCKET = "crash"


class Version:
    __slots__ = ("sha256", "md5", "size")

    def __init__(self, body):
        self.sha256 = hashlib.sha256(body).hexdigest()
        self.md5 = hashlib.md5(body).hexdigest()
        self.size = len(body)

    def __repr__(self):
        return f"<{self.size} B md5 {self.md5}>"


class KeyState:
    def __init__(self):
        self.acked = None      # Version of the last acknowledged PUT, or None
        self.inflight = None   # Version of a PUT without an answer, or None


class Model:
    def __init__(self, keys):
        self.lock = threading.Lock()
        self.keys = {k: KeyState() for k in keys}
        self.unexpected = []   # error answers from a live server, or wrong ETags
        self.acks = 0


def pick_size(rng):
    r = rng.random()
    if r < 0.1:
        return 0
    if r < 0.45:
        return rng.randint(1, 64 << 10)
    return rng.randint(64 << 10, MAX_SIZE)


def worker(tid, client, model, stop, seed):
    rng = random.Random(seed)
    keys = [f"t{tid}/k{i}" for i in range(KEYS_PER_THREAD)]
    while not stop.is_set():
        key = rng.choice(keys)
        body = rng.randbytes(pick_size(rng))
        ver = Version(body)
        st = model.keys[key]
        with model.lock:
            st.inflight = ver
        try:
            resp = client.put_object(Bucket=BUCKET, Key=key, Body=body)
        except botocore.exceptions.ClientError as e:
            # The server answered, and refused a valid PUT: that is a failure unless the answer
            # came from a server being stopped (SIGTERM test), which the caller decides.
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            with model.lock:
                model.unexpected.append((key, "error answer", status, str(e)))
            return
        except Exception:
            return  # no answer: the server died with this PUT in flight
        with model.lock:
            st.acked = ver
            st.inflight = None
            model.acks += 1
            if resp["ETag"].strip('"') != ver.md5:
                model.unexpected.append((key, "ETag", 200, resp["ETag"], ver.md5))


def run_clients(endpoint, model, clients, seed, until):
    """Starts THREADS writers; `until()` returns when the server is gone; then joins them."""
    stop = threading.Event()
    threads = [threading.Thread(target=worker, args=(t, clients[t], model, stop, seed * 100 + t),
                                daemon=True) for t in range(THREADS)]
    for t in threads:
        t.start()
    try:
        until()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client thread hung after the server died"


def list_all(client):
    out, token = {}, None
    while True:
        kw = {"Bucket": BUCKET, "MaxKeys": 7}  # small pages: exercise continuation too
        if token:
            kw["ContinuationToken"] = token
        page = client.list_objects_v2(**kw)
        for o in page.get("Contents", []):
            assert o["Key"] not in out, f"{o['Key']!r} listed twice"
            out[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
        if not page.get("IsTruncated"):
            return out
        token = page["NextContinuationToken"]


def verify(srv, model, label):
    """After a restart: recovery left nothing stray, and every key holds an allowed version."""
    assert tmp_files(srv.data_dir) == [], f"{label}: tmp/ not emptied at start-up"
    client = s3_client(srv.endpoint)
    listed = list_all(client)
    assert set(listed) <= set(model.keys), f"{label}: unknown keys listed: {set(listed) - set(model.keys)}"
    files = data_files(srv.data_dir)
    want = with_data_file(size for size, _etag in listed.values())
    assert len(files) == want, (
        f"{label}: {len(files)} data files under objects/ for {want} objects over {INLINE_MAX} "
        f"bytes (orphans or missing data)")
    for key, st in model.keys.items():
        allowed = {st.acked.sha256 if st.acked else None}
        if st.inflight:
            allowed.add(st.inflight.sha256)
        versions = {v.sha256: v for v in (st.acked, st.inflight) if v}
        if key not in listed:
            assert None in allowed, (
                f"{label}: {key} lost: acknowledged {st.acked}, in flight {st.inflight}")
            with pytest.raises(client.exceptions.NoSuchKey):
                client.get_object(Bucket=BUCKET, Key=key)
            st.acked, st.inflight = None, None
            continue
        got = client.get_object(Bucket=BUCKET, Key=key)
        body = got["Body"].read()
        h = hashlib.sha256(body).hexdigest()
        md5 = hashlib.md5(body).hexdigest()
        assert h in allowed, (
            f"{label}: {key} holds {len(body)} B md5 {md5}, which is neither the acknowledged "
            f"{st.acked} nor the in-flight {st.inflight} (half-written or stale object)")
        assert got["ETag"].strip('"') == md5, f"{label}: {key}: ETag is not the MD5 of the content"
        assert got["ContentLength"] == len(body)
        assert listed[key] == (len(body), md5), f"{label}: {key}: listing disagrees with GET"
        st.acked, st.inflight = versions[h], None
    return len(listed)


def sigterm(srv, timeout=30):
    """srv.stop(), but a server that ignores SIGTERM is reported ("hung") and then SIGKILLed,
    so that it does not outlive the test."""
    proc = srv.proc
    try:
        return srv.stop(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "hung"


def make_clients(endpoint):
    return [s3_client(endpoint) for _ in range(THREADS)]


def test_kill_9_during_puts_loses_nothing_acknowledged(make_server):
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    srv = make_server()
    srv.start()
    s3_client(srv.endpoint).create_bucket(Bucket=BUCKET)
    model = Model([f"t{t}/k{i}" for t in range(THREADS) for i in range(KEYS_PER_THREAD)])
    clients = make_clients(srv.endpoint)
    inflight_seen = 0
    deadline = time.monotonic() + (80 if ASAN else 120)
    for rnd in range(ROUNDS):
        assert time.monotonic() < deadline, f"too slow: round {rnd} of {ROUNDS}"
        delay = rng.uniform(0.2, 1.5)

        def kill_later():
            time.sleep(delay)
            srv.kill()

        run_clients(srv.endpoint, model, clients, seed + rnd, kill_later)
        assert not model.unexpected, f"round {rnd}: {model.unexpected}"
        inflight_seen += sum(1 for st in model.keys.values() if st.inflight)
        srv.start()
        verify(srv, model, f"round {rnd} (seed {seed}, kill after {delay:.2f} s)")
    print(f"{model.acks} PUTs acknowledged, {inflight_seen} cut by a kill")
    # The test is only meaningful if it wrote and interrupted writes.
    assert model.acks >= ROUNDS, f"only {model.acks} PUTs acknowledged in {ROUNDS} rounds"
    assert inflight_seen >= ROUNDS // 2, f"only {inflight_seen} PUTs were cut by a kill"
    code = sigterm(srv)
    assert code == 0, f"exit code {code} on SIGTERM after the crash rounds"


def test_sigterm_during_puts_exits_0_and_keeps_acknowledged(make_server):
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    srv = make_server()
    srv.start()
    s3_client(srv.endpoint).create_bucket(Bucket=BUCKET)
    model = Model([f"t{t}/k{i}" for t in range(THREADS) for i in range(KEYS_PER_THREAD)])
    clients = make_clients(srv.endpoint)
    for rnd in range(5):
        codes = []
        delay = rng.uniform(0.4, 1.2)

        def term_later():
            time.sleep(delay)
            codes.append(sigterm(srv, timeout=20))

        run_clients(srv.endpoint, model, clients, seed + rnd, term_later)
        assert codes == [0], f"round {rnd}: SIGTERM exit code {codes}:\n{srv.log()[-3000:]}"
        # A server shutting down may refuse a request that arrives meanwhile with 503 (the PUT
        # stays "in flight" in the model), never with another answer to a valid PUT.
        bad = [u for u in model.unexpected if u[2] != 503]
        assert not bad, f"round {rnd}: {bad}"
        model.unexpected.clear()
        assert os.path.exists(os.path.join(srv.data_dir, "clean-shutdown")), (
            "no clean-shutdown marker after SIGTERM")
        srv.start()
        # After a clean stop start-up skips the orphan walk: a PUT cut by the shutdown must
        # not have left a data file behind, so this also checks the shutdown path itself.
        verify(srv, model, f"SIGTERM round {rnd} (seed {seed}, after {delay:.2f} s)")
    assert model.acks > 0
