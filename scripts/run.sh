#!/usr/bin/env bash
# `make run`: start coffer server and coffer console together, in the foreground.
#
#   scripts/run.sh BIN SERVER_ADDRESS DATA_DIR CONSOLE_ADDRESS
#
# The first run sets up a demo under var/console/ (everything secret there is mode 0600 and
# never printed): the bucket `snapshots`, a read-only key for the console's catalogue, one key
# per tier in the server's rate groups free (50MB/s) and premium (250MB/s), a session secret,
# a users file with one free and one premium user whose generated passwords are written to
# var/console/demo-passwords, and a snapshot of docs/ as the chain `coffer-docs`, so the page is
# not empty. Later runs reuse it; delete var/console/ to set it up again.
set -euo pipefail
umask 077
bin=$1 address=$2 data=$3 console_address=$4
state=var/console
mkdir -p "$data" "$state"

"$bin" server --address "$address" --data "$data" &
server_pid=$!
console_pid=
stop() {
  [ -n "$console_pid" ] && kill -TERM "$console_pid" 2>/dev/null && wait "$console_pid" || true
  kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || true
}
trap 'stop; exit 0' INT TERM
trap 'stop' EXIT
for _ in $(seq 100); do
  curl -fsS "http://$address/health/ready" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; exit 1; }
  sleep 0.1
done

# Root's credentials, for the setup only: in this script's environment, never in argv.
if [ -z "${COFFER_ROOT_USER:-}" ]; then
  COFFER_ACCESS_KEY=$(sed -n 's/^access_key=//p' "$data/credentials")
  COFFER_SECRET_KEY=$(sed -n 's/^secret_key=//p' "$data/credentials")
else
  COFFER_ACCESS_KEY=$COFFER_ROOT_USER COFFER_SECRET_KEY=$COFFER_ROOT_PASSWORD
fi
export COFFER_ENDPOINT="http://$address"

# "KEY=VALUE" lines for a new read-only key of the bucket (a rate group's when given).
new_key() { # prefix group rate
  local prefix=$1 out
  shift
  out=$(COFFER_ACCESS_KEY=$COFFER_ACCESS_KEY COFFER_SECRET_KEY=$COFFER_SECRET_KEY \
    "$bin" admin key add --policy readonly --bucket snapshots "$@" --json)
  printf '%s_ACCESS_KEY=%s\n%s_SECRET_KEY=%s\n' \
    "$prefix" "$(printf '%s' "$out" | sed -n 's/.*"access_key": *"\([^"]*\)".*/\1/p')" \
    "$prefix" "$(printf '%s' "$out" | sed -n 's/.*"secret_key": *"\([^"]*\)".*/\1/p')"
}
password() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n' | head -c 24; }

if [ ! -f "$state/setup-done" ]; then
  echo "first run: setting up the demo in $state/"
  # CreateBucket, signed by curl with root's key given on stdin (not in argv).
  code=$(printf 'user = "%s:%s"\n' "$COFFER_ACCESS_KEY" "$COFFER_SECRET_KEY" |
    curl -sS -o /dev/null -w '%{http_code}' -K - --aws-sigv4 "aws:amz:us-east-1:s3" -X PUT \
      "http://$address/snapshots")
  case $code in 200 | 409) ;; *) echo "cannot create the bucket 'snapshots' (HTTP $code)" >&2; exit 1 ;; esac
  {
    new_key COFFER
    new_key COFFER_CONSOLE_TIER_FREE --rate-group free --rate 50MB/s
    new_key COFFER_CONSOLE_TIER_PREMIUM --rate-group premium --rate 250MB/s
  } >"$state/console.env"
  head -c 48 /dev/urandom | base64 | tr -d '\n' >"$state/session-secret"
  free_pw=$(password) premium_pw=$(password)
  rm -f "$state/users"
  printf '%s\n' "$free_pw" | "$bin" console user add demo-free --tier free --users-file "$state/users" >/dev/null
  printf '%s\n' "$premium_pw" | "$bin" console user add demo-premium --tier premium --users-file "$state/users" \
    >/dev/null
  printf 'demo-free     %s   (tier free, 50 MB/s)\ndemo-premium  %s   (tier premium, 250 MB/s)\n' \
    "$free_pw" "$premium_pw" >"$state/demo-passwords"
  unset free_pw premium_pw
  COFFER_ACCESS_KEY=$COFFER_ACCESS_KEY COFFER_SECRET_KEY=$COFFER_SECRET_KEY \
    "$bin" snapshot create docs s3://snapshots/coffer-docs --label height=1 --no-progress >/dev/null
  touch "$state/setup-done"
fi

# The console reads with its own read-only key and signs with the tiers' keys.
(
  set -a
  . "$state/console.env"
  set +a
  export COFFER_CONSOLE_SESSION_SECRET_FILE=$state/session-secret
  exec "$bin" console --address "$console_address" --repository s3://snapshots --users-file "$state/users" \
    --refresh-interval 30s
) &
console_pid=$!
for _ in $(seq 100); do
  curl -fsS "http://$console_address/health/ready" >/dev/null 2>&1 && break
  kill -0 "$console_pid" 2>/dev/null || { wait "$console_pid"; exit 1; }
  sleep 0.1
done

cat <<MSG

coffer server and coffer console are running
  S3 endpoint:  http://$address          (root's keys: $data/credentials, mode 0600)
  console:      http://$console_address
  demo users:   demo-free, demo-premium  (passwords in $state/demo-passwords, mode 0600)

Add a snapshot and it shows up within 30 s (or: kill -HUP $console_pid):
  $bin snapshot create SOURCE_DIR s3://snapshots/CHAIN --label height=N

Open http://$console_address in a browser. Ctrl-C stops both.
MSG
wait "$server_pid"
