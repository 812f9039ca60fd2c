#!/usr/bin/env bash
# CPU time per request by stage: where a /v1/denoise request's CPU goes
# outside the model's forward pass (issue 18).
#
#   bench/stages.sh [SERVER...]          # each SERVER a built binary or a git revision; default: the working tree
#   ROUNDS=3 DURATION=10s bench/stages.sh 09c03b1 HEAD
#   bench/stages.sh --classify BIN PROFILE REQUESTS   # only the table of one profile
#
# For each round, each server in turn (interleaved, so that drift on a shared
# machine hits all alike) and each scenario (SCENARIOS: raw, a 28×28 PNG as
# the body; multipart, the same PNG in form field img), the server is started
# with --log-level warn and pprof on a debug address, warmed up, and driven by
# hey at CONNS connections while a CPU profile of DURATION is taken. The
# requests answered within the profile are counted from the server's own
# aeserve_http_requests_total, read just before and after it.
#
# Each sample goes to one stage: the first frame, from the leaf up, that a
# stage's pattern matches (the rules below, in order), so nothing is counted
# twice and the stages add up to the profile's total. The garbage collector's
# work (background and assists) is its own stage wherever it was triggered.
# "CPU (proc)" is the server's user+system time over the profile's window,
# from /proc/PID/stat, per request: the profile's total should be close to it.
set -euo pipefail
cd "$(dirname "$0")/.."

# stage rules: name, then an awk regex over a frame's function name.
RULES='model forward|internal/model\.|internal/vec\.
scoring (quality)|internal/quality\.|server\.\(\*fullRun\)\.scores
PNG encode|digit\.EncodePNG|digit\.encodeGrey|image/png\.\(\*Encoder\)
PNG decode+header|digit\.Decode$|digit\.decodeSampled|digit\.decodeGrey|digit\.ReadHeader|image/png\.Decode
multipart|mime/multipart\.
GC|runtime\.(gcBgMarkWorker|bgsweep|bgscavenge|gcAssistAlloc|gcStart|gcDrain|markroot|scanobject|sweepone)
goroutine handoff (sched)|runtime\.(mcall|schedule|findRunnable|park_m|goexit0|netpoll|gopark|goready|ready|wakep|notewakeup|futexwakeup|futexsleep|chansend|chanrecv|selectgo|semrelease|semacquire|lock2|unlock2)$
batching|internal/batch\.
logging|zerolog
metrics|prometheus
response write|net/http\.\(\*response\)\.(Write|write|finishRequest|WriteHeader)|net/http\.\(\*chunkWriter\)|bufio\.\(\*Writer\)|net/http\.checkConnErrorWriter|net\.\(\*conn\)\.Write
HTTP read+parse|net/http\.\(\*conn\)\.readRequest|net/http\.readRequest|net/textproto|net\.\(\*conn\)\.Read|net/http\.\(\*connReader\)|bufio\.\(\*Reader\)|net/http\.\(\*body\)|server\.readBody|net/http\.\(\*maxBytesReader\)
routing, middleware, handler|go-chi|internal/server\.|net/http\.
runtime other|.'

# classify BIN PROFILE: "stage<TAB>seconds" for every stage, in the rules' order.
classify() {
  go tool pprof -traces "$1" "$2" 2>/dev/null | awk -v rules="$RULES" '
    BEGIN {
      n = split(rules, lines, "\n")
      for (i = 1; i <= n; i++) { p = index(lines[i], "|"); name[i] = substr(lines[i], 1, p - 1); re[i] = substr(lines[i], p + 1); sum[i] = 0 }
    }
    function secs(s) {
      if (s ~ /ms$/) return substr(s, 1, length(s) - 2) / 1e3
      if (s ~ /us$/ || s ~ /µs$/) return substr(s, 1, length(s) - 2) / 1e6
      if (s ~ /ns$/) return substr(s, 1, length(s) - 2) / 1e9
      if (s ~ /s$/) return substr(s, 1, length(s) - 1) + 0
      return 0
    }
    function flush() {
      if (w > 0) {
        st = n
        for (f = 1; f <= nf && st == n; f++)
          for (i = 1; i < n; i++) if (frames[f] ~ re[i]) { st = i; break }
        sum[st] += w
      }
      w = 0; nf = 0
    }
    /^-+\+-+/ { flush(); inblock = 1; next }
    !inblock { next }
    /^ +[0-9.]+(ms|s|us|µs|ns) +[^ ]/ { flush(); w = secs($1); frames[++nf] = $2; next }
    /^ +[^ ]/ { if (w > 0) frames[++nf] = $1 }
    END { flush(); for (i = 1; i <= n; i++) printf "%s\t%.6f\n", name[i], sum[i] }'
}

if [ "${1:-}" = --classify ]; then
  bin=${2:?} prof=${3:?} reqs=${4:?}
  echo "| stage | CPU µs/request |"
  echo "| --- | ---: |"
  classify "$bin" "$prof" | awk -F'\t' -v r="$reqs" '{t += $2; printf "| %s | %.1f |\n", $1, $2 / r * 1e6} END {printf "| **total (profile)** | **%.1f** |\n", t / r * 1e6}'
  exit 0
fi

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
SCENARIOS=${SCENARIOS:-raw multipart}
PORT=${PORT:-18563}
DEBUG_PORT=${DEBUG_PORT:-18564}
MNIST=${MNIST:-}
for d in /work/shared/mnist ../shared/mnist mnist; do
  [ -z "$MNIST" ] && [ -e "$d/t10k-images-idx3-ubyte.gz" ] && MNIST=$d
done
[ -n "$MNIST" ] || { echo "stages.sh: no MNIST test set (set MNIST=dir)" >&2; exit 1; }
command -v hey >/dev/null || { echo "stages.sh: hey is not installed" >&2; exit 1; }
secs=${DURATION%s}

tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  for wt in "$tmp"/wt*; do [ -d "$wt" ] && git worktree remove --force "$wt" >/dev/null 2>&1; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# The servers: binaries as given, revisions built as bench/ab.sh builds them.
[ $# -gt 0 ] || set -- ""
bins=() labels=()
i=0
for s in "$@"; do
  i=$((i + 1))
  if [ -z "$s" ]; then
    CGO_ENABLED=0 go build -trimpath -o "$tmp/s$i.bin" ./cmd/server
    labels+=("working tree ($(git rev-parse --short HEAD)+)")
  elif [ -f "$s" ] && [ -x "$s" ]; then
    cp "$s" "$tmp/s$i.bin"
    labels+=("$(basename "$s")")
  else
    git worktree add --detach "$tmp/wt$i" "$s" >/dev/null
    (cd "$tmp/wt$i" && CGO_ENABLED=0 go build -trimpath -o "$tmp/s$i.bin" ./cmd/server)
    labels+=("$(git rev-parse --short "$s")")
  fi
  bins+=("$tmp/s$i.bin")
done

# The request: MNIST test digit 0 as the server writes PNGs, raw and multipart.
go run ./bench/digit -data "$MNIST" -i 0 > "$tmp/digit.png"
boundary=aeserveStagesBoundary
{ printf -- '--%s\r\nContent-Disposition: form-data; name="img"; filename="digit.png"\r\nContent-Type: image/png\r\n\r\n' $boundary
  cat "$tmp/digit.png"; printf -- '\r\n--%s--\r\n' $boundary; } > "$tmp/multipart.body"

requests() { # requests URL: 2xx answers of /v1/denoise so far
  curl -sf "$1/metrics" | awk '/^aeserve_http_requests_total\{/ && /route="\/v1\/denoise"/ && /code="2/ {n += $NF} END {printf "%d\n", n}'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

for round in $(seq "$ROUNDS"); do
  for i in "${!bins[@]}"; do
    "${bins[$i]}" --addr "127.0.0.1:$PORT" --debug-addr "127.0.0.1:$DEBUG_PORT" --log-level warn >"$tmp/server.log" 2>&1 &
    pid=$!
    url=http://127.0.0.1:$PORT
    for _ in $(seq 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
    for sc in $SCENARIOS; do
      if [ "$sc" = raw ]; then args=(-T image/png -D "$tmp/digit.png")
      else args=(-T "multipart/form-data; boundary=$boundary" -D "$tmp/multipart.body"); fi
      hey -z 2s -c "$CONNS" -m POST "${args[@]}" "$url/v1/denoise" >/dev/null 2>&1
      hey -z "$((secs + 3))s" -c "$CONNS" -m POST "${args[@]}" "$url/v1/denoise" >"$tmp/hey.txt" 2>&1 &
      hp=$!
      sleep 1
      r0=$(requests "$url"); t0=$(ticks "$pid")
      curl -sf -o "$tmp/p-$i-$sc-$round.prof" "http://127.0.0.1:$DEBUG_PORT/debug/pprof/profile?seconds=$secs"
      r1=$(requests "$url"); t1=$(ticks "$pid")
      wait "$hp"
      echo "$i $sc $round $((r1 - r0)) $(( t1 - t0 ))" >> "$tmp/runs"
      classify "${bins[$i]}" "$tmp/p-$i-$sc-$round.prof" | sed "s/^/$i $sc\t/" >> "$tmp/stages"
      echo "round $round, ${labels[$i]}, $sc: $((r1 - r0)) requests in ${secs}s, $(awk -v t=$((t1 - t0)) -v r=$((r1 - r0)) -v hz="$hz" 'BEGIN {printf "%.1f", t / hz / r * 1e6}') CPU µs/request" >&2
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
done

echo "# CPU µs per /v1/denoise request by stage"
echo "$(date -u +%FT%TZ); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(go version | cut -d' ' -f3), pure-Go builds"
echo "command: ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS SCENARIOS=\"$SCENARIOS\" bench/stages.sh $*"
echo "hey -z ${secs}s -c $CONNS, a ${secs}s CPU profile in each of $ROUNDS interleaved rounds; stages summed over the rounds and divided by the requests answered"
for i in "${!bins[@]}"; do echo "server $((i + 1)): ${labels[$i]}"; done
echo
awk -F'\t' -v hz="$hz" -v nb="${#bins[@]}" -v scen="$SCENARIOS" '
  FNR == NR { split($0, a, " "); req[a[1] " " a[2]] += a[4]; tck[a[1] " " a[2]] += a[5]; next }
  { k = $1; if (!(($2) in seen)) { seen[$2] = 1; order[++ns] = $2 } sec[k, $2] += $3; tot[k] += $3 }
  END {
    nsc = split(scen, sc, " ")
    hdr = "| stage |"; sep = "| --- |"
    for (s = 1; s <= nsc; s++) for (b = 0; b < nb; b++) { hdr = hdr " " sc[s] " #" b + 1 " |"; sep = sep " ---: |" }
    print hdr; print sep
    for (j = 1; j <= ns; j++) {
      line = "| " order[j] " |"
      for (s = 1; s <= nsc; s++) for (b = 0; b < nb; b++) { k = b " " sc[s]; line = line sprintf(" %.1f |", sec[k, order[j]] / req[k] * 1e6) }
      print line
    }
    line = "| **total (profile)** |"; for (s = 1; s <= nsc; s++) for (b = 0; b < nb; b++) { k = b " " sc[s]; line = line sprintf(" **%.1f** |", tot[k] / req[k] * 1e6) } print line
    line = "| CPU (proc) |"; for (s = 1; s <= nsc; s++) for (b = 0; b < nb; b++) { k = b " " sc[s]; line = line sprintf(" %.1f |", tck[k] / hz / req[k] * 1e6) } print line
    line = "| requests/s |"; for (s = 1; s <= nsc; s++) for (b = 0; b < nb; b++) { k = b " " sc[s]; line = line sprintf(" %.0f |", req[k] / ('"$ROUNDS"' * '"$secs"')) } print line
  }' "$tmp/runs" "$tmp/stages"
