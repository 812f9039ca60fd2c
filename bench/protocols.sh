#!/usr/bin/env bash
# /v1 PNG, V2 JSON, V2 binary and V2 gRPC against one aeserve on loopback, in
# one run, at 1 image per request (64 concurrent) and 64 images per request
# (8 concurrent): req/s, images/s, p50 and p99 per mode. The full model of
# denoise runs every request, so the forward passes are the same and only
# the protocol differs. The load generator (bench/protocols) is Go for all
# four, so the client side costs the same kind of work.
#
#   bench/protocols.sh                         # 10 s per cell
#   DURATION=5s ROUNDS=2 bench/protocols.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-18560}
GPORT=${GPORT:-18561}
MNIST=${MNIST:-../shared/mnist}
mkdir -p bench/out
bin=bench/out/aeserve-protocols
CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/server
go build -o bench/out/protocols ./bench/protocols
"$bin" --addr "127.0.0.1:$PORT" --grpc-addr "127.0.0.1:$GPORT" --log-level error >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; true' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3), aeserve $(git rev-parse --short HEAD 2>/dev/null || echo '?'), pure-Go build, $DURATION per cell"
echo "| mode | images/request | concurrent | req/s | images/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
  for nc in "1 64" "64 8"; do
    set -- $nc
    for mode in v1png v2json v2binary grpc; do
      bench/out/protocols -addr "http://127.0.0.1:$PORT" -grpc "127.0.0.1:$GPORT" -mode "$mode" -n "$1" -c "$2" -d "$DURATION" -data "$MNIST"
    done
  done
done
