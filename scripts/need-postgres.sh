#!/usr/bin/env bash
# Installs PostgreSQL (Debian package) when missing: the catalog tests start a
# throwaway server from its initdb/postgres binaries as the `postgres` user.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
