-- view_sessions: one row per finished view (schemas/src/tables.rs SessionRow).
CREATE TABLE IF NOT EXISTS view_sessions (
    node String,
    kind String,
    target String,
    channel String,
    session String,
    viewer String,
    start_ts Int64,
    end_ts Int64,
    end_reason String,
    counted_view UInt8,
    watch_ms Int64,
    rebuffer_ms Int64,
    rebuffer_count Int64,
    startup_ms Nullable(Int64),
    device Nullable(String),
    country Nullable(String),
    player Nullable(String),
    embed UInt8
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(end_ts, 86400000)
ORDER BY (kind, target, end_ts, session, start_ts, node)
