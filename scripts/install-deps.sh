#!/usr/bin/env bash
# Installs the Debian 12 packages a task needs, by group:
#   build  compiling coffer and running it (`make build`, `make run`, `make install`)
#   test   the test suites (`make test`): sanitizer runtimes, fuzzing, formatting, the clients the
#          integration tests drive, and the JavaScript SDK suite's npm packages
#   bench  the benchmarks (`make bench`) and the tools they compare against
#   all    every group (the default)
# Usage: scripts/install-deps.sh [build|test|bench|all]...
# Idempotent and non-interactive; silent when everything is already there. When another apt or
# dpkg holds its lock, waits for it (up to INSTALL_DEPS_LOCK_WAIT seconds, default 600) and says so.
set -euo pipefail

# The sanitizer runtimes of the ASan+UBSan and TSan builds (libasan, libubsan, libtsan) come with
# gcc, in build-essential.
build_packages=(
  build-essential cmake pkg-config
  # libraries (docs/ARCHITECTURE.md, "Dependencies"); cmocka because the unit tests build with coffer
  libmicrohttpd-dev liblmdb-dev libssl-dev libexpat1-dev libjansson-dev libcurl4-openssl-dev
  libarchive-dev libzstd-dev liblz4-dev zlib1g-dev libcmocka-dev
  # the console's password hashes (crypt_r: bcrypt, yescrypt)
  libcrypt-dev
  # coffer mirror's content types: libmagic and, to run, its compiled database
  libmagic-dev libmagic1 libmagic-mgc
  # scripts/run.sh waits for /health/ready with curl (and signs its CreateBucket with it)
  curl
)
test_packages=(
  # the fuzz targets (libFuzzer) build with clang; the format check runs clang-format
  clang libclang-rt-14-dev clang-format
  # snapshots restored without coffer (curl | zstd -d | tar -x)
  zstd lz4
  python3 python3-pytest python3-boto3 python3-requests awscli curl
  # real-client integration tests (tests/integration/test_{s3cmd,rclone,restic,sdk_js}.py)
  s3cmd rclone restic
  # CORS and form uploads from a real page in headless Chromium (tests/integration/test_browser.py)
  chromium chromium-driver python3-selenium
  # snapshot of a real database dump (tests/integration/test_snapshot_postgres.py)
  postgresql
  # the container image (scripts/build-image.sh, tests/integration/test_image.py): debootstrap
  # makes its Debian 12 base, buildah builds the Dockerfile on it and runs the result; the test
  # runs it in a network namespace of its own (unshare and nsenter, ip for its loopback)
  debootstrap buildah util-linux iproute2
  # deploy/'s manifests checked offline (tests/integration/test_deploy*.py): the Kubernetes API
  # models to validate the rendered objects against, promtool for the alert rules, PyYAML
  python3-kubernetes prometheus python3-yaml
)
bench_packages=(
  curl python3 zstd
  # bench/console.sh writes its 10,000 manifests with parallel PUTs (bench/console_gen.py)
  python3-boto3
  # references: nginx for the server, restic and borg for snapshots (bench/snapshot.sh)
  nginx-light wrk hyperfine time restic borgbackup
  # references for coffer mirror (bench/mirror.sh)
  rclone awscli
)

# kubectl (its kustomize renders deploy/) is checked by command: a machine may carry another
# vendor's kubectl (Google Cloud SDK's) that owns /usr/bin/kubectl, which Debian's
# kubernetes-client would collide with.
want_kubectl=0

groups=("$@")
[ ${#groups[@]} -ne 0 ] || groups=(all)
packages=() want_node=0
for g in "${groups[@]}"; do
  case $g in
    build) packages+=("${build_packages[@]}") ;;
    test) packages+=("${build_packages[@]}" "${test_packages[@]}"); want_node=1 want_kubectl=1 ;;
    bench) packages+=("${build_packages[@]}" "${bench_packages[@]}") ;;
    all) packages+=("${build_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}"); want_node=1 want_kubectl=1 ;;
    *) echo "usage: scripts/install-deps.sh [build|test|bench|all]..." >&2; exit 2 ;;
  esac
done

missing=()
declare -A seen=()
for p in "${packages[@]}"; do
  [ -z "${seen[$p]-}" ] || continue
  seen[$p]=1
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js for the JavaScript SDK suite (tests/js). Checked by command, not by package name: a
# machine may carry another vendor's nodejs package that bundles npm and conflicts with Debian's
# npm package, and apt would then replace that node with an older one.
if [ $want_node -eq 1 ] && ! { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }; then
  missing+=(nodejs npm)
fi
if [ $want_kubectl -eq 1 ] && ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

# Runs an apt-get command; while another apt or dpkg holds a lock it needs (apt-get update does
# not wait for the lists lock, install waits for dpkg's only with DPkg::Lock::Timeout), retries
# every 5 s until the deadline. A run refused for a lock has changed nothing.
lock_wait=${INSTALL_DEPS_LOCK_WAIT:-600}
deadline=$((SECONDS + lock_wait))
apt_get() {
  local errors told=0
  errors=$(mktemp)
  while :; do
    if $SUDO apt-get -o DPkg::Lock::Timeout=5 "$@" >/dev/null 2>"$errors"; then
      rm -f "$errors"
      return 0
    fi
    if ! grep -qiE "could not get lock|unable to (acquire|lock)" "$errors" || [ $SECONDS -ge $deadline ]; then
      cat "$errors" >&2
      [ $SECONDS -lt $deadline ] || echo "install-deps: gave up after ${lock_wait}s waiting for the lock" >&2
      rm -f "$errors"
      return 1
    fi
    if [ $told -eq 0 ]; then
      echo "install-deps: another apt or dpkg is running ($(grep -oiE 'held by process [0-9]+( \([^)]*\))?' "$errors" | head -1 || true)); waiting for it, up to ${lock_wait}s" >&2
      told=1
    fi
    sleep 5
  done
}

if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's own kubectl beside another vendor's (test_deploy.py renders deploy/ with both). The
# script is looked for beside this one.
debian_kubectl="$(dirname "${BASH_SOURCE[0]}")/debian-kubectl.sh"
if [ $want_kubectl -eq 1 ] && [ -x "$debian_kubectl" ] && command -v kubectl >/dev/null 2>&1; then
  "$debian_kubectl" >/dev/null
fi

# The JavaScript SDK suite's npm packages, exactly as tests/js/package-lock.json pins them: again
# whenever the lock file's content changes (not its date, which a checkout resets). A
# node_modules that is a link belongs to the checkout it points to and is left alone: npm ci
# would empty that checkout's copy.
js_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/js"
stamp="$js_dir/node_modules/.package-lock.sha256"
if [ $want_node -eq 1 ] && [ -f "$js_dir/package-lock.json" ] && [ ! -L "$js_dir/node_modules" ]; then
  lock_sum=$(sha256sum <"$js_dir/package-lock.json")
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock_sum" ]; then
    echo "install-deps: npm ci in tests/js" >&2
    npm ci --prefix "$js_dir" --no-audit --no-fund --loglevel=error >/dev/null
    echo "$lock_sum" >"$stamp"
  fi
fi
