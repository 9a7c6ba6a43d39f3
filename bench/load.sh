#!/usr/bin/env bash
# Load script: mediad on the embedded defaults (SQLite, disk) in a temp dir,
# then wrk posts small attachments and lists files. Figures go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
dir=$(mktemp -d)
# time(1) does not pass signals on: signal its child, mediad.
stop() { pkill -TERM -P "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap 'stop; rm -rf "$dir"' EXIT
go build -o "$dir/mediad" ./cmd/mediad
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA_DIR="$dir/data" LISTEN_ADDR="127.0.0.1:$port" LOG_LEVEL=error \
  RATE_LIMIT_UPLOADS_PER_MINUTE=10000000 RATE_LIMIT_REQUESTS_PER_MINUTE=10000000 \
  /usr/bin/time -v -o "$dir/time.txt" "$dir/mediad" &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
echo "== POST /upload (4.4 KB attachments, SQLite + disk, 16 connections, 10 s)"
timeout 60 wrk -t2 -c16 -d10s --latency -s bench/upload.lua "http://127.0.0.1:$port" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx"
echo "== GET /files?limit=20 (16 connections, 10 s)"
timeout 60 wrk -t2 -c16 -d10s --latency -H "x-user-id: u_load1" "http://127.0.0.1:$port/files?limit=20" | grep -E "Requests/sec|Latency|50%|99%|Non-2xx"
stop
grep "Maximum resident" "$dir/time.txt"
