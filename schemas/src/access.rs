//! Who may do what, and the stream lifecycle: the contract between the parts that
//! hold the records (the catalog in `pulse-query`) and the parts that need them
//! (encoder ingest in `pulse-ingest`, the analytics routes, the live feed).
//!
//! The catalog implements [`AccessControl`]; the binary hands one `Arc<dyn
//! AccessControl>` to every server. [`StaticAccess`] is the in-memory implementation
//! for tests and tools: tokens and stream keys given up front, lifecycle changes
//! kept in a bounded list.
//!
//! Secrets (tokens, stream keys) are compared through [`constant_time_eq`], so the
//! time a wrong guess takes says nothing about the right one.

use crate::Id;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// What a bearer token may see (PROTOCOL.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Public data and their own watch history.
    Viewer,
    /// Their own channels' analytics, health and alerts.
    Creator,
    /// Everything, including `POST /api/sql` and the platform mirror routes.
    Admin,
}

/// The holder of a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: Id,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A stream's lifecycle status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StreamStatus {
    Live,
    Ended,
}

/// Where a lifecycle change came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleSource {
    /// An encoder socket opened (LIVE) or sent `{"type":"end"}` (ENDED).
    Encoder,
    /// No encoder came back within the grace period after `connection_lost` (ENDED).
    GraceExpired,
    /// `POST /api/webhooks/stream`.
    Webhook,
}

/// One LIVE or ENDED transition of a stream, at `ts` (epoch ms).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LifecycleChange {
    pub stream: Id,
    pub channel: Id,
    pub status: StreamStatus,
    pub ts: i64,
    pub source: LifecycleSource,
}

/// Why an access check could not be answered (not "no": that is `Ok(None)`/`Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("access records unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so [`AccessControl`] can be used as `dyn`.
pub type AccessFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AccessError>> + Send + 'a>>;

/// Tokens, channel ownership, stream keys and lifecycle records.
pub trait AccessControl: Send + Sync + 'static {
    /// The principal of a bearer token, `None` when the token is unknown or revoked.
    fn principal<'a>(&'a self, token: &'a str) -> AccessFuture<'a, Option<Principal>>;

    /// Whether `who` may read `channel`'s private analytics (its owner or an admin).
    fn can_read_channel<'a>(
        &'a self,
        who: &'a Principal,
        channel: &'a Id,
    ) -> AccessFuture<'a, bool>;

    /// The channel of `stream` when `key` is its current stream key, else `None`.
    fn verify_stream_key<'a>(
        &'a self,
        stream: &'a Id,
        key: &'a str,
    ) -> AccessFuture<'a, Option<Id>>;

    /// Records a lifecycle change (idempotent: the same change twice is one change).
    fn record_lifecycle<'a>(&'a self, change: LifecycleChange) -> AccessFuture<'a, ()>;
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// In-memory [`AccessControl`] for tests and tools.
#[derive(Debug, Default)]
pub struct StaticAccess {
    tokens: HashMap<String, Principal>,
    owners: HashMap<Id, Id>,
    keys: HashMap<Id, (String, Id)>,
    lifecycle: Mutex<Vec<LifecycleChange>>,
}

/// How many lifecycle changes [`StaticAccess`] keeps (the oldest are dropped).
pub const STATIC_LIFECYCLE_CAP: usize = 10_000;

impl StaticAccess {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a bearer token.
    pub fn with_token(mut self, token: &str, user: Id, role: Role) -> Self {
        self.tokens
            .insert(token.to_owned(), Principal { user, role });
        self
    }

    /// Makes `user` the owner of `channel`.
    pub fn with_channel(mut self, channel: Id, owner: Id) -> Self {
        self.owners.insert(channel, owner);
        self
    }

    /// Gives `stream` of `channel` the stream key `key`.
    pub fn with_stream_key(mut self, stream: Id, channel: Id, key: &str) -> Self {
        self.keys.insert(stream, (key.to_owned(), channel));
        self
    }

    /// The lifecycle changes recorded so far, oldest first.
    pub fn lifecycle(&self) -> Vec<LifecycleChange> {
        self.lifecycle.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl AccessControl for StaticAccess {
    fn principal<'a>(&'a self, token: &'a str) -> AccessFuture<'a, Option<Principal>> {
        let found = self
            .tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t.as_bytes(), token.as_bytes()))
            .map(|(_, p)| p.clone());
        Box::pin(async move { Ok(found) })
    }

    fn can_read_channel<'a>(
        &'a self,
        who: &'a Principal,
        channel: &'a Id,
    ) -> AccessFuture<'a, bool> {
        let ok = who.is_admin() || self.owners.get(channel) == Some(&who.user);
        Box::pin(async move { Ok(ok) })
    }

    fn verify_stream_key<'a>(
        &'a self,
        stream: &'a Id,
        key: &'a str,
    ) -> AccessFuture<'a, Option<Id>> {
        let channel = self
            .keys
            .get(stream)
            .filter(|(k, _)| constant_time_eq(k.as_bytes(), key.as_bytes()))
            .map(|(_, c)| c.clone());
        Box::pin(async move { Ok(channel) })
    }

    fn record_lifecycle<'a>(&'a self, change: LifecycleChange) -> AccessFuture<'a, ()> {
        let result = match self.lifecycle.lock() {
            Ok(mut list) => {
                if !list.contains(&change) {
                    if list.len() >= STATIC_LIFECYCLE_CAP {
                        list.remove(0);
                    }
                    list.push(change);
                }
                Ok(())
            }
            Err(_) => Err(AccessError::Unavailable("lifecycle list poisoned".into())),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::parse(s).expect("id")
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[tokio::test]
    async fn static_access_answers_tokens_owners_and_keys() {
        let acl = StaticAccess::new()
            .with_token("t-admin", id("root"), Role::Admin)
            .with_token("t-alice", id("alice"), Role::Creator)
            .with_channel(id("c1"), id("alice"))
            .with_stream_key(id("s1"), id("c1"), "key-1");
        let alice = acl.principal("t-alice").await.expect("ok").expect("known");
        assert_eq!(alice.role, Role::Creator);
        assert!(acl.principal("t-nobody").await.expect("ok").is_none());
        assert!(acl.can_read_channel(&alice, &id("c1")).await.expect("ok"));
        assert!(!acl.can_read_channel(&alice, &id("c2")).await.expect("ok"));
        let admin = acl.principal("t-admin").await.expect("ok").expect("known");
        assert!(acl.can_read_channel(&admin, &id("c2")).await.expect("ok"));
        assert_eq!(
            acl.verify_stream_key(&id("s1"), "key-1").await.expect("ok"),
            Some(id("c1"))
        );
        assert_eq!(
            acl.verify_stream_key(&id("s1"), "key-2").await.expect("ok"),
            None
        );
        let change = LifecycleChange {
            stream: id("s1"),
            channel: id("c1"),
            status: StreamStatus::Live,
            ts: 1,
            source: LifecycleSource::Encoder,
        };
        acl.record_lifecycle(change.clone()).await.expect("ok");
        acl.record_lifecycle(change.clone()).await.expect("ok");
        assert_eq!(acl.lifecycle(), vec![change]);
    }
}
