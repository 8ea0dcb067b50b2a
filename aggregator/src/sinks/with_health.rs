//! [`WithHealthRows`]: a sink wrapper that adds the health component's closed rows
//! (`health_ticks`, `alerts`) to every flush, so whichever store sink is inside (the
//! embedded one, ClickHouse) writes them with the beacon windows, unchanged.

use super::{Provisional, WindowSink};
use crate::AggregatorError;
use crate::live_health::HealthService;
use pulse_schemas::ClosedWindows;
use std::sync::Arc;

/// `inner`, plus the health rows taken from `health` at each write.
pub struct WithHealthRows<S> {
    inner: S,
    health: Arc<HealthService>,
}

impl<S: WindowSink> WithHealthRows<S> {
    pub fn new(inner: S, health: Arc<HealthService>) -> Self {
        WithHealthRows { inner, health }
    }

    fn write_with_rows(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        let (health_ticks, alerts) = self.health.take_rows();
        if health_ticks.is_empty() && alerts.is_empty() {
            return self.inner.write(closed, provisional);
        }
        let merged = if closed.ticks.is_empty()
            && closed.sessions.is_empty()
            && closed.viewer_minutes.is_empty()
            && closed.qoe_minutes.is_empty()
        {
            ClosedWindows {
                health_ticks,
                alerts,
                closed_through: closed.closed_through,
                ..ClosedWindows::default()
            }
        } else {
            let mut c = closed.clone();
            c.health_ticks.extend(health_ticks);
            c.alerts.extend(alerts);
            c
        };
        let result = self.inner.write(&merged, provisional);
        if result.is_err() {
            self.health
                .give_back(merged.health_ticks.clone(), merged.alerts.clone());
        }
        result
    }
}

impl<S: WindowSink> WindowSink for WithHealthRows<S> {
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        self.write_with_rows(closed, provisional)
    }

    fn wants_provisional(&self) -> bool {
        self.inner.wants_provisional()
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        // The last rows (ticks closed by the sockets' shutdown) go out before the final flush.
        let none = ClosedWindows::default();
        let provisional = Provisional::default();
        if let Err(e) = self.write_with_rows(&none, &provisional) {
            tracing::error!(error = %e, "final health rows not written");
        }
        self.inner.shutdown()
    }
}
