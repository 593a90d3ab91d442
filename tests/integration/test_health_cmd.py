"""`coffer health URL`, the container image's HEALTHCHECK: exit 0 only when URL answers 200,
1 for any other answer, no answer in time or no server, 2 for a command line it refuses (a
scheme other than http/https, no URL, a bad --timeout). A redirect is an answer, not followed."""
import http.server
import socket
import threading
import time

import pytest

from conftest import COFFER_BIN, run_checked, scrubbed_env


def health(*args, timeout=30):
    return run_checked([COFFER_BIN, "health", *args], env=scrubbed_env(), timeout=timeout, text=True)


def test_ready_and_live_answer_200_exit_0(server):
    for path in ("/health/ready", "/health/live"):
        p = health(server.endpoint + path)
        assert p.returncode == 0, p.stderr
        assert p.stdout == "" and p.stderr == ""


def test_other_status_exits_1_and_names_it(server):
    # An unsigned GET of a bucket is refused with 403.
    p = health(server.endpoint + "/some-bucket")
    assert p.returncode == 1
    assert "answered 403" in p.stderr


def test_no_server_exits_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe: nobody listens there
    p = health(f"http://127.0.0.1:{port}/health/ready")
    assert p.returncode == 1
    assert "cannot reach" in p.stderr


def test_server_that_never_answers_exits_1_after_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # the kernel accepts the connection; nobody ever reads or answers
        started = time.monotonic()
        p = health("--timeout", "1s", f"http://127.0.0.1:{s.getsockname()[1]}/health/ready")
        took = time.monotonic() - started
    assert p.returncode == 1
    assert "cannot reach" in p.stderr
    assert took < 10, f"--timeout 1s took {took:.1f}s"


def test_redirect_to_a_healthy_url_is_not_followed(server):
    target = server.endpoint + "/health/ready"

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        p = health(f"http://127.0.0.1:{httpd.server_address[1]}/")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert p.returncode == 1
    assert "answered 302" in p.stderr


@pytest.mark.parametrize("args", [
    [],
    ["file:///etc/passwd"],
    ["gopher://127.0.0.1:9000/"],
    ["127.0.0.1:9000/health/ready"],
    ["--timeout", "soon", "http://127.0.0.1:9000/health/ready"],
    ["--timeout"],
    ["http://127.0.0.1:9000/a", "http://127.0.0.1:9000/b"],
])
def test_refused_command_lines_exit_2(args):
    p = health(*args)
    assert p.returncode == 2, (args, p.stderr)
    assert "coffer health" in p.stderr


def test_help_exits_0():
    p = health("--help")
    assert p.returncode == 0
    assert "usage: coffer health" in p.stdout
