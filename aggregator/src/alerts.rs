//! Alert rules of METRICS.md §4, pure: no clock, no I/O. [`AlertBook`] holds one
//! stream's alert states and turns each evaluation into transitions.
//!
//! - An alert **fires** when the mean over the rule window (default the last 10 s of
//!   reports, by the reports' own time) crosses its fire threshold and the window holds
//!   at least `min_samples` reports (so one odd report at start-up fires nothing).
//! - A firing warning **escalates** to critical when the mean crosses the critical
//!   threshold (one more `firing` transition, severity critical). It does not step back
//!   to warning: it stays critical until it resolves.
//! - It **resolves** once every report for `resolve_after_ms` (default 10 s) has been on
//!   the good side of the resolve threshold (≥ 80 % of target bitrate, ≥ 95 % of target
//!   fps, loss ≤ 1 %, latency ≤ 4 000 ms). The gap between fire and resolve thresholds,
//!   plus the 10 s run, is the hysteresis: a value flapping around the fire threshold
//!   gives one `firing`, never a storm.
//! - `connection_lost` fires on a lost socket or `silence_ms` without a report, and
//!   resolves at the next report.

use pulse_schemas::{AlertKind, AlertRules, AlertState, Severity};

/// What one evaluation looks at: window means and the newest report's values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RuleInput {
    /// Time of the newest report.
    pub ts: i64,
    /// Reports in the window.
    pub samples: usize,
    pub bitrate_mean: f64,
    pub bitrate_now: f64,
    pub fps_mean: f64,
    pub fps_now: f64,
    pub loss_mean: Option<f64>,
    pub loss_now: Option<f64>,
    pub latency_mean: Option<f64>,
    pub latency_now: Option<f64>,
    /// Resolved target (encoder field, else stream settings, else first-minute median).
    pub target_bitrate: Option<f64>,
    pub target_fps: Option<f64>,
}

/// One alert change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub kind: AlertKind,
    pub severity: Severity,
    pub state: AlertState,
    pub ts: i64,
    pub value: f64,
    pub threshold: f64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Firing {
    severity: Severity,
    since: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Slot {
    firing: Option<Firing>,
    /// Start of the current run of reports on the good side (while firing).
    good_since: Option<i64>,
}

/// The fire/resolve judgement of one rule on one input.
struct Check {
    kind: AlertKind,
    value: f64,
    breach: Option<(Severity, f64)>,
    good: bool,
    resolve_threshold: f64,
}

/// One stream's alert states.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertBook {
    slots: [Slot; 5],
}

impl AlertBook {
    /// Evaluates the value rules (every kind but `connection_lost`) on `input`.
    pub fn evaluate(
        &mut self,
        input: &RuleInput,
        rules: &AlertRules,
        min_samples: usize,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for check in checks(input, rules) {
            let slot = &mut self.slots[check.kind.index()];
            let enough = input.samples >= min_samples.max(1);
            match &mut slot.firing {
                None => {
                    if let (true, Some((severity, threshold))) = (enough, check.breach) {
                        slot.firing = Some(Firing {
                            severity,
                            since: input.ts,
                        });
                        slot.good_since = None;
                        out.push(Transition {
                            kind: check.kind,
                            severity,
                            state: AlertState::Firing,
                            ts: input.ts,
                            value: check.value,
                            threshold,
                        });
                    }
                }
                Some(firing) => {
                    if let (true, Some((Severity::Critical, threshold))) = (enough, check.breach)
                        && firing.severity == Severity::Warning
                    {
                        firing.severity = Severity::Critical;
                        out.push(Transition {
                            kind: check.kind,
                            severity: Severity::Critical,
                            state: AlertState::Firing,
                            ts: input.ts,
                            value: check.value,
                            threshold,
                        });
                    }
                    if check.good {
                        let since = *slot.good_since.get_or_insert(input.ts);
                        if input.ts - since >= rules.resolve_after_ms {
                            out.push(Transition {
                                kind: check.kind,
                                severity: firing.severity,
                                state: AlertState::Resolved,
                                ts: input.ts,
                                value: check.value,
                                threshold: check.resolve_threshold,
                            });
                            *slot = Slot::default();
                        }
                    } else {
                        slot.good_since = None;
                    }
                }
            }
        }
        out
    }

    /// `connection_lost` fires (if not already firing): `silent_ms` without a report.
    pub fn connection_lost(
        &mut self,
        ts: i64,
        silent_ms: i64,
        rules: &AlertRules,
    ) -> Option<Transition> {
        let slot = &mut self.slots[AlertKind::ConnectionLost.index()];
        if slot.firing.is_some() {
            return None;
        }
        slot.firing = Some(Firing {
            severity: Severity::Critical,
            since: ts,
        });
        Some(Transition {
            kind: AlertKind::ConnectionLost,
            severity: Severity::Critical,
            state: AlertState::Firing,
            ts,
            value: silent_ms as f64,
            threshold: rules.silence_ms as f64,
        })
    }

    /// A report arrived: `connection_lost` resolves if it was firing.
    pub fn connection_back(&mut self, ts: i64, rules: &AlertRules) -> Option<Transition> {
        let slot = &mut self.slots[AlertKind::ConnectionLost.index()];
        let firing = slot.firing.take()?;
        Some(Transition {
            kind: AlertKind::ConnectionLost,
            severity: firing.severity,
            state: AlertState::Resolved,
            ts,
            value: (ts - firing.since).max(0) as f64,
            threshold: rules.silence_ms as f64,
        })
    }

    /// The stream ended: every firing alert resolves.
    pub fn resolve_all(&mut self, ts: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for kind in AlertKind::ALL {
            let slot = &mut self.slots[kind.index()];
            if let Some(f) = slot.firing.take() {
                out.push(Transition {
                    kind,
                    severity: f.severity,
                    state: AlertState::Resolved,
                    ts,
                    value: 0.0,
                    threshold: 0.0,
                });
            }
            *slot = Slot::default();
        }
        out
    }

    /// The most severe alert firing, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.slots
            .iter()
            .filter_map(|s| s.firing.map(|f| f.severity))
            .max()
    }

    /// Alerts firing now: kind, severity, since.
    pub fn firing(&self) -> impl Iterator<Item = (AlertKind, Severity, i64)> + '_ {
        AlertKind::ALL.into_iter().filter_map(|k| {
            self.slots[k.index()]
                .firing
                .map(|f| (k, f.severity, f.since))
        })
    }
}

fn checks(i: &RuleInput, r: &AlertRules) -> Vec<Check> {
    let mut out = Vec::with_capacity(4);
    if let Some(target) = i.target_bitrate.filter(|t| *t > 0.0) {
        let warn = target * r.bitrate_warning_pct / 100.0;
        let crit = target * r.bitrate_critical_pct / 100.0;
        let resolve = target * r.bitrate_resolve_pct / 100.0;
        out.push(Check {
            kind: AlertKind::BitrateDrop,
            value: i.bitrate_mean,
            breach: if i.bitrate_mean < crit {
                Some((Severity::Critical, crit))
            } else if i.bitrate_mean < warn {
                Some((Severity::Warning, warn))
            } else {
                None
            },
            good: i.bitrate_now >= resolve,
            resolve_threshold: resolve,
        });
    }
    if let Some(target) = i.target_fps.filter(|t| *t > 0.0) {
        let warn = target * r.fps_warning_pct / 100.0;
        let resolve = target * r.fps_resolve_pct / 100.0;
        out.push(Check {
            kind: AlertKind::FpsDrop,
            value: i.fps_mean,
            breach: (i.fps_mean < warn).then_some((Severity::Warning, warn)),
            good: i.fps_now >= resolve,
            resolve_threshold: resolve,
        });
    }
    if let (Some(mean), Some(now)) = (i.loss_mean, i.loss_now) {
        out.push(Check {
            kind: AlertKind::PacketLoss,
            value: mean,
            breach: if mean > r.loss_critical_pct {
                Some((Severity::Critical, r.loss_critical_pct))
            } else if mean > r.loss_warning_pct {
                Some((Severity::Warning, r.loss_warning_pct))
            } else {
                None
            },
            good: now <= r.loss_resolve_pct,
            resolve_threshold: r.loss_resolve_pct,
        });
    }
    if let (Some(mean), Some(now)) = (i.latency_mean, i.latency_now) {
        out.push(Check {
            kind: AlertKind::HighLatency,
            value: mean,
            breach: (mean > r.latency_warning_ms)
                .then_some((Severity::Warning, r.latency_warning_ms)),
            good: now <= r.latency_resolve_ms,
            resolve_threshold: r.latency_resolve_ms,
        });
    }
    out
}

/// The one-line message of a transition.
pub fn message(t: &Transition) -> String {
    let resolved = t.state == AlertState::Resolved;
    match (t.kind, resolved) {
        (AlertKind::BitrateDrop, false) => format!(
            "Bitrate is {:.0} kbps over the last 10 s, below {:.0} kbps",
            t.value, t.threshold
        ),
        (AlertKind::FpsDrop, false) => format!(
            "Frame rate is {:.1} fps over the last 10 s, below {:.1} fps",
            t.value, t.threshold
        ),
        (AlertKind::PacketLoss, false) => format!(
            "Packet loss is {:.1} % over the last 10 s, above {:.1} %",
            t.value, t.threshold
        ),
        (AlertKind::HighLatency, false) => format!(
            "Latency is {:.0} ms over the last 10 s, above {:.0} ms",
            t.value, t.threshold
        ),
        (AlertKind::ConnectionLost, false) => format!(
            "No data from the encoder for {:.0} s",
            (t.value / 1000.0).max(t.threshold / 1000.0)
        ),
        (kind, true) if t.threshold == 0.0 => {
            format!("{} cleared: the stream ended", kind.as_str())
        }
        (AlertKind::ConnectionLost, true) => "The encoder is sending again".to_string(),
        (kind, true) => format!("{} recovered", kind.as_str()),
    }
}

/// What usually causes an alert and what to try (one line each).
pub fn guide(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::BitrateDrop => {
            "Usually upload bandwidth: close other uploads on your network, use a wired connection, or lower the output bitrate/resolution in your encoder."
        }
        AlertKind::FpsDrop => {
            "Usually an overloaded encoder: switch to a faster preset or hardware encoding (NVENC/QuickSync), lower the resolution, or close heavy programs."
        }
        AlertKind::PacketLoss => {
            "Packets are lost between you and the ingest server: prefer a wired connection over Wi-Fi, pick a closer ingest server, or lower your bitrate."
        }
        AlertKind::HighLatency => {
            "The path to the ingest server is slow: pick a closer ingest server, check for other traffic on your network, or reduce the encoder's buffer."
        }
        AlertKind::ConnectionLost => {
            "Your encoder stopped sending: check that it is still streaming and that your internet connection is up; reconnecting within the grace period keeps the stream live."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn input(ts: i64, mean: f64, now: f64) -> RuleInput {
        RuleInput {
            ts,
            samples: 10,
            bitrate_mean: mean,
            bitrate_now: now,
            fps_mean: 60.0,
            fps_now: 60.0,
            target_bitrate: Some(5000.0),
            target_fps: Some(60.0),
            ..RuleInput::default()
        }
    }

    #[test]
    fn fires_escalates_and_resolves_after_a_good_run() {
        let r = AlertRules::default();
        let mut b = AlertBook::default();
        assert!(b.evaluate(&input(0, 4000.0, 4000.0), &r, 5).is_empty());
        let t = b.evaluate(&input(1000, 3400.0, 3000.0), &r, 5);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].severity, t[0].threshold), (Severity::Warning, 3500.0));
        let t = b.evaluate(&input(2000, 1900.0, 1000.0), &r, 5);
        assert_eq!(
            (t[0].severity, t[0].state),
            (Severity::Critical, AlertState::Firing)
        );
        // 10 s of good reports: resolved at the 11th.
        for k in 0..10 {
            assert!(
                b.evaluate(&input(3000 + k * 1000, 3000.0, 4500.0), &r, 5)
                    .is_empty()
            );
        }
        let t = b.evaluate(&input(13_000, 4500.0, 4500.0), &r, 5);
        assert_eq!(
            (t[0].state, t[0].severity),
            (AlertState::Resolved, Severity::Critical)
        );
        assert_eq!(b.worst(), None);
    }

    #[test]
    fn too_few_samples_fire_nothing_and_missing_targets_skip_rules() {
        let r = AlertRules::default();
        let mut b = AlertBook::default();
        let mut i = input(0, 100.0, 100.0);
        i.samples = 2;
        assert!(b.evaluate(&i, &r, 5).is_empty());
        i.samples = 10;
        i.target_bitrate = None;
        assert!(b.evaluate(&i, &r, 5).is_empty());
    }

    #[test]
    fn connection_lost_fires_once_and_resolves_on_the_next_report() {
        let r = AlertRules::default();
        let mut b = AlertBook::default();
        assert!(b.connection_lost(5000, 5000, &r).is_some());
        assert!(b.connection_lost(6000, 6000, &r).is_none());
        assert_eq!(b.worst(), Some(Severity::Critical));
        let t = b.connection_back(9000, &r).expect("resolves");
        assert_eq!(t.state, AlertState::Resolved);
        assert!(b.connection_back(9500, &r).is_none());
    }

    proptest! {
        /// Whatever the values, transitions of one kind alternate firing → (escalation) →
        /// resolved, and two `resolved` are never adjacent; a bitrate that never goes
        /// below the fire threshold fires nothing.
        #[test]
        fn transitions_alternate(values in proptest::collection::vec(0.0f64..8000.0, 1..200)) {
            let r = AlertRules::default();
            let mut b = AlertBook::default();
            let mut firing = false;
            for (k, v) in values.iter().enumerate() {
                for t in b.evaluate(&input(k as i64 * 1000, *v, *v), &r, 1) {
                    match t.state {
                        AlertState::Firing => { prop_assert!(!firing || t.severity == Severity::Critical); firing = true; }
                        AlertState::Resolved => { prop_assert!(firing); firing = false; }
                    }
                }
            }
        }

        #[test]
        fn values_above_the_threshold_never_fire(values in proptest::collection::vec(3500.0f64..8000.0, 1..100)) {
            let r = AlertRules::default();
            let mut b = AlertBook::default();
            for (k, v) in values.iter().enumerate() {
                prop_assert!(b.evaluate(&input(k as i64 * 1000, *v, *v), &r, 1).is_empty());
            }
        }
    }
}
