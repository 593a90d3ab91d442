#!/usr/bin/env bash
# Benchmark of `coffer snapshot create` and `restore` against a local `coffer server`, with
# reference tools measured in the same runs on the same corpus and machine.
# Usage: bench/snapshot.sh build/coffer        (what `make bench` runs after bench/server.sh)
#
# Environment:
#   RUNS=3             timed runs of each command; median, min and max are reported
#   CORPUS_SIZE=2G     size of the corpus bench/make-corpus.sh generates (bytes, or K/M/G suffix)
#   CORPUS=DIR         use this existing directory as the corpus instead (left untouched)
#   WORK=DIR           scratch directory (must not exist or be empty; default a new
#                      directory under /var/tmp, else /tmp); removed at exit
#   COFFER_LOG_LEVEL=info   --log-level of the server
#   PREFAULT=3G        memory touched and freed before each timed command (0: none; see prefault)
#
# Each run times, in this order, with `sync` (untimed) before each command so that no earlier
# write-back overlaps it, and then PREFAULT of memory touched and freed (see prefault):
#   tar -cf - -C CORPUS . | zstd -T0 -3 > ref.tar.zst          compression-bound reference
#   coffer snapshot create CORPUS s3://bench/snaps/zstd-rN --compress zstd --level 3
#   coffer snapshot create CORPUS s3://bench/snaps/lz4-rN --compress lz4
#   restic backup CORPUS              into a fresh restic repository on the same coffer server
#   borg create --compression zstd,3  into a fresh local borg repository (-e none)
#   zstd -d < ref.tar.zst | tar -xf - -C DEST    restore-bound reference, before and after the
#                                                 restores below; the faster of the two counts
#   coffer snapshot restore s3://bench/snaps/zstd-rN@latest DEST
#   coffer snapshot restore s3://bench/snaps/lz4-rN@latest DEST
#   restic restore latest --target DEST
# Every restore goes to a fresh DEST; the first run checks every restored tree against the
# corpus (SHA-256 of every file). MB/s = corpus bytes (sum of file sizes) / wall seconds,
# MB = 10^6 bytes. Page cache cannot be dropped here (no root assumed), so instead the corpus
# is read once before each run (untimed) and every command reads it from the page cache.
# Any failed command aborts the run with a message.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
CORPUS_SIZE=${CORPUS_SIZE:-2G}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-info}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
REGION=us-east-1
BUCKET=bench
RESTIC_BUCKET=restic-bench

# ---------------------------------------------------------------------------------- tools
for t in curl python3 tar zstd restic borg sha256sum find sort xargs awk sed realpath sync numfmt; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
curl --help all 2>/dev/null | grep -q -- --aws-sigv4 || die "this curl has no --aws-sigv4 (needs curl >= 7.75)"
TIME=/usr/bin/time   # GNU time (Debian package `time`): CPU seconds and peak RSS
"$TIME" -f '%e' -o /dev/null true 2>/dev/null || die "$TIME (GNU time, -f) not found (scripts/install-deps.sh installs it)"
[ -r /proc/self/stat ] || die "/proc is needed for the server's CPU figures"

# ------------------------------------------------------------------------ scratch, cleanup
make_work coffer-snapbench
COFFER_PID=""
WORK_LOGS=("$WORK/coffer.log" "$WORK/cmd.err")
on_exit work_cleanup


# ------------------------------------------------------------------------------- corpus
if [ -n "${CORPUS:-}" ]; then
  [ -d "$CORPUS" ] || die "CORPUS=$CORPUS is not a directory"
  CORPUS=$(realpath "$CORPUS")
  CORPUS_DESC="$CORPUS (given)"
else
  log "generating the corpus (CORPUS_SIZE=$CORPUS_SIZE) in $WORK/corpus"
  CORPUS_SIZE=$CORPUS_SIZE "$BENCH_DIR/make-corpus.sh" "$WORK/corpus" >"$WORK/corpus.out" ||
    { cat "$WORK/corpus.out" >&2; die "bench/make-corpus.sh failed"; }
  CORPUS=$WORK/corpus
  CORPUS_DESC="bench/make-corpus.sh, CORPUS_SIZE=$CORPUS_SIZE, $(awk '/^fingerprint/ { print "fingerprint " substr($NF, 1, 16) }' "$WORK/corpus.out")"
fi
read -r CORPUS_BYTES CORPUS_FILES < <(find "$CORPUS" -type f -printf '%s\n' |
  awk '{ s += $1; n++ } END { printf "%.0f %.0f\n", s, n }')
[ "$CORPUS_FILES" -gt 0 ] || die "the corpus $CORPUS has no files"
CORPUS_MB=$(calc "$CORPUS_BYTES / 1000000")
# The expected content, as sha256sum -c input (relative paths); computing it reads the corpus.
log "corpus: $CORPUS_BYTES bytes in $CORPUS_FILES files; hashing it"
(cd "$CORPUS" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/expected.sha256"

# warm: read every byte of the corpus (through a pipe: GNU tar does not read file data when
# its archive is /dev/null itself); print the share of the corpus in the page cache after it
warm() {
  tar -cf - -C "$CORPUS" . | cat >/dev/null
  if command -v fincore >/dev/null; then
    # resident bytes / bytes of the pages the files occupy
    (cd "$CORPUS" && find . -type f -size +0 -print0 | xargs -0 fincore -b -n -o RES,SIZE 2>/dev/null) |
      awk -v p="$(getconf PAGESIZE)" '{ r += $1; t += int(($2 + p - 1) / p) * p }
        END { printf "%.1f\n", t ? 100 * r / t : 100 }'
  else
    echo "?"
  fi
}

# (see prefault in bench/lib.sh)
PREFAULT_BYTES=$(numfmt --from=iec "${PREFAULT:-3G}") || die "PREFAULT must be a size such as 3G, not '${PREFAULT:-}'"

# check_tree DIR NAME: the restored DIR holds exactly the corpus's files, byte for byte
check_tree() { same_tree "$1" "$WORK/expected.sha256" "$CORPUS_FILES" "$2"; }

# ------------------------------------------------------------------------------ start-up
read -r COFFER_PORT _ < <(free_ports)
ADDR=127.0.0.1:$COFFER_PORT
ENDPOINT=http://$ADDR
mkdir -p "$WORK/data" "$WORK/restic-cache" "$WORK/borg-base" "$WORK/retired"
log "scratch $WORK; coffer server on $ADDR; RUNS=$RUNS"
start_coffer "$ADDR" "$WORK/data" "$WORK/coffer.log"

make_bucket "$BUCKET"
make_bucket "$RESTIC_BUCKET"

# Clients: credentials only in their environment, never on a command line.
export COFFER_ENDPOINT=$ENDPOINT COFFER_ACCESS_KEY=$ACCESS_KEY COFFER_SECRET_KEY=$SECRET_KEY
export AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY AWS_DEFAULT_REGION=$REGION
export RESTIC_CACHE_DIR=$WORK/restic-cache
(umask 077 && echo "coffer-bench-restic-password" >"$WORK/restic.pass")
RESTIC=(restic --quiet --password-file "$WORK/restic.pass")
export BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
  BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
unset RESTIC_REPOSITORY RESTIC_PASSWORD BORG_REPO BORG_PASSPHRASE

# ----------------------------------------------------------------------------- measuring
# measure NAME [--server] CMD...: sync, prefault, then time CMD (stdout to $WORK/cmd.out, stderr to
# $WORK/cmd.err). Appends to the arrays S_NAME (MB/s), W_NAME (wall s), C_NAME (CPU s of the
# command and its children), R_NAME (peak RSS KiB of its largest process) and, with --server,
# V_NAME (CPU s of the coffer server over the same interval).
measure() {
  local name=$1 server=0
  shift
  [ "$1" = --server ] && { server=1; shift; }
  timed "$name" "$@"
  local -n S_=S_$name W_=W_$name C_=C_$name R_=R_$name V_=V_$name
  W_+=("$T_WALL")
  S_+=("$(calc "$CORPUS_MB / $T_WALL")")
  C_+=("$T_CPU")
  R_+=("$T_RSS")
  [ $server -eq 1 ] && V_+=("$T_SERVER")
  log "  $name: $(fmt "${S_[-1]}" 0) MB/s, $(fmt "${W_[-1]}" 2) s, CPU $(fmt "${C_[-1]}" 2) s$([ $server -eq 1 ] && echo ", server CPU $(fmt "${V_[-1]}" 2) s"), max RSS $((T_RSS / 1024)) MiB"
}
NAMES=(ref_c c_zstd c_lz4 d_c restic_b borg_c ref_r r_zstd r_lz4 d_r restic_r ref_r2)
for n in "${NAMES[@]}"; do declare -a "S_$n=()" "W_$n=()" "C_$n=()" "R_$n=()" "V_$n=()"; done
SIZE_ref=() SIZE_zstd=() SIZE_lz4=() SIZE_borg=() CACHED=()

stored_size() {   # archive bytes of the snapshot REPO@ID, from its manifest
  "$COFFER_BIN" snapshot show "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["archive"]["size"])'
}
fresh() { chmod -R u+rwX "$1" 2>/dev/null || true; rm -rf "$1"; mkdir -p "$1"; }

# Restores write to RESTORE_DIR: by default a tmpfs (/dev/shm) when it has room for two
# corpora, so that the figures measure the tools rather than this shared disk's state (file
# creation on it varies by 2x from one minute to the next); every tool writes to the same place.
if [ -z "${RESTORE_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] &&
   [ "$(df -B1 --output=avail /dev/shm | tail -n 1)" -gt $((CORPUS_BYTES * 5 / 2)) ]; then
  RESTORE_DIR=$(mktemp -d /dev/shm/coffer-snapbench.XXXXXX)
  RESTORE_TMP=$RESTORE_DIR
fi
RESTORE_DIR=${RESTORE_DIR:-$WORK}
RESTORE_FS=$(stat -f -c %T "$RESTORE_DIR")
DEST=$RESTORE_DIR/dest
[ ! -e "$DEST" ] || die "$DEST exists"

for i in $(seq "$RUNS"); do
  log "run $i/$RUNS"
  CACHED+=("$(warm)")
  log "  corpus read once (untimed); in page cache: ${CACHED[-1]} %"

  # -- create / backup
  measure ref_c bash -c 'set -o pipefail; tar -cf - -C "$1" . | zstd -q -T0 -3 >"$2"' _ "$CORPUS" "$WORK/ref.tar.zst"
  SIZE_ref+=("$(stat -c %s "$WORK/ref.tar.zst")")

  measure c_zstd --server "$COFFER_BIN" snapshot create "$CORPUS" "s3://$BUCKET/snaps/zstd-r$i" --compress zstd --level 3
  id_zstd=$(tail -n 1 "$WORK/cmd.out")
  SIZE_zstd+=("$(stored_size "s3://$BUCKET/snaps/zstd-r$i@$id_zstd")")

  measure c_lz4 --server "$COFFER_BIN" snapshot create "$CORPUS" "s3://$BUCKET/snaps/lz4-r$i" --compress lz4
  id_lz4=$(tail -n 1 "$WORK/cmd.out")
  SIZE_lz4+=("$(stored_size "s3://$BUCKET/snaps/lz4-r$i@$id_lz4")")

  # the same create into a directory repository: the same kind of destination as the
  # reference's file, so the pipeline itself is compared, without the server's share of the cores
  measure d_c "$COFFER_BIN" snapshot create "$CORPUS" "$WORK/dirrepo/zstd" --compress zstd --level 3

  # restic: a fresh repository per run (a second backup into the same one would deduplicate)
  restic_repo=s3:$ENDPOINT/$RESTIC_BUCKET/run-$i
  "${RESTIC[@]}" -r "$restic_repo" init >/dev/null 2>"$WORK/cmd.err" || die "restic init failed"
  measure restic_b --server "${RESTIC[@]}" -r "$restic_repo" backup "$CORPUS"

  fresh "$WORK/borg"
  borg init -e none "$WORK/borg/repo" 2>"$WORK/cmd.err" || die "borg init failed"
  measure borg_c borg create --compression zstd,3 "$WORK/borg/repo::run-$i" "$CORPUS"
  SIZE_borg+=("$(du -sb "$WORK/borg/repo" | awk '{ print $1 }')")

  # -- restore (each into a fresh directory; checked against the corpus in the first run)
  mkdir "$DEST"
  measure ref_r bash -c 'set -o pipefail; zstd -q -d <"$1" | tar -xf - -C "$2"' _ "$WORK/ref.tar.zst" "$DEST"
  if [ "$i" -eq 1 ]; then check_tree "$DEST" "zstd -d | tar -x"; fi
  retire "$DEST" "ref-r$i"

  # coffer restores into a directory that does not exist yet
  measure r_zstd --server "$COFFER_BIN" snapshot restore "s3://$BUCKET/snaps/zstd-r$i@latest" "$DEST"
  if [ "$i" -eq 1 ]; then check_tree "$DEST" "coffer restore (zstd)"; fi

  retire "$DEST" "zstd-r$i"
  measure r_lz4 --server "$COFFER_BIN" snapshot restore "s3://$BUCKET/snaps/lz4-r$i@latest" "$DEST"
  if [ "$i" -eq 1 ]; then check_tree "$DEST" "coffer restore (lz4)"; fi

  retire "$DEST" "lz4-r$i"
  measure d_r "$COFFER_BIN" snapshot restore "$WORK/dirrepo/zstd@latest" "$DEST"
  if [ "$i" -eq 1 ]; then check_tree "$DEST" "coffer restore (zstd, directory repository)"; fi
  retire "$DEST" "dir-r$i"
  mkdir "$DEST"
  measure restic_r --server "${RESTIC[@]}" -r "$restic_repo" restore latest --target "$DEST"
  # restic restores under the absolute path it backed up
  if [ "$i" -eq 1 ]; then check_tree "$DEST$CORPUS" "restic restore"; fi
  retire "$DEST" "restic-r$i"

  # The restore reference again, after the others: the first restore of a run was seen to take
  # up to 2x longer (the machine's state after the creates, whichever tool goes first), so the
  # run's reference is the faster of its two, which can only make coffer's ratio smaller.
  mkdir "$DEST"
  measure ref_r2 bash -c 'set -o pipefail; zstd -q -d <"$1" | tar -xf - -C "$2"' _ "$WORK/ref.tar.zst" "$DEST"
  retire "$DEST" "ref2-r$i"
  rm -f "$WORK/ref.tar.zst"
  if [ "$(calc "${W_ref_r2[-1]} < ${W_ref_r[-1]}")" = 1 ]; then
    S_ref_r[-1]=${S_ref_r2[-1]} W_ref_r[-1]=${W_ref_r2[-1]} C_ref_r[-1]=${C_ref_r2[-1]} R_ref_r[-1]=${R_ref_r2[-1]}
  fi

  # Untimed: the run's repositories go at its end, then the machine settles: deleting gigabytes
  # here sets off minutes of background work (discards, writeback) that took CPU from whatever
  # ran next, whichever tool that was.
  rm -rf "$WORK/borg" "$WORK/dirrepo"
  "$COFFER_BIN" snapshot rm "s3://$BUCKET/snaps/zstd-r$i@$id_zstd" >/dev/null
  "$COFFER_BIN" snapshot rm "s3://$BUCKET/snaps/lz4-r$i@$id_lz4" >/dev/null
  sync
  sleep "${SETTLE_SECONDS:-20}"
done

alive
errors=$(grep -c 'level=error' "$WORK/coffer.log" || true)
[ "$errors" -eq 0 ] || { grep 'level=error' "$WORK/coffer.log" | head -5 >&2; die "coffer server logged $errors errors"; }
bad=$(grep -c 'msg=request .*status=5[0-9][0-9]' "$WORK/coffer.log" || true)
[ "$bad" -eq 0 ] || { grep 'status=5' "$WORK/coffer.log" | head -5 >&2; die "coffer server answered $bad requests with 5xx"; }

# ------------------------------------------------------------------------------- report
med() { local -n a=$1; median "${a[@]}"; }
mmm() {   # "median (min–max)" of array $1 with $2 decimals
  local -n a=$1
  local m lo hi
  read -r m lo hi <<<"$(stats "${a[@]}")"
  if [ "${#a[@]}" -eq 1 ]; then fmt "$m" "$2"; else echo "$(fmt "$m" "$2") ($(fmt "$lo" "$2")–$(fmt "$hi" "$2"))"; fi
}
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
  ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "met" : "**missed**" }'; }
ratio_of() { calc "$(med "S_$1") / $(med "S_$2")"; }
r_c_ref=$(ratio_of c_zstd ref_c)
r_c_restic=$(ratio_of c_zstd restic_b)
r_c_borg=$(ratio_of c_zstd borg_c)
r_l_ref=$(ratio_of c_lz4 ref_c)
r_r_ref=$(ratio_of r_zstd ref_r)
r_r_restic=$(ratio_of r_zstd restic_r)
r_rl_ref=$(ratio_of r_lz4 ref_r)
r_rl_restic=$(ratio_of r_lz4 restic_r)
r_dc_ref=$(ratio_of d_c ref_c)
r_dr_ref=$(ratio_of d_r ref_r)
RSS_MIB=()
for n in c_zstd c_lz4 d_c r_zstd r_lz4 d_r; do
  declare -n R_=R_$n
  for v in "${R_[@]}"; do RSS_MIB+=("$(calc "$v / 1024")"); done
  unset -n R_
done
rss_max=$(printf '%s\n' "${RSS_MIB[@]}" | sort -g | tail -n 1)
rss_of() { local -n a=R_$1; printf '%s\n' "${a[@]}" | sort -g | tail -n 1 | awk '{ printf "%.0f", $1 / 1024 }'; }
ratio_x() { calc "$CORPUS_BYTES / $1"; }   # compression ratio of a stored size
size_row() { local -n a=$1; ratio_x "$(median "${a[@]}")"; }

cat <<EOF

## coffer snapshot benchmark — $(date -u +%Y-%m-%d) — $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

RUNS=$RUNS; corpus: $CORPUS_BYTES bytes ($(fmt "$(calc "$CORPUS_BYTES / 1073741824")" 2) GiB) in $CORPUS_FILES files ($CORPUS_DESC); scratch on $(df --output=fstype "$WORK" | tail -n 1), restores into $RESTORE_FS ($RESTORE_DIR).
The corpus was read once (untimed) before each run, so every command read it from the page cache (share of its pages cached after that read, by run: $(printf '%s %%, ' "${CACHED[@]}" | sed 's/, $//')); page cache is not dropped between runs; before every timed command $(numfmt --to=iec "$PREFAULT_BYTES") of fresh memory was touched and freed (PREFAULT).
MB/s = corpus bytes / wall seconds, MB = 10^6 bytes; figures are median (min–max) over the runs; ratios are of medians.
coffer server on loopback, same machine; restic $(restic version | awk '{ print $2 }') (s3 backend, same server, fresh repository per run), borg $(borg --version | awk '{ print $2 }') (local repository, -e none, fresh per run), zstd $(zstd --version | sed -n 's/.* v\([0-9.]*\),.*/\1/p'), GNU tar $(tar --version | awk 'NR == 1 { print $NF }').

| figure | coffer | reference | reference figure | ratio | target |
|---|---|---|---|---|---|
| create zstd-3, MB/s | $(mmm S_c_zstd 0) | tar \| zstd -T0 -3 > file | $(mmm S_ref_c 0) | $(fmt "$r_c_ref" 2) | ≥ 0.9: $(verdict "$r_c_ref" 0.9 ">=") |
| create zstd-3, MB/s | $(mmm S_c_zstd 0) | restic backup (first) | $(mmm S_restic_b 0) | $(fmt "$r_c_restic" 2) | ≥ 3: $(verdict "$r_c_restic" 3 ">=") |
| create zstd-3, MB/s | $(mmm S_c_zstd 0) | borg create zstd,3 (first) | $(mmm S_borg_c 0) | $(fmt "$r_c_borg" 2) | none |
| create lz4, MB/s | $(mmm S_c_lz4 0) | tar \| zstd -T0 -3 > file | $(mmm S_ref_c 0) | $(fmt "$r_l_ref" 2) | none |
| restore zstd-3, MB/s | $(mmm S_r_zstd 0) | zstd -d \| tar -x | $(mmm S_ref_r 0) | $(fmt "$r_r_ref" 2) | ≥ 0.9: $(verdict "$r_r_ref" 0.9 ">=") |
| restore zstd-3, MB/s | $(mmm S_r_zstd 0) | restic restore | $(mmm S_restic_r 0) | $(fmt "$r_r_restic" 2) | ≥ 1.5: $(verdict "$r_r_restic" 1.5 ">=") |
| restore lz4, MB/s | $(mmm S_r_lz4 0) | zstd -d \| tar -x | $(mmm S_ref_r 0) | $(fmt "$r_rl_ref" 2) | none |
| restore lz4, MB/s | $(mmm S_r_lz4 0) | restic restore | $(mmm S_restic_r 0) | $(fmt "$r_rl_restic" 2) | none |
| create zstd-3 into a directory repository, MB/s | $(mmm S_d_c 0) | tar \| zstd -T0 -3 > file | $(mmm S_ref_c 0) | $(fmt "$r_dc_ref" 2) | none (no server) |
| restore zstd-3 from a directory repository, MB/s | $(mmm S_d_r 0) | zstd -d \| tar -x | $(mmm S_ref_r 0) | $(fmt "$r_dr_ref" 2) | none (no server) |
| peak RSS of coffer (create and restore, largest), MiB | $(fmt "$rss_max" 0) | | | | ≤ 256: $(verdict "$rss_max" 256 "<=") |

Every command (wall and CPU seconds are medians; CPU = user + system of the command and its
children; server CPU = the coffer server's over the same interval; peak RSS = largest process,
maximum over the runs; size ratio = corpus bytes / stored bytes):

| command | MB/s | wall s | CPU s | server CPU s | peak RSS, MiB | size ratio |
|---|---|---|---|---|---|---|
| tar \| zstd -T0 -3 > file | $(mmm S_ref_c 0) | $(fmt "$(med W_ref_c)" 2) | $(fmt "$(med C_ref_c)" 2) | | $(rss_of ref_c) | $(fmt "$(size_row SIZE_ref)" 2) |
| coffer snapshot create --compress zstd --level 3 | $(mmm S_c_zstd 0) | $(fmt "$(med W_c_zstd)" 2) | $(fmt "$(med C_c_zstd)" 2) | $(fmt "$(med V_c_zstd)" 2) | $(rss_of c_zstd) | $(fmt "$(size_row SIZE_zstd)" 2) |
| coffer snapshot create --compress lz4 | $(mmm S_c_lz4 0) | $(fmt "$(med W_c_lz4)" 2) | $(fmt "$(med C_c_lz4)" 2) | $(fmt "$(med V_c_lz4)" 2) | $(rss_of c_lz4) | $(fmt "$(size_row SIZE_lz4)" 2) |
| coffer snapshot create (zstd-3, directory repository) | $(mmm S_d_c 0) | $(fmt "$(med W_d_c)" 2) | $(fmt "$(med C_d_c)" 2) | | $(rss_of d_c) | |
| restic backup | $(mmm S_restic_b 0) | $(fmt "$(med W_restic_b)" 2) | $(fmt "$(med C_restic_b)" 2) | $(fmt "$(med V_restic_b)" 2) | $(rss_of restic_b) | |
| borg create --compression zstd,3 | $(mmm S_borg_c 0) | $(fmt "$(med W_borg_c)" 2) | $(fmt "$(med C_borg_c)" 2) | | $(rss_of borg_c) | $(fmt "$(size_row SIZE_borg)" 2) |
| zstd -d \| tar -x | $(mmm S_ref_r 0) | $(fmt "$(med W_ref_r)" 2) | $(fmt "$(med C_ref_r)" 2) | | $(rss_of ref_r) | |
| coffer snapshot restore (zstd-3) | $(mmm S_r_zstd 0) | $(fmt "$(med W_r_zstd)" 2) | $(fmt "$(med C_r_zstd)" 2) | $(fmt "$(med V_r_zstd)" 2) | $(rss_of r_zstd) | |
| coffer snapshot restore (lz4) | $(mmm S_r_lz4 0) | $(fmt "$(med W_r_lz4)" 2) | $(fmt "$(med C_r_lz4)" 2) | $(fmt "$(med V_r_lz4)" 2) | $(rss_of r_lz4) | |
| coffer snapshot restore (zstd-3, directory repository) | $(mmm S_d_r 0) | $(fmt "$(med W_d_r)" 2) | $(fmt "$(med C_d_r)" 2) | | $(rss_of d_r) | |
| restic restore | $(mmm S_restic_r 0) | $(fmt "$(med W_restic_r)" 2) | $(fmt "$(med C_restic_r)" 2) | $(fmt "$(med V_restic_r)" 2) | $(rss_of restic_r) | |
EOF

# raw numbers, one per run, to stderr
{
  echo
  echo "raw numbers (one per run, in order):"
  for n in "${NAMES[@]}"; do
    declare -n S_=S_$n W_=W_$n C_=C_$n R_=R_$n V_=V_$n
    printf '  %-9s MB/s: %s\n' "$n" "${S_[*]}"
    printf '  %-9s wall s: %s; CPU s: %s; peak RSS KiB: %s%s\n' "$n" "${W_[*]}" "${C_[*]}" "${R_[*]}" \
      "$([ ${#V_[@]} -gt 0 ] && echo "; server CPU s: ${V_[*]}")"
    unset -n S_ W_ C_ R_ V_
  done
  echo "  stored bytes: tar.zst ${SIZE_ref[*]}; coffer zstd-3 ${SIZE_zstd[*]}; coffer lz4 ${SIZE_lz4[*]}; borg repo ${SIZE_borg[*]}"
  echo "  corpus in page cache after the warm-up read, %: ${CACHED[*]}"
} >&2
