#!/usr/bin/env bash
# Benchmarks of `coffer server` on loopback, against reference tools on the same machine.
# Usage: bench/server.sh build/coffer        (what `make bench` runs)
#
# Environment:
#   RUNS=5        timed runs of each measurement; median, min and max are reported
#   BIG_MIB=1024  size of the large object (MiB)
#   PART_MIB=16, PART_JOBS=4   part size (MiB, >= 5) and parts in flight of the multipart PUT
#   SMALL_COUNT=1000, WRK_THREADS=2, WRK_CONNECTIONS=16, WRK_DURATION=10s
#   COFFER_LOG_LEVEL=info   --log-level of the server under test
#   TMPDIR        where the scratch directory goes (it is removed at exit)
#
# Measures (docs/BENCHMARKS.md explains each figure and its target):
#   1. large PUT: curl --aws-sigv4 -T of BIG_MIB random bytes   vs  cat file > dest; md5sum dest
#   1b. multipart PUT of the same file: PART_MIB parts, PART_JOBS curl processes at a time
#       (xargs -P), create + parts + complete                   vs  the same run's cat + md5sum
#   2. large GET: curl --aws-sigv4 -o /dev/null of that object   vs  nginx serving the same file
#   3. 4 KiB PUT and GET with wrk and pre-signed SigV4 requests  vs  nginx GET of the same files
#   4. server VmRSS at rest and VmHWM at the end
#   5. server CPU seconds per GiB for 1, 1b (vs md5sum's, from /usr/bin/time in the reference)
#      and 2 (vs nginx's), CPU µs per 4 KiB op for 3
# Any non-2xx answer, wrk error or failed command aborts the run with a message.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-5}
BIG_MIB=${BIG_MIB:-1024}
PART_MIB=${PART_MIB:-16}
PART_JOBS=${PART_JOBS:-4}
SMALL_COUNT=${SMALL_COUNT:-1000}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
WRK_DURATION=${WRK_DURATION:-10s}
COFFER_LOG_LEVEL=${COFFER_LOG_LEVEL:-info}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$RUNS'"
[[ $BIG_MIB =~ ^[1-9][0-9]*$ ]] || die "BIG_MIB must be a positive integer, not '$BIG_MIB'"
[[ $SMALL_COUNT =~ ^[1-9][0-9]*$ ]] || die "SMALL_COUNT must be a positive integer"
[[ $PART_MIB =~ ^[1-9][0-9]*$ ]] && [ "$PART_MIB" -ge 5 ] || die "PART_MIB must be an integer >= 5 (S3's minimum part size), not '$PART_MIB'"
[[ $PART_JOBS =~ ^[1-9][0-9]*$ ]] || die "PART_JOBS must be a positive integer, not '$PART_JOBS'"

ACCESS_KEY=bench
SECRET_KEY=benchsecret0123456789
BUCKET=bucket
REGION=us-east-1
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
PART_BYTES=$((PART_MIB * 1024 * 1024))
NPARTS=$(((BIG_BYTES + PART_BYTES - 1) / PART_BYTES))
[ "$NPARTS" -le 10000 ] || die "BIG_MIB / PART_MIB gives $NPARTS parts; S3 allows 10,000"

# ---------------------------------------------------------------------------------- tools
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || NGINX=/usr/sbin/nginx
[ -x "$NGINX" ] || die "nginx not found (scripts/install-deps.sh installs nginx-light)"
for t in curl wrk python3 md5sum sha256sum head cat awk sed sort split xargs realpath getconf sync; do
  command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what the benchmark needs)"
done
curl --help all 2>/dev/null | grep -q -- --aws-sigv4 || die "this curl has no --aws-sigv4 (needs curl >= 7.75)"
TIME=/usr/bin/time   # GNU time (Debian package `time`), for md5sum's CPU seconds
"$TIME" -f '%U+%S' -o /dev/null true 2>/dev/null || die "$TIME (GNU time, -f) not found (scripts/install-deps.sh installs it)"
[ -r /proc/self/status ] || die "/proc is needed for memory and CPU figures"
CLK_TCK=$(getconf CLK_TCK)

# ------------------------------------------------------------------------ scratch, cleanup
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/coffer-bench.XXXXXX")
COFFER_PID="" NGINX_PID=""
cleanup() {
  local rc=$?
  trap - ERR
  set +e
  stop_coffer
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID"; wait "$NGINX_PID" 2>/dev/null
  fi
  [ $rc -eq 0 ] || tail_logs "$SCRATCH/coffer.log" "$SCRATCH/nginx/error.log"
  rm -rf "$SCRATCH"
  exit $rc
}
on_exit cleanup

read -r COFFER_PORT NGINX_PORT < <(free_ports)
COFFER=127.0.0.1:$COFFER_PORT
NGINXA=127.0.0.1:$NGINX_PORT

# ------------------------------------------------------------------------------- helpers
# the same, summed over a process and its direct children (nginx master and workers)
tree_ticks() {
  local total p stat rest f
  total=$(proc_ticks "$1")
  for p in /proc/[0-9]*/stat; do
    { stat=$(<"$p"); } 2>/dev/null || continue
    rest=${stat##*) }
    read -ra f <<<"$rest"
    [ "${f[1]}" = "$1" ] && total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }


# curl against coffer, signed; fails unless the answer is 2xx. The body goes to $S3_OUT
# (default a scratch file, kept for the error message).
s3() {
  local code out=${S3_OUT:-$SCRATCH/s3.out}
  code=$(curl -sS --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -o "$out" -w '%{http_code}' "$@") || die "curl $* failed"
  [[ $code == 2?? ]] || die "coffer answered HTTP $code to curl $*: $(head -c 400 "$out")"
}

# ------------------------------------------------------------------------------ start-up
log "scratch $SCRATCH; coffer on $COFFER, nginx on $NGINXA; RUNS=$RUNS"
mkdir -p "$SCRATCH/data" "$SCRATCH/www/$BUCKET/small" "$SCRATCH/nginx"

start_coffer "$COFFER" "$SCRATCH/data" "$SCRATCH/coffer.log"
sleep 0.5
RSS_REST_KIB=$(status_kib "$COFFER_PID" VmRSS)
log "coffer ready, pid $COFFER_PID, VmRSS $RSS_REST_KIB KiB"

# nginx: workers may run as another user when we are root, so what they serve is readable
chmod 755 "$SCRATCH"
cat >"$SCRATCH/nginx/nginx.conf" <<EOF
worker_processes 2;
error_log $SCRATCH/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $SCRATCH/nginx/body;
  proxy_temp_path $SCRATCH/nginx/proxy;
  fastcgi_temp_path $SCRATCH/nginx/fastcgi;
  uwsgi_temp_path $SCRATCH/nginx/uwsgi;
  scgi_temp_path $SCRATCH/nginx/scgi;
  server {
    listen $NGINXA;
    root $SCRATCH/www;
  }
}
EOF
"$NGINX" -p "$SCRATCH/nginx" -c "$SCRATCH/nginx/nginx.conf" \
  -g "daemon off; pid $SCRATCH/nginx/nginx.pid;" 2>>"$SCRATCH/nginx/error.log" &
NGINX_PID=$!

s3 -X PUT "http://$COFFER/$BUCKET"

# The large file, once, and the same bytes for nginx (a hard link).
log "writing $BIG_MIB MiB from /dev/urandom"
head -c "$BIG_BYTES" /dev/urandom >"$SCRATCH/big"
chmod 644 "$SCRATCH/big"
ln "$SCRATCH/big" "$SCRATCH/www/$BUCKET/big"
BIG_MD5=$(md5sum <"$SCRATCH/big" | awk '{ print $1 }')
sync   # nothing of ours left to write back while timing
for _ in $(seq 50); do
  curl -fsS -o /dev/null -r 0-0 "http://$NGINXA/$BUCKET/big" 2>/dev/null && break
  kill -0 "$NGINX_PID" 2>/dev/null || die "nginx did not start"
  sleep 0.1
done
GIB=$(calc "$BIG_BYTES / 1073741824")
MB=$(calc "$BIG_BYTES / 1000000")

# --------------------------------------------------------------- 1. large PUT, 1b. multipart
# The parts of the multipart PUT, cut once (untimed): $SCRATCH/parts/part.1 ... part.$NPARTS.
log "splitting the file into $NPARTS parts of $PART_MIB MiB"
mkdir -p "$SCRATCH/parts"
split -b "$PART_BYTES" -d -a 5 --numeric-suffixes=1 "$SCRATCH/big" "$SCRATCH/parts/p"
for f in "$SCRATCH"/parts/p[0-9]*; do
  mv "$f" "$SCRATCH/parts/part.$((10#${f##*/p}))"
done
[ -f "$SCRATCH/parts/part.$NPARTS" ] && [ ! -e "$SCRATCH/parts/part.$((NPARTS + 1))" ] ||
  die "split did not make $NPARTS parts"
# The multipart ETag S3 gives: MD5 of the parts' binary MD5s, then "-N".
MP_ETAG_WANT=$(python3 - "$SCRATCH/parts" "$NPARTS" <<'PY'
import hashlib, sys
d, n = sys.argv[1], int(sys.argv[2])
digests = []
for i in range(1, n + 1):
    h = hashlib.md5()
    with open(f"{d}/part.{i}", "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digests.append(h.digest())
print(f"{hashlib.md5(b''.join(digests)).hexdigest()}-{n}")
PY
) || die "computing the expected multipart ETag failed"
BIG_SHA256=$(sha256sum <"$SCRATCH/big" | awk '{ print $1 }')
sync

# mp_put KEY: one multipart upload of the parts to KEY: CreateMultipartUpload, UploadPart
# with PART_JOBS curl processes at a time, CompleteMultipartUpload with the ETags they got.
# Sets MP_ETAG to the ETag of the completed object (quotes removed).
mp_put() {
  local key=$1 id
  rm -f "$SCRATCH"/parts/hdr.*
  # ?uploads= rather than ?uploads: curl 7.88 signs a valueless query parameter wrongly (curl#10129)
  S3_OUT=$SCRATCH/mp.create.xml s3 -X POST "http://$COFFER/$BUCKET/$key?uploads="
  id=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' "$SCRATCH/mp.create.xml")
  [[ $id =~ ^[A-Za-z0-9._~-]+$ ]] || die "CreateMultipartUpload: no usable UploadId in: $(head -c 400 "$SCRATCH/mp.create.xml")"
  # partNumber before uploadId: the sorted order of the canonical query, whether curl sorts or not
  seq 1 "$NPARTS" | xargs -P "$PART_JOBS" -I '{}' \
    curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -T "$SCRATCH/parts/part.{}" \
    "http://$COFFER/$BUCKET/$key?partNumber={}&uploadId=$id" -D "$SCRATCH/parts/hdr.{}" -o /dev/null ||
    { alive; die "UploadPart: a curl failed (its message is above)"; }
  awk -v n="$NPARTS" -v d="$SCRATCH/parts" 'BEGIN {
    printf "<CompleteMultipartUpload>"
    for (i = 1; i <= n; i++) {
      f = d "/hdr." i; e = ""
      while ((getline l < f) > 0)
        if (tolower(l) ~ /^etag:/) { sub(/^[^:]*:[ \t]*/, "", l); sub(/\r$/, "", l); e = l }
      close(f)
      if (e == "") { print "bench: ERROR: no ETag in the answer to part " i > "/dev/stderr"; exit 1 }
      printf "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i, e
    }
    print "</CompleteMultipartUpload>" }' >"$SCRATCH/mp.complete.body" ||
    die "UploadPart: an answer had no ETag"
  # curl 7.88 signs a POST body's hash but does not send x-amz-content-sha256: send it ourselves
  S3_OUT=$SCRATCH/mp.complete.xml s3 -X POST -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \
    -H 'Content-Type: application/xml' --data-binary "@$SCRATCH/mp.complete.body" \
    "http://$COFFER/$BUCKET/$key?uploadId=$id"
  # S3 may answer 200 with an <Error> body to CompleteMultipartUpload
  MP_ETAG=$(sed -n 's:.*<CompleteMultipartUploadResult.*<ETag>\(&quot;\|"\)\{0,1\}\([^<&"]*\)\(&quot;\|"\)\{0,1\}</ETag>.*:\2:p' \
    "$SCRATCH/mp.complete.xml")
  [ -n "$MP_ETAG" ] || die "CompleteMultipartUpload: no ETag in: $(head -c 400 "$SCRATCH/mp.complete.xml")"
}

put_c=() put_r=() put_mp=() cpu_put=() cpu_mp=() cpu_md5=()
for i in $(seq "$RUNS"); do
  alive
  if [ "$i" -gt 1 ]; then s3 -X DELETE "http://$COFFER/$BUCKET/big"; fi
  c0=$(proc_ticks "$COFFER_PID"); t0=$(now)
  s3 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -D "$SCRATCH/put.hdr" -T "$SCRATCH/big" \
    "http://$COFFER/$BUCKET/big"
  t1=$(now); c1=$(proc_ticks "$COFFER_PID")
  grep -qi "^etag: \"$BIG_MD5\"" "$SCRATCH/put.hdr" || die "PUT big: ETag is not the file's MD5"
  put_c+=("$(calc "$MB / ($t1 - $t0)")")
  cpu_put+=("$(calc "($c1 - $c0) / $CLK_TCK / $GIB")")

  alive
  if [ "$i" -gt 1 ]; then s3 -X DELETE "http://$COFFER/$BUCKET/mp"; fi
  c0=$(proc_ticks "$COFFER_PID"); t0=$(now)
  mp_put mp
  t1=$(now); c1=$(proc_ticks "$COFFER_PID")
  [ "$MP_ETAG" = "$MP_ETAG_WANT" ] || die "multipart PUT: ETag $MP_ETAG, expected $MP_ETAG_WANT"
  put_mp+=("$(calc "$MB / ($t1 - $t0)")")
  cpu_mp+=("$(calc "($c1 - $c0) / $CLK_TCK / $GIB")")
  if [ "$i" -eq 1 ]; then   # once, untimed: the object reads back as the file
    got=$(curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
      "http://$COFFER/$BUCKET/mp" | python3 -c '
import hashlib, sys
h, n = hashlib.sha256(), 0
while chunk := sys.stdin.buffer.read(1 << 20):
    h.update(chunk); n += len(chunk)
print(h.hexdigest(), n)') || die "GET of the multipart object failed"
    read -r got_sha got_size <<<"$got"
    [ "$got_size" = "$BIG_BYTES" ] || die "GET of the multipart object: $got_size bytes, expected $BIG_BYTES"
    [ "$got_sha" = "$BIG_SHA256" ] || die "GET of the multipart object: SHA-256 $got_sha, expected $BIG_SHA256"
  fi

  t0=$(now)
  cat "$SCRATCH/big" >"$SCRATCH/dest"
  "$TIME" -f '%U+%S' -o "$SCRATCH/md5.time" md5sum "$SCRATCH/dest" >/dev/null
  t1=$(now)
  rm -f "$SCRATCH/dest"
  put_r+=("$(calc "$MB / ($t1 - $t0)")")
  md5_cpu=$(tail -n 1 "$SCRATCH/md5.time")
  [[ $md5_cpu =~ ^[0-9.]+\+[0-9.]+$ ]] || die "unexpected output of $TIME: $(cat "$SCRATCH/md5.time")"
  cpu_md5+=("$(calc "($md5_cpu) / $GIB")")
  log "large PUT run $i/$RUNS: coffer ${put_c[-1]} MB/s, multipart ${put_mp[-1]} MB/s, cat+md5sum ${put_r[-1]} MB/s"
done
s3 -X DELETE "http://$COFFER/$BUCKET/mp"   # room on the disk; the parts too
rm -rf "$SCRATCH/parts"

# ----------------------------------------------------------------------------- 2. large GET
# one untimed pass each: checks the bytes and warms the page cache alike
got=$(curl -sS -f --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
  "http://$COFFER/$BUCKET/big" | md5sum | awk '{ print $1 }')
[ "$got" = "$BIG_MD5" ] || die "GET big from coffer: MD5 $got, expected $BIG_MD5"
got=$(curl -sS -f "http://$NGINXA/$BUCKET/big" | md5sum | awk '{ print $1 }')
[ "$got" = "$BIG_MD5" ] || die "GET big from nginx: MD5 $got, expected $BIG_MD5"

get_c=() get_n=() cpu_get=() cpu_nget=()
for i in $(seq "$RUNS"); do
  alive
  c0=$(proc_ticks "$COFFER_PID"); t0=$(now)
  S3_OUT=/dev/null s3 "http://$COFFER/$BUCKET/big"
  t1=$(now); c1=$(proc_ticks "$COFFER_PID")
  get_c+=("$(calc "$MB / ($t1 - $t0)")")
  cpu_get+=("$(calc "($c1 - $c0) / $CLK_TCK / $GIB")")

  c0=$(tree_ticks "$NGINX_PID"); t0=$(now)
  code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$NGINXA/$BUCKET/big") || die "curl to nginx failed"
  t1=$(now); c1=$(tree_ticks "$NGINX_PID")
  [[ $code == 2?? ]] || die "nginx answered HTTP $code for /$BUCKET/big"
  get_n+=("$(calc "$MB / ($t1 - $t0)")")
  cpu_nget+=("$(calc "($c1 - $c0) / $CLK_TCK / $GIB")")
  log "large GET run $i/$RUNS: coffer ${get_c[-1]} MB/s, nginx ${get_n[-1]} MB/s"
done

# ------------------------------------------------------------------------- 3. small objects
export BENCH_ACCESS_KEY=$ACCESS_KEY BENCH_SECRET_KEY=$SECRET_KEY
head -c 4080 /dev/urandom >"$SCRATCH/tail.bin"
SIGN=(python3 "$BENCH_DIR/sigv4_presign.py")
log "storing $SMALL_COUNT objects of 4 KiB (and the same files for nginx)"
"${SIGN[@]}" populate --host "$COFFER" --bucket "$BUCKET" --count "$SMALL_COUNT" \
  --tail "$SCRATCH/tail.bin" --www "$SCRATCH/www" || die "storing the small objects failed"
chmod -R a+rX "$SCRATCH/www"

# gen_lua METHOD HOST NAME: fresh signatures (x-amz-date = now) in $SCRATCH/NAME.lua
gen_lua() {
  "${SIGN[@]}" gen --method "$1" --host "$2" --bucket "$BUCKET" --count "$SMALL_COUNT" \
    --tail "$SCRATCH/tail.bin" --lua "$SCRATCH/$3.lua" --curl-config "$SCRATCH/$3.curl" ||
    die "generating $3.lua failed"
}
# check_presigned NAME HOST: the first pre-signed request of NAME, sent once with curl
check_presigned() {
  local code
  code=$(curl -sS -K "$SCRATCH/$1.curl" -o "$SCRATCH/check.out" -w '%{http_code}') ||
    die "curl with the pre-signed request of $1.lua failed"
  [[ $code == 2?? ]] || die "pre-signed request of $1.lua: HTTP $code: $(head -c 400 "$SCRATCH/check.out")"
}
# run_wrk NAME HOST: wrk with NAME.lua; prints requests/s; fails on any error or non-2xx
run_wrk() {
  local out="$SCRATCH/$1.wrk" rps
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$SCRATCH/$1.lua" \
    "http://$2/" >"$out" 2>&1 || { cat "$out" >&2; die "wrk ($1) failed"; }
  if grep -q 'Non-2xx or 3xx responses' "$out"; then
    cat "$out" >&2; die "wrk ($1): the server answered non-2xx responses"
  fi
  if grep -q 'Socket errors' "$out"; then
    cat "$out" >&2
    kill -0 "$COFFER_PID" 2>/dev/null || die "coffer server died during wrk ($1)"
    die "wrk ($1): socket errors"
  fi
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  [ -n "$rps" ] && awk -v r="$rps" 'BEGIN { exit !(r > 0) }' || { cat "$out" >&2; die "wrk ($1): no requests/s"; }
  echo "$rps"
}

gen_lua PUT "$COFFER" small_put
check_presigned small_put
gen_lua GET "$COFFER" small_get
check_presigned small_get
cmp -s "$SCRATCH/check.out" "$SCRATCH/small_put.curl.body" ||
  die "the pre-signed GET did not return the object the pre-signed PUT stored"
gen_lua GET "$NGINXA" nginx_get
check_presigned nginx_get
cmp -s "$SCRATCH/check.out" "$SCRATCH/small_put.curl.body" ||
  die "nginx does not serve the bytes stored in coffer"

sput=() sget=() nget=() cpu_sput=() cpu_sget=() cpu_snget=()
for i in $(seq "$RUNS"); do
  alive
  gen_lua PUT "$COFFER" small_put
  c0=$(proc_ticks "$COFFER_PID")
  rps=$(run_wrk small_put "$COFFER")
  sput+=("$rps")
  c1=$(proc_ticks "$COFFER_PID")
  ops=$(awk '/requests in/ { print $1 }' "$SCRATCH/small_put.wrk")
  cpu_sput+=("$(calc "($c1 - $c0) / $CLK_TCK / $ops * 1000000")")

  alive
  gen_lua GET "$COFFER" small_get
  c0=$(proc_ticks "$COFFER_PID")
  rps=$(run_wrk small_get "$COFFER")
  sget+=("$rps")
  c1=$(proc_ticks "$COFFER_PID")
  ops=$(awk '/requests in/ { print $1 }' "$SCRATCH/small_get.wrk")
  cpu_sget+=("$(calc "($c1 - $c0) / $CLK_TCK / $ops * 1000000")")

  c0=$(tree_ticks "$NGINX_PID")
  rps=$(run_wrk nginx_get "$NGINXA")
  nget+=("$rps")
  c1=$(tree_ticks "$NGINX_PID")
  ops=$(awk '/requests in/ { print $1 }' "$SCRATCH/nginx_get.wrk")
  cpu_snget+=("$(calc "($c1 - $c0) / $CLK_TCK / $ops * 1000000")")
  log "4 KiB run $i/$RUNS: coffer PUT ${sput[-1]}/s, GET ${sget[-1]}/s; nginx GET ${nget[-1]}/s"
done
for f in small_put small_get nginx_get; do
  log "last wrk run, $f:"; sed 's/^/    /' "$SCRATCH/$f.wrk" >&2
done

# ------------------------------------------------------------------------------ 4. memory
alive
HWM_KIB=$(status_kib "$COFFER_PID" VmHWM)
RSS_END_KIB=$(status_kib "$COFFER_PID" VmRSS)
THREADS=$(status_kib "$COFFER_PID" Threads)

# The server's own log must show no failed request (status 5xx or 4xx).
bad=$(grep -c 'msg=request .*status=[45][0-9][0-9]' "$SCRATCH/coffer.log" || true)
[ "$bad" -eq 0 ] || { grep 'status=[45]' "$SCRATCH/coffer.log" | head -5 >&2; die "coffer logged $bad failed requests"; }
errors=$(grep -c 'level=error' "$SCRATCH/coffer.log" || true)
[ "$errors" -eq 0 ] || { grep 'level=error' "$SCRATCH/coffer.log" | head -5 >&2; die "coffer logged $errors errors"; }

# ------------------------------------------------------------------------------- report
read -r put_c_m put_c_lo put_c_hi <<<"$(stats "${put_c[@]}")"
read -r put_r_m put_r_lo put_r_hi <<<"$(stats "${put_r[@]}")"
read -r put_mp_m put_mp_lo put_mp_hi <<<"$(stats "${put_mp[@]}")"
read -r get_c_m get_c_lo get_c_hi <<<"$(stats "${get_c[@]}")"
read -r get_n_m get_n_lo get_n_hi <<<"$(stats "${get_n[@]}")"
read -r sput_m sput_lo sput_hi <<<"$(stats "${sput[@]}")"
read -r sget_m sget_lo sget_hi <<<"$(stats "${sget[@]}")"
read -r nget_m nget_lo nget_hi <<<"$(stats "${nget[@]}")"
read -r cpu_put_m cpu_put_lo cpu_put_hi <<<"$(stats "${cpu_put[@]}")"
read -r cpu_mp_m cpu_mp_lo cpu_mp_hi <<<"$(stats "${cpu_mp[@]}")"
read -r cpu_md5_m cpu_md5_lo cpu_md5_hi <<<"$(stats "${cpu_md5[@]}")"
read -r cpu_get_m cpu_get_lo cpu_get_hi <<<"$(stats "${cpu_get[@]}")"
read -r cpu_nget_m cpu_nget_lo cpu_nget_hi <<<"$(stats "${cpu_nget[@]}")"
read -r cpu_sput_m cpu_sput_lo cpu_sput_hi <<<"$(stats "${cpu_sput[@]}")"
read -r cpu_sget_m cpu_sget_lo cpu_sget_hi <<<"$(stats "${cpu_sget[@]}")"
read -r cpu_snget_m cpu_snget_lo cpu_snget_hi <<<"$(stats "${cpu_snget[@]}")"

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
  ok = (op == ">=") ? (v >= t) : (v < t); print ok ? "met" : "**missed**" }'; }
r_put=$(calc "$put_c_m / $put_r_m")
r_mp=$(calc "$put_mp_m / $put_r_m")
r_get=$(calc "$get_c_m / $get_n_m")
r_sget=$(calc "$sget_m / $nget_m")
r_sput=$(calc "$sput_m / $nget_m")
hwm_mib=$(calc "$HWM_KIB / 1024")
rss_mib=$(calc "$RSS_REST_KIB / 1024")
mmm() { echo "$(fmt "$1" "$4") ($(fmt "$2" "$4")–$(fmt "$3" "$4"))"; }
ratio() { fmt "$(calc "$1 / ($2 > 0 ? $2 : 1)")" 2; }   # of medians; a zero reference counts as 1

cat <<EOF

## coffer server benchmark — $(date -u +%Y-%m-%d) — $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

RUNS=$RUNS, scratch on $(df --output=fstype "$SCRATCH" | tail -n 1), large object $BIG_MIB MiB (multipart: $NPARTS parts of $PART_MIB MiB, $PART_JOBS in flight), $SMALL_COUNT objects of 4 KiB, wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION.
Figures are median (min–max) over the runs; ratios are of medians. MB = 10^6 bytes.

| figure | coffer | reference | reference figure | ratio | target |
|---|---|---|---|---|---|
| large PUT, MB/s | $(mmm "$put_c_m" "$put_c_lo" "$put_c_hi" 0) | cat > dest; md5sum dest | $(mmm "$put_r_m" "$put_r_lo" "$put_r_hi" 0) | $(fmt "$r_put" 2) | ≥ 0.7: $(verdict "$r_put" 0.7 ">=") |
| multipart PUT ($NPARTS × $PART_MIB MiB, $PART_JOBS at a time), MB/s | $(mmm "$put_mp_m" "$put_mp_lo" "$put_mp_hi" 0) | cat > dest; md5sum dest | $(mmm "$put_r_m" "$put_r_lo" "$put_r_hi" 0) | $(fmt "$r_mp" 2) | none |
| large GET, MB/s | $(mmm "$get_c_m" "$get_c_lo" "$get_c_hi" 0) | nginx, same bytes | $(mmm "$get_n_m" "$get_n_lo" "$get_n_hi" 0) | $(fmt "$r_get" 2) | ≥ 0.9: $(verdict "$r_get" 0.9 ">=") |
| 4 KiB GET, ops/s | $(mmm "$sget_m" "$sget_lo" "$sget_hi" 0) | nginx GET, same files | $(mmm "$nget_m" "$nget_lo" "$nget_hi" 0) | $(fmt "$r_sget" 2) | ≥ 0.5: $(verdict "$r_sget" 0.5 ">=") |
| 4 KiB PUT, ops/s | $(mmm "$sput_m" "$sput_lo" "$sput_hi" 0) | nginx GET (scale only) | $(mmm "$nget_m" "$nget_lo" "$nget_hi" 0) | $(fmt "$r_sput" 2) | none |
| VmRSS at rest, MiB | $(fmt "$rss_mib" 1) | | | | < 64: $(verdict "$rss_mib" 64 "<") |
| VmHWM after all, MiB | $(fmt "$hwm_mib" 1) | | | | < 64: $(verdict "$hwm_mib" 64 "<") |
| CPU s per GiB, large PUT | $(mmm "$cpu_put_m" "$cpu_put_lo" "$cpu_put_hi" 3) | md5sum of the file | $(mmm "$cpu_md5_m" "$cpu_md5_lo" "$cpu_md5_hi" 3) | $(ratio "$cpu_put_m" "$cpu_md5_m") | |
| CPU s per GiB, multipart PUT | $(mmm "$cpu_mp_m" "$cpu_mp_lo" "$cpu_mp_hi" 3) | md5sum of the file | $(mmm "$cpu_md5_m" "$cpu_md5_lo" "$cpu_md5_hi" 3) | $(ratio "$cpu_mp_m" "$cpu_md5_m") | |
| CPU s per GiB, large GET | $(mmm "$cpu_get_m" "$cpu_get_lo" "$cpu_get_hi" 3) | nginx | $(mmm "$cpu_nget_m" "$cpu_nget_lo" "$cpu_nget_hi" 3) | $(ratio "$cpu_get_m" "$cpu_nget_m") | |
| CPU µs per 4 KiB PUT | $(mmm "$cpu_sput_m" "$cpu_sput_lo" "$cpu_sput_hi" 0) | | | | |
| CPU µs per 4 KiB GET | $(mmm "$cpu_sget_m" "$cpu_sget_lo" "$cpu_sget_hi" 0) | nginx | $(mmm "$cpu_snget_m" "$cpu_snget_lo" "$cpu_snget_hi" 0) | $(ratio "$cpu_sget_m" "$cpu_snget_m") | |

Raw numbers (one per run, in order):

    large PUT coffer MB/s:          ${put_c[*]}
    multipart PUT coffer MB/s:      ${put_mp[*]}
    large PUT cat+md5sum MB/s:      ${put_r[*]}
    large GET coffer MB/s:          ${get_c[*]}
    large GET nginx MB/s:           ${get_n[*]}
    4 KiB PUT coffer ops/s:         ${sput[*]}
    4 KiB GET coffer ops/s:         ${sget[*]}
    4 KiB GET nginx ops/s:          ${nget[*]}
    CPU s/GiB large PUT coffer:     ${cpu_put[*]}
    CPU s/GiB multipart PUT coffer: ${cpu_mp[*]}
    CPU s/GiB md5sum (reference):   ${cpu_md5[*]}
    CPU s/GiB large GET coffer:     ${cpu_get[*]}
    CPU s/GiB large GET nginx:      ${cpu_nget[*]}
    CPU us/op 4 KiB PUT coffer:     ${cpu_sput[*]}
    CPU us/op 4 KiB GET coffer:     ${cpu_sget[*]}
    CPU us/op 4 KiB GET nginx:      ${cpu_snget[*]}
    coffer VmRSS at rest KiB:       $RSS_REST_KIB
    coffer VmHWM at end KiB:        $HWM_KIB
    coffer VmRSS at end KiB:        $RSS_END_KIB
    coffer threads at end:          $THREADS
EOF
