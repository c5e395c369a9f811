#!/usr/bin/env bash
# The queue study's speed figures, so that they survive a noisy machine:
# runs the default study (`bench-runner run`: both modes, 7 repeats each in
# its own process, variants interleaved) N times, then prints each
# variant's ratio to `baseline` per run and the median of those ratios
# (bench-runner's `study_ratios` example). Reports go to
# target/queue-study/run-1 ... run-N.
#
# Usage: scripts/queue-study.sh [N=5]
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-5}
case "$N" in '' | *[!0-9]* | 0) echo "queue-study.sh: N must be a positive number, not '$N'" >&2; exit 2 ;; esac
cargo build --quiet --release -p bench-runner --examples
reports=()
for i in $(seq 1 "$N"); do
  out=target/queue-study/run-$i
  target/release/bench-runner run --out "$out" --format json,md --quiet > /dev/null
  reports+=("$out/report.json")
done
target/release/examples/study_ratios "${reports[@]}"
