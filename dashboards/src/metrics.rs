//! Prometheus metrics of the dashboard routes (prefix `pulse_dashboards_`), in the
//! default registry that `/metrics` renders.

use prometheus::{IntCounterVec, Opts};
use std::sync::LazyLock;

fn register(c: IntCounterVec) -> IntCounterVec {
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone()))
        && !matches!(e, prometheus::Error::AlreadyReg)
    {
        tracing::warn!(error = %e, "could not register a dashboard metric");
    }
    c
}

/// `pulse_dashboards_logins_total{result}`: `ok`, `unknown_token`, `bad_next`, `bad_request`.
pub static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_dashboards_logins_total",
        "Dashboard sign-ins by outcome",
    );
    register(IntCounterVec::new(opts, &["result"]).expect("valid metric definition"))
});

/// `pulse_dashboards_files_served_total{kind}`: `page`, `asset`, `missing`.
pub static FILES_SERVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_dashboards_files_served_total",
        "Dashboard pages and assets answered",
    );
    register(IntCounterVec::new(opts, &["kind"]).expect("valid metric definition"))
});

/// Registers every metric (so they show at 0 before the first request).
pub fn init() {
    LazyLock::force(&LOGINS);
    LazyLock::force(&FILES_SERVED);
}
