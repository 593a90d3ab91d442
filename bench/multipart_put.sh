#!/usr/bin/env bash
# The multipart PUT of bench/server.sh (1b) alone, for two builds of coffer side by side.
# Usage: bench/multipart_put.sh build/coffer reference/coffer
#
# Starts each build on its own data directory and loopback port, cuts BIG_MIB random bytes into
# PART_MIB parts once, then uploads them as one multipart upload (PART_JOBS curl processes at a
# time, UploadPart only: the figure is the parts' transfer) to each build in turn, RUNS times,
# alternating so that both see the same background load. Reports MB/s as median (min–max) for
# each build and the ratio of the medians.
#
# Environment: RUNS=5, BIG_MIB=1024, PART_MIB=16, PART_JOBS=4, TMPDIR.
ref_arg=${2:-}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"
[ -n "$ref_arg" ] && [ -x "$ref_arg" ] || die "usage: $0 path/to/coffer path/to/reference/coffer"
REF_BIN=$(realpath "$ref_arg")
RUNS=${RUNS:-5}
BIG_MIB=${BIG_MIB:-1024}
PART_MIB=${PART_MIB:-16}
PART_JOBS=${PART_JOBS:-4}
ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
COFFER_LOG_LEVEL=warn

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-multipart.XXXXXX")
PIDS=()
cleanup() {
  local p
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$SCRATCH"
}
on_exit cleanup

s3() {
  curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
export -f s3
export ACCESS_KEY SECRET_KEY REGION

mkdir -p "$SCRATCH/parts"
log "writing $BIG_MIB MiB from /dev/urandom in $PART_MIB MiB parts"
head -c "$((BIG_MIB << 20))" /dev/urandom | split -b "${PART_MIB}M" -a 4 -d - "$SCRATCH/parts/p"
NPARTS=$(find "$SCRATCH/parts" -type f -name 'p*' | wc -l)

read -r PORT_A PORT_B < <(free_ports)
start() { # BIN PORT NAME
  mkdir -p "$SCRATCH/$3"
  COFFER_ROOT_USER=$ACCESS_KEY COFFER_ROOT_PASSWORD=$SECRET_KEY \
    "$1" server --address "127.0.0.1:$2" --data "$SCRATCH/$3" --log-level "$COFFER_LOG_LEVEL" >"$SCRATCH/$3.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$2/health/ready" 2>/dev/null && break
    sleep 0.1
  done
  s3 -X PUT "http://127.0.0.1:$2/bucket" -o /dev/null || die "$3: CreateBucket failed"
}
start "$COFFER_BIN" "$PORT_A" coffer
start "$REF_BIN" "$PORT_B" reference

# upload PORT KEY: MB/s of the parts' transfer; the upload is aborted afterwards
upload() {
  local base="http://127.0.0.1:$1/bucket/$2" id t0 t1
  id=$(s3 -X POST "$base?uploads=" | sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p')
  [[ $id =~ ^[A-Za-z0-9._~-]+$ ]] || die "CreateMultipartUpload on port $1 gave no UploadId"
  t0=$(now)
  # partNumber before uploadId: the sorted order of the canonical query, whether curl sorts or not
  find "$SCRATCH/parts" -type f -name 'p*' | sort | awk '{ print NR, $0 }' |
    xargs -P "$PART_JOBS" -n 2 bash -c 's3 -T "$1" "'"$base"'?partNumber=$0&uploadId='"$id"'" -o /dev/null' ||
    die "UploadPart on port $1 failed"
  t1=$(now)
  s3 -X DELETE "$base?uploadId=$id" -o /dev/null || die "AbortMultipartUpload on port $1 failed"
  calc "$BIG_MIB * 1.048576 / ($t1 - $t0)"
}

a=() b=()
for i in $(seq "$RUNS"); do
  a+=("$(upload "$PORT_A" "k$i")")
  b+=("$(upload "$PORT_B" "k$i")")
  log "run $i/$RUNS: coffer ${a[-1]} MB/s, reference ${b[-1]} MB/s"
done
read -r am alo ahi < <(stats "${a[@]}")
read -r bm blo bhi < <(stats "${b[@]}")
echo "multipart PUT ($NPARTS × $PART_MIB MiB, $PART_JOBS at a time), MB/s: coffer $(fmt "$am" 0) ($(fmt "$alo" 0)–$(fmt "$ahi" 0)), reference $(fmt "$bm" 0) ($(fmt "$blo" 0)–$(fmt "$bhi" 0)), ratio $(fmt "$(calc "$am / $bm")" 2)"
echo "raw coffer: ${a[*]}"
echo "raw reference: ${b[*]}"
