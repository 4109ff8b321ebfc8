//! The demo region's admissions and discharges (入退院支援).
//!
//! Hospital stays come from the care teams: every past admission the demo
//! already tells (a hospital on the team for a few weeks, with its discharge
//! summary), plus stays at the hospital that backs a patient — about a third
//! of those patients were admitted once in 2024–2026, some twice (繰り返し入院)
//! — and about ten patients in hospital on the reference date, whose
//! discharge is being prepared.
//!
//! For each stay, as the network would have recorded it:
//! - most have an admission information sheet from the care office, sent a
//!   day or so after the admission (a few a week late, two still drafts)
//!   with the sections drawn from the patient's records as they stood on the
//!   day of admission (the same drawing as `createAdmissionSheet`'s prefill),
//!   and acknowledged by the hospital;
//! - most have a discharge notice from the hospital's MSW, with Kitami's
//!   criteria where they apply and lead times spread over every bucket — some
//!   eight days ahead or more, many five to seven, some the day before, the
//!   same day or after the patient had left — a few with a corrected planned
//!   day, every past one with its recorded discharge (and earlier versions);
//! - where the discharge needs coordination and there was time, a discharge
//!   conference with the care office, the clinic and the visiting nurses
//!   invited and their answers (pending for the conferences after the
//!   reference date).
//!
//! Deterministic like the rest of the demo: a seed of its own, ids derived
//! from (table, number), times from the reference date.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::{Builder, Uuid};

use super::data;
use super::{
    LAST_DAY, ORGS, PATIENTS, Prof, REF_DATE, Region, SEED, SplitMix64, demo_organization_id,
    demo_patient_id, insert_new, office_hours, pick_member,
};
use crate::domain::{CareTeamRole as Role, PatientStatus};
use crate::services::admission_discharge::conferences::{
    ConferenceKind, ConferenceStatus, InvitationResponse,
};
use crate::services::admission_discharge::names_json;
use crate::services::admission_discharge::notices::{
    DischargeCriterion as C, DischargeNoticeStatus,
};
use crate::services::admission_discharge::sheets::{AdmissionSheetStatus, PREFILL_KINDS, draw};
use entities::{
    admission_sheet, care_team_membership, discharge_conference, discharge_conference_invitation,
    discharge_notice, discharge_notice_version, record,
};

/// A stream of its own: the rows generated from the other seeds stay as they were.
const ADMISSION_SEED: u64 = 0x5EED_2026_0401_0005;
/// The care-plan meetings' own stream, likewise.
const MEETING_SEED: u64 = 0x5EED_2026_0401_0020;

/// Id tags, apart from the parent's tables (1–8).
#[derive(Clone, Copy)]
enum Tag {
    Sheet = 0x41,
    Notice = 0x42,
    Conference = 0x43,
}

/// A UUIDv7-shaped id as the parent's `demo_id` makes them.
fn id(tag: Tag, n: usize) -> Uuid {
    let mut hash = SplitMix64(SEED ^ ((tag as u64) << 56) ^ n as u64);
    let high = hash.next_u64().to_be_bytes();
    let low = hash.next_u64().to_be_bytes();
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&high);
    bytes[8..].copy_from_slice(&low[..2]);
    Builder::from_unix_timestamp_millis(super::FIXED_MILLIS + n as u64, &bytes).into_uuid()
}

/// The rows, in insertion order (parents first).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Admissions {
    sheets: Vec<admission_sheet::Model>,
    notices: Vec<discharge_notice::Model>,
    versions: Vec<discharge_notice_version::Model>,
    conferences: Vec<discharge_conference::Model>,
    invitations: Vec<discharge_conference_invitation::Model>,
}

/// One hospital stay.
struct Stay {
    patient: Uuid,
    hospital: usize,
    admitted: NaiveDate,
    /// The day the patient left, or the planned day for those still in.
    discharged: NaiveDate,
    /// Still in hospital on the reference date.
    current: bool,
}

/// An organisation of the team on a day.
#[derive(Clone, Copy)]
struct Member {
    org: Uuid,
    member: Option<Uuid>,
}

/// Kitami's buckets as this demo's hospitals reach them (%, 8+ … after).
const LEAD_WEIGHTS: [(u64, i64, i64); 6] = [
    (22, 8, 16),
    (30, 5, 7),
    (25, 2, 4),
    (11, 1, 1),
    (6, 0, 0),
    (6, -3, -1),
];

fn lead_days(rng: &mut SplitMix64) -> i64 {
    let mut roll = rng.below(100) as u64;
    for (weight, low, high) in LEAD_WEIGHTS {
        if roll < weight {
            return low + rng.below((high - low + 1) as usize) as i64;
        }
        roll -= weight;
    }
    5
}

/// 14:00 in Japan on `day`.
fn afternoon(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc() + TimeDelta::hours(5)
}

fn active_on(m: &care_team_membership::Model, day: NaiveDate) -> bool {
    m.start_date <= day && m.end_date.is_none_or(|e| e >= day)
}

fn org_index(id: Uuid) -> usize {
    (0..ORGS.len())
        .find(|&i| demo_organization_id(i) == id)
        .expect("a demo membership names a demo organisation")
}

fn member_id(index: usize) -> Uuid {
    super::demo_id(super::Table::Member, index)
}

impl Admissions {
    /// Every admission, notice and conference of the demo region: a pure
    /// function of the region.
    pub(super) fn of(region: &Region) -> Admissions {
        let mut rng = SplitMix64(ADMISSION_SEED);
        let mut teams: HashMap<Uuid, Vec<&care_team_membership::Model>> = HashMap::new();
        for m in &region.memberships {
            teams.entry(m.patient_id).or_default().push(m);
        }
        let prefill_kinds: Vec<&str> = PREFILL_KINDS.iter().map(|(k, _)| k.as_str()).collect();
        let mut charts: HashMap<Uuid, Vec<&record::Model>> = HashMap::new();
        for r in &region.records {
            if prefill_kinds.contains(&r.kind.as_str()) {
                charts.entry(r.patient_id).or_default().push(r);
            }
        }
        for rows in charts.values_mut() {
            rows.sort_by_key(|r| std::cmp::Reverse((r.effective_at, r.id)));
        }
        let mut out = Admissions::default();
        for n in 0..PATIENTS {
            let patient = demo_patient_id(n);
            let Some(row) = region.patients.iter().find(|p| p.id == patient) else {
                continue;
            };
            let team = teams.get(&patient).cloned().unwrap_or_default();
            for stay in stays(
                &mut rng,
                n,
                row.status == PatientStatus::Active.as_str(),
                &team,
            ) {
                let chart = charts.get(&patient).map(Vec::as_slice).unwrap_or(&[]);
                out.add(&mut rng, &stay, &team, chart);
            }
        }
        out.add_service_meetings(region, &teams);
        out
    }

    /// The care managers' last care-plan meeting (サービス担当者会議) for
    /// some of the patients at home, held at home in the two months before
    /// the reference date with the team's services invited, and its
    /// minutes. Added after every discharge conference, so those keep their
    /// ids.
    fn add_service_meetings(
        &mut self,
        region: &Region,
        teams: &HashMap<Uuid, Vec<&care_team_membership::Model>>,
    ) {
        let mut rng = SplitMix64(MEETING_SEED);
        let texts = &data::content().admission_discharge.service_meeting;
        for n in 0..PATIENTS {
            let patient = demo_patient_id(n);
            let Some(row) = region.patients.iter().find(|p| p.id == patient) else {
                continue;
            };
            let team = teams.get(&patient).map(Vec::as_slice).unwrap_or(&[]);
            let day = LAST_DAY - Days::new(7 + rng.below(53) as u64);
            let in_role = |role: Role| {
                team.iter()
                    .find(|m| m.role == role.as_str() && active_on(m, day))
                    .copied()
            };
            let Some(office) = in_role(Role::CareManager) else {
                continue;
            };
            if row.status != PatientStatus::Active.as_str() || !rng.chance(45) {
                continue;
            }
            let mut invited: Vec<&care_team_membership::Model> = Vec::new();
            for role in [
                Role::PrimaryPhysician,
                Role::VisitingNurse,
                Role::CareService,
                Role::Rehabilitation,
                Role::Pharmacy,
            ] {
                if let Some(m) = in_role(role)
                    && m.organization_id != office.organization_id
                    && !invited
                        .iter()
                        .any(|i| i.organization_id == m.organization_id)
                {
                    invited.push(m);
                }
            }
            if invited.is_empty() {
                continue;
            }
            let starts_at = afternoon(day);
            let created_at = starts_at - TimeDelta::days(10);
            let recorded_at = starts_at + TimeDelta::hours(3);
            let conference_id = id(Tag::Conference, self.conferences.len());
            self.conferences.push(discharge_conference::Model {
                id: conference_id,
                patient_id: patient,
                organizer_organization_id: office.organization_id,
                proposed_by_member: office.member_id,
                proposed_by_api_key: None,
                discharge_notice_id: None,
                starts_at,
                place: Some(texts.place.clone()),
                online: false,
                note: None,
                status: ConferenceStatus::Held.as_str().to_owned(),
                created_at,
                updated_at: recorded_at,
                kind: ConferenceKind::ServiceMeeting.as_str().to_owned(),
                agenda: Some(rng.pick(&texts.agendas).clone()),
                minutes_discussion: Some(rng.pick(&texts.discussions).clone()),
                minutes_decisions: Some(rng.pick(&texts.decisions).clone()),
                minutes_open_issues: rng.chance(60).then(|| rng.pick(&texts.open_issues).clone()),
                minutes_other_attendees: Some(rng.pick(&texts.other_attendees).clone()),
                next_meeting_on: rng.chance(50).then(|| day + Days::new(180)),
                minutes_recorded_at: Some(recorded_at),
                minutes_recorded_by_member: office.member_id,
            });
            invited.sort_by_key(|m| m.organization_id);
            for m in invited {
                let accepted = rng.chance(80);
                let responded_at = created_at + TimeDelta::hours(2 + rng.below(72) as i64);
                self.invitations
                    .push(discharge_conference_invitation::Model {
                        conference_id,
                        organization_id: m.organization_id,
                        response: if accepted {
                            InvitationResponse::Accepted
                        } else {
                            InvitationResponse::Declined
                        }
                        .as_str()
                        .to_owned(),
                        responded_by_member: m.member_id,
                        responded_at: Some(responded_at),
                        comment: (!accepted).then(|| texts.declined_comment.clone()),
                        attended: Some(accepted),
                    });
            }
        }
    }

    fn add(
        &mut self,
        rng: &mut SplitMix64,
        stay: &Stay,
        team: &[&care_team_membership::Model],
        chart: &[&record::Model],
    ) {
        let in_role = |role: Role, day: NaiveDate| {
            team.iter()
                .find(|m| m.role == role.as_str() && active_on(m, day))
                .map(|m| Member {
                    org: m.organization_id,
                    member: m.member_id,
                })
        };
        let hospital_id = demo_organization_id(stay.hospital);
        let msw = pick_member(rng, stay.hospital, Prof::MedicalSocialWorker)
            .or_else(|| pick_member(rng, stay.hospital, Prof::Nurse))
            .map(member_id);
        let care_office = in_role(Role::CareManager, stay.admitted);

        // The admission information sheet.
        let mut sheet_id = None;
        if let Some(office) = care_office
            && (stay.current || rng.chance(88))
        {
            let delay = *rng.pick(&[0u64, 1, 1, 1, 2, 2, 3, 5, 7]);
            let sent_on = stay.admitted + Days::new(delay);
            let draft = stay.current && (sent_on > LAST_DAY || rng.chance(15));
            let sent_at = office_hours(rng, sent_on.min(LAST_DAY));
            let received_at = (!draft && rng.chance(93)).then(|| {
                let day = sent_at.date_naive() + Days::new(rng.below(3) as u64);
                office_hours(rng, day.min(LAST_DAY)).max(sent_at + TimeDelta::minutes(30))
            });
            let admitted_at = stay.admitted.and_time(NaiveTime::MIN).and_utc();
            let rows: Vec<record::Model> = chart
                .iter()
                .filter(|r| r.effective_at < admitted_at)
                .map(|r| (*r).clone())
                .collect();
            // The demo's own records: a failure to read one is a bug of the demo.
            let (mut content, sources) =
                draw(&rows, stay.admitted).expect("the demo's records are readable");
            if rng.chance(70) {
                content.cautions = Some(
                    rng.pick(&data::content().admission_discharge.admission_sheet.cautions)
                        .clone(),
                );
            }
            content.wishes = Some(
                rng.pick(&data::content().admission_discharge.admission_sheet.wishes)
                    .clone(),
            );
            let status = match (draft, received_at) {
                (true, _) => AdmissionSheetStatus::Draft,
                (false, None) => AdmissionSheetStatus::Sent,
                (false, Some(_)) => AdmissionSheetStatus::Received,
            };
            let id = id(Tag::Sheet, self.sheets.len());
            let created_at = sent_at - TimeDelta::hours(2);
            self.sheets.push(admission_sheet::Model {
                id,
                patient_id: stay.patient,
                author_organization_id: office.org,
                author_member_id: office.member,
                author_api_key_id: None,
                hospital_organization_id: hospital_id,
                admitted_on: stay.admitted,
                status: status.as_str().to_owned(),
                content: content.to_json(),
                sources: serde_json::to_string(&sources).unwrap_or_else(|_| "[]".into()),
                omitted_categories: "[]".into(),
                created_at,
                updated_at: received_at.unwrap_or(if draft { created_at } else { sent_at }),
                sent_at: (!draft).then_some(sent_at),
                sent_by_member: if draft { None } else { office.member },
                received_at,
                received_by_member: received_at.and(msw),
            });
            if !draft {
                sheet_id = Some(id);
            }
        }

        // The discharge notice.
        if !(stay.current || rng.chance(92)) {
            return;
        }
        let lead = lead_days(rng);
        let mut notified_on = stay.discharged - TimeDelta::days(lead);
        notified_on = notified_on.max(stay.admitted).min(LAST_DAY);
        let lead = (stay.discharged - notified_on).num_days();
        let notified_at = office_hours(rng, notified_on);
        let texts = &data::content().admission_discharge.discharge_notice;
        let mut criteria: Vec<C> = Vec::new();
        let wanted = *rng.pick(&[0usize, 1, 1, 1, 2, 2, 3]);
        while criteria.len() < wanted {
            let c = rng.pick(&texts.needs).criterion;
            if !criteria.contains(&c) {
                criteria.push(c);
            }
        }
        criteria.sort();
        let needs = if criteria.is_empty() {
            rng.pick(&texts.no_criteria_needs).clone()
        } else {
            criteria
                .iter()
                .filter_map(|c| {
                    (texts.needs.iter())
                        .find(|n| n.criterion == *c)
                        .map(|n| n.text.as_str())
                })
                .collect::<Vec<_>>()
                .join("。\n")
        };
        let criteria_json = names_json(criteria.iter().map(|c| c.as_str()));
        let notice_id = id(Tag::Notice, self.notices.len());
        // A planned day moved by the hospital after the first notice.
        let corrected = lead >= 3 && rng.chance(18);
        let first_planned = if corrected {
            stay.discharged + Days::new(1 + rng.below(4) as u64)
        } else {
            stay.discharged
        };
        let mut version = 1;
        let mut last_change = notified_at;
        let mut planned = first_planned;
        if corrected || !stay.current {
            self.versions.push(discharge_notice_version::Model {
                notice_id,
                version,
                status: DischargeNoticeStatus::Notified.as_str().to_owned(),
                planned_discharge_on: first_planned,
                actual_discharge_on: None,
                needs_at_home: needs.clone(),
                criteria: criteria_json.clone(),
                changed_at: notified_at,
                changed_by_member: msw,
                changed_by_api_key: None,
            });
            version += 1;
        }
        if corrected {
            let day = notified_on + Days::new(1 + rng.below((lead - 2) as usize) as u64);
            last_change =
                office_hours(rng, day.min(LAST_DAY)).max(notified_at + TimeDelta::hours(1));
            planned = stay.discharged;
            if !stay.current {
                self.versions.push(discharge_notice_version::Model {
                    notice_id,
                    version,
                    status: DischargeNoticeStatus::Notified.as_str().to_owned(),
                    planned_discharge_on: planned,
                    actual_discharge_on: None,
                    needs_at_home: needs.clone(),
                    criteria: criteria_json.clone(),
                    changed_at: last_change,
                    changed_by_member: msw,
                    changed_by_api_key: None,
                });
                version += 1;
            }
        }
        let (status, actual, updated_at) = if stay.current {
            (DischargeNoticeStatus::Notified, None, last_change)
        } else {
            let at = office_hours(rng, stay.discharged).max(last_change + TimeDelta::hours(1));
            (DischargeNoticeStatus::Discharged, Some(stay.discharged), at)
        };
        self.notices.push(discharge_notice::Model {
            id: notice_id,
            patient_id: stay.patient,
            hospital_organization_id: hospital_id,
            author_member_id: msw,
            author_api_key_id: None,
            admission_sheet_id: sheet_id,
            status: status.as_str().to_owned(),
            admitted_on: stay.admitted,
            planned_discharge_on: planned,
            actual_discharge_on: actual,
            needs_at_home: needs,
            criteria: criteria_json,
            notified_at,
            notified_on,
            version,
            updated_at,
        });

        // The conference, where the discharge needs coordination and time allows.
        if criteria.is_empty() || lead < 3 || !rng.chance(65) {
            return;
        }
        let day = notified_on + Days::new(1 + rng.below((lead - 2) as usize) as u64);
        let mut invited: Vec<Member> = Vec::new();
        for role in [
            Role::CareManager,
            Role::PrimaryPhysician,
            Role::VisitingNurse,
            Role::Pharmacy,
        ] {
            if let Some(m) = in_role(role, day)
                && m.org != hospital_id
                && !invited.iter().any(|i| i.org == m.org)
            {
                invited.push(m);
            }
        }
        if invited.is_empty() {
            return;
        }
        let starts_at = afternoon(day);
        let created_at = notified_at + TimeDelta::hours(1);
        let conference_id = id(Tag::Conference, self.conferences.len());
        let online = rng.chance(30);
        let hospital_name = &ORGS[stay.hospital].name;
        let texts = &data::content().admission_discharge.discharge_conference;
        self.conferences.push(discharge_conference::Model {
            id: conference_id,
            patient_id: stay.patient,
            organizer_organization_id: hospital_id,
            proposed_by_member: msw,
            proposed_by_api_key: None,
            discharge_notice_id: Some(notice_id),
            starts_at,
            place: Some(data::fill(&texts.place, &[("hospital", hospital_name)])),
            online,
            note: Some(if online {
                texts.note_online.clone()
            } else {
                texts.note_in_person.clone()
            }),
            status: ConferenceStatus::Proposed.as_str().to_owned(),
            created_at,
            updated_at: created_at,
            kind: ConferenceKind::Discharge.as_str().to_owned(),
            agenda: None,
            minutes_discussion: None,
            minutes_decisions: None,
            minutes_open_issues: None,
            minutes_other_attendees: None,
            next_meeting_on: None,
            minutes_recorded_at: None,
            minutes_recorded_by_member: None,
        });
        invited.sort_by_key(|m| m.org);
        let answered_by = starts_at.min(REF_DATE.and_time(NaiveTime::MIN).and_utc());
        for m in invited {
            let pending = starts_at > answered_by && rng.chance(50);
            let (response, comment) = if pending {
                (InvitationResponse::Pending, None)
            } else if rng.chance(80) {
                (
                    InvitationResponse::Accepted,
                    rng.chance(40).then(|| texts.accepted_comment.clone()),
                )
            } else {
                (
                    InvitationResponse::Declined,
                    Some(texts.declined_comment.clone()),
                )
            };
            let responded_at = (!pending).then(|| {
                let span = (answered_by - created_at).num_minutes().max(1) as usize;
                created_at + TimeDelta::minutes(rng.below(span) as i64)
            });
            self.invitations
                .push(discharge_conference_invitation::Model {
                    conference_id,
                    organization_id: m.org,
                    response: response.as_str().to_owned(),
                    responded_by_member: responded_at.and(m.member),
                    responded_at,
                    comment,
                    attended: None,
                });
        }
    }

    /// Inserts what is not there yet (parents first), like the rest of the demo.
    pub(super) async fn insert(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        let sheets = insert_new::<admission_sheet::Entity>(txn, self.sheets).await?;
        let notices = insert_new::<discharge_notice::Entity>(txn, self.notices).await?;
        insert_new::<discharge_notice_version::Entity>(txn, self.versions).await?;
        let conferences = insert_new::<discharge_conference::Entity>(txn, self.conferences).await?;
        insert_new::<discharge_conference_invitation::Entity>(txn, self.invitations).await?;
        tracing::info!(
            sheets,
            notices,
            conferences,
            "demo admissions and discharges seeded"
        );
        Ok(())
    }
}

/// The stays of one patient, oldest first, each while the hospital and the
/// care office were on the team.
fn stays(
    rng: &mut SplitMix64,
    n: usize,
    active: bool,
    team: &[&care_team_membership::Model],
) -> Vec<Stay> {
    let patient = demo_patient_id(n);
    let mut out = Vec::new();
    for m in team.iter().filter(|m| m.role == Role::Hospital.as_str()) {
        let hospital = org_index(m.organization_id);
        match m.end_date {
            // The demo's past admissions: the hospital knew the patient for
            // the weeks of the stay.
            Some(end) if active => out.push(Stay {
                patient,
                hospital,
                admitted: m.start_date,
                discharged: end,
                current: false,
            }),
            Some(_) => {}
            // The backing hospital: now and then a stay.
            None if active => {
                let from = m.start_date + Days::new(30);
                let until = LAST_DAY - Days::new(40);
                if from < until {
                    let span = (until - from).num_days() as usize;
                    let stays = if rng.chance(35) {
                        1 + usize::from(rng.chance(25))
                    } else {
                        0
                    };
                    let mut starts: Vec<NaiveDate> = (0..stays)
                        .map(|_| from + Days::new(rng.below(span) as u64))
                        .collect();
                    starts.sort();
                    let mut free_from = from;
                    for admitted in starts {
                        let admitted = admitted.max(free_from);
                        let discharged = admitted + Days::new(8 + rng.below(28) as u64);
                        if discharged >= until {
                            break;
                        }
                        out.push(Stay {
                            patient,
                            hospital,
                            admitted,
                            discharged,
                            current: false,
                        });
                        free_from = discharged + Days::new(14);
                    }
                }
                // In hospital on the reference date: one in eight.
                if rng.chance(12) {
                    let admitted = LAST_DAY - Days::new(3 + rng.below(20) as u64);
                    out.push(Stay {
                        patient,
                        hospital,
                        admitted,
                        discharged: REF_DATE + Days::new(1 + rng.below(18) as u64),
                        current: true,
                    });
                }
            }
            None => {}
        }
    }
    out.sort_by_key(|s| s.admitted);
    // Stays do not overlap: a patient is in one hospital at a time.
    let mut kept: Vec<Stay> = Vec::new();
    for s in out {
        if kept.last().is_none_or(|k| k.discharged < s.admitted) {
            kept.push(s);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::services::admission_discharge::notices::LeadTimeBucket;

    fn admissions() -> Admissions {
        Admissions::of(&super::super::region())
    }

    #[test]
    fn the_demo_admissions_are_the_same_every_time() {
        assert_eq!(admissions(), admissions());
    }

    #[test]
    fn a_realistic_share_of_patients_has_stays_with_lead_times_in_every_bucket() {
        let a = admissions();
        let patients: HashSet<Uuid> = a.notices.iter().map(|n| n.patient_id).collect();
        assert!(
            (25..=100).contains(&patients.len()),
            "{} patients with a notice",
            patients.len()
        );
        assert!(
            a.sheets.len() >= 25 && a.conferences.len() >= 8,
            "{} sheets, {} conferences",
            a.sheets.len(),
            a.conferences.len()
        );
        let buckets: HashSet<LeadTimeBucket> = a
            .notices
            .iter()
            .map(|n| {
                LeadTimeBucket::of(crate::services::admission_discharge::notices::lead_time_days(n))
            })
            .collect();
        assert_eq!(buckets.len(), LeadTimeBucket::ALL.len(), "{buckets:?}");
        let statuses: HashSet<&str> = a.sheets.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(statuses.len(), 3, "drafts, sent and received sheets");
        assert!(a.notices.iter().any(|n| n.status == "NOTIFIED"));
        assert!(
            a.notices.iter().any(|n| n.version == 3),
            "a corrected notice"
        );
        assert!(a.invitations.iter().any(|i| i.response == "PENDING"));
        assert!(a.invitations.iter().any(|i| i.response == "DECLINED"));
    }

    #[test]
    fn the_demo_documents_keep_the_rules_the_api_enforces() {
        let region = super::super::region();
        let a = Admissions::of(&region);
        let on_team = |patient: Uuid, org: Uuid, day: NaiveDate| {
            region
                .memberships
                .iter()
                .any(|m| m.patient_id == patient && m.organization_id == org && active_on(m, day))
        };
        for s in &a.sheets {
            assert!(on_team(
                s.patient_id,
                s.author_organization_id,
                s.admitted_on
            ));
            assert!(on_team(
                s.patient_id,
                s.hospital_organization_id,
                s.admitted_on
            ));
            assert!(s.sent_at.is_none_or(|t| t >= s.created_at));
            assert!(
                s.received_at
                    .is_none_or(|r| s.sent_at.is_some_and(|t| r > t))
            );
            assert!(
                crate::services::admission_discharge::sheets::SheetContent::from_json(&s.content)
                    .is_ok()
            );
        }
        let ids: HashSet<Uuid> = a.sheets.iter().map(|s| s.id).collect();
        for n in &a.notices {
            assert!(n.notified_on >= n.admitted_on && n.planned_discharge_on >= n.admitted_on);
            assert!(n.notified_on <= LAST_DAY);
            assert_eq!(
                crate::services::admission_discharge::region_date(n.notified_at),
                n.notified_on
            );
            assert!(n.admission_sheet_id.is_none_or(|s| ids.contains(&s)));
            assert!(on_team(
                n.patient_id,
                n.hospital_organization_id,
                n.admitted_on
            ));
            let earlier = a.versions.iter().filter(|v| v.notice_id == n.id).count();
            assert_eq!(earlier as i32, n.version - 1, "{n:?}");
            assert!(crate::services::admission_discharge::notices::criteria_of(n).is_ok());
        }
        for c in &a.conferences {
            let invited: Vec<_> = a
                .invitations
                .iter()
                .filter(|i| i.conference_id == c.id)
                .collect();
            assert!(!invited.is_empty());
            assert!(
                invited
                    .iter()
                    .all(|i| i.organization_id != c.organizer_organization_id)
            );
            assert!(
                invited
                    .iter()
                    .all(|i| i.responded_at.is_none_or(|t| t <= c.starts_at))
            );
        }
    }
}
