-- viewer_minutes: one row per node, target, minute and viewer with activity
-- (schemas/src/tables.rs ViewerMinuteRow).
CREATE TABLE IF NOT EXISTS viewer_minutes (
    node String,
    kind String,
    target String,
    channel String,
    minute Int64,
    viewer String,
    events Int64,
    followed UInt8,
    chat_messages Int64,
    seen_mask Nullable(Int64),
    follow_mask Nullable(Int64)
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(minute, 86400000)
ORDER BY (kind, target, minute, viewer, node)
