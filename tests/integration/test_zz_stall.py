import time, socket, os, json, requests
from test_console_attack import own_console, proxy_link, run, BUCKET, post  # noqa
from test_console_api import site  # noqa

def test_stalled_big(site, make_console):
    src = site.base / "src-huge"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(24 << 20))
    run(["snapshot", "create", str(src), f"s3://{BUCKET}/chains/huge", "--compress", "none", "--json", "--no-progress"], site.env)
    own = own_console(site, make_console, "--proxy-downloads", "--tier", "free=2MB/s", "--max-proxy-downloads", "1")
    url = proxy_link(own, "huge")
    u = requests.utils.urlparse(url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
    print(s.recv(12))
    t = time.monotonic()
    while time.monotonic() - t < 150:
        r = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
        if r.status_code == 206:
            break
        time.sleep(3)
    print("STALL freed after", round(time.monotonic() - t, 1), r.status_code)
    s.close()
