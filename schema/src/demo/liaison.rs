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

use super::{
    Cap, FIXED_MILLIS, LAST_DAY, MEMBERS, ORGS, Prof, RECORD_BATCH_BYTES, Region, Role, SEED,
    SplitMix64, TOWN, Table, demo_id, demo_organization_id, insert_batched, insert_new,
    member_name, record_size,
};
use crate::domain::PatientStatus;
use crate::records::{
    DesignatedHospital, EmergencyContact, EmergencyFacility, EmergencyInformationData,
    ExpectedEmergency, RecordData, RecordKind,
};
use crate::services::liaison::LiaisonUrgency;
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
            .is_some_and(|a| a.contains(TOWN))
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
            let first = n % TEMPLATES.len();
            let wanted = if n == 0 { 2 } else { 1 };
            let mut written = 0;
            for k in 0..TEMPLATES.len() {
                if written == wanted {
                    break;
                }
                let t = &TEMPLATES[(first + k) % TEMPLATES.len()];
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

    let mut contacts = Vec::new();
    if let Some((name, relation, phone)) = &p.key_person {
        let available = match relation.as_str() {
            "夫" | "妻" => "同居（日中・夜間とも在宅）",
            _ => *rng.pick(&["平日18時以降・土日", "日中も携帯電話で可", "夜間・休日も可"]),
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
                "訪問看護（24時間対応）".into()
            } else {
                "訪問看護".into()
            },
            phone: ORGS[org_index(slot.organization_id)].phone.clone(),
            available: Some(
                if round_the_clock {
                    "24時間"
                } else {
                    "8:30〜17:30"
                }
                .into(),
            ),
            key_person: false,
        });
    }
    if let Some((org, member)) = p.writer(Role::PrimaryPhysician, Prof::Physician) {
        contacts.push(EmergencyContact {
            name: format!("{}（{}）", member_name(member).0, org_name(org)),
            relationship: "主治医".into(),
            phone: ORGS[org].phone.clone(),
            available: Some(
                if has_cap(org, Cap::TwentyFourHourCover) {
                    "24時間（時間外は当番医の携帯へ転送）"
                } else {
                    "診療時間内（平日8:30〜17:30）"
                }
                .into(),
            ),
            key_person: false,
        });
    }
    contacts.push(EmergencyContact {
        name: format!("{}（{}）", member_name(cm).0, org_name(cm_org)),
        relationship: "ケアマネジャー".into(),
        phone: ORGS[cm_org].phone.clone(),
        available: Some("平日8:30〜17:30".into()),
        key_person: false,
    });

    let area_hospital = if p.in_town() {
        super::TOWN_HOSPITAL
    } else {
        super::CITY_HOSPITAL
    };
    let department = if p.has("I50") || p.has("I48") {
        Some("循環器内科")
    } else if p.has("I69") || p.has("G20") {
        Some("脳神経内科")
    } else if p.has("J44") {
        Some("呼吸器内科")
    } else {
        None
    };
    let usual_hospital = match (p.hospital, department) {
        (Some((h, ended)), _) => Some(EmergencyFacility {
            name: match department {
                Some(d) => format!("{}（{d}）", org_name(h)),
                None => org_name(h),
            },
            phone: Some(ORGS[h].phone.clone()),
            note: Some(if ended {
                "入院歴あり（退院時サマリーは連携ネットワークで共有済み）".into()
            } else {
                "外来通院中".into()
            }),
        }),
        (None, Some(d)) => Some(EmergencyFacility {
            name: format!("{}（{d} 外来）", org_name(area_hospital)),
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
        note: Some(
            "主治医（夜間は訪問看護）から病院の地域連携室・救急外来へ連絡し、受入れを依頼する"
                .into(),
        ),
    });

    let mut expected = Vec::new();
    let emergency = |situation: &str, response: &str, call_first: &str| ExpectedEmergency {
        situation: situation.into(),
        response: response.into(),
        call_first: Some(call_first.into()),
    };
    let nurse_first = if p.slot(Role::VisitingNurse).is_some() {
        "訪問看護"
    } else {
        "主治医"
    };
    if p.has("I50") {
        expected.push(emergency(
            "心不全の増悪（息切れ・むくみ・1週間で2kg以上の体重増加）",
            "上体を起こして安静にし、SpO2と脈拍を測る。\nSpO2 90%未満、会話が苦しい、冷や汗があるときは119番。",
            nurse_first,
        ));
    }
    if p.has("E11") {
        expected.push(emergency(
            "低血糖（冷汗・ふるえ・ぼんやりする）",
            "意識があればブドウ糖10g（またはジュース）を口に含ませ、15分後に様子を見る。\n意識がない、飲み込めないときは119番。",
            "主治医",
        ));
    }
    if p.has("I48") {
        expected.push(emergency(
            "転倒・頭部打撲（抗凝固薬を内服中）",
            "意識と手足の動きを確認し、主治医へ連絡する。\n嘔吐・意識低下・強い頭痛があれば119番（抗凝固薬内服中と伝える）。",
            "主治医",
        ));
    }
    if p.has("I69") {
        expected.push(emergency(
            "脳梗塞の再発（ろれつが回らない・片側の手足が動かない）",
            "発症時刻（最後に普段どおりだった時刻）を確認し、直ちに119番。",
            "119番",
        ));
    }
    if p.has("J44") {
        expected.push(emergency(
            "呼吸困難の増悪",
            "処方の吸入薬を使い、口すぼめ呼吸を促す。\n改善しない、唇が紫色のときは119番。",
            nurse_first,
        ));
    }
    if p.has("G20") {
        expected.push(emergency(
            "薬が飲めない・食事中のむせ込み",
            "むせ込みが続けば食事を中止する。\nパーキンソン病の薬を急に中断しないよう、飲めない日は主治医へ連絡。",
            "主治医",
        ));
    }
    if p.has("M81") && expected.len() < 3 {
        expected.push(emergency(
            "転倒・骨折の疑い（立てない・足の付け根が痛む）",
            "無理に動かさず、楽な姿勢で保温する。\n立てない、強い痛みがあるときは119番。",
            nurse_first,
        ));
    }
    expected.truncate(3);
    // What anyone of this age may have: a fever, a fall.
    if expected.len() < 2 {
        expected.push(emergency(
            "発熱（38℃以上）・誤嚥性肺炎の疑い",
            "水分をとらせ、体温・SpO2を測る。\n呼吸が苦しい、意識がぼんやりするときは119番。",
            nurse_first,
        ));
    }
    if expected.len() < 2 {
        expected.push(emergency(
            "転倒（起き上がれない・痛みが強い）",
            "無理に起こさず、頭を打っていないか、手足が動くかを確認する。\n意識がおかしい、強い痛みで動けないときは119番。",
            nurse_first,
        ));
    }

    let (diagnoses, medications) = match p.n % 10 {
        3 => (
            vec!["緑内障（みなみ野眼科医院で加療中）".to_string()],
            vec!["ラタノプロスト点眼液0.005% 1日1回 両眼".to_string()],
        ),
        7 => (vec!["両側感音性難聴（補聴器を使用）".to_string()], vec![]),
        _ => (vec![], vec![]),
    };
    let note = if p.lives_alone {
        Some("独居。玄関の鍵はキーボックス（暗証番号はケアマネジャーと訪問看護が把握）".to_string())
    } else {
        rng.pick(&[
            Some("寝室は2階。階段が急なため、搬送時は注意"),
            Some("室内で小型犬を飼っている"),
            Some("お薬手帳は台所の引き出し（救急医療情報キットと同じ場所）"),
            Some("補聴器を使用。左耳がより聞こえにくい"),
            None,
        ])
        .map(str::to_string)
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
        series_key: data.series_key(),
        data: data.to_json(),
    })
}

fn org_name_of(slot: &care_team_membership::Model) -> String {
    org_name(org_index(slot.organization_id))
}

// ---------------------------------------------------------------------------
// Threads

/// Who a message is from: a role of the team and the profession writing.
type From = (Role, Prof);

const DOCTOR: From = (Role::PrimaryPhysician, Prof::Physician);
const NURSE: From = (Role::VisitingNurse, Prof::Nurse);
const PHARMACY: From = (Role::Pharmacy, Prof::Pharmacist);
const CARE_MANAGER: From = (Role::CareManager, Prof::CareManager);
const HELPER: From = (Role::CareService, Prof::CareWorker);
const DENTIST: From = (Role::Dentist, Prof::Dentist);

struct Template {
    subject: &'static str,
    urgency: LiaisonUrgency,
    /// `None`: the whole care team; else the roles addressed by name.
    to: Option<&'static [Role]>,
    /// (author, body, index of the message answered).
    messages: &'static [(From, &'static str, Option<usize>)],
}

const TEMPLATES: [Template; 7] = [
    Template {
        subject: "服薬の変更について",
        urgency: LiaisonUrgency::Normal,
        to: None,
        messages: &[
            (
                DOCTOR,
                "本日の訪問診療で血圧が低め（収縮期100前後）のため、降圧薬を減量しました。\nふらつきや立ちくらみの訴えがあればお知らせください。処方は明日から変更です。",
                None,
            ),
            (
                PHARMACY,
                "承知しました。明日の配薬分から一包化の内容を変更してお届けします。旧処方の残りは回収します。",
                Some(0),
            ),
            (
                NURSE,
                "次回訪問（金曜）で血圧と起立時のふらつきを確認し、こちらで報告します。",
                Some(0),
            ),
        ],
    },
    Template {
        subject: "発熱の連絡",
        urgency: LiaisonUrgency::Urgent,
        to: Some(&[Role::PrimaryPhysician, Role::CareManager]),
        messages: &[
            (
                NURSE,
                "本日14時の訪問時、体温38.2℃、SpO2 94%（室内気）、脈拍98回/分。湿性咳嗽あり、昼食は半量摂取。\n誤嚥性肺炎の可能性も考えられます。往診のご検討をお願いします。",
                None,
            ),
            (
                DOCTOR,
                "本日17時ごろ往診します。それまで水分摂取を促し、SpO2が90%を切るようなら電話をください。",
                Some(0),
            ),
            (
                CARE_MANAGER,
                "明日のデイサービスはお休みの連絡をしました。ご家族にも状況を伝えています。",
                None,
            ),
        ],
    },
    Template {
        subject: "退院後の訪問予定",
        urgency: LiaisonUrgency::Normal,
        to: None,
        messages: &[
            (
                CARE_MANAGER,
                "3月28日に退院予定です。退院後1週間は訪問看護を週3回に増やし、訪問診療は退院翌日にお願いしたいと考えています。ご都合をお知らせください。",
                None,
            ),
            (
                DOCTOR,
                "退院翌日の14時に訪問します。退院時処方の内容が分かり次第共有してください。",
                Some(0),
            ),
            (
                NURSE,
                "退院日の夕方に初回訪問し、皮膚の状態と服薬状況を確認します。",
                Some(0),
            ),
            (
                CARE_MANAGER,
                "病院の地域連携室から退院時処方と看護サマリーが届き次第、こちらで共有します。",
                Some(1),
            ),
        ],
    },
    Template {
        subject: "残薬の確認",
        urgency: LiaisonUrgency::Normal,
        to: Some(&[Role::PrimaryPhysician]),
        messages: &[
            (
                PHARMACY,
                "居宅療養管理指導で訪問しました。夕食後の薬が14日分ほど残っており、飲み忘れが続いているようです。\n夕食後の薬を朝食後にまとめることは可能でしょうか。",
                None,
            ),
            (
                DOCTOR,
                "次回処方から朝食後にまとめます。飲み忘れ防止にお薬カレンダーの設置もお願いします。",
                Some(0),
            ),
            (
                PHARMACY,
                "承知しました。お薬カレンダーを設置し、ご家族にも説明しました。",
                Some(1),
            ),
        ],
    },
    Template {
        subject: "転倒の報告",
        urgency: LiaisonUrgency::Urgent,
        to: None,
        messages: &[
            (
                HELPER,
                "本日10時の訪問時、居間で座り込んでいるところを発見しました。本人によると朝8時ごろ転倒。\n頭部打撲なし、右膝に擦過傷あり。立ち上がりは一部介助で可能でした。",
                None,
            ),
            (
                NURSE,
                "午後に臨時訪問し、右膝の処置と全身状態の確認をします。",
                Some(0),
            ),
            (
                DOCTOR,
                "痛みや腫れが強くなるようなら連絡をください。明日の訪問診療で診察します。",
                Some(0),
            ),
            (
                CARE_MANAGER,
                "居間とトイレへの手すりの追加について、福祉用具事業所と調整します。",
                None,
            ),
        ],
    },
    Template {
        subject: "口腔ケアについて",
        urgency: LiaisonUrgency::Normal,
        to: Some(&[Role::CareManager]),
        messages: &[
            (
                DENTIST,
                "訪問歯科診療で上顎の義歯を調整しました。食後の義歯洗浄と、就寝時は外して水につけて保管するよう、ご家族とヘルパーの方にもお伝えください。",
                None,
            ),
            (
                CARE_MANAGER,
                "承知しました。ヘルパー事業所とご家族に共有しました。",
                Some(0),
            ),
        ],
    },
    Template {
        subject: "皮膚の発赤について",
        urgency: LiaisonUrgency::Normal,
        to: Some(&[Role::VisitingNurse, Role::CareManager]),
        messages: &[
            (
                HELPER,
                "入浴介助の際、仙骨部に直径2cmほどの発赤を認めました。押すと白くなります。痛みの訴えはありません。",
                None,
            ),
            (
                NURSE,
                "明日の訪問で確認します。除圧マットの導入についてケアマネジャーと相談します。",
                Some(0),
            ),
            (
                CARE_MANAGER,
                "福祉用具専門相談員に連絡し、今週中にマットを交換します。",
                Some(1),
            ),
        ],
    },
];

/// Writes thread number `t` from `template` for the patient, if its team has
/// everyone the template needs. `k`: the patient's threads so far (they lie
/// on different days).
fn thread(
    rng: &mut SplitMix64,
    rows: &mut Rows,
    p: &Patient<'_>,
    template: &Template,
    t: usize,
    k: usize,
) -> bool {
    let mut authors = Vec::with_capacity(template.messages.len());
    for ((role, profession), _, _) in template.messages {
        match p.writer(*role, *profession) {
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
    let named: BTreeSet<usize> = match template.to {
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
    let parties: BTreeSet<usize> = match template.to {
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
    for (i, ((_, _, reply), (org, member))) in template.messages.iter().zip(&authors).enumerate() {
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
            body: template.messages[i].1.to_string(),
            reply_to_message_id: reply.map(|r| ids[r]),
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
        subject: template.subject.to_string(),
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
            TEMPLATES.len(),
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
