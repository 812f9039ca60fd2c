#!/usr/bin/env bash
# Soak: builds the server, starts it on loopback with its metrics on their own
# port, and runs bench/soak against it for a bounded few minutes at moderate
# load (a mix of routes, some bad requests). Fails if RSS grows 10% or more
# after warm-up, or if the goroutines do not return to their idle count (±5)
# once the load stops. Outside CI's time budget.
#
#   bench/soak.sh                       # 60 s of warm-up, then 3 minutes more; 8 clients, 200 requests/s
#   DURATION=10m CONC=16 RATE=400 bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-4m}
WARMUP=${WARMUP:-60s}
CONC=${CONC:-8}
RATE=${RATE:-200}
PORT=${PORT:-18080}
METRICS_PORT=${METRICS_PORT:-19090}

tmp=$(mktemp -d)
go build -o "$tmp/server" ./cmd/server
"$tmp/server" --addr "127.0.0.1:$PORT" --metrics-addr "127.0.0.1:$METRICS_PORT" --models conv,denoise \
  2>"$tmp/server.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
go run ./bench/soak -url "http://127.0.0.1:$PORT" -metrics "http://127.0.0.1:$METRICS_PORT" \
  -duration "$DURATION" -warmup "$WARMUP" -c "$CONC" -rate "$RATE"
