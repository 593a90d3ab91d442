"""`make install` and `make uninstall` (PREFIX, DESTDIR): the binary under test's build directory
installed as PREFIX/bin/coffer under DESTDIR, mode 0755, with libcoffer beside it, and the
installed binary runs. And which packages each make target asks scripts/install-deps.sh for: running needs no test or benchmark
tools."""
import os
import stat
import subprocess

import pytest

from conftest import COFFER_BIN, ROOT

BUILD_DIR = os.path.dirname(COFFER_BIN)
LIBCOFFER = ["usr/include/coffer/coffer.h", "usr/lib/libcoffer.a", "usr/lib/libcoffer.so", "usr/lib/libcoffer.so.0",
             "usr/lib/libcoffer.so.0.1.0", "usr/lib/pkgconfig/coffer.pc"]


def make(*args, check=True):
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, *args], capture_output=True,
                       text=True, timeout=900)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def build_dir():
    if not os.path.exists(os.path.join(BUILD_DIR, "CMakeCache.txt")):
        pytest.skip(f"{COFFER_BIN} is not in a CMake build directory")
    return BUILD_DIR


def test_install_into_destdir_with_prefix(build_dir, tmp_path):
    dest = tmp_path / "stage"
    make("install", f"BUILD={build_dir}", f"DESTDIR={dest}", "PREFIX=/usr")
    installed = dest / "usr" / "bin" / "coffer"
    assert installed.is_file() and not installed.is_symlink()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o755
    with open(installed, "rb") as a, open(COFFER_BIN, "rb") as b:
        assert a.read() == b.read(), "the installed binary is not the build's"
    # Nothing else is put anywhere under DESTDIR: the binary and libcoffer (test_libcoffer.py
    # uses the library's part).
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert files == ["usr/bin/coffer"] + LIBCOFFER, files

    p = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("coffer "), p.stdout + p.stderr
    p = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "snapshot" in p.stdout and "server" in p.stdout

    # Installing again over it works (an upgrade), and uninstall removes exactly the file.
    make("install", f"BUILD={build_dir}", f"DESTDIR={dest}", "PREFIX=/usr")
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/usr")
    assert not installed.exists()
    assert not [p for p in dest.rglob("*") if not p.is_dir()], "uninstall left files behind"
    assert (dest / "usr" / "bin").is_dir()


def test_install_default_prefix_is_usr_local(build_dir, tmp_path):
    make("install", f"BUILD={build_dir}", f"DESTDIR={tmp_path}")
    assert (tmp_path / "usr" / "local" / "bin" / "coffer").is_file()


def test_run_and_build_install_only_what_running_needs():
    """`make -n` lists the recipes without running them."""
    for target in ("build", "run"):
        out = make("-n", target).stdout
        assert "scripts/install-deps.sh build" in out, out
        assert "install-deps.sh test" not in out and "install-deps.sh bench" not in out, out
    out = make("-n", "test").stdout
    assert "scripts/install-deps.sh test" in out, out
    out = make("-n", "bench").stdout
    assert "scripts/install-deps.sh bench" in out and "install-deps.sh test" not in out, out
