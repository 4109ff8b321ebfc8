//! Authentication: every request but the health checks carries
//! `Authorization: Bearer <token>`, where the token is either
//! - a **JWT** of a member, verified with the configured HS256 secret, the
//!   RS256/EdDSA public key, or the identity provider's key set ([`jwks`],
//!   `RENKEI_JWT_JWKS_URL`) — issuer, audience, expiry and not-before checked —
//!   whose member claim (`sub` unless `RENKEI_JWT_MEMBER_CLAIM` says otherwise)
//!   is the member's id, or the subject an administrator recorded for the
//!   member (`RENKEI_JWT_MEMBER_BY=external-subject`); or
//! - an **API key** of an organisation's system (`rk_…`, see
//!   `renkei_schema::services::api_keys`).
//!
//! Anything else is `UNAUTHENTICATED`, and the request gets no data.
//!
//! [`jwks`]: crate::jwks

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use renkei_schema::Principal;
use renkei_schema::cache::TtlCache;
use renkei_schema::error::{ApiError, ApiResult};
use renkei_schema::graphql::loaders::{MemberDataLoader, member_principal};
use renkei_schema::services::members;
use renkei_schema::services::{api_keys, api_keys::ApiKeyCache};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{AuthConfig, MemberBy};
use crate::jwks::{Jwks, JwksSettings};

/// The HS256 key of the demo region. It is public (it is in this source), so the
/// server accepts it only when no key of the operator's is configured, and
/// `renkei serve` refuses to start on it without `--demo`.
pub const DEMO_JWT_SECRET: &str = "renkei-demo-key: public, for the fictional demo region only";

/// The shortest HS256 secret accepted: 256 bits, the size of the MAC.
const MIN_SECRET_BYTES: usize = 32;

/// Allowed clock difference between token issuer and hub.
const LEEWAY_SECONDS: u64 = 30;

/// How long a subject at the identity provider is remembered as naming a
/// member. Each use checks it against the member's (directory-cached) row,
/// so a subject moved to another member or cleared is not followed for
/// this long: this only spares a database read.
const SUBJECT_CACHE: Duration = Duration::from_secs(300);
/// Bounds the subject cache's memory (a region has a few thousand members).
const SUBJECT_CACHE_MAX: usize = 50_000;

/// What authentication reads from a verified token: the claims, of which the
/// member claim (`sub` or the configured one) and `exp` — checked by the
/// validation; kept to end long-lived WebSocket sessions when the token
/// expires.
type TokenClaims = serde_json::Map<String, serde_json::Value>;

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

/// Where the key that verifies a member's token comes from.
enum Keys {
    /// One key of the operator's (or the demo key), of one algorithm.
    Fixed(DecodingKey),
    /// The identity provider's key set; the token's `kid` picks the key.
    Jwks(Arc<Jwks>),
}

pub struct Authenticator {
    db: DatabaseConnection,
    keys: Keys,
    /// Issuer, audience, required claims; for a JWKS, the algorithm is set
    /// per token to the one its key was accepted for.
    validation: Validation,
    member_claim: String,
    member_by: MemberBy,
    /// The issuer whose subjects name members (`MemberBy::ExternalSubject`).
    issuer: String,
    /// Subject → member id (see [`SUBJECT_CACHE`]).
    subjects: TtlCache<String, Uuid>,
    api_keys: Arc<ApiKeyCache>,
    /// The schema's member loader: members are read through the directory cache.
    members: Arc<MemberDataLoader>,
}

impl Authenticator {
    /// Checks the configuration (a bad one fails here, at start) and, for a
    /// JWKS, fetches the identity provider's keys once and keeps them fresh.
    pub async fn new(
        config: &AuthConfig,
        db: DatabaseConnection,
        demo: bool,
        api_keys: Arc<ApiKeyCache>,
        members: Arc<MemberDataLoader>,
    ) -> anyhow::Result<Self> {
        let member_claim = config.jwt_member_claim.trim();
        if member_claim.is_empty() {
            anyhow::bail!(
                "RENKEI_JWT_MEMBER_CLAIM is empty: name the claim that names the member (e.g. sub)"
            );
        }
        let (keys, algorithm) = match key_source(config, demo)? {
            KeySource::Fixed(key, algorithm) => (Keys::Fixed(key), algorithm),
            KeySource::Jwks(settings) => {
                let first = settings.algorithms[0];
                (Keys::Jwks(Jwks::start(settings).await?), first)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        let mut required = vec!["exp", "iss", "aud"];
        if member_claim == "sub" {
            required.push("sub");
        }
        validation.set_required_spec_claims(&required);
        // A token not valid yet is refused, not only an expired one.
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(Authenticator {
            db,
            keys,
            validation,
            member_claim: member_claim.to_string(),
            member_by: config.jwt_member_by,
            issuer: config.jwt_issuer.clone(),
            subjects: TtlCache::new(SUBJECT_CACHE, SUBJECT_CACHE_MAX),
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
        // Issuer, audience (a string or an array, as identity providers send
        // it), expiry and not-before are checked by the validation; `iat` is
        // optional.
        let claims = self.verify(token).await?;
        let named = match claims.get(&self.member_claim) {
            Some(serde_json::Value::String(v)) if !v.is_empty() => v.as_str(),
            _ => {
                return Err(ApiError::Unauthenticated(format!(
                    "the token has no {:?} claim naming a member",
                    self.member_claim
                )));
            }
        };
        let principal = match self.member_by {
            MemberBy::Id => {
                let member_id = Uuid::try_parse(named).map_err(|_| {
                    ApiError::Unauthenticated(format!(
                        "the token's {:?} is not a member id",
                        self.member_claim
                    ))
                })?;
                member_principal(&self.members, member_id).await?
            }
            MemberBy::ExternalSubject => self.member_by_subject(named).await?,
        };
        Ok(Authenticated {
            principal,
            // A NumericDate may have a fraction (the validation accepts it):
            // a session must still end then.
            expires_at: claims
                .get("exp")
                .and_then(|exp| {
                    exp.as_u64()
                        .or_else(|| exp.as_f64().map(|f| f.max(0.0) as u64))
                })
                .map(|exp| std::time::UNIX_EPOCH + Duration::from_secs(exp)),
        })
    }

    /// The verified claims of a JWT, or why it is refused.
    async fn verify(&self, token: &str) -> ApiResult<TokenClaims> {
        let refused = |e: jsonwebtoken::errors::Error| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired",
                ErrorKind::InvalidIssuer => "the token's issuer is not accepted",
                ErrorKind::InvalidAudience => "the token's audience is not this hub",
                ErrorKind::ImmatureSignature => "the token is not valid yet",
                ErrorKind::InvalidSignature => "the token's signature is not valid",
                ErrorKind::InvalidAlgorithm => "the token's signing algorithm is not accepted",
                ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                _ => "the token is not a valid JWT for this hub",
            };
            ApiError::Unauthenticated(why.into())
        };
        let data = match &self.keys {
            Keys::Fixed(key) => decode::<TokenClaims>(token, key, &self.validation),
            Keys::Jwks(jwks) => {
                let header = decode_header(token).map_err(refused)?;
                let (key, algorithm) = jwks
                    .key_for(&header)
                    .await
                    .map_err(|why| ApiError::Unauthenticated(why.message().into()))?;
                // Exactly the algorithm the key was accepted for.
                let mut validation = self.validation.clone();
                validation.algorithms = vec![algorithm];
                decode::<TokenClaims>(token, &key, &validation)
            }
        };
        Ok(data.map_err(refused)?.claims)
    }

    /// The member the identity provider calls `subject` (see
    /// [`SUBJECT_CACHE`]): the cached id is used only while that member's
    /// row still names the subject.
    async fn member_by_subject(&self, subject: &str) -> ApiResult<Principal> {
        let names = |m: &entities::member::Model| {
            m.external_issuer.as_deref() == Some(self.issuer.as_str())
                && m.external_subject.as_deref() == Some(subject)
        };
        let key = subject.to_string();
        if let Ok(id) = self.subjects.get(&key) {
            if let Some(m) = self.members.load_one(id).await?
                && names(&m)
            {
                return members::principal_of(&m);
            }
            // Moved or cleared since: forget it, and look again.
            self.subjects.retain(|cached| *cached != id);
        }
        // `None` when another request has just remembered it again.
        let miss = self.subjects.get(&key).err();
        let member = members::by_external_subject(&self.db, &self.issuer, subject)
            .await?
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the token's subject is not recorded for any member (an administrator records it with setMemberExternalSubject)"
                        .into(),
                )
            })?;
        if let Some(miss) = miss {
            self.subjects.store(miss, key, member.id);
        }
        members::principal_of(&member)
    }
}

/// Where member tokens' keys come from, from the configuration.
enum KeySource {
    Fixed(DecodingKey, Algorithm),
    Jwks(JwksSettings),
}

fn key_source(config: &AuthConfig, demo: bool) -> anyhow::Result<KeySource> {
    if let Some(url) = &config.jwt_jwks_url {
        if config.jwt_secret.is_some() || config.jwt_public_key_file.is_some() {
            anyhow::bail!(
                "RENKEI_JWT_JWKS_URL is set together with RENKEI_JWT_SECRET or RENKEI_JWT_PUBLIC_KEY_FILE: configure one way to verify member tokens"
            );
        }
        return Ok(KeySource::Jwks(JwksSettings::from_config(config, url)?));
    }
    let (key, algorithm) = decoding_key(config, demo)?;
    Ok(KeySource::Fixed(key, algorithm))
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
            "no JWT key configured: set RENKEI_JWT_SECRET (HS256), RENKEI_JWT_PUBLIC_KEY_FILE \
             (RS256/EdDSA) or RENKEI_JWT_JWKS_URL (an identity provider's keys), or start the \
             demo with `renkei serve --demo`"
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
    if config.jwt_member_by != MemberBy::Id || config.jwt_member_claim != "sub" {
        anyhow::bail!(
            "demo tokens carry the member id in `sub`, but the hub is configured to find members otherwise (RENKEI_JWT_MEMBER_CLAIM, RENKEI_JWT_MEMBER_BY)"
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
