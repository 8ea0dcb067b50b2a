"""Reads the embedded store's Parquet files as they are, with polars and with DuckDB,
and the answers of POST /api/sql in CSV, Arrow IPC and Parquet with polars; prints one
JSON object. Used by tests/adhoc_sql.rs (scripts/need-python-readers.sh installs both).

usage: pulse_readers.py DATA_DIR CSV_FILE ARROW_FILE PARQUET_FILE
"""
import json
import sys

import duckdb
import polars as pl

data_dir, csv_file, arrow_file, parquet_file = sys.argv[1:5]
ticks = f"{data_dir}/stream_ticks/*/*.parquet"
minutes = f"{data_dir}/viewer_minutes/*/*.parquet"
SUMS = ["views", "watch_ms", "rebuffer_count", "chat_messages", "failures"]


def polars_totals():
    t = (
        pl.scan_parquet(ticks)
        .filter(pl.col("kind") == "stream")
        .group_by("target")
        .agg([pl.col(c).sum() for c in SUMS])
        .collect()
    )
    u = (
        pl.scan_parquet(minutes)
        .filter(pl.col("kind") == "stream")
        .group_by("target")
        .agg(pl.col("viewer").n_unique().alias("unique_viewers"))
        .collect()
    )
    out = {r["target"]: {c: int(r[c]) for c in SUMS} for r in t.iter_rows(named=True)}
    for r in u.iter_rows(named=True):
        out.setdefault(r["target"], {})["unique_viewers"] = int(r["unique_viewers"])
    return out


def duckdb_totals():
    con = duckdb.connect()
    sums = ", ".join(f"SUM({c})" for c in SUMS)
    out = {}
    for row in con.execute(
        f"SELECT target, {sums} FROM read_parquet('{ticks}') "
        "WHERE kind = 'stream' GROUP BY target"
    ).fetchall():
        out[row[0]] = {c: int(v) for c, v in zip(SUMS, row[1:])}
    for target, n in con.execute(
        f"SELECT target, COUNT(DISTINCT viewer) FROM read_parquet('{minutes}') "
        "WHERE kind = 'stream' GROUP BY target"
    ).fetchall():
        out.setdefault(target, {})["unique_viewers"] = int(n)
    return out


def rows(df):
    return [{k: (int(v) if isinstance(v, int) else v) for k, v in r.items()} for r in df.iter_rows(named=True)]


print(
    json.dumps(
        {
            "polars": polars_totals(),
            "duckdb": duckdb_totals(),
            "csv": rows(pl.read_csv(csv_file)),
            "arrow": rows(pl.read_ipc_stream(arrow_file)),
            "parquet": rows(pl.read_parquet(parquet_file)),
        }
    )
)
