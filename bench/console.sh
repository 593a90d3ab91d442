#!/usr/bin/env bash
# Benchmark of `coffer console`'s JSON API over a catalogue of CHAINS × PER_CHAIN snapshots
# (10,000 over 50 chains by default) in a bucket of a local `coffer server`, against that
# server's own GET /health/live measured in the same run at the same concurrency.
# Usage: bench/console.sh build/coffer
#
# Environment:
#   CHAINS=50 PER_CHAIN=200   the catalogue's shape
#   PUT_JOBS=16               parallel PUTs writing the manifests
#   WRK_DURATION=10s          each latency measurement; CONCURRENCY="1 16" connections
#   COFFER_LOG_LEVEL=warn     --log-level of the server and the console
#   TMPDIR                    where the scratch directory goes (removed at exit)
#
# Steps:
#   1. a coffer server; one real snapshot (`coffer snapshot create`, into a directory) whose
#      manifest is the template of bench/console_gen.py: CHAINS × PER_CHAIN manifests with new
#      ids, times, heights and checksums, PUT into a new bucket "snapshots" (no archives: the
#      catalogue reads manifests only); `coffer snapshot ls` checks that one chain parses
#   2. `coffer console --repository s3://snapshots`: seconds from start to /health/ready, the
#      first refresh's duration and the snapshot count (its /metrics), VmRSS once ready
#   3. a refresh on demand (POST /api/v1/refresh), which finds every manifest unchanged: its
#      duration and how many manifests it read (none expected)
#   4. for each concurrency (wrk -c C, -t min(C, 2)): GET /health/live on the server (the
#      reference), then on the console GET /api/v1/chains, /api/v1/chains/{c}/snapshots?limit=50
#      (cycling the chains), /api/v1/chains/{c}/snapshots/{id} (cycling 2,000 snapshots drawn at random),
#      /api/v1/chains/{c}/latest (cycling the chains): p50, p95, p99 (wrk's latency histogram,
#      bench/console_routes.lua), requests/s, and the serving process's CPU time per request
#      (which other load on the machine does not change as it does the latencies)
#   5. the console's VmHWM at the end
# Any non-2xx answer, wrk error or failed command aborts the run with a message.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CHAINS=${CHAINS:-50}
PER_CHAIN=${PER_CHAIN:-200}
PUT_JOBS=${PUT_JOBS:-16}
WRK_DURATION=${WRK_DURATION:-10s}
CONCURRENCY=${CONCURRENCY:-"1 16"}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
[[ $CHAINS =~ ^[1-9][0-9]*$ ]] && [ "$CHAINS" -le 100 ] || die "CHAINS must be an integer from 1 to 100"
[[ $PER_CHAIN =~ ^[1-9][0-9]*$ ]] || die "PER_CHAIN must be a positive integer"
[[ $PUT_JOBS =~ ^[1-9][0-9]*$ ]] || die "PUT_JOBS must be a positive integer"
for c in $CONCURRENCY; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY holds '$c', not a positive integer"; done

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
BUCKET=snapshots
TOTAL=$((CHAINS * PER_CHAIN))

for t in curl wrk python3 awk sed sort head seq getconf cut; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
python3 -c 'import boto3' 2>/dev/null || die "python3 boto3 not found (scripts/install-deps.sh installs python3-boto3)"
"$COFFER_BIN" console --help >/dev/null 2>&1 || die "$COFFER_BIN has no console command"
[ -r /proc/self/status ] || die "/proc is needed for the memory and CPU figures"
CLK_TCK=$(getconf CLK_TCK)

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench-console.XXXXXX")
COFFER_PID="" CONSOLE_PID=""
cleanup() {
  local rc=$?
  trap - ERR
  set +e
  if [ -n "$CONSOLE_PID" ] && kill -0 "$CONSOLE_PID" 2>/dev/null; then
    kill -TERM "$CONSOLE_PID"
    wait "$CONSOLE_PID" 2>/dev/null
  fi
  stop_coffer
  [ $rc -eq 0 ] || tail_logs "$SCRATCH/coffer.log" "$SCRATCH/console.log"
  rm -rf "$SCRATCH"
  exit $rc
}
on_exit cleanup

read -r COFFER_PORT CONSOLE_PORT < <(free_ports)
COFFER=127.0.0.1:$COFFER_PORT
CONSOLE=127.0.0.1:$CONSOLE_PORT
export COFFER_ENDPOINT=http://$COFFER COFFER_ACCESS_KEY=$ACCESS_KEY COFFER_SECRET_KEY=$SECRET_KEY
export COFFER_REGION=$REGION

# get URL: the body of a GET that must answer 2xx
get() {
  local code
  code=$(curl -sS -o "$SCRATCH/get.out" -w '%{http_code}' "$1") || die "curl $1 failed"
  [[ $code == 2?? ]] || die "GET $1 answered HTTP $code: $(head -c 400 "$SCRATCH/get.out")"
  cat "$SCRATCH/get.out"
}
# metric NAME: its value on the console's /metrics (the line "NAME VALUE")
metric() { get "http://$CONSOLE/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
console_alive() { kill -0 "$CONSOLE_PID" 2>/dev/null || die "coffer console died (see its log below)"; }

# ---------------------------------------------------------------------- 1. the manifests
log "scratch $SCRATCH; coffer server on $COFFER, console on $CONSOLE"
start_coffer "$COFFER" "$SCRATCH/data" "$SCRATCH/coffer.log"
mkdir -p "$SCRATCH/src"
head -c 65536 /dev/urandom >"$SCRATCH/src/blocks.db"
id=$("$COFFER_BIN" snapshot create "$SCRATCH/src" "$SCRATCH/template-repo/template" --compress lz4 \
  --label height=1 --no-progress) || die "coffer snapshot create failed"

log "writing $TOTAL manifests over $CHAINS chains ($PUT_JOBS PUTs at a time)"
t0=$(now)
written=$(python3 "$BENCH_DIR/console_gen.py" --template "$SCRATCH/template-repo/template/$id.json" --ids "$SCRATCH/ids.txt" \
  --chains "$CHAINS" --per-chain "$PER_CHAIN" --bucket "$BUCKET" --endpoint "http://$COFFER" \
  --jobs "$PUT_JOBS") || die "writing the manifests failed"
put_s=$(calc "$(now) - $t0")
[ "$written" = "$TOTAL" ] || die "the generator wrote $written manifests, not $TOTAL"
listed=$("$COFFER_BIN" snapshot ls "s3://$BUCKET/chain-00" | wc -l) || die "coffer snapshot ls failed"
[ "$listed" = "$PER_CHAIN" ] || die "coffer snapshot ls lists $listed snapshots of chain-00, not $PER_CHAIN"
log "$TOTAL manifests in $(fmt "$put_s" 1) s; chain-00 lists $listed snapshots"

# ------------------------------------------------------------------------- 2. the console
t0=$(now)
"$COFFER_BIN" console --address "$CONSOLE" --repository "s3://$BUCKET" --log-level "$COFFER_LOG_LEVEL" \
  >"$SCRATCH/console.log" 2>&1 &
CONSOLE_PID=$!
ready=""
for _ in $(seq 1200); do
  if curl -fsS -o /dev/null "http://$CONSOLE/health/ready" 2>/dev/null; then ready=1; break; fi
  console_alive
  sleep 0.05
done
[ -n "$ready" ] || die "the console is not ready after 60 s"
ready_s=$(calc "$(now) - $t0")
first_s=$(metric coffer_console_catalogue_refresh_seconds)
snapshots=$(metric coffer_console_catalogue_snapshots)
reads_first=$(metric coffer_console_catalogue_manifest_reads_total)
[ "$snapshots" = "$TOTAL" ] || die "the console's catalogue holds $snapshots snapshots, not $TOTAL"
sleep 1 # what start-up allocated and freed settles
RSS_READY_KIB=$(status_kib "$CONSOLE_PID" VmRSS)
log "console ready in $(fmt "$ready_s" 2) s (first refresh $(fmt "$first_s" 3) s, $reads_first manifests read), VmRSS $RSS_READY_KIB KiB"

# ------------------------------------------------------------------ 3. a refresh on demand
ok_before=$(metric 'coffer_console_catalogue_refreshes_total{result="ok"}')
code=$(curl -sS -o "$SCRATCH/refresh.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data '{}' "http://$CONSOLE/api/v1/refresh") || die "POST /api/v1/refresh failed"
[ "$code" = 202 ] || die "POST /api/v1/refresh answered HTTP $code: $(head -c 400 "$SCRATCH/refresh.out")"
for _ in $(seq 600); do
  ok_now=$(metric 'coffer_console_catalogue_refreshes_total{result="ok"}')
  [ "$ok_now" -gt "$ok_before" ] && break
  sleep 0.05
done
[ "$ok_now" -gt "$ok_before" ] || die "the refresh asked for did not happen within 30 s"
again_s=$(metric coffer_console_catalogue_refresh_seconds)
reads_again=$(($(metric coffer_console_catalogue_manifest_reads_total) - reads_first))
log "refresh on demand: $(fmt "$again_s" 3) s, $reads_again manifests read"

# ---------------------------------------------------------------------------- 4. latency
chains=$(awk '{ print $1 }' "$SCRATCH/ids.txt" | sort -u)
echo "/health/live" >"$SCRATCH/live.txt"
echo "/api/v1/chains" >"$SCRATCH/chains.txt"
for c in $chains; do echo "/api/v1/chains/$c/snapshots?limit=50"; done >"$SCRATCH/list.txt"
for c in $chains; do echo "/api/v1/chains/$c/latest"; done >"$SCRATCH/latest.txt"
awk 'BEGIN { srand(12) } { printf "%.9f /api/v1/chains/%s/snapshots/%s\n", rand(), $1, $2 }' "$SCRATCH/ids.txt" |
  sort -k1,1 | awk 'NR <= 2000 { print $2 }' >"$SCRATCH/one.txt"
for f in chains list latest one; do get "http://$CONSOLE$(head -n 1 "$SCRATCH/$f.txt")" >/dev/null; done
# The first page names the newest snapshot, the one /latest gives.
newest=$(awk 'NR == 1 { print $2 }' "$SCRATCH/ids.txt")
get "http://$CONSOLE/api/v1/chains/$(awk 'NR == 1 { print $1 }' "$SCRATCH/ids.txt")/latest" |
  grep -q "\"$newest\"" || die "/latest of the first chain does not name $newest"

# run_wrk NAME HOST CONNECTIONS PID: "p50 p95 p99 requests/s cpu" (µs; cpu: PID's CPU time per
# request); fails on any error or non-2xx
run_wrk() {
  local out="$SCRATCH/$1-$3.wrk" threads=$(($3 < 2 ? $3 : 2)) line ticks
  ticks=$(proc_ticks "$4")
  wrk -t"$threads" -c"$3" -d"$WRK_DURATION" -s "$BENCH_DIR/console_routes.lua" "http://$2" -- \
    "$SCRATCH/$1.txt" >"$out" 2>&1 || { cat "$out" >&2; die "wrk ($1, -c$3) failed"; }
  ticks=$(($(proc_ticks "$4") - ticks))
  line=$(awk '$1 == "latency_us"' "$out")
  [ -n "$line" ] || { cat "$out" >&2; die "wrk ($1, -c$3): no latency line"; }
  read -r _ p50 p95 p99 n bad errors <<<"$line"
  [ "$bad" = 0 ] || { cat "$out" >&2; die "wrk ($1, -c$3): $bad non-2xx answers"; }
  [ "$errors" = 0 ] || { cat "$out" >&2; console_alive; die "wrk ($1, -c$3): $errors socket errors"; }
  [ "$n" -gt 0 ] || die "wrk ($1, -c$3): no requests"
  echo "$p50 $p95 $p99 $(awk '/^Requests\/sec:/ { print $2 }' "$out") $(calc "$ticks * 1e6 / $CLK_TCK / $n")"
}

declare -A R
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for c in $CONCURRENCY; do
  log "concurrency $c: the server's /health/live, then the console's routes ($WRK_DURATION each)"
  R[live,$c]=$(run_wrk live "$COFFER" "$c" "$COFFER_PID")
  for route in chains list one latest; do
    R[$route,$c]=$(run_wrk "$route" "$CONSOLE" "$c" "$CONSOLE_PID")
    console_alive
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
HWM_KIB=$(status_kib "$CONSOLE_PID" VmHWM)
RSS_END_KIB=$(status_kib "$CONSOLE_PID" VmRSS)

# ---------------------------------------------------------------------------- the report
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
row() { # LABEL KEY C
  local p50 p95 p99 rps cpu
  read -r p50 p95 p99 rps cpu <<<"${R[$2,$3]}"
  local verdict="met"
  if [ "$2" = live ]; then
    verdict="(reference)"
  elif [ "$p95" -ge 10000 ]; then
    verdict="**missed**"
  fi
  echo "| $1 | $3 | $(ms "$p50") | $(ms "$p95") | $(ms "$p99") | $(fmt "$rps" 0) | $(fmt "$cpu" 0) | $verdict |"
}
cat <<EOF

## coffer console benchmark — $(date -u +%Y-%m-%d) — $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

$TOTAL snapshots over $CHAINS chains (manifests only) in a bucket of a local coffer server; the console
reads it over S3. wrk -d$WRK_DURATION per row, -t min(C, 2) -c C; latencies in ms from wrk's histogram;
CPU µs/request: the serving process's user+system time over the row's requests. Load average
before / after the latency rows: $LOAD_BEFORE / $LOAD_AFTER.

| route | C | p50 | p95 | p99 | requests/s | CPU µs/request | p95 < 10 ms |
|---|---|---|---|---|---|---|---|
EOF
for c in $CONCURRENCY; do
  row "server GET /health/live (reference)" live "$c"
  row "GET /api/v1/chains" chains "$c"
  row "GET /api/v1/chains/{c}/snapshots?limit=50" list "$c"
  row "GET /api/v1/chains/{c}/snapshots/{id}" one "$c"
  row "GET /api/v1/chains/{c}/latest" latest "$c"
done
cat <<EOF

| figure | value |
|---|---|
| manifests written ($PUT_JOBS PUTs at a time), s | $(fmt "$put_s" 1) |
| console start to /health/ready, s | $(fmt "$ready_s" 2) |
| first refresh ($reads_first manifests read), s | $(fmt "$first_s" 3) |
| refresh on demand, nothing changed ($reads_again manifests read), s | $(fmt "$again_s" 3) |
| console VmRSS once ready, MiB | $(fmt "$(calc "$RSS_READY_KIB / 1024")" 1) |
| console VmRSS after the latency runs, MiB | $(fmt "$(calc "$RSS_END_KIB / 1024")" 1) |
| console VmHWM, MiB | $(fmt "$(calc "$HWM_KIB / 1024")" 1) |
EOF
