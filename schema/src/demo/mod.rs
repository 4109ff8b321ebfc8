//! The demo region: a small, entirely fictional piece of eastern Hokkaido in
//! which every query of the API can be tried with a token of any profession.
//!
//! 「みなみ野市」 (Minamino, a city) and its rural neighbour 「北川町」 (Kitagawa,
//! a town in the invented 東原郡) do not exist, nor does any facility or person
//! below. People's names are combinations of common family and given names, so a
//! resemblance to a real person is coincidence. Only the telephone area codes
//! (0157, 01586) and the coordinates (near 43.8 N, 143.9 E) are borrowed from the
//! Kitami area so that the data looks right on a map and in a form.
//!
//! The region (`n` as in [`demo_organization_id`]):
//! - 0 the home-care coordination support centre, which runs the network;
//! - 1 the core city hospital (back-up beds), 2 the town hospital;
//! - 3 an in-home-care support clinic, 4 an internal-medicine clinic, 5 the
//!   town's clinic; 6 a dental clinic doing visiting dental care;
//! - 7, 8 pharmacies; 9, 10 visiting-nurse stations; 11, 12 home-care support
//!   offices (care managers);
//! - 13 a home-helper station, 14 a day-service centre, 15 a nursing home
//!   (特養), 16 a rehabilitation centre;
//! - 17 the community general support centre, 18 the city's long-term-care
//!   insurance section, 19 the fire department (EMS), 20 the public-health
//!   centre, 21 the town hall's health and welfare section.
//!
//! 42 members (every profession; the first member of a profession is its demo
//! member, see [`demo_member_id`]) and 200 patients aged 65–100 with local
//! identifiers and care teams. Patients 24, 49, …, 199 (every 25th) are
//! deceased, patients 17, 57, 97, 137 and 177 have moved away; their
//! memberships ended on that day.
//!
//! Consents (同意), which the access policy requires: every patient has one
//! active 包括同意 (scope `NETWORK`, nothing excluded; mostly a signed form,
//! some oral or electronic) taken by the primary physician or the care manager
//! soon after they joined the team — the deceased and those who moved away
//! keep theirs. Every consent names its form (`同意書 2025-0012`; the record
//! of an oral consent, `口頭同意記録 …`; an electronic one, `電子同意 …`) and
//! who signed: mostly the patient, about one in eight a family member as
//! proxy (代諾者, with the relation), a few a guardian. Patient 0 (`K-000003` at the clinic, organisation 3, the one
//! the README looks up) is such a plain case. The exceptions, each for a
//! different path through the policy:
//! - patient 10 (`K-000011` at organisation 3) withdrew their consent
//!   (本人の申し出により撤回) and has no active one: the demo's withdrawn
//!   patient;
//! - patient 11 consented for two organisations only (`ORGANIZATIONS`): the
//!   primary clinic (organisation 4) and the care office (11) — not the
//!   clinic at organisation 3, which is on the team as deputy physician;
//! - patient 12's consent excludes the categories `SENSITIVE_PSYCHIATRIC` and
//!   `LAB_RESULTS`;
//! - patient 13 (`K-000013` at organisation 3) excludes one organisation of
//!   the team: the visiting-nurse station, organisation 9 (the rule is the
//!   pharmacy, but this patient has none) — and that station later recorded
//!   a new 包括同意 signed by the patient's daughter: it would widen access
//!   to the station itself, so it is `PENDING`, granting nothing until the
//!   coordination centre confirms it (`pendingConsents` with a
//!   `network-administrator` token);
//! - patient 14 has a history: an oral consent superseded (as the API does
//!   it) by a written one;
//! - patient 15 has a plain consent and objects to emergency
//!   (break-the-glass) access (救急時閲覧を希望しない).
//!
//! Records (about 12,000; 30 to 90 a patient), written by the team member whose
//! work they are, from April 2024 to the day before the reference date and
//! never after a patient left the team: 2–5 conditions (ICD-10), 3–8
//! prescriptions (generic names, YJ-shaped codes; for those at home most run
//! past 2026-04-01 and one at least is a long-term order without end, current
//! whenever the demo is looked at), the pharmacy's dispensing every 4–8 weeks,
//! blood tests every 1–3 months (JLAC10-shaped codes, reference ranges, flags),
//! allergies, a few infections and contraindications, vital signs; the visiting
//! nurse's reports, the care workers' observations, the dentist's records and
//! the hospital's letters where they are on the team (a discharge summary for
//! each past admission); a care certification, care plan, ADL assessments,
//! home, key person and services for everyone; ACP for about four in ten, some
//! in two versions. Patient 0 (`K-000003`) has an ordinary, complete chart. The
//! exceptions:
//! - patient 32 (`K-000026` at organisation 3) has a stomach cancer that has
//!   not been told to them: the diagnosis, the endoscopy report and the
//!   hospital's letter are `undisclosed`, the only such records;
//! - patient 12 (whose consent excludes the category) has depression and
//!   patient 34 (`K-000030` at organisation 3) schizophrenia, the only
//!   records in `SENSITIVE_PSYCHIATRIC`.
//!
//! The content — organisations, members, names, the medical catalogue, the
//! texts of consents and records, record templates — is in the TOML files
//! of `schema/demo/` (embedded at build time, read by [`data`]); this module
//! and its children hold the rules that combine it. `schema/demo/README.md`
//! describes the files.
//!
//! Everything — ids, names, dates — comes from a fixed seed and the fixed
//! reference date 2026-04-01, never from the clock or the OS, so every run on
//! SQLite or PostgreSQL writes the same rows. [`seed`] inserts only rows whose
//! primary key is not there yet, so running it again adds nothing.

mod admission_discharge;
mod data;
mod directory;
mod liaison;
mod outbreaks;

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, TransactionTrait,
    TryInsertResult,
};
use uuid::{Builder, Uuid};

use crate::domain::{
    Capability as Cap, CareTeamRole as Role, ConsentMethod, ConsentScope, ConsentSignatory,
    ConsentStatus, DataCategory, MemberStatus, PatientStatus, PlaceOfDeath, Profession as Prof,
    Sex,
};
use crate::error::ApiResult;
use crate::graphql::Date;
use crate::records::{
    AbnormalFlag, AdlAssessmentData, AdlLevel, AdvanceCarePlanData, AllergyData, AssessmentData,
    BedriddenRank, CareCapacity, CareCautionsData, CareCertificationData, CareLevel, CarePlanData,
    CautionItem, CertificationStatus, ClinicalDocumentData, ClinicalDocumentType, ClinicalStatus,
    ConditionData, DailyObservationData, DementiaRank, DentureData, DentureType, DispensingData,
    DrugContraindicationData, FamilyCareCapacityData, GuidanceService,
    HomeCareGuidanceInstructionData, HomeEnvironmentData, HousingType, IllnessExplanationData,
    ImagingModality, ImagingReportData, InfectionData, InfectionResult, Jaw, LabResultData,
    MedicationManagementReportData, MedicationRoute, MedicationType, OpinionPurpose,
    OralFindingData, OralHygieneData, Pathogen, PhysicianOpinionData, PlaceWish, PlannedService,
    PrescriptionData, Rating, RecordData, RecordKind, ServiceUseData, SummaryRule,
    SwallowingAssessmentData, VisitingDentalNoteData, VisitingNurseInstructionData,
    VisitingNurseInstructionType, VisitingNurseReportData, VitalSignsData, Wish,
};
use crate::services::records::ACTIVE;
use data::{Drug, Dx, Lab, MemberSpec, NamePart, OrgSpec, Supply};
use entities::{
    care_team_membership, consent, emergency_objection, member, organization,
    organization_capability, patient, patient_identifier, record,
};

/// Counts of what one run inserted (all zero on a second run).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub organizations: usize,
    pub members: usize,
    pub patients: usize,
    pub identifiers: usize,
    pub care_team_memberships: usize,
    pub consents: usize,
    pub emergency_objections: usize,
    pub records: usize,
}

/// Inserts the demo region, in one transaction, skipping rows that exist.
pub async fn seed(db: &DatabaseConnection) -> ApiResult<SeedReport> {
    data::check().map_err(|e| crate::error::ApiError::internal(format_args!("{e}")))?;
    let region = region();
    let admissions = admission_discharge::Admissions::of(&region);
    let outbreaks = outbreaks::rows(&region)
        .map_err(|e| crate::error::ApiError::internal(format_args!("{e}")))?;
    let txn = db.begin().await?;
    // Parents before children: the foreign keys are checked row by row.
    let organizations = insert_new::<organization::Entity>(&txn, region.organizations).await?;
    insert_new::<organization_capability::Entity>(&txn, region.capabilities).await?;
    let members = insert_new::<member::Entity>(&txn, region.members).await?;
    let patients = insert_new::<patient::Entity>(&txn, region.patients).await?;
    let identifiers = insert_new::<patient_identifier::Entity>(&txn, region.identifiers).await?;
    let care_team_memberships =
        insert_new::<care_team_membership::Entity>(&txn, region.memberships).await?;
    let consents = insert_new::<consent::Entity>(&txn, region.consents).await?;
    let emergency_objections =
        insert_new::<emergency_objection::Entity>(&txn, region.objections).await?;
    let records =
        insert_batched::<record::Entity>(&txn, region.records, record_size, RECORD_BATCH_BYTES)
            .await?;
    admissions.insert(&txn).await?;
    liaison::seed(&txn).await?;
    directory::seed(&txn).await?;
    outbreaks.insert(&txn).await?;
    txn.commit().await?;
    let report = SeedReport {
        organizations,
        members,
        patients,
        identifiers,
        care_team_memberships,
        consents,
        emergency_objections,
        records,
    };
    tracing::info!(?report, "demo region seeded");
    Ok(report)
}

/// The deterministic id of the demo member for a profession (the first demo
/// member of that profession). Used by `renkei demo-token <profession>`.
pub fn demo_member_id(profession: Prof) -> Uuid {
    demo_id(Table::Member, first_member_of(profession))
}

/// Deterministic id of the demo organisation number `n` (0-based).
pub fn demo_organization_id(n: usize) -> Uuid {
    demo_id(Table::Organization, n)
}

/// Deterministic id of demo patient number `n` (0-based).
pub fn demo_patient_id(n: usize) -> Uuid {
    demo_id(Table::Patient, n)
}

/// Rows per `INSERT`: far below SQLite's 32 766 bound parameters (the widest
/// table, `consents`, has 14 columns) while keeping the number of round trips
/// small.
const BATCH: usize = 100;

/// Bytes of records per `INSERT` (estimated by [`record_size`]): about 20
/// records. Records are larger than the other rows. Chosen under sqlx 0.9.0,
/// which did not set `TCP_NODELAY`: over TCP a PostgreSQL statement of more
/// than some 20 KB stalled for about 40 ms (Nagle's algorithm meeting a
/// delayed acknowledgement), and at 100 records a statement the seed took 7 s
/// instead of 1. sqlx 0.9.1 sets it again (the stall made `writeRecords` a
/// third slower, bench/RESULTS.md); the bound stays, harmless.
const RECORD_BATCH_BYTES: usize = 8 * 1024;

/// A record's rough size on the wire: the payload, the short strings and the
/// fixed-width columns.
fn record_size(r: &record::Model) -> usize {
    let strings = r.kind.len() + r.category.len() + r.status.len();
    let optional = (r.source_record_id.as_ref().map_or(0, String::len))
        + r.series_key.as_ref().map_or(0, String::len);
    160 + r.data.len() + strings + optional
}

/// Inserts `rows` in batches of [`BATCH`]; a row whose primary key exists is
/// skipped (`ON CONFLICT DO NOTHING`, the same on SQLite and PostgreSQL).
/// Returns the number of rows actually inserted.
async fn insert_new<E>(txn: &DatabaseTransaction, rows: Vec<E::Model>) -> Result<usize, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    insert_batched::<E>(txn, rows, |_| 1, BATCH).await
}

/// [`insert_new`] with batches that end once the rows' `size` reaches `budget`
/// (a batch has at least one row and at most [`BATCH`]).
async fn insert_batched<E>(
    txn: &DatabaseTransaction,
    rows: Vec<E::Model>,
    size: impl Fn(&E::Model) -> usize,
    budget: usize,
) -> Result<usize, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut batch: Vec<E::ActiveModel> = Vec::with_capacity(BATCH);
        let mut used = 0;
        while let Some(row) = rows.next_if(|r| batch.is_empty() || used + size(r) <= budget) {
            used += size(&row);
            batch.push(row.into_active_model());
            if batch.len() == BATCH {
                break;
            }
        }
        let result = E::insert_many(batch)
            .on_conflict_do_nothing()
            .exec_without_returning(txn)
            .await?;
        if let TryInsertResult::Inserted(n) = result {
            inserted += n as usize;
        }
    }
    Ok(inserted)
}

// ---------------------------------------------------------------------------
// Determinism: fixed dates, a fixed seed, ids derived from (table, n).

/// Builds a date in a `const`; an invalid date fails the build, not a run.
const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid constant date"),
    }
}

/// The day the demo describes. Ages, start dates and ended memberships are
/// relative to it, never to today, so that every run writes the same rows.
const REF_DATE: NaiveDate = ymd(2026, 4, 1);
/// The last day before `REF_DATE`: nothing the demo records happens later.
const LAST_DAY: NaiveDate = ymd(2026, 3, 31);
/// `REF_DATE` at midnight UTC in Unix milliseconds: the time part of every id.
const FIXED_MILLIS: u64 = 1_775_001_600_000;
/// Care teams were formed from this day on (the network started in 2024).
const TEAMS_FROM: NaiveDate = ymd(2024, 1, 1);
const SEED: u64 = 0x5EED_2026_0401_0001;
/// Seeds consents and objections, added later: a stream of their own leaves
/// every row generated from `SEED` as it was.
const CONSENT_SEED: u64 = 0x5EED_2026_0401_0002;
/// Seeds who signed the forms and the pending consent, added later still.
const FORM_SEED: u64 = 0x5EED_2026_0401_0004;
const PATIENTS: usize = 200;

/// `created_at` / `updated_at` of every demo row.
fn fixed_time() -> DateTime<Utc> {
    REF_DATE.and_time(NaiveTime::MIN).and_utc()
}

/// splitmix64: tiny, fast and good enough to vary demo data; seeded with a
/// constant so the demo never depends on the OS's randomness.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`; `n` is the non-zero length of a constant table or range.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn days_after(&mut self, from: NaiveDate, within: usize) -> NaiveDate {
        from + Days::new(self.below(within) as u64)
    }

    /// A number in `low..high`.
    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy)]
enum Table {
    Organization = 1,
    Member,
    Patient,
    Identifier,
    Membership,
    Consent,
    EmergencyObjection,
    Record,
}

/// A UUIDv7-shaped id: time part `FIXED_MILLIS + n` (so ids sort by `n` and are
/// unique within a table), random part a hash of (table, n).
fn demo_id(table: Table, n: usize) -> Uuid {
    let mut hash = SplitMix64(SEED ^ ((table as u64) << 56) ^ n as u64);
    let high = hash.next_u64().to_be_bytes();
    let low = hash.next_u64().to_be_bytes();
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&high);
    bytes[8..].copy_from_slice(&low[..2]);
    Builder::from_unix_timestamp_millis(FIXED_MILLIS + n as u64, &bytes).into_uuid()
}

// ---------------------------------------------------------------------------
// The directory: organisations and members.

/// The city's name (みなみ野市), from names.toml.
fn city() -> &'static str {
    &data::content().names.region.city
}

/// The town's name (北川町), from names.toml.
fn town() -> &'static str {
    &data::content().names.region.town
}

// Organisation numbers, named so that members and care teams read as prose.
const CITY_HOSPITAL: usize = 1;
const TOWN_HOSPITAL: usize = 2;
const HOME_CLINIC: usize = 3;
const SAKURA_CLINIC: usize = 4;
const TOWN_CLINIC: usize = 5;
const DENTAL_CLINIC: usize = 6;
const CITY_PHARMACY: usize = 7;
const TOWN_PHARMACY: usize = 8;
const CITY_NURSES: usize = 9;
const TOWN_NURSES: usize = 10;
const CITY_CARE_OFFICE: usize = 11;
const TOWN_CARE_OFFICE: usize = 12;
const HELPERS: usize = 13;
const DAY_SERVICE: usize = 14;
const NURSING_HOME: usize = 15;
const REHAB: usize = 16;
const SUPPORT_CENTRE: usize = 17;
const CITY_HALL: usize = 18;
const TOWN_HALL: usize = 21;

/// The `key`s of the organisations above in `directory.toml`, checked when it
/// is loaded: the rules name them by number.
const ORGANIZATION_KEYS: [&str; 22] = [
    "centre",
    "city_hospital",
    "town_hospital",
    "home_clinic",
    "sakura_clinic",
    "town_clinic",
    "dental_clinic",
    "city_pharmacy",
    "town_pharmacy",
    "city_nurses",
    "town_nurses",
    "city_care_office",
    "town_care_office",
    "helpers",
    "day_service",
    "nursing_home",
    "rehab",
    "support_centre",
    "city_hall",
    "fire_department",
    "health_centre",
    "town_hall",
];

/// The organisations, numbered by their place in `directory.toml`.
static ORGS: LazyLock<&'static [OrgSpec]> =
    LazyLock::new(|| &data::content().directory.organizations);

/// The members, numbered by their place in `directory.toml`. The first member
/// of each profession is its demo member, so each is placed where that
/// profession meets the most patients (the clinic, not the hospital).
static MEMBERS: LazyLock<&'static [MemberSpec]> =
    LazyLock::new(|| &data::content().directory.members);

/// Index in [`MEMBERS`] of the first member of `profession` (every
/// profession has one: checked when `directory.toml` is loaded).
fn first_member_of(profession: Prof) -> usize {
    (MEMBERS.iter())
        .position(|m| m.profession == profession)
        .expect("every profession has a demo member")
}

/// The name of member `n` (an index in [`MEMBERS`]) and its reading.
fn member_name(n: usize) -> (String, String) {
    // 11 is coprime to 40, so no two of the first 40 members share a family
    // name; from the 41st on, the given name shifts by one for each round,
    // so the family name repeats but the full name does not.
    let names = &data::content().names;
    let (family, staff) = (&names.family, &names.staff_given);
    full_name(
        &family[(n * 11 + 5) % family.len()],
        &staff[(n * 7 + n / family.len()) % staff.len()],
    )
}

fn full_name(family: NamePart, given: NamePart) -> (String, String) {
    (
        format!("{}\u{3000}{}", family.0, given.0),
        format!("{}\u{3000}{}", family.1, given.1),
    )
}

// ---------------------------------------------------------------------------
// Generation: a pure function of the constants above.

/// Every row of the demo region, in insertion order.
#[derive(Debug, PartialEq)]
struct Region {
    organizations: Vec<organization::Model>,
    capabilities: Vec<organization_capability::Model>,
    members: Vec<member::Model>,
    patients: Vec<patient::Model>,
    identifiers: Vec<patient_identifier::Model>,
    memberships: Vec<care_team_membership::Model>,
    consents: Vec<consent::Model>,
    objections: Vec<emergency_objection::Model>,
    records: Vec<record::Model>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    City,
    Town,
}

/// Where a patient's story ends (before `REF_DATE`), if it has.
#[derive(Clone, Copy)]
enum Fate {
    Active,
    Deceased(NaiveDate, PlaceOfDeath),
    MovedAway(NaiveDate),
}

impl Fate {
    /// Every 25th patient has died (more than half of them at home, the
    /// outcome the network works for) and every 40th, from 17, moved away.
    fn of(rng: &mut SplitMix64, n: usize) -> Fate {
        const PLACES: [PlaceOfDeath; 8] = [
            PlaceOfDeath::Home,
            PlaceOfDeath::Hospital,
            PlaceOfDeath::Home,
            PlaceOfDeath::NursingHome,
            PlaceOfDeath::Home,
            PlaceOfDeath::Hospital,
            PlaceOfDeath::Home,
            PlaceOfDeath::NursingHome,
        ];
        if n % 25 == 24 {
            let day = rng.days_after(ymd(2025, 6, 1), 290);
            Fate::Deceased(day, PLACES[(n / 25) % PLACES.len()])
        } else if n % 40 == 17 {
            Fate::MovedAway(rng.days_after(ymd(2025, 4, 1), 300))
        } else {
            Fate::Active
        }
    }

    /// The day the care team's memberships end.
    fn exit(self) -> Option<NaiveDate> {
        match self {
            Fate::Active => None,
            Fate::Deceased(day, _) | Fate::MovedAway(day) => Some(day),
        }
    }
}

/// One care-team membership before it becomes a row.
struct Slot {
    role: Role,
    org: usize,
    member: Option<usize>,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

/// Builds one patient's care team.
struct Team {
    slots: Vec<Slot>,
    start: NaiveDate,
    end: Option<NaiveDate>,
}

impl Team {
    /// Adds `org` in `role`, naming one of its members of `profession` when it
    /// has one; everyone but the primary physician joined within 90 days.
    fn add(&mut self, rng: &mut SplitMix64, role: Role, org: usize, profession: Option<Prof>) {
        let member = profession.and_then(|p| pick_member(rng, org, p));
        let start = if role == Role::PrimaryPhysician {
            self.start
        } else {
            rng.days_after(self.start, 90)
        };
        self.slots.push(Slot {
            role,
            org,
            member,
            start,
            end: self.end,
        });
    }

    fn has(&self, role: Role) -> bool {
        self.slots.iter().any(|s| s.role == role)
    }
}

fn pick_member(rng: &mut SplitMix64, org: usize, profession: Prof) -> Option<usize> {
    let staff: Vec<usize> = (0..MEMBERS.len())
        .filter(|&i| MEMBERS[i].org == org && MEMBERS[i].profession == profession)
        .collect();
    (!staff.is_empty()).then(|| *rng.pick(&staff))
}

/// The care team of one patient: who looks after someone at home in a region
/// like this one. Town patients rely on the town's few facilities and on the
/// city's in-home-care clinic as deputy.
fn care_team(rng: &mut SplitMix64, n: usize, area: Area, fate: Fate) -> Vec<Slot> {
    let city = area == Area::City;
    // Patients who have left the region joined early enough to leave again.
    let start = match fate {
        Fate::Active => rng.days_after(TEAMS_FROM, 731),
        _ => rng.days_after(TEAMS_FROM, 240),
    };
    let mut team = Team {
        slots: Vec::new(),
        start,
        end: fate.exit(),
    };
    let clinic = match (city, rng.chance(55)) {
        (true, true) => HOME_CLINIC,
        (true, false) => SAKURA_CLINIC,
        (false, _) => TOWN_CLINIC,
    };
    let hospital = if city || rng.chance(25) {
        CITY_HOSPITAL
    } else {
        TOWN_HOSPITAL
    };
    team.add(rng, Role::PrimaryPhysician, clinic, Some(Prof::Physician));
    let office = if city {
        CITY_CARE_OFFICE
    } else {
        TOWN_CARE_OFFICE
    };
    team.add(rng, Role::CareManager, office, Some(Prof::CareManager));
    if rng.chance(80) {
        let pharmacy = if city { CITY_PHARMACY } else { TOWN_PHARMACY };
        team.add(rng, Role::Pharmacy, pharmacy, Some(Prof::Pharmacist));
    }
    if rng.chance(60) {
        let station = if city { CITY_NURSES } else { TOWN_NURSES };
        team.add(rng, Role::VisitingNurse, station, Some(Prof::Nurse));
    }
    if rng.chance(45) {
        team.add(rng, Role::Hospital, hospital, None);
    }
    if rng.chance(20) {
        let deputy = match clinic {
            HOME_CLINIC => SAKURA_CLINIC,
            _ => HOME_CLINIC,
        };
        team.add(rng, Role::DeputyPhysician, deputy, Some(Prof::Physician));
    }
    if rng.chance(25) {
        team.add(rng, Role::Dentist, DENTAL_CLINIC, Some(Prof::Dentist));
        if rng.chance(40) {
            let hygienist = Some(Prof::DentalHygienist);
            team.add(rng, Role::DentalHygienist, DENTAL_CLINIC, hygienist);
        }
    }
    if rng.chance(40) {
        team.add(rng, Role::CareService, HELPERS, Some(Prof::CareWorker));
    }
    if rng.chance(30) {
        team.add(rng, Role::CareService, DAY_SERVICE, None);
    }
    if rng.chance(if city { 20 } else { 8 }) {
        team.add(
            rng,
            Role::Rehabilitation,
            REHAB,
            Some(Prof::PhysicalTherapist),
        );
    }
    if city && rng.chance(15) {
        let profession = *rng.pick(&[Prof::SocialWorker, Prof::PublicHealthNurse]);
        team.add(
            rng,
            Role::CommunitySupportCenter,
            SUPPORT_CENTRE,
            Some(profession),
        );
    }
    if rng.chance(15) {
        let hall = if city { CITY_HALL } else { TOWN_HALL };
        team.add(rng, Role::Municipality, hall, Some(Prof::MunicipalStaff));
    }
    // Where someone died, that place was on the team.
    match fate {
        Fate::Deceased(_, PlaceOfDeath::Hospital) if !team.has(Role::Hospital) => {
            team.add(rng, Role::Hospital, hospital, None);
        }
        Fate::Deceased(_, PlaceOfDeath::NursingHome) => {
            team.add(rng, Role::CareService, NURSING_HOME, Some(Prof::CareWorker));
        }
        _ => {}
    }
    // A past admission: the hospital knew the patient for a few weeks, then
    // handed back to the team at home (an ended membership).
    if matches!(fate, Fate::Active) && n % 9 == 4 && !team.has(Role::Hospital) {
        let admitted = rng.days_after(ymd(2024, 6, 1), 500);
        team.slots.push(Slot {
            role: Role::Hospital,
            org: hospital,
            member: None,
            start: admitted,
            end: Some(rng.days_after(admitted + Days::new(7), 40)),
        });
    }
    team.slots
}

fn region() -> Region {
    let now = fixed_time();
    let organizations = ORGS
        .iter()
        .enumerate()
        .map(|(n, o)| organization::Model {
            id: demo_organization_id(n),
            kind: o.kind.as_str().to_owned(),
            name: o.name.to_owned(),
            name_kana: Some(o.kana.to_owned()),
            postal_code: Some(o.postal_code.to_owned()),
            address: Some(o.address.to_owned()),
            // Only the town's addresses name 北川町.
            municipality: Some(
                (if o.address.contains(town()) {
                    town()
                } else {
                    city()
                })
                .to_owned(),
            ),
            phone: Some(o.phone.to_owned()),
            fax: Some(o.fax.to_owned()),
            latitude: Some(o.coordinates.0),
            longitude: Some(o.coordinates.1),
            medical_institution_code: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let capabilities = ORGS
        .iter()
        .enumerate()
        .flat_map(|(n, o)| {
            o.capabilities
                .iter()
                .map(move |c| organization_capability::Model {
                    organization_id: demo_organization_id(n),
                    capability: c.as_str().to_owned(),
                })
        })
        .collect();
    let members = MEMBERS
        .iter()
        .enumerate()
        .map(|(n, spec)| {
            let (name, kana) = member_name(n);
            member::Model {
                id: demo_id(Table::Member, n),
                organization_id: demo_organization_id(spec.org),
                name,
                name_kana: Some(kana),
                profession: spec.profession.as_str().to_owned(),
                status: MemberStatus::Active.as_str().to_owned(),
                external_issuer: None,
                external_subject: None,
                created_at: now,
                updated_at: now,
            }
        })
        .collect();

    let mut rng = SplitMix64(SEED);
    let mut patients = Vec::with_capacity(PATIENTS);
    let mut identifiers = Vec::new();
    let mut memberships = Vec::new();
    // The last local number handed out by each organisation.
    let mut last_number = vec![0usize; ORGS.len()];
    let mut stories = Vec::with_capacity(PATIENTS);
    for n in 0..PATIENTS {
        let area = if rng.chance(70) {
            Area::City
        } else {
            Area::Town
        };
        let sex = if rng.chance(62) {
            Sex::Female
        } else {
            Sex::Male
        };
        let names = &data::content().names;
        let family = rng.pick(&names.family);
        let given = rng.pick(if sex == Sex::Female {
            &names.elder_female
        } else {
            &names.elder_male
        });
        let (name, name_kana) = full_name(family, given);
        // 65–100 on REF_DATE, most in their eighties; born 1–364 days before an
        // April 1st so that the age on REF_DATE is exactly `age`.
        let age = 65 + (rng.below(36) + rng.below(36)) / 2;
        let anniversary = REF_DATE.with_year(REF_DATE.year() - age as i32);
        let birth_date = anniversary.unwrap_or(REF_DATE) - Days::new(1 + rng.below(364) as u64);
        let (postal_code, address) = address(&mut rng, area);
        let phone = phone(&mut rng, area);
        let fate = Fate::of(&mut rng, n);
        let (status, deceased_on, place_of_death) = match fate {
            Fate::Active => (PatientStatus::Active, None, None),
            Fate::Deceased(day, place) => (PatientStatus::Deceased, Some(day), Some(place)),
            Fate::MovedAway(_) => (PatientStatus::MovedAway, None, None),
        };
        let patient_id = demo_patient_id(n);
        patients.push(patient::Model {
            id: patient_id,
            name,
            name_kana,
            birth_date,
            sex: sex.as_str().to_owned(),
            postal_code: Some(postal_code.to_owned()),
            address: Some(address),
            phone,
            status: status.as_str().to_owned(),
            deceased_on,
            place_of_death: place_of_death.map(|p| p.as_str().to_owned()),
            insured_person_id: None,
            created_at: now,
            updated_at: now,
        });

        let team = care_team(&mut rng, n, area, fate);
        // Local ids at the clinic and the care office (always), the pharmacy
        // and the hospital (when on the team): 2 to 4 per patient, each at an
        // organisation of the care team, numbered in registration order.
        for role in [
            Role::PrimaryPhysician,
            Role::CareManager,
            Role::Pharmacy,
            Role::Hospital,
        ] {
            let Some(slot) = team.iter().find(|s| s.role == role) else {
                continue;
            };
            let Some(style) = &ORGS[slot.org].local_ids else {
                continue;
            };
            // Gaps: other patients of the facility are not in the network.
            last_number[slot.org] += 1 + rng.below(4);
            identifiers.push(patient_identifier::Model {
                id: demo_id(Table::Identifier, identifiers.len()),
                organization_id: demo_organization_id(slot.org),
                local_id: style.format(last_number[slot.org], slot.start.year()),
                patient_id,
                created_at: now,
                // Each facility linked its own number.
                recorded_by_organization: Some(demo_organization_id(slot.org)),
                recorded_by_member: None,
            });
        }
        for slot in &team {
            memberships.push(care_team_membership::Model {
                id: demo_id(Table::Membership, memberships.len()),
                patient_id,
                organization_id: demo_organization_id(slot.org),
                member_id: slot.member.map(|i| demo_id(Table::Member, i)),
                role: slot.role.as_str().to_owned(),
                start_date: slot.start,
                end_date: slot.end,
                created_at: now,
                updated_at: now,
                recorded_by_organization: Some(demo_organization_id(slot.org)),
                recorded_by_member: None,
            });
        }
        stories.push(Story {
            family,
            sex,
            age,
            area,
            fate,
            team,
        });
    }
    let (consents, objections) = consents(&patients, &memberships);
    let records = records(&patients, &stories);
    Region {
        organizations,
        capabilities,
        members,
        patients,
        identifiers,
        memberships,
        consents,
        objections,
        records,
    }
}

// ---------------------------------------------------------------------------
// Consents and objections to emergency access.

/// The patients whose consent is not a plain, active 包括同意 (module doc).
const WITHDRAWN: usize = 10;
const LISTED_ORGANIZATIONS: usize = 11;
const EXCLUDED_CATEGORIES: usize = 12;
const EXCLUDED_ORGANIZATION: usize = 13;
const SUPERSEDED: usize = 14;
const OBJECTS_TO_EMERGENCY_ACCESS: usize = 15;

/// What `services::consents::record` writes on the consent it replaces.
const SUPERSEDED_REASON: &str = "superseded by a new consent";

/// A moment during office hours (09:00–17:59 JST) of `day`, in UTC.
fn office_hours(rng: &mut SplitMix64, day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc() + TimeDelta::minutes(rng.below(9 * 60) as i64)
}

/// A moment on a day after `after`'s, at the latest on `LAST_DAY`.
fn later(rng: &mut SplitMix64, after: DateTime<Utc>) -> DateTime<Utc> {
    let from = after.date_naive() + Days::new(1);
    let span = (LAST_DAY - from).num_days().max(0) as usize + 1;
    let day = (from + Days::new(rng.below(span) as u64)).min(LAST_DAY);
    office_hours(rng, day)
}

/// JSON as `services::consents::record` stores it: organisation ids sorted,
/// category names in declaration order.
fn organizations_json(mut ids: Vec<Uuid>) -> String {
    ids.sort();
    ids.dedup();
    serde_json::to_string(&ids).expect("a list of uuids serialises")
}

fn categories_json(mut categories: Vec<DataCategory>) -> String {
    categories.sort();
    categories.dedup();
    let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
    serde_json::to_string(&names).expect("a list of strings serialises")
}

/// Every patient's consents (one active, except [`WITHDRAWN`]) and the one
/// objection to emergency access. Consents are taken by the primary physician
/// or the care manager, within two weeks of joining the team.
fn consents(
    patients: &[patient::Model],
    memberships: &[care_team_membership::Model],
) -> (Vec<consent::Model>, Vec<emergency_objection::Model>) {
    /// Appends `row` with the id of its position.
    fn push(consents: &mut Vec<consent::Model>, row: consent::Model) {
        let id = demo_id(Table::Consent, consents.len());
        consents.push(consent::Model { id, ..row });
    }
    let texts = &data::content().consents;
    let mut rng = SplitMix64(CONSENT_SEED);
    let mut consents: Vec<consent::Model> = Vec::with_capacity(patients.len() + 2);
    let mut objections = Vec::new();
    for (n, p) in patients.iter().enumerate() {
        let team: Vec<&care_team_membership::Model> = (memberships.iter())
            .filter(|m| m.patient_id == p.id)
            .collect();
        let first = |role: Role| team.iter().copied().find(|m| m.role == role.as_str());
        let physician = first(Role::PrimaryPhysician).expect("every patient has a physician");
        let care_manager = first(Role::CareManager).expect("every patient has a care manager");
        let taker = if rng.chance(60) {
            care_manager
        } else {
            physician
        };
        let obtained_on = (taker.start_date + Days::new(rng.below(14) as u64)).min(LAST_DAY);
        let recorded_on = (obtained_on + Days::new(rng.below(3) as u64)).min(LAST_DAY);
        let method = match (n, rng.below(10)) {
            (SUPERSEDED, _) => ConsentMethod::Oral,
            (LISTED_ORGANIZATIONS..=EXCLUDED_ORGANIZATION, _) | (_, 0..=7) => {
                ConsentMethod::Written
            }
            (_, 8) => ConsentMethod::Oral,
            _ => ConsentMethod::Electronic,
        };
        let plain = consent::Model {
            id: Uuid::nil(),
            patient_id: p.id,
            scope: ConsentScope::Network.as_str().to_owned(),
            organization_ids: organizations_json(Vec::new()),
            excluded_categories: categories_json(Vec::new()),
            method: method.as_str().to_owned(),
            // Numbered below, once every form's date is known.
            form_reference: None,
            obtained_on,
            recorded_by_member: taker.member_id,
            recorded_by_organization: taker.organization_id,
            recorded_at: office_hours(&mut rng, recorded_on),
            withdrawn_at: None,
            withdrawn_by_member: None,
            withdrawal_reason: None,
            status: ConsentStatus::InForce.as_str().to_owned(),
            // Filled in below, from a stream of their own.
            signed_by: None,
            proxy_name: None,
            proxy_relation: None,
            reviewed_at: None,
            reviewed_by_member: None,
            reviewed_by_organization: None,
        };
        let recorded_at = plain.recorded_at;
        match n {
            WITHDRAWN => {
                // The patient told the physician, who recorded it.
                let row = consent::Model {
                    withdrawn_at: Some(later(&mut rng, recorded_at)),
                    withdrawn_by_member: physician.member_id,
                    withdrawal_reason: Some(texts.withdrawal_reason.clone()),
                    status: ConsentStatus::Withdrawn.as_str().to_owned(),
                    ..plain
                };
                push(&mut consents, row);
            }
            LISTED_ORGANIZATIONS => {
                let listed = vec![physician.organization_id, care_manager.organization_id];
                let row = consent::Model {
                    scope: ConsentScope::Organizations.as_str().to_owned(),
                    organization_ids: organizations_json(listed),
                    ..plain
                };
                push(&mut consents, row);
            }
            EXCLUDED_CATEGORIES => {
                let excluded = vec![DataCategory::SensitivePsychiatric, DataCategory::LabResults];
                let row = consent::Model {
                    excluded_categories: categories_json(excluded),
                    ..plain
                };
                push(&mut consents, row);
            }
            EXCLUDED_ORGANIZATION => {
                let excluded = (first(Role::Pharmacy))
                    .or_else(|| first(Role::VisitingNurse))
                    .expect("the patient has a pharmacy or a visiting nurse");
                let row = consent::Model {
                    organization_ids: organizations_json(vec![excluded.organization_id]),
                    ..plain
                };
                push(&mut consents, row);
            }
            SUPERSEDED => {
                // Oral at the first visit; the signed form came later.
                let renewed_at = later(&mut rng, recorded_at);
                let old = consent::Model {
                    withdrawn_at: Some(renewed_at),
                    withdrawn_by_member: physician.member_id,
                    withdrawal_reason: Some(SUPERSEDED_REASON.to_owned()),
                    status: ConsentStatus::Superseded.as_str().to_owned(),
                    ..plain.clone()
                };
                push(&mut consents, old);
                let row = consent::Model {
                    method: ConsentMethod::Written.as_str().to_owned(),
                    obtained_on: renewed_at.date_naive(),
                    recorded_by_member: physician.member_id,
                    recorded_by_organization: physician.organization_id,
                    recorded_at: renewed_at,
                    ..plain
                };
                push(&mut consents, row);
            }
            _ => push(&mut consents, plain),
        }
        if n == OBJECTS_TO_EMERGENCY_ACCESS {
            objections.push(emergency_objection::Model {
                id: demo_id(Table::EmergencyObjection, objections.len()),
                patient_id: p.id,
                note: Some(texts.objection_note.clone()),
                recorded_by_member: physician.member_id,
                recorded_by_organization: physician.organization_id,
                recorded_at: later(&mut rng, recorded_at),
                withdrawn_at: None,
            });
        }
    }
    // The visiting-nurse station the patient excludes recorded a new 包括同意
    // the family signed: it would widen access to the station itself, so it
    // waits for the coordination centre (the demo's pending consent).
    let mut forms_rng = SplitMix64(FORM_SEED);
    {
        let n = EXCLUDED_ORGANIZATION;
        let patient = patients[n].id;
        let in_force = (consents.iter())
            .find(|c| c.patient_id == patient && c.status == ConsentStatus::InForce.as_str())
            .expect("the patient has a consent in force")
            .clone();
        let nurse = (memberships.iter())
            .find(|m| {
                m.patient_id == patient
                    && m.organization_id == demo_organization_id(CITY_NURSES)
                    && m.member_id.is_some()
            })
            .expect("the excluded station's nurse is on the team");
        let recorded_at = later(
            &mut forms_rng,
            in_force
                .recorded_at
                .max(nurse.start_date.and_time(NaiveTime::MIN).and_utc()),
        );
        push(
            &mut consents,
            consent::Model {
                id: Uuid::nil(),
                organization_ids: organizations_json(Vec::new()),
                method: ConsentMethod::Written.as_str().to_owned(),
                form_reference: None,
                obtained_on: recorded_at.date_naive(),
                recorded_by_member: nurse.member_id,
                recorded_by_organization: nurse.organization_id,
                recorded_at,
                status: ConsentStatus::Pending.as_str().to_owned(),
                signed_by: Some(ConsentSignatory::Family.as_str().to_owned()),
                proxy_name: Some(texts.pending_proxy.name.clone()),
                proxy_relation: Some(texts.pending_proxy.relation.clone()),
                ..in_force
            },
        );
    }
    // Signed forms are numbered by year in the order they were signed, with
    // gaps: forms of people outside the network.
    let mut written: Vec<usize> = (0..consents.len())
        .filter(|&i| consents[i].method == ConsentMethod::Written.as_str())
        .collect();
    written.sort_by_key(|&i| (consents[i].obtained_on, consents[i].recorded_at, i));
    let (mut year, mut number) = (0, 0);
    for i in written {
        let signed = consents[i].obtained_on.year();
        if signed != year {
            (year, number) = (signed, 0);
        }
        number += 1 + rng.below(2);
        let prefix = &texts.written_form;
        consents[i].form_reference = Some(format!("{prefix} {year}-{number:04}"));
    }
    // An oral consent is on the facility's record of it, an electronic one
    // in the signing system: each names that record, numbered the same way.
    for (method, prefix) in [
        (ConsentMethod::Oral, &texts.oral_form),
        (ConsentMethod::Electronic, &texts.electronic_form),
    ] {
        let mut taken: Vec<usize> = (0..consents.len())
            .filter(|&i| consents[i].method == method.as_str())
            .collect();
        taken.sort_by_key(|&i| (consents[i].obtained_on, consents[i].recorded_at, i));
        let (mut year, mut number) = (0, 0);
        for i in taken {
            let signed = consents[i].obtained_on.year();
            if signed != year {
                (year, number) = (signed, 0);
            }
            number += 1 + forms_rng.below(2);
            consents[i].form_reference = Some(format!("{prefix} {year}-{number:04}"));
        }
    }
    // Who signed: mostly the patient; a family member for about one in
    // eight (長女, 長男, 配偶者 …), a guardian for one in fifty.
    for c in consents.iter_mut().filter(|c| c.signed_by.is_none()) {
        let (signatory, proxy) = match forms_rng.below(100) {
            0..=1 => (
                ConsentSignatory::Guardian,
                Some((&texts.guardian_relation, forms_rng.pick(&texts.guardians))),
            ),
            2..=13 => {
                let proxy = forms_rng.pick(&texts.family_proxies);
                (
                    ConsentSignatory::Family,
                    Some((&proxy.relation, &proxy.name)),
                )
            }
            _ => (ConsentSignatory::Patient, None),
        };
        c.signed_by = Some(signatory.as_str().to_owned());
        if let Some((relation, name)) = proxy {
            c.proxy_relation = Some(relation.to_owned());
            c.proxy_name = Some(name.to_owned());
        }
    }
    (consents, objections)
}

fn address(rng: &mut SplitMix64, area: Area) -> (&'static str, String) {
    match area {
        Area::City => {
            let (district, postal) = rng.pick(&data::content().names.city_districts);
            let (chome, ban, go) = (1 + rng.below(6), 1 + rng.below(20), 1 + rng.below(30));
            let region = &data::content().names.region;
            let address = data::fill(
                &region.city_address,
                &[
                    ("city", &region.city),
                    ("district", district),
                    ("chome", &chome.to_string()),
                    ("ban", &ban.to_string()),
                    ("go", &go.to_string()),
                ],
            );
            (postal, address)
        }
        Area::Town => {
            let (district, postal) = rng.pick(&data::content().names.town_districts);
            let banchi = 1 + rng.below(400);
            let region = &data::content().names.region;
            let address = data::fill(
                &region.town_address,
                &[
                    ("town", &region.town),
                    ("district", district),
                    ("banchi", &banchi.to_string()),
                ],
            );
            (postal, address)
        }
    }
}

/// Half have a landline, three in ten only a mobile, the rest no number.
fn phone(rng: &mut SplitMix64, area: Area) -> Option<String> {
    match rng.below(10) {
        0..=4 => Some(match area {
            Area::City => format!("0157-{}-{:04}", 22 + rng.below(8), rng.below(10_000)),
            Area::Town => format!("01586-{}-{:04}", 2 + rng.below(3), rng.below(10_000)),
        }),
        5..=7 => Some(format!(
            "0{}0-{:04}-{:04}",
            rng.pick(&[7, 8, 9]),
            rng.below(10_000),
            rng.below(10_000)
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Records: what each patient's care team has shared.

/// Seeds the records, added after the consents: each patient's chart is drawn
/// from a stream of its own (this seed and the patient's number), so a change
/// to one chart leaves every other row as it was.
const RECORD_SEED: u64 = 0x5EED_2026_0401_0003;
/// Seeds the records written from `records.toml`'s templates, a stream of
/// their own (with the patient's number).
const TEMPLATE_SEED: u64 = 0x5EED_2026_0401_0007;
/// The first day records describe: the network went live in April 2024.
const RECORDS_FROM: NaiveDate = ymd(2024, 4, 1);
/// Patient `n`'s `i`-th record is record number `n * RECORD_BLOCK + i`: its id
/// and its source record ID (`DEMO-<number>`).
const RECORD_BLOCK: usize = 1_000;
/// The patient whose stomach cancer has not been told to them (未告知):
/// `K-000026` at the in-home-care clinic, with the city hospital on the team.
const UNDISCLOSED_CANCER: usize = 32;
/// The patients with a psychiatric condition: the one whose consent excludes
/// SENSITIVE_PSYCHIATRIC, and one whose consent does not.
const DEPRESSION: usize = EXCLUDED_CATEGORIES;
const SCHIZOPHRENIA: usize = 34;

/// What a patient's records are made from, besides the patient row.
struct Story {
    family: NamePart,
    sex: Sex,
    age: usize,
    area: Area,
    fate: Fate,
    team: Vec<Slot>,
}

/// A drug of `medical.toml` by key.
fn drug(key: &str) -> &'static Drug {
    data::content().drug(key)
}

/// A condition of `medical.toml` by key.
fn condition(key: &str) -> &'static Dx {
    data::content().condition(key)
}

/// A laboratory test of `medical.toml` by key.
fn lab_test(key: &str) -> &'static Lab {
    data::content().lab(key)
}

/// 要支援1 … 要介護5, by need.
const LEVELS: [CareLevel; 7] = [
    CareLevel::Support1,
    CareLevel::Support2,
    CareLevel::Care1,
    CareLevel::Care2,
    CareLevel::Care3,
    CareLevel::Care4,
    CareLevel::Care5,
];
const ADL_LEVELS: [AdlLevel; 4] = [
    AdlLevel::Independent,
    AdlLevel::Supervision,
    AdlLevel::PartialAssistance,
    AdlLevel::FullAssistance,
];

/// The family member the team calls first (キーパーソン).
struct KeyPerson {
    name: String,
    relationship: &'static str,
    phone: Option<String>,
    capacity: CareCapacity,
    note: &'static str,
}

/// Who wrote a record: an organisation of the team and one of its members
/// (indexes in [`ORGS`] and [`MEMBERS`]).
#[derive(Clone, Copy)]
struct By {
    org: usize,
    member: usize,
}

/// How long a prescription runs.
#[derive(Clone, Copy)]
enum Term {
    /// A short course, over.
    Ended,
    /// The current prescription: its days, mostly with the last day; a few
    /// without end.
    Current,
    /// A long-term order without days or end (継続).
    Continuing,
    /// Stopped on this day at the latest (the patient died or moved away).
    Stopped(NaiveDate),
}

/// A record before it becomes a row.
struct Draft {
    by: By,
    at: DateTime<Utc>,
    undisclosed: bool,
    data: RecordData,
}

/// The days on which an organisation of the team writes.
#[derive(Clone, Copy)]
struct Span {
    from: NaiveDate,
    to: NaiveDate,
}

impl Span {
    /// While `slot`'s organisation is on the team — and `lookback` days before,
    /// for the history a clinic uploads when it joins — within the demo's two
    /// years.
    fn of(slot: &Slot, lookback: u64) -> Option<Span> {
        let from = (slot.start - Days::new(lookback)).max(RECORDS_FROM);
        let to = slot.end.unwrap_or(LAST_DAY).min(LAST_DAY);
        (from <= to).then_some(Span { from, to })
    }

    fn days(self) -> usize {
        (self.to - self.from).num_days() as usize + 1
    }
}

fn date(day: NaiveDate) -> Date {
    Date(day)
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// `2025年1月10日`.
fn japanese_date(day: NaiveDate) -> String {
    format!("{}年{}月{}日", day.year(), day.month(), day.day())
}

/// Every patient's records, in blocks of [`RECORD_BLOCK`] numbers.
fn records(patients: &[patient::Model], stories: &[Story]) -> Vec<record::Model> {
    let mut rows = Vec::with_capacity(patients.len() * 64);
    for (n, (patient, story)) in patients.iter().zip(stories).enumerate() {
        let mut chart = Chart::new(n, patient, story);
        chart.write();
        rows.extend(chart.into_rows());
    }
    rows
}

/// One patient's records, drawn in a fixed order from the patient's stream.
struct Chart<'a> {
    n: usize,
    patient: &'a patient::Model,
    story: &'a Story,
    rng: SplitMix64,
    drafts: Vec<Draft>,
    /// The primary physician and the days of the clinic's records.
    physician: By,
    clinic: Span,
    /// Chronic conditions, the treatment and the need for care.
    conditions: Vec<&'static Dx>,
    current: Vec<&'static Drug>,
    /// Index in [`LEVELS`].
    level: usize,
    /// Needs more care than a year ago: earlier certifications and assessments
    /// show less.
    worsening: bool,
    hbs_carrier: bool,
    lives_alone: bool,
    key_person: KeyPerson,
    /// The last prescribing visit and the days prescribed.
    visit: NaiveDate,
    interval: i32,
}

impl<'a> Chart<'a> {
    fn new(n: usize, patient: &'a patient::Model, story: &'a Story) -> Self {
        let mut seeder = SplitMix64(RECORD_SEED ^ ((n as u64) << 24));
        let mut rng = SplitMix64(seeder.next_u64());
        let primary = (story.team.iter())
            .find(|s| s.role == Role::PrimaryPhysician)
            .expect("every patient has a primary physician");
        let physician = By {
            org: primary.org,
            member: primary.member.expect("the primary physician is named"),
        };
        let clinic = Span::of(primary, 365).expect("the clinic has days to write on");

        // Conditions: high blood pressure for most, then by frequency.
        let mut conditions: Vec<&'static Dx> = Vec::new();
        match n {
            // The README's patient: an ordinary, well-documented case.
            0 => conditions.extend([
                condition("hypertension"),
                condition("diabetes"),
                condition("osteoporosis"),
                condition("knee_oa"),
            ]),
            DEPRESSION => conditions.push(condition("depression")),
            SCHIZOPHRENIA => conditions.push(condition("schizophrenia")),
            _ => {}
        }
        if n != 0 && rng.chance(60) {
            conditions.push(condition("hypertension"));
        }
        let wanted = 2 + rng.below(4);
        let drug_count = |conditions: &[&Dx]| {
            conditions
                .iter()
                .filter(|d| !d.regimens[0].is_empty())
                .count()
        };
        while conditions.len() < wanted || (drug_count(&conditions) < 2 && conditions.len() < 5) {
            let candidates: Vec<&'static Dx> = (data::content().medical.chronic())
                .filter(|d| d.sex.is_none_or(|s| s == story.sex))
                .filter(|d| !conditions.iter().any(|c| c.icd10 == d.icd10))
                .collect();
            let total: u64 = candidates.iter().map(|d| d.weight()).sum();
            let mut r = rng.next_u64() % total;
            for d in candidates {
                if r < d.weight() {
                    conditions.push(d);
                    break;
                }
                r -= d.weight();
            }
        }
        let mut current: Vec<&'static Drug> = Vec::new();
        for d in &conditions {
            let regimen = rng.pick(&d.regimens);
            for key in regimen {
                let drug = drug(key);
                if !current.iter().any(|c| c.yj == drug.yj) {
                    current.push(drug);
                }
            }
        }
        for filler in data::content().medical.fillers_keys() {
            let filler = drug(filler);
            if current.len() >= 3 {
                break;
            }
            if !current.iter().any(|c| c.yj == filler.yj) && rng.chance(70) {
                current.push(filler);
            }
        }
        if current.len() < 3 && !current.iter().any(|c| c.yj == drug("magnesium_oxide").yj) {
            current.push(drug("magnesium_oxide"));
        }
        current.truncate(7);

        let frailty: usize = conditions.iter().map(|d| d.frailty).sum::<usize>().min(3);
        let mut level = ((story.age - 65) / 10 + frailty + rng.below(3)).min(6);
        if story.team.iter().any(|s| s.org == NURSING_HOME) {
            level = level.max(4);
        }
        let worsening = level > 0 && rng.chance(35);
        let hbs_carrier = n != 0 && rng.chance(4);
        let lives_alone = rng.chance(30);
        let key_person = key_person(&mut rng, patient, story, lives_alone);
        let interval = *rng.pick(&[28, 28, 28, 35, 42, 56]);
        // The last visit: the prescription runs past the demo's day for those
        // still at home; before the end for those who left.
        let visit = match story.fate {
            Fate::Active => clinic.to - Days::new(rng.below(interval as usize - 1) as u64),
            _ => clinic.to - Days::new(rng.below(interval as usize) as u64),
        }
        .max(clinic.from);
        Chart {
            n,
            patient,
            story,
            rng,
            drafts: Vec::new(),
            physician,
            clinic,
            conditions,
            current,
            level,
            worsening,
            hbs_carrier,
            lives_alone,
            key_person,
            visit,
            interval,
        }
    }

    fn write(&mut self) {
        self.conditions();
        self.allergies_and_infections();
        self.episode();
        self.prescriptions();
        self.labs();
        self.vitals_and_nursing();
        self.observations();
        self.hospital();
        self.care();
        self.dental();
        self.advance_care_plan();
        self.home_care_documents();
        // Last, and from a stream of their own: adding a template adds rows
        // and leaves every other row as it was.
        self.templates();
    }

    // -- helpers ------------------------------------------------------------

    fn has(&self, icd10: &str) -> bool {
        self.conditions.iter().any(|d| d.icd10.starts_with(icd10))
    }

    fn takes(&self, drug: &Drug) -> bool {
        self.current.iter().any(|d| d.yj == drug.yj)
    }

    fn female(&self) -> bool {
        self.story.sex == Sex::Female
    }

    fn slot(&self, role: Role) -> Option<&'a Slot> {
        let team: &'a [Slot] = &self.story.team;
        team.iter().find(|s| s.role == role)
    }

    fn slot_of(&self, org: usize) -> Option<&'a Slot> {
        let team: &'a [Slot] = &self.story.team;
        team.iter().find(|s| s.org == org)
    }

    /// The slot's member if of `profession`, else one of the organisation's.
    fn author(&mut self, slot: &Slot, profession: Prof) -> By {
        let member = match slot.member {
            Some(m) if MEMBERS[m].profession == profession => m,
            _ => pick_member(&mut self.rng, slot.org, profession)
                .expect("the organisation has a member of that profession"),
        };
        By {
            org: slot.org,
            member,
        }
    }

    fn day(&mut self, span: Span) -> NaiveDate {
        span.from + Days::new(self.rng.below(span.days()) as u64)
    }

    /// A day within `within` days after `from`, inside `span`.
    fn day_after(&mut self, span: Span, from: NaiveDate, within: usize) -> NaiveDate {
        (from + Days::new(self.rng.below(within) as u64)).clamp(span.from, span.to)
    }

    /// Up to `count` days, oldest first: the newest within `first` days of the
    /// span's end, each earlier one `gap` days before the next.
    fn series(
        &mut self,
        span: Span,
        count: usize,
        first: usize,
        (min, max): (usize, usize),
    ) -> Vec<NaiveDate> {
        let mut day = span.to - Days::new(self.rng.below(first.min(span.days())) as u64);
        let mut days = vec![day];
        while days.len() < count {
            let gap = (min + self.rng.below(max - min + 1)) as u64;
            match day.checked_sub_days(Days::new(gap)) {
                Some(earlier) if earlier >= span.from => {
                    day = earlier;
                    days.push(day);
                }
                _ => break,
            }
        }
        days.reverse();
        days
    }

    fn add(&mut self, by: By, day: NaiveDate, data: RecordData) {
        self.add_as(by, day, data, false);
    }

    fn add_as(&mut self, by: By, day: NaiveDate, data: RecordData, undisclosed: bool) {
        let at = office_hours(&mut self.rng, day);
        self.drafts.push(Draft {
            by,
            at,
            undisclosed,
            data,
        });
    }

    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        self.rng.uniform(low, high)
    }

    fn physician_name(&self) -> String {
        member_name(self.physician.member).0
    }

    fn condition_names(&self) -> String {
        let names: Vec<&str> = self.conditions.iter().map(|d| d.name.as_str()).collect();
        names.join("、")
    }

    fn prescription_lines(&self) -> String {
        let lines: Vec<String> = (self.current.iter())
            .map(|d| format!("{} {} {}", d.name, d.dose, d.frequency))
            .collect();
        lines.join("\n")
    }

    /// Patients whose prescriptions the pharmacy packs by dose (一包化).
    fn needs_packing(&self) -> bool {
        self.has("G30") || self.level >= 4
    }

    // -- medical ------------------------------------------------------------

    fn conditions(&mut self) {
        let by = self.physician;
        let clinic = self.clinic;
        for i in 0..self.conditions.len() {
            let d = self.conditions[i];
            // Uploaded when the clinic joined; a few diagnosed since.
            let (onset, day) = if self.rng.chance(20) {
                let day = self.day(clinic);
                (day, day)
            } else {
                let years = 1 + self.rng.below(15) as u64;
                let onset = RECORDS_FROM - Days::new(years * 365 + self.rng.below(365) as u64);
                (onset, self.day_after(clinic, clinic.from, 30))
            };
            let data = ConditionData {
                name: d.name.to_owned(),
                icd10: text(&d.icd10),
                clinical_status: ClinicalStatus::Active,
                onset: Some(date(onset)),
                resolved_on: None,
                sensitivity: d.sensitivity,
                note: d.note.clone(),
                codings: Vec::new(),
            };
            self.add(by, day, RecordData::Condition(data));
        }
    }

    /// An illness that has passed, treated at home: a short course of a drug.
    fn episode(&mut self) {
        let by = self.physician;
        let clinic = self.clinic;
        if self.rng.chance(30) && clinic.days() > 60 {
            let texts = &data::content().records.episode;
            let allergic = self.drafts.iter().any(|d| {
                matches!(&d.data, RecordData::Allergy(a) if a.substance.contains(&texts.antibiotic_allergy))
            });
            let mut i = self.rng.below(texts.illness.len());
            if texts.illness[i]
                .sex
                .is_some_and(|sex| sex != self.story.sex)
            {
                i += 1;
            }
            let illness = &texts.illness[i];
            let (name, icd10) = (illness.name.as_str(), illness.icd10.as_str());
            let days = illness.course.as_ref().map_or(0, |c| c.days);
            let drug = illness.course.as_ref().map(|c| match &c.if_allergic {
                Some(instead) if allergic => drug(instead),
                _ => drug(&c.drug),
            });
            let onset = self.day(Span {
                from: clinic.from,
                to: clinic.to - Days::new(30),
            });
            let resolved = onset + Days::new(7 + self.rng.below(14) as u64);
            let note = match drug {
                None => &texts.treated_without_drug,
                Some(_) => &texts.treated_with_drug,
            };
            let data = ConditionData {
                name: name.to_owned(),
                icd10: text(icd10),
                clinical_status: ClinicalStatus::Resolved,
                onset: Some(date(onset)),
                resolved_on: Some(date(resolved)),
                sensitivity: None,
                note: text(note),
                codings: Vec::new(),
            };
            self.add(by, resolved, RecordData::Condition(data));
            if let Some(drug) = drug {
                let rx = self.prescription(drug, onset, days, Term::Ended);
                self.add(by, onset, rx);
                self.dispense(drug, onset, days);
            }
        }
    }

    fn allergies_and_infections(&mut self) {
        let texts = &data::content().records;
        let allergies = &texts.allergy;
        let by = self.physician;
        let clinic = self.clinic;
        let count = match (self.n, self.rng.below(10)) {
            (0, _) => 1,
            (_, 0..=5) => 0,
            (_, 6..=8) => 1,
            _ => 2,
        };
        let first = if self.n == 0 {
            0
        } else {
            self.rng.below(allergies.len())
        };
        let nurse = self.slot(Role::VisitingNurse);
        for k in 0..count {
            let mut i = (first + k * 3) % allergies.len();
            // Not to the painkiller the patient is given.
            if allergies[i].unless.iter().any(|code| self.has(code)) {
                i += 1;
            }
            let allergy = &allergies[i];
            // Nurses record allergies too (a family's account at a visit).
            let (by, span) = match nurse.and_then(|s| Some((s, Span::of(s, 0)?))) {
                Some((slot, span)) if self.rng.chance(20) => (self.author(slot, Prof::Nurse), span),
                _ => (by, clinic),
            };
            let day = self.day_after(span, span.from, 90);
            let data = AllergyData {
                substance: allergy.substance.clone(),
                allergy_type: allergy.allergy_type,
                reaction: text(&allergy.reaction),
                severity: allergy.severity,
                codings: Vec::new(),
            };
            self.add(by, day, RecordData::Allergy(data));
        }
        if self.hbs_carrier {
            let day = self.day_after(clinic, clinic.from, 60);
            let data = InfectionData {
                pathogen: Pathogen::HbsAntigen,
                other_name: None,
                result: InfectionResult::Positive,
                tested_on: Some(date(day)),
                note: text(&texts.infection.hbs_carrier_note),
                codings: Vec::new(),
            };
            self.add(by, day, RecordData::Infection(data));
        }
        if self.n != 0 && self.rng.chance(3) {
            let day = self.day(clinic);
            let data = InfectionData {
                pathogen: Pathogen::Mrsa,
                other_name: None,
                result: InfectionResult::Positive,
                tested_on: Some(date(day)),
                note: text(&texts.infection.mrsa_note),
                codings: Vec::new(),
            };
            self.add(by, day, RecordData::Infection(data));
        }
        // At most one contraindication: the first that applies and wins its
        // chance.
        let mut contraindication = None;
        for c in &texts.drug_contraindication {
            let applies = c.when.as_ref().is_none_or(|code| self.has(code))
                && c.when_taking
                    .as_ref()
                    .is_none_or(|key| self.takes(drug(key)));
            if applies && self.rng.chance(c.chance) {
                let yj = c.yj_of.as_ref().map(|key| drug(key).yj.as_str());
                contraindication = Some((c.drug.as_str(), yj, c.reason.as_str()));
                break;
            }
        }
        if let Some((drug, yj, reason)) = contraindication {
            // The pharmacist records it after checking with the physician, or
            // the physician does.
            let (by, span) = match self.slot(Role::Pharmacy) {
                Some(slot) if self.rng.chance(30) => match Span::of(slot, 180) {
                    Some(span) => (self.author(slot, Prof::Pharmacist), span),
                    None => (by, clinic),
                },
                _ => (by, clinic),
            };
            let day = self.day_after(span, span.from, 120);
            let data = DrugContraindicationData {
                drug: drug.to_owned(),
                yj_code: yj.map(str::to_owned),
                reason: reason.to_owned(),
                codings: Vec::new(),
            };
            self.add(by, day, RecordData::DrugContraindication(data));
        }
    }

    /// A prescription of `drug` from `start`: `days` days, ended or current.
    fn prescription(&mut self, drug: &Drug, start: NaiveDate, days: i32, term: Term) -> RecordData {
        let weekly = matches!(drug.supply, Supply::Weekly(_));
        let last = start + Days::new(days as u64 - 1);
        // Weekly tablets count doses (4 weeks: 4) and give the last day.
        let count = if weekly { (days / 7).max(1) } else { days };
        let (days_field, end) = match (term, weekly, self.rng.below(20)) {
            (Term::Continuing, _, _) => (0, None),
            (Term::Stopped(on), _, _) => (count, Some(last.min(on))),
            // Most give both the days and the last day; some only the days;
            // some current ones neither.
            (Term::Ended, true, _) | (Term::Current, true, 0..=11) => (count, Some(last)),
            (Term::Current, true, _) => (0, None),
            (_, false, 0..=8) => (days, Some(last)),
            (Term::Ended, false, _) | (Term::Current, false, 9..=12) => (days, None),
            (Term::Current, false, _) => (0, None),
        };
        RecordData::Prescription(PrescriptionData {
            medication_type: if drug.route == MedicationRoute::Injection {
                MedicationType::Injection
            } else {
                MedicationType::Prescription
            },
            drug: drug.name.to_owned(),
            yj_code: text(&drug.yj),
            dose: drug.dose.to_owned(),
            route: drug.route,
            frequency: drug.frequency.to_owned(),
            days: (days_field > 0).then_some(days_field),
            start_date: date(start),
            end_date: end.map(date),
            prescriber: Some(self.physician_name()),
            codings: Vec::new(),
        })
    }

    fn prescriptions(&mut self) {
        let by = self.physician;
        let (visit, interval) = (self.visit, self.interval);
        for i in 0..self.current.len() {
            let drug = self.current[i];
            // The first drug is a long-term order (継続), in force whatever
            // the day the demo is looked at; nothing runs past a patient's
            // death or move.
            let term = match (self.story.fate.exit(), i) {
                (Some(exit), _) => Term::Stopped(exit),
                (None, 0) => Term::Continuing,
                (None, _) => Term::Current,
            };
            let rx = self.prescription(drug, visit, interval, term);
            self.add(by, visit, rx);
        }
        // A painkiller stopped when the kidneys or the stomach objected.
        let sore = self.has("M17") || self.has("M48");
        let count = self
            .drafts
            .iter()
            .filter(|d| matches!(d.data, RecordData::Prescription(_)))
            .count();
        if sore && count < 8 && self.rng.chance(50) && self.clinic.days() > 120 {
            let clinic = self.clinic;
            let start = self.day_after(clinic, clinic.from, 60);
            let rx = self.prescription(drug("loxoprofen"), start, 14, Term::Ended);
            self.add(by, start, rx);
            self.dispense(drug("loxoprofen"), start, 14);
        }
        // The pharmacy fills the current prescriptions every 4 to 8 weeks.
        let Some(span) = self.slot(Role::Pharmacy).and_then(|s| Span::of(s, 180)) else {
            return;
        };
        let fills = 2 + self.rng.below(3);
        let mut day = visit;
        for k in 0..fills {
            if day < span.from || day > span.to {
                break;
            }
            for i in 0..self.current.len() {
                let drug = self.current[i];
                self.dispense(drug, day, interval);
            }
            if k == 0 && self.level >= 2 {
                self.medication_report(day);
            }
            let gap = interval as u64 - 3 + self.rng.below(7) as u64;
            day = day - Days::new(gap);
        }
    }

    /// The pharmacy's dispensing of `drug` on `day`, if the pharmacy is on the
    /// team then.
    fn dispense(&mut self, drug: &Drug, day: NaiveDate, days: i32) {
        let Some(slot) = self.slot(Role::Pharmacy) else {
            return;
        };
        let Some(span) = Span::of(slot, 180) else {
            return;
        };
        if day < span.from || day > span.to {
            return;
        }
        let by = self.author(slot, Prof::Pharmacist);
        let weekly = matches!(drug.supply, Supply::Weekly(_));
        let texts = &data::content().records.dispensing;
        let note = match drug.route {
            MedicationRoute::Oral if self.needs_packing() && !weekly => {
                text(&texts.one_dose_packaging)
            }
            MedicationRoute::Injection => text(&texts.injection),
            _ => None,
        };
        let data = DispensingData {
            drug: drug.name.to_owned(),
            yj_code: text(&drug.yj),
            quantity: drug.supply.quantity(days),
            unit: drug.unit.to_owned(),
            days: Some(if weekly { (days / 7).max(1) } else { days }),
            note,
            codings: Vec::new(),
        };
        self.add(by, day, RecordData::Dispensing(data));
    }

    fn medication_report(&mut self, filled: NaiveDate) {
        let Some(slot) = self.slot(Role::Pharmacy) else {
            return;
        };
        let Some(span) = Span::of(slot, 0) else {
            return;
        };
        let by = self.author(slot, Prof::Pharmacist);
        let reports = 1 + self.rng.below(3);
        let dementia = self.has("G30");
        let first_drug = &self.current[0].name;
        for k in 0..reports {
            let day = filled
                .checked_sub_days(Days::new(k as u64 * 28))
                .map(|d| d + Days::new(self.rng.below(4) as u64));
            let Some(day) = day.filter(|d| *d >= span.from && *d <= span.to) else {
                break;
            };
            let adherence = match (dementia, self.rng.below(10)) {
                (true, 0..=3) | (false, 0..=7) => Rating::Good,
                (true, 4..=7) | (false, 8) => Rating::Fair,
                _ => Rating::Poor,
            };
            let texts = data::content()
                .records
                .medication_management_report
                .of(adherence);
            let leftover =
                (texts.leftover.as_ref()).map(|t| data::fill(t, &[("drug", first_drug)]));
            let data = MedicationManagementReportData {
                adherence,
                leftover_medication: leftover,
                problems: texts.problems.clone(),
                actions: text(&texts.actions),
            };
            self.add(by, day, RecordData::MedicationManagementReport(data));
        }
    }

    /// A laboratory result with the laboratory's flag for the value shown.
    fn lab(&self, lab: &Lab, value: f64) -> RecordData {
        let (low, high) = lab.range_of(self.female());
        let shown = format!("{value:.*}", lab.decimals);
        let v: f64 = shown.parse().expect("a formatted number reads back");
        let abnormal = match (low, high) {
            (Some(low), _) if v < low => AbnormalFlag::Low,
            (_, Some(high)) if v > high => AbnormalFlag::High,
            _ => AbnormalFlag::Normal,
        };
        RecordData::LabResult(LabResultData {
            code: text(&lab.code),
            name: lab.name.to_owned(),
            value: shown,
            numeric_value: Some(v),
            unit: lab.unit.clone(),
            reference_low: low,
            reference_high: high,
            abnormal,
            codings: Vec::new(),
        })
    }

    /// Blood tests at the clinic every one to three months: renal function
    /// every time, a general panel every other time, and what the conditions
    /// and drugs call for.
    fn labs(&mut self) {
        let by = self.physician;
        let count = 3 + self.rng.below(3);
        let days = self.series(self.clinic, count, 40, (30, 90));
        let female = self.female();
        let ckd = self.has("N18");
        let cre0 = match (ckd, female) {
            (true, true) => self.uniform(1.0, 1.5),
            (true, false) => self.uniform(1.3, 2.0),
            (false, true) => self.uniform(0.5, 0.8),
            (false, false) => self.uniform(0.72, 1.05),
        };
        let cre_trend = if ckd || self.worsening { 0.04 } else { 0.0 };
        let hba1c0 = self.uniform(6.5, 8.0);
        let bnp0 = self.uniform(90.0, 450.0);
        let ldl0 = self.uniform(80.0, 135.0);
        let ua0 = self.uniform(5.0, 7.4);
        let inr0 = self.uniform(1.7, 2.6);
        let ast0 = if self.hbs_carrier {
            self.uniform(28.0, 45.0)
        } else {
            self.uniform(15.0, 30.0)
        };
        let alt0 = if female {
            self.uniform(8.0, 22.0)
        } else {
            self.uniform(10.0, 36.0)
        };
        let hb0 = if female {
            self.uniform(10.4, 13.4)
        } else {
            self.uniform(11.0, 14.8)
        };
        let alb0 = self.uniform(3.4, 4.3) - 0.05 * self.level as f64;
        let age = self.story.age as f64;
        let last = days.len() - 1;
        for (k, &day) in days.iter().enumerate() {
            let back = (last - k) as f64;
            let cre = (cre0 - cre_trend * back + self.uniform(-0.06, 0.06)).max(0.35);
            let cre = (cre * 100.0).round() / 100.0;
            let sex_factor = if female { 0.739 } else { 1.0 };
            let egfr = 194.0 * cre.powf(-1.094) * age.powf(-0.287) * sex_factor;
            let mut results = vec![
                self.lab(lab_test("creatinine"), cre),
                self.lab(lab_test("egfr"), egfr),
            ];
            if self.has("E11") {
                let v = hba1c0 + self.uniform(-0.3, 0.3);
                results.push(self.lab(lab_test("hba1c"), v));
            }
            if self.has("I50") {
                let v = bnp0 * (1.0 + self.uniform(-0.25, 0.25)) + 15.0 * back;
                results.push(self.lab(lab_test("bnp"), v));
            }
            if self.takes(drug("warfarin")) {
                let v = inr0 + self.uniform(-0.3, 0.3);
                results.push(self.lab(lab_test("pt_inr"), v));
            }
            if (last - k).is_multiple_of(2) {
                let v = ast0 + self.uniform(-4.0, 4.0);
                results.push(self.lab(lab_test("ast"), v));
                let v = alt0 + self.uniform(-4.0, 4.0);
                results.push(self.lab(lab_test("alt"), v));
                let v = hb0 + self.uniform(-0.4, 0.4) + 0.1 * back;
                results.push(self.lab(lab_test("hemoglobin"), v));
                let v = alb0
                    + self.uniform(-0.15, 0.15)
                    + if self.worsening { 0.08 * back } else { 0.0 };
                results.push(self.lab(lab_test("albumin"), v));
                if self.has("E78") {
                    let v = ldl0 + self.uniform(-12.0, 12.0);
                    results.push(self.lab(lab_test("ldl"), v));
                }
                if self.has("E79") {
                    let v = ua0 + self.uniform(-0.5, 0.5);
                    results.push(self.lab(lab_test("uric_acid"), v));
                }
            }
            for data in results {
                self.add(by, day, data);
            }
        }
    }

    /// Vital signs (by the visiting nurse, else at the clinic's visits), the
    /// visiting nurse's monthly reports, and the last one of a death at home.
    fn vitals_and_nursing(&mut self) {
        let hypertensive = self.has("I10");
        let breathless = self.has("J44") || self.has("I50");
        let sys0 = if hypertensive {
            self.uniform(128.0, 148.0)
        } else {
            self.uniform(110.0, 132.0)
        };
        let pulse0 = if self.has("I48") {
            self.uniform(72.0, 96.0)
        } else {
            self.uniform(60.0, 84.0)
        };
        let spo2_0 = if breathless {
            self.uniform(92.0, 95.5)
        } else {
            self.uniform(95.0, 98.5)
        };
        let weight0 = if self.female() {
            self.uniform(38.0, 58.0)
        } else {
            self.uniform(50.0, 70.0)
        };
        let nurse = self
            .slot(Role::VisitingNurse)
            .and_then(|s| Some((s, Span::of(s, 0)?)));
        let (by, span, count, gap) = match nurse {
            Some((slot, span)) => (
                self.author(slot, Prof::Nurse),
                span,
                3 + self.rng.below(3),
                (14, 45),
            ),
            None => {
                // The in-home-care clinic's own nurse, else the physician.
                let by = match pick_member(&mut self.rng, self.physician.org, Prof::Nurse) {
                    Some(member) => By {
                        org: self.physician.org,
                        member,
                    },
                    None => self.physician,
                };
                (by, self.clinic, 3 + self.rng.below(3), (21, 45))
            }
        };
        let days = self.series(span, count, 20, gap);
        let last = days.len() - 1;
        for (k, &day) in days.iter().enumerate() {
            let back = (last - k) as f64;
            let systolic = (sys0 + self.uniform(-8.0, 8.0)).round();
            let diastolic = (systolic * self.uniform(0.55, 0.64)).round();
            let weight =
                weight0 + self.uniform(-0.6, 0.6) + if self.worsening { 0.4 * back } else { 0.0 };
            let data = VitalSignsData {
                temperature: Some(((36.0 + self.uniform(0.0, 0.9)) * 10.0).round() / 10.0),
                systolic: Some(systolic),
                diastolic: Some(diastolic),
                pulse: Some((pulse0 + self.uniform(-6.0, 6.0)).round()),
                respiratory_rate: self
                    .rng
                    .chance(60)
                    .then(|| (14.0 + self.uniform(0.0, 6.0)).round()),
                spo2: Some((spo2_0 + self.uniform(-1.0, 1.0)).round().min(100.0)),
                weight_kg: self
                    .rng
                    .chance(50)
                    .then_some((weight * 10.0).round() / 10.0),
            };
            self.add(by, day, RecordData::VitalSigns(data));
        }
        let Some((slot, span)) = nurse else {
            return;
        };
        let texts = &data::content().records.visiting_nurse_report;
        let reports = 2 + self.rng.below(3);
        let mut days = self.series(span, reports, 30, (26, 35));
        let died_at_home = matches!(self.story.fate, Fate::Deceased(_, PlaceOfDeath::Home));
        if died_at_home {
            days.pop();
        }
        for day in days {
            let by = self.author(slot, Prof::Nurse);
            let lo = sys0 as i32 - 4 - self.rng.below(8) as i32;
            let hi = sys0 as i32 + 4 + self.rng.below(8) as i32;
            let mut condition = data::fill(
                &texts.condition,
                &[
                    ("low", &lo.to_string()),
                    ("high", &hi.to_string()),
                    (
                        "low_diastolic",
                        &((f64::from(lo) * 0.58) as i32).to_string(),
                    ),
                    (
                        "high_diastolic",
                        &((f64::from(hi) * 0.6) as i32).to_string(),
                    ),
                    ("spo2", &spo2_0.round().to_string()),
                ],
            );
            let mut care: Vec<&str> = texts.usual_care.iter().map(String::as_str).collect();
            for r in &texts.remarks {
                if self.has(&r.when) {
                    condition.push_str(&r.remark);
                    care.push(&r.care);
                }
            }
            if self.takes(drug("glargine")) {
                care.push(&texts.insulin_care);
            }
            if self.level >= 4 {
                condition.push_str(&texts.bedridden_remark);
                care.extend(texts.bedridden_care.iter().map(String::as_str));
            }
            if condition.chars().count() < 40 {
                condition.push_str(&texts.uneventful);
            }
            let note = match self.rng.below(8) {
                k if k < texts.notes.len() => text(&texts.notes[k]),
                _ => None,
            };
            let data = VisitingNurseReportData {
                condition,
                care_provided: care.join("、"),
                note,
            };
            self.add(by, day, RecordData::VisitingNurseReport(data));
        }
        if let (true, Some(day)) = (died_at_home, self.story.fate.exit()) {
            let by = self.author(slot, Prof::Nurse);
            let death = &texts.death_at_home;
            let data = VisitingNurseReportData {
                condition: data::fill(&death.condition, &[("date", &japanese_date(day))]),
                care_provided: death.care_provided.clone(),
                note: text(&death.note),
            };
            self.add(by, day, RecordData::VisitingNurseReport(data));
        }
    }

    /// What care workers notice: the home-helper station's, or the nursing
    /// home's (short stays).
    fn observations(&mut self) {
        let texts = &data::content().records.daily_observation;
        let (concerns, ordinary) = (&texts.concerns, &texts.ordinary);
        let slot = self.slot_of(HELPERS).or_else(|| self.slot_of(NURSING_HOME));
        let Some((slot, span)) = slot.and_then(|s| Some((s, Span::of(s, 0)?))) else {
            return;
        };
        let count = 2 + self.rng.below(4);
        let days = self.series(span, count, 20, (7, 40));
        let mut first = self.rng.below(concerns.len() * ordinary.len());
        for day in days {
            let by = self.author(slot, Prof::CareWorker);
            let concern = self.rng.chance(55);
            let observation = if concern {
                &concerns[first % concerns.len()]
            } else {
                &ordinary[first % ordinary.len()]
            };
            first += 1 + self.rng.below(3);
            let data = DailyObservationData {
                observation: observation.clone(),
                concern,
            };
            self.add(by, day, RecordData::DailyObservation(data));
        }
    }

    /// The hospital's records: a past admission's discharge summary, the
    /// clinic's referral letter for back-up beds, and the undisclosed cancer.
    fn hospital(&mut self) {
        let Some(slot) = self.slot(Role::Hospital) else {
            return;
        };
        let Some(span) = Span::of(slot, 0) else {
            return;
        };
        let hospital_name = &ORGS[slot.org].name;
        let texts = &data::content().records.hospital;
        let admission = slot.end.is_some() && matches!(self.story.fate, Fate::Active);
        if admission {
            self.admission(slot, span);
            return;
        }
        // Registered for back-up beds (後方支援病床): the clinic's letter.
        let day = self.day_after(span, span.from, 30);
        let physician = self.physician_name();
        let data = ClinicalDocumentData {
            document_type: ClinicalDocumentType::ReferralLetter,
            title: data::fill(&texts.referral_title, &[("hospital", hospital_name)]),
            text: data::fill(
                &texts.referral,
                &[
                    ("conditions", &self.condition_names()),
                    (
                        "level",
                        &data::content().records.care.level_names[self.level],
                    ),
                    ("prescriptions", &self.prescription_lines()),
                ],
            ),
            author_name: Some(physician),
            attachments: Vec::new(),
            codings: Vec::new(),
        };
        self.add(self.physician, day, RecordData::ClinicalDocument(data));
        if self.n == UNDISCLOSED_CANCER {
            self.undisclosed_cancer(slot, span);
        }
    }

    /// A few weeks in hospital: the illness, its imaging, the summaries.
    fn admission(&mut self, slot: &Slot, span: Span) {
        let doctor = self.author(slot, Prof::Physician);
        let (admitted, discharged) = (span.from, span.to);
        let texts = &data::content().records.hospital;
        let pneumonia = self.rng.chance(55);
        let stay = if pneumonia {
            &texts.pneumonia
        } else {
            &texts.fracture
        };
        let name = stay.name.as_str();
        let data = ImagingReportData {
            modality: stay.imaging.modality,
            body_site: stay.imaging.body_site.clone(),
            findings: stay.imaging.findings.clone(),
            impression: text(&stay.imaging.impression),
        };
        self.add(doctor, admitted, RecordData::ImagingReport(data));
        if !pneumonia {
            // Screening before the operation.
            for pathogen in [Pathogen::HbsAntigen, Pathogen::HcvAntibody] {
                let data = InfectionData {
                    pathogen,
                    other_name: None,
                    result: if self.hbs_carrier && pathogen == Pathogen::HbsAntigen {
                        InfectionResult::Positive
                    } else {
                        InfectionResult::Negative
                    },
                    tested_on: Some(date(admitted)),
                    note: text(&data::content().records.infection.preoperative_note),
                    codings: Vec::new(),
                };
                self.add(doctor, admitted, RecordData::Infection(data));
            }
        }
        let data = ConditionData {
            name: name.to_owned(),
            icd10: text(&stay.icd10),
            clinical_status: ClinicalStatus::Resolved,
            onset: Some(date(admitted)),
            resolved_on: Some(date(discharged)),
            sensitivity: None,
            note: text(&texts.resolved_note),
            codings: Vec::new(),
        };
        self.add(doctor, discharged, RecordData::Condition(data));
        let text_body = data::fill(
            &texts.discharge_summary,
            &[
                ("admitted", &japanese_date(admitted)),
                ("discharged", &japanese_date(discharged)),
                ("name", name),
                ("conditions", &self.condition_names()),
                ("course", &stay.course),
            ],
        );
        let data = ClinicalDocumentData {
            document_type: ClinicalDocumentType::DischargeSummary,
            title: data::fill(&texts.discharge_summary_title, &[("name", name)]),
            text: text_body,
            author_name: Some(member_name(doctor.member).0),
            attachments: Vec::new(),
            codings: Vec::new(),
        };
        self.add(doctor, discharged, RecordData::ClinicalDocument(data));
        // The ward's nurses write for the visiting nurses.
        if let Some(member) = pick_member(&mut self.rng, slot.org, Prof::Nurse) {
            let by = By {
                org: slot.org,
                member,
            };
            let walking = &data::content().records.care.walking[(self.level / 2).min(3)];
            let data = ClinicalDocumentData {
                document_type: ClinicalDocumentType::NursingSummary,
                title: data::fill(&texts.nursing_summary_title, &[("name", name)]),
                text: data::fill(&texts.nursing_summary, &[("walking", walking)]),
                author_name: Some(member_name(member).0),
                attachments: Vec::new(),
                codings: Vec::new(),
            };
            self.add(by, discharged, RecordData::ClinicalDocument(data));
        }
    }

    /// Patient [`UNDISCLOSED_CANCER`]: the family has been told, the patient
    /// not; every record that names the cancer is marked undisclosed.
    fn undisclosed_cancer(&mut self, slot: &Slot, span: Span) {
        let doctor = self.author(slot, Prof::Physician);
        let found = self.day(Span {
            from: span.from.max(LAST_DAY - Days::new(200)),
            to: LAST_DAY - Days::new(60),
        });
        let texts = &data::content().records.undisclosed_cancer;
        let data = ImagingReportData {
            modality: ImagingModality::Endoscopy,
            body_site: texts.body_site.clone(),
            findings: texts.findings.clone(),
            impression: text(&texts.impression),
        };
        self.add_as(doctor, found, RecordData::ImagingReport(data), true);
        let diagnosed = found + Days::new(10);
        let data = ConditionData {
            name: condition("gastric_cancer").name.clone(),
            icd10: text(&condition("gastric_cancer").icd10),
            clinical_status: ClinicalStatus::Active,
            onset: Some(date(diagnosed)),
            resolved_on: None,
            sensitivity: None,
            note: condition("gastric_cancer").note.clone(),
            codings: Vec::new(),
        };
        self.add_as(doctor, diagnosed, RecordData::Condition(data), true);
        let clinic_name = &ORGS[self.physician.org].name;
        let data = ClinicalDocumentData {
            document_type: ClinicalDocumentType::ReferralLetter,
            title: data::fill(
                &texts.letter_title,
                &[
                    ("clinic", clinic_name),
                    ("physician", &self.physician_name()),
                ],
            ),
            text: texts.letter.clone(),
            author_name: Some(member_name(doctor.member).0),
            attachments: Vec::new(),
            codings: Vec::new(),
        };
        self.add_as(
            doctor,
            diagnosed + Days::new(2),
            RecordData::ClinicalDocument(data),
            true,
        );
    }

    // -- care ----------------------------------------------------------------

    /// The services of a care plan at `level`, each with the slot of the
    /// team's provider when the use is recorded (利用サービス).
    fn planned_services(&self, level: usize) -> Vec<(PlannedService, Option<&'a Slot>)> {
        let plan = &data::content().records.care_plan;
        let service = |s: (&str, &str), org: Option<usize>| PlannedService {
            service_type: s.0.to_owned(),
            provider: org.map(|o| ORGS[o].name.to_owned()),
            frequency: s.1.to_owned(),
        };
        let fixed =
            |s: &'static data::PlannedServiceText| (s.service.as_str(), s.frequency.as_str());
        let by_level = |table: &'static [data::LeveledService]| {
            let s = data::at_level(table, level);
            (s.service.as_str(), s.frequency.as_str())
        };
        let mut out = Vec::new();
        if let Some(slot) = self.slot_of(HELPERS) {
            out.push((
                service(by_level(&plan.home_help), Some(HELPERS)),
                Some(slot),
            ));
        }
        if let Some(slot) = self.slot_of(DAY_SERVICE) {
            out.push((
                service(by_level(&plan.day_service), Some(DAY_SERVICE)),
                Some(slot),
            ));
        }
        if let Some(slot) = self.slot(Role::VisitingNurse) {
            out.push((
                service(by_level(&plan.visiting_nurse), Some(slot.org)),
                Some(slot),
            ));
        }
        if let Some(slot) = self.slot(Role::Rehabilitation) {
            out.push((
                service(fixed(&plan.rehabilitation), Some(REHAB)),
                Some(slot),
            ));
        }
        if let Some(slot) = self.slot_of(NURSING_HOME) {
            out.push((
                service(fixed(&plan.short_stay), Some(NURSING_HOME)),
                Some(slot),
            ));
        }
        // At 要支援1 only when nothing else is planned.
        if level >= 1 || out.is_empty() {
            out.push((service(by_level(&plan.equipment), None), None));
        }
        if level >= 2
            && let Some(slot) = self.slot(Role::Pharmacy)
        {
            out.push((service(fixed(&plan.pharmacist), Some(slot.org)), None));
        }
        if let Some(slot) = self.slot(Role::Dentist) {
            out.push((service(fixed(&plan.dentist), Some(slot.org)), None));
        }
        out
    }

    fn care_plan(&mut self, level: usize) -> CarePlanData {
        let plan = &data::content().records.care_plan;
        let goals = &plan.long_term;
        let long_term = if level >= 5 {
            &goals.bedridden
        } else if self.has("G30") {
            &goals.dementia
        } else if self.has("I69") || self.has("G20") || self.has("M17") {
            &goals.falls
        } else if level < 2 {
            &goals.prevention
        } else {
            &goals.default
        };
        let goals = &plan.short_term;
        let mut short: Vec<&str> = Vec::new();
        if self.has("G30") || level >= 3 {
            short.push(&goals.medication);
        }
        if self.slot_of(DAY_SERVICE).is_some() {
            short.push(&goals.day_service);
        }
        if self.slot_of(HELPERS).is_some() {
            short.push(&goals.home_help);
        }
        if self.has("I50") && self.slot(Role::VisitingNurse).is_some() {
            short.push(&goals.heart_failure);
        }
        if self.has("E11") {
            short.push(&goals.diabetes);
        }
        if self.has("M17") {
            short.push(&goals.knee);
        }
        if self.slot(Role::Dentist).is_some() {
            short.push(&goals.oral_care);
        }
        if short.len() < 2 {
            short.push(&goals.fallback);
        }
        short.truncate(3 + self.rng.below(2));
        CarePlanData {
            long_term_goals: long_term.to_owned(),
            short_term_goals: short.join("\n"),
            services: self
                .planned_services(level)
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
        }
    }

    fn adl(&mut self, level: usize) -> AdlAssessmentData {
        const BASE: [i32; 7] = [0, 0, 1, 1, 2, 2, 3];
        let base = BASE[level];
        let mut at = |offset: i32| {
            let jitter = if self.rng.chance(30) {
                self.rng.below(3) as i32 - 1
            } else {
                0
            };
            ADL_LEVELS[(base + offset + jitter).clamp(0, 3) as usize]
        };
        let (eating, excretion, transfer) = (at(-1), at(0), at(0));
        let (walking, bathing, dressing) = (at(0), at(1), at(0));
        let cognition = match (self.has("G30"), self.has("F20")) {
            (true, _) if level >= 5 => AdlLevel::FullAssistance,
            (true, _) => AdlLevel::PartialAssistance,
            (_, true) => AdlLevel::Supervision,
            _ if level >= 4 => AdlLevel::Supervision,
            _ => AdlLevel::Independent,
        };
        let walks = ADL_LEVELS.iter().position(|l| *l == walking).unwrap_or(0);
        AdlAssessmentData {
            eating: Some(eating),
            excretion: Some(excretion),
            transfer: Some(transfer),
            walking: Some(walking),
            bathing: Some(bathing),
            dressing: Some(dressing),
            cognition: Some(cognition),
            note: text(&data::content().records.care.walking[walks]),
        }
    }

    fn care(&mut self) {
        let slot = self
            .slot(Role::CareManager)
            .expect("every patient has a care manager");
        let span = Span::of(slot, 180).expect("the care office has days to write on");
        let cm = self.author(slot, Prof::CareManager);
        let insurer = match self.story.area {
            Area::City => "019951",
            Area::Town => "019962",
        };
        let previous_level = if self.worsening {
            self.level - 1
        } else {
            self.level
        };

        // The certification in force and, for most, the one before it.
        let valid_from = self.day(Span {
            from: span.from.max(span.to - Days::new(420)),
            to: span.to - Days::new(30),
        });
        let year_before = valid_from - Months::new(12);
        let previous = year_before + Days::new(30) >= span.from && self.rng.chance(65);
        let months = if !previous && valid_from + Months::new(12) > LAST_DAY {
            12
        } else {
            *self.rng.pick(&[24, 36])
        };
        let mut certified = Vec::new();
        if previous {
            certified.push((year_before, valid_from - Days::new(1), previous_level));
        }
        let valid_to = valid_from + Months::new(months) - Days::new(1);
        certified.push((valid_from, valid_to, self.level));
        for &(from, to, level) in &certified {
            let decided = (from + Days::new(25 + self.rng.below(10) as u64)).min(span.to);
            let data = CareCertificationData {
                level: LEVELS[level],
                valid_from: date(from),
                valid_to: date(to),
                status: CertificationStatus::Certified,
                insurer_number: text(insurer),
                // The ranks follow the level: 要支援 walk outdoors with help
                // (J2–A1), 要介護5 is bedridden all day (C2).
                bedridden_rank: Some(
                    [
                        BedriddenRank::J2,
                        BedriddenRank::A1,
                        BedriddenRank::A1,
                        BedriddenRank::A2,
                        BedriddenRank::B1,
                        BedriddenRank::B2,
                        BedriddenRank::C2,
                    ][level.min(6)],
                ),
                dementia_rank: Some(if self.has("G30") || self.has("F0") {
                    [
                        DementiaRank::IIa,
                        DementiaRank::IIb,
                        DementiaRank::IIIa,
                        DementiaRank::IV,
                    ][(level / 2).min(3)]
                } else {
                    DementiaRank::Independent
                }),
            };
            // The primary physician's opinion precedes the decision (主治医意見書).
            let opinion_day = (from + Days::new(10)).max(RECORDS_FROM).min(decided);
            let diagnoses = self
                .conditions
                .iter()
                .take(3)
                .map(|d| d.name.to_owned())
                .collect();
            let opinion = PhysicianOpinionData {
                purpose: if previous && from == valid_from {
                    OpinionPurpose::Renewal
                } else {
                    OpinionPurpose::New
                },
                written_on: date(opinion_day),
                diagnoses,
                bedridden_rank: data.bedridden_rank,
                dementia_rank: data.dementia_rank,
                special_medical_care: self
                    .conditions
                    .iter()
                    .flat_map(|d| d.special_medical_care.iter().cloned())
                    .collect(),
                care_cautions: text(&data::content().records.physician_opinion.care_cautions),
                remarks: None,
                of_patient: Default::default(),
            };
            let physician = self.physician;
            self.add(
                physician,
                opinion_day,
                RecordData::PhysicianOpinion(opinion),
            );
            self.add(cm, decided, RecordData::CareCertification(data));
            // The plan is revised after each certification.
            let planned = self.day_after(span, decided, 14);
            let plan = self.care_plan(level);
            self.add(cm, planned, RecordData::CarePlan(plan));
        }

        // The first assessment (フェイスシート), home and family.
        let first = self.day_after(span, span.from, 30);
        let home = &data::content().records.home_environment;
        let (housing, barriers) = match (self.story.area, self.rng.below(10)) {
            (Area::Town, 0) | (Area::City, 0..=1) => {
                (HousingType::PublicHousing, &home.barriers.public_housing)
            }
            (Area::City, 2..=3) => (HousingType::Apartment, &home.barriers.apartment),
            (Area::City, 4) if self.lives_alone => (
                HousingType::ServicedHousing,
                &home.barriers.serviced_housing,
            ),
            _ => (HousingType::DetachedHouse, &home.barriers.detached_house),
        };
        let note = match (self.story.area, self.has("G30")) {
            (_, true) => &home.note_dementia,
            (Area::Town, false) => &home.note_town,
            (Area::City, false) => &home.note_city,
        };
        let texts = &data::content().records.assessment;
        let living = if self.lives_alone {
            &texts.lives_alone
        } else {
            &texts.with_family
        };
        let sex = if self.female() {
            &texts.female
        } else {
            &texts.male
        };
        let data = AssessmentData {
            summary: data::fill(
                &texts.summary,
                &[
                    ("age", &self.story.age.to_string()),
                    ("sex", sex),
                    ("conditions", &self.condition_names()),
                    (
                        "care_level",
                        &data::content().records.care.level_names[previous_level],
                    ),
                    ("key_person", &self.key_person.name),
                    ("relationship", self.key_person.relationship),
                ],
            ),
            living_situation: Some(data::fill(
                &texts.living_situation,
                &[("living", living), ("family", self.key_person.note)],
            )),
            concerns: text(match (self.has("G30"), self.level >= 4) {
                (true, _) => &texts.concerns_dementia,
                (false, true) => &texts.concerns_high_level,
                (false, false) => &texts.concerns_other,
            }),
        };
        self.add(cm, first, RecordData::Assessment(data));
        // The therapist, once visiting, assesses the home and the ADL.
        let therapist = self
            .slot(Role::Rehabilitation)
            .map(|s| (s.start, self.author(s, Prof::PhysicalTherapist)));
        let home_day = self.day_after(span, first, 60);
        let home_author = match therapist {
            Some((since, t)) if home_day >= since => t,
            _ => cm,
        };
        let data = HomeEnvironmentData {
            housing_type: housing,
            lives_alone: self.lives_alone,
            barriers: text(barriers),
            note: text(note),
        };
        self.add(home_author, home_day, RecordData::HomeEnvironment(data));
        let data = FamilyCareCapacityData {
            capacity: self.key_person.capacity,
            key_person_name: Some(self.key_person.name.clone()),
            key_person_relationship: text(self.key_person.relationship),
            key_person_phone: self.key_person.phone.clone(),
            note: text(self.key_person.note),
        };
        self.add(cm, first, RecordData::FamilyCareCapacity(data));

        // ADL assessed every six months or so; the latest by the therapist
        // when one visits.
        let count = 2 + self.rng.below(2);
        let days = self.series(span, count, 60, (150, 210));
        let last = days.len() - 1;
        for (k, day) in days.into_iter().enumerate() {
            let level = if k < last { previous_level } else { self.level };
            let by = match therapist {
                Some((since, t)) if k == last && day >= since => t,
                _ => cm,
            };
            let data = self.adl(level);
            self.add(by, day, RecordData::AdlAssessment(data));
        }

        // The services in use.
        let exit = self.story.fate.exit();
        for (service, provider) in self.planned_services(self.level) {
            let Some(provider) = provider else {
                continue;
            };
            let start = provider.start;
            let day = exit.unwrap_or(start).clamp(span.from, span.to);
            let data = ServiceUseData {
                service_type: service.service_type,
                provider: service.provider,
                frequency: Some(service.frequency),
                start_date: date(start),
                end_date: provider.end.map(date),
            };
            self.add(cm, day, RecordData::ServiceUse(data));
        }
    }

    // -- dental ---------------------------------------------------------------

    fn dental(&mut self) {
        let Some(slot) = self.slot(Role::Dentist) else {
            return;
        };
        let Some(span) = Span::of(slot, 0) else {
            return;
        };
        let dentist = self.author(slot, Prof::Dentist);
        let hygienist = match self.slot(Role::DentalHygienist) {
            Some(s) => self.author(s, Prof::DentalHygienist),
            None => dentist,
        };
        let teeth =
            (24 - (self.story.age as i32 - 65) / 3 - self.rng.below(12) as i32).clamp(0, 28);
        let first = self.day_after(span, span.from, 30);
        let texts = &data::content().records.dental;
        let finding = self.rng.pick(&texts.findings);
        let data = OralFindingData {
            findings: finding.clone(),
            remaining_teeth: Some(teeth),
        };
        self.add(dentist, first, RecordData::OralFinding(data));
        if teeth < 20 {
            let (denture_type, jaw) = match teeth {
                0..=5 => (DentureType::Full, Jaw::Both),
                6..=11 => (DentureType::Full, Jaw::Upper),
                _ => (
                    DentureType::Partial,
                    *self.rng.pick(&[Jaw::Upper, Jaw::Lower, Jaw::Both]),
                ),
            };
            let fit = *self
                .rng
                .pick(&[Rating::Good, Rating::Fair, Rating::Fair, Rating::Poor]);
            let note = texts.denture_notes.of(fit);
            let data = DentureData {
                denture_type,
                jaw,
                fit,
                note: text(note),
            };
            self.add(dentist, first, RecordData::Denture(data));
        }
        const FILS: [i32; 7] = [9, 9, 8, 8, 7, 6, 5];
        let fils = FILS[self.level];
        let swallowing = &data::content().records.swallowing_assessment;
        let reached = |from: i32| fils >= from;
        let diet = &(swallowing.diet.iter())
            .find(|d| reached(d.from_fils))
            .expect("the last diet is from FILS 0")
            .text;
        let test = (swallowing.tests.iter())
            .find(|t| reached(t.from_fils))
            .expect("the last test is from FILS 0");
        let (method, findings) = (&test.method, &test.findings);
        let data = SwallowingAssessmentData {
            method: method.to_owned(),
            level: Some(fils),
            diet_form: text(diet),
            findings: findings.to_owned(),
        };
        self.add(dentist, first, RecordData::SwallowingAssessment(data));
        let visits = 1 + self.rng.below(3);
        let days = self.series(
            Span {
                from: first,
                to: span.to,
            },
            visits,
            30,
            (14, 60),
        );
        for (k, day) in days.into_iter().enumerate() {
            let note = &texts.visit_notes[k % texts.visit_notes.len()];
            let data = VisitingDentalNoteData { text: note.clone() };
            self.add(dentist, day, RecordData::VisitingDentalNote(data));
            if k == 0 || self.rng.chance(40) {
                let level =
                    *self
                        .rng
                        .pick(&[Rating::Good, Rating::Fair, Rating::Fair, Rating::Poor]);
                let note = texts.hygiene_notes.of(level);
                let data = OralHygieneData {
                    level,
                    note: text(note),
                };
                self.add(hygienist, day, RecordData::OralHygiene(data));
            }
        }
    }

    // -- end of life ----------------------------------------------------------

    /// ACP (人生会議) for about four in ten (most of those who have died);
    /// some changed their minds, a new record of the same series each time.
    fn advance_care_plan(&mut self) {
        let fate = self.story.fate;
        let deceased = matches!(fate, Fate::Deceased(..));
        if !(self.n == 0 || self.rng.chance(if deceased { 75 } else { 38 })) {
            return;
        }
        let versions = if self.n == 0 || self.rng.chance(35) {
            2
        } else {
            1
        };
        let nurse = self.slot(Role::VisitingNurse);
        let (by, span, by_nurse) = match (self.rng.below(10), nurse) {
            (0..=5, _) | (8.., None) => (self.physician, self.clinic, false),
            (6..=7, _) => {
                let slot = self.slot(Role::CareManager).expect("a care manager");
                let span = Span::of(slot, 180).expect("days to write on");
                (self.author(slot, Prof::CareManager), span, false)
            }
            (_, Some(slot)) => match Span::of(slot, 0) {
                Some(span) => (self.author(slot, Prof::Nurse), span, true),
                None => (self.physician, self.clinic, false),
            },
        };
        let days = self.series(span, versions, 120, (120, 300));
        let last = days.len() - 1;
        let cannot_say = self.has("G30") && self.level >= 5;
        let texts = &data::content().records.advance_care_plan;
        for (k, day) in days.into_iter().enumerate() {
            let mut participants = Vec::new();
            if !cannot_say {
                participants.push(texts.patient.clone());
            }
            participants.push(self.key_person.relationship.to_owned());
            participants.push(data::fill(
                &texts.physician,
                &[("physician", &self.physician_name())],
            ));
            participants.push(texts.care_manager.clone());
            if by_nurse || (nurse.is_some() && self.rng.chance(50)) {
                participants.push(texts.visiting_nurse.clone());
            }
            let data = if k < last {
                AdvanceCarePlanData {
                    place_of_care: Some(PlaceWish::Home),
                    place_of_death: Some(PlaceWish::Undecided),
                    cpr: Some(Wish::Undecided),
                    life_prolonging_treatment: Some(Wish::Undecided),
                    tube_feeding: Some(Wish::Undecided),
                    hospitalization: Some(Wish::Wants),
                    proxy_name: Some(self.key_person.name.clone()),
                    proxy_relationship: text(self.key_person.relationship),
                    participants,
                    confirmed_on: Some(date(day)),
                    note: text(&texts.undecided),
                }
            } else {
                let place = match fate {
                    Fate::Deceased(_, PlaceOfDeath::Hospital) => PlaceWish::Hospital,
                    Fate::Deceased(_, PlaceOfDeath::NursingHome) => PlaceWish::NursingHome,
                    Fate::Deceased(..) => PlaceWish::Home,
                    _ if self.n == 0 => PlaceWish::Home,
                    _ => *self.rng.pick(&[
                        PlaceWish::Home,
                        PlaceWish::Home,
                        PlaceWish::Home,
                        PlaceWish::Hospital,
                        PlaceWish::NursingHome,
                        PlaceWish::Undecided,
                    ]),
                };
                let cpr = *self.rng.pick(if place == PlaceWish::Home {
                    &[Wish::Declines, Wish::Declines, Wish::Undecided][..]
                } else {
                    &[
                        Wish::Declines,
                        Wish::Declines,
                        Wish::Declines,
                        Wish::Undecided,
                        Wish::Wants,
                    ][..]
                });
                let prolonging = if cpr == Wish::Wants {
                    Wish::Undecided
                } else {
                    *self
                        .rng
                        .pick(&[Wish::Declines, Wish::Declines, Wish::Undecided])
                };
                let tube = *self
                    .rng
                    .pick(&[Wish::Declines, Wish::Declines, Wish::Undecided]);
                let hospitalization = match place {
                    PlaceWish::Home => {
                        *self
                            .rng
                            .pick(&[Wish::Declines, Wish::Undecided, Wish::Wants])
                    }
                    _ => Wish::Wants,
                };
                let mut note = String::new();
                if cannot_say {
                    note.push_str(&texts.cannot_say);
                }
                note.push_str(match place {
                    PlaceWish::Home => &texts.place_home,
                    PlaceWish::Hospital => &texts.place_hospital,
                    PlaceWish::NursingHome => &texts.place_nursing_home,
                    _ => &texts.place_undecided,
                });
                if prolonging == Wish::Declines {
                    note.push_str(&texts.declines_prolonging);
                }
                if tube == Wish::Declines {
                    note.push_str(&texts.declines_tube_feeding);
                }
                note.push_str(&texts.comfort);
                AdvanceCarePlanData {
                    place_of_care: Some(if place == PlaceWish::NursingHome {
                        PlaceWish::NursingHome
                    } else {
                        PlaceWish::Home
                    }),
                    place_of_death: Some(place),
                    cpr: Some(cpr),
                    life_prolonging_treatment: Some(prolonging),
                    tube_feeding: Some(tube),
                    hospitalization: Some(hospitalization),
                    proxy_name: Some(self.key_person.name.clone()),
                    proxy_relationship: text(self.key_person.relationship),
                    participants,
                    confirmed_on: Some(date(day)),
                    note: Some(note),
                }
            };
            self.add(by, day, RecordData::AdvanceCarePlan(data));
        }
    }

    /// The everyday documents of home care: the visiting nurse's standing
    /// cautions (留意事項), the physician's instructions to the station
    /// (訪問看護指示書, now and then a special one after a change), and what
    /// the patient and family were told about the illness (病状説明と受け止め).
    fn home_care_documents(&mut self) {
        let cautions = &data::content().records.care_cautions;
        let Some(slot) = self.slot(Role::VisitingNurse) else {
            return;
        };
        let Some(span) = Span::of(slot, 0) else {
            return;
        };
        let nurse = self.author(slot, Prof::Nurse);
        let day = self.day(span);
        let first = self.rng.below(cautions.items.len());
        let count = 2 + self.rng.below(2);
        let items = (0..count)
            .map(|k| {
                let item = &cautions.items[(first + k * 3) % cautions.items.len()];
                CautionItem {
                    area: item.area,
                    caution: item.caution.clone(),
                }
            })
            .collect();
        self.add(
            nurse,
            day,
            RecordData::CareCautions(CareCautionsData {
                items,
                call_when: text(&cautions.call_when),
            }),
        );

        // The regular instruction in force at the end of the period (six
        // months), issued by the primary physician.
        let from = span.to - Days::new(self.rng.below(150.min(span.days())) as u64);
        let from = from.max(self.clinic.from);
        let texts = &data::content().records;
        let instruction = &texts.visiting_nurse_instruction;
        let diagnosis = (self.conditions.first())
            .map_or(instruction.default_diagnosis.as_str(), |d| d.name.as_str());
        let by = self.physician;
        self.add(
            by,
            from.min(self.clinic.to),
            RecordData::VisitingNurseInstruction(VisitingNurseInstructionData {
                instruction_type: VisitingNurseInstructionType::Regular,
                valid_from: date(from),
                valid_to: date(from + Days::new(182)),
                station: ORGS[slot.org].name.to_owned(),
                main_diagnosis: diagnosis.to_owned(),
                instructions: instruction.regular.clone(),
                medical_devices: Vec::new(),
                reason: None,
                of_patient: Default::default(),
            }),
        );
        if self.n == 0 || self.rng.chance(20) {
            let start = self.day(span);
            self.add(
                by,
                start.clamp(self.clinic.from, self.clinic.to),
                RecordData::VisitingNurseInstruction(VisitingNurseInstructionData {
                    instruction_type: VisitingNurseInstructionType::Special,
                    valid_from: date(start),
                    valid_to: date(start + Days::new(13)),
                    station: ORGS[slot.org].name.to_owned(),
                    main_diagnosis: diagnosis.to_owned(),
                    instructions: instruction.special.clone(),
                    medical_devices: Vec::new(),
                    reason: text(&instruction.special_reason),
                    of_patient: Default::default(),
                }),
            );
        }

        // The pharmacy on the team visits at home on the physician's
        // instruction (訪問薬剤管理指導 / 居宅療養管理指導).
        if let Some(pharmacy) = self.slot(Role::Pharmacy)
            && let Some(span) = Span::of(pharmacy, 0)
            && (self.n == 0 || self.rng.chance(60))
        {
            let from = self.day(span).clamp(self.clinic.from, self.clinic.to);
            let visits = if self.rng.chance(50) { 2 } else { 4 };
            self.add(
                by,
                from,
                RecordData::HomeCareGuidanceInstruction(HomeCareGuidanceInstructionData {
                    service: GuidanceService::Pharmacist,
                    provider: ORGS[pharmacy.org].name.to_owned(),
                    valid_from: date(from),
                    valid_to: None,
                    visits_per_month: Some(visits),
                    instructions: texts.home_care_guidance_instruction.pharmacist.clone(),
                }),
            );
        }

        if self.n == 0 || self.rng.chance(30) {
            let day = self.day(self.clinic);
            let relationship = self.key_person.relationship.to_owned();
            let told = &texts.illness_explanation;
            let explanation = data::fill(
                &told.explanation,
                &[("conditions", &self.condition_names())],
            );
            self.add(
                by,
                day,
                RecordData::IllnessExplanation(IllnessExplanationData {
                    explained_by: data::fill(
                        &told.explained_by,
                        &[("physician", &self.physician_name())],
                    ),
                    told: vec![told.told_patient.clone(), relationship],
                    explanation,
                    patient_understanding: text(&told.patient_understanding),
                    family_understanding: text(&told.family_understanding),
                    prognosis_told: Some(false),
                }),
            );
        }
    }

    // -- records from data ---------------------------------------------------

    /// The record templates of `records.toml` (`[[template]]`): one record
    /// of each template that applies to the patient, written by the team's
    /// member in the template's role, on one of the days that member's
    /// organisation is on the team.
    fn templates(&mut self) {
        let templates = &data::content().records.template;
        let mut rng = SplitMix64(TEMPLATE_SEED ^ ((self.n as u64) << 24));
        for t in templates {
            let Some(slot) = self.slot(t.role) else {
                continue;
            };
            let Some(span) = Span::of(slot, 0) else {
                continue;
            };
            if t.when.as_ref().is_some_and(|code| !self.has(code)) || !rng.chance(t.chance) {
                continue;
            }
            let member = match slot.member {
                Some(m) if MEMBERS[m].profession == t.profession => Some(m),
                _ => pick_member(&mut rng, slot.org, t.profession),
            };
            let Some(member) = member else {
                continue;
            };
            let day = span.from + Days::new(rng.below(span.days()) as u64);
            let values = data::Placeholders {
                day,
                values: vec![
                    ("patient", self.patient.name.clone()),
                    ("physician", self.physician_name()),
                    ("organization", ORGS[slot.org].name.clone()),
                    ("key_person", self.key_person.name.clone()),
                    (
                        "key_person_relationship",
                        self.key_person.relationship.to_owned(),
                    ),
                    ("conditions", self.condition_names()),
                ],
            };
            let data = t
                .render(&values)
                .unwrap_or_else(|e| panic!("records.toml template {}: {e}", t.kind));
            self.drafts.push(Draft {
                by: By {
                    org: slot.org,
                    member,
                },
                at: office_hours(&mut rng, day),
                undisclosed: false,
                data,
            });
        }
    }

    // -- rows -----------------------------------------------------------------

    /// The rows as `services::records::write` leaves them after writing the
    /// drafts one by one: version 1, ACTIVE, in the summary while current, and
    /// the newest of each series of the latest-of-series kinds.
    fn into_rows(mut self) -> Vec<record::Model> {
        let drafts = std::mem::take(&mut self.drafts);
        assert!(
            drafts.len() < RECORD_BLOCK,
            "patient {}: {} records",
            self.n,
            drafts.len()
        );
        let base = self.n * RECORD_BLOCK;
        let mut rows: Vec<record::Model> = Vec::with_capacity(drafts.len());
        let mut kinds = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.into_iter().enumerate() {
            let number = base + i;
            let kind = d.data.kind();
            kinds.push(kind);
            let (in_summary, summary_until) = crate::services::records::summary_placement(&d.data);
            rows.push(record::Model {
                id: demo_id(Table::Record, number),
                patient_id: self.patient.id,
                kind: kind.as_str().to_owned(),
                category: d.data.category().as_str().to_owned(),
                source_organization_id: demo_organization_id(d.by.org),
                author_member_id: Some(demo_id(Table::Member, d.by.member)),
                author_api_key_id: None,
                source_record_id: Some(format!("DEMO-{number}")),
                version: 1,
                status: ACTIVE.to_owned(),
                effective_at: d.at,
                recorded_at: d.at + TimeDelta::minutes(3 + self.rng.below(58) as i64),
                undisclosed: d.undisclosed,
                in_summary,
                summary_until,
                series_key: d.data.series_key(),
                data: d.data.to_json(),
            });
        }
        let mut latest: HashMap<(RecordKind, Option<String>), usize> = HashMap::new();
        for (i, (row, kind)) in rows.iter().zip(&kinds).enumerate() {
            if kind.summary_rule() != SummaryRule::LatestOfSeries {
                continue;
            }
            let newest = latest.entry((*kind, row.series_key.clone())).or_insert(i);
            if (row.effective_at, row.id) > (rows[*newest].effective_at, rows[*newest].id) {
                *newest = i;
            }
        }
        for i in latest.into_values() {
            rows[i].in_summary = true;
        }
        rows
    }
}

/// The family member the team calls first, and what the family can do.
fn key_person(
    rng: &mut SplitMix64,
    patient: &patient::Model,
    story: &Story,
    lives_alone: bool,
) -> KeyPerson {
    let family = &story.family.0;
    let other = loop {
        let f = &rng.pick(&data::content().names.family).0;
        if f != family {
            break f;
        }
    };
    let mobile = format!(
        "0{}0-{:04}-{:04}",
        rng.pick(&[7, 8, 9]),
        rng.below(10_000),
        rng.below(10_000)
    );
    let names = &data::content().names;
    let daughter = format!("{other}\u{3000}{}", rng.pick(&names.child_female));
    let son = format!("{family}\u{3000}{}", rng.pick(&names.child_male));
    let daughter_in_law = format!("{family}\u{3000}{}", rng.pick(&names.child_female));
    let female = story.sex == Sex::Female;
    let person = |name: String, relationship, phone, capacity, note| KeyPerson {
        name,
        relationship,
        phone,
        capacity,
        note,
    };
    let family_texts = &data::content().family;
    let name_of = |relative: data::Relative, rng: &mut SplitMix64| match relative {
        data::Relative::Daughter => daughter.clone(),
        data::Relative::Son => son.clone(),
        data::Relative::DaughterInLaw => daughter_in_law.clone(),
        data::Relative::Niece => format!("{other}\u{3000}{}", rng.pick(&names.child_female)),
    };
    if lives_alone {
        let f = rng.pick(&family_texts.alone);
        let name = name_of(f.relative, rng);
        return person(name, &f.relationship, Some(mobile), f.capacity, &f.note);
    }
    if story.age < 88 && rng.chance(40) {
        let spouse_texts = &family_texts.spouse;
        let (relationship, given) = if female {
            (
                &spouse_texts.husband,
                &rng.pick(&data::content().names.elder_male).0,
            )
        } else {
            (
                &spouse_texts.wife,
                &rng.pick(&data::content().names.elder_female).0,
            )
        };
        let phone = patient.phone.clone().or(Some(mobile));
        let spouse = format!("{family}\u{3000}{given}");
        return person(
            spouse,
            relationship,
            phone,
            spouse_texts.capacity,
            &spouse_texts.note,
        );
    }
    let f = rng.pick(&family_texts.together);
    let name = name_of(f.relative, rng);
    person(name, &f.relationship, Some(mobile), f.capacity, &f.note)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::domain::{
        ADDRESS_MAX, Kana, NAME_MAX, OrganizationKind as Kind, Phone, PostalCode, Text,
    };

    fn profession_of(region: &Region, member_id: Uuid) -> (Prof, Uuid) {
        let m = region
            .members
            .iter()
            .find(|m| m.id == member_id)
            .expect("member exists");
        (
            Prof::parse(&m.profession).expect("profession"),
            m.organization_id,
        )
    }

    fn kind_of(region: &Region, org_id: Uuid) -> Kind {
        let o = region
            .organizations
            .iter()
            .find(|o| o.id == org_id)
            .expect("organisation exists");
        Kind::parse(&o.kind).expect("kind")
    }

    /// Where a profession plausibly works.
    fn fits(profession: Prof, kind: Kind) -> bool {
        match profession {
            Prof::Physician => matches!(kind, Kind::Hospital | Kind::Clinic),
            Prof::Dentist | Prof::DentalHygienist => kind == Kind::DentalClinic,
            Prof::Pharmacist => matches!(kind, Kind::Pharmacy | Kind::Hospital),
            Prof::Nurse => matches!(
                kind,
                Kind::VisitingNurseStation | Kind::Hospital | Kind::Clinic | Kind::NursingHome
            ),
            Prof::PublicHealthNurse => matches!(
                kind,
                Kind::CommunityGeneralSupportCenter | Kind::PublicHealthCenter | Kind::Municipality
            ),
            Prof::PhysicalTherapist
            | Prof::OccupationalTherapist
            | Prof::SpeechTherapist
            | Prof::Therapist => matches!(kind, Kind::RehabilitationProvider | Kind::Hospital),
            Prof::Dietitian => matches!(kind, Kind::Hospital | Kind::NursingHome),
            Prof::CareManager => kind == Kind::HomeCareSupportOffice,
            Prof::CareWorker => matches!(kind, Kind::CareServiceProvider | Kind::NursingHome),
            Prof::MedicalSocialWorker => kind == Kind::Hospital,
            Prof::SocialWorker => matches!(
                kind,
                Kind::CommunityGeneralSupportCenter | Kind::NursingHome | Kind::Municipality
            ),
            Prof::EmsCrew => kind == Kind::AmbulanceService,
            Prof::MunicipalStaff => kind == Kind::Municipality,
            Prof::NetworkAdministrator => kind == Kind::CoordinationCenter,
        }
    }

    fn is_normalised_kana(s: &str) -> bool {
        Kana::parse("kana", s).map(Kana::into_inner).ok().as_deref() == Some(s)
    }

    fn data_of(r: &record::Model) -> RecordData {
        let kind = RecordKind::parse(&r.kind).expect("kind");
        RecordData::from_json(kind, &r.data).expect("stored data reads back")
    }

    fn records_of(region: &Region, n: usize) -> Vec<&record::Model> {
        let id = demo_patient_id(n);
        (region.records.iter())
            .filter(|r| r.patient_id == id)
            .collect()
    }

    #[test]
    fn records_validate_and_are_stored_as_the_service_stores_them() {
        let r = region();
        let matrix = crate::policy::matrix::Matrix::default();
        let mut teams: HashMap<Uuid, Vec<&care_team_membership::Model>> = HashMap::new();
        for m in &r.memberships {
            teams.entry(m.patient_id).or_default().push(m);
        }
        let mut sources = HashSet::new();
        for rec in &r.records {
            let data = data_of(rec);
            if let Err(e) = data.validate(REF_DATE) {
                panic!("{} {}: {}", rec.kind, rec.data, e.message());
            }
            assert_eq!(data.to_json(), rec.data);
            assert_eq!(rec.category, data.category().as_str());
            assert_eq!(rec.series_key, data.series_key());
            assert_eq!((rec.version, rec.status.as_str()), (1, ACTIVE));
            assert!(rec.author_api_key_id.is_none());
            // The author is a member of the source organisation, of a
            // profession that may write the category, on the patient's team.
            let (profession, org) = profession_of(&r, rec.author_member_id.expect("an author"));
            assert_eq!(org, rec.source_organization_id);
            let category = DataCategory::parse(&rec.category).expect("category");
            assert_eq!(
                matrix.level(profession, category),
                crate::domain::AccessLevel::ReadWrite,
                "{profession} writes {category}"
            );
            let day = rec.effective_at.date_naive();
            let membership = (teams[&rec.patient_id].iter())
                .find(|m| m.organization_id == org)
                .unwrap_or_else(|| panic!("{} by an organisation off the team", rec.kind));
            assert!(
                membership.end_date.is_none_or(|end| day <= end),
                "{} after the organisation left the team",
                rec.kind
            );
            assert!((RECORDS_FROM..=LAST_DAY).contains(&day), "{day}");
            assert!(rec.recorded_at > rec.effective_at && rec.recorded_at < fixed_time());
            let source = rec.source_record_id.as_deref().expect("a source record ID");
            assert!(sources.insert((org, rec.kind.as_str(), source)), "{source}");
            // Nothing recorded before it happened.
            let not_after = |d: Option<Date>| d.is_none_or(|d| d.0 <= day);
            match &data {
                RecordData::Condition(c) => {
                    assert!(not_after(c.onset) && not_after(c.resolved_on));
                    assert_eq!(
                        c.resolved_on.is_some(),
                        c.clinical_status == ClinicalStatus::Resolved
                    );
                }
                RecordData::Infection(i) => assert!(not_after(i.tested_on)),
                RecordData::AdvanceCarePlan(a) => assert_eq!(a.confirmed_on, Some(Date(day))),
                RecordData::Prescription(p) => assert_eq!(p.start_date.0, day),
                RecordData::LabResult(l) => {
                    let v: f64 = l.value.parse().expect("a numeric result");
                    let expected = if l.reference_low.is_some_and(|low| v < low) {
                        AbnormalFlag::Low
                    } else if l.reference_high.is_some_and(|high| v > high) {
                        AbnormalFlag::High
                    } else {
                        AbnormalFlag::Normal
                    };
                    assert_eq!(l.abnormal, expected, "{} {}", l.name, l.value);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn each_series_has_exactly_one_summary_record_the_newest() {
        let r = region();
        type Key<'a> = (Uuid, &'a str, Option<&'a str>);
        let mut series: HashMap<Key, Vec<&record::Model>> = HashMap::new();
        for rec in &r.records {
            let kind = RecordKind::parse(&rec.kind).expect("kind");
            match kind.summary_rule() {
                SummaryRule::WhileCurrent => {
                    let data = RecordData::from_json(kind, &rec.data).expect("data");
                    assert_eq!(rec.in_summary, data.current_span().is_some());
                }
                SummaryRule::Never => assert!(!rec.in_summary),
                SummaryRule::LatestOfSeries => {
                    let key = (rec.patient_id, rec.kind.as_str(), rec.series_key.as_deref());
                    series.entry(key).or_default().push(rec);
                }
            }
        }
        for (key, records) in &series {
            let shown: Vec<_> = records.iter().filter(|r| r.in_summary).collect();
            assert_eq!(shown.len(), 1, "{key:?}");
            let newest = (records.iter())
                .max_by_key(|r| (r.effective_at, r.id))
                .expect("a record");
            assert_eq!(shown[0].id, newest.id, "{key:?}");
        }
        // Histories: lab tests, dispensings, certifications, ADL, ACP.
        for kind in [
            RecordKind::LabResult,
            RecordKind::Dispensing,
            RecordKind::CareCertification,
            RecordKind::CarePlan,
            RecordKind::AdlAssessment,
            RecordKind::AdvanceCarePlan,
        ] {
            let with_history = (series.iter())
                .filter(|((_, k, _), records)| *k == kind.as_str() && records.len() > 1)
                .count();
            assert!(
                with_history >= 10,
                "{kind}: {with_history} series with a history"
            );
        }
    }

    #[test]
    fn every_patient_has_a_varied_chart() {
        let r = region();
        let total = r.records.len();
        assert!(
            (40 * PATIENTS..=80 * PATIENTS).contains(&total),
            "{total} records"
        );
        // Emergency information sheets are seeded by `liaison.rs`.
        for &kind in RecordKind::ALL
            .iter()
            .filter(|k| **k != RecordKind::EmergencyInformation)
        {
            let n = r.records.iter().filter(|x| x.kind == kind.as_str()).count();
            assert!(n >= 5, "{kind}: {n}");
        }
        for (n, p) in r.patients.iter().enumerate() {
            let records = records_of(&r, n);
            assert!(
                (25..=110).contains(&records.len()),
                "patient {n}: {}",
                records.len()
            );
            let data: Vec<RecordData> = records.iter().map(|r| data_of(r)).collect();
            let active = (data.iter())
                .filter(|d| matches!(d, RecordData::Condition(c) if c.clinical_status == ClinicalStatus::Active))
                .count();
            assert!(
                (2..=6).contains(&active),
                "patient {n}: {active} conditions"
            );
            let prescriptions = (data.iter())
                .filter(|d| matches!(d, RecordData::Prescription(_)))
                .count();
            assert!(
                (3..=8).contains(&prescriptions),
                "patient {n}: {prescriptions} prescriptions"
            );
            // Those at home take something on REF_DATE and still a year
            // later (the demo is looked at after its day); the others nothing.
            let later = REF_DATE + Days::new(365);
            for day in [REF_DATE, later] {
                let current = (data.iter())
                    .any(|d| matches!(d, RecordData::Prescription(_)) && d.is_current(day));
                assert_eq!(current, p.status == "ACTIVE", "patient {n} on {day}");
            }
            let certified = data
                .iter()
                .filter(|d| matches!(d, RecordData::CareCertification(_)))
                .count();
            assert!((1..=2).contains(&certified));
            // Dental records only where a dentist is on the team.
            let dentist = (r.memberships.iter()).any(|m| {
                m.patient_id == p.id && m.organization_id == demo_organization_id(DENTAL_CLINIC)
            });
            let dental = records
                .iter()
                .any(|r| r.category == DataCategory::Dental.as_str());
            assert_eq!(dental, dentist, "patient {n}");
        }
    }

    #[test]
    fn the_special_records_are_where_the_module_doc_says() {
        let r = region();
        // The README's patient: a full, ordinary chart.
        let k3 = records_of(&r, 0);
        for kind in [
            RecordKind::Condition,
            RecordKind::Allergy,
            RecordKind::Prescription,
            RecordKind::Dispensing,
            RecordKind::LabResult,
            RecordKind::VitalSigns,
            RecordKind::VisitingNurseReport,
            RecordKind::CareCertification,
            RecordKind::CarePlan,
            RecordKind::AdlAssessment,
            RecordKind::FamilyCareCapacity,
            RecordKind::OralFinding,
        ] {
            assert!(
                k3.iter().any(|r| r.kind == kind.as_str()),
                "K-000003 has no {kind}"
            );
        }
        let acp = k3.iter().filter(|r| r.kind == "ADVANCE_CARE_PLAN").count();
        assert_eq!(acp, 2, "two versions of K-000003's ACP");
        assert!(
            k3.iter()
                .all(|r| !r.undisclosed && !r.category.starts_with("SENSITIVE"))
        );

        // One undisclosed cancer: the condition and the records naming it.
        let undisclosed: Vec<_> = r.records.iter().filter(|r| r.undisclosed).collect();
        assert_eq!(undisclosed.len(), 3);
        assert!(
            undisclosed
                .iter()
                .all(|r| r.patient_id == demo_patient_id(UNDISCLOSED_CANCER))
        );
        assert!(undisclosed.iter().any(|r| {
            matches!(data_of(r), RecordData::Condition(c) if c.icd10.as_deref() == Some("C16.9"))
        }));
        let at_clinic = |n: usize| {
            (r.identifiers.iter())
                .find(|i| {
                    i.patient_id == demo_patient_id(n)
                        && i.organization_id == demo_organization_id(HOME_CLINIC)
                })
                .map(|i| i.local_id.as_str())
        };
        assert_eq!(
            at_clinic(UNDISCLOSED_CANCER),
            Some("K-000026"),
            "as the module doc says"
        );
        assert_eq!(
            at_clinic(SCHIZOPHRENIA),
            Some("K-000030"),
            "as the module doc says"
        );

        // Psychiatric conditions: patient 12 (whose consent excludes them)
        // and one other.
        let psychiatric: HashSet<Uuid> = (r.records.iter())
            .filter(|r| r.category == DataCategory::SensitivePsychiatric.as_str())
            .map(|r| r.patient_id)
            .collect();
        let expected: HashSet<Uuid> = [DEPRESSION, SCHIZOPHRENIA].map(demo_patient_id).into();
        assert_eq!(psychiatric, expected);
        assert_eq!(DEPRESSION, EXCLUDED_CATEGORIES);
    }

    #[test]
    fn generation_is_deterministic() {
        assert!(region() == region());
        assert_eq!(demo_patient_id(7), demo_patient_id(7));
        assert_eq!(
            fixed_time().timestamp_millis(),
            FIXED_MILLIS as i64,
            "FIXED_MILLIS is REF_DATE"
        );
    }

    /// Every seeded row, fingerprinted. The README, the docs and the tests
    /// name demo patients (`K-000003` …), so moving content between the code
    /// and the data files must not change a row. When the demo is meant to
    /// change, check the difference (seed a database before and after and
    /// compare its tables) and update the value here deliberately.
    #[test]
    fn the_seeded_rows_are_exactly_the_expected_ones() {
        use sha2::{Digest, Sha256};
        let region = region();
        let admissions = admission_discharge::Admissions::of(&region);
        let liaison = liaison::rows(&region);
        let directory = directory::demo_rows();
        let outbreaks = outbreaks::rows(&region).unwrap();
        let rows = format!("{region:?}\n{admissions:?}\n{liaison:?}\n{directory:?}\n{outbreaks:?}");
        let digest: String = (Sha256::digest(rows.as_bytes()).iter())
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest, "102d66f93f42456a46808e2c14f350aea78dbe9f4aa450e7f072404096288371",
            "the demo's rows changed: if on purpose, update this fingerprint"
        );
    }

    #[test]
    fn public_ids_name_the_rows() {
        let r = region();
        for (n, o) in r.organizations.iter().enumerate() {
            assert_eq!(o.id, demo_organization_id(n));
        }
        for (n, p) in r.patients.iter().enumerate() {
            assert_eq!(p.id, demo_patient_id(n));
        }
        for &p in Prof::ALL {
            let first = r
                .members
                .iter()
                .find(|m| m.profession == p.as_str())
                .expect("profession has a member");
            assert_eq!(demo_member_id(p), first.id, "{p}");
        }
        assert_eq!(
            r.organizations[0].kind,
            Kind::CoordinationCenter.as_str(),
            "organisation 0 runs the network"
        );
    }

    #[test]
    fn ids_are_unique_v7_and_organisations_sort_by_number() {
        let r = region();
        let ids: Vec<Uuid> = (r.organizations.iter().map(|o| o.id))
            .chain(r.members.iter().map(|m| m.id))
            .chain(r.patients.iter().map(|p| p.id))
            .chain(r.identifiers.iter().map(|i| i.id))
            .chain(r.memberships.iter().map(|m| m.id))
            .chain(r.consents.iter().map(|c| c.id))
            .chain(r.objections.iter().map(|o| o.id))
            .chain(r.records.iter().map(|r| r.id))
            .collect();
        let unique: HashSet<&Uuid> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        assert!(r.organizations.windows(2).all(|w| w[0].id < w[1].id));
        let capabilities: HashSet<(Uuid, &str)> = (r.capabilities.iter())
            .map(|c| (c.organization_id, c.capability.as_str()))
            .collect();
        assert_eq!(capabilities.len(), r.capabilities.len());
    }

    #[test]
    fn directory_covers_every_kind_and_profession() {
        let r = region();
        assert!(r.organizations.len() >= 20);
        // The kinds added for the directory (issue 15) have no demo
        // organisation yet: adding one changes every later demo id.
        let not_yet = [
            Kind::SmallMultifunctionalCare,
            Kind::NursingSmallMultifunctionalCare,
            Kind::RegularRoundsOnCallCare,
            Kind::WelfareEquipmentRental,
        ];
        for &kind in Kind::ALL.iter().filter(|k| !not_yet.contains(k)) {
            assert!(
                r.organizations.iter().any(|o| o.kind == kind.as_str()),
                "{kind}"
            );
        }
        assert_eq!(r.members.len(), 42);
        for &p in Prof::ALL {
            assert!(r.members.iter().any(|m| m.profession == p.as_str()), "{p}");
        }
        for m in &r.members {
            let (profession, org) = profession_of(&r, m.id);
            assert!(fits(profession, kind_of(&r, org)), "{}", m.name);
            assert_eq!(m.status, "ACTIVE");
        }
        let names: HashSet<&str> = r.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), r.members.len());
        for c in &r.capabilities {
            assert!(Cap::parse(&c.capability).is_some());
        }
    }

    #[test]
    fn values_pass_the_domain_validation() {
        let r = region();
        for o in &r.organizations {
            assert!(Text::parse("name", &o.name, NAME_MAX).is_ok());
            assert!(
                is_normalised_kana(o.name_kana.as_deref().unwrap_or("")),
                "{}",
                o.name
            );
            let postal = o.postal_code.as_deref().unwrap_or("");
            assert_eq!(
                PostalCode::parse("p", postal)
                    .map(PostalCode::into_inner)
                    .ok()
                    .as_deref(),
                Some(postal)
            );
            assert!(Phone::parse("phone", o.phone.as_deref().unwrap_or("")).is_ok());
            assert!(Phone::parse("fax", o.fax.as_deref().unwrap_or("")).is_ok());
            let (lat, lon) = (o.latitude.unwrap_or(0.0), o.longitude.unwrap_or(0.0));
            assert!(
                (lat - 43.8).abs() < 0.2 && (lon - 143.9).abs() < 0.2,
                "{}",
                o.name
            );
            let municipality = o.municipality.as_deref().unwrap_or("");
            assert!(o.address.as_deref().unwrap_or("").contains(municipality));
        }
        for m in &r.members {
            assert!(
                is_normalised_kana(m.name_kana.as_deref().unwrap_or("")),
                "{}",
                m.name
            );
        }
        for p in &r.patients {
            assert!(is_normalised_kana(&p.name_kana), "{}", p.name);
            assert!(
                Text::parse("address", p.address.as_deref().unwrap_or(""), ADDRESS_MAX).is_ok()
            );
            let postal = p.postal_code.as_deref().unwrap_or("");
            assert!(PostalCode::parse("p", postal).is_ok());
            if let Some(phone) = &p.phone {
                assert!(Phone::parse("phone", phone).is_ok(), "{phone}");
            }
        }
        for i in &r.identifiers {
            assert!(crate::domain::LocalId::parse("localId", &i.local_id).is_ok());
        }
    }

    #[test]
    fn two_hundred_elderly_patients_some_deceased_or_moved() {
        let r = region();
        assert_eq!(r.patients.len(), 200);
        let mut statuses = HashMap::new();
        for p in &r.patients {
            let age = REF_DATE
                .years_since(p.birth_date)
                .expect("born before REF_DATE");
            assert!((65..=100).contains(&age), "{} is {age}", p.name);
            *statuses.entry(p.status.as_str()).or_insert(0) += 1;
            match PatientStatus::parse(&p.status).expect("status") {
                PatientStatus::Deceased => {
                    assert!(p.deceased_on.is_some_and(|d| d < REF_DATE));
                    assert!(p.place_of_death.is_some());
                }
                _ => assert!(p.deceased_on.is_none() && p.place_of_death.is_none()),
            }
        }
        assert_eq!(statuses.get("DECEASED"), Some(&8));
        assert_eq!(statuses.get("MOVED_AWAY"), Some(&5));
        let women = r.patients.iter().filter(|p| p.sex == "FEMALE").count();
        assert!((90..170).contains(&women), "{women} women");
    }

    #[test]
    fn local_ids_are_unique_per_organisation_and_on_the_care_team() {
        let r = region();
        let mut seen = HashSet::new();
        let mut per_patient: HashMap<Uuid, usize> = HashMap::new();
        for i in &r.identifiers {
            assert!(
                seen.insert((i.organization_id, i.local_id.as_str())),
                "{}",
                i.local_id
            );
            *per_patient.entry(i.patient_id).or_default() += 1;
            assert!(
                r.memberships
                    .iter()
                    .any(|m| m.patient_id == i.patient_id && m.organization_id == i.organization_id),
                "identifier {} without care-team membership",
                i.local_id
            );
        }
        assert_eq!(per_patient.len(), 200);
        assert!(per_patient.values().all(|n| (2..=4).contains(n)));
        // Every facility that numbers its patients has some in the network.
        for (n, o) in ORGS.iter().enumerate() {
            let id = demo_organization_id(n);
            let holds = r.identifiers.iter().any(|i| i.organization_id == id);
            assert_eq!(holds, o.local_ids.is_some(), "{}", o.name);
        }
        assert!(
            r.identifiers
                .iter()
                .any(|i| i.local_id.starts_with("K-000"))
        );
        assert!(r.identifiers.iter().any(|i| i.local_id.starts_with("P202")));
    }

    #[test]
    fn care_teams_are_well_formed() {
        let r = region();
        let status: HashMap<Uuid, &patient::Model> = r.patients.iter().map(|p| (p.id, p)).collect();
        for p in &r.patients {
            let team: Vec<_> = r
                .memberships
                .iter()
                .filter(|m| m.patient_id == p.id)
                .collect();
            for (role, profession) in [
                (Role::PrimaryPhysician, Prof::Physician),
                (Role::CareManager, Prof::CareManager),
            ] {
                let m = team
                    .iter()
                    .find(|m| m.role == role.as_str())
                    .unwrap_or_else(|| panic!("{} has no {role}", p.name));
                let (prof, org) = profession_of(&r, m.member_id.expect("named member"));
                assert_eq!((prof, org), (profession, m.organization_id));
            }
        }
        let mut ended = 0;
        for m in &r.memberships {
            assert!(Role::parse(&m.role).is_some());
            assert!(m.start_date >= TEAMS_FROM && m.start_date < REF_DATE);
            if let Some(end) = m.end_date {
                ended += 1;
                assert!(end >= m.start_date && end < REF_DATE);
            } else {
                assert_eq!(
                    status[&m.patient_id].status, "ACTIVE",
                    "open membership of a leaver"
                );
            }
            if let Some(member) = m.member_id {
                assert_eq!(profession_of(&r, member).1, m.organization_id);
            }
        }
        assert!(
            ended > 0 && ended < r.memberships.len() / 5,
            "{ended} ended"
        );
    }

    #[test]
    fn each_demo_member_has_patients_to_look_at() {
        let r = region();
        // EMS crews and administrators have no standing care relationships.
        for &p in Prof::ALL {
            if matches!(p, Prof::EmsCrew | Prof::NetworkAdministrator) {
                continue;
            }
            let (_, org) = profession_of(&r, demo_member_id(p));
            let patients: HashSet<Uuid> = (r.memberships.iter())
                .filter(|m| m.organization_id == org && m.end_date.is_none())
                .map(|m| m.patient_id)
                .collect();
            assert!(patients.len() >= 10, "{p}: {} patients", patients.len());
        }
    }

    fn consents_of(region: &Region, n: usize) -> Vec<&consent::Model> {
        let id = demo_patient_id(n);
        (region.consents.iter())
            .filter(|c| c.patient_id == id)
            .collect()
    }

    fn active_of(region: &Region, n: usize) -> Vec<&consent::Model> {
        (consents_of(region, n).into_iter())
            .filter(|c| c.status == ConsentStatus::InForce.as_str())
            .collect()
    }

    /// The organisations of patient `patient`'s care team (ended memberships too).
    fn team_of(region: &Region, patient: Uuid) -> HashSet<Uuid> {
        (region.memberships.iter())
            .filter(|m| m.patient_id == patient)
            .map(|m| m.organization_id)
            .collect()
    }

    fn organization_ids(c: &consent::Model) -> Vec<Uuid> {
        serde_json::from_str(&c.organization_ids).expect("organization_ids is a JSON list of uuids")
    }

    fn excluded_categories(c: &consent::Model) -> Vec<DataCategory> {
        let names: Vec<String> = serde_json::from_str(&c.excluded_categories)
            .expect("excluded_categories is a JSON list of strings");
        (names.iter())
            .map(|n| DataCategory::parse(n).unwrap_or_else(|| panic!("category {n}")))
            .collect()
    }

    fn is_plain(c: &consent::Model) -> bool {
        c.scope == "NETWORK"
            && c.status == ConsentStatus::InForce.as_str()
            && c.withdrawn_at.is_none()
            && organization_ids(c).is_empty()
            && excluded_categories(c).is_empty()
    }

    #[test]
    fn every_patient_but_one_has_exactly_one_active_consent() {
        let r = region();
        for n in 0..PATIENTS {
            let active = active_of(&r, n).len();
            let expected = usize::from(n != WITHDRAWN);
            assert_eq!(active, expected, "patient {n}: {active} active consents");
        }
        let withdrawn = consents_of(&r, WITHDRAWN);
        assert_eq!(withdrawn.len(), 1);
        assert!(withdrawn[0].withdrawn_at.is_some() && withdrawn[0].withdrawn_by_member.is_some());
        assert_eq!(
            withdrawn[0].withdrawal_reason.as_deref(),
            Some(data::content().consents.withdrawal_reason.as_str())
        );
        // The deceased and those who moved away keep theirs.
        for p in r.patients.iter().filter(|p| p.status != "ACTIVE") {
            let n = r
                .patients
                .iter()
                .position(|q| q.id == p.id)
                .expect("patient");
            assert_eq!(active_of(&r, n).len(), 1, "{}", p.name);
        }
    }

    #[test]
    fn the_special_cases_are_where_the_module_doc_says() {
        let r = region();
        let specials = [
            WITHDRAWN,
            LISTED_ORGANIZATIONS,
            EXCLUDED_CATEGORIES,
            EXCLUDED_ORGANIZATION,
            SUPERSEDED,
        ];
        for n in 0..PATIENTS {
            let all = consents_of(&r, n);
            if !specials.contains(&n) {
                assert_eq!(all.len(), 1, "patient {n}");
                assert!(is_plain(all[0]), "patient {n}");
            }
        }
        // The README's patient.
        let k3 = r
            .identifiers
            .iter()
            .find(|i| {
                i.organization_id == demo_organization_id(HOME_CLINIC) && i.local_id == "K-000003"
            })
            .expect("K-000003 exists");
        let n = r
            .patients
            .iter()
            .position(|p| p.id == k3.patient_id)
            .expect("patient");
        assert!(
            !specials.contains(&n) && n != OBJECTS_TO_EMERGENCY_ACCESS,
            "K-000003 is patient {n}"
        );

        // The local ids at the clinic the module doc gives.
        let at_clinic = |n: usize| {
            (r.identifiers.iter())
                .find(|i| {
                    i.patient_id == demo_patient_id(n)
                        && i.organization_id == demo_organization_id(HOME_CLINIC)
                })
                .map(|i| i.local_id.as_str())
        };
        let documented = [Some("K-000011"), None, None, Some("K-000013"), None, None];
        for (n, local_id) in (WITHDRAWN..=OBJECTS_TO_EMERGENCY_ACCESS).zip(documented) {
            assert_eq!(at_clinic(n), local_id, "patient {n}");
        }

        let listed = active_of(&r, LISTED_ORGANIZATIONS)[0];
        assert_eq!(listed.scope, "ORGANIZATIONS");
        let team: Vec<_> = (r.memberships.iter())
            .filter(|m| m.patient_id == listed.patient_id)
            .collect();
        let by_role = |role: Role| {
            (team.iter())
                .find(|m| m.role == role.as_str())
                .map(|m| m.organization_id)
                .expect("role on the team")
        };
        let mut expected = vec![by_role(Role::PrimaryPhysician), by_role(Role::CareManager)];
        expected.sort();
        assert_eq!(organization_ids(listed), expected);
        assert_eq!(
            expected,
            [
                demo_organization_id(SAKURA_CLINIC),
                demo_organization_id(CITY_CARE_OFFICE)
            ]
        );
        let on_team = team_of(&r, listed.patient_id);
        assert!(
            on_team.contains(&demo_organization_id(HOME_CLINIC)),
            "as deputy"
        );

        let excluded = active_of(&r, EXCLUDED_CATEGORIES)[0];
        assert_eq!(excluded.scope, "NETWORK");
        assert_eq!(
            excluded_categories(excluded),
            [DataCategory::LabResults, DataCategory::SensitivePsychiatric]
        );

        let without = active_of(&r, EXCLUDED_ORGANIZATION)[0];
        assert_eq!(without.scope, "NETWORK");
        let [org] = organization_ids(without)[..] else {
            panic!("one organisation excluded");
        };
        let kind = kind_of(&r, org);
        assert!(
            matches!(kind, Kind::Pharmacy | Kind::VisitingNurseStation),
            "{kind}"
        );
        assert!(team_of(&r, without.patient_id).contains(&org));
        assert_eq!(
            org,
            demo_organization_id(CITY_NURSES),
            "as the module doc says"
        );

        // The station it excludes recorded a 包括同意 that waits for the centre.
        let pending: Vec<_> = (r.consents.iter())
            .filter(|c| c.status == ConsentStatus::Pending.as_str())
            .collect();
        assert_eq!(pending.len(), 1, "one pending consent in the region");
        let pending = pending[0];
        assert_eq!(pending.patient_id, without.patient_id);
        assert_eq!(pending.recorded_by_organization, org);
        assert!(pending.recorded_at > without.recorded_at && pending.id > without.id);
        assert!(pending.withdrawn_at.is_none());
        let terms = |c: &consent::Model| crate::policy::ConsentTerms::of(c).expect("terms");
        assert!(terms(pending).widens(Some(&terms(without))));
        assert!(
            !terms(without).covers(org),
            "recorded by the organisation excluded"
        );

        let history = consents_of(&r, SUPERSEDED);
        assert_eq!(history.len(), 2);
        let (old, new) = (history[0], history[1]);
        assert_eq!(old.withdrawal_reason.as_deref(), Some(SUPERSEDED_REASON));
        assert_eq!(old.withdrawn_at, Some(new.recorded_at));
        assert!(old.recorded_at < new.recorded_at && old.id < new.id);
        assert!(is_plain(new));
    }

    #[test]
    fn one_patient_objects_to_emergency_access() {
        let r = region();
        assert_eq!(r.objections.len(), 1);
        let o = &r.objections[0];
        assert_eq!(o.patient_id, demo_patient_id(OBJECTS_TO_EMERGENCY_ACCESS));
        assert!(o.withdrawn_at.is_none());
        assert_eq!(
            o.note.as_ref(),
            Some(&data::content().consents.objection_note)
        );
        assert!(o.recorded_at < fixed_time());
        let (prof, org) = profession_of(&r, o.recorded_by_member.expect("recorded by a member"));
        assert_eq!((prof, org), (Prof::Physician, o.recorded_by_organization));
        assert!(team_of(&r, o.patient_id).contains(&org));
    }

    #[test]
    fn consent_rows_read_back_as_the_service_writes_them() {
        let r = region();
        let mut forms = HashSet::new();
        for c in &r.consents {
            let scope = ConsentScope::parse(&c.scope).expect("scope");
            let method = ConsentMethod::parse(&c.method).expect("method");
            let ids = organization_ids(c);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
            let team = team_of(&r, c.patient_id);
            assert!(ids.iter().all(|id| team.contains(id)), "on the care team");
            if scope == ConsentScope::Organizations {
                assert!(!ids.is_empty());
            }
            let categories = excluded_categories(c);
            assert!(categories.windows(2).all(|w| w[0] < w[1]));
            // Whoever took the consent is a physician or care manager of an
            // organisation of the patient's team (the pending one: a nurse).
            let (prof, org) =
                profession_of(&r, c.recorded_by_member.expect("recorded by a member"));
            let status = ConsentStatus::parse(&c.status).expect("status");
            if status == ConsentStatus::Pending {
                assert_eq!(prof, Prof::Nurse);
            } else {
                assert!(
                    matches!(prof, Prof::Physician | Prof::CareManager),
                    "{prof}"
                );
            }
            assert_eq!(
                status == ConsentStatus::InForce || status == ConsentStatus::Pending,
                c.withdrawn_at.is_none(),
                "{status} and withdrawn_at"
            );
            assert!(c.reviewed_at.is_none() && c.reviewed_by_member.is_none());
            // Every form passes the rules a recorded one passes at the edge.
            let form = crate::domain::ConsentForm::parse(
                "form",
                crate::domain::RawConsentForm {
                    reference: c
                        .form_reference
                        .as_deref()
                        .expect("every consent names its form"),
                    signed_on: c.obtained_on,
                    signed_by: ConsentSignatory::parse(c.signed_by.as_deref().expect("who signed"))
                        .expect("signatory"),
                    proxy_name: c.proxy_name.as_deref(),
                    proxy_relation: c.proxy_relation.as_deref(),
                },
                REF_DATE,
            )
            .unwrap_or_else(|e| panic!("{}: {e:?}", c.id));
            let birth = (r.patients.iter())
                .find(|p| p.id == c.patient_id)
                .expect("patient")
                .birth_date;
            assert!(form.check_signed_after_birth("form", birth).is_ok());
            assert_eq!(org, c.recorded_by_organization);
            assert!(team.contains(&org));
            let on_team_on = |member: Option<Uuid>, day: NaiveDate| {
                r.memberships.iter().any(|m| {
                    m.patient_id == c.patient_id
                        && m.member_id == member
                        && m.start_date <= day
                        && m.end_date.is_none_or(|end| day <= end)
                })
            };
            assert!(on_team_on(c.recorded_by_member, c.obtained_on), "{}", c.id);
            assert!(c.obtained_on <= c.recorded_at.date_naive());
            assert!(c.obtained_on >= TEAMS_FROM && c.recorded_at < fixed_time());
            if let Some(withdrawn) = c.withdrawn_at {
                assert!(withdrawn > c.recorded_at && withdrawn < fixed_time());
                assert!(c.withdrawal_reason.is_some());
                let (prof, _) = profession_of(&r, c.withdrawn_by_member.expect("withdrawn by"));
                assert!(
                    matches!(prof, Prof::Physician | Prof::CareManager),
                    "{prof}"
                );
                assert!(on_team_on(c.withdrawn_by_member, withdrawn.date_naive()));
            } else {
                assert!(c.withdrawn_by_member.is_none() && c.withdrawal_reason.is_none());
            }
            let form = c
                .form_reference
                .as_deref()
                .expect("every consent names its form");
            assert!(Text::parse("formReference", form, NAME_MAX).is_ok());
            let prefix = match method {
                ConsentMethod::Written => "同意書",
                ConsentMethod::Oral => "口頭同意記録",
                ConsentMethod::Electronic => "電子同意",
            };
            assert!(
                form.starts_with(&format!("{prefix} {}-", c.obtained_on.year())),
                "{form}"
            );
            assert!(forms.insert(form), "{form} twice");
        }
        for method in ConsentMethod::ALL {
            assert!(
                r.consents.iter().any(|c| c.method == method.as_str()),
                "{method}"
            );
        }
        for signatory in ConsentSignatory::ALL {
            assert!(
                (r.consents.iter()).any(|c| c.signed_by.as_deref() == Some(signatory.as_str())),
                "{signatory}"
            );
        }
    }
}
