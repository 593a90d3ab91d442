"""coffer mirror's content types, against coffer's own server and against s3rver (not coffer).

- An upload from a directory (`coffer mirror DIR s3://...`) stores the type the bytes and the name
  call for: JPEG, PNG, WebP, GIF, SVG, CSS, JS, JSON, PDF, an unknown binary, an empty file, a PNG
  named .jpg, text named .png.
- `coffer mirror --fix-content-types s3://bucket/prefix` corrects objects stored with a generic
  or wrong type (octet-stream, text/plain on a PNG, image/jpeg on a CSS file) by a copy onto
  themselves on the server: bytes, ETag, user metadata and standard headers stay as they were;
  objects already right, excluded or outside the prefix are not rewritten (LastModified
  unchanged); gzip-encoded bytes are judged by their name; --dry-run changes nothing; a second run
  finds nothing to fix.
"""
import gzip
import json
import struct
import time
import zlib

import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, run_checked, s3_client, scrubbed_env
# s3rver, started once for the module (it also holds that suite's bucket, which is left alone).
from test_snapshot_foreign import S3RVER_KEY, foreign  # noqa: F401 (a fixture)

BUCKET = "types"


def png_bytes(width=2, height=2):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + bytes([255, 0, 0]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xdb\x00\x43\x00" + bytes([16]) * 64 + b"\xff\xd9")
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
VP8L = b"\x2f\x00\x00\x00\x00\x88\x88\x08"
WEBP = b"RIFF" + struct.pack("<I", 12 + len(VP8L)) + b"WEBPVP8L" + struct.pack("<I", len(VP8L)) + VP8L
SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><rect width="10" height="10" fill="red"/></svg>\n')
CSS = b"body { margin: 0; font-family: sans-serif; }\n.cart > .item { display: flex; }\n"
JS = b'import { cart } from "./cart.js";\nexport function total(a) { return a + cart.n; }\n'
JSON_DOC = b'{"products": [{"id": 1, "name": "mug"}], "count": 1}\n'
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
NOISE = bytes((i * 7919 + (i >> 3) * 31) & 0xFF for i in range(3000))
PNG = png_bytes()

# Every file of the upload test: name, bytes, the type it must be stored with.
UPLOADS = [
    ("img/photo.jpg", JPEG, "image/jpeg"),
    ("img/logo.png", PNG, "image/png"),
    ("img/hero.webp", WEBP, "image/webp"),
    ("img/spinner.gif", GIF, "image/gif"),
    ("img/icon.svg", SVG, "image/svg+xml"),
    ("css/site.css", CSS, "text/css; charset=utf-8"),
    ("js/app.js", JS, "text/javascript; charset=utf-8"),
    ("data/products.json", JSON_DOC, "application/json"),
    ("docs/manual.pdf", PDF, "application/pdf"),
    ("bin/blob", NOISE, "application/octet-stream"),
    ("empty.txt", b"", "text/plain; charset=utf-8"),
    ("img/really-png.jpg", PNG, "image/png"),
    ("img/notes.png", b"not an image at all\njust words\n", "text/plain; charset=utf-8"),
]


class Target:
    def __init__(self, name, endpoint, access_key, secret_key, home):
        self.name, self.endpoint = name, endpoint
        self.s3 = s3_client(endpoint, access_key, secret_key)
        self.env = scrubbed_env(COFFER_ACCESS_KEY=access_key, COFFER_SECRET_KEY=secret_key, HOME=str(home))
        # s3rver's secret is also its access key, which an error may name: only coffer's is checked.
        self.secrets = (secret_key,) if secret_key != access_key else ()


@pytest.fixture(scope="module", params=["coffer", "s3rver"])
def target(request, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    if request.param == "coffer":
        srv = request.getfixturevalue("server")
        t = Target("coffer", srv.endpoint, ACCESS_KEY, SECRET_KEY, home)
    else:
        srv = request.getfixturevalue("foreign")
        t = Target("s3rver", srv.endpoint, S3RVER_KEY, S3RVER_KEY, home)
    t.s3.create_bucket(Bucket=BUCKET)
    return t


def mirror(t, *args, check=None):
    return run_checked([COFFER_BIN, "mirror", *args, "--endpoint", t.endpoint], env=t.env, timeout=120,
                       check=check, secrets=t.secrets)


def head(t, key):
    h = t.s3.head_object(Bucket=BUCKET, Key=key)
    return {"type": h.get("ContentType"), "etag": h["ETag"], "modified": h["LastModified"],
            "meta": h.get("Metadata", {}), "cache": h.get("CacheControl"),
            "disposition": h.get("ContentDisposition"), "language": h.get("ContentLanguage"),
            "encoding": h.get("ContentEncoding")}


def body(t, key):
    return t.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_upload_from_a_directory_types_by_bytes_and_name(target, tmp_path):
    src = tmp_path / "site"
    for name, data, _ in UPLOADS:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    p = mirror(target, str(src), f"s3://{BUCKET}/up")
    assert p.returncode == 0, p.stderr.decode()
    for name, data, want in UPLOADS:
        h = head(target, f"up/{name}")
        assert h["type"] == want, f"{name}: stored as {h['type']}, want {want}"
        assert body(target, f"up/{name}") == data


CSS_HEADERS = dict(CacheControl="public, max-age=60", ContentDisposition='inline; filename="site.css"',
                   ContentLanguage="en", Metadata={"rev": "7", "owner": "shop"})

# key under the prefix, bytes, what put_object stores, and the type it must have after the fix
# (None: left alone).
FIX_CASES = [
    ("img/logo.png", PNG, dict(ContentType="application/octet-stream", CacheControl="max-age=86400",
                               Metadata={"owner": "shop"}), "image/png"),
    ("img/photo.png", PNG, dict(ContentType="text/plain"), "image/png"),
    ("img/generic.gif", GIF, dict(ContentType="binary/octet-stream"), "image/gif"),
    ("css/site.css", CSS, dict(ContentType="image/jpeg", **CSS_HEADERS), "text/css; charset=utf-8"),
    ("js/app.js", JS, dict(ContentType="text/plain"), "text/javascript; charset=utf-8"),
    ("js/empty.js", b"", dict(ContentType="application/octet-stream"), "text/javascript; charset=utf-8"),
    ("ok/right.png", PNG, dict(ContentType="image/png", CacheControl="no-cache"), None),
    ("ok/right.css", CSS, dict(ContentType="text/css"), None),
    ("ok/legacy.js", JS, dict(ContentType="application/javascript"), None),
    ("ok/data.json", JSON_DOC, dict(ContentType="application/json; charset=utf-8"), None),
    ("ok/blob", NOISE, dict(ContentType="application/octet-stream"), None),
    ("gz/app.js", gzip.compress(JS), dict(ContentType="text/javascript", ContentEncoding="gzip"), None),
    ("skip/excluded.png", PNG, dict(ContentType="application/octet-stream"), None),
]


def put_fix_cases(t, prefix):
    for key, data, kw, _ in FIX_CASES:
        t.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{key}", Body=data, **kw)
    # Outside the prefix: never looked at.
    t.s3.put_object(Bucket=BUCKET, Key=f"{prefix}-other/x.png", Body=PNG, ContentType="application/octet-stream")


def test_fix_content_types(target):
    prefix = "fix"
    put_fix_cases(target, prefix)
    keys = [f"{prefix}/{k}" for k, _, _, _ in FIX_CASES] + [f"{prefix}-other/x.png"]
    before = {k: head(target, k) for k in keys}
    want_fixed = sorted(k for k, _, _, fixed in FIX_CASES if fixed)

    # A dry run lists exactly what would change and changes nothing.
    p = mirror(target, "--fix-content-types", "--dry-run", "--json", "--exclude", "skip/",
               f"s3://{BUCKET}/{prefix}", check=0)
    report = json.loads(p.stdout)
    assert report["dry_run"] is True
    assert report["fixed"]["keys"] == want_fixed
    assert report["fixed"]["fixed"] == len(want_fixed)
    assert report["fixed"]["checked"] == len(FIX_CASES) - 1  # the excluded one is not looked at
    assert report["failures"] == [] and report["files"]["failed"] == 0
    p = mirror(target, "--fix-content-types", "--dry-run", "--exclude", "skip/", f"s3://{BUCKET}/{prefix}",
               check=0)
    assert "would fix css/site.css: image/jpeg -> text/css; charset=utf-8" in p.stdout.decode(), p.stdout
    for k in keys:
        assert head(target, k) == before[k], f"the dry run changed {k}"

    time.sleep(1.1)  # a rewritten object would show a later LastModified
    p = mirror(target, "--fix-content-types", "--jobs", "3", "--exclude", "skip/", f"s3://{BUCKET}/{prefix}",
               check=0)
    out = p.stdout.decode()
    assert f"fixed {len(want_fixed)} content types" in out, out

    for key, data, kw, fixed in FIX_CASES:
        full = f"{prefix}/{key}"
        now, was = head(target, full), before[full]
        assert body(target, full) == data, f"{key}: bytes changed"
        assert now["etag"] == was["etag"], f"{key}: ETag changed"
        for field in ("meta", "cache", "disposition", "language", "encoding"):
            assert now[field] == was[field], f"{key}: {field} was {was[field]!r}, now {now[field]!r}"
        if fixed:
            assert now["type"] == fixed, f"{key}: type {now['type']}, want {fixed}"
        else:
            assert now == was, f"{key} was rewritten: {was} -> {now}"
    assert head(target, f"{prefix}-other/x.png") == before[f"{prefix}-other/x.png"]

    # Nothing is left to fix.
    p = mirror(target, "--fix-content-types", "--json", "--exclude", "skip/", f"s3://{BUCKET}/{prefix}",
               check=0)
    assert json.loads(p.stdout)["fixed"]["keys"] == []


def test_the_fix_copy_is_pinned_to_the_etag_it_read(target):
    # --fix-content-types copies an object onto itself with the ETag its HEAD read as
    # x-amz-copy-source-if-match (boto3's CopySourceIfMatch): a server that honours it refuses the
    # copy of an object rewritten since (412 PreconditionFailed), so old metadata never lands on
    # new bytes. coffer does; s3rver ignores the condition and copies (docs/MIRROR.md says so).
    s3 = target.s3
    s3.put_object(Bucket=BUCKET, Key="pin/site.css", Body=CSS, ContentType="text/plain", Metadata={"rev": "1"})
    read = s3.head_object(Bucket=BUCKET, Key="pin/site.css")["ETag"]
    s3.copy_object(Bucket=BUCKET, Key="pin/site.css", CopySource={"Bucket": BUCKET, "Key": "pin/site.css"},
                   CopySourceIfMatch=read, MetadataDirective="REPLACE", ContentType="text/css",
                   Metadata={"rev": "1"})
    assert head(target, "pin/site.css")["type"] == "text/css"
    s3.put_object(Bucket=BUCKET, Key="pin/site.css", Body=CSS + b"/* v2 */\n", ContentType="text/plain",
                  Metadata={"rev": "2"})
    try:
        s3.copy_object(Bucket=BUCKET, Key="pin/site.css", CopySource={"Bucket": BUCKET, "Key": "pin/site.css"},
                       CopySourceIfMatch=read, MetadataDirective="REPLACE", ContentType="text/css",
                       Metadata={"rev": "1"})
        refused = None
    except ClientError as e:
        refused = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
    h = head(target, "pin/site.css")
    if target.name == "coffer":
        assert refused == ("PreconditionFailed", 412)
        assert (h["type"], h["meta"]) == ("text/plain", {"rev": "2"})  # the rewrite, untouched
    else:
        assert refused is None and h["meta"] == {"rev": "1"}  # s3rver: the old metadata on the new bytes
    # The fix itself, on what the object now is: its own metadata is kept.
    s3.put_object(Bucket=BUCKET, Key="pin/site.css", Body=CSS, ContentType="text/plain", Metadata={"rev": "3"})
    p = mirror(target, "--fix-content-types", f"s3://{BUCKET}/pin", check=0)
    assert b"fixed 1 content types" in p.stdout
    h = head(target, "pin/site.css")
    assert (h["type"], h["meta"]) == ("text/css; charset=utf-8", {"rev": "3"})


def test_control_characters_in_keys_do_not_reach_the_terminal(target):
    if target.name == "s3rver":
        pytest.skip("s3rver ignores encoding-type=url: its listing of such a key is not well-formed XML")
    key = "esc/\x1b]0;owned\x07\x1b[2J.png"
    target.s3.put_object(Bucket=BUCKET, Key=key, Body=PNG, ContentType="application/octet-stream")
    p = mirror(target, "--fix-content-types", "--dry-run", f"s3://{BUCKET}/esc", check=0)
    assert b"\x1b" not in p.stdout + p.stderr and b"\x07" not in p.stdout + p.stderr
    assert "would fix \\x1b]0;owned\\x07\\x1b[2J.png: application/octet-stream -> image/png" in p.stdout.decode()
    mirror(target, "--fix-content-types", f"s3://{BUCKET}/esc", check=0)
    assert head(target, key)["type"] == "image/png"


def test_fix_of_a_multipart_object_keeps_its_bytes(target):
    """A copy makes one part of several: the ETag becomes the bytes' MD5, as any S3 copy makes it."""
    import hashlib
    key, part = "multi/big.png", 5 << 20
    data = PNG + bytes(range(256)) * ((part + 4096) // 256)
    up = target.s3.create_multipart_upload(Bucket=BUCKET, Key=key, ContentType="binary/octet-stream",
                                           CacheControl="max-age=5", Metadata={"a": "b"})
    parts = []
    for n, off in enumerate(range(0, len(data), part), 1):
        r = target.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], PartNumber=n,
                                  Body=data[off:off + part])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    target.s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": parts})
    if target.name == "coffer":  # s3rver gives a multipart object its MD5 as ETag already
        assert head(target, key)["etag"].endswith('-2"')
    mirror(target, "--fix-content-types", f"s3://{BUCKET}/multi", check=0)
    h = head(target, key)
    assert (h["type"], h["cache"], h["meta"]) == ("image/png", "max-age=5", {"a": "b"})
    assert h["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert body(target, key) == data


def test_fix_whole_bucket_and_missing_bucket(target):
    target.s3.put_object(Bucket=BUCKET, Key="top.css", Body=CSS, ContentType="application/octet-stream")
    p = mirror(target, "--fix-content-types", "--json", f"s3://{BUCKET}", check=0)
    assert "top.css" in json.loads(p.stdout)["fixed"]["keys"]
    assert head(target, "top.css")["type"] == "text/css; charset=utf-8"

    p = mirror(target, "--fix-content-types", "s3://no-such-bucket-here/x", check=6)
    assert b"no-such-bucket-here" in p.stderr


@pytest.mark.parametrize("args", [
    ["--fix-content-types"],
    ["--fix-content-types", "/tmp"],
    ["--fix-content-types", "file:///tmp"],
    ["--fix-content-types", "s3://"],
    ["--fix-content-types", "--jobs", "0", f"s3://{BUCKET}"],
    ["--fix-content-types", "--jobs", "257", f"s3://{BUCKET}"],
    ["--fix-content-types", f"s3://{BUCKET}/a", f"s3://{BUCKET}/b"],
])
def test_fix_refuses_a_bad_command_line(target, args):
    p = mirror(target, *args, check=2)
    assert p.stderr.startswith(b"coffer mirror") or b"usage: coffer mirror" in p.stderr, p.stderr


def test_fix_without_libmagic_database_fails_and_changes_nothing(target):
    target.s3.put_object(Bucket=BUCKET, Key="nomagic/a.png", Body=PNG, ContentType="application/octet-stream")
    env = dict(target.env, MAGIC="/nonexistent/magic.mgc")
    p = run_checked([COFFER_BIN, "mirror", "--fix-content-types", f"s3://{BUCKET}/nomagic", "--endpoint",
                     target.endpoint], env=env, timeout=60, check=1, secrets=target.secrets)
    assert b"libmagic-mgc" in p.stderr
    assert head(target, "nomagic/a.png")["type"] == "application/octet-stream"


def test_fix_with_wrong_credentials_changes_nothing(target):
    target.s3.put_object(Bucket=BUCKET, Key="denied/a.png", Body=PNG, ContentType="application/octet-stream")
    env = dict(target.env, COFFER_ACCESS_KEY="nobody-at-all", COFFER_SECRET_KEY="wrong-secret-0123456789")
    p = run_checked([COFFER_BIN, "mirror", "--fix-content-types", f"s3://{BUCKET}/denied", "--endpoint",
                     target.endpoint], env=env, timeout=60, check=7, secrets=target.secrets)
    assert b"wrong-secret" not in p.stderr + p.stdout
    assert head(target, "denied/a.png")["type"] == "application/octet-stream"
