-- stream_ticks: viewers and counters per node, target and tick (schemas/src/tables.rs TickRow).
-- Idempotent key = ORDER BY: a retried or re-drained insert replaces, never adds (read with FINAL).
CREATE TABLE IF NOT EXISTS stream_ticks (
    node String,
    kind String,
    target String,
    channel String,
    t Int64,
    viewers Int64,
    events Int64,
    views Int64,
    watch_ms Int64,
    rebuffer_ms Int64,
    rebuffer_count Int64,
    startups Int64,
    startup_hist String,
    failures Int64,
    chat_messages Int64,
    follows Int64,
    likes Int64,
    shares Int64,
    embed_views Int64,
    clickthroughs Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(t, 86400000)
ORDER BY (kind, target, t, node)
