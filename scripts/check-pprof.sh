#!/usr/bin/env bash
# Checks that Go's own pprof reads bench-runner's heap profile: profiles the
# baseline variant at rate 1 (every allocation) and runs `go tool pprof
# -top` on it, expecting the baseline's allocations by name, in the view it
# opens on: alloc_space (the pass frees every block it allocates, so Go's
# usual inuse_space would be empty). Installs Go (Debian's golang-go) with
# apt-get when missing.
#
# Usage: scripts/check-pprof.sh [OUT_DIR=target/check-pprof]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/check-pprof}
if ! command -v go >/dev/null; then
  apt-get install -y -q golang-go >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q golang-go >/dev/null; }
fi

cargo run --quiet --release -p bench-runner -- run --variant baseline --mode pair --messages 20000 --warmup 2000 \
  --repeat 1 --heap-profile --sample-rate 1 --format json --quiet --out "$out" > /dev/null
profile="$out/baseline/heap.pb.gz"
top=$(go tool pprof -top "$profile" 2>&1)
echo "$top" | head -20
grep -q "^Type: alloc_space" <<< "$top" || { echo "check-pprof: the profile does not open on alloc_space" >&2; exit 1; }
for name in copied_from boxed; do
  grep -q "$name" <<< "$top" || { echo "check-pprof: go tool pprof does not list $name" >&2; exit 1; }
done
# The four sample types, in Go's order.
types=$(go tool pprof -raw "$profile" 2>/dev/null | sed -n 's/^Samples://; /alloc_objects/p' | head -1)
echo "check-pprof: $profile read by $(go version | cut -d' ' -f3): sample types: $types"
