"""`coffer console user add|ls|rm|passwd`: the console's users file from the command line.

The password only ever travels on standard input (never argv, never echoed, never printed);
the file is 0600 and holds bcrypt hashes that libxcrypt itself (loaded here through ctypes, not
through coffer) verifies; bad names, tiers, duplicates and empty passwords are refused with the
file left as it was; concurrent `user add` keep every user.
"""
import ctypes
import ctypes.util
import json
import os
import pty
import select
import stat
import subprocess
import time

import pytest

from conftest import COFFER_BIN, SANITIZER_MARKERS

PASSWORD = "correct horse battery staple"


def libcrypt_verify(password, hashed):
    """Verifies with the system's libcrypt, independently of coffer's code."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), hashed.encode())
    return out is not None and out.decode() == hashed


def run(args, password=None, check_rc=None):
    p = subprocess.run([COFFER_BIN, "console", "user", *args], input=(password or "").encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out, err = p.stdout.decode(), p.stderr.decode()
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    if password and password.strip():
        assert password.strip() not in out and password.strip() not in err
    if check_rc is not None:
        assert p.returncode == check_rc, (p.returncode, out, err)
    return p.returncode, out, err


def hashes(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, tier, hashed = line.rstrip("\n").split(":", 2)
                rows[name] = (tier, hashed)
    return rows


@pytest.fixture()
def users(tmp_path):
    return str(tmp_path / "users")


def test_add_writes_0600_bcrypt_that_libcrypt_verifies(users):
    os.umask(0o022)
    _, out, _ = run(["add", "alice", "--tier", "premium", "--users-file", users], PASSWORD + "\n", 0)
    assert "alice" in out
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    tier, hashed = hashes(users)["alice"]
    assert tier == "premium"
    assert hashed.startswith("$2b$12$") and len(hashed) == 60
    # One trailing newline is not part of the password; the rest is.
    assert libcrypt_verify(PASSWORD, hashed)
    assert not libcrypt_verify(PASSWORD + "\n", hashed)
    assert not libcrypt_verify("wrong", hashed)
    assert not [n for n in os.listdir(os.path.dirname(users)) if ".tmp." in n]


def test_ls_shows_names_and_tiers_never_hashes(users):
    run(["add", "alice", "--tier", "premium", "--users-file", users, "--cost", "4"], "pw-a", 0)
    run(["add", "bob@example.com", "--tier", "free", "--users-file", users, "--cost", "4"], "pw-b", 0)
    _, out, _ = run(["ls", "--users-file", users], check_rc=0)
    assert "alice" in out and "premium" in out and "bob@example.com" in out and "free" in out
    assert "$2b$" not in out
    _, out, _ = run(["ls", "--users-file", users, "--json"], check_rc=0)
    assert json.loads(out) == {"users": [{"name": "alice", "tier": "premium"},
                                         {"name": "bob@example.com", "tier": "free"}]}


def test_password_is_read_from_stdin_never_from_argv(users):
    args = [COFFER_BIN, "console", "user", "add", "carol", "--tier", "free", "--users-file", users]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)
    assert p.poll() is None, "it must wait for the password on stdin"
    p.stdin.write(b"s3cret-from-stdin")
    p.stdin.close()
    # While it hashes (cost 12), the command line others can read is what was typed, no more.
    with open(f"/proc/{p.pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:-1] == [a.encode() for a in args]
    out, err = p.stdout.read(), p.stderr.read()
    p.wait(timeout=60)
    assert p.returncode == 0, err
    assert b"s3cret-from-stdin" not in out + err
    assert libcrypt_verify("s3cret-from-stdin", hashes(users)["carol"][1])
    # There is no option that would put a password in argv.
    rc, _, err = run(["add", "dave", "--tier", "free", "--users-file", users, "--password", "x"])
    assert rc == 2 and "dave" not in hashes(users)


def test_refusals_leave_the_file_as_it_was(users):
    run(["add", "alice", "--tier", "free", "--users-file", users, "--cost", "4"], "first", 0)
    with open(users, "rb") as f:
        before = f.read()
    rc, _, err = run(["add", "alice", "--tier", "premium", "--users-file", users, "--cost", "4"], "second")
    assert rc == 1 and "already exists" in err
    rc, _, err = run(["add", "bob", "--tier", "Premium!", "--users-file", users], "pw")
    assert rc == 2 and "tier" in err
    rc, _, err = run(["add", "bad name", "--tier", "free", "--users-file", users], "pw")
    assert rc == 2 and "user name" in err
    rc, _, err = run(["add", "x" * 65, "--tier", "free", "--users-file", users], "pw")
    assert rc == 2
    rc, _, err = run(["add", "bob", "--users-file", users], "pw")
    assert rc == 2 and "--tier" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users], "")
    assert rc == 1 and "empty" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users], "\n")
    assert rc == 1 and "empty" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users], "two\nlines")
    assert rc == 1 and "newline" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users], "x" * 73)
    assert rc == 1 and "72" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users, "--cost", "3"], "pw")
    assert rc == 2 and "--cost" in err
    with open(users, "rb") as f:
        assert f.read() == before
    assert libcrypt_verify("first", hashes(users)["alice"][1])


def test_passwd_and_rm(users):
    run(["add", "alice", "--tier", "premium", "--users-file", users, "--cost", "4"], "old-pw", 0)
    run(["add", "bob", "--tier", "free", "--users-file", users, "--cost", "4"], "bob-pw", 0)
    run(["passwd", "alice", "--users-file", users, "--cost", "5"], "new-pw", 0)
    rows = hashes(users)
    assert rows["alice"][0] == "premium"
    assert rows["alice"][1].startswith("$2b$05$")
    assert libcrypt_verify("new-pw", rows["alice"][1]) and not libcrypt_verify("old-pw", rows["alice"][1])
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    rc, _, err = run(["passwd", "carol", "--users-file", users], "pw")
    assert rc == 1 and "carol" in err
    run(["rm", "alice", "--users-file", users], check_rc=0)
    assert list(hashes(users)) == ["bob"]
    rc, _, err = run(["rm", "alice", "--users-file", users])
    assert rc == 1 and "no user 'alice'" in err
    assert list(hashes(users)) == ["bob"]


def test_concurrent_adds_keep_every_user(users):
    procs = [subprocess.Popen([COFFER_BIN, "console", "user", "add", f"user{i}", "--tier", "free",
                               "--users-file", users, "--cost", "6"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    for p in procs:
        p.stdin.write(f"pw-{procs.index(p)}".encode())
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    rows = hashes(users)
    assert sorted(rows) == sorted(f"user{i}" for i in range(8))
    for i in range(8):
        assert libcrypt_verify(f"pw-{i}", rows[f"user{i}"][1])


def test_a_file_others_may_write_is_refused(users):
    run(["add", "alice", "--tier", "free", "--users-file", users, "--cost", "4"], "pw", 0)
    os.chmod(users, 0o666)
    rc, _, err = run(["ls", "--users-file", users])
    assert rc == 1 and "writable by group or others" in err and "chmod 600" in err
    rc, _, err = run(["add", "bob", "--tier", "free", "--users-file", users, "--cost", "4"], "pw")
    assert rc == 1 and "bob" not in hashes(users)
    os.chmod(users, 0o644)  # readable: a warning, not a refusal (Kubernetes secrets are 0644)
    rc, out, err = run(["ls", "--users-file", users], check_rc=0)
    assert "alice" in out and "readable by group or others" in err


def test_users_file_from_the_environment_and_missing(users, tmp_path):
    env = dict(os.environ, COFFER_CONSOLE_USERS_FILE=users)
    p = subprocess.run([COFFER_BIN, "console", "user", "add", "eve", "--tier", "free", "--cost", "4"],
                       input=b"pw", env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "eve" in hashes(users)
    env.pop("COFFER_CONSOLE_USERS_FILE")
    p = subprocess.run([COFFER_BIN, "console", "user", "ls"], env=env, capture_output=True, timeout=60)
    assert p.returncode == 2 and b"--users-file" in p.stderr
    rc, _, err = run(["ls", "--users-file", str(tmp_path / "absent")])
    assert rc == 1 and "absent" in err
    rc, _, err = run(["frobnicate", "--users-file", users])
    assert rc == 2 and "frobnicate" in err


def _pty_add(users, first, second):
    """Runs `user add` with a terminal on stdin, answering both prompts; returns rc and what the
    terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(COFFER_BIN, [COFFER_BIN, "console", "user", "add", "tty-user", "--tier", "free",
                              "--users-file", users, "--cost", "4"])
    shown = b""
    answers = [first, second]
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
        prompts = shown.count(b"Password for") + shown.count(b"Repeat the password")
        if answered < min(prompts, len(answers)):
            os.write(fd, answers[answered].encode() + b"\n")
            answered += 1
    else:
        os.kill(pid, 9)  # still waiting for input: fail below rather than hang
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_terminal_asks_twice_with_echo_off(users):
    rc, shown = _pty_add(users, "typed-secret", "typed-secret")
    assert rc == 0, shown
    assert "Password for tty-user" in shown and "Repeat" in shown
    assert "typed-secret" not in shown
    assert libcrypt_verify("typed-secret", hashes(users)["tty-user"][1])
    run(["rm", "tty-user", "--users-file", users], check_rc=0)
    rc, shown = _pty_add(users, "one-thing", "another")
    assert rc == 1 and "differ" in shown
    assert "one-thing" not in shown and "another" not in shown
    assert "tty-user" not in hashes(users)
