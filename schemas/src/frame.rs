//! Frames and bodies: one event, an array (a batch), a `{"seq":N,"events":[…]}`
//! envelope, or NDJSON. The valid events of a batch are kept; every refused one is
//! counted with its reason.

use crate::event::{Event, RejectReason, Rejection, WireEvent, parse_event, validate};
use crate::scan::Scanner;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Most events one batch may hold; the rest of a larger batch is rejected.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// Most reason lines one `rejected` reply lists (the count covers all).
pub const MAX_LISTED_REASONS: usize = 16;

/// What one frame or body gave: the events to keep and what was refused.
#[derive(Debug, Default)]
pub struct ParsedFrame {
    /// `seq` of an envelope, to acknowledge once the events are accepted.
    pub seq: Option<u64>,
    pub events: Vec<Event>,
    /// Number of events (or whole frames) refused.
    pub rejected: u32,
    /// Human-readable reasons, at most [`MAX_LISTED_REASONS`].
    pub reasons: Vec<String>,
    /// Refusals per reason class, for metrics.
    pub by_reason: Vec<(RejectReason, u32)>,
}

impl ParsedFrame {
    /// Records `count` refusals for one reason.
    pub fn reject(&mut self, r: Rejection, count: u32) {
        self.rejected += count;
        match self.by_reason.iter_mut().find(|(k, _)| *k == r.reason) {
            Some((_, n)) => *n += count,
            None => self.by_reason.push((r.reason, count)),
        }
        if self.reasons.len() < MAX_LISTED_REASONS {
            self.reasons.push(r.message);
        } else if r.reason == RejectReason::BatchTooLarge {
            // The cut of an oversized batch is always named, even after many refusals.
            if let Some(last) = self.reasons.last_mut() {
                *last = r.message;
            }
        }
    }

    /// Empties the frame for the next one, keeping its buffers.
    pub fn clear(&mut self) {
        self.seq = None;
        self.events.clear();
        self.rejected = 0;
        self.reasons.clear();
        self.by_reason.clear();
    }

    /// A frame refused whole (not JSON, binary, too large, …).
    pub fn refused(r: Rejection) -> Self {
        let mut f = ParsedFrame::default();
        f.reject(r, 1);
        f
    }

    /// The `{"type":"rejected",…}` reply of PROTOCOL.md §1, if anything was refused.
    pub fn rejection_reply(&self) -> Option<String> {
        (self.rejected > 0).then(|| {
            serde_json::json!({"type": "rejected", "count": self.rejected, "reasons": self.reasons}).to_string()
        })
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    events: Option<&'a RawValue>,
    #[serde(borrow, default)]
    seq: Option<&'a RawValue>,
}

/// Parses a WebSocket text frame or a JSON `POST` body.
pub fn parse_frame(text: &str) -> ParsedFrame {
    let mut out = ParsedFrame::default();
    parse_frame_into(text, &mut out);
    out
}

/// [`parse_frame`] into `out` (emptied first), so a connection reuses one frame's
/// buffers instead of allocating them for every frame.
///
/// The plain frames players send go through the scanner of `crate::scan`; should it give
/// up anywhere, `out` is emptied again and the frame read by serde from the start.
pub fn parse_frame_into(text: &str, out: &mut ParsedFrame) {
    out.clear();
    if fast_frame(text, out).is_some() {
        return;
    }
    out.clear();
    parse_frame_general(text, out, parse_event);
}

/// The fast path of [`parse_frame_into`]: `None` when the frame needs serde.
fn fast_frame(text: &str, out: &mut ParsedFrame) -> Option<()> {
    let mut s = Scanner::new(text);
    s.ws();
    match s.peek()? {
        b'[' => fast_array(&mut s, out)?,
        b'{' => {
            let start = s.clone();
            let mut wire = WireEvent::default();
            match s.event_into(&mut wire) {
                // An event (the keys of an envelope are not event fields).
                Some(()) => match validate(&wire) {
                    Ok(e) => out.events.push(e),
                    Err(r) => out.reject(r, 1),
                },
                None => {
                    s = start;
                    fast_envelope(&mut s, out)?;
                }
            }
        }
        _ => return None,
    }
    s.ws();
    s.at_end().then_some(())
}

/// `{"seq":N,"events":[…]}` in either order, nothing else.
fn fast_envelope(s: &mut Scanner<'_>, out: &mut ParsedFrame) -> Option<()> {
    s.eat(b'{')?;
    s.ws();
    let (mut seq, mut events) = (false, false);
    loop {
        match s.key()? {
            "seq" if !seq => {
                out.seq = Some(s.uint()?);
                seq = true;
            }
            "events" if !events => {
                fast_array(s, out)?;
                events = true;
            }
            _ => return None,
        }
        if !s.more(b'}')? {
            break;
        }
    }
    (seq && events).then_some(())
}

/// An array of at most [`MAX_BATCH_EVENTS`] event objects.
fn fast_array(s: &mut Scanner<'_>, out: &mut ParsedFrame) -> Option<()> {
    s.eat(b'[')?;
    s.ws();
    if s.peek()? == b']' {
        s.next();
        return Some(());
    }
    for i in 0..MAX_BATCH_EVENTS {
        let mut wire = WireEvent::default();
        s.event_into(&mut wire)?;
        match validate(&wire) {
            Ok(e) => out.events.push(e),
            Err(r) => out.reject(
                Rejection::new(r.reason, format!("event {i}: {}", r.message)),
                1,
            ),
        }
        if !s.more(b']')? {
            return Some(());
        }
    }
    // More than the batch takes: the general path says how many were cut.
    None
}

/// [`parse_frame_into`] through serde, with `parse_event` reading each event.
pub(crate) fn parse_frame_general(
    text: &str,
    out: &mut ParsedFrame,
    parse_event: fn(&str) -> Result<Event, Rejection>,
) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        parse_array(trimmed, out, parse_event);
        return;
    }
    if trimmed.starts_with('{')
        && trimmed.contains("\"events\"")
        && let Ok(probe) = serde_json::from_str::<Probe<'_>>(trimmed)
        && let Some(events) = probe.events
    {
        match probe.seq.map(|s| serde_json::from_str::<u64>(s.get())) {
            Some(Ok(seq)) => out.seq = Some(seq),
            Some(Err(_)) => {
                out.reject(
                    Rejection::new(
                        RejectReason::InvalidValue,
                        format!(
                            "field `seq`: expected a non-negative integer, got {}",
                            probe.seq.map(|s| s.get()).unwrap_or("")
                        ),
                    ),
                    1,
                );
                return;
            }
            None => {
                out.reject(
                    Rejection::new(
                        RejectReason::MissingField,
                        "missing field `seq` (an envelope is {\"seq\":N,\"events\":[...]})",
                    ),
                    1,
                );
                return;
            }
        }
        parse_array(events.get(), out, parse_event);
        return;
    }
    match parse_event(trimmed) {
        Ok(e) => out.events.push(e),
        Err(r) => out.reject(r, 1),
    }
}

fn parse_array(
    text: &str,
    out: &mut ParsedFrame,
    parse_event: fn(&str) -> Result<Event, Rejection>,
) {
    let items: Vec<&RawValue> = match serde_json::from_str(text) {
        Ok(items) => items,
        Err(e) => {
            let reason = if e.is_data() {
                RejectReason::NotAnEvent
            } else {
                RejectReason::NotJson
            };
            out.reject(
                Rejection::new(reason, format!("expected a JSON array of events: {e}")),
                1,
            );
            return;
        }
    };
    let take = items.len().min(MAX_BATCH_EVENTS);
    out.events.reserve(take);
    for (i, raw) in items[..take].iter().enumerate() {
        match parse_event(raw.get()) {
            Ok(e) => out.events.push(e),
            Err(r) => out.reject(
                Rejection::new(r.reason, format!("event {i}: {}", r.message)),
                1,
            ),
        }
    }
    if items.len() > take {
        let over = items.len() - take;
        out.reject(
            Rejection::new(
                RejectReason::BatchTooLarge,
                format!("batch holds {} events, at most {MAX_BATCH_EVENTS} are taken: the last {over} were rejected", items.len()),
            ),
            over as u32,
        );
    }
}

/// Parses an NDJSON body (`application/x-ndjson`): one event per non-empty line.
pub fn parse_ndjson(text: &str) -> ParsedFrame {
    let mut out = ParsedFrame::default();
    let mut taken = 0usize;
    let mut over = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if taken == MAX_BATCH_EVENTS {
            over += 1;
            continue;
        }
        taken += 1;
        match parse_event(line) {
            Ok(e) => out.events.push(e),
            Err(r) => out.reject(
                Rejection::new(r.reason, format!("line {}: {}", i + 1, r.message)),
                1,
            ),
        }
    }
    if over > 0 {
        out.reject(
            Rejection::new(
                RejectReason::BatchTooLarge,
                format!(
                    "body holds more than {MAX_BATCH_EVENTS} events: the last {over} were rejected"
                ),
            ),
            over as u32,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> String {
        format!(
            r#"{{"type":"heartbeat","ts":{},"viewer":"v{i}","channel":"c","stream":"s","session":"x{i}"}}"#,
            1000 + i
        )
    }

    #[test]
    fn a_batch_keeps_its_valid_events() {
        let f = parse_frame(&format!("[{},{{\"type\":1}},{}]", ev(1), ev(2)));
        assert_eq!(f.events.len(), 2);
        assert_eq!(f.rejected, 1);
        assert!(f.reasons[0].starts_with("event 1:"), "{:?}", f.reasons);
        let reply = f.rejection_reply().unwrap();
        assert!(
            reply.contains("\"type\":\"rejected\"") && reply.contains("\"count\":1"),
            "{reply}"
        );
    }

    #[test]
    fn envelopes_carry_seq() {
        let f = parse_frame(&format!(r#"{{"seq":7,"events":[{}]}}"#, ev(1)));
        assert_eq!(f.seq, Some(7));
        assert_eq!(f.events.len(), 1);
        assert!(f.rejection_reply().is_none());
        let f = parse_frame(&format!(r#"{{"events":[{}]}}"#, ev(1)));
        assert_eq!(f.rejected, 1);
        assert!(f.reasons[0].contains("`seq`"));
    }

    #[test]
    fn oversized_batches_keep_the_first_thousand() {
        let body = format!("[{}]", (0..1500).map(ev).collect::<Vec<_>>().join(","));
        let f = parse_frame(&body);
        assert_eq!(f.events.len(), 1000);
        assert_eq!(f.rejected, 500);
        assert_eq!(f.by_reason, vec![(RejectReason::BatchTooLarge, 500)]);
    }

    #[test]
    fn ndjson_lines() {
        let f = parse_ndjson(&format!("{}\n\nnot json\n{}\n", ev(1), ev(2)));
        assert_eq!(f.events.len(), 2);
        assert_eq!(f.rejected, 1);
        assert!(f.reasons[0].starts_with("line 3:"));
    }

    #[test]
    fn not_json_is_one_refusal() {
        let f = parse_frame("hello");
        assert_eq!((f.events.len(), f.rejected), (0, 1));
        assert_eq!(f.by_reason[0].0, RejectReason::NotJson);
    }
}
