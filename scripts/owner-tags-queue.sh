#!/usr/bin/env bash
# What owner tags cost the queue study: the bench runner built twice, as
# is and with `--features owner-tags` (every block one word longer, its
# owner group in the trailer), run R times each, interleaved (the machine's
# speed drifts between runs; adjacent runs mostly share it). Prints, per
# variant and mode, B/op (what the queue asked for: the same in both
# builds), rounded B/op (jemalloc's size classes: what the tags cost in
# memory) and the median throughput of the R runs with its min-max.
#
# Usage: scripts/owner-tags-queue.sh [R=3] [bench-runner run arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

R=${1:-3}
shift || true
out=target/owner-tags-queue
mkdir -p "$out"
# Same target directory, so only the bench runner is built twice (a
# feature of its own; allocscope and jemalloc are shared).
cargo build --quiet --release -p bench-runner
cp target/release/bench-runner "$out/untagged"
cargo build --quiet --release -p bench-runner --features owner-tags
cp target/release/bench-runner "$out/tagged"
cargo build --quiet --release -p bench-runner # leave the usual binary in place

for i in $(seq "$R"); do
  for build in untagged tagged; do
    rm -rf "$out/$build-$i"
    "$out/$build" run --quiet --format json --out "$out/$build-$i" "$@" >/dev/null
  done
done

python3 - "$out" "$R" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = {}
for build in ("untagged", "tagged"):
    for i in range(1, runs + 1):
        report = json.load(open(f"{out}/{build}-{i}/report.json"))
        for v in report["results"]:
            r = rows.setdefault((v["variant"], v["mode"]), {}).setdefault(build, {"ops": [], "b": [], "rb": []})
            r["ops"].append(v["ops_per_sec"]["median"] / 1e6)
            r["b"].append(v["bytes_per_op"])
            r["rb"].append(v["rounded_bytes_per_op"])
def spread(xs):
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"
print("| variant | mode | B/op | rounded B/op, untagged | rounded B/op, tagged | M msg/s untagged, median (min-max) | M msg/s tagged | tagged / untagged |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for (variant, mode), r in rows.items():
    u, t = r["untagged"], r["tagged"]
    print(f"| {variant} | {mode} | {statistics.median(t['b']):.0f} | {statistics.median(u['rb']):.0f} | "
          f"{statistics.median(t['rb']):.0f} | {spread(u['ops'])} | {spread(t['ops'])} | "
          f"{statistics.median(t['ops']) / statistics.median(u['ops']):.2f}x |")
PY
echo
echo "$R interleaved runs of each build; $(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."
