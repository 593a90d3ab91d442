"""The AWS SDK for JavaScript v3 against coffer: runs tests/js/sdk_test.mjs under Node.js.

The SDK runs with its default settings, so its uploads are aws-chunked bodies with a trailing
checksum (x-amz-trailer), and presigned GET/PUT URLs are fetched with Node's fetch. The script
reports each step as JSON; one pytest test per step, so a failure names the S3 operation and
carries the requests (with their x-amz-content-sha256, Content-Encoding, x-amz-trailer headers)
that the step sent. `scripts/install-deps.sh` installs the npm packages (tests/js/node_modules).
"""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import ACCESS_KEY, ROOT, SECRET_KEY

NODE = "/usr/bin/node"
JS_DIR = os.path.join(ROOT, "tests", "js")
SCRIPT = os.path.join(JS_DIR, "sdk_test.mjs")
SEED_BUCKET = "js-seed"
SEED_KEY = "seed/hello world.bin"
SEED = os.urandom(200_000) + b"end of seed\n"

STEPS = ["CreateBucket", "GetObject.seeded", "HeadObject.seeded", "PutObject.string",
         "PutObject.buffer", "PutObject.stream.CRC32", "PutObject.stream.CRC64NVME",
         "GetObject.string", "GetObject.buffer", "HeadObject", "ListObjectsV2", "MultipartUpload",
         "MultipartUpload.stream", "lib-storage.Upload", "PresignedGet", "PresignedPut",
         "PresignedPut.defaultSettings", "DeleteObjects", "DeleteBucket"]


@pytest.fixture(scope="module")
def run(server, s3, tmp_path_factory):
    """The script's exit code and JSON report, from one run against this module's server."""
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-s3")), \
        "tests/js/node_modules is missing: run scripts/install-deps.sh"
    s3.create_bucket(Bucket=SEED_BUCKET)
    s3.put_object(Bucket=SEED_BUCKET, Key=SEED_KEY, Body=SEED)
    home = tmp_path_factory.mktemp("jshome")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "HOME": str(home),  # no ~/.aws config or credentials of the developer's
        "COFFER_ENDPOINT": server.endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "COFFER_SEED_BUCKET": SEED_BUCKET,
        "COFFER_SEED_KEY": SEED_KEY,
        "COFFER_SEED_SHA256": hashlib.sha256(SEED).hexdigest(),
    })
    proc = subprocess.run([NODE, SCRIPT], capture_output=True, text=True, timeout=120, env=env,
                          cwd=JS_DIR)
    assert SECRET_KEY not in proc.stdout + proc.stderr
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"sdk_test.mjs printed no JSON (exit {proc.returncode}):\n"
                    f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc.returncode, report, server


def test_every_step_ran_and_exit_code(run):
    code, report, _ = run
    assert [s["name"] for s in report["steps"]] == STEPS
    assert report["ok"] == all(s["ok"] for s in report["steps"])
    assert code == (0 if report["ok"] else 1)
    failed = [s["name"] for s in report["steps"] if not s["ok"]]
    assert not failed, f"failed steps: {failed}"


@pytest.mark.parametrize("name", STEPS)
def test_step(run, name):
    _, report, server = run
    step = next(s for s in report["steps"] if s["name"] == name)
    ids = [f"id={r['requestId']}" for r in step["requests"] if r.get("requestId")]
    server_lines = [line for line in server.log().splitlines()
                    if any(i in line.split() for i in ids)]
    assert step["ok"], (
        f"{name} failed: {json.dumps(step.get('error'), indent=1)}\n"
        f"requests:\n{json.dumps(step['requests'], indent=1)}\n"
        "server log of those requests:\n" + "\n".join(server_lines)[-4000:])


def test_sdk_sent_default_checksums(run):
    """The SDK's defaults really produced what this suite is about: a CRC32 header on a Buffer
    upload, aws-chunked bodies with a checksum trailer on stream uploads, and a presigned PUT URL
    with the checksum in its query."""
    _, report, _ = run
    steps = {s["name"]: s for s in report["steps"]}

    def first_put(name):
        puts = [r for r in steps[name]["requests"] if r["method"] == "PUT"]
        assert puts, f"{name} sent no PUT"
        return puts[0]["headers"]

    h = first_put("PutObject.buffer")
    assert "x-amz-checksum-crc32" in h and len(h["x-amz-content-sha256"]) == 64, h
    for name, trailer in (("PutObject.stream.CRC32", "x-amz-checksum-crc32"),
                          ("PutObject.stream.CRC64NVME", "x-amz-checksum-crc64nvme"),
                          ("MultipartUpload.stream", "x-amz-checksum-crc32")):
        h = first_put(name)
        assert h.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", (name, h)
        assert h.get("content-encoding") == "aws-chunked", (name, h)
        assert h.get("x-amz-trailer") == trailer, (name, h)
        assert int(h.get("x-amz-decoded-content-length", -1)) > 0, (name, h)
    detail = steps["PresignedPut"].get("detail") or {}
    if steps["PresignedPut"]["ok"]:
        assert "x-amz-checksum-crc32=" in detail["url"], detail
    # The default presigned PUT: the empty body's CRC32 in the query, and no x-amz-* header
    # sent with the upload (fetch adds none), so nothing there needs signing.
    step = steps["PresignedPut.defaultSettings"]
    puts = [r for r in step["requests"] if r.get("via") == "fetch"]
    assert puts and all(r["query"].get("x-amz-checksum-crc32") == "AAAAAA==" for r in puts), puts
    assert all(r["status"] == 200 for r in puts), puts


def test_server_state_after_run(run, s3):
    """What the SDK created and deleted, seen through boto3."""
    _, report, _ = run
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert report["bucket"] not in names
    assert s3.get_object(Bucket=SEED_BUCKET, Key=SEED_KEY)["Body"].read() == SEED
