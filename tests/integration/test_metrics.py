"""GET /metrics: Prometheus text format with request, byte, latency and per-bucket figures."""
import re
import urllib.request

from conftest import SECRET_KEY


def scrape(server):
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def value(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" ([0-9.e+]+)$"
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_count_requests_bytes_and_storage(server, s3):
    s3.create_bucket(Bucket="metered")
    before = scrape(server)
    for i in range(3):
        s3.put_object(Bucket="metered", Key=f"k{i}", Body=b"x" * 1000)
    s3.get_object(Bucket="metered", Key="k0")["Body"].read()
    try:
        s3.get_object(Bucket="metered", Key="missing")
    except s3.exceptions.NoSuchKey:
        pass
    after = scrape(server)
    assert value(after, "coffer_s3_requests_total", op="PutObject", status="200") - \
        value(before, "coffer_s3_requests_total", op="PutObject", status="200") == 3
    assert value(after, "coffer_s3_requests_total", op="GetObject", status="404") - \
        value(before, "coffer_s3_requests_total", op="GetObject", status="404") == 1
    assert value(after, "coffer_s3_received_bytes_total", op="PutObject") - \
        value(before, "coffer_s3_received_bytes_total", op="PutObject") == 3000
    assert value(after, "coffer_s3_sent_bytes_total", op="GetObject") >= 1000
    assert value(after, "coffer_s3_request_duration_seconds_count", op="PutObject") >= 3
    assert value(after, "coffer_s3_request_duration_seconds_bucket", op="PutObject", le="+Inf") == \
        value(after, "coffer_s3_request_duration_seconds_count", op="PutObject")
    # Each 1000-byte body is hashed for its ETag as 16 blocks of 64 bytes (with MD5's padding),
    # alone: too small to share passes with other bodies.
    assert value(after, "coffer_md5_bytes_total", hashed="alone") - \
        value(before, "coffer_md5_bytes_total", hashed="alone") == 3 * 1024
    assert value(after, "coffer_md5_bytes_total", hashed="side_by_side") == \
        value(before, "coffer_md5_bytes_total", hashed="side_by_side")
    assert value(after, "coffer_bucket_objects", bucket="metered") == 3
    assert value(after, "coffer_bucket_bytes", bucket="metered") == 3000
    # The scrape is itself in flight while it renders.
    assert value(after, "coffer_s3_requests_in_flight") >= 1
    assert SECRET_KEY not in after
    # Histogram buckets are cumulative.
    les = re.findall(r'coffer_s3_request_duration_seconds_bucket\{op="PutObject",le="[^"]+"\} (\d+)', after)
    counts = [int(c) for c in les]
    assert counts == sorted(counts) and counts[-1] >= 3
