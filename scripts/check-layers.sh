#!/usr/bin/env bash
# Keeps the layer rules of docs/ARCHITECTURE.md ("Layers") true: every `#include "LAYER/…"` in
# src/, include/coffer/ and examples/ must name a layer its own layer may use, a layer's private
# headers (*_int.h, internal.h) stay inside it, and each cf_LAYER library in CMakeLists.txt links
# only the libraries of layers it may use, and only src/http/ includes <microhttpd.h>; a few files
# are held to less than their layer (file_may_use). Prints one line per violation and fails if any.
# Usage: scripts/check-layers.sh [ROOT]     (ROOT defaults to the repository holding this script)
#        scripts/check-layers.sh --self-test  (a checker that passes everything would go unnoticed)
set -uo pipefail

if [[ ${1:-} == --self-test ]]; then
  self=$(realpath "$0") tree=$(mktemp -d)
  trap 'rm -rf "$tree"' EXIT
  mkdir -p "$tree"/src/{core,store,server,snapshot,http,cli} "$tree"/include/coffer
  printf '#include <microhttpd.h>\n#include "core/err.h"\n' >"$tree/src/http/a.c"
  printf '#include "core/buf.h"\n#include "store/store_int.h"\n' >"$tree/src/store/a.c"
  printf '#include "core/err.h"\n#include "store/store.h"\n#include "http/http.h"\n' >"$tree/src/server/a.c"
  printf '#include "coffer/coffer.h"\n#include "snapshot/ref.h"\n' >"$tree/src/cli/cmd_snapshot.c"
  printf 'target_link_libraries(cf_store PUBLIC cf_crypto\n  PkgConfig::LMDB)\n' >"$tree/CMakeLists.txt"
  "$self" "$tree" >/dev/null || { echo "check-layers self-test: a clean tree was refused"; exit 1; }
  printf ' #  include "server/server.h"\n' >>"$tree/src/store/a.c"
  printf '#include "store/store_int.h"\n#include <microhttpd.h>\n' >>"$tree/src/server/a.c"
  printf '#include "../server/a.h"\n' >"$tree/src/core/a.h"
  printf '#include "core/err.h"\n' >"$tree/include/coffer/coffer.h"
  printf '#include "store/store.h"\n' >"$tree/src/snapshot/a.c"
  printf '#include "storage/repo.h"\n' >>"$tree/src/cli/cmd_snapshot.c"
  mkdir "$tree/src/extra"
  printf 'target_link_libraries(cf_snapshot PUBLIC cf_archive\n  cf_server)\n' >>"$tree/CMakeLists.txt"
  out=$("$self" "$tree") && { echo "check-layers self-test: violations passed"; exit 1; }
  status=0
  for expected in 'src/store/a.c:3: includes "server/server.h"' 'src/server/a.c:4: includes "store/store_int.h"' \
    'src/server/a.c:5: includes <microhttpd.h>' \
    'src/core/a.h:1: includes "../server/a.h"' 'include/coffer/coffer.h:1: includes "core/err.h"' \
    'src/snapshot/a.c:1: includes "store/store.h"' 'src/extra/: not a layer' 'CMakeLists.txt:3: cf_snapshot links cf_server' \
    'src/cli/cmd_snapshot.c:3: includes "storage/repo.h"' 'check-layers: 9 violation(s)'; do
    [[ $out == *"$expected"* ]] || { echo "check-layers self-test: not reported: $expected"; status=1; }
  done
  ((status)) || echo "check-layers self-test: every kind of violation reported"
  exit $status
fi

cd "${1:-$(dirname "$0")/..}" || exit 2

# The "may use" column of docs/ARCHITECTURE.md; a layer may always include its own files.
# "coffer" is the public API, include/coffer/. Planned layers are listed so that they start
# with their rule.
declare -A may_use=(
  [core]=""
  [crypto]="core"
  [s3]="core crypto"
  [store]="core crypto"
  [s3client]="core crypto s3"
  [http]="core"
  [server]="core crypto s3 store http"
  [archive]="core crypto"
  [storage]="core crypto s3 s3client"
  [snapshot]="core crypto s3 s3client archive storage"
  [mirror]="core crypto storage"
  [console]="core crypto http archive storage snapshot"
  [lib]="core crypto archive storage snapshot coffer"
  [cli]="core crypto s3 store s3client http server archive storage snapshot mirror console lib coffer"
  [coffer]=""
  [examples]="coffer"
)

# Files held to less than their layer may use: layers, or single headers. `coffer snapshot` goes
# through libcoffer's public API so that the command line and the library cannot drift apart
# (issue 13); besides the API it may name only the parsers of its REPO[@ID] operand and of its
# key file.
declare -A file_may_use=(
  [src/cli/cmd_snapshot.c]="cli core coffer snapshot/ref.h archive/seal.h"
)

violations=0
allowed() {
  local list=${may_use[$1]}
  [[ -n $list ]] && echo "${list// /, }" || echo "no other layer"
}
violation() {
  echo "$1"
  violations=$((violations + 1))
}

# Prints "LINE TARGET" for each quoted include of FILE ("core/err.h" gives "12 core/err.h").
quoted_includes() {
  awk 'match($0, /^[ \t]*#[ \t]*include[ \t]*"[^"]*"/) {
         s = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", s); sub(/"$/, "", s); print FNR, s
       }' "$1"
}

check_file() {
  local file=$1 layer=$2 line target used
  while read -r line target; do
    case $target in
      */*) used=${target%%/*} ;;
      *) continue ;; # beside the including file: its own layer
    esac
    if [[ $target == *..* ]]; then
      violation "$file:$line: includes \"$target\": name a header from its layer (\"LAYER/file.h\"), not by a relative path"
      continue
    fi
    if [[ -z ${may_use[$used]+x} ]]; then
      violation "$file:$line: includes \"$target\": \"$used\" is not a layer of docs/ARCHITECTURE.md (add it there and to scripts/check-layers.sh)"
      continue
    fi
    if [[ $used != "$layer" && " ${may_use[$layer]} " != *" $used "* ]]; then
      violation "$file:$line: includes \"$target\": $layer may use only: $(allowed "$layer") (docs/ARCHITECTURE.md, \"Layers\")"
      continue
    fi
    local narrow=${file_may_use[$file]-}
    if [[ -n $narrow && " $narrow " != *" $used "* && " $narrow " != *" $target "* ]]; then
      violation "$file:$line: includes \"$target\": $file may use only: ${narrow// /, } (scripts/check-layers.sh, file_may_use)"
      continue
    fi
    case ${target##*/} in
      *_int.h | internal.h)
        [[ $used == "$layer" ]] ||
          violation "$file:$line: includes \"$target\": a header private to $used (docs/ARCHITECTURE.md, \"Dependency rules\")" ;;
    esac
  done < <(quoted_includes "$file")
  # The front ends reach libmicrohttpd only through http/http.h (docs/internals/http.md).
  if [[ $layer != http ]]; then
    while IFS=: read -r line _; do
      violation "$file:$line: includes <microhttpd.h>: only src/http/ knows libmicrohttpd (use http/http.h)"
    done < <(grep -nE '^[ \t]*#[ \t]*include[ \t]*<microhttpd\.h>' "$file")
  fi
}

checked=0
for dir in src/*/; do
  layer=$(basename "$dir")
  if [[ -z ${may_use[$layer]+x} ]]; then
    violation "src/$layer/: not a layer of docs/ARCHITECTURE.md (add it there and to scripts/check-layers.sh)"
    continue
  fi
  while IFS= read -r -d '' file; do
    check_file "$file" "$layer"
    checked=$((checked + 1))
  done < <(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
done
for pair in include/coffer:coffer examples:examples; do
  [[ -d ${pair%%:*} ]] || continue
  while IFS= read -r -d '' file; do
    check_file "$file" "${pair##*:}"
    checked=$((checked + 1))
  done < <(find "${pair%%:*}" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
done

# CMakeLists.txt: target_link_libraries(cf_LAYER … cf_OTHER …), possibly over several lines.
while read -r line lib dep; do
  layer=${lib#cf_} used=${dep#cf_}
  if [[ -z ${may_use[$layer]+x} ]]; then
    violation "CMakeLists.txt:$line: $lib is not the library of a layer of docs/ARCHITECTURE.md"
  elif [[ $used != "$layer" && " ${may_use[$layer]} " != *" $used "* ]]; then
    violation "CMakeLists.txt:$line: $lib links $dep: $layer may use only: $(allowed "$layer")"
  fi
done < <(awk '
  /^[ \t]*target_link_libraries[ \t]*\([ \t]*cf_[a-z0-9_]+/ { open = 1; start = FNR; text = "" }
  open { text = text " " $0; if (index($0, ")")) { open = 0; report(start, text) } }
  function report(line, s,    n, words, i, lib) {
    gsub(/[()]/, " ", s); n = split(s, words, /[ \t]+/); lib = ""
    for (i = 1; i <= n; i++) {
      if (words[i] !~ /^cf_[a-z0-9_]+$/) continue
      if (lib == "") lib = words[i]; else print line, lib, words[i]
    }
  }' CMakeLists.txt)

if ((violations)); then
  echo "check-layers: $violations violation(s) of the layer rules in $checked files"
  exit 1
fi
echo "check-layers: $checked files follow the layer rules"
