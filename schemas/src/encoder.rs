//! Encoder health messages (PROTOCOL.md §2): one text frame a second from the encoder
//! (or the media server on its behalf), or `{"type":"end"}`.
//!
//! Parsing reads every number as a JSON number first and then checks its range, so an
//! absurd value (negative bitrate, 10 000 fps) is refused with a message naming the
//! field, the accepted range and what came, instead of a bare serde error. Unknown
//! fields are refused as for beacons.

use crate::event::{MAX_TS, RejectReason, Rejection};
use serde::{Deserialize, Serialize};

/// Highest bitrate accepted, in kbps (1 Gbit/s).
pub const MAX_BITRATE_KBPS: f64 = 1_000_000.0;
/// Highest frame rate accepted.
pub const MAX_FPS: f64 = 500.0;
/// Largest frame side accepted, in pixels.
pub const MAX_DIMENSION: f64 = 16_384.0;
/// Highest latency accepted, in ms (10 minutes).
pub const MAX_LATENCY_MS: f64 = 600_000.0;
/// Most dropped frames one message may report.
pub const MAX_DROPPED_FRAMES: f64 = 1_000_000.0;
/// Longest keyframe interval accepted, in seconds.
pub const MAX_KEYFRAME_INTERVAL_S: f64 = 60.0;

/// One validated health report of an encoder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderReport {
    /// Encoder time of the report (epoch ms).
    pub ts: i64,
    pub bitrate_kbps: i64,
    pub target_bitrate_kbps: Option<i64>,
    pub fps: f64,
    pub target_fps: Option<f64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub latency_ms: Option<i64>,
    pub packet_loss_pct: Option<f64>,
    pub dropped_frames: Option<i64>,
    pub keyframe_interval_s: Option<f64>,
}

impl EncoderReport {
    /// `"1920x1080"` when both sides are known.
    pub fn resolution(&self) -> Option<String> {
        Some(format!("{}x{}", self.width?, self.height?))
    }
}

/// One frame of the encoder socket.
#[derive(Clone, Debug, PartialEq)]
pub enum EncoderFrame {
    Report(EncoderReport),
    /// `{"type":"end"}`: the stream is over.
    End,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<String>,
    ts: Option<f64>,
    bitrate_kbps: Option<f64>,
    target_bitrate_kbps: Option<f64>,
    fps: Option<f64>,
    target_fps: Option<f64>,
    width: Option<f64>,
    height: Option<f64>,
    latency_ms: Option<f64>,
    packet_loss_pct: Option<f64>,
    dropped_frames: Option<f64>,
    keyframe_interval_s: Option<f64>,
}

fn invalid(field: &str, expected: &str, got: f64) -> Rejection {
    Rejection::new(
        RejectReason::InvalidValue,
        format!("{field}: expected {expected}, got {got}"),
    )
}

fn missing(field: &str) -> Rejection {
    Rejection::new(
        RejectReason::MissingField,
        format!("{field}: required in an encoder report"),
    )
}

fn integer(field: &str, v: f64, lo: f64, hi: f64) -> Result<i64, Rejection> {
    if v.fract() != 0.0 || v < lo || v > hi {
        return Err(invalid(field, &format!("an integer from {lo} to {hi}"), v));
    }
    Ok(v as i64)
}

fn number(field: &str, v: f64, lo: f64, hi: f64) -> Result<f64, Rejection> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(invalid(field, &format!("a number from {lo} to {hi}"), v));
    }
    Ok(v)
}

fn opt<T>(
    field: &str,
    v: Option<f64>,
    check: impl Fn(&str, f64) -> Result<T, Rejection>,
) -> Result<Option<T>, Rejection> {
    v.map(|v| check(field, v)).transpose()
}

/// Parses and validates one text frame of the encoder socket.
pub fn parse_encoder_frame(text: &str) -> Result<EncoderFrame, Rejection> {
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: RawFrame = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let reason = if inner.is_syntax() || inner.is_eof() {
            RejectReason::NotJson
        } else if msg.contains("unknown field") {
            RejectReason::UnknownField
        } else {
            RejectReason::InvalidType
        };
        let field = if path == "." || path == "?" {
            "encoder message".to_string()
        } else {
            path
        };
        Rejection::new(reason, format!("{field}: {msg}"))
    })?;
    de.end()
        .map_err(|e| Rejection::new(RejectReason::NotJson, format!("encoder message: {e}")))?;
    match raw.kind.as_deref() {
        None | Some("health") => {}
        Some("end") => return Ok(EncoderFrame::End),
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                format!("type: expected \"end\" or absent (a health report), got {other:?}"),
            ));
        }
    }
    let ts = integer(
        "ts",
        raw.ts.ok_or_else(|| missing("ts"))?,
        0.0,
        MAX_TS as f64,
    )?;
    let bitrate_kbps = integer(
        "bitrate_kbps",
        raw.bitrate_kbps.ok_or_else(|| missing("bitrate_kbps"))?,
        0.0,
        MAX_BITRATE_KBPS,
    )?;
    let fps = number("fps", raw.fps.ok_or_else(|| missing("fps"))?, 0.0, MAX_FPS)?;
    let report = EncoderReport {
        ts,
        bitrate_kbps,
        target_bitrate_kbps: opt("target_bitrate_kbps", raw.target_bitrate_kbps, |f, v| {
            integer(f, v, 1.0, MAX_BITRATE_KBPS)
        })?,
        fps,
        target_fps: opt("target_fps", raw.target_fps, |f, v| {
            number(f, v, 1.0, MAX_FPS)
        })?,
        width: opt("width", raw.width, |f, v| integer(f, v, 1.0, MAX_DIMENSION))?,
        height: opt("height", raw.height, |f, v| {
            integer(f, v, 1.0, MAX_DIMENSION)
        })?,
        latency_ms: opt("latency_ms", raw.latency_ms, |f, v| {
            integer(f, v, 0.0, MAX_LATENCY_MS)
        })?,
        packet_loss_pct: opt("packet_loss_pct", raw.packet_loss_pct, |f, v| {
            number(f, v, 0.0, 100.0)
        })?,
        dropped_frames: opt("dropped_frames", raw.dropped_frames, |f, v| {
            integer(f, v, 0.0, MAX_DROPPED_FRAMES)
        })?,
        keyframe_interval_s: opt("keyframe_interval_s", raw.keyframe_interval_s, |f, v| {
            number(f, v, 0.0, MAX_KEYFRAME_INTERVAL_S)
        })?,
    };
    if report.width.is_some() != report.height.is_some() {
        return Err(Rejection::new(
            RejectReason::MissingField,
            "width and height: expected both or neither, got one",
        ));
    }
    Ok(EncoderFrame::Report(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"{"ts":1764000000000,"bitrate_kbps":5000,"target_bitrate_kbps":5500,"fps":60,
 "target_fps":60,"width":1920,"height":1080,"latency_ms":1200,
 "packet_loss_pct":0.1,"dropped_frames":0,"keyframe_interval_s":2}"#;

    #[test]
    fn the_protocol_example_parses() {
        let EncoderFrame::Report(r) = parse_encoder_frame(EXAMPLE).expect("valid") else {
            panic!("not a report")
        };
        assert_eq!(r.bitrate_kbps, 5000);
        assert_eq!(r.target_bitrate_kbps, Some(5500));
        assert_eq!(r.resolution().as_deref(), Some("1920x1080"));
        assert_eq!(r.packet_loss_pct, Some(0.1));
        assert_eq!(
            parse_encoder_frame(r#"{"type":"end"}"#).expect("end"),
            EncoderFrame::End
        );
    }

    #[test]
    fn bad_frames_name_the_field_and_what_came() {
        let cases = [
            ("not json", RejectReason::NotJson, "encoder message"),
            (
                r#"{"ts":1,"bitrate_kbps":-5,"fps":30}"#,
                RejectReason::InvalidValue,
                "bitrate_kbps: expected an integer from 0 to 1000000, got -5",
            ),
            (
                r#"{"ts":1,"bitrate_kbps":5,"fps":10000}"#,
                RejectReason::InvalidValue,
                "fps: expected a number from 0 to 500, got 10000",
            ),
            (
                r#"{"ts":1,"fps":30}"#,
                RejectReason::MissingField,
                "bitrate_kbps",
            ),
            (
                r#"{"ts":1,"bitrate_kbps":5,"fps":30,"bitrat":1}"#,
                RejectReason::UnknownField,
                "bitrat",
            ),
            (
                r#"{"ts":1,"bitrate_kbps":5,"fps":30,"packet_loss_pct":120}"#,
                RejectReason::InvalidValue,
                "packet_loss_pct",
            ),
            (
                r#"{"ts":1,"bitrate_kbps":"fast","fps":30}"#,
                RejectReason::InvalidType,
                "bitrate_kbps",
            ),
            (r#"{"type":"stop"}"#, RejectReason::InvalidValue, "\"stop\""),
            (
                r#"{"ts":1,"bitrate_kbps":5,"fps":30,"width":1920}"#,
                RejectReason::MissingField,
                "width and height",
            ),
        ];
        for (text, reason, needle) in cases {
            let e = parse_encoder_frame(text).expect_err(text);
            assert_eq!(e.reason, reason, "{text}: {}", e.message);
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
    }

    proptest! {
        #[test]
        fn in_range_reports_round_trip(
            ts in 0i64..MAX_TS, bitrate in 0i64..1_000_000, fps in 0.0f64..500.0,
            loss in 0.0f64..100.0, latency in 0i64..600_000,
        ) {
            let text = serde_json::json!({"ts": ts, "bitrate_kbps": bitrate, "fps": fps,
                "packet_loss_pct": loss, "latency_ms": latency}).to_string();
            let EncoderFrame::Report(r) = parse_encoder_frame(&text).expect("valid") else {
                panic!("not a report")
            };
            prop_assert_eq!(r.ts, ts);
            prop_assert_eq!(r.bitrate_kbps, bitrate);
            prop_assert_eq!(r.latency_ms, Some(latency));
        }

        #[test]
        fn out_of_range_bitrates_are_refused(b in prop_oneof![-1e12f64..-0.5, 1_000_000.5f64..1e12]) {
            let text = serde_json::json!({"ts": 1, "bitrate_kbps": b, "fps": 30}).to_string();
            let e = parse_encoder_frame(&text).expect_err("out of range");
            prop_assert_eq!(e.reason, RejectReason::InvalidValue);
        }
    }
}
