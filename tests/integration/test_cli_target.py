"""Where every client command connects, and as whom: `coffer snapshot`, `coffer admin` and
`coffer presign` find the endpoint, region and keys by one rule (src/cli/target.h): --endpoint,
COFFER_ENDPOINT, AWS_ENDPOINT_URL, else the local server http://127.0.0.1:9000. Without keys
for a local server, the error names what to set and where that server keeps its keys, without
reading them. And the first start of a server prints where its generated keys are, never the
secret."""
import os
import socket
import stat
import subprocess

import pytest
import requests

from conftest import ACCESS_KEY, COFFER_BIN, SANITIZER_MARKERS, SECRET_KEY, s3_client

# Everything that could point a command elsewhere or lend it keys.
TARGET_VARS = ("COFFER_ENDPOINT", "COFFER_ENDPOINT_FILE", "COFFER_REGION", "COFFER_ACCESS_KEY",
               "COFFER_ACCESS_KEY_FILE", "COFFER_SECRET_KEY", "COFFER_SECRET_KEY_FILE",
               "COFFER_ROOT_USER", "COFFER_ROOT_USER_FILE", "COFFER_ROOT_PASSWORD",
               "COFFER_ROOT_PASSWORD_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
               "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE")
DEFAULT_PORT = 9000


def clean_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if k not in TARGET_VARS}
    env["HOME"] = str(home)  # no ~/.aws of the machine's user
    env.update(extra)
    return env


def coffer(*args, env, cwd=None):
    p = subprocess.run([COFFER_BIN, *args], env=env, cwd=cwd, capture_output=True, text=True,
                       timeout=120)
    for marker in SANITIZER_MARKERS:
        assert marker not in p.stderr, p.stderr[-8000:]
    return p


def credentials_of(data_dir):
    fields = dict(line.split("=", 1) for line in
                  open(os.path.join(data_dir, "credentials")).read().splitlines())
    return fields["access_key"], fields["secret_key"]


def no_root_env():
    """A server environment without root keys: the server generates its own."""
    return {"COFFER_ROOT_USER": "", "COFFER_ROOT_PASSWORD": "", "COFFER_ROOT_USER_FILE": "",
            "COFFER_ROOT_PASSWORD_FILE": ""}


def every_command_reaches(server_endpoint, access_key, secret_key, env, tree, bucket):
    """snapshot create and ls, admin key ls and presign, all without --endpoint, reach the server
    at server_endpoint."""
    s3 = s3_client(server_endpoint, access_key, secret_key)
    s3.create_bucket(Bucket=bucket)
    repo = f"s3://{bucket}/snaps/ns"
    p = coffer("snapshot", "create", str(tree), repo, "--no-progress", env=env)
    assert p.returncode == 0, p.stderr
    snap_id = p.stdout.strip()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(snap_id in k for k in keys), keys
    p = coffer("snapshot", "ls", repo, env=env)
    assert p.returncode == 0 and p.stdout.startswith(snap_id), p.stderr
    p = coffer("admin", "key", "ls", env=env)
    assert p.returncode == 0, p.stderr
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello")
    p = coffer("presign", f"s3://{bucket}/hello.txt", env=env)
    assert p.returncode == 0 and p.stdout.startswith(server_endpoint + f"/{bucket}/"), p.stdout
    assert requests.get(p.stdout.strip(), timeout=10).content == b"hello"
    for text in (p.stdout, p.stderr):
        assert secret_key not in text


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n" * 100)
    (root / "sub" / "b.txt").write_text("beta\n")
    return root


@pytest.mark.parametrize("variable", ["COFFER_ENDPOINT", "AWS_ENDPOINT_URL"])
def test_every_command_goes_where_the_environment_says(server, tmp_path, tree, variable):
    env = clean_env(tmp_path, COFFER_ACCESS_KEY=ACCESS_KEY, COFFER_SECRET_KEY=SECRET_KEY,
                    **{variable: server.endpoint})
    every_command_reaches(server.endpoint, ACCESS_KEY, SECRET_KEY, env, tree,
                          "envtarget" + variable.split("_")[0].lower())


def test_the_root_variables_of_the_server_work_for_every_command(server, tmp_path, tree):
    env = clean_env(tmp_path, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
                    COFFER_ROOT_PASSWORD=SECRET_KEY)
    every_command_reaches(server.endpoint, ACCESS_KEY, SECRET_KEY, env, tree, "rootvars")


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_without_an_endpoint_every_command_talks_to_the_local_server(make_server, tmp_path, tree):
    if not port_free(DEFAULT_PORT):
        pytest.skip(f"127.0.0.1:{DEFAULT_PORT} is taken by another process")
    srv = make_server(env=no_root_env())
    srv.port, srv.endpoint = DEFAULT_PORT, f"http://127.0.0.1:{DEFAULT_PORT}"
    try:
        srv.start()
    except RuntimeError as e:
        if "ddress already in use" in str(e):
            pytest.skip(f"127.0.0.1:{DEFAULT_PORT} was taken meanwhile")
        raise
    access_key, secret_key = credentials_of(srv.data_dir)
    env = clean_env(tmp_path, COFFER_ACCESS_KEY=access_key, COFFER_SECRET_KEY=secret_key)
    every_command_reaches(srv.endpoint, access_key, secret_key, env, tree, "localdefault")
    # The AWS variables serve as well (what the Quick start exports for the aws CLI).
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    p = coffer("snapshot", "ls", "s3://localdefault/snaps/ns", env=env)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr


def assert_names_what_to_set(p, *needles):
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert p.stdout == ""
    for needle in ("no access key", "COFFER_ACCESS_KEY", "COFFER_SECRET_KEY", *needles):
        assert needle in p.stderr, (needle, p.stderr)


COMMANDS = (["snapshot", "ls", "s3://b/ns"], ["admin", "key", "ls"], ["presign", "s3://b/k"])


def test_without_keys_the_error_names_the_make_run_credentials_file(tmp_path):
    """`make run` keeps the keys in ./var/data/credentials: the error says so, and that it is the
    user who exports them (the command does not read the file)."""
    data = tmp_path / "var" / "data"
    data.mkdir(parents=True)
    secret = "s3cr3t-never-shown-0123456789abcdef"
    (data / "credentials").write_text(f"access_key=AKLOCALTEST\nsecret_key={secret}\n")
    (data / "credentials").chmod(0o600)
    # A port where nothing listens, so that no running server's file is named instead.
    env = clean_env(tmp_path, COFFER_ENDPOINT="http://127.0.0.1:1")
    for args in COMMANDS:
        p = coffer(*args, env=env, cwd=tmp_path)
        assert_names_what_to_set(p, "var/data/credentials", "sed -n")
        assert secret not in p.stderr and "AKLOCALTEST" not in p.stderr
    # Elsewhere, no file to name: the error says where a server keeps its keys.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = coffer("snapshot", "ls", "s3://b/ns", env=env, cwd=elsewhere)
    assert_names_what_to_set(p, "DIR/credentials")
    # A remote endpoint gets no local hint.
    p = coffer("snapshot", "ls", "s3://b/ns", "--endpoint", "https://s3.example.com", env=env,
               cwd=tmp_path)
    assert_names_what_to_set(p)
    assert "var/data/credentials" not in p.stderr and "DIR/credentials" not in p.stderr


def test_without_keys_the_error_names_the_running_servers_credentials_file(make_server, tmp_path):
    srv = make_server(env=no_root_env()).start()
    path = os.path.join(srv.data_dir, "credentials")
    _, secret = credentials_of(srv.data_dir)
    env = clean_env(tmp_path, COFFER_ENDPOINT=srv.endpoint)
    for args in COMMANDS:
        p = coffer(*args, env=env, cwd=tmp_path)
        assert_names_what_to_set(p, path)
        assert secret not in p.stderr


def test_first_start_prints_where_the_keys_are_never_the_secret(make_server):
    srv = make_server(env=no_root_env()).start()
    path = os.path.join(srv.data_dir, "credentials")
    access_key, secret = credentials_of(srv.data_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    out = srv.log()  # the server's stdout and stderr together
    assert path in out and access_key in out
    assert secret not in out
    # A restart reuses the keys and prints nothing about them.
    srv.stop()
    srv.start()
    assert credentials_of(srv.data_dir) == (access_key, secret)
    assert secret not in srv.log()
