#!/usr/bin/env bash
# Every suite of `make test`, in order, each against the release and the ASan+UBSan builds;
# ends with one summary line. A failing suite does not stop the others.
set -uo pipefail
build=$1 asan=$2 fuzz=$3
passed=0 failed=0 failures=()

suite() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pytest=(/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration)

suite "unit (release)"      ctest --test-dir "$build" --output-on-failure -j2
suite "unit (asan+ubsan)"   ctest --test-dir "$asan" --output-on-failure -j2
suite "integration (release)"   env COFFER_BIN="$build/coffer" "${pytest[@]}"
suite "integration (asan+ubsan)" env COFFER_BIN="$asan/coffer" "${pytest[@]}"
suite "fuzz corpus replay"  scripts/fuzz.sh "$fuzz" 0

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
