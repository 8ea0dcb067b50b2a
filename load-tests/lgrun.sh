#!/bin/bash
# One loadgen scenario against a fresh release server on 127.0.0.1:8080 (the figures in
# RESULTS.md, "The release loadgen run after the ingest and live-loop changes").
#
#   load-tests/lgrun.sh SCENARIO OUTFILE [VAR=value ...]
#
# SCENARIO: frames, batched or latency (1 000 viewers for 60 s); the VAR=value pairs go
# to the server's environment (e.g. PULSE_AGGREGATOR__MAX_PENDING_EVENTS=12000000).
# Build first: cargo build --release --workspace. Bounded: every scenario stops by itself
# (20 s, or 60 s for latency) and the loadgen is killed after 300 s.
set -euo pipefail
sc=$1
out=$2
shift 2
bin=${PULSE_BIN:-target/release/pulse}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
env "$@" PULSE_DATA_DIR="$data" PULSE_ADMIN_TOKEN=lg-admin \
    PULSE_INGEST__TRUSTED_TOKEN=loadgen-secret "$bin" serve >"$data.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
    curl -s -o /dev/null http://127.0.0.1:8080/healthz && break
    sleep 0.2
done
args=(--server-pid "$pid" --api-token lg-admin --token loadgen-secret)
case $sc in
latency) timeout 300 "$bin" loadgen --scenario latency --viewers 1000 --viewers-duration-s 60 "${args[@]}" >"$out" 2>&1 || true ;;
*) timeout 300 "$bin" loadgen --scenario "$sc" --duration-s 20 "${args[@]}" >"$out" 2>&1 || true ;;
esac
kill "$pid"
wait "$pid" 2>/dev/null || true
rm -f "$data.log"
