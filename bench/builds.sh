#!/usr/bin/env bash
# Which build to ship: the pure-Go build (static, what the Dockerfile makes)
# against the OpenBLAS build (cgo), end to end on this machine. Raw-PNG
# /v1/denoise under hey, the two servers run in turn, ROUNDS times, so that
# drift on a shared machine hits both alike. One markdown row per run.
#
#   bench/builds.sh                      # 3 rounds of 8 s at 64 and at 1 connection
#   ROUNDS=5 DURATION=10s bench/builds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64 1}
PORT=${PORT:-18557}
command -v hey >/dev/null || { apt-get update && apt-get install -y --no-install-recommends hey; }
mkdir -p bench/out
CGO_ENABLED=0 go build -trimpath -o bench/out/aeserve-purego ./cmd/server
go build -trimpath -tags openblas -o bench/out/aeserve-openblas ./cmd/server
png=bench/out/builds-digit.png
go run ./bench/digit > "$png"
url=http://127.0.0.1:$PORT/v1/denoise

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, $(go version | cut -d' ' -f3), aeserve $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "| round | build | conns | req/s | p50 ms | p99 ms | codes |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | --- |"
for round in $(seq "$ROUNDS"); do
  for build in purego openblas; do
    bench/out/aeserve-$build --addr "127.0.0.1:$PORT" --log-level error >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
    hey -z 2s -c 16 -m POST -T image/png -D "$png" "$url" >/dev/null 2>&1
    for c in $CONNS; do
      out=$(hey -z "$DURATION" -c "$c" -m POST -T image/png -D "$png" "$url" 2>&1)
      echo "$out" | awk -v r="$round" -v b="$build" -v c="$c" '
        /Requests\/sec/ {rps = $2} /50% in/ {p50 = $3 * 1000} /99% in/ {p99 = $3 * 1000}
        /Status code distribution/ {f = 1; next} f && /\[/ {codes = codes $1 $2 " "}
        END {printf "| %s | %s | %s | %.0f | %.1f | %.1f | %s |\n", r, b, c, rps, p50, p99, codes}'
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
