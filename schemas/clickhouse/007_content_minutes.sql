-- content_minutes: VOD and clip views, likes, shares, embeds, clickthroughs per minute.
CREATE TABLE IF NOT EXISTS content_minutes (
    node String,
    kind String,
    target String,
    channel String,
    minute Int64,
    views Int64,
    watch_ms Int64,
    likes Int64,
    shares Int64,
    embed_views Int64,
    clickthroughs Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(minute, 86400000)
ORDER BY (kind, target, minute, node)
