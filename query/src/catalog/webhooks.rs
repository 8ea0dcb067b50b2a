//! Platform webhook checks: `X-Pulse-Signature: sha256=<hex HMAC-SHA256 of the raw
//! body>` compared in constant time, timestamps within the tolerance, and a record of
//! applied deliveries so a redelivery changes nothing.

use super::{Catalog, now_ms};
use crate::QueryError;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The signature header value for `body` under `secret` (what a sender computes).
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the signature header of `body` (pure; constant-time comparison).
pub fn verify_signature(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), QueryError> {
    if secret.is_empty() {
        return Err(QueryError::Unauthorized(
            "webhooks are disabled: the webhook_secret setting is empty".into(),
        ));
    }
    let Some(header) = header else {
        return Err(QueryError::Unauthorized(
            "missing X-Pulse-Signature header".into(),
        ));
    };
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return Err(QueryError::Unauthorized(
            "X-Pulse-Signature: expected sha256=<hex>".into(),
        ));
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return Err(QueryError::Unauthorized(
            "X-Pulse-Signature: expected sha256=<hex>, the hex does not decode".into(),
        ));
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .map_err(|e| QueryError::Unauthorized(format!("webhook secret: {e}")))?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| QueryError::Unauthorized("X-Pulse-Signature does not match the body".into()))
}

/// Refuses a `ts` more than `tolerance_s` from `now_ms` (pure).
pub fn check_fresh(ts: i64, now_ms: i64, tolerance_s: i64) -> Result<(), QueryError> {
    if (now_ms - ts).abs() > tolerance_s.saturating_mul(1000) {
        return Err(QueryError::invalid(
            "ts",
            format!("{ts} is more than {tolerance_s} s from the server's time {now_ms}"),
        ));
    }
    Ok(())
}

impl Catalog {
    /// Whether this exact body was applied before.
    pub async fn delivery_seen(&self, body: &[u8]) -> Result<bool, QueryError> {
        let row = sqlx::query("SELECT body_hash FROM webhook_deliveries WHERE body_hash = $1")
            .bind(hex::encode(Sha256::digest(body)))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Records an applied delivery; old records (past twice the tolerance, when a
    /// redelivery would be refused as stale anyway) are pruned.
    pub async fn delivery_applied(&self, body: &[u8]) -> Result<(), QueryError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO webhook_deliveries (body_hash, received_at) VALUES ($1, $2) ON CONFLICT (body_hash) DO NOTHING",
        )
        .bind(hex::encode(Sha256::digest(body)))
        .bind(now)
        .execute(self.pool())
        .await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(now - self.config().webhook_tolerance_s.saturating_mul(2000))
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let body = br#"{"a":1}"#;
        let sig = sign("s3cret", body);
        assert!(verify_signature("s3cret", body, Some(&sig)).is_ok());
        assert!(verify_signature("other", body, Some(&sig)).is_err());
        assert!(verify_signature("s3cret", br#"{"a":2}"#, Some(&sig)).is_err());
        assert!(verify_signature("s3cret", body, None).is_err());
        assert!(verify_signature("s3cret", body, Some("sha256=zz")).is_err());
        assert!(verify_signature("", body, Some(&sig)).is_err());
        // Independent HMAC-SHA256 test vector (RFC 4231 case 2).
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn freshness() {
        assert!(check_fresh(1_000_000, 1_000_000 + 300_000, 300).is_ok());
        assert!(check_fresh(1_000_000, 1_000_000 + 300_001, 300).is_err());
        assert!(check_fresh(1_000_000 + 300_001, 1_000_000, 300).is_err());
    }
}
