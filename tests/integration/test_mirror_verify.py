"""coffer mirror --verify: the migration proof. Both sides are read whole and compared by
SHA-256, so a file changed behind the mirror's back with the same size and mtime (which the
incremental mirror skips), a missing file, and an object whose bytes were changed on the
server's disk behind S3's back are all found; extra files are listed but do not fail the proof;
excludes are respected. `--verify --dry-run` only verifies; exit code 4 when anything is missing
or different. An object uploaded by boto3 in 8 MiB parts has the multipart ETag the unit tests
expect (tests/unit/mirror/test_etag.c), and the verify matches it with 8 MiB parts."""
import hashlib
import io
import json
import os

import pytest
from boto3.s3.transfer import TransferConfig

from conftest import ACCESS_KEY, COFFER_BIN, SECRET_KEY, run_checked, s3_client, scrubbed_env

MiB = 1 << 20
BUCKET = "verify"
# The same bytes and ETag as tests/unit/mirror/test_etag.c (hashlib, and a coffer server's answer
# to boto3's upload in 8 MiB parts).
BOTO3_40MIB_ETAG = '"97b3402a85263c2b3687d30a8e8c2a43-5"'


def stream(n):
    """SHA-256 of a little-endian 64-bit counter, concatenated: test_etag.c's bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(8, "little")).digest()
        i += 1
    return bytes(out[:n])


TREE = {
    "a.txt": b"hello, mirror\n",
    "img/photo.jpg": os.urandom(70000),
    "img/deep/icon.png": os.urandom(20000),
    "cache/tmp.bin": os.urandom(30000),
    "empty": b"",
    "z/last": b"z",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory, server):
    d = tmp_path_factory.mktemp("verify-env")
    secret = d / "secret"
    secret.write_text(SECRET_KEY)
    return {"env": scrubbed_env(HOME=str(d)), "args": ["--endpoint", server.endpoint, "--access-key", ACCESS_KEY,
                               "--secret-key-file", str(secret), "--no-progress"]}


@pytest.fixture(scope="module")
def s3(server):
    c = s3_client(server.endpoint)
    c.create_bucket(Bucket=BUCKET)
    return c


def mirror(env, *args, check=None):
    return run_checked([COFFER_BIN, "mirror", *env["args"], *args], env=env["env"], timeout=300,
                       check=check, text=True)


def verify_json(env, src, dst, *extra, check):
    p = mirror(env, "--verify", "--dry-run", "--json", *extra, src, dst, check=check)
    return json.loads(p.stdout)["verify"]


def lay(root, tree=TREE):
    for key, data in tree.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def flip_keeping_mtime(path, at):
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(at)
        c = f.read(1)
        f.seek(at)
        f.write(bytes([c[0] ^ 0x5A]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size


def data_files_holding(data_dir, data):
    """The server's data files (docs/internals/store.md: DATA/objects/ab/cd/<id>) holding data,
    newest first: a key is never part of a file name, so they are found by content."""
    hits = []
    for dirpath, _, names in os.walk(os.path.join(data_dir, "objects")):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.getsize(path) == len(data) and open(path, "rb").read() == data:
                hits.append(path)
    return sorted(hits, key=lambda p: os.stat(p).st_mtime_ns, reverse=True)


def test_identical_trees_then_changed_behind_the_mirrors_back(env, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    lay(src)
    mirror(env, str(src), str(dst), check=0)
    p = mirror(env, "--verify", "--dry-run", "--json", str(src), str(dst), check=0)
    out = json.loads(p.stdout)
    v = out["verify"]
    assert v["checked"] == len(TREE)
    assert v["bytes"] == sum(len(b) for b in TREE.values())
    assert (v["missing"], v["different"], v["extra"]) == ([], [], [])
    assert out["seconds"] > 0  # the reading of both sides is the run's time, not the plan's 0

    # Same size, same mtime: the incremental mirror keeps skipping it, the proof does not.
    flip_keeping_mtime(dst / "img/photo.jpg", 1234)
    p = mirror(env, "--json", "--verify", str(src), str(dst), check=4)
    out = json.loads(p.stdout)
    assert out["files"]["copied"] == 0
    assert out["verify"]["different"] == ["img/photo.jpg"]
    assert out["verify"]["missing"] == []
    # The human summary says it too, and names the file.
    p = mirror(env, "--verify", "--dry-run", str(src), str(dst), check=4)
    assert f"verified {len(TREE)}: 0 missing, 1 different" in p.stdout
    assert "img/photo.jpg" in p.stdout + p.stderr


def test_missing_extra_and_empty_files(env, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    lay(src)
    mirror(env, str(src), str(dst), check=0)
    (dst / "z/last").unlink()
    (dst / "img/deep/icon.png").unlink()
    (dst / "only-here.txt").write_bytes(b"x")
    v = verify_json(env, str(src), str(dst), check=4)
    assert v["missing"] == ["img/deep/icon.png", "z/last"]  # key order
    assert v["different"] == []
    assert v["extra"] == ["only-here.txt"]
    # --dry-run changed nothing.
    assert not (dst / "z/last").exists()

    # A re-run copies what is left and the proof holds; the extra file alone does not fail it.
    p = mirror(env, "--json", "--verify", str(src), str(dst), check=0)
    out = json.loads(p.stdout)
    assert out["files"]["copied"] == 2
    assert out["verify"]["missing"] == [] and out["verify"]["different"] == []
    assert out["verify"]["extra"] == ["only-here.txt"]

    # An empty file against a one-byte one.
    (dst / "empty").write_bytes(b"!")
    v = verify_json(env, str(src), str(dst), check=4)
    assert v["different"] == ["empty"]


def test_excludes_are_respected(env, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    lay(src)
    mirror(env, str(src), str(dst), check=0)
    flip_keeping_mtime(dst / "cache/tmp.bin", 5)
    (dst / "cache/new.bin").write_bytes(b"new")
    (dst / "a.txt").unlink()
    v = verify_json(env, str(src), str(dst), "--exclude", "cache/", "--exclude", "*.txt", check=0)
    assert v["checked"] == len(TREE) - 2
    assert (v["missing"], v["different"], v["extra"]) == ([], [], [])
    v = verify_json(env, str(src), str(dst), check=4)
    assert v["different"] == ["cache/tmp.bin"] and v["missing"] == ["a.txt"]


def test_dir_to_bucket_and_bytes_changed_on_the_servers_disk(env, server, s3, tmp_path):
    src = tmp_path / "src"
    lay(src)
    dst = f"s3://{BUCKET}/site"
    mirror(env, str(src), dst, check=0)
    v = verify_json(env, str(src), dst, check=0)
    assert v["checked"] == len(TREE) and v["different"] == []

    # img/photo.jpg's bytes changed in the server's data file: S3 still lists and serves it with
    # its old size and ETag; the SHA-256s differ and the ETag names the destination.
    files = data_files_holding(server.data_dir, TREE["img/photo.jpg"])
    assert files, "the object's data file was not found"
    flip_keeping_mtime(files[0], 100)
    head = s3.head_object(Bucket=BUCKET, Key="site/img/photo.jpg")
    assert head["ContentLength"] == len(TREE["img/photo.jpg"])
    v = verify_json(env, str(src), dst, check=4)
    assert v["different"] == ["img/photo.jpg"]
    finding = v["findings"][0]
    assert finding["key"] == "img/photo.jpg" and finding["side"] == "destination"
    assert "ETag does not match bytes" in finding["why"]
    # Read from the bucket's side the other way round, the source is named.
    v = verify_json(env, dst, str(src), check=4)
    assert v["findings"][0]["side"] == "source"


def test_boto3_multipart_object_etag_matched_with_8_mib_parts(env, server, s3, tmp_path):
    data = stream(40 * MiB)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    for prefix in ("mp-src", "mp-dst"):
        s3.upload_fileobj(io.BytesIO(data), BUCKET, f"{prefix}/big.bin", Config=cfg)
        assert s3.head_object(Bucket=BUCKET, Key=f"{prefix}/big.bin")["ETag"] == BOTO3_40MIB_ETAG
    src, dst = f"s3://{BUCKET}/mp-src", f"s3://{BUCKET}/mp-dst"
    p = mirror(env, "--verify", "--dry-run", "--json", "--log-level", "debug", src, dst, check=0)
    assert json.loads(p.stdout)["verify"]["checked"] == 1
    matched = [l for l in p.stderr.splitlines() if "verify: etag" in l and "big.bin" in l]
    assert len(matched) == 2, p.stderr
    assert all("verdict=matches" in l and "part_size=8388608" in l for l in matched), matched

    # To a directory and back: the object's bytes are the file's.
    local = tmp_path / "local"
    mirror(env, src, str(local), check=0)
    assert (local / "big.bin").read_bytes() == data
    verify_json(env, src, str(local), check=0)

    # The destination's third part changed on the server's disk: the source's bytes give the
    # ETag both share with 8 MiB parts and the destination's do not, so the destination is named
    # although a multipart ETag alone could not tell.
    part3 = data[16 * MiB:24 * MiB]
    files = data_files_holding(server.data_dir, part3)
    assert len(files) == 2
    flip_keeping_mtime(files[0], 777)  # the newer: mp-dst's
    v = verify_json(env, src, dst, check=4)
    assert v["different"] == ["big.bin"]
    assert v["findings"][0]["side"] == "destination"


def test_unreadable_source_listing_fails_the_run(env, tmp_path):
    p = mirror(env, "--verify", "--dry-run", f"s3://no-such-bucket-{os.getpid()}", str(tmp_path / "d"))
    assert p.returncode == 6, p.stderr
