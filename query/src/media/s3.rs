//! `S3Config`: the `[media_s3]` section — an S3-compatible bucket (Cloudflare R2, AWS S3,
//! MinIO, …) for generated media instead of the local `media_dir`. Empty `bucket`
//! (the default) keeps the local directory. Every other key has the default shown in its
//! comment; like every key, each can be set by a `PULSE_MEDIA_S3__<KEY>` variable, which
//! is the way to pass the secret without writing it in the file.

use crate::QueryError;
use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The smallest part S3 accepts in a multipart upload (except the last one).
pub const S3_MIN_PART_BYTES: usize = 5 * 1024 * 1024;

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name; empty (default) means no S3: media stays in `media_dir`.
    pub bucket: String,
    /// Endpoint URL, e.g. `https://<account>.r2.cloudflarestorage.com` for R2; empty
    /// (default) means AWS's endpoint of `region`.
    pub endpoint: String,
    /// Signing region. Default `us-east-1` (R2 takes `auto` or `us-east-1`).
    pub region: String,
    /// Access key id; required when `bucket` is set. Default empty.
    pub access_key_id: String,
    /// Secret access key; required when `bucket` is set. Default empty: prefer
    /// `PULSE_MEDIA_S3__SECRET_ACCESS_KEY` to writing it in the file.
    pub secret_access_key: String,
    /// `true`: `https://<bucket>.<endpoint host>/<key>` requests (virtual-hosted style);
    /// `false` (default): `<endpoint>/<bucket>/<key>` (path style, which R2, MinIO and
    /// local test servers take).
    pub virtual_hosted_style: bool,
    /// Allow a plain `http://` endpoint (a local server). Default false.
    pub allow_http: bool,
    /// Public base URL of the bucket (an R2 custom domain or `r2.dev` URL, a CDN): the
    /// `clip_url`/`thumbnail` links are `<public_url>/<key>`. Empty (default): links use
    /// `catalog.media_base_url`, whose `/media/*` route reads the bucket.
    pub public_url: String,
    /// Time limit of one request to the store. Default 30 s.
    pub request_timeout_s: u64,
    /// Retries of a request that failed in a way worth retrying (5xx, connection),
    /// with exponential backoff, within `retry_timeout_s`. Defaults 3 and 60 s. A
    /// refused request (4xx: wrong key, no bucket) is not retried here; the media job
    /// is, up to `catalog.media_max_attempts`.
    pub max_retries: usize,
    pub retry_timeout_s: u64,
    /// Files up to this size are uploaded with one PUT, larger ones in parts of this
    /// size (multipart upload, 2 parts in flight). Default 8 MiB; at least 5 MiB on S3
    /// and R2 (their smallest part).
    pub part_bytes: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            virtual_hosted_style: false,
            allow_http: false,
            public_url: String::new(),
            request_timeout_s: 30,
            max_retries: 3,
            retry_timeout_s: 60,
            part_bytes: 8 * 1024 * 1024,
        }
    }
}

// By hand so that the secret never reaches a log line.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("allow_http", &self.allow_http)
            .field("public_url", &self.public_url)
            .field("request_timeout_s", &self.request_timeout_s)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout_s", &self.retry_timeout_s)
            .field("part_bytes", &self.part_bytes)
            .finish()
    }
}

impl S3Config {
    /// Whether media goes to S3 (a bucket is named).
    pub fn enabled(&self) -> bool {
        !self.bucket.is_empty()
    }

    /// Checks the settings (pure); the message names the key and what came.
    pub fn check(&self) -> Result<(), QueryError> {
        let bad = |key: &'static str, msg: String| QueryError::invalid(key, msg);
        if !self.enabled() {
            return Ok(());
        }
        if self.access_key_id.is_empty() || self.secret_access_key.is_empty() {
            return Err(bad(
                "media_s3.secret_access_key",
                "media_s3.access_key_id and media_s3.secret_access_key must both be set when \
                 media_s3.bucket is (the secret e.g. by PULSE_MEDIA_S3__SECRET_ACCESS_KEY)"
                    .into(),
            ));
        }
        let endpoint_ok = self.endpoint.is_empty()
            || self.endpoint.starts_with("https://")
            || (self.allow_http && self.endpoint.starts_with("http://"));
        if !endpoint_ok {
            return Err(bad(
                "media_s3.endpoint",
                format!(
                    "expected an https:// URL (http:// only with allow_http = true), got {:?}",
                    self.endpoint
                ),
            ));
        }
        if self.part_bytes == 0 {
            return Err(bad(
                "media_s3.part_bytes",
                "expected a size > 0, got 0".into(),
            ));
        }
        if self.request_timeout_s == 0 {
            return Err(bad(
                "media_s3.request_timeout_s",
                "expected > 0 s, got 0".into(),
            ));
        }
        Ok(())
    }

    /// The `object_store` client of these settings (no request is made).
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>, QueryError> {
        self.check()?;
        let options = ClientOptions::new()
            .with_allow_http(self.allow_http)
            .with_timeout(Duration::from_secs(self.request_timeout_s))
            .with_connect_timeout(Duration::from_secs(self.request_timeout_s.min(10)));
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.max_retries,
            retry_timeout: Duration::from_secs(self.retry_timeout_s),
        };
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_virtual_hosted_style_request(self.virtual_hosted_style)
            .with_allow_http(self.allow_http)
            .with_client_options(options)
            .with_retry(retry);
        if !self.endpoint.is_empty() {
            b = b.with_endpoint(&self.endpoint);
        }
        let store = b
            .build()
            .map_err(|e| QueryError::Media(format!("media_s3 settings: {e}")))?;
        Ok(Arc::new(store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> S3Config {
        S3Config {
            bucket: "media".into(),
            endpoint: "https://acc.r2.cloudflarestorage.com".into(),
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
            ..S3Config::default()
        }
    }

    #[test]
    fn off_by_default_and_checked_when_on() {
        assert!(!S3Config::default().enabled());
        assert!(S3Config::default().check().is_ok());
        assert!(on().check().is_ok());
        let no_secret = S3Config {
            secret_access_key: String::new(),
            ..on()
        };
        assert!(no_secret.check().is_err());
        let http = S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            ..on()
        };
        let err = http.check().expect_err("http without allow_http");
        assert!(err.to_string().contains("allow_http"), "{err}");
        assert!(
            S3Config {
                allow_http: true,
                ..http
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let text = format!("{:?}", on());
        assert!(!text.contains("secret\""), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
