//! `QueryConfig`: the bounds and limits of the query service (the `[query]` table
//! of the TOML file; every field has a default so an empty table is valid).

use serde::{Deserialize, Serialize};

/// Settings of the query service.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Most points one series answer may hold (`(to − from) / step`, rounded out to
    /// whole buckets); past it the request is refused with 400. Default 10 000.
    pub max_points: usize,
    /// Most groups in a QoE breakdown (`&by=device|country|player`): the values with
    /// the most watch time over the range; the rest are summed into one `other` group.
    /// An answer holds at most (this + 1) × `max_points` points. Default 10.
    pub max_breakdown_groups: usize,
    /// Most data rows one CSV export may hold; past it the request is refused with
    /// 400 before anything is streamed. Default 100 000.
    pub max_export_rows: usize,
    /// Buckets computed and written per chunk of a streamed CSV export (each chunk
    /// is one set of store reads, so memory stays bounded). Default 1 000.
    pub export_chunk_rows: usize,
    /// Most metrics one export may ask for. Default 16 (every series metric fits).
    pub max_export_metrics: usize,
    /// Longest a request may spend reading the store before it is answered with
    /// 503 `timeout`, in milliseconds. Default 10 000.
    pub query_timeout_ms: u64,
    /// Largest accepted request body (the export's JSON), in bytes. Default 16 384.
    pub max_body_bytes: usize,
    /// Partitions DataFusion may use for one query (its `target_partitions`).
    /// Default 2: the queries are small and the machine is shared with ingest.
    pub target_partitions: usize,
    /// Ad-hoc SQL (`POST /api/sql`): most rows one answer may hold; a query with more
    /// is refused with 422 `sql_row_limit`. Default 100 000.
    pub sql_max_rows: usize,
    /// Ad-hoc SQL: longest a query may run (DataFusion: the whole request; ClickHouse:
    /// also `max_execution_time`, rounded up to seconds), else 422 `sql_time_limit`.
    /// Default 30 000.
    pub sql_timeout_ms: u64,
    /// Ad-hoc SQL: most memory one query may use (DataFusion: its memory pool, the
    /// answer included; ClickHouse: `max_memory_usage`, and the size of the answer),
    /// else 422 `sql_memory_limit`. Default 268 435 456 (256 MiB).
    pub sql_max_memory_bytes: usize,
    /// Ad-hoc SQL: longest accepted SQL text, in bytes (400 `sql_text_length`).
    /// Default 65 536.
    pub sql_max_text_bytes: usize,
    /// Ad-hoc SQL: queries running at once on this node (each may use
    /// `sql_max_memory_bytes`); one more is answered 503 `busy` and counted
    /// (`pulse_query_sql_refused_total{rule="busy"}`). Default 2.
    pub sql_max_concurrent: usize,
    /// Targets whose channel is remembered for access checks (a target never changes
    /// channel); once full, lookups go to the catalog/store. Default 100 000.
    pub channel_cache_entries: usize,
    /// Trending scores are recomputed when older than this, in ms (METRICS.md §5: at
    /// least every minute). Default 60 000.
    pub trending_refresh_ms: u64,
    /// Events older than this are left out of trending scores, in ms (after 7 days an
    /// event weighs 2^-28 of its weight). Default 604 800 000.
    pub trending_window_ms: i64,
    /// Most (target, tick) rows of content activity one trending refresh reads; beyond
    /// it the oldest ticks are left out and counted. Default 1 000 000.
    pub trending_max_rows: usize,
    /// Most entries one list answer holds (best streams, top clips/VODs, trending):
    /// the `limit` parameter's default is 10 and its maximum this. Default 100.
    pub max_list_items: usize,
    /// Keep the final points of series answers and read only the open buckets from the
    /// store on the next poll (`series_cache`). Default true.
    pub series_cache: bool,
    /// Most cached series runs (one per metric, scope and step; viewers also keep one
    /// live-range entry per scope). Default 10 000.
    pub series_cache_max_entries: usize,
    /// Most bytes (estimated) the cached runs may hold. Default 67 108 864 (64 MiB).
    pub series_cache_max_bytes: usize,
    /// A cached run is read again from the store this long after its first point was
    /// cached, in ms (so retention and late rows show up). Default 600 000 (10 min).
    pub series_cache_ttl_ms: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_points: 10_000,
            max_breakdown_groups: 10,
            max_export_rows: 100_000,
            export_chunk_rows: 1_000,
            max_export_metrics: 16,
            query_timeout_ms: 10_000,
            max_body_bytes: 16 * 1024,
            target_partitions: 2,
            sql_max_rows: 100_000,
            sql_timeout_ms: 30_000,
            sql_max_memory_bytes: 256 * 1024 * 1024,
            sql_max_text_bytes: 64 * 1024,
            sql_max_concurrent: 2,
            channel_cache_entries: 100_000,
            trending_refresh_ms: 60_000,
            trending_window_ms: 7 * 86_400_000,
            trending_max_rows: 1_000_000,
            max_list_items: 100,
            series_cache: true,
            series_cache_max_entries: 10_000,
            series_cache_max_bytes: 64 * 1024 * 1024,
            series_cache_ttl_ms: 600_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_defaults_and_unknown_fields_are_refused() {
        let c: QueryConfig = serde_json::from_str("{}").expect("empty config");
        assert_eq!(c, QueryConfig::default());
        let c: QueryConfig = serde_json::from_str(r#"{"max_points":5}"#).expect("one field");
        assert_eq!(c.max_points, 5);
        assert_eq!(c.max_export_rows, 100_000);
        assert!(serde_json::from_str::<QueryConfig>(r#"{"max_pionts":5}"#).is_err());
    }
}
