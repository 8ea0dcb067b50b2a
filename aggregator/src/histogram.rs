//! Startup-time histograms (METRICS.md §1): HDR histograms from 1 ms to 10 min with
//! 3 significant digits, stored in `stream_ticks.startup_hist` in the V2 serialization
//! (uncompressed) and merged on read.
//!
//! Accumulators keep the raw startup values (`Vec<u32>`) and build the histogram only
//! when a row is written, so cloning an open window for provisional rows stays cheap.
//! Values outside 1 ms..10 min are clamped into the range (a 0 ms startup counts as
//! 1 ms, a 20 min one as 10 min), so every histogram has the same bounds and merges.

use crate::AggregatorError;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

/// Lowest recordable startup time (ms).
pub const STARTUP_LOW_MS: u64 = 1;
/// Highest recordable startup time (ms): 10 minutes.
pub const STARTUP_HIGH_MS: u64 = 600_000;
/// Significant decimal digits kept.
pub const STARTUP_SIGFIG: u8 = 3;

/// An empty startup histogram with the documented bounds.
pub fn new_startup_hist() -> Histogram<u64> {
    // Constant, valid bounds: creation cannot fail (checked by a unit test).
    Histogram::new_with_bounds(STARTUP_LOW_MS, STARTUP_HIGH_MS, STARTUP_SIGFIG)
        .expect("constant histogram bounds are valid")
}

/// Clamps a startup time (ms) into the histogram's range.
pub fn clamp_startup(ms: i64) -> u64 {
    ms.clamp(STARTUP_LOW_MS as i64, STARTUP_HIGH_MS as i64) as u64
}

/// Builds the V2 serialization of the startup times in `values` (empty bytes when there are none).
pub fn encode_startups(values: &[u32]) -> Vec<u8> {
    if values.is_empty() {
        return Vec::new();
    }
    // One reusable histogram per thread: a fresh one is ~45 KB of counters to allocate
    // and zero for every row. u32 counters (a tick has far fewer than 4 billion
    // startups); the V2 format does not depend on the counter width.
    SCRATCH.with(|cell| {
        let mut h = cell.borrow_mut();
        h.reset();
        for &v in values {
            h.saturating_record(clamp_startup(i64::from(v)));
        }
        encode_hist(&h)
    })
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Histogram<u32>> = std::cell::RefCell::new(
        Histogram::new_with_bounds(STARTUP_LOW_MS, STARTUP_HIGH_MS, STARTUP_SIGFIG)
            .expect("constant histogram bounds are valid"),
    );
}

/// V2 serialization of `h` (what `stream_ticks.startup_hist` holds).
pub fn encode_hist<C: hdrhistogram::Counter>(h: &Histogram<C>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // Writing into a Vec cannot fail with an I/O error; the serializer's only other
    // failure is a histogram wider than its format, which our bounds exclude.
    if V2Serializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Reads one `startup_hist` value. Empty bytes are an empty histogram.
pub fn decode_hist(bytes: &[u8]) -> Result<Histogram<u64>, AggregatorError> {
    if bytes.is_empty() {
        return Ok(new_startup_hist());
    }
    let mut reader = bytes;
    Deserializer::new()
        .deserialize::<u64, _>(&mut reader)
        .map_err(|e| AggregatorError::Histogram(format!("cannot read startup_hist: {e:?}")))
}

/// Merges serialized histograms (as the query crate reads them from rows of several
/// ticks and nodes) into one with the documented bounds.
pub fn merge_hists<'a>(
    parts: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Histogram<u64>, AggregatorError> {
    let mut total = new_startup_hist();
    for bytes in parts {
        if bytes.is_empty() {
            continue;
        }
        let h = decode_hist(bytes)?;
        total
            .add(&h)
            .map_err(|e| AggregatorError::Histogram(format!("cannot merge startup_hist: {e:?}")))?;
    }
    Ok(total)
}

/// Adds one serialized histogram into `into` (the incremental form of [`merge_hists`]).
pub fn merge_into(into: &mut Histogram<u64>, bytes: &[u8]) -> Result<(), AggregatorError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let h = decode_hist(bytes)?;
    into.add(&h)
        .map_err(|e| AggregatorError::Histogram(format!("cannot merge startup_hist: {e:?}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_valid() {
        let h = Histogram::<u64>::new_with_bounds(STARTUP_LOW_MS, STARTUP_HIGH_MS, STARTUP_SIGFIG);
        assert!(h.is_ok());
        let h = new_startup_hist();
        assert_eq!(h.low(), 1);
        assert!(h.high() >= 600_000);
        assert_eq!(h.sigfig(), 3);
    }

    #[test]
    fn round_trips_and_clamps() {
        let bytes = encode_startups(&[0, 250, 1000, 1_000_000]);
        let h = decode_hist(&bytes).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h.min(), 1);
        assert!(h.equivalent(h.max(), 600_000));
        assert!(h.equivalent(h.value_at_quantile(0.5), 250));
    }

    #[test]
    fn empty_is_empty() {
        assert!(encode_startups(&[]).is_empty());
        assert_eq!(decode_hist(&[]).unwrap().len(), 0);
        assert!(decode_hist(&[1, 2, 3]).is_err());
    }

    #[test]
    fn merges_parts() {
        let a = encode_startups(&[100, 200]);
        let b = encode_startups(&[300]);
        let h = merge_hists([a.as_slice(), b.as_slice(), &[]]).unwrap();
        assert_eq!(h.len(), 3);
        assert!(h.equivalent(h.max(), 300));
        let mut m = new_startup_hist();
        merge_into(&mut m, &a).unwrap();
        merge_into(&mut m, &b).unwrap();
        assert_eq!(m.len(), 3);
    }
}
