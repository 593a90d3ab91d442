#!/usr/bin/env bash
# Connection floods against `coffer server` on loopback: does a well-behaved client still get
# quick answers while thousands of idle and slow-header connections are held?
# Usage: bench/flood.sh build/coffer        (`make bench` runs it after bench/server.sh)
#
# Environment:
#   IDLE=2000, SLOW=1000  connections held by bench/flood.py from 127.0.0.2 and up, at most
#                         PER_ADDRESS=200 per source address; SLOW ones send one header byte
#                         every TRICKLE=5 seconds; any the server closes is opened again
#   PROBE_RATE=200, PROBE_SECONDS=10   the well-behaved client (bench/probe.py, from 127.0.0.1):
#                         requests at a steady pace on one keep-alive connection, each timed
#   WRK_CONNECTIONS=4, WRK_DURATION=5s   then the most it gets (wrk, closed loop, from 127.0.0.1)
#   COFFER_LOG_LEVEL=warn   --log-level of the server (warn: no line per request)
#   TMPDIR        where the scratch directory goes (it is removed at exit)
#
# Measures (docs/BENCHMARKS.md): p50/p99 latency of signed 4 KiB GETs and of /health/ready at a
# steady pace, and their most requests/s with wrk (and its p99), without and then with the flood; the server's VmRSS at rest, with the flood held and after
# the measurements, and VmHWM; how many flood connections the server closed.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IDLE=${IDLE:-2000}
SLOW=${SLOW:-1000}
PER_ADDRESS=${PER_ADDRESS:-200}
TRICKLE=${TRICKLE:-5}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-4}
WRK_DURATION=${WRK_DURATION:-5s}
PROBE_RATE=${PROBE_RATE:-200}
PROBE_SECONDS=${PROBE_SECONDS:-10}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
for v in IDLE SLOW PER_ADDRESS WRK_CONNECTIONS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, not '${!v}'"
done
for t in curl wrk python3 awk; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
[ "$(ulimit -n)" -ge $((IDLE + SLOW + 256)) ] || ulimit -n $((IDLE + SLOW + 256)) ||
  die "cannot open $((IDLE + SLOW)) sockets: raise the open file limit"

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
BUCKET=bucket
REGION=us-east-1
COUNT=100

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-flood.XXXXXX")
COFFER_PID="" FLOOD_PID=""
cleanup() {
  local rc=$?
  trap - ERR
  set +e
  if [ -n "$FLOOD_PID" ] && kill -0 "$FLOOD_PID" 2>/dev/null; then
    kill -TERM "$FLOOD_PID"; wait "$FLOOD_PID" 2>/dev/null
  fi
  stop_coffer
  [ $rc -eq 0 ] || tail_logs "$SCRATCH/coffer.log" "$SCRATCH/flood.out"
  rm -rf "$SCRATCH"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
COFFER=127.0.0.1:$PORT
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
open_sockets() { find "/proc/$COFFER_PID/fd" -lname 'socket:*' 2>/dev/null | wc -l; }

# latency_ms FILE PCT: a percentile of wrk's --latency distribution, in milliseconds
latency_ms() {
  awk -v p="$2%" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
    if (f < 0) exit 1
    printf "%.3f\n", v * f }' "$1"
}
# run_wrk NAME URL [SCRIPT]: wrk from 127.0.0.1; sets WRK_RPS and WRK_P99 (ms); fails on
# socket errors or non-2xx answers
run_wrk() {
  local out="$SCRATCH/$1.wrk"
  wrk -t1 -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency ${3:+-s "$3"} "$2" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk ($1) failed"; }
  if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$out"; then
    cat "$out" >&2; die "wrk ($1): errors or non-2xx answers"
  fi
  WRK_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  WRK_P99=$(latency_ms "$out" 99) || die "wrk ($1): no latency distribution"
}
# probe WHAT: bench/probe.py at PROBE_RATE for PROBE_SECONDS; sets P50, P99, PMAX (ms)
probe() {
  python3 "$BENCH_DIR/probe.py" "$1" --host "$COFFER" --bucket "$BUCKET" --count "$COUNT" \
    --rate "$PROBE_RATE" --seconds "$PROBE_SECONDS" >"$SCRATCH/probe.out" ||
    die "the well-behaved client's $1 requests failed"
  read -r P50 P99 PMAX _ <"$SCRATCH/probe.out"
}
measure() {  # measure PHASE: paced signed GETs and /health/ready, then one wrk run of each
  probe get
  GET_P50=$P50 GET_P99=$P99 GET_MAX=$PMAX
  probe health
  HEALTH_P50=$P50 HEALTH_P99=$P99 HEALTH_MAX=$PMAX
  python3 "$BENCH_DIR/sigv4_presign.py" gen --method GET --host "$COFFER" --bucket "$BUCKET" \
    --count "$COUNT" --tail "$SCRATCH/tail.bin" --lua "$SCRATCH/get.lua" || die "gen failed"
  run_wrk "get-$1" "http://$COFFER/" "$SCRATCH/get.lua"
  GET_RPS=$WRK_RPS GET_WRK_P99=$WRK_P99
  run_wrk "health-$1" "http://$COFFER/health/ready"
  HEALTH_RPS=$WRK_RPS HEALTH_WRK_P99=$WRK_P99
  log "$1: signed GET p50 $GET_P50 p99 $GET_P99 max $GET_MAX ms, wrk $GET_RPS/s (p99 $GET_WRK_P99 ms);" \
    "/health/ready p50 $HEALTH_P50 p99 $HEALTH_P99 max $HEALTH_MAX ms, wrk $HEALTH_RPS/s (p99 $HEALTH_WRK_P99 ms)"
}

log "scratch $SCRATCH; coffer on $COFFER; flood: $IDLE idle + $SLOW slow-header connections"
mkdir -p "$SCRATCH/data"
start_coffer "$COFFER" "$SCRATCH/data" "$SCRATCH/coffer.log"
sleep 0.5
RSS_REST=$(status_kib "$COFFER_PID" VmRSS)
curl -fsS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" -X PUT \
  -o /dev/null "http://$COFFER/$BUCKET" || die "cannot create the bucket"
head -c 4080 /dev/urandom >"$SCRATCH/tail.bin"
BENCH_ACCESS_KEY=$ACCESS_KEY BENCH_SECRET_KEY=$SECRET_KEY \
  python3 "$BENCH_DIR/sigv4_presign.py" populate --host "$COFFER" --bucket "$BUCKET" \
  --count "$COUNT" --tail "$SCRATCH/tail.bin" || die "storing the objects failed"
export BENCH_ACCESS_KEY=$ACCESS_KEY BENCH_SECRET_KEY=$SECRET_KEY

measure quiet
Q=("$GET_RPS" "$GET_P50" "$GET_P99" "$HEALTH_RPS" "$HEALTH_P50" "$HEALTH_P99" "$GET_MAX" "$HEALTH_MAX" "$GET_WRK_P99" "$HEALTH_WRK_P99")
RSS_QUIET=$(status_kib "$COFFER_PID" VmRSS)

python3 "$BENCH_DIR/flood.py" --port "$PORT" --idle "$IDLE" --slow "$SLOW" \
  --per-address "$PER_ADDRESS" --trickle "$TRICKLE" --ready "$SCRATCH/flood.ready" \
  >"$SCRATCH/flood.out" 2>&1 &
FLOOD_PID=$!
for _ in $(seq 600); do
  [ -s "$SCRATCH/flood.ready" ] && break
  kill -0 "$FLOOD_PID" 2>/dev/null || die "the flood generator failed: $(tail -3 "$SCRATCH/flood.out")"
  sleep 0.1
done
[ -s "$SCRATCH/flood.ready" ] || die "the flood connections were not all open after 60 s"
sleep 2
alive
HELD=$(open_sockets)
RSS_FLOOD=$(status_kib "$COFFER_PID" VmRSS)
log "flood held: $(cat "$SCRATCH/flood.ready") connections opened, $HELD sockets open in the server, VmRSS $RSS_FLOOD KiB"

measure flood
F=("$GET_RPS" "$GET_P50" "$GET_P99" "$HEALTH_RPS" "$HEALTH_P50" "$HEALTH_P99" "$GET_MAX" "$HEALTH_MAX" "$GET_WRK_P99" "$HEALTH_WRK_P99")
alive
HELD_END=$(open_sockets)
RSS_FLOOD_END=$(status_kib "$COFFER_PID" VmRSS)
HWM=$(status_kib "$COFFER_PID" VmHWM)
kill -TERM "$FLOOD_PID"; wait "$FLOOD_PID" || true
FLOOD_PID=""
REOPENED=$(tail -1 "$SCRATCH/flood.out")
errors=$(grep -c 'level=error' "$SCRATCH/coffer.log" || true)
[ "$errors" -eq 0 ] || { grep 'level=error' "$SCRATCH/coffer.log" | head -5 >&2; die "coffer logged $errors errors"; }
CLOSED_HEADERS=$(grep -c 'headers not complete in time' "$SCRATCH/coffer.log" || true)

per_conn=$(calc "($RSS_FLOOD - $RSS_QUIET) / ($IDLE + $SLOW)")
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "met" : "**missed**" }'; }
cat <<EOF

### Flood: $IDLE idle + $SLOW slow-header connections (from 127.0.0.2 and up), client on 127.0.0.1

| figure | no flood | with the flood held | target |
|---|---|---|---|
| signed 4 KiB GET at $PROBE_RATE/s, p50 / p99 / max ms | $(fmt "${Q[1]}" 2) / $(fmt "${Q[2]}" 2) / $(fmt "${Q[6]}" 1) | $(fmt "${F[1]}" 2) / $(fmt "${F[2]}" 2) / $(fmt "${F[6]}" 1) | p99 < 100: $(verdict "${F[2]}" 100) |
| /health/ready at $PROBE_RATE/s, p50 / p99 / max ms | $(fmt "${Q[4]}" 2) / $(fmt "${Q[5]}" 2) / $(fmt "${Q[7]}" 1) | $(fmt "${F[4]}" 2) / $(fmt "${F[5]}" 2) / $(fmt "${F[7]}" 1) | p99 < 100: $(verdict "${F[5]}" 100) |
| signed 4 KiB GET, wrk -t1 -c$WRK_CONNECTIONS -d$WRK_DURATION: requests/s (p99 ms) | $(fmt "${Q[0]}" 0) ($(fmt "${Q[8]}" 1)) | $(fmt "${F[0]}" 0) ($(fmt "${F[8]}" 1)) | |
| /health/ready, wrk: requests/s (p99 ms) | $(fmt "${Q[3]}" 0) ($(fmt "${Q[9]}" 1)) | $(fmt "${F[3]}" 0) ($(fmt "${F[9]}" 1)) | |
| server VmRSS, MiB | at rest $(fmt "$(calc "$RSS_REST / 1024")") , after the quiet runs $(fmt "$(calc "$RSS_QUIET / 1024")") | held $(fmt "$(calc "$RSS_FLOOD / 1024")"), after the runs $(fmt "$(calc "$RSS_FLOOD_END / 1024")"); VmHWM $(fmt "$(calc "$HWM / 1024")") | < 64 at rest: $(verdict "$(calc "$RSS_REST / 1024")" 64) |
| VmRSS per flood connection, KiB | | $(fmt "$per_conn" 1) | |
| sockets open in the server | | $HELD when held, $HELD_END after the runs | |

Flood generator: $REOPENED (connections the server closed and the generator opened again);
server log: $CLOSED_HEADERS connections closed for late headers.
EOF
