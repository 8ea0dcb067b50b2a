//! `AggregatorConfig`: the aggregator's settings, with the documented defaults.

use pulse_schemas::Id;
use serde::{Deserialize, Serialize};

/// Settings of the aggregator (the `[aggregator]` part of the TOML file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Id written into every row (`node`); readers sum across nodes. Default `"local"`.
    pub node_id: Id,
    /// Tick length in ms, ticks aligned to the epoch. Default 5000.
    pub tick_ms: i64,
    /// How far behind the newest event time an event may arrive and still count.
    /// The watermark is (newest event time, or now when idle or when input waits for
    /// room in pending) minus this. Default 10000.
    pub allowed_lateness_ms: i64,
    /// A session silent for longer than this has ended at its last event. Default 30000.
    pub session_timeout_ms: i64,
    /// Events waiting for the watermark (about 250 bytes each). When full, the live
    /// loop takes no more input until the watermark makes room (ingest waits:
    /// `pulse_aggregator_intake_held_total`); only if it stays full for longer than the
    /// lateness plus two flush intervals (events stamped far ahead) is input taken
    /// again and the newest dropped and counted (`dropped_events_total{reason=
    /// "pending_full"}`). Events stamped near receive time wait about
    /// `allowed_lateness_ms`, and up to an eighth of it more until the next mark of the
    /// state applied ahead (half of it for a large state at a low rate), so this caps
    /// the sustained input at about `max_pending_events / (1.125 × lateness)` (1.5 ×
    /// for such a state): the default takes about 178 000 events/s at 10 s.
    /// Default 2 000 000.
    pub max_pending_events: usize,
    /// Open view sessions; events that would start one more are dropped and counted
    /// (`reason="max_sessions"`). Default 1 000 000.
    pub max_sessions: usize,
    /// Targets (streams, VODs, clips) with open windows or sessions; events of one more
    /// are dropped and counted (`reason="max_targets"`). Default 200 000.
    pub max_targets: usize,
    /// Open (viewer, target, minute) entries; an event that would open one more is still
    /// counted in its tick but not in `viewer_minutes` (`reason="max_viewer_minutes"`).
    /// Default 4 000 000.
    pub max_viewer_minutes: usize,
    /// (device, country, player) groups per target in `qoe_minutes`; sessions of a
    /// group past this are booked into the `other` group and counted
    /// (`pulse_aggregator_qoe_groups_overflowed_total`). Default 256.
    pub max_qoe_groups: usize,
    /// Ended session ids remembered to recognise orphan events; the oldest are evicted
    /// beyond this. Default 1 000 000.
    pub max_tombstones: usize,
    /// How long after its end an ended session still turns its events into orphans
    /// (later, such an event starts a session "first seen mid-way"). Default 3 600 000 (1 h).
    pub tombstone_ttl_ms: i64,
    /// How often the live loop advances the watermark and writes to the sink. Default 1000.
    pub flush_interval_ms: u64,
    /// Capacity of the ingest → aggregator channel, in events (batches of any size; a
    /// batch larger than this goes alone); a full channel makes ingest wait. It absorbs
    /// the stretches in which the aggregator thread takes little input (a sink write,
    /// a provisional computation); see `pulse_schemas::handoff`. Default 524 288 (about
    /// 120 MB of events when full). It replaces `channel_capacity_batches`, which
    /// counted batches: an old file naming that key is refused at start.
    pub channel_capacity_events: usize,
    /// Days of analytics rows kept in the store: once an hour the live loop asks the sink
    /// to drop whole UTC days that ended more than this long ago (embedded: Parquet day
    /// directories; ClickHouse: `ALTER TABLE … DROP PARTITION`). 0 keeps everything.
    /// Default 0.
    pub retention_days: u32,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            node_id: Id::new_unchecked("local"),
            tick_ms: 5_000,
            allowed_lateness_ms: 10_000,
            session_timeout_ms: 30_000,
            max_pending_events: 2_000_000,
            max_sessions: 1_000_000,
            max_targets: 200_000,
            max_viewer_minutes: 4_000_000,
            max_qoe_groups: 256,
            max_tombstones: 1_000_000,
            tombstone_ttl_ms: 3_600_000,
            flush_interval_ms: 1_000,
            channel_capacity_events: 524_288,
            retention_days: 0,
        }
    }
}

impl AggregatorConfig {
    /// Checks the values that would make windows meaningless.
    pub fn validate(&self) -> Result<(), crate::AggregatorError> {
        let bad = |m: &str| Err(crate::AggregatorError::Config(m.to_string()));
        if self.tick_ms <= 0 || 60_000 % self.tick_ms != 0 {
            return bad(
                "tick_ms must be > 0 and divide 60000 (chart buckets are multiples of the tick)",
            );
        }
        if self.allowed_lateness_ms < 0 {
            return bad("allowed_lateness_ms must be ≥ 0");
        }
        if self.session_timeout_ms <= 0 {
            return bad("session_timeout_ms must be > 0");
        }
        if self.tombstone_ttl_ms < 0 {
            return bad("tombstone_ttl_ms must be ≥ 0");
        }
        if self.flush_interval_ms == 0 {
            return bad("flush_interval_ms must be > 0");
        }
        if self.channel_capacity_events == 0
            || self.channel_capacity_events > pulse_schemas::handoff::MAX_CAPACITY_EVENTS
        {
            return bad("channel_capacity_events must be from 1 to 1073741824");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_fields() {
        let c: AggregatorConfig = serde_json::from_str(r#"{"tick_ms":1000}"#).unwrap();
        assert_eq!(c.tick_ms, 1000);
        assert_eq!(c.session_timeout_ms, 30_000);
        assert!(c.validate().is_ok());
        assert!(serde_json::from_str::<AggregatorConfig>(r#"{"tick":1}"#).is_err());
        let c = AggregatorConfig {
            tick_ms: 7000,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
