//! Records: writes from facility systems (idempotent, versioned, all-or-nothing
//! batches) and the reads behind the summary and the timeline.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use crate::audit::AuditStamp;
use crate::domain::DataCategory;
use crate::error::{ApiError, ApiResult};
use crate::policy::PatientAccess;
use crate::principal::Principal;
use crate::records::{RecordData, RecordKind, SummaryRule};
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
    /// A new record — or a new version of a record none of whose earlier
    /// versions you may read (they were of a category closed to you).
    Created,
    /// A resubmission with changes: a new version of the same record, of
    /// which you may read an earlier version.
    Updated,
    /// A resubmission identical to the current version — or differing from
    /// the last version you may read only in what you may not read:
    /// nothing you can see changed.
    Unchanged,
}

/// Writes records in one transaction: all or nothing. The caller has checked
/// write access for every item (`access` holds the verdicts) and validated the
/// payloads; an error names the item's index (and field, where there is one).
///
/// Concurrent writes: the transaction first locks the rows of the batch's
/// patients, in id order ([`lock_patients`]), so writes touching one
/// patient's records run one after the other — each reads what the previous
/// one committed: a resubmission racing another finds the record the other
/// created (`UPDATED` / `UNCHANGED`, never a duplicate) and numbers its
/// version after the other's. Because every batch takes its locks in the
/// same order before touching a record, two batches over the same patients
/// in opposite orders wait for each other instead of deadlocking (the
/// `in_summary` updates of [`refresh_latest`] lock rows in input order, but
/// only ever of patients already locked).
pub async fn write(
    db: &DatabaseConnection,
    stamp: &AuditStamp,
    access: &HashMap<Uuid, PatientAccess>,
    items: Vec<NewRecord>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<(record::Model, WriteOutcome)>> {
    let principal = &stamp.principal;
    let entries: Vec<_> = items
        .iter()
        .map(|i| stamp.write(i.patient_id, &i.data.written_categories()))
        .collect();
    let txn = super::begin_write(db).await?;
    lock_patients(&txn, items.iter().map(|i| i.patient_id)).await?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let at = |e: ApiError| e.in_field(&format!("input.records[{index}]"));
        let Some(writer) = access.get(&item.patient_id) else {
            return Err(ApiError::not_found("patient"));
        };
        let written = write_one(&txn, principal, writer, item, now)
            .await
            .map_err(at)?;
        out.push(written);
    }
    let entries: Vec<_> = entries.iter().collect();
    crate::audit::append_in(&txn, &entries, now).await?;
    txn.commit().await?;
    Ok(out)
}

/// Locks the patients' rows in id order: one order for every writer of
/// records, so that no two can wait for each other in a circle.
async fn lock_patients(
    txn: &impl ConnectionTrait,
    patients: impl IntoIterator<Item = Uuid>,
) -> ApiResult<()> {
    let ordered: BTreeSet<Uuid> = patients.into_iter().collect();
    for patient_id in ordered {
        super::lock_patient(txn, patient_id).await?;
    }
    Ok(())
}

fn author(principal: &Principal) -> (Option<Uuid>, Option<Uuid>) {
    match principal {
        Principal::Member { member_id, .. } => (Some(*member_id), None),
        Principal::System { api_key_id, .. } => (None, Some(*api_key_id)),
    }
}

async fn write_one(
    txn: &impl ConnectionTrait,
    principal: &Principal,
    writer: &PatientAccess,
    item: NewRecord,
    now: DateTime<Utc>,
) -> ApiResult<(record::Model, WriteOutcome)> {
    let kind = item.data.kind();
    let org = principal.organization_id();
    let (member, api_key) = author(principal);
    let series = item.data.series_key();
    let existing = match &item.source_record_id {
        Some(source) => {
            record::Entity::find()
                .filter(record::Column::SourceOrganizationId.eq(org))
                .filter(record::Column::Kind.eq(kind.as_str()))
                .filter(record::Column::SourceRecordId.eq(source.as_str()))
                .one(txn)
                .await?
        }
        None => None,
    };
    let taken = |source: Option<&str>| {
        ApiError::conflict_in(
            "sourceRecordId",
            format!(
                "{:?} already names another patient's record of this kind",
                source.unwrap_or_default()
            ),
        )
    };
    if let Some(current) = &existing
        && current.patient_id != item.patient_id
    {
        return Err(taken(item.source_record_id.as_deref()));
    }
    let content =
        with_kept_parts(txn, writer, existing.as_ref(), item.data, series.as_deref()).await?;
    let data = content.to_json();
    let category = content.category();
    let (model, outcome) = match existing {
        Some(current) => {
            // The content compared as content, not as stored text: a
            // record stored before a derived field existed (a lab
            // result's `numericValue`) is the same as its resubmission.
            if current.status == ACTIVE
                && current.effective_at == item.effective_at
                && current.undisclosed == item.undisclosed
                && RecordData::from_json(kind, &current.data)? == content
            {
                return Ok((current, WriteOutcome::Unchanged));
            }
            let version = current.version + 1;
            keep_version(txn, &current).await?;
            let mut a: record::ActiveModel = current.into();
            a.category = Set(category.as_str().to_string());
            a.author_member_id = Set(member);
            a.author_api_key_id = Set(api_key);
            a.version = Set(version);
            a.status = Set(ACTIVE.to_string());
            a.effective_at = Set(item.effective_at);
            a.recorded_at = Set(now);
            a.undisclosed = Set(item.undisclosed);
            a.in_summary = Set(kind.summary_rule() == SummaryRule::WhileCurrent);
            a.series_key = Set(series.clone());
            a.data = Set(data);
            (a.update(txn).await?, WriteOutcome::Updated)
        }
        None => {
            let source = item.source_record_id.clone();
            let inserted = record::Entity::insert(record::ActiveModel {
                id: Set(super::new_id()),
                patient_id: Set(item.patient_id),
                kind: Set(kind.as_str().to_string()),
                category: Set(category.as_str().to_string()),
                source_organization_id: Set(org),
                author_member_id: Set(member),
                author_api_key_id: Set(api_key),
                source_record_id: Set(item.source_record_id),
                version: Set(1),
                status: Set(ACTIVE.to_string()),
                effective_at: Set(item.effective_at),
                recorded_at: Set(now),
                undisclosed: Set(item.undisclosed),
                in_summary: Set(kind.summary_rule() == SummaryRule::WhileCurrent),
                series_key: Set(series.clone()),
                data: Set(data),
            })
            .exec_with_returning(txn)
            .await
            // Another patient's writer, not serialised with this one by
            // the patient locks, inserted the same source record ID first.
            .map_err(|e| match e.sql_err() {
                Some(SqlErr::UniqueConstraintViolation(_)) => taken(source.as_deref()),
                _ => ApiError::from(e),
            })?;
            (inserted, WriteOutcome::Created)
        }
    };
    if kind.summary_rule() == SummaryRule::LatestOfSeries {
        refresh_latest(txn, model.patient_id, kind, series.as_deref()).await?;
        // Re-read: the refresh may have made this record the latest.
        let model = record::Entity::find_by_id(model.id)
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::internal("a written record vanished"))?;
        return Ok((model, outcome));
    }
    Ok((model, outcome))
}

/// The content to store: `data` with the parts the writer may not write
/// ([`RecordData::keeping_parts`]) as the version it replaces had them —
/// the record's current version on a resubmission, or, for a new record of
/// a kind with parts, the newest record of its series (an emergency sheet
/// registered by a care manager replaces the physician's in the composed
/// read, and keeps its diagnoses). A withdrawn record (entered in error)
/// keeps nothing. The pre-check refused a writer that filled such a part.
async fn with_kept_parts(
    txn: &impl ConnectionTrait,
    writer: &PatientAccess,
    existing: Option<&record::Model>,
    data: RecordData,
    series: Option<&str>,
) -> ApiResult<RecordData> {
    let kept: Vec<DataCategory> = data
        .part_categories()
        .into_iter()
        .filter(|c| !writer.may_write(*c))
        .collect();
    if kept.is_empty() {
        return Ok(data);
    }
    let kind = data.kind();
    let previous = match existing {
        Some(current) => Some(current.clone()),
        // Only a series has a record a new one replaces.
        None if kind.summary_rule() != SummaryRule::LatestOfSeries => None,
        None => {
            let mut q = record::Entity::find()
                .filter(record::Column::PatientId.eq(writer.patient_id()))
                .filter(record::Column::Kind.eq(kind.as_str()))
                .filter(record::Column::Status.eq(ACTIVE))
                .filter(record::Column::InSummary.eq(true));
            q = match series {
                Some(s) => q.filter(record::Column::SeriesKey.eq(s)),
                None => q.filter(record::Column::SeriesKey.is_null()),
            };
            q.one(txn).await?
        }
    };
    let previous = match previous {
        Some(p) if p.status == ACTIVE => RecordData::from_json(kind, &p.data)?,
        _ => return Ok(data),
    };
    Ok(data.keeping_parts(&previous, |c| kept.contains(&c)))
}

async fn keep_version(txn: &impl ConnectionTrait, current: &record::Model) -> ApiResult<()> {
    record_version::Entity::insert(record_version::ActiveModel {
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
    })
    .exec(txn)
    .await?;
    Ok(())
}

/// Marks the newest active record of a series as the summary's one and
/// clears the mark on the others: two statements per write, so the summary
/// reads one row per series instead of scanning the history.
async fn refresh_latest(
    txn: &impl ConnectionTrait,
    patient_id: Uuid,
    kind: RecordKind,
    series: Option<&str>,
) -> ApiResult<()> {
    let same_series = || {
        let c = Condition::all()
            .add(record::Column::PatientId.eq(patient_id))
            .add(record::Column::Kind.eq(kind.as_str()));
        match series {
            Some(s) => c.add(record::Column::SeriesKey.eq(s)),
            None => c.add(record::Column::SeriesKey.is_null()),
        }
    };
    record::Entity::update_many()
        .col_expr(record::Column::InSummary, Expr::value(false))
        .filter(same_series())
        .exec(txn)
        .await?;
    let newest = record::Entity::find()
        .select_only()
        .column(record::Column::Id)
        .filter(same_series())
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
    current: record::Model,
    now: DateTime<Utc>,
) -> ApiResult<record::Model> {
    let principal = &stamp.principal;
    let category = DataCategory::from_db(&current.category)?;
    access.require_write(category)?;
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
    let version = current.version + 1;
    let mut a: record::ActiveModel = current.into();
    a.version = Set(version);
    a.status = Set(ENTERED_IN_ERROR.to_string());
    a.in_summary = Set(false);
    a.recorded_at = Set(now);
    a.author_member_id = Set(member);
    a.author_api_key_id = Set(api_key);
    let updated = a.update(&txn).await?;
    if kind.summary_rule() == SummaryRule::LatestOfSeries {
        refresh_latest(&txn, updated.patient_id, kind, series.as_deref()).await?;
    }
    let entry = stamp.write(updated.patient_id, &[category]);
    crate::audit::append_in(&txn, &[&entry], now).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The summary's candidate records of many patients, in one query.
pub async fn summary_candidates(
    db: &DatabaseConnection,
    patient_ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Vec<record::Model>>> {
    let rows = record::Entity::find()
        .filter(super::id_in(
            db.get_database_backend(),
            (record::Entity, record::Column::PatientId),
            patient_ids,
        ))
        .filter(record::Column::InSummary.eq(true))
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

/// Whether version `version` of record `record_id` is, to a caller with
/// `access`, a version of its own ([`seen_versions`]: readable, and
/// changing something the caller may read) — so that telling the caller it
/// was written tells nothing the caller may not see. `false` when there is
/// no such record or version.
pub async fn is_seen_version(
    db: &DatabaseConnection,
    access: &PatientAccess,
    record_id: Uuid,
    version: i32,
) -> ApiResult<bool> {
    let Some(current) = record::Entity::find_by_id(record_id).one(db).await? else {
        return Ok(false);
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
    if last != Some(version) {
        return Ok(false);
    }
    Ok(seen_versions(Some(access), &contents)
        .last()
        .is_some_and(|s| s.first + 1 == contents.len()))
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
