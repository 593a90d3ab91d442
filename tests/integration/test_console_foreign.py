"""`coffer console --proxy-downloads` against an S3 server that is not coffer (s3rver).

s3rver cannot pace responses, so the console streams archives itself through the tier's shared
budget: browse the catalogue, ask for a download, fetch it through /download (sha256 equal to
the manifest's, at no more than the tier's rate: a lower bound on the time, never an upper
one), ranged requests, and tokens that are tampered with, expired, or for a snapshot that is
gone. The token key is HKDF-SHA256(session secret, info "coffer console download v1") as
docs/console.md states, so the test can mint a valid token of its own.
"""
import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.parse

import pytest
import requests

from conftest import COFFER_BIN, CofferConsole
from test_snapshot_foreign import BUCKET, S3RVER_KEY, foreign  # noqa: F401 (the fixture)

SECRET = "foreign-console-secret-0123456789-abcdefghijklmnop"
RATE = 1_000_000  # bytes/s of the free tier here
MiB = 1 << 20


def hkdf(secret, info):
    prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def token(chain, sid, tier, expires):
    key = hkdf(SECRET.encode(), b"coffer console download v1")
    msg = f"v1\n{chain}\n{sid}\n{tier}\n{expires}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class Site:
    pass


def snapshot(env, endpoint, src, chain):
    p = subprocess.run([COFFER_BIN, "snapshot", "create", str(src), f"s3://{BUCKET}/console/{chain}", "--compress",
                        "none", "--label", "height=42", "--json", "--no-progress", "--endpoint", endpoint],
                       env=env, capture_output=True, timeout=180)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def site(foreign, tmp_path_factory):  # noqa: F811
    base = tmp_path_factory.mktemp("console-foreign")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
    env.update({"COFFER_ACCESS_KEY": S3RVER_KEY, "COFFER_SECRET_KEY": S3RVER_KEY, "HOME": str(base)})
    src = base / "node"
    src.mkdir()
    (src / "chaindata.bin").write_bytes(os.urandom(3 * MiB))
    s = Site()
    s.snap = snapshot(env, foreign.endpoint, src, "node1")
    small = base / "small"
    small.mkdir()
    (small / "x").write_bytes(b"x" * 1000)
    s.gone = snapshot(env, foreign.endpoint, small, "node2")
    s.env = dict(env, COFFER_CONSOLE_SESSION_SECRET=SECRET)
    s.console = CofferConsole(base, ["--repository", f"s3://{BUCKET}/console", "--proxy-downloads", "--tier",
                                     f"free={RATE}B/s", "--endpoint", foreign.endpoint],
                              s.env, [SECRET]).start()
    s.url = s.console.url
    s.foreign = foreign
    s.base = base
    yield s
    code = s.console.stop()
    s.console.assert_clean_log()
    assert code == 0, s.console.log()[-4000:]


def download_url(site, chain="node1", sid="latest", console=None):
    r = requests.post((console or site.url) + f"/api/v1/chains/{chain}/snapshots/{sid}/download", json={},
                      timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_browse(site):
    chains = requests.get(site.url + "/api/v1/chains", timeout=30).json()["chains"]
    assert [c["name"] for c in chains] == ["node1", "node2"]
    latest = requests.get(site.url + "/api/v1/chains/node1/latest", timeout=30).json()
    assert latest["id"] == site.snap["id"] and latest["height"] == "42" and latest["compression"] == "none"


def test_download_through_the_proxy_is_paced(site):
    before = requests.get(site.url + "/metrics", timeout=30).text
    d = download_url(site)
    assert d["tier"] == "free" and d["rate_bytes_per_s"] == RATE
    assert d["url"].startswith(site.url + f"/download/node1/{site.snap['id']}?tier=free&expires=")
    assert d["commands"]["curl"] == f"curl -fL '{d['url']}' | tar -x"
    t0 = time.monotonic()
    r = requests.get(d["url"], timeout=120)
    elapsed = time.monotonic() - t0
    assert r.status_code == 200
    size = len(r.content)
    assert size == d["snapshot"]["size"] and size > 3 * MiB
    assert hashlib.sha256(r.content).hexdigest() == d["snapshot"]["sha256"]
    assert r.headers["Content-Length"] == str(size)
    assert r.headers["ETag"] == f'"{d["snapshot"]["sha256"]}"'
    assert r.headers["Accept-Ranges"] == "bytes"
    name = d["snapshot"]["archive_key"].rsplit("/", 1)[-1]
    assert r.headers["Content-Disposition"] == f'attachment; filename="{name}"'
    # The bucket starts empty: n bytes take at least n/rate (lower bounds only).
    assert elapsed >= size / RATE * 0.97, (elapsed, size / RATE)
    after = requests.get(site.url + "/metrics", timeout=30).text

    def proxied(text):
        for line in text.splitlines():
            if line.startswith('coffer_console_proxy_bytes_total{tier="free"} '):
                return int(line.split()[-1])
        return 0
    assert proxied(after) - proxied(before) >= size


def test_range_requests(site):
    d = download_url(site)
    whole_size = d["snapshot"]["size"]
    r = requests.get(d["url"], headers={"Range": "bytes=100-199"}, timeout=60)
    assert r.status_code == 206 and len(r.content) == 100
    assert r.headers["Content-Range"] == f"bytes 100-199/{whole_size}"
    tail = requests.get(d["url"], headers={"Range": "bytes=-10"}, timeout=60)
    assert tail.status_code == 206 and len(tail.content) == 10
    assert tail.headers["Content-Range"] == f"bytes {whole_size - 10}-{whole_size - 1}/{whole_size}"
    # The pieces are the archive's bytes: the first 1 MiB + 100 and its hash agree with a fetch.
    head = requests.get(d["url"], headers={"Range": f"bytes=0-{MiB + 99}"}, timeout=60)
    assert head.status_code == 206 and len(head.content) == MiB + 100
    assert head.content[100:200] == r.content
    h = requests.head(d["url"], timeout=60)
    assert h.status_code == 200 and h.headers["Content-Length"] == str(whole_size) and not h.content
    r = requests.get(d["url"], headers={"Range": f"bytes={whole_size}-"}, timeout=60)
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{whole_size}"
    assert r.json()["error"]["code"] == "InvalidRange"


def with_query(url, **changes):
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query))
    q.update(changes)
    q = {k: v for k, v in q.items() if v is not None}
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def refused(url, code):
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"]
    return err["message"]


def test_bad_tokens_refused(site):
    d = download_url(site)
    url = d["url"]
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["sig"][0]
    refused(with_query(url, sig=("0" if sig[0] != "0" else "1") + sig[1:]), "InvalidToken")
    refused(with_query(url, tier="premium"), "InvalidToken")
    refused(with_query(url, expires=str(int(time.time()) + 999999)), "InvalidToken")
    refused(with_query(url, sig="zz"), "InvalidToken")
    refused(with_query(url, sig=None), "InvalidToken")
    other = url.replace("/node1/", "/node2/")
    refused(other, "InvalidToken")
    # A token signed for an expiry in the past, with the right key: expired, not forged.
    past = int(time.time()) - 5
    sid = site.snap["id"]
    msg = refused(f"{site.url}/download/node1/{sid}?tier=free&expires={past}&sig={token('node1', sid, 'free', past)}",
                  "ExpiredToken")
    assert "expired" in msg
    r = requests.post(url, timeout=30)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_expired_link_from_a_short_expiry(site, make_console):
    con = make_console(["--repository", f"s3://{BUCKET}/console", "--proxy-downloads", "--url-expiry", "1s",
                        "--endpoint", site.foreign.endpoint], site.env, [SECRET])
    d = download_url(site, console=con.url)
    assert d["expires_in"] == 1
    time.sleep(2.1)
    refused(d["url"], "ExpiredToken")


def test_valid_token_for_a_missing_snapshot_is_404(site):
    exp = int(time.time()) + 600
    sid = "20200101T000000Z-dead"
    r = requests.get(f"{site.url}/download/node1/{sid}?tier=free&expires={exp}&sig={token('node1', sid, 'free', exp)}",
                     timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NoSuchSnapshot"
    r = requests.get(site.url + "/download/node1", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


def test_clients_going_away_mid_download(site):
    """Readers that hang up leave their read-ahead to finish and be freed (the ASan build's leak
    check at the console's exit, and TSan, watch this); the console serves on."""
    d = download_url(site)
    for _ in range(3):
        with requests.get(d["url"], stream=True, timeout=60) as r:
            assert r.status_code == 200
            got = 0
            for chunk in r.iter_content(64 << 10):
                got += len(chunk)
                if got >= MiB + 1:
                    break
    r = requests.get(d["url"], headers={"Range": "bytes=2097152-2097200"}, timeout=60)
    assert r.status_code == 206 and len(r.content) == 49
    assert requests.get(site.url + "/health/live", timeout=10).status_code == 200
