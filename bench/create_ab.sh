#!/usr/bin/env bash
# Two builds' `coffer snapshot create` alternated run by run, so that a noisy host slows both
# alike: the way to tell a small change in create speed from the host's swings.
# Usage: bench/create_ab.sh NEW/coffer OLD/coffer CORPUS_DIR
#
# Environment: RUNS=6 rounds; WORK=DIR scratch (default a new directory under /var/tmp).
# Each round, for each build: a zstd-3 create into a directory repository (the client alone),
# then one into a bucket of that build's own server on loopback (client and server). Prints
# one line per create and the median wall and user CPU seconds of each build and target.
[ $# -eq 3 ] || { echo "usage: bench/create_ab.sh NEW/coffer OLD/coffer CORPUS_DIR" >&2; exit 2; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

RUNS=${RUNS:-6}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
declare -A bin=([new]=$(realpath "$1") [old]=$(realpath "$2"))
corpus=$3
[ -d "$corpus" ] || die "corpus '$corpus' is not a directory"
for b in new old; do [ -x "${bin[$b]}" ] || die "'${bin[$b]}' is not an executable"; done
command -v aws >/dev/null || die "aws (awscli) is needed to create the buckets"

WORK=${WORK:-$(mktemp -d /var/tmp/create-ab.XXXXXX)}
mkdir -p "$WORK"
export COFFER_ROOT_USER=bench COFFER_ROOT_PASSWORD=benchsecret0123456789
export COFFER_ACCESS_KEY=$COFFER_ROOT_USER COFFER_SECRET_KEY=$COFFER_ROOT_PASSWORD
declare -A port pid
read -r port[new] port[old] < <(free_ports)
cleanup() {
  for b in new old; do [ -z "${pid[$b]-}" ] || kill "${pid[$b]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for b in new old; do
  mkdir -p "$WORK/data-$b"
  "${bin[$b]}" server --address "127.0.0.1:${port[$b]}" --data "$WORK/data-$b" >"$WORK/server-$b.log" 2>&1 &
  pid[$b]=$!
done
for b in new old; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:${port[$b]}/health/ready" >/dev/null && break; sleep 0.1; done
  AWS_ACCESS_KEY_ID=$COFFER_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$COFFER_SECRET_KEY AWS_DEFAULT_REGION=us-east-1 \
    aws --endpoint-url "http://127.0.0.1:${port[$b]}" s3 mb s3://bench >/dev/null || die "cannot create a bucket on the $b server"
done

declare -A walls users
timed() { # NAME CMD...: runs CMD, records wall and user seconds under NAME
  local name=$1; shift
  sync
  /usr/bin/time -f "%e %U" -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" ||
    { cat "$WORK/err" >&2; die "$name failed"; }
  read -r wall user <"$WORK/time"
  walls[$name]+="$wall "; users[$name]+="$user "
  echo "$name: wall $wall s, user $user s"
}
for i in $(seq "$RUNS"); do
  for b in new old; do
    rm -rf "$WORK/dir-$b"
    timed "$b dir" "${bin[$b]}" snapshot create "$corpus" "$WORK/dir-$b/ns" --compress zstd --level 3
    COFFER_ENDPOINT=http://127.0.0.1:${port[$b]} \
      timed "$b s3" "${bin[$b]}" snapshot create "$corpus" "s3://bench/r$i/ns" --compress zstd --level 3
  done
done
echo
for name in "new dir" "old dir" "new s3" "old s3"; do
  # shellcheck disable=SC2086
  echo "$name: median wall $(median ${walls[$name]}) s, user $(median ${users[$name]}) s"
done
