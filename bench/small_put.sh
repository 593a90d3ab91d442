#!/usr/bin/env bash
# The 4 KiB PUT of bench/server.sh alone, for two builds of coffer side by side.
# Usage: bench/small_put.sh build/coffer [reference/coffer]
#
# Starts each build on its own data directory and loopback port, stores the 1,000 objects of
# bench/server.sh's small-object part in each, then runs `wrk` with freshly signed PUTs against
# them in turn, RUNS times (the two alternate, so both see the same background load). Reports
# the median (min–max) of ops/s and of the server's CPU µs per PUT, and the ratios of medians
# to the reference build when one is given.
#
# Environment: RUNS=5, SMALL_COUNT=1000, WRK_THREADS=2, WRK_CONNECTIONS=16, WRK_DURATION=10s,
#   COFFER_LOG_LEVEL=info, TMPDIR.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"
REF_BIN=${2:+$(realpath "$2")}
[ -z "$REF_BIN" ] || [ -x "$REF_BIN" ] || die "$2 is not an executable"

RUNS=${RUNS:-5}
SMALL_COUNT=${SMALL_COUNT:-1000}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
WRK_DURATION=${WRK_DURATION:-10s}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-info}
ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
BUCKET=bucket
CLK_TCK=$(getconf CLK_TCK)
for t in curl wrk python3; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"
done

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-small-put.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? p
  set +e
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  [ $rc -eq 0 ] || tail_logs "$SCRATCH"/*.log
  rm -rf "$SCRATCH"
  exit $rc
}
on_exit cleanup

read -r PORT_A PORT_B < <(free_ports)

export BENCH_ACCESS_KEY=$ACCESS_KEY BENCH_SECRET_KEY=$SECRET_KEY
head -c 4080 /dev/urandom >"$SCRATCH/tail.bin"
SIGN=(python3 "$BENCH_DIR/sigv4_presign.py")

# serve NAME BIN PORT: starts BIN as server NAME, creates the bucket, stores the objects
declare -A ADDR PID
serve() {
  local name=$1 bin=$2 addr=127.0.0.1:$3
  mkdir -p "$SCRATCH/$name"
  COFFER_BIN=$bin start_coffer "$addr" "$SCRATCH/$name" "$SCRATCH/$name.log"
  PIDS+=("$COFFER_PID")
  ADDR[$name]=$addr PID[$name]=$COFFER_PID
  curl -sS -f --aws-sigv4 aws:amz:us-east-1:s3 --user "$ACCESS_KEY:$SECRET_KEY" -X PUT \
    -o /dev/null "http://$addr/$BUCKET" || die "creating the bucket on $name failed"
  "${SIGN[@]}" populate --host "$addr" --bucket "$BUCKET" --count "$SMALL_COUNT" \
    --tail "$SCRATCH/tail.bin" || die "storing the small objects on $name failed"
}

# run NAME: one wrk run of signed PUTs against server NAME; appends "ops/s cpu_us/op" to NAME.runs
run() {
  local name=$1 addr=${ADDR[$1]} out=$SCRATCH/$1.wrk c0 c1 ops rps
  "${SIGN[@]}" gen --method PUT --host "$addr" --bucket "$BUCKET" --count "$SMALL_COUNT" \
    --tail "$SCRATCH/tail.bin" --lua "$SCRATCH/$name.lua" || die "generating $name.lua failed"
  COFFER_PID=${PID[$name]} alive
  c0=$(proc_ticks "${PID[$name]}")
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$SCRATCH/$name.lua" \
    "http://$addr/" >"$out" 2>&1 || { cat "$out" >&2; die "wrk ($name) failed"; }
  c1=$(proc_ticks "${PID[$name]}")
  if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$out"; then
    cat "$out" >&2; die "wrk ($name): errors or non-2xx answers"
  fi
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  ops=$(awk '/requests in/ { print $1 }' "$out")
  echo "$rps $(calc "($c1 - $c0) / $CLK_TCK / $ops * 1000000")" >>"$SCRATCH/$name.runs"
  log "$name run: $rps PUT/s, $(tail -n 1 "$SCRATCH/$name.runs" | awk '{ print $2 }') CPU µs/PUT"
}

serve new "$COFFER_BIN" "$PORT_A"
[ -z "$REF_BIN" ] || serve ref "$REF_BIN" "$PORT_B"
NAMES=(new); [ -z "$REF_BIN" ] || NAMES+=(ref)
for i in $(seq "$RUNS"); do
  for n in "${NAMES[@]}"; do run "$n"; done
done
for n in "${NAMES[@]}"; do
  log "last wrk run, $n:"; sed 's/^/    /' "$SCRATCH/$n.wrk" >&2
done

col() { awk -v c="$2" '{ print $c }' "$SCRATCH/$1.runs"; }
echo
echo "4 KiB PUT, $RUNS runs of wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION, $(nproc) cores; median (min–max)"
echo
echo "| build | PUT/s | CPU µs per PUT |"
echo "|---|---|---|"
for n in "${NAMES[@]}"; do
  read -r rm rlo rhi <<<"$(stats $(col "$n" 1))"
  read -r cm clo chi <<<"$(stats $(col "$n" 2))"
  eval "${n}_ops=$rm ${n}_cpu=$cm"
  echo "| $n ($( [ "$n" = new ] && echo "$COFFER_BIN" || echo "$REF_BIN")) | $(fmt "$rm" 0) ($(fmt "$rlo" 0)–$(fmt "$rhi" 0)) | $(fmt "$cm" 0) ($(fmt "$clo" 0)–$(fmt "$chi" 0)) |"
done
if [ -n "$REF_BIN" ]; then
  echo
  echo "new / ref: PUT/s $(fmt "$(calc "$new_ops / $ref_ops")" 2)×, CPU per PUT $(fmt "$(calc "$new_cpu / $ref_cpu")" 2)×"
fi
echo
for n in "${NAMES[@]}"; do
  echo "    $n PUT/s:      $(col "$n" 1 | tr '\n' ' ')"
  echo "    $n CPU µs/PUT: $(col "$n" 2 | tr '\n' ' ')"
done
