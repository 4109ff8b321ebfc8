//! Authentication: every request but the health checks carries
//! `Authorization: Bearer <token>`, where the token is either
//! - a **JWT** whose subject is a member id, verified with the configured HS256
//!   secret or RS256/EdDSA public key (issuer, audience and expiry checked), or
//! - an **API key** of an organisation's system (`rk_…`, see
//!   `renkei_schema::services::api_keys`).
//!
//! Anything else is `UNAUTHENTICATED`, and the request gets no data.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use renkei_schema::Principal;
use renkei_schema::error::{ApiError, ApiResult};
use renkei_schema::graphql::loaders::{MemberDataLoader, member_principal};
use renkei_schema::services::{api_keys, api_keys::ApiKeyCache};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthConfig;

/// The HS256 key of the demo region. It is public (it is in this source), so the
/// server accepts it only when no key of the operator's is configured, and
/// `renkei serve` refuses to start on it without `--demo`.
pub const DEMO_JWT_SECRET: &str = "renkei-demo-key: public, for the fictional demo region only";

/// The shortest HS256 secret accepted: 256 bits, the size of the MAC.
const MIN_SECRET_BYTES: usize = 32;

/// Allowed clock difference between token issuer and hub.
const LEEWAY_SECONDS: u64 = 30;

/// What authentication reads from a verified token.
#[derive(Debug, Deserialize)]
struct Subject {
    sub: String,
    /// Checked by the validation; kept to end long-lived WebSocket sessions
    /// when the token expires.
    exp: Option<u64>,
}

/// An authenticated caller, and until when the credential holds (a JWT's
/// `exp`; `None` for API keys, which hold until revoked).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    pub expires_at: Option<std::time::SystemTime>,
}

/// The claims of tokens the hub signs itself (demo tokens).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
}

pub struct Authenticator {
    db: DatabaseConnection,
    key: DecodingKey,
    validation: Validation,
    api_keys: Arc<ApiKeyCache>,
    /// The schema's member loader: members are read through the directory cache.
    members: Arc<MemberDataLoader>,
}

impl Authenticator {
    pub fn new(
        config: &AuthConfig,
        db: DatabaseConnection,
        demo: bool,
        api_keys: Arc<ApiKeyCache>,
        members: Arc<MemberDataLoader>,
    ) -> anyhow::Result<Self> {
        let (key, algorithm) = decoding_key(config, demo)?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        // A token not valid yet is refused, not only an expired one.
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(Authenticator {
            db,
            key,
            validation,
            api_keys,
            members,
        })
    }

    /// Authenticates the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&str>) -> ApiResult<Principal> {
        self.authenticate_until(header).await.map(|a| a.principal)
    }

    /// [`Authenticator::authenticate`], with the credential's expiry.
    pub async fn authenticate_until(&self, header: Option<&str>) -> ApiResult<Authenticated> {
        let header = header.ok_or_else(|| {
            ApiError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <token>` (a member's JWT or a system's API key)"
                    .into(),
            )
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the Authorization header must read `Bearer <token>`".into(),
                )
            })?;
        if api_keys::looks_like_api_key(token) {
            return Ok(Authenticated {
                principal: self.api_keys.authenticate(&self.db, token).await?,
                expires_at: None,
            });
        }
        // Only the subject is read here: issuer, audience (a string or an array,
        // as identity providers send it), expiry and not-before are checked by
        // the validation; `iat` is optional.
        let data = decode::<Subject>(token, &self.key, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not this hub",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the token's signature is not valid",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is not a valid JWT for this hub",
            };
            ApiError::Unauthenticated(why.into())
        })?;
        let member_id = Uuid::try_parse(&data.claims.sub).map_err(|_| {
            ApiError::Unauthenticated("the token's subject is not a member id".into())
        })?;
        Ok(Authenticated {
            principal: member_principal(&self.members, member_id).await?,
            expires_at: data
                .claims
                .exp
                .map(|exp| std::time::UNIX_EPOCH + Duration::from_secs(exp)),
        })
    }
}

fn decoding_key(config: &AuthConfig, demo: bool) -> anyhow::Result<(DecodingKey, Algorithm)> {
    match (&config.jwt_secret, &config.jwt_public_key_file) {
        (Some(_), Some(_)) => anyhow::bail!(
            "both RENKEI_JWT_SECRET and RENKEI_JWT_PUBLIC_KEY_FILE are set: configure one"
        ),
        (Some(secret), None) => {
            if secret.len() < MIN_SECRET_BYTES {
                anyhow::bail!(
                    "RENKEI_JWT_SECRET is {} bytes; use at least {MIN_SECRET_BYTES} random bytes",
                    secret.len()
                );
            }
            Ok((
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ))
        }
        (None, Some(path)) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the JWT public key {}", path.display()))?;
            let key = match config.jwt_algorithm.as_str() {
                "RS256" => (DecodingKey::from_rsa_pem(&pem), Algorithm::RS256),
                "EdDSA" => (DecodingKey::from_ed_pem(&pem), Algorithm::EdDSA),
                other => anyhow::bail!(
                    "RENKEI_JWT_ALGORITHM {other:?} is not supported: use RS256 or EdDSA"
                ),
            };
            let decoding = key.0.with_context(|| {
                format!(
                    "{} is not a {} public key in PEM",
                    path.display(),
                    config.jwt_algorithm
                )
            })?;
            Ok((decoding, key.1))
        }
        (None, None) if demo => Ok((
            DecodingKey::from_secret(DEMO_JWT_SECRET.as_bytes()),
            Algorithm::HS256,
        )),
        (None, None) => anyhow::bail!(
            "no JWT key configured: set RENKEI_JWT_SECRET (HS256) or RENKEI_JWT_PUBLIC_KEY_FILE \
             (RS256/EdDSA), or start the demo with `renkei serve --demo`"
        ),
    }
}

/// Signs a token for a member with the demo key (`renkei demo-token`).
pub fn demo_token(config: &AuthConfig, member_id: Uuid, ttl: Duration) -> anyhow::Result<String> {
    if !config.uses_demo_key() {
        anyhow::bail!(
            "the demo key is not in use (a JWT key is configured): demo tokens would not be accepted"
        );
    }
    sign_hs256(DEMO_JWT_SECRET.as_bytes(), config, member_id, ttl)
}

/// Signs an HS256 token with the given secret and the configured issuer and audience.
pub fn sign_hs256(
    secret: &[u8],
    config: &AuthConfig,
    member_id: Uuid,
    ttl: Duration,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: member_id.to_string(),
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
        iat: now,
        exp: now + ttl.as_secs(),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .context("signing the token")
}
