-- stream_minutes: per-minute QoE and engagement rollup per node and target
-- (DESIGN.md decision 4; no Rust row yet: columns follow stream_ticks).
CREATE TABLE IF NOT EXISTS stream_minutes (
    node String,
    kind String,
    target String,
    channel String,
    minute Int64,
    peak_viewers Int64,
    events Int64,
    views Int64,
    watch_ms Int64,
    rebuffer_ms Int64,
    rebuffer_count Int64,
    startups Int64,
    startup_hist String,
    failures Int64,
    chat_messages Int64,
    follows Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(minute, 86400000)
ORDER BY (kind, target, minute, node)
