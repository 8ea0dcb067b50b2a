//! Why an event or a frame was refused: [`RejectReason`], the low-cardinality class the
//! metrics count, and [`Rejection`], the message that names the field, what was
//! expected and what came. `classify` turns a serde error (with the field's path) into
//! one.

use std::fmt;

/// Why an event or a frame was refused: a low-cardinality class for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    NotJson,
    NotAnEvent,
    MissingField,
    UnknownField,
    InvalidType,
    InvalidValue,
    BatchTooLarge,
    BinaryFrame,
    FrameTooLarge,
    BodyTooLarge,
    RateLimited,
}

impl RejectReason {
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::NotJson,
        RejectReason::NotAnEvent,
        RejectReason::MissingField,
        RejectReason::UnknownField,
        RejectReason::InvalidType,
        RejectReason::InvalidValue,
        RejectReason::BatchTooLarge,
        RejectReason::BinaryFrame,
        RejectReason::FrameTooLarge,
        RejectReason::BodyTooLarge,
        RejectReason::RateLimited,
    ];

    /// Label value used in `pulse_ingest_events_rejected_total{reason=…}`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotJson => "not_json",
            RejectReason::NotAnEvent => "not_an_event",
            RejectReason::MissingField => "missing_field",
            RejectReason::UnknownField => "unknown_field",
            RejectReason::InvalidType => "invalid_type",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::BatchTooLarge => "batch_too_large",
            RejectReason::BinaryFrame => "binary_frame",
            RejectReason::FrameTooLarge => "frame_too_large",
            RejectReason::BodyTooLarge => "body_too_large",
            RejectReason::RateLimited => "rate_limited",
        }
    }
}

/// One refused event (or frame) with a message that names the field and what came.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Rejection {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn field(field: &str, reason: RejectReason, what: impl fmt::Display) -> Self {
        Rejection::new(reason, format!("field `{field}`: {what}"))
    }
}

pub(crate) fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> Rejection {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = strip_position(&inner.to_string());
    use serde_json::error::Category;
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            Rejection::new(RejectReason::NotJson, format!("not JSON: {text}"))
        }
        Category::Data => {
            if text.starts_with("unknown field") {
                Rejection::new(RejectReason::UnknownField, text)
            } else if text.starts_with("missing field") {
                Rejection::new(RejectReason::MissingField, text)
            } else if text.contains("struct WireEvent") {
                let got = text
                    .split(", expected")
                    .next()
                    .unwrap_or(&text)
                    .trim_start_matches("invalid type: ");
                Rejection::new(
                    RejectReason::NotAnEvent,
                    format!("expected an event object, got {got}"),
                )
            } else if text.starts_with("invalid type") {
                Rejection::field(&path, RejectReason::InvalidType, text)
            } else {
                Rejection::field(&path, RejectReason::InvalidValue, text)
            }
        }
    }
}

pub(crate) fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}
