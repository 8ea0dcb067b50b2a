-- node_progress: how far the closed windows of each ingest node are in the store. A node inserts
-- its row after the rows it covers, so every window before min(closed_through) over nodes
-- is complete; readers only read windows closed by that point (max per node, min over nodes).
CREATE TABLE IF NOT EXISTS node_progress (
    node String,
    closed_through Int64
) ENGINE = ReplacingMergeTree()
ORDER BY (node, closed_through)
