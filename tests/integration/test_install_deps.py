"""scripts/install-deps.sh: which packages each group asks apt for, silence when nothing is
missing, and waiting (with a message, up to a bound) while another apt or dpkg holds the lock.

Packages cannot be removed from a shared test machine, so dpkg-query and apt-get are stand-ins
on PATH that report the packages named in FAKE_MISSING as absent, record what apt-get is asked,
and answer "Could not get lock" as many times as FAKE_LOCKED_TIMES says."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import ROOT

FAKE_DPKG_QUERY = """#!/bin/sh
pkg=$(eval echo \\${$#})
for m in $FAKE_MISSING; do [ "$m" = "$pkg" ] && exit 1; done
printf 'install ok installed'
"""
FAKE_APT_GET = """#!/bin/sh
echo "$*" >>"$FAKE_LOG"
n=$(cat "$FAKE_LOCKED_TIMES" 2>/dev/null || echo 0)
if [ "$n" = always ] || [ "$n" -gt 0 ]; then
  [ "$n" = always ] || echo $((n - 1)) >"$FAKE_LOCKED_TIMES"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  exit 100
fi
[ -z "$FAKE_FAIL" ] || { echo "E: $FAKE_FAIL" >&2; exit 100; }
exit 0
"""
FAKE_SUDO = '#!/bin/sh\nexec "$@"\n'


@pytest.fixture()
def deps(tmp_path):
    """Runs a copy of the script (away from tests/js, so that npm is never run) with the
    stand-ins first on PATH; returns (result, apt-get calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("dpkg-query", FAKE_DPKG_QUERY), ("apt-get", FAKE_APT_GET), ("sudo", FAKE_SUDO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "install-deps.sh"
    shutil.copy(os.path.join(ROOT, "scripts", "install-deps.sh"), script)
    log = tmp_path / "apt.log"

    def run(*groups, missing="", locked="0", fail="", lock_wait=None, path=None):
        log.write_text("")
        (tmp_path / "locked").write_text(locked)
        env = dict(os.environ, PATH=f"{bin_dir}:{path or os.environ['PATH']}", FAKE_MISSING=missing,
                   FAKE_LOG=str(log), FAKE_LOCKED_TIMES=str(tmp_path / "locked"), FAKE_FAIL=fail)
        if lock_wait is not None:
            env["INSTALL_DEPS_LOCK_WAIT"] = str(lock_wait)
        p = subprocess.run(["bash", str(script), *groups], env=env, capture_output=True, text=True,
                           timeout=120)
        return p, [line.split() for line in log.read_text().splitlines()]
    return run


def installed(calls):
    return {pkg for c in calls if "install" in c for pkg in c[c.index("install") + 1:]
            if not pkg.startswith("-")}


@pytest.mark.parametrize("groups", [(), ("build",), ("test",), ("bench",), ("build", "test")])
def test_silent_and_apt_untouched_when_nothing_is_missing(deps, groups):
    p, calls = deps(*groups)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr
    assert calls == []


def test_each_group_installs_only_its_packages(deps):
    missing = "libmicrohttpd-dev clang postgresql nginx-light borgbackup"
    p, calls = deps("build", missing=missing)
    assert p.returncode == 0, p.stderr
    assert installed(calls) == {"libmicrohttpd-dev"}
    assert "update" in calls[0]
    p, calls = deps("test", missing=missing)
    assert installed(calls) == {"libmicrohttpd-dev", "clang", "postgresql"}
    p, calls = deps("bench", missing=missing)
    assert installed(calls) == {"libmicrohttpd-dev", "nginx-light", "borgbackup"}
    p, calls = deps(missing=missing)
    assert installed(calls) == set(missing.split())
    assert "install-deps: installing" in p.stderr


def test_build_brings_libmagic_and_its_database(deps):
    """coffer mirror's content types: the library to build, and the compiled database to run."""
    p, calls = deps("build", missing="libmagic-dev libmagic1 libmagic-mgc")
    assert p.returncode == 0, p.stderr
    assert installed(calls) == {"libmagic-dev", "libmagic1", "libmagic-mgc"}


def test_unknown_group_is_a_usage_error(deps):
    p, calls = deps("everything")
    assert p.returncode == 2 and "usage" in p.stderr and calls == []


def test_waits_for_another_apt_with_a_message(deps):
    t0 = time.monotonic()
    p, calls = deps("build", missing="liblmdb-dev", locked="2")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("waiting for it") == 1, p.stderr
    assert "held by process 4242" in p.stderr
    assert installed(calls) == {"liblmdb-dev"}
    assert len(calls) == 4  # update refused twice, then update and install
    assert time.monotonic() - t0 >= 9  # retried every 5 s, not in a busy loop


def test_gives_up_after_the_bound(deps):
    p, calls = deps("build", missing="liblmdb-dev", locked="always", lock_wait=0)
    assert p.returncode != 0
    assert "Could not get lock" in p.stderr and "gave up after 0s" in p.stderr
    assert installed(calls) == set()


def test_other_apt_failures_are_not_retried(deps):
    p, calls = deps("build", missing="liblmdb-dev", fail="Unable to locate package liblmdb-dev")
    assert p.returncode != 0 and "Unable to locate package" in p.stderr
    assert len(calls) == 1 and "waiting" not in p.stderr


def test_kubectl_is_installed_only_when_no_kubectl_is_on_path(deps, tmp_path):
    # A PATH holding everything of this machine's but kubectl (which another vendor's package may
    # own: Debian's kubernetes-client would collide with it).
    no_kubectl = tmp_path / "no-kubectl"
    no_kubectl.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin"):
        for name in os.listdir(d) if os.path.isdir(d) else []:
            if name != "kubectl" and not (no_kubectl / name).exists():
                (no_kubectl / name).symlink_to(os.path.join(d, name))
    p, calls = deps("test", path=str(no_kubectl))
    assert p.returncode == 0, p.stderr
    assert installed(calls) == {"kubernetes-client"}
    p, calls = deps("build", path=str(no_kubectl))
    assert p.returncode == 0 and calls == [], p.stderr
    p, calls = deps("test")
    assert p.returncode == 0 and calls == [], p.stderr
