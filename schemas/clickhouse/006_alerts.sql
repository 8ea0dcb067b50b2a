-- alerts: one row per alert transition (fired / resolved) (METRICS.md §4).
CREATE TABLE IF NOT EXISTS alerts (
    node String,
    stream String,
    channel String,
    alert String,
    severity String,
    state String,
    ts Int64,
    value Float64,
    threshold Float64,
    message String
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(ts, 86400000)
ORDER BY (stream, ts, alert, state, node)
