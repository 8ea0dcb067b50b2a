#!/usr/bin/env bash
# Runs every test of Pulse, the way CI does. Installs what the tests need when it
# is missing (clickhouse-server and chDB, ffmpeg, PostgreSQL, Chromium and Node for the
# dashboard: scripts/need-*.sh), then:
# formatting, clippy
# with warnings as errors, and the whole test suite (unit, property, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Two cores: keep the build from starving the end-to-end tests' servers.
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

step() { printf '\n== %s\n' "$*"; }

step "ClickHouse server and chDB for the store tests"
./scripts/need-clickhouse.sh
step "external programs for the tests"
./scripts/need-ffmpeg.sh
./scripts/need-postgres.sh
./scripts/need-python-readers.sh
./scripts/need-s3.sh
./scripts/need-chromium.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
# `--all-targets` also runs each bench target once, as a smoke test (criterion's test
# mode; `aggregator_rounds` plays one round without `--bench`), so they keep working.
# Speed is measured by `cargo bench` and `pulse loadgen`, recorded in
# load-tests/RESULTS.md, never here.
cargo test --workspace --all-targets --locked
