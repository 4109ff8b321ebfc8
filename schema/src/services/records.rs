//! Records: writes from facility systems (idempotent, versioned, all-or-nothing
//! batches) and the reads behind the summary and the timeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::policy::PatientAccess;
use crate::principal::Principal;
use crate::records::{FOREVER, RecordData, RecordKind, SummaryRule};
use entities::{record, record_version};

/// A record's status.
pub const ACTIVE: &str = "ACTIVE";
/// Removed by its author: kept, readable in the history, out of the summary.
pub const ENTERED_IN_ERROR: &str = "ENTERED_IN_ERROR";

/// Longest accepted source record ID.
pub const SOURCE_ID_MAX: usize = 128;

/// A validated record to write.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub patient_id: Uuid,
    pub source_record_id: Option<String>,
    pub effective_at: DateTime<Utc>,
    pub undisclosed: bool,
    pub data: RecordData,
}

/// What a write did, as the writer sees the record: versions are counted
/// as `Record.version` counts them (versions it may not read, and changes
/// only to what it may not read, do not count).
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// A new record.
    Created,
    /// A resubmission with changes: a new version of the same record, of
    /// which you may read an earlier version.
    Updated,
    /// A resubmission identical to the current version — or differing from
    /// the last version you may read only in what you may not read:
    /// nothing you can see changed.
    Unchanged,
}

/// A written record: the record as its item left it, its content (what
/// its `data` holds, parsed), and what the write did.
pub type Written = (record::Model, RecordData, WriteOutcome);

/// Writes records in one transaction: all or nothing. The caller has checked
/// write access for every item (`access` holds the verdicts) and validated the
/// payloads; an error names the item's index (and field, where there is one).
///
/// Set-based: whatever the batch's size, the transaction runs a fixed number
/// of statements per kind of change — it locks the patients, reads the
/// records the items' source IDs name and the summary rows of the series they
/// touch, then inserts the new records, keeps the replaced versions and moves
/// the summary flag in multi-row statements (only a changed record is updated
/// one row at a time). The items are folded in memory in input order first,
/// so a batch means what writing its items one after the other would mean: an
/// item resubmitting an earlier item's source ID is a new version of it.
///
/// Concurrent writes: the transaction first locks the rows of the batch's
/// patients, in id order ([`lock_patients`]), so writes touching one
/// patient's records run one after the other — each reads what the previous
/// one committed: a resubmission racing another finds the record the other
/// created (`UPDATED` / `UNCHANGED`, never a duplicate) and numbers its
/// version after the other's. Because every batch takes its locks in the
/// same order before touching a record, two batches over the same patients
/// in opposite orders wait for each other instead of deadlocking.
pub async fn write(
    db: &DatabaseConnection,
    stamp: &AuditStamp,
    access: &HashMap<Uuid, PatientAccess>,
    items: Vec<NewRecord>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Written>> {
    // One WRITE entry per patient, listing every category the batch wrote
    // of them — the trail's rule for reads ([`crate::audit::AuditTrail`]:
    // one entry per patient and action per request). A batch of 500 lab
    // results of 40 patients seals and stores 40 entries, not 500 copies.
    let mut written: BTreeMap<Uuid, BTreeSet<DataCategory>> = BTreeMap::new();
    for item in &items {
        written
            .entry(item.patient_id)
            .or_default()
            .extend(item.data.written_categories());
    }
    let txn = super::begin_write(db).await?;
    lock_patients(&txn, items.iter().map(|i| i.patient_id)).await?;
    let mut batch = Batch::new(&stamp.principal, now);
    batch.load_sources(&txn, &items).await?;
    for (index, item) in items.into_iter().enumerate() {
        let Some(writer) = access.get(&item.patient_id) else {
            return Err(ApiError::not_found("patient"));
        };
        batch.add(&txn, writer, item).await.map_err(|e| match e {
            // As the GraphQL layer names an item it refuses.
            ApiError::Forbidden(_) | ApiError::ForbiddenAbout { .. } => {
                e.reworded(|m| format!("input.records[{index}]: {m}"))
            }
            e => e.in_field(&format!("input.records[{index}]")),
        })?;
    }
    batch.settle_summary(&txn).await?;
    // A version replaced in another category (an infection record once
    // SENSITIVE_HIV) is a write of that category too.
    for (patient, category) in batch.replaced.drain(..) {
        written.entry(patient).or_default().insert(category);
    }
    let entries: Vec<_> = written
        .into_iter()
        .map(|(patient, categories)| {
            stamp.write(patient, &categories.into_iter().collect::<Vec<_>>())
        })
        .collect();
    let out = batch.apply(&txn).await?;
    let entries: Vec<_> = entries.iter().collect();
    crate::audit::append_in(&txn, &entries, now).await?;
    txn.commit().await?;
    Ok(out)
}

/// Rows per multi-row statement: 16 columns × 500 stays far below both
/// databases' limits on bound parameters (PostgreSQL 65,535; SQLite 32,766).
const ROWS_PER_STATEMENT: usize = 500;

/// Locks the patients' rows in id order — one order for every writer of
/// records, so that no two can wait for each other in a circle — in one
/// statement: PostgreSQL locks the rows of `… ORDER BY id FOR UPDATE` as the
/// sorted rows come out. SQLite's `BEGIN IMMEDIATE` already holds the write
/// lock; the statement there only checks that every patient exists.
/// `NOT_FOUND` if one does not.
pub(crate) async fn lock_patients(
    txn: &impl ConnectionTrait,
    patients: impl IntoIterator<Item = Uuid>,
) -> ApiResult<()> {
    use entities::patient;
    let ordered: Vec<Uuid> = patients
        .into_iter()
        .collect::<BTreeSet<Uuid>>()
        .into_iter()
        .collect();
    let backend = txn.get_database_backend();
    let query = patient::Entity::find()
        .select_only()
        .column(patient::Column::Id)
        .filter(super::id_in(
            backend,
            (patient::Entity, patient::Column::Id),
            &ordered,
        ))
        .order_by_asc(patient::Column::Id);
    let found: Vec<Uuid> = super::locked(txn, query).into_tuple().all(txn).await?;
    if found.len() != ordered.len() {
        return Err(ApiError::not_found("patient"));
    }
    Ok(())
}

fn author(principal: &Principal) -> (Option<Uuid>, Option<Uuid>) {
    match principal {
        Principal::Member { member_id, .. } => (Some(*member_id), None),
        Principal::System { api_key_id, .. } => (None, Some(*api_key_id)),
    }
}

fn taken(source: Option<&str>) -> ApiError {
    ApiError::conflict_in(
        "sourceRecordId",
        format!(
            "{:?} already names another patient's record of this kind",
            source.unwrap_or_default()
        ),
    )
}

/// A series of a patient's records: the summary shows its newest.
type SeriesId = (Uuid, String, Option<String>);

/// A record the batch touches, as it will be when the batch commits.
struct Row {
    model: record::Model,
    /// It existed before the batch (else the batch inserts it).
    stored: bool,
    /// The batch changed it (a stored row is then updated).
    changed: bool,
    /// For a stored row that carried the summary flag when read: its series
    /// and effective time then — a change to either may hand the flag on.
    flagged_as: Option<(SeriesId, DateTime<Utc>)>,
}

impl Row {
    fn series(&self) -> SeriesId {
        (
            self.model.patient_id,
            self.model.kind.clone(),
            self.model.series_key.clone(),
        )
    }
}

/// One write batch, folded in memory before anything is written.
struct Batch {
    org: Uuid,
    member: Option<Uuid>,
    api_key: Option<Uuid>,
    now: DateTime<Utc>,
    rows: Vec<Row>,
    /// (kind, source record ID) → index in `rows`.
    by_source: HashMap<(String, String), usize>,
    /// The versions replaced, to keep in `record_versions`.
    versions: Vec<record_version::ActiveModel>,
    /// Per item: its row, the record as the item left it, its content
    /// (what the record's `data` holds, kept so that the answer need not
    /// parse it again), the outcome.
    results: Vec<(usize, record::Model, RecordData, WriteOutcome)>,
    /// Stored rows outside the batch whose summary flag changes.
    flag_off: Vec<Uuid>,
    flag_on: Vec<Uuid>,
    /// (patient, category) of every version a new one replaced.
    replaced: Vec<(Uuid, DataCategory)>,
}

impl Batch {
    fn new(principal: &Principal, now: DateTime<Utc>) -> Self {
        let (member, api_key) = author(principal);
        Batch {
            org: principal.organization_id(),
            member,
            api_key,
            now,
            rows: Vec::new(),
            by_source: HashMap::new(),
            versions: Vec::new(),
            results: Vec::new(),
            flag_off: Vec::new(),
            flag_on: Vec::new(),
            replaced: Vec::new(),
        }
    }

    /// Reads the writer's records the items' source IDs name, in as many
    /// statements as there are chunks of source IDs.
    async fn load_sources(
        &mut self,
        txn: &impl ConnectionTrait,
        items: &[NewRecord],
    ) -> ApiResult<()> {
        let sources: Vec<&str> = items
            .iter()
            .filter_map(|i| i.source_record_id.as_deref())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let wanted: BTreeSet<(&str, &str)> = items
            .iter()
            .filter_map(|i| {
                i.source_record_id
                    .as_deref()
                    .map(|s| (i.data.kind().as_str(), s))
            })
            .collect();
        let kinds: Vec<String> = wanted
            .iter()
            .map(|(kind, _)| kind.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let backend = txn.get_database_backend();
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            let chunk: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
            let found = record::Entity::find()
                .filter(of_sources(backend, self.org, &kinds, &chunk))
                .all(txn)
                .await?;
            for model in found {
                let Some(source) = model.source_record_id.clone() else {
                    continue;
                };
                if !wanted.contains(&(model.kind.as_str(), source.as_str())) {
                    continue;
                }
                let key = (model.kind.clone(), source);
                let mut row = Row {
                    model,
                    stored: true,
                    changed: false,
                    flagged_as: None,
                };
                if row.model.in_summary && row.model.status == ACTIVE {
                    row.flagged_as = Some((row.series(), row.model.effective_at));
                }
                self.by_source.insert(key, self.rows.len());
                self.rows.push(row);
            }
        }
        Ok(())
    }

    /// Folds one item into the batch.
    async fn add(
        &mut self,
        txn: &impl ConnectionTrait,
        writer: &PatientAccess,
        item: NewRecord,
    ) -> ApiResult<()> {
        let kind = item.data.kind();
        let series = item.data.series_key();
        let existing = item
            .source_record_id
            .as_ref()
            .and_then(|s| self.by_source.get(&(kind.as_str().to_string(), s.clone())))
            .copied();
        if let Some(i) = existing
            && self.rows[i].model.patient_id != item.patient_id
        {
            return Err(taken(item.source_record_id.as_deref()));
        }
        let content = self
            .with_kept_parts(txn, writer, existing, item.data, series.as_deref())
            .await?;
        let (in_summary, summary_until) = summary_placement(&content);
        match existing {
            Some(i) => {
                let current = &self.rows[i].model;
                // A new version replaces what the record said, in the
                // category it held: the WRITE entry names that category
                // too. (The organisation corrects its own record.)
                let replaced = DataCategory::from_db(&current.category)?;
                // … but only by a writer that could have written what it
                // replaces: a system that writes INFECTIONS alone must not
                // turn an HIV result into an MRSA one, nor a nurse a
                // psychiatric diagnosis into a plain one — the sensitive
                // content would leave the view of those allowed it, changed
                // by one who is not. Told without the category, which the
                // writer may not be allowed to read; that the refusal tells
                // it the record is of a category it may not write is the
                // price (it is its own organisation's record).
                if !writer.may_write(replaced) {
                    return Err(ApiError::Forbidden(format!(
                        "sourceRecordId {:?} names a record you may not change",
                        item.source_record_id.as_deref().unwrap_or_default()
                    ))
                    .about(current.patient_id, &[replaced]));
                }
                // The content compared as content, not as stored text: a
                // record stored before a derived field existed (a lab
                // result's `numericValue`) is the same as its resubmission.
                // The same category too: a record stored before a rule moved
                // such content to a sensitive category (a lab result of an
                // HIV test) is moved by its resubmission.
                if current.status == ACTIVE
                    && current.effective_at == item.effective_at
                    && current.undisclosed == item.undisclosed
                    && current.category == content.category().as_str()
                    && RecordData::from_json(kind, &current.data)? == content
                {
                    self.results
                        .push((i, current.clone(), content, WriteOutcome::Unchanged));
                    return Ok(());
                }
                self.versions.push(version_of(current));
                self.replaced.push((current.patient_id, replaced));
                let row = &mut self.rows[i];
                let m = &mut row.model;
                m.category = content.category().as_str().to_string();
                m.author_member_id = self.member;
                m.author_api_key_id = self.api_key;
                m.version += 1;
                m.status = ACTIVE.to_string();
                m.effective_at = item.effective_at;
                m.recorded_at = self.now;
                m.undisclosed = item.undisclosed;
                m.in_summary = in_summary;
                m.summary_until = summary_until;
                m.series_key = series;
                m.data = content.to_json();
                row.changed = true;
                self.results
                    .push((i, m.clone(), content, WriteOutcome::Updated));
            }
            None => {
                let model = record::Model {
                    id: super::new_id(),
                    patient_id: item.patient_id,
                    kind: kind.as_str().to_string(),
                    category: content.category().as_str().to_string(),
                    source_organization_id: self.org,
                    author_member_id: self.member,
                    author_api_key_id: self.api_key,
                    source_record_id: item.source_record_id.clone(),
                    version: 1,
                    status: ACTIVE.to_string(),
                    effective_at: item.effective_at,
                    recorded_at: self.now,
                    undisclosed: item.undisclosed,
                    in_summary,
                    summary_until,
                    series_key: series,
                    data: content.to_json(),
                };
                let i = self.rows.len();
                if let Some(source) = item.source_record_id {
                    self.by_source
                        .insert((kind.as_str().to_string(), source), i);
                }
                self.results
                    .push((i, model.clone(), content, WriteOutcome::Created));
                self.rows.push(Row {
                    model,
                    stored: false,
                    changed: true,
                    flagged_as: None,
                });
            }
        }
        Ok(())
    }

    /// The content to store: `data` with the parts the writer may not write
    /// ([`RecordData::keeping_parts`]) as the version it replaces had them —
    /// the record's current version on a resubmission, or, for a new record
    /// of a kind with parts, the newest record of its series (an emergency
    /// sheet registered by a care manager replaces the physician's in the
    /// composed read, and keeps its diagnoses), counting the batch's earlier
    /// items. A withdrawn record (entered in error) keeps nothing. The
    /// pre-check refused a writer that filled such a part.
    async fn with_kept_parts(
        &self,
        txn: &impl ConnectionTrait,
        writer: &PatientAccess,
        existing: Option<usize>,
        data: RecordData,
        series: Option<&str>,
    ) -> ApiResult<RecordData> {
        let kept: Vec<DataCategory> = data
            .carried_part_categories()
            .into_iter()
            .filter(|c| !writer.may_write(*c))
            .collect();
        if kept.is_empty() {
            return Ok(data);
        }
        let kind = data.kind();
        let previous = match existing {
            Some(i) => Some(self.rows[i].model.clone()),
            // Only a series has a record a new one replaces.
            None if kind.summary_rule() != SummaryRule::LatestOfSeries => None,
            None => {
                let wanted = (
                    writer.patient_id(),
                    kind.as_str().to_string(),
                    series.map(str::to_string),
                );
                let in_batch = self
                    .rows
                    .iter()
                    .filter(|r| r.changed && r.model.status == ACTIVE && r.series() == wanted)
                    .map(|r| &r.model)
                    .max_by_key(|m| (m.effective_at, m.id))
                    .cloned();
                let stored = record::Entity::find()
                    .filter(of_series(writer.patient_id(), kind.as_str(), series))
                    .filter(record::Column::Status.eq(ACTIVE))
                    .filter(record::Column::InSummary.eq(true))
                    .one(txn)
                    .await?
                    .filter(|m| {
                        // A stored row the batch changed counts as the batch has it.
                        !self.rows.iter().any(|r| r.changed && r.model.id == m.id)
                    });
                [in_batch, stored]
                    .into_iter()
                    .flatten()
                    .max_by_key(|m| (m.effective_at, m.id))
            }
        };
        let previous = match previous {
            Some(p) if p.status == ACTIVE => RecordData::from_json(kind, &p.data)?,
            _ => return Ok(data),
        };
        Ok(data.keeping_parts(&previous, |c| kept.contains(&c)))
    }

    /// Decides the summary flag of every series the batch touches
    /// (`LatestOfSeries` kinds: only the newest active record of a series
    /// carries it) from the rows the batch changed and the rows that carry
    /// the flag today — one statement for all series, plus one per series
    /// whose flag-holder the batch moved out of it or back in time (then an
    /// older record may be the newest).
    async fn settle_summary(&mut self, txn: &impl ConnectionTrait) -> ApiResult<()> {
        let latest_of_series = |kind: &str| {
            RecordKind::from_db(kind)
                .map(|k| k.summary_rule() == SummaryRule::LatestOfSeries)
                .unwrap_or(false)
        };
        let mut touched: BTreeSet<SeriesId> = BTreeSet::new();
        let mut reopened: BTreeSet<SeriesId> = BTreeSet::new();
        for row in self.rows.iter().filter(|r| r.changed) {
            if !latest_of_series(&row.model.kind) {
                continue;
            }
            touched.insert(row.series());
            if let Some((series, effective_at)) = &row.flagged_as
                && (*series != row.series()
                    || row.model.effective_at < *effective_at
                    || row.model.status != ACTIVE)
            {
                touched.insert(series.clone());
                reopened.insert(series.clone());
            }
        }
        if touched.is_empty() {
            return Ok(());
        }
        let changed: BTreeSet<Uuid> = self
            .rows
            .iter()
            .filter(|r| r.changed)
            .map(|r| r.model.id)
            .collect();
        let patients: Vec<Uuid> = touched
            .iter()
            .map(|(p, _, _)| *p)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let kinds: BTreeSet<&str> = touched.iter().map(|(_, k, _)| k.as_str()).collect();
        type Flagged = (Uuid, Uuid, String, Option<String>, DateTime<Utc>);
        let flagged: Vec<Flagged> = record::Entity::find()
            .select_only()
            .column(record::Column::Id)
            .column(record::Column::PatientId)
            .column(record::Column::Kind)
            .column(record::Column::SeriesKey)
            .column(record::Column::EffectiveAt)
            .filter(super::id_in(
                txn.get_database_backend(),
                (record::Entity, record::Column::PatientId),
                &patients,
            ))
            .filter(record::Column::Kind.is_in(kinds.iter().copied()))
            .filter(record::Column::InSummary.eq(true))
            .filter(record::Column::Status.eq(ACTIVE))
            .into_tuple()
            .all(txn)
            .await?;
        // Per series: the candidates for the flag, (effective time, id, stored and flagged now).
        let mut candidates: HashMap<SeriesId, Vec<(DateTime<Utc>, Uuid, bool)>> = HashMap::new();
        for (id, patient, kind, series, effective_at) in flagged {
            let key = (patient, kind, series);
            if touched.contains(&key) && !changed.contains(&id) {
                candidates
                    .entry(key)
                    .or_default()
                    .push((effective_at, id, true));
            }
        }
        for key in &reopened {
            let (patient, kind, series) = key;
            let newest: Option<(DateTime<Utc>, Uuid)> = record::Entity::find()
                .select_only()
                .column(record::Column::EffectiveAt)
                .column(record::Column::Id)
                .filter(of_series(*patient, kind, series.as_deref()))
                .filter(record::Column::Status.eq(ACTIVE))
                .filter(record::Column::Id.is_not_in(changed.iter().copied()))
                .order_by_desc(record::Column::EffectiveAt)
                .order_by_desc(record::Column::Id)
                .into_tuple()
                .one(txn)
                .await?;
            if let Some((effective_at, id)) = newest {
                let list = candidates.entry(key.clone()).or_default();
                if !list.iter().any(|(_, other, _)| *other == id) {
                    list.push((effective_at, id, false));
                }
            }
        }
        for row in self.rows.iter().filter(|r| r.changed) {
            let key = row.series();
            if touched.contains(&key) && row.model.status == ACTIVE {
                candidates.entry(key).or_default().push((
                    row.model.effective_at,
                    row.model.id,
                    false,
                ));
            }
        }
        let mut winners: BTreeSet<Uuid> = BTreeSet::new();
        for list in candidates.values() {
            if let Some((_, winner, _)) = list.iter().max_by_key(|(at, id, _)| (*at, *id)) {
                winners.insert(*winner);
            }
            for (_, id, flagged_now) in list {
                let wins = winners.contains(id);
                if changed.contains(id) {
                    continue;
                }
                if *flagged_now && !wins {
                    self.flag_off.push(*id);
                } else if !*flagged_now && wins {
                    self.flag_on.push(*id);
                }
            }
        }
        for row in self.rows.iter_mut() {
            if row.changed && touched.contains(&row.series()) {
                row.model.in_summary = winners.contains(&row.model.id);
            } else if self.flag_off.contains(&row.model.id) {
                row.model.in_summary = false;
            } else if self.flag_on.contains(&row.model.id) {
                row.model.in_summary = true;
            }
        }
        Ok(())
    }

    /// Writes the batch: the new records and the kept versions in multi-row
    /// inserts, each changed record by its id, the summary flags of the
    /// untouched records it moved in one statement each way. Returns each
    /// item's record as the item left it, with the flag as committed.
    async fn apply(self, txn: &DatabaseTransaction) -> ApiResult<Vec<Written>> {
        let new_rows: Vec<&record::Model> = self
            .rows
            .iter()
            .filter(|r| !r.stored)
            .map(|r| &r.model)
            .collect();
        for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
            // In a savepoint: a row another patient's writer — not
            // serialised with this one by the patient locks — got in first
            // with the same source record ID fails the insert, and the
            // transaction must go on long enough to name the item.
            let savepoint = txn.begin().await?;
            match insert_rows(&savepoint, chunk).await {
                Ok(()) => savepoint.commit().await?,
                Err(error) => {
                    if savepoint.rollback().await.is_ok()
                        && let Ok(Some(lost)) = first_taken(txn, self.org, chunk).await
                    {
                        let index = self
                            .results
                            .iter()
                            .position(|(_, m, _, o)| *o == WriteOutcome::Created && m.id == lost.id)
                            .unwrap_or_default();
                        return Err(taken(lost.source_record_id.as_deref())
                            .in_field(&format!("input.records[{index}]")));
                    }
                    return Err(error);
                }
            }
        }
        for chunk in self.versions.chunks(ROWS_PER_STATEMENT) {
            record_version::Entity::insert_many(chunk.iter().cloned())
                .exec(txn)
                .await?;
        }
        let updated: Vec<&record::Model> = self
            .rows
            .iter()
            .filter(|r| r.stored && r.changed)
            .map(|r| &r.model)
            .collect();
        for chunk in updated.chunks(ROWS_PER_STATEMENT) {
            update_rows(txn, chunk).await?;
        }
        for (ids, flag) in [(&self.flag_off, false), (&self.flag_on, true)] {
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                record::Entity::update_many()
                    .col_expr(record::Column::InSummary, Expr::value(flag))
                    .filter(super::id_in(
                        txn.get_database_backend(),
                        (record::Entity, record::Column::Id),
                        chunk,
                    ))
                    .exec(txn)
                    .await?;
            }
        }
        Ok(self
            .results
            .into_iter()
            .map(|(i, mut model, content, outcome)| {
                model.in_summary =
                    self.rows[i].model.in_summary && self.rows[i].model.version == model.version;
                (model, content, outcome)
            })
            .collect())
    }
}

/// The records of one series: a patient's of one kind with the same series
/// key, or with none.
fn of_series(patient_id: Uuid, kind: &str, series: Option<&str>) -> Condition {
    let c = Condition::all()
        .add(record::Column::PatientId.eq(patient_id))
        .add(record::Column::Kind.eq(kind));
    match series {
        Some(s) => c.add(record::Column::SeriesKey.eq(s)),
        None => c.add(record::Column::SeriesKey.is_null()),
    }
}

/// Where a record stands in the summary when written: whether it carries
/// the summary flag (every record of a `WhileCurrent` kind that is ever in
/// force; for `LatestOfSeries` kinds [`Batch::settle_summary`] decides) and
/// its last day in force (`summary_until`). The generator of the benchmark's
/// region places its rows with this too.
pub fn summary_placement(data: &RecordData) -> (bool, NaiveDate) {
    match data.kind().summary_rule() {
        SummaryRule::WhileCurrent => match data.current_span() {
            Some((_, until)) => (true, until),
            None => (false, FOREVER),
        },
        SummaryRule::LatestOfSeries | SummaryRule::Never => (false, FOREVER),
    }
}

/// Each column of `records` with its PostgreSQL type: the one list the
/// statements that bind typed values on PostgreSQL take their types from
/// ([`insert_rows`] binds whole columns as arrays, [`update_rows`] each
/// row's values cast to the column's type).
const PG_TYPES: [(&str, &str); 17] = [
    ("id", "uuid"),
    ("patient_id", "uuid"),
    ("kind", "text"),
    ("category", "text"),
    ("source_organization_id", "uuid"),
    ("author_member_id", "uuid"),
    ("author_api_key_id", "uuid"),
    ("source_record_id", "text"),
    ("version", "int4"),
    ("status", "text"),
    ("effective_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
    ("undisclosed", "bool"),
    ("in_summary", "bool"),
    ("summary_until", "date"),
    ("series_key", "text"),
    ("data", "text"),
];

/// The PostgreSQL type of a column of `records` ([`PG_TYPES`]).
fn pg_type(column: &str) -> ApiResult<&'static str> {
    PG_TYPES
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, ty)| *ty)
        .ok_or_else(|| ApiError::internal(format!("records has no column {column:?}")))
}

/// The columns a new version changes, in the order [`update_rows`] binds
/// them after the id (the rest — patient, kind, source — never change).
const VERSION_COLUMNS: [&str; 12] = [
    "category",
    "author_member_id",
    "author_api_key_id",
    "version",
    "status",
    "effective_at",
    "recorded_at",
    "undisclosed",
    "in_summary",
    "summary_until",
    "series_key",
    "data",
];

/// Updates many records to their new versions in one statement:
/// `UPDATE … FROM (VALUES …)` joined on the id (PostgreSQL casts each value
/// to its column's type; SQLite names the values' columns `column1` …).
async fn update_rows(txn: &impl ConnectionTrait, rows: &[&record::Model]) -> ApiResult<()> {
    use sea_orm::{DbBackend, Statement, Value};
    let backend = txn.get_database_backend();
    let per_row = VERSION_COLUMNS.len() + 1;
    // The id, then the columns, as the values are bound.
    let types = std::iter::once("id")
        .chain(VERSION_COLUMNS)
        .map(pg_type)
        .collect::<ApiResult<Vec<_>>>()?;
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * per_row);
    let mut tuples = Vec::with_capacity(rows.len());
    for (n, m) in rows.iter().enumerate() {
        values.extend([
            m.id.into(),
            m.category.clone().into(),
            m.author_member_id.into(),
            m.author_api_key_id.into(),
            m.version.into(),
            m.status.clone().into(),
            m.effective_at.into(),
            m.recorded_at.into(),
            m.undisclosed.into(),
            m.in_summary.into(),
            m.summary_until.into(),
            m.series_key.clone().into(),
            m.data.clone().into(),
        ]);
        let placeholders: Vec<String> = (0..per_row)
            .map(|c| match backend {
                DbBackend::Postgres => format!("${}::{}", n * per_row + c + 1, types[c]),
                _ => "?".to_string(),
            })
            .collect();
        tuples.push(format!("({})", placeholders.join(", ")));
    }
    let sql = match backend {
        DbBackend::Postgres => format!(
            "UPDATE records AS r SET {} FROM (VALUES {}) AS v(id, {}) WHERE r.id = v.id",
            VERSION_COLUMNS
                .iter()
                .map(|c| format!("{c} = v.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            tuples.join(", "),
            VERSION_COLUMNS.join(", "),
        ),
        _ => format!(
            "UPDATE records SET {} FROM (VALUES {}) AS v WHERE records.id = v.column1",
            VERSION_COLUMNS
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = v.column{}", i + 2))
                .collect::<Vec<_>>()
                .join(", "),
            tuples.join(", "),
        ),
    };
    let done = txn
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    all_rows(&done, rows.len(), "records updated")
}

/// `Ok` when a statement meant for `expected` rows touched them all; an
/// internal error (`what`: what was done to them) otherwise.
fn all_rows(done: &sea_orm::ExecResult, expected: usize, what: &str) -> ApiResult<()> {
    if done.rows_affected() != expected as u64 {
        return Err(ApiError::internal(format!(
            "{} of {expected} {what}",
            done.rows_affected()
        )));
    }
    Ok(())
}

/// An organisation's records of `kinds` whose source record ID is one of
/// `sources`: what `uq_records_source` (organisation, kind, source record
/// ID) answers. The kinds too, although callers match the (kind, source)
/// pairs themselves: without them the index's middle column is open, and
/// the lookup would walk every record the organisation ever wrote.
fn of_sources(
    backend: sea_orm::DbBackend,
    org: Uuid,
    kinds: &[String],
    sources: &[String],
) -> Condition {
    Condition::all()
        .add(record::Column::SourceOrganizationId.eq(org))
        .add(super::text_in(
            backend,
            (record::Entity, record::Column::Kind),
            kinds,
        ))
        .add(super::text_in(
            backend,
            (record::Entity, record::Column::SourceRecordId),
            sources,
        ))
}

/// The first of `rows` whose source record ID the organisation's records
/// of its kind now hold — another writer's, committed since the batch
/// looked its sources up ([`Batch::apply`]).
async fn first_taken<'a>(
    txn: &impl ConnectionTrait,
    org: Uuid,
    rows: &[&'a record::Model],
) -> ApiResult<Option<&'a record::Model>> {
    let backend = txn.get_database_backend();
    let kinds: Vec<String> = rows
        .iter()
        .map(|m| m.kind.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let sources: Vec<String> = rows
        .iter()
        .filter_map(|m| m.source_record_id.clone())
        .collect();
    let found: BTreeSet<(String, Option<String>)> = record::Entity::find()
        .select_only()
        .column(record::Column::Kind)
        .column(record::Column::SourceRecordId)
        .filter(of_sources(backend, org, &kinds, &sources))
        .into_tuple()
        .all(txn)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .iter()
        .find(|m| {
            m.source_record_id.is_some()
                && found.contains(&(m.kind.clone(), m.source_record_id.clone()))
        })
        .copied())
}

/// Inserts new records: a plain `INSERT`, all rows or an error. A clash on
/// a source record ID — another patient's writer got in first — fails the
/// statement, and [`Batch::apply`], which runs it in a savepoint, names the
/// item. (`ON CONFLICT DO NOTHING` would leave such a row out instead, but
/// checks the unique indexes before every row it inserts: the statement
/// cost PostgreSQL ≈ 30 % more — `bench/RESULTS.md`, issue 13, thirteenth
/// pass.)
///
/// On PostgreSQL the rows go in as one array per column (`INSERT … SELECT
/// … FROM UNNEST($1::uuid[], …)`): one statement text for any number of
/// rows, prepared once per connection and planned in microseconds, where a
/// multi-row `VALUES` list of 500 rows binds 8,500 parameters and is parsed
/// and planned again at each execution (PostgreSQL's CPU per imported
/// resource −13 %: `bench/RESULTS.md`, issue 13, tenth pass). The arrays
/// are bound without NULLs, so each optional column comes with a `bool[]`
/// saying which rows have a value. SQLite has no arrays: a
/// multi-row insert.
async fn insert_rows(txn: &impl ConnectionTrait, rows: &[&record::Model]) -> ApiResult<()> {
    use sea_orm::{DbBackend, Statement};
    let done = match txn.get_database_backend() {
        DbBackend::Postgres => {
            // (column, its values — and for an optional column, which rows
            // have one); its type from `PG_TYPES`
            let columns: [(&str, ArrayColumn); 17] = [
                ("id", plain(rows, |m| m.id)),
                ("patient_id", plain(rows, |m| m.patient_id)),
                ("kind", plain(rows, |m| m.kind.clone())),
                ("category", plain(rows, |m| m.category.clone())),
                (
                    "source_organization_id",
                    plain(rows, |m| m.source_organization_id),
                ),
                ("author_member_id", optional(rows, |m| m.author_member_id)),
                ("author_api_key_id", optional(rows, |m| m.author_api_key_id)),
                (
                    "source_record_id",
                    optional(rows, |m| m.source_record_id.clone()),
                ),
                ("version", plain(rows, |m| m.version)),
                ("status", plain(rows, |m| m.status.clone())),
                ("effective_at", plain(rows, |m| m.effective_at)),
                ("recorded_at", plain(rows, |m| m.recorded_at)),
                ("undisclosed", plain(rows, |m| m.undisclosed)),
                ("in_summary", plain(rows, |m| m.in_summary)),
                ("summary_until", plain(rows, |m| m.summary_until)),
                ("series_key", optional(rows, |m| m.series_key.clone())),
                ("data", plain(rows, |m| m.data.clone())),
            ];
            // The statement follows the list: the records' columns, what is
            // selected into each, and UNNEST's arrays with their aliases.
            let mut inserted = Vec::new();
            let mut selected = Vec::new();
            let mut arrays = Vec::new();
            let mut aliases = Vec::new();
            let mut values = Vec::new();
            for (name, (array, present)) in columns {
                let ty = pg_type(name)?;
                inserted.push(name);
                if let Some(present) = present {
                    values.push(present.into());
                    arrays.push(format!("${}::bool[]", values.len()));
                    aliases.push(format!("has_{name}"));
                    selected.push(format!("CASE WHEN u.has_{name} THEN u.{name} END"));
                } else {
                    selected.push(format!("u.{name}"));
                }
                values.push(array);
                arrays.push(format!("${}::{ty}[]", values.len()));
                aliases.push(name.to_string());
            }
            let sql = format!(
                "INSERT INTO records ({}) SELECT {} FROM UNNEST({}) AS u({})",
                inserted.join(", "),
                selected.join(", "),
                arrays.join(", "),
                aliases.join(", "),
            );
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await?
        }
        _ => {
            let insert = record::Entity::insert_many(rows.iter().map(|m| set_all((*m).clone())))
                .into_query();
            txn.execute(&insert).await?
        }
    };
    all_rows(&done, rows.len(), "new records inserted")
}

/// A column of rows as an array parameter, and for an optional column
/// which rows have a value ([`insert_rows`]).
type ArrayColumn = (sea_orm::Value, Option<Vec<bool>>);

/// One column of rows as an array parameter ([`insert_rows`]).
fn plain<T>(rows: &[&record::Model], f: impl Fn(&record::Model) -> T) -> ArrayColumn
where
    Vec<T>: Into<sea_orm::Value>,
{
    (rows.iter().map(|m| f(m)).collect::<Vec<T>>().into(), None)
}

/// An optional column as an array parameter — a default where a row has
/// no value — and which rows have one ([`insert_rows`]).
fn optional<T: Default>(
    rows: &[&record::Model],
    f: impl Fn(&record::Model) -> Option<T>,
) -> ArrayColumn
where
    Vec<T>: Into<sea_orm::Value>,
{
    let (present, values): (Vec<bool>, Vec<T>) = rows
        .iter()
        .map(|m| {
            let v = f(m);
            (v.is_some(), v.unwrap_or_default())
        })
        .unzip();
    (values.into(), Some(present))
}

fn set_all(m: record::Model) -> record::ActiveModel {
    record::ActiveModel {
        id: Set(m.id),
        patient_id: Set(m.patient_id),
        kind: Set(m.kind),
        category: Set(m.category),
        source_organization_id: Set(m.source_organization_id),
        author_member_id: Set(m.author_member_id),
        author_api_key_id: Set(m.author_api_key_id),
        source_record_id: Set(m.source_record_id),
        version: Set(m.version),
        status: Set(m.status),
        effective_at: Set(m.effective_at),
        recorded_at: Set(m.recorded_at),
        undisclosed: Set(m.undisclosed),
        in_summary: Set(m.in_summary),
        summary_until: Set(m.summary_until),
        series_key: Set(m.series_key),
        data: Set(m.data),
    }
}

fn version_of(current: &record::Model) -> record_version::ActiveModel {
    record_version::ActiveModel {
        record_id: Set(current.id),
        version: Set(current.version),
        category: Set(current.category.clone()),
        source_organization_id: Set(current.source_organization_id),
        author_member_id: Set(current.author_member_id),
        author_api_key_id: Set(current.author_api_key_id),
        status: Set(current.status.clone()),
        effective_at: Set(current.effective_at),
        recorded_at: Set(current.recorded_at),
        undisclosed: Set(current.undisclosed),
        data: Set(current.data.clone()),
    }
}

async fn keep_version(txn: &impl ConnectionTrait, current: &record::Model) -> ApiResult<()> {
    record_version::Entity::insert(version_of(current))
        .exec(txn)
        .await?;
    Ok(())
}

/// After a record carrying a series' summary flag left the series (entered
/// in error): the newest active record left in it takes the flag. Only
/// that row changes — the flag is on the newest active record of a series
/// and nowhere else ([`Batch::settle_summary`] keeps it so), so withdrawing
/// a record that did not carry it changes no other row.
async fn hand_on_flag(
    txn: &impl ConnectionTrait,
    patient_id: Uuid,
    kind: RecordKind,
    series: Option<&str>,
) -> ApiResult<()> {
    let newest = record::Entity::find()
        .select_only()
        .column(record::Column::Id)
        .filter(of_series(patient_id, kind.as_str(), series))
        .filter(record::Column::Status.eq(ACTIVE))
        .order_by_desc(record::Column::EffectiveAt)
        .order_by_desc(record::Column::Id)
        .into_tuple::<Uuid>()
        .one(txn)
        .await?;
    if let Some(id) = newest {
        record::Entity::update_many()
            .col_expr(record::Column::InSummary, Expr::value(true))
            .filter(record::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Records by id, for the loader every reference to a record by its id goes
/// through; the caller then obtains access to each one's patient.
pub async fn by_ids(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, record::Model>> {
    Ok(record::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (record::Entity, record::Column::Id),
            ids,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// Marks a record entered in error (never a hard delete): a new version with
/// that status, out of the summary; the history keeps what it said.
pub async fn enter_in_error(
    db: &DatabaseConnection,
    access: &PatientAccess,
    stamp: &AuditStamp,
    caller_kind: Option<crate::domain::OrganizationKind>,
    current: record::Model,
    now: DateTime<Utc>,
) -> ApiResult<record::Model> {
    let principal = &stamp.principal;
    let category = DataCategory::from_db(&current.category)?;
    access.require_write(category)?;
    let refused = |e: ApiError| e.about(current.patient_id, &[category]);
    crate::policy::may_withdraw_record(principal, current.source_organization_id)
        .map_err(refused)?;
    // A physician's document is withdrawn by a physician, as it is written.
    crate::policy::may_author(principal, caller_kind, RecordKind::from_db(&current.kind)?)
        .map_err(refused)?;
    if current.status == ENTERED_IN_ERROR {
        return Err(ApiError::Conflict(
            "the record is already marked entered in error".into(),
        ));
    }
    let kind = RecordKind::from_db(&current.kind)?;
    let series = current.series_key.clone();
    let (member, api_key) = author(principal);
    let txn = super::begin_write(db).await?;
    // As in `write`: after the lock, the record as the last writer left it.
    lock_patients(&txn, [current.patient_id]).await?;
    let current = record::Entity::find_by_id(current.id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::internal("a record being withdrawn vanished"))?;
    if current.status == ENTERED_IN_ERROR {
        return Err(ApiError::Conflict(
            "the record is already marked entered in error".into(),
        ));
    }
    keep_version(&txn, &current).await?;
    let held_flag = current.in_summary;
    let version = current.version + 1;
    let mut a: record::ActiveModel = current.into();
    a.version = Set(version);
    a.status = Set(ENTERED_IN_ERROR.to_string());
    a.in_summary = Set(false);
    a.recorded_at = Set(now);
    a.author_member_id = Set(member);
    a.author_api_key_id = Set(api_key);
    let updated = a.update(&txn).await?;
    if kind.summary_rule() == SummaryRule::LatestOfSeries && held_flag {
        hand_on_flag(&txn, updated.patient_id, kind, series.as_deref()).await?;
    }
    let entry = stamp.write(updated.patient_id, &[category]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The summary's candidate records of many patients, in one query.
///
/// Only records in force on `today` or later are read (`summary_until`, in
/// the summary index): an ended prescription or a past instruction costs
/// nothing however long the history.
pub async fn summary_candidates(
    db: &DatabaseConnection,
    patient_ids: &[Uuid],
    today: NaiveDate,
) -> ApiResult<HashMap<Uuid, Vec<record::Model>>> {
    let rows = record::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (record::Entity, record::Column::PatientId),
            patient_ids,
        ))
        .filter(record::Column::InSummary.eq(true))
        .filter(record::Column::SummaryUntil.gte(today))
        .filter(record::Column::Status.eq(ACTIVE))
        .order_by_desc(record::Column::EffectiveAt)
        .order_by_desc(record::Column::Id)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<record::Model>> = HashMap::new();
    for r in rows {
        map.entry(r.patient_id).or_default().push(r);
    }
    Ok(map)
}

/// Where a timeline page starts: after this (effective time, id).
#[derive(Debug, Clone, Copy)]
pub struct TimelineCursor {
    pub effective_at: DateTime<Utc>,
    pub id: Uuid,
}

#[derive(Debug, Default)]
pub struct TimelineFilter {
    /// Empty: every kind.
    pub kinds: Vec<RecordKind>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub include_entered_in_error: bool,
}

/// One page of a patient's timeline, newest first, restricted to the
/// categories the caller may read — the filter never reaches further than the
/// fields would.
pub async fn timeline(
    db: &DatabaseConnection,
    access: &PatientAccess,
    readable: &[DataCategory],
    filter: &TimelineFilter,
    after: Option<TimelineCursor>,
    first: u64,
) -> ApiResult<(Vec<record::Model>, bool)> {
    if readable.is_empty() {
        return Ok((Vec::new(), false));
    }
    let mut q = record::Entity::find()
        .filter(record::Column::PatientId.eq(access.patient_id()))
        .filter(record::Column::Category.is_in(readable.iter().map(|c| c.as_str())))
        .order_by_desc(record::Column::EffectiveAt)
        .order_by_desc(record::Column::Id);
    if !filter.kinds.is_empty() {
        q = q.filter(record::Column::Kind.is_in(filter.kinds.iter().map(|k| k.as_str())));
    }
    if !filter.include_entered_in_error {
        q = q.filter(record::Column::Status.eq(ACTIVE));
    }
    if let Some(from) = filter.from {
        q = q.filter(record::Column::EffectiveAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(record::Column::EffectiveAt.lt(to));
    }
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(record::Column::EffectiveAt.lt(c.effective_at))
                .add(
                    Condition::all()
                        .add(record::Column::EffectiveAt.eq(c.effective_at))
                        .add(record::Column::Id.lt(c.id)),
                ),
        );
    }
    let mut rows = q.limit(first + 1).all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(first as usize);
    Ok((rows, more))
}

/// The earlier versions of many records, each record's oldest first, in
/// one query: what a caller's view of a record's versions needs
/// ([`seen_versions`]).
pub async fn earlier_versions(
    db: &DatabaseConnection,
    record_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<record_version::Model>>> {
    let rows = record_version::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (record_version::Entity, record_version::Column::RecordId),
            record_ids,
        ))
        .order_by_asc(record_version::Column::RecordId)
        .order_by_asc(record_version::Column::Version)
        .all(db)
        .await?;
    let mut map: HashMap<Uuid, Vec<record_version::Model>> = HashMap::new();
    for v in rows {
        map.entry(v.record_id).or_default().push(v);
    }
    Ok(map)
}

/// What tells one version of a record from another: its category, status,
/// effective time, 未告知 flag and content. (Who wrote it and when it
/// arrived describe the version; they are not what it says.)
#[derive(Clone, Debug)]
pub struct VersionContent {
    pub category: DataCategory,
    pub status: String,
    pub effective_at: DateTime<Utc>,
    pub undisclosed: bool,
    pub data: RecordData,
}

impl VersionContent {
    pub fn of_record(m: &record::Model) -> ApiResult<Self> {
        Ok(VersionContent {
            category: DataCategory::from_db(&m.category)?,
            status: m.status.clone(),
            effective_at: m.effective_at,
            undisclosed: m.undisclosed,
            data: RecordData::from_json(RecordKind::from_db(&m.kind)?, &m.data)?,
        })
    }

    pub fn of_version(kind: RecordKind, v: &record_version::Model) -> ApiResult<Self> {
        Ok(VersionContent {
            category: DataCategory::from_db(&v.category)?,
            status: v.status.clone(),
            effective_at: v.effective_at,
            undisclosed: v.undisclosed,
            data: RecordData::from_json(kind, &v.data)?,
        })
    }

    /// The categories in which the two versions differ: the record's
    /// category (each of the two) for anything but a part, a part's own
    /// category for a part ([`RecordData::differences`]).
    pub fn differences(&self, other: &VersionContent) -> BTreeSet<DataCategory> {
        let mut changed = self.data.differences(&other.data);
        if self.category != other.category
            || self.status != other.status
            || self.effective_at != other.effective_at
            || self.undisclosed != other.undisclosed
        {
            changed.insert(self.category);
            changed.insert(other.category);
        }
        changed
    }
}

/// One version of a record as a caller sees it: a run of consecutive
/// versions it may read that differ only in what it may not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenVersion {
    /// Its number for the caller: 1 for the first, one more for each later.
    pub number: i32,
    /// The version (an index into the versions, oldest first) that put
    /// there what the caller sees: its time and author are the run's.
    pub first: usize,
    /// The run's last version.
    pub last: usize,
}

/// A record's versions (oldest first, the current one last) as a caller
/// sees them — the one rule behind `Record.version`, `Record.history`,
/// `recordedAt` and `author`, the emergency sheet's, and a write's
/// `outcome`.
///
/// What the caller may not read must not show as a version: not as a
/// number (a diagnosis first recorded as psychiatric, then corrected, is a
/// first version to a reader without the psychiatric category), and not as
/// a change it cannot see (an emergency sheet whose hand-typed diagnoses
/// changed is the same version to a reader without CONDITIONS). So a
/// version of a category the caller may not read is left out, and a
/// version that differs from the caller's previous readable one only in
/// categories it may not read ([`VersionContent::differences`]) belongs to
/// the same seen version. The numbers count the seen versions, in order.
pub fn seen_versions(
    access: Option<&PatientAccess>,
    versions: &[VersionContent],
) -> Vec<SeenVersion> {
    let may_read = |c: DataCategory| access.is_some_and(|a| a.may_read(c));
    let mut seen: Vec<SeenVersion> = Vec::new();
    let mut previous: Option<&VersionContent> = None;
    for (i, v) in versions.iter().enumerate() {
        if !may_read(v.category) {
            continue;
        }
        let unseen_change = previous.is_some_and(|p| !p.differences(v).into_iter().any(may_read));
        match seen.last_mut() {
            Some(run) if unseen_change => run.last = i,
            _ => seen.push(SeenVersion {
                number: i32::try_from(seen.len() + 1).unwrap_or(i32::MAX),
                first: i,
                last: i,
            }),
        }
        previous = Some(v);
    }
    seen
}

/// The contents of record `record_id`'s versions up to `version`, oldest
/// first, ending with `version` itself — what [`is_seen_version`] judges for
/// each caller, read once for all the callers an event reaches. `None`
/// when there is no such record or version.
pub async fn versions_until(
    db: &DatabaseConnection,
    record_id: Uuid,
    version: i32,
) -> ApiResult<Option<Vec<VersionContent>>> {
    let Some(current) = record::Entity::find_by_id(record_id).one(db).await? else {
        return Ok(None);
    };
    let kind = RecordKind::from_db(&current.kind)?;
    let earlier = record_version::Entity::find()
        .filter(record_version::Column::RecordId.eq(record_id))
        .filter(record_version::Column::Version.lte(version))
        .order_by_asc(record_version::Column::Version)
        .all(db)
        .await?;
    let mut contents = earlier
        .iter()
        .map(|v| VersionContent::of_version(kind, v))
        .collect::<ApiResult<Vec<_>>>()?;
    let last = if current.version == version {
        contents.push(VersionContent::of_record(&current)?);
        Some(version)
    } else {
        earlier.last().map(|v| v.version)
    };
    Ok((last == Some(version)).then_some(contents))
}

/// Whether the last of `versions` ([`versions_until`]) is, to a caller with
/// `access`, a version of its own ([`seen_versions`]: readable, and
/// changing something the caller may read) — so that telling the caller it
/// was written tells nothing the caller may not see.
pub fn is_seen_version(access: &PatientAccess, versions: &[VersionContent]) -> bool {
    seen_versions(Some(access), versions)
        .last()
        .is_some_and(|s| s.first + 1 == versions.len())
}

/// Whether a summary candidate belongs in today's summary (a prescription that
/// has ended does not).
pub fn data_in_force(kind: RecordKind, data: &RecordData, today: NaiveDate) -> bool {
    match kind.summary_rule() {
        SummaryRule::WhileCurrent => data.is_current(today),
        SummaryRule::LatestOfSeries => true,
        SummaryRule::Never => false,
    }
}
