#!/bin/sh
# Lays out the container image's whole file tree in OUT (the Dockerfile's runtime stage copies it
# onto an empty image): the coffer binary and exactly the shared libraries it loads, taken from
# the Debian runtime packages installed in the stage that runs this, plus the few data files
# they read at run time. No shell, no package manager, no coreutils: nothing in the image runs
# but coffer.
# Usage (inside the Dockerfile's rootfs stage, as root): image-rootfs.sh BINARY OUT
set -eu
binary=$1 out=$2

mkdir -p "$out"
# Debian 12 merges /lib into /usr/lib: the binary's loader is named /lib64/ld-linux-x86-64.so.2
# and ldd names libraries under /lib, so the image keeps the same links.
for link in /lib /lib64; do
  [ -L "$link" ] && cp -a "$link" "$out/"
done

# Copies PATH into OUT as the system has it: the name (a link or not), then the file it names.
copy() {
  mkdir -p "$out$(dirname "$1")"
  cp -a "$1" "$out$1"
}
ship() {
  name=$(readlink -f "$(dirname "$1")")/$(basename "$1")
  copy "$name"
  real=$(readlink -f "$name")
  [ "$real" = "$name" ] || copy "$real"
  echo "$real" >>"$out.files"
}
: >"$out.files"

install -D -m 0755 "$binary" "$out/usr/local/bin/coffer"

# Every library the loader maps for coffer, transitively, and the loader itself. A library
# ldd cannot find is a runtime package missing from the stage: stop here, not at run time.
libs=$(ldd "$binary")
if echo "$libs" | grep -q "not found"; then
  echo "image-rootfs: libraries not found (add their runtime packages to the Dockerfile):" >&2
  echo "$libs" | grep "not found" >&2
  exit 1
fi
for lib in $(echo "$libs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  ship "$lib"
done
# glibc loads libgcc_s when a thread is cancelled or exits through pthread_exit (unwinding);
# ldd shows it only when something links it.
libdir=$(dirname "$(readlink -f "$(echo "$libs" | awk '$1 == "libc.so.6" { print $3 }')")")
[ -e "$out$libdir/libgcc_s.so.1" ] || ship "$libdir/libgcc_s.so.1"

# coffer mirror's content types: libmagic reads its compiled database from /usr/share/misc/magic
# (a link to /usr/lib/file/magic.mgc, libmagic-mgc).
ship /usr/share/misc/magic.mgc
# Jobs talk to S3 over TLS: libcurl's CA bundle (ca-certificates), where Debian's libcurl looks.
ship /etc/ssl/certs/ca-certificates.crt
echo ca-certificates >"$out.packages"
# Scanners read the distribution from os-release.
ship /etc/os-release

# The loader finds the libraries through its cache, as on the system they come from.
mkdir -p "$out/etc"
ldconfig -r "$out" -C /etc/ld.so.cache

# Names for the two users a process here can be, and lookups from files then DNS only (no NSS
# modules to load). /etc/hosts and /etc/resolv.conf are the runtime's to mount; this /etc/hosts
# is for a runtime that does not.
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\ncoffer:x:10001:10001:coffer:/data:/usr/sbin/nologin\n' \
  >"$out/etc/passwd"
printf 'root:x:0:\ncoffer:x:10001:\n' >"$out/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$out/etc/nsswitch.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$out/etc/hosts"

# The store's data directory (the image's volume), owned by the user coffer runs as; /tmp for
# snapshots' spill files (TMPDIR).
install -d -m 0750 -o 10001 -g 10001 "$out/data"
install -d -m 1777 "$out/tmp"

# Which Debian packages the shipped files come from: their copyright files (the licences travel
# with the binaries) and their dpkg records, one file per package as distroless images keep
# them, so that a vulnerability scanner sees the versions.
# dpkg knows some files by their name before /usr was merged (/lib/...): ask for both.
owners() {
  sort -u "$out.files" | while read -r f; do
    dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || true
  done | sed 's/: .*//' | tr ',' '\n' | tr -d ' '
  cat "$out.packages"
}
mkdir -p "$out/var/lib/dpkg/status.d"
packages=$(owners | sort -u)
for p in $packages; do
  name=${p%%:*}
  dpkg-query -s "$p" >"$out/var/lib/dpkg/status.d/$name"
  [ ! -f "/usr/share/doc/$name/copyright" ] || install -D -m 0644 "/usr/share/doc/$name/copyright" \
    "$out/usr/share/doc/$name/copyright"
done
rm -f "$out.files" "$out.packages"
echo "image-rootfs: $(echo "$packages" | wc -w) packages, $(du -sh "$out" | cut -f1) in $out" >&2
