#!/usr/bin/env bash
# Debian 12's own kubectl (package kubernetes-client, kustomize v2.0), unpacked into a cache, for
# test_deploy.py to render deploy/ with it beside the kubectl on PATH. A machine may carry another
# vendor's kubectl that owns /usr/bin/kubectl, which the package would collide with if
# installed; unpacked, it collides with nothing. Prints the binary's path.
# Usage: scripts/debian-kubectl.sh        (run by scripts/install-deps.sh test)
set -euo pipefail
dir=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/coffer-deps/kubernetes-client
bin=$dir/usr/bin/kubectl
on_path=$(command -v kubectl || true)
if [ -n "$on_path" ] && dpkg-query -S "$(readlink -f "$on_path")" 2>/dev/null | grep -q '^kubernetes-client:'; then
  echo "$on_path" # Debian's is the one installed
  exit 0
fi
if [ ! -x "$bin" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # A download needs current package lists; a stale list names a version the mirror dropped.
  (cd "$work" && apt-get download kubernetes-client >/dev/null 2>&1) ||
    { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
      $sudo apt-get update -qq >/dev/null && (cd "$work" && apt-get download kubernetes-client >/dev/null); }
  mkdir -p "$dir.new"
  dpkg-deb -x "$work"/kubernetes-client_*.deb "$dir.new"
  rm -rf "$dir" && mv "$dir.new" "$dir"
fi
"$bin" version --client >/dev/null 2>&1 || { echo "debian-kubectl: $bin does not run" >&2; exit 1; }
echo "$bin"
