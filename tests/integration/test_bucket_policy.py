"""Bucket policies as users paste them: Allow and Deny, s3:*, several statements, principals
that are access keys, and Condition blocks (IpAddress from other loopback addresses, StringLike
on s3:prefix, Referer, IfExists), driven by boto3 and by anonymous requests (requests); and
what coffer cannot enforce is refused with MalformedPolicy and the reason, leaving the previous
policy in place."""
import json
import os
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError
from requests.adapters import HTTPAdapter

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, s3_client

BUCKET = "pol"


class SourceAddress(HTTPAdapter):
    """Connect from a given local address: the server sees 127.0.0.2 as another client."""

    def __init__(self, address):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def anon(address="127.0.0.1"):
    s = requests.Session()
    s.mount("http://", SourceAddress(address))
    return s


def code_of(resp):
    if resp.status_code < 300 or not resp.content:
        return None
    text = resp.text
    return text[text.index("<Code>") + 6:text.index("</Code>")]


def new_key(server, *args):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    p = subprocess.run([COFFER_BIN, "admin", "key", "add", "--json", *args], env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    return out["access_key"], out["secret_key"]


def put_policy(s3, *statements, bucket=BUCKET):
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17",
                                                           "Statement": list(statements)}))


def error_of(fn, *a, **kw):
    with pytest.raises(ClientError) as e:
        fn(*a, **kw)
    return e.value.response["Error"]


@pytest.fixture()
def bucket(s3):
    try:
        s3.create_bucket(Bucket=BUCKET)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket=BUCKET, Key="public/a.txt", Body=b"a")
    s3.put_object(Bucket=BUCKET, Key="private/b.txt", Body=b"b")
    s3.put_object(Bucket=BUCKET, Key="home/ann/c.txt", Body=b"c")
    yield f"arn:aws:s3:::{BUCKET}"
    s3.delete_bucket_policy(Bucket=BUCKET)


def test_s3_star_to_anyone_allows_anonymous_writes(server, s3, bucket):
    url = f"{server.endpoint}/{BUCKET}/public/new.txt"
    assert anon().put(url, data=b"nope").status_code == 403
    put_policy(s3, {"Sid": "everything", "Effect": "Allow", "Principal": "*", "Action": "s3:*",
                    "Resource": f"{bucket}/public/*"})
    # What the owner wrote is what is enforced: anyone may write and delete under public/.
    r = anon().put(url, data=b"from anyone")
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=BUCKET, Key="public/new.txt")["Body"].read() == b"from anyone"
    assert anon().get(url).content == b"from anyone"
    assert anon().delete(url).status_code == 204
    assert error_of(s3.head_object, Bucket=BUCKET, Key="public/new.txt")["Code"] == "404"
    # ... and nothing beyond the resources it names, nor what only root may do.
    r = anon().put(f"{server.endpoint}/{BUCKET}/private/new.txt", data=b"x")
    assert r.status_code == 403 and code_of(r) == "AccessDenied"
    assert anon().get(f"{server.endpoint}/{BUCKET}").status_code == 403        # listing: bucket ARN
    assert anon().delete(f"{server.endpoint}/{BUCKET}?policy").status_code == 403
    assert anon().delete(f"{server.endpoint}/{BUCKET}").status_code == 403
    assert "Statement" in s3.get_bucket_policy(Bucket=BUCKET)["Policy"]
    assert "lets anonymous requests write" in server.log()


def test_set_public_stays_read_only(server, s3, bucket):
    env = dict(os.environ, COFFER_ENDPOINT=server.endpoint, COFFER_ROOT_USER=ACCESS_KEY,
               COFFER_ROOT_PASSWORD=SECRET_KEY)
    p = subprocess.run([COFFER_BIN, "admin", "bucket", "set-public", BUCKET, "--prefix", "public/"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert anon().get(f"{server.endpoint}/{BUCKET}/public/a.txt").content == b"a"
    assert anon().put(f"{server.endpoint}/{BUCKET}/public/a.txt", data=b"x").status_code == 403
    assert anon().delete(f"{server.endpoint}/{BUCKET}/public/a.txt").status_code == 403
    assert s3.get_object(Bucket=BUCKET, Key="public/a.txt")["Body"].read() == b"a"


def test_explicit_deny_wins_over_allow(server, s3, bucket):
    put_policy(s3,
               {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:DeleteObject"],
                "Resource": f"{bucket}/*"},
               {"Sid": "keep", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:Delete*",
                "Resource": f"{bucket}/public/*"})
    assert anon().get(f"{server.endpoint}/{BUCKET}/public/a.txt").content == b"a"
    r = anon().delete(f"{server.endpoint}/{BUCKET}/public/a.txt")
    assert r.status_code == 403 and code_of(r) == "AccessDenied"
    assert s3.get_object(Bucket=BUCKET, Key="public/a.txt")["Body"].read() == b"a"
    s3.put_object(Bucket=BUCKET, Key="tmp/x", Body=b"x")
    assert anon().delete(f"{server.endpoint}/{BUCKET}/tmp/x").status_code == 204


def test_deny_for_a_key_limits_its_own_policy(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    other_ak, other_sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    c, other = s3_client(server.endpoint, ak, sk), s3_client(server.endpoint, other_ak, other_sk)
    c.put_object(Bucket=BUCKET, Key="tmp/1", Body=b"1")
    put_policy(s3, {"Effect": "Deny", "Principal": {"AWS": [f"arn:aws:iam::123456789012:user/{ak}"]},
                    "Action": ["s3:DeleteObject"], "Resource": f"{bucket}/*"})
    assert error_of(c.delete_object, Bucket=BUCKET, Key="tmp/1")["Code"] == "AccessDenied"
    res = c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "tmp/1"}]})
    assert [(e["Key"], e["Code"]) for e in res["Errors"]] == [("tmp/1", "AccessDenied")]
    assert s3.get_object(Bucket=BUCKET, Key="tmp/1")["Body"].read() == b"1"
    c.put_object(Bucket=BUCKET, Key="tmp/2", Body=b"2")                # the rest of its policy holds
    assert c.get_object(Bucket=BUCKET, Key="tmp/2")["Body"].read() == b"2"
    other.delete_object(Bucket=BUCKET, Key="tmp/1")                    # another key is not named
    # Root is never bound by a bucket policy, so it can always repair one.
    put_policy(s3, {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"})
    assert error_of(other.get_object, Bucket=BUCKET, Key="tmp/2")["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=BUCKET, Key="tmp/2")["Body"].read() == b"2"


def test_allow_for_a_key_extends_it(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readonly", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    assert error_of(c.put_object, Bucket=BUCKET, Key="upload/x", Body=b"x")["Code"] == "AccessDenied"
    put_policy(s3, {"Effect": "Allow", "Principal": {"AWS": ak}, "Action": "s3:PutObject",
                    "Resource": f"{bucket}/upload/*"})
    c.put_object(Bucket=BUCKET, Key="upload/x", Body=b"x")
    assert error_of(c.put_object, Bucket=BUCKET, Key="private/x", Body=b"x")["Code"] == "AccessDenied"
    assert anon().put(f"{server.endpoint}/{BUCKET}/upload/y", data=b"y").status_code == 403


def test_tags_on_a_put_need_put_object_tagging(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    put_policy(s3, {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:PutObjectTagging",
                    "Resource": f"{bucket}/*"})
    assert error_of(c.put_object, Bucket=BUCKET, Key="t", Body=b"t", Tagging="a=b")["Code"] == "AccessDenied"
    assert error_of(c.put_object_tagging, Bucket=BUCKET, Key="public/a.txt",
                    Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})["Code"] == "AccessDenied"
    c.put_object(Bucket=BUCKET, Key="t", Body=b"t")


def test_copy_reads_the_source_under_its_bucket_policy(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    c.copy_object(Bucket=BUCKET, Key="copy1", CopySource={"Bucket": BUCKET, "Key": "private/b.txt"})
    put_policy(s3, {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": f"{bucket}/private/*"})
    assert error_of(c.copy_object, Bucket=BUCKET, Key="copy2",
                    CopySource={"Bucket": BUCKET, "Key": "private/b.txt"})["Code"] == "AccessDenied"
    assert error_of(s3.head_object, Bucket=BUCKET, Key="copy2")["Code"] == "404"


def test_ip_address_conditions_use_the_peer_address(server, s3, bucket):
    url = f"{server.endpoint}/{BUCKET}/private/b.txt"
    put_policy(s3, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{bucket}/*",
                    "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.2/32", "2001:db8::/32"]}}})
    assert anon("127.0.0.2").get(url).content == b"b"
    assert anon("127.0.0.1").get(url).status_code == 403
    assert anon("127.0.0.3").get(url).status_code == 403
    # X-Forwarded-For is the client's word, and not trusted.
    r = anon("127.0.0.1").get(url, headers={"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"})
    assert r.status_code == 403

    # A key may only be used from 127.0.0.1: a presigned URL it made fails from elsewhere.
    ak, sk = new_key(server, "--policy", "readonly", "--bucket", BUCKET)
    put_policy(s3, {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:*", "Resource": f"{bucket}/*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.1"}}})
    signed = s3_client(server.endpoint, ak, sk).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "private/b.txt"}, ExpiresIn=300)
    assert anon("127.0.0.1").get(signed).content == b"b"
    r = anon("127.0.0.4").get(signed)
    assert r.status_code == 403 and code_of(r) == "AccessDenied"


def test_string_conditions_on_listing_and_referer(server, s3, bucket):
    put_policy(s3,
               {"Sid": "homes", "Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                "Resource": bucket,
                "Condition": {"StringLike": {"s3:prefix": "home/*"},
                              "NumericLessThanEquals": {"s3:max-keys": "100"}}},
               {"Sid": "shop", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": f"{bucket}/public/*",
                "Condition": {"StringLike": {"aws:Referer": ["https://shop.example/*"]},
                              "StringNotEqualsIfExists": {"aws:UserAgent": "BadBot/1.0"}}})
    base = f"{server.endpoint}/{BUCKET}"
    r = anon().get(base, params={"list-type": "2", "prefix": "home/ann/", "max-keys": "10"})
    assert r.status_code == 200 and "<Key>home/ann/c.txt</Key>" in r.text
    assert anon().get(base, params={"list-type": "2", "prefix": "home/", "max-keys": "101"}).status_code == 403
    assert anon().get(base, params={"list-type": "2", "prefix": "private/", "max-keys": "10"}).status_code == 403
    assert anon().get(base, params={"list-type": "2", "max-keys": "10"}).status_code == 403   # no prefix
    assert anon().head(base).status_code == 403                   # HeadBucket needs s3:ListBucket too
    shop = {"Referer": "https://shop.example/cart", "User-Agent": "Mozilla/5.0"}
    assert anon().get(f"{base}/public/a.txt", headers=shop).content == b"a"
    assert anon().get(f"{base}/public/a.txt", headers={"Referer": "https://other.example/"}).status_code == 403
    assert anon().get(f"{base}/public/a.txt", headers=dict(shop, **{"User-Agent": "BadBot/1.0"})).status_code == 403


def test_refused_policies_name_the_reason_and_keep_the_old_one(server, s3, bucket):
    good = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                                                     "Action": "s3:GetObject", "Resource": f"{bucket}/public/*"}]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(good))

    def stmt(**kw):
        st = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{bucket}/*"}
        st.update(kw)
        return json.dumps({"Version": "2012-10-17", "Statement": [st]})

    cases = [
        (stmt(Resource="arn:aws:s3:::another-bucket/*"), "Policy has invalid resource"),
        (stmt(Resource=bucket), "Action does not apply to any resource"),
        (stmt(Condition={"Bool": {"aws:SecureTransport": "false"}}), "aws:SecureTransport"),
        (stmt(Condition={"ForAnyValue:StringEquals": {"aws:UserAgent": ["a"]}}), "ForAnyValue"),
        (stmt(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}), "aws:SourceVpce"),
        (stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/40"}}), "10.0.0.0/40"),
        (stmt(Principal={"AWS": "no-such-key"}), "no access key 'no-such-key'"),
        (stmt(Principal={"AWS": ACCESS_KEY}), "root user"),
        (stmt(Principal={"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"}), "CanonicalUser"),
        (stmt(Action="s3:GetObjekt"), "invalid action"),
        (stmt(Action="s3:PutBucketPolicy", Resource=bucket), "reserved to coffer's root user"),
        (stmt(Resource=f"{bucket}/${{aws:username}}/*"), "policy variables"),
        ("{\"Statement\": [", "valid JSON"),
        (json.dumps({"Statement": [json.loads(stmt())["Statement"][0]] * 2, "Pad": "x" * 21000}), "maximum"),
        ("{\"Statement\":" + "[" * 64 + "]" * 64 + "}", "nested deeper"),
    ]
    for body, reason in cases:
        err = error_of(s3.put_bucket_policy, Bucket=BUCKET, Policy=body)
        assert err["Code"] == "MalformedPolicy", (body[:200], err)
        assert reason in err["Message"], (body[:200], err["Message"])
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == good
    assert anon().get(f"{server.endpoint}/{BUCKET}/public/a.txt").content == b"a"


def test_only_root_manages_policies(server, s3, bucket):
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    put_policy(s3, {"Effect": "Allow", "Principal": {"AWS": ak}, "Action": "s3:*",
                    "Resource": [bucket, f"{bucket}/*"]})
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                                        "Resource": f"{bucket}/*"}]})
    assert error_of(c.put_bucket_policy, Bucket=BUCKET, Policy=policy)["Code"] == "AccessDenied"
    assert error_of(c.delete_bucket_policy, Bucket=BUCKET)["Code"] == "AccessDenied"
    assert error_of(c.delete_bucket, Bucket=BUCKET)["Code"] == "AccessDenied"
    assert c.list_objects_v2(Bucket=BUCKET, Prefix="public/")["KeyCount"] >= 1


def test_ipv6_peers_match_ipv6_ranges(make_server):
    srv = make_server()
    srv.extra_args = ["--address", f"[::1]:{srv.port}"]   # the later --address wins
    srv.endpoint = f"http://[::1]:{srv.port}"
    srv.start()
    root = s3_client(srv.endpoint)
    root.create_bucket(Bucket="six")
    root.put_object(Bucket="six", Key="k", Body=b"v6")
    url = f"{srv.endpoint}/six/k"

    def allow_from(*ranges):
        put_policy(root, {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::six/*",
                          "Condition": {"IpAddress": {"aws:SourceIp": list(ranges)}}}, bucket="six")

    allow_from("::1/128")
    assert requests.get(url, timeout=5).content == b"v6"
    allow_from("127.0.0.0/8", "2001:db8::/32")
    assert requests.get(url, timeout=5).status_code == 403
    allow_from("::/0")
    assert requests.get(url, timeout=5).status_code == 200


def test_anonymous_writes_keep_their_payload_checks(server, s3, bucket):
    put_policy(s3, {"Effect": "Allow", "Principal": "*", "Action": ["s3:PutObject", "s3:GetObject"],
                    "Resource": f"{bucket}/drop/*"})
    base = f"{server.endpoint}/{BUCKET}/drop"
    # An unsigned aws-chunked body is decoded, never stored with its framing.
    framed = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
    r = anon().put(f"{base}/chunked", data=framed, headers={
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "5", "x-amz-trailer": "x-amz-checksum-crc32"})
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=BUCKET, Key="drop/chunked")["Body"].read() == b"hello"
    # A digest the body does not match is refused, and nothing is stored.
    r = anon().put(f"{base}/hashed", data=b"abc", headers={"x-amz-content-sha256": "0" * 64})
    assert r.status_code == 400 and code_of(r) == "XAmzContentSHA256Mismatch"
    assert error_of(s3.head_object, Bucket=BUCKET, Key="drop/hashed")["Code"] == "404"
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"   # sha256("abc")
    assert anon().put(f"{base}/hashed", data=b"abc", headers={"x-amz-content-sha256": digest}).status_code == 200
    # Signed framing without a signature cannot be checked.
    r = anon().put(f"{base}/signed", data=framed, headers={
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-decoded-content-length": "5"})
    assert r.status_code == 400 and code_of(r) == "InvalidRequest"
    assert error_of(s3.head_object, Bucket=BUCKET, Key="drop/signed")["Code"] == "404"


def test_policy_replaced_while_requests_read_it(server, s3, bucket):
    """Parsed policies are shared between requests: replacing one under load must neither
    crash nor serve a decision from a policy that never was."""
    import threading
    ak, sk = new_key(server, "--policy", "readonly", "--bucket", BUCKET)
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{bucket}/public/*"}
    deny = {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:GetObject", "Resource": f"{bucket}/*"}
    seen, errors = set(), []

    def reader():
        c = s3_client(server.endpoint, ak, sk)
        session = anon()
        for _ in range(60):
            try:
                c.get_object(Bucket=BUCKET, Key="public/a.txt")["Body"].read()
                seen.add("key-200")
            except ClientError as e:
                (seen.add("key-403") if e.response["Error"]["Code"] == "AccessDenied" else errors.append(e))
            r = session.get(f"{server.endpoint}/{BUCKET}/public/a.txt")
            (seen.add(f"anon-{r.status_code}") if r.status_code in (200, 403) else errors.append(r.text))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(40):
        put_policy(s3, allow, deny) if i % 2 else put_policy(s3, allow)
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert {"key-200", "anon-200"} <= seen
    put_policy(s3, allow, deny)
    assert error_of(s3_client(server.endpoint, ak, sk).get_object, Bucket=BUCKET,
                    Key="public/a.txt")["Code"] == "AccessDenied"
    assert anon().get(f"{server.endpoint}/{BUCKET}/public/a.txt").content == b"a"


def test_mfa_guard_denies_access_key_requests(server, s3, bucket):
    """AWS leaves aws:MultiFactorAuthPresent out of requests signed with access keys, so the
    common MFA guard denies them; coffer's requests are all of that kind."""
    ak, sk = new_key(server, "--policy", "readwrite", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    c.put_object(Bucket=BUCKET, Key="mfa/x", Body=b"x")
    put_policy(s3, {"Sid": "RequireMFAForDelete", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                    "Resource": f"{bucket}/*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    assert error_of(c.delete_object, Bucket=BUCKET, Key="mfa/x")["Code"] == "AccessDenied"
    assert c.get_object(Bucket=BUCKET, Key="mfa/x")["Body"].read() == b"x"
    s3.delete_object(Bucket=BUCKET, Key="mfa/x")


def test_refusal_quoting_odd_text_is_still_a_parseable_error(s3, bucket):
    """The reason quotes the policy; controls and a UTF-8 character cut by the quote's length
    limit would make the XML error document unreadable to the client."""
    body = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                      "Resource": "arn:aws:s3:::other/\u0001\u001b[31m" + "\u00e9" * 150}]})
    err = error_of(s3.put_bucket_policy, Bucket=BUCKET, Policy=body)
    assert err["Code"] == "MalformedPolicy"
    assert err["Message"].startswith("Policy has invalid resource: 'arn:aws:s3:::other/??[31m\u00e9")


def test_awscli_put_bucket_policy_from_a_file(server, s3, bucket, aws_env, tmp_path):
    """The way policies are usually pasted: a JSON file given to `aws s3api put-bucket-policy`."""
    from helpers_clients import run_aws
    policy = {"Version": "2012-10-17", "Id": "pasted", "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
         "Resource": [f"{bucket}/public/*"]},
        {"Sid": "OfficeList", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket",
         "Resource": bucket, "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.1/32"]}}},
        {"Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": f"{bucket}/*"}]}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy, indent=2))
    cli = ("--endpoint-url", server.endpoint, "s3api")
    run_aws(aws_env, *cli, "put-bucket-policy", "--bucket", BUCKET, "--policy", f"file://{path}")
    got = json.loads(run_aws(aws_env, *cli, "get-bucket-policy", "--bucket", BUCKET).stdout)
    assert json.loads(got["Policy"]) == policy
    assert anon("127.0.0.1").get(f"{server.endpoint}/{BUCKET}?list-type=2").status_code == 200
    assert anon("127.0.0.5").get(f"{server.endpoint}/{BUCKET}?list-type=2").status_code == 403
    assert anon().get(f"{server.endpoint}/{BUCKET}/public/a.txt").content == b"a"
    assert anon().delete(f"{server.endpoint}/{BUCKET}/public/a.txt").status_code == 403

    policy["Statement"].append({"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                "Resource": f"{bucket}/*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    path.write_text(json.dumps(policy))
    p = run_aws(aws_env, *cli, "put-bucket-policy", "--bucket", BUCKET, "--policy", f"file://{path}", check=False)
    assert p.returncode != 0
    assert b"MalformedPolicy" in p.stderr and b"aws:SecureTransport" in p.stderr


def test_existing_object_tag_conditions(server, s3, bucket):
    s3.put_object(Bucket=BUCKET, Key="tagged/open", Body=b"open", Tagging="visibility=public&owner=ann%20smith")
    s3.put_object(Bucket=BUCKET, Key="tagged/closed", Body=b"closed", Tagging="visibility=private")
    s3.put_object(Bucket=BUCKET, Key="tagged/none", Body=b"none")
    ak, sk = new_key(server, "--policy", "readonly", "--bucket", BUCKET)
    c = s3_client(server.endpoint, ak, sk)
    put_policy(s3,
               {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{bucket}/tagged/*",
                "Condition": {"StringEquals": {"s3:ExistingObjectTag/visibility": "public"}}},
               {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": ["s3:GetObject", "s3:GetObjectTagging"],
                "Resource": f"{bucket}/*",
                "Condition": {"StringLike": {"s3:ExistingObjectTag/owner": "ann *"}}})
    base = f"{server.endpoint}/{BUCKET}/tagged"
    assert anon().get(f"{base}/open").content == b"open"
    assert anon().get(f"{base}/closed").status_code == 403
    assert anon().get(f"{base}/none").status_code == 403
    assert anon().get(f"{base}/missing").status_code == 403      # no object: no tag, no Allow
    assert error_of(c.get_object, Bucket=BUCKET, Key="tagged/open")["Code"] == "AccessDenied"
    assert error_of(c.get_object_tagging, Bucket=BUCKET, Key="tagged/open")["Code"] == "AccessDenied"
    assert c.get_object(Bucket=BUCKET, Key="tagged/closed")["Body"].read() == b"closed"
    # The decision follows the tags as they are now.
    s3.put_object_tagging(Bucket=BUCKET, Key="tagged/closed",
                          Tagging={"TagSet": [{"Key": "visibility", "Value": "public"}]})
    assert anon().get(f"{base}/closed").content == b"closed"
    s3.delete_object_tagging(Bucket=BUCKET, Key="tagged/open")
    assert anon().get(f"{base}/open").status_code == 403
    assert c.get_object(Bucket=BUCKET, Key="tagged/open")["Body"].read() == b"open"
