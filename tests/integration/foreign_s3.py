"""s3rver (npm, pinned in tests/js): an S3 server that is not coffer, for the suites that check
coffer against one (coffer snapshot, console, mirror). conftest.py's `s3rver` fixture starts one
per module on a free loopback port with its own data directory. s3rver checks that the access key
exists but does not verify SigV4 signatures, so signing itself is covered by the suites that run
against coffer's own server.
"""
import os
import re
import signal
import subprocess
import time
import urllib.request

from conftest import ROOT, free_port

S3RVER_JS = os.path.join(ROOT, "tests", "js", "node_modules", "s3rver", "bin", "s3rver.js")
S3RVER_KEY = "S3RVER"  # s3rver's built-in account: access key and secret are both S3RVER
ANSI = re.compile(rb"\x1b\[[0-9;]*m")


class S3rver:
    def __init__(self, base):
        self.base = base
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.logpath = base / "s3rver.log"
        self.proc = None

    def start(self, node, timeout=30):
        self._log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(
            [node, S3RVER_JS, "--directory", str(self.base / "data"), "--address", "127.0.0.1",
             "--port", str(self.port), "--no-vhost-buckets"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.base))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3rver exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("s3rver did not start:\n" + self.log())

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self._log.close()

    def log_bytes(self):
        with open(self.logpath, "rb") as f:
            return ANSI.sub(b"", f.read())

    def log(self):
        return self.log_bytes().decode("utf-8", "replace")[-6000:]
