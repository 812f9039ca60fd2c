#!/usr/bin/env bash
# What one aeserve process costs, for sizing Kubernetes requests and limits
# (deploy/base): RSS and CPU when idle, at fixed request rates, and flat out.
# The server is the image's build (pure Go, static); load is raw-PNG
# /v1/denoise, one digit per request, from hey on the same machine, so "flat
# out" shares the cores with the load generator.
#
#   bench/resources.sh                   # rates 250, 1000, 2000 req/s, then 64 connections unpaced
#   RATES="500 1500" DURATION=20s bench/resources.sh
#   ARGS="--role decoder" ROUTE=/v1/decode bench/resources.sh   # (decode needs a latent body: see LATENT)
#
# CPU is the server's own (utime + stime from /proc) over the run, in cores;
# RSS is sampled every 0.5 s (mean and peak of the samples, and the kernel's
# high-water mark VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-250 1000 2000}
DURATION=${DURATION:-15s}
PORT=${PORT:-18556}
ARGS=${ARGS:-}
ROUTE=${ROUTE:-/v1/denoise}
command -v hey >/dev/null || { apt-get update && apt-get install -y --no-install-recommends hey; }
mkdir -p bench/out
bin=bench/out/aeserve-resources
CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/server
png=bench/out/resources-digit.png
go run ./bench/digit > "$png"
body=$png
ctype=image/png
if [ -n "${LATENT:-}" ]; then body=$LATENT; ctype=application/octet-stream; fi

# shellcheck disable=SC2086 # flags are meant to split
"$bin" --addr "127.0.0.1:$PORT" --log-level error $ARGS >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; true' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:$PORT$ROUTE
tck=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }

# measure LABEL HEY-ARGS…: one row.
measure() {
  local label=$1; shift
  local samples=bench/out/resources-rss.txt
  : >"$samples"
  (while kill -0 $pid 2>/dev/null; do rss_kib >>"$samples"; sleep 0.5; done) &
  local sampler=$!
  local t0 c0 out t1 c1
  t0=$(date +%s.%N); c0=$(cpu_ticks)
  if [ $# -gt 0 ]; then
    out=$(hey "$@" -m POST -T "$ctype" -D "$body" "$url" 2>&1)
  else
    sleep "${DURATION%s}"; out=""
  fi
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  kill $sampler 2>/dev/null; wait $sampler 2>/dev/null || true
  local rps p99 codes
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p99=$(echo "$out" | awk '/99% in/ {printf "%.1f", $3*1000}')
  codes=$(echo "$out" | awk '/Status code distribution/ {f=1; next} f && /\[/ {printf "%s%s ", $1, $2}')
  awk -v l="$label" -v rps="${rps:-0}" -v p99="${p99:-–}" -v codes="${codes:-–}" -v hwm="$(hwm_mib)" \
      -v cpu="$(echo "($c1 - $c0) / $tck / ($t1 - $t0)" | bc -l)" '
    { s += $1; if ($1 > m) m = $1; n++ }
    END { printf "| %s | %s | %s | %.2f | %.0f | %.0f | %s | %s |\n", l, rps, p99, cpu, s/n/1024, m/1024, hwm, codes }' "$samples"
}

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3), aeserve $(git rev-parse --short HEAD 2>/dev/null || echo '?') $ARGS"
echo "| load | req/s | p99 ms | CPU cores | RSS mean MiB | RSS peak MiB | VmHWM MiB | codes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
measure "idle"
hey -z 2s -c 8 -m POST -T "$ctype" -D "$body" "$url" >/dev/null 2>&1 # warm up
for r in $RATES; do
  # hey paces each of its workers (-q is per worker): 8 workers at r/8 each.
  measure "$r req/s" -z "$DURATION" -c 8 -q $((r / 8))
done
measure "64 conns, unpaced" -z "$DURATION" -c 64
