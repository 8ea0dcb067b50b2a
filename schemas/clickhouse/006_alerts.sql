-- alerts: one row per alert transition (firing / resolved) (METRICS.md §4). Columns in
-- the order of the Arrow schema in schemas/src/health_tables.rs (a test compares them).
CREATE TABLE IF NOT EXISTS alerts (
    node String,
    stream String,
    channel String,
    ts Int64,
    alert String,
    severity String,
    state String,
    value Float64,
    threshold Float64,
    message String
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(ts, 86400000)
ORDER BY (stream, ts, alert, state, node)
