#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD for SECONDS each, then merges what it found into the
# committed corpus (tests/fuzz/corpus/<target>/) with -merge=1, so only inputs that reach new
# coverage are added and the corpora stay small. Each run is appended to docs/FUZZING.md as a
# table row: target, seconds, executions, new corpus files, crashes.
# Usage: scripts/fuzz-long.sh BUILD SECONDS        (`make fuzz-long`, FUZZ_LONG_SECONDS)
# A crash, leak, timeout or out-of-memory input is kept in BUILD/fuzz-artifacts/<target>/
# (never in the corpus, which `make test` replays) and the script exits non-zero after the
# other targets have run; docs/FUZZING.md says how to reproduce one.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 BUILD SECONDS" >&2; exit 2; }
build=$1 seconds=$2
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || { echo "SECONDS must be a positive whole number" >&2; exit 2; }
record=docs/FUZZING.md
[ -f "$record" ] || { echo "$record is missing (run from the top of the source tree)" >&2; exit 2; }

status=0
rows=()
scratch_root=$(mktemp -d)
trap 'rm -rf "$scratch_root"' EXIT
for target in "$build"/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus=tests/fuzz/corpus/$name
  artifacts=$build/fuzz-artifacts/$name
  scratch=$scratch_root/$name
  log=$build/fuzz-long-$name.log
  mkdir -p "$corpus" "$artifacts" "$scratch"
  before=$(find "$corpus" -type f | wc -l)
  artifacts_before=$(find "$artifacts" -type f | wc -l)
  # New inputs go to the scratch directory (the first one named); the merge below then takes
  # from it only what adds coverage to the committed corpus.
  "$target" -print_final_stats=1 -max_total_time="$seconds" -timeout=60 \
    -artifact_prefix="$artifacts/" "$scratch" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{ print $2 }')
  # -use_counters=0: an input is kept for an edge the corpus never reaches, not for reaching
  # a known edge more times (hit-count buckets), which kept four times as many files.
  if ! "$target" -merge=1 -use_counters=0 -timeout=60 -artifact_prefix="$artifacts/" \
    "$corpus" "$scratch" >>"$log" 2>&1; then
    echo "fuzz-long $name: the merge failed (see $log)" >&2
    rc=1
  fi
  added=$(($(find "$corpus" -type f | wc -l) - before))
  crashes=$(($(find "$artifacts" -type f | wc -l) - artifacts_before))
  if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    status=1
    echo "fuzz-long $name: FAILED, $crashes new artifacts in $artifacts (see $log)"
    grep -m 3 -E 'ERROR: |SUMMARY: ' "$log"
  else
    echo "fuzz-long $name: ok, ${execs:-?} runs, $added new corpus files"
  fi
  rows+=("| $name | $seconds | ${execs:-?} | $added | $crashes |")
done

{
  echo
  echo "### $(date -u +%Y-%m-%d\ %H:%M) UTC, commit $(git rev-parse --short HEAD), $seconds s per target"
  echo
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores."
  echo
  echo "| target | seconds | executions | new corpus files | crashes |"
  echo "|---|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} >>"$record"
echo "fuzz-long: recorded in $record"
exit $status
