#!/usr/bin/env bash
# Heap profiling a real workload: serde_json parses a generated document of
# MB megabytes into a Value and drops it, P times per run, under allocscope
# without sampling, with every thread sampled at Go's default rate (512 KiB,
# process-wide, as a service runs), at rate 1 (every allocation), and under
# the dhat crate's profiler. The programs run interleaved, R rounds after a
# warm-up round; each line shows the median wall time (min-max), the
# median of the per-round ratios to the run without sampling made just
# before, and what the last run found.
#
# Usage: scripts/json-profile.sh [MB=5.2] [R=5] [P=5]
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-5.2}
R=${2:-5}
P=${3:-5}

cargo build --quiet --release -p allocscope --example overhead_json_allocscope --example overhead_json_dhat
bin=target/release/examples

runs=("allocscope, no sampling|overhead_json_allocscope $MB 0 process $P"
      "allocscope, every thread at 512 KiB|overhead_json_allocscope $MB 524288 process $P"
      "allocscope, every allocation (rate 1)|overhead_json_allocscope $MB 1 process $P"
      "dhat|overhead_json_dhat $MB $P")
declare -A times ratios last
secs() { sed -E 's/^[^:]*: ([0-9.]+) s;.*/\1/' <<< "$1"; }
for round in $(seq 0 "$R"); do
  for run in "${runs[@]}"; do
    IFS='|' read -r name cmd <<< "$run"
    # shellcheck disable=SC2086
    ref=$("$bin"/overhead_json_allocscope "$MB" 0 process "$P")
    # shellcheck disable=SC2086
    out=$("$bin"/$cmd)
    if [ "$round" -gt 0 ]; then
      times[$name]+="$(secs "$out") "
      ratios[$name]+="$(awk -v t="$(secs "$out")" -v r="$(secs "$ref")" 'BEGIN { print t / r }') "
    fi
    last[$name]=$out
  done
done
stats() { tr ' ' '\n' <<< "$1" | grep . | sort -g | awk -v f="$2" '{ v[NR] = $1 } END {
  printf f " (" f "-" f ")", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo "| program | wall s, median (min-max) | vs no sampling, median of per-round ratios (min-max) | last run |"
echo "|---|---:|---:|---|"
for run in "${runs[@]}"; do
  IFS='|' read -r name _ <<< "$run"
  echo "| $name | $(stats "${times[$name]}" %.3f) | $(stats "${ratios[$name]}" %.3f)x | ${last[$name]#*; } |"
done
echo
echo "${MB} MB document, parsed $P times per run, $R rounds after a warm-up; $(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."
