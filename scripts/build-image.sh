#!/usr/bin/env bash
# Builds the container image (Dockerfile) with buildah, with no image registry: the Debian 12
# base image the Dockerfile starts from is made here by debootstrap, from Debian's package
# mirror, and kept for the next build.
#
# Usage: scripts/build-image.sh [--refresh-base] [TAG]      (TAG defaults to coffer:dev; as root)
#   --refresh-base  make the base again from the mirror (Debian's updates since the last one)
#
# The base is the image localhost/coffer-base:bookworm in buildah's store; when that is missing
# it is imported again from the rootfs tarball in the cache directory
# (COFFER_IMAGE_CACHE, default ${XDG_CACHE_HOME:-$HOME/.cache}/coffer-image), and when that is
# missing too, debootstrap makes one (about a minute). The build keeps buildah's layers
# (--layers), so that the stages' package installs are done once per base and a build whose
# sources did not change takes seconds. Runs the containers with chroot isolation (no runtime
# needed) and writes the image in docker format, the one that carries a HEALTHCHECK.
# Environment: DEBIAN_MIRROR (http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR
# (http://deb.debian.org/debian-security).
set -euo pipefail

refresh=0
tag=coffer:dev
for arg in "$@"; do
  case $arg in
    --refresh-base) refresh=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "usage: scripts/build-image.sh [--refresh-base] [TAG]" >&2; exit 2 ;;
    *) tag=$arg ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${COFFER_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/var/cache}/.cache}/coffer-image}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
base=localhost/coffer-base:bookworm
tarball=$cache/bookworm-minbase.tar
export BUILDAH_ISOLATION=chroot

[ "$(id -u)" -eq 0 ] || { echo "build-image: run as root (buildah's store, debootstrap)" >&2; exit 1; }
for tool in buildah debootstrap; do
  command -v $tool >/dev/null || { echo "build-image: $tool is missing: scripts/install-deps.sh test" >&2; exit 1; }
done

took() { echo "build-image: $1 in $((SECONDS - $2))s" >&2; }

# A Debian 12 minbase tree as the registry's debian:bookworm-slim has it: apt sources with the
# point releases' updates and the security archive, no package lists or caches, no device nodes
# (the runtime mounts /dev).
make_tarball() {
  local start=$SECONDS tmp
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "build-image: debootstrap bookworm from $mirror" >&2
  if ! debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2
    return 1
  fi
  rm -f "$tmp/rootfs/etc/apt/sources.list"
  cat >"$tmp/rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/cache/apt/*.bin "$tmp"/rootfs/dev/*
  # Written beside, then renamed: a build interrupted here leaves no half tarball behind.
  tar -C "$tmp/rootfs" --numeric-owner -cf "$tmp/rootfs.tar" .
  mv "$tmp/rootfs.tar" "$tarball"
  rm -rf "$tmp"
  trap - EXIT
  took "base rootfs" $start
}

import_base() {
  local start=$SECONDS ctr
  ctr=$(buildah from scratch)
  buildah add --quiet "$ctr" "$tarball" / >/dev/null
  # The label passes to every stage built on the base: how the clean-up below knows them.
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label coffer.image.base=bookworm "$ctr"
  buildah commit --quiet --rm "$ctr" "$base" >/dev/null
  took "base image $base" $start
}

# A refreshed base takes over the name; the previous one and the stages built on it are left
# untagged, and removed below once nothing uses them.
[ $refresh -eq 0 ] || rm -f "$tarball"
if [ $refresh -eq 1 ] || ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  [ -s "$tarball" ] || make_tarball
  import_base
fi

start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --jobs 2: the runtime stage's package install runs while the build stage compiles.
buildah bud --isolation chroot --layers --force-rm --format docker --pull=never --jobs 2 \
  --build-arg BASE_IMAGE="$base" -t "$tag" -f "$repo/Dockerfile" "$repo" 2>&1 | tee "$log" >&2
took "image $tag" $start
echo "build-image: $tag is $(buildah images --format '{{.Size}}' "$tag" | head -1)" >&2

# Each build whose sources changed leaves the previous one's stages behind, untagged (about
# 200 MB): remove those of this Dockerfile's stages (the base's label, the final stage's title)
# that this build did not use, so that the store does not grow with every commit built.
used=$(sed -n 's/^--> \(Using cache \)\{0,1\}\([0-9a-f]\{11\}\).*/\2/p' "$log" | sort -u)
for filter in label=coffer.image.base label=org.opencontainers.image.title=coffer; do
  buildah images --quiet --no-trunc --filter dangling=true --filter "$filter" 2>/dev/null
done | sed 's/^sha256://' | sort -u | while read -r id; do
  grep -qx "${id:0:11}" <<<"$used" || buildah rmi "$id" >/dev/null 2>&1 || true
done
echo "$tag"
