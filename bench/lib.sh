# bench/lib.sh - what every benchmark script shares: strict mode, argument check, logging,
# statistics and /proc readings. Sourced as the first thing after the script's header comment;
# sets COFFER_BIN and BENCH_DIR from "$1".
set -Eeuo pipefail

die() { echo "bench: ERROR: $*" >&2; exit 1; }
trap 'die "command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

[ $# -eq 1 ] || { echo "usage: $0 path/to/coffer" >&2; exit 2; }
COFFER_BIN=$(realpath "$1")
[ -x "$COFFER_BIN" ] || die "$1 is not an executable (run make build)"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "bench: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
calc() { awk "BEGIN { printf \"%.6g\", $* }"; }
# "median min max" of the arguments
stats() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
  m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
  printf "%.6g %.6g %.6g\n", m, a[1], a[NR] }'; }
median() { stats "$@" | awk '{ print $1 }'; }
fmt() { awk -v x="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, x }'; }
# utime+stime of a process (all its threads, live and exited), in clock ticks
proc_ticks() {
  local stat rest f
  stat=$(<"/proc/$1/stat") || die "process $1 is gone"
  rest=${stat##*) }
  read -ra f <<<"$rest"
  echo $((f[11] + f[12]))
}
alive() { kill -0 "$COFFER_PID" 2>/dev/null || die "coffer server died (see its log below)"; }
# free_ports: two distinct free loopback ports (both bound at once, so they differ)
free_ports() {
  python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))'
}
# on_exit FUNCTION: runs FUNCTION at exit, and exits on INT and TERM as a shell would
on_exit() {
  trap "$1" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# start_coffer ADDR DATA_DIR LOG: a coffer server with the root credentials ACCESS_KEY /
# SECRET_KEY, in the background (COFFER_PID), returning once it answers /health/ready.
start_coffer() {
  COFFER_ROOT_USER=$ACCESS_KEY COFFER_ROOT_PASSWORD=$SECRET_KEY \
    "$COFFER_BIN" server --address "$1" --data "$2" --log-level "$COFFER_LOG_LEVEL" >"$3" 2>&1 &
  COFFER_PID=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://$1/health/ready" 2>/dev/null && return 0
    alive
    sleep 0.1
  done
  die "coffer server on $1 is not ready after 10 s"
}

# stop_coffer: ends the server start_coffer started, if it still runs (for cleanup traps).
stop_coffer() {
  if [ -n "${COFFER_PID:-}" ] && kill -0 "$COFFER_PID" 2>/dev/null; then
    kill -TERM "$COFFER_PID"
    wait "$COFFER_PID" 2>/dev/null
  fi
  return 0
}

# tail_logs FILE...: the last lines of each FILE that is not empty, after a failed run.
tail_logs() {
  local log
  for log in "$@"; do
    if [ -s "$log" ]; then
      echo "--- last lines of $(basename "$log"):" >&2
      tail -n 15 "$log" >&2
    fi
  done
}

# make_bucket NAME: creates bucket NAME on the server at ENDPOINT (REGION, ACCESS_KEY,
# SECRET_KEY; the answer goes to $WORK/s3.out).
make_bucket() {
  local code
  code=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -o "$WORK/s3.out" -w '%{http_code}' -X PUT "$ENDPOINT/$1") || die "curl PUT /$1 failed"
  [[ $code == 2?? ]] || die "coffer answered HTTP $code to PUT /$1: $(head -c 400 "$WORK/s3.out")"
}

# prefault BYTES: touch BYTES of fresh memory and free it again, untimed, just before each
# timed command, so that every command starts with that much memory the host backs. On the VMs
# we measure on, memory the guest has left free for a while is taken back by the host, and
# touching it again cost about 2 s of system time per GiB; which command met such pages, and
# how many, varied from run to run (a restore into tmpfs: 1.91-3.38 s in four runs without
# this, 1.99-2.21 s with it; the reference's 2.17-3.02 s, 2.00-2.41 s). 0: nothing.
prefault() {
  [ "$1" -gt 0 ] || return 0
  python3 -c 'import mmap, sys
mmap.mmap(-1, int(sys.argv[1]), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)' "$1" ||
    die "could not touch $1 bytes of memory (set PREFAULT=0 to skip)"
}

# make_work NAME: sets WORK to the scratch directory: $WORK when set (it must not exist or be
# empty), else a new directory NAME.XXXXXX under /var/tmp (else /tmp).
make_work() {
  if [ -n "${WORK:-}" ]; then
    [ ! -e "$WORK" ] || [ -z "$(ls -A "$WORK")" ] || die "WORK=$WORK is not empty"
    mkdir -p "$WORK"
    WORK=$(realpath "$WORK")
  else
    local parent=/var/tmp
    [ -d "$parent" ] && [ -w "$parent" ] || parent=/tmp
    WORK=$(mktemp -d "$parent/$1.XXXXXX")
  fi
}

# work_cleanup: an exit trap (on_exit work_cleanup) that stops the server, shows the last lines
# of the files in the array WORK_LOGS after a failure, and removes WORK (and RESTORE_TMP, when
# set: a scratch directory elsewhere, such as a tmpfs).
work_cleanup() {
  local rc=$?
  trap - ERR
  set +e
  stop_coffer
  [ $rc -eq 0 ] || tail_logs "${WORK_LOGS[@]}"
  # borg and restic leave read-only files behind; make everything removable first
  chmod -R u+rwX "$WORK" 2>/dev/null
  rm -rf "$WORK"
  [ -z "${RESTORE_TMP:-}" ] || rm -rf "$RESTORE_TMP"
  exit $rc
}

# timed NAME CMD...: sync (so that no earlier write-back overlaps CMD), prefault
# $PREFAULT_BYTES, then runs CMD under GNU time ($TIME), stdout to $WORK/cmd.out, stderr to
# $WORK/cmd.err; a failure ends the script. Sets T_WALL (seconds), T_CPU (user + system seconds
# of CMD and its children), T_RSS (peak KiB of its largest process) and T_SERVER (CPU seconds of
# the server COFFER_PID over the same interval).
timed() {
  local name=$1 t0 t1 c0 c1 u s
  shift
  sync
  prefault "$PREFAULT_BYTES"
  alive
  c0=$(proc_ticks "$COFFER_PID")
  t0=$(now)
  "$TIME" -f '%U %S %M' -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" ||
    die "$name failed: $* (exit $?)"
  t1=$(now)
  c1=$(proc_ticks "$COFFER_PID")
  read -r u s T_RSS <"$WORK/time.out"
  T_WALL=$(calc "$t1 - $t0")
  T_CPU=$(calc "$u + $s")
  T_SERVER=$(calc "($c1 - $c0) / $(getconf CLK_TCK)")
}

# timed_record NAME CMD...: timed, then appends the wall, CPU and server CPU seconds to the
# arrays W_NAME, C_NAME and V_NAME (declared by the caller), and logs them.
timed_record() {
  local name=$1
  shift
  timed "$name" "$@"
  local -n W_=W_$name C_=C_$name V_=V_$name
  W_+=("$T_WALL")
  C_+=("$T_CPU")
  V_+=("$T_SERVER")
  log "  $name: $(fmt "$T_WALL" 2) s, CPU $(fmt "$T_CPU" 2) s, server CPU $(fmt "$T_SERVER" 2) s"
}

# same_tree DIR SUMS COUNT NAME: DIR holds exactly COUNT regular files, whose SHA-256 sums are
# those of SUMS (sha256sum's output, paths relative to DIR); else the run ends, naming NAME.
same_tree() {
  local n
  n=$(find "$1" -type f | wc -l)
  [ "$n" -eq "$3" ] || die "$4: $n files in $1, the corpus has $3"
  (cd "$1" && sha256sum -c --quiet --strict "$2" >"$WORK/check.out" 2>&1) ||
    { head -n 5 "$WORK/check.out" >&2; die "$4: files in $1 differ from the corpus"; }
  log "  $4: tree checked ($n files, SHA-256 of each)"
}

# retire DIR NAME: set a written tree aside without deleting it. On an ext4 without a journal
# (as some VM disks are), creating files shortly (up to 5-10 min) after many were deleted is
# markedly slower (the inode allocator skips and re-reads recently deleted inodes:
# recently_deleted and find_inode_bit in a profile), so a command that followed the deletion of
# the previous one's tree would pay for it. Instead the files are truncated (their blocks
# freed), their inodes kept in WORK/retired/NAME until WORK is removed at exit.
# On tmpfs none of that applies: a retired tree is removed.
retire() {
  if [ "$(stat -f -c %T "$1")" = tmpfs ]; then rm -rf "$1"; return; fi
  find "$1" -type f -size +0 -exec truncate -s 0 {} +
  mkdir -p "$WORK/retired"
  mv "$1" "$WORK/retired/$2"
}
