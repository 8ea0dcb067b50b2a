//! Bearer tokens (stored as SHA-256, compared in constant time) and the catalog's
//! [`AccessControl`] implementation.

use super::{Catalog, new_secret, now_ms, secret_hash};
use crate::QueryError;
use pulse_schemas::Id;
use pulse_schemas::access::{
    AccessControl, AccessError, AccessFuture, LifecycleChange, Principal, Role, constant_time_eq,
};
use sqlx::Row;

/// The user id of the `admin_token` setting's principal.
pub const SETTINGS_ADMIN: &str = "admin";

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Creator => "creator",
        Role::Admin => "admin",
    }
}

pub fn parse_role(raw: &str) -> Option<Role> {
    match raw {
        "viewer" => Some(Role::Viewer),
        "creator" => Some(Role::Creator),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

impl Catalog {
    /// Mints a token for `user` with `role`; the token itself is only returned here.
    pub async fn mint_token(&self, user: &Id, role: Role) -> Result<String, QueryError> {
        let token = new_secret();
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(secret_hash(&token))
        .bind(user.as_str().to_owned())
        .bind(role_name(role))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The principal of `token`, `None` when unknown or revoked.
    pub async fn token_principal(&self, token: &str) -> Result<Option<Principal>, QueryError> {
        let admin = &self.secrets().admin_token;
        if !admin.is_empty() && constant_time_eq(admin.as_bytes(), token.as_bytes()) {
            return Ok(Some(Principal {
                user: Id::new_unchecked(SETTINGS_ADMIN),
                role: Role::Admin,
            }));
        }
        let hash = secret_hash(token);
        let row = sqlx::query(
            "SELECT token_hash, user_id, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash.clone())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("token_hash")?;
        if !constant_time_eq(stored.as_bytes(), hash.as_bytes()) {
            return Ok(None);
        }
        let user: String = row.try_get("user_id")?;
        let role: String = row.try_get("role")?;
        let role = parse_role(&role)
            .ok_or_else(|| QueryError::Store(format!("token with unknown role {role:?}")))?;
        let user = Id::parse(&user).map_err(|e| QueryError::Store(format!("token user: {e}")))?;
        Ok(Some(Principal { user, role }))
    }

    /// The owner of `channel`, `None` when the channel is unknown.
    pub async fn channel_owner(&self, channel: &Id) -> Result<Option<String>, QueryError> {
        let row = sqlx::query("SELECT owner FROM channels WHERE id = $1")
            .bind(channel.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("owner")?),
            None => None,
        })
    }

    /// Whether `who` owns `channel` or is an admin.
    pub async fn may_manage_channel(
        &self,
        who: &Principal,
        channel: &str,
    ) -> Result<bool, QueryError> {
        if who.is_admin() {
            return Ok(true);
        }
        let row = sqlx::query("SELECT owner FROM channels WHERE id = $1")
            .bind(channel.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<String, _>("owner")? == who.user.as_str(),
            None => false,
        })
    }

    /// The channel of `stream` when `key` is its current key.
    pub async fn stream_key_channel(
        &self,
        stream: &Id,
        key: &str,
    ) -> Result<Option<Id>, QueryError> {
        let row = sqlx::query(
            "SELECT k.key_hash, s.channel FROM stream_keys k JOIN streams s ON s.id = k.stream WHERE k.stream = $1",
        )
        .bind(stream.as_str().to_owned())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("key_hash")?;
        if !constant_time_eq(stored.as_bytes(), secret_hash(key).as_bytes()) {
            return Ok(None);
        }
        let channel: String = row.try_get("channel")?;
        Ok(Id::parse(&channel).ok())
    }
}

fn unavailable(e: QueryError) -> AccessError {
    AccessError::Unavailable(e.to_string())
}

impl AccessControl for Catalog {
    fn principal<'a>(&'a self, token: &'a str) -> AccessFuture<'a, Option<Principal>> {
        Box::pin(async move { self.token_principal(token).await.map_err(unavailable) })
    }

    fn can_read_channel<'a>(
        &'a self,
        who: &'a Principal,
        channel: &'a Id,
    ) -> AccessFuture<'a, bool> {
        Box::pin(async move {
            self.may_manage_channel(who, channel.as_str())
                .await
                .map_err(unavailable)
        })
    }

    fn verify_stream_key<'a>(
        &'a self,
        stream: &'a Id,
        key: &'a str,
    ) -> AccessFuture<'a, Option<Id>> {
        Box::pin(async move {
            self.stream_key_channel(stream, key)
                .await
                .map_err(unavailable)
        })
    }

    fn record_lifecycle<'a>(&'a self, change: LifecycleChange) -> AccessFuture<'a, ()> {
        Box::pin(async move {
            self.apply_lifecycle(&change)
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }
}
