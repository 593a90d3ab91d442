#!/usr/bin/env bash
# Accuracy of rate groups: the aggregate rate of each tier's downloads against its limit.
# Usage: bench/pacing.sh build/coffer
#
# Environment:
#   RUNS=3          runs of every scenario; the table shows medians
#   WINDOW=20       seconds each scenario is measured over (after WARMUP=2 s)
#   CONCURRENCY="1 4 16"   downloads per tier at once
#   FREE_RATE=50MB/s, PREMIUM_RATE=250MB/s   the two groups' rates
#   OBJ_MIB=512     size of the object every download GETs (each connection GETs it again and
#                   again on one keep-alive connection, so it need not last the window)
#   TMPDIR          where the scratch directory goes (removed at exit)
#
# Scenarios, per run: the unthrottled key alone (the reference); each tier alone and both at
# once with 1, 4 and 16 downloads per tier; the unthrottled key while both tiers run 4 each.
# Every download is a pre-signed URL of one of two keys per tier (`coffer presign`), so the
# figures cover the path the console's download links take. Columns:
#   aggregate MB/s   bytes received by the tier's connections in the window / window (10^6 B)
#   error %          (aggregate - limit) / limit
#   fairness         min / max of the per-connection shares (1.00: equal shares)
# The unthrottled rows compare with the reference of the same run (ratio = with / alone).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
WINDOW=${WINDOW:-20}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-"1 4 16"}
FREE_RATE=${FREE_RATE:-50MB/s}
PREMIUM_RATE=${PREMIUM_RATE:-250MB/s}
OBJ_MIB=${OBJ_MIB:-512}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || die "WINDOW must be a positive integer (seconds), not '$WINDOW'"
[[ $OBJ_MIB =~ ^[1-9][0-9]*$ ]] || die "OBJ_MIB must be a positive integer, not '$OBJ_MIB'"
for c in $CONCURRENCY; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY holds '$c', not a positive integer"; done
for t in curl python3 awk head; do command -v "$t" >/dev/null || die "$t not found"; done

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
BUCKET=pacing
REGION=us-east-1

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-pacing.XXXXXX")
COFFER_PID=""
WORK=$SCRATCH WORK_LOGS=("$SCRATCH/coffer.log")
on_exit work_cleanup

read -r PORT _ < <(free_ports)
COFFER=127.0.0.1:$PORT
start_coffer "$COFFER" "$SCRATCH/data" "$SCRATCH/coffer.log"
export COFFER_ENDPOINT=http://$COFFER COFFER_ROOT_USER=$ACCESS_KEY COFFER_ROOT_PASSWORD=$SECRET_KEY

admin() { "$COFFER_BIN" admin "$@"; }
# new_key ARGS...: adds a readonly key and prints "ACCESS SECRET"
new_key() {
  admin key add --policy readonly --bucket "$BUCKET" --json "$@" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["access_key"], d["secret_key"])'
}
s3() {
  local code
  code=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" -o "$SCRATCH/s3.out" -w "%{http_code}" "$@") ||
    die "curl $* failed"
  [[ $code == 2?? ]] || die "coffer answered HTTP $code to curl $*: $(head -c 400 "$SCRATCH/s3.out")"
}

log "object of $OBJ_MIB MiB, groups free=$FREE_RATE premium=$PREMIUM_RATE, $RUNS run(s) of ${WINDOW} s windows"
s3 -X PUT "$COFFER_ENDPOINT/$BUCKET"
head -c $((OBJ_MIB << 20)) /dev/urandom >"$SCRATCH/object"
s3 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -T "$SCRATCH/object" "$COFFER_ENDPOINT/$BUCKET/object"
rm -f "$SCRATCH/object"

# Two keys per tier: the group's budget is shared across its keys, not per key.
declare -A LIMIT=([free]=$FREE_RATE [premium]=$PREMIUM_RATE)
for tier in free premium unthrottled; do
  : >"$SCRATCH/$tier.urls"
  for i in 1 2; do
    if [ "$tier" = unthrottled ]; then
      read -r ak sk < <(new_key)
    elif [ "$i" = 1 ]; then
      read -r ak sk < <(new_key --rate-group "$tier" --rate "${LIMIT[$tier]}")
    else
      read -r ak sk < <(new_key --rate-group "$tier")
    fi
    COFFER_ACCESS_KEY=$ak COFFER_SECRET_KEY=$sk COFFER_ROOT_USER='' COFFER_ROOT_PASSWORD='' \
      "$COFFER_BIN" presign "s3://$BUCKET/object" --expires 7d >>"$SCRATCH/$tier.urls"
  done
done
admin key ls >&2
LIMIT_BYTES_free=$(admin rate-group ls --json | python3 -c 'import json,sys; print({g["name"]: g["rate"] for g in json.load(sys.stdin)["rate_groups"]}["free"])')
LIMIT_BYTES_premium=$(admin rate-group ls --json | python3 -c 'import json,sys; print({g["name"]: g["rate"] for g in json.load(sys.stdin)["rate_groups"]}["premium"])')

# measure NAME TIER=N... : one scenario; appends "NAME TIER N RATE_BPS FAIRNESS" lines to results
measure() {
  local name=$1 spec args=() out
  shift
  for spec in "$@"; do args+=(--tier "${spec%%=*}=${spec#*=}:$SCRATCH/${spec%%=*}.urls"); done
  alive
  out=$(python3 "$BENCH_DIR/pacing.py" run --warmup "$WARMUP" --window "$WINDOW" "${args[@]}") ||
    die "scenario $name failed"
  alive
  python3 -c '
import json, sys
name, d = sys.argv[1], json.loads(sys.argv[2])
for tier, r in d.items():
    b = r["bytes"]
    fair = min(b) / max(b) if max(b) else 0
    print(name, tier, len(b), sum(b) / r["seconds"], fair)' "$name" "$out" >>"$SCRATCH/results"
  tail -n "$#" "$SCRATCH/results" | awk '{ printf "bench:   %-14s %-12s x%-3s %9.2f MB/s  fairness %.3f\n", $1, $2, $3, $4 / 1e6, $5 }' >&2
}

: >"$SCRATCH/results"
for run in $(seq "$RUNS"); do
  log "run $run of $RUNS"
  measure reference unthrottled=1
  for c in $CONCURRENCY; do
    measure alone free=$c
    measure alone premium=$c
    measure both free=$c premium=$c
  done
  measure with-tiers free=4 premium=4 unthrottled=1
done

# The table: medians over runs of each (scenario, tier, concurrency).
echo
echo "### Rate groups: free=$FREE_RATE premium=$PREMIUM_RATE, ${WINDOW} s windows, median of $RUNS run(s)"
echo
printf '| %-11s | %-12s | %11s | %14s | %15s | %22s |\n' tier scenario concurrency "aggregate MB/s" "error vs limit" "fairness (min/max)"
printf '|%s|%s|%s|%s|%s|%s|\n' -------------  -------------- ------------- ---------------- ----------------- ------------------------
awk -v lf="$LIMIT_BYTES_free" -v lp="$LIMIT_BYTES_premium" '
  { key = $2 SUBSEP $1 SUBSEP $3; n[key]++; rate[key, n[key]] = $4; fair[key, n[key]] = $5
    if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
  function med(arr, key, cnt,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = arr[key, i]
    for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2 }
  END {
    for (i = 1; i <= k; i++) {
      key = order[i]; split(key, p, SUBSEP)
      r = med(rate, key, n[key]); f = med(fair, key, n[key])
      if (p[1] == "unthrottled") {
        if (p[2] == "reference") ref = r
        err = (p[2] == "reference") ? "(reference)" : sprintf("%.2f x alone", r / ref)
      } else {
        lim = (p[1] == "free") ? lf : lp
        err = sprintf("%+.2f %%", (r - lim) / lim * 100)
      }
      printf "| %-11s | %-12s | %11s | %14.2f | %15s | %22.3f |\n", p[1], p[2], p[3], r / 1e6, err, f
    }
  }' "$SCRATCH/results"
