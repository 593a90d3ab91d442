#!/usr/bin/env python3
"""Mixed S3 load for bench/soak.sh: --workers threads, each with its own boto3 client, for
--seconds, over a fixed key space (so the store's size stays bounded however long it runs).

Operations, drawn at random by weight: PUT small (1-16 KiB) and medium (256 KiB - 2 MiB), GET
whole and ranged, HEAD, ListObjectsV2, DELETE, multipart uploads (2 parts of 5 MiB + a small
last one; a third aborted after the first part), CopyObject, and GET through a presigned URL.
Every body starts with the SHA-256 of the rest, so a whole GET checks the bytes it got even
while other workers overwrite the key. A missing key (404 NoSuchKey, NoSuchUpload after another
worker completed or aborted, 416 for a range past a shorter object) is expected: keys are
deleted and overwritten concurrently. Anything else (another status, a client exception, a
wrong body) is an error, counted and the first few printed.

Writes --out as JSON: per operation the count, errors and latency p50/p99 (ms), the total
seconds, and the first error messages. Botocore's retries are off, so no error is hidden.
"""
import argparse
import hashlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

SMALL_KEYS = 200
MEDIUM_KEYS = 20
MULTIPART_KEYS = 4
COPY_KEYS = 50
PART = 5 * 1024 * 1024

# name, weight
OPS = [
    ("put_small", 20),
    ("put_medium", 3),
    ("get", 20),
    ("get_range", 10),
    ("head", 10),
    ("list", 5),
    ("delete", 5),
    ("multipart", 0.5),
    ("copy", 5),
    ("presigned_get", 5),
]
EXPECTED_CODES = {"NoSuchKey", "404", "NoSuchUpload", "InvalidRange", "416"}


class Expected(Exception):
    """A miss another worker's delete or overwrite explains."""


def body(size, rng):
    rest = rng.randbytes(size - 32)
    return hashlib.sha256(rest).digest() + rest


def check(data, what):
    if len(data) < 32 or hashlib.sha256(data[32:]).digest() != data[:32]:
        raise RuntimeError(f"{what}: body of {len(data)} bytes does not match its checksum")


def any_key(rng):
    r = rng.random()
    if r < 0.75:
        return f"small/k{rng.randrange(SMALL_KEYS):04d}"
    if r < 0.9:
        return f"medium/k{rng.randrange(MEDIUM_KEYS):04d}"
    return f"copy/k{rng.randrange(COPY_KEYS):04d}"


class Worker:
    def __init__(self, a, seed):
        self.a = a
        self.rng = random.Random(seed)
        self.s3 = boto3.client(
            "s3",
            endpoint_url=a.endpoint,
            region_name="us-east-1",
            aws_access_key_id=a.access_key,
            aws_secret_access_key=a.secret_key,
            config=Config(signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"},
                          s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )
        self.b = a.bucket

    def put_small(self):
        self.s3.put_object(Bucket=self.b, Key=f"small/k{self.rng.randrange(SMALL_KEYS):04d}",
                           Body=body(self.rng.randint(1024, 16384), self.rng))

    def put_medium(self):
        self.s3.put_object(Bucket=self.b, Key=f"medium/k{self.rng.randrange(MEDIUM_KEYS):04d}",
                           Body=body(self.rng.randint(256 * 1024, 2 * 1024 * 1024), self.rng))

    def get(self):
        key = any_key(self.rng)
        check(self.s3.get_object(Bucket=self.b, Key=key)["Body"].read(), key)

    def get_range(self):
        key = any_key(self.rng)
        first = self.rng.randrange(0, 1024)
        r = self.s3.get_object(Bucket=self.b, Key=key, Range=f"bytes={first}-{first + 4095}")
        data = r["Body"].read()
        total = int(r["ContentRange"].rsplit("/", 1)[1])
        if len(data) != min(4096, total - first):
            raise RuntimeError(f"range of {key}: {len(data)} bytes of {total}")

    def head(self):
        self.s3.head_object(Bucket=self.b, Key=any_key(self.rng))

    def list(self):
        prefix = self.rng.choice(["small/", "medium/", "copy/", ""])
        token = None
        for _ in range(3):
            kw = {"Bucket": self.b, "Prefix": prefix, "MaxKeys": 100}
            if token:
                kw["ContinuationToken"] = token
            r = self.s3.list_objects_v2(**kw)
            if not r.get("IsTruncated"):
                break
            token = r["NextContinuationToken"]

    def delete(self):
        self.s3.delete_object(Bucket=self.b, Key=any_key(self.rng))

    def multipart(self):
        key = f"multipart/k{self.rng.randrange(MULTIPART_KEYS)}"
        uid = self.s3.create_multipart_upload(Bucket=self.b, Key=key)["UploadId"]
        parts = []
        abort = self.rng.random() < 1 / 3
        try:
            for n, size in enumerate([PART, PART, self.rng.randint(1024, 65536)], 1):
                data = self.rng.randbytes(size)
                etag = self.s3.upload_part(Bucket=self.b, Key=key, UploadId=uid, PartNumber=n,
                                           Body=data)["ETag"]
                parts.append({"PartNumber": n, "ETag": etag})
                if abort:
                    break
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.b, Key=key, UploadId=uid)
            raise
        if abort:
            self.s3.abort_multipart_upload(Bucket=self.b, Key=key, UploadId=uid)
            return "multipart_abort"
        self.s3.complete_multipart_upload(Bucket=self.b, Key=key, UploadId=uid,
                                          MultipartUpload={"Parts": parts})
        return None

    def copy(self):
        src = f"small/k{self.rng.randrange(SMALL_KEYS):04d}"
        self.s3.copy_object(Bucket=self.b, Key=f"copy/k{self.rng.randrange(COPY_KEYS):04d}",
                            CopySource={"Bucket": self.b, "Key": src})

    def presigned_get(self):
        key = any_key(self.rng)
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": self.b, "Key": key},
                                             ExpiresIn=300)
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                check(r.read(), key)
        except urllib.error.HTTPError as e:
            detail = e.read()[:200]
            if e.code == 404:
                raise Expected() from None
            raise RuntimeError(f"presigned GET {key}: HTTP {e.code} {detail!r}") from None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {}
        self.first_errors = []

    def add(self, name, ms, outcome, message=None):
        with self.lock:
            s = self.ops.setdefault(name, {"count": 0, "expected_misses": 0, "errors": 0, "ms": []})
            s["count"] += 1
            s["ms"].append(ms)
            if outcome == "miss":
                s["expected_misses"] += 1
            elif outcome == "error":
                s["errors"] += 1
                if len(self.first_errors) < 20:
                    self.first_errors.append(f"{name}: {message}")


def run(worker, stats, deadline):
    names = [n for n, _ in OPS]
    weights = [w for _, w in OPS]
    while time.monotonic() < deadline:
        name = worker.rng.choices(names, weights)[0]
        t0 = time.monotonic()
        outcome, message = "ok", None
        try:
            renamed = getattr(worker, name)()
            name = renamed or name
        except Expected:
            outcome = "miss"
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in EXPECTED_CODES:
                outcome = "miss"
            else:
                outcome, message = "error", f"HTTP {status} {code}: {e}"
        except Exception as e:  # a client exception is an error, whatever it is
            outcome, message = "error", f"{type(e).__name__}: {e}"
        stats.add(name, (time.monotonic() - t0) * 1000, outcome, message)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", default=os.environ.get("SOAK_SECRET_KEY"))
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    # Fill the key space first, so the timed part starts from the shape it keeps.
    filler = Worker(a, a.seed)
    for i in range(SMALL_KEYS):
        filler.s3.put_object(Bucket=a.bucket, Key=f"small/k{i:04d}",
                             Body=body(filler.rng.randint(1024, 16384), filler.rng))
    for i in range(MEDIUM_KEYS):
        filler.s3.put_object(Bucket=a.bucket, Key=f"medium/k{i:04d}",
                             Body=body(filler.rng.randint(256 * 1024, 2 * 1024 * 1024), filler.rng))

    stats = Stats()
    workers = [Worker(a, a.seed * 1000 + i) for i in range(a.workers)]
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    threads = [threading.Thread(target=run, args=(w, stats, deadline)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    out = {"seconds": round(elapsed, 1), "workers": a.workers, "ops": {}, "first_errors": stats.first_errors}
    for name, s in sorted(stats.ops.items()):
        out["ops"][name] = {"count": s["count"], "per_second": round(s["count"] / elapsed, 2),
                            "expected_misses": s["expected_misses"], "errors": s["errors"],
                            "p50_ms": round(pct(s["ms"], 50), 1), "p99_ms": round(pct(s["ms"], 99), 1)}
    out["total"] = sum(s["count"] for s in stats.ops.values())
    out["errors"] = sum(s["errors"] for s in stats.ops.values())
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
