#!/usr/bin/env bash
# End-to-end load benchmark: aeserve (Go, OpenBLAS build) against the same model served by
# FastAPI + PyTorch and by Node.js + ONNX Runtime, on loopback, one server at a time, all
# on the same cores, driven by wrk (or hey) with the same requests. See bench/README.md.
#
#   bench/load.sh                     # everything, about 6 minutes after the first install
#   DURATION=15s bench/load.sh        # longer cells
#   SERVERS="go node" CONNS="1 64" bench/load.sh
#
# Environment: DURATION (10s) and WARMUP (2s) per cell, CONNS ("1 16 64"), SERVERS
# ("go fastapi node"), SCENARIOS ("denoise-multipart denoise-raw decode"), OUT (bench/out),
# LOADGEN (wrk; hey is the other choice), TORCH_THREADS (2, FastAPI peer), NODE_THREADS (1, ONNX Runtime intra-op threads, Node peer),
# SKIP_INSTALL=1 to never run apt-get/npm, REQUIRE_IDLE=1 to refuse to start when the
# 1-minute load average is 0.5 or more, AESERVE_REV=<git rev> to build that commit (via git
# archive) instead of the working tree, AESERVE_BIN=path to benchmark a prebuilt server, DEADLINE (600) seconds after which the whole run is aborted.
#
# Writes bench/out/<run>/{table.md,results.jsonl,meta.json,raw/*.txt,logs/*} and points
# bench/out/latest at it. Exits 1 if a peer's output differs from the Go server's by more than
# one grey level (the table is still written).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")
DURATION=${DURATION:-10s}
# The build the container image ships is pure Go (README, Deploy); AESERVE_TAGS=openblas
# measures the OpenBLAS build instead.
AESERVE_TAGS=${AESERVE_TAGS-}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-"1 16 64"}
SERVERS=${SERVERS:-"go fastapi node"}
# wrk (C, epoll) costs about 25 µs of CPU a request where hey (Go, net/http) costs about 135: on 2
# shared cores hey took 0.75 of them at aeserve's rate, and the load generator became what was measured.
LOADGEN=${LOADGEN:-wrk}
SCENARIOS=${SCENARIOS:-"denoise-multipart denoise-raw decode"}
OUT=${OUT:-$BENCH_DIR/out}
TORCH_THREADS=${TORCH_THREADS:-2} # torch.set_num_threads in the FastAPI peer
NODE_THREADS=${NODE_THREADS:-1}   # ONNX Runtime intra-op threads in the Node peer (1 measured best, see README)
PY=/usr/bin/python3 # Debian's Python, whatever python3 is first in PATH (pyenv, venvs)
DIGITS=8            # checked against the Go server; the first one is the load request
BOUNDARY=aeservebench7d1f0c
DEADLINE=${DEADLINE:-600} # seconds: the whole run is aborted past this

[[ $LOADGEN == wrk || $LOADGEN == hey ]] || { echo "LOADGEN is wrk or hey" >&2; exit 2; }
[[ $DURATION =~ ^[0-9]+s$ && $WARMUP =~ ^[0-9]+s$ ]] || { echo "DURATION and WARMUP are whole seconds, e.g. 10s" >&2; exit 2; }

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
RUN=$OUT/$RUN_ID
BIN=$RUN/bin
PIDS=()
SERVER_PID=
MISMATCH=0

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# cleanup kills every background process this script started (each runs in its own process
# group, so a server's children go too), then waits for them.
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# spawn CMD... starts CMD in the background in a new session; sets SPAWNED to its pid.
spawn() {
  setsid "$@" &
  SPAWNED=$!
  PIDS+=("$SPAWNED")
}

# stop_server PID stops one server started by spawn and forgets it.
stop_server() {
  local pid=$1 p keep=()
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ------------------------------------------------------------------ dependencies

ensure_deps() {
  [[ ${SKIP_INSTALL:-0} == 1 ]] && { log "SKIP_INSTALL=1: not installing anything"; return; }
  local apt=() mod pkg
  command -v "$LOADGEN" >/dev/null || apt+=("$LOADGEN")
  command -v node >/dev/null || apt+=(nodejs)
  command -v npm >/dev/null || apt+=(npm)
  [[ -x $PY ]] || apt+=(python3)
  dpkg -s libopenblas-dev >/dev/null 2>&1 || apt+=(libopenblas-dev)
  # module:package; uvloop and httptools are what uvicorn[standard] brings, uvicorn picks them up.
  for mod in fastapi:python3-fastapi uvicorn:python3-uvicorn multipart:python3-multipart \
    torch:python3-torch PIL:python3-pil numpy:python3-numpy uvloop:python3-uvloop httptools:python3-httptools; do
    pkg=${mod#*:}
    [[ -x $PY ]] && "$PY" -c "import ${mod%%:*}" 2>/dev/null || apt+=("$pkg")
  done
  if ((${#apt[@]})); then
    log "installing Debian packages: ${apt[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${apt[@]}"
  fi
  if [[ ! -e $BENCH_DIR/peers/node/node_modules/onnxruntime-node/package.json ]]; then
    log "npm ci in bench/peers/node (npm registry only: ONNX Runtime's CUDA download is skipped)"
    # onnxruntime-node's postinstall fetches CUDA provider libraries from api.nuget.org on
    # linux/x64 unless told to skip; the CPU runtime is inside the npm tarball.
    (cd "$BENCH_DIR/peers/node" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
  fi
  command -v go >/dev/null || die "go is needed to build the server"
}

# ------------------------------------------------------------------ servers

wait_ready() { # URL NAME PID
  local url=$1 name=$2 pid=$3 i
  for ((i = 0; i < 240; i++)); do
    curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited before becoming ready (see $RUN/logs/$name.log)"
    sleep 0.25
  done
  die "$name not ready after 60 s (see $RUN/logs/$name.log)"
}

start_server() { # NAME PORT; sets SERVER_PID
  local name=$1 port=$2
  case $name in
    go)
      spawn "$BIN/aeserve" --addr "127.0.0.1:$port" --weights "$RUN/weights" --log-level warn ;;
    fastapi)
      spawn env -C "$BENCH_DIR/peers" "$PY" fastapi_server.py --weights "$RUN/weights/denoise" --port "$port" --threads "$TORCH_THREADS" ;;
    node)
      spawn env -C "$BENCH_DIR/peers/node" node server.js --models "$RUN/onnx" --port "$port" --threads "$NODE_THREADS" ;;
  esac >"$RUN/logs/$name.log" 2>&1
  SERVER_PID=$SPAWNED
  wait_ready "http://127.0.0.1:$port" "$name" "$SERVER_PID"
}

# cpu_ticks PID: user+system clock ticks of the process, all threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# loadgen SECONDS CONNS CTYPE BODY URL: one cell of load, the generator's report on stdout.
loadgen() {
  local secs=$1 c=$2 ctype=$3 body=$4 url=$5
  case $LOADGEN in
    # One wrk thread per core, never more threads than connections; a response may take 20 s, as
    # with hey (wrk's own default of 2 s counted FastAPI's slowest answers at 64 connections as errors).
    wrk) BODY=$body CTYPE=$ctype timeout $((secs + 60)) wrk -t "$((c < 2 ? c : 2))" -c "$c" -d "${secs}s" --timeout 20s \
      -s "$BENCH_DIR/loadgen/post.lua" "$url" ;;
    hey) timeout $((secs + 60)) hey -z "${secs}s" -c "$c" -m POST -T "$ctype" -D "$body" "$url" ;;
  esac
}

# measure NAME URL: every scenario × connection count against one running server.
measure() {
  local name=$1 url=$2 sc c body ctype route raw t0 t1
  for sc in $SCENARIOS; do
    case $sc in
      denoise-multipart) route=/v1/denoise body=$RUN/req/multipart.body ctype="multipart/form-data; boundary=$BOUNDARY" ;;
      denoise-raw) route=/v1/denoise body=$RUN/req/digit.png ctype=image/png ;;
      decode) route=/v1/decode body=$RUN/req/latent.bin ctype=application/octet-stream ;;
      *) die "unknown scenario $sc" ;;
    esac
    for c in $CONNS; do
      raw=$RUN/raw/$name-$sc-c$c.txt
      loadgen "${WARMUP%s}" "$c" "$ctype" "$body" "$url$route" >/dev/null
      # `times` (this shell's waited-for children) before and after gives the generator's CPU time.
      times >"$RUN/raw/.times0"
      t0=$(cpu_ticks "$SERVER_PID")
      loadgen "${DURATION%s}" "$c" "$ctype" "$body" "$url$route" >"$raw"
      t1=$(cpu_ticks "$SERVER_PID")
      times >"$RUN/raw/.times1"
      log "$("$PY" "$BENCH_DIR/benchtool.py" record "$raw" "$name" "$sc" "$c" $((t1 - t0)) "$(getconf CLK_TCK)" \
        "$(vm_hwm_kib "$SERVER_PID")" "$RUN/results.jsonl" "$RUN/raw/.times0" "$RUN/raw/.times1")"
    done
  done
}

# ------------------------------------------------------------------ main

main() {
  mkdir -p "$RUN"/{raw,logs,req,bin,refs}
  ln -sfn "$RUN_ID" "$OUT/latest"
  exec > >(tee "$RUN/logs/load.log") 2>&1
  # Bound the whole run: a watchdog that interrupts this script past DEADLINE seconds.
  spawn bash -c 'sleep "$1" && echo "deadline of $1 s reached, aborting" >&2 && kill -TERM "$2"' _ "$DEADLINE" $$

  local load_before
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  log "run $RUN_ID, load average before: $load_before"
  if awk -v l="${load_before%% *}" 'BEGIN {exit !(l >= 0.5)}'; then
    [[ ${REQUIRE_IDLE:-0} == 1 ]] && die "load average ${load_before%% *} >= 0.5 and REQUIRE_IDLE=1"
    log "WARNING: the machine is not idle (1-min load ${load_before%% *}); figures will be low and noisy"
  fi

  ensure_deps

  if [[ -n ${AESERVE_BIN:-} ]]; then
    log "using prebuilt $AESERVE_BIN"
    cp "$AESERVE_BIN" "$BIN/aeserve"
  elif [[ -n ${AESERVE_REV:-} ]]; then
    # A committed revision, exported without touching the repository (no worktree, no checkout).
    log "building aeserve $AESERVE_REV (tags '$AESERVE_TAGS') from git archive"
    mkdir -p "$RUN/src"
    (cd "$REPO" && git archive "$AESERVE_REV") | tar -x -C "$RUN/src"
    (cd "$RUN/src" && go build -tags "$AESERVE_TAGS" -o "$BIN/aeserve" ./cmd/server)
  else
    log "building aeserve from the working tree (tags '$AESERVE_TAGS')"
    (cd "$REPO" && go build -tags "$AESERVE_TAGS" -o "$BIN/aeserve" ./cmd/server)
  fi
  # One snapshot of the weights for all three servers, so a concurrent retrain cannot make
  # them disagree. The Go server wants every model it serves (else it trains on startup).
  cp -r "$REPO/weights" "$RUN/weights"
  rm -f "$RUN/weights/weights.go"

  log "test digits, request bodies"
  if [[ -e /work/shared/mnist/t10k-images-idx3-ubyte.gz ]]; then
    "$PY" "$BENCH_DIR/benchtool.py" digits /work/shared/mnist "$RUN/digits" "$DIGITS"
  elif [[ -e $REPO/mnist/t10k-images-idx3-ubyte.gz ]]; then
    "$PY" "$BENCH_DIR/benchtool.py" digits "$REPO/mnist" "$RUN/digits" "$DIGITS"
  else
    die "no MNIST test set in /work/shared/mnist or $REPO/mnist"
  fi
  LOAD_DIGIT=$(ls "$RUN"/digits/*.png | head -n1)
  cp "$LOAD_DIGIT" "$RUN/req/digit.png"
  "$PY" "$BENCH_DIR/benchtool.py" multipart "$RUN/req/digit.png" "$BOUNDARY" "$RUN/req/multipart.body"

  if [[ " $SERVERS " == *" node "* ]]; then
    log "exporting the PyTorch model to ONNX for the Node peer"
    (cd "$BENCH_DIR/peers" && "$PY" export_onnx.py --weights "$RUN/weights/denoise" --out "$RUN/onnx") \
      >"$RUN/logs/export_onnx.log" 2>&1 || die "ONNX export failed (see $RUN/logs/export_onnx.log)"
  fi

  # The Go server always runs first: its outputs are the reference the peers are checked
  # against, and its /v1/encode makes the latent the decode requests send.
  local name port url order=go chk
  for name in $SERVERS; do [[ $name == go ]] || order+=" $name"; done
  mkdir -p "$RUN/checks" "$RUN/rss"
  for name in $order; do
    port=$(free_port)
    url=http://127.0.0.1:$port
    log "starting $name on $url"
    start_server "$name" "$port"
    if [[ $name == go ]]; then
      "$PY" "$BENCH_DIR/benchtool.py" fetch-refs "$url" "$RUN/digits" "$RUN/refs"
      cp "$RUN/refs/$(basename "$LOAD_DIGIT" .png).latent.bin" "$RUN/req/latent.bin"
    elif chk=$("$PY" "$BENCH_DIR/benchtool.py" check "$url" "$RUN/digits" "$RUN/refs" | tee "$RUN/checks/$name.json"); then
      log "$name output matches the Go server's: $chk"
    else
      MISMATCH=1
      log "WARNING: $name output differs from the Go server's by more than one grey level: $chk"
    fi
    if [[ " $SERVERS " == *" $name "* ]]; then
      measure "$name" "$url"
      vm_hwm_kib "$SERVER_PID" >"$RUN/rss/$name"
    fi
    stop_server "$SERVER_PID"
  done

  local build
  build="$(cd "$REPO" && git rev-parse --short HEAD)"
  [[ -z $(cd "$REPO" && git status --porcelain --untracked-files=no) ]] || build+=" + uncommitted changes"
  [[ -z ${AESERVE_REV:-} ]] || build="$(cd "$REPO" && git rev-parse --short "$AESERVE_REV") (git archive of $AESERVE_REV)"
  [[ -z ${AESERVE_BIN:-} ]] || build="prebuilt $AESERVE_BIN"
  [[ -n ${AESERVE_BIN:-} ]] || build+=" (build tags '${AESERVE_TAGS}': ${AESERVE_TAGS:-pure Go})"
  SETTING_TORCH_THREADS=$TORCH_THREADS SETTING_NODE_THREADS=$NODE_THREADS \
    VERSION_GO=$(go version | cut -d' ' -f3) \
    SETTING_LOADGEN=$LOADGEN VERSION_LOADGEN="$LOADGEN $(dpkg-query -W -f='${Version}' "$LOADGEN" 2>/dev/null || echo '?')" \
    VERSION_TORCH=$("$PY" -c 'import torch; print(torch.__version__)') \
    VERSION_FASTAPI=$("$PY" -c 'import fastapi; print(fastapi.__version__)') \
    VERSION_UVICORN=$("$PY" -c 'import uvicorn; print(uvicorn.__version__)') \
    VERSION_NODE=$(node --version) \
    VERSION_ONNXRUNTIME_NODE=$(cd "$BENCH_DIR/peers/node" && node -p 'require("onnxruntime-node/package.json").version') \
    "$PY" "$BENCH_DIR/benchtool.py" meta "$RUN/meta.json" "$load_before" "$DURATION" "$WARMUP" \
    "$build" "$RUN/checks" "$RUN/rss"
  "$PY" "$BENCH_DIR/benchtool.py" table "$RUN/results.jsonl" "$RUN/meta.json" >"$RUN/table.md"
  echo
  cat "$RUN/table.md"
  echo
  log "written to $RUN (also $OUT/latest)"
  ((MISMATCH == 0)) || { log "a peer's output did not match the Go server's"; exit 1; }
}

main "$@"
