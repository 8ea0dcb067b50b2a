-- qoe_minutes: playback quality per node, target, minute and (device, country, player)
-- group (schemas/src/qoe_tables.rs QoeMinuteRow). Dimensions are never null
-- ('unknown' / 'other'), so they can be part of the sort key.
CREATE TABLE IF NOT EXISTS qoe_minutes (
    node String,
    kind String,
    target String,
    channel String,
    minute Int64,
    device String,
    country String,
    player String,
    viewer_ticks Int64,
    views Int64,
    watch_ms Int64,
    rebuffer_ms Int64,
    rebuffer_count Int64,
    startups Int64,
    startup_hist String,
    failures Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(minute, 86400000)
ORDER BY (kind, target, minute, device, country, player, node)
