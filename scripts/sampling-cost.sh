#!/usr/bin/env bash
# What sampling every thread at Go's default rate (512 KiB,
# ALLOCSCOPE_SAMPLE_RATE=524288, as a service runs) costs two workloads,
# each against itself without sampling, side by side: the runs alternate
# (without, with) for R rounds after a warm-up round, and each round's
# ratio is with / without. Prints the median ratio (min-max) per workload.
#
# - json: serde_json parses a generated 5.2 MB document into a Value, 5
#   times (overhead_json_allocscope), wall seconds;
# - queue: the queue study's baseline variant in pair mode, 2,000,000
#   messages (bench-runner), ns per message.
#
# Usage: scripts/sampling-cost.sh [R=7]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-7}
unset ALLOCSCOPE_SAMPLE_RATE

cargo build --quiet --release -p allocscope --example overhead_json_allocscope
cargo build --quiet --release -p bench-runner
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

json() { # [rate] -> seconds
  env ${1:+ALLOCSCOPE_SAMPLE_RATE=$1} target/release/examples/overhead_json_allocscope 5.2 0 process 5 \
    | sed -E 's/^[^:]*: ([0-9.]+) s;.*/\1/'
}
queue() { # [rate] -> ns per message
  env ${1:+ALLOCSCOPE_SAMPLE_RATE=$1} target/release/bench-runner run --variant baseline --mode pair \
    --messages 2000000 --warmup 100000 --repeat 1 --format json --out "$out" --quiet > /dev/null
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["ns_per_op"]["median"])' \
    "$out/report.json"
}

declare -A ratios without with
for round in $(seq 0 "$R"); do
  for w in json queue; do
    a=$($w)
    b=$($w 524288)
    if [ "$round" -gt 0 ]; then
      without[$w]+="$a "
      with[$w]+="$b "
      ratios[$w]+="$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }') "
    fi
  done
done
stats() { tr ' ' '\n' <<< "$1" | grep . | sort -g | awk -v f="$2" '{ v[NR] = $1 } END {
  printf f " (" f "-" f ")", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo "| workload | without sampling, median (min-max) | every thread at 512 KiB | with / without, median of per-round ratios (min-max) |"
echo "|---|---:|---:|---:|"
echo "| serde_json, 5 x 5.2 MB document (s) | $(stats "${without[json]}" %.3f) | $(stats "${with[json]}" %.3f) | $(stats "${ratios[json]}" %.3f)x |"
echo "| queue baseline, pair mode (ns/message) | $(stats "${without[queue]}" %.1f) | $(stats "${with[queue]}" %.1f) | $(stats "${ratios[queue]}" %.3f)x |"
echo
echo "$R rounds after a warm-up; $(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."
