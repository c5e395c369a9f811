#!/usr/bin/env bash
# Renders a bench-runner report.html in headless Chromium (Debian's
# `chromium` package) and checks what a reader would see: the page parses,
# the tables and every chart are in the rendered DOM, and a screenshot is
# produced. Nothing is fetched: the page is self-contained. Chromium is
# installed with apt-get when missing (as root, as CI runs).
#
# Usage: scripts/check-html.sh [REPORT_DIR=reports/latest] [SCREENSHOT=REPORT_DIR/report.png]
set -euo pipefail
dir=${1:-reports/latest}
shot=${2:-$dir/report.png}
page=$(realpath "$dir/report.html")
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "check-html: installing chromium (Debian's package)" >&2
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  browser=$(command -v chromium)
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --user-data-dir="$profile")

dom=$("$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null)
charts=$(grep -o '<svg' <<< "$dom" | wc -l)
bars=$(grep -o '<rect' <<< "$dom" | wc -l)
rows=$(grep -o '<tr>' <<< "$dom" | wc -l)
[ "$charts" -ge 5 ] || { echo "check-html: expected 5 charts in the rendered page, found $charts" >&2; exit 1; }
dots=$(grep -o '<circle' <<< "$dom" | wc -l)
[ "$bars" -gt 0 ] || { echo "check-html: the charts have no bars" >&2; exit 1; }
# Latencies are on a logarithmic axis: dots, not bars (a bar's length there
# is not proportional to its value).
[ "$dots" -gt 0 ] || { echo "check-html: the latency charts have no dots" >&2; exit 1; }
[ "$rows" -gt 3 ] || { echo "check-html: the tables did not render" >&2; exit 1; }

"$browser" "${flags[@]}" --window-size=1600,3000 --screenshot="$shot" "file://$page" 2>/dev/null
[ -s "$shot" ] || { echo "check-html: no screenshot produced" >&2; exit 1; }
echo "check-html: $page renders: $charts charts, $bars bars, $dots latency dots, $rows table rows; screenshot $shot"
