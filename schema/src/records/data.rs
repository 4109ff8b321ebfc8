//! What the access policy and the patient summary ask of a record's content.

use chrono::NaiveDate;

use super::kinds::{RecordData, SummaryRule};
use super::payloads::*;
use crate::domain::DataCategory;

impl RecordData {
    /// The category the record is governed by: the kind's default, except where
    /// the content is sensitive — an infection whose pathogen is HIV (whatever
    /// the result: that a test was done is itself sensitive), a condition marked
    /// psychiatric, HIV or genetic, or a condition coded as HIV disease
    /// (ICD-10 B20–B24, Z21) even if the sender did not mark it.
    pub fn category(&self) -> DataCategory {
        match self {
            RecordData::Infection(d) if d.pathogen == Pathogen::Hiv => DataCategory::SensitiveHiv,
            RecordData::Condition(d) => match d.sensitivity {
                Some(ConditionSensitivity::Psychiatric) => DataCategory::SensitivePsychiatric,
                Some(ConditionSensitivity::Hiv) => DataCategory::SensitiveHiv,
                Some(ConditionSensitivity::Genetic) => DataCategory::SensitiveGenetic,
                None if d.icd10.as_deref().is_some_and(is_hiv_icd10) => DataCategory::SensitiveHiv,
                None => DataCategory::Conditions,
            },
            other => other.kind().default_category(),
        }
    }

    /// Every category a write of this record puts data into: its own and,
    /// for emergency information, CONDITIONS and MEDICATIONS when diagnoses or
    /// medications are typed in by hand (they are read back under those
    /// categories). A writer needs write access to each, and the write's
    /// audit entry names each.
    pub fn written_categories(&self) -> Vec<DataCategory> {
        let mut categories = vec![self.category()];
        if let RecordData::EmergencyInformation(d) = self {
            if !d.diagnoses.is_empty() {
                categories.push(DataCategory::Conditions);
            }
            if !d.medications.is_empty() {
                categories.push(DataCategory::Medications);
            }
        }
        categories
    }

    /// For [`SummaryRule::LatestOfSeries`] kinds, the series the record belongs
    /// to (the summary shows the newest record of each): a lab result's test
    /// code if it has one, else its name (trimmed); every other such kind has
    /// one series per patient (`""`). `None` for the other kinds.
    pub fn series_key(&self) -> Option<String> {
        match self {
            RecordData::LabResult(d) => {
                let code = d.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
                Some(code.unwrap_or(d.name.trim()).to_string())
            }
            // One series per drug: the summary shows each drug's latest dispensing.
            RecordData::Dispensing(d) => {
                let code = d
                    .yj_code
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty());
                Some(code.unwrap_or(d.drug.trim()).to_string())
            }
            other if other.kind().summary_rule() == SummaryRule::LatestOfSeries => {
                Some(String::new())
            }
            _ => None,
        }
    }

    /// For [`SummaryRule::WhileCurrent`] kinds, whether the record is in force on
    /// `today`: an ACTIVE condition; a prescription that has started and whose
    /// last day ([`PrescriptionData::last_day`]: `endDate`, else `startDate` plus
    /// `days`) is not past; a POSITIVE infection; every allergy and drug
    /// contraindication. `false` for the other kinds.
    pub fn is_current(&self, today: NaiveDate) -> bool {
        match self {
            RecordData::Condition(d) => d.clinical_status == ClinicalStatus::Active,
            RecordData::Prescription(d) => {
                d.start_date.0 <= today && d.last_day().is_none_or(|last| last >= today)
            }
            RecordData::Infection(d) => d.result == InfectionResult::Positive,
            RecordData::Allergy(_) | RecordData::DrugContraindication(_) => true,
            _ => false,
        }
    }
}

/// ICD-10 B20–B24 (HIV disease) and Z21 (asymptomatic HIV infection).
fn is_hiv_icd10(code: &str) -> bool {
    let code = code.trim();
    let Some(rest) = code.strip_prefix('B').or_else(|| code.strip_prefix('b')) else {
        return code.get(..3).is_some_and(|h| h.eq_ignore_ascii_case("Z21"));
    };
    rest.get(..2)
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (20..=24).contains(&n))
}
