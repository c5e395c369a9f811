#!/usr/bin/env bash
# Heap profiling a real workload: serde_json parses a generated document of
# MB megabytes into a Value and drops it, under allocscope without sampling,
# at the default rate and at rate 1 (every allocation), and under the dhat
# crate's profiler. The programs run interleaved, R rounds; each line shows
# the median wall time (min-max) and what the last run found.
#
# Usage: scripts/json-profile.sh [MB=5.2] [R=3]
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-5.2}
R=${2:-3}

cargo build --quiet --release -p allocscope --example overhead_json_allocscope --example overhead_json_dhat
bin=target/release/examples

runs=("allocscope, no sampling|overhead_json_allocscope $MB 0"
      "allocscope, 512 KiB|overhead_json_allocscope $MB 524288"
      "allocscope, rate 1|overhead_json_allocscope $MB 1"
      "dhat|overhead_json_dhat $MB")
declare -A times last
for _ in $(seq 1 "$R"); do
  for run in "${runs[@]}"; do
    IFS='|' read -r name cmd <<< "$run"
    # shellcheck disable=SC2086
    out=$("$bin"/$cmd)
    times[$name]+="$(sed -E 's/^[^:]*: ([0-9.]+) s;.*/\1/' <<< "$out") "
    last[$name]=$out
  done
done
echo "| program | wall s, median (min-max) | last run |"
echo "|---|---:|---|"
for run in "${runs[@]}"; do
  IFS='|' read -r name _ <<< "$run"
  read -r med lo hi <<< "$(tr ' ' '\n' <<< "${times[$name]}" | grep . | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.2f %.2f %.2f", v[int((NR + 1) / 2)], v[1], v[NR] }')"
  echo "| $name | $med ($lo-$hi) | ${last[$name]#*; } |"
done
echo
echo "${MB} MB document, $R rounds; $(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."
