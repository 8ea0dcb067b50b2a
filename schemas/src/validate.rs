//! `validate`: the rules of PROTOCOL.md §1 that serde cannot say (id alphabet, exactly
//! one target, per-type fields, ranges), applied to a [`WireEvent`] read by serde or by
//! the scanner; every refusal names its field.

use crate::event::{
    Device, Event, EventKind, MAX_CHAT_COUNT, MAX_TEXT_LEN, MAX_TS, PlayerState, Target,
    TargetKind, WireEvent,
};
use crate::id::Id;
use crate::rejection::{RejectReason, Rejection};
use std::fmt;

#[inline]
fn id(field: &str, value: &str) -> Result<Id, Rejection> {
    Id::parse(value).map_err(|e| Rejection::field(field, RejectReason::InvalidValue, e))
}

fn text(field: &str, value: Option<&str>) -> Result<Option<Box<str>>, Rejection> {
    match value {
        None => Ok(None),
        // ASCII (the common case) counts its characters by its length.
        Some(v)
            if v.is_empty()
                || (v.is_ascii()
                    && (v.len() > MAX_TEXT_LEN || v.bytes().any(|b| b.is_ascii_control())))
                || (!v.is_ascii()
                    && (v.chars().count() > MAX_TEXT_LEN || v.chars().any(char::is_control))) =>
        {
            Err(Rejection::field(
                field,
                RejectReason::InvalidValue,
                format!(
                    "expected 1 to {MAX_TEXT_LEN} printable characters, got {} characters",
                    v.chars().count()
                ),
            ))
        }
        Some(v) => Ok(Some(Box::from(v))),
    }
}

#[inline]
fn only_on(
    field: &str,
    present: bool,
    kind: EventKind,
    allowed: EventKind,
) -> Result<(), Rejection> {
    if present && kind != allowed {
        return Err(Rejection::field(
            field,
            RejectReason::InvalidValue,
            format!("only allowed on `{allowed}` events, got it on `{kind}`"),
        ));
    }
    Ok(())
}

pub(crate) fn validate(w: &WireEvent<'_>) -> Result<Event, Rejection> {
    let kind = one_of("type", &w.kind, EventKind::parse, EventKind::ALL)?;
    if !(0..=MAX_TS).contains(&w.ts) {
        return Err(Rejection::field(
            "ts",
            RejectReason::InvalidValue,
            format!(
                "expected epoch milliseconds from 0 to {MAX_TS}, got {}",
                w.ts
            ),
        ));
    }
    let viewer = id("viewer", &w.viewer)?;
    let channel = id("channel", &w.channel)?;
    let target = match (&w.stream, &w.vod, &w.clip) {
        (Some(s), None, None) => Target {
            kind: TargetKind::Stream,
            id: id("stream", s)?,
        },
        (None, Some(v), None) => Target {
            kind: TargetKind::Vod,
            id: id("vod", v)?,
        },
        (None, None, Some(c)) => Target {
            kind: TargetKind::Clip,
            id: id("clip", c)?,
        },
        (s, v, c) => {
            let n = [s.is_some(), v.is_some(), c.is_some()]
                .iter()
                .filter(|p| **p)
                .count();
            return Err(Rejection::new(
                if n == 0 {
                    RejectReason::MissingField
                } else {
                    RejectReason::InvalidValue
                },
                format!("fields `stream`/`vod`/`clip`: expected exactly one, got {n}"),
            ));
        }
    };
    let session = match &w.session {
        Some(s) => Some(id("session", s)?),
        None if kind.is_playback() => {
            return Err(Rejection::new(
                RejectReason::MissingField,
                format!("missing field `session` (required on playback event `{kind}`)"),
            ));
        }
        None => None,
    };
    if let Some(p) = w.pos
        && !(p.is_finite() && p >= 0.0)
    {
        return Err(Rejection::field(
            "pos",
            RejectReason::InvalidValue,
            format!("expected seconds ≥ 0, got {p}"),
        ));
    }
    only_on("state", w.state.is_some(), kind, EventKind::Heartbeat)?;
    let state = match &w.state {
        Some(s) => Some(one_of("state", s, PlayerState::parse, PlayerState::ALL)?),
        None => None,
    };
    let bitrate_kbps = match w.bitrate_kbps {
        Some(b) if !(0..=1_000_000).contains(&b) => {
            return Err(Rejection::field(
                "bitrate_kbps",
                RejectReason::InvalidValue,
                format!("expected 0 to 1000000 kbps, got {b}"),
            ));
        }
        Some(b) => Some(b as u32),
        None => None,
    };
    let device = match &w.device {
        Some(d) => Some(one_of("device", d, Device::parse, Device::ALL)?),
        None => None,
    };
    let country = match &w.country {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(Id::new_unchecked(c))
        }
        Some(c) => {
            return Err(Rejection::field(
                "country",
                RejectReason::InvalidValue,
                format!("expected an ISO 3166-1 alpha-2 code such as \"US\", got {c:?}"),
            ));
        }
        None => None,
    };
    let player = text("player", w.player.as_deref())?;
    let code = text("code", w.code.as_deref())?;
    if kind == EventKind::Error && code.is_none() {
        return Err(Rejection::new(
            RejectReason::MissingField,
            "missing field `code` (required on `error` events)",
        ));
    }
    only_on("count", w.count.is_some(), kind, EventKind::Chat)?;
    let count = match w.count {
        Some(c) if !(1..=MAX_CHAT_COUNT).contains(&c) => {
            return Err(Rejection::field(
                "count",
                RejectReason::InvalidValue,
                format!("expected 1 to {MAX_CHAT_COUNT} messages, got {c}"),
            ));
        }
        Some(c) => Some(c as u32),
        None => None,
    };
    only_on("platform", w.platform.is_some(), kind, EventKind::Share)?;
    let platform = text("platform", w.platform.as_deref())?;
    Ok(Event {
        kind,
        ts: w.ts,
        viewer,
        channel,
        target,
        session,
        pos: w.pos,
        state,
        bitrate_kbps,
        device,
        country,
        player,
        embed: w.embed,
        code,
        count,
        platform,
    })
}

/// Reads a wire enum (`type`, `state`, `device`); a refusal lists every accepted spelling.
fn one_of<T: Copy + fmt::Display>(
    field: &str,
    value: &str,
    parse: fn(&str) -> Option<T>,
    all: &[T],
) -> Result<T, Rejection> {
    parse(value).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(T::to_string).collect();
        Rejection::field(
            field,
            RejectReason::InvalidValue,
            format!("expected one of {}, got {value:?}", names.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_spelling_names_its_field_and_lists_every_accepted_one() {
        let base = r#"{"type":"heartbeat","ts":1764000000000,"viewer":"v1","channel":"c1","stream":"s1","session":"x1","state":"playing","device":"mobile"}"#;
        let cases: [(&str, &str, Vec<&str>); 3] = [
            (
                "type",
                r#""type":"heartbeat""#,
                EventKind::ALL.iter().map(|k| k.as_str()).collect(),
            ),
            (
                "state",
                r#""state":"playing""#,
                PlayerState::ALL.iter().map(|k| k.as_str()).collect(),
            ),
            (
                "device",
                r#""device":"mobile""#,
                Device::ALL.iter().map(|k| k.as_str()).collect(),
            ),
        ];
        for (field, pair, accepted) in cases {
            let json = base.replace(pair, &format!(r#""{field}":"Zebra""#));
            let r = crate::event::parse_event(&json).expect_err(field);
            assert_eq!(r.reason, RejectReason::InvalidValue, "{field}");
            let expected = format!("expected one of {}, got \"Zebra\"", accepted.join(", "));
            assert!(
                r.message.contains(&format!("`{field}`")),
                "{field}: {}",
                r.message
            );
            assert!(r.message.ends_with(&expected), "{field}: {}", r.message);
        }
    }

    proptest::proptest! {
        #[test]
        fn text_counts_characters_as_the_char_rule_does(v in "[a-z\\x00-\\x7f\u{80}-\u{a0}é€]{0,140}") {
            let by_chars = !v.is_empty()
                && v.chars().count() <= MAX_TEXT_LEN
                && !v.chars().any(char::is_control);
            proptest::prop_assert_eq!(text("player", Some(v.as_str())).is_ok(), by_chars);
        }
    }
}
