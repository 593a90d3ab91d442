#!/usr/bin/env bash
# Runs every libFuzzer target over its committed corpus for SECONDS each.
# SECONDS=0 replays the corpus only (what `make test` does).
set -uo pipefail
build=$1 seconds=$2
status=0
for target in "$build"/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus=tests/fuzz/corpus/$name
  mkdir -p "$corpus"
  if [ "$seconds" -eq 0 ]; then
    args=(-print_final_stats=1 -runs=0 -artifact_prefix="${TMPDIR:-/tmp}/$name-" "$corpus")
  else
    # New inputs go to a scratch dir so a long run does not bloat the committed corpus.
    scratch=$(mktemp -d)
    args=(-print_final_stats=1 -max_total_time="$seconds" -artifact_prefix="$corpus/" "$scratch" "$corpus")
  fi
  if "$target" "${args[@]}" >"/tmp/$name.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "/tmp/$name.log" | tail -1 | awk '{print $2}') runs)"
  else
    echo "fuzz $name: FAILED (see /tmp/$name.log)"; tail -30 "/tmp/$name.log"; status=1
  fi
  [ -n "${scratch:-}" ] && rm -rf "$scratch"
done
exit $status
