"""`coffer console` under attack: each test drives a real console (and a real coffer server) with
what a hostile client or a bad network sends, and asserts the refusal. docs/console.md, "Threat
model", maps every input that crosses a trust boundary to the test here that shows it refused.

The catalogue and users come from test_console_api's module fixture (a bucket of snapshots, two
rate-group keys, users alice/free and bob/premium); consoles with other flags are started per
test by make_console.
"""
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import time

import pytest
import requests

from conftest import COFFER_BIN
from test_console_api import (BUCKET, PASSWORDS, Site, error_of, fresh_ip, get, login, post, run,  # noqa: F401
                              site)


def own_console(site, make_console, *extra, users=None):
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(users or site.users),
                        *extra], site.console_env, site.secrets)
    own = Site()
    own.url = con.url
    own.console = con
    return own


# --- login flooding ---------------------------------------------------------------------------

def test_login_flood_from_many_addresses_is_bounded(site, make_console, tmp_path):
    # Users hashed at the default cost (12): every check, of a known name or not, costs ~270 ms
    # of a core. A flood from many addresses passes the per-address limiter; what bounds it is
    # the number of checks the console runs at once.
    users = tmp_path / "users-cost12"
    run(["console", "user", "add", "carol", "--tier", "free", "--users-file", str(users)], site.env,
        stdin=b"carol-password-for-the-flood\n")
    own = own_console(site, make_console, users=users)
    n = 24

    def attempt(i):
        return post(own, "/api/v1/login", {"username": f"flood{i}", "password": "guess"}, ip=fresh_ip())

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(attempt, range(n)))
        # Reads never wait for a password check.
        assert get(own, "/api/v1/chains").status_code == 200
    codes = [a.status_code for a in answers]
    assert set(codes) <= {401, 429}, codes
    busy = [a for a in answers if a.status_code == 429]
    assert busy, "every login of the flood ran its bcrypt check"
    for a in busy:
        assert "checking" in error_of(a, 429, "TooManyAttempts")
        assert a.headers["Retry-After"] == "1"
    # Once the flood is over (a slot is given back just after its answer went out), a login
    # goes through.
    deadline = time.monotonic() + 10
    while True:
        r = post(own, "/api/v1/login", {"username": "carol", "password": "carol-password-for-the-flood"})
        if r.status_code != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text


def test_ipv6_clients_are_limited_by_their_64(site, make_console):
    own = own_console(site, make_console)
    for i in range(20):
        error_of(post(own, "/api/v1/login", {"username": f"v6-{i}", "password": "x"}, ip=f"2001:db8:7:9::{i + 1:x}"),
                 401, "InvalidCredentials")
    r = post(own, "/api/v1/login", {"username": "bob", "password": PASSWORDS["bob"]}, ip="2001:db8:7:9:ffff::1")
    assert "address" in error_of(r, 429, "TooManyAttempts")
    # Another /64, and an IPv4-mapped address counted as its IPv4 address, are not refused.
    login(own, "bob", ip="2001:db8:7:a::1")
    for i in range(20):
        error_of(post(own, "/api/v1/login", {"username": f"m-{i}", "password": "x"}, ip="::ffff:10.77.0.1"),
                 401, "InvalidCredentials")
    error_of(post(own, "/api/v1/login", {"username": "bob", "password": "x"}, ip="10.77.0.1"), 429,
             "TooManyAttempts")


# --- proxied downloads --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big(site):
    """A chain 'big' whose one snapshot's archive is 3 MiB (uncompressed random bytes): a paced
    download of it lasts long enough for a test to hold it open."""
    src = site.base / "src-big"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(3 << 20))
    out = run(["snapshot", "create", str(src), f"s3://{BUCKET}/chains/big", "--compress", "none", "--json",
               "--no-progress"], site.env)
    return json.loads(out.stdout)


def proxy_link(own, chain="big", sid="latest", cookie=None, csrf=None):
    r = post(own, f"/api/v1/chains/{chain}/snapshots/{sid}/download", {}, cookie=cookie, csrf=csrf)
    assert r.status_code == 200, r.text
    return r.json()["url"]


def open_stalled(url, ip=None):
    """A GET of url by a client (ip: as an ingress would forward it) that reads the status line
    and then stops reading."""
    u = requests.utils.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    xff = f"X-Forwarded-For: {ip}\r\n" if ip else ""
    s.sendall(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n{xff}\r\n".encode())
    head = s.recv(12)
    return s, head


def test_proxied_downloads_at_once_are_bounded(site, big, make_console):
    own = own_console(site, make_console, "--proxy-downloads", "--tier", "free=100KB/s",
                      "--max-proxy-downloads", "2")
    url = proxy_link(own)
    held = [open_stalled(url) for _ in range(2)]
    try:
        for _, head in held:
            assert head.startswith(b"HTTP/1.1 200"), head
        r = requests.get(url, timeout=10)
        assert "downloads already" in error_of(r, 503, "SlowDown")
        assert int(r.headers["Retry-After"]) >= 1
    finally:
        for s, _ in held:
            s.close()
    # The slots are given back when the clients go away.
    deadline = time.monotonic() + 10
    while True:
        r = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
        if r.status_code == 206 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 206 and len(r.content) == 10, r.text[:200]


def test_one_client_cannot_take_every_download_slot(site, big, make_console):
    own = own_console(site, make_console, "--proxy-downloads", "--tier", "free=100KB/s",
                      "--max-proxy-downloads", "6", "--max-proxy-downloads-per-client", "2")
    url = proxy_link(own)
    # Two from one address, two from one IPv6 /64 (its addresses are one subscriber's).
    held = [open_stalled(url, ip) for ip in ("10.5.0.1", "10.5.0.1", "2001:db8:5:5::1", "2001:db8:5:5::2")]
    try:
        for _, head in held:
            assert head.startswith(b"HTTP/1.1 200"), head
        for ip in ("10.5.0.1", "2001:db8:5:5:ffff::9"):
            r = requests.get(url, headers={"X-Forwarded-For": ip, "Range": "bytes=0-9"}, timeout=10)
            assert "this address has 2 downloads" in error_of(r, 503, "SlowDown"), ip
        # Another client still gets its download while slots remain.
        r = requests.get(url, headers={"X-Forwarded-For": "10.5.0.2", "Range": "bytes=0-9"}, timeout=10)
        assert r.status_code == 206 and len(r.content) == 10
    finally:
        for s, _ in held:
            s.close()


@pytest.mark.parametrize("flag", ["--max-proxy-downloads", "--max-proxy-downloads-per-client"])
def test_max_proxy_downloads_flags_are_checked(site, flag):
    for bad in ("0", "-1", "x", "100001"):
        p = subprocess.run([COFFER_BIN, "console", "--repository", f"s3://{BUCKET}", flag, bad],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and flag in p.stderr, (bad, p.stderr)


# --- a hostile bucket -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(site):
    """Manifests written by whoever can write the bucket, each a copy of alpha's latest whose
    archive key points where the site never published: another chain's archive, a key out of
    the repository's prefix, a dot segment. Returns {chain: (id, archive key)}."""
    latest = site.snaps["alpha"][-1]
    sid = latest["id"]
    doc = json.loads(site.s3.get_object(Bucket=BUCKET, Key=f"chains/alpha/{sid}.json")["Body"].read())
    site.s3.put_object(Bucket=BUCKET, Key="private/secret.bin", Body=b"not for the site")
    keys = {"evil-other": doc["archive"]["key"], "evil-up": "../private/secret.bin",
            "evil-dot": "evil-dot/../alpha/" + doc["archive"]["key"].split("/", 1)[1],
            "evil-ctl": "evil-ctl/x\r\ny.tar"}
    out = {}
    for chain, key in keys.items():
        d = dict(doc, namespace=chain)
        d["archive"] = dict(doc["archive"], key=key)
        site.s3.put_object(Bucket=BUCKET, Key=f"chains/{chain}/{sid}.json", Body=json.dumps(d).encode())
        out[chain] = (sid, key)
    return out


@pytest.mark.parametrize("mode", ["presigned", "proxy"])
def test_manifest_naming_an_archive_outside_its_chain_is_refused(site, hostile, make_console, mode):
    own = own_console(site, make_console, *(["--proxy-downloads"] if mode == "proxy" else []))
    listed = {c["name"] for c in get(own, "/api/v1/chains").json()["chains"]}
    for chain, (sid, key) in hostile.items():
        assert chain in listed  # listing it is harmless; serving its archive is not
        r = post(own, f"/api/v1/chains/{chain}/snapshots/{sid}/download", {})
        assert "outside its chain" in error_of(r, 404, "NoSuchSnapshot"), key
    # The genuine snapshot still downloads.
    sid = site.snaps["alpha"][-1]["id"]
    r = post(own, f"/api/v1/chains/alpha/snapshots/{sid}/download", {})
    assert r.status_code == 200, r.text
    assert requests.get(r.json()["url"], timeout=30).status_code == 200
    assert "archive is outside its chain" in own.console.log()


# --- cookies ----------------------------------------------------------------------------------

def test_two_session_cookies_are_refused_not_picked(site):
    alice, _, _ = login(site, "alice")
    bob, bob_csrf, _ = login(site, "bob")
    # A second coffer_session (planted by a sibling domain or under a longer path, which browsers
    # send first) must not choose the session: the request is anonymous and the cookie cleared.
    for header in (f"coffer_session={bob}; coffer_session={alice}", f"coffer_session={alice}; coffer_session={bob}",
                   f"coffer_session={bob}; other=1; coffer_session={bob}"):
        r = requests.get(site.url + "/api/v1/me", headers={"Cookie": header}, timeout=10)
        assert r.json() == {"user": None, "tier": "free", "csrf": None, "session": "invalid"}, (header, r.text)
        assert "Max-Age=0" in r.headers["Set-Cookie"]
    # A POST with the right token still gets no premium link from an ambiguous cookie.
    r = post(site, "/api/v1/chains/alpha/snapshots/latest/download", {}, csrf=bob_csrf,
             headers={"Cookie": f"coffer_session={bob}; coffer_session={alice}"})
    assert r.status_code == 200 and r.json()["tier"] == "free", r.text
    # Other cookies beside one session cookie are fine.
    r = requests.get(site.url + "/api/v1/me", headers={"Cookie": f"a=b; coffer_session={bob}; c=d"}, timeout=10)
    assert r.json()["user"] == "bob"


# --- coffer console user ----------------------------------------------------------------------

def test_users_lock_file_link_is_not_followed(tmp_path):
    users, victim = tmp_path / "users", tmp_path / "created-elsewhere"
    os.symlink(victim, str(users) + ".lock")
    p = subprocess.run([COFFER_BIN, "console", "user", "add", "eve", "--tier", "free", "--users-file", str(users),
                        "--cost", "4"], input=b"eve-password-123\n", capture_output=True, timeout=60)
    assert p.returncode != 0 and b"lock" in p.stderr, p.stderr
    assert not os.path.lexists(victim), "the lock followed a planted link and created its target"
    assert not users.exists()


def test_users_file_link_is_replaced_not_written_through(tmp_path):
    users, target = tmp_path / "users", tmp_path / "target"
    run(["console", "user", "add", "dan", "--tier", "free", "--users-file", str(target), "--cost", "4"], {},
        stdin=b"dan-password-123\n")
    before = target.read_bytes()
    os.symlink(target, users)
    run(["console", "user", "add", "eve", "--tier", "free", "--users-file", str(users), "--cost", "4"], {},
        stdin=b"eve-password-123\n")
    assert target.read_bytes() == before
    assert not users.is_symlink() and oct(users.stat().st_mode & 0o777) == "0o600"
    assert b"dan:" in users.read_bytes() and b"eve:" in users.read_bytes()


# --- X-Forwarded-For / -Proto ---------------------------------------------------------------

def test_forwarded_headers_are_believed_only_from_trusted_proxies(site, make_console):
    # Loopback is not in the list: the test client is a direct client whose claims are ignored.
    own = own_console(site, make_console, "--trusted-proxy", "192.0.2.0/24", "--trusted-proxy", "2001:db8::/32")
    for i in range(20):
        error_of(post(own, "/api/v1/login", {"username": f"xff{i}", "password": "x"}, ip=fresh_ip()), 401,
                 "InvalidCredentials")
    # Twenty addresses claimed, one peer counted.
    r = post(own, "/api/v1/login", {"username": "bob", "password": PASSWORDS["bob"]}, ip=fresh_ip())
    assert "address" in error_of(r, 429, "TooManyAttempts")
    # Nor does a claimed https make the cookie Secure.
    r = post(own, "/api/v1/logout", {}, headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and "Secure" not in r.headers["Set-Cookie"]
    # "none" trusts nobody; an explicit loopback trusts the test client again.
    own = own_console(site, make_console, "--trusted-proxy", "none")
    r = post(own, "/api/v1/logout", {}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in r.headers["Set-Cookie"]
    own = own_console(site, make_console, "--trusted-proxy", "127.0.0.1")
    r = post(own, "/api/v1/logout", {}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in r.headers["Set-Cookie"]


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0/8", "example.com", "::1/129", "10.0.0.0/", "/8", "1.2.3.4/-1"])
def test_trusted_proxy_flag_is_checked(site, bad):
    p = subprocess.run([COFFER_BIN, "console", "--repository", f"s3://{BUCKET}/chains", "--trusted-proxy", bad],
                       capture_output=True, text=True, timeout=30, env=dict(os.environ, **site.console_env))
    assert p.returncode == 2 and "trusted proxy" in p.stderr, (bad, p.stderr)


# --- proxy tokens and ranges (sound: these pass without a fix, and keep it so) -------------------

def proxy_bytes(own, tier):
    for line in requests.get(own.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f'coffer_console_proxy_bytes_total{{tier="{tier}"}} '):
            return float(line.split()[-1])
    return 0.0


def test_a_repeated_tier_parameter_cannot_upgrade_a_token(site, big, make_console):
    own = own_console(site, make_console, "--proxy-downloads")
    url = proxy_link(own)
    path, query = url.split("?")
    # Put first, the forged tier is the one checked: refused.
    r = requests.get(f"{path}?tier=premium&{query}", headers={"Range": "bytes=0-9"}, timeout=10)
    error_of(r, 403, "InvalidToken")
    # Put last, it is ignored: the bytes are served, and counted, in the signed tier.
    before = proxy_bytes(own, "premium")
    r = requests.get(f"{url}&tier=premium", headers={"Range": "bytes=0-99"}, timeout=10)
    assert r.status_code == 206 and len(r.content) == 100
    assert proxy_bytes(own, "premium") == before and proxy_bytes(own, "free") >= 100


@pytest.mark.parametrize("rng,status,length", [
    ("bytes=0-1,2-3", 200, None), ("bytes=" + "0-1," * 4000 + "0-1", 200, None), ("bytes=9-1", 200, None),
    ("bytes=99999999999-", 416, None), ("bytes=-0", 416, None), ("bytes=0-99999999999999999999", 200, None),
    ("bytes=-5", 206, 5), ("bytes=10-19", 206, 10)], ids=lambda v: str(v)[:24])
def test_proxy_ranges(site, big, make_console, rng, status, length):
    own = own_console(site, make_console, "--proxy-downloads")
    size = get(own, "/api/v1/chains/big/latest").json()["size"]
    r = requests.get(proxy_link(own), headers={"Range": rng}, timeout=30, stream=True)
    assert r.status_code == status, (rng, r.status_code)
    if status == 416:
        assert r.headers["Content-Range"] == f"bytes */{size}"
    elif status == 200:
        assert int(r.headers["Content-Length"]) == size  # one whole body, never multipart
    else:
        assert len(r.content) == length
    r.close()


def test_token_for_a_removed_snapshot_is_404(site, make_console):
    sid = site.snaps["gamma"][0]["id"]
    own = own_console(site, make_console, "--proxy-downloads")
    url = proxy_link(own, "gamma", sid)
    body = site.s3.get_object(Bucket=BUCKET, Key=f"chains/gamma/{sid}.json")["Body"].read()
    site.s3.delete_object(Bucket=BUCKET, Key=f"chains/gamma/{sid}.json")
    try:
        assert post(own, "/api/v1/refresh", {}).status_code == 202
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = requests.get(url, timeout=10)
            if r.status_code == 404:
                break
            time.sleep(0.2)
        error_of(r, 404, "NoSuchSnapshot")
    finally:
        site.s3.put_object(Bucket=BUCKET, Key=f"chains/gamma/{sid}.json", Body=body)


# --- slow clients -----------------------------------------------------------------------------

def test_slowloris_head_is_cut_off(site):
    u = requests.utils.urlparse(site.url)
    s = socket.create_connection((u.hostname, u.port), timeout=5)
    s.sendall(b"GET /api/v1/chains HTTP/1.1\r\nHost: x\r\n")
    s.settimeout(1)
    start, closed = time.monotonic(), False
    while time.monotonic() - start < 40:
        try:
            s.sendall(b"X")
            if s.recv(4096) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    s.close()
    took = time.monotonic() - start
    assert closed, "a head trickled a byte a second was never cut off"
    assert took >= 9, took  # the layer's 10 s head deadline, not something sooner


# --- on-demand refresh ------------------------------------------------------------------------

def test_on_demand_refresh_is_spaced(site, make_console):
    # Anyone may ask for a refresh, which lists every chain of every repository: a loop of them
    # must not keep the console listing the buckets back to back.
    own = own_console(site, make_console)
    assert post(own, "/api/v1/refresh", {}).status_code == 202
    refused = [post(own, "/api/v1/refresh", {}) for _ in range(20)]
    for r in refused:
        assert "requested less than" in error_of(r, 429, "SlowDown")
        assert 1 <= int(r.headers["Retry-After"]) <= 5
    time.sleep(int(refused[-1].headers["Retry-After"]) + 0.2)
    assert post(own, "/api/v1/refresh", {}).status_code == 202


# --- sessions of changed accounts ---------------------------------------------------------------

def test_session_of_a_removed_account_ends_and_a_changed_tier_applies(site, make_console, tmp_path):
    before = own_console(site, make_console)
    alice, _, _ = login(before, "alice")
    bob, bob_csrf, _ = login(before, "bob")
    # The operator removes bob and moves alice to premium, then rolls the console (same secret).
    users = tmp_path / "users-changed"
    users.write_text(site.users.read_text().replace("alice:free:", "alice:premium:"))
    os.chmod(users, 0o600)
    run(["console", "user", "rm", "bob", "--users-file", str(users)], site.env)
    after = own_console(site, make_console, users=users)
    r = get(after, "/api/v1/me", cookie=bob)
    assert r.json() == {"user": None, "tier": "free", "csrf": None, "session": "invalid"}, r.text
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    r = post(after, "/api/v1/chains/alpha/snapshots/latest/download", {}, cookie=bob, csrf=bob_csrf)
    assert r.status_code == 200 and r.json()["tier"] == "free", r.text
    me = get(after, "/api/v1/me", cookie=alice).json()
    assert me["user"] == "alice" and me["tier"] == "premium", me
    r = post(after, "/api/v1/chains/alpha/snapshots/latest/download", {}, cookie=alice, csrf=me["csrf"])
    assert r.status_code == 200 and r.json()["tier"] == "premium", r.text
