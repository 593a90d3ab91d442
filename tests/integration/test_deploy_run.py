"""deploy/'s command lines run for real: each CronJob of the dev overlay as a pod would run it
(its init containers in order, then its container), the store's StatefulSet and the console's
Deployment, against a real coffer server, a real PostgreSQL and a stand-in Pushgateway.

The command and args are taken from the rendered manifests exactly as written. Only what a
kubelet provides is mapped: each volume's mountPath to a directory of the test (Secret volumes
filled with the test's secrets), the env built from the manifest (values, ConfigMap and Secret
references, $(VAR) expansion), and the addresses the test's processes listen on
(COFFER_ENDPOINT, PUSHGATEWAY_URL, PGHOST/PGPORT, the port of the servers' --address). Run as
root, every process runs as the pod's uid/gid (setpriv) on volumes owned as the kubelet owns
them for fsGroup: a manifest whose non-root user could not read its Secret files or write its
volumes fails here. About 8 s in all.
"""
import datetime
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.request

import pytest

import deploy_checks as dc
from conftest import (ACCESS_KEY, COFFER_BIN, SANITIZER_MARKERS, SECRET_KEY, free_port, s3_client,
                      wait_for_health)
from test_snapshot_postgres import PG_RESTORE, PGBIN, PSQL, SCHEMA, PgCluster, sh

# What each container's command[0] is on this machine.
PROGRAMS = {dc.COFFER_BINARY: COFFER_BIN, "pg_dump": f"{PGBIN}/pg_dump", "curl": "/usr/bin/curl"}
BACKUP_KEY = os.urandom(32)
SANITIZER_OPTIONS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS")


@pytest.fixture(scope="module")
def objects():
    return dc.render(os.path.join(dc.DEPLOY, "overlays", "dev"))


def find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


class Pushgateway:
    """Records what is pushed, as a Pushgateway would receive it (POST /metrics/job/NAME)."""

    def __init__(self):
        self.pushes = []
        pushes = self.pushes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                pushes.append((self.path, body.decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture()
def make_pod():
    made = []

    def make(*args, **kw):
        made.append(Pod(*args, **kw))
        return made[-1]
    yield make
    for pod in made:
        pod.cleanup()


@pytest.fixture(scope="module")
def pushgateway():
    pg = Pushgateway()
    yield pg
    pg.httpd.shutdown()


class Pod:
    """One pod of a rendered workload: its volumes as directories of a private directory under
    /tmp. Run as root (as `make test` is), each process runs as the uid and gids the pod's
    securityContext names, and the volumes are owned as a kubelet owns them for fsGroup
    (group-owned, set-gid directories, Secret files group-readable with their defaultMode), so
    that the non-root user must really be able to read and write what it needs."""

    def __init__(self, objects, workload, secrets, claims=None):
        self.spec = dc.pod_spec(workload)
        self.namespace = workload["metadata"]["namespace"]
        self.objects = objects
        self.secrets = secrets
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="coffer-pod-"))
        os.chmod(self.base, 0o755)
        psc = self.spec.get("securityContext", {})
        self.fs_group = psc.get("fsGroup")
        self.volumes = {}
        claim_templates = [{"name": t["metadata"]["name"], "emptyDir": {}}
                           for t in workload["spec"].get("volumeClaimTemplates", [])]
        for v in [*self.spec.get("volumes", []), *claim_templates]:
            d = self.base / "volumes" / v["name"]
            d.mkdir(parents=True)
            if "secret" in v:
                mode = v["secret"].get("defaultMode", 0o644) | (0o040 if self.fs_group is not None else 0)
                for key, value in secrets[v["secret"]["secretName"]].items():
                    (d / key).write_bytes(value)
                    self.own(d / key, mode)
                self.own(d, 0o755)
            else:
                if "persistentVolumeClaim" in v:
                    (claims or {})[v["persistentVolumeClaim"]["claimName"]](d)
                else:
                    assert "emptyDir" in v or "nfs" in v, f"volume kind of {v}"
                for top, dirs, files in os.walk(d):
                    for name in dirs:
                        self.own(os.path.join(top, name), 0o2775)
                    for name in files:
                        self.own(os.path.join(top, name), 0o664)
                self.own(d, 0o2775)
            self.volumes[v["name"]] = d
        # The image's binary, where a uid of the pod can run it.
        os.mkdir(self.base / "bin", 0o755)
        self.programs = dict(PROGRAMS)
        self.programs[dc.COFFER_BINARY] = str(self.base / "bin" / "coffer")
        shutil.copy(COFFER_BIN, self.programs[dc.COFFER_BINARY])

    def own(self, path, mode):
        os.chmod(path, mode)
        if os.geteuid() == 0 and self.fs_group is not None:
            os.chown(path, 0, self.fs_group)

    def identity(self, c):
        """setpriv's arguments to run c as the pod's user (nothing when not root)."""
        if os.geteuid() != 0:
            return []
        psc, sc = self.spec.get("securityContext", {}), c.get("securityContext", {})
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        gid = sc.get("runAsGroup", psc.get("runAsGroup", uid))
        groups = [str(g) for g in (self.fs_group, *psc.get("supplementalGroups", [])) if g is not None]
        assert uid, f"{c['name']}: runs as root"
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}",
                f"--groups={','.join(groups)}" if groups else "--clear-groups", "--"]

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def config(self, name, key=None):
        data = find(self.objects, "ConfigMap", name)["data"]
        return data if key is None else data[key]

    def translate(self, c, text):
        """A mountPath in a string becomes the directory of its volume: one pass, longest first
        (a volume's directory may itself lie below another mountPath, such as /tmp)."""
        mounts = sorted(c.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))
        if not mounts:
            return text
        assert not any("subPath" in m for m in mounts)
        where = {m["mountPath"]: str(self.volumes[m["name"]]) for m in mounts}
        pattern = r"(?<![\w/])(" + "|".join(re.escape(m["mountPath"]) for m in mounts) + r")(?=/|$)"
        return re.sub(pattern, lambda m: where[m.group(1)], text)

    def environment(self, c, addresses):
        """The env a kubelet gives the container; addresses replace the manifest's hosts only
        for variables the manifest sets."""
        env = {}
        for src in c.get("envFrom", []):
            env.update(self.config(src["configMapRef"]["name"]))
        for e in c.get("env", []):
            ref = e.get("valueFrom", {})
            if "value" in e:
                value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), e["value"])
            elif "configMapKeyRef" in ref:
                value = self.config(ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"])
            elif "fieldRef" in ref:
                assert ref["fieldRef"]["fieldPath"] == "metadata.namespace", ref
                value = self.namespace
            else:
                value = self.secrets[ref["secretKeyRef"]["name"]][ref["secretKeyRef"]["key"]].decode()
            env[e["name"]] = value
        for k, v in addresses.items():
            assert k in env, f"{c['name']}: the manifest sets no {k}"
            env[k] = v
        env = {k: self.translate(c, v) for k, v in env.items()}
        # What the image provides: a PATH and a home; nothing of this machine's environment but
        # the sanitizers' settings of `make test`.
        env.update(PATH="/usr/bin:/bin", HOME=str(self.base))
        env.update({k: v for k, v in os.environ.items() if k in SANITIZER_OPTIONS})
        return env

    def argv(self, c, env):
        command = c["command"]
        assert command[0] in self.programs, f"{c['name']}: unknown program {command[0]}"
        args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in [*command[1:], *c.get("args", [])]]
        return [*self.identity(c), self.programs[command[0]], *[self.translate(c, a) for a in args]]

    def run_to_completion(self, addresses):
        """The init containers in order, then the containers, each to exit 0, as a Job's pod."""
        outputs = {}
        for c in [*self.spec.get("initContainers", []), *self.spec["containers"]]:
            env = self.environment(c, addresses.get(c["name"], {}))
            p = subprocess.run(self.argv(c, env), env=env, capture_output=True, text=True, timeout=120,
                               cwd=self.base)
            assert p.returncode == 0, f"container {c['name']} exited {p.returncode}:\n{p.stderr}"
            assert not any(m in p.stderr for m in SANITIZER_MARKERS), p.stderr
            for s in self.secrets.values():
                for v in s.values():
                    assert v.decode(errors="replace") not in p.stdout + p.stderr, f"{c['name']} printed a secret"
            outputs[c["name"]] = p
        return outputs

    def start(self, c, addresses, port):
        """A long-running container; only the port of its --address changes (the manifest's
        host part, empty for every address, is kept)."""
        env = self.environment(c, addresses)
        argv = self.argv(c, env)
        i = argv.index("--address", len(self.identity(c)))
        argv[i + 1] = re.sub(r":\d+$", f":{port}", argv[i + 1])
        log = open(self.base / f"{c['name']}.log", "wb")
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base), log


def s3_secrets():
    return {"coffer-s3-credentials": {"access-key": ACCESS_KEY.encode(), "secret-key": SECRET_KEY.encode()},
            "coffer-backup-key": {"key": BACKUP_KEY}}


def coffer(*args, env_extra=None, check=True):
    env = dict(os.environ, COFFER_ACCESS_KEY=ACCESS_KEY, COFFER_SECRET_KEY=SECRET_KEY, **(env_extra or {}))
    p = subprocess.run([COFFER_BIN, *args], env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"coffer {args}: {p.stderr}"
    return p


def snapshots(repo, env):
    return [json.loads(line) for line in coffer("snapshot", "ls", repo, "--json", env_extra=env).stdout.splitlines()]


def pushed(pushgateway, job):
    bodies = [b for path, b in pushgateway.pushes if path == f"/metrics/job/{job}/kubernetes_namespace/coffer-dev"]
    assert bodies, f"nothing pushed for {job}: {pushgateway.pushes}"
    p = subprocess.run(["promtool", "check", "metrics"], input=bodies[-1], capture_output=True, text=True,
                       timeout=30)
    # The Pushgateway refuses what does not parse; lint remarks (a missing HELP) are fine.
    assert "parsing error" not in p.stdout + p.stderr, p.stdout + p.stderr
    return bodies[-1]


def addresses(server, pushgateway):
    return {"snapshot": {"COFFER_ENDPOINT": server.endpoint}, "mirror": {"COFFER_ENDPOINT": server.endpoint},
            "prune": {"COFFER_ENDPOINT": server.endpoint},
            "push-metrics": {"PUSHGATEWAY_URL": pushgateway.url}}


def chain_files(d):
    (d / "data" / "blockstore.db").mkdir(parents=True)
    (d / "data" / "blockstore.db" / "000001.log").write_bytes(os.urandom(300_000))
    (d / "config").mkdir()
    (d / "config" / "genesis.json").write_text('{"chain_id": "noble-1"}\n')


def test_chain_snapshot_cronjob(objects, server, s3, pushgateway, make_pod, tmp_path):
    s3.create_bucket(Bucket="snapshots")
    job = find(objects, "CronJob", "coffer-snapshot-chain")
    pod = make_pod(objects, job, s3_secrets(), claims={"chain-data": chain_files})
    pod.run_to_completion(addresses(server, pushgateway))
    env = {"COFFER_ENDPOINT": server.endpoint}
    snaps = snapshots("s3://snapshots/noble", env)
    assert len(snaps) == 1 and snaps[0]["compression"] == "lz4", snaps
    assert "chain=noble" in json.dumps(snaps[0]) or snaps[0].get("labels", {}).get("chain") == "noble", snaps[0]
    out = tmp_path / "restored"
    coffer("snapshot", "restore", "s3://snapshots/noble@latest", str(out), "--no-progress", env_extra=env)
    original = pod.volumes["chain-data"]
    for rel in ("data/blockstore.db/000001.log", "config/genesis.json"):
        assert (out / rel).read_bytes() == (original / rel).read_bytes()
    body = pushed(pushgateway, "coffer-snapshot-chain")
    assert re.search(r'^coffer_snapshot_success\{command="create",namespace="noble"\} 1$', body, re.M), body


@pytest.fixture(scope="module")
def postgres():
    cluster = PgCluster()
    try:
        cluster.start()
        cluster.createdb("app")
        sh([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "app", "-1", "-f", "-"], env=cluster.env,
           input=SCHEMA.encode())
        yield cluster
    finally:
        cluster.stop()


def test_postgres_backup_cronjob(objects, server, s3, pushgateway, postgres, make_pod, tmp_path):
    s3.create_bucket(Bucket="backups")
    job = find(objects, "CronJob", "coffer-backup-postgres")
    secrets = dict(s3_secrets(), **{"coffer-postgres": {"user": b"postgres", "password": b"not-checked-trust-auth"}})
    pod = make_pod(objects, job, secrets)
    where = addresses(server, pushgateway)
    where["pg-dump"] = {"PGHOST": "127.0.0.1", "PGPORT": str(postgres.port)}
    outputs = pod.run_to_completion(where)
    assert "prune" in outputs, "the job prunes after the snapshot"
    env = {"COFFER_ENDPOINT": server.endpoint}
    snaps = snapshots("s3://backups/postgres/app", env)
    assert len(snaps) == 1 and snaps[0]["encrypted"] is True, snaps  # within 30 days: kept
    # Encrypted: no key, no data.
    refused = coffer("snapshot", "restore", "s3://backups/postgres/app@latest", str(tmp_path / "nokey"),
                     "--no-progress", env_extra=env, check=False)
    assert refused.returncode == 5, refused.stderr
    (tmp_path / "key").write_bytes(BACKUP_KEY)
    coffer("snapshot", "restore", "s3://backups/postgres/app@latest", str(tmp_path / "out"), "--no-progress",
           "--encrypt-key-file", str(tmp_path / "key"), env_extra=env)
    dump = tmp_path / "out" / "app.pgdump"
    postgres.createdb("restored")
    sh([PG_RESTORE, "--no-owner", "-d", "restored", str(dump)], env=postgres.env)
    assert postgres.contents("restored") == postgres.contents("app")
    body = pushed(pushgateway, "coffer-backup-postgres")
    assert re.search(r'^coffer_snapshot_success\{command="create",namespace="app"\} 1$', body, re.M), body


def test_nfs_mirror_cronjob(objects, server, s3, pushgateway, make_pod):
    if "snapshots" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="snapshots")
    s3.put_object(Bucket="snapshots", Key="mirror-check/a.txt", Body=b"alpha\n")
    s3.put_object(Bucket="snapshots", Key="mirror-check/deep/b.bin", Body=os.urandom(70_000))
    job = find(objects, "CronJob", "coffer-mirror-nfs")
    pod = make_pod(objects, job, s3_secrets())
    def today():
        return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    days = {today()}
    pod.run_to_completion(addresses(server, pushgateway))
    days.add(today())  # the run may straddle midnight (UTC)
    made = os.listdir(pod.volumes["mirror"])
    assert len(made) == 1 and made[0] in days, made
    copy = pod.volumes["mirror"] / made[0]
    if os.geteuid() == 0:
        assert copy.stat().st_uid == dc.COFFER_UID, "the mirror ran as the pod's user"
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="snapshots")
            for o in page.get("Contents", [])]
    assert "mirror-check/a.txt" in keys
    for key in keys:
        body = s3.get_object(Bucket="snapshots", Key=key)["Body"].read()
        assert (copy / key).read_bytes() == body, key
    body = pushed(pushgateway, "coffer-mirror-nfs")
    assert "coffer_mirror_last_success_timestamp_seconds{" in body


def probe_paths(c):
    return [c[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")]


def test_store_statefulset_reads_root_credentials_from_the_secret_files(objects, make_pod):
    user, password = "store-root", os.urandom(18).hex()
    sts = find(objects, "StatefulSet", "coffer-store")
    pod = make_pod(objects, sts, {"coffer-root": {"user": user.encode(), "password": password.encode()}})
    data = pod.volumes["data"]  # the claim template's volume
    c = pod.spec["containers"][0]
    port = free_port()
    proc, log = pod.start(c, {}, port)
    try:
        url = f"http://127.0.0.1:{port}"
        for path in probe_paths(c):
            wait_for_health(proc, url + path, "coffer server", lambda: (pod.base / "server.log").read_text(), 20)
        good = s3_client(url, user, password)
        good.create_bucket(Bucket="k8s")
        good.put_object(Bucket="k8s", Key="x", Body=b"from the secret files")
        assert good.get_object(Bucket="k8s", Key="x")["Body"].read() == b"from the secret files"
        assert os.listdir(data), "the server keeps its data in the volume mounted at /data"
        if os.geteuid() == 0:
            assert {(data / f).stat().st_uid for f in os.listdir(data)} == {dc.COFFER_UID}
        with pytest.raises(Exception) as refused:
            s3_client(url, user, "not-" + password).list_buckets()
        assert "SignatureDoesNotMatch" in str(refused.value)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()
    log_text = (pod.base / "server.log").read_text()
    assert password not in log_text and not any(m in log_text for m in SANITIZER_MARKERS), log_text[-4000:]


def test_console_deployment_serves_with_its_secret_files(objects, server, make_pod, tmp_path):
    users = tmp_path / "users"
    p = subprocess.run([COFFER_BIN, "console", "user", "add", "alice", "--tier", "premium", "--users-file", str(users),
                        "--cost", "4"], input=b"correct horse battery", capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    secrets = dict(s3_secrets(), **{"coffer-console": {"session-secret": os.urandom(24).hex().encode(),
                                                       "users": users.read_bytes()}})
    deployment = find(objects, "Deployment", "coffer-console")
    pod = make_pod(objects, deployment, secrets)
    c = pod.spec["containers"][0]
    port = free_port()
    proc, log = pod.start(c, {"COFFER_ENDPOINT": server.endpoint}, port)
    try:
        url = f"http://127.0.0.1:{port}"
        for path in probe_paths(c):
            wait_for_health(proc, url + path, "coffer console", lambda: (pod.base / "console.log").read_text(), 30)
        req = urllib.request.Request(url + "/api/v1/login", method="POST",
                                     data=json.dumps({"username": "alice", "password": "correct horse battery"}).encode(),
                                     headers={"Content-Type": "application/json"})
        # The users and the session secret came from the Secret's files: a login works.
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and r.headers.get("Set-Cookie"), r.headers
            assert json.load(r)["tier"] == "premium"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        log.close()
    log_text = (pod.base / "console.log").read_text()
    assert "correct horse" not in log_text and not any(m in log_text for m in SANITIZER_MARKERS), log_text[-4000:]
