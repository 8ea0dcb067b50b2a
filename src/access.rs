//! The access records `pulse serve` uses: the configuration's static records (the
//! `admin_token`, `[[stream_keys]]`, the demo's keys) in front of the catalog's
//! (tokens minted by `POST /api/tokens`, stream keys from `PUT /api/streams/:id`).
//! A token or key known to either is accepted; lifecycle changes go to both, so the
//! catalog archives VODs whichever encoder path raised them.

use pulse_schemas::access::AccessFuture;
use pulse_schemas::{AccessControl, Id, LifecycleChange, Principal};
use std::sync::Arc;

/// Two [`AccessControl`]s asked in order.
pub struct LayeredAccess {
    first: Arc<dyn AccessControl>,
    then: Arc<dyn AccessControl>,
}

impl LayeredAccess {
    pub fn new(first: Arc<dyn AccessControl>, then: Arc<dyn AccessControl>) -> Self {
        LayeredAccess { first, then }
    }
}

impl AccessControl for LayeredAccess {
    fn principal<'a>(&'a self, token: &'a str) -> AccessFuture<'a, Option<Principal>> {
        Box::pin(async move {
            match self.first.principal(token).await? {
                Some(p) => Ok(Some(p)),
                None => self.then.principal(token).await,
            }
        })
    }

    fn can_read_channel<'a>(
        &'a self,
        who: &'a Principal,
        channel: &'a Id,
    ) -> AccessFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.first.can_read_channel(who, channel).await?
                || self.then.can_read_channel(who, channel).await?)
        })
    }

    fn verify_stream_key<'a>(
        &'a self,
        stream: &'a Id,
        key: &'a str,
    ) -> AccessFuture<'a, Option<Id>> {
        Box::pin(async move {
            match self.first.verify_stream_key(stream, key).await? {
                Some(c) => Ok(Some(c)),
                None => self.then.verify_stream_key(stream, key).await,
            }
        })
    }

    fn record_lifecycle<'a>(&'a self, change: LifecycleChange) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            self.first.record_lifecycle(change.clone()).await?;
            self.then.record_lifecycle(change).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_schemas::{LifecycleSource, Role, StaticAccess, StreamStatus};

    fn id(s: &str) -> Id {
        Id::parse(s).expect("id")
    }

    #[tokio::test]
    async fn either_layer_grants_and_both_record() {
        let a = Arc::new(
            StaticAccess::new()
                .with_token("ta", id("alice"), Role::Creator)
                .with_stream_key(id("s1"), id("c1"), "k1"),
        );
        let b = Arc::new(
            StaticAccess::new()
                .with_token("tb", id("bob"), Role::Creator)
                .with_channel(id("c2"), id("bob"))
                .with_stream_key(id("s2"), id("c2"), "k2"),
        );
        let acl = LayeredAccess::new(a.clone(), b.clone());
        assert_eq!(
            acl.principal("ta").await.expect("ok").expect("a").user,
            id("alice")
        );
        let bob = acl.principal("tb").await.expect("ok").expect("b");
        assert!(acl.principal("tc").await.expect("ok").is_none());
        assert!(acl.can_read_channel(&bob, &id("c2")).await.expect("ok"));
        assert!(!acl.can_read_channel(&bob, &id("c1")).await.expect("ok"));
        assert_eq!(
            acl.verify_stream_key(&id("s2"), "k2").await.expect("ok"),
            Some(id("c2"))
        );
        assert_eq!(
            acl.verify_stream_key(&id("s1"), "k2").await.expect("ok"),
            None
        );
        let change = LifecycleChange {
            stream: id("s1"),
            channel: id("c1"),
            status: StreamStatus::Live,
            ts: 5,
            source: LifecycleSource::Encoder,
        };
        acl.record_lifecycle(change.clone()).await.expect("ok");
        assert_eq!(a.lifecycle(), vec![change.clone()]);
        assert_eq!(b.lifecycle(), vec![change]);
    }
}
