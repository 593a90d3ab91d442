#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing coffer needs.
# Idempotent and non-interactive; silent when everything is already there.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries (docs/ARCHITECTURE.md, "Dependencies")
  libmicrohttpd-dev liblmdb-dev libssl-dev libexpat1-dev libjansson-dev libcurl4-openssl-dev libarchive-dev libzstd-dev liblz4-dev zlib1g-dev zstd lz4
  # tests
  libcmocka-dev python3 python3-pytest python3-boto3 python3-requests awscli curl
  # real-client integration tests (tests/integration/test_{s3cmd,rclone,restic,sdk_js}.py)
  s3cmd rclone restic
  # CORS and form uploads from a real page in headless Chromium (tests/integration/test_browser.py)
  chromium chromium-driver python3-selenium
  # snapshot of a real database dump (tests/integration/test_snapshot_postgres.py)
  postgresql
  # benchmarks
  nginx-light wrk hyperfine time
  # snapshot benchmark references (bench/snapshot.sh)
  borgbackup
)
# Node.js for the JavaScript SDK suite (tests/js). Checked by command, not by package name: a
# machine may carry another vendor's nodejs package that bundles npm and conflicts with Debian's
# npm package, and apt would then replace that node with an older one.
node_packages=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=("${node_packages[@]}")

if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The JavaScript SDK suite's npm packages, exactly as tests/js/package-lock.json pins them.
js_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/js"
if [ -f "$js_dir/package-lock.json" ] &&
   { [ ! -d "$js_dir/node_modules" ] || [ "$js_dir/package-lock.json" -nt "$js_dir/node_modules" ]; }; then
  echo "install-deps: npm ci in tests/js" >&2
  npm ci --prefix "$js_dir" --no-audit --no-fund --loglevel=error >/dev/null
  touch "$js_dir/node_modules"
fi
