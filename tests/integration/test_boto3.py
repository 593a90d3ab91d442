"""boto3 (Debian's 1.26 / botocore 1.29) against coffer: listings, ranges, metadata, errors.

Expectations are AWS S3's documented behaviour. Where boto3 cannot produce a request (a wrong
secret, a skewed clock, a lying payload hash, a malformed Authorization), helpers_clients signs
it by hand with botocore's S3SigV4Auth and sends it with requests.
"""
import base64
import datetime
import hashlib
import random
import urllib.parse
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import s3_client
from helpers_clients import (EMPTY_SHA256, assert_s3_error, parse_error, quote_key, sign,
                             signed_request)

S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def utf8_sorted(items):
    return sorted(items, key=lambda s: s.encode("utf-8"))


def client_error(excinfo):
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def get_body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


# --------------------------------------------------------------------------------------------
# A bucket of a little over 3,000 keys, shaped to trip up listings: neighbours of '/' in byte
# order ('!' '-' '.' sort before '/', '0' right after), a key equal to a directory name, a key
# equal to a common prefix, an empty path segment, and non-ASCII whose UTF-8 byte order differs
# from UTF-16 order (U+FB01 sorts before U+1F600 in UTF-8, after it in UTF-16).
# --------------------------------------------------------------------------------------------

def _big_keys():
    keys = [f"top-{i:04d}" for i in range(200)]
    keys += [f"d{a}/s{b}/f{c:03d}" for a in range(10) for b in range(5) for c in range(50)]
    keys += [f"m/{i:04d}" for i in range(300)]
    keys += ["d1", "d1!x", "d1-x", "d1.x", "d1/", "d1//double", "d10/z", "d1/s2/", "Z", "z",
             "a b/c d", "plus+sign/p", "pct%41/q", "line\nbreak", "ü/a", "ü/b", "日本/語",
             "日本/語/深い", "\ufb01le", "\U0001F600/smile", "\U0001F600", "~tilde"]
    assert len(keys) == len(set(keys))
    return keys


BIG_KEYS = _big_keys()


@pytest.fixture(scope="module")
def big(server):
    s3 = s3_client(server.endpoint, max_pool_connections=16)
    bucket = "big-listing"
    s3.create_bucket(Bucket=bucket)

    def put(key):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode("utf-8"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, BIG_KEYS))
    return bucket


def expected_listing(keys, prefix="", delimiter=None, start_after=None):
    """(contents, common prefixes) AWS returns, each in UTF-8 byte order.

    Only for start_after values that do not fall strictly inside a rolled-up prefix (those are
    not exercised here)."""
    contents, prefixes = [], set()
    for k in keys:
        if not k.startswith(prefix):
            continue
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                prefixes.add(k[:i + len(delimiter)])
                continue
        contents.append(k)
    if start_after is not None:
        sa = start_after.encode("utf-8")
        contents = [k for k in contents if k.encode("utf-8") > sa]
        prefixes = {p for p in prefixes if p.encode("utf-8") > sa}
    return utf8_sorted(contents), utf8_sorted(prefixes)


def check_pages(pages, max_keys, prefix="", delimiter=None, start_after=None, keys=BIG_KEYS):
    """Pages of a listing: each within max_keys, each in order and after the previous one, and
    together exactly the expected keys and common prefixes, once each."""
    want_contents, want_prefixes = expected_listing(keys, prefix, delimiter, start_after)
    got_contents, got_prefixes, previous_last = [], [], None
    for n, page in enumerate(pages):
        keys_here = [o["Key"] for o in page.get("Contents", [])]
        prefixes_here = [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        assert keys_here == utf8_sorted(keys_here), f"page {n} Contents out of order"
        assert prefixes_here == utf8_sorted(prefixes_here), f"page {n} CommonPrefixes out of order"
        entries = utf8_sorted(keys_here + prefixes_here)
        assert len(entries) <= max_keys, f"page {n} has {len(entries)} > MaxKeys {max_keys}"
        if page["IsTruncated"]:
            assert entries, f"page {n} is truncated but empty"
        else:
            assert n == len(pages) - 1, f"page {n} is not truncated but more pages followed"
        if entries and previous_last is not None:
            assert entries[0].encode() > previous_last.encode(), f"page {n} overlaps page {n - 1}"
        if entries:
            previous_last = entries[-1]
        if "KeyCount" in page:
            assert page["KeyCount"] == len(entries)
        for o in page.get("Contents", []):
            assert o["Size"] == len(o["Key"].encode("utf-8"))
        got_contents += keys_here
        got_prefixes += prefixes_here
    assert len(got_contents) == len(set(got_contents)), "duplicate keys across pages"
    assert len(got_prefixes) == len(set(got_prefixes)), "duplicate common prefixes across pages"
    assert got_contents == want_contents
    assert got_prefixes == want_prefixes
    return got_contents, got_prefixes


def list_v2_manual(s3, bucket, max_keys, **kw):
    pages, token = [], None
    while True:
        args = dict(Bucket=bucket, MaxKeys=max_keys, **kw)
        if token is not None:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        assert page["MaxKeys"] == max_keys
        pages.append(page)
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            return pages
        token = page["NextContinuationToken"]
        assert len(pages) < 4000, "pagination does not end"


def list_v1_manual(s3, bucket, max_keys, **kw):
    pages, marker = [], None
    while True:
        args = dict(Bucket=bucket, MaxKeys=max_keys, **kw)
        if marker is not None:
            args["Marker"] = marker
        page = s3.list_objects(**args)
        assert page.get("Marker", "") == (marker or kw.get("Marker", ""))
        pages.append(page)
        if not page["IsTruncated"]:
            return pages
        if kw.get("Delimiter"):
            assert "NextMarker" in page, "AWS returns NextMarker when a delimiter is given"
        marker = page.get("NextMarker") or page["Contents"][-1]["Key"]
        assert len(pages) < 4000, "pagination does not end"


def paginate(s3, op, page_size, **kw):
    paginator = s3.get_paginator(op)
    return list(paginator.paginate(PaginationConfig={"PageSize": page_size}, **kw))


# --- listings over 3,000 keys ----------------------------------------------------------------

@pytest.mark.parametrize("max_keys", [1000, 333])
def test_list_v2_manual_whole_bucket(s3, big, max_keys):
    pages = list_v2_manual(s3, big, max_keys)
    assert len(pages) == -(-len(BIG_KEYS) // max_keys)
    contents, _ = check_pages(pages, max_keys)
    assert len(contents) == len(BIG_KEYS) > 3000


@pytest.mark.parametrize("max_keys", [1000, 250])
def test_list_v1_manual_whole_bucket(s3, big, max_keys):
    pages = list_v1_manual(s3, big, max_keys)
    check_pages(pages, max_keys)


def test_continuation_token_echoed_as_sent(s3, big):
    """AWS echoes ContinuationToken exactly as the client sent it (decoded from the query)."""
    first = s3.list_objects_v2(Bucket=big, MaxKeys=3)
    tokens = [first["NextContinuationToken"]]
    page = first
    for _ in range(5):  # a few tokens, so some carry the query-encoded '+', '/' or '='
        page = s3.list_objects_v2(Bucket=big, MaxKeys=3, ContinuationToken=tokens[-1])
        assert page.get("ContinuationToken") == tokens[-1]
        tokens.append(page["NextContinuationToken"])
    assert any(set(t) & set("+/=") for t in tokens), tokens


def test_list_max_keys_above_1000_is_capped(s3, big):
    page = s3.list_objects_v2(Bucket=big, MaxKeys=5000)
    assert page["IsTruncated"] is True
    assert page["KeyCount"] == len(page["Contents"]) == 1000
    assert [o["Key"] for o in page["Contents"]] == utf8_sorted(BIG_KEYS)[:1000]


@pytest.mark.parametrize("page_size", [1000, 97])
def test_list_paginators_whole_bucket(s3, big, page_size):
    check_pages(paginate(s3, "list_objects_v2", page_size, Bucket=big), page_size)
    check_pages(paginate(s3, "list_objects", page_size, Bucket=big), page_size)


@pytest.mark.parametrize("max_keys", [1, 7, 100, 1000])
def test_list_delimiter_pagination_v2(s3, big, max_keys):
    pages = list_v2_manual(s3, big, max_keys, Delimiter="/")
    contents, prefixes = check_pages(pages, max_keys, delimiter="/")
    assert "d1/" in prefixes and "d10/" in prefixes and "ü/" in prefixes
    assert "d1" in contents and "d1-x" in contents and "line\nbreak" in contents
    for page in pages:
        assert page["Delimiter"] == "/"


@pytest.mark.parametrize("max_keys", [1, 7, 100])
def test_list_delimiter_pagination_v1(s3, big, max_keys):
    pages = list_v1_manual(s3, big, max_keys, Delimiter="/")
    check_pages(pages, max_keys, delimiter="/")


@pytest.mark.parametrize("page_size", [3, 50])
def test_list_delimiter_paginators(s3, big, page_size):
    check_pages(paginate(s3, "list_objects_v2", page_size, Bucket=big, Delimiter="/"),
                page_size, delimiter="/")
    check_pages(paginate(s3, "list_objects", page_size, Bucket=big, Delimiter="/"),
                page_size, delimiter="/")


@pytest.mark.parametrize("prefix,delimiter", [
    ("d1/", "/"),        # "d1/" itself is a key; "d1//double" rolls up to "d1//"
    ("d1/s2/", "/"),     # "d1/s2/" is a key too: it is Contents, not a prefix
    ("d1", "/"),         # d1, d1!x, d1-x, d1.x sort around "d1/" and "d10/"
    ("d", "/"),
    ("", "-"),           # a delimiter other than '/'
    ("d2", "/s"),        # a multi-character delimiter
    ("日本", "語"),       # a non-ASCII prefix and delimiter
    ("m/", "/"),
    ("nothing-here/", "/"),
    ("ü", None),
])
@pytest.mark.parametrize("max_keys", [2, 1000])
def test_list_prefix_delimiter_combinations(s3, big, prefix, delimiter, max_keys):
    contents, prefixes = expected_listing(BIG_KEYS, prefix, delimiter)
    # Small pages only where they stay a few dozen requests (the ASan build is slow).
    max_keys = max(max_keys, (len(contents) + len(prefixes)) // 30)
    kw = {"Prefix": prefix}
    if delimiter:
        kw["Delimiter"] = delimiter
    pages = list_v2_manual(s3, big, max_keys, **kw)
    contents, prefixes = check_pages(pages, max_keys, prefix, delimiter)
    for page in pages:
        assert page["Prefix"] == prefix
    if prefix == "nothing-here/":
        assert pages[0]["KeyCount"] == 0 and not pages[0]["IsTruncated"] and len(pages) == 1
    v1 = list_v1_manual(s3, big, max_keys, **kw)
    assert check_pages(v1, max_keys, prefix, delimiter) == (contents, prefixes)


def test_list_tricky_neighbours_of_slash(s3, big):
    page = s3.list_objects_v2(Bucket=big, Prefix="d1", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["d1", "d1!x", "d1-x", "d1.x"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["d1/", "d10/"]
    page = s3.list_objects_v2(Bucket=big, Prefix="d1/", Delimiter="/")
    assert [o["Key"] for o in page["Contents"]] == ["d1/"]
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == (
        ["d1//"] + [f"d1/s{b}/" for b in range(5)])


def test_list_utf8_byte_order(s3, big):
    keys = [o["Key"] for p in paginate(s3, "list_objects_v2", 1000, Bucket=big)
            for o in p["Contents"]]
    # U+FB01 (EF AC 81) before U+1F600 (F0 9F 98 80): byte order, not UTF-16 order.
    assert keys.index("\ufb01le") < keys.index("\U0001F600")
    assert keys.index("Z") < keys.index("a b/c d") < keys.index("z") < keys.index("~tilde")
    assert keys[-1] == "\U0001F600/smile"


@pytest.mark.parametrize("start_after,prefix,delimiter", [
    ("m/0100", "m/", None),
    ("top-0150", "top-", None),
    ("d5", "", "/"),             # just before the common prefix "d5/"
    ("d1/s3/f025", "d1/s3/", "/"),
    ("a", "m/", None),           # before the prefix: the whole prefix
    ("\U0010FFFF", "", None),    # after everything
    ("d1/s1/f010", "", None),    # inside a directory, no delimiter
])
def test_list_start_after(s3, big, start_after, prefix, delimiter):
    kw = {"Prefix": prefix, "StartAfter": start_after}
    if delimiter:
        kw["Delimiter"] = delimiter
    contents, prefixes = expected_listing(BIG_KEYS, prefix, delimiter, start_after)
    small = max(9, (len(contents) + len(prefixes)) // 20)
    for max_keys in (1000, small):
        pages = list_v2_manual(s3, big, max_keys, **kw)
        assert pages[0]["StartAfter"] == start_after
        check_pages(pages, max_keys, prefix, delimiter, start_after)
    paged = paginate(s3, "list_objects_v2", small + 4, Bucket=big, **kw)
    check_pages(paged, small + 4, prefix, delimiter, start_after)
    v1 = {k: v for k, v in kw.items() if k != "StartAfter"}
    check_pages(list_v1_manual(s3, big, small + 2, Marker=start_after, **v1), small + 2, prefix,
                delimiter, start_after)


def test_list_v1_next_marker_only_with_delimiter(s3, big):
    """AWS: NextMarker "is returned only if you have the delimiter request parameter
    specified"; without one, clients continue from the last Key."""
    with_delim = s3.list_objects(Bucket=big, MaxKeys=5, Delimiter="/")
    assert with_delim["IsTruncated"] and with_delim["NextMarker"]
    without = s3.list_objects(Bucket=big, MaxKeys=5)
    assert without["IsTruncated"]
    assert "NextMarker" not in without


def test_list_max_keys_zero_and_bad_parameters(server, s3, big):
    for op in (s3.list_objects_v2, s3.list_objects):
        page = op(Bucket=big, MaxKeys=0)
        assert page["IsTruncated"] is False
        assert "Contents" not in page and "CommonPrefixes" not in page
    for query in ("list-type=2&max-keys=abc", "max-keys=abc", "list-type=2&encoding-type=xml"):
        resp = signed_request(server.endpoint, "GET", f"/{big}", query=query)
        assert_s3_error(resp, "InvalidArgument", 400, resource=f"/{big}")


def test_list_owner_fields(s3, big):
    v1 = s3.list_objects(Bucket=big, MaxKeys=2)
    assert all("Owner" in o for o in v1["Contents"])
    v2 = s3.list_objects_v2(Bucket=big, MaxKeys=2)
    assert all("Owner" not in o for o in v2["Contents"])
    v2o = s3.list_objects_v2(Bucket=big, MaxKeys=2, FetchOwner=True)
    assert all(o["Owner"]["ID"] for o in v2o["Contents"])
    o = v2["Contents"][0]
    assert o["ETag"] == '"%s"' % hashlib.md5(o["Key"].encode()).hexdigest()
    assert o["StorageClass"] == "STANDARD"


# --- encoding-type=url ------------------------------------------------------------------------

ENC_KEYS = ["a b/c d.txt", "100%/x", "100%25/y", "plus+/y", "plus+/z+z", "line\nbreak",
            "tab\there", "ü/ö", "日本/語.txt", "amp&lt<>'\"", "~tilde", "emoji\U0001F600",
            "q?x=1", "hash#frag", "semi;colon", "eq=sign"]


@pytest.fixture(scope="module")
def enc_bucket(s3):
    s3.create_bucket(Bucket="enc-keys")
    for k in ENC_KEYS:
        s3.put_object(Bucket="enc-keys", Key=k, Body=k.encode())
    return "enc-keys"


def test_encoding_url_decoded_by_botocore(s3, enc_bucket):
    # botocore adds encoding-type=url itself and decodes what comes back.
    got = [o["Key"] for o in s3.list_objects_v2(Bucket=enc_bucket)["Contents"]]
    assert got == utf8_sorted(ENC_KEYS)
    got = [o["Key"] for o in s3.list_objects(Bucket=enc_bucket)["Contents"]]
    assert got == utf8_sorted(ENC_KEYS)
    for k in ENC_KEYS:
        assert get_body(s3, enc_bucket, k) == k.encode()


def _assert_url_encoded(raw, original):
    assert urllib.parse.unquote_plus(raw) == original, (raw, original)
    assert not any(c in raw for c in " \n\t&<>'\"?#") and raw.isascii(), raw


def test_encoding_url_explicit_v2(s3, enc_bucket):
    # Asked for explicitly, botocore leaves the values as the server sent them.
    page = s3.list_objects_v2(Bucket=enc_bucket, EncodingType="url")
    assert page["EncodingType"] == "url"
    raws = [o["Key"] for o in page["Contents"]]
    assert len(raws) == len(ENC_KEYS)
    for raw, original in zip(raws, utf8_sorted(ENC_KEYS)):
        _assert_url_encoded(raw, original)

    seen, token = [], None
    while True:
        args = dict(Bucket=enc_bucket, EncodingType="url", Delimiter="/", MaxKeys=3)
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    decoded = sorted(urllib.parse.unquote_plus(x) for x in seen)
    want_c, want_p = expected_listing(ENC_KEYS, delimiter="/")
    assert decoded == sorted(want_c + want_p)

    page = s3.list_objects_v2(Bucket=enc_bucket, EncodingType="url", Prefix="a b/",
                              StartAfter="a b/", Delimiter="/")
    _assert_url_encoded(page["Prefix"], "a b/")
    _assert_url_encoded(page["StartAfter"], "a b/")
    assert [urllib.parse.unquote_plus(o["Key"]) for o in page["Contents"]] == ["a b/c d.txt"]


def test_encoding_url_explicit_v1(s3, enc_bucket):
    seen, marker = [], None
    while True:
        args = dict(Bucket=enc_bucket, EncodingType="url", Delimiter="/", MaxKeys=4)
        if marker:
            args["Marker"] = marker
        page = s3.list_objects(**args)
        assert page["EncodingType"] == "url"
        entries = ([o["Key"] for o in page.get("Contents", [])] +
                   [p["Prefix"] for p in page.get("CommonPrefixes", [])])
        for raw in entries:
            assert raw.isascii() and " " not in raw and "\n" not in raw, raw
        seen += entries
        if not page["IsTruncated"]:
            break
        assert page["NextMarker"].isascii()
        marker = urllib.parse.unquote_plus(page["NextMarker"])
    decoded = sorted(urllib.parse.unquote_plus(x) for x in seen)
    want_c, want_p = expected_listing(ENC_KEYS, delimiter="/")
    assert decoded == sorted(want_c + want_p)
    assert len(seen) == len(set(seen))


def test_list_without_encoding_is_plain_xml(server, enc_bucket):
    # No encoding-type: keys travel as XML text, escaped where XML needs it.
    resp = signed_request(server.endpoint, "GET", f"/{enc_bucket}", query="list-type=2")
    assert resp.status_code == 200, resp.text
    root = ET.fromstring(resp.content)
    assert root.find(f"{S3NS}EncodingType") is None
    keys = [e.text for e in root.iter(f"{S3NS}Key")]
    assert keys == utf8_sorted(ENC_KEYS)


# --- ranges -----------------------------------------------------------------------------------

DATA = random.Random(1234).randbytes(1000)


@pytest.fixture(scope="module")
def rng_bucket(s3):
    s3.create_bucket(Bucket="ranges")
    s3.put_object(Bucket="ranges", Key="obj", Body=DATA)
    s3.put_object(Bucket="ranges", Key="empty", Body=b"")
    return "ranges"


@pytest.mark.parametrize("header,start,end", [
    ("bytes=0-0", 0, 0),            # the first byte
    ("bytes=-10", 990, 999),        # the last 10
    ("bytes=100-199", 100, 199),    # the middle
    ("bytes=990-", 990, 999),       # open-ended
    ("bytes=995-5000", 995, 999),   # end past the end: clamped
    ("bytes=-5000", 0, 999),        # suffix longer than the object
    ("bytes=999-999", 999, 999),    # the last byte
])
def test_range_satisfiable(s3, rng_bucket, header, start, end):
    r = s3.get_object(Bucket=rng_bucket, Key="obj", Range=header)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == f"bytes {start}-{end}/1000"
    assert r["ContentLength"] == end - start + 1
    assert r["Body"].read() == DATA[start:end + 1]
    assert r["ETag"] == '"%s"' % hashlib.md5(DATA).hexdigest()
    assert r["AcceptRanges"] == "bytes"


@pytest.mark.parametrize("key,header", [
    ("obj", "bytes=1000-"),
    ("obj", "bytes=1000-1005"),
    ("obj", "bytes=5000-6000"),
    ("empty", "bytes=0-"),
    ("empty", "bytes=0-0"),
])
def test_range_not_satisfiable(server, s3, rng_bucket, key, header):
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=rng_bucket, Key=key, Range=header)
    assert client_error(ei) == ("InvalidRange", 416)
    resp = signed_request(server.endpoint, "GET", f"/{rng_bucket}/{key}",
                          headers={"Range": header})
    assert_s3_error(resp, "InvalidRange", 416, resource=f"/{rng_bucket}/{key}")


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "bytes=0-1,5-6", "items=0-5"])
def test_range_ignored_when_invalid(s3, rng_bucket, header):
    """Syntactically invalid and multi-range headers are ignored: 200 and the whole object."""
    r = s3.get_object(Bucket=rng_bucket, Key="obj", Range=header)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "ContentRange" not in r
    assert r["Body"].read() == DATA


def test_empty_object_without_range(s3, rng_bucket):
    r = s3.get_object(Bucket=rng_bucket, Key="empty")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["ContentLength"] == 0 and r["Body"].read() == b""
    assert r["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


# --- metadata, content type, digests, overwrite ----------------------------------------------

@pytest.fixture(scope="module")
def obj_bucket(s3):
    s3.create_bucket(Bucket="objects")
    return "objects"


def test_metadata_and_headers_round_trip(s3, obj_bucket):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    body = b"hello metadata"
    s3.put_object(Bucket=obj_bucket, Key="meta.txt", Body=body,
                  ContentType="text/plain; charset=utf-8",
                  Metadata={"color": "blue", "Mixed-Case": "Value With Spaces"},
                  CacheControl="max-age=60", ContentDisposition='attachment; filename="a.txt"',
                  ContentLanguage="en-GB")
    for r in (s3.head_object(Bucket=obj_bucket, Key="meta.txt"),
              s3.get_object(Bucket=obj_bucket, Key="meta.txt")):
        assert r["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces"}
        assert r["ContentType"] == "text/plain; charset=utf-8"
        assert r["CacheControl"] == "max-age=60"
        assert r["ContentDisposition"] == 'attachment; filename="a.txt"'
        assert r["ContentLanguage"] == "en-GB"
        assert r["ContentLength"] == len(body)
        assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
        after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
        assert before <= r["LastModified"] <= after


def test_response_header_overrides(s3, obj_bucket):
    """response-content-type and friends: the values as the client sent them (query-decoded)."""
    s3.put_object(Bucket=obj_bucket, Key="override.txt", Body=b"over", ContentType="text/plain",
                  CacheControl="max-age=60")
    r = s3.get_object(Bucket=obj_bucket, Key="override.txt",
                      ResponseContentType="application/x-over; charset=utf-8",
                      ResponseCacheControl="no-store",
                      ResponseContentDisposition='attachment; filename="o v.txt"')
    assert r["ContentType"] == "application/x-over; charset=utf-8"
    assert r["CacheControl"] == "no-store"
    assert r["ContentDisposition"] == 'attachment; filename="o v.txt"'
    assert r["Body"].read() == b"over"
    # The stored values are untouched.
    h = s3.head_object(Bucket=obj_bucket, Key="override.txt")
    assert h["ContentType"] == "text/plain" and h["CacheControl"] == "max-age=60"


def test_default_content_type(server, s3, obj_bucket):
    resp = signed_request(server.endpoint, "PUT", f"/{obj_bucket}/no-type", body=b"x")
    assert resp.status_code == 200, resp.text
    assert "Content-Type" not in resp.request.headers
    assert s3.head_object(Bucket=obj_bucket, Key="no-type")["ContentType"] == "binary/octet-stream"


def test_put_returns_md5_etag(s3, obj_bucket):
    body = b"etag body"
    r = s3.put_object(Bucket=obj_bucket, Key="etag", Body=body)
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()


def test_content_md5_correct_and_wrong(server, s3, obj_bucket):
    good = b"the right body"
    md5 = base64.b64encode(hashlib.md5(good).digest()).decode()
    s3.put_object(Bucket=obj_bucket, Key="md5", Body=good, ContentMD5=md5)
    assert get_body(s3, obj_bucket, "md5") == good

    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=obj_bucket, Key="md5", Body=b"another body", ContentMD5=md5)
    assert client_error(ei) == ("BadDigest", 400)
    resp = signed_request(server.endpoint, "PUT", f"/{obj_bucket}/md5", body=b"another body",
                          headers={"Content-MD5": md5})
    assert_s3_error(resp, "BadDigest", 400, resource=f"/{obj_bucket}/md5")
    # An undecodable or wrong-length digest is InvalidDigest.
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        resp = signed_request(server.endpoint, "PUT", f"/{obj_bucket}/md5", body=good,
                              headers={"Content-MD5": bad})
        assert_s3_error(resp, "InvalidDigest", 400)
    assert get_body(s3, obj_bucket, "md5") == good
    assert s3.head_object(Bucket=obj_bucket, Key="md5")["ETag"] == (
        '"%s"' % hashlib.md5(good).hexdigest())


def test_overwrite_replaces_body_and_metadata(s3, obj_bucket):
    s3.put_object(Bucket=obj_bucket, Key="ow", Body=b"first version, longer",
                  Metadata={"gen": "1", "only-first": "x"}, ContentType="text/one")
    s3.put_object(Bucket=obj_bucket, Key="ow", Body=b"second", Metadata={"gen": "2"})
    r = s3.get_object(Bucket=obj_bucket, Key="ow")
    assert r["Body"].read() == b"second"
    assert r["Metadata"] == {"gen": "2"}
    assert r["ContentType"] == "binary/octet-stream"
    assert r["ETag"] == '"%s"' % hashlib.md5(b"second").hexdigest()
    listed = [o for o in s3.list_objects_v2(Bucket=obj_bucket, Prefix="ow")["Contents"]
              if o["Key"] == "ow"]
    assert len(listed) == 1 and listed[0]["Size"] == 6


def test_delete_semantics(s3, obj_bucket):
    s3.put_object(Bucket=obj_bucket, Key="del-me", Body=b"x")
    r = s3.delete_object(Bucket=obj_bucket, Key="del-me")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=obj_bucket, Key="del-me")
    assert client_error(ei) == ("NoSuchKey", 404)
    # Deleting a key that does not exist (any more) is still 204.
    for key in ("del-me", "never-existed"):
        r = s3.delete_object(Bucket=obj_bucket, Key=key)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as ei:
        s3.delete_object(Bucket="no-such-bucket-here", Key="k")
    assert client_error(ei) == ("NoSuchBucket", 404)


def test_head_missing(s3, obj_bucket):
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket="no-such-bucket-here")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=obj_bucket, Key="no-such-key")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    r = s3.head_bucket(Bucket=obj_bucket)
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"


def test_key_length_limit(server, s3, obj_bucket):
    ok = "k" * 1024
    s3.put_object(Bucket=obj_bucket, Key=ok, Body=b"1024")
    assert get_body(s3, obj_bucket, ok) == b"1024"
    multibyte = "é" * 512  # 1024 bytes of UTF-8
    s3.put_object(Bucket=obj_bucket, Key=multibyte, Body=b"mb")
    assert get_body(s3, obj_bucket, multibyte) == b"mb"
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=obj_bucket)["Contents"]}
    assert ok in listed and multibyte in listed

    for too_long in ("k" * 1025, "é" * 512 + "x"):
        resp = signed_request(server.endpoint, "PUT", f"/{obj_bucket}/{quote_key(too_long)}",
                              body=b"x")
        assert_s3_error(resp, "KeyTooLongError", 400)
        with pytest.raises(ClientError) as ei:
            s3.put_object(Bucket=obj_bucket, Key=too_long, Body=b"x")
        assert client_error(ei) == ("KeyTooLongError", 400)
    listed_after = {o["Key"] for o in s3.list_objects_v2(Bucket=obj_bucket)["Contents"]}
    assert listed_after == listed


def test_unsigned_payload_accepted(server, s3, obj_bucket):
    resp = signed_request(server.endpoint, "PUT", f"/{obj_bucket}/unsigned",
                          body=b"unsigned body", payload_hash="UNSIGNED-PAYLOAD")
    assert resp.status_code == 200, resp.text
    assert get_body(s3, obj_bucket, "unsigned") == b"unsigned body"


def test_metadata_too_large(server, s3, obj_bucket):
    """AWS: user metadata (names + values) is limited to 2 KB: MetadataTooLarge, 400."""
    s3.put_object(Bucket=obj_bucket, Key="meta-size", Body=b"small",
                  Metadata={"a": "x" * 1000, "b": "y" * 1000})
    with pytest.raises(ClientError) as ei:
        s3.put_object(Bucket=obj_bucket, Key="meta-size", Body=b"big",
                      Metadata={"a": "x" * 1100, "b": "y" * 1100})
    assert client_error(ei) == ("MetadataTooLarge", 400)
    r = s3.get_object(Bucket=obj_bucket, Key="meta-size")
    assert r["Body"].read() == b"small" and r["Metadata"]["a"] == "x" * 1000


def test_list_prefixes_needing_query_encoding(s3, big):
    """Prefixes, delimiters and start-after values that must be percent-encoded in the query
    (and so in the SigV4 canonical query string)."""
    for prefix in ("a b/", "plus+sign/", "pct%41/", "line\n", "日本/", "\U0001F600"):
        page = s3.list_objects_v2(Bucket=big, Prefix=prefix)
        assert [o["Key"] for o in page.get("Contents", [])] == utf8_sorted(
            k for k in BIG_KEYS if k.startswith(prefix))
        assert page["Prefix"] == prefix
    page = s3.list_objects_v2(Bucket=big, Prefix="p", Delimiter="+")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["plus+"]
    assert [o["Key"] for o in page["Contents"]] == ["pct%41/q"]
    page = s3.list_objects_v2(Bucket=big, StartAfter="plus+sign/", Prefix="p")
    assert [o["Key"] for o in page["Contents"]] == ["plus+sign/p"]


# --- conditional GET (RFC 9110 as S3 applies it) ---------------------------------------------

@pytest.fixture(scope="module")
def cond_obj(s3, obj_bucket):
    r = s3.put_object(Bucket=obj_bucket, Key="cond", Body=b"conditional body")
    head = s3.head_object(Bucket=obj_bucket, Key="cond")
    return r["ETag"], head["LastModified"]


def _status(call):
    try:
        r = call()
        return r["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_conditional_requests(s3, obj_bucket, cond_obj, method):
    etag, mtime = cond_obj
    hour = datetime.timedelta(hours=1)
    op = getattr(s3, method)

    def status(**kw):
        return _status(lambda: op(Bucket=obj_bucket, Key="cond", **kw))

    assert status(IfMatch=etag) == 200
    assert status(IfMatch="*") == 200
    assert status(IfMatch='"0123456789abcdef0123456789abcdef"') == 412
    assert status(IfNoneMatch=etag) == 304
    assert status(IfNoneMatch='"0123456789abcdef0123456789abcdef"') == 200
    assert status(IfModifiedSince=mtime) == 304
    assert status(IfModifiedSince=mtime - hour) == 200
    assert status(IfUnmodifiedSince=mtime) == 200
    assert status(IfUnmodifiedSince=mtime - hour) == 412
    # S3: If-Match true + If-Unmodified-Since false -> 200;
    #     If-None-Match false + If-Modified-Since true -> 304.
    assert status(IfMatch=etag, IfUnmodifiedSince=mtime - hour) == 200
    assert status(IfNoneMatch=etag, IfModifiedSince=mtime - hour) == 304


def test_conditional_error_documents(server, s3, obj_bucket, cond_obj):
    etag, _ = cond_obj
    resp = signed_request(server.endpoint, "GET", f"/{obj_bucket}/cond",
                          headers={"If-Match": '"ffffffffffffffffffffffffffffffff"'})
    assert_s3_error(resp, "PreconditionFailed", 412, resource=f"/{obj_bucket}/cond")
    resp = signed_request(server.endpoint, "GET", f"/{obj_bucket}/cond",
                          headers={"If-None-Match": etag})
    assert resp.status_code == 304 and resp.content == b""
    assert resp.headers["ETag"] == etag
    # A date that does not parse is ignored (RFC 9110 §13.1.3).
    resp = signed_request(server.endpoint, "GET", f"/{obj_bucket}/cond",
                          headers={"If-Modified-Since": "not a date"})
    assert resp.status_code == 200 and resp.content == b"conditional body"
    assert get_body(s3, obj_bucket, "cond") == b"conditional body"


# --- buckets ----------------------------------------------------------------------------------

def test_list_buckets_and_location(s3):
    names = ["lb-alpha", "lb-beta.dots", "lb-0gamma"]
    for n in names:
        s3.create_bucket(Bucket=n)
    r = s3.list_buckets()
    listed = [b["Name"] for b in r["Buckets"]]
    assert set(names) <= set(listed)
    assert listed == sorted(listed)
    assert r["Owner"]["ID"]
    now = datetime.datetime.now(datetime.timezone.utc)
    for b in r["Buckets"]:
        if b["Name"] in names:
            assert abs((now - b["CreationDate"]).total_seconds()) < 120
    assert s3.get_bucket_location(Bucket="lb-alpha")["LocationConstraint"] is None
    s3.delete_bucket(Bucket="lb-0gamma")
    assert "lb-0gamma" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_bucket_already_owned_and_not_empty(server, s3):
    s3.create_bucket(Bucket="owned-twice")
    with pytest.raises(ClientError) as ei:
        s3.create_bucket(Bucket="owned-twice")
    assert client_error(ei) == ("BucketAlreadyOwnedByYou", 409)
    resp = signed_request(server.endpoint, "PUT", "/owned-twice")
    assert_s3_error(resp, "BucketAlreadyOwnedByYou", 409, resource="/owned-twice")

    s3.put_object(Bucket="owned-twice", Key="keep", Body=b"still here")
    resp = signed_request(server.endpoint, "DELETE", "/owned-twice")
    assert_s3_error(resp, "BucketNotEmpty", 409, resource="/owned-twice")
    with pytest.raises(ClientError) as ei:
        s3.delete_bucket(Bucket="owned-twice")
    assert client_error(ei) == ("BucketNotEmpty", 409)
    assert get_body(s3, "owned-twice", "keep") == b"still here"
    s3.delete_object(Bucket="owned-twice", Key="keep")
    s3.delete_bucket(Bucket="owned-twice")
    with pytest.raises(ClientError) as ei:
        s3.head_bucket(Bucket="owned-twice")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize("name", [
    "ab", "a" * 64, "UpperCase", "under_score", "-leading-dash", "trailing-dash-",
    ".leading-dot", "double..dot", "dot.-dash", "192.168.10.1", "xn--punycode", "sthree-x",
    "name-s3alias", "name--ol-s3", "spa%20ce",
])
def test_invalid_bucket_names(server, s3, name):
    resp = signed_request(server.endpoint, "PUT", f"/{name}")
    assert_s3_error(resp, "InvalidBucketName", 400)
    decoded = urllib.parse.unquote(name)
    assert decoded not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_valid_edge_bucket_names(s3):
    for name in ("abc", "a" * 63, "1.2.3", "a-b.c-d", "192.168.10.1x"):
        s3.create_bucket(Bucket=name)
        s3.head_bucket(Bucket=name)
        s3.delete_bucket(Bucket=name)


def test_malformed_create_bucket_xml(server, s3):
    resp = signed_request(server.endpoint, "PUT", "/malformed-xml-bucket", body=b"<notxml")
    assert_s3_error(resp, "MalformedXML", 400)
    assert "malformed-xml-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    body = (b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"</CreateBucketConfiguration>")
    resp = signed_request(server.endpoint, "PUT", "/wellformed-xml-bucket", body=body)
    assert resp.status_code == 200, resp.text
    s3.head_bucket(Bucket="wellformed-xml-bucket")


# --- errors from hand-made requests -----------------------------------------------------------

@pytest.fixture(scope="module")
def err_bucket(s3):
    s3.create_bucket(Bucket="errors")
    return "errors"


@pytest.fixture()
def victim(request, s3, err_bucket):
    """A key of its own for each test, holding b"original", so that a request that wrongly
    succeeds cannot spill into the next test."""
    key = "victim-" + request.node.name.replace("[", "-").replace("]", "")
    s3.put_object(Bucket=err_bucket, Key=key, Body=b"original")
    return key


def assert_unchanged(s3, bucket, key):
    r = s3.get_object(Bucket=bucket, Key=key)
    assert r["Body"].read() == b"original"
    assert r["ETag"] == '"%s"' % hashlib.md5(b"original").hexdigest()


def test_signed_request_baseline(server, s3, err_bucket, victim):
    resp = signed_request(server.endpoint, "GET", f"/{err_bucket}/{victim}")
    assert resp.status_code == 200 and resp.content == b"original"
    assert resp.headers["x-amz-request-id"]


def test_access_denied_unsigned(server, s3, err_bucket, victim):
    for method, body in (("GET", b""), ("PUT", b"overwritten"), ("DELETE", b"")):
        resp = signed_request(server.endpoint, method, f"/{err_bucket}/{victim}", body=body,
                              sign_it=False)
        assert_s3_error(resp, "AccessDenied", 403, resource=f"/{err_bucket}/{victim}")
    assert_unchanged(s3, err_bucket, victim)


def test_signature_does_not_match(server, s3, err_bucket, victim):
    for method, body in (("GET", b""), ("PUT", b"overwritten"), ("DELETE", b"")):
        resp = signed_request(server.endpoint, method, f"/{err_bucket}/{victim}", body=body,
                              secret_key="not-the-secret")
        assert_s3_error(resp, "SignatureDoesNotMatch", 403, resource=f"/{err_bucket}/{victim}")
    assert_unchanged(s3, err_bucket, victim)
    bad = s3_client(server.endpoint, secret_key="not-the-secret")
    with pytest.raises(ClientError) as ei:
        bad.list_buckets()
    assert client_error(ei) == ("SignatureDoesNotMatch", 403)


def test_invalid_access_key_id(server, s3, err_bucket, victim):
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          access_key="AKIDUNKNOWN0000000")
    assert_s3_error(resp, "InvalidAccessKeyId", 403)
    bad = s3_client(server.endpoint, access_key="AKIDUNKNOWN0000000")
    with pytest.raises(ClientError) as ei:
        bad.get_object(Bucket=err_bucket, Key=victim)
    assert client_error(ei) == ("InvalidAccessKeyId", 403)
    assert_unchanged(s3, err_bucket, victim)


@pytest.mark.parametrize("offset", [20 * 60, -20 * 60])
def test_request_time_too_skewed(server, s3, err_bucket, offset, victim):
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          clock_offset=offset)
    assert_s3_error(resp, "RequestTimeTooSkewed", 403)
    assert_unchanged(s3, err_bucket, victim)


def test_small_skew_accepted(server, err_bucket, victim):
    resp = signed_request(server.endpoint, "GET", f"/{err_bucket}/{victim}", clock_offset=10 * 60)
    assert resp.status_code == 200 and resp.content == b"original"


def test_payload_hash_mismatch(server, s3, err_bucket, victim):
    other = hashlib.sha256(b"something else").hexdigest()
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          payload_hash=other)
    assert_s3_error(resp, "XAmzContentSHA256Mismatch", 400)
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/new-key", body=b"data",
                          payload_hash=EMPTY_SHA256)
    assert_s3_error(resp, "XAmzContentSHA256Mismatch", 400)
    assert_unchanged(s3, err_bucket, victim)
    with pytest.raises(ClientError) as ei:
        s3.head_object(Bucket=err_bucket, Key="new-key")
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_payload_hash_not_hex(server, s3, err_bucket, victim):
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          payload_hash="not-a-sha256")
    assert_s3_error(resp, "InvalidArgument", 400)
    assert_unchanged(s3, err_bucket, victim)


def test_authorization_header_malformed(server, s3, err_bucket, victim):
    """AWS answers a SigV4 Authorization missing a component with 400
    AuthorizationHeaderMalformed ("the authorization header requires three components")."""
    good = sign(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten")[1][
        "Authorization"]
    no_signed_headers = ",".join(p for p in good.split(",") if "SignedHeaders=" not in p)
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          authorization=no_signed_headers)
    assert_s3_error(resp, "AuthorizationHeaderMalformed", 400)
    assert_unchanged(s3, err_bucket, victim)


def test_wrong_region_in_credential_scope(server, s3, err_bucket, victim):
    """AWS checks the scope's region: 400 AuthorizationHeaderMalformed ("the region
    'eu-west-1' is wrong; expecting 'us-east-1'"), which SDKs use to find a bucket's region."""
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          region="eu-west-1")
    assert_s3_error(resp, "AuthorizationHeaderMalformed", 400)
    assert_unchanged(s3, err_bucket, victim)


def test_authorization_unsupported_type(server, s3, err_bucket, victim):
    """AWS: an unknown scheme is 400 InvalidArgument "Unsupported Authorization Type"."""
    resp = signed_request(server.endpoint, "PUT", f"/{err_bucket}/{victim}", body=b"overwritten",
                          authorization="Bearer abc.def.ghi")
    assert_s3_error(resp, "InvalidArgument", 400)
    assert_unchanged(s3, err_bucket, victim)


def test_method_not_allowed(server, s3, err_bucket, victim):
    resp = signed_request(server.endpoint, "POST", f"/{err_bucket}/{victim}", body=b"overwritten")
    assert_s3_error(resp, "MethodNotAllowed", 405, resource=f"/{err_bucket}/{victim}")
    assert_unchanged(s3, err_bucket, victim)


def test_no_such_bucket_and_key(server, s3, err_bucket):
    cases = [("GET", "/no-such-bucket-x/k", "NoSuchBucket"),
             ("PUT", "/no-such-bucket-x/k", "NoSuchBucket"),
             ("GET", "/no-such-bucket-x", "NoSuchBucket"),
             ("DELETE", "/no-such-bucket-x", "NoSuchBucket"),
             ("GET", f"/{err_bucket}/missing", "NoSuchKey"),
             ("GET", f"/{err_bucket}/{quote_key('dír/ünïcode missing')}", "NoSuchKey")]
    for method, path, code in cases:
        resp = signed_request(server.endpoint, method, path, body=b"x" if method == "PUT" else b"")
        err = assert_s3_error(resp, code, 404)
        assert err["Resource"] == urllib.parse.unquote(path)
    with pytest.raises(ClientError) as ei:
        s3.list_objects_v2(Bucket="no-such-bucket-x")
    assert client_error(ei) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as ei:
        s3.get_object(Bucket=err_bucket, Key="missing")
    assert client_error(ei) == ("NoSuchKey", 404)
    assert "no-such-bucket-x" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_not_implemented(server, s3, err_bucket, victim):
    # GetObjectTorrent: an operation coffer does not implement (it answers NotImplemented).
    with pytest.raises(ClientError) as ei:
        s3.get_object_torrent(Bucket=err_bucket, Key=victim)
    assert client_error(ei) == ("NotImplemented", 501)
    resp = signed_request(server.endpoint, "GET", f"/{err_bucket}/{victim}", query="torrent=")
    assert_s3_error(resp, "NotImplemented", 501, resource=f"/{err_bucket}/{victim}")
    assert_unchanged(s3, err_bucket, victim)


def test_error_document_shape(server, err_bucket):
    resp = signed_request(server.endpoint, "GET", f"/{err_bucket}/missing")
    assert resp.content.startswith(b"<?xml")
    err = parse_error(resp.content)
    assert set(err) >= {"Code", "Message", "Resource", "RequestId"}
    assert err["Message"] == "The specified key does not exist."
    other = signed_request(server.endpoint, "GET", f"/{err_bucket}/missing")
    assert parse_error(other.content)["RequestId"] != err["RequestId"]
