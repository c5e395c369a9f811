#!/usr/bin/env bash
# Renders a bench-runner report.html in headless Chromium (Debian's
# `chromium` package) and checks what a reader would see: the page parses,
# the tables and every chart are in the rendered DOM, and a screenshot is
# produced; and the page's layout in a 1400-pixel-wide window: no table
# wider than the window (a copy of the page with a measuring script
# appended reports every table's width into the DOM, read back with
# --dump-dom). Nothing is fetched: the page is self-contained. Chromium is
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

# Every table fits a 1400-pixel-wide window: no horizontal scrolling.
probe="$profile/probe.html"
cp "$page" "$probe"
cat >> "$probe" <<'SCRIPT'
<script>
const report = document.createElement('pre');
report.id = 'layout-check';
report.textContent = 'viewport ' + document.documentElement.clientWidth + '; ' +
  Array.from(document.querySelectorAll('table'), (t, i) => 'table ' + (i + 1) + ' ' + Math.ceil(t.getBoundingClientRect().right)).join('; ');
document.body.appendChild(report);
</script>
SCRIPT
layout=$("$browser" "${flags[@]}" --window-size=1400,900 --dump-dom "file://$probe" 2>/dev/null \
  | sed -n 's/.*<pre id="layout-check">\([^<]*\)<.*/\1/p')
viewport=$(sed -n 's/^viewport \([0-9]*\);.*/\1/p' <<< "$layout")
[ -n "$viewport" ] || { echo "check-html: the layout probe did not run" >&2; exit 1; }
too_wide=$(tr ';' '\n' <<< "$layout" | awk -v w="$viewport" '$1 == "table" && $3 > w { print "table " $2 " reaches " $3 " px" }')
[ -z "$too_wide" ] || { echo "check-html: wider than a 1400 px window (viewport $viewport px): $too_wide" >&2; exit 1; }

"$browser" "${flags[@]}" --window-size=1600,3000 --screenshot="$shot" "file://$page" 2>/dev/null
[ -s "$shot" ] || { echo "check-html: no screenshot produced" >&2; exit 1; }
echo "check-html: $page renders: $charts charts, $bars bars, $dots latency dots, $rows table rows; every table within a 1400 px window ($layout); screenshot $shot"
