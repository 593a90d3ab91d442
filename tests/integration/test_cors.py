"""CORS: Put/Get/DeleteBucketCors through boto3, preflight OPTIONS and the headers of actual
requests, as AWS S3 answers them."""
import json
import os
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client
from helpers_http import sign_headers

NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
               "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "
               "are not whitelisted by the resource's CORS spec.")

SHOP = {
    "CORSRules": [
        {"ID": "shop", "AllowedOrigins": ["https://shop.example", "http://*.shop.example"],
         "AllowedMethods": ["GET", "PUT", "POST"], "AllowedHeaders": ["content-type", "x-amz-*"],
         "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
    ]
}


def code_of(exc):
    return exc.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="cors")
    s3.put_object(Bucket="cors", Key="a.txt", Body=b"hello")
    return "cors"


def preflight(server, path, origin="https://shop.example", method="PUT", headers=None):
    h = {}
    if origin:
        h["Origin"] = origin
    if method:
        h["Access-Control-Request-Method"] = method
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return requests.options(server.endpoint + path, headers=h, timeout=10)


def test_no_configuration(server, s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(e) == "NoSuchCORSConfiguration"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    r = preflight(server, "/cors/a.txt")
    assert r.status_code == 403
    assert "<Code>AccessForbidden</Code>" in r.text
    assert "CORSResponse: CORS is not enabled for this bucket." in r.text
    assert "Access-Control-Allow-Origin" not in r.headers
    # An actual request from a page gets no CORS headers: the browser then refuses to show it.
    r = requests.get(server.endpoint + "/cors/a.txt", headers={"Origin": "https://shop.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_put_get_delete_round_trip(s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=SHOP)
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got[0]["ID"] == "shop"
    assert got[0]["AllowedOrigins"] == SHOP["CORSRules"][0]["AllowedOrigins"]
    assert sorted(got[0]["AllowedMethods"]) == ["GET", "POST", "PUT"]
    assert got[0]["AllowedHeaders"] == ["content-type", "x-amz-*"]
    assert got[0]["ExposeHeaders"] == ["ETag", "x-amz-request-id"]
    assert got[0]["MaxAgeSeconds"] == 600
    assert got[1]["AllowedOrigins"] == ["*"] and "MaxAgeSeconds" not in got[1]
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket=bucket)
    assert code_of(e) == "NoSuchCORSConfiguration"


def test_preflight_and_actual_requests(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=SHOP)
    r = preflight(server, "/cors/new.bin", headers="Content-Type, X-Amz-Meta-Color")
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT, POST"
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Amz-Meta-Color"
    assert r.headers["Access-Control-Max-Age"] == "600"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert "Origin" in r.headers["Vary"]
    # The wildcard origin: one label under shop.example, over http only.
    assert preflight(server, "/cors/x", origin="http://img.shop.example").status_code == 200
    # The second rule lets anyone GET, answered with "*".
    r = preflight(server, "/cors/x", origin="https://elsewhere.example", method="GET")
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    # Refused: another origin writing, a method no rule names, a header no rule allows.
    for kw in ({"origin": "https://evil.example"}, {"origin": "https://shop.example.evil"},
               {"method": "DELETE"}, {"headers": "authorization"}):
        r = preflight(server, "/cors/x", **kw)
        assert r.status_code == 403, (kw, r.text)
        assert NOT_ALLOWED.replace("'", "&apos;") in r.text
        assert "Access-Control-Allow-Origin" not in r.headers
    # A preflight goes to the very URL of the request to come: a presigned query is not checked.
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p.bin"}, ExpiresIn=60)
    r = requests.options(url, headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "PUT"},
                         timeout=10)
    assert r.status_code == 200, r.text
    # Malformed preflights.
    r = preflight(server, "/cors/x", origin=None)
    assert r.status_code == 400 and "<Code>BadRequest</Code>" in r.text
    r = preflight(server, "/cors/x", method="PATCH")
    assert r.status_code == 400 and "Invalid Access-Control-Request-Method" in r.text
    r = preflight(server, "/nosuchbucket/x")
    assert r.status_code == 403
    # Actual requests: the matching rule's headers, also on an error response.
    r = requests.get(server.endpoint + "/cors/a.txt", headers={"Origin": "https://shop.example"}, timeout=10)
    assert r.status_code == 403  # unsigned: refused, but the page may read why
    assert r.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert r.headers["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert "Origin" in r.headers["Vary"]
    r = requests.get(server.endpoint + "/cors/a.txt", headers={"Origin": "https://evil.example"}, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "*"  # the GET-for-anyone rule
    r = requests.delete(server.endpoint + "/cors/a.txt", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("rules,code", [
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest"),
    ([{"AllowedOrigins": ["https://*.a.*"], "AllowedMethods": ["GET"]}], "InvalidRequest"),
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"], "AllowedHeaders": ["x-*-*"]}], "InvalidRequest"),
    ([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, "InvalidRequest"),
])
def test_refused_configurations_keep_the_previous_one(s3, bucket, rules, code):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=SHOP)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert code_of(e) == code, e.value.response
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["ID"] == "shop"


def signed_put(server, body, content_md5=None):
    """A PutBucketCors with a body boto3 would never send."""
    headers = {"Content-Type": "application/xml"}
    if content_md5:
        headers["Content-MD5"] = content_md5
    host = server.endpoint.split("//", 1)[1]
    headers = sign_headers("PUT", host, "/cors?cors", headers, body=body)
    return requests.put(server.endpoint + "/cors?cors", data=body, headers=headers, timeout=10)


def test_malformed_xml_and_digest(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=SHOP)
    for body in (b"<CORSConfiguration>", b"<CORSConfiguration></CORSConfiguration>",
                 b"<Other><CORSRule/></Other>",
                 b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
                 b"<!DOCTYPE x [<!ENTITY a 'b'>]><CORSConfiguration/>"):
        r = signed_put(server, body)
        assert r.status_code == 400 and "<Code>MalformedXML</Code>" in r.text, (body, r.text)
    good = (b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
            b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>")
    r = signed_put(server, good, content_md5="1B2M2Y8AsgTpgAmY7PhCfg==")  # MD5 of ""
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text
    r = signed_put(server, b"<x>" * 70000)
    assert r.status_code == 400
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["ID"] == "shop"


def test_only_root_configures_and_bucket_delete_drops_it(server, s3):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    out = subprocess.run([COFFER_BIN, "admin", "key", "add", "--json", "--policy", "readwrite"], env=env,
                         capture_output=True, text=True, check=True).stdout
    k = json.loads(out)
    user = s3_client(server.endpoint, k["access_key"], k["secret_key"])
    s3.create_bucket(Bucket="gone")
    with pytest.raises(ClientError) as e:
        user.put_bucket_cors(Bucket="gone", CORSConfiguration=SHOP)
    assert code_of(e) == "AccessDenied"
    s3.put_bucket_cors(Bucket="gone", CORSConfiguration=SHOP)
    s3.delete_bucket(Bucket="gone")
    s3.create_bucket(Bucket="gone")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="gone")
    assert code_of(e) == "NoSuchCORSConfiguration"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_cors(Bucket="nosuchbucket")
    assert code_of(e) == "NoSuchBucket"


def test_configuration_survives_a_restart(make_server):
    srv = make_server()
    srv.start()
    c = s3_client(srv.endpoint)
    c.create_bucket(Bucket="keep")
    c.put_bucket_cors(Bucket="keep", CORSConfiguration=SHOP)
    srv.stop()
    srv.start()
    assert c.get_bucket_cors(Bucket="keep")["CORSRules"][0]["ID"] == "shop"
    r = preflight(srv, "/keep/x")
    assert r.status_code == 200
