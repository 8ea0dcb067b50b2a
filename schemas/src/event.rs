//! The wire events of PROTOCOL.md §1: typed, validated, and written back out unchanged.
//!
//! Parsing goes through a borrowed `WireEvent` (serde, `deny_unknown_fields`) and then
//! `validate`, which applies the rules serde cannot say (id alphabet, exactly one
//! target, per-type fields). Every failure is a [`Rejection`] that names the field.

use crate::id::Id;
pub use crate::rejection::{RejectReason, Rejection};
use crate::rejection::{classify, strip_position};
pub(crate) use crate::validate::validate;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Largest timestamp accepted: 2^53 − 1, the largest integer a JavaScript player can send exactly.
pub const MAX_TS: i64 = 9_007_199_254_740_991;
/// Longest free-text field (`player`, `code`, `platform`).
pub const MAX_TEXT_LEN: usize = 128;
/// Largest `count` one `chat` event may fold.
pub const MAX_CHAT_COUNT: i64 = 10_000;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            /// Parses the wire spelling.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown {} {s:?}", stringify!($name))))
            }
        }
    };
}

wire_enum!(
    /// `type` of an event. The first nine are playback types (they need a `session`).
    EventKind {
        Viewstart = "viewstart",
        Playing = "playing",
        Pause = "pause",
        RebufferStart = "rebuffer_start",
        RebufferEnd = "rebuffer_end",
        Seek = "seek",
        Heartbeat = "heartbeat",
        Error = "error",
        Viewend = "viewend",
        Follow = "follow",
        Chat = "chat",
        Like = "like",
        Share = "share",
        Clickthrough = "clickthrough",
    }
);

impl EventKind {
    /// Playback types belong to a view session and need `session`.
    pub fn is_playback(self) -> bool {
        !matches!(
            self,
            EventKind::Follow
                | EventKind::Chat
                | EventKind::Like
                | EventKind::Share
                | EventKind::Clickthrough
        )
    }
}

wire_enum!(
    /// `state` carried by a `heartbeat`.
    PlayerState { Starting = "starting", Playing = "playing", Paused = "paused", Rebuffering = "rebuffering" }
);

wire_enum!(
    /// `device` class of the viewer.
    Device { Desktop = "desktop", Mobile = "mobile", Tablet = "tablet", Tv = "tv", Other = "other" }
);

wire_enum!(
    /// What is being watched: the field that names it on the wire.
    TargetKind { Stream = "stream", Vod = "vod", Clip = "clip" }
);

/// The one thing an event is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub kind: TargetKind,
    pub id: Id,
}

/// A validated event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub ts: i64,
    pub viewer: Id,
    pub channel: Id,
    pub target: Target,
    pub session: Option<Id>,
    pub pos: Option<f64>,
    pub state: Option<PlayerState>,
    pub bitrate_kbps: Option<u32>,
    pub device: Option<Device>,
    pub country: Option<Id>,
    pub player: Option<Box<str>>,
    pub embed: Option<bool>,
    pub code: Option<Box<str>>,
    pub count: Option<u32>,
    pub platform: Option<Box<str>>,
}

impl Event {
    /// An event with its required fields and every optional field absent.
    pub fn new(
        kind: EventKind,
        ts: i64,
        viewer: Id,
        channel: Id,
        target: Target,
        session: Option<Id>,
    ) -> Event {
        Event {
            kind,
            ts,
            viewer,
            channel,
            target,
            session,
            pos: None,
            state: None,
            bitrate_kbps: None,
            device: None,
            country: None,
            player: None,
            embed: None,
            code: None,
            count: None,
            platform: None,
        }
    }

    /// Messages this event stands for (`count` of a `chat`, default 1).
    pub fn chat_messages(&self) -> u32 {
        if self.kind == EventKind::Chat {
            self.count.unwrap_or(1)
        } else {
            0
        }
    }

    /// The event as one line of wire JSON (the NDJSON trace format of `pulse replay`).
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The event as it comes, before [`validate`]: what serde reads, and what the fast path
/// (`crate::scan`) reads from the plain cases.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    pub(crate) ts: i64,
    #[serde(borrow)]
    pub(crate) viewer: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) vod: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) clip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) session: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) pos: Option<f64>,
    #[serde(borrow, default)]
    pub(crate) state: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) bitrate_kbps: Option<i64>,
    #[serde(borrow, default)]
    pub(crate) device: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) player: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) embed: Option<bool>,
    #[serde(borrow, default)]
    pub(crate) code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) count: Option<i64>,
    #[serde(borrow, default)]
    pub(crate) platform: Option<Cow<'a, str>>,
}

/// Every field name of the wire event, in the order of PROTOCOL.md §1.
pub const WIRE_FIELDS: &[&str] = &[
    "type",
    "ts",
    "viewer",
    "channel",
    "stream",
    "vod",
    "clip",
    "session",
    "pos",
    "state",
    "bitrate_kbps",
    "device",
    "country",
    "player",
    "embed",
    "code",
    "count",
    "platform",
];

/// Parses and validates one event from its JSON text.
pub fn parse_event(json: &str) -> Result<Event, Rejection> {
    match crate::scan::event(json) {
        Some(wire) => validate(&wire),
        None => parse_event_general(json),
    }
}

/// [`parse_event`] through serde alone: every input the fast path gives up on, and
/// the reference the fast path is tested against.
pub(crate) fn parse_event_general(json: &str) -> Result<Event, Rejection> {
    // serde would read a struct from a JSON array too; the wire says object.
    if !json.trim_start().starts_with('{') {
        let got: String = json.trim().chars().take(40).collect();
        let reason = if serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok() {
            RejectReason::NotAnEvent
        } else {
            RejectReason::NotJson
        };
        return Err(Rejection::new(
            reason,
            format!("expected an event object, got {got:?}"),
        ));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    // The plain deserializer first (the hot path: most events are valid); only a broken
    // event is read again with its path tracked, to say which field broke and why.
    let wire = match WireEvent::deserialize(&mut de) {
        Ok(wire) => wire,
        Err(plain) => return Err(explain(json, plain)),
    };
    de.end().map_err(|e| {
        Rejection::new(
            RejectReason::NotJson,
            format!("trailing characters after the event: {e}"),
        )
    })?;
    validate(&wire)
}

/// Reads a refused event again, tracking the path of the field it broke at.
fn explain(json: &str, plain: serde_json::Error) -> Rejection {
    let mut de = serde_json::Deserializer::from_str(json);
    match serde_path_to_error::deserialize::<_, WireEvent<'_>>(&mut de) {
        Err(tracked) => classify(tracked),
        // Same input, same deserializer: it fails again. Should it not, say what the
        // first read said.
        Ok(_) => Rejection::new(
            RejectReason::NotJson,
            format!("not an event: {}", strip_position(&plain.to_string())),
        ),
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.kind)?;
        m.serialize_entry("ts", &self.ts)?;
        m.serialize_entry("viewer", &self.viewer)?;
        m.serialize_entry("channel", &self.channel)?;
        m.serialize_entry(self.target.kind.as_str(), &self.target.id)?;
        if let Some(v) = &self.session {
            m.serialize_entry("session", v)?;
        }
        if let Some(v) = &self.pos {
            m.serialize_entry("pos", v)?;
        }
        if let Some(v) = &self.state {
            m.serialize_entry("state", v)?;
        }
        if let Some(v) = &self.bitrate_kbps {
            m.serialize_entry("bitrate_kbps", v)?;
        }
        if let Some(v) = &self.device {
            m.serialize_entry("device", v)?;
        }
        if let Some(v) = &self.country {
            m.serialize_entry("country", v)?;
        }
        if let Some(v) = &self.player {
            m.serialize_entry("player", v)?;
        }
        if let Some(v) = &self.embed {
            m.serialize_entry("embed", v)?;
        }
        if let Some(v) = &self.code {
            m.serialize_entry("code", v)?;
        }
        if let Some(v) = &self.count {
            m.serialize_entry("count", v)?;
        }
        if let Some(v) = &self.platform {
            m.serialize_entry("platform", v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"type":"heartbeat","ts":1764000000000,"viewer":"v1","channel":"c1","stream":"s1","session":"x1","state":"playing","pos":12.5,"device":"mobile","country":"DE","embed":false}"#;

    #[test]
    fn parses_and_writes_back_the_same_event() {
        let e = parse_event(OK).unwrap();
        assert_eq!(e.kind, EventKind::Heartbeat);
        assert_eq!(e.target.kind, TargetKind::Stream);
        assert_eq!(e.state, Some(PlayerState::Playing));
        assert_eq!(parse_event(&e.to_json()).unwrap(), e);
    }

    fn reject(json: &str) -> Rejection {
        parse_event(json).unwrap_err()
    }

    #[test]
    fn each_rule_names_its_field() {
        let r = reject(
            r#"{"type":"viewstart","ts":"x","viewer":"v","channel":"c","stream":"s","session":"a"}"#,
        );
        assert_eq!(r.reason, RejectReason::InvalidType);
        assert!(r.message.contains("`ts`"), "{r}");
        let r =
            reject(r#"{"type":"viewstart","viewer":"v","channel":"c","stream":"s","session":"a"}"#);
        assert_eq!(r.reason, RejectReason::MissingField);
        assert!(r.message.contains("`ts`"), "{r}");
        let r = reject(
            r#"{"type":"viewstart","ts":1,"viewer":"v","channel":"c","stream":"s","session":"a","foo":1}"#,
        );
        assert_eq!(r.reason, RejectReason::UnknownField);
        assert!(r.message.contains("`foo`"), "{r}");
        let long = "v".repeat(65);
        let r = reject(&format!(
            r#"{{"type":"chat","ts":1,"viewer":"{long}","channel":"c","stream":"s"}}"#
        ));
        assert!(
            r.message.contains("`viewer`") && r.message.contains("65"),
            "{r}"
        );
        let r =
            reject(r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","vod":"x"}"#);
        assert!(r.message.contains("exactly one"), "{r}");
        let r = reject(r#"{"type":"playing","ts":1,"viewer":"v","channel":"c","stream":"s"}"#);
        assert!(r.message.contains("`session`"), "{r}");
        let r = reject(
            r#"{"type":"playing","ts":1,"viewer":"v","channel":"c","stream":"s","session":"a","state":"playing"}"#,
        );
        assert!(r.message.contains("`state`"), "{r}");
        let r = reject(
            r#"{"type":"error","ts":1,"viewer":"v","channel":"c","stream":"s","session":"a"}"#,
        );
        assert!(r.message.contains("`code`"), "{r}");
        let r = reject(r#"{"type":"zap","ts":1,"viewer":"v","channel":"c","stream":"s"}"#);
        assert!(
            r.message.contains("`type`") && r.message.contains("zap"),
            "{r}"
        );
        let r = reject(r#"{"type":"chat","ts":-5,"viewer":"v","channel":"c","stream":"s"}"#);
        assert!(r.message.contains("`ts`"), "{r}");
        let r =
            reject(r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","count":0}"#);
        assert!(r.message.contains("`count`"), "{r}");
        let r = reject(r#"[1,2]"#);
        assert_eq!(r.reason, RejectReason::NotAnEvent);
        let r = reject(r#"{"type":"#);
        assert_eq!(r.reason, RejectReason::NotJson);
    }
}
