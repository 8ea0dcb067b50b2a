-- health_ticks: encoder health per node, stream and tick (METRICS.md §4). Columns in the
-- order of the Arrow schema in schemas/src/health_tables.rs (a test compares them).
-- A stream's encoder talks to one node, so means are kept as means.
CREATE TABLE IF NOT EXISTS health_ticks (
    node String,
    stream String,
    channel String,
    t Int64,
    reports Int64,
    seconds_reported Int64,
    bitrate_mean_kbps Float64,
    bitrate_min_kbps Int64,
    target_bitrate_kbps Nullable(Int64),
    fps_mean Float64,
    resolution Nullable(String),
    latency_mean_ms Nullable(Float64),
    packet_loss_mean_pct Nullable(Float64),
    dropped_frames Int64,
    status String
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(t, 86400000)
ORDER BY (stream, t, node)
