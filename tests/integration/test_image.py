"""The container image (Dockerfile), built by scripts/build-image.sh with buildah and run with
`buildah run --isolation chroot`, as a cluster would run it: the image's own ENTRYPOINT and CMD
(coffer server on 0.0.0.0:9000, data in /data), root keys from files through
COFFER_ROOT_USER_FILE/COFFER_ROOT_PASSWORD_FILE, and the HEALTHCHECK's own command. Each server
runs in a network namespace of its own (chroot isolation shares the caller's, and port 9000 of
this machine may be anyone's); the test reaches it from a thread that joined that namespace.

Checked: the image's size (goal under 100 MB), its configuration, that it holds coffer and what
it loads but no shell or package manager, that the server runs as uid/gid 10001 and answers
/health/ready, signed PUT and GET and nothing unsigned, that every role (server, console,
snapshot, mirror) runs from the one image, a snapshot and a mirror over S3 from inside it.

Needs root and buildah (scripts/install-deps.sh test installs buildah and debootstrap): it fails
without them rather than skip, so that CI cannot pass without running it. Its cost is the
image build: seconds when buildah's layers are cached, a few minutes on a machine that never
built it (docs/IMAGE.md)."""
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, s3_client

TAG = "coffer:dev"
USER_KEY = "image-root"
SECRET_KEY = "image-secret-0123456789abcdefghij"
MAX_IMAGE_BYTES = 100 * 1000 * 1000
CLONE_NEWNET = 0x40000000


@pytest.fixture(scope="module")
def image():
    assert os.geteuid() == 0, "the image test runs as root (buildah's store)"
    for tool in ("buildah", "debootstrap", "unshare", "nsenter", "ip"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/install-deps.sh test"
    started = time.monotonic()
    p = subprocess.run([os.path.join(ROOT, "scripts", "build-image.sh"), TAG], capture_output=True,
                       text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-6000:]
    print(f"image {TAG} built in {time.monotonic() - started:.0f}s")
    return TAG


def inspect(tag):
    p = subprocess.run(["buildah", "inspect", "--type", "image", tag], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def config(image):
    return inspect(image)["Docker"]["config"]


@pytest.fixture()
def container(image):
    """A working container of the image; its /data is its own, removed at the end."""
    p = subprocess.run(["buildah", "from", "--pull-never", "--name",
                        f"coffer-image-test-{os.getpid()}-{time.monotonic_ns()}", image],
                       capture_output=True, text=True, check=True)
    name = p.stdout.strip().splitlines()[-1]
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True)


def buildah_run_argv(container, argv, env=None, volumes=(), netns_of=None):
    """`buildah run` of argv in container; in the network namespace of the process netns_of,
    else in a new one with its loopback up."""
    cmd = ["buildah", "run", "--isolation", "chroot"]
    for k, v in (env or {}).items():
        cmd += ["-e", f"{k}={v}"]
    for v in volumes:
        cmd += ["-v", v]
    cmd += [container, "--", *argv]
    if netns_of:
        return ["nsenter", f"--net=/proc/{netns_of}/ns/net", *cmd]
    return ["unshare", "--net", "--", "/bin/sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def run_in(container, *argv, env=None, volumes=(), netns_of=None, timeout=120):
    """argv in the container, to its end."""
    return subprocess.run(buildah_run_argv(container, argv, env, volumes, netns_of),
                          capture_output=True, text=True, timeout=timeout)


def in_netns(pid, fn):
    """fn() in a thread that joined pid's network namespace: sockets it opens live there."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}

    def run():
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def descendant_running(root_pid, exe):
    """The pid of a process below root_pid whose command line starts with exe, else None."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[0] == exe.encode():
                    return pid
        except OSError:
            continue
        todo += children.get(pid, [])
    return None


def status_ids(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


class ImageProcess:
    """argv in container, running on (as buildah_run_argv places it); pid is coffer's own
    process, below buildah run."""

    def __init__(self, container, argv, log_path, env=None, volumes=(), netns_of=None):
        self.argv = argv
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.proc = subprocess.Popen(buildah_run_argv(container, argv, env, volumes, netns_of),
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        self.pid = None
        deadline = time.monotonic() + 60
        while self.pid is None:
            assert self.proc.poll() is None, f"{argv} exited {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, f"no coffer process under buildah run:\n{self.log()}"
            self.pid = descendant_running(self.proc.pid, argv[0])
            time.sleep(0.05)

    def get(self, url):
        def fetch():
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
        return in_netns(self.pid, fetch)

    def wait_ready(self, url, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.argv} exited:\n{self.log()}"
            try:
                if self.get(url)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} not ready:\n{self.log()}")

    def stop(self):
        """SIGTERM to coffer itself (buildah run answers one with SIGKILL); its exit code."""
        os.kill(self.pid, signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log_file.close()
        return code

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


@pytest.fixture()
def secrets_dir(tmp_path):
    d = tmp_path / "secrets"
    d.mkdir()
    (d / "user").write_text(USER_KEY + "\n")
    (d / "password").write_text(SECRET_KEY + "\n")
    # Readable by uid 10001, as a Kubernetes Secret volume with its defaultMode is.
    for f in d.iterdir():
        f.chmod(0o444)
    return d


SECRETS_ENV = {"COFFER_ROOT_USER_FILE": "/run/secrets/user",
               "COFFER_ROOT_PASSWORD_FILE": "/run/secrets/password"}


@pytest.fixture()
def image_server(container, config, secrets_dir, tmp_path):
    """The image's ENTRYPOINT and CMD as they are, the root keys from files."""
    srv = ImageProcess(container, config["Entrypoint"] + config["Cmd"], tmp_path / "server.log",
                       env=SECRETS_ENV, volumes=[f"{secrets_dir}:/run/secrets:ro"])
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


def size_bytes(text):
    """buildah's "69.7 MB" (decimal units) as bytes."""
    m = re.fullmatch(r"([\d.]+)\s*(B|kB|KB|MB|GB)", text.strip())
    assert m, text
    return float(m.group(1)) * {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]


def test_image_is_under_100_mb(image, container):
    p = subprocess.run(["buildah", "images", "--format", "{{.Size}}", image], capture_output=True,
                       text=True, check=True)
    listed = size_bytes(p.stdout.splitlines()[0])
    # The tree itself too, file by file: what a node stores once unpacked.
    mount = subprocess.run(["buildah", "mount", container], capture_output=True, text=True,
                           check=True).stdout.strip()
    try:
        du = int(subprocess.run(["du", "-sb", mount], capture_output=True, text=True,
                                check=True).stdout.split()[0])
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True)
    print(f"image {image}: {listed / 1e6:.1f} MB listed, {du / 1e6:.1f} MB of files")
    assert listed < MAX_IMAGE_BYTES and du < MAX_IMAGE_BYTES, (listed, du)


def test_configuration(config):
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/local/bin/coffer"]
    assert config["Cmd"] == ["server", "--address", "0.0.0.0:9000", "--data", "/data"]
    assert config["WorkingDir"] == "/data"
    assert set(config["Volumes"]) == {"/data"}
    assert set(config["ExposedPorts"]) == {"9000/tcp", "8080/tcp"}
    # Exec form ("CMD", not "CMD-SHELL"): nothing in the image could run a shell form.
    assert config["Healthcheck"]["Test"] == [
        "CMD", "/usr/local/bin/coffer", "health", "--timeout", "5s", "http://127.0.0.1:9000/health/ready"]


def test_holds_coffer_and_its_libraries_but_no_shell_or_package_manager(container):
    mount = subprocess.run(["buildah", "mount", container], capture_output=True, text=True,
                           check=True).stdout.strip()
    try:
        def exists(path):
            return os.path.lexists(os.path.join(mount, path.lstrip("/")))

        for present in ("/usr/local/bin/coffer", "/etc/ssl/certs/ca-certificates.crt",
                        "/usr/share/misc/magic.mgc", "/etc/passwd", "/tmp",
                        "/usr/share/doc/libcurl4/copyright", "/var/lib/dpkg/status.d/libcurl4"):
            assert exists(present), present
        for absent in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/dash", "/usr/bin/apt-get",
                       "/usr/bin/dpkg", "/usr/bin/curl", "/usr/bin/gcc", "/usr/bin/cc",
                       "/usr/bin/env", "/usr/bin/ls", "/usr/include"):
            assert not exists(absent), absent
        # Nothing to run but coffer (shared libraries carry x bits too; the loader is one).
        executables = [path for path in (os.path.join(d, f)[len(mount):] for d, _, files in
                                         os.walk(mount) for f in files)
                       if os.access(mount + path, os.X_OK)
                       and not path.startswith(("/usr/lib/", "/usr/lib64/"))]
        assert executables == ["/usr/local/bin/coffer"], executables
        # No development package got in (no headers, no static libraries, no -dev records).
        packages = os.listdir(os.path.join(mount, "var/lib/dpkg/status.d"))
        assert packages and not [p for p in packages if p.endswith("-dev")], packages
        assert not [p for p in packages if p in ("gcc-12", "cpp-12", "binutils", "bash", "dash")]
        # Stripped: no symbol table left.
        p = subprocess.run(["readelf", "-S", os.path.join(mount, "usr/local/bin/coffer")],
                           capture_output=True, text=True, check=True)
        assert ".symtab" not in p.stdout and ".debug_info" not in p.stdout
        owner = os.stat(os.path.join(mount, "data"))
        assert (owner.st_uid, owner.st_gid) == (10001, 10001)
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True)
    p = run_in(container, "/bin/sh", "-c", "true")
    assert p.returncode != 0 and "no such file" in p.stderr.lower()


def test_build_context_leaves_out_keys_build_dirs_and_git(image, tmp_path):
    """.dockerignore: what a COPY of the context brings, on a tree as a developer's looks."""
    tree = tmp_path / "tree"
    for path in ("var/data/credentials", "build/coffer", "build-asan/coffer", ".git/config",
                 "tests/js/node_modules/x.js", "tests/integration/test_x.py", "bench/out.txt",
                 "src/core/a.c", "src/core/a.o", "src/core/a.c~", "web/index.html",
                 "CMakeLists.txt", "scripts/install-deps.sh", "scripts/run.sh", "tests/crash/p.c"):
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text("x\n")
    shutil.copy(os.path.join(ROOT, ".dockerignore"), tree / ".dockerignore")
    (tree / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    tag = f"localhost/coffer-context-test:{os.getpid()}"
    p = subprocess.run(["buildah", "bud", "--isolation", "chroot", "--quiet", "-t", tag, str(tree)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    ctr = subprocess.run(["buildah", "from", "--pull-never", tag], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    try:
        mount = subprocess.run(["buildah", "mount", ctr], capture_output=True, text=True,
                               check=True).stdout.strip()
        ctx = os.path.join(mount, "ctx")
        copied = sorted(os.path.relpath(os.path.join(d, f), ctx) for d, _, files in os.walk(ctx)
                        for f in files)
    finally:
        subprocess.run(["buildah", "umount", ctr], capture_output=True)
        subprocess.run(["buildah", "rm", ctr], capture_output=True)
        subprocess.run(["buildah", "rmi", tag], capture_output=True)
    assert copied == ["CMakeLists.txt", "scripts/install-deps.sh", "src/core/a.c", "tests/crash/p.c",
                      "web/index.html"], copied


@pytest.mark.parametrize("role", ["server", "console", "snapshot", "mirror", "health"])
def test_every_role_runs_from_the_image(container, role):
    p = run_in(container, "/usr/local/bin/coffer", role, "--help")
    assert p.returncode == 0, p.stderr
    assert f"usage: coffer {role}" in p.stdout + p.stderr


def test_server_from_the_image(image_server, container, secrets_dir, tmp_path):
    srv = image_server
    srv.wait_ready("http://127.0.0.1:9000/health/ready")

    # The non-root user of the image, all four ids, and no capability left.
    status = status_ids(srv.pid)
    assert status["Uid"] == ["10001"] * 4, status["Uid"]
    assert status["Gid"] == ["10001"] * 4, status["Gid"]
    assert status["CapEff"] == ["0000000000000000"]

    def s3_round_trip():
        s3 = s3_client("http://127.0.0.1:9000", USER_KEY, SECRET_KEY)
        s3.create_bucket(Bucket="image-test")
        s3.put_object(Bucket="image-test", Key="dir/hello.txt", Body=b"hello from the image")
        body = s3.get_object(Bucket="image-test", Key="dir/hello.txt")["Body"].read()
        wrong = s3_client("http://127.0.0.1:9000", USER_KEY, "not-the-secret-0123456789abcdef")
        try:
            wrong.get_object(Bucket="image-test", Key="dir/hello.txt")
            refused = None
        except wrong.exceptions.ClientError as e:
            refused = e.response["Error"]["Code"]
        return body, refused

    body, refused = in_netns(srv.pid, s3_round_trip)
    assert body == b"hello from the image"
    assert refused == "SignatureDoesNotMatch"
    status, _ = srv.get("http://127.0.0.1:9000/image-test/dir/hello.txt")
    assert status == 403

    # What the server wrote in /data belongs to its user.
    data = f"/proc/{srv.pid}/root/data"
    owners = {(st.st_uid, st.st_gid) for st in
              (os.lstat(os.path.join(d, f)) for d, dirs, files in os.walk(data) for f in dirs + files)}
    assert owners == {(10001, 10001)}, owners

    # The HEALTHCHECK exactly as the image declares it, run in the image beside the server.
    health = inspect(TAG)["Docker"]["config"]["Healthcheck"]["Test"][1:]
    p = run_in(container, *health, netns_of=srv.pid)
    assert p.returncode == 0, p.stderr

    # The client roles from the image against the server: a snapshot of a directory of the
    # image into the bucket, its listing, and a mirror of the bucket into the container's /tmp.
    client_env = {"COFFER_ENDPOINT": "http://127.0.0.1:9000",
                  "COFFER_ACCESS_KEY_FILE": "/run/secrets/user",
                  "COFFER_SECRET_KEY_FILE": "/run/secrets/password"}
    secrets = [f"{secrets_dir}:/run/secrets:ro"]
    p = run_in(container, "/usr/local/bin/coffer", "snapshot", "create", "/usr/share/doc",
               "s3://image-test/snapshots/docs", "--no-progress", env=client_env, volumes=secrets,
               netns_of=srv.pid)
    assert p.returncode == 0, p.stderr
    p = run_in(container, "/usr/local/bin/coffer", "snapshot", "ls", "s3://image-test/snapshots/docs",
               "--json", env=client_env, volumes=secrets, netns_of=srv.pid)
    assert p.returncode == 0, p.stderr
    listed = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(listed) == 1 and listed[0]["files"] > 10, p.stdout

    # The console from the image on 8080 beside the server, listing that snapshot's chain.
    console = ImageProcess(container, ["/usr/local/bin/coffer", "console", "--address", "0.0.0.0:8080",
                                       "--repository", "s3://image-test/snapshots"],
                           tmp_path / "console.log", env=client_env, volumes=secrets, netns_of=srv.pid)
    try:
        console.wait_ready("http://127.0.0.1:8080/health/ready")
        status, body = console.get("http://127.0.0.1:8080/api/v1/chains")
        assert status == 200, body
        assert [c["name"] for c in json.loads(body)["chains"]] == ["docs"], body
    finally:
        assert console.stop() == 0, console.log()[-4000:]
    p = run_in(container, "/usr/local/bin/coffer", "mirror", "s3://image-test/dir", "/tmp/mirror",
               env=client_env, volumes=secrets, netns_of=srv.pid)
    assert p.returncode == 0, p.stderr
    with open(f"/proc/{srv.pid}/root/tmp/mirror/hello.txt", "rb") as f:
        assert f.read() == b"hello from the image"

    assert srv.stop() == 0, srv.log()[-4000:]
    log = srv.log()
    assert "coffer server ready" in log and SECRET_KEY not in log, log[-4000:]
    # With no server, the health check says so (in a namespace of its own, where nothing
    # listens on 9000).
    p = run_in(container, *health)
    assert p.returncode == 1, p.stderr
    assert "cannot reach" in p.stderr
