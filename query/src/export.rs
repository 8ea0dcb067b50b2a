//! CSV export (`POST /api/analytics/export`): RFC 4180 text (CRLF line ends; a field
//! holding a comma, quote, CR or LF is quoted with its quotes doubled), one header
//! row `t,time,<metric>...` then one row per bucket: `t` the bucket start in epoch ms,
//! `time` the same instant in RFC 3339 in the requested time zone (UTC by default): a
//! fixed offset (`+05:30`) or an IANA zone (`Europe/Paris`, from the bundled `chrono-tz`
//! database), whose offset follows daylight saving time row by row. Buckets stay aligned
//! to the epoch (UTC), as the series route's are, so a CSV and a chart share their rows.
//!
//! The body is streamed: buckets are computed `export_chunk_rows` at a time, each chunk
//! one set of store reads on the same snapshot, so memory stays bounded whatever the
//! range. The first chunk is computed before the response starts (so a failing store
//! still gets a proper error status); a failure later ends the body early.

use crate::error::QueryError;
use crate::series::{Buckets, Metric, Point, load_inputs, points};
use crate::store::{AnalyticsStore, Scope};
use crate::summary::LiveTicks;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use chrono_tz::Tz;
use futures_util::Stream;
use std::sync::Arc;
use std::time::Duration;

/// Appends one field, quoted when RFC 4180 requires it.
pub fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Appends one record (fields separated by commas, ended by CRLF).
pub fn push_record<I, S>(out: &mut String, fields: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, f.as_ref());
    }
    out.push_str("\r\n");
}

/// The time zone of an export's `time` column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExportTz {
    /// UTC or a fixed offset.
    Fixed(FixedOffset),
    /// An IANA zone: the offset of each row is the zone's at that instant.
    Named(Tz),
}

/// `UTC`/`Z`, a fixed offset `±HH:MM`, or an IANA zone name such as `Europe/Paris`.
pub fn parse_tz(raw: Option<&str>) -> Result<ExportTz, QueryError> {
    let utc = FixedOffset::east_opt(0).ok_or_else(|| QueryError::invalid("tz", "UTC"))?;
    let Some(raw) = raw.map(str::trim) else {
        return Ok(ExportTz::Fixed(utc));
    };
    if raw.eq_ignore_ascii_case("utc") || raw == "Z" {
        return Ok(ExportTz::Fixed(utc));
    }
    let bad = || {
        QueryError::invalid(
            "tz",
            format!(
                "expected \"UTC\", an offset like \"+05:30\" or an IANA zone like \"Europe/Paris\", got {raw:?}"
            ),
        )
    };
    let (sign, rest) = match raw.as_bytes().first() {
        Some(b'+') => (1, &raw[1..]),
        Some(b'-') => (-1, &raw[1..]),
        // Zone names are ASCII letters, digits and `/_+-`; the database is the judge.
        _ => return raw.parse::<Tz>().map(ExportTz::Named).map_err(|_| bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(h) || !ok(m) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .map(ExportTz::Fixed)
        .ok_or_else(bad)
}

/// The header record.
pub fn header(metrics: &[Metric]) -> String {
    let mut out = String::new();
    push_record(
        &mut out,
        ["t", "time"]
            .into_iter()
            .chain(metrics.iter().map(|m| m.name())),
    );
    out
}

/// Rows of the buckets `columns[m][i]` (one column of points per metric, same buckets).
pub fn rows(out: &mut String, columns: &[Vec<Point>], tz: &ExportTz) {
    let n = columns.first().map_or(0, Vec::len);
    let mut fields: Vec<String> = Vec::with_capacity(columns.len() + 2);
    for i in 0..n {
        fields.clear();
        let t = columns[0][i].t;
        fields.push(t.to_string());
        fields.push(rfc3339(t, tz));
        fields.extend(
            columns
                .iter()
                .map(|c| c.get(i).map(|p| p.value.to_string()).unwrap_or_default()),
        );
        push_record(out, &fields);
    }
}

/// A broken-down export, whole (bounded by the route: buckets × groups ≤
/// `max_export_rows`): header `t,time,<by>,<metric>...`, then per bucket one row per
/// group, groups in the breakdown's order. `series` holds one breakdown per metric,
/// all over the same rows (so the same groups in the same order).
pub fn breakdown_csv(
    series: &[crate::breakdown::Breakdown],
    metrics: &[Metric],
    by: crate::store::qoe_reads::Dimension,
    tz: &ExportTz,
) -> String {
    let mut out = String::new();
    push_record(
        &mut out,
        ["t", "time", by.name()]
            .into_iter()
            .chain(metrics.iter().map(|m| m.name())),
    );
    let Some(first) = series.first() else {
        return out;
    };
    let n = first.groups.first().map_or(0, |g| g.points.len());
    let mut fields: Vec<String> = Vec::with_capacity(metrics.len() + 3);
    for i in 0..n {
        for (g, group) in first.groups.iter().enumerate() {
            let Some(t) = group.points.get(i).map(|p| p.t) else {
                continue;
            };
            fields.clear();
            fields.push(t.to_string());
            fields.push(rfc3339(t, tz));
            fields.push(group.key.clone());
            fields.extend(series.iter().map(|s| {
                s.groups
                    .get(g)
                    .and_then(|x| x.points.get(i))
                    .map(|p| p.value.to_string())
                    .unwrap_or_default()
            }));
            push_record(&mut out, &fields);
        }
    }
    out
}

fn rfc3339(t: i64, tz: &ExportTz) -> String {
    let Some(d) = DateTime::from_timestamp_millis(t) else {
        return String::new();
    };
    let local = match tz {
        ExportTz::Fixed(offset) => d.with_timezone(offset),
        ExportTz::Named(zone) => d.with_timezone(zone).fixed_offset(),
    };
    local.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Everything an export needs besides the store.
#[derive(Clone, Debug)]
pub struct ExportPlan {
    pub scope: Scope,
    pub metrics: Vec<Metric>,
    pub buckets: Buckets,
    pub tz: ExportTz,
    pub tick_ms: i64,
    pub chunk_rows: usize,
    pub timeout_ms: u64,
    /// Live ranges already known (from lifecycle records); `None`: read from the store.
    pub live: Option<Vec<crate::store::LiveRange>>,
}

/// The CSV rows of one chunk of buckets.
pub async fn chunk<S: AnalyticsStore>(
    store: &S,
    plan: &ExportPlan,
    buckets: &Buckets,
    live: &LiveTicks,
) -> Result<String, QueryError> {
    let read = load_inputs(
        store,
        &plan.scope,
        &plan.metrics,
        buckets,
        Some(live.clone()),
    );
    let inputs = tokio::time::timeout(Duration::from_millis(plan.timeout_ms), read)
        .await
        .map_err(|_| QueryError::Timeout(plan.timeout_ms))??;
    let columns: Vec<Vec<Point>> = plan
        .metrics
        .iter()
        .map(|&m| points(m, buckets, &inputs, plan.tick_ms))
        .collect();
    let mut out = String::with_capacity(buckets.count * (24 + 12 * plan.metrics.len()));
    rows(&mut out, &columns, &plan.tz);
    Ok(out)
}

/// Reads the live ranges once, computes the header and the first chunk, and returns
/// them with the stream of the remaining chunks.
pub async fn start<S: AnalyticsStore + 'static>(
    store: Arc<S>,
    plan: ExportPlan,
) -> Result<
    (
        String,
        impl Stream<Item = Result<Bytes, QueryError>> + Send + 'static,
    ),
    QueryError,
> {
    let chunk_rows = plan.chunk_rows.max(1);
    let live = if let Some(ranges) = &plan.live {
        LiveTicks::new(ranges)
    } else if plan.metrics.contains(&Metric::Viewers) {
        let read = store.live_ranges(&plan.scope);
        let ranges = tokio::time::timeout(Duration::from_millis(plan.timeout_ms), read)
            .await
            .map_err(|_| QueryError::Timeout(plan.timeout_ms))??;
        LiveTicks::new(&ranges)
    } else {
        LiveTicks::default()
    };
    let mut first = header(&plan.metrics);
    first.push_str(
        &chunk(
            store.as_ref(),
            &plan,
            &plan.buckets.slice(0, chunk_rows),
            &live,
        )
        .await?,
    );
    let rest = futures_util::stream::unfold(chunk_rows, move |done| {
        let (store, plan, live) = (store.clone(), plan.clone(), live.clone());
        async move {
            if done >= plan.buckets.count {
                return None;
            }
            let part = plan.buckets.slice(done, chunk_rows);
            match chunk(store.as_ref(), &plan, &part, &live).await {
                Ok(text) => Some((Ok(Bytes::from(text)), done + chunk_rows)),
                Err(e) => {
                    tracing::warn!(error = %e, "CSV export ended early");
                    Some((Err(e), plan.buckets.count))
                }
            }
        }
    });
    Ok((first, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Num;

    #[test]
    fn fields_are_quoted_as_rfc4180_says() {
        let mut out = String::new();
        push_record(
            &mut out,
            ["plain", "a,b", "say \"hi\"", "two\r\nlines", "lf\n", ""],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\r\nlines\",\"lf\n\",\r\n"
        );
    }

    #[test]
    fn header_and_rows() {
        assert_eq!(
            header(&[Metric::Viewers, Metric::Views]),
            "t,time,viewers,views\r\n"
        );
        let p = |t, v| Point {
            t,
            value: v,
            peak: None,
            is_final: true,
        };
        let cols = vec![
            vec![p(0, Num::Float(1.5)), p(60_000, Num::Float(2.0))],
            vec![p(0, Num::Int(3)), p(60_000, Num::Int(0))],
        ];
        let mut out = String::new();
        rows(&mut out, &cols, &parse_tz(None).expect("utc"));
        assert_eq!(
            out,
            "0,1970-01-01T00:00:00.000Z,1.5,3\r\n60000,1970-01-01T00:01:00.000Z,2,0\r\n"
        );
        let mut out = String::new();
        rows(
            &mut out,
            &cols[..1],
            &parse_tz(Some("+05:30")).expect("offset"),
        );
        assert!(
            out.starts_with("0,1970-01-01T05:30:00.000+05:30,1.5\r\n"),
            "{out}"
        );
    }

    #[test]
    fn time_zones() {
        let fixed = |s| {
            FixedOffset::east_opt(s)
                .map(ExportTz::Fixed)
                .expect("offset")
        };
        assert_eq!(parse_tz(Some("UTC")).expect("utc"), fixed(0));
        assert_eq!(parse_tz(Some("-08:00")).expect("offset"), fixed(-8 * 3600));
        assert_eq!(
            parse_tz(Some("Europe/Paris")).expect("zone"),
            ExportTz::Named(chrono_tz::Europe::Paris)
        );
        for bad in [
            "Mars/Olympus",
            "+5:30",
            "+24:00",
            "05:00",
            "+05:60",
            "",
            "europe paris",
        ] {
            assert!(parse_tz(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn named_zones_follow_daylight_saving_time() {
        let paris = parse_tz(Some("Europe/Paris")).expect("zone");
        // 2025-03-30 01:00 UTC: the clocks in Paris go from 02:00 (+01:00) to 03:00 (+02:00).
        let change = 1_743_296_400_000;
        assert_eq!(
            rfc3339(change - 60_000, &paris),
            "2025-03-30T01:59:00.000+01:00"
        );
        assert_eq!(rfc3339(change, &paris), "2025-03-30T03:00:00.000+02:00");
        let ny = parse_tz(Some("America/New_York")).expect("zone");
        assert_eq!(rfc3339(0, &ny), "1969-12-31T19:00:00.000-05:00");
    }
}
