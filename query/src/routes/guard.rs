//! Access to the analytics routes (PROTOCOL.md §4, issue 4 point 6): a bearer token
//! (`Authorization: Bearer` or `?token=`, as the live feed takes it) names a principal
//! through the [`AccessControl`](pulse_schemas::AccessControl) records; an admin reads
//! everything, a creator only the channels it owns (403 otherwise), no token 401.
//! Public counts (`/api/clips/:id/stats`, trending) need no token.
//!
//! A target's channel comes from the catalog (remembered in a bounded [`ChannelCache`]:
//! a target never changes channel), else from its stored rows when they all name the
//! same channel (not remembered: beacons name their own channel, so rows that disagree
//! make the target unknown, 404, to everyone but admins). An admin is never made to
//! wait for that lookup.

use crate::QueryState;
use crate::error::QueryError;
use crate::store::{ScopeKind, StoreSnapshot};
use pulse_schemas::{Id, Principal};
use std::collections::HashMap;
use std::sync::Mutex;

/// Target → channel, at most `cap` entries (full: not remembered, counted).
#[derive(Debug)]
pub struct ChannelCache {
    cap: usize,
    map: Mutex<HashMap<(u8, String), Id>>,
}

fn kind_key(kind: ScopeKind) -> u8 {
    match kind {
        ScopeKind::Stream => 0,
        ScopeKind::Vod => 1,
        ScopeKind::Clip => 2,
        ScopeKind::Channel => 3,
    }
}

impl ChannelCache {
    pub fn new(cap: usize) -> Self {
        ChannelCache {
            cap,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, kind: ScopeKind, id: &Id) -> Option<Id> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(kind_key(kind), id.as_str().to_owned())).cloned()
    }

    fn put(&self, kind: ScopeKind, id: &Id, channel: Id) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.cap {
            crate::metrics::CHANNEL_CACHE_FULL.inc();
            return;
        }
        map.insert((kind_key(kind), id.as_str().to_owned()), channel);
    }
}

/// The principal of `token`: `None` without a token, 401 for an unknown one.
pub async fn principal(
    state: &QueryState,
    token: Option<String>,
) -> Result<Option<Principal>, QueryError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let who = state
        .access()?
        .principal(&token)
        .await
        .map_err(|e| QueryError::Unavailable(e.to_string()))?
        .ok_or_else(|| QueryError::Unauthorized("unknown or revoked token".into()))?;
    Ok(Some(who))
}

/// The principal of `token`, 401 without one.
pub async fn require(state: &QueryState, token: Option<String>) -> Result<Principal, QueryError> {
    principal(state, token).await?.ok_or_else(|| {
        QueryError::Unauthorized(
            "expected `Authorization: Bearer <token>` (or `?token=`), got none".into(),
        )
    })
}

/// Whether `who` may read `channel`'s analytics.
pub async fn may_read(
    state: &QueryState,
    who: &Principal,
    channel: &Id,
) -> Result<bool, QueryError> {
    if who.is_admin() {
        return Ok(true);
    }
    state
        .access()?
        .can_read_channel(who, channel)
        .await
        .map_err(|e| QueryError::Unavailable(e.to_string()))
}

/// The principal of `token`, allowed to read `channel` (401 / 403 otherwise).
pub async fn require_channel(
    state: &QueryState,
    token: Option<String>,
    channel: &Id,
) -> Result<Principal, QueryError> {
    let who = require(state, token).await?;
    if !may_read(state, &who, channel).await? {
        return Err(QueryError::Forbidden(format!(
            "user {} may not read the analytics of channel {channel}",
            who.user
        )));
    }
    Ok(who)
}

/// The channel of a target: the catalog's record, else its stored rows; `None` when
/// neither knows it.
pub async fn channel_of(
    state: &QueryState,
    snap: &StoreSnapshot,
    kind: ScopeKind,
    id: &Id,
) -> Result<Option<Id>, QueryError> {
    if kind == ScopeKind::Channel {
        return Ok(Some(id.clone()));
    }
    let cache = state.channel_cache();
    if let Some(c) = cache.get(kind, id) {
        return Ok(Some(c));
    }
    let mut found: Option<String> = None;
    if let Some(cat) = state.catalog() {
        found = match kind {
            ScopeKind::Stream => cat.stream_record(id).await?.map(|r| r.channel),
            ScopeKind::Vod => cat.vod_record(id).await?.map(|r| r.channel),
            ScopeKind::Clip => cat.clip_record(id).await?.map(|r| r.channel),
            ScopeKind::Channel => None,
        };
    }
    if let Some(c) = found.and_then(|c| Id::parse(&c).ok()) {
        // The catalog's record is the owner's word: remembered.
        cache.put(kind, id, c.clone());
        return Ok(Some(c));
    }
    // Else the stored rows, only when they all name one channel, and not remembered:
    // beacons name their own channel, and the catalog may learn the owner later.
    let stored = state.with_timeout(snap.target_channel(kind, id)).await?;
    Ok(stored.and_then(|c| Id::parse(&c).ok()))
}

/// Whether `who` may read the analytics of the target `kind`/`id`: admins always;
/// others when they may read its channel (403), 404 when its channel is unknown (nothing
/// can be said about it).
pub async fn require_target(
    state: &QueryState,
    who: &Principal,
    snap: &StoreSnapshot,
    kind: ScopeKind,
    id: &Id,
) -> Result<(), QueryError> {
    if who.is_admin() {
        return Ok(());
    }
    let channel = channel_of(state, snap, kind, id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("no data for {} {id}", kind.param())))?;
    if !may_read(state, who, &channel).await? {
        return Err(QueryError::Forbidden(format!(
            "user {} may not read the analytics of channel {channel}",
            who.user
        )));
    }
    Ok(())
}

/// The bearer token of a request (`Authorization: Bearer` or `?token=`).
pub fn token(headers: &axum::http::HeaderMap, query_token: Option<&str>) -> Option<String> {
    crate::routes::health::bearer(headers, query_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_cache_is_bounded_and_keyed_by_kind() {
        let id = Id::new_unchecked;
        let c = ChannelCache::new(2);
        c.put(ScopeKind::Stream, &id("x"), id("c1"));
        c.put(ScopeKind::Clip, &id("x"), id("c2"));
        c.put(ScopeKind::Vod, &id("y"), id("c3"));
        assert_eq!(c.get(ScopeKind::Stream, &id("x")), Some(id("c1")));
        assert_eq!(c.get(ScopeKind::Clip, &id("x")), Some(id("c2")));
        assert_eq!(
            c.get(ScopeKind::Vod, &id("y")),
            None,
            "full: not remembered"
        );
    }
}
