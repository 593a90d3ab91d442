#!/usr/bin/env bash
# Benchmark of `coffer mirror` against `rclone sync` and `aws s3 sync`, all three against one
# local `coffer server`, in the same rounds on the same corpus and machine.
# Usage: bench/mirror.sh build/coffer        (make bench runs it after bench/lib_vs_cli.sh)
#
# Environment:
#   RUNS=3             rounds; median, min and max of every command are reported
#   SMALL_FILES=10000  small files, in 100 directories, each starting with a JPEG header and
#                      otherwise random bytes (incompressible, as images are)
#   SMALL_SIZE=1K-64K  their size range; sizes are log-uniform in it (deterministic, seed 14)
#   LARGE_FILES=4      large files of random bytes
#   LARGE_SIZE=256M    the size of each
#   JOBS=16            the parallelism every tool gets in the "same parallelism" row:
#                      coffer --jobs JOBS; rclone --transfers JOBS --checkers JOBS;
#                      aws s3 max_concurrent_requests = JOBS
#   TOOLS="coffer rclone aws"   which tools are measured (coffer always is)
#   WORK=DIR           scratch directory (must not exist or be empty; default a new directory
#                      under /var/tmp, else /tmp); removed at exit
#   DEST_DIR=DIR       where the downloads write; default a new directory in /dev/shm when it
#                      has room for three copies of the corpus (a tmpfs: the figures then measure
#                      the tools, not the state of this shared disk's inode allocator), else WORK
#   SETTLE_SECONDS=10  pause at the end of each round
#   PREFAULT=2G        memory touched and freed before each timed command (see bench/lib.sh)
#   COFFER_LOG_LEVEL=warn   --log-level of the server
#
# Each round times, for each corpus (small, large) and each parallelism (the tools' defaults,
# then JOBS for all), the three tools in turn (the order rotates from round to round):
#   up        directory -> s3://bench/rN-TOOL-PAR-CORPUS (a fresh prefix: everything is copied)
#   up-again  the same again, nothing changed (incremental: nothing to copy)
#   down      that prefix -> a directory that does not exist yet (everything is copied)
#   down-again the same again, nothing changed
# Each tool downloads what it uploaded itself; a download is set aside (bench/lib.sh retire)
# after its no-change re-run, the objects stay until the end (no deletion between rounds). coffer mirror ends a download with a syncfs of
# the destination's filesystem; rclone and aws do not sync, so their downloads are timed with
# `sync -f DIR` after them, so that every download ends with its files durable. A `sync`
# (untimed) comes before every command. In round 1 every downloaded tree is checked against the
# corpus (file count and SHA-256 of every file): a round trip through the tool's own upload and
# download, so it checks both. Any failed command aborts the run.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
SMALL_FILES=${SMALL_FILES:-10000}
SMALL_SIZE=${SMALL_SIZE:-1K-64K}
LARGE_FILES=${LARGE_FILES:-4}
LARGE_SIZE=${LARGE_SIZE:-256M}
JOBS=${JOBS:-16}
TOOLS=${TOOLS:-"coffer rclone aws"}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-warn}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, not '$JOBS'"
[[ $SMALL_FILES =~ ^[0-9]+$ && $LARGE_FILES =~ ^[0-9]+$ ]] || die "SMALL_FILES and LARGE_FILES must be counts"
[[ $SMALL_SIZE =~ ^([0-9]+[KMG]?)-([0-9]+[KMG]?)$ ]] || die "SMALL_SIZE must be a range such as 1K-64K, not '$SMALL_SIZE'"
SMALL_MIN=$(numfmt --from=iec "${BASH_REMATCH[1]}") SMALL_MAX=$(numfmt --from=iec "${BASH_REMATCH[2]}")
[ "$SMALL_MIN" -ge 16 ] && [ "$SMALL_MIN" -le "$SMALL_MAX" ] || die "SMALL_SIZE: want 16 <= min <= max"
LARGE_BYTES=$(numfmt --from=iec "$LARGE_SIZE") || die "LARGE_SIZE must be a size such as 256M"
PREFAULT_BYTES=$(numfmt --from=iec "${PREFAULT:-2G}") || die "PREFAULT must be a size such as 2G, not '${PREFAULT:-}'"
read -ra TOOL_LIST <<<"$TOOLS"
[[ " $TOOLS " == *" coffer "* ]] || die "TOOLS must include coffer"
for t in "${TOOL_LIST[@]}"; do [[ $t =~ ^(coffer|rclone|aws)$ ]] || die "TOOLS holds '$t', not coffer, rclone or aws"; done

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
BUCKET=bench

for t in curl python3 sha256sum find sort xargs awk numfmt sync "${TOOL_LIST[@]}"; do
  [ "$t" = coffer ] || command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
TIME=/usr/bin/time # GNU time: CPU seconds of the command
"$TIME" -f '%e' -o /dev/null true 2>/dev/null || die "$TIME (GNU time, -f) not found (scripts/install-deps.sh installs it)"

# ------------------------------------------------------------------------ scratch, cleanup
make_work coffer-mirrorbench
COFFER_PID=""
WORK_LOGS=("$WORK/coffer.log" "$WORK/cmd.err")
on_exit work_cleanup

# ------------------------------------------------------------------------------- corpus
log "generating the corpus in $WORK/corpus: $SMALL_FILES files of $SMALL_SIZE, $LARGE_FILES of $LARGE_SIZE"
mkdir -p "$WORK/corpus/small" "$WORK/corpus/large"
python3 - "$WORK/corpus/small" "$SMALL_FILES" "$SMALL_MIN" "$SMALL_MAX" <<'EOF'
import math, os, random, sys
root, count, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sizes = random.Random(14)
# a JPEG's start of image and JFIF header: what a content-type detector sees of a photo
head = bytes.fromhex("ffd8ffe000104a46494600010101004800480000")
for i in range(count):
    d = os.path.join(root, "d%02d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    n = int(math.exp(sizes.uniform(math.log(lo), math.log(hi + 1))))
    n = min(max(n, lo), hi)
    with open(os.path.join(d, "img-%05d.jpg" % i), "wb") as f:
        f.write(head[:n] + os.urandom(max(n - len(head), 0)))
EOF
for i in $(seq "$LARGE_FILES"); do
  head -c "$LARGE_BYTES" /dev/urandom >"$WORK/corpus/large/video-$i.bin"
done
declare -A FILES BYTES MB
for c in small large; do
  read -r BYTES[$c] FILES[$c] < <(find "$WORK/corpus/$c" -type f -printf '%s\n' |
    awk '{ s += $1; n++ } END { printf "%.0f %.0f\n", s, n }')
  MB[$c]=$(calc "${BYTES[$c]} / 1000000")
  (cd "$WORK/corpus/$c" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/expected-$c.sha256"
done
CORPORA=()
[ "${FILES[small]}" -eq 0 ] || CORPORA+=(small)
[ "${FILES[large]}" -eq 0 ] || CORPORA+=(large)
[ ${#CORPORA[@]} -gt 0 ] || die "the corpus is empty"
log "corpus: small ${FILES[small]} files, ${BYTES[small]} bytes; large ${FILES[large]} files, ${BYTES[large]} bytes"

# ------------------------------------------------------------------------------ start-up
read -r COFFER_PORT _ < <(free_ports)
ADDR=127.0.0.1:$COFFER_PORT
ENDPOINT=http://$ADDR
mkdir -p "$WORK/data"
if [ -z "${DEST_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
  [ "$(df -B1 --output=avail /dev/shm | tail -n 1)" -gt $(((BYTES[small] + BYTES[large]) * 4)) ]; then
  DEST_DIR=$(mktemp -d /dev/shm/coffer-mirrorbench.XXXXXX)
  RESTORE_TMP=$DEST_DIR # removed at exit by work_cleanup
fi
DEST_DIR=${DEST_DIR:-$WORK/dest}
mkdir -p "$DEST_DIR"
DEST_DIR=$(realpath "$DEST_DIR")
DEST_FS=$(stat -f -c %T "$DEST_DIR")
log "scratch $WORK ($(df --output=fstype "$WORK" | tail -n 1)); coffer server on $ADDR; RUNS=$RUNS, JOBS=$JOBS"
start_coffer "$ADDR" "$WORK/data" "$WORK/coffer.log"
make_bucket "$BUCKET"

# Credentials only in the environment, never on a command line nor in a file.
export COFFER_ENDPOINT=$ENDPOINT COFFER_ACCESS_KEY=$ACCESS_KEY COFFER_SECRET_KEY=$SECRET_KEY COFFER_REGION=$REGION
export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_DEFAULT_REGION=$REGION
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""
# (AWS_CA_BUNDLE, when set, makes rclone's S3 client refuse its own transport; the endpoint is
# plain http anyway)
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_CA_BUNDLE
# rclone's remote "bench" from the environment; its config file is an empty one of ours, so
# that no user's rclone.conf takes part and rclone does not look for one.
export RCLONE_CONFIG=$WORK/rclone.conf RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
  RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_REGION=$REGION \
  RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$ACCESS_KEY RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$SECRET_KEY
: >"$RCLONE_CONFIG"
# aws s3's parallelism comes from its config file: an empty one for its defaults (10 requests),
# one with max_concurrent_requests = JOBS for the other row.
: >"$WORK/aws-default.conf"
printf '[default]\ns3 =\n  max_concurrent_requests = %s\n' "$JOBS" >"$WORK/aws-jobs.conf"

# ----------------------------------------------------------------------------- measuring
# command_of TOOL PAR SRC DST: the command line of TOOL copying SRC to DST (s3://KEY or a path) with
# parallelism PAR (default or jobs), into the array CMD
command_of() {
  local tool=$1 par=$2 src=$3 dst=$4
  case $tool in
    coffer)
      CMD=("$COFFER_BIN" mirror --no-progress)
      [ "$par" = default ] || CMD+=(--jobs "$JOBS")
      CMD+=("$src" "$dst") ;;
    rclone)
      CMD=(rclone sync)
      [ "$par" = default ] || CMD+=(--transfers "$JOBS" --checkers "$JOBS")
      CMD+=("${src/#s3:\/\//bench:}" "${dst/#s3:\/\//bench:}") ;;
    aws)
      CMD=(env "AWS_CONFIG_FILE=$WORK/aws-$par.conf" aws --endpoint-url "$ENDPOINT" s3 sync --only-show-errors "$src" "$dst") ;;
  esac
}
OPS=(up up_again down down_again)
PARS=(default jobs)
for c in "${CORPORA[@]}"; do for p in "${PARS[@]}"; do for o in "${OPS[@]}"; do for t in "${TOOL_LIST[@]}"; do
  declare -a "W_${c}_${p}_${o}_$t=()" "C_${c}_${p}_${o}_$t=()" "V_${c}_${p}_${o}_$t=()"
done; done; done; done
LOADS=()

# ------------------------------------------------------------------------------- rounds
T_START=$(date -u '+%H:%M')
for i in $(seq "$RUNS"); do
  LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
  log "round $i/$RUNS (load average ${LOADS[-1]})"
  # this round's order: the tools rotated by the round, so none is always first
  order=("${TOOL_LIST[@]:$(((i - 1) % ${#TOOL_LIST[@]}))}" "${TOOL_LIST[@]:0:$(((i - 1) % ${#TOOL_LIST[@]}))}")
  for c in "${CORPORA[@]}"; do
    find "$WORK/corpus/$c" -type f -exec cat {} + >/dev/null # uploads read it from the page cache
    for p in "${PARS[@]}"; do
      for o in "${OPS[@]}"; do
        for t in "${order[@]}"; do
          prefix=s3://$BUCKET/r$i-$t-$p-$c dir=$DEST_DIR/r$i-$t-$p-$c
          case $o in
            up*) command_of "$t" "$p" "$WORK/corpus/$c" "$prefix"
                 timed_record "${c}_${p}_${o}_$t" "${CMD[@]}" ;;
            down*) command_of "$t" "$p" "$prefix" "$dir"
                   if [ "$t" = coffer ]; then timed_record "${c}_${p}_${o}_$t" "${CMD[@]}"
                   else timed_record "${c}_${p}_${o}_$t" bash -c '"${@:2}" && sync -f "$1"' _ "$dir" "${CMD[@]}"; fi ;;
          esac
          if [ "$o" = down_again ]; then retire "$dir" "$(basename "$dir")"; fi
          if [ "$o" = down ] && [ "$i" -eq 1 ]; then same_tree "$dir" "$WORK/expected-$c.sha256" "${FILES[$c]}" "$t $p ($c), round trip"; fi
        done
      done
    done
  done
  sync
  sleep "${SETTLE_SECONDS:-10}"
done
LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")

alive
errors=$(grep -c 'level=error' "$WORK/coffer.log" || true)
[ "$errors" -eq 0 ] || { grep 'level=error' "$WORK/coffer.log" | head -5 >&2; die "coffer server logged $errors errors"; }

# ------------------------------------------------------------------------------- report
mmm() { # "median (min–max)" of array $1 with 2 decimals
  local -n a=$1
  local m lo hi
  read -r m lo hi <<<"$(stats "${a[@]}")"
  if [ "${#a[@]}" -eq 1 ]; then fmt "$m" 2; else echo "$(fmt "$m" 2) ($(fmt "$lo" 2)–$(fmt "$hi" 2))"; fi
}
med() { local -n a=$1; median "${a[@]}"; }
# speedup KEY TOOL: the other tool's median seconds / coffer's (2.0 = coffer takes half the time)
speedup() { calc "$(med "W_${1}_$2") / $(med "W_${1}_coffer")"; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v >= t) ? "met" : "**missed**" }'; }
has() { [[ " $TOOLS " == *" $1 "* ]]; }
op_name() {
  case $1 in
    up) echo "directory → bucket" ;;
    up_again) echo "directory → bucket, nothing changed" ;;
    down) echo "bucket → directory" ;;
    down_again) echo "bucket → directory, nothing changed" ;;
  esac
}

cat <<EOF

## coffer mirror against rclone sync and aws s3 sync — $(date -u '+%Y-%m-%d') $T_START–$(date -u '+%H:%M') UTC — $(nproc) cores, load average by round $(printf '%s ' "${LOADS[@]}" | sed 's/ $//')

RUNS=$RUNS; small: ${FILES[small]} files, ${BYTES[small]} bytes ($SMALL_SIZE, log-uniform); large: ${FILES[large]} files, ${BYTES[large]} bytes; JOBS=$JOBS; scratch and the server's data on $(df --output=fstype "$WORK" | tail -n 1), downloads into $DEST_FS.
coffer $(git -C "$BENCH_DIR" rev-parse --short HEAD 2>/dev/null || echo '?'); $(has rclone && rclone version | head -n 1); $(has aws && aws --version 2>&1 | awk '{ print $1 }').
Wall seconds, median (min–max) over the rounds; speed-up = the other tool's median / coffer's (2.00 = coffer in half the time).
Defaults: coffer --jobs 8, rclone --transfers 4 --checkers 8, aws max_concurrent_requests 10.

| corpus | parallelism | case | coffer s | rclone s | aws s | vs rclone | vs aws |
|---|---|---|---|---|---|---|---|
EOF
for c in "${CORPORA[@]}"; do
  for p in "${PARS[@]}"; do
    for o in "${OPS[@]}"; do
      k=${c}_${p}_$o
      vr= va= sr= sa=
      if has rclone; then sr=$(mmm "W_${k}_rclone"); vr=$(fmt "$(speedup "$k" rclone)" 2)×; fi
      if has aws; then sa=$(mmm "W_${k}_aws"); va=$(fmt "$(speedup "$k" aws)" 2)×; fi
      echo "| $c | $([ "$p" = default ] && echo defaults || echo "$JOBS") | $(op_name "$o") | $(mmm "W_${k}_coffer") | $sr | $sa | $vr | $va |"
    done
  done
done
if has rclone; then
  echo
  echo "Goals (issue 14), judged on the defaults row: ≥ 2× rclone on small files, ≥ 1× on large."
  for c in "${CORPORA[@]}"; do
    goal=2; [ "$c" = small ] || goal=1
    for o in up down; do
      s=$(speedup "${c}_default_$o" rclone)
      echo "- $c, $(op_name "$o"): $(fmt "$s" 2)× rclone (goal ≥ $goal×): $(verdict "$s" "$goal")"
    done
  done
fi

{
  echo
  echo "raw numbers (one per round, in order; wall s / CPU s of the command / server CPU s):"
  for c in "${CORPORA[@]}"; do for p in "${PARS[@]}"; do for o in "${OPS[@]}"; do for t in "${TOOL_LIST[@]}"; do
    k=${c}_${p}_${o}_$t
    declare -n W_=W_$k C_=C_$k V_=V_$k
    printf '  %-28s wall: %s; CPU: %s; server CPU: %s\n' "$k" "${W_[*]}" "${C_[*]}" "${V_[*]}"
    unset -n W_ C_ V_
  done; done; done; done
} >&2
