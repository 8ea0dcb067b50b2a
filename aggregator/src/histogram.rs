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
///
/// Written directly from the sorted bucket indexes of the values, without filling a
/// histogram: the bytes are exactly those of `V2Serializer` on a histogram holding the
/// same values (a property test compares them), at a fraction of the cost — a fresh or
/// reset histogram of these bounds is ~45 KB of counters to zero and to scan.
pub fn encode_startups(values: &[u32]) -> Vec<u8> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut indexes: Vec<u32> = values
        .iter()
        .map(|&v| bucket_index(clamp_startup(i64::from(v))))
        .collect();
    indexes.sort_unstable();
    let mut out = Vec::with_capacity(V2_HEADER_SIZE + 3 * indexes.len() + 8);
    out.extend_from_slice(&V2_COOKIE.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // payload length, filled below
    out.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    out.extend_from_slice(&u32::from(STARTUP_SIGFIG).to_be_bytes());
    out.extend_from_slice(&STARTUP_LOW_MS.to_be_bytes());
    out.extend_from_slice(&STARTUP_HIGH_MS.to_be_bytes());
    out.extend_from_slice(&1.0f64.to_be_bytes());
    // Counts from index 0 through the index of the largest value: a run of two or more
    // empty buckets is written as minus its length, a single empty bucket as 0.
    let mut next = 0u32;
    let mut i = 0;
    while i < indexes.len() {
        let index = indexes[i];
        let run = indexes[i..].iter().take_while(|&&x| x == index).count();
        match index - next {
            0 => {}
            1 => write_varint(&mut out, 0),
            zeros => write_varint(&mut out, zig_zag(-i64::from(zeros))),
        }
        write_varint(&mut out, zig_zag(run as i64));
        next = index + 1;
        i += run;
    }
    let payload = (out.len() - V2_HEADER_SIZE) as u32;
    out[4..8].copy_from_slice(&payload.to_be_bytes());
    out
}

/// The V2 format's cookie (hdrhistogram's `V2_COOKIE_BASE | 0x10`) and header size.
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_HEADER_SIZE: usize = 40;

/// Bucket layout of a 1..600 000 ms, 3-digit histogram: 2 048 sub-buckets (2^11) of
/// unit 1 ms (magnitude 0), half of them per bucket after the first.
const SUB_BUCKET_COUNT_MAGNITUDE: u32 = 11;
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = SUB_BUCKET_COUNT_MAGNITUDE - 1;
const SUB_BUCKET_MASK: u64 = (1 << SUB_BUCKET_COUNT_MAGNITUDE) - 1;

/// Index of the counter holding `value` (the same as `Histogram::index_for`).
fn bucket_index(value: u64) -> u32 {
    let bucket = 64 - SUB_BUCKET_COUNT_MAGNITUDE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = (value >> bucket) as u32;
    ((bucket + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket
        - (1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE)
}

fn zig_zag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// LEB128 as the V2 format writes it: 7 bits per byte, low first, at most 9 bytes
/// (the ninth carries the top 8 bits whole).
fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    for _ in 0..8 {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
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

    /// The reference: what hdrhistogram's own serializer writes for the same values.
    fn reference(values: &[u32]) -> Vec<u8> {
        let mut h = new_startup_hist();
        for &v in values {
            h.saturating_record(clamp_startup(i64::from(v)));
        }
        encode_hist(&h)
    }

    #[test]
    fn direct_encoding_matches_hdrhistogram_on_edges() {
        for values in [
            vec![1],
            vec![0, 0, 0],
            vec![600_000],
            vec![u32::MAX],
            vec![2047, 2048, 2049, 4095, 4096],
            vec![1, 3, 5, 1_000, 1_001, 1_002, 250_000],
            (0..5_000).collect::<Vec<u32>>(),
        ] {
            assert_eq!(encode_startups(&values), reference(&values), "{values:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn direct_encoding_matches_hdrhistogram(
            values in proptest::collection::vec(
                proptest::prop_oneof![0u32..3_000, 0u32..700_000, proptest::num::u32::ANY],
                1..200,
            )
        ) {
            proptest::prop_assert_eq!(encode_startups(&values), reference(&values));
        }
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
