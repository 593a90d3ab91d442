#!/usr/bin/env bash
# Soak: a long run of mixed S3 load against `coffer server` on loopback, with the server's
# memory, open files and threads sampled every minute. Does anything grow that should not?
# Usage: bench/soak.sh build/coffer
#
# Environment:
#   DURATION=30m   how long the load runs (s, m or h suffix; a bare number is seconds)
#   WORKERS=8      concurrent clients (bench/soak_load.py, one boto3 client each)
#   SAMPLE=60      seconds between samples of /proc/PID/status and /proc/PID/fd
#   SEED=1         the load's random seed
#   COFFER_LOG_LEVEL=warn   --log-level of the server (warn: no line per request)
#   OUT            where the results go (default: soak-results.DATE in the current directory):
#                  samples.tsv (one row a minute: VmRSS, VmHWM, RssAnon, threads, open fds,
#                  file bytes, directories under objects/, du of the data, load),
#                  load.json (per operation count, rate, errors, p50/p99), summary.txt
#   WORK, TMPDIR   the scratch directory (removed at exit)
#
# The key space is fixed (200 small, 20 medium, 4 multipart, 50 copied keys), so the store's
# files stay under about 100 MB however long it runs (its objects/ directories, made on demand
# and kept, add up to 256 + 65536 of 4 KiB each). The figures (docs/BENCHMARKS.md, "Issue 15:
# soak"): VmRSS growth from minute 5 to the last minute, the error count, requests/s by type.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-30m}
WORKERS=${WORKERS:-8}
SAMPLE=${SAMPLE:-60}
SEED=${SEED:-1}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
case $DURATION in
*h) SECONDS_TOTAL=$((${DURATION%h} * 3600)) ;;
*m) SECONDS_TOTAL=$((${DURATION%m} * 60)) ;;
*s) SECONDS_TOTAL=${DURATION%s} ;;
*) SECONDS_TOTAL=$DURATION ;;
esac
for v in SECONDS_TOTAL WORKERS SAMPLE SEED; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || die "$v must be a positive whole number, not '${!v}'"
done
for t in curl python3 awk; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
python3 -c 'import boto3' 2>/dev/null || die "boto3 not found (scripts/install-deps.sh installs it)"

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
BUCKET=soak
REGION=us-east-1
OUT=${OUT:-soak-results.$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")

make_work coffer-soak
WORK_LOGS=("$WORK/coffer.log" "$WORK/load.err")
LOAD_PID=""
soak_cleanup() {
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
    kill -TERM "$LOAD_PID"
    wait "$LOAD_PID" 2>/dev/null
  fi
  work_cleanup
}
on_exit soak_cleanup

read -r PORT _ < <(free_ports)
ENDPOINT=http://127.0.0.1:$PORT
start_coffer "127.0.0.1:$PORT" "$WORK/data" "$WORK/coffer.log"
make_bucket "$BUCKET"
log "coffer $("$COFFER_BIN" --version 2>/dev/null | head -1) pid $COFFER_PID on $ENDPOINT; load: $WORKERS workers for ${SECONDS_TOTAL} s"

status_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$COFFER_PID/status"; }
# sample MINUTE: one row of samples.tsv
sample() {
  alive
  local fds load
  fds=$(find "/proc/$COFFER_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  read -r load _ </proc/loadavg
  # Data: the bytes of the files the store holds, apart from the number of directories under
  # objects/ (its two levels of fan-out are made on demand and kept, up to 256 + 65536).
  files=$(find "$WORK/data" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { printf "%d", s / 1024 }')
  dirs=$(find "$WORK/data/objects" -type d 2>/dev/null | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(status_kib VmRSS)" "$(status_kib VmHWM)" \
    "$(status_kib RssAnon)" "$(status_kib Threads)" "$fds" "$files" "$dirs" \
    "$(du -sk "$WORK/data" | cut -f1)" "$load" >>"$OUT/samples.tsv"
  log "  minute $1: $(tail -n 1 "$OUT/samples.tsv" | cut -f2-)"
}

printf 'minute\trss_kib\thwm_kib\tanon_kib\tthreads\tfds\tfiles_kib\tdirs\tdisk_kib\tload1\n' >"$OUT/samples.tsv"
sample 0
SOAK_SECRET_KEY=$SECRET_KEY python3 "$BENCH_DIR/soak_load.py" --endpoint "$ENDPOINT" \
  --bucket "$BUCKET" --access-key "$ACCESS_KEY" --workers "$WORKERS" --seconds "$SECONDS_TOTAL" \
  --seed "$SEED" --out "$OUT/load.json" >"$WORK/load.out" 2>"$WORK/load.err" &
LOAD_PID=$!
# The load fills the key space first (about 20 s), then runs SECONDS_TOTAL: samples are taken
# every SAMPLE seconds from the start of the fill, for as long as the load runs.
start=$(now)
minute=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  minute=$((minute + 1))
  next=$(awk -v s="$start" -v m="$minute" -v p="$SAMPLE" 'BEGIN { printf "%.3f", s + m * p }')
  while kill -0 "$LOAD_PID" 2>/dev/null && awk "BEGIN { exit !($(now) < $next) }"; do sleep 1; done
  kill -0 "$LOAD_PID" 2>/dev/null || break
  sample "$minute"
done
wait "$LOAD_PID" || die "the load ended with exit $? (see load.err)"
LOAD_PID=""
sample end
cp "$WORK/load.err" "$OUT/load.err" 2>/dev/null || true
grep -c -i -E '\b(error|fatal)\b' "$WORK/coffer.log" >"$OUT/server_log_errors.txt" || true
cp "$WORK/coffer.log" "$OUT/coffer.log"

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import json, sys
out = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(f"{out}/samples.tsv")][1:]
by_min = {r[0]: r for r in rows}
numbered = [r for r in rows if r[0].isdigit()]
last = numbered[-1]
five = by_min.get("5", numbered[min(5, len(numbered) - 1)])
load = json.load(open(f"{out}/load.json"))
print(f"VmRSS minute {five[0]}: {int(five[1]) / 1024:.1f} MiB, minute {last[0]}: {int(last[1]) / 1024:.1f} MiB, "
      f"growth {(int(last[1]) - int(five[1])) / 1024:+.1f} MiB; VmHWM {int(last[2]) / 1024:.1f} MiB")
print(f"threads {five[4]} -> {last[4]}, open fds {five[5]} -> {last[5]}, files {int(five[6]) / 1024:.0f} -> {int(last[6]) / 1024:.0f} MiB, "
      f"directories under objects/ {five[7]} -> {last[7]}, disk {int(five[8]) / 1024:.0f} -> {int(last[8]) / 1024:.0f} MiB")
print(f"requests: {load['total']} in {load['seconds']} s ({load['total'] / load['seconds']:.1f}/s), errors: {load['errors']}")
print("| operation | count | per s | expected misses | errors | p50 ms | p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, s in load["ops"].items():
    print(f"| {name} | {s['count']} | {s['per_second']} | {s['expected_misses']} | {s['errors']} | {s['p50_ms']} | {s['p99_ms']} |")
for e in load["first_errors"]:
    print("error:", e)
EOF
log "results in $OUT"
