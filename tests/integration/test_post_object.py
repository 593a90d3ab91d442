"""POST Object: browser form uploads signed with a policy document, made by boto3's
generate_presigned_post and sent with requests, as a web page's form would send them."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client

BUCKET = "shop"


@pytest.fixture(scope="module")
def bucket(s3):
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def post(server, form, fields=None, file=b"picture", filename="p.jpg", bucket=BUCKET, files=None):
    url = form["url"] if form else f"{server.endpoint}/{bucket}"
    data = dict(form["fields"]) if form else {}
    data.update(fields or {})
    return requests.post(url, data=data, files=files or {"file": (filename, file, "image/jpeg")},
                         allow_redirects=False, timeout=30)


def exists(s3, key):
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
        return True
    except ClientError:
        return False


def refused(r, status, code, message=None):
    assert r.status_code == status, r.text
    doc = ET.fromstring(r.content)
    assert doc.findtext("Code") == code, r.text
    if message:
        assert message in doc.findtext("Message"), r.text


def test_upload_with_a_generated_policy(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "img/one.jpg", ExpiresIn=600)
    r = post(server, form, file=b"\xff\xd8 jpeg bytes")
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(b"\xff\xd8 jpeg bytes").hexdigest()
    assert s3.get_object(Bucket=BUCKET, Key="img/one.jpg")["Body"].read() == b"\xff\xd8 jpeg bytes"


def test_filename_metadata_type_and_status(server, s3, bucket):
    fields = {"Content-Type": "image/png", "x-amz-meta-color": "blue", "success_action_status": "201"}
    conditions = [["starts-with", "$key", "user/eric/"], ["starts-with", "$Content-Type", "image/"],
                  {"x-amz-meta-color": "blue"}, {"success_action_status": "201"},
                  ["content-length-range", 1, 1 << 20]]
    form = s3.generate_presigned_post(BUCKET, "user/eric/${filename}", Fields=fields, Conditions=conditions)
    body = os.urandom(300_000)
    r = post(server, form, filename="cat.png", file=body)
    assert r.status_code == 201, r.text
    assert "<Key>user/eric/cat.png</Key>" in r.text and "<Bucket>shop</Bucket>" in r.text
    assert r.headers["Location"] == f"{server.endpoint}/shop/user/eric/cat.png"
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    head = s3.head_object(Bucket=BUCKET, Key="user/eric/cat.png")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"color": "blue"}
    assert head["ContentLength"] == len(body)


def test_redirect_after_upload(server, s3, bucket):
    back = "https://shop.example/done?from=form"
    form = s3.generate_presigned_post(BUCKET, "r.txt", Fields={"success_action_redirect": back},
                                      Conditions=[{"success_action_redirect": back}])
    r = post(server, form, file=b"x")
    assert r.status_code == 303, r.text
    etag = '"%s"' % hashlib.md5(b"x").hexdigest()
    assert r.headers["Location"] == (back + "&bucket=shop&key=r.txt&etag=" + requests.utils.quote(etag, safe=""))


def test_conditions_violated_store_nothing(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "img/${filename}", Conditions=[["content-length-range", 10, 100]])
    r = post(server, form, file=b"x" * 101, filename="big.jpg")
    refused(r, 400, "EntityTooLarge")
    assert ET.fromstring(r.content).findtext("MaxSizeAllowed") == "100"
    r = post(server, form, file=b"x" * 9, filename="small.jpg")
    refused(r, 400, "EntityTooSmall")
    doc = ET.fromstring(r.content)
    assert (doc.findtext("ProposedSize"), doc.findtext("MinSizeAllowed")) == ("9", "10")
    assert not exists(s3, "img/big.jpg") and not exists(s3, "img/small.jpg")
    # A key outside the signed prefix.
    r = post(server, form, fields={"key": "other/x.jpg"})
    refused(r, 403, "AccessDenied", 'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "img/"]')
    # A field the policy does not name.
    r = post(server, form, fields={"x-amz-meta-evil": "1"}, filename="meta.jpg")
    refused(r, 403, "AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-evil")
    # x-ignore-* fields and the submit button renamed to one are allowed.
    r = post(server, form, fields={"x-ignore-submit": "Upload"}, file=b"y" * 20, filename="ok.jpg")
    assert r.status_code == 204, r.text
    assert not exists(s3, "other/x.jpg") and not exists(s3, "img/meta.jpg") and exists(s3, "img/ok.jpg")


def test_tampered_and_expired_policies(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "t.txt")
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    policy["conditions"].append(["content-length-range", 0, 1 << 40])
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    r = post(server, form, fields={"policy": forged})
    refused(r, 403, "SignatureDoesNotMatch")
    # What AWS names: the key, the policy signed (the string to sign) and the signature sent.
    doc = ET.fromstring(r.content)
    assert doc.findtext("AWSAccessKeyId") == ACCESS_KEY and doc.findtext("StringToSign") == forged
    assert doc.findtext("SignatureProvided") == form["fields"]["x-amz-signature"]
    assert SECRET_KEY.encode() not in r.content
    refused(post(server, form, fields={"x-amz-signature": "0" * 64}), 403, "SignatureDoesNotMatch")
    cred = form["fields"]["x-amz-credential"].replace(ACCESS_KEY, "nobody")
    r = post(server, form, fields={"x-amz-credential": cred})
    refused(r, 403, "InvalidAccessKeyId")
    assert ET.fromstring(r.content).findtext("AWSAccessKeyId") == "nobody"
    expired = s3.generate_presigned_post(BUCKET, "t.txt", ExpiresIn=-5)
    refused(post(server, expired), 403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    # No policy at all: anonymous, and this bucket's policy lets no one write.
    r = post(server, None, fields={"key": "t.txt"})
    refused(r, 403, "AccessDenied")
    assert not exists(s3, "t.txt")


def sign_form(policy, access_key=ACCESS_KEY, secret=SECRET_KEY, date=None):
    """The fields of a form signed by hand, for policies boto3 would not write."""
    date = date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cred = f"{access_key}/{date[:8]}/us-east-1/s3/aws4_request"
    policy = dict(policy)
    policy["conditions"] = policy["conditions"] + [{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                                                   {"x-amz-credential": cred}, {"x-amz-date": date}]
    b64 = base64.b64encode(json.dumps(policy).encode()).decode()
    k = ("AWS4" + secret).encode()
    for part in (date[:8], "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, b64.encode(), hashlib.sha256).hexdigest()
    return {"policy": b64, "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": cred,
            "x-amz-date": date, "x-amz-signature": sig}


def later(seconds=600):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + seconds))


def test_eq_and_wrong_bucket(server, s3, bucket):
    s3.create_bucket(Bucket="elsewhere")
    fields = sign_form({"expiration": later(), "conditions": [["eq", "$bucket", BUCKET], ["eq", "$key", "e.txt"]]})
    fields["key"] = "e.txt"
    assert post(server, None, fields=fields).status_code == 204
    r = post(server, None, fields=fields, bucket="elsewhere")
    refused(r, 403, "AccessDenied", "Policy Condition failed")
    fields["key"] = "f.txt"
    refused(post(server, None, fields=fields), 403, "AccessDenied", '["eq", "$key", "e.txt"]')
    assert not exists(s3, "f.txt")


def test_malformed_forms(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "m.txt")
    url = form["url"]
    r = requests.post(url, data=b"key=m.txt", headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    refused(r, 412, "PreconditionFailed")
    r = requests.post(url, data=b"--b\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nm.txt",
                      headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=10)
    assert r.status_code == 400, r.text
    # A form without a file part.
    r = requests.post(url, files={k: (None, v) for k, v in form["fields"].items()}, timeout=10)
    refused(r, 400, "InvalidArgument", "POST requires exactly one file upload per request.")
    # A field repeated, to make the policy see one value and the store another.
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
                    for k, v in list(form["fields"].items()) + [("key", "other.txt")])
    body += b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc\r\n--b--\r\n'
    r = requests.post(url, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=10)
    refused(r, 400, "InvalidArgument", "more than once")
    # Fields before the file are bounded.
    r = post(server, form, fields={"x-ignore-pad": "a" * 30000})
    refused(r, 400, "MaxPostPreDataLengthExceededError")
    assert not exists(s3, "m.txt") and not exists(s3, "other.txt")


def test_fields_after_the_file_are_ignored(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "after.txt")
    body = b"".join(b'--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
                    for k, v in form["fields"].items())
    body += b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n--XyZ-not-a-delimiter\r\n'
    body += b'--XyZ\r\nContent-Disposition: form-data; name="x-amz-meta-late"\r\n\r\nv\r\n--XyZ--\r\n'
    r = requests.post(form["url"], data=body, headers={"Content-Type": "multipart/form-data; boundary=XyZ"}, timeout=10)
    assert r.status_code == 204, r.text
    got = s3.get_object(Bucket=BUCKET, Key="after.txt")
    assert got["Body"].read() == b"--XyZ-not-a-delimiter"
    assert got["Metadata"] == {}


def admin_key(server, *args):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    out = subprocess.run([COFFER_BIN, "admin", "key", "add", "--json", *args], env=env,
                         capture_output=True, text=True, check=True).stdout
    k = json.loads(out)
    return s3_client(server.endpoint, k["access_key"], k["secret_key"])


def test_the_signers_own_rights_apply(server, s3, bucket):
    reader = admin_key(server, "--policy", "readonly")
    r = post(server, reader.generate_presigned_post(BUCKET, "ro.txt"))
    refused(r, 403, "AccessDenied")
    scoped = admin_key(server, "--policy", "readwrite", "--bucket", BUCKET, "--prefix", "uploads/")
    assert post(server, scoped.generate_presigned_post(BUCKET, "uploads/in.txt")).status_code == 204
    refused(post(server, scoped.generate_presigned_post(BUCKET, "out.txt")), 403, "AccessDenied")
    writer = admin_key(server, "--policy", "writeonly")
    assert post(server, writer.generate_presigned_post(BUCKET, "wo.txt"), file=b"first").status_code == 204
    # A writeonly key creates, never replaces.
    refused(post(server, writer.generate_presigned_post(BUCKET, "wo.txt"), file=b"second"), 403, "AccessDenied")
    assert s3.get_object(Bucket=BUCKET, Key="wo.txt")["Body"].read() == b"first"
    assert not exists(s3, "ro.txt") and not exists(s3, "out.txt")


def test_large_file_streams(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "big.bin", Conditions=[["content-length-range", 0, 64 << 20]])
    body = os.urandom(24 << 20)
    r = post(server, form, file=body)
    assert r.status_code == 204, r.text
    assert r.headers["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    assert s3.head_object(Bucket=BUCKET, Key="big.bin")["ContentLength"] == len(body)


def presign_post(server, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COFFER_", "AWS_"))}
    env.update(COFFER_ENDPOINT=server.endpoint, COFFER_ACCESS_KEY=ACCESS_KEY, COFFER_SECRET_KEY=SECRET_KEY)
    p = subprocess.run([COFFER_BIN, "presign", "--post", *args], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert SECRET_KEY not in p.stdout + p.stderr
    return json.loads(p.stdout)


def test_coffer_presign_post(server, s3, bucket):
    form = presign_post(server, "s3://shop/cli/${filename}", "--max-size", "100", "--expires", "10m")
    assert form["url"] == f"{server.endpoint}/shop"
    assert post(server, form, file=b"small", filename="a.txt").status_code == 204
    assert stored_body(s3, "cli/a.txt") == b"small"
    refused(post(server, form, file=b"x" * 101, filename="b.txt"), 400, "EntityTooLarge")
    refused(post(server, form, fields={"key": "elsewhere/c.txt"}), 403, "AccessDenied")
    exact = presign_post(server, "s3://shop/cli/exact.txt")
    assert post(server, exact, file=b"e").status_code == 204
    refused(post(server, exact, fields={"key": "cli/other.txt"}), 403, "AccessDenied")
    assert not exists(s3, "cli/b.txt") and not exists(s3, "cli/other.txt")


def stored_body(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


TAGS_XML = ("<Tagging><TagSet><Tag><Key>shop</Key><Value>spring</Value></Tag>"
            "<Tag><Key>empty</Key><Value></Value></Tag></TagSet></Tagging>")


def test_tagging_field_stores_tags_as_a_put_would(server, s3, bucket):
    form = s3.generate_presigned_post(BUCKET, "tagged.jpg", Fields={"tagging": TAGS_XML},
                                      Conditions=[{"tagging": TAGS_XML}])
    r = post(server, form)
    assert r.status_code == 204, r.text
    tags = s3.get_object_tagging(Bucket=BUCKET, Key="tagged.jpg")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("empty", ""), ("shop", "spring")]
    assert s3.get_object(Bucket=BUCKET, Key="tagged.jpg")["TagCount"] == 2

    # Tags the tagging API would refuse are refused here too, before anything is stored.
    for bad, code in (("<Tagging><TagSet><Tag><Key>aws:x</Key><Value>v</Value></Tag></TagSet></Tagging>",
                       "InvalidTag"),
                      ("<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>", "MalformedXML"),
                      ("k=v", "MalformedXML")):
        form = s3.generate_presigned_post(BUCKET, "badtags.jpg", Fields={"tagging": bad},
                                          Conditions=[{"tagging": bad}])
        refused(post(server, form), 400, code)
    assert not exists(s3, "badtags.jpg")

    # A tagging field the policy does not name is an extra field, as any other.
    form = s3.generate_presigned_post(BUCKET, "extra.jpg")
    refused(post(server, form, fields={"tagging": TAGS_XML}), 403, "AccessDenied", "Extra input fields: tagging")
    assert not exists(s3, "extra.jpg")


def test_tagging_field_needs_put_object_tagging(server, s3, bucket):
    writer = admin_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    ak = writer._request_signer._credentials.access_key
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:PutObjectTagging",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    try:
        form = writer.generate_presigned_post(BUCKET, "denied-tags.jpg", Fields={"tagging": TAGS_XML},
                                              Conditions=[{"tagging": TAGS_XML}])
        refused(post(server, form), 403, "AccessDenied")
        assert not exists(s3, "denied-tags.jpg")
        assert post(server, writer.generate_presigned_post(BUCKET, "untagged.jpg")).status_code == 204
    finally:
        s3.delete_bucket_policy(Bucket=BUCKET)


def test_anonymous_form_upload_follows_the_bucket_policy(server, s3, bucket):
    """No policy and no signature: an anonymous upload, allowed only where the bucket policy lets
    anyone PutObject (as a PUT would be), as on AWS."""
    fields = {"key": "drop/${filename}", "Content-Type": "image/jpeg"}
    refused(post(server, None, fields=fields), 403, "AccessDenied")
    assert not exists(s3, "drop/p.jpg")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/drop/*"}]}))
    try:
        r = post(server, None, fields=fields, file=b"anon bytes")
        assert r.status_code == 204, r.text
        got = s3.get_object(Bucket=BUCKET, Key="drop/p.jpg")
        assert got["Body"].read() == b"anon bytes" and got["ContentType"] == "image/jpeg"
        # Outside the granted prefix, with tags (no PutObjectTagging), or half-signed: refused.
        refused(post(server, None, fields={"key": "other.jpg"}), 403, "AccessDenied")
        refused(post(server, None, fields={"key": "drop/t.jpg", "tagging": TAGS_XML}), 403, "AccessDenied")
        refused(post(server, None, fields={"key": "drop/s.jpg", "x-amz-signature": "0" * 64}), 400,
                "InvalidArgument", "policy")
        assert not exists(s3, "other.jpg") and not exists(s3, "drop/t.jpg") and not exists(s3, "drop/s.jpg")
    finally:
        s3.delete_bucket_policy(Bucket=BUCKET)
