//! pulse-dashboards: the creator dashboard (issue 7), built from `web/` by esbuild and
//! embedded in the binary, with the routes that serve it and the sign-in.
//!
//! Modules:
//! - [`assets`]: the embedded files (written by `build.rs` into `OUT_DIR`), their content
//!   types and caching: hashed assets `public, max-age=31536000, immutable`, pages
//!   `no-cache` (so a new binary's page names its new assets at once); the gzip-9 copy
//!   the build makes of each file goes to clients that accept gzip (`Vary: Accept-Encoding`).
//! - [`login`]: `GET /dashboard/login?token=&next=` trades an API token for the session
//!   cookie and redirects to `next`; `GET /dashboard/logout` clears it.
//! - [`config`]: `DashboardConfig` (`[dashboard]` in the configuration file).
//! - [`error`]: the crate's error enum and its HTML/JSON answer; [`metrics`]: `pulse_dashboards_*`.
//!
//! Design choices:
//! - **A crate of its own, mounted by the binary.** DESIGN.md gives `dashboards/` its own
//!   package; keeping the Node build and the embedded bytes out of `pulse-query` means
//!   the query crate (and its DataFusion build) never waits for npm, and a query-only
//!   node does not carry the app. It depends on `pulse-query` only for the one auth
//!   helper ([`pulse_query::routes::auth`]) that reads the cookie this crate sets.
//! - **The session cookie holds the API token itself** (HttpOnly, SameSite=Strict,
//!   Path=/, `Max-Age` from the configuration, `Secure` when configured): stateless, so it
//!   survives restarts and works on every query node, and nothing new can leak — the page
//!   never sees the token (HttpOnly), and SameSite=Strict keeps other sites from riding
//!   it (no CSRF on the POST routes). Revoking the token ends the session.
//! - **`next` must be a same-site path** (`/` then not `/` or `\`, no control
//!   characters or backslashes); anything else is a 400 naming what was expected, never a
//!   redirect elsewhere (no open redirect).
//! - **The pages are public, the data is not**: the HTML and assets carry no data; every
//!   number comes from the API with the cookie, and a 401 there shows a sign-in prompt.
//! - **Build output in `OUT_DIR`**, not a committed or source-tree `dist/` (see build.rs).

#![forbid(unsafe_code)]

pub mod assets;
pub mod config;
pub mod error;
pub mod login;
pub mod metrics;

pub use config::DashboardConfig;
pub use error::DashboardError;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use pulse_schemas::AccessControl;
use std::sync::Arc;

/// State of the dashboard routes (cheap to clone).
#[derive(Clone)]
pub struct DashboardState {
    pub access: Arc<dyn AccessControl>,
    pub config: DashboardConfig,
}

impl std::fmt::Debug for DashboardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardState")
            .field("config", &self.config)
            .finish()
    }
}

/// `/dashboard` (→ analytics), `/dashboard/analytics`, `/dashboard/live`,
/// `/dashboard/assets/{file}`, `/dashboard/login`, `/dashboard/logout`.
pub fn router(state: DashboardState) -> Router {
    metrics::init();
    Router::new()
        .route(
            "/dashboard",
            get(|| async { Redirect::to("/dashboard/analytics") }),
        )
        .route(
            "/dashboard/",
            get(|| async { Redirect::to("/dashboard/analytics") }),
        )
        .route("/dashboard/analytics", get(assets::analytics_page))
        .route("/dashboard/live", get(assets::live_page))
        .route("/dashboard/assets/{file}", get(assets::asset))
        .route("/dashboard/login", get(login::login))
        .route("/dashboard/logout", get(login::logout))
        .with_state(state)
}
