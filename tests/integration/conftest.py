"""Fixtures shared by every integration suite: a real coffer server on a free loopback port.

COFFER_BIN names the binary under test (`make test` runs the suites once against the release
build and once against the ASan+UBSan build, and the threaded ones against the TSan build).
Each module gets a fresh server and data dir; at
teardown the server must stop cleanly on SIGTERM and its stderr must hold no sanitizer report
and no secret.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COFFER_BIN = os.path.abspath(os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "coffer")))
ACCESS_KEY = "itest-root"
SECRET_KEY = "itest-secret-0123456789abcdefghij"
REGION = "us-east-1"
# Debian's packages, never whatever a developer has earlier on PATH.
AWS_BIN = "/usr/bin/aws"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ThreadSanitizer")


def scrubbed_env(**extra):
    """os.environ without COFFER_* and AWS_* (a developer's own settings must not reach the
    binary under test), with extra added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
    env.update(extra)
    return env


def run_checked(cmd, *, env, timeout, check=None, text=False, input=None, secrets=(SECRET_KEY,)):
    """Runs cmd to its end: its stderr must hold no sanitizer report and its output none of
    secrets; with check, it must exit with that code."""
    p = subprocess.run(cmd, input=input, capture_output=True, text=text, env=env, timeout=timeout)
    out, err = (p.stdout, p.stderr) if text else (p.stdout.decode("utf-8", "replace"),
                                                  p.stderr.decode("utf-8", "replace"))
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err[-8000:]
    for secret in secrets:
        assert secret not in out + err, f"a secret appeared in the output of {cmd}"
    if check is not None:
        assert p.returncode == check, (f"{cmd} exited {p.returncode}, not {check}:\n"
                                       f"stdout:\n{out}\nstderr:\n{err}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(proc, url, what, log, timeout):
    """Until url answers 200; raises with the log when proc exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url}:\n" + log())


class CofferServer:
    """One coffer server process; restartable on the same data dir and port (crash tests)."""

    def __init__(self, data_dir, log_dir, extra_args=(), env=None):
        self.data_dir = str(data_dir)
        self.log_dir = str(log_dir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.update({"COFFER_ROOT_USER": ACCESS_KEY, "COFFER_ROOT_PASSWORD": SECRET_KEY})
        self.env.update(env or {})
        self.proc = None
        self.starts = 0
        self.stderr_paths = []

    def start(self, timeout=20):
        self.starts += 1
        path = os.path.join(self.log_dir, f"server-{self.starts}.log")
        self.stderr_paths.append(path)
        self._stderr = open(path, "wb")
        self.proc = subprocess.Popen(
            [COFFER_BIN, "server", "--address", f"127.0.0.1:{self.port}", "--data", self.data_dir,
             "--log-level", "info", *self.extra_args],
            stdout=self._stderr, stderr=subprocess.STDOUT, env=self.env)
        wait_for_health(self.proc, self.endpoint + "/health/ready", "coffer server", self.log, timeout)
        return self

    def stop(self, timeout=30):
        """SIGTERM; returns the exit code. The server must finish in-flight work and exit 0."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._stderr.close()
            self.proc = None
        return code

    def kill(self):
        """SIGKILL: the crash the durability guarantees are about."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._stderr.close()
        self.proc = None

    def log(self):
        out = []
        for p in self.stderr_paths:
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "".join(out)

    def assert_clean_log(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in server log:\n{text[-8000:]}"
        assert SECRET_KEY not in text, "the secret key appeared in the server log"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("coffer")
    srv = CofferServer(base / "data", base)
    srv.start()
    yield srv
    code = srv.stop()
    srv.assert_clean_log()
    assert code == 0, f"server exited with {code} on SIGTERM:\n{srv.log()[-4000:]}"


@pytest.fixture()
def make_server(tmp_path):
    """For tests that need their own server (restarts, kills, special flags)."""
    made = []

    def make(extra_args=(), env=None):
        srv = CofferServer(tmp_path / f"data{len(made)}", tmp_path, extra_args, env)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        if srv.proc is not None:
            srv.stop()
        srv.assert_clean_log()


@pytest.fixture(scope="module")
def aws_env(server, tmp_path_factory):
    """Environment for /usr/bin/aws: credentials, region, and no multipart (not built yet)."""
    cfg = tmp_path_factory.mktemp("awscfg") / "config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 5GB\n"
                   "  multipart_chunksize = 5GB\n")
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(cfg),
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_PAGER": "",
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def s3_client(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, **config):
    import boto3
    from botocore.config import Config
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"max_attempts": 1}, **config))


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server.endpoint)


class CofferConsole:
    """One `coffer console` process on a free loopback port (tests/integration/test_console_*.py).

    args are the console's flags after --address; env is added to a copy of os.environ (the
    secrets go there, never in args). At stop it must exit 0 on SIGTERM, and its log must hold no
    sanitizer report and none of the strings in `secrets`.
    """

    def __init__(self, log_dir, args=(), env=None, secrets=()):
        self.log_dir = str(log_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.secrets = [s for s in secrets if s]
        self.proc = None
        self.logpath = os.path.join(self.log_dir, f"console-{self.port}.log")

    def start(self, ready=True, timeout=30):
        self._stderr = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [COFFER_BIN, "console", "--address", f"127.0.0.1:{self.port}", *self.args],
            stdout=self._stderr, stderr=subprocess.STDOUT, env=self.env)
        path = "/health/ready" if ready else "/health/live"
        wait_for_health(self.proc, self.url + path, "coffer console", self.log, timeout)
        return self

    stop = CofferServer.stop  # SIGTERM; the exit code

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def assert_clean_log(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in console log:\n{text[-8000:]}"
        for s in self.secrets:
            assert s not in text, "a secret appeared in the console log"


@pytest.fixture()
def make_console(tmp_path):
    """Consoles started by a test, stopped (exit 0, clean log) at its end."""
    made = []

    def make(args=(), env=None, secrets=(), ready=True):
        con = CofferConsole(tmp_path, args, env, secrets)
        made.append(con)
        return con.start(ready=ready)

    yield make
    for con in made:
        if con.proc is not None:
            code = con.stop()
            assert code == 0, f"console exited with {code} on SIGTERM:\n{con.log()[-4000:]}"
        con.assert_clean_log()


@pytest.fixture(scope="module")
def s3rver(tmp_path_factory):
    """A running s3rver (tests/integration/foreign_s3.py), no bucket made; skips the module when
    s3rver is not installed."""
    import shutil

    from foreign_s3 import S3RVER_JS, S3rver
    node = shutil.which("node")
    if not node or not os.path.exists(S3RVER_JS):
        pytest.skip("no foreign S3 server: s3rver is not installed in tests/js/node_modules "
                    "(scripts/install-deps.sh installs Node.js and runs npm ci in tests/js)")
    srv = S3rver(tmp_path_factory.mktemp("s3rver"))
    srv.start(node)
    try:
        yield srv
    finally:
        srv.stop()
