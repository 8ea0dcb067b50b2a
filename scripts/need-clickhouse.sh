#!/usr/bin/env bash
# Installs what the ClickHouse tests need when it is missing: Debian's clickhouse-server
# (18.16, started by the test harness as a throwaway server) and chDB (current
# ClickHouse in-process, for the dialect check). Run as root (CI is).
set -euo pipefail
if ! command -v clickhouse-server >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clickhouse-server
fi
if ! python3 -c 'import chdb' >/dev/null 2>&1; then
    python3 -m pip install --quiet chdb-core
fi
# docker-compose.yml is checked by a test that reads it with PyYAML.
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    python3 -m pip install --quiet pyyaml
fi
