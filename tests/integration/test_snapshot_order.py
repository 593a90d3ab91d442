"""One order of snapshots for every command: several snapshots made within one second, in one
namespace, must be named the same newest by @latest (restore, show), ls (last line), verify's
default and prune --keep-last 1 (the survivor). The order is the manifest's creation time to the
nanosecond, then the id; a manifest that records whole seconds only sorts as .000000000."""
import json
import os
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY

PER_SECOND = 4


def run(*args, env, stdin=None):
    p = subprocess.run([COFFER_BIN, "snapshot", *args], env=env, input=stdin, capture_output=True, timeout=120)
    assert p.returncode == 0, (args, p.stderr.decode())
    return p.stdout.decode()


@pytest.fixture(params=["s3", "dir"])
def repo(request, server, s3, tmp_path):
    """(url, env, put_manifest): put_manifest(id, text) replaces a manifest behind coffer's back."""
    if request.param == "dir":
        root = tmp_path / "repo" / "ns"
        return str(root), dict(os.environ), lambda sid, text: (root / f"{sid}.json").write_text(text)
    if not any(b["Name"] == "order" for b in s3.list_buckets()["Buckets"]):
        s3.create_bucket(Bucket="order")
    prefix = f"{tmp_path.name}/ns"
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY,
               COFFER_SECRET_KEY=SECRET_KEY)
    return f"s3://order/{prefix}", env, lambda sid, text: s3.put_object(
        Bucket="order", Key=f"{prefix}/{sid}.json", Body=text.encode())


def same_second_snapshots(url, env):
    """Starts PER_SECOND creates together just after a second begins, until they all fall in one
    second; returns {id: content}."""
    for _ in range(5):
        time.sleep(1.02 - time.time() % 1)
        procs = {}
        for i in range(PER_SECOND):
            data = f"dump {i} {time.time()}".encode()
            p = subprocess.Popen([COFFER_BIN, "snapshot", "create", "-", url], env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs[p] = data
        made = {}
        for p, data in procs.items():
            out, err = p.communicate(data, timeout=120)
            assert p.returncode == 0, err.decode()
            made[out.decode().strip()] = data
        assert len(made) == PER_SECOND  # no two ids alike
        if len({sid[:16] for sid in made}) == 1:
            return made
        for sid in made:
            run("rm", f"{url}@{sid}", env=env)
    pytest.fail("the machine is too slow to start 4 snapshots within one second")


def manifest(url, env, sid):
    return json.loads(run("show", f"{url}@{sid}", env=env))


def expected_order(url, env, ids):
    def key(sid):
        m = manifest(url, env, sid)
        return (m["created"], m.get("created_ns", 0), sid)
    return sorted(ids, key=key)


def assert_all_agree(url, env, made, order):
    newest = order[-1]
    listed = [json.loads(line)["id"] for line in run("ls", url, "--json", env=env).splitlines()]
    assert listed == order
    assert run("restore", f"{url}@latest", "-", env=env).encode() == made[newest]
    assert run("restore", url, "-", env=env).encode() == made[newest]  # no @: the latest too
    assert manifest(url, env, "latest")["id"] == newest
    assert run("verify", url, env=env).strip() == f"{newest}: ok"
    assert [line.split(":")[0] for line in run("verify", url, "--all", env=env).splitlines()] == order
    dry = run("prune", url, "--keep-last", "1", "--dry-run", env=env)
    assert f"keep   {newest} (last)" in dry
    assert sorted(line.split()[-1] for line in dry.splitlines() if line.startswith("would remove")) == \
        sorted(order[:-1])


def prune_keeps(url, env, newest):
    run("prune", url, "--keep-last", "1", env=env)
    assert [json.loads(line)["id"] for line in run("ls", url, "--json", env=env).splitlines()] == [newest]


def test_snapshots_of_one_second_sort_alike_everywhere(repo):
    url, env, _ = repo
    made = same_second_snapshots(url, env)
    for sid in made:
        m = manifest(url, env, sid)
        assert 0 <= m["created_ns"] < 10**9 and m["created"].replace("-", "").replace(":", "") == sid[:16]
    order = expected_order(url, env, made)
    assert len({manifest(url, env, sid)["created_ns"] for sid in made}) == PER_SECOND
    assert_all_agree(url, env, made, order)
    prune_keeps(url, env, order[-1])


def test_manifests_of_whole_seconds_sort_as_zero_nanoseconds(repo):
    """Manifests written before created_ns: the newest loses its fraction and becomes the oldest
    of its second; two of them at the same instant are told apart by id."""
    url, env, put_manifest = repo
    made = same_second_snapshots(url, env)
    by_time = expected_order(url, env, made)
    stripped = by_time[-2:]
    for sid in stripped:
        m = manifest(url, env, sid)
        del m["created_ns"]
        put_manifest(sid, json.dumps(m, indent=2))
    order = expected_order(url, env, made)
    assert order == sorted(stripped) + by_time[:-2]
    assert_all_agree(url, env, made, order)
    prune_keeps(url, env, by_time[-3])
