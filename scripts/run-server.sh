#!/usr/bin/env bash
# `make run`: start coffer server in the foreground and tell the user how to reach it.
set -euo pipefail
bin=$1 address=$2 data=$3
mkdir -p "$data"
"$bin" server --address "$address" --data "$data" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 50); do
  curl -fsS "http://$address/health/ready" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { wait $pid; exit 1; }
  sleep 0.1
done
if [ -n "${COFFER_ROOT_USER:-}" ]; then
  user=$COFFER_ROOT_USER; pass_hint='$COFFER_ROOT_PASSWORD'
else
  user=$(sed -n 's/^access_key=//p' "$data/credentials")
  pass_hint="\$(sed -n 's/^secret_key=//p' $data/credentials)"
fi
# coffer commands reach 127.0.0.1:9000 by default; any other address must be named.
endpoint_flag=""
[ "$address" = 127.0.0.1:9000 ] || endpoint_flag=" --endpoint http://$address"
cat <<MSG

coffer server is running
  endpoint:    http://$address
  access key:  $user
  secret key:  in $data/credentials (mode 0600)
  data:        $data

Try it (README.md, Quick start):
  export AWS_ACCESS_KEY_ID=$user AWS_SECRET_ACCESS_KEY=$pass_hint AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url http://$address s3 mb s3://demo
  $bin snapshot create docs s3://demo/snapshots/docs$endpoint_flag
  $bin snapshot ls s3://demo/snapshots/docs$endpoint_flag

Ctrl-C stops the server.
MSG
wait $pid
