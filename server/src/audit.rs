//! The audit log's keys and checkpoints, as the server configures them.
//!
//! - [`serve_keys`] decides which keys `renkei serve` signs with, and refuses
//!   to start without one outside the demo (like the JWT key).
//! - [`Checkpointer`] writes signed checkpoints of the log's head
//!   (`renkei_schema::audit::checkpoint`) every
//!   `RENKEI_AUDIT_CHECKPOINT_SECONDS` and at shutdown: to an append-only file
//!   (`RENKEI_AUDIT_CHECKPOINT_FILE`) and, where Redis is configured, to the
//!   stream `<prefix>:audit-checkpoints`. It runs beside the requests and
//!   never delays one: a sink that fails is logged and tried again at the
//!   next checkpoint.
//! - [`read_checkpoints`] reads them back for `renkei audit verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use renkei_schema::audit::chain;
use renkei_schema::audit::checkpoint::{Checkpoint, Sourced};
use renkei_schema::audit::keys::AuditKeys;
use renkei_schema::clock::SharedClock;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::Mutex;

use crate::config::{AuditKeyConfig, CheckpointConfig};

/// The file written inside a directory given as `RENKEI_AUDIT_CHECKPOINT_FILE`.
pub const CHECKPOINT_FILE_NAME: &str = "audit-checkpoints.jsonl";
/// How long a checkpoint waits for Redis before giving up until the next one.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// The Redis stream of a network's checkpoints.
pub fn checkpoint_stream(prefix: &str) -> String {
    format!("{prefix}:audit-checkpoints")
}

/// The keys `renkei serve` signs with: the configured ones; with `--demo`
/// and none configured, the public demo key (loudly); otherwise an error
/// that says what to set.
pub fn serve_keys(config: &AuditKeyConfig, demo: bool) -> anyhow::Result<AuditKeys> {
    match config.load()? {
        Some(keys) => {
            if keys.contains_demo_secret() && !demo {
                anyhow::bail!(
                    "the configured audit key is the public demo key: anyone could forge the audit log. Generate a secret (e.g. `openssl rand -base64 48`) and set RENKEI_AUDIT_KEY=ID:SECRET"
                );
            }
            Ok(keys)
        }
        None if demo => {
            tracing::warn!(
                "THE AUDIT LOG IS SIGNED WITH THE PUBLIC DEMO KEY: anyone can forge its entries. This is for the fictional demo region only; configure RENKEI_AUDIT_KEY for real data"
            );
            Ok(AuditKeys::demo())
        }
        None => anyhow::bail!(
            "no audit key configured: set RENKEI_AUDIT_KEY=ID:SECRET (a random secret of at least 32 bytes, e.g. `openssl rand -base64 48`, kept off the database host) or RENKEI_AUDIT_KEY_FILE, or run with --demo for the demo region"
        ),
    }
}

/// The keys `renkei audit verify` accepts: the configured ones, plus the
/// demo key with `--demo`.
pub fn verify_keys(config: &AuditKeyConfig, demo: bool) -> anyhow::Result<AuditKeys> {
    match (config.load()?, demo) {
        (Some(keys), true) => Ok(keys.with_demo_key()),
        (Some(keys), false) => Ok(keys),
        (None, true) => Ok(AuditKeys::demo()),
        (None, false) => anyhow::bail!(
            "audit verify needs the audit key(s): set RENKEI_AUDIT_KEY or RENKEI_AUDIT_KEY_FILE as for `renkei serve`, including every key the log was signed with since the last rotation (or --demo for a demo database)"
        ),
    }
}

/// Writes checkpoints of the head (see the module documentation).
pub struct Checkpointer {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    db: DatabaseConnection,
    keys: Arc<AuditKeys>,
    clock: SharedClock,
    instance: String,
    file: Option<PathBuf>,
    redis: Option<(redis::Client, String)>,
    /// The entry (number and hash) this instance checkpointed last — or, at
    /// its start, the newest valid checkpoint in its file, whoever wrote it
    /// ([`Inner::seed`]): an idle log is not checkpointed again and again,
    /// and the log must still hold that entry unchanged at the next
    /// checkpoint.
    last: Mutex<Option<(i64, String)>>,
    /// Whether `last` was seeded from the file (once, at the first tick).
    seeded: std::sync::atomic::AtomicBool,
}

impl Checkpointer {
    /// Starts writing checkpoints, or returns `None` (with a warning) when
    /// no sink is configured.
    pub fn start(
        config: &CheckpointConfig,
        redis: Option<(&str, &str)>,
        db: DatabaseConnection,
        keys: Arc<AuditKeys>,
        clock: SharedClock,
    ) -> anyhow::Result<Option<Checkpointer>> {
        if config.audit_checkpoint_seconds == 0 || config.audit_checkpoint_seconds > 24 * 3600 {
            anyhow::bail!("RENKEI_AUDIT_CHECKPOINT_SECONDS must be between 1 and 86400");
        }
        let redis = match redis {
            Some((url, prefix)) => Some((
                redis::Client::open(url).context("RENKEI_REDIS_URL is not a Redis URL")?,
                checkpoint_stream(prefix),
            )),
            None => None,
        };
        let file = config.audit_checkpoint_file.as_ref().map(|p| {
            if p.is_dir() {
                p.join(CHECKPOINT_FILE_NAME)
            } else {
                p.clone()
            }
        });
        // Fail at start on a path that cannot take a line (a typo, a missing
        // mount), rather than log it at the first checkpoint while the log
        // goes unanchored.
        if let Some(path) = &file {
            open_for_append(path).with_context(|| {
                format!(
                    "RENKEI_AUDIT_CHECKPOINT_FILE: cannot append to {}",
                    path.display()
                )
            })?;
        }
        if file.is_none() && redis.is_none() {
            tracing::warn!(
                "audit checkpoints are not written anywhere: someone with write access to the database could cut entries off the end of the log unnoticed. Set RENKEI_AUDIT_CHECKPOINT_FILE (on storage the database host cannot rewrite) or RENKEI_REDIS_URL"
            );
            return Ok(None);
        }
        let inner = Arc::new(Inner {
            db,
            keys,
            clock,
            instance: instance_name(),
            file,
            redis,
            last: Mutex::new(None),
            seeded: std::sync::atomic::AtomicBool::new(false),
        });
        let every = Duration::from_secs(config.audit_checkpoint_seconds);
        let task = tokio::spawn({
            let inner = inner.clone();
            async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    inner.checkpoint().await;
                }
            }
        });
        tracing::info!(
            file = ?inner.file,
            redis = inner.redis.is_some(),
            seconds = config.audit_checkpoint_seconds,
            "writing audit checkpoints"
        );
        Ok(Some(Checkpointer { inner, task }))
    }

    /// Writes a last checkpoint and stops (at shutdown, after the last
    /// request's entries are committed).
    pub async fn finish(self) {
        self.task.abort();
        self.inner.checkpoint().await;
    }
}

impl Inner {
    /// Checkpoints the current head if it moved since this instance's last
    /// checkpoint. Failures are logged; the next tick tries again.
    async fn checkpoint(&self) {
        let mut last = self.last.lock().await;
        if !self.seeded.swap(true, std::sync::atomic::Ordering::Relaxed) && last.is_none() {
            *last = self.seed().await;
        }
        let head = match entities::audit_head::Entity::find_by_id(1)
            .one(&self.db)
            .await
        {
            Ok(Some(head)) => head,
            Ok(None) => {
                tracing::error!("audit checkpoint: the audit head row is missing");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint: cannot read the head; trying again later");
                return;
            }
        };
        if head.seq == 0 {
            return;
        }
        if let Some((seq, hash)) = &*last {
            if head.seq == *seq && head.hash == *hash {
                return;
            }
            // The hub only moves the head forward and never changes an
            // entry: the entry this instance vouched for last must still be
            // there as it was. If not, the log was cut (and perhaps appended
            // to since) behind that checkpoint, and a new one would vouch for
            // the cut.
            let kept = if head.seq < *seq {
                Ok(false)
            } else {
                entities::audit_log::Entity::find_by_id(*seq)
                    .one(&self.db)
                    .await
                    .map(|e| e.is_some_and(|e| e.hash == *hash))
            };
            match kept {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        seq = *seq,
                        head = head.seq,
                        "AUDIT LOG TAMPERING SUSPECTED: the entry this instance checkpointed last was removed or changed (the head moved back?); no checkpoint written. Run `renkei audit verify --checkpoints`"
                    );
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "audit checkpoint: cannot read the last checkpointed entry; trying again later");
                    return;
                }
            }
        }
        // Entries hidden from the hub's queries (row-level security, a
        // view in the table's place) would be missing from the histories
        // it shows: vouch for nothing until that is undone.
        match chain::hidden_from_queries(&self.db).await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                tracing::error!(
                    "AUDIT LOG TAMPERING SUSPECTED: {reason}; no checkpoint written. Run `renkei audit verify`"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint: cannot read how audit_log is defined; trying again later");
                return;
            }
        }
        // Sign only what the hub wrote: the head must name an entry that
        // verifies. Otherwise someone changed the log, and a checkpoint would
        // vouch for it.
        let entry = match entities::audit_log::Entity::find_by_id(head.seq)
            .one(&self.db)
            .await
        {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint: cannot read the head's entry; trying again later");
                return;
            }
        };
        let valid = entry.as_ref().is_some_and(|e| {
            e.hash == head.hash && chain::check_entry(e, head.legacy_seq, &self.keys).is_ok()
        });
        if !valid {
            tracing::error!(
                seq = head.seq,
                "AUDIT LOG TAMPERING SUSPECTED: the head does not name an entry that verifies; no checkpoint written. Run `renkei audit verify`"
            );
            return;
        }
        let checkpoint = Checkpoint::sign(
            head.seq,
            &head.hash,
            self.clock.now(),
            &self.instance,
            self.keys.signing(),
        );
        let line = checkpoint.to_line();
        let mut written = false;
        if let Some(path) = &self.file {
            let path = path.clone();
            let text = format!("{line}\n");
            match tokio::task::spawn_blocking(move || append_line(&path, &text)).await {
                Ok(Ok(())) => written = true,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "audit checkpoint: the file could not be written")
                }
                Err(e) => tracing::error!(error = %e, "audit checkpoint: the file writer failed"),
            }
        }
        if let Some((client, stream)) = &self.redis {
            match xadd(client, stream, &line).await {
                Ok(()) => written = true,
                Err(e) => {
                    tracing::warn!(error = %e, "audit checkpoint: Redis did not take it; trying again at the next one")
                }
            }
        }
        if written {
            *last = Some((head.seq, head.hash.clone()));
            tracing::debug!(seq = head.seq, "audit checkpoint written");
        }
    }
}

impl Inner {
    /// The newest checkpoint of the file that verifies with the hub's keys:
    /// what an instance starting on a log that was cut behind it (its
    /// entries removed and the head moved back while no hub ran, then
    /// appended to) must not vouch past — as a running instance does not
    /// past its own last checkpoint. `None` without a file or a readable
    /// one (logged).
    async fn seed(&self) -> Option<(i64, String)> {
        let path = self.file.clone()?;
        let keys = self.keys.clone();
        let tail = tokio::task::spawn_blocking(move || file_tail(&path, SEED_TAIL_BYTES)).await;
        let text = match tail {
            Ok(Ok(text)) => text,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "audit checkpoint: the checkpoint file could not be read at start; checkpoints go on from the current head");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit checkpoint: the checkpoint file reader failed");
                return None;
            }
        };
        // Lines that are not checkpoints (cut by the tail, being written)
        // and checkpoints that do not verify are passed over.
        text.lines()
            .filter_map(|line| Checkpoint::parse(line).ok())
            .filter(|c| c.check(&keys).is_ok())
            .max_by_key(|c| c.seq)
            .map(|c| (c.seq, c.hash))
    }
}

/// How much of the end of the checkpoint file an instance reads at start:
/// the newest checkpoints, not months of them.
const SEED_TAIL_BYTES: u64 = 64 * 1024;

/// The last `bytes` of a file (all of it if shorter), as text; a first
/// line cut in the middle is left to fail to parse.
fn file_tail(path: &Path, bytes: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(bytes)))?;
    let mut raw = Vec::new();
    file.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Appends one line with one write to a file opened for appending only
/// (`O_APPEND`: several instances may share the file; lines do not
/// interleave on a local filesystem), and flushes it to the disk.
fn append_line(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open_for_append(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// Opens (creating) a checkpoint file for appending only.
fn open_for_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path)
}

async fn xadd(client: &redis::Client, stream: &str, line: &str) -> anyhow::Result<()> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("checkpoint")
        .arg(line)
        .query_async::<String>(&mut con)
        .await?;
    Ok(())
}

/// `host:pid`, to tell the instances' checkpoints apart when people read them.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// Reads checkpoints from files (a directory: every `*.jsonl` in it) and,
/// when given, a Redis stream. A line that is not a checkpoint is an error:
/// the sinks hold nothing else, so it was damaged or planted.
pub async fn read_checkpoints(
    paths: &[PathBuf],
    redis: Option<(&str, &str)>,
) -> anyhow::Result<Vec<Sourced>> {
    let mut found = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading the checkpoint directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading the checkpoint file {}", file.display()))?;
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let source = format!("{}:{}", file.display(), i + 1);
                match Checkpoint::parse(line) {
                    Ok(checkpoint) => found.push(Sourced { checkpoint, source }),
                    // A hub may be appending this very line.
                    Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {
                        eprintln!("note: {source} is incomplete (being written?); skipped");
                    }
                    Err(e) => anyhow::bail!("{source}: {e}"),
                }
            }
        }
    }
    if let Some((url, prefix)) = redis {
        found.extend(read_stream(url, &checkpoint_stream(prefix)).await?);
    }
    Ok(found)
}

async fn read_stream(url: &str, stream: &str) -> anyhow::Result<Vec<Sourced>> {
    let client = redis::Client::open(url).context("--checkpoints-redis is not a Redis URL")?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .context("connecting to Redis for checkpoints")?;
    let mut found = Vec::new();
    let mut start = "-".to_string();
    loop {
        let page: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await
            .with_context(|| format!("reading the Redis stream {stream}"))?;
        let Some((last_id, _)) = page.last() else {
            break;
        };
        start = format!("({last_id}");
        for (id, fields) in page {
            let source = format!("redis {stream} {id}");
            let line = fields
                .chunks(2)
                .find(|kv| kv.len() == 2 && kv[0] == "checkpoint")
                .map(|kv| kv[1].clone())
                .ok_or_else(|| {
                    anyhow::anyhow!("{source}: not a checkpoint (no `checkpoint` field)")
                })?;
            let checkpoint =
                Checkpoint::parse(&line).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            found.push(Sourced { checkpoint, source });
        }
    }
    Ok(found)
}
