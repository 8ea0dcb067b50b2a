//! Keeps `beacon.schema.json` in step with the Rust types and validator: the same
//! fields and enum values, and the same verdict on a corpus of good and bad events
//! (hand-picked edge cases plus generated ones).

use proptest::prelude::*;
use pulse_schemas::event::WIRE_FIELDS;
use pulse_schemas::{Device, EventKind, PlayerState, parse_event};
use serde_json::{Value, json};

fn schema() -> Value {
    serde_json::from_str(include_str!("../beacon.schema.json")).expect("schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("schema compiles")
}

fn enum_values(v: &Value) -> Vec<String> {
    v["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

#[test]
fn fields_and_enums_match_the_types() {
    let s = schema();
    let props: Vec<&str> = s["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want: Vec<&str> = WIRE_FIELDS.to_vec();
    let mut got = props.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want, "schema properties differ from the wire fields");
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(enum_values(&s["properties"]["type"]), kinds);
    let states: Vec<&str> = PlayerState::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(enum_values(&s["properties"]["state"]), states);
    let devices: Vec<&str> = Device::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(enum_values(&s["properties"]["device"]), devices);
    let playback: Vec<&str> = EventKind::ALL
        .iter()
        .filter(|k| k.is_playback())
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        enum_values(&s["allOf"][0]["if"]["properties"]["type"]),
        playback
    );
}

fn agree(v: &Value, validator: &jsonschema::Validator) -> Result<(), String> {
    let by_schema = validator.is_valid(v);
    let by_rust = parse_event(&v.to_string());
    if by_schema != by_rust.is_ok() {
        return Err(format!(
            "schema says {by_schema}, validator says {by_rust:?} for {v}"
        ));
    }
    Ok(())
}

#[test]
fn same_verdict_on_edge_cases() {
    let validator = validator();
    let base = json!({"type":"heartbeat","ts":1764000000000i64,"viewer":"v","channel":"c","stream":"s","session":"x"});
    let mut cases = vec![base.clone()];
    let with = |k: &str, v: Value| {
        let mut e = base.clone();
        e[k] = v;
        e
    };
    let without = |k: &str| {
        let mut e = base.clone();
        e.as_object_mut().expect("object").remove(k);
        e
    };
    cases.extend([
        with("ts", json!(-1)),
        with("ts", json!(1.5)),
        with("ts", json!("1")),
        with("ts", json!(9007199254740992i64)),
        with("viewer", json!("x".repeat(64))),
        with("viewer", json!("x".repeat(65))),
        with("viewer", json!("a b")),
        with("viewer", json!("")),
        with("vod", json!("v1")),
        without("stream"),
        without("session"),
        without("ts"),
        with("extra", json!(1)),
        with("state", json!("paused")),
        with("state", json!("sleeping")),
        with("state", Value::Null),
        with("pos", json!(-0.5)),
        with("pos", json!(3.25)),
        with("bitrate_kbps", json!(-1)),
        with("bitrate_kbps", json!(1000001)),
        with("device", json!("tv")),
        with("device", json!("phone")),
        with("country", json!("DE")),
        with("country", json!("de")),
        with("country", json!("DEU")),
        with("player", json!("hls.js 1.5")),
        with("player", json!("")),
        with("player", json!("x".repeat(129))),
        with("embed", json!(true)),
        with("embed", json!("yes")),
        with("count", json!(3)),
        with("platform", json!("x")),
        with("type", json!("zap")),
        json!({"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","count":5}),
        json!({"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","count":0}),
        json!({"type":"chat","ts":1,"viewer":"v","channel":"c","clip":"k","count":10001}),
        json!({"type":"share","ts":1,"viewer":"v","channel":"c","clip":"k","platform":"x.com"}),
        json!({"type":"follow","ts":1,"viewer":"v","channel":"c","stream":"s"}),
        json!({"type":"error","ts":1,"viewer":"v","channel":"c","vod":"d","session":"x"}),
        json!({"type":"error","ts":1,"viewer":"v","channel":"c","vod":"d","session":"x","code":"E1"}),
        json!({"type":"error","ts":1,"viewer":"v","channel":"c","vod":"d","session":"x","code":null}),
        json!([1, 2]),
        json!("heartbeat"),
    ]);
    for c in &cases {
        agree(c, &validator).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..20_000).prop_map(|n| json!(n)),
        Just(json!(1.5)),
        "[a-z]{0,3}".prop_map(Value::String),
        Just(json!("x".repeat(70))),
        Just(json!("DE")),
        Just(json!("playing")),
        Just(json!("mobile")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn same_verdict_on_generated_events(
        kind in prop::sample::select(EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
        target in prop::sample::select(vec!["stream", "vod", "clip"]),
        extra in prop::collection::vec((prop::sample::select(WIRE_FIELDS.to_vec()), arb_value()), 0..4),
        drop in prop::option::of(prop::sample::select(vec!["ts", "viewer", "session", "channel"])),
    ) {
        let mut e = json!({"type": kind, "ts": 1764000000000i64, "viewer": "v", "channel": "c", "session": "x"});
        e[target] = json!("t1");
        for (k, v) in extra {
            if k != "type" {
                e[k] = v;
            }
        }
        if let Some(d) = drop {
            e.as_object_mut().expect("object").remove(d);
        }
        agree(&e, &validator()).map_err(TestCaseError::fail)?;
    }
}
