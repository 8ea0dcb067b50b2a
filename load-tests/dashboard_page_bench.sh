#!/usr/bin/env bash
# Issue 7 page benchmark (load-tests/RESULTS.md): a 30-day trace replayed into a fresh
# embedded store, `pulse serve` on 127.0.0.1:18999, then time to first chart / all charts
# in headless Chromium (dashboards/bench/charts.mjs). Needs a release build
# (`cargo build --release --bin pulse`) and the dashboard's node_modules (scripts/need-chromium.sh).
# Traffic stays on 127.0.0.1; the server is stopped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/pulse}
D=${BENCH_DIR:-/tmp/dashbench}
rm -rf "$D/data"
mkdir -p "$D/data"
NOW=$(date +%s%3N)
START=$(((NOW / 3600000 - 31 * 24) * 3600000))
DAY=86400000
cat > "$D/pulse.toml" <<T
listen = "127.0.0.1:18999"
data_dir = "$D/data"
admin_token = "bench-admin"
T
cd "$ROOT/dashboards"
node bench/gen-trace.mjs "$START" 30 6000 > "$D/trace.ndjson"
"$BIN" --config "$D/pulse.toml" replay "$D/trace.ndjson"
"$BIN" --config "$D/pulse.toml" serve > "$D/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:18999/readyz > /dev/null && break
  sleep 0.2
done
URL=http://127.0.0.1:18999
node bench/charts.mjs $URL bench-admin bench bench-1 "$START" $((START + 30 * DAY)) 5
BENCH_VIEWPORT_HEIGHT=900 node bench/charts.mjs $URL bench-admin bench bench-1 "$START" $((START + 30 * DAY)) 3
node bench/charts.mjs $URL bench-admin bench bench-1 $((START + 23 * DAY)) $((START + 30 * DAY)) 3
