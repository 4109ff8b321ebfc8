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
            (Dental, R),
            (Dispensing, R),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
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
            (Adl, R),
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
            (CarePlan, R),
            (Adl, R),
            (EmergencyInformation, R),
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
            (Dental, R),
            (Dispensing, R),
            (CareCertification, R),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
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
            (Cautions, R),
            (SensitivePsychiatric, R),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, W),
        ],
        Profession::Therapist => &[
            (Observations, W),
            (Identity, R),
            (Contacts, R),
            (CareTeam, R),
            (Conditions, R),
            (Allergies, R),
            (Medications, R),
            (Imaging, R),
            (ClinicalDocuments, R),
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, R),
            (Cautions, W),
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, R),
        ],
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
            (CarePlan, R),
            (Adl, R),
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
            (CareCertification, W),
            (CarePlan, W),
            (Adl, W),
            (HomeEnvironment, W),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, W),
            (EmergencyInformation, W),
            (Cautions, W),
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
            (CarePlan, R),
            (Adl, W),
            (HomeEnvironment, R),
            (FamilyCareCapacity, R),
            (EmergencyInformation, R),
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
            (CareCertification, R),
            (CarePlan, R),
            (Adl, R),
            (HomeEnvironment, R),
            (FamilyCareCapacity, W),
            (AdvanceCarePlanning, R),
            (EmergencyInformation, R),
            (Cautions, R),
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
            (AdmissionDischarge, R),
            (LiaisonMessages, W),
            (Consent, W),
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
pub const EMERGENCY_CATEGORIES: &[DataCategory] = &[
    Identity,
    EmergencyInformation,
    Allergies,
    Medications,
    Conditions,
    AdvanceCarePlanning,
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
        DrugContraindications,
        "Physicians and nurses only. The receiving doctor chooses drugs on arrival (薬剤禁忌, one of the national six items); a crew's few drugs are covered by allergies.",
    ),
    (
        Infections,
        "Physicians and nurses only. The hospital isolates and chooses antibiotics on arrival (MRSA, 結核, 疥癬, ノロウイルス); a crew takes standard precautions with every patient, so the status would disclose without changing what it does.",
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

impl Default for Matrix {
    fn default() -> Self {
        let mut cells = HashMap::new();
        for &p in Profession::ALL {
            for &(c, level) in default_row(p) {
                cells.insert((p, c), level);
            }
        }
        Matrix { cells }
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
