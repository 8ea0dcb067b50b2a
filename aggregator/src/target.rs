//! The state of one target (a stream, VOD or clip): its open view sessions and its open
//! tick and viewer-minute windows. Events come in the committed total order (see
//! engine.rs); every number here is a function of that order only.
//!
//! What an event counts for:
//! - every committed event counts in `events` of its tick and in its viewer's minute,
//!   orphans included (they are events of the target; they only start nothing);
//! - a playback event drives its session ([`crate::session`]) and the session's [`Step`]
//!   is booked into ticks (watch/rebuffer time split at tick boundaries, views, embed
//!   views, startups, rebuffer count, failures);
//! - an event dropped by a bound (`max_sessions`) counts nowhere.

use crate::minute::MinuteWindow;
use crate::qoe::{QoeWindow, RowContext};
use crate::row_order::by_id;
use crate::session::{Step, ViewSession};
use crate::session_table::SessionTable;
use crate::stage;
use crate::tombstones::Graves;
use crate::window::{Bound, TickWindow};
use pulse_schemas::{ClosedWindows, Event, EventKind, Id, SessionRow, Target};
use serde::{Deserialize, Serialize};

/// The fixed parameters the windows need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub node: Id,
    pub tick_ms: i64,
    pub timeout_ms: i64,
    /// (device, country, player) groups per target in `qoe_minutes`.
    #[serde(default = "default_max_qoe_groups")]
    pub max_qoe_groups: usize,
}

fn default_max_qoe_groups() -> usize {
    crate::AggregatorConfig::default().max_qoe_groups
}

/// Counters kept by the committed state (a scratch copy's changes are thrown away).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub orphans: u64,
    pub dropped_max_sessions: u64,
    pub dropped_max_targets: u64,
    pub dropped_viewer_minutes: u64,
    /// Sessions booked into the `other` QoE group (past `max_qoe_groups`).
    #[serde(default)]
    pub qoe_groups_overflowed: u64,
}

/// What every target shares: parameters, global bounds, counters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Env {
    pub params: Params,
    pub sessions: Bound,
    pub viewer_minutes: Bound,
    pub counters: Counters,
}

/// Open sessions and windows of one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    pub target: Target,
    /// Channel of the first event seen for the target (written on every row).
    pub channel: Id,
    pub sessions: SessionTable,
    pub ticks: TickWindow,
    pub minutes: MinuteWindow,
    /// Playback quality per minute and (device, country, player) group.
    #[serde(default)]
    pub qoe: QoeWindow,
}

/// Books a live session's event into its viewer's minute and its watch time and
/// counts into its QoE group, through the session's stage ([`crate::stage`]) for the
/// parts it can hold back; false when the viewer-minute bound refused the event.
#[allow(clippy::too_many_arguments)]
fn book_session(
    minutes: &mut MinuteWindow,
    qoe: &mut QoeWindow,
    s: &mut ViewSession,
    e: &Event,
    step: &Step,
    group: u32,
    chat: i64,
    env: &mut Env,
) -> bool {
    let followed = e.kind == EventKind::Follow;
    let bound = &mut env.viewer_minutes;
    let booked = if e.viewer == s.viewer {
        s.stage.hold(e.ts, followed, chat)
            || stage::record_own(
                &mut s.stage,
                e.ts,
                &e.viewer,
                followed,
                chat,
                bound,
                minutes,
                qoe,
            )
    } else {
        minutes
            .record(e.ts, &e.viewer, followed, chat, bound)
            .is_some()
    };
    if let Some(iv) = step.interval {
        stage::book_interval(&mut s.stage, group, iv, qoe);
    }
    qoe.book_counts(group, e.ts, step);
    booked
}

impl TargetState {
    pub fn new(target: Target, channel: Id, tick_ms: i64) -> Self {
        TargetState {
            target,
            channel,
            sessions: Default::default(),
            ticks: TickWindow::new(tick_ms),
            minutes: MinuteWindow::default(),
            qoe: QoeWindow::default(),
        }
    }

    /// Adds what every session holds back to the windows (before a snapshot or a dump).
    pub fn release_stages(&mut self) {
        for s in self.sessions.values_mut() {
            stage::release(&mut s.stage, &s.viewer, &mut self.minutes, &mut self.qoe);
        }
    }

    /// No open session and no open window: the target can be forgotten.
    pub fn is_idle(&self) -> bool {
        self.sessions.is_empty()
            && self.ticks.is_empty()
            && self.minutes.is_empty()
            && self.qoe.is_empty()
    }

    /// Applies one committed event of this target.
    pub fn apply<G: Graves>(
        &mut self,
        e: &Event,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) {
        let followed = e.kind == EventKind::Follow;
        let chat = i64::from(e.chat_messages());
        let mut step = Step::default();
        let mut minute_recorded = None;
        if e.kind.is_playback()
            && let Some(session) = &e.session
        {
            match self.drive_session(e, session, chat, env, graves, out) {
                Some((s, recorded)) => {
                    step = s;
                    minute_recorded = recorded;
                }
                None => return, // dropped by max_sessions
            }
        }
        if let Some(iv) = step.interval {
            self.ticks.add_interval(iv);
        }
        let acc = self.ticks.at(e.ts);
        acc.events += 1;
        match e.kind {
            EventKind::Chat => acc.chat_messages += chat,
            EventKind::Follow => acc.follows += 1,
            EventKind::Like => acc.likes += 1,
            EventKind::Share => acc.shares += 1,
            EventKind::Clickthrough => acc.clickthroughs += 1,
            _ => {}
        }
        acc.views += i64::from(step.view);
        acc.embed_views += i64::from(step.embed_view);
        acc.rebuffer_count += i64::from(step.rebuffer_started);
        acc.failures += i64::from(step.failed);
        if let Some(ms) = step.startup_ms {
            acc.startups.push(ms.clamp(0, i64::from(u32::MAX)) as u32);
        }
        let recorded = minute_recorded.unwrap_or_else(|| {
            let bound = &mut env.viewer_minutes;
            (self.minutes.record(e.ts, &e.viewer, followed, chat, bound)).is_some()
        });
        if !recorded {
            env.counters.dropped_viewer_minutes += 1;
        }
    }

    /// Runs the session state machine; `None` when the event is dropped by `max_sessions`.
    /// For an event of a live session, also books its viewer minute and its QoE group's
    /// minute ([`book_session`]; the second value: `Some(booked)`).
    fn drive_session<G: Graves>(
        &mut self,
        e: &Event,
        session: &Id,
        chat: i64,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) -> Option<(Step, Option<bool>)> {
        let timeout = env.params.timeout_ms;
        let orphan = Step {
            orphan: true,
            ..Step::default()
        };
        let (step, recorded) = match self.sessions.get_mut(session) {
            Some(s) if s.timed_out_at(e.ts, timeout) => {
                // Silent for longer than the timeout: it ended at its last event, and
                // this event belongs to an ended session.
                s.expire();
                self.end_session(session, env, graves, out);
                env.counters.orphans += 1;
                return Some((orphan, None));
            }
            Some(s) => {
                let step = s.apply(e);
                let group = self.qoe.group_of(
                    s,
                    env.params.max_qoe_groups,
                    &mut env.counters.qoe_groups_overflowed,
                );
                let booked = book_session(
                    &mut self.minutes,
                    &mut self.qoe,
                    s,
                    e,
                    &step,
                    group,
                    chat,
                    env,
                );
                (step, booked)
            }
            None if graves.ended(&self.target, session, e.ts) => {
                env.counters.orphans += 1;
                return Some((orphan, None));
            }
            None => {
                if !env.sessions.take() {
                    env.counters.dropped_max_sessions += 1;
                    return None;
                }
                let (mut s, step) = ViewSession::begin(session.clone(), e);
                let group = self.qoe.group_of(
                    &mut s,
                    env.params.max_qoe_groups,
                    &mut env.counters.qoe_groups_overflowed,
                );
                let booked = book_session(
                    &mut self.minutes,
                    &mut self.qoe,
                    &mut s,
                    e,
                    &step,
                    group,
                    chat,
                    env,
                );
                self.sessions.insert_new(s);
                (step, booked)
            }
        };
        if step.ended.is_some() {
            self.end_session(session, env, graves, out);
        }
        Some((step, Some(recorded)))
    }

    fn end_session<G: Graves>(
        &mut self,
        session: &Id,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) {
        if let Some(s) = self.sessions.remove(session) {
            self.close_session(s, env, graves, out);
        }
    }

    /// Books what an ended session (out of the table) still holds, writes its row and
    /// buries it.
    fn close_session<G: Graves>(
        &mut self,
        mut s: ViewSession,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) {
        stage::release(&mut s.stage, &s.viewer, &mut self.minutes, &mut self.qoe);
        env.sessions.release(1);
        out.sessions.push(self.session_row(&s, env));
        graves.bury(
            &self.target,
            &s.session,
            s.end.map_or(s.last_ts, |(end, _)| end),
        );
    }

    fn session_row(&self, s: &ViewSession, env: &Env) -> SessionRow {
        s.to_row(
            &env.params.node,
            self.target.kind,
            &self.target.id,
            &self.channel,
        )
    }

    /// The concurrency sample at tick end `t` (every event before `t` applied): expires
    /// sessions silent for longer than the timeout, and books the viewers into the tick
    /// `[t − tick, t)`.
    pub fn sample<G: Graves>(
        &mut self,
        t: i64,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) {
        let timeout = env.params.timeout_ms;
        let mut viewers = 0i64;
        let mut expired = 0usize;
        let (target, channel, node) = (&self.target, &self.channel, &env.params.node);
        let (qoe, minutes) = (&mut self.qoe, &mut self.minutes);
        let (max_groups, overflowed) = (
            env.params.max_qoe_groups,
            &mut env.counters.qoe_groups_overflowed,
        );
        self.sessions.retain(|s| {
            if s.timed_out_at(t, timeout) {
                s.expire();
                stage::release(&mut s.stage, &s.viewer, minutes, qoe);
                out.sessions
                    .push(s.to_row(node, target.kind, &target.id, channel));
                graves.bury(target, &s.session, s.last_ts);
                expired += 1;
                false
            } else {
                if s.is_viewer_at(t, timeout) {
                    viewers += 1;
                    let g = qoe.group_of(s, max_groups, overflowed);
                    qoe.count_viewer(g);
                }
                true
            }
        });
        env.sessions.release(expired);
        self.qoe.sample(t);
        if viewers > 0 {
            self.ticks.at(t - 1).viewers = viewers;
        }
    }

    /// Writes and forgets every tick and minute ending at or before `close_before`
    /// (= W − session timeout: see the closing rule in lib.rs).
    pub fn close(&mut self, close_before: i64, env: &mut Env, out: &mut ClosedWindows) {
        if self.minutes.closes_any(close_before) || self.qoe.closes_any(close_before) {
            // What sessions hold back for the minutes about to close joins them (a scan
            // of the sessions once a minute, not at every tick).
            for s in self.sessions.values_mut() {
                if s.stage.closes_at(close_before) {
                    stage::release(&mut s.stage, &s.viewer, &mut self.minutes, &mut self.qoe);
                }
            }
        }
        let (target, channel, node) = (&self.target, &self.channel, &env.params.node);
        let ctx = RowContext {
            node,
            kind: target.kind,
            target: &target.id,
            channel,
        };
        self.ticks.pop_closed(close_before, |t, acc| {
            if !acc.is_empty() {
                out.ticks.push(acc.to_row(&ctx, t));
            }
        });
        self.minutes
            .pop_closed(close_before, &mut env.viewer_minutes, |m, viewers| {
                // In viewer order: the rows then need no sorting after this target's.
                for (viewer, acc) in by_id(viewers.iter()) {
                    out.viewer_minutes.push(acc.to_row(&ctx, m, viewer));
                }
            });
        self.qoe.close(close_before, &ctx, &mut out.qoe_minutes);
    }

    /// Rows of every open window (provisional output). What sessions hold back is part
    /// of the open minutes, so it is released into the windows first (the engine dumps
    /// a scratch copy of its state).
    pub fn dump(&mut self, env: &Env, p: &mut crate::sinks::Provisional) {
        self.release_stages();
        let (target, channel, node) = (&self.target, &self.channel, &env.params.node);
        let ctx = RowContext {
            node,
            kind: target.kind,
            target: &target.id,
            channel,
        };
        for (t, acc) in self.ticks.iter() {
            if !acc.is_empty() {
                p.ticks.push(acc.to_row(&ctx, t));
            }
        }
        for (m, viewers) in self.minutes.iter() {
            for (viewer, acc) in viewers.iter() {
                p.viewer_minutes.push(acc.to_row(&ctx, *m, viewer));
            }
        }
        self.qoe.dump(&ctx, &mut p.qoe_minutes);
    }

    /// Ends every open session by timeout (end of a replay: nothing more will come).
    pub fn expire_all<G: Graves>(
        &mut self,
        env: &mut Env,
        graves: &mut G,
        out: &mut ClosedWindows,
    ) {
        for mut s in self.sessions.take_all() {
            s.expire();
            self.close_session(s, env, graves, out);
        }
    }
}
