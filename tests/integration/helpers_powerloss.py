"""Power-loss crash runs: a coffer server with tests/crash/powerfail.c preloaded, killed at a
chosen file-system call, and its data directory rebuilt as a power cut would leave it
(docs/internals/store.md, "Power-loss testing").

A run: copy a baseline data directory, start the server with the layer (which takes the copy as
durable), note how many calls it has counted once it is ready, arm the crash at that count plus
an offset, run one operation with boto3, SIGKILL the server if it still lives, then rebuild the
directory from the shadow alone (`recover`) and hand it to a fresh server without the layer.
"""
import os
import shutil
import signal
import subprocess

from conftest import ACCESS_KEY, COFFER_BIN, ROOT, SECRET_KEY, free_port, wait_for_health


def powerfail_library():
    """The layer built beside the binary under test, or by the release build."""
    for d in (os.environ.get("POWERFAIL_LIB_DIR"), os.path.dirname(COFFER_BIN), os.path.join(ROOT, "build")):
        if d and os.path.exists(os.path.join(d, "libpowerfail.so")):
            return os.path.join(d, "libpowerfail.so")
    return None


def recover(shadow, dest):
    """Builds at dest (which must not exist) the directory tree the shadow says is durable."""
    with open(os.path.join(shadow, "root")) as f:
        root = f.read().strip()
    os.mkdir(dest, 0o700)
    _build_dir(shadow, root, dest)


def _build_dir(shadow, ref, path):
    listing = os.path.join(shadow, "dirs", ref)
    if not os.path.exists(listing):
        return  # a directory whose entries were never synced comes back empty
    with open(listing, "rb") as f:
        records = f.read().split(b"\0")
    for rec in records:
        if not rec:
            continue
        kind, mode, eref, name = rec.split(b" ", 3)
        target = os.path.join(path, os.fsdecode(name))
        mode = int(mode, 8)
        if kind == b"d":
            os.mkdir(target, mode)
            _build_dir(shadow, eref.decode(), target)
        elif kind == b"f":
            content = os.path.join(shadow, "files", eref.decode())
            if os.path.exists(content):
                shutil.copyfile(content, target)
            else:
                open(target, "wb").close()  # named durably, bytes never synced
            os.chmod(target, mode)


def counted_calls(log_path):
    """How many calls the layer has counted so far (one log line each)."""
    if not os.path.exists(log_path):
        return 0
    with open(log_path) as f:
        return sum(1 for line in f if not line.startswith("crash "))


def read_log(log_path):
    """[(n, kind, path)] of every counted call, and the call crashed at (or None)."""
    calls, crashed = [], None
    with open(log_path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if parts[0] == "crash":
                crashed = (int(parts[1]), parts[2], parts[3] if len(parts) > 3 else "")
            else:
                calls.append((int(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
    return calls, crashed


def layer_env(lib, root, work, model="strict"):
    """The environment of a process run under the layer, watching root; files go in work.
    model: "strict" (names durable only by a sync of their directory) or "eager-names" (every
    change of a name durable at once, bytes still only when synced)."""
    env = dict(os.environ)
    env.update({
        "POWERFAIL_MODEL": model,
        "LD_PRELOAD": lib, "POWERFAIL_ROOT": root, "POWERFAIL_SHADOW": os.path.join(work, "shadow"),
        "POWERFAIL_LOG": os.path.join(work, "calls.log"), "POWERFAIL_CTL": os.path.join(work, "crash-at"),
        # The layer is preloaded before a sanitizer's runtime, which then refuses to start.
        "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":"),
    })
    return env


def write_crash_point(ctl, at, kind=None):
    """Arms the layer: crash at call number at, or (with kind) at the first call of that kind
    from there on."""
    with open(ctl + ".new", "w") as f:
        f.write(f"{at} {kind}" if kind else str(at))
    os.replace(ctl + ".new", ctl)


def run_under_layer(cmd, lib, root, work, crash_at=None, timeout=120, model="strict"):
    """Runs cmd with the layer watching root, killed at crash_at, (number, kind) as for
    write_crash_point (None: never). Returns (exit code, its output, the counted calls, the call
    crashed at)."""
    env = layer_env(lib, root, work, model)
    if crash_at is not None:
        write_crash_point(env["POWERFAIL_CTL"], *crash_at)
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    calls, crashed = read_log(env["POWERFAIL_LOG"]) if os.path.exists(env["POWERFAIL_LOG"]) else ([], None)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), calls, crashed


class PowerfailServer:
    """A coffer server on a copy of a data directory, with the layer preloaded."""

    def __init__(self, work, data_dir, lib, model="strict"):
        self.work = work
        self.data_dir = data_dir
        self.shadow = os.path.join(work, "shadow")
        self.log_path = os.path.join(work, "calls.log")
        self.ctl = os.path.join(work, "crash-at")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = layer_env(lib, data_dir, work, model)
        self.env.update({"COFFER_ROOT_USER": ACCESS_KEY, "COFFER_ROOT_PASSWORD": SECRET_KEY})
        self.proc = None
        self.stderr_path = os.path.join(work, "server.log")

    def start(self):
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [COFFER_BIN, "server", "--address", f"127.0.0.1:{self.port}", "--data", self.data_dir,
             "--log-level", "info"],
            stdout=self._stderr, stderr=subprocess.STDOUT, env=self.env)
        wait_for_health(self.proc, self.endpoint + "/health/ready", "coffer server (powerfail)", self.log, 30)
        return self

    def arm(self, offset, kind=None):
        """Crash at the offset-th call counted from now (1: the next one), or with kind at the
        first call of that kind from there on."""
        target = counted_calls(self.log_path) + offset
        write_crash_point(self.ctl, target, kind)
        return target

    def calls(self):
        return counted_calls(self.log_path)

    def crashed(self, wait=2.0):
        """Whether the server is dead; the client may see its sockets close a moment before the
        process can be reaped."""
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def power_off(self):
        """SIGKILL if the layer has not killed it already; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait()
        self._stderr.close()
        return code

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
