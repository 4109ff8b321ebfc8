//! The chain: computing entry hashes and verifying the log.
//!
//! An entry's `hash` is an HMAC-SHA256, under the key its `key_id` names,
//! over its content and the previous entry's hash (`prev_hash`). So a
//! modified, deleted or inserted row breaks the chain from that row on, and
//! nobody without the key can recompute the chain after such a change or
//! append an entry that verifies.
//!
//! **Entries from before keyed signing.** Databases created before
//! migration `m20261204_000008_audit_keys` hold entries hashed with unkeyed
//! SHA-256 (`key_id` NULL). The migration records how many there were
//! (`audit_head.legacy_seq`); only entries `1..=legacy_seq` may be unkeyed,
//! every later one must be signed, and the first signed entry's MAC covers
//! the last unkeyed entry's hash. An unkeyed entry after the boundary is
//! reported, so "legacy" is no way to slip in an entry. The application
//! role cannot move the boundary (`renkei db grant` does not let it update
//! that column), but a database owner can, and could rewrite the whole log
//! as unkeyed entries: so unkeyed entries verify only together with a
//! checkpoint at or after the boundary, which such a rewrite contradicts.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use sha2::{Digest, Sha256};

use super::checkpoint::Sourced;
use super::keys::{AuditKey, AuditKeys, hex};
use entities::{audit_head, audit_log};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Distinguishes entry MACs from checkpoint MACs made with the same key.
const ENTRY_DOMAIN: &str = "renkei-audit-entry/2";

/// Entries are stored with microsecond precision (PostgreSQL's), so the hash
/// is computed over the time at that precision.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    crate::domain::to_micros(t)
}

/// Every field but the hash and the key id, as strings.
fn content(e: &audit_log::Model) -> [String; 12] {
    [
        e.seq.to_string(),
        e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        e.actor_kind.clone(),
        e.actor_id.to_string(),
        e.organization_id.to_string(),
        e.patient_id.map(|p| p.to_string()).unwrap_or_default(),
        e.action.clone(),
        e.categories.clone(),
        e.request_id.clone(),
        e.outcome.clone(),
        e.detail.clone().unwrap_or_default(),
        e.prev_hash.clone(),
    ]
}

/// The unkeyed hash of entries written before keyed signing: SHA-256 over
/// the fields as a JSON array of strings. Anyone can compute it; it is kept
/// only to verify those entries.
pub fn legacy_hash(e: &audit_log::Model) -> String {
    let canonical = serde_json::to_string(&content(e)).unwrap_or_default();
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// What an entry's MAC covers: a domain tag, the key id, and the fields as a
/// JSON array of strings (unambiguous whatever the fields contain).
fn keyed_message(e: &audit_log::Model, key_id: &str) -> Vec<u8> {
    let mut fields = vec![ENTRY_DOMAIN.to_string(), key_id.to_string()];
    fields.extend(content(e));
    serde_json::to_vec(&fields).unwrap_or_default()
}

/// The entry's MAC under `key` (what its `hash` must be when `key_id` names
/// that key).
pub fn keyed_hash(e: &audit_log::Model, key: &AuditKey) -> String {
    key.sign(&keyed_message(e, key.id()))
}

/// Signs an entry: sets its key id and its hash.
pub fn seal(e: &mut audit_log::Model, key: &AuditKey) {
    e.key_id = Some(key.id().to_string());
    e.hash = keyed_hash(e, key);
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries checked.
    pub entries: u64,
    /// Entries `1..=legacy` predate keyed signing (unkeyed SHA-256).
    pub legacy: i64,
    /// Checkpoints that matched the log.
    pub checkpoints: u64,
    /// The first place the log breaks, if it does.
    pub broken: Option<Break>,
    /// A checkpoint that is not valid itself (bad MAC, unknown key):
    /// where it was read and why.
    pub bad_checkpoint: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The entry number where the chain breaks (for a missing entry: the
    /// number expected there).
    pub seq: i64,
    pub reason: String,
}

/// Rows read per query while verifying: bounded memory on a log of millions.
const PAGE: u64 = 1000;

/// Walks the log in order and reports the first entry where it breaks: a
/// modified row (its MAC no longer matches its content), a deleted row (a
/// gap in the numbers, or the next row's `prev_hash` no longer matching), an
/// inserted row (an unexpected number, an unsigned entry, or a MAC that does
/// not verify), an entry signed with a key not among `keys` (named), a head
/// that disagrees with the last entry, and — against `checkpoints` — an
/// entry whose hash differs from a checkpoint's or a log that ends before a
/// checkpoint's entry (entries removed from the end, head moved back), and
/// unkeyed entries (from before keyed signing) that no checkpoint covers.
///
/// The hub may be appending meanwhile: the walk covers the entries up to the
/// head read at the start (the head moves in the same transaction as its
/// entries, so they are all committed); entries appended during the walk are
/// checked by the next run. Rows beyond the head read at the *end* were not
/// appended by the hub and are reported. Checkpoints must be read *before*
/// calling this: every checkpoint names an entry committed before it was
/// written, so none of them may lie beyond the head read here.
pub async fn verify(
    db: &impl ConnectionTrait,
    keys: &AuditKeys,
    checkpoints: &[Sourced],
) -> Result<Verification, DbErr> {
    let mut v = Verification {
        entries: 0,
        legacy: 0,
        checkpoints: 0,
        broken: None,
        bad_checkpoint: None,
    };
    for c in checkpoints {
        if let Err(reason) = c.checkpoint.check(keys) {
            v.bad_checkpoint = Some((c.source.clone(), reason));
            return Ok(v);
        }
    }
    let mut pending: Vec<&Sourced> = checkpoints.iter().collect();
    pending.sort_by_key(|c| c.checkpoint.seq);
    let mut pending = pending.into_iter().peekable();

    let Some(head) = audit_head::Entity::find_by_id(1).one(db).await? else {
        v.broken = Some(Break {
            seq: 0,
            reason: "the audit head row is missing".into(),
        });
        return Ok(v);
    };
    v.legacy = head.legacy_seq;
    // The hub keeps one head row (id 1) and reads no other: another is not
    // the hub's.
    let heads = audit_head::Entity::find().count(db).await?;
    if heads != 1 {
        v.broken = Some(Break {
            seq: 0,
            reason: format!(
                "the audit head table holds {heads} rows; the hub keeps one (id 1): rows were added"
            ),
        });
        return Ok(v);
    }
    if let Some(reason) = hidden_from_queries(db).await? {
        v.broken = Some(Break { seq: 0, reason });
        return Ok(v);
    }
    if let Some(reason) = sqlite_indexes_disagree(db).await? {
        v.broken = Some(Break { seq: 0, reason });
        return Ok(v);
    }
    if head.legacy_seq > head.seq {
        v.broken = Some(Break {
            seq: head.seq + 1,
            reason: format!(
                "the head records entry {} but entries up to {} were written before keyed signing: entries were removed from the end, or the head was moved back",
                head.seq, head.legacy_seq
            ),
        });
        return Ok(v);
    }
    // The walk starts at entry 1; a row numbered below it would be skipped
    // by the walk yet shown in access histories like any other.
    // Numbers only, here and beyond the head: a row no one can read back
    // is still a row that was inserted.
    if let Some(seq) = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Seq)
        .filter(audit_log::Column::Seq.lt(1))
        .order_by_asc(audit_log::Column::Seq)
        .into_tuple::<i64>()
        .one(db)
        .await?
    {
        v.broken = Some(Break {
            seq,
            reason: format!("entry {seq} lies before the first entry (1): it was inserted"),
        });
        return Ok(v);
    }
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    // The first entry whose row cannot be read as the hub stores its
    // entries, once a page failed on it: the walk checks the entries
    // before it, then names it.
    let mut unreadable: Option<(i64, String)> = None;
    while expected_seq <= head.seq {
        if let Some((seq, why)) = &unreadable
            && *seq == expected_seq
        {
            v.broken = Some(Break {
                seq: *seq,
                reason: format!(
                    "it cannot be read as the hub stores its entries ({why}): a value was rewritten in another type or encoding"
                ),
            });
            return Ok(v);
        }
        let upto = unreadable
            .as_ref()
            .map_or(head.seq, |(seq, _)| head.seq.min(seq - 1));
        let rows = match page(db, expected_seq, upto).await {
            Ok(rows) => rows,
            // Only SQLite keeps a value of another type than its column's;
            // on PostgreSQL such an error is the hub's, not the log's.
            Err(e)
                if unreadable.is_none()
                    && db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite
                    && is_decoding(&e) =>
            {
                match first_unreadable(db, expected_seq, upto).await? {
                    Some(found) => {
                        unreadable = Some(found);
                        continue;
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if rows.is_empty() {
            if let Some((seq, _)) = unreadable {
                v.broken = Some(Break {
                    seq: expected_seq,
                    reason: format!(
                        "entry {expected_seq} is missing (the next entry is {seq}): deleted"
                    ),
                });
                return Ok(v);
            }
            break;
        }
        let hidden = first_stored_apart(db, &rows).await?;
        for row in rows {
            let problem = if row.seq != expected_seq {
                Some(format!(
                    "entry {expected_seq} is missing (the next entry is {}): deleted",
                    row.seq
                ))
            } else if row.prev_hash != prev_hash {
                Some(
                    "its previous-hash does not match the entry before it: an entry before it was deleted, inserted or changed"
                        .into(),
                )
            } else {
                check_entry(&row, head.legacy_seq, keys).err().or_else(|| {
                    (hidden == Some(row.seq)).then(|| {
                        "its values are stored in another type or form than the hub writes them (the same values, so its MAC matches, but the hub's own queries — a patient's access history, a time range — no longer find it): the entry was rewritten to hide it".to_string()
                    })
                })
            };
            let problem = problem.or_else(|| {
                let mut mismatch = None;
                while let Some(c) = pending.next_if(|c| c.checkpoint.seq <= row.seq) {
                    if c.checkpoint.seq < row.seq {
                        continue;
                    }
                    if c.checkpoint.hash == row.hash {
                        v.checkpoints += 1;
                    } else if mismatch.is_none() {
                        mismatch = Some(format!(
                            "it differs from the checkpoint {} taken at {}: the log was rewritten behind the checkpoint",
                            c.source, c.checkpoint.at
                        ));
                    }
                }
                mismatch
            });
            if let Some(reason) = problem {
                v.broken = Some(Break {
                    seq: expected_seq,
                    reason,
                });
                return Ok(v);
            }
            prev_hash = row.hash;
            expected_seq += 1;
            v.entries += 1;
        }
    }
    let last_seq = expected_seq - 1;
    if last_seq != head.seq {
        v.broken = Some(Break {
            seq: last_seq + 1,
            reason: format!(
                "the log ends at entry {last_seq} but its head records entry {}: entries were removed from or added at the end",
                head.seq
            ),
        });
        return Ok(v);
    }
    if prev_hash != head.hash {
        v.broken = Some(Break {
            seq: last_seq,
            reason: "the head records another hash for this entry than the entry has: the head, or the last entry and its MAC, was rewritten".into(),
        });
        return Ok(v);
    }
    if let Some(c) = pending.next() {
        v.broken = Some(Break {
            seq: last_seq + 1,
            reason: format!(
                "the log ends at entry {last_seq}, but the checkpoint {} taken at {} records entry {}: entries were removed from the end and the head moved back",
                c.source, c.checkpoint.at, c.checkpoint.seq
            ),
        });
        return Ok(v);
    }
    // Anything beyond the head was not written by the hub. The last row is
    // read *before* the head: the hub moves the head in the transaction that
    // commits its entries, so every row it wrote by then is within the head
    // read after; a row beyond that head was put there by someone else.
    let last_row = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Seq)
        .order_by_desc(audit_log::Column::Seq)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    let now_head = audit_head::Entity::find_by_id(1)
        .one(db)
        .await?
        .map(|h| h.seq)
        .unwrap_or(head.seq);
    if last_row.is_some_and(|last| last > now_head) {
        let first = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Seq)
            .filter(audit_log::Column::Seq.gt(now_head))
            .order_by_asc(audit_log::Column::Seq)
            .into_tuple::<i64>()
            .one(db)
            .await?
            .or(last_row)
            .unwrap_or(now_head + 1);
        v.broken = Some(Break {
            seq: first,
            reason: format!(
                "entry {first} lies beyond the head (entry {now_head}): entries were added at the end"
            ),
        });
        return Ok(v);
    }
    // Unkeyed entries prove nothing by themselves: anyone who can write to
    // the database can compute them, and move the boundary. Without this,
    // an owner could rewrite the whole log as unkeyed entries, declare all
    // of it older than keyed signing, and have it verify. A checkpoint at or
    // after the boundary (signed, outside the database, and matched above)
    // is what fixes them.
    if head.legacy_seq > 0
        && !checkpoints
            .iter()
            .any(|c| c.checkpoint.seq >= head.legacy_seq)
    {
        v.broken = Some(Break {
            seq: 1,
            reason: format!(
                "entries 1–{legacy} are unkeyed (written before keyed signing, or rewritten as such by someone with write access to the database: anyone can compute them) and no checkpoint at or after entry {legacy} vouches for them: verify with --checkpoints or --checkpoints-redis",
                legacy = head.legacy_seq
            ),
        });
    }
    Ok(v)
}

/// Why the hub's own queries of `audit_log` may not see every entry, if
/// they may not. On PostgreSQL: row-level security on the table (its owner
/// can enable it with a policy that hides rows from every other role — the
/// hub's — while the owner, verifying, still sees them all), or a relation
/// other than a table (a view) answering to the name, or another relation
/// of the same name in another schema: the owner can put one (a copy
/// without some entries) before the hub's in the search path of the hub's
/// role (`ALTER ROLE … SET search_path`), and the hub would read and write
/// it while verifying, as the owner, resolves the name to the original. On SQLite
/// ([`sqlite_schema_altered`]): `audit_log` or `audit_head` not a table, or
/// a trigger on them that the hub did not create. `None` when the names
/// resolve, on this connection, to the hub's plain tables.
pub async fn hidden_from_queries(db: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    use sea_orm::{DatabaseBackend, Statement};
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        return sqlite_schema_altered(db).await;
    }
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(None);
    }
    // Every relation of the audit tables' names, in any schema but a
    // session's own temporary one (which no other session resolves).
    let sql = "SELECT count(*) AS found, \
                 string_agg(n.nspname || '.' || c.relname, ', ' ORDER BY n.nspname, c.relname) AS names \
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE c.relname IN ('audit_log', 'audit_head') \
                 AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";
    if let Some(row) = db
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await?
    {
        let found: i64 = row.try_get("", "found")?;
        if found > 2 {
            let names: String = row.try_get("", "names")?;
            return Ok(Some(format!(
                "the database holds more than one audit_log or audit_head ({names}): depending on a role's search_path the hub may read and write another than the one verified"
            )));
        }
    }
    let sql = "SELECT c.relkind::text AS kind, c.relrowsecurity AS secured, \
                 (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies \
               FROM pg_class c WHERE c.oid = to_regclass('audit_log')";
    let Some(row) = db
        .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await?
    else {
        return Ok(Some("there is no relation audit_log".into()));
    };
    let kind: String = row.try_get("", "kind")?;
    let secured: bool = row.try_get("", "secured")?;
    let policies: i64 = row.try_get("", "policies")?;
    Ok(if !matches!(kind.as_str(), "r" | "p") {
        Some(format!(
            "audit_log is not a table (relkind {kind:?}, a view?): what the hub reads of it may hide entries"
        ))
    } else if secured {
        Some(format!(
            "row-level security is enabled on audit_log ({policies} policies): it can hide entries from the hub's role while its owner still sees them all"
        ))
    } else {
        None
    })
}

/// The triggers the hub's migrations put on `audit_log` on SQLite, by name,
/// with their text (whitespace aside): whoever can write the file can add
/// others, or change these.
const SQLITE_AUDIT_TRIGGERS: [(&str, &str); 2] = [
    (
        "audit_log_no_update",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
    (
        "audit_log_no_delete",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
];

/// On SQLite, whether the audit tables are other than the hub made them.
/// Whoever can write the file can rename `audit_log` and put a view in its
/// place, with a trigger that passes the hub's inserts on: a view whose rows
/// depend on the connection (`total_changes()` is 0 on one that has only
/// read, as `verify`'s has) shows the hub a history with entries left out or
/// made up, while `verify` reads them all. SQLite has no row security; a
/// view, or a trigger the hub did not create, is the way to that.
async fn sqlite_schema_altered(db: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    use sea_orm::{DatabaseBackend, Statement};
    let rows = db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT type, name, tbl_name, sql FROM sqlite_master \
             WHERE name IN ('audit_log', 'audit_head') OR tbl_name IN ('audit_log', 'audit_head') \
             OR type = 'trigger'",
        ))
        .await?;
    // Whitespace and quotes aside: SQLite rewrites a trigger's text when its
    // table is renamed, quoting the name (`ON "audit_log"`).
    let words = |s: &str| {
        s.replace('"', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // What stands in the tables' place first: with the table renamed, its
    // triggers went along with it, and the view is the news.
    for row in &rows {
        let kind: String = row.try_get("", "type")?;
        let name: String = row.try_get("", "name")?;
        if (name == "audit_log" || name == "audit_head") && kind != "table" {
            return Ok(Some(format!(
                "{name} is a {kind}, not the hub's table: what the hub reads of it may hide entries or show made-up ones"
            )));
        }
    }
    let mut tables = Vec::new();
    for row in &rows {
        let kind: String = row.try_get("", "type")?;
        let name: String = row.try_get("", "name")?;
        let table: String = row.try_get("", "tbl_name")?;
        let sql: Option<String> = row.try_get("", "sql")?;
        match kind.as_str() {
            "table" if name == "audit_log" || name == "audit_head" => tables.push(name),
            "index" => {}
            "trigger" => {
                let expected = SQLITE_AUDIT_TRIGGERS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, text)| *text);
                let same = expected.is_some_and(|text| {
                    table == "audit_log" && sql.as_deref().map(words).as_deref() == Some(text)
                });
                // Triggers on other tables are none of the audit's, unless
                // they write to it.
                let touches = table == "audit_log"
                    || table == "audit_head"
                    || sql
                        .as_deref()
                        .is_some_and(|s| s.contains("audit_log") || s.contains("audit_head"));
                if touches && !same {
                    return Ok(Some(format!(
                        "the trigger {name:?} on {table} is not one the hub created: it can change what the hub writes to or reads of the audit log"
                    )));
                }
            }
            other => {
                return Ok(Some(format!(
                    "{name} is a {other}, not the hub's table: what the hub reads of it may hide entries or show made-up ones"
                )));
            }
        }
    }
    for name in ["audit_log", "audit_head"] {
        if !tables.iter().any(|t| t == name) {
            return Ok(Some(format!("there is no table {name}")));
        }
    }
    Ok(None)
}

/// On SQLite, whether `audit_log`'s indexes disagree with its rows. Whoever
/// can write the file can rebuild an index without an entry (a partial
/// index, its schema text put back): the hub's lookups by patient answer
/// from the index and skip the entry, while the walk by number still finds
/// it. SQLite's own check of the table and its indexes finds that. It reads
/// the whole table, so only `verify` asks it — not the hub's checkpoints.
async fn sqlite_indexes_disagree(db: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    use sea_orm::{DatabaseBackend, Statement};
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(None);
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "PRAGMA integrity_check(audit_log)",
        ))
        .await?;
    let found: Vec<String> = rows
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect();
    Ok((found != ["ok"]).then(|| {
        format!(
            "audit_log's indexes disagree with its rows, so the hub's lookups may skip entries (SQLite's integrity check: {})",
            found.join("; ")
        )
    }))
}

/// Rows matched per query by [`first_stored_apart`]: SQLite nests a chain
/// of `OR`s, and limits an expression's depth to 1000.
const MATCHED_PER_QUERY: usize = 100;

/// On SQLite, the first of `rows` that the hub's own queries would not find
/// by its values. A column there holds any type: a patient id rewritten as
/// TEXT of the same 16 bytes, or a time rewritten with another offset,
/// reads back as the same value — so its MAC matches — yet no longer equals
/// the BLOB or the text the hub binds when it filters (an access history by
/// patient, the audit log by time range), and the entry vanishes from them.
/// Each row is looked up by every one of its values, bound as the hub binds
/// them. PostgreSQL's typed columns cannot hold another form.
/// The entries `from`..=`upto`, a page of them, in order.
async fn page(
    db: &impl ConnectionTrait,
    from: i64,
    upto: i64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    audit_log::Entity::find()
        .filter(audit_log::Column::Seq.gte(from))
        .filter(audit_log::Column::Seq.lte(upto))
        .order_by_asc(audit_log::Column::Seq)
        .limit(PAGE)
        .all(db)
        .await
}

/// Whether `err` is a value that could not be decoded as its column's
/// type (text that is not UTF-8, a BLOB or number where the hub stores
/// text, a malformed uuid): SQLite keeps whatever is written into a
/// column, so an entry rewritten so fails to be read, not to verify.
fn is_decoding(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error};
    match err {
        DbErr::Type(_) | DbErr::TryIntoErr { .. } => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(**e, Error::ColumnDecode { .. } | Error::Decode(_))
        }
        _ => false,
    }
}

/// The first entry of `from`..=`upto` (within a page) that cannot be read,
/// and why: each read alone, by its number.
async fn first_unreadable(
    db: &impl ConnectionTrait,
    from: i64,
    upto: i64,
) -> Result<Option<(i64, String)>, DbErr> {
    let seqs: Vec<i64> = audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::Seq)
        .filter(audit_log::Column::Seq.gte(from))
        .filter(audit_log::Column::Seq.lte(upto))
        .order_by_asc(audit_log::Column::Seq)
        .limit(PAGE)
        .into_tuple()
        .all(db)
        .await?;
    for seq in seqs {
        match audit_log::Entity::find_by_id(seq).one(db).await {
            Err(e) if is_decoding(&e) => return Ok(Some((seq, e.to_string()))),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(None)
}

async fn first_stored_apart(
    db: &impl ConnectionTrait,
    rows: &[audit_log::Model],
) -> Result<Option<i64>, DbErr> {
    use sea_orm::{Condition, DatabaseBackend};
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Ok(None);
    }
    fn nullable<T: Into<sea_orm::Value>>(column: audit_log::Column, v: Option<T>) -> Condition {
        match v {
            Some(v) => Condition::all().add(column.eq(v)),
            None => Condition::all().add(column.is_null()),
        }
    }
    for chunk in rows.chunks(MATCHED_PER_QUERY) {
        let mut any = Condition::any();
        for r in chunk {
            any = any.add(
                Condition::all()
                    .add(audit_log::Column::Seq.eq(r.seq))
                    .add(audit_log::Column::OccurredAt.eq(r.occurred_at))
                    .add(audit_log::Column::ActorKind.eq(r.actor_kind.as_str()))
                    .add(audit_log::Column::ActorId.eq(r.actor_id))
                    .add(audit_log::Column::OrganizationId.eq(r.organization_id))
                    .add(nullable(audit_log::Column::PatientId, r.patient_id))
                    .add(audit_log::Column::Action.eq(r.action.as_str()))
                    .add(audit_log::Column::Categories.eq(r.categories.as_str()))
                    .add(audit_log::Column::RequestId.eq(r.request_id.as_str()))
                    .add(audit_log::Column::Outcome.eq(r.outcome.as_str()))
                    .add(nullable(audit_log::Column::Detail, r.detail.clone()))
                    .add(audit_log::Column::PrevHash.eq(r.prev_hash.as_str()))
                    .add(audit_log::Column::Hash.eq(r.hash.as_str()))
                    .add(nullable(audit_log::Column::KeyId, r.key_id.clone())),
            );
        }
        let found: std::collections::HashSet<i64> = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Seq)
            .filter(any)
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect();
        if let Some(r) = chunk.iter().find(|r| !found.contains(&r.seq)) {
            return Ok(Some(r.seq));
        }
    }
    Ok(None)
}

/// Checks one entry's own hash: unkeyed for entries up to `legacy_seq`,
/// a MAC under a configured key after it.
pub fn check_entry(
    row: &audit_log::Model,
    legacy_seq: i64,
    keys: &AuditKeys,
) -> Result<(), String> {
    if row.seq <= legacy_seq {
        if row.key_id.is_some() {
            return Err(format!(
                "it carries a key id but lies among the entries written before keyed signing (1–{legacy_seq}): it was inserted or rewritten"
            ));
        }
        if legacy_hash(row) != row.hash {
            return Err("its content does not match its hash: the entry was modified".into());
        }
        return Ok(());
    }
    let Some(key_id) = &row.key_id else {
        return Err(if legacy_seq == 0 {
            "it is not signed (no key id): it was inserted or rewritten by someone without the audit key".into()
        } else {
            format!(
                "it is not signed (no key id), and only entries 1–{legacy_seq}, written before keyed signing, may be: it was inserted or rewritten by someone without the audit key"
            )
        });
    };
    // The MAC reads an absent detail as an empty one, so NULL rewritten as
    // '' (or back) keeps it; the hub writes no empty detail.
    if row.detail.as_deref() == Some("") {
        return Err(
            "its detail is empty, which the hub never writes (an entry without detail has none): NULL was rewritten as ''"
                .into(),
        );
    }
    let Some(key) = keys.get(key_id) else {
        return Err(format!(
            "it is signed with key id {key_id:?}, which is not configured (configured: {}): configure that key (RENKEI_AUDIT_KEY or RENKEI_AUDIT_KEY_FILE) to verify it, or the entry was forged",
            keys.ids().join(", ")
        ));
    };
    if !key.verifies(&keyed_message(row, key_id), &row.hash) {
        return Err(format!(
            "its content does not match its MAC under key {key_id:?}: the entry was modified, or written by someone without the key"
        ));
    }
    Ok(())
}
