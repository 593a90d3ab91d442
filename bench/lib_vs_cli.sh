#!/usr/bin/env bash
# Benchmark of libcoffer against the command line: a snapshot and a bootstrap of one state file
# (1 GiB by default) through the library, and the same through `coffer snapshot create` and
# `restore`, on one local `coffer server`, interleaved in every round.
# Usage: bench/lib_vs_cli.sh build/coffer   (libcoffer.so is taken from beside build/coffer)
#
# Environment:
#   RUNS=5             rounds; median, min and max of each command, and of the per-round ratios
#   CORPUS_SIZE=1G     the state: bench/make-corpus.sh's corpus of that size as one tar file
#   CODECS="gzip zstd" compressions measured (gzip is the snapshotter's default)
#   JOBS=2             compression threads of every create (the snapshotter's default of 2)
#   WORK=DIR           scratch directory (must not exist or be empty; default a new directory
#                      under /var/tmp, else /tmp); removed at exit
#   RESTORE_DIR=DIR    where the restores write; default a new directory in /dev/shm when it
#                      has room (a tmpfs: fsync costs nothing there, so the figures do not carry
#                      the write-back of this shared disk, which swings from run to run), else WORK
#   COFFER_LOG_LEVEL=warn   --log-level of the server
#   PREFAULT=2G        memory touched and freed before each timed command (see bench/lib.sh)
#   CC=cc              compiles bench/lib_snapshot.c against include/ and the libcoffer.so
#
# Every round, for each codec, times (sync untimed before each command):
#   create:  L1 CLI L2, where the two library runs are
#            snapshotter  coffer_snapshotter: write_state copies the state file, the snapshot is
#                         triggered once; the program ends when it is stored (bench/lib_snapshot.c)
#            create-fd    coffer_create_fd of the state file
#            and L1/L2 swap every round; CLI = coffer snapshot create - REPO < STATE
#            (--expected-size as the library gets it, --jobs JOBS)
#   restore: bootstrap and CLI, in turn first: coffer_bootstrap of the snapshotter's snapshot to
#            DIR/state (it fsyncs), and coffer snapshot restore REPO@latest - > FILE of the same
#            snapshot followed by `sync FILE`, so both end with the bytes durable; both in
#            RESTORE_DIR
# The restored bytes of both are checked against the state (SHA-256) in the first round.
# A ratio is library seconds / CLI seconds of the same round, of wall time and of CPU time
# (user + system of the process): 1.0 = the same speed. On a loaded machine the CPU ratio is
# the steadier of the two.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
CORPUS_SIZE=${CORPUS_SIZE:-1G}
CODECS=${CODECS:-"gzip zstd"}
JOBS=${JOBS:-2}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
CC=${CC:-cc}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, not '$JOBS'"
for c in $CODECS; do [[ $c =~ ^(gzip|zstd|lz4|none)$ ]] || die "CODECS holds '$c', not gzip, zstd, lz4 or none"; done
PREFAULT_BYTES=$(numfmt --from=iec "${PREFAULT:-2G}") || die "PREFAULT must be a size such as 2G, not '${PREFAULT:-}'"

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
BUCKET=bench

for t in "$CC" curl python3 tar sha256sum awk sync numfmt; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
TIME=/usr/bin/time # GNU time: CPU seconds of the command
"$TIME" -f '%e' -o /dev/null true 2>/dev/null || die "$TIME (GNU time, -f) not found (scripts/install-deps.sh installs it)"
LIB_DIR=$(dirname "$COFFER_BIN")
SRC_DIR=$(dirname "$BENCH_DIR")
[ -e "$LIB_DIR/libcoffer.so" ] || die "no libcoffer.so beside $COFFER_BIN (build it: make build)"

# ------------------------------------------------------------------------ scratch, cleanup
make_work coffer-libbench
COFFER_PID=""
WORK_LOGS=("$WORK/coffer.log" "$WORK/cmd.err")
on_exit work_cleanup

# ----------------------------------------------------------------- the program, the state
LIB_SNAPSHOT=$WORK/lib_snapshot
"$CC" -std=c11 -O2 -Wall -Wextra -Werror -I"$SRC_DIR/include" "$BENCH_DIR/lib_snapshot.c" -o "$LIB_SNAPSHOT" \
  -L"$LIB_DIR" -Wl,-rpath,"$LIB_DIR" -lcoffer || die "cannot build bench/lib_snapshot.c"

log "generating the state: bench/make-corpus.sh CORPUS_SIZE=$CORPUS_SIZE, as one tar file"
CORPUS_SIZE=$CORPUS_SIZE "$BENCH_DIR/make-corpus.sh" "$WORK/corpus" >"$WORK/corpus.out" ||
  { cat "$WORK/corpus.out" >&2; die "bench/make-corpus.sh failed"; }
STATE=$WORK/state.tar
tar -cf "$STATE" --sort=name --owner=0 --group=0 --numeric-owner -C "$WORK/corpus" .
rm -rf "$WORK/corpus" "$WORK/corpus.manifest"
STATE_BYTES=$(stat -c %s "$STATE")
STATE_SHA=$(sha256sum "$STATE" | awk '{ print $1 }')
log "state: $STATE_BYTES bytes, SHA-256 ${STATE_SHA:0:16}…"

# ------------------------------------------------------------------------------ start-up
read -r COFFER_PORT _ < <(free_ports)
ADDR=127.0.0.1:$COFFER_PORT
ENDPOINT=http://$ADDR
mkdir -p "$WORK/data" "$WORK/tmp"
if [ -z "${RESTORE_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
  [ "$(df -B1 --output=avail /dev/shm | tail -n 1)" -gt $((STATE_BYTES * 5 / 2)) ]; then
  RESTORE_DIR=$(mktemp -d /dev/shm/coffer-libbench.XXXXXX)
  RESTORE_TMP=$RESTORE_DIR
fi
RESTORE_DIR=${RESTORE_DIR:-$WORK/restore}
mkdir -p "$RESTORE_DIR"
log "scratch $WORK; coffer server on $ADDR; RUNS=$RUNS, CODECS=$CODECS, JOBS=$JOBS"
start_coffer "$ADDR" "$WORK/data" "$WORK/coffer.log"
make_bucket "$BUCKET"
# Both sides read the S3 settings from the environment (the program opens with use_environment).
export COFFER_ENDPOINT=$ENDPOINT COFFER_ACCESS_KEY=$ACCESS_KEY COFFER_SECRET_KEY=$SECRET_KEY COFFER_REGION=$REGION
export TMPDIR=$WORK/tmp # where the snapshotter stages the state

# ----------------------------------------------------------------------------- measuring
# check FILE NAME: FILE holds the state, byte for byte
check() {
  local sum
  sum=$(sha256sum "$1" | awk '{ print $1 }')
  [ "$sum" = "$STATE_SHA" ] || die "$2 restored bytes that differ from the state (SHA-256 $sum)"
  log "  $2: restored bytes checked (SHA-256 equal to the state's)"
}
ratio() { local -n a=$1 b=$2; calc "${a[-1]} / ${b[-1]}"; } # of the last round: ratio W_lib W_cli

NAMES=()
for c in $CODECS; do NAMES+=("snapshotter_$c" "create_fd_$c" "cli_create_$c" "bootstrap_$c" "cli_restore_$c"); done
for n in "${NAMES[@]}"; do declare -a "W_$n=()" "C_$n=()" "V_$n=()"; done
for c in $CODECS; do
  for n in snapshotter create_fd bootstrap; do declare -a "Q_${n}_$c=()" "P_${n}_$c=()"; done # wall, CPU
  declare -a "STORED_$c=()"
done
# ratios LIB CLI: appends the last round's wall and CPU ratios of LIB to CLI to Q_LIB and P_LIB
ratios() {
  local -n q=Q_$1 p=P_$1
  q+=("$(ratio "W_$1" "W_$2")")
  p+=("$(ratio "C_$1" "C_$2")")
}

# ------------------------------------------------------------------------------- rounds
for i in $(seq "$RUNS"); do
  log "round $i/$RUNS"
  cat "$STATE" >/dev/null # every command reads the state from the page cache
  for c in $CODECS; do
    repo=s3://$BUCKET/lib-$c/bench # {prefix}/{topic}; the snapshotter's partition is the round
    snap_lib() { timed_record "snapshotter_$c" "$LIB_SNAPSHOT" snapshotter "$repo" "$i" "$STATE" "$c" "$JOBS"; }
    fd_lib() { timed_record "create_fd_$c" "$LIB_SNAPSHOT" create-fd "s3://$BUCKET/fd-$c" "r$i" "$STATE" "$c" "$JOBS"; }
    if [ $((i % 2)) -eq 1 ]; then snap_lib; else fd_lib; fi
    timed_record "cli_create_$c" bash -c '"$1" snapshot create - "$2" --compress "$3" --jobs "$4" --expected-size "$5" \
      --no-progress <"$6"' _ "$COFFER_BIN" "s3://$BUCKET/cli-$c/r$i" "$c" "$JOBS" "$STATE_BYTES" "$STATE"
    if [ $((i % 2)) -eq 1 ]; then fd_lib; else snap_lib; fi
    ratios "snapshotter_$c" "cli_create_$c"
    ratios "create_fd_$c" "cli_create_$c"
    declare -n stored=STORED_$c
    stored+=("$("$COFFER_BIN" snapshot ls "$repo/$i" --json |
      python3 -c 'import json, sys; print(json.loads(sys.stdin.readlines()[-1])["size"])')")

    boot() {
      rm -rf "$RESTORE_DIR/boot"
      mkdir "$RESTORE_DIR/boot"
      timed_record "bootstrap_$c" "$LIB_SNAPSHOT" bootstrap "$repo" "$i" "$RESTORE_DIR/boot"
      [ "$i" -gt 1 ] || check "$RESTORE_DIR/boot/state" "coffer_bootstrap ($c)"
      rm -rf "$RESTORE_DIR/boot"
    }
    cli() {
      timed_record "cli_restore_$c" bash -c '"$1" snapshot restore "$2" - --no-progress >"$3" && sync "$3"' _ \
        "$COFFER_BIN" "$repo/$i@latest" "$RESTORE_DIR/cli.state"
      [ "$i" -gt 1 ] || check "$RESTORE_DIR/cli.state" "coffer snapshot restore ($c)"
      rm -f "$RESTORE_DIR/cli.state"
    }
    if [ $((i % 2)) -eq 1 ]; then boot; cli; else cli; boot; fi
    ratios "bootstrap_$c" "cli_restore_$c"
    declare -n q1=Q_snapshotter_$c q2=Q_create_fd_$c q3=Q_bootstrap_$c
    log "  wall ratios lib/CLI ($c): snapshotter $(fmt "${q1[-1]}" 3), create-fd $(fmt "${q2[-1]}" 3), bootstrap $(fmt "${q3[-1]}" 3)"
    unset -n q1 q2 q3 stored

    # Untimed: the round's snapshots go, so that the disk holds at most one round's.
    for ref in "$repo/$i" "s3://$BUCKET/fd-$c/r$i" "s3://$BUCKET/cli-$c/r$i"; do
      for id in $("$COFFER_BIN" snapshot ls "$ref" --json | python3 -c 'import json, sys
for line in sys.stdin: print(json.loads(line)["id"])'); do
        "$COFFER_BIN" snapshot rm "$ref@$id" >/dev/null
      done
    done
  done
done

alive
errors=$(grep -c 'level=error' "$WORK/coffer.log" || true)
[ "$errors" -eq 0 ] || { grep 'level=error' "$WORK/coffer.log" | head -5 >&2; die "coffer server logged $errors errors"; }

# ------------------------------------------------------------------------------- report
mmm() { # "median (min–max)" of array $1 with $2 decimals
  local -n a=$1
  local m lo hi
  read -r m lo hi <<<"$(stats "${a[@]}")"
  echo "$(fmt "$m" "$2") ($(fmt "$lo" "$2")–$(fmt "$hi" "$2"))"
}
med() { local -n a=$1; fmt "$(median "${a[@]}")" "$2"; }
row() { # NAME LABEL [lib]: a library row shows its ratios to the CLI
  echo "| $2 | $(mmm "W_$1" 2) | $(mmm "C_$1" 2) | $(med "V_$1" 2) | $([ -n "${3:-}" ] && mmm "Q_$1" 3) | $([ -n "${3:-}" ] && mmm "P_$1" 3) |"
}

cat <<EOF

## libcoffer against the command line — $(date -u '+%Y-%m-%d %H:%M') UTC — $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)

RUNS=$RUNS; state: $STATE_BYTES bytes ($(fmt "$(calc "$STATE_BYTES / 1073741824")" 2) GiB), bench/make-corpus.sh CORPUS_SIZE=$CORPUS_SIZE as one tar ($(awk '/^fingerprint/ { print "fingerprint " substr($NF, 1, 16) }' "$WORK/corpus.out")); JOBS=$JOBS; scratch on $(df --output=fstype "$WORK" | tail -n 1).
Seconds are median (min–max) over the rounds; CPU = user + system of the command, server CPU = the coffer server's over the same interval (median); ratios = library s / CLI s of the same round, median (min–max) over the rounds. Restores into $(stat -f -c %T "$RESTORE_DIR").

| command | wall s | CPU s | server CPU s | wall ratio lib/CLI | CPU ratio lib/CLI |
|---|---|---|---|---|---|
EOF
for c in $CODECS; do
  row "cli_create_$c" "CLI: coffer snapshot create - ($c)"
  row "snapshotter_$c" "lib: coffer_snapshotter, one snapshot ($c)" lib
  row "create_fd_$c" "lib: coffer_create_fd ($c)" lib
  row "cli_restore_$c" "CLI: coffer snapshot restore - > file, sync ($c)"
  row "bootstrap_$c" "lib: coffer_bootstrap to a directory ($c)" lib
done

{
  echo
  echo "raw numbers (one per round, in order):"
  for n in "${NAMES[@]}"; do
    declare -n W_=W_$n C_=C_$n V_=V_$n
    printf '  %-20s wall s: %s; CPU s: %s; server CPU s: %s\n' "$n" "${W_[*]}" "${C_[*]}" "${V_[*]}"
    unset -n W_ C_ V_
  done
  for c in $CODECS; do
    declare -n s=STORED_$c
    echo "  stored bytes ($c, snapshotter's snapshot): ${s[*]}"
    unset -n s
  done
} >&2
