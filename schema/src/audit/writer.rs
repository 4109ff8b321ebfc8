//! Group commit of audit entries.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use tokio::sync::{mpsc, oneshot};

use super::EntryDraft;
use super::chain::{seal, truncate_to_micros};
use crate::clock::SharedClock;
use crate::error::{ApiError, ApiResult};
use entities::{audit_head, audit_log};

/// Requests whose entries share one transaction, at most. Bounds the
/// transaction's size; under heavy load batches fill up to this.
const MAX_JOBS_PER_BATCH: usize = 256;
/// How many requests may wait for the writer before callers are slowed.
const QUEUE: usize = 4096;
/// A request gives up waiting for its entry after this long, and fails.
const APPEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Rows per INSERT statement (14 columns; well below SQLite's bound-parameter limit).
const ROWS_PER_INSERT: usize = 500;

struct Job {
    entries: Vec<EntryDraft>,
    done: oneshot::Sender<Result<(), Failure>>,
}

/// Why a batch was not committed: the cause (logged), and whether the
/// database was unreachable — then the requests fail with
/// `DATABASE_UNAVAILABLE` (retry later) rather than `INTERNAL`.
#[derive(Clone)]
struct Failure {
    cause: String,
    unavailable: bool,
}

/// Told of each group commit the writer makes: how many requests' entries
/// it held, and how many entries (the server's metrics read it). Called on
/// the writer's task after the commit; it must be cheap.
pub type BatchObserver = std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>;

/// A handle to the one task that appends to the log.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Job>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub fn start(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self::start_observed(db, clock, None)
    }

    /// [`AuditWriter::start`], telling `on_batch` of every committed batch.
    pub fn start_observed(
        db: DatabaseConnection,
        clock: SharedClock,
        on_batch: Option<BatchObserver>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, clock, rx, on_batch));
        AuditWriter { tx }
    }

    /// Requests waiting for the writer (not counting the batch it is
    /// writing): a steadily high number means the log is the bottleneck.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Appends entries and waits until they are committed. An error means they
    /// were not, and the caller must not release the data they describe.
    pub async fn append(&self, entries: Vec<EntryDraft>) -> ApiResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { entries, done })
            .await
            .map_err(|_| ApiError::internal("the audit writer has stopped"))?;
        match tokio::time::timeout(APPEND_TIMEOUT, wait).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) if e.unavailable => Err(ApiError::DatabaseUnavailable(e.cause)),
            Ok(Ok(Err(e))) => Err(ApiError::internal(format_args!(
                "audit append failed: {}",
                e.cause
            ))),
            Ok(Err(_)) => Err(ApiError::internal("the audit writer dropped the request")),
            // The log's statements waited too long (the database slow, or
            // its head locked by a stalled session): nothing was released,
            // and the same request may succeed shortly.
            Err(_) => Err(ApiError::DatabaseUnavailable(
                "timed out waiting for the audit log".into(),
            )),
        }
    }
}

async fn run(
    db: DatabaseConnection,
    clock: SharedClock,
    mut rx: mpsc::Receiver<Job>,
    on_batch: Option<BatchObserver>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // A panic while appending fails this batch's requests, not the
        // writer: every later request would fail until a restart.
        let result = match std::panic::AssertUnwindSafe(append_batch(&db, &clock, &jobs))
            .catch_unwind()
            .await
        {
            Ok(appended) => appended.map_err(|e| Failure {
                cause: e.to_string(),
                unavailable: crate::error::database_unavailable(&e),
            }),
            Err(_) => Err(Failure {
                cause: "the append panicked".to_string(),
                unavailable: false,
            }),
        };
        match &result {
            Err(e) => {
                tracing::error!(error = %e.cause, unavailable = e.unavailable, entries = jobs.len(), "audit batch failed; the requests fail");
            }
            Ok(()) => {
                if let Some(observe) = &on_batch {
                    observe(jobs.len(), jobs.iter().map(|j| j.entries.len()).sum());
                }
            }
        }
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}

async fn append_batch(
    db: &DatabaseConnection,
    clock: &SharedClock,
    jobs: &[Job],
) -> Result<(), DbErr> {
    let txn = crate::services::begin_write(db).await?;
    let entries: Vec<&EntryDraft> = jobs.iter().flat_map(|j| j.entries.iter()).collect();
    append_in(&txn, &entries, clock.now()).await?;
    txn.commit().await
}

/// Appends entries inside the caller's transaction: they commit or roll back
/// with it. Writes use this, so a change and its audit entry are one unit —
/// never a change without its entry. Touching the head row first takes its
/// lock (a row lock on PostgreSQL, the write lock on SQLite), so writers on
/// every instance append in turn and each continues the chain it read.
///
/// Each entry is signed with the process's audit key ([`super::keys`]); with
/// no key installed nothing is written and the caller's transaction fails, so
/// no change ever commits with an entry that would not verify.
pub async fn append_in(
    txn: &impl ConnectionTrait,
    entries: &[&EntryDraft],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    let keys = super::keys::installed().ok_or_else(|| {
        DbErr::Custom(
            "no audit key is installed in this process: audit entries cannot be signed".into(),
        )
    })?;
    let key = keys.signing();
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Seq, Expr::col(audit_head::Column::Seq))
        .filter(audit_head::Column::Id.eq(1))
        .exec(txn)
        .await?;
    let head = audit_head::Entity::find_by_id(1)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head".into()))?;
    let occurred_at = truncate_to_micros(now);
    let mut seq = head.seq;
    let mut prev = head.hash;
    let mut rows = Vec::new();
    for draft in entries {
        // The head can hold any number the database role may write (moving
        // it is tampering `verify` reports): at the largest there is no
        // next, and the append fails as any failed append does.
        seq = seq.checked_add(1).ok_or_else(|| {
            DbErr::Custom(format!(
                "the audit head names entry {} — no entry can follow it: the head was moved (run `renkei audit verify`)",
                head.seq
            ))
        })?;
        let mut model = audit_log::Model {
            seq,
            occurred_at,
            actor_kind: draft.actor_kind.to_string(),
            actor_id: draft.actor_id,
            organization_id: draft.organization_id,
            patient_id: draft.patient_id,
            action: draft.action.as_str().to_string(),
            categories: draft
                .categories
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(","),
            request_id: draft.request_id.clone(),
            outcome: draft.outcome.to_string(),
            // No detail is stored as none (NULL), never as '': the MAC
            // covers an absent detail as an empty one, so '' is what
            // `chain::check_entry` takes for NULL rewritten.
            detail: draft.detail.clone().filter(|d| !d.is_empty()),
            prev_hash: prev.clone(),
            hash: String::new(),
            key_id: None,
        };
        seal(&mut model, key);
        prev = model.hash.clone();
        rows.push(model);
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        audit_log::Entity::insert_many(chunk.iter().cloned().map(|m| audit_log::ActiveModel {
            seq: Set(m.seq),
            occurred_at: Set(m.occurred_at),
            actor_kind: Set(m.actor_kind),
            actor_id: Set(m.actor_id),
            organization_id: Set(m.organization_id),
            patient_id: Set(m.patient_id),
            action: Set(m.action),
            categories: Set(m.categories),
            request_id: Set(m.request_id),
            outcome: Set(m.outcome),
            detail: Set(m.detail),
            prev_hash: Set(m.prev_hash),
            hash: Set(m.hash),
            key_id: Set(m.key_id),
        }))
        .exec(txn)
        .await?;
    }
    audit_head::Entity::update(audit_head::ActiveModel {
        id: Set(1),
        seq: Set(seq),
        hash: Set(prev),
        // Fixed by the migration that introduced keyed signing; never moved.
        legacy_seq: NotSet,
    })
    .exec(txn)
    .await?;
    Ok(())
}
