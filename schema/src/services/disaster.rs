//! 災害時要配慮者名簿: the register of medically dependent patients — home
//! oxygen, ventilator, dialysis, suction, tube feeding, insulin — for the
//! municipality's planning for 避難行動要支援者 and for the care teams
//! preparing for a blackout (issue 14 part 4, `docs/disaster-register.md`).
//!
//! Nothing is entered for it: the dependencies are derived from the records
//! in force today by the table in `schema/data/medical-dependencies.toml`
//! (data, reviewed by the network's clinicians, not code). The register
//! shows the dependency and the kind of record it came from, never the
//! record's content. Who reads it, over whom, is the policy's
//! ([`Policy::disaster_register_scope`](crate::policy::Policy::disaster_register_scope));
//! here the consent is applied per patient: a dependency counts only when
//! the consent does not exclude the category of the record it comes from
//! either, so excluding CONDITIONS keeps dialysis out of the register even
//! for a reader of DISASTER_SUPPORT.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{CareTeamRole, DataCategory, PatientStatus};
use crate::error::ApiResult;
use crate::policy::{RegisterOver, RegisterScope, active_on};
use crate::records::{RecordData, RecordKind};
use entities::{care_team_membership, patient, record};

crate::domain::domain_enum! {
    /// A medical dependency that matters when the power or the roads fail.
    pub enum MedicalDependency {
        /// 在宅酸素療法: an oxygen concentrator needs power; cylinders run out.
        HomeOxygen = "HOME_OXYGEN",
        /// 人工呼吸器 (NPPV/TPPV): needs power, and batteries last hours.
        Ventilator = "VENTILATOR",
        /// 透析: haemodialysis needs a unit; CAPD supplies and a clean room.
        Dialysis = "DIALYSIS",
        /// 喀痰吸引: a suction machine needs power.
        Suction = "SUCTION",
        /// 経管栄養 (胃ろう …): formula, a pump, clean water.
        TubeFeeding = "TUBE_FEEDING",
        /// インスリン: the drug must be kept cool and not run out.
        Insulin = "INSULIN",
    }
}

const SOURCE: &str = include_str!("../../data/medical-dependencies.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    dependency: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    id: String,
    label: String,
    keywords: Vec<String>,
    #[serde(default)]
    icd10: Vec<String>,
    #[serde(default)]
    yj: Vec<String>,
}

/// The table, parsed on first use. The file is compiled in and checked by
/// the tests below, so it cannot fail at run time.
static RULES: LazyLock<Vec<(MedicalDependency, Rule)>> = LazyLock::new(|| {
    let table: Table = toml::from_str(SOURCE)
        .expect("schema/data/medical-dependencies.toml parses (checked by tests)");
    table
        .dependency
        .into_iter()
        .map(|r| {
            let d = MedicalDependency::parse(&r.id)
                .expect("every dependency of the table is a MedicalDependency (checked by tests)");
            (d, r)
        })
        .collect()
});

impl MedicalDependency {
    /// The label of the table (「在宅酸素療法」).
    pub fn label(self) -> &'static str {
        RULES
            .iter()
            .find(|(d, _)| *d == self)
            .map(|(_, r)| r.label.as_str())
            .unwrap_or_else(|| self.as_str())
    }
}

/// The kinds a dependency is derived from, each with the category it is
/// governed by when its content is not sensitive.
const SOURCES: &[RecordKind] = &[
    RecordKind::Condition,
    RecordKind::Prescription,
    RecordKind::VisitingNurseInstruction,
    RecordKind::PhysicianOpinion,
];

/// The dependencies one record in force shows, by the table.
fn dependencies_of(data: &RecordData, today: NaiveDate) -> Vec<MedicalDependency> {
    let (texts, icd10, yj): (Vec<&str>, Option<&str>, Option<&str>) = match data {
        RecordData::Condition(d) if data.is_current(today) => {
            (vec![d.name.as_str()], d.icd10.as_deref(), None)
        }
        RecordData::Prescription(d) if data.is_current(today) => {
            (vec![d.drug.as_str()], None, d.yj_code.as_deref())
        }
        RecordData::VisitingNurseInstruction(d) if data.is_current(today) => (
            d.medical_devices.iter().map(String::as_str).collect(),
            None,
            None,
        ),
        RecordData::PhysicianOpinion(d) => (
            d.special_medical_care.iter().map(String::as_str).collect(),
            None,
            None,
        ),
        _ => return Vec::new(),
    };
    let texts: Vec<String> = texts.iter().map(|t| t.to_lowercase()).collect();
    RULES
        .iter()
        .filter(|(_, rule)| {
            rule.keywords.iter().any(|k| {
                let k = k.to_lowercase();
                texts.iter().any(|t| t.contains(&k))
            }) || icd10.is_some_and(|c| {
                rule.icd10
                    .iter()
                    .any(|p| c.trim().to_uppercase().starts_with(p.as_str()))
            }) || yj.is_some_and(|c| rule.yj.iter().any(|p| c.trim().starts_with(p.as_str())))
        })
        .map(|(d, _)| *d)
        .collect()
}

/// One dependency of a patient and what it was derived from.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub dependency: MedicalDependency,
    /// The kinds of the records it was derived from, each once.
    pub sources: Vec<RecordKind>,
    /// The earliest effective time of those records.
    pub since: DateTime<Utc>,
}

/// One patient of the register.
#[derive(Clone, Debug)]
pub struct Entry {
    pub patient: patient::Model,
    pub dependencies: Vec<Evidence>,
    /// The reader's role reads CONTACTS (address, telephone) and the
    /// consent shares it with the reader.
    pub contacts_shared: bool,
    /// Likewise CARE_TEAM: the care manager's and the primary physician's
    /// organisations.
    pub care_team_shared: bool,
    pub care_manager: Option<Uuid>,
    pub primary_physician: Option<Uuid>,
}

impl Entry {
    /// The categories the entry shows, for the audit log.
    pub fn categories(&self) -> Vec<DataCategory> {
        let mut c = vec![DataCategory::Identity, DataCategory::DisasterSupport];
        if self.contacts_shared {
            c.push(DataCategory::Contacts);
        }
        if self.care_team_shared {
            c.push(DataCategory::CareTeam);
        }
        c
    }
}

/// The register over `scope` today: patients at home with at least one of
/// `wanted` (every dependency when empty), ordered by id. Computed whole
/// before any page is taken, so a page holds only what the reader may see.
pub async fn register(
    db: &DatabaseConnection,
    scope: &RegisterScope,
    today: NaiveDate,
    wanted: &[MedicalDependency],
) -> ApiResult<Vec<Entry>> {
    let backend = db.get_database_backend();
    let mut q = patient::Entity::find()
        .filter(patient::Column::Status.eq(PatientStatus::Active.as_str()))
        .order_by_asc(patient::Column::Id);
    let (reader_org, municipality) = match &scope.over {
        RegisterOver::Municipality {
            organization_id,
            municipality,
        } => (*organization_id, Some(municipality.as_str())),
        RegisterOver::CareTeams {
            scope: rows,
            municipality,
        } => {
            q = q.filter(rows.on((patient::Entity, patient::Column::Id)));
            (rows.organization_id(), municipality.as_deref())
        }
    };
    if let Some(m) = municipality {
        // A coarse filter in SQL, the rule in code (`domain::lives_in`).
        q = q.filter(patient::Column::Address.contains(m));
    }
    let patients: Vec<patient::Model> = q
        .all(db)
        .await?
        .into_iter()
        .filter(|p| {
            municipality.is_none_or(|m| {
                p.address
                    .as_deref()
                    .is_some_and(|a| crate::domain::lives_in(a, m))
            })
        })
        .collect();
    let ids: Vec<Uuid> = patients.iter().map(|p| p.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The consent in force of each: the care-team scope already required
    // it to cover the reader and share DISASTER_SUPPORT; the municipality
    // is checked here.
    let terms = super::consents::terms_in_force(db, &ids).await?;
    let shares = |p: Uuid, c: DataCategory| {
        terms
            .get(&p)
            .is_some_and(|t| t.covers(reader_org) && !t.excluded().contains(&c))
    };
    let listed: Vec<patient::Model> = patients
        .into_iter()
        .filter(|p| {
            shares(p.id, DataCategory::Identity) && shares(p.id, DataCategory::DisasterSupport)
        })
        .collect();
    let ids: Vec<Uuid> = listed.iter().map(|p| p.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }

    let mut found: HashMap<Uuid, BTreeMap<MedicalDependency, Evidence>> = HashMap::new();
    for r in record::Entity::find()
        .filter(super::id_in(
            backend,
            (record::Entity, record::Column::PatientId),
            &ids,
        ))
        .filter(record::Column::Kind.is_in(SOURCES.iter().map(|k| k.as_str())))
        .filter(record::Column::Status.eq("ACTIVE"))
        .filter(record::Column::InSummary.eq(true))
        .filter(record::Column::Undisclosed.eq(false))
        .all(db)
        .await?
    {
        let kind = RecordKind::from_db(&r.kind)?;
        // Sensitive content sits under another category: never derived from.
        if r.category != kind.default_category().as_str()
            || !shares(r.patient_id, kind.default_category())
        {
            continue;
        }
        let data = RecordData::from_json(kind, &r.data)?;
        for dependency in dependencies_of(&data, today) {
            let evidence = found
                .entry(r.patient_id)
                .or_default()
                .entry(dependency)
                .or_insert_with(|| Evidence {
                    dependency,
                    sources: Vec::new(),
                    since: r.effective_at,
                });
            if !evidence.sources.contains(&kind) {
                evidence.sources.push(kind);
            }
            evidence.since = evidence.since.min(r.effective_at);
        }
    }

    let mut team: HashMap<Uuid, (Option<Uuid>, Option<Uuid>)> = HashMap::new();
    for m in care_team_membership::Entity::find()
        .filter(super::id_in(
            backend,
            (
                care_team_membership::Entity,
                care_team_membership::Column::PatientId,
            ),
            &ids,
        ))
        .filter(active_on(today))
        .order_by_asc(care_team_membership::Column::CreatedAt)
        .all(db)
        .await?
    {
        let slot = team.entry(m.patient_id).or_default();
        if m.role == CareTeamRole::CareManager.as_str() && slot.0.is_none() {
            slot.0 = Some(m.organization_id);
        }
        if m.role == CareTeamRole::PrimaryPhysician.as_str() && slot.1.is_none() {
            slot.1 = Some(m.organization_id);
        }
    }

    Ok(listed
        .into_iter()
        .filter_map(|p| {
            let dependencies: Vec<Evidence> = found
                .remove(&p.id)?
                .into_values()
                .filter(|e| wanted.is_empty() || wanted.contains(&e.dependency))
                .collect();
            if dependencies.is_empty() {
                return None;
            }
            let care_team_shared =
                scope.role_reads_care_team && shares(p.id, DataCategory::CareTeam);
            let (care_manager, primary_physician) = if care_team_shared {
                team.get(&p.id).copied().unwrap_or_default()
            } else {
                (None, None)
            };
            Some(Entry {
                contacts_shared: scope.role_reads_contacts && shares(p.id, DataCategory::Contacts),
                care_team_shared,
                care_manager,
                primary_physician,
                dependencies,
                patient: p,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ConditionData, PrescriptionData};

    #[test]
    fn the_table_names_every_dependency_once() {
        let ids: Vec<MedicalDependency> = RULES.iter().map(|(d, _)| *d).collect();
        assert_eq!(ids, MedicalDependency::ALL);
        for (_, r) in RULES.iter() {
            assert!(!r.keywords.is_empty() && !r.label.is_empty(), "{}", r.id);
        }
    }

    fn condition(name: &str, icd10: Option<&str>, active: bool) -> RecordData {
        RecordData::Condition(ConditionData {
            name: name.into(),
            icd10: icd10.map(Into::into),
            clinical_status: if active {
                crate::records::ClinicalStatus::Active
            } else {
                crate::records::ClinicalStatus::Resolved
            },
            onset: None,
            resolved_on: None,
            sensitivity: None,
            note: None,
            codings: Vec::new(),
        })
    }

    #[test]
    fn dependencies_come_from_texts_and_codes_of_records_in_force() {
        let today = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        assert_eq!(
            dependencies_of(&condition("慢性腎不全（血液透析中）", None, true), today),
            [MedicalDependency::Dialysis]
        );
        assert_eq!(
            dependencies_of(&condition("腎不全", Some("z99.2"), true), today),
            [MedicalDependency::Dialysis]
        );
        assert!(dependencies_of(&condition("透析", None, false), today).is_empty());
        assert!(dependencies_of(&condition("高血圧症", Some("I10"), true), today).is_empty());
        let insulin = |drug: &str, yj: Option<&str>, end: Option<&str>| {
            RecordData::Prescription(PrescriptionData {
                medication_type: crate::records::MedicationType::Injection,
                drug: drug.into(),
                yj_code: yj.map(Into::into),
                dose: "8単位".into(),
                route: crate::records::MedicationRoute::Injection,
                frequency: "1日1回".into(),
                days: None,
                start_date: crate::graphql::Date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
                end_date: end.map(|e| crate::graphql::Date(e.parse().unwrap())),
                prescriber: None,
                codings: Vec::new(),
            })
        };
        assert_eq!(
            dependencies_of(&insulin("トレシーバ注フレックスタッチ", None, None), today),
            [MedicalDependency::Insulin]
        );
        assert_eq!(
            dependencies_of(&insulin("注射薬", Some("2492415G1020"), None), today),
            [MedicalDependency::Insulin]
        );
        assert!(
            dependencies_of(&insulin("ランタス注", None, Some("2026-02-01")), today).is_empty(),
            "no longer taken"
        );
    }
}
