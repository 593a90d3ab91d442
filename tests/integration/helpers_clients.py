"""Helpers for the awscli and boto3 suites: hand-made SigV4 requests and S3 error documents.

botocore's S3SigV4Auth signs; `requests` sends. The knobs let a test produce what a well-behaved
SDK never sends: a wrong secret, an unknown key, a skewed clock, a payload hash that lies.
"""
import contextlib
import datetime
import hashlib
import subprocess
import types
import urllib.parse
import xml.etree.ElementTree as ET

import requests
from botocore import auth as botocore_auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, AWS_BIN, REGION, SECRET_KEY

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def quote_key(key):
    """Percent-encodes an object key for a path-style URL, keeping '/' (as botocore does)."""
    return urllib.parse.quote(key.encode("utf-8"), safe="/-_.~")


class _Signer(S3SigV4Auth):
    def __init__(self, credentials, forced_payload_hash=None, region=REGION):
        super().__init__(credentials, "s3", region)
        self._forced = forced_payload_hash

    def payload(self, request):
        if self._forced is not None:
            return self._forced
        return super().payload(request)


@contextlib.contextmanager
def _clock_offset(seconds):
    """botocore.auth takes its timestamp from datetime.datetime.utcnow(): shift it."""
    if not seconds:
        yield
        return
    real = datetime.datetime

    class _Shifted(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + datetime.timedelta(seconds=seconds)

    saved = botocore_auth.datetime
    botocore_auth.datetime = types.SimpleNamespace(datetime=_Shifted)
    try:
        yield
    finally:
        botocore_auth.datetime = saved


def sign(endpoint, method, path, *, query="", headers=None, body=b"", access_key=ACCESS_KEY,
         secret_key=SECRET_KEY, payload_hash=None, clock_offset=0, region=REGION):
    """(url, headers) of a SigV4-signed request; nothing is sent.

    path is already percent-encoded; payload_hash forces the x-amz-content-sha256 value that is
    signed and sent; clock_offset shifts X-Amz-Date by that many seconds; region is the one in
    the credential scope."""
    url = endpoint + path + (("?" + query) if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = _Signer(Credentials(access_key, secret_key), payload_hash, region)
    with _clock_offset(clock_offset):
        signer.add_auth(req)
    return url, dict(req.headers.items())


def signed_request(endpoint, method, path, *, query="", headers=None, body=b"",
                   access_key=ACCESS_KEY, secret_key=SECRET_KEY, payload_hash=None,
                   clock_offset=0, region=REGION, authorization=None, sign_it=True, timeout=30):
    """Sends one request to endpoint + path + '?' + query (see sign() for the knobs).

    authorization replaces the Authorization header after signing; sign_it=False sends the
    request with no signature at all."""
    if sign_it:
        url, hdrs = sign(endpoint, method, path, query=query, headers=headers, body=body,
                         access_key=access_key, secret_key=secret_key,
                         payload_hash=payload_hash, clock_offset=clock_offset, region=region)
    else:
        url = endpoint + path + (("?" + query) if query else "")
        hdrs = dict(headers or {})
    if authorization is not None:
        hdrs["Authorization"] = authorization
    return requests.request(method, url, headers=hdrs, data=body, timeout=timeout,
                            allow_redirects=False)


def parse_error(body):
    """The fields of an S3 <Error> document, as a dict of tag -> text."""
    root = ET.fromstring(body)
    assert root.tag == "Error", f"not an S3 error document: {body[:300]!r}"
    return {child.tag: (child.text or "") for child in root}


def assert_s3_error(resp, code, status, resource=None):
    """resp is an S3 error with this code and status, and a complete error document."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    if resp.request.method == "HEAD":
        return {}
    assert resp.headers.get("Content-Type", "").startswith("application/xml"), resp.headers
    err = parse_error(resp.content)
    assert err.get("Code") == code, err
    for field in ("Message", "Resource", "RequestId"):
        assert err.get(field), f"error document lacks {field}: {err}"
    assert err["RequestId"] == resp.headers.get("x-amz-request-id"), (err, resp.headers)
    if resource is not None:
        assert err["Resource"] == resource, err
    return err


def run_aws(env, *args, stdin=None, check=True, timeout=60):
    """Runs /usr/bin/aws with the given arguments; returns the CompletedProcess (bytes)."""
    proc = subprocess.run([AWS_BIN, *args], env=env, input=stdin, capture_output=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} exited {proc.returncode}:\n"
                             f"stdout: {proc.stdout.decode(errors='replace')[-2000:]}\n"
                             f"stderr: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc
