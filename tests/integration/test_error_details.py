"""The elements AWS adds to error documents beyond Code and Message, which SDKs expose (boto3's
e.response['Error'], the JS SDK's error fields) and people debug with: SignatureDoesNotMatch's
canonical request and string to sign, the sizes of the too-large and too-small errors, the
digests of BadDigest and XAmzContentSHA256Mismatch, the part InvalidPart names. And the error
document stays parseable XML whatever request bytes a message quotes."""
import base64
import datetime
import hashlib
import hmac
import re
import socket
import xml.etree.ElementTree as ET

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, s3_client
from helpers_clients import assert_s3_error, parse_error, sign, signed_request
from helpers_http import build_request, raw_exchange, sign_headers

WRONG_SECRET = "wrong-secret-" + "x" * 27


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket="details")
    s3.put_object(Bucket="details", Key="obj", Body=b"hello")
    return "details"


def client_error(call, **kw):
    with pytest.raises(ClientError) as ei:
        call(**kw)
    return ei.value.response


def unbytes(spelled):
    """'41 57 53' -> b'AWS' (AWS's *Bytes elements)."""
    return bytes(int(h, 16) for h in spelled.split(" ")) if spelled else b""


def real_signature(string_to_sign, date):
    """The signature the server's secret gives: an error document must never reveal it."""
    def h(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()
    k = h(h(h(h(("AWS4" + SECRET_KEY).encode(), date), REGION), "s3"), "aws4_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest(), k.hex()


def assert_no_secret(body, string_to_sign, date):
    sig, signing_key = real_signature(string_to_sign, date)
    for secret in (SECRET_KEY, WRONG_SECRET, sig, signing_key):
        assert secret.encode() not in body, f"{secret!r} in the error document"


def test_signature_mismatch_names_what_the_server_signed(server, bucket):
    """boto3 signing with a wrong secret: the error carries the key id, the signature sent, and a
    canonical request identical to the one botocore signed (so the secret is the difference)."""
    bad = s3_client(server.endpoint, secret_key=WRONG_SECRET)
    resp = client_error(bad.get_object, Bucket=bucket, Key="obj")
    err = resp["Error"]
    assert err["Code"] == "SignatureDoesNotMatch"
    assert err["AWSAccessKeyId"] == ACCESS_KEY
    assert re.fullmatch(r"[0-9a-f]{64}", err["SignatureProvided"]), err
    sts, creq = err["StringToSign"], err["CanonicalRequest"]
    assert unbytes(err["StringToSignBytes"]) == sts.encode()
    assert unbytes(err["CanonicalRequestBytes"]) == creq.encode()
    lines = sts.split("\n")
    assert lines[0] == "AWS4-HMAC-SHA256" and lines[2].endswith(f"/{REGION}/s3/aws4_request"), sts
    assert lines[3] == hashlib.sha256(creq.encode()).hexdigest()
    assert creq.startswith(f"GET\n/{bucket}/obj\n"), creq

    # The same request signed by hand: the server's canonical request is the client's.
    url, headers = sign(server.endpoint, "GET", f"/{bucket}/obj", secret_key=WRONG_SECRET)
    r = requests.get(url, headers=headers, timeout=30)
    fields = assert_s3_error(r, "SignatureDoesNotMatch", 403)
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    req = AWSRequest(method="GET", url=url, headers=unsigned)
    ours = S3SigV4Auth(Credentials(ACCESS_KEY, WRONG_SECRET), "s3", REGION)
    req.context["timestamp"] = headers["X-Amz-Date"]
    assert fields["CanonicalRequest"] == ours.canonical_request(req)
    assert fields["SignatureProvided"] == headers["Authorization"].rsplit("Signature=", 1)[1]
    assert_no_secret(r.content, fields["StringToSign"], headers["X-Amz-Date"][:8])


def test_presigned_mismatch_leaves_signature_out(server, bucket):
    bad = s3_client(server.endpoint, secret_key=WRONG_SECRET)
    url = bad.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "obj"}, ExpiresIn=300)
    r = requests.get(url, timeout=30)
    err = assert_s3_error(r, "SignatureDoesNotMatch", 403)
    assert err["AWSAccessKeyId"] == ACCESS_KEY
    creq = err["CanonicalRequest"]
    assert creq.endswith("\nhost\nUNSIGNED-PAYLOAD"), creq
    assert "X-Amz-Signature" not in creq and "X-Amz-Credential=" in creq
    date = re.search(r"X-Amz-Date=(\d{8})", url).group(1)
    assert_no_secret(r.content, err["StringToSign"], date)


def test_invalid_access_key_names_it(server, bucket):
    bad = s3_client(server.endpoint, access_key="NOSUCHKEY123")
    err = client_error(bad.head_bucket, Bucket=bucket)  # HEAD: no body, status only
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    err = client_error(bad.list_objects_v2, Bucket=bucket)["Error"]
    assert err["Code"] == "InvalidAccessKeyId"
    assert err["AWSAccessKeyId"] == "NOSUCHKEY123"


def test_request_time_too_skewed_gives_both_clocks(server, bucket):
    r = signed_request(server.endpoint, "GET", f"/{bucket}/obj", clock_offset=3600)
    err = assert_s3_error(r, "RequestTimeTooSkewed", 403)
    sent = r.request.headers["X-Amz-Date"]
    assert err["RequestTime"] == sent
    server_time = datetime.datetime.strptime(err["ServerTime"], "%Y-%m-%dT%H:%M:%SZ")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((server_time - now).total_seconds()) < 60, err
    assert err["MaxAllowedSkewMilliseconds"] == "900000"


def test_metadata_too_large_gives_size(s3, bucket):
    meta = {"big": "v" * 2100}
    err = client_error(s3.put_object, Bucket=bucket, Key="m", Body=b"x", Metadata=meta)["Error"]
    assert err["Code"] == "MetadataTooLarge"
    assert err["Size"] == str(len("big") + 2100)
    assert err["MaxSizeAllowed"] == "2048"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="m")  # nothing stored


def test_entity_too_small_names_the_part(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=1, Body=b"a")["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=2, Body=b"b")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}
    err = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="small", UploadId=up,
                       MultipartUpload=parts)["Error"]
    assert err["Code"] == "EntityTooSmall"
    assert (err["ProposedSize"], err["MinSizeAllowed"], err["PartNumber"]) == ("1", "5242880", "1")
    assert err["ETag"].strip('"') == e1.strip('"')


def test_invalid_part_names_upload_part_and_etag(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="inv")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="inv", UploadId=up, PartNumber=1, Body=b"a")
    wrong = '"' + "0" * 32 + '"'
    err = client_error(s3.complete_multipart_upload, Bucket=bucket, Key="inv", UploadId=up,
                       MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": wrong}]})["Error"]
    assert err["Code"] == "InvalidPart"
    assert err["UploadId"] == up and err["PartNumber"] == "1"
    assert err["ETag"].strip('"') == "0" * 32


def test_entity_too_large_gives_sizes(server, bucket):
    size = 6 << 30
    hdrs = {"Content-Length": str(size), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    signed = sign_headers("PUT", f"127.0.0.1:{server.port}", f"/{bucket}/huge", hdrs, "UNSIGNED-PAYLOAD")
    resp = raw_exchange(server.port, build_request("PUT", f"/{bucket}/huge", signed))
    assert resp.status == 400 and resp.code == "EntityTooLarge", resp
    err = parse_error(resp.body)
    assert err["ProposedSize"] == str(size)
    assert err["MaxSizeAllowed"] == str(5 << 30)


def test_bad_digest_gives_both_digests(s3, bucket):
    body, claimed = b"the body", hashlib.md5(b"another body").digest()
    err = client_error(s3.put_object, Bucket=bucket, Key="md5", Body=body,
                       ContentMD5=base64.b64encode(claimed).decode())["Error"]
    assert err["Code"] == "BadDigest"
    assert err["CalculatedDigest"] == base64.b64encode(hashlib.md5(body).digest()).decode()
    assert err["ExpectedDigest"] == claimed.hex()
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="md5")


def test_content_sha256_mismatch_gives_both_hashes(server, bucket):
    lie = hashlib.sha256(b"not the body").hexdigest()
    r = signed_request(server.endpoint, "PUT", f"/{bucket}/sha", body=b"the body", payload_hash=lie)
    err = assert_s3_error(r, "XAmzContentSHA256Mismatch", 400)
    assert err["ClientComputedContentSHA256"] == lie
    assert err["S3ComputedContentSHA256"] == hashlib.sha256(b"the body").hexdigest()


# ---- error documents that quote request bytes ----

def parses(body):
    root = ET.fromstring(body)  # raises on invalid UTF-8, controls, U+FFFE
    assert root.tag == "Error"
    return {c.tag: c.text or "" for c in root}


def test_message_quoting_invalid_utf8_header_parses(server):
    """x-amz-content-sha256 is quoted into the message: bytes that are not UTF-8 become U+FFFD."""
    host = f"127.0.0.1:{server.port}"
    signed = sign_headers("GET", host, "/details/obj")
    for value in ("STREAMING-\xff\xfe-PAYLOAD", "STREAMING-\xc3(", "STREAMING-\xef\xbf\xbe"):
        hdrs = {k: v for k, v in signed.items() if k.lower() != "x-amz-content-sha256"}
        hdrs["x-amz-content-sha256"] = value
        resp = raw_exchange(server.port, build_request("GET", "/details/obj", hdrs))
        assert resp.status in (400, 501), resp
        err = parses(resp.body)
        assert err["Code"] in ("InvalidArgument", "NotImplemented"), err
        assert "STREAMING-\ufffd" in err["Message"], err


def test_message_quoting_preflight_method_parses(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://shop.example"], "AllowedMethods": ["PUT"]}]})
    data = build_request("OPTIONS", f"/{bucket}/obj", {
        "Host": f"127.0.0.1:{server.port}", "Origin": "https://shop.example",
        "Access-Control-Request-Method": "P\xffT\xfe"})
    resp = raw_exchange(server.port, data)
    assert resp.status in (400, 403), resp
    parses(resp.body)


@pytest.mark.parametrize("pad", ["", "a", "aa"])
def test_message_cut_inside_a_character_parses(s3, bucket, pad):
    """A message that quotes a long value is cut at a byte limit: never inside a character in
    the document sent. One of the three paddings cuts a 3-byte character in two."""
    up = s3.create_multipart_upload(Bucket=bucket, Key="cut")["UploadId"]
    etag = pad + "\u20ac" * 80
    with pytest.raises(ClientError) as ei:
        s3.complete_multipart_upload(Bucket=bucket, Key="cut", UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    err = ei.value.response["Error"]
    assert err["Code"] == "InvalidPart", err
    assert "\u20ac" in err["Message"]


@pytest.mark.parametrize("pad", ["", "a", "aa"])
def test_tag_message_cut_inside_a_character_parses(server, bucket, pad):
    key = pad + "\u20ac" * 43
    tagging = requests.utils.quote(f"{key}=1&{key}=2", safe="=&")
    r = signed_request(server.endpoint, "PUT", f"/{bucket}/tagged", body=b"x",
                       headers={"x-amz-tagging": tagging})
    err = assert_s3_error(r, "InvalidTag", 400)
    assert "appears twice" in err["Message"]


def test_resource_with_noncharacter_key_parses(server, bucket):
    """U+FFFE is valid UTF-8 but no XML character: the Resource and Key elements percent-encode it."""
    r = signed_request(server.endpoint, "GET", f"/{bucket}/a%EF%BF%BEb")
    err = assert_s3_error(r, "NoSuchKey", 404)
    assert err["Key"] == "a%EF%BF%BEb", err


def test_host_id_header_and_element(server, s3, bucket):
    """x-amz-id-2 on every response and HostId in every error document, as AWS; boto3 reports
    it as ResponseMetadata.HostId."""
    ok = s3.head_object(Bucket=bucket, Key="obj")["ResponseMetadata"]
    host_id = ok["HTTPHeaders"]["x-amz-id-2"]
    assert host_id and ok["HostId"] == host_id
    r = signed_request(server.endpoint, "GET", f"/{bucket}/missing")
    err = assert_s3_error(r, "NoSuchKey", 404)
    assert err["HostId"] == r.headers["x-amz-id-2"] == host_id
    e = client_error(s3.get_object, Bucket=bucket, Key="missing")
    assert e["ResponseMetadata"]["HostId"] == host_id


def test_head_errors_have_status_and_headers_but_no_body(server, bucket):
    """A HEAD that fails answers with the status and the x-amz-* headers only, and the
    connection carries the next request."""
    host = f"127.0.0.1:{server.port}"
    one = build_request("HEAD", f"/{bucket}/missing", sign_headers("HEAD", host, f"/{bucket}/missing"))
    two = build_request("GET", f"/{bucket}/obj", sign_headers("GET", host, f"/{bucket}/obj"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(one + two)
        buf = b""
        while buf.count(b"\r\n\r\n") < 2 or not buf.endswith(b"hello"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404"), buf[:300]
    lower = head.lower()
    assert b"\r\nx-amz-request-id: " in lower and b"\r\nx-amz-id-2: " in lower, head
    # The next bytes are the GET's response: the HEAD sent no body.
    assert rest.startswith(b"HTTP/1.1 200"), rest[:200]
    assert rest.endswith(b"hello")


def test_wrong_region_names_the_right_one(server, bucket):
    """AWS's message and <Region>, which SDKs read to sign again for the right region."""
    r = signed_request(server.endpoint, "GET", f"/{bucket}/obj", region="eu-west-1")
    err = assert_s3_error(r, "AuthorizationHeaderMalformed", 400)
    assert err["Message"] == ("The authorization header is malformed; the region 'eu-west-1' is wrong; "
                              f"expecting '{REGION}'")
    assert err["Region"] == REGION
    url = s3_client(server.endpoint).generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "obj"}, ExpiresIn=60).replace(
        f"%2F{REGION}%2F", "%2Feu-west-1%2F")
    err = assert_s3_error(requests.get(url, timeout=30), "AuthorizationQueryParametersError", 400)
    assert err["Region"] == REGION


def test_boto3_configured_for_another_region_is_redirected(server, bucket):
    """boto3 signed for eu-west-1 reads <Region> and signs again, as against AWS."""
    other = boto3.client("s3", endpoint_url=server.endpoint, region_name="eu-west-1",
                         aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                         config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    assert other.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"hello"


def test_invalid_digest_echoes_the_value(server, s3, bucket):
    for value in ("!!notbase64", "AAAA", "<&>"):
        r = signed_request(server.endpoint, "PUT", f"/{bucket}/inv", body=b"x",
                           headers={"Content-MD5": value})
        err = assert_s3_error(r, "InvalidDigest", 400)
        assert err["Content-MD5"] == value, err
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="inv")


def test_checksum_mismatch_message_names_the_algorithm(s3, bucket):
    """AWS: "The CRC32 you specified did not match the calculated checksum." (SDKs show it)."""
    err = client_error(s3.put_object, Bucket=bucket, Key="ck", Body=b"body",
                       ChecksumCRC32=base64.b64encode(b"\0\0\0\1").decode())["Error"]
    assert err["Code"] == "BadDigest"
    assert err["Message"] == "The CRC32 you specified did not match the calculated checksum."
