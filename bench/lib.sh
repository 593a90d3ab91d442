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
