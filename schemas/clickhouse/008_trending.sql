-- trending: trending score per target and computation time.
CREATE TABLE IF NOT EXISTS trending (
    node String,
    kind String,
    target String,
    channel String,
    t Int64,
    score Float64,
    views Int64,
    engagements Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY intDiv(t, 86400000)
ORDER BY (kind, target, t, node)
