#!/usr/bin/env bash
# The service endpoints read by the real tools: the example service
# (alloc-tracker/examples/service.rs) runs on loopback under a bounded load
# loop while
#   1. the official Prometheus Python client's parser reads /metrics
#      (every family with HELP and TYPE);
#   2. a real Prometheus server (Debian's `prometheus`) scrapes it every
#      second, and its HTTP API must show allocscope_allocs_total
#      rising, the per-operation and per-group series with their labels,
#      and what the request group holds once the load is over;
#   3. `go tool pprof -top` (Debian's `golang-go`) reads
#      /debug/pprof/heap and must name the workload's allocating function;
#      the addresses-only profile (?symbolize=0) carries the service's
#      mapping and GNU build id, names nothing, and go tool pprof given the
#      binary resolves it to the same function;
#   4. fetching the profiles leaves the held bytes where they were, the
#      symbolizer is in no profile, names carry their module path,
#      `go tool pprof -seconds 2` gets a 2-second window, and the index,
#      `?debug=1`, a bad `?seconds` (400) and the run-time sampling switch
#      answer as Go's net/http/pprof conventions say.
# Missing tools are installed (apt-get install -y, pip); everything listens
# on 127.0.0.1 only and is stopped at the end; the whole check is bounded
# in time.
#
# Usage: scripts/check-service.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need prometheus || ! need go; then
  echo "check-service: installing Debian's prometheus and golang-go" >&2
  apt-get install -y -q prometheus golang-go >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q prometheus golang-go >/dev/null; }
fi
python3 -c 'import prometheus_client' 2>/dev/null || pip install -q prometheus-client

cargo build --quiet --release -p allocscope --example service --features serve
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
svc_port=$(free_port)
prom_port=$(free_port)
svc="127.0.0.1:$svc_port"

# One sample per 16 KiB: the 64 cached reports (about 1 MB live) then hold
# dozens of samples, so the live profile cannot miss them by chance (at
# Go's 512 KiB it would, now and then).
ALLOCSCOPE_SAMPLE_RATE=16384 timeout 300 target/release/examples/service --listen "$svc" > "$work/service.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://$svc/metrics" >/dev/null && break; sleep 0.1; done

cat > "$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: allocscope
    static_configs:
      - targets: ["$svc"]
YML
timeout 300 prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" > "$work/prometheus.log" 2>&1 &
pids+=($!)
prom="http://127.0.0.1:$prom_port"
for _ in $(seq 100); do curl -sf "$prom/-/ready" >/dev/null && break; sleep 0.2; done
query() { curl -sf --get "$prom/api/v1/query" --data-urlencode "query=$1"; }
value_of() { python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
# Prometheus scrapes at a random offset within its interval, and its first
# scrape can come seconds after it says it is ready: wait for one before
# the load starts, so that the load is seen from its beginning.
for _ in $(seq 60); do [ "$(query 'up{job="allocscope"}' | value_of)" = 1 ] && break; sleep 0.5; done

# A bounded load loop: requests for 8 seconds.
end=$((SECONDS + 8))
while [ $SECONDS -lt $end ]; do
  curl -sf "http://$svc/work?n=300" >/dev/null
done

# 1. The official client's parser reads the exposition.
curl -sf "http://$svc/metrics" > "$work/metrics.txt"
python3 - "$work/metrics.txt" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
families = list(text_string_to_metric_families(text))
helps = {l.split()[2] for l in text.splitlines() if l.startswith("# HELP ")}
types = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
names = {f.name for f in families}
assert len(families) >= 20, f"{len(families)} families"
for f in families:
    assert f.documentation, f"{f.name} has no HELP"
    assert f.type in ("counter", "gauge"), f"{f.name}: {f.type}"
for l in text.splitlines():
    if not l.startswith("#"):
        name = l.split("{")[0].split(" ")[0]
        assert name in helps and name in types, f"{name} without HELP or TYPE"
print(f"check-service: prometheus_client parsed {len(families)} families, every one with HELP and TYPE")
PY

# 2. Prometheus scraped it: the counter rose, the labelled series exist.
# The rise over every scrape Prometheus kept, polled until the scrapes
# after the load are in (at most 20 s).
rose() { python3 -c "import sys; v='$1'; sys.exit(0 if v != 'none' and float(v) > 0 else 1)"; }
for _ in $(seq 20); do
  rise=$(query 'max_over_time(allocscope_allocs_total[5m]) - min_over_time(allocscope_allocs_total[5m])' | value_of)
  rose "$rise" && break
  sleep 1
done
rose "$rise" || { echo "check-service: allocscope_allocs_total did not rise in Prometheus ($rise)" >&2; exit 1; }
series=$(curl -sf --get "$prom/api/v1/series" --data-urlencode 'match[]={__name__=~"allocscope_(op|group)_allocs_total"}')
for label in '"op":"build_report"' '"group":"GET /work"'; do
  grep -q "$label" <<< "$series" || { echo "check-service: no series with $label in Prometheus: $series" >&2; exit 1; }
done
echo "check-service: Prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') scraped the service: allocscope_allocs_total rose by $rise over its scrapes; per-op and per-group series present"

# What the GET /work group holds, as Prometheus has it: the service tags
# every block with its owner, so once the load is over the group holds
# exactly its 64 cached reports (one block each, whichever thread frees
# the older ones) and the cache's ring buffer, 64 slots of 24 bytes; each
# report's capacity is its length rounded up by String's growth, at most
# twice it.
report_len=$(curl -sf "http://$svc/work?n=300" | wc -c)
for _ in $(seq 20); do
  blocks=$(query 'allocscope_group_held_blocks{group="GET /work"}' | value_of)
  [ "$blocks" = 65 ] && break
  sleep 1
done
held=$(query 'allocscope_group_held_bytes{group="GET /work"}' | value_of)
python3 - "$blocks" "$held" "$report_len" <<'PY' || exit 1
import sys
blocks, held, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lo, hi = 64 * n + 64 * 24, 64 * 2 * n + 64 * 24
if blocks != "65" or held == "none" or not lo <= float(held) <= hi:
    sys.exit(f"check-service: GET /work holds {held} B in {blocks} blocks in Prometheus; expected 65 blocks, {lo}..{hi} B")
print(f"check-service: Prometheus has GET /work holding {float(held):.0f} B in 65 blocks (64 cached reports of {n} B, and the cache)")
PY

# 3. go tool pprof reads the live heap profile and names the workload.
top=$(timeout 120 go tool pprof -top "http://$svc/debug/pprof/heap" 2>&1)
echo "$top" | head -12
grep -q "build_report" <<< "$top" || { echo "check-service: go tool pprof does not name build_report" >&2; exit 1; }
echo "check-service: $(go version | cut -d' ' -f3) go tool pprof read /debug/pprof/heap and names build_report"

# 3b. The addresses-only profile (?symbolize=0): no name in it, the
# program's mapping with its file and GNU build id; go tool pprof, holding
# the binary, resolves it and names the workload.
curl -sf "http://$svc/debug/pprof/heap?symbolize=0" -o "$work/addresses.pb.gz"
raw=$(go tool pprof -symbolize=none -raw "$work/addresses.pb.gz" 2>&1)
build_id=$(readelf -n target/release/examples/service | awk '/Build ID/ { print $3 }')
grep -q "/examples/service $build_id" <<< "$raw" \
  || { echo "$raw" | sed -n '/^Mappings/,$p'; echo "check-service: no mapping of the service with build id $build_id" >&2; exit 1; }
if grep -q "build_report" <<< "$raw"; then
  echo "check-service: the addresses-only profile names functions" >&2
  exit 1
fi
# The load is over, so the held profile no longer changes: the resolved
# profile and pprof's resolution of the addresses-only one must agree on
# what build_report holds (addresses resolved a page off, say, would name
# other functions).
curl -sf "http://$svc/debug/pprof/heap" -o "$work/resolved.pb.gz"
cum_of_build_report() { awk '/build_report$/ { print $4; exit }'; }
ours=$(timeout 120 go tool pprof -top -unit=B "$work/resolved.pb.gz" 2>/dev/null | cum_of_build_report)
top=$(timeout 120 go tool pprof -top -unit=B target/release/examples/service "$work/addresses.pb.gz" 2>&1)
theirs=$(cum_of_build_report <<< "$top")
if [ -z "$ours" ] || [ "$ours" != "$theirs" ]; then
  echo "$top" | head -20
  echo "check-service: build_report holds ${ours:-nothing} in the resolved profile, ${theirs:-nothing} in the addresses-only one resolved by go tool pprof" >&2
  exit 1
fi
echo "check-service: /debug/pprof/heap?symbolize=0 ($(stat -c %s "$work/addresses.pb.gz") B against $(curl -sf "http://$svc/debug/pprof/heap" | wc -c) B resolved) carries the service's mapping and build id $build_id; go tool pprof resolves it with the binary to the same $theirs under build_report"

# 4. Profiles fit for production, read with Go's own tools.
live() { curl -sf "http://$svc/metrics" | awk '$1 == "allocscope_held_bytes" { print $2 }'; }
before=$(live)
for _ in 1 2 3; do
  for p in allocs heap; do curl -sf -o /dev/null "http://$svc/debug/pprof/$p"; done
done
after=$(live)
python3 - "$before" "$after" <<'PY' || exit 1
import sys
before, after = float(sys.argv[1]), float(sys.argv[2])
if abs(after - before) > 1 << 20:
    sys.exit(f"check-service: three fetches of each profile moved held bytes from {before:.0f} to {after:.0f}")
print(f"check-service: three fetches of /allocs and /heap left held bytes at {after:.0f} (before: {before:.0f})")
PY
top=$(timeout 120 go tool pprof -top -sample_index=alloc_space "http://$svc/debug/pprof/allocs" 2>&1)
if grep -Eq "gimli|addr2line|backtrace::symbolize" <<< "$top"; then
  echo "$top" | grep -E "gimli|addr2line|backtrace::symbolize" | head -5
  echo "check-service: the symbolizer is in the allocs profile" >&2; exit 1
fi
grep -q "service::build_report" <<< "$top" && grep -q "serde_json::" <<< "$top" \
  || { echo "$top" | head -20; echo "check-service: names lack their module path" >&2; exit 1; }
echo "check-service: no symbolizer frame in /debug/pprof/allocs; names carry their module path (service::build_report, serde_json::...)"

# go tool pprof -seconds 2 asks for ?seconds=2: a 2-second window, with a
# little load in it, must come back after 2 s and hold less than the
# cumulative profile.
cumulative=$(timeout 60 go tool pprof -top -sample_index=alloc_space "http://$svc/debug/pprof/allocs" 2>&1 | awk '/ total$/ { print $(NF-1) }')
( end=$((SECONDS + 3)); while [ $SECONDS -lt $end ]; do curl -sf "http://$svc/work?n=50" >/dev/null; done ) &
load=$!
started=$(date +%s.%N)
window=$(timeout 60 go tool pprof -seconds 2 -top -sample_index=alloc_space "http://$svc/debug/pprof/allocs" 2>&1 | awk '/ total$/ { print $(NF-1) }')
took=$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")
wait "$load"
python3 - "$cumulative" "$window" "$took" <<'PY' || exit 1
import re, sys
unit = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
def size(s):
    m = re.fullmatch(r"([0-9.]+)([kMG]?B)", s)
    if not m:
        sys.exit(f"check-service: no total in go tool pprof's output: {s!r}")
    return float(m.group(1)) * unit[m.group(2)]
cumulative, window, took = size(sys.argv[1]), size(sys.argv[2]), float(sys.argv[3])
if not (took >= 2.0 and 0 < window < cumulative):
    sys.exit(f"check-service: go tool pprof -seconds 2 took {took} s, {window:.0f} B against {cumulative:.0f} B cumulative")
print(f"check-service: go tool pprof -seconds 2 took {took} s and shows {sys.argv[2]} allocated in the window ({sys.argv[1]} since start)")
PY

# -diff_base: one profile against an earlier one, as Go's users compare.
curl -sf -o "$work/base.pb.gz" "http://$svc/debug/pprof/allocs"
for _ in $(seq 20); do curl -sf "http://$svc/work?n=50" >/dev/null; done
curl -sf -o "$work/later.pb.gz" "http://$svc/debug/pprof/allocs"
diff_top=$(go tool pprof -top -sample_index=alloc_space -diff_base "$work/base.pb.gz" "$work/later.pb.gz" 2>&1) \
  && grep -q "service::build_report" <<< "$diff_top" \
  || { echo "$diff_top" | head; echo "check-service: go tool pprof -diff_base failed" >&2; exit 1; }
echo "check-service: go tool pprof -diff_base compares two profiles ($(grep -m1 'of .* total' <<< "$diff_top"))"

index=$(curl -sf "http://$svc/debug/pprof/")
grep -q 'href="heap' <<< "$index" && grep -q 'href="allocs' <<< "$index" \
  || { echo "check-service: /debug/pprof/ lists no profiles: $index" >&2; exit 1; }
head -c 14 < <(curl -sf "http://$svc/debug/pprof/heap?debug=1") | grep -q '^heap profile: ' \
  || { echo "check-service: /debug/pprof/heap?debug=1 is not text" >&2; exit 1; }
status=$(curl -s -o "$work/bad.txt" -w '%{http_code}' "http://$svc/debug/pprof/allocs?seconds=abc")
[ "$status" = 400 ] && grep -q '"seconds"' "$work/bad.txt" \
  || { echo "check-service: ?seconds=abc answered $status: $(cat "$work/bad.txt")" >&2; exit 1; }
[ "$(curl -sf -X PUT "http://$svc/debug/pprof/sample_rate?bytes=0")" = 0 ] \
  && [ "$(curl -sf "http://$svc/debug/pprof/sample_rate")" = 0 ] \
  && [ "$(curl -sf -X PUT "http://$svc/debug/pprof/sample_rate?bytes=524288")" = 524288 ] \
  || { echo "check-service: the sampling rate could not be switched off and on at run time" >&2; exit 1; }
# What a web page can send cross-site without a preflight changes nothing.
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://attacker.example' \
  -H 'Content-Type: text/plain' "http://$svc/debug/pprof/sample_rate?bytes=1")
[ "$status" = 405 ] && [ "$(curl -sf "http://$svc/debug/pprof/sample_rate")" = 524288 ] \
  || { echo "check-service: a cross-site POST to the switch answered $status" >&2; exit 1; }
echo "check-service: /debug/pprof/ lists the profiles, ?debug=1 is text, ?seconds=abc is a 400, sampling switched off and on at run time (PUT), a cross-site POST refused"
