//! The demo region's emergency information sheets (救急医療情報) and liaison
//! threads (連絡票), drawn from the region the parent module generates.
//!
//! - **Sheets**: every patient still cared for at home has one, registered by
//!   the care manager in the last four months, except every sixth (patients 5,
//!   11, 23 …), whose sheet is "not yet registered". The contacts are the key
//!   person of the chart, the visiting-nurse station (if on the team), the
//!   primary physician and the care manager; the expected emergencies follow
//!   the patient's conditions (heart failure, diabetes, atrial fibrillation,
//!   stroke, COPD, Parkinson's disease, osteoporosis; fever for everyone); the
//!   designated hospital is the area's core hospital, with a back-up bed for
//!   most patients of the in-home-care clinics. A few sheets carry diagnoses
//!   and medications of clinics outside the network, typed in by hand.
//! - **Threads**: about twenty, in March 2026, on every third patient at home
//!   (and two on patient 0, `K-000003`): 服薬の変更について, 発熱の連絡,
//!   退院後の訪問予定, 残薬の確認, 転倒の報告, 口腔ケアについて,
//!   皮膚の発赤について — each with the replies of the organisations it is
//!   addressed to, and read receipts; the newest message of every other
//!   thread is still unread somewhere, so inboxes are not empty.
//!
//! Like the rest of the demo, everything is a function of fixed seeds and the
//! reference date; rows whose primary key exists are skipped.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::{Builder, Uuid};

use super::data::{self, Expected, ThreadTemplate};
use super::{
    Cap, FIXED_MILLIS, LAST_DAY, MEMBERS, ORGS, Prof, RECORD_BATCH_BYTES, Region, Role, SEED,
    SplitMix64, Table, demo_id, demo_organization_id, insert_batched, insert_new, member_name,
    record_size,
};
use crate::domain::PatientStatus;
use crate::records::{
    DesignatedHospital, EmergencyContact, EmergencyFacility, EmergencyInformationData,
    ExpectedEmergency, RecordData, RecordKind,
};
use crate::services::records::ACTIVE;
use entities::{
    care_team_membership, liaison_message, liaison_read, liaison_thread, liaison_thread_addressee,
    patient, record,
};

/// Seeds sheets and threads, added after the records: a stream of its own.
const LIAISON_SEED: u64 = 0x5EED_2026_0401_0006;
/// The patient excluded by consent withdrawal has no threads (nobody could read them).
const WITHDRAWN: usize = super::WITHDRAWN;

/// Inserts the sheets and threads, skipping rows that exist.
pub(super) async fn seed(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    let rows = rows(&super::region());
    let sheets =
        insert_batched::<record::Entity>(txn, rows.sheets, record_size, RECORD_BATCH_BYTES).await?;
    let threads = insert_new::<liaison_thread::Entity>(txn, rows.threads).await?;
    insert_new::<liaison_thread_addressee::Entity>(txn, rows.addressees).await?;
    let messages = insert_new::<liaison_message::Entity>(txn, rows.messages).await?;
    let receipts = insert_new::<liaison_read::Entity>(txn, rows.receipts).await?;
    tracing::info!(
        sheets,
        threads,
        messages,
        receipts,
        "demo emergency information and liaison threads seeded"
    );
    Ok(())
}

/// Tags of this module's ids, beyond the parent's tables.
#[derive(Clone, Copy)]
enum Tag {
    Sheet = 0x41,
    Thread,
    Message,
}

/// A UUIDv7-shaped id like the parent's, in a space of its own.
fn id(tag: Tag, n: usize) -> Uuid {
    let mut hash = SplitMix64(SEED ^ ((tag as u64) << 56) ^ n as u64);
    let high = hash.next_u64().to_be_bytes();
    let low = hash.next_u64().to_be_bytes();
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&high);
    bytes[8..].copy_from_slice(&low[..2]);
    Builder::from_unix_timestamp_millis(FIXED_MILLIS + n as u64, &bytes).into_uuid()
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Rows {
    sheets: Vec<record::Model>,
    threads: Vec<liaison_thread::Model>,
    addressees: Vec<liaison_thread_addressee::Model>,
    messages: Vec<liaison_message::Model>,
    receipts: Vec<liaison_read::Model>,
}

/// A moment of `day` between 09:00 and 17:59 JST, in UTC.
fn during_office_hours(rng: &mut SplitMix64, day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc() + TimeDelta::minutes(rng.below(9 * 60) as i64)
}

fn org_index(id: Uuid) -> usize {
    (0..ORGS.len())
        .find(|&i| demo_organization_id(i) == id)
        .expect("a demo organisation")
}

fn member_index(id: Uuid) -> usize {
    (0..MEMBERS.len())
        .find(|&i| demo_id(Table::Member, i) == id)
        .expect("a demo member")
}

/// One patient as this module sees it: the team on the last day, the chart's
/// conditions, key person and home.
struct Patient<'a> {
    n: usize,
    model: &'a patient::Model,
    team: Vec<&'a care_team_membership::Model>,
    /// ICD-10 codes of active conditions.
    conditions: Vec<String>,
    key_person: Option<(String, String, String)>,
    lives_alone: bool,
    /// The hospital on the team, and whether its membership has ended (an
    /// admission in the past).
    hospital: Option<(usize, bool)>,
}

impl<'a> Patient<'a> {
    fn of(region: &'a Region, n: usize) -> Patient<'a> {
        let model = &region.patients[n];
        let team = (region.memberships.iter())
            .filter(|m| m.patient_id == model.id)
            .filter(|m| m.start_date <= LAST_DAY && m.end_date.is_none_or(|e| e >= LAST_DAY))
            .collect();
        let hospital = (region.memberships.iter())
            .filter(|m| m.patient_id == model.id && m.role == Role::Hospital.as_str())
            .map(|m| (org_index(m.organization_id), m.end_date.is_some()))
            .next();
        let mut conditions = Vec::new();
        let mut key_person = None;
        let mut lives_alone = false;
        for r in region.records.iter().filter(|r| r.patient_id == model.id) {
            let Some(kind) = RecordKind::parse(&r.kind) else {
                continue;
            };
            let Ok(data) = RecordData::from_json(kind, &r.data) else {
                continue;
            };
            match data {
                RecordData::Condition(c)
                    if c.clinical_status == crate::records::ClinicalStatus::Active =>
                {
                    conditions.extend(c.icd10);
                }
                RecordData::FamilyCareCapacity(f) if r.in_summary => {
                    if let (Some(name), Some(relation), Some(phone)) = (
                        f.key_person_name,
                        f.key_person_relationship,
                        f.key_person_phone,
                    ) {
                        key_person = Some((name, relation, phone));
                    }
                }
                RecordData::HomeEnvironment(h) if r.in_summary => lives_alone = h.lives_alone,
                _ => {}
            }
        }
        Patient {
            n,
            model,
            team,
            conditions,
            key_person,
            lives_alone,
            hospital,
        }
    }

    fn has(&self, icd10: &str) -> bool {
        self.conditions.iter().any(|c| c.starts_with(icd10))
    }

    fn slot(&self, role: Role) -> Option<&'a care_team_membership::Model> {
        self.team.iter().copied().find(|m| m.role == role.as_str())
    }

    fn in_town(&self) -> bool {
        self.model
            .address
            .as_deref()
            .is_some_and(|a| a.contains(super::town()))
    }

    /// The member of the team who writes for `role`: the named member if of
    /// `profession`, else the organisation's first of that profession.
    fn writer(&self, role: Role, profession: Prof) -> Option<(usize, usize)> {
        let slot = self.slot(role)?;
        let org = org_index(slot.organization_id);
        let member = slot
            .member_id
            .map(member_index)
            .filter(|&m| MEMBERS[m].profession == profession)
            .or_else(|| {
                (0..MEMBERS.len())
                    .find(|&i| MEMBERS[i].org == org && MEMBERS[i].profession == profession)
            })?;
        Some((org, member))
    }
}

pub(super) fn rows(region: &Region) -> Rows {
    let mut rng = SplitMix64(LIAISON_SEED);
    let mut rows = Rows::default();
    let mut thread_count = 0usize;
    for n in 0..region.patients.len() {
        if region.patients[n].status != PatientStatus::Active.as_str() {
            continue;
        }
        let p = Patient::of(region, n);
        if n % 6 != 5
            && let Some(sheet) = sheet(&mut rng, &p)
        {
            rows.sheets.push(sheet);
        }
        if n != WITHDRAWN && n % 3 == 0 && n < 66 {
            let templates = &data::content().liaison.thread;
            let first = n % templates.len();
            let wanted = if n == 0 { 2 } else { 1 };
            let mut written = 0;
            for k in 0..templates.len() {
                if written == wanted {
                    break;
                }
                let t = &templates[(first + k) % templates.len()];
                if thread(&mut rng, &mut rows, &p, t, thread_count, written) {
                    thread_count += 1;
                    written += 1;
                }
            }
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Sheets

fn org_name(org: usize) -> String {
    ORGS[org].name.to_string()
}

fn has_cap(org: usize, cap: Cap) -> bool {
    ORGS[org].capabilities.contains(&cap)
}

fn sheet(rng: &mut SplitMix64, p: &Patient<'_>) -> Option<record::Model> {
    let (cm_org, cm) = p.writer(Role::CareManager, Prof::CareManager)?;
    let cm_slot = p.slot(Role::CareManager)?;
    let back = (p.n * 7 % 120) as u64;
    let day = (LAST_DAY - Days::new(back)).max(cm_slot.start_date);
    let at = during_office_hours(rng, day);

    let texts = &data::content().liaison.emergency_information;
    let said = &texts.contacts;
    let mut contacts = Vec::new();
    if let Some((name, relation, phone)) = &p.key_person {
        let available = if said.spouses.contains(relation) {
            &said.spouse_available
        } else {
            rng.pick(&said.family_available)
        };
        contacts.push(EmergencyContact {
            name: name.clone(),
            relationship: relation.clone(),
            phone: phone.clone(),
            available: Some(available.into()),
            key_person: true,
        });
    }
    if let Some(slot) = p.slot(Role::VisitingNurse) {
        let org = org_name_of(slot);
        let round_the_clock = has_cap(org_index(slot.organization_id), Cap::TwentyFourHourCover);
        contacts.push(EmergencyContact {
            name: org,
            relationship: if round_the_clock {
                said.nurse_round_the_clock.clone()
            } else {
                said.nurse.clone()
            },
            phone: ORGS[org_index(slot.organization_id)].phone.clone(),
            available: Some(
                if round_the_clock {
                    &said.nurse_available_round_the_clock
                } else {
                    &said.nurse_available
                }
                .clone(),
            ),
            key_person: false,
        });
    }
    if let Some((org, member)) = p.writer(Role::PrimaryPhysician, Prof::Physician) {
        contacts.push(EmergencyContact {
            name: format!("{}（{}）", member_name(member).0, org_name(org)),
            relationship: said.physician.clone(),
            phone: ORGS[org].phone.clone(),
            available: Some(
                if has_cap(org, Cap::TwentyFourHourCover) {
                    &said.physician_available_round_the_clock
                } else {
                    &said.physician_available
                }
                .clone(),
            ),
            key_person: false,
        });
    }
    contacts.push(EmergencyContact {
        name: format!("{}（{}）", member_name(cm).0, org_name(cm_org)),
        relationship: said.care_manager.clone(),
        phone: ORGS[cm_org].phone.clone(),
        available: Some(said.care_manager_available.clone()),
        key_person: false,
    });

    let area_hospital = if p.in_town() {
        super::TOWN_HOSPITAL
    } else {
        super::CITY_HOSPITAL
    };
    let hospitals = &texts.hospitals;
    let department = (hospitals.departments.iter())
        .find(|d| d.when.iter().any(|code| p.has(code)))
        .map(|d| d.department.as_str());
    let usual_hospital = match (p.hospital, department) {
        (Some((h, ended)), _) => Some(EmergencyFacility {
            name: match department {
                Some(d) => data::fill(
                    &hospitals.usual,
                    &[("hospital", &org_name(h)), ("department", d)],
                ),
                None => org_name(h),
            },
            phone: Some(ORGS[h].phone.clone()),
            note: Some(if ended {
                hospitals.admitted_note.clone()
            } else {
                hospitals.outpatient_note.clone()
            }),
        }),
        (None, Some(d)) => Some(EmergencyFacility {
            name: data::fill(
                &hospitals.outpatient,
                &[("hospital", &org_name(area_hospital)), ("department", d)],
            ),
            phone: Some(ORGS[area_hospital].phone.clone()),
            note: None,
        }),
        (None, None) => None,
    };
    let home_clinic = p
        .slot(Role::PrimaryPhysician)
        .is_some_and(|s| has_cap(org_index(s.organization_id), Cap::EndOfLifeCare));
    let designated_hospital = Some(DesignatedHospital {
        name: org_name(area_hospital),
        phone: Some(ORGS[area_hospital].phone.clone()),
        backup_bed: home_clinic && p.n % 4 != 3,
        note: Some(hospitals.designated_note.clone()),
    });

    let mut expected = Vec::new();
    // "Call the visiting nurse first" means the physician where no nurse visits.
    let nurse_on_team = p.slot(Role::VisitingNurse).is_some();
    let emergency = |e: &Expected| ExpectedEmergency {
        situation: e.situation.clone(),
        response: e.response.clone(),
        call_first: Some(if e.call_first == said.nurse && !nurse_on_team {
            said.physician.clone()
        } else {
            e.call_first.clone()
        }),
    };
    for e in &texts.expected {
        let applies = e.when.as_ref().is_none_or(|code| p.has(code))
            && e.while_fewer_than.is_none_or(|n| expected.len() < n);
        if applies {
            expected.push(emergency(e));
        }
    }
    expected.truncate(3);
    for e in &texts.everyone {
        if expected.len() < 2 {
            expected.push(emergency(e));
        }
    }

    let (diagnoses, medications) = (texts.other_care.iter())
        .find(|c| c.patients_ending_in == p.n % 10)
        .map_or_else(Default::default, |c| {
            (c.diagnoses.clone(), c.medications.clone())
        });
    let note = if p.lives_alone {
        Some(texts.notes.alone.clone())
    } else {
        // One of the notes or none, evenly.
        let choices: Vec<Option<&String>> =
            texts.notes.others.iter().map(Some).chain([None]).collect();
        rng.pick(&choices).cloned()
    };
    let data = RecordData::EmergencyInformation(EmergencyInformationData {
        usual_hospital,
        emergency_contacts: contacts,
        expected_emergencies: expected,
        designated_hospital,
        diagnoses,
        medications,
        note,
    });
    Some(record::Model {
        id: id(Tag::Sheet, p.n),
        patient_id: p.model.id,
        kind: data.kind().as_str().to_owned(),
        category: data.category().as_str().to_owned(),
        source_organization_id: demo_organization_id(cm_org),
        author_member_id: Some(demo_id(Table::Member, cm)),
        author_api_key_id: None,
        source_record_id: Some(format!("DEMO-EI-{}", p.n)),
        version: 1,
        status: ACTIVE.to_owned(),
        effective_at: at,
        recorded_at: at + TimeDelta::minutes(5 + rng.below(40) as i64),
        undisclosed: false,
        // The only sheet of its patient: the newest of its series.
        in_summary: true,
        summary_until: crate::records::FOREVER,
        series_key: data.series_key(),
        data: data.to_json(),
    })
}

fn org_name_of(slot: &care_team_membership::Model) -> String {
    org_name(org_index(slot.organization_id))
}

// ---------------------------------------------------------------------------
// Threads

/// Writes thread number `t` from `template` for the patient, if its team has
/// everyone the template needs. `k`: the patient's threads so far (they lie
/// on different days).
fn thread(
    rng: &mut SplitMix64,
    rows: &mut Rows,
    p: &Patient<'_>,
    template: &ThreadTemplate,
    t: usize,
    k: usize,
) -> bool {
    let mut authors = Vec::with_capacity(template.messages.len());
    for m in &template.messages {
        match p.writer(m.role, m.profession) {
            Some(w) => authors.push(w),
            None => return false,
        }
    }
    let creator = authors[0].0;
    let team: BTreeSet<usize> = p
        .team
        .iter()
        .map(|m| org_index(m.organization_id))
        .collect();
    let named: BTreeSet<usize> = match &template.to {
        None => BTreeSet::new(),
        Some(roles) => {
            let mut named = BTreeSet::new();
            for role in roles {
                match p.slot(*role) {
                    Some(s) => {
                        named.insert(org_index(s.organization_id));
                    }
                    None => return false,
                }
            }
            named.remove(&creator);
            named
        }
    };
    let parties: BTreeSet<usize> = match &template.to {
        None => team.clone(),
        Some(_) => named.iter().copied().chain([creator]).collect(),
    };
    // Everyone writing is a party to the thread.
    if authors.iter().any(|(org, _)| !parties.contains(org)) {
        return false;
    }
    let day = LAST_DAY - Days::new(((t * 3 + k * 11) % 28) as u64);
    let mut at = during_office_hours(rng, day);
    let thread_id = id(Tag::Thread, t);
    let mut ids: Vec<Uuid> = Vec::new();
    let mut times = Vec::new();
    for (i, (message, (org, member))) in template.messages.iter().zip(&authors).enumerate() {
        if i > 0 {
            at += TimeDelta::minutes(30 + rng.below(240) as i64);
        }
        let message_id = id(Tag::Message, t * 10 + i);
        rows.messages.push(liaison_message::Model {
            id: message_id,
            thread_id,
            patient_id: p.model.id,
            author_organization_id: demo_organization_id(*org),
            author_member_id: Some(demo_id(Table::Member, *member)),
            author_api_key_id: None,
            body: message.body.clone(),
            reply_to_message_id: message.reply_to.map(|r| ids[r]),
            created_at: at,
        });
        ids.push(message_id);
        times.push(at);
    }
    let last = ids.len() - 1;
    for (i, (&message_id, &written)) in ids.iter().zip(&times).enumerate() {
        for &reader in &parties {
            if reader == authors[i].0 || (i == last && t.is_multiple_of(2)) {
                continue;
            }
            let member = p
                .team
                .iter()
                .find(|m| org_index(m.organization_id) == reader)
                .and_then(|m| m.member_id);
            rows.receipts.push(liaison_read::Model {
                message_id,
                organization_id: demo_organization_id(reader),
                member_id: member,
                read_at: written + TimeDelta::minutes(15 + rng.below(180) as i64),
            });
        }
    }
    rows.threads.push(liaison_thread::Model {
        id: thread_id,
        patient_id: p.model.id,
        subject: template.subject.clone(),
        urgency: template.urgency.as_str().to_string(),
        whole_care_team: template.to.is_none(),
        created_by_organization_id: demo_organization_id(creator),
        created_by_member_id: Some(demo_id(Table::Member, authors[0].1)),
        created_by_api_key_id: None,
        created_at: times[0],
        last_message_at: times[last],
    });
    rows.addressees
        .extend(named.iter().map(|org| liaison_thread_addressee::Model {
            thread_id,
            organization_id: demo_organization_id(*org),
        }));
    true
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::services::liaison::{MessageBody, parse_subject};

    fn demo() -> (Region, Rows) {
        let region = super::super::region();
        let rows = rows(&region);
        (region, rows)
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(demo().1, demo().1);
    }

    #[test]
    fn most_patients_at_home_have_a_valid_sheet() {
        let (region, rows) = demo();
        let at_home = (region.patients.iter())
            .filter(|p| p.status == PatientStatus::Active.as_str())
            .count();
        assert!(
            rows.sheets.len() * 10 >= at_home * 7,
            "{} of {at_home}",
            rows.sheets.len()
        );
        assert!(
            rows.sheets
                .iter()
                .any(|s| s.patient_id == region.patients[0].id)
        );
        let today = LAST_DAY + Days::new(1);
        let mut with_typed = 0;
        for s in &rows.sheets {
            let data = RecordData::from_json(RecordKind::EmergencyInformation, &s.data).unwrap();
            assert!(
                data.validate(today).is_ok(),
                "{data:?}: {:?}",
                data.validate(today)
            );
            let RecordData::EmergencyInformation(d) = data else {
                unreachable!()
            };
            assert!(d.key_person().is_some(), "every chart names a key person");
            assert!((2..=3).contains(&d.expected_emergencies.len()));
            with_typed += usize::from(!d.diagnoses.is_empty());
            assert!(s.effective_at.date_naive() <= LAST_DAY);
            assert_eq!(s.category, "EMERGENCY_INFORMATION");
        }
        assert!(with_typed > 0, "some sheets carry hand-typed diagnoses");
        let ids: BTreeSet<Uuid> = rows.sheets.iter().map(|s| s.id).collect();
        let record_ids: BTreeSet<Uuid> = region.records.iter().map(|r| r.id).collect();
        assert!(ids.is_disjoint(&record_ids));
    }

    #[test]
    fn threads_are_between_the_team_with_replies_in_their_own_thread() {
        let (region, rows) = demo();
        assert!(
            (15..=30).contains(&rows.threads.len()),
            "{}",
            rows.threads.len()
        );
        let subjects: BTreeSet<&str> = rows.threads.iter().map(|t| t.subject.as_str()).collect();
        assert_eq!(
            subjects.len(),
            data::content().liaison.thread.len(),
            "every template is used: {subjects:?}"
        );
        let patient0 = region.patients[0].id;
        assert_eq!(
            rows.threads
                .iter()
                .filter(|t| t.patient_id == patient0)
                .count(),
            2
        );
        let by_id: HashMap<Uuid, &liaison_message::Model> =
            rows.messages.iter().map(|m| (m.id, m)).collect();
        for t in &rows.threads {
            parse_subject("subject", &t.subject).unwrap();
            let messages: Vec<_> = rows
                .messages
                .iter()
                .filter(|m| m.thread_id == t.id)
                .collect();
            assert!(messages.len() >= 2, "a thread with replies");
            assert_eq!(messages.last().unwrap().created_at, t.last_message_at);
            let team: BTreeSet<Uuid> = (region.memberships.iter())
                .filter(|m| m.patient_id == t.patient_id && m.end_date.is_none())
                .map(|m| m.organization_id)
                .collect();
            let named: BTreeSet<Uuid> = (rows.addressees.iter())
                .filter(|a| a.thread_id == t.id)
                .map(|a| a.organization_id)
                .collect();
            assert_eq!(t.whole_care_team, named.is_empty());
            assert!(named.is_subset(&team) && !named.contains(&t.created_by_organization_id));
            for m in messages {
                MessageBody::parse("body", &m.body).unwrap();
                assert!(team.contains(&m.author_organization_id));
                assert!(
                    t.whole_care_team
                        || m.author_organization_id == t.created_by_organization_id
                        || named.contains(&m.author_organization_id)
                );
                if let Some(r) = m.reply_to_message_id {
                    assert_eq!(by_id[&r].thread_id, t.id);
                    assert!(by_id[&r].created_at < m.created_at);
                }
            }
        }
        for r in &rows.receipts {
            let m = by_id[&r.message_id];
            assert_ne!(r.organization_id, m.author_organization_id);
            assert!(r.read_at > m.created_at);
        }
        // Some newest messages are still unread somewhere.
        let unread = rows.threads.iter().filter(|t| {
            let last = rows.messages.iter().rfind(|m| m.thread_id == t.id).unwrap();
            !rows.receipts.iter().any(|r| r.message_id == last.id)
        });
        assert!(unread.count() > 0);
    }
}
