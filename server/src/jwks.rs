//! The identity provider's signing keys, from its JSON Web Key Set
//! (`RENKEI_JWT_JWKS_URL`, OpenID Connect's `jwks_uri`).
//!
//! A token names its key by `kid`. The keys are cached; a background task
//! fetches the set again when it is due (at most every
//! `RENKEI_JWT_JWKS_REFRESH_SECONDS`, sooner if the provider's
//! `Cache-Control: max-age` says so) and when a token names a key the cache
//! does not hold — the provider has rotated its keys. Fetches are never
//! closer together than `RENKEI_JWT_JWKS_MIN_REFRESH_SECONDS`, however many
//! tokens with unknown key ids arrive, so a flood of made-up `kid`s cannot
//! turn the hub into a client hammering the provider.
//!
//! A request waits for a fetch at most `RENKEI_JWT_JWKS_TIMEOUT_MS`; a failed
//! fetch keeps the keys already held (an unreachable provider does not log
//! everyone out). If the provider cannot be reached when the hub starts, the
//! hub starts anyway — API keys, health checks and the rest work — refuses
//! member tokens with `UNAUTHENTICATED`, logs why, and keeps trying.
//!
//! Which keys are used: only asymmetric ones (`RSA`, `EC`, `OKP`; a
//! symmetric `oct` key in a public set is ignored), only for signatures
//! (`use` absent or `sig`, `key_ops` absent or with `verify`), with a `kid`,
//! and only for an algorithm of `RENKEI_JWT_JWKS_ALGORITHMS` that fits the
//! key (its `alg` if it names one, else its type and curve). HS* and `none`
//! cannot be configured, so a token signed with HMAC over a public key
//! (algorithm confusion) is refused before any key is looked at.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::config::AuthConfig;

/// The largest key set read (a provider's set is a few kilobytes).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Redirects followed to reach the set (each to `https`).
const MAX_REDIRECTS: usize = 3;
/// The longest `RENKEI_JWT_JWKS_TIMEOUT_MS`: a request must not wait longer.
const MAX_TIMEOUT_MS: u64 = 30_000;

/// Why a token could not be given a key; the message reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    AlgorithmNotAccepted,
    NoKeyId,
    UnknownKey,
    KeyDoesNotFitAlgorithm,
    /// No key set has been fetched yet (the provider has not answered).
    NoKeys,
}

impl KeyRefusal {
    pub fn message(&self) -> &'static str {
        match self {
            KeyRefusal::AlgorithmNotAccepted => "the token's signing algorithm is not accepted",
            KeyRefusal::NoKeyId => "the token does not name its signing key (kid)",
            KeyRefusal::UnknownKey => {
                "the token's signing key is not one of the identity provider's"
            }
            KeyRefusal::KeyDoesNotFitAlgorithm => {
                "the token's signing key is not for the token's algorithm"
            }
            KeyRefusal::NoKeys => {
                "the identity provider's keys are not available yet; try again shortly"
            }
        }
    }
}

/// The validated settings of the key set.
#[derive(Clone, Debug)]
pub struct JwksSettings {
    pub url: reqwest::Url,
    pub algorithms: Vec<Algorithm>,
    pub refresh: Duration,
    pub min_refresh: Duration,
    pub timeout: Duration,
}

impl JwksSettings {
    /// The settings from the configuration, or a message saying what to fix.
    pub fn from_config(config: &AuthConfig, url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .with_context(|| format!("RENKEI_JWT_JWKS_URL {url:?} is not a URL"))?;
        if !secure_url(&parsed) {
            anyhow::bail!(
                "RENKEI_JWT_JWKS_URL {url:?} must be https (plain http only to a loopback address): \
                 keys fetched in clear could be replaced on the way"
            );
        }
        let algorithms = parse_algorithms(&config.jwt_jwks_algorithms)?;
        if config.jwt_jwks_min_refresh_seconds == 0 {
            anyhow::bail!(
                "RENKEI_JWT_JWKS_MIN_REFRESH_SECONDS must be at least 1: it keeps unknown key ids from hammering the identity provider"
            );
        }
        if config.jwt_jwks_refresh_seconds < config.jwt_jwks_min_refresh_seconds {
            anyhow::bail!(
                "RENKEI_JWT_JWKS_REFRESH_SECONDS ({}) must be at least RENKEI_JWT_JWKS_MIN_REFRESH_SECONDS ({})",
                config.jwt_jwks_refresh_seconds,
                config.jwt_jwks_min_refresh_seconds
            );
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&config.jwt_jwks_timeout_ms) {
            anyhow::bail!(
                "RENKEI_JWT_JWKS_TIMEOUT_MS must be between 1 and {MAX_TIMEOUT_MS} (requests wait this long at most)"
            );
        }
        Ok(JwksSettings {
            url: parsed,
            algorithms,
            refresh: Duration::from_secs(config.jwt_jwks_refresh_seconds),
            min_refresh: Duration::from_secs(config.jwt_jwks_min_refresh_seconds),
            timeout: Duration::from_millis(config.jwt_jwks_timeout_ms),
        })
    }
}

/// `https`, or `http` to this machine (a provider or proxy beside the hub).
fn secure_url(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// `RS256,EdDSA` → the algorithms; HS*, `none` and unknown names refused.
fn parse_algorithms(list: &str) -> anyhow::Result<Vec<Algorithm>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let alg = match name {
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            "EdDSA" => Algorithm::EdDSA,
            "HS256" | "HS384" | "HS512" => anyhow::bail!(
                "RENKEI_JWT_JWKS_ALGORITHMS: {name} is symmetric; a JWKS publishes public keys, and \
                 accepting HMAC with them would let anyone sign tokens (use RENKEI_JWT_SECRET for HS256)"
            ),
            "none" | "None" | "NONE" => {
                anyhow::bail!(
                    "RENKEI_JWT_JWKS_ALGORITHMS: unsigned tokens (`none`) are never accepted"
                )
            }
            other => anyhow::bail!(
                "RENKEI_JWT_JWKS_ALGORITHMS: unknown algorithm {other:?}; use RS256, RS384, RS512, \
                 PS256, PS384, PS512, ES256, ES384 or EdDSA"
            ),
        };
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        anyhow::bail!("RENKEI_JWT_JWKS_ALGORITHMS names no algorithm (e.g. RS256)");
    }
    Ok(out)
}

/// A usable key of the set.
#[derive(Clone)]
struct SigningKey {
    key: DecodingKey,
    /// The algorithms the key may verify: its `alg`, or those its type allows.
    algorithms: Vec<Algorithm>,
}

/// The identity provider's keys, kept fresh.
pub struct Jwks {
    settings: JwksSettings,
    client: reqwest::Client,
    /// The keys of the last successful fetch, by `kid` (`None`: none yet).
    keys: RwLock<Option<Arc<HashMap<String, SigningKey>>>>,
    /// When the last fetch began; fetches are at least `min_refresh` apart.
    last_attempt: Mutex<Option<Instant>>,
    /// Asks the background task for a fetch (a token named an unknown key).
    wake: Arc<Notify>,
    /// A fetch has been asked for since the last one began (a wake-up
    /// without it is a leftover, already served).
    requested: Arc<AtomicBool>,
    /// Counts finished fetches, for requests waiting for one.
    attempts: watch::Sender<u64>,
}

impl Jwks {
    /// Fetches the set once (waiting at most the configured timeout) and
    /// starts the task that keeps it fresh. A provider that does not answer
    /// is logged, not fatal: see the module documentation.
    pub async fn start(settings: JwksSettings) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if secure_url(attempt.url()) {
                    attempt.follow()
                } else {
                    attempt.error("a redirect away from https")
                }
            }))
            .user_agent(concat!("renkei/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client of the JWKS")?;
        let (attempts, _) = watch::channel(0);
        let jwks = Arc::new(Jwks {
            settings,
            client,
            keys: RwLock::new(None),
            last_attempt: Mutex::new(None),
            wake: Arc::new(Notify::new()),
            requested: Arc::new(AtomicBool::new(false)),
            attempts,
        });
        let next = match jwks.fetch_now().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(
                    url = %jwks.settings.url,
                    error = %format!("{e:#}"),
                    "the identity provider's JWKS cannot be fetched: member tokens are refused (UNAUTHENTICATED) until it answers; API keys still work; retrying"
                );
                jwks.settings.min_refresh
            }
        };
        tokio::spawn(keep_fresh(
            Arc::downgrade(&jwks),
            jwks.wake.clone(),
            jwks.requested.clone(),
            jwks.settings.min_refresh,
            next,
        ));
        Ok(jwks)
    }

    /// The key a token's header names, fit for its algorithm. An unknown
    /// `kid` asks for a fetch and waits for it when one can happen within the
    /// timeout.
    pub async fn key_for(
        &self,
        header: &jsonwebtoken::Header,
    ) -> Result<(DecodingKey, Algorithm), KeyRefusal> {
        let alg = header.alg;
        if !self.settings.algorithms.contains(&alg) {
            return Err(KeyRefusal::AlgorithmNotAccepted);
        }
        let kid = header.kid.as_deref().ok_or(KeyRefusal::NoKeyId)?;
        match self.lookup(kid, alg) {
            Err(KeyRefusal::UnknownKey | KeyRefusal::NoKeys) => {}
            found => return found,
        }
        // The provider may have rotated its keys: fetch again, if a fetch is
        // allowed soon enough to be worth waiting for.
        let mut finished = self.attempts.subscribe();
        finished.borrow_and_update();
        let deadline = Instant::now() + self.settings.timeout;
        let soonest = self.next_fetch_allowed();
        self.requested.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        // A fetch the rate limit puts past the deadline is not waited for:
        // the token is refused at once (it comes later, for later tokens).
        if soonest < deadline {
            let _ = tokio::time::timeout_at(deadline, finished.changed()).await;
        }
        self.lookup(kid, alg)
    }

    fn lookup(&self, kid: &str, alg: Algorithm) -> Result<(DecodingKey, Algorithm), KeyRefusal> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(KeyRefusal::NoKeys)?;
        let key = keys.get(kid).ok_or(KeyRefusal::UnknownKey)?;
        if !key.algorithms.contains(&alg) {
            return Err(KeyRefusal::KeyDoesNotFitAlgorithm);
        }
        Ok((key.key.clone(), alg))
    }

    fn next_fetch_allowed(&self) -> Instant {
        match *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(at) => at + self.settings.min_refresh,
            None => Instant::now(),
        }
    }

    /// Fetches the set and, if it is one, puts its keys in place. Returns
    /// when the next fetch is due. Waiting requests are told either way.
    async fn fetch_now(&self) -> anyhow::Result<Duration> {
        *self.last_attempt.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        let fetched = self.fetch().await;
        let mut changed = false;
        if let Ok((keys, _)) = &fetched {
            let mut held = self.keys.write().unwrap_or_else(|e| e.into_inner());
            changed = held.as_ref().is_none_or(|old| {
                old.len() != keys.len() || keys.keys().any(|k| !old.contains_key(k))
            });
            *held = Some(Arc::new(keys.clone()));
        }
        self.attempts.send_modify(|n| *n += 1);
        let (keys, max_age) = fetched?;
        let mut kids: Vec<&String> = keys.keys().collect();
        kids.sort();
        if changed {
            tracing::info!(url = %self.settings.url, ?kids, "the identity provider's keys");
        } else {
            tracing::debug!(url = %self.settings.url, ?kids, "the identity provider's keys, unchanged");
        }
        if keys.is_empty() {
            tracing::warn!(
                url = %self.settings.url,
                "the identity provider's JWKS holds no key the hub can use: member tokens are refused"
            );
        }
        // The provider's max-age may shorten the wait, never lengthen it past
        // the operator's bound, nor shorten it below the rate limit.
        Ok(max_age
            .map_or(self.settings.refresh, |age| age.min(self.settings.refresh))
            .max(self.settings.min_refresh))
    }

    async fn fetch(&self) -> anyhow::Result<(HashMap<String, SigningKey>, Option<Duration>)> {
        let mut response = self
            .client
            .get(self.settings.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .context("requesting the JWKS")?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("the JWKS URL answered {status}");
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.context("reading the JWKS")? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                anyhow::bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse_key_set(&body, &self.settings.algorithms)?, max_age))
    }
}

/// The background task: fetches when due or asked, never more often than
/// `min_refresh` (tokens asking meanwhile are served by one fetch); ends
/// when the hub (the last holder of the keys) is gone.
async fn keep_fresh(
    jwks: Weak<Jwks>,
    wake: Arc<Notify>,
    requested: Arc<AtomicBool>,
    min_refresh: Duration,
    first: Duration,
) {
    let mut due = Instant::now() + first;
    let mut last = Instant::now();
    loop {
        let asked = tokio::select! {
            _ = tokio::time::sleep_until(due) => false,
            _ = wake.notified() => true,
        };
        if asked && !requested.load(Ordering::SeqCst) {
            continue;
        }
        tokio::time::sleep_until(last + min_refresh).await;
        let Some(jwks) = jwks.upgrade() else { return };
        // Asked before this fetch begins: served by it.
        requested.store(false, Ordering::SeqCst);
        last = Instant::now();
        due = last
            + match jwks.fetch_now().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(
                        url = %jwks.settings.url,
                        error = %format!("{e:#}"),
                        "the identity provider's JWKS cannot be fetched; the keys held so far stay in use"
                    );
                    min_refresh
                }
            };
    }
}

/// `max-age=N` of a `Cache-Control` header (`no-store`/`no-cache`: 0).
fn max_age(header: &str) -> Option<Duration> {
    header.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        lower
            .strip_prefix("max-age=")
            .and_then(|n| n.trim_matches('"').parse::<u64>().ok())
            .map(Duration::from_secs)
    })
}

/// The usable keys of a JWKS document (see the module documentation); keys
/// the hub cannot use are skipped with a note in the log.
fn parse_key_set(
    body: &[u8],
    accepted: &[Algorithm],
) -> anyhow::Result<HashMap<String, SigningKey>> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).context("the JWKS is not a JSON Web Key Set")?;
    let mut keys = HashMap::new();
    for raw in document.keys {
        let kid = raw.get("kid").and_then(|k| k.as_str()).map(str::to_string);
        match usable_key(raw, accepted) {
            Ok((kid, key)) => match keys.entry(kid) {
                std::collections::hash_map::Entry::Occupied(taken) => tracing::warn!(
                    kid = %taken.key(),
                    "the JWKS has two keys with one kid: the first is used"
                ),
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(key);
                }
            },
            Err(why) => tracing::debug!(kid = ?kid, why, "a key of the JWKS is not used"),
        }
    }
    Ok(keys)
}

fn usable_key(
    raw: serde_json::Value,
    accepted: &[Algorithm],
) -> Result<(String, SigningKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|_| "not a key the hub can read")?;
    let kid = jwk.common.key_id.clone().ok_or("no kid")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err("not for signatures (use)");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("not for verifying (key_ops)");
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err("an elliptic curve the hub does not verify"),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err("an OKP curve the hub does not verify"),
        },
        // A symmetric key is a secret: one published in a key set is a
        // mistake, and accepting it would let anyone who read it sign.
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric (oct) key"),
        _ => return Err("an unknown key type"),
    };
    let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(named) => {
            let named =
                Algorithm::try_from(named).map_err(|_| "an algorithm the hub does not verify")?;
            if !by_type.contains(&named) {
                return Err("its alg does not fit its key type");
            }
            vec![named]
        }
        None => by_type.to_vec(),
    }
    .into_iter()
    .filter(|a| accepted.contains(a))
    .collect();
    if algorithms.is_empty() {
        return Err("for no algorithm of RENKEI_JWT_JWKS_ALGORITHMS");
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "its parameters are not a valid key")?;
    Ok((kid, SigningKey { key, algorithms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            max_age("max-age=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn only_asymmetric_algorithms_can_be_configured() {
        assert_eq!(
            parse_algorithms(" RS256, EdDSA ,RS256").unwrap(),
            vec![Algorithm::RS256, Algorithm::EdDSA]
        );
        for bad in ["HS256", "RS256,HS512", "none", "", " , ", "RS1"] {
            assert!(parse_algorithms(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plain_http_is_only_for_this_machine() {
        for ok in [
            "https://idp.example.jp/certs",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert!(secure_url(&reqwest::Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://idp.example.jp/certs",
            "http://10.0.0.5/jwks",
            "ftp://127.0.0.1/jwks",
            "file:///etc/jwks.json",
        ] {
            assert!(!secure_url(&reqwest::Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn keys_the_hub_cannot_use_safely_are_skipped() {
        let rsa = serde_json::json!({
            "kty": "RSA", "kid": "rsa", "use": "sig", "alg": "RS256",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
            "e": "AQAB"
        });
        let okp = serde_json::json!({
            "kty": "OKP", "kid": "ed", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        let oct = serde_json::json!({ "kty": "oct", "kid": "secret", "k": "c2VjcmV0" });
        let enc = {
            let mut k = rsa.clone();
            k["kid"] = "enc".into();
            k["use"] = "enc".into();
            k
        };
        let no_kid = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        let mismatched = {
            let mut k = rsa.clone();
            k["kid"] = "mismatched".into();
            k["alg"] = "EdDSA".into();
            k
        };
        let document = serde_json::json!({ "keys": [rsa, okp, oct, enc, no_kid, mismatched, { "kty": "weird" }] });
        let keys = parse_key_set(
            document.to_string().as_bytes(),
            &[Algorithm::RS256, Algorithm::EdDSA],
        )
        .unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["ed", "rsa"]);
        assert_eq!(keys["rsa"].algorithms, [Algorithm::RS256]);
        assert_eq!(keys["ed"].algorithms, [Algorithm::EdDSA]);
        // A key for algorithms not configured is not kept.
        let only_ed = parse_key_set(document.to_string().as_bytes(), &[Algorithm::EdDSA]).unwrap();
        assert_eq!(only_ed.keys().collect::<Vec<_>>(), ["ed"]);
        assert!(parse_key_set(b"{\"no\": \"keys\"}", &[Algorithm::RS256]).is_err());
        assert!(parse_key_set(b"<html>", &[Algorithm::RS256]).is_err());
    }
}
