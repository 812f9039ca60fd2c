#!/usr/bin/env bash
# End to end, before and after: the servers of two revisions, built the
# same way, driven in turn by hey on the same requests, ROUNDS times, so that
# drift on a shared machine hits both alike. One markdown row per run.
#
#   bench/ab.sh OLD [NEW]               # NEW defaults to the working tree
#   ROUNDS=3 DURATION=8s CONNS="64 1" bench/ab.sh 1863045
#
# Requests: raw-PNG /v1/denoise and a binary latent to /v1/decode, one
# digit each (the routes bench/load.sh measures against the peers).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: bench/ab.sh OLD [NEW]}
NEW=${2:-}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64 1}
PORT=${PORT:-18562}
command -v hey >/dev/null || { apt-get update && apt-get install -y --no-install-recommends hey; }
mkdir -p bench/out
tmp=$(mktemp -d)
# Every step may fail (no server running, no new worktree) without stopping
# the rest: under set -e a failing command would end the trap early and
# leave the worktree registered.
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  git worktree remove --force "$tmp/old" >/dev/null 2>&1 || true
  if [ -d "$tmp/new" ]; then git worktree remove --force "$tmp/new" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"' EXIT
pid=
git worktree add --detach "$tmp/old" "$OLD" >/dev/null
(cd "$tmp/old" && CGO_ENABLED=0 go build -trimpath -o "$tmp/old.bin" ./cmd/server)
if [ -n "$NEW" ]; then
  git worktree add --detach "$tmp/new" "$NEW" >/dev/null
  (cd "$tmp/new" && CGO_ENABLED=0 go build -trimpath -o "$tmp/new.bin" ./cmd/server)
else
  CGO_ENABLED=0 go build -trimpath -o "$tmp/new.bin" ./cmd/server
  NEW="working tree ($(git rev-parse --short HEAD)+)"
fi
png=bench/out/ab-digit.png
go run ./bench/digit > "$png"

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(go version | cut -d' ' -f3), pure-Go builds; old: $OLD, new: $NEW; $DURATION per cell"
echo "CPU µs/req: the server's user+system time over the cell (/proc/PID/stat) per answered request, less sensitive than req/s to what else the machine runs"
echo "| round | server | request | conns | req/s | p50 ms | p99 ms | CPU µs/req | codes |"
echo "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
  for side in old new; do
    "$tmp/$side.bin" --addr "127.0.0.1:$PORT" --log-level error >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
    url=http://127.0.0.1:$PORT
    curl -sf -H 'Accept: application/octet-stream' -H 'Content-Type: image/png' --data-binary @"$png" "$url/v1/encode" > "$tmp/latent.bin"
    hey -z 2s -c 16 -m POST -T image/png -D "$png" "$url/v1/denoise" >/dev/null 2>&1
    for c in $CONNS; do
      for req in denoise decode; do
        t0=$(ticks "$pid")
        if [ $req = denoise ]; then
          out=$(hey -z "$DURATION" -c "$c" -m POST -T image/png -D "$png" "$url/v1/denoise" 2>&1)
        else
          out=$(hey -z "$DURATION" -c "$c" -m POST -T application/octet-stream -D "$tmp/latent.bin" "$url/v1/decode" 2>&1)
        fi
        t1=$(ticks "$pid")
        echo "$out" | awk -v r="$round" -v s="$side" -v q="/v1/$req" -v c="$c" -v t=$((t1 - t0)) -v hz="$hz" '
          /Requests\/sec/ {rps = $2} /50% in/ {p50 = $3 * 1000} /99% in/ {p99 = $3 * 1000}
          /Status code distribution/ {f = 1; next} f && /\[/ {codes = codes $1 $2 " "; n += $2 + 0}
          END {printf "| %s | %s | %s | %s | %.0f | %.1f | %.1f | %.1f | %s |\n", r, s, q, c, rps, p50, p99, n ? t / hz / n * 1e6 : 0, codes}'
      done
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done
