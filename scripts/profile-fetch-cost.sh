#!/usr/bin/env bash
# What fetching a heap profile costs the service that serves it: the
# example service (alloc-tracker/examples/service.rs) on loopback, every
# thread sampled at Go's default rate (512 KiB), a bounded load, then
# /debug/pprof/allocs and /debug/pprof/heap fetched three times each. Before
# the first fetch and after each, /metrics gives the program's held bytes
# (allocscope_held_bytes) and the library's own (allocscope_library_held_bytes,
# and what it allocated since start: allocscope_library_allocated_bytes_total),
# and /proc the process's resident set; each fetch is timed. Last, `go tool
# pprof -top` of /debug/pprof/allocs says how much of the profile sits under
# the symbolizer (frames of gimli, addr2line or backtrace's symbolize).
#
# Usage: scripts/profile-fetch-cost.sh [LOAD_SECONDS=5]
# Needs curl and Go (Debian's golang-go, installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

load=${1:-5}
command -v go >/dev/null 2>&1 || {
  echo "profile-fetch-cost: installing Debian's golang-go" >&2
  apt-get install -y -q golang-go >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q golang-go >/dev/null; }
}
cargo build --quiet --release -p allocscope --example service --features serve
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
svc="127.0.0.1:$port"
ALLOCSCOPE_SAMPLE_RATE=524288 timeout 300 "${CARGO_TARGET_DIR:-target}/release/examples/service" --listen "$svc" > "$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://$svc/metrics" >/dev/null && break; sleep 0.1; done
svc_pid=$(pgrep -P "$pid" -f examples/service)

end=$((SECONDS + load))
while [ $SECONDS -lt $end ]; do curl -sf "http://$svc/work?n=300" >/dev/null; done

# A metric's value; 0 when the service does not have it.
metric() { curl -sf "http://$svc/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v == "" ? 0 : v }'; }
rss() { awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$svc_pid/status"; }
row() {
  printf '| %s | %.2f | %.2f | %.1f | %.1f | %s |\n' "$1" "$(metric allocscope_held_bytes)e-6" \
    "$(metric allocscope_library_held_bytes)e-6" "$(metric allocscope_library_allocated_bytes_total)e-6" \
    "$(rss)e-6" "$2"
}
echo "| after | held bytes, MB | library's held bytes, MB | library's allocated bytes since start, MB | RSS, MB | fetch time, s |"
echo "|---|---:|---:|---:|---:|---:|"
row "the load, before any fetch" ""
for i in 1 2 3; do
  for p in allocs heap; do
    t=$(curl -sf -o "$work/$p-$i.pb.gz" -w '%{time_total}' "http://$svc/debug/pprof/$p")
    row "fetch $i of /debug/pprof/$p" "$t"
  done
done
# jemalloc returns freed pages to the system over its decay time (10 s by
# default): the resident set after it says what the fetches left behind.
sleep 12
curl -sf "http://$svc/metrics" >/dev/null
row "12 s later, jemalloc's decay time past" ""
echo
top=$(go tool pprof -top -sample_index=alloc_space "$work/allocs-3.pb.gz" 2>/dev/null)
[ -n "${SHOW_TOP:-}" ] && echo "$top" | head -"$SHOW_TOP"
python3 - <<PY
import re
top = """$top"""
total = re.search(r"of ([0-9.]+)([kMG]?B) total", top)
unit = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
def size(s):
    m = re.match(r"([0-9.]+)([kMG]?B)", s)
    return float(m.group(1)) * unit[m.group(2)] if m else 0.0
under = 0.0
for line in top.splitlines():
    parts = line.split()
    if len(parts) >= 6 and re.search(r"gimli|addr2line|backtrace::symbolize|symbolize::gimli", line):
        under = max(under, size(parts[3]))  # the cumulative column
print(f"go tool pprof -top of /debug/pprof/allocs: {total.group(1)} {total.group(2)} allocated in the profile, "
      f"{under / 1e6:.2f} MB under symbolizer frames (the largest cumulative figure of one)")
PY
echo "$(nproc) cores, $(uname -sm), $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%F)."
