"""`coffer console` against a real coffer server: every API route and status code.

The module starts a coffer server, makes a bucket of snapshot chains with `coffer snapshot
create`, two rate-group keys (free, premium) with `coffer admin key add --rate-group`, a users
file with `coffer console user add`, and one console reading the bucket. Requests go through
`requests` with cookies handled by hand, so that what the console sets is what the test sends.
Login attempts come from distinct X-Forwarded-For addresses (believed from loopback, the
console's trust rule), so the per-address limiter of one test does not refuse another's.
"""
import hashlib
import itertools
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse

import pytest
import requests

from conftest import ACCESS_KEY, COFFER_BIN, SANITIZER_MARKERS, SECRET_KEY, CofferConsole, s3_client

BUCKET = "snaps"
PASSWORDS = {"alice": "alice-pw-Correct-Horse-1", "bob": "bob-pw-Battery-Staple-2"}
SESSION_SECRET = "console-session-secret-0123456789-abcdefghijklmnop"
OTHER_SECRET = "another-console-secret-0123456789-ABCDEFGHIJKLMNOPQ"
_addresses = (f"10.9.{i // 250}.{i % 250 + 1}" for i in itertools.count())


def fresh_ip():
    return next(_addresses)


def run(args, env, stdin=None, check=True):
    p = subprocess.run([COFFER_BIN, *args], env=env, input=stdin, capture_output=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"coffer {' '.join(args)} failed ({p.returncode}):\n{p.stderr.decode()}")
    return p


def without_secret(env):
    return {k: v for k, v in env.items() if not k.startswith("COFFER_CONSOLE_SESSION_SECRET")}


class Site:
    pass


def client_env(server):
    env = dict(os.environ)
    env.update({"COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": ACCESS_KEY,
                "COFFER_SECRET_KEY": SECRET_KEY})
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(k, None)
    return env


def make_snapshot(env, base, chain, n, compress, height):
    src = base / f"src-{chain}-{n}"
    src.mkdir()
    (src / "a.txt").write_bytes(os.urandom(1000) * 3)
    (src / "b.bin").write_bytes(os.urandom(20000))
    out = run(["snapshot", "create", str(src), f"s3://{BUCKET}/chains/{chain}", "--compress", compress,
               "--label", f"height={height}", "--json", "--no-progress"], env)
    return json.loads(out.stdout)


def add_rate_key(env, group, rate):
    out = run(["admin", "key", "add", "--policy", "readonly", "--bucket", BUCKET, "--rate-group", group,
               "--rate", rate, "--json"], env)
    doc = json.loads(out.stdout)
    return doc["access_key"], doc["secret_key"]


@pytest.fixture(scope="module")
def site(server, tmp_path_factory):
    base = tmp_path_factory.mktemp("console")
    s = Site()
    s.server = server
    s.base = base
    s.env = client_env(server)
    s.s3 = s3_client(server.endpoint)
    s.s3.create_bucket(Bucket=BUCKET)
    s.snaps = {"alpha": [], "beta": [], "gamma": []}
    for i, h in enumerate((100, 200, 300)):
        s.snaps["alpha"].append(make_snapshot(s.env, base, "alpha", i, "zstd", h))
    s.snaps["beta"].append(make_snapshot(s.env, base, "beta", 0, "lz4", 7))
    s.snaps["gamma"].append(make_snapshot(s.env, base, "gamma", 0, "none", 1))
    s.free_key = add_rate_key(s.env, "free", "50MB/s")
    s.premium_key = add_rate_key(s.env, "premium", "250MB/s")
    s.users = base / "users"
    run(["console", "user", "add", "alice", "--tier", "free", "--users-file", str(s.users), "--cost", "4"],
        s.env, stdin=PASSWORDS["alice"].encode() + b"\n")
    run(["console", "user", "add", "bob", "--tier", "premium", "--users-file", str(s.users), "--cost", "4"],
        s.env, stdin=PASSWORDS["bob"].encode() + b"\n")
    s.secret_file = base / "session-secret"
    s.secret_file.write_text(SESSION_SECRET + "\n")
    os.chmod(s.secret_file, 0o600)
    s.console_env = {
        "COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": ACCESS_KEY, "COFFER_SECRET_KEY": SECRET_KEY,
        "COFFER_CONSOLE_SESSION_SECRET_FILE": str(s.secret_file),
        "COFFER_CONSOLE_TIER_FREE_ACCESS_KEY": s.free_key[0],
        "COFFER_CONSOLE_TIER_FREE_SECRET_KEY": s.free_key[1],
        "COFFER_CONSOLE_TIER_PREMIUM_ACCESS_KEY": s.premium_key[0],
        "COFFER_CONSOLE_TIER_PREMIUM_SECRET_KEY": s.premium_key[1],
    }
    s.secrets = [SESSION_SECRET, SECRET_KEY, s.free_key[1], s.premium_key[1], *PASSWORDS.values()]
    s.console = CofferConsole(base, ["--repository", f"s3://{BUCKET}/chains", "--users-file", str(s.users),
                                     "--refresh-interval", "60s"], s.console_env, s.secrets).start()
    s.url = s.console.url
    yield s
    code = s.console.stop()
    s.console.assert_clean_log()
    assert code == 0, f"console exited with {code}:\n{s.console.log()[-4000:]}"


def get(site, path, cookie=None, **kw):
    headers = kw.pop("headers", {})
    if cookie:
        headers["Cookie"] = f"coffer_session={cookie}"
    return requests.get(site.url + path, headers=headers, timeout=30, **kw)


def post(site, path, body=None, cookie=None, csrf=None, headers=None, ip=None, **kw):
    h = {"X-Forwarded-For": ip or fresh_ip()}
    h.update(headers or {})
    if cookie:
        h["Cookie"] = f"coffer_session={cookie}"
    if csrf:
        h["X-CSRF-Token"] = csrf
    if body is not None and "data" not in kw:
        kw["data"] = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    return requests.post(site.url + path, headers=h, timeout=30, **kw)


def session_cookie(resp):
    m = re.search(r"coffer_session=([^;]*)", resp.headers.get("Set-Cookie", ""))
    return m.group(1) if m else None


def login(site, user, password=None, ip=None):
    r = post(site, "/api/v1/login", {"username": user, "password": password or PASSWORDS[user]}, ip=ip)
    assert r.status_code == 200, r.text
    return session_cookie(r), r.json()["csrf"], r


def error_of(resp, status, code):
    assert resp.status_code == status, f"{resp.status_code} {resp.text}"
    assert resp.headers["Content-Type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["code"] == code, err
    assert err["message"]
    return err["message"]


def metric(site, name, **labels):
    text = get(site, "/metrics").text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    return 0.0


# --- health, metrics, catalogue --------------------------------------------------------------

def test_health_live_and_ready(site):
    assert get(site, "/health/live").status_code == 200
    r = get(site, "/health/ready")
    assert r.status_code == 200 and r.text == "ready\n"
    error_of(get(site, "/health/nope"), 404, "NotFound")
    r = requests.post(site.url + "/health/live", timeout=10)
    error_of(r, 405, "MethodNotAllowed")
    assert r.headers["Allow"] == "GET, HEAD"


def test_ready_only_after_the_first_refresh(site, make_console, tmp_path):
    """A console whose store does not answer is live but never ready, and says why."""
    env = dict(site.console_env, COFFER_ENDPOINT="http://127.0.0.1:9")
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users)], env,
                       site.secrets, ready=False)
    time.sleep(1.0)
    assert requests.get(con.url + "/health/live", timeout=10).status_code == 200
    r = requests.get(con.url + "/health/ready", timeout=10)
    assert r.status_code == 503 and "not ready" in r.text
    r = requests.get(con.url + "/api/v1/chains/alpha", timeout=10)
    error_of(r, 503, "NotReady")


def test_chains(site):
    r = get(site, "/api/v1/chains")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    doc = r.json()
    names = [c["name"] for c in doc["chains"]]
    assert names == ["alpha", "beta", "gamma"]
    alpha = doc["chains"][0]
    assert alpha["snapshots"] == 3 and alpha["repository"] == f"s3://{BUCKET}/chains"
    assert alpha["latest"]["id"] == site.snaps["alpha"][-1]["id"]
    assert alpha["latest"]["height"] == "300"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["refreshed_at"])


def test_chain_and_404(site):
    r = get(site, "/api/v1/chains/beta")
    assert r.status_code == 200
    doc = r.json()
    assert doc["name"] == "beta" and doc["snapshots"] == 1 and doc["latest"]["compression"] == "lz4"
    msg = error_of(get(site, "/api/v1/chains/nosuch"), 404, "NoSuchChain")
    assert "nosuch" in msg
    # Names that are not UTF-8 or hold control characters are answered, not dropped.
    for raw in ("%FF%FE", "a%0Ab", "%C0%AF", "%E2%82"):
        msg = error_of(get(site, f"/api/v1/chains/{raw}"), 404, "NoSuchChain")
        assert "?" in msg
    error_of(get(site, "/api/v1/chains/%00"), 404, "NotFound")


def test_snapshot_fields(site):
    want = site.snaps["alpha"][0]
    r = get(site, f"/api/v1/chains/alpha/snapshots/{want['id']}")
    assert r.status_code == 200
    s = r.json()
    assert s["id"] == want["id"] and s["chain"] == "alpha"
    assert s["height"] == "100" and s["labels"] == {"height": "100"}
    assert s["compression"] == "zstd" and s["encrypted"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", s["sha256"])
    assert s["files"] == 2 and s["raw_size"] >= 23000 and s["size"] > 0
    assert s["age_seconds"] >= 0 and s["archive_key"].startswith("alpha/")
    msg = error_of(get(site, "/api/v1/chains/alpha/snapshots/20200101T000000Z-dead"), 404, "NoSuchSnapshot")
    assert "20200101T000000Z-dead" in msg and "alpha" in msg
    error_of(get(site, f"/api/v1/chains/nosuch/snapshots/{want['id']}"), 404, "NoSuchChain")


def test_latest(site):
    r = get(site, "/api/v1/chains/alpha/latest")
    assert r.status_code == 200 and r.json()["id"] == site.snaps["alpha"][-1]["id"]
    error_of(get(site, "/api/v1/chains/nosuch/latest"), 404, "NoSuchChain")


def test_pagination(site):
    ids = [s["id"] for s in reversed(site.snaps["alpha"])]  # newest first
    r = get(site, "/api/v1/chains/alpha/snapshots?limit=2")
    doc = r.json()
    assert [s["id"] for s in doc["snapshots"]] == ids[:2]
    assert doc["next_cursor"] == ids[1]
    r = get(site, f"/api/v1/chains/alpha/snapshots?limit=2&cursor={doc['next_cursor']}")
    doc = r.json()
    assert [s["id"] for s in doc["snapshots"]] == ids[2:]
    assert doc["next_cursor"] is None
    doc = get(site, "/api/v1/chains/alpha/snapshots").json()
    assert [s["id"] for s in doc["snapshots"]] == ids and doc["next_cursor"] is None
    for bad in ("0", "1001", "abc", "-1", "", "2x"):
        msg = error_of(get(site, f"/api/v1/chains/alpha/snapshots?limit={bad}"), 400, "InvalidArgument")
        assert "limit" in msg
    msg = error_of(get(site, "/api/v1/chains/alpha/snapshots?cursor=20200101T000000Z-dead"), 400,
                   "InvalidArgument")
    assert "cursor" in msg
    error_of(get(site, "/api/v1/chains/nosuch/snapshots"), 404, "NoSuchChain")


def test_unknown_route_and_wrong_method(site):
    for path in ("/api/v1/nope", "/api/v2/chains", "/api/v1/chains/alpha/bogus", "/api/v1/chains/"):
        msg = error_of(get(site, path), 404, "NotFound")
        assert "route" in msg
    r = requests.delete(site.url + "/api/v1/chains", timeout=10)
    error_of(r, 405, "MethodNotAllowed")
    assert r.headers["Allow"] == "GET, HEAD"
    r = get(site, "/api/v1/login")
    error_of(r, 405, "MethodNotAllowed")
    assert r.headers["Allow"] == "POST"
    r = get(site, "/api/v1/chains/alpha/snapshots/latest/download")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    error_of(get(site, "/no-such-page.html"), 404, "NoSuchAsset")


# --- login, sessions, CSRF ------------------------------------------------------------------

def test_login_me_logout(site):
    ok_before = metric(site, "coffer_console_logins_total", result="ok")
    r = get(site, "/api/v1/me")
    assert r.json() == {"user": None, "tier": "free", "csrf": None}
    cookie, csrf, resp = login(site, "bob")
    assert resp.json()["user"] == "bob" and resp.json()["tier"] == "premium"
    set_cookie = resp.headers["Set-Cookie"]
    for attr in ("Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"):
        assert attr in set_cookie
    assert "Secure" not in set_cookie  # plain http from loopback, --secure-cookies auto
    me = get(site, "/api/v1/me", cookie).json()
    assert me == {"user": "bob", "tier": "premium", "csrf": csrf}
    r = post(site, "/api/v1/logout", {}, cookie=cookie, csrf=csrf)
    assert r.status_code == 200 and r.json() == {}
    assert "Max-Age=0" in r.headers["Set-Cookie"] and session_cookie(r) == ""
    assert metric(site, "coffer_console_logins_total", result="ok") >= ok_before + 1


def test_secure_cookie_behind_a_tls_ingress(site):
    r = post(site, "/api/v1/login", {"username": "alice", "password": PASSWORDS["alice"]},
             headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and "; Secure" in r.headers["Set-Cookie"]


def test_wrong_password_and_unknown_user_say_the_same(site):
    wrong_before = metric(site, "coffer_console_logins_total", result="wrong")
    r1 = post(site, "/api/v1/login", {"username": "alice", "password": "not-it"})
    r2 = post(site, "/api/v1/login", {"username": "mallory", "password": "whatever"})
    m1 = error_of(r1, 401, "InvalidCredentials")
    m2 = error_of(r2, 401, "InvalidCredentials")
    assert m1 == m2
    assert "Set-Cookie" not in r1.headers
    assert metric(site, "coffer_console_logins_total", result="wrong") >= wrong_before + 2


def test_malformed_logins(site):
    before = metric(site, "coffer_console_logins_total", result="malformed")
    error_of(post(site, "/api/v1/login", data=b"{not json", headers={"Content-Type": "application/json"}),
             400, "MalformedJSON")
    for body in ([], {"username": "alice"}, {"username": 5, "password": "x"}, {"username": "", "password": "x"},
                 {"username": "alice", "password": ""}, {"username": "a" * 65, "password": "x"}):
        msg = error_of(post(site, "/api/v1/login", body), 400, "InvalidArgument")
        assert "username" in msg or "password" in msg or "object" in msg
    big = {"username": "alice", "password": "x" * 9000}
    error_of(post(site, "/api/v1/login", big), 413, "PayloadTooLarge")
    assert metric(site, "coffer_console_logins_total", result="malformed") >= before + 8


def test_rate_limit_per_user(site, make_console):
    # A console of its own: the limiter's counts are per process.
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users)],
                       site.console_env, site.secrets)
    own = Site()
    own.url = con.url
    for _ in range(5):
        error_of(post(own, "/api/v1/login", {"username": "alice", "password": "nope"}), 401, "InvalidCredentials")
    r = post(own, "/api/v1/login", {"username": "alice", "password": PASSWORDS["alice"]})
    msg = error_of(r, 429, "TooManyAttempts")
    assert int(r.headers["Retry-After"]) >= 1 and "account" in msg
    # Another user from the same addresses is not refused.
    login(own, "bob")
    m = requests.get(con.url + "/metrics", timeout=10).text
    assert re.search(r'coffer_console_logins_total\{result="limited"\} [1-9]', m)


def test_rate_limit_per_address(site, make_console):
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users)],
                       site.console_env, site.secrets)
    own = Site()
    own.url = con.url
    ip = fresh_ip()
    for i in range(20):
        error_of(post(own, "/api/v1/login", {"username": f"nobody{i}", "password": "x"}, ip=ip), 401,
                 "InvalidCredentials")
    r = post(own, "/api/v1/login", {"username": "bob", "password": PASSWORDS["bob"]}, ip=ip)
    msg = error_of(r, 429, "TooManyAttempts")
    assert "address" in msg and int(r.headers["Retry-After"]) >= 1
    login(own, "bob", ip=fresh_ip())


def test_bad_cookies_act_as_anonymous(site, make_console):
    cookie, _, _ = login(site, "alice")
    other = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users)],
                         dict(without_secret(site.console_env), COFFER_CONSOLE_SESSION_SECRET=OTHER_SECRET),
                         site.secrets + [OTHER_SECRET])
    r = requests.post(other.url + "/api/v1/login", json={"username": "alice", "password": PASSWORDS["alice"]},
                      timeout=30)
    foreign = session_cookie(r)
    assert foreign
    tampered = cookie[:10] + ("A" if cookie[10] != "A" else "B") + cookie[11:]
    for bad in ("garbage", tampered, foreign, "x" * 5000, "%00%ff"):
        r = get(site, "/api/v1/me", bad)
        assert r.status_code == 200
        me = r.json()
        assert me["user"] is None and me["tier"] == "free" and me["session"] == "invalid", bad
        assert "Max-Age=0" in r.headers["Set-Cookie"]
        page = get(site, "/", bad)
        assert page.status_code == 200 and "Max-Age=0" in page.headers["Set-Cookie"]
        # A POST with it is anonymous, not refused for a missing token, and never a 500.
        r = post(site, "/api/v1/chains/alpha/snapshots/latest/download", {}, cookie=bad)
        assert r.status_code == 200 and r.json()["tier"] == "free"


def test_expired_session(site, make_console):
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users),
                        "--session-ttl", "1s"], site.console_env, site.secrets)
    own = Site()
    own.url = con.url
    cookie, _, resp = login(own, "bob")
    assert "Max-Age=1" in resp.headers["Set-Cookie"]
    assert get(own, "/api/v1/me", cookie).json()["user"] == "bob"
    time.sleep(2.2)
    r = get(own, "/api/v1/me", cookie)
    assert r.json() == {"user": None, "tier": "free", "csrf": None, "session": "expired"}
    assert "Max-Age=0" in r.headers["Set-Cookie"]


def test_csrf_refusals(site):
    cookie, csrf, _ = login(site, "alice")
    path = "/api/v1/chains/alpha/snapshots/latest/download"
    msg = error_of(post(site, path, {}, cookie=cookie), 403, "CSRFRejected")
    assert "X-CSRF-Token" in msg
    error_of(post(site, path, {}, cookie=cookie, csrf="A" * 43), 403, "CSRFRejected")
    msg = error_of(post(site, path, {}, cookie=cookie, csrf=csrf, headers={"Origin": "https://evil.example"}), 403,
                   "CSRFRejected")
    assert "evil.example" in msg
    # A form post (what a foreign page can send without CORS) is refused, logged in or not.
    for ct in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
        r = post(site, path, data=b"a=b", headers={"Content-Type": ct}, cookie=cookie, csrf=csrf)
        assert "Content-Type" in error_of(r, 403, "CSRFRejected")
        r = post(site, "/api/v1/login", data=b"username=alice", headers={"Content-Type": ct})
        error_of(r, 403, "CSRFRejected")
    error_of(post(site, "/api/v1/login", {"username": "alice", "password": "x"},
                  headers={"Origin": "null"}), 403, "CSRFRejected")
    # The right token and our own origin pass.
    r = post(site, path, {}, cookie=cookie, csrf=csrf, headers={"Origin": site.url})
    assert r.status_code == 200 and r.json()["tier"] == "free"


def test_refresh_and_sighup(site):
    r = post(site, "/api/v1/refresh", {})
    assert r.status_code == 202
    new = make_snapshot(site.env, site.base, "alpha", 10, "zstd", 400)
    site.console.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if get(site, "/api/v1/chains/alpha/latest").json()["id"] == new["id"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("SIGHUP did not refresh the catalogue")
    site.snaps["alpha"].append(new)


# --- downloads ------------------------------------------------------------------------------

def credential_of(url):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return q["X-Amz-Credential"][0].split("/")[0]


def fetch_sha256(url):
    with requests.get(url, stream=True, timeout=60) as r:
        assert r.status_code == 200, r.text[:500]
        h = hashlib.sha256()
        for chunk in r.iter_content(1 << 16):
            h.update(chunk)
    return h.hexdigest()


def manifest_sha256(site, chain, sid):
    body = site.s3.get_object(Bucket=BUCKET, Key=f"chains/{chain}/{sid}.json")["Body"].read()
    return json.loads(body)["archive"]["sha256"]


def test_download_anonymous_is_free(site):
    before = metric(site, "coffer_console_download_urls_total", tier="free")
    r = post(site, "/api/v1/chains/alpha/snapshots/latest/download", {})
    assert r.status_code == 200, r.text
    d = r.json()
    latest = site.snaps["alpha"][-1]["id"]
    assert d["tier"] == "free" and d["rate_bytes_per_s"] == 50_000_000
    assert d["snapshot"]["id"] == latest and d["expires_in"] == 3600
    assert credential_of(d["url"]) == site.free_key[0]
    assert d["url"].startswith(site.server.endpoint + f"/{BUCKET}/chains/alpha/")
    assert d["commands"]["curl"] == f"curl -fL '{d['url']}' | zstd -dc | tar -x"
    assert d["commands"]["coffer"].startswith(f"coffer snapshot restore 's3://{BUCKET}/chains/alpha@{latest}'")
    assert fetch_sha256(d["url"]) == manifest_sha256(site, "alpha", latest) == d["snapshot"]["sha256"]
    assert metric(site, "coffer_console_download_urls_total", tier="free") == before + 1


def test_download_premium_user_gets_premium_key(site):
    cookie, csrf, _ = login(site, "bob")
    sid = site.snaps["beta"][0]["id"]
    before = metric(site, "coffer_console_download_urls_total", tier="premium")
    r = post(site, f"/api/v1/chains/beta/snapshots/{sid}/download", {}, cookie=cookie, csrf=csrf)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tier"] == "premium" and d["rate_bytes_per_s"] == 250_000_000
    assert credential_of(d["url"]) == site.premium_key[0]
    assert "| lz4 -dc | tar -x" in d["commands"]["curl"]
    assert fetch_sha256(d["url"]) == manifest_sha256(site, "beta", sid)
    assert metric(site, "coffer_console_download_urls_total", tier="premium") == before + 1
    # A tampered signature is the store's refusal: the URL is really signed.
    bad = d["url"][:-1] + ("0" if d["url"][-1] != "0" else "1")
    assert requests.get(bad, timeout=30).status_code == 403


def test_download_uncompressed_and_expiry(site, make_console):
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users),
                        "--url-expiry", "15m"], site.console_env, site.secrets)
    r = requests.post(con.url + "/api/v1/chains/gamma/snapshots/latest/download", json={}, timeout=30)
    d = r.json()
    assert d["expires_in"] == 900
    assert d["commands"]["curl"] == f"curl -fL '{d['url']}' | tar -x"
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(d["url"]).query)["X-Amz-Expires"] == ["900"]


def test_download_missing(site):
    msg = error_of(post(site, "/api/v1/chains/alpha/snapshots/20200101T000000Z-dead/download", {}), 404,
                   "NoSuchSnapshot")
    assert "20200101T000000Z-dead" in msg
    msg = error_of(post(site, "/api/v1/chains/nosuch/snapshots/latest/download", {}), 404, "NoSuchChain")
    assert "nosuch" in msg
    error_of(post(site, "/api/v1/chains/alpha/snapshots/latest/download", data=b"x" * 2000,
                  headers={"Content-Type": "application/json"}), 413, "PayloadTooLarge")


def test_download_tier_without_key_is_503(site, make_console):
    env = {k: v for k, v in site.console_env.items() if "TIER_PREMIUM" not in k}
    con = make_console(["--repository", f"s3://{BUCKET}/chains", "--users-file", str(site.users)], env,
                       site.secrets)
    own = Site()
    own.url = con.url
    cookie, csrf, _ = login(own, "bob")
    r = post(own, "/api/v1/chains/alpha/snapshots/latest/download", {}, cookie=cookie, csrf=csrf)
    msg = error_of(r, 503, "TierUnavailable")
    assert "COFFER_CONSOLE_TIER_PREMIUM_ACCESS_KEY" in msg
    # Anonymous visitors still get free URLs.
    r = post(own, "/api/v1/chains/alpha/snapshots/latest/download", {})
    assert r.status_code == 200 and r.json()["tier"] == "free"


def test_proxy_is_off_without_the_flag(site):
    error_of(get(site, "/download/alpha/x?tier=free&expires=1&sig=00"), 404, "NotFound")


# --- metrics, secrets, command line ---------------------------------------------------------

def test_metrics(site):
    get(site, "/api/v1/chains/alpha")
    text = get(site, "/metrics").text
    assert re.search(r'coffer_console_request_duration_seconds_count\{route="/api/v1/chains/\{chain\}"\} [1-9]',
                     text)
    assert 'route="/api/v1/chains/alpha"' not in text  # templates, never raw paths
    for name in ("coffer_console_logins_total{result=\"limited\"}", "coffer_console_download_urls_total{tier=\"free\"}",
                 "coffer_console_proxy_bytes_total{tier=\"premium\"}", "coffer_http_connections",
                 "coffer_console_catalogue"):
        assert name in text, name


def test_secrets_absent_from_argv_and_log(site):
    login(site, "alice")
    # A password typed into the user name field is not logged either.
    error_of(post(site, "/api/v1/login", {"username": PASSWORDS["bob"], "password": "x"}), 401,
             "InvalidCredentials")
    with open(f"/proc/{site.console.proc.pid}/cmdline", "rb") as f:
        argv = f.read().decode()
    for s in site.secrets:
        assert s not in argv
    log = site.console.log()
    assert "request" in log
    for s in site.secrets:
        assert s not in log
    assert "coffer_session=" not in log


def test_command_line_errors(site):
    env = dict(site.console_env)
    cases = [
        ([], "--repository"),
        (["--repository", "nota-url"], "s3://"),
        (["--repository", "s3://b", "--tier", "bad"], "NAME=RATE"),
        (["--repository", "s3://b", "--tier", "free=fast"], "free"),
        (["--repository", "s3://b", "--url-expiry", "8d"], "--url-expiry"),
        (["--repository", "s3://b", "--secure-cookies", "maybe"], "--secure-cookies"),
        (["--repository", "s3://b", "--refresh-interval", "0"], "--refresh-interval"),
        (["--repository", "s3://b", "--secret-key", "x"], "--secret-key"),
        (["--repository", "s3://b", "--public-url", "ftp://x"], "public URL"),
        (["--repository", "s3://b", "extra"], "unexpected argument"),
        (["--repository", "s3://b", "--http-threads", "0"], "--http-threads"),
        (["--repository", "s3://b", "--session-ttl", "forever"], "--session-ttl"),
        (["--repository", "s3://b", "--log-level", "loud"], "--log-level"),
        (["--repository", "s3://b", "--nonsense"], "nonsense"),
    ]
    for args, needle in cases:
        p = run(["console", "--address", "127.0.0.1:0", *args], env, check=False)
        assert p.returncode == 2, (args, p.stderr)
        assert needle in p.stderr.decode(), (args, p.stderr)
    p = run(["console", "--repository", "s3://b", "--users-file", str(site.users)],
            dict(without_secret(env), COFFER_CONSOLE_SESSION_SECRET="short"), check=False)
    assert p.returncode == 2 and b"32" in p.stderr
    p = run(["console", "--repository", "s3://b", "--users-file", str(site.users)],
            without_secret(env), check=False)
    assert p.returncode == 2 and b"session secret" in p.stderr
    p = run(["console", "--help"], env)
    assert b"--proxy-downloads" in p.stdout


def test_make_run_script(tmp_path):
    """scripts/run.sh (`make run`): server and console together, the demo set up on the first run
    with its secrets in 0600 files and never on stdout, a second run reusing it."""
    from conftest import ROOT, free_port
    (tmp_path / "docs").symlink_to(os.path.join(ROOT, "docs"))
    server_addr, console_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}

    def start():
        out = open(tmp_path / "run.out", "wb")
        proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run.sh"), COFFER_BIN, server_addr, "var/data",
                                 console_addr], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = (tmp_path / "run.out").read_text(errors="replace")
            if "Ctrl-C stops both" in text:
                return proc, text
            assert proc.poll() is None, text
            time.sleep(0.2)
        raise AssertionError((tmp_path / "run.out").read_text(errors="replace"))

    def stop(proc):
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        log = (tmp_path / "run.out").read_text(errors="replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in log, log[-4000:]

    proc, text = start()
    try:
        state = tmp_path / "var" / "console"
        for name in ("users", "session-secret", "console.env", "demo-passwords"):
            assert (state / name).stat().st_mode & 0o077 == 0, name
        passwords = dict(line.split()[:2] for line in (state / "demo-passwords").read_text().splitlines())
        secret = (state / "session-secret").read_text()
        for s in (*passwords.values(), secret):
            assert s not in text
        assert f"http://{console_addr}" in text
        url = f"http://{console_addr}"
        chains = requests.get(url + "/api/v1/chains", timeout=30).json()["chains"]
        assert [c["name"] for c in chains] == ["coffer-docs"] and chains[0]["latest"]["height"] == "1"
        r = requests.post(url + "/api/v1/login", json={"username": "demo-premium",
                                                       "password": passwords["demo-premium"]}, timeout=30)
        assert r.status_code == 200 and r.json()["tier"] == "premium"
        cookie = session_cookie(r)
        r = requests.post(url + "/api/v1/chains/coffer-docs/snapshots/latest/download", json={}, timeout=30,
                          headers={"Cookie": f"coffer_session={cookie}", "X-CSRF-Token": r.json()["csrf"]})
        d = r.json()
        assert d["tier"] == "premium" and fetch_sha256(d["url"]) == d["snapshot"]["sha256"]
        assert requests.get(url + "/", timeout=30).status_code == 200
    finally:
        stop(proc)
    # A second run keeps the demo: the same users, no second snapshot.
    proc, text = start()
    try:
        assert "first run" not in text
        chains = requests.get(f"http://{console_addr}/api/v1/chains", timeout=30).json()["chains"]
        assert chains[0]["snapshots"] == 1
    finally:
        stop(proc)
