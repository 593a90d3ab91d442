#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing coffer needs.
# Idempotent and non-interactive; silent when everything is already there.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries (DESIGN.md, "Dependencies")
  libmicrohttpd-dev liblmdb-dev libssl-dev libexpat1-dev libjansson-dev
  # tests
  libcmocka-dev python3 python3-pytest python3-boto3 python3-requests awscli curl
  # benchmarks
  nginx-light wrk hyperfine time
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
