#!/usr/bin/env bash
# Opens a bench-runner dhat-heap.json in Valgrind's own DHAT viewer
# (dh_view.html, from Debian's valgrind) in headless Chromium (Debian's
# chromium), driven by Playwright (playwright-core from npm, installed into a
# temporary directory), and checks that the viewer shows the profile's
# program points and names the baseline's allocation sites.
#
# Usage: scripts/check-dhat-viewer.sh [OUT_DIR=target/check-dhat] [SCREENSHOT=OUT_DIR/dh_view.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/check-dhat}
shot=${2:-$out/dh_view.png}
viewer=/usr/libexec/valgrind/dh_view.html
for need in node npm; do command -v $need >/dev/null || { echo "check-dhat-viewer: $need is not installed" >&2; exit 2; }; done
[ -x /usr/bin/chromium ] || { echo "check-dhat-viewer: chromium is not installed (apt-get install chromium)" >&2; exit 2; }
[ -f "$viewer" ] || { echo "check-dhat-viewer: $viewer not found (apt-get install valgrind)" >&2; exit 2; }

cargo run --quiet --release -p bench-runner -- run --variant baseline --mode pair --messages 20000 --warmup 2000 \
  --repeat 1 --heap-profile --sample-rate 1 --format json --quiet --out "$out" > /dev/null
json=$(realpath "$out/baseline/dhat-heap.json")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp scripts/dhat-viewer/view.js "$work/"
(cd "$work" && npm init -y > /dev/null && npm install --silent playwright-core@1 > /dev/null)
shot=$(realpath -m "$shot")
text=$(cd "$work" && node view.js "$json" "$shot")
grep -q "Invocation" <<< "$text" || { echo "check-dhat-viewer: the viewer did not load the file:" >&2; echo "$text" | head >&2; exit 1; }
for name in copied_from boxed; do
  grep -q "$name" <<< "$text" || { echo "check-dhat-viewer: the viewer does not show $name" >&2; exit 1; }
done
grep -E "Total:" <<< "$text" | head -1
echo "check-dhat-viewer: $json opens in $viewer; screenshot $shot"
