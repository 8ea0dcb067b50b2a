//! Parsing and checking of request parameters shared by the routes: times (epoch ms or
//! RFC 3339), steps (only the chart steps of METRICS.md §2), the scope (exactly one of
//! `stream`/`channel`/`vod`/`clip`, a valid id) and the point bound.

use crate::error::QueryError;
use crate::series::Buckets;
use crate::store::{Scope, ScopeKind};
use pulse_schemas::Id;
use serde::Deserialize;

/// Largest accepted time (2^53 − 1 ms, as for event `ts`): keeps bucket arithmetic far
/// from overflow.
pub const MAX_TIME_MS: i64 = (1 << 53) - 1;

/// The chart steps (METRICS.md §2), with their short names.
pub const ALLOWED_STEPS: [(i64, &str); 5] = [
    (5_000, "5s"),
    (60_000, "1m"),
    (300_000, "5m"),
    (3_600_000, "1h"),
    (86_400_000, "1d"),
];

/// Step used when a request names none: one minute.
pub const DEFAULT_STEP_MS: i64 = 60_000;

/// A time or a step as it came: a JSON number or a string (query strings are strings).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NumOrText {
    Num(i64),
    Text(String),
}

impl NumOrText {
    pub fn as_text(&self) -> String {
        match self {
            NumOrText::Num(n) => n.to_string(),
            NumOrText::Text(s) => s.clone(),
        }
    }
}

/// Epoch ms or RFC 3339 (`2025-11-24T16:00:00Z`, `2025-11-24T17:00:00+01:00`).
/// The parsed query string of a request, or a 400 that says what was wrong with it.
pub fn query_params<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, QueryError> {
    q.map(|axum::extract::Query(p)| p)
        .map_err(|e| QueryError::invalid("query", e.body_text()))
}

pub fn parse_time(name: &'static str, raw: &str) -> Result<i64, QueryError> {
    let raw = raw.trim();
    let ms = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<i64>()
            .map_err(|_| QueryError::invalid(name, format!("{raw:?} is out of range")))?
    } else {
        chrono::DateTime::parse_from_rfc3339(raw)
            .map_err(|e| {
                QueryError::invalid(
                    name,
                    format!("expected epoch ms or an RFC 3339 time, got {raw:?} ({e})"),
                )
            })?
            .timestamp_millis()
    };
    if !(0..=MAX_TIME_MS).contains(&ms) {
        return Err(QueryError::invalid(
            name,
            format!("must be between 0 and {MAX_TIME_MS} epoch ms, got {ms}"),
        ));
    }
    Ok(ms)
}

fn allowed_steps_text() -> String {
    ALLOWED_STEPS
        .iter()
        .map(|(ms, s)| format!("{ms} ({s})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One of [`ALLOWED_STEPS`], in ms or by its short name, and a multiple of the tick.
pub fn parse_step(raw: Option<&str>, tick_ms: i64) -> Result<i64, QueryError> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(DEFAULT_STEP_MS);
    };
    let step = ALLOWED_STEPS
        .iter()
        .find(|(ms, name)| raw == *name || raw.parse::<i64>().ok() == Some(*ms))
        .map(|(ms, _)| *ms)
        .ok_or_else(|| {
            QueryError::invalid(
                "step",
                format!(
                    "{raw:?} is not an allowed step; allowed steps (ms): {}",
                    allowed_steps_text()
                ),
            )
        })?;
    if step % tick_ms != 0 {
        return Err(QueryError::invalid(
            "step",
            format!("{step} ms is not a multiple of the tick ({tick_ms} ms)"),
        ));
    }
    Ok(step)
}

/// The scope fields of a request, exactly one of which must be set.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ScopeParams {
    pub stream: Option<String>,
    pub channel: Option<String>,
    pub vod: Option<String>,
    pub clip: Option<String>,
}

impl ScopeParams {
    /// `allowed`: the scope kinds the route serves.
    pub fn scope(&self, allowed: &[ScopeKind]) -> Result<Scope, QueryError> {
        let given: Vec<(ScopeKind, &String)> = [
            (ScopeKind::Stream, &self.stream),
            (ScopeKind::Channel, &self.channel),
            (ScopeKind::Vod, &self.vod),
            (ScopeKind::Clip, &self.clip),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let names = allowed
            .iter()
            .map(|k| k.param())
            .collect::<Vec<_>>()
            .join(", ");
        let [(kind, raw)] = given.as_slice() else {
            return Err(QueryError::invalid(
                "scope",
                format!("give exactly one of {names}"),
            ));
        };
        if !allowed.contains(kind) {
            return Err(QueryError::invalid(
                kind.param(),
                format!("this route takes one of {names}"),
            ));
        }
        let id = Id::parse(raw).map_err(|e| QueryError::invalid(kind.param(), e))?;
        Ok(Scope { kind: *kind, id })
    }
}

/// Checks a range and step and returns its buckets, refusing more than `max` of them.
pub fn buckets(
    from: Option<&str>,
    to: Option<&str>,
    step: Option<&str>,
    tick_ms: i64,
    max: usize,
    what: &str,
) -> Result<Buckets, QueryError> {
    let from = parse_time(
        "from",
        from.ok_or_else(|| QueryError::invalid("from", "required (epoch ms or RFC 3339)"))?,
    )?;
    let to = parse_time(
        "to",
        to.ok_or_else(|| QueryError::invalid("to", "required (epoch ms or RFC 3339)"))?,
    )?;
    if to <= from {
        return Err(QueryError::invalid(
            "to",
            format!("must be after from ({to} ≤ {from})"),
        ));
    }
    let step = parse_step(step, tick_ms)?;
    let b = Buckets::covering(from, to, step);
    if b.count > max {
        return Err(QueryError::TooLarge(format!(
            "the range holds {} {what} of {step} ms, more than the limit of {max}; use a larger step or a shorter range",
            b.count
        )));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_epoch_ms_or_rfc3339() {
        assert_eq!(
            parse_time("from", "1764000000000").expect("ms"),
            1_764_000_000_000
        );
        assert_eq!(
            parse_time("from", "1970-01-01T00:01:00Z").expect("utc"),
            60_000
        );
        assert_eq!(
            parse_time("from", "1970-01-01T01:01:00+01:00").expect("offset"),
            60_000
        );
        assert!(parse_time("from", "yesterday").is_err());
        assert!(parse_time("from", "-5").is_err());
        assert!(parse_time("from", "99999999999999999999").is_err());
        assert!(parse_time("from", "1969-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn only_chart_steps_are_accepted() {
        assert_eq!(parse_step(None, 5000).expect("default"), 60_000);
        assert_eq!(parse_step(Some("5000"), 5000).expect("ms"), 5_000);
        assert_eq!(parse_step(Some("1h"), 5000).expect("name"), 3_600_000);
        let e = parse_step(Some("10000"), 5000)
            .expect_err("not allowed")
            .to_string();
        assert!(
            e.contains("5000 (5s), 60000 (1m), 300000 (5m), 3600000 (1h), 86400000 (1d)"),
            "{e}"
        );
        assert!(parse_step(Some("5000"), 2000).is_err());
    }

    #[test]
    fn scope_needs_exactly_one_valid_id() {
        let all = ScopeKind::ALL;
        let p = ScopeParams {
            stream: Some("s1".into()),
            ..ScopeParams::default()
        };
        assert_eq!(p.scope(&all).expect("one").kind, ScopeKind::Stream);
        assert!(ScopeParams::default().scope(&all).is_err());
        let two = ScopeParams {
            stream: Some("s1".into()),
            channel: Some("c".into()),
            ..ScopeParams::default()
        };
        assert!(two.scope(&all).is_err());
        let vod = ScopeParams {
            vod: Some("v".into()),
            ..ScopeParams::default()
        };
        assert!(vod.scope(&[ScopeKind::Stream, ScopeKind::Channel]).is_err());
        let bad = ScopeParams {
            stream: Some("a b".into()),
            ..ScopeParams::default()
        };
        assert!(bad.scope(&all).is_err());
    }

    #[test]
    fn bucket_count_is_bounded() {
        assert_eq!(
            buckets(Some("0"), Some("600000"), Some("1m"), 5000, 10, "points")
                .expect("ok")
                .count,
            10
        );
        let e = buckets(Some("0"), Some("600001"), Some("1m"), 5000, 10, "points")
            .expect_err("too many");
        assert_eq!(e.code(), "too_large");
        assert!(buckets(Some("10"), Some("10"), None, 5000, 10, "points").is_err());
        assert!(buckets(None, Some("10"), None, 5000, 10, "points").is_err());
    }
}
