//! [`HealthService`]: the running stream-health component. It owns the pure
//! [`HealthEngine`] behind a mutex, and around it the I/O: lifecycle records through
//! `AccessControl`, the alert fan-out to live feeds, durable rule overrides, the
//! once-a-second sweeper, and the closed rows the sink picks up at its flush.
//!
//! **Fast path.** An encoder report is evaluated when it arrives (on the socket's
//! task, a few microseconds under the mutex); each alert transition is serialized once
//! and sent on a bounded `tokio::sync::broadcast` channel that every live feed
//! subscribes to. A feed that falls more than `alert_channel_capacity` messages behind
//! gets `Lagged`, counts it, and re-sends the current state instead. So a tripped rule
//! reaches the creator's socket without waiting for any flush or store round trip.
//!
//! **Store path.** Closed `health_ticks` and every alert transition are queued in the
//! engine (bounded, oldest dropped and counted) and moved into the `ClosedWindows` of
//! the next aggregator flush by [`crate::sinks::with_health::WithHealthRows`].

use crate::AggregatorError;
use crate::alerts;
use crate::health::{HealthEngine, HealthOutput, HealthSettings};
use crate::health_config::HealthConfig;
use crate::metrics::HealthMetrics;
use crate::rule_overrides::RuleOverrides;
use crate::runtime::Clock;
use pulse_schemas::{
    AccessControl, AlertBroadcast, AlertRow, AlertRules, EncoderReport, HealthTickRow, Id,
    LifecycleChange, LiveHealth, LiveUpdate, Rejection, RulesError, StreamHealthNow,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The stream-health component of one node.
pub struct HealthService {
    engine: Mutex<HealthEngine>,
    alerts: broadcast::Sender<AlertBroadcast>,
    overrides: Arc<dyn RuleOverrides>,
    access: Arc<dyn AccessControl>,
    clock: Clock,
    config: HealthConfig,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService")
            .field("config", &self.config)
            .finish()
    }
}

impl HealthService {
    /// Builds the service and loads the stored rule overrides.
    pub fn new(
        config: HealthConfig,
        node: Id,
        tick_ms: i64,
        access: Arc<dyn AccessControl>,
        overrides: Arc<dyn RuleOverrides>,
        clock: Clock,
    ) -> Result<Arc<HealthService>, AggregatorError> {
        config.validate()?;
        let mut engine = HealthEngine::new(HealthSettings {
            node,
            tick_ms: tick_ms.max(1),
            grace_ms: config.grace_ms,
            min_window_samples: config.min_window_samples,
            skew_threshold_ms: config.skew_threshold_ms,
            max_streams: config.max_streams,
            max_pending_rows: config.max_pending_rows,
        });
        for (channel, rules) in overrides.load_all()? {
            engine.set_rules(channel, rules);
        }
        let (alerts, _) = broadcast::channel(config.alert_channel_capacity);
        Ok(Arc::new(HealthService {
            engine: Mutex::new(engine),
            alerts,
            overrides,
            access,
            clock,
            config,
        }))
    }

    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    pub fn access(&self) -> &Arc<dyn AccessControl> {
        &self.access
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    fn engine(&self) -> MutexGuard<'_, HealthEngine> {
        // A panic while holding the lock would be a bug in pure code; keep serving.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes alerts at once; returns the lifecycle changes to record.
    fn publish(&self, outputs: Vec<HealthOutput>) -> Vec<LifecycleChange> {
        let m = HealthMetrics::get();
        let mut changes = Vec::new();
        for o in outputs {
            match o {
                HealthOutput::Alert { channel, update } => {
                    m.alerts_total.inc();
                    let json: Arc<str> = serde_json::to_string(&LiveUpdate::Alert(update.clone()))
                        .unwrap_or_default()
                        .into();
                    // No subscriber is fine: nobody is watching.
                    let _ = self.alerts.send(AlertBroadcast {
                        channel,
                        alert: update,
                        json,
                    });
                }
                HealthOutput::Lifecycle(c) => changes.push(c),
            }
        }
        changes
    }

    async fn record(&self, changes: Vec<LifecycleChange>) {
        for c in changes {
            if let Err(e) = self.access.record_lifecycle(c.clone()).await {
                HealthMetrics::get().lifecycle_errors_total.inc();
                tracing::error!(error = %e, stream = %c.stream, status = ?c.status, "lifecycle change not recorded");
            }
        }
    }

    /// An encoder socket of `stream` (of `channel`, from its verified key) opened.
    pub async fn connect(&self, stream: &Id, channel: &Id) -> Result<(), Rejection> {
        let outputs = {
            let mut e = self.engine();
            let out = e.connect(self.now(), stream, channel)?;
            HealthMetrics::get().streams.set(e.len() as i64);
            out
        };
        let changes = self.publish(outputs);
        self.record(changes).await;
        Ok(())
    }

    /// One validated report; alerts it trips are on the feeds when this returns.
    pub fn report(&self, stream: &Id, report: EncoderReport) -> Result<(), Rejection> {
        let outputs = self.engine().report(self.now(), stream, report)?;
        HealthMetrics::get().reports_total.inc();
        let changes = self.publish(outputs);
        debug_assert!(changes.is_empty(), "a report never changes the lifecycle");
        Ok(())
    }

    /// An encoder socket closed, after `{"type":"end"}` when `ended`.
    pub async fn disconnect(&self, stream: &Id, ended: bool) {
        let outputs = {
            let mut e = self.engine();
            let out = e.disconnect(self.now(), stream, ended);
            HealthMetrics::get().streams.set(e.len() as i64);
            out
        };
        let changes = self.publish(outputs);
        self.record(changes).await;
    }

    /// Silence, grace expiry and silent ticks, at the clock's now.
    pub async fn sweep(&self) {
        let outputs = {
            let mut e = self.engine();
            let out = e.sweep(self.now());
            HealthMetrics::get().streams.set(e.len() as i64);
            out
        };
        let changes = self.publish(outputs);
        self.record(changes).await;
    }

    /// Sweeps every `sweep_interval_ms` until `shutdown`.
    pub async fn run_sweeper(self: Arc<Self>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_millis(self.config.sweep_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => self.sweep().await,
            }
        }
    }

    /// Closed rows for the store (taken once).
    pub fn take_rows(&self) -> (Vec<HealthTickRow>, Vec<AlertRow>) {
        let mut e = self.engine();
        let dropped = std::mem::take(&mut e.dropped_rows);
        HealthMetrics::get().dropped_rows_total.inc_by(dropped);
        e.take_rows()
    }

    /// Puts rows back after a failed store write (still bounded by the engine).
    pub fn give_back(&self, ticks: Vec<HealthTickRow>, alert_rows: Vec<AlertRow>) {
        let mut e = self.engine();
        e.restore_rows(ticks, alert_rows);
    }
}

impl LiveHealth for HealthService {
    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn subscribe(&self) -> broadcast::Receiver<AlertBroadcast> {
        self.alerts.subscribe()
    }

    fn channel_now(&self, channel: &Id, now: i64) -> Vec<StreamHealthNow> {
        self.engine().channel_now(channel, now)
    }

    fn stream_now(&self, stream: &Id, now: i64) -> Option<StreamHealthNow> {
        self.engine().stream_now(stream, now)
    }

    fn rules(&self, channel: &Id) -> AlertRules {
        self.engine().rules(channel).clone()
    }

    fn set_rules(&self, channel: &Id, rules: AlertRules) -> Result<(), RulesError> {
        rules.validate().map_err(RulesError::Invalid)?;
        self.overrides
            .save(channel, &rules)
            .map_err(|e| RulesError::Storage(e.to_string()))?;
        self.engine().set_rules(channel.clone(), rules);
        Ok(())
    }
}

/// The guide line of an alert kind (re-exported for the demo and docs).
pub fn guide(kind: pulse_schemas::AlertKind) -> &'static str {
    alerts::guide(kind)
}
