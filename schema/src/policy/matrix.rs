//! 職種別アクセス権: the table profession × data category → none / read /
//! read-write. [`Matrix::default`] is the network's starting point; a network
//! overrides cells with a TOML file (`RENKEI_POLICY_FILE`), validated at start:
//!
//! ```toml
//! # Only the cells to change; anything not named keeps its default.
//! [professions.CARE_WORKER]
//! LAB_RESULTS = "READ"
//!
//! [professions.DIETITIAN]
//! DENTAL = "NONE"
//! ```
//!
//! An unknown profession, category or level refuses the start, naming it.
//! `docs/access-policy.md` is generated from [`Matrix::default`] by
//! [`Matrix::markdown`] and a test keeps the two equal.

use std::collections::{BTreeMap, HashMap};

use crate::domain::{AccessLevel, DataCategory, Profession};

use AccessLevel::{Read as R, ReadWrite as W};
use DataCategory::*;

/// One profession's row: the categories it may use; every other category is
/// `NONE`.
type Row = &'static [(DataCategory, AccessLevel)];

fn default_row(p: Profession) -> Row {
    match p {
        // Physicians lead medical care: they read and write the whole medical
        // record, including the sensitive categories, and read the care side.
        Profession::Physician => &[
            (Observations, W),
            (Identity, W),
            (Contacts, W),
            (CareTeam, W),
            (Conditions, W),
            (Allergies, W),
            (Infections, W),
            (DrugContraindications, W),
            (Medications, W),
            (LabResults, W),
            (Imaging, W),
            (ClinicalDocuments, W),
            // W: the physician's instruction to the station (訪問看護指示書)
            // is filed here, beside the reports that answer it.
            (VisitingNurseReports, W),
            (Dental, R),
            (NutritionSwallowing, W),
            (DentalReferral, W),
            (Dispensing, R),
            // W: the physician writes the opinion for the certification
            // (主治医意見書), which is filed with it.
            (CareCertification, W),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
            (DisasterSupport, R),
            (Cautions, W),
            (SensitivePsychiatric, W),
            (SensitiveHiv, W),
            (SensitiveGenetic, W),
            (AdmissionDischarge, W),
            (LiaisonMessages, W),
            (Consent, W),
            (AccessHistory, R),
        ],
        // Dentists need what bears on treatment in the mouth: conditions,
        // allergies, medications (anticoagulants, bisphosphonates), infections.
        Profession::Dentist => &[
            (Observations, R),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Infections, R),
            (DrugContraindications, R),
            (Medications, R),
            (Dental, W),
            (NutritionSwallowing, W),
            (DentalReferral, W),
            (CareCertification, R),
            (Adl, R),
            (EmergencyInformation, R),
            (Cautions, R),
            (LiaisonMessages, W),
            (Consent, W),
        ],
        Profession::DentalHygienist => &[
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Allergies, R),
            (Infections, R),
            (Medications, R),
            (Dental, W),
            (NutritionSwallowing, W),
            (DentalReferral, W),
            (CareCertification, R),
            (Adl, R),
            (EmergencyInformation, R),
            (Cautions, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
        // Pharmacists need conditions and labs (renal function for dosing),
        // contraindications, medications, and write dispensing.
        Profession::Pharmacist => &[
            (Observations, R),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Infections, R),
            (DrugContraindications, W),
            (Medications, R),
            (LabResults, R),
            (Dispensing, W),
            (NutritionSwallowing, R),
            (DentalReferral, W),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, R),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, W),
        ],
        Profession::Nurse => &[
            (Observations, W),
            (Identity, R),
            (Contacts, W),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, W),
            (Infections, R),
            (DrugContraindications, R),
            (Medications, R),
            (LabResults, R),
            (Imaging, R),
            (ClinicalDocuments, W),
            (VisitingNurseReports, W),
            (Dental, R),
            (NutritionSwallowing, R),
            (DentalReferral, W),
            (Dispensing, R),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
            (DisasterSupport, R),
            (Cautions, W),
            (SensitivePsychiatric, R),
            (AdmissionDischarge, W),
            (LiaisonMessages, W),
            (Consent, W),
            (AccessHistory, R),
        ],
        Profession::PublicHealthNurse => &[
            (Observations, R),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Infections, R),
            (Medications, R),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (AdvanceCarePlanning, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, R),
            (SensitivePsychiatric, R),
            (DentalReferral, W),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, W),
        ],
        // Physical and occupational therapists visit alone: besides the
        // conditions, images and documents that frame rehabilitation, they
        // keep the ADL, the home (住宅改修, 福祉用具) and cautions such as
        // fall risk, and sit the patient for meals (食事時の姿勢とポジショニング).
        Profession::PhysicalTherapist | Profession::OccupationalTherapist => &[
            (Observations, W),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (Imaging, R),
            (ClinicalDocuments, R),
            (VisitingNurseReports, R),
            (NutritionSwallowing, R),
            (DentalReferral, W),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, W),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
        // Speech therapists assess and train swallowing and record it (with
        // the physician's and dentist's VE/VF); the home they read.
        Profession::SpeechTherapist => &[
            (Observations, W),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (Imaging, R),
            (ClinicalDocuments, R),
            (VisitingNurseReports, R),
            (NutritionSwallowing, W),
            (DentalReferral, W),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, W),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
        // Computed in `Matrix::default`: the least of the three rows above.
        Profession::Therapist => &[],
        Profession::Dietitian => &[
            (Observations, R),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, W),
            (Medications, R),
            (LabResults, R),
            (Dental, R),
            (NutritionSwallowing, W),
            (DentalReferral, W),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
        // Care managers coordinate: they keep the care side and the team, and
        // read the medical summary they need for the care plan — not raw labs.
        Profession::CareManager => &[
            (Observations, R),
            (Identity, W),
            (Contacts, W),
            (CareTeam, W),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (Dispensing, R),
            (VisitingNurseReports, R),
            (NutritionSwallowing, R),
            (DentalReferral, W),
            (CareCertification, W),
            (CarePlan, W),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
            (DisasterSupport, R),
            (Cautions, W),
            (SensitivePsychiatric, R),
            (AdmissionDischarge, W),
            (LiaisonMessages, W),
            (Consent, W),
            (AccessHistory, R),
        ],
        // Care workers read what daily support needs — ADL, allergies,
        // medications, the care plan, cautions, emergency information — and
        // never lab values, imaging or clinical documents.
        Profession::CareWorker => &[
            (Observations, W),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Allergies, R),
            (Medications, R),
            (VisitingNurseReports, R),
            (NutritionSwallowing, R),
            (DentalReferral, W),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (AdvanceCarePlanning, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, R),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
        Profession::MedicalSocialWorker => &[
            (Observations, R),
            (Identity, R),
            (Contacts, W),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (ClinicalDocuments, W),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, R),
            (EmergencyInformation, R),
            (DisasterSupport, R),
            (Cautions, R),
            (DentalReferral, W),
            (AdmissionDischarge, W),
            (LiaisonMessages, W),
            (Consent, W),
        ],
        Profession::SocialWorker => &[
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, W),
            (Cautions, R),
            (DentalReferral, R),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, W),
            (DisasterSupport, R),
        ],
        // Ambulance crews read the emergency set; they normally reach a
        // patient through break-the-glass, not the care team.
        Profession::EmsCrew => &[
            (Identity, R),
            (Contacts, R),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (AdvanceCarePlanning, R),
            (EmergencyInformation, R),
        ],
        Profession::MunicipalStaff => &[
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (CareCertification, W),
            (CarePlan, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (LiaisonMessages, R),
            (Consent, R),
            (DisasterSupport, R),
        ],
        // Administrators run the directory; they see no patient data.
        Profession::NetworkAdministrator => &[],
    }
}

// ---------------------------------------------------------------------------
// Break-the-glass (救急時閲覧): what emergency access opens, by profession.
// The rationale of each category is data (EMERGENCY_RATIONALE), rendered into
// docs/access-policy.md by `policy::document`.

/// The emergency set (救急時閲覧), read-only, that every opener gets — what
/// an ambulance crew needs at the door. IDENTITY is among them because a
/// crew must confirm whom the emergency information is about (name, reading,
/// birth date, sex — as the paper 救急医療情報キット in the patient's fridge
/// shows); address and telephone (CONTACTS) are not.
///
/// NUTRITION_SWALLOWING is among them: aspiration pneumonia is the emergency
/// this population is most often carried in with (Kitami counts it among the
/// criteria for discharge coordination, 002:1103; the guide names the
/// dysphagic elderly at high risk of it, 003:1877), and whether the patient
/// aspirates silently, eats a 嚥下調整食 or takes thickened fluids bears on
/// the first hours — suction, nil by mouth, what the ward serves — while it
/// says little else about the patient. VISITING_NURSE_REPORTS is not: a
/// monthly narrative whose emergency content (diagnoses, medications, the
/// expected emergencies) the emergency set already holds, as
/// CLINICAL_DOCUMENTS, where the reports were filed before, is not either.
pub const EMERGENCY_CATEGORIES: &[DataCategory] = &[
    Identity,
    EmergencyInformation,
    Allergies,
    Medications,
    Conditions,
    AdvanceCarePlanning,
    NutritionSwallowing,
];

/// What emergency access opens to the receiving hospital's physicians and
/// nurses: the emergency set, and what treatment on arrival needs besides —
/// drug contraindications (薬剤禁忌) and infections (感染症), two of the
/// national service's six items.
pub const EMERGENCY_CLINICAL_CATEGORIES: &[DataCategory] = &[
    Identity,
    EmergencyInformation,
    Allergies,
    DrugContraindications,
    Infections,
    Medications,
    Conditions,
    AdvanceCarePlanning,
    NutritionSwallowing,
];

/// The categories emergency access opens to a member of `profession`
/// (none to a profession that may not open it: see
/// [`EMERGENCY_PROFESSIONS`]).
pub fn emergency_categories(profession: Profession) -> &'static [DataCategory] {
    match profession {
        Profession::Physician | Profession::Nurse => EMERGENCY_CLINICAL_CATEGORIES,
        Profession::EmsCrew => EMERGENCY_CATEGORIES,
        _ => &[],
    }
}

/// Why each category is — or is not — opened by emergency access, and to
/// whom; rendered into `docs/access-policy.md` for the network's council.
pub const EMERGENCY_RATIONALE: &[(DataCategory, &str)] = &[
    (
        Identity,
        "To confirm whom the information is about: name, reading, birth date, sex — what the 救急医療情報キット shows.",
    ),
    (
        EmergencyInformation,
        "The sheet registered for this moment: whom to call, what to expect and do, the designated hospital (北まるnet, 002:1214).",
    ),
    (
        Allergies,
        "A crew may give glucose or adrenaline and a hospital any drug: a known allergy must be seen first.",
    ),
    (
        Medications,
        "Anticoagulants, insulin, antihypertensives explain the scene and change treatment; the current list is what the crew reports on handover.",
    ),
    (
        Conditions,
        "The active diagnoses explain the emergency (heart failure, diabetes, epilepsy). Sensitive diagnoses stay under their own categories.",
    ),
    (
        AdvanceCarePlanning,
        "The wishes on CPR and life-prolonging treatment, with the date confirmed, decide what is done at the door (003:1312–1335).",
    ),
    (
        NutritionSwallowing,
        "Aspiration pneumonia is the emergency this population is most often carried in with (002:1103, 003:1877): silent aspiration, a 嚥下調整食 or thickened fluids decide suction, nil by mouth and what the ward serves.",
    ),
    (
        DrugContraindications,
        "Physicians and nurses only. The receiving doctor chooses drugs on arrival (薬剤禁忌, one of the national six items); a crew's few drugs are covered by allergies.",
    ),
    (
        Infections,
        "Physicians and nurses only. The hospital isolates and chooses antibiotics on arrival (MRSA, 結核, 疥癬, ノロウイルス); a crew takes standard precautions with every patient, so the status would disclose without changing what it does.",
    ),
    (
        VisitingNurseReports,
        "Closed: monthly narratives whose emergency content (diagnoses, medications, expected emergencies) the set already holds.",
    ),
    (
        Contacts,
        "Closed: the sheet's contacts say whom to call; the home address and telephone are not needed to treat.",
    ),
    (
        CareTeam,
        "Closed: the sheet names the primary physician and the visiting nurse to call.",
    ),
    (
        Dispensing,
        "Closed: current prescriptions say what is taken; the pharmacy's history adds nothing in the first hours.",
    ),
    (
        LabResults,
        "Closed: the hospital measures again; old values mislead in an emergency.",
    ),
    (
        DisasterSupport,
        "Closed: the disaster register is for planning evacuation ahead (避難行動要支援者); at the door the emergency set shows the medications and conditions it is derived from.",
    ),
    (
        DentalReferral,
        "Closed: a request for a dental home visit (歯科往診依頼書, 002:2079–2113) changes nothing in the first hours; swallowing, which does, is NUTRITION_SWALLOWING.",
    ),
];

/// Professions that may open emergency access.
pub const EMERGENCY_PROFESSIONS: &[Profession] = &[
    Profession::Physician,
    Profession::Nurse,
    Profession::EmsCrew,
];

#[cfg(test)]
mod emergency_tests {
    use super::*;

    #[test]
    fn every_category_emergency_access_opens_has_its_reason() {
        for &p in EMERGENCY_PROFESSIONS {
            for c in emergency_categories(p) {
                assert!(
                    EMERGENCY_RATIONALE.iter().any(|(r, _)| r == c),
                    "{c} is opened to {p} without a reason"
                );
            }
        }
    }

    #[test]
    fn the_receiving_physician_gets_contraindications_and_infections_a_crew_does_not() {
        for c in [DrugContraindications, Infections] {
            assert!(emergency_categories(Profession::Physician).contains(&c));
            assert!(!emergency_categories(Profession::EmsCrew).contains(&c));
        }
        for c in EMERGENCY_CATEGORIES {
            assert!(emergency_categories(Profession::Physician).contains(c));
        }
        assert!(emergency_categories(Profession::CareWorker).is_empty());
    }
}
// --- end of break-the-glass ------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    cells: HashMap<(Profession, DataCategory), AccessLevel>,
}

/// Why each row is what it is, with the passages of the seeds (`shared/seeds/`,
/// `file:line`) it rests on: printed under the matrix in
/// `docs/access-policy.md` for a network's council to review. One entry per
/// profession (the match is exhaustive), in words a council member reads.
pub fn rationale(p: Profession) -> &'static str {
    match p {
        Profession::Physician => {
            "Leads medical care (主治医): reads and writes the medical record, sensitive categories \
included, and reads the care side the guide asks to share (figure 17, 003:830–843). Writes the \
instruction to the visiting-nurse station (訪問看護指示書) and receives the station's reports under \
VISITING_NURSE_REPORTS (003:1247); writes the opinion for the care-need certification (主治医意見書) \
under CARE_CERTIFICATION; records VE/VF swallowing studies (the swallowing team, 003:1877). Like \
every professional who visits, writes the request for a dental home visit under DENTAL_REFERRAL \
(歯科往診依頼書 and its screening sheet, Kamaishi's flow 002:2079–2113)."
        }
        Profession::Dentist => {
            "Treats in the mouth: needs conditions, allergies, infections and medications \
(anticoagulants, bisphosphonates); writes dental records and, with the hygienist, dietitian, ST and \
physician, swallowing and diet form (003:1877; dental referral sheets 002:2079–2113). Reads care \
certification to know which insurance pays a home visit (居宅療養管理指導 or medical insurance). \
Receives the requests for a dental home visit and their screening sheets under DENTAL_REFERRAL, \
and writes them too (a request passed on to another clinic, 002:2079–2113)."
        }
        Profession::DentalHygienist => {
            "Oral care at home: allergies, infections, medications; writes dental records and \
swallowing/diet form (003:1877). Visits alone, so reads the emergency information; reads care \
certification for the visit's insurance. Reads and writes DENTAL_REFERRAL with the \
dentist: the hygienist often takes the request, and finds the need on a visit of its own (002:2079–2113)."
        }
        Profession::Pharmacist => {
            "Doses and checks: conditions, labs (renal function), contraindications (writes them), \
medications; writes dispensing (Nayoro's pharmacies share it, 003:1245). Reads the diet form to \
choose the dosage form (crushed, jelly, thickened) and care certification (居宅療養管理指導 under \
care insurance or 訪問薬剤管理指導 under medical insurance, 000:139). Visits at home, so writes \
the request for a dental home visit (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::Nurse => {
            "Visiting and ward nurses keep what figure 17 lists — observations, ADL, home, family \
capacity, ACP, emergency information (003:830–843) — and write the visiting-nurse report \
(003:1247). Read swallowing and diet form, on the swallowing team (003:1877). Write the request \
for a dental home visit when the patient wants or seems to need treatment (DENTAL_REFERRAL, \
002:2079–2113)."
        }
        Profession::PublicHealthNurse => {
            "Community support centre and health centre: read the medical summary and the care side \
to support the patient and family; write liaison, consent and, as visitors who screen the \
mouth, the request for a dental home visit (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::PhysicalTherapist | Profession::OccupationalTherapist => {
            "Visit alone (hence the emergency information) and work on ADL, the home (住宅改修, \
福祉用具) and cautions such as fall risk. Read the visiting-nurse report (rehabilitation from a \
nurse station is reported in it, 003:1247), the diet form to seat the patient for meals \
(Kamaishi's training on 食事時の姿勢とポジショニング, 002:1842) and care certification (which \
insurance pays the visit). Write the request for a dental home visit (DENTAL_REFERRAL, \
002:2079–2113)."
        }
        Profession::SpeechTherapist => {
            "As PT and OT, but writes swallowing and diet form (the guide's swallowing team, \
003:1877; Kamaishi's diet-form scale for every profession, 002:1843) and only reads the home; \
writes the request for a dental home visit (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::Therapist => {
            "Legacy value for members registered before PT, OT and ST were told apart: the least of \
the three rows, cell by cell, so the split widens nothing for them; an administrator names the \
profession with `setMemberProfession`. All three write DENTAL_REFERRAL, so it does too."
        }
        Profession::Dietitian => {
            "Nutrition at home and in facilities: conditions, labs, medications, food allergies \
(writes them); writes swallowing and diet form (003:1877; Nayoro's 栄養指導, 003:1249). Visits \
alone, so reads the emergency information; reads care certification for the visit's insurance \
(居宅療養管理指導, 000:140). Writes the request for a dental home visit when chewing or \
dentures stand in the way of eating (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::CareManager => {
            "Coordinates care: keeps the care side and the team, and reads the medical summary the \
care plan needs (figure 17, 003:830–843) — not raw labs. Receives visiting-nurse reports \
(003:1247) and the diet form (002:1843), and reads psychiatric conditions, which Kitami lists as \
reasons to tell the care manager (002:1113). Writes the request for a dental home visit, \
which Kamaishi's flow has every visitor send (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::CareWorker => {
            "Daily support: ADL (writes it), allergies, medications, the care plan, cautions, \
emergency information (figure 17, 003:830–843); the visiting-nurse report (003:1247) and the diet \
form it serves (002:1843); the ACP, being at the centre of 看取り at home (003:1363). Sees \
the mouth daily (oral care, meals), so writes the request for a dental home visit \
(DENTAL_REFERRAL, 002:2079–2113). Never lab values, images or clinical documents."
        }
        Profession::MedicalSocialWorker => {
            "The hospital's discharge coordinator: writes admission/discharge and the \
discharge-coordination report (退院調整報告書, a clinical document; Nayoro shares it with the \
discharge and nursing summaries, 003:1249), which is why it reads and writes CLINICAL_DOCUMENTS; \
family care capacity and consent. Writes the request for a dental home visit for a patient \
going home or into a facility (DENTAL_REFERRAL, 002:2079–2113)."
        }
        Profession::SocialWorker => {
            "Community support centre and facilities: the care side, family capacity and consent; \
no medical detail. Reads the requests for a dental home visit (DENTAL_REFERRAL, 002:2079–2113) to \
follow up on them, but does not screen the mouth."
        }
        Profession::EmsCrew => {
            "Reads the emergency set (北まるnet 救急医療情報, 002:1214); reaches a patient through \
break-the-glass, not the care team; a request for a dental visit (DENTAL_REFERRAL) is not \
theirs."
        }
        Profession::MunicipalStaff => {
            "介護保険係: writes care certification and reads resident basics, the care team and the \
care plan (Nayoro's municipality, 003:1242); no medical data, nor the dental screening \
(DENTAL_REFERRAL). The disaster role (防災・福祉) reads the disaster register of its own \
municipality (DISASTER_SUPPORT: the dependencies, not the records, 003:1236) to plan for \
避難行動要支援者."
        }
        Profession::NetworkAdministrator => {
            "Runs the directory, members and keys; sees no patient data."
        }
    }
}

/// The three professions the legacy `THERAPIST` stands for.
pub const THERAPISTS: &[Profession] = &[
    Profession::PhysicalTherapist,
    Profession::OccupationalTherapist,
    Profession::SpeechTherapist,
];

impl Default for Matrix {
    fn default() -> Self {
        let mut cells = HashMap::new();
        for &p in Profession::ALL {
            for &(c, level) in default_row(p) {
                cells.insert((p, c), level);
            }
        }
        let mut matrix = Matrix { cells };
        // A member registered as THERAPIST may be any of the three: it gets,
        // cell by cell, the least of them, so the split widens nothing for a
        // member whose profession is not yet named (an ST's write of
        // swallowing records reaches no PT that way).
        for &c in DataCategory::ALL {
            let least = THERAPISTS
                .iter()
                .map(|&p| matrix.level(p, c))
                .min()
                .unwrap_or(AccessLevel::None);
            if least != AccessLevel::None {
                matrix.cells.insert((Profession::Therapist, c), least);
            }
        }
        matrix
    }
}

/// The override file's shape.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideFile {
    #[serde(default)]
    professions: BTreeMap<String, BTreeMap<String, String>>,
}

impl Matrix {
    pub fn level(&self, profession: Profession, category: DataCategory) -> AccessLevel {
        self.cells
            .get(&(profession, category))
            .copied()
            .unwrap_or(AccessLevel::None)
    }

    /// The defaults with the cells of a TOML override applied. The error names
    /// the unknown profession, category or level.
    pub fn with_overrides(toml_text: &str) -> Result<Self, String> {
        let file: OverrideFile =
            toml::from_str(toml_text).map_err(|e| format!("policy file: {e}"))?;
        let mut matrix = Matrix::default();
        for (profession, row) in file.professions {
            let p = Profession::parse(&profession).ok_or_else(|| {
                format!(
                    "policy file: unknown profession {profession:?} (known: {})",
                    names(Profession::ALL.iter().map(|p| p.as_str()))
                )
            })?;
            for (category, level) in row {
                let c = DataCategory::parse(&category).ok_or_else(|| {
                    format!(
                        "policy file: unknown data category {category:?} for {profession} (known: {})",
                        names(DataCategory::ALL.iter().map(|c| c.as_str()))
                    )
                })?;
                let l = AccessLevel::parse(&level).ok_or_else(|| {
                    format!(
                        "policy file: unknown access level {level:?} for {profession}.{category} (use NONE, READ or READ_WRITE)"
                    )
                })?;
                matrix.cells.insert((p, c), l);
            }
        }
        Ok(matrix)
    }

    /// The matrix as a Markdown table: professions down, categories across
    /// would be too wide, so categories down and professions across.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| category |");
        for p in Profession::ALL {
            out.push_str(&format!(" {} |", short(p.as_str())));
        }
        out.push_str("\n|---|");
        for _ in Profession::ALL {
            out.push_str(":-:|");
        }
        out.push('\n');
        for c in DataCategory::ALL {
            out.push_str(&format!("| `{}` |", c.as_str()));
            for p in Profession::ALL {
                let cell = match self.level(*p, *c) {
                    AccessLevel::None => "–",
                    AccessLevel::Read => "R",
                    AccessLevel::ReadWrite => "RW",
                };
                out.push_str(&format!(" {cell} |"));
            }
            out.push('\n');
        }
        out
    }
}

impl Matrix {
    /// The rationale of every row ([`rationale`]), as a Markdown list.
    pub fn rationale_markdown() -> String {
        let mut out = String::new();
        for &p in Profession::ALL {
            out.push_str(&format!("- `{}`: {}\n", p.as_str(), rationale(p)));
        }
        out
    }
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// Column headers: the profession names are long; the legend in the doc
/// spells them out.
fn short(profession: &str) -> String {
    profession
        .split('_')
        .map(|w| w.chars().take(4).collect::<String>())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The categories every professional on a care team needs to coordinate at
    /// all: who the patient is, how to reach them, who else is involved, the
    /// consent, and the cautions for working in the home.
    const BASE: Row = &[
        (Identity, R),
        (Contacts, R),
        (CareTeam, R),
        (Consent, R),
        (Cautions, R),
    ];

    #[test]
    fn care_workers_read_daily_support_data_but_not_labs() {
        let m = Matrix::default();
        assert_eq!(m.level(Profession::CareWorker, Adl), W);
        assert_eq!(m.level(Profession::CareWorker, Medications), R);
        assert_eq!(
            m.level(Profession::CareWorker, LabResults),
            AccessLevel::None
        );
        assert_eq!(m.level(Profession::CareWorker, Imaging), AccessLevel::None);
        assert_eq!(
            m.level(Profession::CareWorker, ClinicalDocuments),
            AccessLevel::None
        );
    }

    #[test]
    fn every_home_care_professional_reads_the_base_categories() {
        let m = Matrix::default();
        for &p in Profession::ALL {
            // Administrators, ambulance crews and municipal staff do not work in
            // the home as part of the team.
            if matches!(
                p,
                Profession::NetworkAdministrator | Profession::EmsCrew | Profession::MunicipalStaff
            ) {
                continue;
            }
            for &(c, _) in BASE {
                assert!(m.level(p, c) >= R, "{p} should read {c}");
            }
        }
    }

    #[test]
    fn the_legacy_therapist_has_the_least_of_pt_ot_and_st() {
        let m = Matrix::default();
        for &c in DataCategory::ALL {
            let legacy = m.level(Profession::Therapist, c);
            for &p in THERAPISTS {
                assert!(legacy <= m.level(p, c), "THERAPIST {c} exceeds {p}");
            }
            assert!(
                THERAPISTS.iter().any(|&p| m.level(p, c) == legacy),
                "THERAPIST {c} is less than every one of the three"
            );
        }
        // Where the three differ, the legacy member gets the least.
        assert_eq!(m.level(Profession::SpeechTherapist, NutritionSwallowing), W);
        assert_eq!(m.level(Profession::Therapist, NutritionSwallowing), R);
        assert_eq!(m.level(Profession::PhysicalTherapist, HomeEnvironment), W);
        assert_eq!(m.level(Profession::Therapist, HomeEnvironment), R);
    }

    #[test]
    fn the_disaster_register_is_read_only_and_not_for_the_dental_side_or_crews() {
        let m = Matrix::default();
        for p in Profession::ALL.iter().copied() {
            assert!(
                m.level(p, DisasterSupport) <= R,
                "derived: nobody writes it ({p})"
            );
            assert!(!emergency_categories(p).contains(&DisasterSupport));
        }
        for p in [
            Profession::Physician,
            Profession::Nurse,
            Profession::CareManager,
            Profession::CareWorker,
            Profession::MunicipalStaff,
            Profession::PublicHealthNurse,
            Profession::Therapist,
        ] {
            assert_eq!(m.level(p, DisasterSupport), R, "{p}");
        }
        for p in [
            Profession::Dentist,
            Profession::DentalHygienist,
            Profession::EmsCrew,
            Profession::NetworkAdministrator,
        ] {
            assert_eq!(m.level(p, DisasterSupport), AccessLevel::None, "{p}");
        }
    }

    #[test]
    fn every_visitor_writes_the_dental_referral_and_the_dental_side_reads_it() {
        let m = Matrix::default();
        for p in [
            Profession::Physician,
            Profession::Dentist,
            Profession::DentalHygienist,
            Profession::Nurse,
            Profession::Pharmacist,
            Profession::PhysicalTherapist,
            Profession::OccupationalTherapist,
            Profession::SpeechTherapist,
            Profession::Therapist,
            Profession::Dietitian,
            Profession::CareManager,
            Profession::CareWorker,
            Profession::MedicalSocialWorker,
            Profession::PublicHealthNurse,
        ] {
            assert_eq!(m.level(p, DentalReferral), W, "{p}");
        }
        assert_eq!(m.level(Profession::SocialWorker, DentalReferral), R);
        for p in [
            Profession::EmsCrew,
            Profession::MunicipalStaff,
            Profession::NetworkAdministrator,
        ] {
            assert_eq!(m.level(p, DentalReferral), AccessLevel::None, "{p}");
        }
        for &p in EMERGENCY_PROFESSIONS {
            assert!(!emergency_categories(p).contains(&DentalReferral));
        }
        // Writing the request gives no access to the dental record itself.
        assert_eq!(m.level(Profession::CareWorker, Dental), AccessLevel::None);
    }

    #[test]
    fn every_row_has_a_rationale_in_the_document() {
        let doc = Matrix::rationale_markdown();
        for &p in Profession::ALL {
            assert!(
                doc.contains(&format!("- `{}`: ", p.as_str())),
                "{p} has no rationale"
            );
        }
    }

    #[test]
    fn overrides_change_cells_and_unknown_names_are_refused() {
        let m =
            Matrix::with_overrides("[professions.CARE_WORKER]\nLAB_RESULTS = \"READ\"\n").unwrap();
        assert_eq!(m.level(Profession::CareWorker, LabResults), R);
        assert_eq!(m.level(Profession::CareWorker, Adl), W);
        let e = Matrix::with_overrides("[professions.ASTRONAUT]\nADL = \"READ\"\n").unwrap_err();
        assert!(e.contains("\"ASTRONAUT\""), "{e}");
        let e = Matrix::with_overrides("[professions.NURSE]\nHOROSCOPE = \"READ\"\n").unwrap_err();
        assert!(e.contains("\"HOROSCOPE\""), "{e}");
        let e = Matrix::with_overrides("[professions.NURSE]\nADL = \"SOMETIMES\"\n").unwrap_err();
        assert!(e.contains("\"SOMETIMES\""), "{e}");
    }
}
