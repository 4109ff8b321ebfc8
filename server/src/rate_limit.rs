//! Rate limits per member, per organisation and per API key: token buckets.
//!
//! Each bucket holds up to `BURST` tokens and gains `PER_SECOND` tokens a
//! second; a GraphQL request (over HTTP, or a `subscribe` message over
//! WebSocket) takes one token from each bucket of its caller — a member's
//! own and its organisation's, or an API key's and its organisation's — and
//! is refused when any of them is empty: HTTP 429 with
//! `extensions.code = RATE_LIMITED` and `Retry-After` (seconds, rounded up),
//! or an `error` message on WebSocket. A refused request takes no token.
//!
//! With Redis configured (`RENKEI_REDIS_URL`) the buckets live there, under
//! `<RENKEI_REDIS_PREFIX>:rate:…`, shared by every instance: one Lua script
//! reads, refills and takes from all of a request's buckets atomically
//! (`EVALSHA`, and `EVAL` when Redis has forgotten the script), on Redis's
//! clock. Redis is never allowed to slow a request down: a call that takes
//! longer than `RENKEI_RATE_LIMIT_REDIS_TIMEOUT_MS` (50 ms) or fails makes
//! this instance use its own in-memory buckets for [`RETRY_AFTER_FAILURE`]
//! before it tries Redis again, and connecting happens in the background.
//! Those local buckets have the same sizes, so during an outage a caller
//! spread over N instances may get up to N times its rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Args;
use renkei_schema::Principal;
use serde_json::json;
use uuid::Uuid;

/// How long the local buckets stand in for Redis after Redis failed or
/// was slow, before the next attempt.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(3);

/// How long a background connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Local buckets kept before full (idle) ones are forgotten.
const MAX_LOCAL_BUCKETS: usize = 10_000;

/// The `extensions.code` of a refused request.
pub const RATE_LIMITED: &str = "RATE_LIMITED";

/// Tokens a second for one scope, or `off`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerSecond(Option<f64>);

impl PerSecond {
    fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        if value.eq_ignore_ascii_case("off") {
            return Ok(PerSecond(None));
        }
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(PerSecond(Some(v))),
            _ => Err(format!(
                "{value:?} is not a rate: give requests per second (a number above 0, e.g. 20 or 0.5) or `off`"
            )),
        }
    }
}

impl std::fmt::Display for PerSecond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("off"),
        }
    }
}

/// Rate limits (see docs/operations.md, "Limits"). The defaults leave a
/// clinic's normal use far below them — a person clicking through a portal
/// sends a few requests a second, a clinic system's synchronisation some
/// tens — and stop a script that loops as fast as the hub answers.
#[derive(Args, Clone, Debug)]
pub struct RateLimitConfig {
    /// Rate limits on or off (`on`/`off`, `true`/`false`).
    #[arg(
        long,
        env = "RENKEI_RATE_LIMIT",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "on|off"
    )]
    pub rate_limit: bool,

    /// Requests per second one member may send on average (`off`: no limit
    /// per member).
    #[arg(long, env = "RENKEI_RATE_LIMIT_MEMBER_PER_SECOND", default_value = "20", value_parser = PerSecond::parse)]
    pub rate_limit_member_per_second: PerSecond,

    /// Requests one member may send at once before the rate applies.
    #[arg(long, env = "RENKEI_RATE_LIMIT_MEMBER_BURST", default_value_t = 200)]
    pub rate_limit_member_burst: u32,

    /// Requests per second one organisation (its members and API keys
    /// together) may send on average (`off`: no limit per organisation).
    #[arg(long, env = "RENKEI_RATE_LIMIT_ORGANIZATION_PER_SECOND", default_value = "200", value_parser = PerSecond::parse)]
    pub rate_limit_organization_per_second: PerSecond,

    /// Requests one organisation may send at once before the rate applies.
    #[arg(
        long,
        env = "RENKEI_RATE_LIMIT_ORGANIZATION_BURST",
        default_value_t = 2000
    )]
    pub rate_limit_organization_burst: u32,

    /// Requests per second one API key (an organisation's system) may send
    /// on average (`off`: no limit per key).
    #[arg(long, env = "RENKEI_RATE_LIMIT_API_KEY_PER_SECOND", default_value = "50", value_parser = PerSecond::parse)]
    pub rate_limit_api_key_per_second: PerSecond,

    /// Requests one API key may send at once before the rate applies.
    #[arg(long, env = "RENKEI_RATE_LIMIT_API_KEY_BURST", default_value_t = 500)]
    pub rate_limit_api_key_burst: u32,

    /// Longest wait (ms) for Redis's answer; slower, the instance uses its
    /// own buckets for a few seconds.
    #[arg(long, env = "RENKEI_RATE_LIMIT_REDIS_TIMEOUT_MS", default_value_t = 50)]
    pub rate_limit_redis_timeout_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            rate_limit: true,
            rate_limit_member_per_second: PerSecond(Some(20.0)),
            rate_limit_member_burst: 200,
            rate_limit_organization_per_second: PerSecond(Some(200.0)),
            rate_limit_organization_burst: 2000,
            rate_limit_api_key_per_second: PerSecond(Some(50.0)),
            rate_limit_api_key_burst: 500,
            rate_limit_redis_timeout_ms: 50,
        }
    }
}

impl RateLimitConfig {
    /// No limits (the test harness's default).
    pub fn off() -> Self {
        RateLimitConfig {
            rate_limit: false,
            ..Default::default()
        }
    }

    fn limits(&self) -> anyhow::Result<Option<Limits>> {
        if !self.rate_limit {
            return Ok(None);
        }
        let bucket = |name: &str, rate: PerSecond, burst: u32| -> anyhow::Result<Option<Bucket>> {
            let Some(per_second) = rate.0 else {
                return Ok(None);
            };
            if burst == 0 {
                anyhow::bail!(
                    "RENKEI_RATE_LIMIT_{name}_BURST must be at least 1 (or set RENKEI_RATE_LIMIT_{name}_PER_SECOND=off)"
                );
            }
            Ok(Some(Bucket {
                per_second,
                burst: f64::from(burst),
            }))
        };
        if self.rate_limit_redis_timeout_ms == 0 {
            anyhow::bail!("RENKEI_RATE_LIMIT_REDIS_TIMEOUT_MS must be at least 1");
        }
        Ok(Some(Limits {
            member: bucket(
                "MEMBER",
                self.rate_limit_member_per_second,
                self.rate_limit_member_burst,
            )?,
            organization: bucket(
                "ORGANIZATION",
                self.rate_limit_organization_per_second,
                self.rate_limit_organization_burst,
            )?,
            api_key: bucket(
                "API_KEY",
                self.rate_limit_api_key_per_second,
                self.rate_limit_api_key_burst,
            )?,
        }))
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    per_second: f64,
    burst: f64,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    member: Option<Bucket>,
    organization: Option<Bucket>,
    api_key: Option<Bucket>,
}

/// Whose bucket ran empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Member,
    Organization,
    ApiKey,
    /// Callers without a token (the public directory): one bucket for all
    /// of them, the size of an organisation's.
    Public,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Member => "MEMBER",
            Scope::Organization => "ORGANIZATION",
            Scope::ApiKey => "API_KEY",
            Scope::Public => "PUBLIC",
        }
    }

    fn key_part(self) -> &'static str {
        match self {
            Scope::Member => "member",
            Scope::Organization => "org",
            Scope::ApiKey => "key",
            Scope::Public => "public",
        }
    }
}

/// A request refused by a rate limit.
#[derive(Clone, Copy, Debug)]
pub struct Limited {
    pub scope: Scope,
    /// When the bucket holds a token again.
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After`: whole seconds, rounded up, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }

    pub fn message(&self) -> String {
        let whose = match self.scope {
            Scope::Member => "you have",
            Scope::Organization => "your organisation has",
            Scope::ApiKey => "this API key has",
            Scope::Public => "callers without a token have",
        };
        format!(
            "rate limited: {whose} sent more requests than this hub accepts; retry in {} s",
            self.retry_after_seconds()
        )
    }

    /// The GraphQL error (`message`, `extensions`) for a response body or
    /// a WebSocket `error` message.
    pub fn error(&self) -> serde_json::Value {
        json!({
            "message": self.message(),
            "extensions": {
                "code": RATE_LIMITED,
                "scope": self.scope.as_str(),
                "retryAfter": self.retry_after_seconds(),
            },
        })
    }

    /// HTTP 429 with `Retry-After`, in the given content type.
    pub fn response(&self, content_type: HeaderValue) -> Response {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "errors": [self.error()] })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after_seconds()),
        );
        response
    }
}

/// The buckets of one request: scope, whose, size.
type Takes = Vec<(Scope, Uuid, Bucket)>;

/// The limiter of an instance.
pub struct RateLimiter {
    limits: Option<Limits>,
    local: LocalBuckets,
    redis: Option<Arc<RedisBuckets>>,
}

impl RateLimiter {
    /// The limiter the configuration asks for; with a Redis URL, its
    /// buckets in Redis under `prefix`. Fails only on bad settings (an
    /// unreachable Redis is tried again in the background).
    pub fn new(
        config: &RateLimitConfig,
        redis_url: Option<&str>,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let limits = config.limits()?;
        let redis = match (&limits, redis_url) {
            (Some(_), Some(url)) => Some(Arc::new(RedisBuckets {
                client: redis::Client::open(url)
                    .map_err(|e| anyhow::anyhow!("RENKEI_REDIS_URL is not a Redis URL: {e}"))?,
                prefix: format!("{prefix}:rate"),
                timeout: Duration::from_millis(config.rate_limit_redis_timeout_ms),
                state: Mutex::default(),
            })),
            _ => None,
        };
        Ok(RateLimiter {
            limits,
            local: LocalBuckets::default(),
            redis,
        })
    }

    /// No limits.
    pub fn off() -> Self {
        RateLimiter {
            limits: None,
            local: LocalBuckets::default(),
            redis: None,
        }
    }

    /// Takes a token from each of the caller's buckets, or says which is
    /// empty and for how long.
    pub async fn check(&self, principal: &Principal) -> Result<(), Limited> {
        let Some(limits) = self.limits else {
            return Ok(());
        };
        let takes = takes(&limits, principal);
        if takes.is_empty() {
            return Ok(());
        }
        let verdict = match &self.redis {
            Some(redis) => match redis.take(&takes).await {
                Some(verdict) => verdict,
                None => self.local.take(&takes),
            },
            None => self.local.take(&takes),
        };
        if let Err(limited) = &verdict {
            tracing::debug!(scope = limited.scope.as_str(), "request rate limited");
        }
        verdict
    }
}

impl RateLimiter {
    /// Takes a token from the bucket all callers without a token share.
    pub async fn check_public(&self) -> Result<(), Limited> {
        let Some(b) = self.limits.and_then(|l| l.organization) else {
            return Ok(());
        };
        let takes = vec![(Scope::Public, Uuid::nil(), b)];
        match &self.redis {
            Some(redis) => match redis.take(&takes).await {
                Some(verdict) => verdict,
                None => self.local.take(&takes),
            },
            None => self.local.take(&takes),
        }
    }
}

fn takes(limits: &Limits, principal: &Principal) -> Takes {
    let mut takes = Vec::with_capacity(2);
    match principal {
        Principal::Member { member_id, .. } => {
            if let Some(b) = limits.member {
                takes.push((Scope::Member, *member_id, b));
            }
        }
        Principal::System { api_key_id, .. } => {
            if let Some(b) = limits.api_key {
                takes.push((Scope::ApiKey, *api_key_id, b));
            }
        }
    }
    if let Some(b) = limits.organization {
        takes.push((Scope::Organization, principal.organization_id(), b));
    }
    takes
}

/// A local bucket: its tokens at an instant, and its size.
type LocalLevel = (f64, Instant, Bucket);

/// This instance's own buckets: without Redis, or while it is down or slow.
#[derive(Default)]
struct LocalBuckets {
    buckets: Mutex<HashMap<(Scope, Uuid), LocalLevel>>,
}

impl LocalBuckets {
    fn take(&self, takes: &Takes) -> Result<(), Limited> {
        let now = Instant::now();
        // One short critical section of arithmetic: a panic cannot leave
        // the map half-changed.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_LOCAL_BUCKETS {
            // Forget the buckets that are full again: they limit nothing.
            buckets.retain(|_, (tokens, at, b)| {
                *tokens + now.duration_since(*at).as_secs_f64() * b.per_second < b.burst
            });
        }
        let mut levels = Vec::with_capacity(takes.len());
        let mut refusal: Option<Limited> = None;
        for (scope, id, bucket) in takes {
            let level = match buckets.get(&(*scope, *id)) {
                Some((tokens, at, _)) => (tokens
                    + now.duration_since(*at).as_secs_f64() * bucket.per_second)
                    .min(bucket.burst),
                None => bucket.burst,
            };
            if level < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - level) / bucket.per_second);
                if refusal.is_none_or(|r| wait > r.retry_after) {
                    refusal = Some(Limited {
                        scope: *scope,
                        retry_after: wait,
                    });
                }
            }
            levels.push(level);
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        for ((scope, id, bucket), level) in takes.iter().zip(levels) {
            buckets.insert((*scope, *id), (level - 1.0, now, *bucket));
        }
        Ok(())
    }
}

/// Refills and takes from a request's buckets in one step. KEYS: the
/// buckets; ARGV: per bucket, tokens per second and burst. Returns
/// `{0, 0}` when every bucket had a token (one is taken from each), else
/// `{milliseconds until one has, the bucket's index}` and takes nothing.
/// Time is Redis's own, so instances with skewed clocks agree.
const TAKE_SCRIPT: &str = r#"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000
local levels = {}
local wait, which = 0, 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  local saved = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = tonumber(saved[1]) or burst
  local at = tonumber(saved[2]) or now
  if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
  levels[i] = tokens
  if tokens < 1 then
    local need = math.ceil((1 - tokens) / rate)
    if need > wait then wait, which = need, i end
  end
end
if wait > 0 then return {wait, which} end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1]) / 1000
  local burst = tonumber(ARGV[2 * i])
  redis.call('HSET', key, 'tokens', tostring(levels[i] - 1), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate) + 1000)
end
return {0, 0}
"#;

/// The buckets in Redis, and the state of the link to it.
struct RedisBuckets {
    client: redis::Client,
    /// `<RENKEI_REDIS_PREFIX>:rate`.
    prefix: String,
    timeout: Duration,
    state: Mutex<RedisState>,
}

#[derive(Default)]
struct RedisState {
    /// The connection and the script's SHA1 (from `SCRIPT LOAD`).
    link: Option<(redis::aio::MultiplexedConnection, String)>,
    connecting: bool,
    /// No attempt before this (after a failure).
    retry_at: Option<Instant>,
    /// A failure was logged and no success since.
    down: bool,
}

impl RedisBuckets {
    fn lock(&self) -> std::sync::MutexGuard<'_, RedisState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdict from Redis, or `None` when Redis cannot give it in time
    /// (then the local buckets decide).
    async fn take(self: &Arc<Self>, takes: &Takes) -> Option<Result<(), Limited>> {
        let (mut con, sha) = self.link()?;
        let mut keys = Vec::with_capacity(takes.len());
        let mut args = Vec::with_capacity(2 * takes.len());
        for (scope, id, bucket) in takes {
            keys.push(format!("{}:{}:{}", self.prefix, scope.key_part(), id));
            args.push(bucket.per_second.to_string());
            args.push(bucket.burst.to_string());
        }
        let call = async {
            let mut evalsha = redis::cmd("EVALSHA");
            evalsha.arg(&sha).arg(keys.len()).arg(&keys).arg(&args);
            match evalsha.query_async::<(u64, usize)>(&mut con).await {
                Err(e) if e.code() == Some("NOSCRIPT") => {
                    // Redis restarted (or its scripts were flushed): EVAL
                    // runs the script and caches it again.
                    let mut eval = redis::cmd("EVAL");
                    eval.arg(TAKE_SCRIPT).arg(keys.len()).arg(&keys).arg(&args);
                    eval.query_async::<(u64, usize)>(&mut con).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((0, _))) => Some(Ok(())),
            Ok(Ok((wait_ms, which))) => {
                let scope = takes
                    .get(which.saturating_sub(1))
                    .map_or(Scope::Organization, |t| t.0);
                Some(Err(Limited {
                    scope,
                    retry_after: Duration::from_millis(wait_ms),
                }))
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {} ms", self.timeout.as_millis()));
                None
            }
        }
    }

    /// The connection when there is one; otherwise starts connecting in the
    /// background (unless a recent failure says to wait) and returns `None`.
    fn link(self: &Arc<Self>) -> Option<(redis::aio::MultiplexedConnection, String)> {
        let mut state = self.lock();
        if let Some(link) = &state.link {
            return Some(link.clone());
        }
        let waiting = state.retry_at.is_some_and(|at| Instant::now() < at);
        if !state.connecting && !waiting {
            state.connecting = true;
            let this = self.clone();
            tokio::spawn(async move { this.connect().await });
        }
        None
    }

    async fn connect(self: Arc<Self>) {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let connected = async {
            let mut con = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(TAKE_SCRIPT)
                .query_async(&mut con)
                .await?;
            Ok::<_, redis::RedisError>((con, sha))
        }
        .await;
        let mut state = self.lock();
        state.connecting = false;
        match connected {
            Ok(link) => {
                if state.down {
                    tracing::info!("rate limits: Redis is back; buckets are shared again");
                }
                state.down = false;
                state.retry_at = None;
                state.link = Some(link);
            }
            Err(e) => {
                drop(state);
                self.failed(&e.to_string());
            }
        }
    }

    /// Drops the connection; the local buckets decide until the next try.
    fn failed(&self, error: &str) {
        let mut state = self.lock();
        state.link = None;
        state.retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
        if !state.down {
            state.down = true;
            tracing::warn!(
                error,
                "rate limits: Redis failed or was slow; this instance limits with its own buckets until it answers again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Principal {
        Principal::Member {
            member_id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            profession: renkei_schema::domain::Profession::Physician,
        }
    }

    #[tokio::test]
    async fn a_burst_passes_then_the_rate_applies() {
        let config = RateLimitConfig {
            rate_limit_member_per_second: PerSecond(Some(2.0)),
            rate_limit_member_burst: 3,
            ..Default::default()
        };
        let limiter = RateLimiter::new(&config, None, "t").unwrap();
        let caller = member();
        for _ in 0..3 {
            limiter.check(&caller).await.unwrap();
        }
        let limited = limiter.check(&caller).await.unwrap_err();
        assert_eq!(limited.scope, Scope::Member);
        assert!(limited.retry_after <= Duration::from_millis(500));
        assert_eq!(limited.retry_after_seconds(), 1);
        // Another member is not affected.
        limiter.check(&member()).await.unwrap();
    }

    #[test]
    fn rates_are_numbers_or_off() {
        assert_eq!(PerSecond::parse("off"), Ok(PerSecond(None)));
        assert_eq!(PerSecond::parse(" 0.5 "), Ok(PerSecond(Some(0.5))));
        for bad in ["0", "-1", "fast", "NaN", "inf", ""] {
            assert!(PerSecond::parse(bad).is_err(), "{bad}");
        }
        let zero_burst = RateLimitConfig {
            rate_limit_api_key_burst: 0,
            ..Default::default()
        };
        assert!(zero_burst.limits().is_err());
        assert!(RateLimitConfig::off().limits().unwrap().is_none());
    }
}
