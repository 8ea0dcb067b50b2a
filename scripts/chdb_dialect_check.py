#!/usr/bin/env python3
"""Runs Pulse's ClickHouse DDL and every query its reader issues in chDB (current
ClickHouse, in-process), so the SQL stays valid beyond Debian's 18.16 server.

Usage: chdb_dialect_check.py DDL_DIR QUERIES_FILE
QUERIES_FILE holds one statement per line (written by tests/clickhouse_dialect.rs).
Exits non-zero, naming the statement, on the first one chDB refuses."""
import glob
import os
import sys
import tempfile

from chdb import session


def main() -> int:
    ddl_dir, queries_file = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        sess = session.Session(os.path.join(tmp, "db"))
        ran = 0
        for path in sorted(glob.glob(os.path.join(ddl_dir, "*.sql"))):
            sql = open(path, encoding="utf-8").read()
            for _ in range(2):  # applied twice: migrations are idempotent
                try:
                    sess.query(sql)
                except Exception as e:  # chDB raises its own error types
                    print(f"DDL {os.path.basename(path)} refused: {e}", file=sys.stderr)
                    return 1
            ran += 1
        with open(queries_file, encoding="utf-8") as f:
            queries = [q for q in f.read().splitlines() if q.strip()]
        for q in queries:
            try:
                sess.query(q, "CSV")
            except Exception as e:
                print(f"query refused: {q}\n{e}", file=sys.stderr)
                return 1
        print(f"chDB accepted {ran} DDL files and {len(queries)} queries")
        sess.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
