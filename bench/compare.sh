#!/usr/bin/env bash
# Before and after: the inference benchmarks of two revisions, in one run on
# this machine, interleaved so that drift hits both alike, compared with
# benchstat. Use it after touching a hot path.
#
#   bench/compare.sh OLD [NEW]          # NEW defaults to the working tree
#   BENCH='Infer/model=conv/' COUNT=6 TAGS=openblas bench/compare.sh 1863045
#
# Each revision's internal/model test binary is built from a git worktree
# (the working tree for NEW if not given), then the two run in turn COUNT
# times. Raw results and the benchstat table go to bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: bench/compare.sh OLD [NEW]}
NEW=${2:-}
BENCH=${BENCH:-Infer/model=conv/}
COUNT=${COUNT:-6}
BENCHTIME=${BENCHTIME:-1s}
TAGS=${TAGS:-}
out=bench/out
mkdir -p "$out"
GOFLAGS= go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
benchstat=$(go env GOPATH)/bin/benchstat

tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/old" >/dev/null 2>&1 || true; [ -n "$NEW" ] && git worktree remove --force "$tmp/new" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
git worktree add --detach "$tmp/old" "$OLD" >/dev/null
(cd "$tmp/old" && go test -c -tags "$TAGS" -o "$tmp/old.test" ./internal/model)
if [ -n "$NEW" ]; then
  git worktree add --detach "$tmp/new" "$NEW" >/dev/null
  (cd "$tmp/new" && go test -c -tags "$TAGS" -o "$tmp/new.test" ./internal/model)
else
  go test -c -tags "$TAGS" -o "$tmp/new.test" ./internal/model
  NEW="working tree ($(git rev-parse --short HEAD)+)"
fi

echo "# $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), tags '${TAGS}', $(go version | cut -d' ' -f3)"
echo "# old: $OLD   new: $NEW   bench: $BENCH   count: $COUNT"
: >"$out/compare-old.txt"
: >"$out/compare-new.txt"
for i in $(seq "$COUNT"); do
  for side in old new; do
    # The test binaries find the embedded weights in themselves; run from the
    # package directory anyway, as go test does.
    (cd internal/model && "$tmp/$side.test" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.benchmem) |
      grep '^Benchmark' >>"$out/compare-$side.txt"
  done
  echo "round $i of $COUNT done" >&2
done
"$benchstat" old="$out/compare-old.txt" new="$out/compare-new.txt" | tee "$out/compare.txt"
