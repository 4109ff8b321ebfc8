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
//! 40 members (every profession; the first member of a profession is its demo
//! member, see [`demo_member_id`]) and 200 patients aged 65–100 with local
//! identifiers and care teams. Patients 24, 49, …, 199 (every 25th) are
//! deceased, patients 17, 57, 97, 137 and 177 have moved away; their
//! memberships ended on that day.
//!
//! Consents (同意), which the access policy requires: every patient has one
//! active 包括同意 (scope `NETWORK`, nothing excluded; mostly a signed form,
//! some oral or electronic) taken by the primary physician or the care manager
//! soon after they joined the team — the deceased and those who moved away
//! keep theirs. Patient 0 (`K-000003` at the clinic, organisation 3, the one
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
//!   pharmacy, but this patient has none);
//! - patient 14 has a history: an oral consent superseded (as the API does
//!   it) by a written one;
//! - patient 15 has a plain consent and objects to emergency
//!   (break-the-glass) access (救急時閲覧を希望しない).
//!
//! Everything — ids, names, dates — comes from a fixed seed and the fixed
//! reference date 2026-04-01, never from the clock or the OS, so every run on
//! SQLite or PostgreSQL writes the same rows. [`seed`] inserts only rows whose
//! primary key is not there yet, so running it again adds nothing.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeDelta, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, TransactionTrait,
    TryInsertResult,
};
use uuid::{Builder, Uuid};

use crate::domain::{
    Capability as Cap, CareTeamRole as Role, ConsentMethod, ConsentScope, DataCategory,
    MemberStatus, OrganizationKind as Kind, PatientStatus, PlaceOfDeath, Profession as Prof, Sex,
};
use crate::error::ApiResult;
use entities::{
    care_team_membership, consent, emergency_objection, member, organization,
    organization_capability, patient, patient_identifier,
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
}

/// Inserts the demo region, in one transaction, skipping rows that exist.
pub async fn seed(db: &DatabaseConnection) -> ApiResult<SeedReport> {
    let region = region();
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
    txn.commit().await?;
    let report = SeedReport {
        organizations,
        members,
        patients,
        identifiers,
        care_team_memberships,
        consents,
        emergency_objections,
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

/// Inserts `rows` in batches; a row whose primary key exists is skipped
/// (`ON CONFLICT DO NOTHING`, the same on SQLite and PostgreSQL). Returns the
/// number of rows actually inserted.
async fn insert_new<E>(txn: &DatabaseTransaction, rows: Vec<E::Model>) -> Result<usize, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<E::ActiveModel> = rows
            .by_ref()
            .take(BATCH)
            .map(IntoActiveModel::into_active_model)
            .collect();
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

/// How a facility's system numbers its patients (カルテ番号, 利用者番号 …).
#[derive(Clone, Copy)]
enum LocalIdStyle {
    /// `prefix` and a zero-padded running number above `base`: `K-000123`.
    Running {
        prefix: &'static str,
        width: usize,
        base: usize,
    },
    /// `prefix`, the year of registration and a running number: `P2024-0456`.
    Yearly { prefix: &'static str, width: usize },
}

impl LocalIdStyle {
    fn format(self, seq: usize, year: i32) -> String {
        match self {
            LocalIdStyle::Running {
                prefix,
                width,
                base,
            } => format!("{prefix}{:0width$}", base + seq),
            LocalIdStyle::Yearly { prefix, width } => format!("{prefix}{year}-{seq:0width$}"),
        }
    }
}

struct OrgSpec {
    kind: Kind,
    name: &'static str,
    kana: &'static str,
    postal_code: &'static str,
    address: &'static str,
    phone: &'static str,
    fax: &'static str,
    latitude: f64,
    longitude: f64,
    capabilities: &'static [Cap],
    /// `None`: the facility keeps no patient numbers the network links to.
    local_ids: Option<LocalIdStyle>,
}

const CITY: &str = "みなみ野市";
const TOWN: &str = "北川町";

// Organisation numbers, named so that members and care teams read as prose.
const CENTRE: usize = 0;
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
const FIRE_DEPARTMENT: usize = 19;
const HEALTH_CENTRE: usize = 20;
const TOWN_HALL: usize = 21;

#[allow(clippy::too_many_arguments)]
const fn org(
    kind: Kind,
    name: &'static str,
    kana: &'static str,
    postal_code: &'static str,
    address: &'static str,
    phone: &'static str,
    fax: &'static str,
    (latitude, longitude): (f64, f64),
    capabilities: &'static [Cap],
    local_ids: Option<LocalIdStyle>,
) -> OrgSpec {
    OrgSpec {
        kind,
        name,
        kana,
        postal_code,
        address,
        phone,
        fax,
        latitude,
        longitude,
        capabilities,
        local_ids,
    }
}

const fn running(prefix: &'static str, width: usize, base: usize) -> Option<LocalIdStyle> {
    Some(LocalIdStyle::Running {
        prefix,
        width,
        base,
    })
}

const fn yearly(prefix: &'static str, width: usize) -> Option<LocalIdStyle> {
    Some(LocalIdStyle::Yearly { prefix, width })
}

#[rustfmt::skip]
const ORGS: [OrgSpec; 22] = [
    org(Kind::CoordinationCenter, "みなみ野市在宅医療介護連携支援センター", "ミナミノシ\u{3000}ザイタクイリョウカイゴレンケイシエンセンター",
        "098-7101", "北海道みなみ野市本町2丁目1-1", "0157-23-1100", "0157-23-1101", (43.8042, 143.8961),
        &[], None),
    org(Kind::Hospital, "みなみ野市立総合病院", "ミナミノシリツソウゴウビョウイン",
        "098-7102", "北海道みなみ野市栄町1丁目5-1", "0157-24-3111", "0157-24-3110", (43.8095, 143.9020),
        &[Cap::BackupBeds, Cap::EmergencyAdmission, Cap::HomeMedicalDevices, Cap::DementiaCare],
        running("", 8, 104_300)),
    org(Kind::Hospital, "北川厚生病院", "キタガワコウセイビョウイン",
        "098-7301", "北海道東原郡北川町字中央45番地", "01586-2-2111", "01586-2-2112", (43.8712, 144.0235),
        &[Cap::BackupBeds, Cap::EmergencyAdmission, Cap::VisitingRehabilitation],
        running("KH-", 6, 3_000)),
    org(Kind::Clinic, "みなみ野在宅クリニック", "ミナミノザイタククリニック",
        "098-7103", "北海道みなみ野市緑ヶ丘3丁目8-12", "0157-25-7788", "0157-25-7789", (43.7938, 143.8852),
        &[Cap::HomeVisits, Cap::TwentyFourHourCover, Cap::EndOfLifeCare, Cap::HomeMedicalDevices],
        running("K-", 6, 0)),
    org(Kind::Clinic, "さくら通り内科クリニック", "サクラドオリナイカクリニック",
        "098-7108", "北海道みなみ野市桜木1丁目2-3", "0157-26-1234", "0157-26-1235", (43.8150, 143.9105),
        &[Cap::HomeVisits, Cap::TwentyFourHourCover, Cap::EndOfLifeCare, Cap::DementiaCare],
        running("S", 5, 1_000)),
    org(Kind::Clinic, "北川町国保診療所", "キタガワチョウコクホシンリョウジョ",
        "098-7301", "北海道東原郡北川町字中央12番地", "01586-2-3456", "01586-2-3457", (43.8705, 144.0218),
        &[Cap::HomeVisits, Cap::EndOfLifeCare], running("", 4, 1_200)),
    org(Kind::DentalClinic, "ひまわり歯科医院", "ヒマワリシカイイン",
        "098-7101", "北海道みなみ野市本町4丁目6-2", "0157-23-8020", "0157-23-8021", (43.8031, 143.8990),
        &[Cap::VisitingDentalCare], None),
    org(Kind::Pharmacy, "みなみ野中央薬局", "ミナミノチュウオウヤッキョク",
        "098-7102", "北海道みなみ野市栄町1丁目6-3", "0157-24-5100", "0157-24-5101", (43.8098, 143.9031),
        &[Cap::HomeMedicationManagement, Cap::TwentyFourHourCover], yearly("P", 4)),
    org(Kind::Pharmacy, "すずらん薬局\u{3000}北川店", "スズランヤッキョク\u{3000}キタガワテン",
        "098-7301", "北海道東原郡北川町字中央14番地", "01586-2-4100", "01586-2-4101", (43.8708, 144.0224),
        &[Cap::HomeMedicationManagement], running("SZ-", 5, 500)),
    org(Kind::VisitingNurseStation, "訪問看護ステーションみなみ野", "ホウモンカンゴステーション\u{3000}ミナミノ",
        "098-7104", "北海道みなみ野市東陽2丁目3-7", "0157-27-3300", "0157-27-3301", (43.7990, 143.9170),
        &[Cap::HomeVisits, Cap::TwentyFourHourCover, Cap::EndOfLifeCare, Cap::HomeMedicalDevices,
          Cap::VisitingRehabilitation],
        None),
    org(Kind::VisitingNurseStation, "北川訪問看護ステーション", "キタガワホウモンカンゴステーション",
        "098-7302", "北海道東原郡北川町字川端3番地2", "01586-2-5500", "01586-2-5501", (43.8660, 144.0301),
        &[Cap::HomeVisits, Cap::TwentyFourHourCover, Cap::EndOfLifeCare], None),
    org(Kind::HomeCareSupportOffice, "居宅介護支援事業所\u{3000}みなみ野ケアプラン", "キョタクカイゴシエンジギョウショ\u{3000}ミナミノケアプラン",
        "098-7105", "北海道みなみ野市西町1丁目10-4", "0157-28-2200", "0157-28-2201", (43.8010, 143.8790),
        &[Cap::DementiaCare], yearly("CM-", 3)),
    org(Kind::HomeCareSupportOffice, "北川町社会福祉協議会\u{3000}居宅介護支援事業所", "キタガワチョウシャカイフクシキョウギカイ\u{3000}キョタクカイゴシエンジギョウショ",
        "098-7301", "北海道東原郡北川町字中央20番地", "01586-2-6600", "01586-2-6601", (43.8716, 144.0207),
        &[], running("KT", 4, 0)),
    org(Kind::CareServiceProvider, "ヘルパーステーションこぶし", "ヘルパーステーション\u{3000}コブシ",
        "098-7107", "北海道みなみ野市若松2丁目4-1", "0157-29-4400", "0157-29-4401", (43.7885, 143.9045),
        &[Cap::VisitingCare], None),
    org(Kind::CareServiceProvider, "デイサービスセンターはまなす", "デイサービスセンター\u{3000}ハマナス",
        "098-7106", "北海道みなみ野市北進町5丁目1-20", "0157-29-8800", "0157-29-8801", (43.8230, 143.8935),
        &[Cap::DayService, Cap::ShortStay, Cap::DementiaCare], None),
    org(Kind::NursingHome, "特別養護老人ホーム\u{3000}緑風荘", "トクベツヨウゴロウジンホーム\u{3000}リョクフウソウ",
        "098-7103", "北海道みなみ野市緑ヶ丘6丁目2-1", "0157-25-3900", "0157-25-3901", (43.7902, 143.8801),
        &[Cap::ShortStay, Cap::EndOfLifeCare, Cap::DementiaCare], None),
    org(Kind::RehabilitationProvider, "みなみ野リハビリテーションセンター", "ミナミノリハビリテーションセンター",
        "098-7104", "北海道みなみ野市東陽4丁目11-3", "0157-27-6600", "0157-27-6601", (43.7975, 143.9215),
        &[Cap::VisitingRehabilitation, Cap::DayService], None),
    org(Kind::CommunityGeneralSupportCenter, "みなみ野市地域包括支援センター", "ミナミノシチイキホウカツシエンセンター",
        "098-7101", "北海道みなみ野市本町2丁目1-1", "0157-23-1200", "0157-23-1201", (43.8042, 143.8961),
        &[Cap::DementiaCare], None),
    org(Kind::Municipality, "みなみ野市\u{3000}保健福祉部\u{3000}介護保険課", "ミナミノシ\u{3000}ホケンフクシブ\u{3000}カイゴホケンカ",
        "098-7101", "北海道みなみ野市本町1丁目1-1", "0157-23-1111", "0157-23-1112", (43.8050, 143.8975),
        &[], None),
    org(Kind::AmbulanceService, "みなみ野地区消防組合\u{3000}消防本部", "ミナミノチクショウボウクミアイ\u{3000}ショウボウホンブ",
        "098-7106", "北海道みなみ野市北進町1丁目2-2", "0157-22-0119", "0157-22-0120", (43.8190, 143.8990),
        &[], None),
    org(Kind::PublicHealthCenter, "北海道みなみ野保健所", "ホッカイドウ\u{3000}ミナミノホケンジョ",
        "098-7105", "北海道みなみ野市西町3丁目1-1", "0157-22-5100", "0157-22-5101", (43.8002, 143.8755),
        &[], None),
    org(Kind::Municipality, "北川町役場\u{3000}保健福祉課", "キタガワチョウヤクバ\u{3000}ホケンフクシカ",
        "098-7301", "北海道東原郡北川町字中央1番地", "01586-2-1111", "01586-2-1112", (43.8720, 144.0230),
        &[], None),
];

struct MemberSpec {
    org: usize,
    profession: Prof,
}

const fn m(org: usize, profession: Prof) -> MemberSpec {
    MemberSpec { org, profession }
}

/// The first member of each profession is its demo member, so each is placed
/// where that profession meets the most patients (the clinic, not the hospital).
const MEMBERS: [MemberSpec; 40] = [
    m(HOME_CLINIC, Prof::Physician),
    m(HOME_CLINIC, Prof::Physician),
    m(SAKURA_CLINIC, Prof::Physician),
    m(TOWN_CLINIC, Prof::Physician),
    m(CITY_HOSPITAL, Prof::Physician),
    m(CITY_HOSPITAL, Prof::Physician),
    m(TOWN_HOSPITAL, Prof::Physician),
    m(DENTAL_CLINIC, Prof::Dentist),
    m(DENTAL_CLINIC, Prof::Dentist),
    m(DENTAL_CLINIC, Prof::DentalHygienist),
    m(CITY_PHARMACY, Prof::Pharmacist),
    m(CITY_PHARMACY, Prof::Pharmacist),
    m(TOWN_PHARMACY, Prof::Pharmacist),
    m(CITY_NURSES, Prof::Nurse),
    m(CITY_NURSES, Prof::Nurse),
    m(TOWN_NURSES, Prof::Nurse),
    m(CITY_HOSPITAL, Prof::Nurse),
    m(HOME_CLINIC, Prof::Nurse),
    m(SUPPORT_CENTRE, Prof::PublicHealthNurse),
    m(HEALTH_CENTRE, Prof::PublicHealthNurse),
    m(REHAB, Prof::Therapist),
    m(REHAB, Prof::Therapist),
    m(CITY_HOSPITAL, Prof::Dietitian),
    m(CITY_CARE_OFFICE, Prof::CareManager),
    m(CITY_CARE_OFFICE, Prof::CareManager),
    m(TOWN_CARE_OFFICE, Prof::CareManager),
    m(TOWN_CARE_OFFICE, Prof::CareManager),
    m(HELPERS, Prof::CareWorker),
    m(HELPERS, Prof::CareWorker),
    m(NURSING_HOME, Prof::CareWorker),
    m(CITY_HOSPITAL, Prof::MedicalSocialWorker),
    m(TOWN_HOSPITAL, Prof::MedicalSocialWorker),
    m(SUPPORT_CENTRE, Prof::SocialWorker),
    m(NURSING_HOME, Prof::SocialWorker),
    m(FIRE_DEPARTMENT, Prof::EmsCrew),
    m(FIRE_DEPARTMENT, Prof::EmsCrew),
    m(CITY_HALL, Prof::MunicipalStaff),
    m(TOWN_HALL, Prof::MunicipalStaff),
    m(CENTRE, Prof::NetworkAdministrator),
    m(CENTRE, Prof::NetworkAdministrator),
];

/// Index in [`MEMBERS`] of the first member of `profession`.
const fn first_member_of(profession: Prof) -> usize {
    let mut i = 0;
    while i < MEMBERS.len() {
        if MEMBERS[i].profession as usize == profession as usize {
            return i;
        }
        i += 1;
    }
    panic!("a profession has no demo member")
}

// Every profession has a demo member: checked when the crate is compiled, so
// the panic above can never happen at run time.
const _: () = {
    let mut k = 0;
    while k < Prof::ALL.len() {
        first_member_of(Prof::ALL[k]);
        k += 1;
    }
};

// ---------------------------------------------------------------------------
// Name parts (kanji, katakana reading).

type NamePart = (&'static str, &'static str);

#[rustfmt::skip]
const FAMILY: [NamePart; 40] = [
    ("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"), ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"), ("小林", "コバヤシ"), ("加藤", "カトウ"),
    ("吉田", "ヨシダ"), ("山田", "ヤマダ"), ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"),
    ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ"),
    ("山崎", "ヤマザキ"), ("森", "モリ"), ("阿部", "アベ"), ("池田", "イケダ"), ("橋本", "ハシモト"),
    ("石川", "イシカワ"), ("前田", "マエダ"), ("藤田", "フジタ"), ("小川", "オガワ"), ("岡田", "オカダ"),
    ("後藤", "ゴトウ"), ("長谷川", "ハセガワ"), ("村上", "ムラカミ"), ("近藤", "コンドウ"), ("石井", "イシイ"),
    ("坂本", "サカモト"), ("遠藤", "エンドウ"), ("青木", "アオキ"), ("藤井", "フジイ"), ("西村", "ニシムラ"),
];

/// Given names common among people born 1926–1961.
#[rustfmt::skip]
const ELDER_FEMALE: [NamePart; 20] = [
    ("和子", "カズコ"), ("幸子", "サチコ"), ("節子", "セツコ"), ("京子", "キョウコ"), ("洋子", "ヨウコ"),
    ("久子", "ヒサコ"), ("美代子", "ミヨコ"), ("文子", "フミコ"), ("恵子", "ケイコ"), ("ミツ", "ミツ"),
    ("静子", "シズコ"), ("千代", "チヨ"), ("照子", "テルコ"), ("ハナ", "ハナ"), ("澄子", "スミコ"),
    ("典子", "ノリコ"), ("弘子", "ヒロコ"), ("悦子", "エツコ"), ("信子", "ノブコ"), ("トミ", "トミ"),
];

#[rustfmt::skip]
const ELDER_MALE: [NamePart; 20] = [
    ("清", "キヨシ"), ("茂", "シゲル"), ("実", "ミノル"), ("勇", "イサム"), ("進", "ススム"),
    ("博", "ヒロシ"), ("正雄", "マサオ"), ("和夫", "カズオ"), ("武", "タケシ"), ("勝", "マサル"),
    ("三郎", "サブロウ"), ("昭二", "ショウジ"), ("忠", "タダシ"), ("豊", "ユタカ"), ("義男", "ヨシオ"),
    ("弘", "ヒロム"), ("修", "オサム"), ("隆", "タカシ"), ("稔", "ミノル"), ("功", "イサオ"),
];

#[rustfmt::skip]
const STAFF_GIVEN: [NamePart; 20] = [
    ("美咲", "ミサキ"), ("健一", "ケンイチ"), ("由美", "ユミ"), ("大輔", "ダイスケ"), ("真理子", "マリコ"),
    ("翔太", "ショウタ"), ("優子", "ユウコ"), ("拓也", "タクヤ"), ("直美", "ナオミ"), ("誠", "マコト"),
    ("理恵", "リエ"), ("浩二", "コウジ"), ("彩", "アヤ"), ("直樹", "ナオキ"), ("麻衣", "マイ"),
    ("亮", "リョウ"), ("香織", "カオリ"), ("和也", "カズヤ"), ("智子", "トモコ"), ("悠人", "ユウト"),
];

/// (district, postal code) of the city; house numbers are 丁目-番-号.
#[rustfmt::skip]
const CITY_DISTRICTS: [NamePart; 8] = [
    ("本町", "098-7101"), ("栄町", "098-7102"), ("緑ヶ丘", "098-7103"), ("東陽", "098-7104"),
    ("西町", "098-7105"), ("北進町", "098-7106"), ("若松", "098-7107"), ("桜木", "098-7108"),
];

/// (字, postal code) of the town; rural addresses are 番地 only.
#[rustfmt::skip]
const TOWN_DISTRICTS: [NamePart; 4] = [
    ("中央", "098-7301"), ("川端", "098-7302"), ("東山", "098-7303"), ("豊田", "098-7304"),
];

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
        team.add(rng, Role::Rehabilitation, REHAB, Some(Prof::Therapist));
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
            municipality: Some((if o.address.contains(TOWN) { TOWN } else { CITY }).to_owned()),
            phone: Some(o.phone.to_owned()),
            fax: Some(o.fax.to_owned()),
            latitude: Some(o.latitude),
            longitude: Some(o.longitude),
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
            // 11 is coprime to 40, so no two members share a family name.
            let family = FAMILY[(n * 11 + 5) % FAMILY.len()];
            let given = STAFF_GIVEN[(n * 7) % STAFF_GIVEN.len()];
            let (name, kana) = full_name(family, given);
            member::Model {
                id: demo_id(Table::Member, n),
                organization_id: demo_organization_id(spec.org),
                name,
                name_kana: Some(kana),
                profession: spec.profession.as_str().to_owned(),
                status: MemberStatus::Active.as_str().to_owned(),
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
    let mut last_number = [0usize; ORGS.len()];
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
        let family = *rng.pick(&FAMILY);
        let given = *rng.pick(if sex == Sex::Female {
            &ELDER_FEMALE
        } else {
            &ELDER_MALE
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
            let Some(style) = ORGS[slot.org].local_ids else {
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
            });
        }
        for slot in team {
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
            });
        }
    }
    let (consents, objections) = consents(&patients, &memberships);
    Region {
        organizations,
        capabilities,
        members,
        patients,
        identifiers,
        memberships,
        consents,
        objections,
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

const WITHDRAWAL_REASON: &str = "本人の申し出により撤回";
/// What `services::consents::record` writes on the consent it replaces.
const SUPERSEDED_REASON: &str = "superseded by a new consent";
const OBJECTION_NOTE: &str = "本人・家族の意向により救急時閲覧を希望しない";

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
        };
        let recorded_at = plain.recorded_at;
        match n {
            WITHDRAWN => {
                // The patient told the physician, who recorded it.
                let row = consent::Model {
                    withdrawn_at: Some(later(&mut rng, recorded_at)),
                    withdrawn_by_member: physician.member_id,
                    withdrawal_reason: Some(WITHDRAWAL_REASON.to_owned()),
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
                note: Some(OBJECTION_NOTE.to_owned()),
                recorded_by_member: physician.member_id,
                recorded_by_organization: physician.organization_id,
                recorded_at: later(&mut rng, recorded_at),
                withdrawn_at: None,
            });
        }
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
        consents[i].form_reference = Some(format!("同意書 {year}-{number:04}"));
    }
    (consents, objections)
}

fn address(rng: &mut SplitMix64, area: Area) -> (&'static str, String) {
    match area {
        Area::City => {
            let (district, postal) = *rng.pick(&CITY_DISTRICTS);
            let (chome, ban, go) = (1 + rng.below(6), 1 + rng.below(20), 1 + rng.below(30));
            (
                postal,
                format!("北海道{CITY}{district}{chome}丁目{ban}-{go}"),
            )
        }
        Area::Town => {
            let (district, postal) = *rng.pick(&TOWN_DISTRICTS);
            let banchi = 1 + rng.below(400);
            (
                postal,
                format!("北海道東原郡{TOWN}字{district}{banchi}番地"),
            )
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::domain::{ADDRESS_MAX, Kana, NAME_MAX, Phone, PostalCode, Text};

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
            Prof::Therapist => matches!(kind, Kind::RehabilitationProvider | Kind::Hospital),
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
        for &kind in Kind::ALL {
            assert!(
                r.organizations.iter().any(|o| o.kind == kind.as_str()),
                "{kind}"
            );
        }
        assert_eq!(r.members.len(), 40);
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
            .filter(|c| c.withdrawn_at.is_none())
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
            Some(WITHDRAWAL_REASON)
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
        assert_eq!(o.note.as_deref(), Some(OBJECTION_NOTE));
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
            // organisation of the patient's team.
            let (prof, org) =
                profession_of(&r, c.recorded_by_member.expect("recorded by a member"));
            assert!(
                matches!(prof, Prof::Physician | Prof::CareManager),
                "{prof}"
            );
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
            match (method, &c.form_reference) {
                (ConsentMethod::Written, Some(form)) => {
                    assert!(Text::parse("formReference", form, NAME_MAX).is_ok());
                    assert!(
                        form.starts_with(&format!("同意書 {}-", c.obtained_on.year())),
                        "{form}"
                    );
                    assert!(forms.insert(form.as_str()), "{form} twice");
                }
                (ConsentMethod::Written, None) => panic!("a written consent without its form"),
                (_, form) => assert!(form.is_none()),
            }
        }
        for method in ConsentMethod::ALL {
            assert!(
                r.consents.iter().any(|c| c.method == method.as_str()),
                "{method}"
            );
        }
    }
}
