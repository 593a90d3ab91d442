"""Rate groups: every response to the keys of a group shares the group's one budget.

Timing assertions are lower bounds only: pacing can never make a response faster, while a
loaded machine can make anything slower. A group's bucket holds at most BURST bytes after an
idle spell (src/server/rate_groups.c), so n bytes through it take at least (n - BURST) / rate.
Each test uses its own group, whose bucket starts empty.
"""
import ctypes
import ctypes.util
import hashlib
import json
import os
import re
import struct
import threading
import time
import urllib.request

import pytest
import requests

from conftest import s3_client
from helpers_clients import signed_request
from test_access import admin, new_key

MiB = 1 << 20


def burst(rate):
    return max(int(rate * 0.02), 128 << 10)


def floor_s(nbytes, rate):
    """The least time nbytes can take through a group of this rate."""
    return (nbytes - burst(rate)) / rate


def payload(n, seed):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def metrics(server):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as r:
        text = r.read().decode()
    found = {}
    for name, group, value in re.findall(r'^(coffer_rate_group_\w+)\{group="([^"]+)"\} (\d+)$', text, re.M):
        found[(name, group)] = int(value)
    return found


def group_key(server, group, rate=None, policy="readonly"):
    args = ["--policy", policy, "--rate-group", group]
    if rate:
        args += ["--rate", rate]
    return new_key(server, *args)


def timed_get(client, **kw):
    start = time.monotonic()
    body = client.get_object(**kw)["Body"].read()
    return time.monotonic() - start, body


@pytest.fixture(scope="module")
def objects(s3):
    s3.create_bucket(Bucket="tiers")
    blobs = {"3m": payload(3 * MiB, "3m"), "2m": payload(2 * MiB, "2m")}
    for k, v in blobs.items():
        s3.put_object(Bucket="tiers", Key=k, Body=v)
    return blobs


def test_download_takes_at_least_size_over_rate(server, objects):
    ak, sk = group_key(server, "slow", "1.5MB/s")
    c = s3_client(server.endpoint, ak, sk)
    took, body = timed_get(c, Bucket="tiers", Key="3m")
    assert hashlib.sha256(body).digest() == hashlib.sha256(objects["3m"]).digest()
    assert took >= floor_s(3 * MiB, 1_500_000), took
    m = metrics(server)
    assert m[("coffer_rate_group_rate_bytes", "slow")] == 1_500_000
    assert m[("coffer_rate_group_bytes_total", "slow")] >= 3 * MiB
    assert m[("coffer_rate_group_active_responses", "slow")] == 0


def test_downloads_of_a_group_share_one_budget(server, objects):
    """Two keys of one group, two connections at once: together no faster than the group's rate;
    the second key joins the group at the rate the first one set."""
    ak1, sk1 = group_key(server, "shared", "2MB/s")
    ak2, sk2 = group_key(server, "shared")
    listed = {k["access_key"]: k for k in json.loads(admin(server, "key", "ls", "--json").stdout)["keys"]}
    assert listed[ak2]["rate_group"] == "shared" and listed[ak2]["rate"] == 2_000_000
    bodies, took = {}, {}

    def fetch(name, ak, sk):
        took[name], bodies[name] = timed_get(s3_client(server.endpoint, ak, sk), Bucket="tiers", Key="2m")

    start = time.monotonic()
    threads = [threading.Thread(target=fetch, args=(n, ak, sk)) for n, ak, sk in
               (("a", ak1, sk1), ("b", ak2, sk2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    together = time.monotonic() - start
    assert bodies["a"] == objects["2m"] and bodies["b"] == objects["2m"]
    assert together >= floor_s(4 * MiB, 2_000_000), together


def test_presigned_url_of_a_group_key_is_paced(server, objects):
    ak, sk = group_key(server, "presigned", "1MB/s")
    url = s3_client(server.endpoint, ak, sk).generate_presigned_url(
        "get_object", Params={"Bucket": "tiers", "Key": "2m"}, ExpiresIn=600)
    start = time.monotonic()
    r = requests.get(url, timeout=120)
    took = time.monotonic() - start
    assert r.status_code == 200 and r.content == objects["2m"]
    assert took >= floor_s(2 * MiB, 1_000_000), took


def test_ranged_get_is_paced(server, objects):
    ak, sk = group_key(server, "ranged", "1MB/s")
    c = s3_client(server.endpoint, ak, sk)
    took, body = timed_get(c, Bucket="tiers", Key="3m", Range="bytes=524288-2621439")
    assert body == objects["3m"][524288:2621440]
    assert took >= floor_s(2 * MiB, 1_000_000), took


def test_multipart_range_across_parts_is_paced(server, s3):
    """A range over two parts is read by the store's reader, not from one file."""
    blob = payload(6 * MiB, "mp")
    up = s3.create_multipart_upload(Bucket="tiers", Key="mp")
    parts = []
    for i, (lo, hi) in enumerate(((0, 5 * MiB), (5 * MiB, 6 * MiB)), 1):
        etag = s3.upload_part(Bucket="tiers", Key="mp", UploadId=up["UploadId"], PartNumber=i,
                              Body=blob[lo:hi])["ETag"]
        parts.append({"PartNumber": i, "ETag": etag})
    s3.complete_multipart_upload(Bucket="tiers", Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    ak, sk = group_key(server, "multipart", "2MB/s")
    c = s3_client(server.endpoint, ak, sk)
    took, body = timed_get(c, Bucket="tiers", Key="mp", Range=f"bytes={4 * MiB}-{6 * MiB - 1}")
    assert body == blob[4 * MiB:]
    assert took >= floor_s(2 * MiB, 2_000_000), took


def test_small_objects_do_not_escape_the_budget(server, s3):
    """Objects kept in their index record and small ones sent from memory are paced too."""
    sizes = [4096] * 100 + [60 << 10] * 10  # 400 KiB inline, 600 KiB read into memory
    for i, n in enumerate(sizes):
        s3.put_object(Bucket="tiers", Key=f"small/{i}", Body=payload(n, f"s{i}"))
    ak, sk = group_key(server, "small", "250KB/s")
    c = s3_client(server.endpoint, ak, sk)
    start = time.monotonic()
    for i, n in enumerate(sizes):
        assert c.get_object(Bucket="tiers", Key=f"small/{i}")["Body"].read() == payload(n, f"s{i}")
    took = time.monotonic() - start
    assert took >= floor_s(sum(sizes), 250_000), took


def test_root_and_ungrouped_keys_are_not_paced(server, objects, s3):
    """They finish, and nothing they receive is counted against any group."""
    group_key(server, "bystander", "1KB/s")
    before = metrics(server)
    ak, sk = new_key(server, "--policy", "readonly")
    plain = s3_client(server.endpoint, ak, sk)
    for c in (s3, plain):
        _, body = timed_get(c, Bucket="tiers", Key="3m")
        assert body == objects["3m"]
    after = metrics(server)
    for (name, group), v in after.items():
        if name == "coffer_rate_group_bytes_total":
            assert v == before.get((name, group), 0), group


def test_rate_change_applies_to_new_responses(server, objects):
    ak, sk = group_key(server, "changing", "100MB/s")
    c = s3_client(server.endpoint, ak, sk)
    assert timed_get(c, Bucket="tiers", Key="2m")[1] == objects["2m"]
    p = admin(server, "rate-group", "set", "changing", "--rate", "1MB/s")
    assert "1MB/s" in p.stdout
    took, body = timed_get(c, Bucket="tiers", Key="2m")
    assert body == objects["2m"]
    assert took >= floor_s(2 * MiB, 1_000_000), took
    assert metrics(server)[("coffer_rate_group_rate_bytes", "changing")] == 1_000_000
    # Last set wins, also when a key is added with a rate.
    group_key(server, "changing", "3MB/s")
    groups = {g["name"]: g for g in json.loads(admin(server, "rate-group", "ls", "--json").stdout)["rate_groups"]}
    assert groups["changing"] == {"name": "changing", "rate": 3_000_000, "keys": 2}
    table = admin(server, "rate-group", "ls").stdout
    assert re.search(r"^changing\s+3MB/s\s+2$", table, re.M), table
    table = admin(server, "key", "ls").stdout
    assert re.search(rf"^{ak}\s+readonly\s+\*\s+changing\s+3MB/s", table, re.M), table


@pytest.mark.parametrize("args, says", [
    (["--rate-group", "Premium", "--rate", "1MB/s"], "--rate-group 'Premium': a name is 1 to 32 of a-z"),
    (["--rate-group", "a" * 33, "--rate", "1MB/s"], "a name is 1 to 32"),
    (["--rate-group", "x/y", "--rate", "1MB/s"], "a name is 1 to 32"),
    (["--rate-group", "", "--rate", "1MB/s"], "a name is 1 to 32"),
    (["--rate-group", "ok", "--rate", "50mb/s"], "rate '50mb/s': the unit must be one of B/s, KB/s"),
    (["--rate-group", "ok", "--rate", "50"], "the unit must be one of"),
    (["--rate-group", "ok", "--rate", "fast"], "must begin with a number"),
    (["--rate-group", "ok", "--rate", "0MB/s"], "must be between 1KB/s and 1000GB/s"),
    (["--rate-group", "ok", "--rate", "2000GB/s"], "more than the largest rate"),
    (["--rate", "1MB/s"], "--rate needs --rate-group"),
])
def test_bad_names_and_rates_are_refused_by_the_command(server, args, says):
    before = admin(server, "key", "ls", "--json").stdout
    p = admin(server, "key", "add", "--policy", "readonly", "--name", "refused", *args, check=False)
    assert p.returncode == 2 and says in p.stderr, p.stderr
    assert admin(server, "key", "ls", "--json").stdout == before


def test_bad_requests_are_refused_by_the_admin_api(server):
    """The API checks on its own (any client may call it), with S3 errors naming the fault,
    and a refused request changes nothing."""
    group_key(server, "steady", "5MB/s")
    keys_before = admin(server, "key", "ls", "--json").stdout
    cases = [
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": "New-Group", "rate": "1MB/s"},
         "rate group 'New-Group': a name is 1 to 32"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": "fresh"},
         "rate group 'fresh' has no rate yet"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate": "1MB/s"}, "rate needs a rate_group"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": "steady", "rate": "1 MB/s"},
         "the unit must be one of"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": "steady", "rate": 10},
         "rate 10 B/s: must be between"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": "steady", "rate": [1]},
         "rate must be a string"),
        ("POST", "/_admin/v1/keys", {"policy": "readonly", "rate_group": 5}, "the body must be JSON"),
        ("PUT", "/_admin/v1/rate-groups/steady", {"rate": "-1MB/s"}, "must begin with a number"),
        ("PUT", "/_admin/v1/rate-groups/steady", {}, "the body must be JSON {\"rate\""),
        ("PUT", "/_admin/v1/rate-groups/steady", None, "the body must be JSON {\"rate\""),
        ("PUT", "/_admin/v1/rate-groups/bad%20name", {"rate": "1MB/s"}, "a name is 1 to 32"),
        ("PUT", "/_admin/v1/rate-groups/" + "g" * 40, {"rate": "1MB/s"}, "a name is 1 to 32"),
    ]
    for method, path, doc, says in cases:
        body = b"not json" if doc is None else json.dumps(doc).encode()
        r = signed_request(server.endpoint, method, path, body=body,
                           headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, doc, r.text)
        assert "<Code>InvalidArgument</Code>" in r.text and says in r.text.replace("&apos;", "'").replace(
            "&quot;", '"'), (doc, r.text)
    assert admin(server, "key", "ls", "--json").stdout == keys_before
    assert metrics(server)[("coffer_rate_group_rate_bytes", "steady")] == 5_000_000
    assert ("coffer_rate_group_rate_bytes", "fresh") not in metrics(server)
    # A key that exists already changes no rate.
    ak, _ = group_key(server, "steady")
    r = signed_request(server.endpoint, "POST", "/_admin/v1/keys",
                       body=json.dumps({"policy": "readonly", "access_key": ak, "rate_group": "steady",
                                        "rate": "1MB/s"}).encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "already exists" in r.text, r.text
    assert metrics(server)[("coffer_rate_group_rate_bytes", "steady")] == 5_000_000
    # Only root may change a rate.
    ak2, sk2 = new_key(server, "--policy", "readwrite")
    r = signed_request(server.endpoint, "PUT", "/_admin/v1/rate-groups/steady", body=b'{"rate":"1GB/s"}',
                       access_key=ak2, secret_key=sk2)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert metrics(server)[("coffer_rate_group_rate_bytes", "steady")] == 5_000_000


def _put_v1_key_record(data_dir, access_key, secret, policy):
    """Writes a key record as the version before rate groups did (version byte 1, no group),
    straight into the stopped server's index with liblmdb."""
    lib = ctypes.CDLL(ctypes.util.find_library("lmdb") or "liblmdb.so.0")

    class Val(ctypes.Structure):
        _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]

    rec = b"\x01" + struct.pack("<q", 1_700_000_000 * 10**9)
    for field in (secret, policy, "", ""):
        rec += struct.pack("<H", len(field)) + field.encode()
    env, txn, dbi = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_uint()
    assert lib.mdb_env_create(ctypes.byref(env)) == 0
    assert lib.mdb_env_set_maxdbs(env, 32) == 0
    assert lib.mdb_env_open(env, os.path.join(data_dir, "index.lmdb").encode(), 0, 0o600) == 0
    assert lib.mdb_txn_begin(env, None, 0, ctypes.byref(txn)) == 0
    assert lib.mdb_dbi_open(txn, b"keys", 0, ctypes.byref(dbi)) == 0
    kb, vb = ctypes.create_string_buffer(access_key.encode()), ctypes.create_string_buffer(rec)
    k = Val(len(access_key), ctypes.cast(kb, ctypes.c_void_p))
    v = Val(len(rec), ctypes.cast(vb, ctypes.c_void_p))
    assert lib.mdb_put(txn, dbi, ctypes.byref(k), ctypes.byref(v), 0) == 0
    assert lib.mdb_txn_commit(txn) == 0
    lib.mdb_env_close(env)


def test_key_record_of_the_previous_version_still_loads(make_server):
    srv = make_server().start()
    s3 = s3_client(srv.endpoint)
    s3.create_bucket(Bucket="old")
    s3.put_object(Bucket="old", Key="k", Body=b"from before")
    group_key(srv, "kept", "2MB/s")
    assert srv.stop() == 0
    _put_v1_key_record(srv.data_dir, "legacy-reader", "legacy-secret-0123456789", "readonly")
    srv.start()
    c = s3_client(srv.endpoint, "legacy-reader", "legacy-secret-0123456789")
    assert c.get_object(Bucket="old", Key="k")["Body"].read() == b"from before"
    listed = {k["access_key"]: k for k in json.loads(admin(srv, "key", "ls", "--json").stdout)["keys"]}
    assert listed["legacy-reader"]["rate_group"] == "" and listed["legacy-reader"]["rate"] is None
    assert listed["legacy-reader"]["policy"] == "readonly"
    # The rate survived the restart too.
    assert metrics(srv)[("coffer_rate_group_rate_bytes", "kept")] == 2_000_000


def test_active_responses_follow_downloads_even_when_cut(server, objects):
    """A paced response counts as active while it runs and stops counting when the client goes
    away mid-body (the response is freed, its group's gauge goes back down)."""
    ak, sk = group_key(server, "gauge", "100KB/s")
    url = s3_client(server.endpoint, ak, sk).generate_presigned_url(
        "get_object", Params={"Bucket": "tiers", "Key": "3m"}, ExpiresIn=600)
    r = requests.get(url, stream=True, timeout=60)
    assert r.status_code == 200
    first = r.raw.read(1000)
    assert first == objects["3m"][:1000]
    assert metrics(server)[("coffer_rate_group_active_responses", "gauge")] == 1
    r.close()  # 3 MiB at 100KB/s would take half a minute: cut it
    deadline = time.monotonic() + 20
    while metrics(server)[("coffer_rate_group_active_responses", "gauge")] != 0:
        assert time.monotonic() < deadline, "the cut response still counts as active"
        time.sleep(0.1)
    assert metrics(server)[("coffer_rate_group_bytes_total", "gauge")] < 3 * MiB
