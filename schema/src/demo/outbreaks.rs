//! The demo region's outbreak notices (感染症の集団発生の連絡), read from data
//! (`schema/demo/outbreaks.toml`, embedded at build time): the notices, their
//! recipients — computed from the demo's care teams and consents as the hub
//! computes them — and the patients named as affected.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use serde::Deserialize;
use uuid::{Builder, Uuid};

use super::{ORGANIZATION_KEYS, Region, SplitMix64, demo_organization_id, insert_new};
use crate::domain::{ConsentStatus, DataCategory};
use crate::policy::ConsentTerms;
use crate::services::outbreaks::OutbreakPathogen;
use entities::{
    care_team_membership, outbreak_notice, outbreak_notice_patient, outbreak_notice_recipient,
};

const DATA: &str = include_str!("../../demo/outbreaks.toml");
const OUTBREAK_SEED: u64 = 0x5EED_2026_0401_0021;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    notice: Vec<NoticeData>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeData {
    organization: String,
    pathogen: String,
    #[serde(default)]
    other_pathogen: Option<String>,
    onset_on: NaiveDate,
    scope: String,
    #[serde(default)]
    resident_cases: Option<i32>,
    #[serde(default)]
    staff_cases: Option<i32>,
    #[serde(default)]
    measures: Option<String>,
    #[serde(default)]
    ended_on: Option<NaiveDate>,
    reported_at: DateTime<Utc>,
    affected_patients: usize,
}

/// The rows of the demo's outbreak notices, in insertion order.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Outbreaks {
    notices: Vec<outbreak_notice::Model>,
    recipients: Vec<outbreak_notice_recipient::Model>,
    patients: Vec<outbreak_notice_patient::Model>,
}

fn active_on(m: &care_team_membership::Model, day: NaiveDate) -> bool {
    m.start_date <= day && m.end_date.is_none_or(|e| e >= day)
}

/// The rows the data describes over `region`, or what is wrong with the
/// data (named by its place in the file).
pub(super) fn rows(region: &Region) -> Result<Outbreaks, String> {
    let file: File = toml::from_str(DATA).map_err(|e| format!("demo/outbreaks.toml: {e}"))?;
    let mut out = Outbreaks::default();
    for (i, n) in file.notice.into_iter().enumerate() {
        let at = |field: &str| format!("demo/outbreaks.toml: notice[{i}].{field}");
        let index = ORGANIZATION_KEYS
            .iter()
            .position(|k| *k == n.organization)
            .ok_or_else(|| {
                format!(
                    "{}: unknown organisation {:?}",
                    at("organization"),
                    n.organization
                )
            })?;
        let reporter = demo_organization_id(index);
        let pathogen = OutbreakPathogen::parse(&n.pathogen)
            .ok_or_else(|| format!("{}: unknown pathogen {:?}", at("pathogen"), n.pathogen))?;
        if n.ended_on.is_some_and(|e| e < n.onset_on) {
            return Err(format!("{}: before the onset", at("ended_on")));
        }
        let mut h = SplitMix64(OUTBREAK_SEED ^ i as u64);
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&h.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&h.next_u64().to_be_bytes()[..2]);
        let millis = u64::try_from(n.reported_at.timestamp_millis()).unwrap_or_default();
        let id = Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid();
        let day = n.onset_on;
        let theirs: BTreeSet<Uuid> = region
            .memberships
            .iter()
            .filter(|m| m.organization_id == reporter && active_on(m, day))
            .map(|m| m.patient_id)
            .collect();
        if theirs.len() < n.affected_patients {
            return Err(format!(
                "{}: the facility looked after {} patients on the onset day",
                at("affected_patients"),
                theirs.len()
            ));
        }
        // As the hub decides them: only patients whose consent in force
        // covers both organisations and shares CARE_TEAM make a recipient.
        let shares = |patient: Uuid, org: Uuid| {
            region
                .consents
                .iter()
                .filter(|c| c.patient_id == patient && c.status == ConsentStatus::InForce.as_str())
                .filter_map(|c| ConsentTerms::of(c).ok())
                .any(|t| t.covers(org) && !t.excluded().contains(&DataCategory::CareTeam))
        };
        let recipients: BTreeSet<Uuid> = region
            .memberships
            .iter()
            .filter(|m| theirs.contains(&m.patient_id) && active_on(m, day))
            .filter(|m| {
                m.organization_id != reporter
                    && shares(m.patient_id, reporter)
                    && shares(m.patient_id, m.organization_id)
            })
            .map(|m| m.organization_id)
            .collect();
        let reported_by = region
            .members
            .iter()
            .find(|m| m.organization_id == reporter)
            .map(|m| m.id);
        let ended = n.ended_on.is_some();
        let updated_at = n
            .ended_on
            .map(|e| e.and_hms_opt(1, 0, 0).unwrap_or_default().and_utc())
            .unwrap_or(n.reported_at);
        out.notices.push(outbreak_notice::Model {
            id,
            organization_id: reporter,
            reported_by_member: reported_by,
            reported_by_api_key: None,
            pathogen: pathogen.as_str().to_string(),
            other_pathogen: n.other_pathogen,
            onset_on: n.onset_on,
            scope: n.scope,
            resident_cases: n.resident_cases,
            staff_cases: n.staff_cases,
            measures: n.measures,
            status: if ended { "ENDED" } else { "ONGOING" }.to_string(),
            ended_on: n.ended_on,
            created_at: n.reported_at,
            updated_at,
        });
        out.recipients
            .extend(recipients.into_iter().map(|organization_id| {
                outbreak_notice_recipient::Model {
                    notice_id: id,
                    organization_id,
                }
            }));
        out.patients.extend(
            theirs
                .into_iter()
                .take(n.affected_patients)
                .map(|patient_id| outbreak_notice_patient::Model {
                    notice_id: id,
                    patient_id,
                }),
        );
    }
    Ok(out)
}

impl Outbreaks {
    /// Inserts what is not there yet (parents first), like the rest of the demo.
    pub(super) async fn insert(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        insert_new::<outbreak_notice::Entity>(txn, self.notices).await?;
        insert_new::<outbreak_notice_recipient::Entity>(txn, self.recipients).await?;
        insert_new::<outbreak_notice_patient::Entity>(txn, self.patients).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_outbreaks_reach_the_organisations_sharing_the_facilities_patients() {
        let o = rows(&super::super::region()).expect("the demo outbreaks are valid");
        assert_eq!(o.notices.len(), 2);
        for n in &o.notices {
            let to: Vec<_> = o
                .recipients
                .iter()
                .filter(|r| r.notice_id == n.id)
                .collect();
            assert!(!to.is_empty(), "{n:?}");
            assert!(to.iter().all(|r| r.organization_id != n.organization_id));
            assert!(n.status == "ENDED" && n.ended_on >= Some(n.onset_on));
        }
    }
}
