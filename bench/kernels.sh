#!/usr/bin/env bash
# Kernel benchmarks in one run: inference (encode, decode, full) at batch 1, 8,
# 64 and 256 for both models, training, and this build's SGEMM ceiling, as a
# markdown table with effective GFLOP/s as a share of the measured ceiling.
#
#   bench/kernels.sh                 # OpenBLAS build (needs libopenblas-dev)
#   TAGS= bench/kernels.sh           # pure-Go build
#   BENCHTIME=2s COUNT=3 bench/kernels.sh
#   TAGS= KERNELS=avx2 bench/kernels.sh    # one kernel path (AESERVE_KERNELS; default auto, the fastest here)
#   BENCH='Infer/model=conv/|SGEMM' bench/kernels.sh   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."
TAGS=${TAGS-openblas}
BENCHTIME=${BENCHTIME:-1s}
COUNT=${COUNT:-1}
KERNELS=${KERNELS:-auto}
BENCH=${BENCH:-Infer|Train|SGEMM}
out=bench/out
mkdir -p "$out"
raw="$out/kernels-${TAGS:-gonum}-$KERNELS.txt"

echo "# AESERVE_KERNELS=$KERNELS go test -tags '$TAGS' -bench '$BENCH' -benchtime $BENCHTIME -count $COUNT -benchmem ./internal/model" >&2
echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
AESERVE_KERNELS=$KERNELS go test -tags "$TAGS" -run '^$' -bench "$BENCH" -benchtime "$BENCHTIME" -count "$COUNT" -benchmem ./internal/model | tee "$raw" >&2

# The ceiling is the best SGEMM this machine has, not only this build's:
# OpenBLAS too (when libopenblas-dev is installed), with its AVX-512 kernel
# where the CPU has AVX-512 (OPENBLAS_CORETYPE=Haswell, set on some boxes,
# holds it to AVX2). CEILING=0 skips this.
if [[ ${CEILING:-1} == 1 ]] && compgen -G '/usr/include/*/cblas.h' >/dev/null; then
  ct=Haswell
  grep -q avx512f /proc/cpuinfo && ct=SkylakeX
  echo "# ceiling: OPENBLAS_CORETYPE=$ct go test -tags openblas -bench SGEMM ./internal/model" >&2
  OPENBLAS_CORETYPE=$ct go test -tags openblas -run '^$' -bench 'SGEMM' -benchtime "$BENCHTIME" -count "$COUNT" ./internal/model |
    sed "s|backend=openblas|backend=openblas-$ct|" | grep '^BenchmarkSGEMM' | tee -a "$raw" >&2
fi

# ONNX Runtime on the same model, weights and cores, right after (ORT=0 to
# skip): onnxruntime-node from bench/peers/node (bench/load.sh installs it)
# runs full.onnx, exported from weights/conv by peers/export_onnx.py (needs
# Debian's python3-torch), with intra-op threads = cores.
ORT=${ORT:-1}
node_dir=bench/peers/node
if [[ $ORT == 1 ]]; then
  if [[ ! -e $node_dir/node_modules/onnxruntime-node/package.json ]]; then
    echo "# ONNX Runtime skipped: run 'ONNXRUNTIME_NODE_INSTALL=skip npm ci' in $node_dir (or bench/load.sh) first" >&2
  else
    onnx=$out/onnx-conv
    if [[ ! -e $onnx/full.onnx ]]; then
      (cd bench/peers && /usr/bin/python3 export_onnx.py --weights ../../weights/conv --out "../../$onnx") >&2
    fi
    for _ in $(seq "$COUNT"); do
      node "$node_dir/kernels.js" --model "$onnx/full.onnx" --threads "$(nproc)" \
        --time "${BENCHTIME%s}" --batches 1,8,64,256 | tee -a "$raw" >&2
    done
  fi
fi

# Medians over -count runs; the ceiling is the best SGEMM figure of this run.
awk '
function metric(name,   i) { for (i = 3; i < NF; i++) if ($(i+1) == name) return $i; return "" }
/^BenchmarkSGEMM/ { g = metric("GFLOP/s"); if (g > ceil) { ceil = g; ceilname = $1 } next }
/^BenchmarkORT/ {
  split($1, f, "batch="); b = f[2]; no[b]++; ort[b, no[b]] = metric("images/s")
  if (!(b in oseen)) { oseen[b] = 1; oorder[++ok] = b }
  next
}
/^BenchmarkInfer|^BenchmarkTrain/ {
  name = $1; sub(/-[0-9]+$/, "", name)
  n[name]++; ips[name, n[name]] = metric("images/s")
  if (metric("GFLOP/s") != "") fpi[name] = metric("GFLOP/s") / metric("images/s") # GFLOP an image
  al[name] = metric("allocs/op"); by[name] = metric("B/op"); ns[name] = metric("ns/op")
  if (!(name in seen)) { seen[name] = 1; order[++k] = name }
}
END {
  printf "kernels %s; SGEMM ceiling (best of this run): %.1f GFLOP/s (%s)\n\n", kernels, ceil, ceilname
  print "| benchmark | images/s | ms/batch | effective GFLOP/s | of ceiling | allocs/op | B/op |"
  print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for (j = 1; j <= k; j++) {
    name = order[j]; m = n[name]
    # median of the images/s samples (insertion sort, m is small)
    for (a = 1; a <= m; a++) v[a] = ips[name, a]
    for (a = 2; a <= m; a++) { x = v[a]; b = a - 1; while (b > 0 && v[b] > x) { v[b+1] = v[b]; b-- } v[b+1] = x }
    med = (m % 2) ? v[(m+1)/2] : (v[m/2] + v[m/2+1]) / 2
    # GFLOP/s of the median sample, so that it and its share of the ceiling go with the images/s shown
    g = (name in fpi) ? med * fpi[name] : ""; share = (g != "" && ceil > 0) ? sprintf("%.0f%%", 100 * g / ceil) : "–"
    if (g == "") g = "–"; else g = sprintf("%.1f", g)
    printf "| %s | %.0f | %.3f | %s | %s | %s | %s |\n", name, med, ns[name] / 1e6, g, share, al[name], by[name]
    medof[name] = med
  }
  if (ok > 0) {
    print "\n| batch | ONNX Runtime images/s | ms/batch | conv full images/s | conv full / ONNX Runtime |"
    print "| ---: | ---: | ---: | ---: | ---: |"
    for (j = 1; j <= ok; j++) {
      b = oorder[j]; m = no[b]
      for (a = 1; a <= m; a++) v[a] = ort[b, a]
      for (a = 2; a <= m; a++) { x = v[a]; c = a - 1; while (c > 0 && v[c] > x) { v[c+1] = v[c]; c-- } v[c+1] = x }
      med = (m % 2) ? v[(m+1)/2] : (v[m/2] + v[m/2+1]) / 2
      ours = medof["BenchmarkInfer/model=conv/half=full/batch=" b]
      printf "| %s | %.0f | %.3f | %s | %s |\n", b, med, 1000 * b / med, ours ? sprintf("%.0f", ours) : "–", ours ? sprintf("%.2f×", ours / med) : "–"
    }
  }
}' kernels="$KERNELS" "$raw" | tee "$out/kernels-${TAGS:-gonum}-$KERNELS.md"
