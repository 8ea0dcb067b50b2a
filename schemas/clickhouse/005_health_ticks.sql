-- health_ticks: encoder health per node, stream and tick (METRICS.md §4; issue 5 adds the
-- Rust row: its Arrow schema must match these columns, the migrate test checks each table
-- that has a Rust row).
CREATE TABLE IF NOT EXISTS health_ticks (
    node String,
    stream String,
    channel String,
    t Int64,
    samples Int64,
    bitrate_kbps_sum Int64,
    bitrate_kbps_min Int64,
    fps_sum Int64,
    dropped_frames Int64,
    keyframe_interval_ms_max Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(t, 86400000)
ORDER BY (stream, t, node)
