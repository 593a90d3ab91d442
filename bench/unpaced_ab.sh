#!/usr/bin/env bash
# What rate groups cost the responses they do not pace: two builds, alternated run by run.
# Usage: bench/unpaced_ab.sh BASE_COFFER          (with build/coffer as the build under test)
#        CANDIDATE=path/to/coffer bench/unpaced_ab.sh BASE_COFFER
#
# Environment: RUNS=5, WRK_DURATION=5s, WRK_THREADS=2, WRK_CONNECTIONS=16, BIG_MIB=256.
#
# Each build gets its own server and data directory holding the same objects. Per run and build,
# in alternation (A B A B ...), so that the load of a shared machine falls on both alike:
#   small  wrk GETs of one 4 KiB object through a pre-signed URL of a key without a rate group
#          (requests/s, and the server's CPU µs per request from /proc, which the load of a
#          shared machine disturbs much less than the rate): the in-memory body path
#   large  curl GET of a BIG_MIB object by root (MB/s): the sendfile path
# Both builds answer the same requests; the candidate checks, for each body, that the key has
# no group. Medians (min-max) of RUNS runs.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BASE_BIN=$COFFER_BIN
CANDIDATE_BIN=$(realpath "${CANDIDATE:-$BENCH_DIR/../build/coffer}")
[ -x "$CANDIDATE_BIN" ] || die "$CANDIDATE_BIN is not an executable"
RUNS=${RUNS:-5}
WRK_DURATION=${WRK_DURATION:-5s}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
BIG_MIB=${BIG_MIB:-256}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
for t in curl wrk python3 awk head; do command -v "$t" >/dev/null || die "$t not found"; done

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-unpaced.XXXXXX")
PIDS=()
cleanup() {
  local rc=$? pid
  trap - ERR
  set +e
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  [ $rc -eq 0 ] || tail_logs "$SCRATCH/a.log" "$SCRATCH/b.log"
  rm -rf "$SCRATCH"
  exit $rc
}
on_exit cleanup

head -c 4096 /dev/urandom >"$SCRATCH/small"
head -c $((BIG_MIB << 20)) /dev/urandom >"$SCRATCH/big"
read -r PORT_A PORT_B < <(free_ports)
declare -A ADDR=([a]=127.0.0.1:$PORT_A [b]=127.0.0.1:$PORT_B) BIN=([a]=$BASE_BIN [b]=$CANDIDATE_BIN) URL PID
CLK_TCK=$(getconf CLK_TCK)
for s in a b; do
  COFFER_BIN=${BIN[$s]} start_coffer "${ADDR[$s]}" "$SCRATCH/data-$s" "$SCRATCH/$s.log"
  PIDS+=("$COFFER_PID")
  PID[$s]=$COFFER_PID
  for args in "-X PUT http://${ADDR[$s]}/abtest" "-H x-amz-content-sha256:UNSIGNED-PAYLOAD -T $SCRATCH/small http://${ADDR[$s]}/abtest/small" \
    "-H x-amz-content-sha256:UNSIGNED-PAYLOAD -T $SCRATCH/big http://${ADDR[$s]}/abtest/big"; do
    # shellcheck disable=SC2086
    code=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" -o /dev/null -w '%{http_code}' $args)
    [[ $code == 2?? ]] || die "setting up server $s: HTTP $code for curl $args"
  done
  read -r ak sk < <(COFFER_ENDPOINT=http://${ADDR[$s]} COFFER_ROOT_USER=$ACCESS_KEY COFFER_ROOT_PASSWORD=$SECRET_KEY \
    "${BIN[$s]}" admin key add --policy readonly --bucket abtest --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["access_key"], d["secret_key"])')
  URL[$s]=$(COFFER_ENDPOINT=http://${ADDR[$s]} COFFER_ACCESS_KEY=$ak COFFER_SECRET_KEY=$sk \
    "${BIN[$s]}" presign s3://abtest/small --expires 1h)
done

declare -A SMALL BIG CPU
for run in $(seq "$RUNS"); do
  for s in a b; do
    ticks=$(proc_ticks "${PID[$s]}")
    out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" "${URL[$s]}")
    ticks=$(($(proc_ticks "${PID[$s]}") - ticks))
    grep -q "Non-2xx" <<<"$out" && die "wrk against server $s: non-2xx answers"
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    us=$(calc "$ticks / $CLK_TCK / $n * 1e6")
    CPU[$s]+="$us "
    t0=$(now)
    curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" -o /dev/null "http://${ADDR[$s]}/abtest/big"
    mbs=$(calc "$((BIG_MIB << 20)) / ($(now) - $t0) / 1e6")
    SMALL[$s]+="$rps " BIG[$s]+="$mbs "
    log "run $run, build $s: 4 KiB GET $rps req/s, $us CPU µs/request; $BIG_MIB MiB GET $mbs MB/s"
  done
done

# shellcheck disable=SC2086
{
  echo "| build | 4 KiB GET, ungrouped key (req/s) | server CPU µs per 4 KiB GET | $BIG_MIB MiB GET, root (MB/s) |"
  echo "|---|---|---|---|"
  for s in a b; do
    read -r m lo hi < <(stats ${SMALL[$s]})
    read -r bm blo bhi < <(stats ${BIG[$s]})
    read -r cm clo chi < <(stats ${CPU[$s]})
    echo "| $([ $s = a ] && echo "base ($BASE_BIN)" || echo "candidate ($CANDIDATE_BIN)") | $(fmt "$m" 0) ($(fmt "$lo" 0)-$(fmt "$hi" 0)) | $(fmt "$cm" 2) ($(fmt "$clo" 2)-$(fmt "$chi" 2)) | $(fmt "$bm" 0) ($(fmt "$blo" 0)-$(fmt "$bhi" 0)) |"
  done
}
