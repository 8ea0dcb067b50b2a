//! `[dashboard]` settings.

use serde::{Deserialize, Serialize};

/// The dashboard's settings (all optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// How long a dashboard session cookie lives, in seconds (default 43 200: 12 h).
    pub session_max_age_s: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Default false: the
    /// embedded single node serves plain HTTP on localhost; set it behind TLS.
    pub secure_cookie: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            session_max_age_s: 12 * 3600,
            secure_cookie: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let c: DashboardConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, DashboardConfig::default());
        assert!(serde_json::from_str::<DashboardConfig>(r#"{"nope":1}"#).is_err());
    }
}
