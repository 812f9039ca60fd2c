#!/usr/bin/env bash
# Batching sweep: one aeserve per flag set, raw-PNG /v1/denoise under hey,
# one markdown row each (req/s, p50, p99, peak RSS, status codes).
#
#   bench/sweep.sh "--workers 1 --max-batch 32" "--workers 2 --max-batch 64 --max-wait 2ms"
#   C=1 DURATION=8s bench/sweep.sh "--workers 1 --max-batch 32"
#   SOAK=120s bench/sweep.sh "--workers 1 --max-batch 32"   # also prints RSS every 10 s
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-64}
DURATION=${DURATION:-8s}
PORT=${PORT:-18555}
bin=bench/out/aeserve-sweep
mkdir -p bench/out
command -v hey >/dev/null || { apt-get update && apt-get install -y --no-install-recommends hey; }
go build -tags openblas -o "$bin" ./cmd/server
png=bench/out/sweep-digit.png
go run ./bench/digit > "$png"

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT
run() {
  # shellcheck disable=SC2086 # flags are meant to split
  "$bin" --addr "127.0.0.1:$PORT" --log-level error $1 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  url=http://127.0.0.1:$PORT/v1/denoise
  hey -z 2s -c "$C" -m POST -T image/png -D "$png" "$url" >/dev/null 2>&1
  if [ -n "${SOAK:-}" ]; then
    (for i in $(seq 0 10 "${SOAK%s}"); do echo "t=${i}s RSS $(awk '/VmRSS/ {print int($2/1024)}' /proc/$pid/status) MiB"; sleep 10; done) &
    sampler=$!
    out=$(hey -z "$SOAK" -c "$C" -m POST -T image/png -D "$png" "$url" 2>&1)
    wait "$sampler" # not a bare wait: the server is a child too
  else
    out=$(hey -z "$DURATION" -c "$C" -m POST -T image/png -D "$png" "$url" 2>&1)
  fi
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '/50% in/ {print $3*1000}')
  p99=$(echo "$out" | awk '/99% in/ {print $3*1000}')
  codes=$(echo "$out" | awk '/Status code distribution/ {f=1; next} f && /\[/ {printf "%s%s ", $1, $2}')
  hwm=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$pid/status)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
  printf '| `%s` | %.0f | %.1f | %.1f | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$hwm" "$codes"
}
echo "| flags | req/s | p50 ms | p99 ms | peak RSS MiB | codes |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for flags in "$@"; do run "$flags"; done
