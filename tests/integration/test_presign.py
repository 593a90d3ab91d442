"""Presigned URLs (SigV4 query-string authentication): `coffer presign` and boto3's
generate_presigned_url, used by plain HTTP clients for GET, HEAD and PUT.

What AWS S3 does is the expectation: an expired URL is AccessDenied "Request has expired", one
dated too far ahead is AccessDenied "Request is not yet valid", a changed URL is
SignatureDoesNotMatch, X-Amz-Expires beyond seven days is AuthorizationQueryParametersError, an
unknown key is InvalidAccessKeyId; and a refused PUT writes nothing.
"""
import base64
import contextlib
import datetime
import hashlib
import importlib
import os
import re
import subprocess
import time
import types
import urllib.parse
import urllib.request

import botocore.auth
import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, REGION, SECRET_KEY, s3_client
from helpers_clients import assert_s3_error, quote_key

BUCKET = "presign"
KEY = "dir/a b+\u00fc&=?.txt"   # spaces, '+', UTF-8 and query characters: all must be encoded
BODY = b"presigned body \x00\xff" * 100
ENV_NAMES = ("COFFER_ENDPOINT", "COFFER_REGION", "COFFER_ACCESS_KEY", "COFFER_SECRET_KEY",
             "COFFER_SECRET_KEY_FILE", "COFFER_ROOT_USER", "COFFER_ROOT_USER_FILE",
             "COFFER_ROOT_PASSWORD", "COFFER_ROOT_PASSWORD_FILE", "AWS_ENDPOINT_URL", "AWS_REGION",
             "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def run_cli(*args, env=None):
    """`coffer presign ARGS` with only the given credentials in the environment."""
    full = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    full.update(env or {})
    p = subprocess.run([COFFER_BIN, "presign", *args], env=full, capture_output=True, text=True,
                       timeout=30)
    assert SECRET_KEY not in p.stdout + p.stderr
    return p


def cli_url(server, method, key, expires="1h", access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    p = run_cli(f"s3://{BUCKET}/{key}", "--method", method, "--expires", expires,
                env={"COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": access_key,
                     "COFFER_SECRET_KEY": secret_key})
    assert p.returncode == 0, p.stderr
    url = p.stdout.strip()
    assert "\n" not in url and url.startswith(server.endpoint + "/" + BUCKET + "/"), url
    return url


def boto_url(s3, method, key, expires=3600):
    client_method = {"GET": "get_object", "HEAD": "head_object", "PUT": "put_object"}[method]
    return s3.generate_presigned_url(client_method, Params={"Bucket": BUCKET, "Key": key},
                                     ExpiresIn=expires, HttpMethod=method)


def make_url(source, server, s3, method, key, expires=3600):
    if source == "cli":
        return cli_url(server, method, key, f"{expires}s")
    return boto_url(s3, method, key, expires)


@contextlib.contextmanager
def shifted_clock(seconds):
    """Moves botocore's signing clock: both signers (Python and, when awscrt is installed, CRT)
    read datetime.datetime.utcnow() from their own module."""
    real = datetime.datetime

    class Shifted(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + datetime.timedelta(seconds=seconds)

    modules = [botocore.auth]
    try:
        modules.append(importlib.import_module("botocore.crt.auth"))
    except ImportError:
        pass
    saved = [m.datetime for m in modules]
    for m in modules:
        m.datetime = types.SimpleNamespace(datetime=Shifted, timezone=datetime.timezone)
    try:
        yield
    finally:
        for m, d in zip(modules, saved):
            m.datetime = d


def query_param(url, name):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)[name][0]


def replace_param(url, name, value):
    new, n = re.subn(rf"([?&]{re.escape(name)}=)[^&]*", lambda m: m.group(1) + value, url)
    assert n == 1, url
    return new


def flip_hex(s, i):
    return s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1:]


def object_body(s3, key):
    try:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response
        return None


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=BODY)
    return BUCKET


SOURCES = ["cli", "boto3"]


@pytest.mark.parametrize("source", SOURCES)
def test_get(server, s3, bucket, source):
    url = make_url(source, server, s3, "GET", KEY)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text[:500]
    assert r.content == BODY
    with urllib.request.urlopen(url, timeout=10) as u:
        assert u.read() == BODY


@pytest.mark.parametrize("source", SOURCES)
def test_head(server, s3, bucket, source):
    url = make_url(source, server, s3, "HEAD", KEY)
    r = requests.head(url, timeout=10)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(BODY)
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(BODY).hexdigest()
    # Signed for HEAD: a GET with the same URL is another request.
    assert_s3_error(requests.get(url, timeout=10), "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("source", SOURCES)
def test_put(server, s3, bucket, source):
    key = f"uploads/{source}/new \u00e9.bin"
    body = os.urandom(100_000)
    url = make_url(source, server, s3, "PUT", key)
    r = requests.put(url, data=body, timeout=30)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert object_body(s3, key) == body
    # Signed for PUT: it does not open the object for reading.
    assert_s3_error(requests.get(url, timeout=10), "SignatureDoesNotMatch", 403)


def test_put_with_content_md5_is_checked(server, s3, bucket):
    url = cli_url(server, "PUT", "md5-checked")
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    r = requests.put(url, data=b"payload", headers={"Content-MD5": wrong}, timeout=10)
    assert_s3_error(r, "BadDigest", 400)
    assert object_body(s3, "md5-checked") is None


@pytest.mark.parametrize("source", SOURCES)
def test_expired(server, s3, bucket, source):
    get_url = make_url(source, server, s3, "GET", KEY, expires=1)
    put_url = make_url(source, server, s3, "PUT", KEY, expires=1)
    assert query_param(get_url, "X-Amz-Expires") == "1"
    time.sleep(2.2)
    err = assert_s3_error(requests.get(get_url, timeout=10), "AccessDenied", 403)
    assert err["Message"] == "Request has expired"
    assert_s3_error(requests.head(get_url, timeout=10), "AccessDenied", 403)
    err = assert_s3_error(requests.put(put_url, data=b"late", timeout=10), "AccessDenied", 403)
    assert err["Message"] == "Request has expired"
    assert object_body(s3, KEY) == BODY


def test_dated_in_the_future(server, s3, bucket):
    with shifted_clock(3600):
        ahead = boto_url(s3, "GET", KEY)
    err = assert_s3_error(requests.get(ahead, timeout=10), "AccessDenied", 403)
    assert err["Message"] == "Request is not yet valid"
    # A signer whose clock is a few minutes ahead is tolerated, as for signed headers.
    with shifted_clock(300):
        slightly = boto_url(s3, "GET", KEY)
    assert requests.get(slightly, timeout=10).content == BODY
    # Signed long ago, valid for long: fine.
    with shifted_clock(-6 * 86400):
        old = boto_url(s3, "GET", KEY, expires=7 * 86400)
    assert requests.get(old, timeout=10).content == BODY


@pytest.mark.parametrize("source", SOURCES)
def test_tampered_get(server, s3, bucket, source):
    url = make_url(source, server, s3, "GET", KEY)
    sig = query_param(url, "X-Amz-Signature")
    path = urllib.parse.urlsplit(url).path
    other_key = path.replace("dir/", "dis/", 1)
    assert other_key != path
    tampered = [
        url.replace(path, other_key, 1),                                  # another object
        replace_param(url, "X-Amz-Signature", flip_hex(sig, 10)),         # the signature
        replace_param(url, "X-Amz-Expires", "3601"),                      # a longer life
        url + "&response-content-type=text%2Fhtml",                       # an unsigned parameter
    ]
    for t in tampered:
        assert_s3_error(requests.get(t, timeout=10), "SignatureDoesNotMatch", 403)
    # Another region in the scope is refused before the signature, as AWS does (SDKs rely on
    # the message to find a bucket's region).
    other_region = replace_param(url, "X-Amz-Credential", query_param(url, "X-Amz-Credential")
                                 .replace(REGION, "eu-west-1").replace("/", "%2F"))
    err = assert_s3_error(requests.get(other_region, timeout=10), "AuthorizationQueryParametersError", 400)
    assert "eu-west-1" in err["Message"] and REGION in err["Message"]


@pytest.mark.parametrize("source", SOURCES)
def test_tampered_put_writes_nothing(server, s3, bucket, source):
    key = f"tamper/{source}"
    url = make_url(source, server, s3, "PUT", key)
    sig = query_param(url, "X-Amz-Signature")
    for t in (replace_param(url, "X-Amz-Signature", flip_hex(sig, 0)),
              replace_param(url, "X-Amz-Expires", "3599")):
        r = requests.put(t, data=b"intruder" * 1000, timeout=10)
        assert_s3_error(r, "SignatureDoesNotMatch", 403)
    assert object_body(s3, key) is None
    # The untouched URL still works.
    assert requests.put(url, data=b"ok", timeout=10).status_code == 200
    assert object_body(s3, key) == b"ok"


def test_rejected_put_leaves_previous_object(server, s3, bucket):
    key = "keep/me.txt"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"original")
    sig_bad = cli_url(server, "PUT", key, secret_key="not-the-secret-0123456789")
    assert_s3_error(requests.put(sig_bad, data=b"replacement", timeout=10), "SignatureDoesNotMatch", 403)
    unknown = cli_url(server, "PUT", key, access_key="nobody")
    assert_s3_error(requests.put(unknown, data=b"replacement", timeout=10), "InvalidAccessKeyId", 403)
    expired = cli_url(server, "PUT", key, expires="1s")
    time.sleep(2.2)
    assert_s3_error(requests.put(expired, data=b"replacement", timeout=10), "AccessDenied", 403)
    too_long = replace_param(cli_url(server, "PUT", key), "X-Amz-Expires", "604801")
    assert_s3_error(requests.put(too_long, data=b"replacement", timeout=10),
                    "AuthorizationQueryParametersError", 400)
    assert object_body(s3, key) == b"original"


@pytest.mark.parametrize("source", SOURCES)
def test_expires_beyond_a_week(server, s3, bucket, source):
    url = make_url(source, server, s3, "GET", KEY)
    for value in ("604801", "99999999999999999999", "0", "-5", "1h"):
        r = requests.get(replace_param(url, "X-Amz-Expires", value), timeout=10)
        err = assert_s3_error(r, "AuthorizationQueryParametersError", 400)
        assert "X-Amz-Expires" in err["Message"]
    # Exactly a week is allowed (and so signed by the CLI's longest --expires).
    week = cli_url(server, "GET", KEY, expires="7d")
    assert query_param(week, "X-Amz-Expires") == "604800"
    assert requests.get(week, timeout=10).content == BODY


def test_malformed_query_auth(server, s3, bucket):
    url = cli_url(server, "GET", KEY)
    sig = query_param(url, "X-Amz-Signature")
    cases = [
        replace_param(url, "X-Amz-Algorithm", "AWS4-HMAC-SHA1"),
        replace_param(url, "X-Amz-Date", "20130524"),
        replace_param(url, "X-Amz-Credential", "garbage"),
        replace_param(url, "X-Amz-Signature", sig[:20]),
        url.replace("&X-Amz-SignedHeaders=host", ""),
        url + "&X-Amz-Signature=" + sig,
    ]
    for c in cases:
        err = assert_s3_error(requests.get(c, timeout=10), "AuthorizationQueryParametersError", 400)
        assert sig not in err["Message"]


@pytest.mark.parametrize("source", SOURCES)
def test_unknown_access_key(server, s3, bucket, source):
    if source == "cli":
        url = cli_url(server, "GET", KEY, access_key="AKIANOSUCHKEY")
    else:
        url = s3_client(server.endpoint, "AKIANOSUCHKEY", SECRET_KEY).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=60)
    assert_s3_error(requests.get(url, timeout=10), "InvalidAccessKeyId", 403)


def test_header_and_query_auth_together(server, s3, bucket):
    url = cli_url(server, "GET", KEY)
    r = requests.get(url, headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, timeout=10)
    assert_s3_error(r, "InvalidArgument", 400)


def test_anonymous_request_is_denied(server, bucket):
    r = requests.get(f"{server.endpoint}/{BUCKET}/{quote_key(KEY)}", timeout=10)
    assert_s3_error(r, "AccessDenied", 403)


def test_cli_url_shape(server, bucket):
    url = cli_url(server, "GET", KEY)
    split = urllib.parse.urlsplit(url)
    assert split.path == f"/{BUCKET}/{quote_key(KEY)}"
    q = urllib.parse.parse_qs(split.query)
    assert q["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert q["X-Amz-Credential"][0].startswith(f"{ACCESS_KEY}/") and \
        q["X-Amz-Credential"][0].endswith(f"/{REGION}/s3/aws4_request")
    assert q["X-Amz-Expires"] == ["3600"]
    assert q["X-Amz-SignedHeaders"] == ["host"]
    assert re.fullmatch(r"[0-9a-f]{64}", q["X-Amz-Signature"][0])
    assert SECRET_KEY not in url


def test_cli_credentials_from_aws_variables_and_file(server, bucket, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET_KEY + "\n")
    aws = {"AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION}
    coffer_file = {"COFFER_ENDPOINT": server.endpoint, "COFFER_ACCESS_KEY": ACCESS_KEY,
                   "COFFER_SECRET_KEY_FILE": str(secret_file)}
    flag_file = {"COFFER_ACCESS_KEY": ACCESS_KEY}
    for env, extra in ((aws, []), (coffer_file, []),
                       (flag_file, ["--secret-key-file", str(secret_file), "--endpoint", server.endpoint])):
        p = run_cli(f"s3://{BUCKET}/{KEY}", *extra, env=env)
        assert p.returncode == 0, p.stderr
        assert requests.get(p.stdout.strip(), timeout=10).content == BODY
    # COFFER_* wins over AWS_*.
    p = run_cli(f"s3://{BUCKET}/{KEY}", env=dict(aws, COFFER_ACCESS_KEY=ACCESS_KEY,
                                                 COFFER_SECRET_KEY="wrong-secret-0123456789"))
    assert_s3_error(requests.get(p.stdout.strip(), timeout=10), "SignatureDoesNotMatch", 403)
    # Keys come in pairs, as for every command: an AWS access key is never signed with a
    # COFFER_* secret set for another key.
    p = run_cli(f"s3://{BUCKET}/{KEY}", env=dict(aws, COFFER_SECRET_KEY="wrong-secret-0123456789"))
    assert requests.get(p.stdout.strip(), timeout=10).content == BODY
    # --region goes into the credential scope, and must be the server's.
    p = run_cli(f"s3://{BUCKET}/{KEY}", "--region", "eu-west-1", env=aws)
    assert p.returncode == 0 and "/eu-west-1/" in urllib.parse.unquote(p.stdout)
    assert_s3_error(requests.get(p.stdout.strip(), timeout=10), "AuthorizationQueryParametersError", 400)
    p = run_cli(f"s3://{BUCKET}/{KEY}", env=dict(aws, AWS_REGION="", AWS_DEFAULT_REGION=REGION))
    assert requests.get(p.stdout.strip(), timeout=10).content == BODY


def test_cli_endpoint_forms(server, bucket):
    env = {"COFFER_ACCESS_KEY": ACCESS_KEY, "COFFER_SECRET_KEY": SECRET_KEY}
    p = run_cli(f"s3://{BUCKET}/{KEY}", "--endpoint", server.endpoint + "/", env=env)
    assert p.returncode == 0 and p.stdout.startswith(server.endpoint + f"/{BUCKET}/")
    assert requests.get(p.stdout.strip(), timeout=10).content == BODY
    # Default ports are left out, since clients leave them out of the Host header they sign.
    p = run_cli("s3://b/k", "--endpoint", "https://S3.Example.COM:443", env=env)
    assert p.returncode == 0 and p.stdout.startswith("https://s3.example.com/b/k?"), p.stdout
    p = run_cli("s3://b/k", "--endpoint", "http://example.com:80", env=env)
    assert p.stdout.startswith("http://example.com/b/k?"), p.stdout
    p = run_cli("s3://b/k", "--endpoint", "http://[::1]:9000", env=env)
    assert p.stdout.startswith("http://[::1]:9000/b/k?"), p.stdout
    p = run_cli("s3://b/k", env=env)
    assert p.stdout.startswith("http://127.0.0.1:9000/b/k?"), p.stdout
    for bad in ("ftp://example.com", "http://example.com/prefix", "http://user@example.com", "http://"):
        p = run_cli("s3://b/k", "--endpoint", bad, env=env)
        assert p.returncode == 2 and "endpoint" in p.stderr and p.stdout == "", (bad, p.stderr)


@pytest.mark.parametrize("args, needle", [
    ([], "s3://BUCKET/KEY"),
    (["s3://b/k", "extra"], "extra"),
    (["b/k"], "s3://BUCKET/KEY"),
    (["s3://b"], "s3://BUCKET/KEY"),
    (["s3://b/"], "s3://BUCKET/KEY"),
    (["s3:///k"], "s3://BUCKET/KEY"),
    (["s3://b/k", "--expires", "8d"], "--expires"),
    (["s3://b/k", "--expires", "604801"], "--expires"),
    (["s3://b/k", "--expires", "0"], "--expires"),
    (["s3://b/k", "--expires", "-1h"], "--expires"),
    (["s3://b/k", "--expires", "soon"], "--expires"),
    (["s3://b/k", "--method", "DELETE"], "--method"),
    (["s3://b/k", "--bogus"], "usage"),
])
def test_cli_usage_errors(args, needle):
    p = run_cli(*args, env={"COFFER_ACCESS_KEY": ACCESS_KEY, "COFFER_SECRET_KEY": SECRET_KEY})
    assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
    assert needle in p.stderr, (args, p.stderr)
    assert p.stdout == ""


def test_cli_never_takes_a_secret_from_argv():
    p = run_cli("s3://b/k", "--secret-key", "argv-secret-value",
                env={"COFFER_ACCESS_KEY": ACCESS_KEY})
    assert p.returncode == 2 and "--secret-key-file" in p.stderr
    assert "argv-secret-value" not in p.stdout + p.stderr


def test_cli_missing_credentials():
    p = run_cli("s3://b/k", env={"COFFER_ACCESS_KEY": ACCESS_KEY})
    assert p.returncode == 2 and "secret" in p.stderr and p.stdout == ""
    p = run_cli("s3://b/k", env={"COFFER_SECRET_KEY": SECRET_KEY})
    assert p.returncode == 2 and "access key" in p.stderr and p.stdout == ""
    p = run_cli("s3://b/k", env={"COFFER_ACCESS_KEY": ACCESS_KEY,
                                 "COFFER_SECRET_KEY_FILE": "/nonexistent/secret"})
    assert p.returncode == 1 and "COFFER_SECRET_KEY_FILE" in p.stderr and p.stdout == ""


def test_cli_help():
    p = run_cli("--help")
    assert p.returncode == 0 and "--expires" in p.stdout
    p = subprocess.run([COFFER_BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert "presign" in p.stdout


def test_signatures_stay_out_of_the_log(server, s3, bucket):
    """A presigned URL is a bearer credential: the access log must not record its query."""
    url = cli_url(server, "GET", KEY)
    assert requests.get(url, timeout=10).status_code == 200
    bad = replace_param(url, "X-Amz-Signature", flip_hex(query_param(url, "X-Amz-Signature"), 5))
    requests.get(bad, timeout=10)
    time.sleep(0.2)
    log = server.log()
    for u in (url, bad):
        assert query_param(u, "X-Amz-Signature") not in log
