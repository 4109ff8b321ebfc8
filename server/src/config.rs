//! Typed configuration. Every option is a flag and a `RENKEI_*` environment
//! variable (flags win); `renkei serve --help` lists them with these comments.
//! Bad values fail at start with a message that says how to fix them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use renkei_schema::audit::keys::AuditKeys;

/// Where the data lives.
#[derive(Args, Clone, Debug)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded default) or
    /// `postgres://USER@HOST:PORT/DB` (production).
    #[arg(
        long,
        env = "RENKEI_DATABASE_URL",
        default_value = "sqlite://renkei.db?mode=rwc"
    )]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(long, env = "RENKEI_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// How long (ms) a request waits for a pooled database connection
    /// before it fails with DATABASE_UNAVAILABLE (HTTP 503, `Retry-After`).
    /// While the database is down every request waits this long: short, so
    /// clients and load balancers learn of the outage at once; long enough
    /// for a burst to wait for a busy pool. Between 100 and 60000.
    #[arg(
        long,
        env = "RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS",
        default_value_t = 1500
    )]
    pub database_acquire_timeout_ms: u64,
}

impl DatabaseConfig {
    /// `RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS`, or what is wrong with it.
    pub fn acquire_timeout(&self) -> anyhow::Result<std::time::Duration> {
        let ms = self.database_acquire_timeout_ms;
        if !(100..=60_000).contains(&ms) {
            anyhow::bail!(
                "RENKEI_DATABASE_ACQUIRE_TIMEOUT_MS must be between 100 and 60000 (got {ms})"
            );
        }
        Ok(std::time::Duration::from_millis(ms))
    }
}

/// How bearer tokens are verified. Member JWTs are checked against exactly
/// one of: an HS256 secret, a PEM public key, or the keys an identity
/// provider publishes at a JWKS URL (see docs/operations.md).
#[derive(Args, Clone, Debug)]
pub struct AuthConfig {
    /// HS256 secret that member JWTs are signed with (at least 32 bytes).
    #[arg(long, env = "RENKEI_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with the public key that member JWTs are signed with
    /// (RS256 or EdDSA, see --jwt-algorithm). Exclusive with --jwt-secret.
    #[arg(long, env = "RENKEI_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Algorithm of --jwt-public-key-file: RS256 or EdDSA.
    #[arg(long, env = "RENKEI_JWT_ALGORITHM", default_value = "RS256")]
    pub jwt_algorithm: String,

    /// URL of the identity provider's JSON Web Key Set (OpenID Connect's
    /// `jwks_uri`, e.g. `https://idp.example.jp/realms/renkei/protocol/openid-connect/certs`).
    /// Member JWTs are verified with the key their `kid` names; the keys are
    /// cached and fetched again when a token names an unknown key, so the
    /// provider can rotate keys without restarting the hub. `https` (plain
    /// `http` only to a loopback address). Exclusive with --jwt-secret and
    /// --jwt-public-key-file.
    #[arg(long, env = "RENKEI_JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,

    /// Algorithms accepted from the JWKS, comma-separated: RS256, RS384,
    /// RS512, PS256, PS384, PS512, ES256, ES384, EdDSA. Symmetric (HS*)
    /// algorithms and `none` are never accepted with a JWKS.
    #[arg(long, env = "RENKEI_JWT_JWKS_ALGORITHMS", default_value = "RS256")]
    pub jwt_jwks_algorithms: String,

    /// Longest time (seconds) the JWKS is used before it is fetched again,
    /// so a key the provider removed stops working within it. A shorter
    /// `Cache-Control: max-age` from the provider is followed.
    #[arg(long, env = "RENKEI_JWT_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub jwt_jwks_refresh_seconds: u64,

    /// Shortest time (seconds) between two fetches of the JWKS: tokens with
    /// unknown key ids cause at most one fetch per this long, whoever sends them.
    #[arg(
        long,
        env = "RENKEI_JWT_JWKS_MIN_REFRESH_SECONDS",
        default_value_t = 10
    )]
    pub jwt_jwks_min_refresh_seconds: u64,

    /// How long (ms) a request may wait for a fetch of the JWKS before its
    /// token is judged with the keys at hand.
    #[arg(long, env = "RENKEI_JWT_JWKS_TIMEOUT_MS", default_value_t = 2000)]
    pub jwt_jwks_timeout_ms: u64,

    /// The claim of member JWTs that names the member (`sub` by default;
    /// e.g. `preferred_username`, `oid`). Read as --jwt-member-by says.
    #[arg(long, env = "RENKEI_JWT_MEMBER_CLAIM", default_value = "sub")]
    pub jwt_member_claim: String,

    /// How the member claim is read: `id` (it is the member's renkei id) or
    /// `external-subject` (it is the subject an administrator recorded for
    /// the member with `setMemberExternalSubject`, at the issuer --jwt-issuer).
    #[arg(long, env = "RENKEI_JWT_MEMBER_BY", value_enum, default_value_t = MemberBy::Id)]
    pub jwt_member_by: MemberBy,

    /// Required `iss` claim of member JWTs.
    #[arg(long, env = "RENKEI_JWT_ISSUER", default_value = "renkei")]
    pub jwt_issuer: String,

    /// Required `aud` claim of member JWTs.
    #[arg(long, env = "RENKEI_JWT_AUDIENCE", default_value = "renkei")]
    pub jwt_audience: String,

    /// Seconds a verified API key is remembered before it is verified again.
    #[arg(long, env = "RENKEI_API_KEY_CACHE_SECONDS", default_value_t = 60)]
    pub api_key_cache_seconds: u64,
}

/// How a token's member claim names the member.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemberBy {
    /// The claim is the member's renkei id (a UUID).
    #[default]
    Id,
    /// The claim is the member's recorded subject at the identity provider.
    ExternalSubject,
}

/// The command-line defaults, for configurations built in code (tests).
impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_algorithm: "RS256".into(),
            jwt_jwks_url: None,
            jwt_jwks_algorithms: "RS256".into(),
            jwt_jwks_refresh_seconds: 300,
            jwt_jwks_min_refresh_seconds: 10,
            jwt_jwks_timeout_ms: 2000,
            jwt_member_claim: "sub".into(),
            jwt_member_by: MemberBy::Id,
            jwt_issuer: "renkei".into(),
            jwt_audience: "renkei".into(),
            api_key_cache_seconds: 60,
        }
    }
}

impl AuthConfig {
    /// Whether no key of the operator's is configured, so the built-in demo key
    /// is what tokens are checked against.
    pub fn uses_demo_key(&self) -> bool {
        self.jwt_secret.is_none()
            && self.jwt_public_key_file.is_none()
            && self.jwt_jwks_url.is_none()
    }
}

/// `renkei serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "RENKEI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Seed the fictional demo region (idempotent) and accept tokens signed
    /// with the demo key when no key is configured; sign the audit log with
    /// the public demo audit key when no audit key is configured.
    #[arg(long, env = "RENKEI_DEMO")]
    pub demo: bool,

    /// Do not migrate the database; refuse to start if migrations are
    /// pending. For running as the application role `renkei db grant`
    /// creates, while `renkei migrate` runs as the owner.
    #[arg(long, env = "RENKEI_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "RENKEI_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest accepted GraphQL query document in bytes (within the body;
    /// variables do not count). Longer ones are refused unparsed with 413
    /// QUERY_TOO_LARGE.
    #[arg(long, env = "RENKEI_MAX_QUERY_BYTES", default_value_t = renkei_schema::graphql::fair_use::DEFAULT_MAX_QUERY_BYTES)]
    pub max_query_bytes: usize,

    /// Most aliased fields in one operation (fragments counted where
    /// spread); more are refused with QUERY_TOO_COMPLEX.
    #[arg(long, env = "RENKEI_MAX_ALIASES", default_value_t = renkei_schema::graphql::fair_use::DEFAULT_MAX_ALIASES)]
    pub max_aliases: usize,

    /// How long (µs) each DataLoader collects keys before it queries. The
    /// loads of one level of a query arrive within it and cost one statement;
    /// a longer window batches more reliably on a busy machine, at that much
    /// latency per level.
    #[arg(long, env = "RENKEI_BATCH_WINDOW_MICROS", default_value_t = 1000)]
    pub batch_window_micros: u64,

    /// Skip the window while a query is the only one executing (`on`, the
    /// default): it then batches each level by the query's own progress
    /// instead of the clock — a level is taken once no batch is being
    /// queried and the query waits — which halves the median at concurrency
    /// 1 (bench/RESULTS.md). `off`: every load waits the window.
    #[arg(
        long,
        env = "RENKEI_BATCH_WINDOW_ADAPTIVE",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "on|off"
    )]
    pub batch_window_adaptive: bool,

    /// Seconds organisations and members (the directory) stay cached. A
    /// change on this instance, or announced by another through Redis, clears
    /// the cache at once; without Redis, other instances see it after at most
    /// this long (a suspended member's tokens included).
    #[arg(long, env = "RENKEI_DIRECTORY_CACHE_SECONDS", default_value_t = 30)]
    pub directory_cache_seconds: u64,

    /// Origins (`https://portal.example.jp`, comma-separated) whose web
    /// pages may call the hub from the browser (CORS): the answer to their
    /// preflight allows `GET` and `POST` with the `Authorization`,
    /// `Content-Type` and `X-Request-Id` headers. Without it no other origin
    /// may; pages the hub serves itself (GraphiQL) need no entry.
    #[arg(
        long,
        env = "RENKEI_CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = AllowedOrigin::parse
    )]
    pub cors_allowed_origins: Vec<AllowedOrigin>,

    /// Answer GraphQL introspection (`__schema`, `__type`), which GraphiQL's
    /// docs and completion, code generators and schema-fetching tools use:
    /// `true` (default) or `false`. Only authenticated callers reach it
    /// either way. Off, it is refused with `INTROSPECTION_DISABLED`;
    /// `__typename` and federation's `_service { sdl }` (which a gateway
    /// needs) still answer.
    #[arg(
        long,
        env = "RENKEI_INTROSPECTION",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
        value_name = "BOOL"
    )]
    pub introspection: bool,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub policy: PolicyConfig,

    #[command(flatten)]
    pub redis: RedisConfig,

    #[command(flatten)]
    pub audit_keys: AuditKeyConfig,

    #[command(flatten)]
    pub checkpoints: CheckpointConfig,

    #[command(flatten)]
    pub websocket: WebSocketConfig,

    #[command(flatten)]
    pub connections: ConnectionConfig,

    #[command(flatten)]
    pub rate_limit: crate::rate_limit::RateLimitConfig,

    #[command(flatten)]
    pub metrics: crate::observe::MetricsConfig,
}

impl ServeConfig {
    /// The bounds on query documents, or what is wrong with them.
    pub fn fair_use(&self) -> anyhow::Result<renkei_schema::graphql::fair_use::FairUseLimits> {
        if self.max_query_bytes < 1024 {
            anyhow::bail!(
                "RENKEI_MAX_QUERY_BYTES must be at least 1024 (got {})",
                self.max_query_bytes
            );
        }
        if self.max_aliases == 0 {
            anyhow::bail!("RENKEI_MAX_ALIASES must be at least 1 (got 0)");
        }
        Ok(renkei_schema::graphql::fair_use::FairUseLimits {
            max_query_bytes: self.max_query_bytes,
            max_aliases: self.max_aliases,
        })
    }
}

/// The keys the audit log is signed with (see `docs/audit-log.md`).
#[derive(Args, Clone, Debug, Default)]
pub struct AuditKeyConfig {
    /// Audit keys as `ID:SECRET[,ID:SECRET…]`, each secret at least 32 bytes:
    /// the first signs new entries, the others (earlier keys, after a
    /// rotation) are accepted when verifying. Keep them off the database host.
    #[arg(long, env = "RENKEI_AUDIT_KEY", hide_env_values = true)]
    pub audit_key: Option<String>,

    /// File with the audit keys, one `ID:SECRET` per line (the first signs;
    /// `#` starts a comment). Exclusive with --audit-key.
    #[arg(long, env = "RENKEI_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<PathBuf>,
}

impl AuditKeyConfig {
    /// The configured keys, or `None` when no key is configured.
    pub fn load(&self) -> anyhow::Result<Option<AuditKeys>> {
        use anyhow::Context;
        let keys = match (&self.audit_key, &self.audit_key_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set RENKEI_AUDIT_KEY or RENKEI_AUDIT_KEY_FILE, not both")
            }
            (Some(text), None) => AuditKeys::parse(text, "RENKEI_AUDIT_KEY"),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the audit key file {}", path.display()))?;
                warn_if_readable_by_others(path);
                AuditKeys::parse(&text, &format!("the audit key file {}", path.display()))
            }
            (None, None) => return Ok(None),
        };
        keys.map(Some).map_err(|e| anyhow::anyhow!(e))
    }
}

/// What to say about a key file others can read.
pub const KEY_FILE_READABLE: &str = "the audit key file is readable by other users; make it readable by the hub's user only (chmod 600)";

/// A key file others can read is a key others can use to forge entries.
fn warn_if_readable_by_others(path: &std::path::Path) {
    if readable_by_others(path) {
        tracing::warn!(file = %path.display(), "{KEY_FILE_READABLE}");
    }
}

/// Whether users other than the file's owner may read or write `path`.
pub fn readable_by_others(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Signed checkpoints of the audit log's head, kept outside the database.
#[derive(Args, Clone, Debug)]
pub struct CheckpointConfig {
    /// File (or directory, then `audit-checkpoints.jsonl` in it) to which a
    /// signed checkpoint of the audit log's head is appended, one JSON line
    /// each. Put it where the database host cannot rewrite it (e.g. a file
    /// made append-only with `chattr +a`, on another host's mount).
    #[arg(long, env = "RENKEI_AUDIT_CHECKPOINT_FILE")]
    pub audit_checkpoint_file: Option<PathBuf>,

    /// Seconds between checkpoints (written only when the log has grown; and
    /// once more at shutdown).
    #[arg(long, env = "RENKEI_AUDIT_CHECKPOINT_SECONDS", default_value_t = 60)]
    pub audit_checkpoint_seconds: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            audit_checkpoint_file: None,
            audit_checkpoint_seconds: 60,
        }
    }
}

/// The link between instances (optional).
#[derive(Args, Clone, Debug)]
pub struct RedisConfig {
    /// Redis URL (`redis://[:PASSWORD@]HOST:PORT[/DB]`) through which
    /// instances share events: subscriptions see what happens on every
    /// instance, and consent withdrawals and revocations apply everywhere at
    /// once. Without it (and without `REDIS_URL`), the instance works alone.
    #[arg(long, env = "RENKEI_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of the hub's Redis keys (the channel `<prefix>:events`, the
    /// stream `<prefix>:audit-checkpoints`): instances of one network share
    /// it; networks sharing a Redis use different ones.
    #[arg(long, env = "RENKEI_REDIS_PREFIX", default_value = "renkei")]
    pub redis_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            redis_url: None,
            redis_prefix: "renkei".into(),
        }
    }
}

/// The access policy's settings.
#[derive(Args, Clone, Debug)]
pub struct PolicyConfig {
    /// TOML file overriding cells of the profession × category matrix
    /// (see docs/access-policy.md). Validated at start.
    #[arg(long, env = "RENKEI_POLICY_FILE")]
    pub policy_file: Option<PathBuf>,

    /// How long break-the-glass emergency access lasts, in minutes.
    #[arg(long, env = "RENKEI_EMERGENCY_ACCESS_MINUTES", default_value_t = 240)]
    pub emergency_access_minutes: u32,

    /// How many emergency patient searches (`searchPatientsForEmergency`)
    /// one member may make per window; more are refused with
    /// EMERGENCY_SEARCH_LIMIT until the window ends.
    #[arg(long, env = "RENKEI_EMERGENCY_SEARCH_LIMIT", default_value_t = 10)]
    pub emergency_search_limit: u32,

    /// The window of RENKEI_EMERGENCY_SEARCH_LIMIT, in minutes.
    #[arg(
        long,
        env = "RENKEI_EMERGENCY_SEARCH_WINDOW_MINUTES",
        default_value_t = 60
    )]
    pub emergency_search_window_minutes: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            policy_file: None,
            emergency_access_minutes: 240,
            emergency_search_limit: 10,
            emergency_search_window_minutes: 60,
        }
    }
}

/// GraphQL over WebSocket (`/graphql/ws`; see docs/subscriptions.md).
#[derive(Args, Clone, Debug)]
pub struct WebSocketConfig {
    /// Seconds a new WebSocket connection may wait before it sends
    /// `connection_init`; then it is closed with 4408. Between 1 and 300.
    #[arg(long, env = "RENKEI_WS_INIT_TIMEOUT_SECONDS", default_value_t = 10)]
    pub ws_init_timeout_seconds: u64,

    /// Subscriptions one WebSocket connection may hold at once. One more is
    /// refused with TOO_MANY_SUBSCRIPTIONS; the connection stays open.
    /// Queries and mutations over the WebSocket do not count.
    #[arg(
        long,
        env = "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 32
    )]
    pub ws_max_subscriptions_per_connection: usize,

    /// Subscriptions one member (or API key) may hold at once on this
    /// instance, across all its connections; each costs a policy check and
    /// an audit entry per event it watches. Counted per instance: behind a
    /// load balancer a caller may hold this many on each instance.
    #[arg(
        long,
        env = "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_MEMBER",
        default_value_t = 128
    )]
    pub ws_max_subscriptions_per_member: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            ws_init_timeout_seconds: 10,
            ws_max_subscriptions_per_connection: 32,
            ws_max_subscriptions_per_member: 128,
        }
    }
}

impl WebSocketConfig {
    /// The limits, or what is wrong with them.
    pub fn limits(&self) -> anyhow::Result<crate::ws::WebSocketLimits> {
        if !(1..=300).contains(&self.ws_init_timeout_seconds) {
            anyhow::bail!(
                "RENKEI_WS_INIT_TIMEOUT_SECONDS must be between 1 and 300 (got {})",
                self.ws_init_timeout_seconds
            );
        }
        for (name, value) in [
            (
                "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION",
                self.ws_max_subscriptions_per_connection,
            ),
            (
                "RENKEI_WS_MAX_SUBSCRIPTIONS_PER_MEMBER",
                self.ws_max_subscriptions_per_member,
            ),
        ] {
            if value == 0 {
                anyhow::bail!("{name} must be at least 1 (got 0)");
            }
        }
        Ok(crate::ws::WebSocketLimits::new(
            std::time::Duration::from_secs(self.ws_init_timeout_seconds),
            self.ws_max_subscriptions_per_connection,
            self.ws_max_subscriptions_per_member,
        ))
    }
}

/// What the listener allows a client's connection (see docs/operations.md,
/// "Connections"): without these bounds a client that trickles its headers
/// or body held a connection, and with it a file descriptor, for as long as
/// it liked.
#[derive(Args, Clone, Debug)]
pub struct ConnectionConfig {
    /// Connections open at once (WebSockets included). At the limit, a new
    /// client closes the connection that has waited longest for a request;
    /// if every connection is busy, it waits for one. By default the
    /// process's file-descriptor limit (`ulimit -n`) less 256 for the
    /// database, Redis and files.
    #[arg(long, env = "RENKEI_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds a client has to send an HTTP/1 request's headers; then the
    /// connection is closed. Also how long an idle keep-alive connection is
    /// kept. Between 1 and 300.
    #[arg(long, env = "RENKEI_HEADER_READ_TIMEOUT_SECONDS", default_value_t = 30)]
    pub header_read_timeout_seconds: u64,

    /// Seconds a client has to send a request's whole body, counted from
    /// its headers; a body not complete by then is refused with 408
    /// REQUEST_TIMEOUT. Between 1 and 3600.
    #[arg(long, env = "RENKEI_BODY_READ_TIMEOUT_SECONDS", default_value_t = 60)]
    pub body_read_timeout_seconds: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_connections: None,
            header_read_timeout_seconds: 30,
            body_read_timeout_seconds: 60,
        }
    }
}

impl ConnectionConfig {
    /// The listener's limits, or what is wrong with them.
    pub fn limits(&self) -> anyhow::Result<crate::listener::ConnectionLimits> {
        let open_files = crate::listener::open_files_limit();
        let max_connections = match self.max_connections {
            Some(n) => {
                if let Some(limit) = open_files
                    && (n as u64).saturating_add(crate::listener::RESERVED_FILES) > limit
                {
                    tracing::warn!(
                        max_connections = n,
                        open_files = limit,
                        "RENKEI_MAX_CONNECTIONS leaves fewer than {} of the process's file descriptors \
                         (ulimit -n) to the database, Redis and files",
                        crate::listener::RESERVED_FILES
                    );
                }
                n
            }
            None => crate::listener::default_max_connections(open_files),
        };
        for (name, value, range) in [
            (
                "RENKEI_MAX_CONNECTIONS",
                max_connections as u64,
                1..=1_000_000,
            ),
            (
                "RENKEI_HEADER_READ_TIMEOUT_SECONDS",
                self.header_read_timeout_seconds,
                1..=300,
            ),
            (
                "RENKEI_BODY_READ_TIMEOUT_SECONDS",
                self.body_read_timeout_seconds,
                1..=3600,
            ),
        ] {
            if !range.contains(&value) {
                anyhow::bail!(
                    "{name} must be between {} and {} (got {value})",
                    range.start(),
                    range.end()
                );
            }
        }
        Ok(crate::listener::ConnectionLimits {
            max_connections,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_seconds),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout_seconds),
        })
    }
}

/// An origin allowed to call the hub from the browser: `http(s)://host[:port]`
/// as browsers send it in the `Origin` header (lower-case host, no default
/// port, no path). A value is one, valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedOrigin(String);

impl AllowedOrigin {
    /// Parses one origin of RENKEI_CORS_ALLOWED_ORIGINS; the error quotes the
    /// value and says what an origin looks like.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        let refuse = |why: &str| {
            Err(format!(
                "{value:?} is not an origin for RENKEI_CORS_ALLOWED_ORIGINS: {why} \
                 (an origin is scheme://host[:port], e.g. https://portal.example.jp; \
                 separate several with commas)"
            ))
        };
        if value.is_empty() {
            return refuse("it is empty (a stray comma?)");
        }
        // A wildcard would let every web page on the Internet drive the hub
        // with a token it got hold of: the portals are listed one by one.
        if value.contains('*') {
            return refuse("wildcards are not accepted; list each origin");
        }
        let url = match url::Url::parse(value) {
            Ok(url) => url,
            Err(e) => return refuse(&e.to_string()),
        };
        if !matches!(url.scheme(), "https" | "http") {
            return refuse("the scheme must be https (or http)");
        }
        if url.host_str().is_none_or(str::is_empty) {
            return refuse("it has no host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("it may not carry a user name or password");
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return refuse("it may not have a path, query or fragment");
        }
        Ok(AllowedOrigin(url.origin().ascii_serialization()))
    }

    /// The origin as browsers send it in the `Origin` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigin;

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        for (raw, origin) in [
            ("https://portal.example.jp", "https://portal.example.jp"),
            (" https://Portal.Example.JP/ ", "https://portal.example.jp"),
            ("https://portal.example.jp:443", "https://portal.example.jp"),
            ("http://localhost:5173", "http://localhost:5173"),
            (
                "https://ポータル.example.jp",
                "https://xn--5ckzcybvd.example.jp",
            ),
        ] {
            assert_eq!(AllowedOrigin::parse(raw).unwrap().as_str(), origin, "{raw}");
        }
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_the_value_quoted() {
        for raw in [
            "",
            "*",
            "https://*.example.jp",
            "portal.example.jp",
            "null",
            "ftp://portal.example.jp",
            "https://portal.example.jp/app",
            "https://portal.example.jp?x=1",
            "https://user:pw@portal.example.jp",
            "file:///tmp/x",
        ] {
            let err = AllowedOrigin::parse(raw).expect_err(raw);
            assert!(err.contains(&format!("{:?}", raw.trim())), "{err}");
            assert!(err.contains("RENKEI_CORS_ALLOWED_ORIGINS"), "{err}");
        }
    }
}
