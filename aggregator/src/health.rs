//! Stream health (METRICS.md §4), pure: [`HealthEngine`] takes encoder connections,
//! reports and a clock reading as input and returns alert transitions, lifecycle
//! changes and closed `health_ticks` / `alerts` rows. No I/O, no clock of its own.
//!
//! Time: rule windows and health ticks use the report's own `ts` (event time, so a
//! scripted encoder gives the same alerts every run), shifted per connection when its
//! first report is further than `skew_threshold_ms` from receive time. Silence,
//! `offline`, uptime and the grace period use receive time (`now`), because they are
//! about reports that did *not* come.
//!
//! A tick row closes when a report of a later tick arrives, when the encoder goes away
//! (lost or ended), or after `tick_ms` without a report; a report arriving later for
//! the same tick opens a second row for it, which readers merge (as they merge nodes).

use crate::alerts::{self, AlertBook, RuleInput, Transition};
use pulse_schemas::{
    AlertRow, AlertRules, AlertState, AlertUpdate, ConnectionStatus, EncoderReport, HealthTickRow,
    HealthUpdate, Id, LifecycleChange, LifecycleSource, RejectReason, Rejection, Severity,
    StreamHealthNow, StreamStatus,
};
use std::collections::{HashMap, VecDeque};

/// Bounds and timings of the health engine (set from `[health]`).
#[derive(Clone, Debug, PartialEq)]
pub struct HealthSettings {
    pub node: Id,
    pub tick_ms: i64,
    /// A lost stream with no encoder back within this long is ENDED. Default 60 000.
    pub grace_ms: i64,
    /// Reports a rule window must hold before it can fire. Default 5.
    pub min_window_samples: usize,
    /// A connection whose first report is further than this from receive time has its
    /// timestamps shifted by the difference. Default 300 000.
    pub skew_threshold_ms: i64,
    /// Most streams tracked at once (live or in grace). Default 10 000.
    pub max_streams: usize,
    /// Most closed rows held for the sink; beyond it the oldest are dropped and counted.
    pub max_pending_rows: usize,
}

/// Most reports kept in one stream's rule window (a window of 10 s holds ~10).
const MAX_WINDOW_REPORTS: usize = 600;
/// The first-minute median target is taken over this long.
const MEDIAN_SPAN_MS: i64 = 60_000;

/// What an engine call asks the caller to do.
#[derive(Clone, Debug, PartialEq)]
pub enum HealthOutput {
    /// Push to the channel's live feeds.
    Alert { channel: Id, update: AlertUpdate },
    /// Record through `AccessControl::record_lifecycle`.
    Lifecycle(LifecycleChange),
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    t: i64,
    bitrate: f64,
    fps: f64,
    loss: Option<f64>,
    latency: Option<f64>,
}

#[derive(Clone, Debug)]
struct TickAcc {
    t: i64,
    reports: i64,
    seconds: i64,
    last_second: i64,
    bitrate_sum: f64,
    bitrate_min: i64,
    target: Option<i64>,
    fps_sum: f64,
    resolution: Option<String>,
    latency: (f64, i64),
    loss: (f64, i64),
    dropped: i64,
}

#[derive(Clone, Debug)]
struct StreamHealth {
    channel: Id,
    live_at: i64,
    connections: u32,
    /// Receive time the last encoder went away without `end` (grace running).
    lost_at: Option<i64>,
    last_report_at: Option<i64>,
    /// The next report is the first of a connection (skew decided on it).
    fresh_connection: bool,
    offset: i64,
    last_ts: Option<i64>,
    last: Option<EncoderReport>,
    window: VecDeque<Sample>,
    first_ts: Option<i64>,
    first_minute: Vec<(i64, f64)>,
    median: Option<(f64, f64)>,
    seconds_reported: i64,
    last_second: Option<i64>,
    tick: Option<TickAcc>,
    book: AlertBook,
}

/// Every stream's health on this node.
#[derive(Debug)]
pub struct HealthEngine {
    settings: HealthSettings,
    streams: HashMap<Id, StreamHealth>,
    rules: HashMap<Id, AlertRules>,
    defaults: AlertRules,
    ticks: VecDeque<HealthTickRow>,
    alert_rows: VecDeque<AlertRow>,
    /// Rows dropped because the sink fell behind by more than `max_pending_rows`.
    pub dropped_rows: u64,
}

fn invalid(message: String) -> Rejection {
    Rejection::new(RejectReason::InvalidValue, message)
}

impl HealthEngine {
    pub fn new(settings: HealthSettings) -> Self {
        HealthEngine {
            settings,
            streams: HashMap::new(),
            rules: HashMap::new(),
            defaults: AlertRules::default(),
            ticks: VecDeque::new(),
            alert_rows: VecDeque::new(),
            dropped_rows: 0,
        }
    }

    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    /// The rules of `channel` (overrides or defaults).
    pub fn rules(&self, channel: &Id) -> &AlertRules {
        self.rules.get(channel).unwrap_or(&self.defaults)
    }

    /// Replaces `channel`'s overrides (already validated and stored by the caller).
    pub fn set_rules(&mut self, channel: Id, rules: AlertRules) {
        self.rules.insert(channel, rules);
    }

    /// Streams tracked now (live or in grace).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// An encoder socket for `stream` of `channel` opened. A stream not yet tracked
    /// becomes LIVE; one in its grace period carries on (no second LIVE).
    pub fn connect(
        &mut self,
        now: i64,
        stream: &Id,
        channel: &Id,
    ) -> Result<Vec<HealthOutput>, Rejection> {
        if let Some(s) = self.streams.get_mut(stream) {
            s.connections += 1;
            s.lost_at = None;
            s.fresh_connection = true;
            return Ok(Vec::new());
        }
        if self.streams.len() >= self.settings.max_streams {
            return Err(Rejection::new(
                RejectReason::RateLimited,
                format!(
                    "this node tracks at most {} live streams, and is full",
                    self.settings.max_streams
                ),
            ));
        }
        self.streams.insert(
            stream.clone(),
            StreamHealth {
                channel: channel.clone(),
                live_at: now,
                connections: 1,
                lost_at: None,
                last_report_at: None,
                fresh_connection: true,
                offset: 0,
                last_ts: None,
                last: None,
                window: VecDeque::new(),
                first_ts: None,
                first_minute: Vec::new(),
                median: None,
                seconds_reported: 0,
                last_second: None,
                tick: None,
                book: AlertBook::default(),
            },
        );
        Ok(vec![HealthOutput::Lifecycle(LifecycleChange {
            stream: stream.clone(),
            channel: channel.clone(),
            status: StreamStatus::Live,
            ts: now,
            source: LifecycleSource::Encoder,
        })])
    }

    /// One validated report of a connected stream's encoder, received at `now`.
    /// A report older than the previous one is refused and changes nothing.
    pub fn report(
        &mut self,
        now: i64,
        stream: &Id,
        r: EncoderReport,
    ) -> Result<Vec<HealthOutput>, Rejection> {
        let Some(s) = self.streams.get_mut(stream) else {
            return Err(invalid(format!("stream {stream}: not connected")));
        };
        let offset = if s.fresh_connection {
            let off = now - r.ts;
            if off.abs() > self.settings.skew_threshold_ms {
                off
            } else {
                0
            }
        } else {
            s.offset
        };
        let t = r.ts.saturating_add(offset);
        if let Some(last) = s.last_ts
            && t < last
        {
            return Err(invalid(format!(
                "ts: expected ≥ the previous report's {last}, got {t}"
            )));
        }
        s.fresh_connection = false;
        s.offset = offset;
        s.last_ts = Some(t);
        let rules = self.rules.get(&s.channel).unwrap_or(&self.defaults);
        let mut transitions: Vec<Transition> =
            s.book.connection_back(t, rules).into_iter().collect();

        // Uptime: distinct receive seconds with a report.
        let second = now.div_euclid(1000);
        if s.last_second != Some(second) {
            s.seconds_reported += 1;
            s.last_second = Some(second);
        }
        s.last_report_at = Some(now);

        // Health tick.
        let tick_t = t.div_euclid(self.settings.tick_ms) * self.settings.tick_ms;
        if s.tick.as_ref().is_some_and(|a| a.t != tick_t) {
            close_tick(
                &self.settings,
                stream,
                s,
                now,
                &mut self.ticks,
                &mut self.dropped_rows,
            );
        }
        let acc = s.tick.get_or_insert(TickAcc {
            t: tick_t,
            reports: 0,
            seconds: 0,
            last_second: i64::MIN,
            bitrate_sum: 0.0,
            bitrate_min: i64::MAX,
            target: None,
            fps_sum: 0.0,
            resolution: None,
            latency: (0.0, 0),
            loss: (0.0, 0),
            dropped: 0,
        });
        acc.reports += 1;
        if acc.last_second != second {
            acc.seconds += 1;
            acc.last_second = second;
        }
        acc.bitrate_sum += r.bitrate_kbps as f64;
        acc.bitrate_min = acc.bitrate_min.min(r.bitrate_kbps);
        acc.target = r.target_bitrate_kbps.or(acc.target);
        acc.fps_sum += r.fps;
        acc.resolution = r.resolution().or(acc.resolution.take());
        if let Some(l) = r.latency_ms {
            acc.latency = (acc.latency.0 + l as f64, acc.latency.1 + 1);
        }
        if let Some(l) = r.packet_loss_pct {
            acc.loss = (acc.loss.0 + l, acc.loss.1 + 1);
        }
        acc.dropped += r.dropped_frames.unwrap_or(0);

        // Rule window (by report time).
        s.window.push_back(Sample {
            t,
            bitrate: r.bitrate_kbps as f64,
            fps: r.fps,
            loss: r.packet_loss_pct,
            latency: r.latency_ms.map(|l| l as f64),
        });
        while s.window.front().is_some_and(|f| f.t <= t - rules.window_ms)
            || s.window.len() > MAX_WINDOW_REPORTS
        {
            s.window.pop_front();
        }

        // First-minute median target.
        let first = *s.first_ts.get_or_insert(t);
        if s.median.is_none() {
            if t - first < MEDIAN_SPAN_MS {
                if s.first_minute.len() < 4 * 60 {
                    s.first_minute.push((r.bitrate_kbps, r.fps));
                }
            } else {
                s.median = Some(medians(&s.first_minute));
                s.first_minute = Vec::new();
            }
        }

        let input = rule_input(s, &r, t, rules);
        transitions.extend(
            s.book
                .evaluate(&input, rules, self.settings.min_window_samples),
        );
        s.last = Some(r);
        let channel = s.channel.clone();
        Ok(self.emit(stream, &channel, transitions))
    }

    /// The encoder socket of `stream` closed: with `end` the stream is ENDED now; without
    /// it `connection_lost` fires and the grace period starts (when no other socket of
    /// the stream is open).
    pub fn disconnect(&mut self, now: i64, stream: &Id, ended: bool) -> Vec<HealthOutput> {
        let Some(s) = self.streams.get_mut(stream) else {
            return Vec::new();
        };
        s.connections = s.connections.saturating_sub(1);
        if ended {
            return self.end(now, stream, LifecycleSource::Encoder);
        }
        if s.connections > 0 {
            return Vec::new();
        }
        s.lost_at = Some(now);
        close_tick(
            &self.settings,
            stream,
            s,
            now,
            &mut self.ticks,
            &mut self.dropped_rows,
        );
        let rules = self.rules.get(&s.channel).unwrap_or(&self.defaults);
        let silent = s.last_report_at.map_or(0, |t| now - t);
        let at = s.last_ts.map_or(now, |t| t + silent);
        let transitions: Vec<Transition> = s
            .book
            .connection_lost(at, silent, rules)
            .into_iter()
            .collect();
        let channel = s.channel.clone();
        self.emit(stream, &channel, transitions)
    }

    /// Once a second: `connection_lost` after `silence_ms` without a report, ENDED after
    /// the grace period, silent ticks closed.
    pub fn sweep(&mut self, now: i64) -> Vec<HealthOutput> {
        let mut out = Vec::new();
        let mut ended = Vec::new();
        let mut fired = Vec::new();
        for (id, s) in &mut self.streams {
            if let Some(lost) = s.lost_at {
                if now - lost >= self.settings.grace_ms {
                    ended.push((id.clone(), lost));
                }
                continue;
            }
            let since = s.last_report_at.unwrap_or(s.live_at);
            let rules = self.rules.get(&s.channel).unwrap_or(&self.defaults);
            if now - since >= self.settings.tick_ms {
                close_tick(
                    &self.settings,
                    id,
                    s,
                    now,
                    &mut self.ticks,
                    &mut self.dropped_rows,
                );
            }
            if now - since >= rules.silence_ms {
                let at = s.last_ts.map_or(now, |t| t + (now - since));
                if let Some(t) = s.book.connection_lost(at, now - since, rules) {
                    fired.push((id.clone(), s.channel.clone(), t));
                }
            }
        }
        for (id, channel, t) in fired {
            out.extend(self.emit(&id, &channel, vec![t]));
        }
        for (id, lost) in ended {
            out.extend(self.end(lost, &id, LifecycleSource::GraceExpired));
        }
        out
    }

    fn end(&mut self, at: i64, stream: &Id, source: LifecycleSource) -> Vec<HealthOutput> {
        let Some(mut s) = self.streams.remove(stream) else {
            return Vec::new();
        };
        close_tick(
            &self.settings,
            stream,
            &mut s,
            at,
            &mut self.ticks,
            &mut self.dropped_rows,
        );
        let ts = s.last_ts.map_or(at, |t| t.max(at));
        let transitions = s.book.resolve_all(ts);
        let mut out = self.emit(stream, &s.channel, transitions);
        out.push(HealthOutput::Lifecycle(LifecycleChange {
            stream: stream.clone(),
            channel: s.channel.clone(),
            status: StreamStatus::Ended,
            ts: at,
            source,
        }));
        out
    }

    fn emit(
        &mut self,
        stream: &Id,
        channel: &Id,
        transitions: Vec<Transition>,
    ) -> Vec<HealthOutput> {
        let mut out = Vec::with_capacity(transitions.len());
        for t in transitions {
            let message = alerts::message(&t);
            push_bounded(
                &mut self.alert_rows,
                AlertRow {
                    node: self.settings.node.clone(),
                    stream: stream.clone(),
                    channel: channel.clone(),
                    ts: t.ts,
                    alert: t.kind.as_str(),
                    severity: t.severity.as_str(),
                    state: t.state.as_str(),
                    value: t.value,
                    threshold: t.threshold,
                    message: message.clone(),
                },
                self.settings.max_pending_rows,
                &mut self.dropped_rows,
            );
            out.push(HealthOutput::Alert {
                channel: channel.clone(),
                update: AlertUpdate {
                    stream: stream.clone(),
                    ts: t.ts,
                    alert: t.kind,
                    severity: t.severity,
                    state: t.state,
                    value: t.value,
                    threshold: t.threshold,
                    message,
                    guide: alerts::guide(t.kind).to_string(),
                },
            });
        }
        out
    }

    /// Closed rows for the sink (taken: the next call returns only newer ones).
    pub fn take_rows(&mut self) -> (Vec<HealthTickRow>, Vec<AlertRow>) {
        (
            self.ticks.drain(..).collect(),
            self.alert_rows.drain(..).collect(),
        )
    }

    /// Puts rows taken by [`Self::take_rows`] back in front (a store write failed).
    pub fn restore_rows(&mut self, ticks: Vec<HealthTickRow>, alert_rows: Vec<AlertRow>) {
        let cap = self.settings.max_pending_rows;
        for r in ticks.into_iter().rev() {
            if self.ticks.len() >= cap {
                self.dropped_rows += 1;
            } else {
                self.ticks.push_front(r);
            }
        }
        for r in alert_rows.into_iter().rev() {
            if self.alert_rows.len() >= cap {
                self.dropped_rows += 1;
            } else {
                self.alert_rows.push_front(r);
            }
        }
    }

    /// Health of one stream at `now`.
    pub fn stream_now(&self, stream: &Id, now: i64) -> Option<StreamHealthNow> {
        let s = self.streams.get(stream)?;
        let rules = self.rules(&s.channel);
        Some(StreamHealthNow {
            channel: s.channel.clone(),
            latest: health_update(stream, s, now, rules),
            active_alerts: s
                .book
                .firing()
                .map(|(kind, severity, since)| AlertUpdate {
                    stream: stream.clone(),
                    ts: since,
                    alert: kind,
                    severity,
                    state: AlertState::Firing,
                    value: 0.0,
                    threshold: 0.0,
                    message: format!("{} firing since {since}", kind.as_str()),
                    guide: alerts::guide(kind).to_string(),
                })
                .collect(),
        })
    }

    /// The streams of `channel` on this node, ordered by id.
    pub fn channel_now(&self, channel: &Id, now: i64) -> Vec<StreamHealthNow> {
        let mut ids: Vec<&Id> = self
            .streams
            .iter()
            .filter(|(_, s)| &s.channel == channel)
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| self.stream_now(id, now))
            .collect()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, row: T, cap: usize, dropped: &mut u64) {
    if q.len() >= cap.max(1) {
        q.pop_front();
        *dropped += 1;
    }
    q.push_back(row);
}

fn status(s: &StreamHealth, now: i64, rules: &AlertRules) -> ConnectionStatus {
    let silent = s.last_report_at.is_none_or(|t| now - t >= rules.silence_ms);
    if s.connections == 0 || silent {
        return ConnectionStatus::Offline;
    }
    match s.book.worst() {
        Some(Severity::Critical) => ConnectionStatus::Poor,
        Some(Severity::Warning) => ConnectionStatus::Good,
        None => ConnectionStatus::Excellent,
    }
}

fn health_update(stream: &Id, s: &StreamHealth, now: i64, rules: &AlertRules) -> HealthUpdate {
    let elapsed_s = ((now - s.live_at).max(0) + 999) / 1000;
    let uptime = if elapsed_s == 0 {
        if s.seconds_reported > 0 { 100.0 } else { 0.0 }
    } else {
        (s.seconds_reported as f64 * 100.0 / elapsed_s as f64).min(100.0)
    };
    let last = s.last.as_ref();
    HealthUpdate {
        stream: stream.clone(),
        ts: now,
        status: status(s, now, rules),
        bitrate_kbps: last.map_or(0, |r| r.bitrate_kbps),
        target_bitrate_kbps: last
            .and_then(|r| r.target_bitrate_kbps)
            .or(rules.target_bitrate_kbps)
            .or(s.median.map(|m| m.0.round() as i64)),
        fps: last.map_or(0.0, |r| r.fps),
        resolution: last.and_then(EncoderReport::resolution),
        latency_ms: last.and_then(|r| r.latency_ms),
        packet_loss_pct: last.and_then(|r| r.packet_loss_pct),
        viewers: 0,
        uptime_pct: (uptime * 10.0).round() / 10.0,
    }
}

fn close_tick(
    settings: &HealthSettings,
    stream: &Id,
    s: &mut StreamHealth,
    now: i64,
    out: &mut VecDeque<HealthTickRow>,
    dropped: &mut u64,
) {
    let Some(a) = s.tick.take() else { return };
    let n = a.reports.max(1) as f64;
    let row = HealthTickRow {
        node: settings.node.clone(),
        stream: stream.clone(),
        channel: s.channel.clone(),
        t: a.t,
        reports: a.reports,
        seconds_reported: a.seconds,
        bitrate_mean_kbps: a.bitrate_sum / n,
        bitrate_min_kbps: if a.reports > 0 { a.bitrate_min } else { 0 },
        target_bitrate_kbps: a.target,
        fps_mean: a.fps_sum / n,
        resolution: a.resolution,
        latency_mean_ms: (a.latency.1 > 0).then(|| a.latency.0 / a.latency.1 as f64),
        packet_loss_mean_pct: (a.loss.1 > 0).then(|| a.loss.0 / a.loss.1 as f64),
        dropped_frames: a.dropped,
        status: status(s, now, &AlertRules::default()).as_str(),
    };
    push_bounded(out, row, settings.max_pending_rows, dropped);
}

fn medians(samples: &[(i64, f64)]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut b: Vec<i64> = samples.iter().map(|s| s.0).collect();
    let mut f: Vec<f64> = samples.iter().map(|s| s.1).collect();
    b.sort_unstable();
    f.sort_by(f64::total_cmp);
    (b[b.len() / 2] as f64, f[f.len() / 2])
}

fn rule_input(s: &StreamHealth, r: &EncoderReport, t: i64, rules: &AlertRules) -> RuleInput {
    let n = s.window.len().max(1) as f64;
    let mean_opt = |get: fn(&Sample) -> Option<f64>| {
        let (sum, k) = s
            .window
            .iter()
            .filter_map(get)
            .fold((0.0, 0usize), |(a, k), v| (a + v, k + 1));
        (k > 0).then(|| sum / k as f64)
    };
    RuleInput {
        ts: t,
        samples: s.window.len(),
        bitrate_mean: s.window.iter().map(|x| x.bitrate).sum::<f64>() / n,
        bitrate_now: r.bitrate_kbps as f64,
        fps_mean: s.window.iter().map(|x| x.fps).sum::<f64>() / n,
        fps_now: r.fps,
        loss_mean: mean_opt(|x| x.loss),
        loss_now: r.packet_loss_pct,
        latency_mean: mean_opt(|x| x.latency),
        latency_now: r.latency_ms.map(|l| l as f64),
        target_bitrate: r
            .target_bitrate_kbps
            .or(rules.target_bitrate_kbps)
            .map(|t| t as f64)
            .or(s.median.map(|m| m.0)),
        target_fps: r.target_fps.or(rules.target_fps).or(s.median.map(|m| m.1)),
    }
}
