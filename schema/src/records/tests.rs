use async_graphql::{EmptyMutation, EmptySubscription, InputType, Name, Object, Schema, Value};
use base64::Engine;
use chrono::NaiveDate;

use super::*;
use crate::domain::DataCategory;
use crate::error::ApiError;
use crate::graphql::Date;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn date(s: &str) -> Date {
    Date(day(s))
}

fn today() -> NaiveDate {
    day("2025-06-15")
}

fn s(v: &str) -> String {
    v.to_string()
}

fn condition() -> ConditionData {
    ConditionData {
        name: s("2型糖尿病"),
        icd10: Some(s("E11.9")),
        clinical_status: ClinicalStatus::Active,
        onset: Some(date("2015-04-01")),
        resolved_on: None,
        sensitivity: None,
        note: None,
        codings: Vec::new(),
    }
}

fn lab() -> LabResultData {
    LabResultData {
        code: Some(s("3D045000001906202")),
        name: s("HbA1c"),
        value: s("7.2"),
        numeric_value: Some(7.2),
        unit: Some(s("%")),
        reference_low: Some(4.6),
        reference_high: Some(6.2),
        abnormal: AbnormalFlag::High,
        codings: Vec::new(),
    }
}

fn prescription() -> PrescriptionData {
    PrescriptionData {
        medication_type: MedicationType::Prescription,
        drug: s("アムロジピン錠5mg"),
        yj_code: Some(s("2171022F1020")),
        dose: s("1錠"),
        route: MedicationRoute::Oral,
        frequency: s("1日1回朝食後"),
        days: Some(28),
        start_date: date("2025-06-01"),
        end_date: Some(date("2025-06-28")),
        prescriber: Some(s("佐藤 一郎")),
        codings: Vec::new(),
    }
}

fn document() -> ClinicalDocumentData {
    ClinicalDocumentData {
        document_type: ClinicalDocumentType::DischargeSummary,
        title: s("退院時サマリー"),
        text: s("経過良好にて退院。\n自宅にて療養継待。"),
        author_name: Some(s("名寄 花子")),
        attachments: vec![Attachment {
            filename: s("summary.pdf"),
            mime_type: s("application/pdf"),
            content_base64: base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 test"),
        }],
        codings: Vec::new(),
    }
}

fn acp() -> AdvanceCarePlanData {
    AdvanceCarePlanData {
        place_of_care: Some(PlaceWish::Home),
        place_of_death: Some(PlaceWish::Home),
        cpr: Some(Wish::Declines),
        life_prolonging_treatment: Some(Wish::Declines),
        tube_feeding: Some(Wish::Undecided),
        hospitalization: None,
        proxy_name: Some(s("山田 太郎")),
        proxy_relationship: Some(s("長男")),
        participants: vec![s("本人"), s("長男"), s("主治医")],
        confirmed_on: Some(date("2025-06-01")),
        note: None,
    }
}

fn emergency_information() -> EmergencyInformationData {
    EmergencyInformationData {
        usual_hospital: Some(EmergencyFacility {
            name: s("みなみ野市立総合病院 循環器内科"),
            phone: Some(s("0157-24-3111")),
            note: None,
        }),
        emergency_contacts: vec![
            EmergencyContact {
                name: s("山田 花子"),
                relationship: s("長女"),
                phone: s("090-1234-5678"),
                available: Some(s("平日18時以降")),
                key_person: true,
            },
            EmergencyContact {
                name: s("訪問看護ステーションみなみ野"),
                relationship: s("訪問看護（24時間）"),
                phone: s("0157-27-3300"),
                available: Some(s("24時間")),
                key_person: false,
            },
        ],
        expected_emergencies: vec![ExpectedEmergency {
            situation: s("低血糖（冷汗・意識低下）"),
            response: s("ブドウ糖10gを口に含ませ、訪問看護へ連絡する。"),
            call_first: Some(s("訪問看護 0157-27-3300")),
        }],
        designated_hospital: Some(DesignatedHospital {
            name: s("みなみ野市立総合病院"),
            phone: Some(s("0157-24-3111")),
            backup_bed: true,
            note: None,
        }),
        diagnoses: vec![s("慢性心不全")],
        medications: vec![s("フロセミド錠20mg 1日1回朝")],
        note: Some(s("玄関の鍵は郵便受けの中")),
    }
}

/// One valid record of every kind.
fn samples() -> Vec<RecordData> {
    vec![
        RecordData::Condition(condition()),
        RecordData::Allergy(AllergyData {
            substance: s("ペニシリン"),
            allergy_type: AllergyType::Drug,
            reaction: Some(s("全身蕁麻疹")),
            severity: AllergySeverity::Severe,
            codings: Vec::new(),
        }),
        RecordData::Infection(InfectionData {
            pathogen: Pathogen::HbsAntigen,
            other_name: None,
            result: InfectionResult::Negative,
            tested_on: Some(date("2025-05-01")),
            note: None,
            codings: Vec::new(),
        }),
        RecordData::DrugContraindication(DrugContraindicationData {
            drug: s("ワルファリン"),
            yj_code: None,
            reason: s("消化管出血の既往"),
            codings: Vec::new(),
        }),
        RecordData::LabResult(lab()),
        RecordData::Prescription(prescription()),
        RecordData::ImagingReport(ImagingReportData {
            modality: ImagingModality::XRay,
            body_site: s("胸部"),
            findings: s("右下肺野に浸潤影"),
            impression: Some(s("肺炎疑い")),
        }),
        RecordData::VitalSigns(VitalSignsData {
            temperature: Some(36.8),
            systolic: Some(132.0),
            diastolic: Some(78.0),
            pulse: Some(72.0),
            respiratory_rate: None,
            spo2: Some(97.0),
            weight_kg: None,
        }),
        RecordData::ClinicalDocument(document()),
        RecordData::OralFinding(OralFindingData {
            findings: s("残根多数、歯肉炎"),
            remaining_teeth: Some(12),
        }),
        RecordData::Denture(DentureData {
            denture_type: DentureType::Partial,
            jaw: Jaw::Upper,
            fit: Rating::Fair,
            note: None,
        }),
        RecordData::OralHygiene(OralHygieneData {
            level: Rating::Poor,
            note: Some(s("食渣残留あり")),
        }),
        RecordData::SwallowingAssessment(SwallowingAssessmentData {
            method: s("RSST"),
            level: Some(7),
            diet_form: Some(s("嚥下調整食3")),
            findings: s("30秒で2回"),
        }),
        RecordData::VisitingDentalNote(VisitingDentalNoteData {
            text: s("義歯調整を実施"),
        }),
        RecordData::Dispensing(DispensingData {
            drug: s("アムロジピン錠5mg"),
            yj_code: Some(s("2171022F1020")),
            quantity: 28.0,
            unit: s("錠"),
            days: Some(28),
            note: None,
            codings: Vec::new(),
        }),
        RecordData::MedicationManagementReport(MedicationManagementReportData {
            adherence: Rating::Fair,
            leftover_medication: Some(s("夕食後分が10日分残薬")),
            problems: None,
            actions: Some(s("一包化を提案")),
        }),
        RecordData::CareCertification(CareCertificationData {
            level: CareLevel::Care2,
            valid_from: date("2025-04-01"),
            valid_to: date("2026-03-31"),
            status: CertificationStatus::Certified,
            insurer_number: Some(s("012211")),
            bedridden_rank: Some(BedriddenRank::A2),
            dementia_rank: Some(DementiaRank::IIa),
        }),
        RecordData::CarePlan(CarePlanData {
            long_term_goals: s("自宅で安心して暮らし続ける"),
            short_term_goals: s("転倒なく屋内を歩ける"),
            services: vec![PlannedService {
                service_type: s("訪問介護"),
                provider: Some(s("なよろヘルパーステーション")),
                frequency: s("週2回"),
            }],
        }),
        RecordData::Assessment(AssessmentData {
            summary: s("独居、長女が近隣在住"),
            living_situation: None,
            concerns: Some(s("服薬管理")),
        }),
        RecordData::AdlAssessment(AdlAssessmentData {
            eating: Some(AdlLevel::Independent),
            excretion: Some(AdlLevel::Supervision),
            transfer: None,
            walking: Some(AdlLevel::PartialAssistance),
            bathing: Some(AdlLevel::FullAssistance),
            dressing: None,
            cognition: None,
            note: None,
        }),
        RecordData::HomeEnvironment(HomeEnvironmentData {
            housing_type: HousingType::DetachedHouse,
            lives_alone: true,
            barriers: Some(s("玄関に段差")),
            note: None,
        }),
        RecordData::FamilyCareCapacity(FamilyCareCapacityData {
            capacity: CareCapacity::Limited,
            key_person_name: Some(s("山田 花子")),
            key_person_relationship: Some(s("長女")),
            key_person_phone: Some(s("01654-2-1234")),
            note: None,
        }),
        RecordData::ServiceUse(ServiceUseData {
            service_type: s("通所介護"),
            provider: None,
            frequency: Some(s("週1回")),
            start_date: date("2024-10-01"),
            end_date: None,
        }),
        RecordData::VisitingNurseReport(VisitingNurseReportData {
            condition: s("状態安定"),
            care_provided: s("バイタル測定、服薬確認"),
            note: None,
        }),
        RecordData::DailyObservation(DailyObservationData {
            observation: s("食欲低下あり"),
            concern: true,
        }),
        RecordData::AdvanceCarePlan(acp()),
        RecordData::EmergencyInformation(emergency_information()),
        RecordData::CareCautions(CareCautionsData {
            items: vec![CautionItem {
                area: CautionArea::Bathing,
                caution: s("入浴は 38℃ 以下、10 分以内"),
            }],
            call_when: Some(s("SpO2 90% 未満、または 38℃ 以上の発熱")),
        }),
        RecordData::IllnessExplanation(IllnessExplanationData {
            explained_by: s("主治医 佐藤"),
            told: vec![s("本人"), s("長女")],
            explanation: s("心不全が進行しており、入退院を繰り返す可能性が高い"),
            patient_understanding: Some(s("家で過ごしたい")),
            family_understanding: None,
            prognosis_told: Some(true),
        }),
        RecordData::VisitingNurseInstruction(VisitingNurseInstructionData {
            instruction_type: VisitingNurseInstructionType::Special,
            valid_from: Date(today()),
            valid_to: Date(today() + chrono::Duration::days(13)),
            station: s("北見ひまわり訪問看護ステーション"),
            main_diagnosis: s("慢性心不全の急性増悪"),
            instructions: s("毎日訪問し、体重・浮腫・SpO2 を観察"),
            medical_devices: vec![s("在宅酸素 2L/分")],
            reason: Some(s("急性増悪のため頻回の観察が必要")),
            of_patient: Default::default(),
        }),
        RecordData::PhysicianOpinion(PhysicianOpinionData {
            purpose: OpinionPurpose::Renewal,
            written_on: date("2025-02-10"),
            diagnoses: vec![s("慢性心不全"), s("アルツハイマー型認知症")],
            bedridden_rank: Some(BedriddenRank::A2),
            dementia_rank: Some(DementiaRank::IIb),
            special_medical_care: vec![s("酸素療法")],
            care_cautions: Some(s("息切れに注意し、入浴は短時間で")),
            remarks: None,
            of_patient: Default::default(),
        }),
        RecordData::HomeCareGuidanceInstruction(HomeCareGuidanceInstructionData {
            service: GuidanceService::Pharmacist,
            provider: s("北見中央薬局"),
            valid_from: date("2025-06-01"),
            valid_to: None,
            visits_per_month: Some(2),
            instructions: s("残薬確認と服薬カレンダーの調整"),
        }),
        RecordData::DentalVisitRequest(dental_visit_request()),
    ]
}

fn dental_visit_request() -> DentalVisitRequestData {
    DentalVisitRequestData {
        requested_provider: s("釜石歯科医師会"),
        requested_on: date("2025-06-10"),
        reasons: vec![
            DentalScreeningReason::DentureIllFitting,
            DentalScreeningReason::ChewingDifficulty,
        ],
        other_reason: None,
        patient_wishes_treatment: true,
        family_consents: Some(true),
        place_of_visit: DentalVisitPlace::Home,
        facility_name: None,
        preferred_times: Some(s("平日午前（火曜はデイサービス）")),
        can_sit_upright: Some(true),
        uses_wheelchair: Some(false),
        observations: s("下顎の総義歯が外れやすく、食事に時間がかかる"),
        urgency: Some(DentalVisitUrgency::Soon),
    }
}

fn field_of(result: Result<(), ApiError>) -> String {
    match result {
        Err(ApiError::BadUserInput { field, .. }) => field,
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}

fn implausible_field_of(result: Result<(), ApiError>) -> String {
    match result {
        Err(ApiError::ImplausibleValue { field, .. }) => field,
        other => panic!("expected IMPLAUSIBLE_VALUE, got {other:?}"),
    }
}

#[test]
fn samples_cover_every_kind_and_are_valid() {
    let kinds: Vec<RecordKind> = samples().iter().map(RecordData::kind).collect();
    assert_eq!(kinds, RecordKind::ALL);
    for r in samples() {
        assert!(
            r.validate(today()).is_ok(),
            "{:?}: {:?}",
            r.kind(),
            r.validate(today())
        );
    }
}

#[test]
fn every_kind_round_trips_through_json() {
    for r in samples() {
        let json = r.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert!(value.is_object(), "the inner struct only: {json}");
        assert_eq!(RecordData::from_json(r.kind(), &json).unwrap(), r);
    }
}

#[test]
fn stored_json_is_camel_case_with_database_strings() {
    let json = RecordData::LabResult(lab()).to_json();
    assert!(json.contains(r#""referenceHigh":6.2"#), "{json}");
    assert!(json.contains(r#""abnormal":"HIGH""#), "{json}");
    let json = RecordData::CareCertification(CareCertificationData {
        level: CareLevel::Support1,
        valid_from: date("2025-04-01"),
        valid_to: date("2026-03-31"),
        status: CertificationStatus::Certified,
        insurer_number: None,
        bedridden_rank: None,
        dementia_rank: None,
    })
    .to_json();
    assert!(json.contains(r#""level":"SUPPORT_1""#), "{json}");
    assert!(json.contains(r#""validFrom":"2025-04-01""#), "{json}");
}

#[test]
fn unreadable_json_is_internal() {
    let err = RecordData::from_json(RecordKind::Condition, r#"{"name": 1}"#).unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
    let err = RecordData::from_json(
        RecordKind::LabResult,
        &RecordData::Condition(condition()).to_json(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "INTERNAL");
}

#[test]
fn missing_defaults_are_filled_when_reading() {
    let r =
        RecordData::from_json(RecordKind::DailyObservation, r#"{"observation":"発熱"}"#).unwrap();
    assert_eq!(
        r,
        RecordData::DailyObservation(DailyObservationData {
            observation: s("発熱"),
            concern: false
        })
    );
}

#[test]
fn categories_follow_kinds_and_sensitive_content() {
    for r in samples() {
        assert_eq!(r.category(), r.kind().default_category(), "{:?}", r.kind());
    }
    assert_eq!(
        RecordKind::VitalSigns.default_category(),
        DataCategory::Observations
    );
    assert_eq!(
        RecordKind::DailyObservation.default_category(),
        DataCategory::Observations
    );

    for result in [InfectionResult::Positive, InfectionResult::Negative] {
        let hiv = RecordData::Infection(InfectionData {
            pathogen: Pathogen::Hiv,
            other_name: None,
            result,
            tested_on: None,
            note: None,
            codings: Vec::new(),
        });
        assert_eq!(hiv.category(), DataCategory::SensitiveHiv);
    }
    for (sensitivity, category) in [
        (
            ConditionSensitivity::Psychiatric,
            DataCategory::SensitivePsychiatric,
        ),
        (ConditionSensitivity::Hiv, DataCategory::SensitiveHiv),
        (
            ConditionSensitivity::Genetic,
            DataCategory::SensitiveGenetic,
        ),
    ] {
        let c = RecordData::Condition(ConditionData {
            sensitivity: Some(sensitivity),
            ..condition()
        });
        assert_eq!(c.category(), category);
    }
    // A lab result of an HIV test, by its name or a coding's display, in
    // half- or full-width letters: SENSITIVE_HIV; other tests stay LAB_RESULTS.
    for name in [
        "HIV-1/2抗体",
        "ＨＩＶ抗原・抗体",
        "hiv-1 rna定量",
        "ヒト免疫不全ウイルス抗体",
    ] {
        let l = RecordData::LabResult(LabResultData {
            name: s(name),
            ..lab()
        });
        assert_eq!(l.category(), DataCategory::SensitiveHiv, "{name}");
    }
    let coded = RecordData::LabResult(LabResultData {
        name: s("5F101"),
        codings: vec![Coding {
            system: s("urn:oid:1.2.392.200119.4.504"),
            code: s("5F101000002302301"),
            display: Some(s("HIV-1抗体")),
        }],
        ..lab()
    });
    assert_eq!(coded.category(), DataCategory::SensitiveHiv);
    assert_eq!(
        RecordData::LabResult(lab()).category(),
        DataCategory::LabResults
    );
    for name in [
        "HIVAb",
        "HIVRNA定量",
        "anti-HIV",
        "antiHIV抗体",
        "ＨＩＶＡｇ／Ａｂ",
        "H I V抗体",
        "Ｈ　Ｉ　Ｖ抗体",
        "H-I-V",
        "ΗΙV抗体",
        "НІѴ",
        "ヒト免疫不全 ウイルス",
        "Rapid HIV test",
        "Combo HIV Ag/Ab",
        "Screening HIV antibody",
        "Asymptomatic HIV infection",
        "HCV・HIV",
        "HCV HIV",
        "HBs HIV HCV panel",
        "Pneumonia with AIDS",
        "HⅣ抗体",
        "A I D S",
    ] {
        let l = RecordData::LabResult(LabResultData {
            name: s(name),
            ..lab()
        });
        assert_eq!(l.category(), DataCategory::SensitiveHiv, "{name}");
    }
    for name in [
        "ARCHIVED HbA1c",
        "Hives skin test",
        "CHIVE allergen",
        "Hi ves",
        "PH IV",
        "Fe (IV)",
        "HI Virus",
        "風疹 HI VZV",
        "H IV",
        "RAIDS",
    ] {
        let l = RecordData::LabResult(LabResultData {
            name: s(name),
            ..lab()
        });
        assert_eq!(l.category(), DataCategory::LabResults, "{name}");
    }
    // Coded as HIV disease but not marked: still SENSITIVE_HIV.
    for code in ["B20", "B24.0", "Z21"] {
        let c = RecordData::Condition(ConditionData {
            icd10: Some(s(code)),
            ..condition()
        });
        assert_eq!(c.category(), DataCategory::SensitiveHiv, "{code}");
    }
    let c = RecordData::Condition(ConditionData {
        icd10: Some(s("B25")),
        ..condition()
    });
    assert_eq!(c.category(), DataCategory::Conditions);
    // Named HIV but neither marked nor ICD-10-coded in `icd10`: by its
    // name, an ICD-10 coding, or a coding's display (a 病名交換用コード
    // with 「HIV感染症」) — whatever other mark it carries.
    for (name, codings, sensitivity) in [
        ("HIV感染症", Vec::new(), None),
        ("ＨＩＶ病", Vec::new(), None),
        ("後天性免疫不全症候群（エイズ）", Vec::new(), None),
        (
            "HIV脳症",
            Vec::new(),
            Some(ConditionSensitivity::Psychiatric),
        ),
        (
            "免疫不全",
            vec![Coding {
                system: s("http://jpfhir.jp/fhir/core/CodeSystem/icd-10"),
                code: s("B23.8"),
                display: None,
            }],
            None,
        ),
        (
            "感染症",
            vec![Coding {
                system: s("http://medis.or.jp/CodeSystem/master-disease-keyNumber"),
                code: s("20054567"),
                display: Some(s("ＨＩＶ感染症")),
            }],
            None,
        ),
    ] {
        let c = RecordData::Condition(ConditionData {
            name: s(name),
            codings,
            sensitivity,
            ..condition()
        });
        assert_eq!(c.category(), DataCategory::SensitiveHiv, "{name}");
    }
    // An ICD-10 code of HIV in another system's coding is another code.
    let other = RecordData::Condition(ConditionData {
        codings: vec![Coding {
            system: s("urn:oid:1.2.392.200119.4.101.6"),
            code: s("B20"),
            display: None,
        }],
        ..condition()
    });
    assert_eq!(other.category(), DataCategory::Conditions);
    // An infection of pathogen OTHER named HIV (as a FHIR infection
    // Observation in full-width letters or katakana arrives), or coded so.
    for (name, display) in [
        (Some("ＨＩＶ抗体"), None),
        (Some("ヒト免疫不全ウイルス抗体"), None),
        (Some("HIV-1/2抗体"), None),
        (None, Some("HIV-1抗体")),
    ] {
        let i = RecordData::Infection(InfectionData {
            pathogen: Pathogen::Other,
            other_name: name.map(s),
            result: InfectionResult::Positive,
            tested_on: None,
            note: None,
            codings: display
                .map(|d| {
                    vec![Coding {
                        system: s("urn:oid:1.2.392.200119.4.504"),
                        code: s("5F101000002302301"),
                        display: Some(s(d)),
                    }]
                })
                .unwrap_or_default(),
        });
        assert_eq!(i.category(), DataCategory::SensitiveHiv, "{name:?}");
    }
    let other = RecordData::Infection(InfectionData {
        pathogen: Pathogen::Other,
        other_name: Some(s("インフルエンザ抗原")),
        result: InfectionResult::Positive,
        tested_on: None,
        note: None,
        codings: Vec::new(),
    });
    assert_eq!(other.category(), DataCategory::Infections);
}

#[test]
fn summary_rules() {
    use SummaryRule::*;
    assert_eq!(RecordKind::Condition.summary_rule(), WhileCurrent);
    assert_eq!(RecordKind::Prescription.summary_rule(), WhileCurrent);
    assert_eq!(RecordKind::LabResult.summary_rule(), LatestOfSeries);
    assert_eq!(RecordKind::CareCertification.summary_rule(), LatestOfSeries);
    assert_eq!(RecordKind::AdvanceCarePlan.summary_rule(), LatestOfSeries);
    assert_eq!(
        RecordKind::EmergencyInformation.summary_rule(),
        LatestOfSeries
    );
    assert_eq!(RecordKind::ClinicalDocument.summary_rule(), Never);
    for r in samples() {
        let rule = r.kind().summary_rule();
        assert_eq!(
            r.series_key().is_some(),
            rule == LatestOfSeries,
            "{:?}",
            r.kind()
        );
        if rule != WhileCurrent {
            assert!(!r.is_current(today()), "{:?}", r.kind());
        }
    }
}

#[test]
fn lab_series_prefers_the_code_then_the_name() {
    let with_code = RecordData::LabResult(lab());
    assert_eq!(with_code.series_key().as_deref(), Some("3D045000001906202"));
    let by_name = RecordData::LabResult(LabResultData {
        code: None,
        name: s("  HbA1c "),
        ..lab()
    });
    assert_eq!(by_name.series_key().as_deref(), Some("HbA1c"));
    let adl = samples()
        .into_iter()
        .find(|r| r.kind() == RecordKind::AdlAssessment)
        .unwrap();
    assert_eq!(adl.series_key().as_deref(), Some(""));
    assert_eq!(RecordData::Condition(condition()).series_key(), None);
}

#[test]
fn prescriptions_are_current_between_start_and_last_day() {
    let p = |start: &str, end: Option<&str>, days: Option<i32>| {
        RecordData::Prescription(PrescriptionData {
            start_date: date(start),
            end_date: end.map(date),
            days,
            ..prescription()
        })
    };
    let t = today(); // 2025-06-15
    assert!(p("2025-06-01", Some("2025-06-28"), None).is_current(t));
    assert!(p("2025-06-01", Some("2025-06-15"), None).is_current(t));
    assert!(!p("2025-06-01", Some("2025-06-14"), None).is_current(t));
    assert!(!p("2025-06-16", None, None).is_current(t), "not started");
    assert!(p("2025-06-15", None, None).is_current(t));
    assert!(p("2020-01-01", None, None).is_current(t), "open-ended");
    // Without an end date, `days` decides: day 15 of 15 is current, of 14 is not.
    assert!(p("2025-06-01", None, Some(15)).is_current(t));
    assert!(!p("2025-06-01", None, Some(14)).is_current(t));
    // The span the hub stores for the summary's index: the last day in force.
    assert_eq!(
        p("2025-06-01", None, Some(14)).current_span(),
        Some((date("2025-06-01").0, date("2025-06-14").0))
    );
    assert_eq!(
        p("2025-06-01", None, None).current_span(),
        Some((date("2025-06-01").0, crate::records::FOREVER))
    );
    let (flagged, until) =
        crate::services::records::summary_placement(&p("2025-06-01", Some("2025-06-14"), None));
    assert!(flagged);
    assert_eq!(until, date("2025-06-14").0);
}

#[test]
fn other_current_rules() {
    let t = today();
    let resolved = RecordData::Condition(ConditionData {
        clinical_status: ClinicalStatus::Resolved,
        ..condition()
    });
    assert!(RecordData::Condition(condition()).is_current(t));
    assert!(!resolved.is_current(t));
    // Never again in force: written without the summary flag, so the
    // summary never reads it.
    assert_eq!(resolved.current_span(), None);
    assert!(!crate::services::records::summary_placement(&resolved).0);
    let infection = |result| {
        RecordData::Infection(InfectionData {
            pathogen: Pathogen::Mrsa,
            other_name: None,
            result,
            tested_on: None,
            note: None,
            codings: Vec::new(),
        })
    };
    assert!(infection(InfectionResult::Positive).is_current(t));
    assert!(!infection(InfectionResult::Negative).is_current(t));
    assert!(!infection(InfectionResult::Unknown).is_current(t));
}

#[test]
fn condition_validation() {
    let check = |c: ConditionData| field_of(RecordData::Condition(c).validate(today()));
    for good in ["I10", "E11.9", "C34.1", "E119", "S72.00"] {
        let c = ConditionData {
            icd10: Some(s(good)),
            ..condition()
        };
        assert!(RecordData::Condition(c).validate(today()).is_ok(), "{good}");
    }
    for bad in ["XYZ", "E1", "11.9", "e11.9", "E11.", "E11.12345", "E11-9"] {
        assert_eq!(
            check(ConditionData {
                icd10: Some(s(bad)),
                ..condition()
            }),
            "condition.icd10",
            "{bad}"
        );
    }
    assert_eq!(
        check(ConditionData {
            onset: Some(date("2020-05-01")),
            resolved_on: Some(date("2020-04-30")),
            clinical_status: ClinicalStatus::Resolved,
            ..condition()
        }),
        "condition.resolvedOn"
    );
    assert_eq!(
        check(ConditionData {
            name: s("  "),
            ..condition()
        }),
        "condition.name"
    );
    assert_eq!(
        check(ConditionData {
            onset: Some(date("2025-06-16")),
            ..condition()
        }),
        "condition.onset"
    );
}

#[test]
fn lab_result_validation() {
    let check = |l: LabResultData| field_of(RecordData::LabResult(l).validate(today()));
    assert_eq!(
        check(LabResultData {
            reference_low: Some(7.0),
            reference_high: Some(6.0),
            ..lab()
        }),
        "labResult.referenceHigh"
    );
    assert_eq!(
        check(LabResultData {
            code: Some(s("3D 04")),
            ..lab()
        }),
        "labResult.code"
    );
    assert_eq!(
        check(LabResultData {
            value: s(""),
            ..lab()
        }),
        "labResult.value"
    );
    let text = LabResultData {
        value: s("陰性"),
        unit: None,
        reference_low: None,
        reference_high: None,
        ..lab()
    };
    assert!(RecordData::LabResult(text).validate(today()).is_ok());
    for impossible in ["-5.0", "72", "−1"] {
        assert_eq!(
            implausible_field_of(
                RecordData::LabResult(LabResultData {
                    value: s(impossible),
                    ..lab()
                })
                .validate(today())
            ),
            "labResult.value",
            "{impossible}"
        );
    }
}

#[test]
fn a_lab_result_keeps_its_number_and_a_qualitative_one_its_text() {
    let input = RecordDataInput::LabResult(LabResultData {
        value: s("6,500"),
        numeric_value: None,
        ..lab()
    });
    let data = RecordData::from(input);
    let RecordData::LabResult(d) = &data else {
        unreachable!()
    };
    assert_eq!(d.numeric_value, Some(6500.0));
    // Stored with the number, read back the same.
    assert!(data.to_json().contains("\"numericValue\":6500.0"));
    assert_eq!(
        RecordData::from_json(RecordKind::LabResult, &data.to_json()).unwrap(),
        data
    );
    // A result stored before the number was kept reads with it.
    let old = r#"{"code":null,"name":"HbA1c","value":"7.2","unit":"%","referenceLow":null,"referenceHigh":null,"abnormal":"HIGH"}"#;
    let RecordData::LabResult(d) = RecordData::from_json(RecordKind::LabResult, old).unwrap()
    else {
        unreachable!()
    };
    assert_eq!(d.numeric_value, Some(7.2));
    let RecordData::LabResult(d) = RecordData::from(RecordDataInput::LabResult(LabResultData {
        value: s("陰性"),
        numeric_value: None,
        ..lab()
    })) else {
        unreachable!()
    };
    assert_eq!((d.value.as_str(), d.numeric_value), ("陰性", None));
}

#[test]
fn acp_validation() {
    assert_eq!(
        field_of(
            RecordData::AdvanceCarePlan(AdvanceCarePlanData {
                confirmed_on: Some(date("2025-06-16")),
                ..acp()
            })
            .validate(today())
        ),
        "advanceCarePlan.confirmedOn"
    );
    let empty = AdvanceCarePlanData {
        place_of_care: None,
        place_of_death: None,
        cpr: None,
        life_prolonging_treatment: None,
        tube_feeding: None,
        hospitalization: None,
        proxy_name: None,
        proxy_relationship: None,
        participants: vec![],
        confirmed_on: None,
        note: None,
    };
    assert!(
        RecordData::AdvanceCarePlan(empty).validate(today()).is_ok(),
        "every section may be empty"
    );
}

#[test]
fn emergency_information_validation() {
    let field = |d: EmergencyInformationData| {
        field_of(RecordData::EmergencyInformation(d).validate(today()))
    };
    assert_eq!(
        field(EmergencyInformationData {
            emergency_contacts: vec![],
            ..emergency_information()
        }),
        "emergencyInformation.emergencyContacts",
        "whom to call is the point of the sheet"
    );
    let mut two_key_persons = emergency_information();
    two_key_persons.emergency_contacts[1].key_person = true;
    assert_eq!(
        field(two_key_persons),
        "emergencyInformation.emergencyContacts[1].keyPerson"
    );
    let mut bad_phone = emergency_information();
    bad_phone.emergency_contacts[1].phone = s("119");
    assert_eq!(
        field(bad_phone),
        "emergencyInformation.emergencyContacts[1].phone"
    );
    let mut empty_response = emergency_information();
    empty_response.expected_emergencies[0].response = s("  ");
    assert_eq!(
        field(empty_response),
        "emergencyInformation.expectedEmergencies[0].response"
    );
    let mut hospital = emergency_information();
    if let Some(h) = hospital.designated_hospital.as_mut() {
        h.name = s("");
    }
    assert_eq!(
        field(hospital),
        "emergencyInformation.designatedHospital.name"
    );
    assert_eq!(
        field(EmergencyInformationData {
            diagnoses: vec![s("心不全"), s("a\nb")],
            ..emergency_information()
        }),
        "emergencyInformation.diagnoses[1]"
    );
    assert_eq!(
        field(EmergencyInformationData {
            medications: vec![s("x"); SHEET_LIST_MAX + 1],
            ..emergency_information()
        }),
        "emergencyInformation.medications"
    );
    assert_eq!(
        emergency_information()
            .key_person()
            .map(|c| c.relationship.as_str()),
        Some("長女")
    );
}

/// The hand-typed diagnoses and medications are stored but not part of the
/// output object: they are read under their own categories.
#[test]
fn hand_typed_lists_of_the_emergency_sheet_are_input_only() {
    let sdl = test_schema().sdl();
    let output = sdl
        .split("type EmergencyInformationData {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the output type is in the schema");
    assert!(
        !output.contains("diagnoses") && !output.contains("medications"),
        "{output}"
    );
    let input = sdl
        .split("input EmergencyInformationDataInput {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the input type is in the schema");
    assert!(input.contains("diagnoses: [String!]! = []"), "{input}");
    let json = RecordData::EmergencyInformation(emergency_information()).to_json();
    assert!(json.contains(r#""diagnoses":["慢性心不全"]"#), "{json}");
}

#[test]
fn attachment_validation() {
    let with = |a: Attachment| {
        field_of(
            RecordData::ClinicalDocument(ClinicalDocumentData {
                attachments: vec![document().attachments[0].clone(), a],
                ..document()
            })
            .validate(today()),
        )
    };
    let good = document().attachments[0].clone();
    assert_eq!(
        with(Attachment {
            mime_type: s("application/x-msdownload"),
            ..good.clone()
        }),
        "clinicalDocument.attachments[1].mimeType"
    );
    let big = base64::engine::general_purpose::STANDARD.encode(vec![0u8; 512 * 1024 + 1]);
    assert_eq!(
        with(Attachment {
            content_base64: big,
            ..good.clone()
        }),
        "clinicalDocument.attachments[1].contentBase64"
    );
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(512 * 1024, b' ');
    let exactly = base64::engine::general_purpose::STANDARD.encode(pdf);
    let ok = ClinicalDocumentData {
        attachments: vec![Attachment {
            content_base64: exactly,
            ..good.clone()
        }],
        ..document()
    };
    assert!(RecordData::ClinicalDocument(ok).validate(today()).is_ok());
    assert_eq!(
        with(Attachment {
            content_base64: s("not base64!"),
            ..good.clone()
        }),
        "clinicalDocument.attachments[1].contentBase64"
    );
    assert_eq!(
        with(Attachment {
            filename: s("../etc/passwd"),
            ..good.clone()
        }),
        "clinicalDocument.attachments[1].filename"
    );
    // The content must look like its type, as for liaison messages.
    assert_eq!(
        with(Attachment {
            mime_type: s("image/png"),
            ..good.clone()
        }),
        "clinicalDocument.attachments[1].contentBase64",
        "a PDF declared as a PNG"
    );
    assert_eq!(
        field_of(
            RecordData::ClinicalDocument(ClinicalDocumentData {
                attachments: vec![good.clone(); 6],
                ..document()
            })
            .validate(today())
        ),
        "clinicalDocument.attachments"
    );
    // A scanned letter may come without text; a document without either may not.
    let scanned = ClinicalDocumentData {
        text: s(""),
        ..document()
    };
    assert!(
        RecordData::ClinicalDocument(scanned)
            .validate(today())
            .is_ok()
    );
    assert_eq!(
        field_of(
            RecordData::ClinicalDocument(ClinicalDocumentData {
                text: s(""),
                attachments: vec![],
                ..document()
            })
            .validate(today())
        ),
        "clinicalDocument.text"
    );
}

#[test]
fn vital_signs_need_one_plausible_measurement() {
    let none = VitalSignsData {
        temperature: None,
        systolic: None,
        diastolic: None,
        pulse: None,
        respiratory_rate: None,
        spo2: None,
        weight_kg: None,
    };
    assert!(
        RecordData::VitalSigns(none.clone())
            .validate(today())
            .is_err()
    );
    assert_eq!(
        implausible_field_of(
            RecordData::VitalSigns(VitalSignsData {
                spo2: Some(101.0),
                ..none.clone()
            })
            .validate(today())
        ),
        "vitalSigns.spo2"
    );
    assert_eq!(
        field_of(
            RecordData::VitalSigns(VitalSignsData {
                temperature: Some(f64::NAN),
                ..none.clone()
            })
            .validate(today())
        ),
        "vitalSigns.temperature"
    );
    assert!(
        RecordData::VitalSigns(VitalSignsData {
            weight_kg: Some(52.5),
            ..none
        })
        .validate(today())
        .is_ok()
    );
}

#[test]
fn other_validation() {
    let t = today();
    let other_without_name = RecordData::Infection(InfectionData {
        pathogen: Pathogen::Other,
        other_name: None,
        result: InfectionResult::Positive,
        tested_on: None,
        note: None,
        codings: Vec::new(),
    });
    assert_eq!(
        field_of(other_without_name.validate(t)),
        "infection.otherName"
    );
    let bad_phone = RecordData::FamilyCareCapacity(FamilyCareCapacityData {
        capacity: CareCapacity::None,
        key_person_name: None,
        key_person_relationship: None,
        key_person_phone: Some(s("123")),
        note: None,
    });
    assert_eq!(
        field_of(bad_phone.validate(t)),
        "familyCareCapacity.keyPersonPhone"
    );
    let bad_days = RecordData::Prescription(PrescriptionData {
        days: Some(0),
        ..prescription()
    });
    assert_eq!(field_of(bad_days.validate(t)), "prescription.days");
    let end_before_start = RecordData::Prescription(PrescriptionData {
        end_date: Some(date("2025-05-31")),
        ..prescription()
    });
    assert_eq!(
        field_of(end_before_start.validate(t)),
        "prescription.endDate"
    );
    let bad_yj = RecordData::Prescription(PrescriptionData {
        yj_code: Some(s("12345")),
        ..prescription()
    });
    assert_eq!(field_of(bad_yj.validate(t)), "prescription.yjCode");
    let bad_service = RecordData::CarePlan(CarePlanData {
        long_term_goals: s("a"),
        short_term_goals: s("b"),
        services: vec![PlannedService {
            service_type: s(""),
            provider: None,
            frequency: s("週1回"),
        }],
    });
    assert_eq!(
        field_of(bad_service.validate(t)),
        "carePlan.services[0].serviceType"
    );
    let no_adl = RecordData::AdlAssessment(AdlAssessmentData {
        eating: None,
        excretion: None,
        transfer: None,
        walking: None,
        bathing: None,
        dressing: None,
        cognition: None,
        note: Some(s("x")),
    });
    assert!(no_adl.validate(t).is_err());
    let name_with_newline = RecordData::Allergy(AllergyData {
        substance: s("卵\n牛乳"),
        allergy_type: AllergyType::Food,
        reaction: Some(s("発疹\n嘔吐")),
        severity: AllergySeverity::Mild,
        codings: Vec::new(),
    });
    assert_eq!(field_of(name_with_newline.validate(t)), "allergy.substance");
}

#[test]
fn input_fields_are_lower_camel_kind_names() {
    assert_eq!(RecordKind::LabResult.input_field(), "labResult");
    for k in RecordKind::ALL {
        let camel: String = k
            .as_str()
            .split('_')
            .enumerate()
            .map(|(i, w)| {
                let w = w.to_lowercase();
                if i == 0 {
                    w
                } else {
                    w[..1].to_uppercase() + &w[1..]
                }
            })
            .collect();
        assert_eq!(k.input_field(), camel);
    }
}

/// The GraphQL name of every value is its database string.
#[test]
fn graphql_enum_names_are_database_strings() {
    fn check<T: InputType + Copy>(all: &[T], as_str: fn(T) -> &'static str) {
        for v in all {
            assert_eq!(v.to_value(), Value::Enum(Name::new(as_str(*v))));
        }
    }
    check(RecordKind::ALL, RecordKind::as_str);
    check(ClinicalStatus::ALL, ClinicalStatus::as_str);
    check(ConditionSensitivity::ALL, ConditionSensitivity::as_str);
    check(AllergyType::ALL, AllergyType::as_str);
    check(AllergySeverity::ALL, AllergySeverity::as_str);
    check(Pathogen::ALL, Pathogen::as_str);
    check(InfectionResult::ALL, InfectionResult::as_str);
    check(AbnormalFlag::ALL, AbnormalFlag::as_str);
    check(MedicationType::ALL, MedicationType::as_str);
    check(MedicationRoute::ALL, MedicationRoute::as_str);
    check(ImagingModality::ALL, ImagingModality::as_str);
    check(ClinicalDocumentType::ALL, ClinicalDocumentType::as_str);
    check(Rating::ALL, Rating::as_str);
    check(DentureType::ALL, DentureType::as_str);
    check(Jaw::ALL, Jaw::as_str);
    check(CareLevel::ALL, CareLevel::as_str);
    check(AdlLevel::ALL, AdlLevel::as_str);
    check(HousingType::ALL, HousingType::as_str);
    check(CareCapacity::ALL, CareCapacity::as_str);
    check(PlaceWish::ALL, PlaceWish::as_str);
    check(Wish::ALL, Wish::as_str);
}

struct TestQuery;

#[Object]
impl TestQuery {
    async fn echo(&self, input: RecordDataInput) -> Vec<RecordData> {
        vec![input.into()]
    }
}

fn test_schema() -> Schema<TestQuery, EmptyMutation, EmptySubscription> {
    Schema::build(TestQuery, EmptyMutation, EmptySubscription).finish()
}

#[test]
fn record_data_is_a_union_and_the_input_a_oneof() {
    let sdl = test_schema().sdl();
    assert!(sdl.contains("union RecordData"), "{sdl}");
    assert!(sdl.contains("input RecordDataInput @oneOf"), "{sdl}");
    assert!(sdl.contains("type ConditionData"), "{sdl}");
    assert!(sdl.contains("input ConditionDataInput"), "{sdl}");
    assert!(sdl.contains("input AttachmentInput"), "{sdl}");
    assert!(sdl.contains("labResult: LabResultDataInput"), "{sdl}");
    assert!(
        sdl.contains("attachments: [AttachmentInput!]! = []"),
        "{sdl}"
    );
}

#[tokio::test]
async fn input_converts_to_output_through_graphql() {
    let query = r#"{
        echo(input: { careCertification: { level: SUPPORT_1, validFrom: "2025-04-01", validTo: "2026-03-31" } }) {
            __typename
            ... on CareCertificationData { level validFrom validTo insurerNumber }
        }
    }"#;
    let res = test_schema().execute(query).await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    let json = res.data.into_json().unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "echo": [{
            "__typename": "CareCertificationData",
            "level": "SUPPORT_1",
            "validFrom": "2025-04-01",
            "validTo": "2026-03-31",
            "insurerNumber": null
        }] })
    );

    // Two fields in a oneof input are refused.
    let res = test_schema()
        .execute(r#"{ echo(input: { visitingDentalNote: { text: "a" }, dailyObservation: { observation: "b" } }) { __typename } }"#)
        .await;
    assert!(!res.errors.is_empty());

    // Defaults apply to omitted list and flag fields.
    let res = test_schema()
        .execute(r#"{ echo(input: { dailyObservation: { observation: "b" } }) { ... on DailyObservationData { concern } } }"#)
        .await;
    assert!(res.errors.is_empty(), "{:?}", res.errors);
    assert_eq!(
        res.data.into_json().unwrap(),
        serde_json::json!({ "echo": [{ "concern": false }] })
    );
}

#[test]
fn plain_text_is_refused_when_it_is_a_markup_document() {
    let text = |content: &str| {
        RecordData::ClinicalDocument(ClinicalDocumentData {
            attachments: vec![Attachment {
                filename: s("memo.txt"),
                mime_type: s("text/plain"),
                content_base64: base64::engine::general_purpose::STANDARD.encode(content),
            }],
            ..document()
        })
        .validate(today())
    };
    for markup in [
        "<!DOCTYPE html><html><body>x</body></html>",
        "\u{feff}\n  <html lang=\"ja\">",
        "<SCRIPT>alert(1)</SCRIPT>",
        "<?xml version=\"1.0\"?><svg/>",
        "<!-- note -->",
        "<p>申し送り</p>",
    ] {
        assert_eq!(
            field_of(text(markup)),
            "clinicalDocument.attachments[0].contentBase64",
            "{markup:?}"
        );
    }
    for memo in [
        "<申し送り> 夜間の様子",
        "<1> 血圧 132/80",
        "<pre-visit> check",
        "体温 37.2℃ <b>",
        "a < b",
    ] {
        assert!(text(memo).is_ok(), "{memo:?}");
    }
}

#[test]
fn a_sheet_changes_in_the_category_of_each_part_it_changes() {
    let sheet = emergency_information();
    let with = |f: fn(&mut EmergencyInformationData)| {
        let mut d = emergency_information();
        f(&mut d);
        RecordData::EmergencyInformation(d)
    };
    let same = RecordData::EmergencyInformation(sheet.clone());
    assert!(same.differences(&same.clone()).is_empty());
    assert_eq!(
        same.differences(&with(|d| d.diagnoses.push(s("2型糖尿病"))))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::Conditions]
    );
    assert_eq!(
        same.differences(&with(|d| d.medications.clear()))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::Medications]
    );
    assert_eq!(
        same.differences(&with(|d| d.note = Some(s("鍵は隣家"))))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::EmergencyInformation]
    );
    // A record of one category throughout changes in it; one moved to a
    // sensitive category changes in both.
    let plain = RecordData::Condition(condition());
    let mut psychiatric = condition();
    psychiatric.sensitivity = Some(ConditionSensitivity::Psychiatric);
    assert_eq!(
        plain
            .differences(&RecordData::Condition(psychiatric))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::Conditions, DataCategory::SensitivePsychiatric]
    );
}

#[test]
fn parts_a_writer_may_not_write_are_kept_from_the_version_replaced() {
    let previous = RecordData::EmergencyInformation(emergency_information());
    let mut sent = emergency_information();
    sent.diagnoses.clear();
    sent.medications.clear();
    sent.note = Some(s("鍵は隣家"));
    let kept = RecordData::EmergencyInformation(sent.clone())
        .keeping_parts(&previous, |c| c == DataCategory::Conditions);
    let RecordData::EmergencyInformation(kept) = kept else {
        panic!("kind changed")
    };
    assert_eq!(kept.diagnoses, emergency_information().diagnoses);
    assert!(
        kept.medications.is_empty(),
        "a part the writer may write is as sent"
    );
    assert_eq!(kept.note.as_deref(), Some("鍵は隣家"));
    assert_eq!(
        RecordData::EmergencyInformation(sent).written_categories(),
        [DataCategory::EmergencyInformation]
    );
}

#[test]
fn an_instructions_main_diagnosis_is_a_required_part_of_conditions() {
    let instruction = || {
        samples()
            .into_iter()
            .find(|d| matches!(d, RecordData::VisitingNurseInstruction(_)))
            .expect("a sample instruction")
    };
    let with_diagnosis = |diagnosis: &str| {
        let RecordData::VisitingNurseInstruction(mut d) = instruction() else {
            unreachable!()
        };
        d.main_diagnosis = s(diagnosis);
        RecordData::VisitingNurseInstruction(d)
    };
    let base = instruction();
    // Written under its own category and CONDITIONS, always.
    assert_eq!(
        base.written_categories(),
        [DataCategory::VisitingNurseReports, DataCategory::Conditions]
    );
    // A diagnosis-only change is a change of CONDITIONS alone; any other
    // change is one of the record's category.
    assert_eq!(
        base.differences(&with_diagnosis("誤嚥性肺炎"))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::Conditions]
    );
    let RecordData::VisitingNurseInstruction(mut other) = instruction() else {
        unreachable!()
    };
    other.instructions = s("週 3 回訪問");
    assert_eq!(
        base.differences(&RecordData::VisitingNurseInstruction(other))
            .into_iter()
            .collect::<Vec<_>>(),
        [DataCategory::VisitingNurseReports]
    );
    // Never carried forward from the version replaced: not a part a
    // writer may leave empty.
    assert!(base.carried_part_categories().is_empty());
    assert_eq!(
        with_diagnosis("誤嚥性肺炎").keeping_parts(&base, |_| true),
        with_diagnosis("誤嚥性肺炎")
    );
}

#[test]
fn dental_visit_request_validation() {
    let ok = dental_visit_request();
    assert!(ok.validate(today()).is_ok());
    assert_eq!(
        RecordData::DentalVisitRequest(ok.clone()).category(),
        DataCategory::DentalReferral
    );
    assert_eq!(
        RecordKind::DentalVisitRequest.summary_rule(),
        SummaryRule::LatestOfSeries
    );
    let field = |f: fn(&mut DentalVisitRequestData)| {
        let mut d = dental_visit_request();
        f(&mut d);
        field_of(d.validate(today()))
    };
    assert_eq!(field(|d| d.reasons.clear()), "reasons");
    assert_eq!(
        field(|d| d.reasons.push(DentalScreeningReason::ChewingDifficulty)),
        "reasons[2]"
    );
    assert_eq!(
        field(|d| d.reasons.push(DentalScreeningReason::Other)),
        "otherReason"
    );
    assert_eq!(
        field(|d| d.other_reason = Some(s("舌の白い苔"))),
        "otherReason"
    );
    assert_eq!(
        field(|d| d.requested_provider = s(" ")),
        "requestedProvider"
    );
    assert_eq!(
        field(|d| d.requested_on = Date(today() + chrono::Duration::days(1))),
        "requestedOn"
    );
    assert_eq!(
        field(|d| d.place_of_visit = DentalVisitPlace::Facility),
        "facilityName"
    );
    assert_eq!(
        field(|d| d.facility_name = Some(s("特養はまなす"))),
        "facilityName"
    );
    assert_eq!(field(|d| d.observations = s("")), "observations");
    assert_eq!(
        field(|d| d.preferred_times = Some(s("午前\u{7}"))),
        "preferredTimes"
    );

    let mut other = dental_visit_request();
    other.reasons.push(DentalScreeningReason::Other);
    other.other_reason = Some(s("舌の白い苔"));
    other.place_of_visit = DentalVisitPlace::Facility;
    other.facility_name = Some(s("特養はまなす"));
    assert!(other.validate(today()).is_ok());
    // Through the union, the field is prefixed with the kind's input field.
    let mut bad = dental_visit_request();
    bad.reasons.clear();
    assert_eq!(
        field_of(RecordData::DentalVisitRequest(bad).validate(today())),
        "dentalVisitRequest.reasons"
    );
}

#[test]
fn numbers_in_messages_are_short_enough_to_keep_the_reason() {
    // 1e308 written out is 309 digits: a message cut to a bounded length
    // would end before saying what is wrong.
    let result = RecordData::LabResult(LabResultData {
        reference_low: Some(1e308),
        reference_high: Some(-1e308),
        ..lab()
    })
    .validate(today());
    let message = result.unwrap_err().message();
    assert!(
        message.contains("-1e308 is below referenceLow (1e308)"),
        "{message}"
    );
    assert_eq!(super::plausible::shown(36.5), "36.5");
    assert_eq!(super::plausible::shown(0.0), "0");
    assert_eq!(super::plausible::shown(120000.0), "120000");
    assert_eq!(super::plausible::shown(1.5e-9), "1.5e-9");
}
