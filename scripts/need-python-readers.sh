#!/usr/bin/env bash
# Installs the Python readers of the embedded store's Parquet files (polars, duckdb)
# when missing: tests/adhoc_sql.rs reads the files with them, as the data team would.
set -euo pipefail
if python3 -c 'import polars, duckdb' 2>/dev/null; then exit 0; fi
python3 -m pip install --quiet --disable-pip-version-check polars duckdb
python3 -c 'import polars, duckdb'
