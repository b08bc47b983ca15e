#!/usr/bin/env bash
# The main job end to end on a fresh machine, with no cloud account:
# install s3erofs, start a local S3 server (moto) with a small sample bucket,
# build an EROFS image from it, check it with fsck.erofs and show its tree.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v fsck.erofs >/dev/null; then
    apt-get update -qq && apt-get install -y -qq erofs-utils >/dev/null
fi
python3 -m pip install -q -e '.[test]'

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; rm -rf "$work"' EXIT

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
python3 scripts/sample_bucket.py sample

s3erofs build s3://sample "$work/sample.erofs" -T 1700000000 -U clear
fsck.erofs "$work/sample.erofs" && echo "fsck.erofs: no errors"
s3erofs ls -l -R "$work/sample.erofs"
