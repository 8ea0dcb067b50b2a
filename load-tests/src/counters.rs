//! Shared run state: atomic counters every connection task updates, the event budget
//! (`--max-events`) and the deadline (`--duration-s`), and the reply reader that counts
//! what the server refused.

use crate::report::{MAX_NOTES, ScenarioReport};
use futures_util::{Stream, StreamExt};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Counters of one scenario.
#[derive(Default)]
pub struct Counters {
    pub opened: AtomicU64,
    pub open: AtomicU64,
    pub peak: AtomicU64,
    pub connect_failures: AtomicU64,
    pub closed_by_server: AtomicU64,
    pub frames_sent: AtomicU64,
    pub events_sent: AtomicU64,
    pub events_rejected: AtomicU64,
    pub acked_envelopes: AtomicU64,
    pub acked_events: AtomicU64,
    close_codes: Mutex<Vec<(u16, u64)>>,
    notes: Mutex<Vec<String>>,
}

impl Counters {
    pub fn connected(&self) {
        self.opened.fetch_add(1, Relaxed);
        let now = self.open.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(now, Relaxed);
    }

    pub fn disconnected(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    pub fn sent(&self, frames: u64, events: u64) {
        self.frames_sent.fetch_add(frames, Relaxed);
        self.events_sent.fetch_add(events, Relaxed);
    }

    /// Keeps the first [`MAX_NOTES`] notes.
    pub fn note(&self, note: impl Into<String>) {
        if let Ok(mut n) = self.notes.lock()
            && n.len() < MAX_NOTES
        {
            n.push(note.into());
        }
    }

    pub fn server_closed(&self, code: Option<u16>) {
        self.closed_by_server.fetch_add(1, Relaxed);
        if let (Some(code), Ok(mut codes)) = (code, self.close_codes.lock()) {
            if let Some((_, n)) = codes.iter_mut().find(|(c, _)| *c == code) {
                *n += 1;
            } else if codes.len() < 8 {
                codes.push((code, 1));
            }
        }
    }

    /// Copies the counters into a report (rates over `elapsed_s`).
    pub fn fill(&self, r: &mut ScenarioReport, elapsed_s: f64) {
        r.elapsed_s = elapsed_s;
        r.connections_opened = self.opened.load(Relaxed);
        r.connections_peak = self.peak.load(Relaxed);
        r.connect_failures = self.connect_failures.load(Relaxed);
        r.closed_by_server = self.closed_by_server.load(Relaxed);
        r.close_codes = self
            .close_codes
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        r.frames_sent = self.frames_sent.load(Relaxed);
        r.events_sent = self.events_sent.load(Relaxed);
        r.events_rejected = self.events_rejected.load(Relaxed);
        r.events_accepted = r.events_sent.saturating_sub(r.events_rejected);
        let secs = elapsed_s.max(1e-9);
        r.frames_per_s = r.frames_sent as f64 / secs;
        r.events_per_s = r.events_accepted as f64 / secs;
        for n in self.notes.lock().map(|n| n.clone()).unwrap_or_default() {
            r.note(n);
        }
    }
}

/// `--max-events` shared by the connections of a scenario, and `--duration-s`.
pub struct Budget {
    left: AtomicU64,
    pub deadline: Instant,
}

impl Budget {
    pub fn new(max_events: u64, deadline: Instant) -> Budget {
        Budget {
            left: AtomicU64::new(max_events),
            deadline,
        }
    }

    /// Takes up to `want` events from the budget; 0 once it is spent or time is up.
    pub fn take(&self, want: u64) -> u64 {
        if Instant::now() >= self.deadline {
            return 0;
        }
        let mut granted = 0;
        let _ = self.left.fetch_update(Relaxed, Relaxed, |left| {
            granted = left.min(want);
            Some(left - granted)
        });
        granted
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// A server reply we act on.
pub enum Reply {
    Ack(u64),
    Other,
}

/// Reads server replies until the socket ends: counts `rejected` events, hands `ack`
/// seqs to `on_ack`, records a server close. Returns when the server closed or the
/// socket ended (after our own Close, the server's Close answers it).
pub async fn read_replies<S>(
    mut stream: S,
    counters: &Counters,
    we_closed: impl Fn() -> bool,
    mut on_ack: impl FnMut(u64),
) where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(t)) => {
                if let Reply::Ack(seq) = parse_reply(t.as_str(), counters) {
                    on_ack(seq);
                }
            }
            Ok(Message::Close(frame)) => {
                if !we_closed() {
                    counters.server_closed(frame.as_ref().map(|f| u16::from(f.code)));
                    if let Some(f) = frame {
                        counters.note(format!(
                            "server closed a connection: {} {}",
                            u16::from(f.code),
                            f.reason
                        ));
                    }
                }
                // Keep reading: tungstenite answers the close and then ends the stream.
            }
            Ok(_) => {}
            Err(e) => {
                if !we_closed() {
                    counters.server_closed(None);
                    counters.note(format!("connection failed: {e}"));
                }
                break;
            }
        }
    }
}

/// Counts a `rejected` reply; returns an `ack`'s seq.
pub fn parse_reply(text: &str, counters: &Counters) -> Reply {
    #[derive(serde::Deserialize)]
    struct R<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
        seq: Option<u64>,
        count: Option<u64>,
        #[serde(default)]
        reasons: Vec<String>,
    }
    match serde_json::from_str::<R<'_>>(text) {
        Ok(r) if r.kind == "ack" => r.seq.map_or(Reply::Other, Reply::Ack),
        Ok(r) if r.kind == "rejected" => {
            counters
                .events_rejected
                .fetch_add(r.count.unwrap_or(1), Relaxed);
            if let Some(first) = r.reasons.first() {
                counters.note(format!(
                    "rejected: {}",
                    first.chars().take(160).collect::<String>()
                ));
            }
            Reply::Other
        }
        _ => Reply::Other,
    }
}
