//! The fast path agrees with serde: on every input it accepts it reads the same values,
//! and `parse_event` / `parse_frame` give the same events, rejections and messages as
//! the serde-only path.

use super::*;
use crate::event::{Event, Rejection, WIRE_FIELDS, parse_event, parse_event_general};
use crate::frame::{ParsedFrame, parse_frame, parse_frame_general};
use proptest::prelude::*;

fn serde_wire(json: &str) -> Option<WireEvent<'_>> {
    let mut de = serde_json::Deserializer::from_str(json);
    let w = <WireEvent<'_> as serde::Deserialize>::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(w)
}

/// Debug text too, so `-0.0` and `0.0` differ.
fn same_event(a: &Result<Event, Rejection>, b: &Result<Event, Rejection>) -> bool {
    a == b && format!("{a:?}") == format!("{b:?}")
}

fn general_frame(text: &str) -> ParsedFrame {
    let mut out = ParsedFrame::default();
    parse_frame_general(text, &mut out, parse_event_general);
    out
}

fn same_frame(a: &ParsedFrame, b: &ParsedFrame) -> bool {
    a.seq == b.seq
        && a.rejected == b.rejected
        && a.reasons == b.reasons
        && a.by_reason == b.by_reason
        && a.events == b.events
        && format!("{:?}", a.events) == format!("{:?}", b.events)
}

fn check(json: &str) {
    if let Some(fast) = event(json) {
        assert_eq!(Some(&fast), serde_wire(json).as_ref(), "{json:?}");
    }
    let (a, b) = (parse_event(json), parse_event_general(json));
    assert!(same_event(&a, &b), "{json:?}: {a:?} vs {b:?}");
    let (a, b) = (parse_frame(json), general_frame(json));
    assert!(same_frame(&a, &b), "{json:?}: {a:?} vs {b:?}");
}

/// Keys tried besides the real ones ([`WIRE_FIELDS`]): near misses and envelope keys.
const NEAR_MISS_KEYS: &[&str] = &[
    "types", "typ", "Type", "t\\u0073", "events", "seq", "", "viewer ",
];

const VALUES: &[&str] = &[
    "\"heartbeat\"",
    "\"viewstart\"",
    "\"chat\"",
    "\"error\"",
    "\"share\"",
    "\"zap\"",
    "\"playing\"",
    "\"mobile\"",
    "\"US\"",
    "\"us\"",
    "\"v1\"",
    "\"ldrun-x12\"",
    "\"a b\"",
    "\"\"",
    "\"\\\"\"",
    "\"a\\u0041\"",
    "\"\u{e9}t\u{e9}\"",
    "\"tab\there\"",
    "\"x\u{7f}\"",
    "\"0123456789abcdefghijklmnopqrstuvwxyz\"",
    "0",
    "1",
    "-1",
    "-0",
    "01",
    "1764000000000",
    "9007199254740991",
    "9007199254740992",
    "123456789012345678",
    "1234567890123456789",
    "99999999999999999999",
    "12.5",
    "0.5",
    "00.5",
    "1.",
    ".5",
    "1e3",
    "1E-2",
    "12.50",
    "123456789012345.6",
    "1234567890.12345",
    "0.1",
    "4500",
    "1000001",
    "10000",
    "10001",
    "true",
    "false",
    "null",
    "nul",
    "truex",
    "[]",
    "[1]",
    "{}",
    "{\"a\":1}",
    "\"x\" ",
];

const SPACES: &[&str] = &["", "", "", " ", "\n", "\t\r", "\u{a0}", "\u{c}"];

fn pair() -> impl Strategy<Value = String> {
    (
        prop::sample::select(
            WIRE_FIELDS
                .iter()
                .chain(NEAR_MISS_KEYS)
                .copied()
                .collect::<Vec<_>>(),
        ),
        prop::sample::select(VALUES),
        prop::sample::select(SPACES),
        prop::sample::select(SPACES),
    )
        .prop_map(|(k, v, s1, s2)| format!("\"{k}\"{s1}:{s2}{v}"))
}

/// An event-like object: mostly the plain fields of a valid event, with random extra,
/// repeated, broken or missing members.
fn object() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::collection::vec(pair(), 0..6),
        prop::sample::select(SPACES),
        prop::sample::select(&[",", ",", ", ", " ,", ",,", ""][..]),
    )
        .prop_map(|(base, extra, space, comma)| {
            let mut members: Vec<String> = if base {
                [
                    r#""type":"heartbeat""#,
                    r#""ts":1764000000000"#,
                    r#""viewer":"ldrun-v1""#,
                    r#""channel":"c1""#,
                    r#""stream":"s1""#,
                    r#""session":"ldrun-x1""#,
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            } else {
                Vec::new()
            };
            members.extend(extra);
            format!("{space}{{{}}}{space}", members.join(comma))
        })
}

/// A frame: one object, an array of them, or an envelope.
fn frame() -> impl Strategy<Value = String> {
    let objects = || prop::collection::vec(object(), 0..4);
    prop_oneof![
        object(),
        objects().prop_map(|o| format!("[{}]", o.join(","))),
        (
            objects(),
            prop::sample::select(&["7", "0", "-1", "01", "null", "\"7\"", "1.5"][..])
        )
            .prop_map(|(o, seq)| format!(r#"{{"seq":{seq},"events":[{}]}}"#, o.join(","))),
    ]
}

/// Drops, doubles or replaces one character.
fn mutate(text: &str, at: usize, how: u8, with: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return with.to_string();
    }
    let at = at % chars.len();
    let mut out: Vec<char> = chars[..at].to_vec();
    match how % 3 {
        0 => {}
        1 => out.extend([chars[at], chars[at]]),
        _ => out.push(with),
    }
    out.extend(&chars[at + 1..]);
    out.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn fast_and_general_agree_on_frames(text in frame()) {
        check(&text);
    }

    #[test]
    fn fast_and_general_agree_on_mutated_frames(
        text in frame(),
        at in 0usize..400,
        how in 0u8..3,
        with in prop::sample::select(&['"', '\\', ',', ':', '{', '}', '[', ']', '0', '.', 'e', ' ', '\u{1}', '\u{e9}', 'a', 'x', 'n'][..]),
    ) {
        check(&mutate(&text, at, how, with));
    }

    #[test]
    fn fast_and_general_agree_on_any_text(text in "\\PC{0,80}") {
        check(&text);
    }

    #[test]
    fn positions_read_as_serde_reads_them(int in 0u64..1_000_000, frac in 0u64..1_000_000_000, digits in 1usize..10) {
        let json = format!(
            r#"{{"type":"heartbeat","ts":1,"viewer":"v","channel":"c","stream":"s","session":"x","pos":{int}.{frac:0digits$}}}"#
        );
        check(&json);
    }
}

#[test]
fn the_bench_mix_takes_the_fast_path() {
    for json in [
        r#"{"type":"viewstart","ts":1764000000000,"viewer":"ldrun-v1","channel":"ldrun-c1","stream":"ldrun-s1","session":"ldrun-x1","device":"desktop","country":"US","player":"pulse-loadgen/1"}"#,
        r#"{"type":"heartbeat","ts":1764000000000,"viewer":"ldrun-v1","channel":"ldrun-c1","stream":"ldrun-s1","session":"ldrun-x1","state":"playing","bitrate_kbps":4500,"pos":12.5}"#,
        r#" {"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","count":1,"embed":false,"pos":null} "#,
    ] {
        assert!(event(json).is_some(), "{json}");
        check(json);
    }
    let mut s = Scanner::new(r#"{"seq":3,"events":[]}"#);
    assert!(s.event().is_none(), "an envelope is not an event");
}

#[test]
fn the_fast_path_gives_up_where_serde_has_the_last_word() {
    for json in [
        r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","type":"chat"}"#,
        r#"{"type":"ch\u0061t","ts":1,"viewer":"v","channel":"c","stream":"s"}"#,
        r#"{"type":"chat","ts":1.0,"viewer":"v","channel":"c","stream":"s"}"#,
        r#"{"type":"chat","ts":01,"viewer":"v","channel":"c","stream":"s"}"#,
        r#"{"type":"chat","ts":-1,"viewer":"v","channel":"c","stream":"s"}"#,
        r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","pos":1e2}"#,
        r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s",}"#,
        r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s"} x"#,
        r#"{"type":"chat","ts":1,"viewer":"v","stream":"s"}"#,
        r#"{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","foo":1}"#,
        "{\"type\":\"chat\",\"ts\":1,\"viewer\":\"v\tw\",\"channel\":\"c\",\"stream\":\"s\"}",
    ] {
        assert!(event(json).is_none(), "{json}");
        check(json);
    }
}

#[test]
fn batches_agree_including_the_cut() {
    let ev = |i: usize| {
        format!(
            r#"{{"type":"heartbeat","ts":{i},"viewer":"v{i}","channel":"c","stream":"s","session":"x{i}"}}"#
        )
    };
    for n in [0, 1, 2, 999, 1000, 1001, 1500] {
        let items: Vec<String> = (0..n).map(ev).collect();
        check(&format!("[{}]", items.join(",")));
        check(&format!(r#"{{"events":[{}],"seq":9}}"#, items.join(", ")));
    }
    check(&format!("[{},{{\"type\":1}},{}]", ev(1), ev(2)));
    check(&format!("[{},{}", ev(1), ev(2)));
    check(&format!(r#"{{"seq":1,"seq":2,"events":[{}]}}"#, ev(1)));
    check(&format!(r#"{{"seq":1,"events":[{}],"x":1}}"#, ev(1)));
}
