//! Closed lists from the domain (`shared/domain.md`). Each value is stored in the
//! database as its GraphQL name, so a row reads the same in SQL and in the API.

/// Declares a closed enumeration that is a GraphQL enum and a database string.
#[macro_export]
#[doc(hidden)]
macro_rules! domain_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $db:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $db),+
                }
            }

            /// Parses the stored / configured name (`"PHYSICIAN"`).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($db => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Reads a value back from the database; an unknown value means the
            /// database was written by something else and is an internal error.
            pub fn from_db(s: &str) -> Result<Self, $crate::error::ApiError> {
                Self::parse(s).ok_or_else(|| {
                    $crate::error::ApiError::internal(format_args!(
                        "unknown {} value in database: {s:?}",
                        stringify!($name)
                    ))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

domain_enum! {
    /// The kind of a participating organisation.
    pub enum OrganizationKind {
        /// 病院 (acute, recovery or chronic; core hospitals hold back-up beds).
        Hospital = "HOSPITAL",
        /// 診療所, including in-home-care support clinics (在宅療養支援診療所).
        Clinic = "CLINIC",
        /// 歯科診療所.
        DentalClinic = "DENTAL_CLINIC",
        /// 調剤薬局.
        Pharmacy = "PHARMACY",
        /// 訪問看護ステーション.
        VisitingNurseStation = "VISITING_NURSE_STATION",
        /// 居宅介護支援事業所: where care managers work.
        HomeCareSupportOffice = "HOME_CARE_SUPPORT_OFFICE",
        /// Visiting care, day service, short stay, group home, serviced housing.
        CareServiceProvider = "CARE_SERVICE_PROVIDER",
        /// 特養 / 老健 / 介護医療院.
        NursingHome = "NURSING_HOME",
        /// Rehabilitation provider (visiting or day rehab).
        RehabilitationProvider = "REHABILITATION_PROVIDER",
        /// 地域包括支援センター.
        CommunityGeneralSupportCenter = "COMMUNITY_GENERAL_SUPPORT_CENTER",
        /// Municipality (介護保険係 …).
        Municipality = "MUNICIPALITY",
        /// 在宅医療介護連携支援センター: runs the network.
        CoordinationCenter = "COORDINATION_CENTER",
        /// 消防・救急.
        AmbulanceService = "AMBULANCE_SERVICE",
        /// 保健所.
        PublicHealthCenter = "PUBLIC_HEALTH_CENTER",
        /// 小規模多機能型居宅介護: day, overnight and home visits from one small base.
        SmallMultifunctionalCare = "SMALL_MULTIFUNCTIONAL_CARE",
        /// 看護小規模多機能型居宅介護 (看多機): the same with visiting nursing.
        NursingSmallMultifunctionalCare = "NURSING_SMALL_MULTIFUNCTIONAL_CARE",
        /// 定期巡回・随時対応型訪問介護看護: scheduled rounds and on-call visits, day and night.
        RegularRoundsOnCallCare = "REGULAR_ROUNDS_ON_CALL_CARE",
        /// 福祉用具貸与: welfare equipment rental (beds, wheelchairs, …).
        WelfareEquipmentRental = "WELFARE_EQUIPMENT_RENTAL",
    }
}

domain_enum! {
    /// A type of bed or place a facility reports free (空床・空き状況).
    pub enum BedType {
        /// 急性期病床.
        Acute = "ACUTE",
        /// 回復期リハビリテーション病床 / 地域包括ケア病床.
        Recovery = "RECOVERY",
        /// 療養病床.
        Chronic = "CHRONIC",
        /// 短期入所 (ショートステイ).
        ShortStay = "SHORT_STAY",
        /// 特別養護老人ホーム (特養).
        SpecialNursingHome = "SPECIAL_NURSING_HOME",
        /// 介護老人保健施設 (老健).
        GeriatricHealthFacility = "GERIATRIC_HEALTH_FACILITY",
        /// 介護医療院.
        IntegratedCareHospital = "INTEGRATED_CARE_HOSPITAL",
        /// 認知症対応型共同生活介護 (グループホーム).
        GroupHome = "GROUP_HOME",
        /// 小規模多機能の宿泊 / 看多機の宿泊.
        SmallMultifunctionalStay = "SMALL_MULTIFUNCTIONAL_STAY",
        /// サービス付き高齢者向け住宅 / 有料老人ホームの空室.
        SeniorHousing = "SENIOR_HOUSING",
    }
}

domain_enum! {
    /// A kind of informal community resource (インフォーマルな地域資源).
    pub enum CommunityResourceType {
        /// サロン・通いの場.
        Salon = "SALON",
        /// 見守り・安否確認.
        WatchingOver = "WATCHING_OVER",
        /// 買い物支援.
        ShoppingHelp = "SHOPPING_HELP",
        /// 移動支援・送迎.
        TransportHelp = "TRANSPORT_HELP",
        /// 配食・会食.
        Meals = "MEALS",
        /// 認知症カフェ.
        DementiaCafe = "DEMENTIA_CAFE",
        /// 家族会・介護者の集い.
        CarersGroup = "CARERS_GROUP",
        Other = "OTHER",
    }
}

domain_enum! {
    /// A day of the week (times to avoid calling).
    pub enum Weekday {
        Monday = "MONDAY",
        Tuesday = "TUESDAY",
        Wednesday = "WEDNESDAY",
        Thursday = "THURSDAY",
        Friday = "FRIDAY",
        Saturday = "SATURDAY",
        Sunday = "SUNDAY",
        /// 祝日.
        Holiday = "HOLIDAY",
    }
}

domain_enum! {
    /// What an organisation offers; the resource directory filters on these.
    pub enum Capability {
        /// 往診・訪問診療 / home visits.
        HomeVisits = "HOME_VISITS",
        /// 24時間対応.
        TwentyFourHourCover = "TWENTY_FOUR_HOUR_COVER",
        /// 訪問歯科診療.
        VisitingDentalCare = "VISITING_DENTAL_CARE",
        /// 在宅患者訪問薬剤管理指導 / home medication management.
        HomeMedicationManagement = "HOME_MEDICATION_MANAGEMENT",
        /// 看取り: end-of-life care at home.
        EndOfLifeCare = "END_OF_LIFE_CARE",
        /// 後方支援病床: back-up beds for patients cared for at home.
        BackupBeds = "BACKUP_BEDS",
        /// Home oxygen, ventilators and other medical devices at home.
        HomeMedicalDevices = "HOME_MEDICAL_DEVICES",
        /// Dementia care and consultation.
        DementiaCare = "DEMENTIA_CARE",
        /// Visiting rehabilitation (PT/OT/ST).
        VisitingRehabilitation = "VISITING_REHABILITATION",
        /// Emergency admission.
        EmergencyAdmission = "EMERGENCY_ADMISSION",
        /// Short stay (ショートステイ).
        ShortStay = "SHORT_STAY",
        /// Day service (デイサービス).
        DayService = "DAY_SERVICE",
        /// Visiting care / home helper (訪問介護).
        VisitingCare = "VISITING_CARE",
    }
}

domain_enum! {
    /// A member's profession (職種): the basis of role-limited access.
    pub enum Profession {
        Physician = "PHYSICIAN",
        Dentist = "DENTIST",
        DentalHygienist = "DENTAL_HYGIENIST",
        Pharmacist = "PHARMACIST",
        Nurse = "NURSE",
        /// 保健師.
        PublicHealthNurse = "PUBLIC_HEALTH_NURSE",
        /// 理学療法士 (PT).
        PhysicalTherapist = "PHYSICAL_THERAPIST",
        /// 作業療法士 (OT).
        OccupationalTherapist = "OCCUPATIONAL_THERAPIST",
        /// 言語聴覚士 (ST): speech, and swallowing with the dentist and the
        /// physician.
        SpeechTherapist = "SPEECH_THERAPIST",
        /// PT, OT or ST, from before the three were told apart: members
        /// registered then keep it, with the least rights of the three, until
        /// an administrator names their profession (`setMemberProfession`).
        /// New members cannot be given it.
        #[graphql(
            deprecation = "PT, OT and ST are told apart: use PHYSICAL_THERAPIST, OCCUPATIONAL_THERAPIST or SPEECH_THERAPIST"
        )]
        Therapist = "THERAPIST",
        /// 管理栄養士.
        Dietitian = "DIETITIAN",
        /// 介護支援専門員.
        CareManager = "CARE_MANAGER",
        /// 介護職 / ホームヘルパー.
        CareWorker = "CARE_WORKER",
        /// 医療ソーシャルワーカー.
        MedicalSocialWorker = "MEDICAL_SOCIAL_WORKER",
        /// 社会福祉士.
        SocialWorker = "SOCIAL_WORKER",
        /// 救急隊員.
        EmsCrew = "EMS_CREW",
        /// Municipal staff.
        MunicipalStaff = "MUNICIPAL_STAFF",
        /// Runs the network: directory, keys, members. Not a clinician.
        NetworkAdministrator = "NETWORK_ADMINISTRATOR",
    }
}

domain_enum! {
    pub enum MemberStatus {
        Active = "ACTIVE",
        /// A suspended member's tokens are refused.
        Suspended = "SUSPENDED",
    }
}

domain_enum! {
    pub enum Sex {
        Male = "MALE",
        Female = "FEMALE",
        Other = "OTHER",
        Unknown = "UNKNOWN",
    }
}

domain_enum! {
    pub enum PatientStatus {
        /// Cared for in the region.
        Active = "ACTIVE",
        /// Moved out of the region.
        MovedAway = "MOVED_AWAY",
        /// Deceased; `deceasedOn` and `placeOfDeath` are set.
        Deceased = "DECEASED",
    }
}

domain_enum! {
    /// Where a patient died: the guide counts home deaths (在宅看取り).
    pub enum PlaceOfDeath {
        /// 自宅.
        Home = "HOME",
        /// 病院.
        Hospital = "HOSPITAL",
        /// 診療所 (a clinic with beds, or one that admits for the last days).
        Clinic = "CLINIC",
        /// 介護施設 (特養, 老健, 介護医療院, グループホーム).
        NursingHome = "NURSING_HOME",
        /// サービス付き高齢者向け住宅: a dwelling, counted apart from homes and
        /// facilities in the programme's figures.
        ServicedHousing = "SERVICED_HOUSING",
        /// 有料老人ホーム.
        PrivateNursingHome = "PRIVATE_NURSING_HOME",
        Other = "OTHER",
        Unknown = "UNKNOWN",
    }
}

domain_enum! {
    /// The role an organisation (or member) plays on a patient's care team.
    pub enum CareTeamRole {
        /// 主治医.
        PrimaryPhysician = "PRIMARY_PHYSICIAN",
        /// 副主治医.
        DeputyPhysician = "DEPUTY_PHYSICIAN",
        /// 介護支援専門員 (ケアマネジャー).
        CareManager = "CARE_MANAGER",
        VisitingNurse = "VISITING_NURSE",
        Pharmacy = "PHARMACY",
        Dentist = "DENTIST",
        DentalHygienist = "DENTAL_HYGIENIST",
        /// Visiting care, day service, short stay …
        CareService = "CARE_SERVICE",
        Rehabilitation = "REHABILITATION",
        /// The hospital that admits or backs the patient.
        Hospital = "HOSPITAL",
        /// 地域包括支援センター.
        CommunitySupportCenter = "COMMUNITY_SUPPORT_CENTER",
        Municipality = "MUNICIPALITY",
        Other = "OTHER",
    }
}

domain_enum! {
    /// 情報区分: every field of patient data belongs to exactly one category,
    /// and the access policy decides per category.
    pub enum DataCategory {
        /// Name, reading, birth date, sex, status, local identifiers.
        Identity = "IDENTITY",
        /// Address and telephone.
        Contacts = "CONTACTS",
        /// Who is on the care team.
        CareTeam = "CARE_TEAM",
        /// 傷病名.
        Conditions = "CONDITIONS",
        Allergies = "ALLERGIES",
        /// 感染症 (HBs, HCV, HIV, syphilis, MRSA …).
        Infections = "INFECTIONS",
        /// 薬剤禁忌.
        DrugContraindications = "DRUG_CONTRAINDICATIONS",
        /// Prescriptions and injections.
        Medications = "MEDICATIONS",
        LabResults = "LAB_RESULTS",
        Imaging = "IMAGING",
        /// Referral letters, discharge summaries, nursing summaries, discharge
        /// coordination reports …
        ClinicalDocuments = "CLINICAL_DOCUMENTS",
        /// 訪問看護報告書: the visiting-nurse station's monthly report to the
        /// physician, which the care side receives too.
        VisitingNurseReports = "VISITING_NURSE_REPORTS",
        /// Oral findings, dentures, oral hygiene, visiting dental notes.
        Dental = "DENTAL",
        /// 摂食嚥下・食形態: swallowing assessments (screening, VE/VF) and the
        /// diet form, shared by every profession that feeds or treats.
        NutritionSwallowing = "NUTRITION_SWALLOWING",
        /// 歯科往診依頼: the dental home-visit request (歯科往診依頼書) and its
        /// screening sheet (歯科治療依頼スクリーニングシート), written by whoever
        /// visits the patient and read by the dental side.
        DentalReferral = "DENTAL_REFERRAL",
        /// 調剤 records and home medication-management reports.
        Dispensing = "DISPENSING",
        /// 要介護認定.
        CareCertification = "CARE_CERTIFICATION",
        /// ケアプラン.
        CarePlan = "CARE_PLAN",
        Adl = "ADL",
        HomeEnvironment = "HOME_ENVIRONMENT",
        /// 介護力 and the key person.
        FamilyCareCapacity = "FAMILY_CARE_CAPACITY",
        /// ACP / 看取り wishes.
        AdvanceCarePlanning = "ADVANCE_CARE_PLANNING",
        /// 救急医療情報.
        EmergencyInformation = "EMERGENCY_INFORMATION",
        /// 災害時要配慮情報: which medical dependencies (home oxygen, ventilator,
        /// dialysis, suction, tube feeding, insulin) the hub derives from the
        /// records — the dependency and its kind of source only, never the
        /// records' content — for the disaster register (避難行動要支援者).
        DisasterSupport = "DISASTER_SUPPORT",
        /// Cautions for care and daily-life support (留意事項).
        Cautions = "CAUTIONS",
        /// Vital signs and the changes in condition observed during care
        /// (日々の観察).
        Observations = "OBSERVATIONS",
        /// 入退院支援: admission information sheets (入院時情報提供書),
        /// discharge notices (退院連絡) and discharge conferences.
        AdmissionDischarge = "ADMISSION_DISCHARGE",
        /// 連絡票: liaison messages between the care team's organisations
        /// (what replaces the FAX).
        LiaisonMessages = "LIAISON_MESSAGES",
        SensitivePsychiatric = "SENSITIVE_PSYCHIATRIC",
        SensitiveHiv = "SENSITIVE_HIV",
        SensitiveGenetic = "SENSITIVE_GENETIC",
        /// The patient's consents and objection to emergency access. Readable
        /// with a care relationship alone: one must see whether consent exists
        /// in order to take it.
        Consent = "CONSENT",
        /// Who accessed the patient's data (the audit log, for the care team's
        /// coordinator and disclosure requests).
        AccessHistory = "ACCESS_HISTORY",
    }
}

domain_enum! {
    /// What a profession (or a system) may do with a data category.
    pub enum AccessLevel {
        None = "NONE",
        Read = "READ",
        ReadWrite = "READ_WRITE",
    }
}

domain_enum! {
    /// How a consent was obtained.
    pub enum ConsentMethod {
        /// A signed form (the usual 同意書).
        Written = "WRITTEN",
        Oral = "ORAL",
        Electronic = "ELECTRONIC",
    }
}

domain_enum! {
    /// Who signed a consent form: the patient, or a proxy (代諾者) signing
    /// for a patient who cannot — a family member or a guardian.
    pub enum ConsentSignatory {
        /// 本人.
        Patient = "PATIENT",
        /// A family member (家族) as proxy; the relation (続柄) is recorded.
        Family = "FAMILY",
        /// A guardian (成年後見人・保佐人・補助人・任意後見人) as proxy.
        Guardian = "GUARDIAN",
    }
}

domain_enum! {
    /// Where a consent stands. At most one consent of a patient is
    /// `IN_FORCE` and at most one `PENDING` (partial unique indexes).
    pub enum ConsentStatus {
        /// Recorded, widening access, by someone who may not widen it alone:
        /// it grants nothing until the coordination centre confirms it.
        Pending = "PENDING",
        /// The consent the access policy applies.
        InForce = "IN_FORCE",
        /// Replaced by a later consent (while in force, or while pending).
        Superseded = "SUPERSEDED",
        /// Withdrawn by the patient; a pending consent is voided by the
        /// patient's withdrawal too.
        Withdrawn = "WITHDRAWN",
        /// The coordination centre refused to confirm it.
        Rejected = "REJECTED",
    }
}

domain_enum! {
    pub enum ConsentScope {
        /// 包括同意: every participating organisation on the care team, except
        /// those listed as excluded.
        Network = "NETWORK",
        /// 個別同意: only the listed organisations.
        Organizations = "ORGANIZATIONS",
    }
}
