"""coffer snapshot of a real PostgreSQL database: pg_dump -Fc into a snapshot, pg_restore out of it.

The module starts its own PostgreSQL 15 cluster (Debian's postgresql package, installed by
scripts/install-deps.sh) as the postgres user, listening on a free loopback port, with its data
directory and socket in a private directory under /tmp. A database with a few thousand rows
(bytea, non-ASCII text, NULLs, arrays, jsonb) is dumped through a pipe and through
--from-command, into the coffer server and into a directory repository, with and without
encryption, restored into a new database through a pipe and through --to-command, and compared
row by row with the original.
"""
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, free_port

PGBIN = "/usr/lib/postgresql/15/bin"
PG_DUMP, PG_RESTORE, PSQL = (f"{PGBIN}/{n}" for n in ("pg_dump", "pg_restore", "psql"))
SOURCE_DB = "shop"
TABLES = ("customers", "orders", "events")
ROWS = {"customers": 1000, "orders": 6000, "events": 2500}

SCHEMA = f"""
CREATE TABLE customers (
    id      serial PRIMARY KEY,
    name    text NOT NULL,
    email   text,
    note    text
);
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers(id),
    amount      numeric(12, 2),
    placed      timestamptz NOT NULL,
    payload     bytea
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE events (
    id    bigserial PRIMARY KEY,
    kind  text NOT NULL,
    tags  text[],
    doc   jsonb
);
INSERT INTO customers (name, email, note)
SELECT (ARRAY['Zoë Åkesson', '山田 太郎', 'Ørjan Þórsson', 'Jürgen Weiß', 'Ελένη', 'plain ascii'])[1 + i % 6]
           || ' #' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'customer' || i || '@example.org' END,
       CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN 'naïve café ☕ ' || md5(i::text)
            ELSE E'tab\\there, newline\\nthere, backslash \\\\ and quote '' ' END
FROM generate_series(1, {ROWS['customers']}) AS i;
INSERT INTO orders (id, customer_id, amount, placed, payload)
SELECT i * 10,
       1 + (i * 37) % {ROWS['customers']},
       CASE WHEN i % 11 = 0 THEN NULL ELSE round((random() * 100000)::numeric, 2) END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '17 minutes 3 seconds',
       CASE WHEN i % 5 = 0 THEN NULL
            WHEN i % 5 = 1 THEN decode(repeat(md5(i::text) || md5(random()::text), 1 + i % 40), 'hex')
            ELSE '\\x00ff0a0d5c27'::bytea || decode(md5(random()::text), 'hex') END
FROM generate_series(1, {ROWS['orders']}) AS i;
-- One payload with every byte value, one empty payload.
UPDATE orders SET payload = (SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), ''), 'hex')
                             FROM generate_series(0, 255) AS b) WHERE id = 10;
UPDATE orders SET payload = ''::bytea WHERE id = 20;
INSERT INTO events (kind, tags, doc)
SELECT (ARRAY['login', 'purchase', 'refund', 'ログイン'])[1 + i % 4],
       CASE WHEN i % 9 = 0 THEN NULL ELSE ARRAY['t' || i % 13, 'ünïcödé', NULL] END,
       CASE WHEN i % 4 = 0 THEN NULL
            ELSE jsonb_build_object('n', i, 'r', random(), 'who', 'Søren', 'nested', jsonb_build_array(i, NULL, true)) END
FROM generate_series(1, {ROWS['events']}) AS i;
"""


def sh(args, check=True, **kw):
    p = subprocess.run(args, capture_output=True, timeout=120, **kw)
    if check:
        assert p.returncode == 0, f"{args} exited {p.returncode}:\n{p.stderr.decode(errors='replace')}"
    return p


class PgCluster:
    """A throwaway PostgreSQL cluster run as the postgres user; clients connect over TCP as postgres."""

    def __init__(self):
        for name in ("initdb", "pg_ctl", "postgres", "pg_dump", "pg_restore", "psql"):
            if not os.access(f"{PGBIN}/{name}", os.X_OK):
                pytest.fail(f"{PGBIN}/{name} is missing: scripts/install-deps.sh installs postgresql")
        # initdb refuses to run as root: as root, the cluster runs as the postgres user, in a
        # directory of its own (pytest's tmp_path lives under 0700 directories it cannot enter).
        self.as_root = os.geteuid() == 0
        self.base = tempfile.mkdtemp(prefix="coffer-pg-")
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.base, "data")
        self.logfile = os.path.join(self.base, "postgres.log")
        self.port = free_port()
        self.env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="postgres",
                        PGDATABASE="postgres", PGCONNECT_TIMEOUT="10")
        for k in ("PGPASSWORD", "PGSERVICE", "PGSSLMODE", "PGOPTIONS"):
            self.env.pop(k, None)
        self.started = False

    def as_postgres(self, *args, check=True):
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return sh([*prefix, *args], check=check, cwd=self.base)

    def start(self):
        self.as_postgres(f"{PGBIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        p = self.as_postgres(f"{PGBIN}/pg_ctl", "-D", self.data, "-l", self.logfile, "-o", opts,
                             "-w", "-t", "60", "start", check=False)
        if p.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {p.stderr.decode()}\n{self.log()}")
        self.started = True
        return self

    def stop(self):
        if self.started:
            self.as_postgres(f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", check=False)
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def psql(self, db, sql):
        return sh([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", db, "-c", sql],
                  env=self.env).stdout

    def createdb(self, name):
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return name

    def contents(self, db):
        """Every table's rows in primary-key order (COPY text format), sequence positions, counts."""
        tables = self.psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        out = {"tables": tables.decode().split()}
        for t in TABLES:
            out[t] = self.psql(db, f"COPY (SELECT * FROM {t} ORDER BY id) TO STDOUT")
            out[t + ".count"] = int(self.psql(db, f"SELECT count(*) FROM {t}"))
        out["sequences"] = self.psql(db, "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")
        out["indexes"] = self.psql(db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
        return out


@pytest.fixture(scope="module")
def pg():
    cluster = PgCluster()
    try:
        cluster.start()
        cluster.createdb(SOURCE_DB)
        sh([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", SOURCE_DB, "-1", "-f", "-"],
           env=cluster.env, input=SCHEMA.encode())
        cluster.original = cluster.contents(SOURCE_DB)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def s3env(server, s3):
    s3.create_bucket(Bucket="pgsnaps")
    return {"COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": ACCESS_KEY,
            "COFFER_SECRET_KEY": SECRET_KEY}


@pytest.fixture(params=["s3", "dir"])
def repo(request, pg, s3env, tmp_path):
    """(url, env): a fresh repository; env carries the PG* connection and, for s3, the COFFER_* settings."""
    if request.param == "s3":
        return f"s3://pgsnaps/{tmp_path.name}/pg/{SOURCE_DB}", dict(pg.env, **s3env)
    env = {k: v for k, v in pg.env.items() if not k.startswith(("COFFER_", "AWS_"))}
    return str(tmp_path / "repo" / SOURCE_DB), env


def coffer(*args, env, check=True, stdin=None):
    p = subprocess.run([COFFER_BIN, "snapshot", *args], env=env, input=stdin, capture_output=True,
                       timeout=120)
    if check:
        assert p.returncode == 0, f"coffer snapshot {args[0]} exited {p.returncode}: {p.stderr.decode()}"
    return p


def pipe(producer, consumer, env):
    """producer | consumer; returns both (returncode, stderr), like bash with pipefail would see them."""
    a = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    b = subprocess.Popen(consumer, stdin=a.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    a.stdout.close()
    b_out, b_err = b.communicate(timeout=180)
    a_err = a.stderr.read()
    a.stderr.close()
    a.wait(timeout=30)
    return (a.returncode, a_err.decode(errors="replace")), (b.returncode, b_err.decode(errors="replace")), b_out


def key_args(tmp_path, encrypted):
    if not encrypted:
        return []
    key = tmp_path / "snapshot.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return ["--encrypt-key-file", str(key)]


def listed_ids(url, env):
    return [line.split()[0] for line in coffer("ls", url, env=env).stdout.decode().splitlines()]


def assert_same_database(pg, db):
    restored = pg.contents(db)
    original = pg.original
    assert original["tables"] == sorted(TABLES)
    for t in TABLES:
        assert original[t + ".count"] == ROWS[t]
        assert restored[t + ".count"] == ROWS[t], (t, restored[t + ".count"])
        assert restored[t] == original[t], f"rows of {t} differ after restore"
    assert restored == original
    # Spot checks that the comparison is about the interesting values, not only their count.
    assert pg.psql(db, "SELECT name FROM customers WHERE id = 1").decode() == "山田 太郎 #1\n"
    assert pg.psql(db, "SELECT count(*) FROM customers WHERE email IS NULL").decode() == f"{ROWS['customers'] // 7}\n"
    assert pg.psql(db, "SELECT encode(sha256(payload), 'hex') FROM orders WHERE id = 10") == \
        pg.psql(SOURCE_DB, "SELECT encode(sha256(payload), 'hex') FROM orders WHERE id = 10")
    assert pg.psql(db, "SELECT length(payload) FROM orders WHERE id = 10").decode() == "256\n"


def new_db_name():
    return "restored_" + uuid.uuid4().hex[:12]


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_pg_dump_pipe_round_trip(pg, repo, tmp_path, encrypted):
    url, env = repo
    keys = key_args(tmp_path, encrypted)
    (dump_rc, dump_err), (rc, err), out = pipe([PG_DUMP, "-Fc", SOURCE_DB],
                                               [COFFER_BIN, "snapshot", "create", "-", url, *keys], env)
    assert dump_rc == 0, dump_err
    assert rc == 0, err
    sid = out.decode().strip()
    assert listed_ids(url, env) == [sid]
    shown = json.loads(coffer("show", f"{url}@{sid}", env=env).stdout)
    assert shown["source"]["kind"] == "stream" and shown["archive"]["raw_size"] > 100_000
    assert (shown["encryption"] is not None) == encrypted
    if encrypted:
        p = coffer("restore", f"{url}@latest", "-", env=env, check=False)
        assert p.returncode == 5 and b"encrypted" in p.stderr and p.stdout == b"", p.stderr

    db = pg.createdb(new_db_name())
    (rc, err), (restore_rc, restore_err), _ = pipe(
        [COFFER_BIN, "snapshot", "restore", f"{url}@latest", "-", *keys],
        [PG_RESTORE, "--exit-on-error", "-d", db], env)
    assert rc == 0, err
    assert restore_rc == 0, restore_err
    assert_same_database(pg, db)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_from_command_to_command_round_trip(pg, repo, tmp_path, encrypted):
    url, env = repo
    keys = key_args(tmp_path, encrypted)
    sid = coffer("create", "--from-command", f"{PG_DUMP} -Fc {SOURCE_DB}", url, *keys,
                 env=env).stdout.decode().strip()
    assert listed_ids(url, env) == [sid]
    shown = json.loads(coffer("show", f"{url}@{sid}", env=env).stdout)
    assert shown["source"]["command"] == f"{PG_DUMP} -Fc {SOURCE_DB}"

    db = pg.createdb(new_db_name())
    coffer("restore", f"{url}@latest", "--to-command", f"{PG_RESTORE} --exit-on-error -d {db}", *keys, env=env)
    assert_same_database(pg, db)
    # A pg_restore that fails (its target database does not exist) fails the restore.
    p = coffer("restore", f"{url}@{sid}", "--to-command", f"{PG_RESTORE} --exit-on-error -d no_such_db_{db}",
               *keys, env=env, check=False)
    assert p.returncode != 0, p.stderr


def test_failed_pg_dump_makes_no_snapshot(pg, repo, tmp_path):
    url, env = repo
    missing = "no_such_database_" + uuid.uuid4().hex[:8]
    p = coffer("create", "--from-command", f"{PG_DUMP} -Fc {missing}", url, env=env, check=False)
    assert p.returncode == 1 and b"no snapshot" in p.stderr, p.stderr
    assert missing.encode() in p.stderr, p.stderr  # pg_dump's own message reaches the user
    assert coffer("ls", url, env=env).stdout == b""
    # The repository still works: a good dump after the failed one is the only snapshot.
    sid = coffer("create", "--from-command", f"{PG_DUMP} -Fc {SOURCE_DB}", url, env=env).stdout.decode().strip()
    assert listed_ids(url, env) == [sid]
