#!/usr/bin/env bash
# Every suite of `make test`, in order, each against the release and the ASan+UBSan builds, the
# threaded ones also under ThreadSanitizer; ends with one summary line. A failing suite does not
# stop the others.
set -uo pipefail
build=$1 asan=$2 fuzz=$3 tsan=${4:-build-tsan}
passed=0 failed=0 failures=()

suite() {
  local name=$1; shift
  echo "=== $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
pytest=(/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration)

# Under ThreadSanitizer: the unit tests that start threads (test_pace: the HTTP layer, paced
# responses parked and resumed across threads), and the integration tests whose
# clients hit the server at the same time (the event loops and the offload pool, group commit,
# pinned reads, the policy cache, parts hashed side by side, shutdown with PUTs in flight) or
# that run the snapshot pipeline (chunk workers, the S3 upload thread, restore's decoders).
# A short subset: TSan runs 5-15x slower.
# Any report fails the run: ctest sees exit code 66, the integration tests find "ThreadSanitizer"
# in the server's log or the CLI's stderr.
tsan_unit='^test_(chunk|tar|bgwrite|md5|s3client|store|sigv4|pace)$'
tsan_integration=(
  tests/integration/test_versions_under_races.py
  tests/integration/test_multipart.py
  tests/integration/test_access.py::test_racing_writeonly_puts_of_one_new_key_make_one_object
  tests/integration/test_bucket_policy.py::test_policy_replaced_while_requests_read_it
  tests/integration/test_bucket_ops.py::test_list_v2_pagination_over_5000_keys
  tests/integration/test_crash.py::test_sigterm_during_puts_exits_0_and_keeps_acknowledged
  tests/integration/test_floods.py::test_writes_waiting_for_commit_do_not_stall_reads
  tests/integration/test_floods.py::test_stop_while_writes_wait_for_commit
  tests/integration/test_floods.py::test_per_address_connection_cap
  "tests/integration/test_snapshot_upload.py::test_large_archive_round_trip[zstd]"
  tests/integration/test_snapshot_upload.py::test_bucket_deleted_mid_upload
  # the console: logins on the blocking pool, proxied downloads paced with read-ahead threads
  tests/integration/test_console_api.py
  tests/integration/test_console_foreign.py
  # coffer mirror: --jobs workers sharing two repositories' client pools and the run's counters
  tests/integration/test_mirror.py::test_jobs_1_and_32_give_the_same_result
  tests/integration/test_mirror.py::test_bucket_to_bucket_across_two_coffer_servers
)
# One repository of each kind (a directory, a bucket on the TSan-built server) used by 8 threads.
tsan_unit+='|^test_repo_backends$'
# The console's login limiter, shared by the event threads.
tsan_unit+='|^test_limiter$'
# The console's catalogue: readers acquiring views while the refresh thread swaps them.
tsan_unit+='|^test_catalogue$'
# The console's proxy read-ahead: jobs abandoned while their threads read.
tsan_unit+='|^test_prefetch$'
# The console's rendered JSON: fragments installed by compare-and-swap while views change.
tsan_unit+='|^test_render$'
# libcoffer: two handles on two threads, and each pushed stream's engine thread; its misuse
# (concurrent stops, callbacks calling back, writers handed between threads).
tsan_unit+='|^test_api$|^test_api_abuse$'
# The snapshotter's thread beside the application's, two partitions at once, stop while in flight.
tsan_unit+='|^test_snapshotter$'
# coffer mirror --verify: keys read and judged by --jobs workers, findings gathered after.
tsan_unit+='|^test_verify$'
# The kvstore example's node: its state written from one thread while another applies entries.
tsan_unit+='|^test_kv_store$'
# coffer mirror --fix-content-types: workers sharing one listing and one repository.
tsan_unit+='|^test_fixtypes$'
threads_under_tsan() {
  local tsan_options="halt_on_error=0 exitcode=66 second_deadlock_stack=1"
  tsan_options+=" suppressions=$PWD/tests/tsan.supp"
  local rc=0
  TSAN_OPTIONS=$tsan_options ctest --test-dir "$tsan" --output-on-failure -j2 -R "$tsan_unit" || rc=1
  TSAN_OPTIONS=$tsan_options COFFER_BIN="$tsan/coffer" /usr/bin/python3 -m pytest -q \
    -p no:cacheprovider "${tsan_integration[@]}" || rc=1
  return $rc
}

# The tree follows .clang-format; `make format` fixes what this names.
format_check() {
  local bad
  bad=$(git ls-files '*.c' '*.h' | while read -r f; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
  done)
  [ -z "$bad" ] || { echo "not formatted (run make format):"; echo "$bad"; return 1; }
}

# The includes and libraries follow docs/ARCHITECTURE.md's layer table; the checker checks itself.
layers_check() { scripts/check-layers.sh && scripts/check-layers.sh --self-test; }

suite "format"              format_check
suite "layers"              layers_check
suite "unit (release)"      ctest --test-dir "$build" --output-on-failure -j2
suite "unit (asan+ubsan)"   ctest --test-dir "$asan" --output-on-failure -j2
suite "integration (release)"   env COFFER_BIN="$build/coffer" "${pytest[@]}"
suite "integration (asan+ubsan)" env COFFER_BIN="$asan/coffer" "${pytest[@]}"
suite "unit + threads (tsan)" threads_under_tsan
suite "fuzz corpus replay"  scripts/fuzz.sh "$fuzz" 0

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "make test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
