//! Shared helpers of the aggregator tests: event builders and a sink that keeps what it gets.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use pulse_aggregator::{Aggregator, AggregatorConfig, AggregatorError, Provisional, WindowSink};
use pulse_schemas::{
    ClosedWindows, Event, EventKind, Id, PlayerState, SessionRow, Target, TargetKind, TickRow,
    ViewerMinuteRow,
};

pub fn id(s: &str) -> Id {
    Id::new_unchecked(s)
}

/// An event of stream `s1` on channel `c1`; the viewer is `v-<session>`.
pub fn ev(kind: EventKind, ts: i64, session: &str) -> Event {
    let target = Target {
        kind: TargetKind::Stream,
        id: id("s1"),
    };
    let viewer = id(&format!("v-{session}"));
    let session = kind.is_playback().then(|| id(session));
    let mut e = Event::new(kind, ts, viewer, id("c1"), target, session);
    e.code = (kind == EventKind::Error).then(|| "E1".into());
    e
}

pub fn on(mut e: Event, stream: &str) -> Event {
    e.target.id = id(stream);
    e
}

pub fn heartbeat(ts: i64, session: &str, state: Option<PlayerState>) -> Event {
    let mut e = ev(EventKind::Heartbeat, ts, session);
    e.state = state;
    e
}

/// An engagement event of `viewer` on stream `s1`.
pub fn engage(kind: EventKind, ts: i64, viewer: &str) -> Event {
    let mut e = ev(kind, ts, "none");
    e.viewer = id(viewer);
    e.session = None;
    e
}

pub fn cfg() -> AggregatorConfig {
    AggregatorConfig::default()
}

/// Everything the aggregator writes, in one place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub ticks: Vec<TickRow>,
    pub sessions: Vec<SessionRow>,
    pub viewer_minutes: Vec<ViewerMinuteRow>,
    pub qoe_minutes: Vec<pulse_schemas::QoeMinuteRow>,
}

impl Rows {
    pub fn add(&mut self, c: &ClosedWindows) {
        self.ticks.extend(c.ticks.iter().cloned());
        self.sessions.extend(c.sessions.iter().cloned());
        self.viewer_minutes.extend(c.viewer_minutes.iter().cloned());
        self.qoe_minutes.extend(c.qoe_minutes.iter().cloned());
    }

    /// Sorted so that rows from differently grouped flushes compare.
    pub fn sorted(mut self) -> Rows {
        self.ticks
            .sort_by(|a, b| (a.t, &a.target).cmp(&(b.t, &b.target)));
        self.sessions.sort_by(|a, b| {
            (&a.target, &a.session, a.end_ts).cmp(&(&b.target, &b.session, b.end_ts))
        });
        self.viewer_minutes.sort_by(|a, b| {
            (a.minute, &a.target, &a.viewer).cmp(&(b.minute, &b.target, &b.viewer))
        });
        self.qoe_minutes.sort_by(|a, b| {
            (a.minute, &a.target, &a.device, &a.country, &a.player)
                .cmp(&(b.minute, &b.target, &b.device, &b.country, &b.player))
        });
        self
    }

    pub fn tick(&self, target: &str, t: i64) -> Option<&TickRow> {
        self.ticks
            .iter()
            .find(|r| r.target.as_str() == target && r.t == t)
    }

    pub fn session(&self, session: &str) -> Option<&SessionRow> {
        self.sessions.iter().find(|r| r.session.as_str() == session)
    }

    pub fn sum(&self, f: impl Fn(&TickRow) -> i64) -> i64 {
        self.ticks.iter().map(f).sum()
    }
}

/// Pushes every event, then `finish()`.
pub fn run_all(
    config: AggregatorConfig,
    events: impl IntoIterator<Item = Event>,
) -> (Rows, Aggregator) {
    let mut agg = Aggregator::new(config);
    for e in events {
        agg.push(e);
    }
    let mut rows = Rows::default();
    rows.add(&agg.finish());
    (rows.sorted(), agg)
}

/// A sink that keeps every write.
#[derive(Default)]
pub struct CollectSink {
    pub closed: Vec<ClosedWindows>,
    pub provisional: Vec<Provisional>,
    pub shutdowns: usize,
}

impl CollectSink {
    pub fn rows(&self) -> Rows {
        let mut r = Rows::default();
        for c in &self.closed {
            r.add(c);
        }
        r
    }
}

impl WindowSink for CollectSink {
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        self.closed.push(closed.clone());
        self.provisional.push(provisional.clone());
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        self.shutdowns += 1;
        Ok(())
    }
}
