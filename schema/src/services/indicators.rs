//! 活用状況: the indicators of the 在宅医療・介護連携推進事業, computed from
//! the hub's use instead of surveyed on paper (issue 15, `docs/indicators.md`).
//!
//! Only aggregates leave: counts per municipality and period, every cell of
//! people or of their data below [`MIN_CELL`] suppressed, with complementary
//! suppression so that no suppressed cell can be recovered from its table's
//! total ([`suppress`]) and no part from a population it belongs to
//! ([`suppress_parts`]), and every count of people's data withheld when the
//! municipality has fewer than [`MIN_CELL`] people to tabulate. Only
//! patients with a consent in force count, and only the data their consent
//! does not exclude.
//!
//! A patient belongs to a municipality when their address names it first
//! (after the prefecture and a district: `domain::lives_in`; the hub keeps
//! addresses as text); an organisation when its `municipality` is that name.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::domain::{DataCategory, OrganizationKind, PatientStatus, Profession};
use crate::error::ApiResult;
use crate::records::{RecordData, RecordKind};
use crate::services::admission_discharge::notices::{self, LeadTimeBucket};
use entities::{
    audit_log, discharge_notice, liaison_message, member, organization, patient, record,
};

/// The smallest count published: a cell of 1 to 4 people (or of their
/// records, reads, messages) is suppressed.
pub const MIN_CELL: i64 = 5;

/// One cell: its label and its count, `None` when suppressed.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub label: String,
    pub value: Option<i64>,
}

/// One indicator: a titled table of cells, with its total when the cells
/// add up to one.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub key: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub cells: Vec<Cell>,
    /// `None`: no total (the cells overlap), or the total is suppressed.
    pub total: Option<i64>,
    pub has_total: bool,
}

/// Suppresses small cells, then enough others that none can be derived:
/// 1. every cell with 0 < count < [`MIN_CELL`] is suppressed (zero is not a
///    person and is published);
/// 2. when a total is published, the total minus the published cells gives
///    the suppressed cells' sum: while that sum is below [`MIN_CELL`] (one
///    small cell, or several small ones adding up to little — a table never
///    lists a suppressed zero, so two suppressed cells summing to 2 are 1
///    each), the smallest published cell above zero is suppressed too — or,
///    with none left, the total (a zero cell would hide nothing);
/// 3. a total below [`MIN_CELL`] (and above zero) is suppressed;
/// 4. in a table with a total (its cells parts of one whole) whose total
///    is not published, with a cell suppressed, the zero cells are
///    suppressed too: published, they would say the suppressed ones hold
///    everyone counted.
pub fn suppress(raw: Vec<(String, i64)>, with_total: bool) -> (Vec<Cell>, Option<i64>) {
    let small = |v: i64| v > 0 && v < MIN_CELL;
    let total: i64 = raw.iter().map(|(_, v)| v).sum();
    let mut hidden: Vec<bool> = raw.iter().map(|(_, v)| small(*v)).collect();
    let mut total_shown = with_total && !small(total);
    while total_shown && hidden.contains(&true) {
        let hidden_sum: i64 = raw
            .iter()
            .zip(&hidden)
            .filter(|(_, h)| **h)
            .map(|((_, v), _)| *v)
            .sum();
        if hidden_sum >= MIN_CELL {
            break;
        }
        let other = raw
            .iter()
            .enumerate()
            .filter(|(i, (_, v))| !hidden[*i] && *v > 0)
            .min_by_key(|(i, (_, v))| (*v, *i))
            .map(|(i, _)| i);
        match other {
            Some(i) => hidden[i] = true,
            None => total_shown = false,
        }
    }
    // A table of parts of one whole whose total is not published: a zero
    // published beside suppressed cells tells that they hold every one
    // counted (four kinds of answer at 0
    // and 「未返信」 suppressed: every thread went unanswered): the zeros
    // are suppressed with them.
    if with_total && !total_shown && hidden.contains(&true) {
        for (h, (_, v)) in hidden.iter_mut().zip(&raw) {
            if *v == 0 {
                *h = true;
            }
        }
    }
    let cells = raw
        .into_iter()
        .zip(hidden)
        .map(|((label, v), h)| Cell {
            label,
            value: (!h).then_some(v),
        })
        .collect();
    (cells, total_shown.then_some(total))
}

fn table(
    key: &'static str,
    title: &'static str,
    unit: &'static str,
    raw: Vec<(String, i64)>,
    with_total: bool,
) -> Table {
    let (cells, total) = suppress(raw, with_total);
    Table {
        key,
        title,
        unit,
        cells,
        total,
        has_total: with_total,
    }
}

/// Which counts of a population and its parts to suppress (`true`):
/// `parts` are `(whole, part)` pairs, every containment listed, not only the
/// direct ones, and a part's difference from its whole counts people too —
/// registered minus consenting is who withdrew. Small counts are
/// suppressed (as by [`suppress`]), then, until nothing changes, every part
/// whose difference from a published whole is 1 to 4 (the part, not the
/// whole: the population stays readable).
fn suppress_parts(values: &[i64], parts: &[(usize, usize)]) -> Vec<bool> {
    let small = |v: i64| v > 0 && v < MIN_CELL;
    let mut hidden: Vec<bool> = values.iter().map(|v| small(*v)).collect();
    loop {
        let mut changed = false;
        for &(whole, part) in parts {
            let (Some(w), Some(p)) = (values.get(whole), values.get(part)) else {
                continue;
            };
            if !hidden[whole] && !hidden[part] && small(w - p) {
                hidden[part] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    hidden
}

/// A table of some of the counts `suppress_parts` decided (`of`, in order;
/// `raw` holds every count of the population the decision was over).
fn parts_table(
    (key, title, unit): (&'static str, &'static str, &'static str),
    raw: &[(&str, i64)],
    hidden: &[bool],
    of: &[usize],
) -> Table {
    Table {
        key,
        title,
        unit,
        cells: of
            .iter()
            .map(|&i| Cell {
                label: raw[i].0.to_string(),
                value: (!hidden[i]).then_some(raw[i].1),
            })
            .collect(),
        total: None,
        has_total: false,
    }
}

/// A table of a population and its parts, suppressed by [`suppress_parts`].
fn nested_table(
    heading: (&'static str, &'static str, &'static str),
    raw: &[(&str, i64)],
    parts: &[(usize, usize)],
) -> Table {
    let values: Vec<i64> = raw.iter().map(|(_, v)| *v).collect();
    let every: Vec<usize> = (0..raw.len()).collect();
    parts_table(heading, raw, &suppress_parts(&values, parts), &every)
}

/// The municipality and period asked for.
#[derive(Clone, Debug)]
pub struct Scope {
    pub municipality: String,
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
}

impl Scope {
    fn start(&self) -> DateTime<Utc> {
        self.from.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
    fn end(&self) -> DateTime<Utc> {
        self.to.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }
    fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start() && t < self.end()
    }
}

/// Every indicator of a municipality over a period.
pub async fn compute(db: &DatabaseConnection, scope: &Scope) -> ApiResult<Vec<Table>> {
    let backend = db.get_database_backend();
    // The organisations of the municipality, by kind (directory facts, not
    // people: not suppressed).
    let orgs = organization::Entity::find()
        .filter(organization::Column::Municipality.eq(scope.municipality.as_str()))
        .all(db)
        .await?;
    let mut by_kind: BTreeMap<&'static str, i64> = BTreeMap::new();
    for o in &orgs {
        if let Some(k) = OrganizationKind::parse(&o.kind) {
            *by_kind.entry(k.as_str()).or_default() += 1;
        }
    }
    let organizations = Table {
        key: "organizationsByKind",
        title: "参加機関（種別）",
        unit: "機関",
        total: Some(orgs.len() as i64),
        has_total: true,
        cells: by_kind
            .into_iter()
            .map(|(k, v)| Cell {
                label: k.to_string(),
                value: Some(v),
            })
            .collect(),
    };

    // The municipality's patients and the consent in force of each.
    let patients: Vec<patient::Model> = patient::Entity::find()
        // A coarse filter in SQL, the rule in code (`domain::lives_in`).
        .filter(patient::Column::Address.contains(scope.municipality.as_str()))
        .all(db)
        .await?
        .into_iter()
        .filter(|p| {
            p.address
                .as_deref()
                .is_some_and(|a| crate::domain::lives_in(a, &scope.municipality))
        })
        .collect();
    let ids: Vec<Uuid> = patients.iter().map(|p| p.id).collect();
    let terms = super::consents::terms_in_force(db, &ids).await?;
    let consented: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|p| terms.contains_key(p))
        .collect();
    let shares =
        |p: Uuid, c: DataCategory| terms.get(&p).is_some_and(|t| !t.excluded().contains(&c));
    let at_home: Vec<&patient::Model> = patients
        .iter()
        .filter(|p| p.status == PatientStatus::Active.as_str() && terms.contains_key(&p.id))
        .collect();
    // Records shared in the period, by kind and by month: consented
    // patients, categories their consent does not exclude.
    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> = record::Entity::find()
        .select_only()
        .columns([
            record::Column::PatientId,
            record::Column::Kind,
            record::Column::Category,
            record::Column::RecordedAt,
        ])
        .filter(super::id_in(
            backend,
            (record::Entity, record::Column::PatientId),
            &consented,
        ))
        .filter(record::Column::RecordedAt.gte(scope.start()))
        .filter(record::Column::RecordedAt.lt(scope.end()))
        .into_tuple()
        .all(db)
        .await?;
    let mut by_record_kind: BTreeMap<String, i64> = BTreeMap::new();
    // Whose records they are: a table of one or two people's records is
    // theirs, however many records.
    let mut record_people: HashSet<Uuid> = HashSet::new();
    let mut by_month: BTreeMap<String, i64> = BTreeMap::new();
    for (p, kind, category, at) in rows {
        let Ok(category) = DataCategory::from_db(&category) else {
            continue;
        };
        if !shares(p, category) {
            continue;
        }
        record_people.insert(p);
        *by_record_kind.entry(kind).or_default() += 1;
        *by_month
            .entry(format!("{:04}-{:02}", at.year(), at.month()))
            .or_default() += 1;
    }
    let records_by_kind = table(
        "recordsByKind",
        "共有された記録（種類別）",
        "件",
        by_record_kind.into_iter().collect(),
        true,
    );
    let records_by_month = table(
        "recordsByMonth",
        "共有された記録（月別）",
        "件",
        by_month.into_iter().collect(),
        true,
    );

    // Reads by profession and by category, from the audit log.
    let reads: Vec<(Uuid, Option<Uuid>, String, String)> = audit_log::Entity::find()
        .select_only()
        .columns([
            audit_log::Column::ActorId,
            audit_log::Column::PatientId,
            audit_log::Column::ActorKind,
            audit_log::Column::Categories,
        ])
        .filter(audit_log::Column::Action.is_in(["READ", "EMERGENCY_READ"]))
        .filter(audit_log::Column::OccurredAt.gte(scope.start()))
        .filter(audit_log::Column::OccurredAt.lt(scope.end()))
        .filter(audit_log::Column::PatientId.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let mine: HashSet<Uuid> = consented.iter().copied().collect();
    let reads: Vec<_> = reads
        .into_iter()
        .filter(|(_, p, _, _)| p.is_some_and(|p| mine.contains(&p)))
        .collect();
    let actors: Vec<Uuid> = reads
        .iter()
        .map(|r| r.0)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let professions: HashMap<Uuid, String> = member::Entity::find()
        .filter(super::id_in(
            backend,
            (member::Entity, member::Column::Id),
            &actors,
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m.profession))
        .collect();
    let mut by_profession: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_category: BTreeMap<String, i64> = BTreeMap::new();
    let read_people: HashSet<Uuid> = reads.iter().filter_map(|r| r.1).collect();
    for (actor, _, kind, categories) in &reads {
        let who = if kind == "SYSTEM" {
            "SYSTEM".to_string()
        } else {
            professions
                .get(actor)
                .and_then(|p| Profession::parse(p))
                .map_or("OTHER".to_string(), |p| p.as_str().to_string())
        };
        *by_profession.entry(who).or_default() += 1;
        for c in crate::audit::stored_categories(categories).filter_map(DataCategory::parse) {
            *by_category.entry(c.as_str().to_string()).or_default() += 1;
        }
    }
    let reads_by_profession = table(
        "readsByProfession",
        "閲覧（職種別）",
        "回",
        by_profession.into_iter().collect(),
        true,
    );
    let reads_by_category = table(
        "readsByCategory",
        "閲覧（情報の区分別）",
        "回",
        by_category.into_iter().collect(),
        false,
    );

    // Emergency information and ACP among the patients at home.
    let home_ids: Vec<Uuid> = at_home.iter().map(|p| p.id).collect();
    let kinds: Vec<(Uuid, String)> = record::Entity::find()
        .select_only()
        .columns([record::Column::PatientId, record::Column::Kind])
        .filter(super::id_in(
            backend,
            (record::Entity, record::Column::PatientId),
            &home_ids,
        ))
        .filter(record::Column::Kind.is_in([
            RecordKind::EmergencyInformation.as_str(),
            RecordKind::AdvanceCarePlan.as_str(),
        ]))
        .filter(record::Column::Status.eq(super::records::ACTIVE))
        .into_tuple()
        .all(db)
        .await?;
    let with = |kind: RecordKind, category: DataCategory| {
        kinds
            .iter()
            .filter(|(p, k)| k == kind.as_str() && shares(*p, category))
            .map(|(p, _)| *p)
            .collect::<HashSet<_>>()
            .len() as i64
    };
    // One population, counted in two tables: registered ⊇ consenting ⊇ at
    // home ⊇ with emergency information, ⊇ with an ACP. Every difference is
    // people (who withdrew, who is not at home, who has no sheet), so the
    // counts are suppressed together — decided apart, a count suppressed in
    // one table could be worked out from the other's.
    let population = [
        ("登録患者", patients.len() as i64),
        ("同意あり", consented.len() as i64),
        ("在宅療養中（同意あり）", at_home.len() as i64),
        (
            "救急医療情報あり",
            with(
                RecordKind::EmergencyInformation,
                DataCategory::EmergencyInformation,
            ),
        ),
        (
            "ACPあり",
            with(
                RecordKind::AdvanceCarePlan,
                DataCategory::AdvanceCarePlanning,
            ),
        ),
    ];
    let values: Vec<i64> = population.iter().map(|(_, v)| *v).collect();
    let hidden = suppress_parts(
        &values,
        &[
            (0, 1),
            (0, 2),
            (0, 3),
            (0, 4),
            (1, 2),
            (1, 3),
            (1, 4),
            (2, 3),
            (2, 4),
        ],
    );
    let patients_table = parts_table(
        ("patients", "登録患者と同意", "人"),
        &population,
        &hidden,
        &[0, 1, 2],
    );
    let mut coverage = parts_table(
        ("coverage", "在宅療養者の救急医療情報・ACP", "人"),
        &population,
        &hidden,
        &[2, 3, 4],
    );
    coverage.cells[0].label = "在宅療養者".into();

    // Deaths in the period: where, and whether where the patient wished.
    let died: Vec<&patient::Model> = patients
        .iter()
        .filter(|p| terms.contains_key(&p.id))
        .filter(|p| {
            p.deceased_on
                .is_some_and(|d| d >= scope.from && d < scope.to)
        })
        .collect();
    let died_ids: Vec<Uuid> = died.iter().map(|p| p.id).collect();
    let mut wished: HashMap<Uuid, (DateTime<Utc>, Option<String>)> = HashMap::new();
    for r in record::Entity::find()
        .filter(super::id_in(
            backend,
            (record::Entity, record::Column::PatientId),
            &died_ids,
        ))
        .filter(record::Column::Kind.eq(RecordKind::AdvanceCarePlan.as_str()))
        .filter(record::Column::Status.eq(super::records::ACTIVE))
        .all(db)
        .await?
    {
        if !shares(r.patient_id, DataCategory::AdvanceCarePlanning) {
            continue;
        }
        let place = match RecordData::from_json(RecordKind::AdvanceCarePlan, &r.data)? {
            RecordData::AdvanceCarePlan(d) => d.place_of_death.map(|p| p.as_str().to_string()),
            _ => None,
        };
        let newer = wished
            .get(&r.patient_id)
            .is_none_or(|(t, _)| r.effective_at > *t);
        if newer {
            wished.insert(r.patient_id, (r.effective_at, place));
        }
    }
    let mut by_place: BTreeMap<String, i64> = BTreeMap::new();
    let mut at_wished_place = 0;
    for p in &died {
        let place = p.place_of_death.clone().unwrap_or_else(|| "UNKNOWN".into());
        if wished.get(&p.id).and_then(|(_, w)| w.as_deref()) == Some(place.as_str()) {
            at_wished_place += 1;
        }
        *by_place.entry(place).or_default() += 1;
    }
    let deaths = table(
        "deathsByPlace",
        "亡くなった場所",
        "人",
        by_place.into_iter().collect(),
        true,
    );
    // Those who died minus those who died where they wished is people too.
    let wishes = nested_table(
        ("deathsAtWishedPlace", "希望した場所での看取り", "人"),
        &[
            ("亡くなった方", died.len() as i64),
            ("ACPで希望した場所で", at_wished_place),
        ],
        &[(0, 1)],
    );

    // Discharge notices by Kitami's lead-time buckets.
    let mut buckets: BTreeMap<usize, i64> = BTreeMap::new();
    for n in discharge_notice::Entity::find()
        .filter(super::id_in(
            backend,
            (
                discharge_notice::Entity,
                discharge_notice::Column::PatientId,
            ),
            &consented,
        ))
        .filter(discharge_notice::Column::NotifiedOn.gte(scope.from))
        .filter(discharge_notice::Column::NotifiedOn.lt(scope.to))
        .all(db)
        .await?
    {
        // Shared with the notice's hospital, as the lead-time report counts
        // (`admission_discharge::report`): a notice about a patient whose
        // consent no longer covers the hospital is not counted.
        if !terms.get(&n.patient_id).is_some_and(|t| {
            t.shares_with(n.hospital_organization_id, DataCategory::AdmissionDischarge)
        }) {
            continue;
        }
        let bucket = LeadTimeBucket::of(notices::lead_time_days(&n));
        let i = LeadTimeBucket::ALL
            .iter()
            .position(|b| *b == bucket)
            .unwrap_or(0);
        *buckets.entry(i).or_default() += 1;
    }
    let lead_times = table(
        "dischargeLeadTimes",
        "退院連絡の時期",
        "件",
        LeadTimeBucket::ALL
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    b.as_str().to_string(),
                    buckets.get(&i).copied().unwrap_or(0),
                )
            })
            .collect(),
        true,
    );

    // Liaison messages in the period and how soon the first answer came.
    let messages = liaison_message::Entity::find()
        .filter(super::id_in(
            backend,
            (liaison_message::Entity, liaison_message::Column::PatientId),
            &consented,
        ))
        .all(db)
        .await?;
    let mut threads: HashMap<Uuid, Vec<&liaison_message::Model>> = HashMap::new();
    for m in messages
        .iter()
        .filter(|m| shares(m.patient_id, DataCategory::LiaisonMessages))
    {
        threads.entry(m.thread_id).or_default().push(m);
    }
    let mut response_hours: Vec<i64> = Vec::new();
    let mut sent = 0;
    let mut started = 0;
    for list in threads.values_mut() {
        list.sort_by_key(|m| (m.created_at, m.id));
        sent += list.iter().filter(|m| scope.contains(m.created_at)).count() as i64;
        let first = list[0];
        if !scope.contains(first.created_at) {
            continue;
        }
        started += 1;
        if let Some(answer) = list
            .iter()
            .find(|m| m.author_organization_id != first.author_organization_id)
        {
            response_hours.push((answer.created_at - first.created_at).num_hours());
        }
    }
    let within =
        |h: std::ops::Range<i64>| response_hours.iter().filter(|r| h.contains(r)).count() as i64;
    // Every thread started in the period has its first message among those
    // sent: messages minus threads is a count of messages too.
    let liaison = nested_table(
        ("liaison", "連絡票", "件"),
        &[("送られたメッセージ", sent), ("始まったスレッド", started)],
        &[(0, 1)],
    );
    let unanswered = started - response_hours.len() as i64;
    let liaison_response = table(
        "liaisonResponse",
        "連絡票に最初の返信が来るまで",
        "件",
        vec![
            ("1時間未満".into(), within(0..1)),
            ("1〜24時間".into(), within(1..24)),
            ("1〜3日".into(), within(24..72)),
            ("3日以上".into(), within(72..i64::MAX)),
            ("未返信".into(), unanswered),
        ],
        true,
    );

    let mut of_people = vec![
        records_by_kind,
        records_by_month,
        reads_by_profession,
        reads_by_category,
        coverage,
        deaths,
        wishes,
        lead_times,
        liaison,
        liaison_response,
    ];
    // Fewer than MIN_CELL people tabulated: every count of their data is
    // theirs alone — a cell of 83 records is one household's 83 records
    // however large it is — so none is published.
    if (consented.len() as i64) < MIN_CELL {
        for t in &mut of_people {
            withhold(t);
        }
    }
    // The same within a larger population: the records or reads of fewer
    // than MIN_CELL people (one patient with every lab result of the
    // period) are theirs.
    for t in &mut of_people {
        let people = match t.key {
            "recordsByKind" | "recordsByMonth" => record_people.len(),
            "readsByProfession" | "readsByCategory" => read_people.len(),
            _ => continue,
        };
        if (people as i64) < MIN_CELL {
            withhold(t);
        }
    }
    // A table whose labels are what was found (record kinds, months,
    // professions, categories, places of death) tells by its labels alone
    // what its suppressed cells hide: a lone suppressed 「HOME」 says every
    // one who died did so at home, a suppressed `SENSITIVE_HIV` that
    // someone's HIV data was read. With no cell published, no label is.
    for t in &mut of_people {
        let labels_found = matches!(
            t.key,
            "recordsByKind"
                | "recordsByMonth"
                | "readsByProfession"
                | "readsByCategory"
                | "deathsByPlace"
        );
        if labels_found && t.cells.iter().all(|c| c.value.is_none()) {
            t.cells.clear();
        }
    }
    let mut tables = vec![organizations, patients_table];
    tables.append(&mut of_people);
    Ok(tables)
}

/// Suppresses every cell of a table, and its total.
fn withhold(t: &mut Table) {
    for c in &mut t.cells {
        c.value = None;
    }
    t.total = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(values: &[i64]) -> Vec<(String, i64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("c{i}"), *v))
            .collect()
    }

    fn shown(cells: &[Cell]) -> Vec<Option<i64>> {
        cells.iter().map(|c| c.value).collect()
    }

    #[test]
    fn small_cells_are_suppressed_and_zero_is_not() {
        let (cells, total) = suppress(raw(&[12, 3, 0, 8]), false);
        assert_eq!(shown(&cells), [Some(12), None, Some(0), Some(8)]);
        assert_eq!(total, None);
    }

    #[test]
    fn zeros_beside_a_suppressed_cell_of_a_suppressed_total_are_suppressed() {
        // Four answers at 0 and 3 unanswered: published zeros would say
        // that every one went unanswered.
        let (cells, total) = suppress(raw(&[0, 0, 3, 0]), true);
        assert_eq!(shown(&cells), [None, None, None, None]);
        assert_eq!(total, None);
        // With a total published, a zero hides nothing and stays.
        let (cells, total) = suppress(raw(&[0, 3, 9]), true);
        assert_eq!(shown(&cells), [Some(0), None, None]);
        assert_eq!(total, Some(12));
    }

    #[test]
    fn a_lone_suppressed_cell_cannot_be_recovered_from_the_total() {
        // 12 + 3 + 8 = 23: publishing 23, 12 and 8 would give away the 3.
        let (cells, total) = suppress(raw(&[12, 3, 8]), true);
        assert_eq!(shown(&cells), [Some(12), None, None]);
        assert_eq!(total, Some(23));
        // The subtraction attack: the total minus every published cell is
        // the sum of at least two suppressed cells, never one.
        let published: i64 = cells.iter().filter_map(|c| c.value).sum();
        let hidden = cells.iter().filter(|c| c.value.is_none()).count();
        assert!(hidden >= 2 && total.unwrap() - published == 11);
        // A zero cell hides nothing (the suppressed sum stays 3): the next
        // cell above zero is suppressed instead, and the zero published.
        let (cells, total) = suppress(raw(&[12, 3, 0]), true);
        assert_eq!(shown(&cells), [None, None, Some(0)]);
        assert_eq!(total, Some(15));
    }

    #[test]
    fn small_cells_that_add_up_to_little_take_another_with_them() {
        // 6 + 1 + 1: publishing 8 and 6 would tell that the two suppressed
        // cells hold 2 — one each, as no suppressed cell is zero.
        let (cells, total) = suppress(raw(&[6, 1, 1]), true);
        assert_eq!(shown(&cells), [None, None, None]);
        assert_eq!(total, Some(8));
        let (cells, total) = suppress(raw(&[30, 7, 2, 1]), true);
        assert_eq!(shown(&cells), [Some(30), None, None, None]);
        assert_eq!(total, Some(40));
        // Whatever the table, the suppressed cells sum to MIN_CELL or more
        // whenever the total is published.
        for values in [[9, 1, 1, 1], [5, 2, 0, 1], [40, 4, 0, 0], [1, 1, 1, 50]] {
            let (cells, total) = suppress(raw(&values), true);
            if let Some(total) = total {
                let published: i64 = cells.iter().filter_map(|c| c.value).sum();
                let hidden = total - published;
                assert!(hidden == 0 || hidden >= MIN_CELL, "{values:?}: {cells:?}");
            }
        }
    }

    #[test]
    fn a_single_small_cell_takes_the_total_with_it() {
        let (cells, total) = suppress(raw(&[3]), true);
        assert_eq!(shown(&cells), [None]);
        assert_eq!(total, None);
        let (cells, total) = suppress(raw(&[2, 1]), true);
        assert_eq!(shown(&cells), [None, None]);
        assert_eq!(total, None, "a total of 3 is itself small");
    }

    fn nested(values: &[i64], parts: &[(usize, usize)]) -> Vec<Option<i64>> {
        values
            .iter()
            .zip(suppress_parts(values, parts))
            .map(|(v, h)| (!h).then_some(*v))
            .collect()
    }

    #[test]
    fn a_part_a_few_short_of_its_whole_is_suppressed() {
        let chain = [(0, 1), (0, 2), (1, 2)];
        // 143 registered, 141 consenting: 2 withdrew. The part goes, the
        // whole stays; 130 at home is 13 short of 143, but only 11 of the
        // hidden 141 — nothing gives it away.
        assert_eq!(
            nested(&[143, 141, 130], &chain),
            [Some(143), None, Some(130)]
        );
        // 143, 130, 127: the consenting stay (13 withdrew), those at home go
        // (3 of the consenting are not at home).
        assert_eq!(
            nested(&[143, 130, 127], &chain),
            [Some(143), Some(130), None]
        );
        // Without `(0, 2)` listed, 143 − 140 would be published.
        assert_eq!(nested(&[143, 141, 140], &chain), [Some(143), None, None]);
        // Equal counts (nobody left out) and large differences publish.
        assert_eq!(nested(&[20, 20, 9], &chain), [Some(20), Some(20), Some(9)]);
        // Small cells stay suppressed; a small whole gives nothing to
        // subtract from.
        assert_eq!(nested(&[6, 5], &[(0, 1)]), [Some(6), None]);
        assert_eq!(nested(&[3, 0], &[(0, 1)]), [None, Some(0)]);
        // A part is compared with every population it belongs to, not only
        // the nearest: with at home (19) suppressed for being one short of
        // the consenting (20), those with a sheet (19) are one short of the
        // consenting too — published, they would give the 19 away.
        let population = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
        assert_eq!(
            nested(&[30, 20, 19, 19], &population),
            [Some(30), Some(20), None, None]
        );
        // Whatever the counts, no two published cells of a chain differ by
        // 1 to 4.
        for values in [
            [10, 9, 8],
            [50, 46, 41],
            [7, 7, 3],
            [12, 8, 4],
            [100, 99, 98],
        ] {
            let cells = nested(&values, &chain);
            for &(w, p) in &chain {
                if let (Some(w), Some(p)) = (cells[w], cells[p]) {
                    assert!(!(1..MIN_CELL).contains(&(w - p)), "{values:?}: {cells:?}");
                }
            }
        }
    }

    #[test]
    fn two_suppressed_cells_need_no_more() {
        let (cells, total) = suppress(raw(&[20, 2, 4, 9]), true);
        assert_eq!(shown(&cells), [Some(20), None, None, Some(9)]);
        assert_eq!(total, Some(35));
    }
}
