//! The synthetic region: a directory of a few hundred organisations with their
//! members, and patients with identifiers, care teams, consent and records —
//! a pure function of the seed, the patient's number and the records per
//! patient, written straight into `COPY` buffers.
//!
//! Records carry exactly what the hub itself writes (`schema/src/services/
//! records.rs`): the payload is a [`RecordData`] stored with `to_json()`, its
//! `category()` and `series_key()`, version 1, status `ACTIVE`, and
//! `in_summary` and `summary_until` placed by the hub's own
//! `summary_placement` for `WhileCurrent` kinds (flagged when ever in force,
//! with the last day in force) and, for `LatestOfSeries` kinds, the flag only
//! on the newest active record of each (patient, kind, series) (newest by
//! effective time, then id — the order of the hub's write path).

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use renkei_schema::graphql::Date;
use renkei_schema::records::*;
use uuid::Uuid;

use crate::copy::CopyBuf;
use crate::rng::Rng;
use crate::vocab::*;

/// The region's "today" for its history: every date lies before it, and it
/// never moves, so a seed always gives the same rows. Current prescriptions are
/// open-ended, so they stay current whenever the benchmark runs.
pub const REF_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2026, 11, 1) {
    Some(d) => d,
    None => panic!("invalid REF_DATE"),
};

/// Random streams, one per table, so that changing one table's generation
/// does not shift another's.
const STREAM_DIRECTORY: u64 = 1;
const STREAM_PATIENT: u64 = 2;

fn directory_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .expect("valid")
        .and_hms_opt(0, 0, 0)
        .expect("valid")
        .and_utc()
}

fn millis(t: DateTime<Utc>) -> u64 {
    t.timestamp_millis().max(0) as u64
}

pub struct MemberRow {
    pub id: Uuid,
    pub name: String,
    pub profession: &'static str,
}

pub struct Org {
    pub id: Uuid,
    pub kind: &'static str,
    pub name: String,
    pub phone: String,
    pub municipality: usize,
    pub members: Vec<MemberRow>,
}

impl Org {
    fn with_profession(&self, profession: &str) -> Vec<&MemberRow> {
        self.members
            .iter()
            .filter(|m| m.profession == profession)
            .collect()
    }
}

/// The directory: organisations (index 0 is the bench clinic) and members.
pub struct Directory {
    pub orgs: Vec<Org>,
    /// Organisation indexes by (kind, municipality).
    by_kind_muni: HashMap<(&'static str, usize), Vec<usize>>,
    by_kind: HashMap<&'static str, Vec<usize>>,
    /// Physicians of the bench clinic; the first is the bench physician.
    bench_physicians: Vec<usize>,
}

pub const BENCH_CLINIC: usize = 0;

/// (kind, how many, name pattern, staff: (profession, count)).
type OrgSpec = (
    &'static str,
    usize,
    fn(&str, &str) -> String,
    &'static [(&'static str, usize)],
);

const ORG_SPECS: &[OrgSpec] = &[
    (
        "HOSPITAL",
        16,
        |w, m| format!("{m}{w}総合病院"),
        &[
            ("PHYSICIAN", 4),
            ("NURSE", 2),
            ("MEDICAL_SOCIAL_WORKER", 1),
            ("PHYSICAL_THERAPIST", 1),
        ],
    ),
    (
        "CLINIC",
        110,
        |w, _| format!("{w}内科クリニック"),
        &[("PHYSICIAN", 2), ("NURSE", 2)],
    ),
    (
        "DENTAL_CLINIC",
        30,
        |w, _| format!("{w}歯科医院"),
        &[("DENTIST", 1), ("DENTAL_HYGIENIST", 1)],
    ),
    (
        "PHARMACY",
        70,
        |w, _| format!("{w}薬局"),
        &[("PHARMACIST", 2)],
    ),
    (
        "VISITING_NURSE_STATION",
        30,
        |w, _| format!("訪問看護ステーション{w}"),
        &[("NURSE", 3)],
    ),
    (
        "HOME_CARE_SUPPORT_OFFICE",
        45,
        |w, _| format!("{w}居宅介護支援事業所"),
        &[("CARE_MANAGER", 3)],
    ),
    (
        "CARE_SERVICE_PROVIDER",
        25,
        |w, _| format!("ヘルパーステーション{w}"),
        &[("CARE_WORKER", 3)],
    ),
    (
        "NURSING_HOME",
        10,
        |w, _| format!("特別養護老人ホーム{w}"),
        &[("NURSE", 1), ("CARE_WORKER", 2)],
    ),
    (
        "COMMUNITY_GENERAL_SUPPORT_CENTER",
        8,
        |_, m| format!("{m}地域包括支援センター"),
        &[("PUBLIC_HEALTH_NURSE", 1), ("SOCIAL_WORKER", 1)],
    ),
    (
        "COORDINATION_CENTER",
        1,
        |_, _| "在宅医療介護連携支援センター".to_string(),
        &[("NETWORK_ADMINISTRATOR", 1)],
    ),
];

const CAPABILITIES: &[(&str, &[&str])] = &[
    ("HOSPITAL", &["BACKUP_BEDS", "EMERGENCY_ADMISSION"]),
    ("CLINIC", &["HOME_VISITS", "TWENTY_FOUR_HOUR_COVER"]),
    ("DENTAL_CLINIC", &["VISITING_DENTAL_CARE"]),
    ("PHARMACY", &["HOME_MEDICATION_MANAGEMENT"]),
    (
        "VISITING_NURSE_STATION",
        &["TWENTY_FOUR_HOUR_COVER", "END_OF_LIFE_CARE"],
    ),
    ("CARE_SERVICE_PROVIDER", &["VISITING_CARE"]),
    ("NURSING_HOME", &["SHORT_STAY"]),
];

fn person_name(rng: &mut Rng, given: &[NamePart]) -> (String, String) {
    let f = rng.pick(&FAMILY);
    let g = rng.pick(given);
    (
        format!("{}\u{3000}{}", f.0, g.0),
        format!("{}\u{3000}{}", f.1, g.1),
    )
}

fn phone(rng: &mut Rng, muni: usize) -> String {
    let area = MUNICIPALITIES[muni].2;
    let local = 10 - area.len();
    let (a, b) = if local == 6 { (2, 4) } else { (1, 4) };
    let first: String = (0..a)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    2 + rng.below(7)
                } else {
                    rng.below(10)
                } as u8,
            )
        })
        .collect();
    let second: String = (0..b)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect();
    format!("{area}-{first}-{second}")
}

fn address(rng: &mut Rng, muni: usize) -> (String, String) {
    let (name, postal, _) = MUNICIPALITIES[muni];
    let postal = format!("{postal}{:02}", rng.below(100));
    let district = rng.pick(&DISTRICTS);
    (
        postal,
        format!(
            "{name}{district}{}丁目{}-{}",
            1 + rng.below(5),
            1 + rng.below(30),
            1 + rng.below(20)
        ),
    )
}

impl Directory {
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng::for_entity(seed, STREAM_DIRECTORY, 0);
        let t = millis(directory_time());
        let mut orgs = Vec::new();
        let member = |rng: &mut Rng, profession: &'static str| {
            let (name, _) = person_name(rng, &STAFF_GIVEN);
            MemberRow {
                id: rng.uuid_v7(t),
                name,
                profession,
            }
        };
        // The bench clinic: a large home-care clinic on every patient's team.
        let mut bench = Org {
            id: rng.uuid_v7(t),
            kind: "CLINIC",
            name: "連携ベンチ在宅クリニック".to_string(),
            phone: "0157-20-0001".to_string(),
            municipality: 0,
            members: Vec::new(),
        };
        for _ in 0..12 {
            bench.members.push(member(&mut rng, "PHYSICIAN"));
        }
        for _ in 0..8 {
            bench.members.push(member(&mut rng, "NURSE"));
        }
        orgs.push(bench);
        for &(kind, count, name, staff) in ORG_SPECS {
            for i in 0..count {
                let muni = i % MUNICIPALITIES.len();
                let word = ORG_WORDS[(i / MUNICIPALITIES.len() + i * 7) % ORG_WORDS.len()];
                let mut org = Org {
                    id: rng.uuid_v7(t),
                    kind,
                    name: name(word, MUNICIPALITIES[muni].0),
                    phone: String::new(),
                    municipality: muni,
                    members: Vec::new(),
                };
                org.phone = phone(&mut rng, muni);
                for &(profession, n) in staff {
                    for _ in 0..n {
                        org.members.push(member(&mut rng, profession));
                    }
                }
                orgs.push(org);
            }
        }
        let mut by_kind_muni: HashMap<(&'static str, usize), Vec<usize>> = HashMap::new();
        let mut by_kind: HashMap<&'static str, Vec<usize>> = HashMap::new();
        for (i, o) in orgs.iter().enumerate().skip(1) {
            by_kind_muni
                .entry((o.kind, o.municipality))
                .or_default()
                .push(i);
            by_kind.entry(o.kind).or_default().push(i);
        }
        let bench_physicians = orgs[BENCH_CLINIC]
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.profession == "PHYSICIAN")
            .map(|(i, _)| i)
            .collect();
        Directory {
            orgs,
            by_kind_muni,
            by_kind,
            bench_physicians,
        }
    }

    pub fn bench_clinic_id(&self) -> Uuid {
        self.orgs[BENCH_CLINIC].id
    }

    pub fn bench_physician_id(&self) -> Uuid {
        self.orgs[BENCH_CLINIC].members[self.bench_physicians[0]].id
    }

    pub fn member_count(&self) -> usize {
        self.orgs.iter().map(|o| o.members.len()).sum()
    }

    /// Rows of `organizations`, `organization_capabilities` and `members`.
    pub fn copy_rows(&self, seed: u64) -> (CopyBuf, CopyBuf, CopyBuf) {
        let mut rng = Rng::for_entity(seed, STREAM_DIRECTORY, 1);
        let t = directory_time();
        let mut orgs = CopyBuf::with_capacity(1 << 16);
        let mut caps = CopyBuf::with_capacity(1 << 14);
        let mut members = CopyBuf::with_capacity(1 << 18);
        for o in &self.orgs {
            let (postal, addr) = address(&mut rng, o.municipality);
            let lat = 43.8 + (rng.unit() - 0.5) * 0.6;
            let lon = 143.9 + (rng.unit() - 0.5) * 0.8;
            orgs.uuid(o.id)
                .raw(o.kind)
                .text(&o.name)
                .null()
                .text(&postal)
                .text(&addr)
                .text(MUNICIPALITIES[o.municipality].0)
                .text(&o.phone)
                .null()
                .num(format!("{lat:.5}"))
                .num(format!("{lon:.5}"))
                .time(t)
                .time(t);
            orgs.end_row();
            if let Some((_, list)) = CAPABILITIES.iter().find(|(k, _)| *k == o.kind) {
                for c in *list {
                    caps.uuid(o.id).raw(c);
                    caps.end_row();
                }
            }
            for m in &o.members {
                members
                    .uuid(m.id)
                    .uuid(o.id)
                    .text(&m.name)
                    .null()
                    .raw(m.profession)
                    .raw("ACTIVE")
                    .time(t)
                    .time(t);
                members.end_row();
            }
        }
        (orgs, caps, members)
    }

    /// An organisation of a kind, preferably in the patient's municipality.
    fn pick_org(&self, rng: &mut Rng, kind: &'static str, muni: usize) -> usize {
        match self.by_kind_muni.get(&(kind, muni)) {
            Some(list) if !list.is_empty() && rng.chance(85) => *rng.pick(list),
            _ => *rng.pick(&self.by_kind[kind]),
        }
    }
}

/// The `COPY` buffers of one chunk of patients.
pub struct PatientRows {
    pub patients: CopyBuf,
    pub identifiers: CopyBuf,
    pub memberships: CopyBuf,
    pub consents: CopyBuf,
    pub records: CopyBuf,
}

impl PatientRows {
    pub fn new(patients: usize, records_per_patient: usize) -> Self {
        PatientRows {
            patients: CopyBuf::with_capacity(patients * 200),
            identifiers: CopyBuf::with_capacity(patients * 4 * 120),
            memberships: CopyBuf::with_capacity(patients * 5 * 200),
            consents: CopyBuf::with_capacity(patients * 300),
            records: CopyBuf::with_capacity(patients * records_per_patient * 420),
        }
    }
}

/// (organisation, role, member, start, end) of one care-team membership.
type Membership = (
    usize,
    &'static str,
    Option<Uuid>,
    NaiveDate,
    Option<NaiveDate>,
);

/// A patient's care team today.
struct Team {
    start: NaiveDate,
    physician: usize,
    pharmacy: usize,
    care_office: Option<usize>,
    nurse: Option<usize>,
    hospital: Option<usize>,
    dental: Option<usize>,
    care_service: Option<usize>,
}

/// One record before it gets its envelope.
struct Rec {
    data: RecordData,
    effective_at: DateTime<Utc>,
    org: usize,
    author: Option<Uuid>,
    undisclosed: bool,
}

fn day_between(rng: &mut Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0);
    from + Days::new(rng.range(0, span) as u64)
}

fn date(d: NaiveDate) -> Date {
    Date(d)
}

fn round_to(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// Generates patient `n` into `rows`. `validate`: check every payload with the
/// hub's own validation (a failure is a bug in this generator).
pub fn generate_patient(
    dir: &Directory,
    seed: u64,
    n: u64,
    records_per_patient: usize,
    validate: bool,
    rows: &mut PatientRows,
) -> anyhow::Result<()> {
    let mut rng = Rng::for_entity(seed, STREAM_PATIENT, n);
    let female = rng.chance(60);
    let (name, kana) = person_name(&mut rng, if female { &ELDER_FEMALE } else { &ELDER_MALE });
    let age_days = rng.range(65 * 365, 100 * 365) as u64;
    let birth = REF_DATE - Days::new(age_days);
    let muni = rng.below(MUNICIPALITIES.len());
    let (postal, addr) = address(&mut rng, muni);
    let phone_no = rng.chance(75).then(|| phone(&mut rng, muni));
    let start = day_between(
        &mut rng,
        NaiveDate::from_ymd_opt(2022, 1, 1).expect("valid"),
        NaiveDate::from_ymd_opt(2025, 10, 31).expect("valid"),
    );
    let created = rng.office_time(start);
    let patient_id = rng.uuid_v7(millis(created));

    rows.patients
        .uuid(patient_id)
        .text(&name)
        .text(&kana)
        .date(birth)
        .raw(if female { "FEMALE" } else { "MALE" })
        .text(&postal)
        .text(&addr)
        .opt_text(phone_no.as_deref())
        .raw("ACTIVE")
        .null()
        .null()
        .time(created)
        .time(created);
    rows.patients.end_row();

    // The care team: the bench clinic as primary physician, then 2–4 others.
    let mut team = Team {
        start,
        physician: dir.bench_physicians[rng.below(dir.bench_physicians.len())],
        pharmacy: dir.pick_org(&mut rng, "PHARMACY", muni),
        care_office: rng
            .chance(85)
            .then(|| dir.pick_org(&mut rng, "HOME_CARE_SUPPORT_OFFICE", muni)),
        nurse: rng
            .chance(45)
            .then(|| dir.pick_org(&mut rng, "VISITING_NURSE_STATION", muni)),
        hospital: rng
            .chance(35)
            .then(|| dir.pick_org(&mut rng, "HOSPITAL", muni)),
        dental: rng
            .chance(20)
            .then(|| dir.pick_org(&mut rng, "DENTAL_CLINIC", muni)),
        care_service: rng
            .chance(35)
            .then(|| dir.pick_org(&mut rng, "CARE_SERVICE_PROVIDER", muni)),
    };
    // At most four others besides the bench clinic, at least two.
    {
        let mut others = 1 + [
            team.care_office,
            team.nurse,
            team.hospital,
            team.dental,
            team.care_service,
        ]
        .iter()
        .filter(|o| o.is_some())
        .count();
        if others < 2 {
            team.nurse = Some(dir.pick_org(&mut rng, "VISITING_NURSE_STATION", muni));
            others += 1;
        }
        for slot in [&mut team.dental, &mut team.care_service, &mut team.hospital] {
            if others > 4 && slot.is_some() {
                *slot = None;
                others -= 1;
            }
        }
    }
    let bench = &dir.orgs[BENCH_CLINIC];
    let physician = &bench.members[team.physician];
    let mut memberships: Vec<Membership> = vec![(
        BENCH_CLINIC,
        "PRIMARY_PHYSICIAN",
        Some(physician.id),
        start,
        None,
    )];
    let member_of = |rng: &mut Rng, org: usize, profession: &str| -> Option<Uuid> {
        let list = dir.orgs[org].with_profession(profession);
        (!list.is_empty()).then(|| rng.pick(&list).id)
    };
    let m = rng
        .chance(50)
        .then(|| member_of(&mut rng, team.pharmacy, "PHARMACIST"));
    memberships.push((team.pharmacy, "PHARMACY", m.flatten(), start, None));
    if let Some(o) = team.care_office {
        let m = member_of(&mut rng, o, "CARE_MANAGER");
        memberships.push((o, "CARE_MANAGER", m, start, None));
    }
    if let Some(o) = team.nurse {
        let m = rng.chance(50).then(|| member_of(&mut rng, o, "NURSE"));
        memberships.push((o, "VISITING_NURSE", m.flatten(), start, None));
    }
    if let Some(o) = team.hospital {
        memberships.push((o, "HOSPITAL", None, start, None));
    }
    if let Some(o) = team.dental {
        let m = member_of(&mut rng, o, "DENTIST");
        memberships.push((o, "DENTIST", m, start, None));
    }
    if let Some(o) = team.care_service {
        memberships.push((o, "CARE_SERVICE", None, start, None));
    }
    // Some patients were in hospital once: an ended membership.
    if rng.chance(10) {
        let o = dir.pick_org(&mut rng, "HOSPITAL", muni);
        let from = day_between(&mut rng, start, REF_DATE - Days::new(60));
        let to = from + Days::new(rng.range(7, 40) as u64);
        memberships.push((o, "HOSPITAL", None, from, Some(to)));
    }
    let mut identified: Vec<usize> = Vec::new();
    for (org, role, member, from, to) in &memberships {
        let at = rng.office_time(*from);
        let id = rng.uuid_v7(millis(at));
        rows.memberships
            .uuid(id)
            .uuid(patient_id)
            .uuid(dir.orgs[*org].id)
            .opt_uuid(*member)
            .raw(role)
            .date(*from)
            .opt_date(*to)
            .time(at)
            .time(at)
            // Added by the primary physician, as the hub stamps it.
            .uuid(bench.id)
            .uuid(physician.id);
        rows.memberships.end_row();
        if !identified.contains(org) {
            identified.push(*org);
        }
    }
    for org in identified {
        let o = &dir.orgs[org];
        let prefix = match o.kind {
            "CLINIC" => "K",
            "HOSPITAL" => "H",
            "PHARMACY" => "P",
            "HOME_CARE_SUPPORT_OFFICE" => "C",
            "VISITING_NURSE_STATION" => "N",
            "DENTAL_CLINIC" => "D",
            _ => "S",
        };
        rows.identifiers
            .uuid(rng.uuid_v7(millis(created)))
            .uuid(o.id)
            .text(&format!("{prefix}{n:07}"))
            .uuid(patient_id)
            .time(created)
            // Linked by the organisation's own system.
            .uuid(o.id)
            .null();
        rows.identifiers.end_row();
    }

    // 包括同意: network-wide, nothing excluded, a form the patient signed;
    // in force (the first consent of the patient).
    let consent_at = rng.office_time(start);
    rows.consents
        .uuid(rng.uuid_v7(millis(consent_at)))
        .uuid(patient_id)
        .raw("NETWORK")
        .raw("[]")
        .raw("[]")
        .raw("WRITTEN")
        .text(&format!("同意書-{n:07}"))
        .date(start)
        .uuid(physician.id)
        .uuid(bench.id)
        .time(consent_at)
        .null()
        .null()
        .null()
        .raw("IN_FORCE")
        .raw("PATIENT");
    rows.consents.end_row();

    // Records.
    let recs = records(dir, &mut rng, &team, physician, records_per_patient);
    let mut built: Vec<(Rec, Uuid, DateTime<Utc>, Option<String>)> = recs
        .into_iter()
        .map(|r| {
            let recorded = r.effective_at + TimeDelta::minutes(rng.range(5, 600));
            let id = rng.uuid_v7(millis(recorded));
            let series = r.data.series_key();
            (r, id, recorded, series)
        })
        .collect();
    // The newest of each (kind, series) of LatestOfSeries kinds.
    let mut newest: HashMap<(RecordKind, Option<String>), (DateTime<Utc>, Uuid)> = HashMap::new();
    for (r, id, _, series) in &built {
        let kind = r.data.kind();
        if kind.summary_rule() == SummaryRule::LatestOfSeries {
            let e = newest
                .entry((kind, series.clone()))
                .or_insert((r.effective_at, *id));
            if (r.effective_at, *id) > *e {
                *e = (r.effective_at, *id);
            }
        }
    }
    built.sort_by_key(|(r, id, _, _)| (r.effective_at, *id));
    for (i, (r, id, recorded, series)) in built.iter().enumerate() {
        if validate {
            r.data.validate(REF_DATE).map_err(|e| {
                anyhow::anyhow!("generated {:?} is not valid: {e:?}", r.data.kind())
            })?;
        }
        let kind = r.data.kind();
        let (placed, summary_until) = renkei_schema::services::records::summary_placement(&r.data);
        let in_summary = match kind.summary_rule() {
            SummaryRule::WhileCurrent => placed,
            SummaryRule::LatestOfSeries => {
                newest.get(&(kind, series.clone())) == Some(&(r.effective_at, *id))
            }
            SummaryRule::Never => false,
        };
        let source_id = (i % 5 != 4).then(|| format!("R{n:07}-{i:04}"));
        let rec = &mut rows.records;
        rec.uuid(*id)
            .uuid(patient_id)
            .raw(kind.as_str())
            .raw(r.data.category().as_str())
            .uuid(dir.orgs[r.org].id)
            .opt_uuid(r.author)
            .null()
            .opt_text(source_id.as_deref())
            .raw("1")
            .raw("ACTIVE")
            .time(r.effective_at)
            .time(*recorded)
            .bool(r.undisclosed)
            .bool(in_summary)
            .opt_text(series.as_deref())
            .text(&r.data.to_json())
            .date(summary_until);
        rec.end_row();
    }
    Ok(())
}

/// `x` scaled from the 200-records-per-patient design to `per_patient`.
fn scaled(x: i64, per_patient: usize) -> usize {
    ((x as f64) * per_patient as f64 / 200.0).round() as usize
}

fn add(
    out: &mut Vec<Rec>,
    rng: &mut Rng,
    data: RecordData,
    day: NaiveDate,
    org: usize,
    author: Option<Uuid>,
    undisclosed: bool,
) {
    let effective_at = rng.office_time(day);
    out.push(Rec {
        data,
        effective_at,
        org,
        author,
        undisclosed,
    });
}

fn records(
    dir: &Directory,
    rng: &mut Rng,
    team: &Team,
    physician: &MemberRow,
    per_patient: usize,
) -> Vec<Rec> {
    let r = per_patient as f64;
    let start = team.start;
    let last = REF_DATE - Days::new(1);
    let mut out: Vec<Rec> = Vec::with_capacity(per_patient + 16);
    let author = |rng: &mut Rng, org: usize| -> Option<Uuid> {
        let ms = &dir.orgs[org].members;
        (!ms.is_empty() && rng.chance(85)).then(|| rng.pick(ms).id)
    };
    let clinic_author = |rng: &mut Rng| -> Option<Uuid> {
        if rng.chance(70) {
            Some(physician.id)
        } else {
            Some(rng.pick(&dir.orgs[BENCH_CLINIC].members).id)
        }
    };

    // Conditions, allergies, infections, contraindications.
    let n_conditions = rng.range(2, 6) as usize;
    for i in rng.sample(CONDITIONS.len(), n_conditions) {
        let (name, icd, resolves) = CONDITIONS[i];
        let onset = day_between(rng, start - Days::new(3650), start);
        let resolved = resolves || rng.chance(5);
        let resolved_on = resolved.then(|| day_between(rng, onset, last));
        let day = if resolved {
            resolved_on.unwrap_or(onset)
        } else {
            day_between(rng, start, last)
        };
        let data = RecordData::Condition(ConditionData {
            name: name.to_string(),
            icd10: Some(icd.to_string()),
            clinical_status: if resolved {
                ClinicalStatus::Resolved
            } else {
                ClinicalStatus::Active
            },
            onset: Some(date(onset)),
            resolved_on: resolved_on.map(date),
            sensitivity: None,
            note: None,
            codings: Vec::new(),
        });
        let a = clinic_author(rng);
        add(&mut out, rng, data, day, BENCH_CLINIC, a, false);
    }
    if rng.chance(3) {
        let onset = day_between(rng, start - Days::new(1000), last);
        let data = RecordData::Condition(ConditionData {
            name: "うつ病".into(),
            icd10: Some("F32.9".into()),
            clinical_status: ClinicalStatus::Active,
            onset: Some(date(onset)),
            resolved_on: None,
            sensitivity: Some(ConditionSensitivity::Psychiatric),
            note: Some("精神科外来に通院中".into()),
            codings: Vec::new(),
        });
        let a = clinic_author(rng);
        add(&mut out, rng, data, onset, BENCH_CLINIC, a, false);
    }
    if rng.chance(1) {
        let onset = day_between(rng, start, last);
        let data = RecordData::Condition(ConditionData {
            name: "膵癌".into(),
            icd10: Some("C25.9".into()),
            clinical_status: ClinicalStatus::Active,
            onset: Some(date(onset)),
            resolved_on: None,
            sensitivity: None,
            note: Some("本人には未告知。家族(長男)には説明済み。".into()),
            codings: Vec::new(),
        });
        let a = clinic_author(rng);
        add(&mut out, rng, data, onset, BENCH_CLINIC, a, true);
    }
    let n_allergies = [0, 0, 0, 1, 1, 1, 1, 2, 2, 3][rng.below(10)];
    for i in rng.sample(ALLERGENS.len(), n_allergies) {
        let (substance, kind, reaction) = ALLERGENS[i];
        let data = RecordData::Allergy(AllergyData {
            substance: substance.into(),
            allergy_type: AllergyType::parse(kind).unwrap_or(AllergyType::Other),
            reaction: Some(reaction.into()),
            severity: *rng.pick(&[
                AllergySeverity::Mild,
                AllergySeverity::Moderate,
                AllergySeverity::Moderate,
                AllergySeverity::Severe,
                AllergySeverity::Unknown,
            ]),
            codings: Vec::new(),
        });
        let day = day_between(rng, start, last);
        let a = clinic_author(rng);
        add(&mut out, rng, data, day, BENCH_CLINIC, a, false);
    }
    if rng.chance(50) {
        let tested = day_between(rng, start, last);
        let (pathogen, result) = match rng.below(20) {
            0 => (Pathogen::Mrsa, InfectionResult::Positive),
            1 => (Pathogen::HbsAntigen, InfectionResult::Positive),
            2..=9 => (Pathogen::HbsAntigen, InfectionResult::Negative),
            10..=17 => (Pathogen::HcvAntibody, InfectionResult::Negative),
            _ => (Pathogen::Syphilis, InfectionResult::Negative),
        };
        let data = RecordData::Infection(InfectionData {
            pathogen,
            other_name: None,
            result,
            tested_on: Some(date(tested)),
            note: None,
            codings: Vec::new(),
        });
        let org = team.hospital.unwrap_or(BENCH_CLINIC);
        let a = author(rng, org);
        add(&mut out, rng, data, tested, org, a, false);
    }
    if rng.chance(15) {
        let (drug, reason) = *rng.pick(&CONTRAINDICATIONS);
        let data = RecordData::DrugContraindication(DrugContraindicationData {
            drug: drug.into(),
            yj_code: None,
            reason: reason.into(),
            codings: Vec::new(),
        });
        let day = day_between(rng, start, last);
        let a = clinic_author(rng);
        add(&mut out, rng, data, day, BENCH_CLINIC, a, false);
    }

    // Lab results: ~40 %, a panel of 10–15 tests drawn every few weeks.
    let panel_size = rng.range(10, 15) as usize;
    let panel = rng.sample(LAB_TESTS.len(), panel_size);
    let draws = ((0.40 * r) / panel_size as f64).round().max(1.0) as usize;
    let baselines: Vec<f64> = panel
        .iter()
        .map(|&t| {
            let (_, _, _, _, _, mean, sd, _) = LAB_TESTS[t];
            rng.normal(mean, sd * 0.6)
        })
        .collect();
    let span = (last - start).num_days().max(1) as usize;
    for d in 0..draws {
        let base = start + Days::new((span * d / draws) as u64);
        let day = (base + Days::new(rng.below((span / draws).max(1)) as u64)).min(last);
        let org = match team.hospital {
            Some(h) if rng.chance(25) => h,
            _ => BENCH_CLINIC,
        };
        let at = rng.office_time(day);
        let a = if org == BENCH_CLINIC {
            clinic_author(rng)
        } else {
            author(rng, org)
        };
        for (k, &t) in panel.iter().enumerate() {
            let (code, name, unit, low, high, _, sd, decimals) = LAB_TESTS[t];
            let v = rng.normal(baselines[k], sd * 0.3).max(0.0);
            let value = round_to(v, decimals);
            let shown: f64 = value.parse().unwrap_or(v);
            let abnormal = if shown < low {
                AbnormalFlag::Low
            } else if shown > high {
                AbnormalFlag::High
            } else {
                AbnormalFlag::Normal
            };
            out.push(Rec {
                data: RecordData::LabResult(LabResultData {
                    code: Some(code.into()),
                    name: name.into(),
                    value,
                    numeric_value: Some(shown),
                    unit: Some(unit.into()),
                    reference_low: Some(low),
                    reference_high: Some(high),
                    abnormal,
                    codings: Vec::new(),
                }),
                effective_at: at,
                org,
                author: a,
                undisclosed: false,
            });
        }
    }

    // Regular drugs: prescriptions (~10 %) and dispensing (~20 %).
    let n_drugs = rng.range(3, 6) as usize;
    let drugs = rng.sample(DRUGS.len(), n_drugs);
    let rx_visits = ((0.10 * r) / n_drugs as f64).round().max(1.0) as usize;
    let latest_rx = REF_DATE - Days::new(rng.range(3, 40) as u64);
    for v in 0..rx_visits {
        let Some(day) = latest_rx.checked_sub_days(Days::new(56 * v as u64)) else {
            break;
        };
        for &d in &drugs {
            let (drug, yj, dose, freq, _, _) = DRUGS[d];
            let data = RecordData::Prescription(PrescriptionData {
                medication_type: MedicationType::Prescription,
                drug: drug.into(),
                yj_code: Some(yj.into()),
                dose: dose.into(),
                route: if drug.contains("吸入") {
                    MedicationRoute::Inhalation
                } else {
                    MedicationRoute::Oral
                },
                frequency: freq.into(),
                // The latest prescription continues (no end): current today.
                days: (v > 0).then_some(56),
                start_date: date(day),
                end_date: None,
                prescriber: Some(physician.name.clone()),
                codings: Vec::new(),
            });
            let a = Some(physician.id);
            add(&mut out, rng, data, day, BENCH_CLINIC, a, false);
        }
    }
    let disp_visits = ((0.20 * r) / n_drugs as f64).round().max(1.0) as usize;
    let latest_disp = REF_DATE - Days::new(rng.range(1, 27) as u64);
    for v in 0..disp_visits {
        let Some(day) = latest_disp.checked_sub_days(Days::new(28 * v as u64)) else {
            break;
        };
        let at = rng.office_time(day);
        let a = author(rng, team.pharmacy);
        for &d in &drugs {
            let (drug, yj, _, _, unit, per_day) = DRUGS[d];
            out.push(Rec {
                data: RecordData::Dispensing(DispensingData {
                    drug: drug.into(),
                    yj_code: Some(yj.into()),
                    quantity: per_day * 28.0,
                    unit: unit.into(),
                    days: Some(28),
                    note: rng.chance(10).then(|| "一包化".to_string()),
                    codings: Vec::new(),
                }),
                effective_at: at,
                org: team.pharmacy,
                author: a,
                undisclosed: false,
            });
        }
    }

    // Vital signs (~10 %) and daily observations (~5 %).
    let weight = rng.normal(52.0, 9.0).clamp(30.0, 95.0);
    let vitals = |rng: &mut Rng| {
        let systolic = rng.normal(132.0, 14.0).clamp(90.0, 190.0).round();
        let diastolic = rng.normal(76.0, 9.0).clamp(45.0, systolic - 20.0).round();
        RecordData::VitalSigns(VitalSignsData {
            temperature: Some((rng.normal(36.5, 0.3).clamp(35.5, 38.5) * 10.0).round() / 10.0),
            systolic: Some(systolic),
            diastolic: Some(diastolic),
            pulse: Some(rng.normal(74.0, 9.0).clamp(48.0, 120.0).round()),
            respiratory_rate: rng.chance(40).then(|| rng.range(14, 22) as f64),
            spo2: Some(rng.range(93, 99) as f64),
            weight_kg: rng
                .chance(30)
                .then(|| ((weight + rng.normal(0.0, 0.8)) * 10.0).round() / 10.0),
        })
    };
    let observer = team
        .care_service
        .or(team.nurse)
        .or(team.care_office)
        .unwrap_or(BENCH_CLINIC);
    let n_vitals = (0.10 * r).round() as usize;
    for _ in 0..n_vitals {
        let org = match team.nurse {
            Some(o) if rng.chance(50) => o,
            _ => BENCH_CLINIC,
        };
        let data = vitals(rng);
        let day = day_between(rng, start, last);
        let a = author(rng, org);
        add(&mut out, rng, data, day, org, a, false);
    }
    let n_obs = (0.05 * r).round() as usize;
    let observation = |rng: &mut Rng| {
        RecordData::DailyObservation(DailyObservationData {
            observation: rng.pick(&OBSERVATIONS).to_string(),
            concern: rng.chance(20),
        })
    };
    for _ in 0..n_obs {
        let data = observation(rng);
        let day = day_between(rng, start, last);
        let a = author(rng, observer);
        add(&mut out, rng, data, day, observer, a, false);
    }

    // Documents and imaging.
    for _ in 0..scaled(rng.range(2, 5), per_patient) {
        let (kind, title, text) = *rng.pick(&DOCUMENTS);
        let org = match team.hospital {
            Some(h) if kind != "REFERRAL_LETTER" => h,
            _ => BENCH_CLINIC,
        };
        let data = RecordData::ClinicalDocument(ClinicalDocumentData {
            document_type: ClinicalDocumentType::parse(kind).unwrap_or(ClinicalDocumentType::Other),
            title: title.into(),
            text: text.into(),
            author_name: Some(physician.name.clone()),
            attachments: Vec::new(),
            codings: Vec::new(),
        });
        let day = day_between(rng, start, last);
        let a = author(rng, org);
        add(&mut out, rng, data, day, org, a, false);
    }
    for _ in 0..scaled(rng.range(0, 3), per_patient) {
        let (modality, site, findings) = *rng.pick(&[
            (
                ImagingModality::XRay,
                "胸部",
                "両下肺野に淡い浸潤影。心拡大なし。",
            ),
            (
                ImagingModality::Ct,
                "頭部",
                "陳旧性ラクナ梗塞。新規出血なし。",
            ),
            (
                ImagingModality::Ultrasound,
                "腹部",
                "胆嚢結石あり。肝腎に著変なし。",
            ),
            (ImagingModality::XRay, "腰椎", "L1に圧迫骨折(陳旧性)。"),
        ]);
        let org = team.hospital.unwrap_or(BENCH_CLINIC);
        let data = RecordData::ImagingReport(ImagingReportData {
            modality,
            body_site: site.into(),
            findings: findings.into(),
            impression: rng.chance(50).then(|| "経過観察".to_string()),
        });
        let day = day_between(rng, start, last);
        let a = author(rng, org);
        add(&mut out, rng, data, day, org, a, false);
    }

    // Pharmacy reports.
    for _ in 0..scaled(rng.range(1, 3), per_patient) {
        let data = RecordData::MedicationManagementReport(MedicationManagementReportData {
            adherence: *rng.pick(&[Rating::Good, Rating::Good, Rating::Fair, Rating::Poor]),
            leftover_medication: rng.chance(40).then(|| "朝食後薬が5日分残薬".to_string()),
            problems: rng
                .chance(30)
                .then(|| "錠剤が飲み込みにくいとの訴え".to_string()),
            actions: rng
                .chance(30)
                .then(|| "主治医に一包化・OD錠への変更を提案".to_string()),
        });
        let day = day_between(rng, start, last);
        let a = author(rng, team.pharmacy);
        add(&mut out, rng, data, day, team.pharmacy, a, false);
    }

    // Dental.
    if let Some(dental) = team.dental {
        let day = day_between(rng, start, last);
        let a = author(rng, dental);
        let data = RecordData::OralFinding(OralFindingData {
            findings: "上顎右側に動揺歯あり。歯肉の発赤。".into(),
            remaining_teeth: Some(rng.range(0, 28) as i32),
        });
        add(&mut out, rng, data, day, dental, a, false);
        for _ in 0..rng.range(1, 2) {
            let day = day_between(rng, start, last);
            let a = author(rng, dental);
            let data = RecordData::OralHygiene(OralHygieneData {
                level: *rng.pick(&[Rating::Good, Rating::Fair, Rating::Poor]),
                note: None,
            });
            add(&mut out, rng, data, day, dental, a, false);
        }
        if rng.chance(50) {
            let day = day_between(rng, start, last);
            let a = author(rng, dental);
            let data = RecordData::Denture(DentureData {
                denture_type: *rng.pick(&[DentureType::Full, DentureType::Partial]),
                jaw: *rng.pick(&[Jaw::Upper, Jaw::Lower, Jaw::Both]),
                fit: *rng.pick(&[Rating::Good, Rating::Fair, Rating::Poor]),
                note: None,
            });
            add(&mut out, rng, data, day, dental, a, false);
        }
        for _ in 0..scaled(rng.range(1, 3), per_patient) {
            let day = day_between(rng, start, last);
            let a = author(rng, dental);
            let data = RecordData::VisitingDentalNote(VisitingDentalNoteData {
                text: "義歯調整。口腔ケア指導(家族同席)。".into(),
            });
            add(&mut out, rng, data, day, dental, a, false);
        }
    }
    if team.dental.is_some() || rng.chance(20) {
        let org = team.dental.or(team.nurse).unwrap_or(BENCH_CLINIC);
        let day = day_between(rng, start, last);
        let a = author(rng, org);
        let data = RecordData::SwallowingAssessment(SwallowingAssessmentData {
            method: rng.pick(&["RSST", "改訂水飲みテスト", "VE"]).to_string(),
            level: Some(rng.range(4, 10) as i32),
            diet_form: Some(
                rng.pick(&["常食", "軟菜食", "嚥下調整食3", "嚥下調整食2-1"])
                    .to_string(),
            ),
            findings: "咽頭残留は軽度。一口量の調整で摂取可能。".into(),
        });
        add(&mut out, rng, data, day, org, a, false);
    }

    // Care.
    let care_org = team.care_office.unwrap_or(BENCH_CLINIC);
    let adl_level = |rng: &mut Rng| {
        Some(*rng.pick(&[
            AdlLevel::Independent,
            AdlLevel::Supervision,
            AdlLevel::PartialAssistance,
            AdlLevel::FullAssistance,
        ]))
    };
    if let Some(office) = team.care_office {
        // Certified from the start, renewed (for one to three years) until today.
        let mut from = start;
        loop {
            let to = from + Days::new(365 * rng.range(1, 3) as u64 - 1);
            let data = RecordData::CareCertification(CareCertificationData {
                level: *rng.pick(&[
                    CareLevel::Support1,
                    CareLevel::Support2,
                    CareLevel::Care1,
                    CareLevel::Care2,
                    CareLevel::Care3,
                    CareLevel::Care4,
                    CareLevel::Care5,
                ]),
                valid_from: date(from),
                valid_to: date(to),
                status: CertificationStatus::Certified,
                insurer_number: Some(format!("01{:04}", 2000 + rng.below(1000))),
                bedridden_rank: None,
                dementia_rank: None,
            });
            let a = author(rng, office);
            add(&mut out, rng, data, from.min(last), office, a, false);
            if to >= REF_DATE {
                break;
            }
            from = to + Days::new(1);
        }
        for _ in 0..rng.range(1, 3) {
            let n_services = rng.range(1, 4) as usize;
            let services = rng
                .sample(SERVICES.len(), n_services)
                .into_iter()
                .map(|i| PlannedService {
                    service_type: SERVICES[i].0.into(),
                    provider: None,
                    frequency: SERVICES[i].1.into(),
                })
                .collect();
            let data = RecordData::CarePlan(CarePlanData {
                long_term_goals: "住み慣れた自宅で安心して暮らし続ける。".into(),
                short_term_goals: "転倒せずに屋内を移動できる。服薬を忘れずに続ける。".into(),
                services,
            });
            let day = day_between(rng, start, last);
            let a = author(rng, office);
            add(&mut out, rng, data, day, office, a, false);
        }
        let day = day_between(rng, start, last);
        let a = author(rng, office);
        let data = RecordData::Assessment(AssessmentData {
            summary: "独居に近い生活。日中は一人で過ごすことが多い。".into(),
            living_situation: Some("長女が週末に訪問".into()),
            concerns: Some("服薬管理と転倒リスク".into()),
        });
        add(&mut out, rng, data, day, office, a, false);
        for _ in 0..rng.range(1, 3) {
            let (i, s) = *rng.pick(&SERVICES);
            let from = day_between(rng, start, last);
            let data = RecordData::ServiceUse(ServiceUseData {
                service_type: i.into(),
                provider: None,
                frequency: Some(s.into()),
                start_date: date(from),
                end_date: None,
            });
            let a = author(rng, office);
            add(&mut out, rng, data, from, office, a, false);
        }
        let day = day_between(rng, start, last);
        let a = author(rng, office);
        let alone = rng.chance(35);
        let data = RecordData::HomeEnvironment(HomeEnvironmentData {
            housing_type: *rng.pick(&[
                HousingType::DetachedHouse,
                HousingType::DetachedHouse,
                HousingType::Apartment,
                HousingType::PublicHousing,
                HousingType::ServicedHousing,
            ]),
            lives_alone: alone,
            barriers: rng.chance(60).then(|| "玄関に段差、浴槽が深い".to_string()),
            note: None,
        });
        add(&mut out, rng, data, day, office, a, false);
        let day = day_between(rng, start, last);
        let a = author(rng, office);
        let (kp, _) = person_name(rng, &STAFF_GIVEN);
        let kp_phone = phone(rng, 0);
        let data = RecordData::FamilyCareCapacity(FamilyCareCapacityData {
            capacity: *rng.pick(&[
                CareCapacity::Sufficient,
                CareCapacity::Limited,
                CareCapacity::None,
            ]),
            key_person_name: Some(kp),
            key_person_relationship: Some(rng.pick(&RELATIONSHIPS).to_string()),
            key_person_phone: Some(kp_phone),
            note: None,
        });
        add(&mut out, rng, data, day, office, a, false);
    }
    let n_adl = if team.care_office.is_some() {
        rng.range(1, 4)
    } else {
        1
    };
    for _ in 0..n_adl {
        let data = RecordData::AdlAssessment(AdlAssessmentData {
            eating: adl_level(rng),
            excretion: adl_level(rng),
            transfer: adl_level(rng),
            walking: adl_level(rng),
            bathing: adl_level(rng),
            dressing: adl_level(rng),
            cognition: adl_level(rng),
            note: None,
        });
        let day = day_between(rng, start, last);
        let a = author(rng, care_org);
        add(&mut out, rng, data, day, care_org, a, false);
    }
    if let Some(nurse) = team.nurse {
        for _ in 0..scaled(rng.range(2, 4), per_patient) {
            let data = RecordData::VisitingNurseReport(VisitingNurseReportData {
                condition: "状態は安定。下肢浮腫は軽減。".into(),
                care_provided: "バイタル測定、服薬確認、清拭、下肢のマッサージ。".into(),
                note: None,
            });
            let day = day_between(rng, start, last);
            let a = author(rng, nurse);
            add(&mut out, rng, data, day, nurse, a, false);
        }
    }

    // ACP: one or two versions for most patients.
    if rng.chance(60) {
        for _ in 0..rng.range(1, 2) {
            let day = day_between(rng, start, last);
            let wish = |rng: &mut Rng| {
                Some(*rng.pick(&[Wish::Wants, Wish::Declines, Wish::Declines, Wish::Undecided]))
            };
            let data = RecordData::AdvanceCarePlan(AdvanceCarePlanData {
                place_of_care: Some(*rng.pick(&[
                    PlaceWish::Home,
                    PlaceWish::Home,
                    PlaceWish::NursingHome,
                    PlaceWish::Undecided,
                ])),
                place_of_death: Some(*rng.pick(&[
                    PlaceWish::Home,
                    PlaceWish::Hospital,
                    PlaceWish::Undecided,
                ])),
                cpr: wish(rng),
                life_prolonging_treatment: wish(rng),
                tube_feeding: wish(rng),
                hospitalization: wish(rng),
                proxy_name: None,
                proxy_relationship: Some(rng.pick(&RELATIONSHIPS).to_string()),
                participants: vec![
                    "本人".into(),
                    "長女".into(),
                    format!("主治医 {}", physician.name),
                ],
                confirmed_on: Some(date(day)),
                note: None,
            });
            add(
                &mut out,
                rng,
                data,
                day,
                BENCH_CLINIC,
                Some(physician.id),
                false,
            );
        }
    }

    // Top up to the requested number with observations and vitals.
    let mut toggle = false;
    while out.len() < per_patient {
        let day = day_between(rng, start, last);
        if toggle {
            let data = observation(rng);
            let a = author(rng, observer);
            add(&mut out, rng, data, day, observer, a, false);
        } else {
            let data = vitals(rng);
            let a = clinic_author(rng);
            add(&mut out, rng, data, day, BENCH_CLINIC, a, false);
        }
        toggle = !toggle;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn generate(n: std::ops::Range<u64>, per: usize) -> PatientRows {
        let dir = Directory::generate(7);
        let mut rows = PatientRows::new(n.clone().count(), per);
        for i in n {
            generate_patient(&dir, 7, i, per, true, &mut rows).expect("valid payloads");
        }
        rows
    }

    #[test]
    fn deterministic_and_about_r_records() {
        let a = generate(0..40, 200);
        let b = generate(0..40, 200);
        assert_eq!(a.records.data, b.records.data);
        assert_eq!(a.memberships.data, b.memberships.data);
        let per = a.records.rows as f64 / 40.0;
        assert!((200.0..215.0).contains(&per), "{per} records per patient");
        // A chunk of patients is the same whichever chunk it is generated in.
        let c = generate(20..40, 200);
        assert!(a.records.data.ends_with(&c.records.data));
    }

    #[test]
    fn in_summary_is_what_the_hub_would_set() {
        let rows = generate(0..30, 120);
        // (patient, kind, series) → rows marked in_summary.
        let mut marked: HashMap<(String, String, String), usize> = HashMap::new();
        for line in rows.records.data.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let kind = RecordKind::parse(f[2]).expect("a kind");
            let in_summary = f[13] == "t";
            assert_eq!(f[9], "ACTIVE");
            assert_eq!(f[8], "1");
            match kind.summary_rule() {
                SummaryRule::WhileCurrent => {
                    // COPY's text format doubles backslashes (JSON's escapes).
                    let json = f[15].replace("\\\\", "\\");
                    let data = RecordData::from_json(kind, &json).expect("data");
                    let (placed, until) =
                        renkei_schema::services::records::summary_placement(&data);
                    assert_eq!(in_summary, placed, "{line}");
                    assert_eq!(f[16], until.format("%Y-%m-%d").to_string(), "{line}");
                }
                SummaryRule::Never => assert!(!in_summary, "{line}"),
                SummaryRule::LatestOfSeries => {
                    let key = (f[1].to_string(), f[2].to_string(), f[14].to_string());
                    *marked.entry(key).or_default() += usize::from(in_summary);
                }
            }
        }
        assert!(!marked.is_empty());
        assert!(marked.values().all(|&n| n == 1), "one newest per series");
    }
}
