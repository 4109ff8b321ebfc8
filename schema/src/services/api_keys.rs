//! API keys of organisations' systems.
//!
//! A key reads `rk_<key id>_<secret>`: the id finds the row, the secret is
//! checked against a hash of it. Only the hash is stored; the whole key is
//! returned once, by [`create`]. Callers cache successful verifications
//! briefly (see the server's auth module), which saves the row's lookup.
//!
//! The hash is SHA-256 ([`SHA256_SCHEME`]): the secret is 32 random bytes,
//! 256 bits no guessing reaches, so a slow password hash adds nothing to
//! its safety in a stolen table — and verifying with one (argon2, as keys
//! made before were stored) cost ≈ 25 ms of a core per attempt, so a flood
//! of wrong secrets for a known key id, sent with no token at all, queued
//! every system's first verification behind it. Keys stored with argon2
//! are still verified with it.

use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cache::TtlCache;
use crate::domain::Text;
use crate::error::{ApiError, ApiResult};
use crate::policy::AdminAccess;
use crate::principal::{Principal, SystemPermissions};
use entities::api_key;

const PREFIX: &str = "rk_";

#[derive(Debug)]
pub struct NewApiKey {
    pub organization_id: Uuid,
    pub name: Text,
    /// What the system may do for its organisation, per data category.
    pub permissions: SystemPermissions,
}

/// Creates a key and returns it with its plaintext, which is never stored.
pub async fn create(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &crate::audit::AuditStamp,
    new: NewApiKey,
) -> ApiResult<(api_key::Model, String)> {
    super::organizations::ensure_exists(db, "input.organizationId", new.organization_id).await?;
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    let hash = format!("{SHA256_SCHEME}{:x}", Sha256::digest(secret.as_bytes()));
    let id = super::new_id();
    let model = api_key::ActiveModel {
        id: Set(id),
        organization_id: Set(new.organization_id),
        name: Set(new.name.into_inner()),
        secret_hash: Set(hash),
        created_at: Set(crate::clock::system_now()),
        revoked_at: Set(None),
        permissions: Set(new.permissions.to_json()),
    };
    let txn = super::begin_write(db).await?;
    let inserted = api_key::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    let entry = stamp.administration(format!(
        "API key {} created for organisation {} with permissions {}",
        inserted.id, inserted.organization_id, inserted.permissions
    ));
    crate::audit::append_in(&txn, &[&entry], inserted.created_at).await?;
    txn.commit().await?;
    let plaintext = format!("{PREFIX}{}_{secret}", id.simple());
    Ok((inserted, plaintext))
}

pub async fn revoke(
    db: &DatabaseConnection,
    _admin: AdminAccess,
    stamp: &crate::audit::AuditStamp,
    id: Uuid,
) -> ApiResult<api_key::Model> {
    let txn = super::begin_write(db).await?;
    // Locked as read (PostgreSQL; SQLite's write transaction already is):
    // two revocations at once would both find it live, and the log tell it
    // revoked twice.
    let found = super::locked(&txn, api_key::Entity::find_by_id(id))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    if found.revoked_at.is_some() {
        return Err(ApiError::Conflict("the API key is already revoked".into()));
    }
    let mut active: api_key::ActiveModel = found.into();
    let now = crate::clock::system_now();
    active.revoked_at = Set(Some(now));
    let updated = active.update(&txn).await?;
    let entry = stamp.administration(format!("API key {id} revoked"));
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn of_organization(
    db: &DatabaseConnection,
    organization_id: Uuid,
) -> ApiResult<Vec<api_key::Model>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::OrganizationId.eq(organization_id))
        .order_by_asc(api_key::Column::Id)
        .all(db)
        .await?)
}

/// Whether a bearer token looks like an API key rather than a JWT.
pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Verifies an API key and returns the principal of its organisation's system.
pub async fn authenticate(db: &DatabaseConnection, token: &str) -> ApiResult<Principal> {
    let invalid = || ApiError::Unauthenticated("the API key is not valid".into());
    let rest = token.strip_prefix(PREFIX).ok_or_else(invalid)?;
    let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    let key = api_key::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    if !secret_matches(&key.secret_hash, secret).await? {
        return Err(invalid());
    }
    // Said only to whoever holds the secret: a key id is no secret (a
    // care team's access history shows it), and "revoked" for any secret
    // told anyone which keys had been revoked.
    if key.revoked_at.is_some() {
        return Err(ApiError::Unauthenticated(
            "the API key has been revoked".into(),
        ));
    }
    if !key.secret_hash.starts_with(SHA256_SCHEME) {
        upgrade_hash(db, &key, secret).await;
    }
    Ok(Principal::System {
        api_key_id: key.id,
        organization_id: key.organization_id,
        permissions: SystemPermissions::from_json(&key.permissions)?,
    })
}

/// Stores a key verified with argon2 as [`create`] stores keys now, so
/// that a flood of wrong secrets for it no longer takes argon2's time
/// from everyone (the secret is known here, once, on its holder's
/// request). Only where the row still holds the hash just checked; a
/// failure is logged and the key keeps working with argon2.
async fn upgrade_hash(db: &DatabaseConnection, key: &api_key::Model, secret: &str) {
    use sea_orm::sea_query::Expr;
    let hash = format!("{SHA256_SCHEME}{:x}", Sha256::digest(secret.as_bytes()));
    let updated = api_key::Entity::update_many()
        .col_expr(api_key::Column::SecretHash, Expr::value(hash))
        .filter(api_key::Column::Id.eq(key.id))
        .filter(api_key::Column::SecretHash.eq(key.secret_hash.as_str()))
        .exec(db)
        .await;
    if let Err(e) = updated {
        tracing::warn!(error = %e, api_key = %key.id, "an argon2 API key hash could not be replaced by its SHA-256");
    }
}

/// How [`create`] stores a secret: `sha256:` and the hex digest.
const SHA256_SCHEME: &str = "sha256:";

/// Whether `secret` is the one `stored` is the hash of: a SHA-256 digest
/// ([`SHA256_SCHEME`]), or an argon2id PHC string (keys created before).
async fn secret_matches(stored: &str, secret: &str) -> ApiResult<bool> {
    if let Some(digest) = stored.strip_prefix(SHA256_SCHEME) {
        let given = format!("{:x}", Sha256::digest(secret.as_bytes()));
        // Compared without stopping at the first difference (a digest's
        // prefix is no use to a guesser, but there is no cost to it).
        return Ok(digest.len() == given.len()
            && digest
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0);
    }
    let hash = stored.to_string();
    let secret = secret.to_string();
    // argon2 is CPU-heavy by design: keep it off the async executor's
    // threads, and run at most two at a time — wrong secrets for a known
    // key id, sent in a loop without any token, otherwise took every core
    // (valid keys are cached once verified, `ApiKeyCache`).
    static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = VERIFYING.acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let hash = PasswordHash::new(hash.as_str()).map_err(ApiError::internal)?;
        Ok(Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}

/// Remembers successful API-key verifications for a short time, so that a
/// system making many requests is looked up once per `ttl`, not per request.
/// Entries are keyed by a SHA-256 of the whole key, never the key itself.
/// Revoking a key on this instance forgets it at once; other instances forget
/// it when the revocation event reaches them (through Redis), or at the latest
/// when their entry expires (`ttl` later).
pub struct ApiKeyCache(TtlCache<[u8; 32], Principal>);

/// Bounds the cache's memory: past this many live keys it is simply cleared.
const CACHE_MAX: usize = 10_000;

impl ApiKeyCache {
    pub fn new(ttl: Duration) -> Self {
        ApiKeyCache(TtlCache::new(ttl, CACHE_MAX))
    }

    pub async fn authenticate(&self, db: &DatabaseConnection, token: &str) -> ApiResult<Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // A key revoked while it was being verified is not cached as valid:
        // see `TtlCache`.
        let miss = match self.0.get(&digest) {
            Ok(principal) => return Ok(principal),
            Err(miss) => miss,
        };
        let principal = authenticate(db, token).await?;
        self.0.store(miss, digest, principal.clone());
        Ok(principal)
    }

    /// Forgets every key (after missed revocations).
    pub fn clear(&self) {
        self.0.clear();
    }

    /// Forgets a revoked key.
    pub fn forget(&self, api_key_id: Uuid) {
        self.0.retain(
            |p| !matches!(p, Principal::System { api_key_id: id, .. } if *id == api_key_id),
        );
    }
}
