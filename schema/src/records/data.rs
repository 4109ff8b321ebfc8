//! What the access policy and the patient summary ask of a record's content.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::kinds::{RecordData, SummaryRule};
use super::payloads::*;
use crate::domain::DataCategory;

impl RecordData {
    /// The content with what the hub reads from it filled in: a lab
    /// result's `numericValue` from its `value`. Applied to every input, to
    /// what is stored, and to what is read back — so a result stored before
    /// the field existed has it too, and compares equal to the same result
    /// sent again.
    pub fn derived(mut self) -> Self {
        if let RecordData::LabResult(d) = &mut self {
            d.derive();
        }
        self
    }

    /// The category the record is governed by: the kind's default, except where
    /// the content is sensitive — an infection about HIV (whatever the
    /// result: that a test was done is itself sensitive), a condition marked
    /// psychiatric, HIV or genetic, and whatever **names** HIV even if the
    /// sender did not mark it: an infection whose pathogen is HIV or whose
    /// name or a coding's display names it ([`is_hiv_test`]: 「ＨＩＶ抗体」,
    /// 「ヒト免疫不全ウイルス抗体」 with pathogen OTHER), a condition coded as
    /// HIV disease (ICD-10 B20–B24, Z21, in `icd10` or an ICD-10 coding) or
    /// named so (「HIV感染症」 sent with only a 病名交換用コード) — whatever
    /// else it is marked, HIV being the narrowest of the sensitive
    /// categories — and a lab result of an HIV test, which a system may send
    /// as an ordinary lab result (a JP-CLINS 検査 Observation) when it is the
    /// infection the test is about. The rule errs towards SENSITIVE_HIV: a
    /// record wrongly kept from readers is a nuisance, one wrongly shown is
    /// not undone.
    pub fn category(&self) -> DataCategory {
        match self {
            RecordData::Infection(d)
                if d.pathogen == Pathogen::Hiv
                    || names_hiv(
                        d.other_name.as_deref().unwrap_or_default(),
                        None,
                        &d.codings,
                    ) =>
            {
                DataCategory::SensitiveHiv
            }
            RecordData::LabResult(d) if names_hiv(&d.name, None, &d.codings) => {
                DataCategory::SensitiveHiv
            }
            RecordData::HomeCareGuidanceInstruction(d) => d.category(),
            RecordData::Condition(d) if names_hiv(&d.name, d.icd10.as_deref(), &d.codings) => {
                DataCategory::SensitiveHiv
            }
            RecordData::Condition(d) => match d.sensitivity {
                Some(ConditionSensitivity::Psychiatric) => DataCategory::SensitivePsychiatric,
                Some(ConditionSensitivity::Hiv) => DataCategory::SensitiveHiv,
                Some(ConditionSensitivity::Genetic) => DataCategory::SensitiveGenetic,
                None => DataCategory::Conditions,
            },
            other => other.kind().default_category(),
        }
    }

    /// The parts of the content governed by another category than the
    /// record's own, each with its category: an emergency sheet's
    /// hand-typed diagnoses (CONDITIONS) and medications (MEDICATIONS), a
    /// visiting-nurse instruction's main diagnosis (主たる傷病名) and a
    /// physician's opinion's diagnoses (診断名), both CONDITIONS
    /// ([`DIAGNOSIS_CATEGORY`]) — read back under those categories. Every
    /// other kind has none: its whole content is of
    /// [`RecordData::category`]. What a part is for reading, writing and
    /// versioning is decided here once, from this list:
    /// [`RecordData::written_categories`], [`RecordData::keeping_parts`],
    /// [`RecordData::differences`]; the parts read under another category
    /// are resolved in `graphql::records`.
    fn parts(&self) -> Vec<(DataCategory, Part<'_>)> {
        match self {
            RecordData::EmergencyInformation(d) => vec![
                (DataCategory::Conditions, Part::Carried(&d.diagnoses)),
                (DataCategory::Medications, Part::Carried(&d.medications)),
            ],
            RecordData::VisitingNurseInstruction(d) => vec![(
                DIAGNOSIS_CATEGORY,
                Part::Required(std::slice::from_ref(&d.main_diagnosis)),
            )],
            RecordData::PhysicianOpinion(d) => {
                vec![(DIAGNOSIS_CATEGORY, Part::Required(&d.diagnoses))]
            }
            _ => Vec::new(),
        }
    }

    /// The parts as [`RecordData::parts`] lists them, to change.
    fn parts_mut(&mut self) -> Vec<(DataCategory, PartMut<'_>)> {
        match self {
            RecordData::EmergencyInformation(d) => vec![
                (DataCategory::Conditions, PartMut::List(&mut d.diagnoses)),
                (DataCategory::Medications, PartMut::List(&mut d.medications)),
            ],
            RecordData::VisitingNurseInstruction(d) => {
                vec![(DIAGNOSIS_CATEGORY, PartMut::One(&mut d.main_diagnosis))]
            }
            RecordData::PhysicianOpinion(d) => {
                vec![(DIAGNOSIS_CATEGORY, PartMut::List(&mut d.diagnoses))]
            }
            _ => Vec::new(),
        }
    }

    /// Every category a write of this record puts data into: its own and
    /// the category of each part it fills ([`RecordData::parts`]: a
    /// required part always). A writer needs write access to each, and the
    /// write's audit entry names each.
    pub fn written_categories(&self) -> Vec<DataCategory> {
        let mut categories = vec![self.category()];
        categories.extend(
            self.parts()
                .into_iter()
                .filter(|(_, part)| part.is_filled())
                .map(|(c, _)| c),
        );
        categories
    }

    /// The categories of this kind's parts that a writer without them
    /// leaves empty, to be carried forward ([`Part::Carried`]).
    pub fn carried_part_categories(&self) -> Vec<DataCategory> {
        self.parts()
            .into_iter()
            .filter(|(_, p)| matches!(p, Part::Carried(_)))
            .map(|(c, _)| c)
            .collect()
    }

    /// The part of `category`, if this kind has one.
    fn part(&self, category: DataCategory) -> Option<Part<'_>> {
        self.parts()
            .into_iter()
            .find(|(c, _)| *c == category)
            .map(|(_, p)| p)
    }

    /// This content with the carried parts of the categories `kept` names
    /// taken from `previous` (the version it replaces): a writer that may
    /// not write a part leaves it as it was — a care manager updating the
    /// sheet's contacts does not erase the physician's diagnoses, which it
    /// may not write. A part `previous` lacks is left empty. A required
    /// part is never carried: its writer must be able to write it.
    pub fn keeping_parts(
        mut self,
        previous: &RecordData,
        kept: impl Fn(DataCategory) -> bool,
    ) -> RecordData {
        let carried = self.carried_part_categories();
        for (category, part) in self.parts_mut() {
            if let PartMut::List(part) = part
                && carried.contains(&category)
                && kept(category)
            {
                *part = match previous.part(category) {
                    Some(Part::Carried(p)) => p.to_vec(),
                    _ => Vec::new(),
                };
            }
        }
        self
    }

    /// The categories in which `other` differs from this content: the
    /// record's own category (both, if they differ) when anything outside
    /// the parts differs, and each part's category when that part differs.
    /// A reader that may read none of them cannot tell the two apart.
    pub fn differences(&self, other: &RecordData) -> BTreeSet<DataCategory> {
        let mut changed = BTreeSet::new();
        let without_parts = |d: &RecordData| {
            let mut d = d.clone();
            for (_, part) in d.parts_mut() {
                part.clear();
            }
            d
        };
        if self.category() != other.category() || without_parts(self) != without_parts(other) {
            changed.insert(self.category());
            changed.insert(other.category());
        }
        for (category, _) in self.parts().into_iter().chain(other.parts()) {
            if self.part(category) != other.part(category) {
                changed.insert(category);
            }
        }
        changed
    }

    /// This content as read for `patient`'s record: the resolvers of parts
    /// read under another category (a visiting-nurse instruction's main
    /// diagnosis, a physician's opinion's diagnoses) ask the policy about
    /// that patient.
    pub fn read_as_of(mut self, patient: uuid::Uuid) -> Self {
        match &mut self {
            RecordData::VisitingNurseInstruction(d) => d.of_patient = OfPatient(Some(patient)),
            RecordData::PhysicianOpinion(d) => d.of_patient = OfPatient(Some(patient)),
            _ => {}
        }
        self
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
    /// contraindication; a visiting-nurse instruction within its validity. `false` for the other kinds.
    pub fn is_current(&self, today: NaiveDate) -> bool {
        self.current_span()
            .is_some_and(|(from, until)| from <= today && today <= until)
    }

    /// For [`SummaryRule::WhileCurrent`] kinds, the days the record is in
    /// force, first and last ([`FOREVER`] when it has no end); `None` when it
    /// never is (a resolved condition, a negative test) and for the other
    /// kinds. What [`Self::is_current`] decides, as a span: the hub stores the
    /// last day beside the record (`summary_until`), so that the summary
    /// reads only records still in force instead of the whole history.
    pub fn current_span(&self) -> Option<(NaiveDate, NaiveDate)> {
        let always = Some((NaiveDate::MIN, FOREVER));
        match self {
            RecordData::Condition(d) => {
                always.filter(|_| d.clinical_status == ClinicalStatus::Active)
            }
            RecordData::Prescription(d) => Some((d.start_date.0, d.last_day().unwrap_or(FOREVER))),
            RecordData::Infection(d) => always.filter(|_| d.result == InfectionResult::Positive),
            RecordData::Allergy(_) | RecordData::DrugContraindication(_) => always,
            RecordData::VisitingNurseInstruction(d) => Some((d.valid_from.0, d.valid_to.0)),
            RecordData::HomeCareGuidanceInstruction(d) => {
                Some((d.valid_from.0, d.valid_to.map(|t| t.0).unwrap_or(FOREVER)))
            }
            _ => None,
        }
    }
}

/// A part of a record's content read under another category than the
/// record's own ([`RecordData::parts`]).
#[derive(Debug, PartialEq)]
enum Part<'a> {
    /// Entries a writer without the part's category leaves empty; the
    /// version it writes keeps those of the version it replaces
    /// ([`RecordData::keeping_parts`]).
    Carried(&'a [String]),
    /// What every version holds, so its writer needs the part's category
    /// too.
    Required(&'a [String]),
}

impl Part<'_> {
    /// Whether a write of this part puts data into its category.
    fn is_filled(&self) -> bool {
        match self {
            Part::Carried(entries) => !entries.is_empty(),
            Part::Required(_) => true,
        }
    }
}

/// A part's field, to change: carried forward, or cleared to compare what
/// is outside the parts.
enum PartMut<'a> {
    List(&'a mut Vec<String>),
    One(&'a mut String),
}

impl PartMut<'_> {
    fn clear(self) {
        match self {
            PartMut::List(entries) => entries.clear(),
            PartMut::One(value) => value.clear(),
        }
    }
}

/// The last day of a record in force with no end: the `summary_until` of
/// records the summary always reads (9999-12-31, which both databases store
/// and compare as a date).
pub const FOREVER: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// Whether a test's name (or a coding's display) names HIV: 「HIV-1/2抗体」,
/// 「HIV抗原・抗体」, 「HIVAb」, 「HIVRNA定量」, 「抗HIV抗体」, 「anti-HIV」,
/// 「Rapid HIV test」, in half- or full-width letters, or 「エイズ」 / AIDS.
/// That someone was tested is HIV data, whatever the result (as for an
/// infection record). "HIV" counts where no letter comes before it
/// (ARCHIVE does not), or after "ANTI"; what follows it may be anything
/// but the "E" of HIVES (蕁麻疹): test names run it into Ab, Ag, RNA. Its
/// letters may be spelt apart, evenly (「H I V抗体」, 「H-I-V」, but not the
/// 「HI V」 of 「風疹 HI VZV」), and Greek or Cyrillic letters that show as
/// H, I and V are read as them (「ΗΙV抗体」): a name that shows as HIV is
/// HIV data, however it was typed.
pub fn is_hiv_test(name: &str) -> bool {
    // Full-width Latin letters folded to ASCII, look-alikes to the letters
    // they show, then upper case.
    let folded: Vec<char> = name
        .chars()
        .flat_map(|c| {
            let one = match c {
                'Ａ'..='Ｚ' | 'ａ'..='ｚ' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                'Η' | 'Н' | 'н' => 'H',
                'Ι' | 'ι' | 'І' | 'і' | 'Ӏ' | 'Ⅰ' | 'ⅰ' => 'I',
                'Ѵ' | 'ѵ' | 'Ⅴ' | 'ⅴ' | 'ν' => 'V',
                'Α' | 'А' | 'а' => 'A',
                'Ѕ' | 'ѕ' => 'S',
                'Ⅳ' | 'ⅳ' => return vec!['I', 'V'],
                _ => c,
            };
            vec![one.to_ascii_uppercase()]
        })
        .collect();
    let is_letter = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_alphabetic());
    let separator = |c: &char| c.is_whitespace() || "-‐‑‒–—－_.．・･".contains(*c);
    // `word` at `at`, its letters apart by the same kind of gap: none, or
    // one or more separators each; the index past it.
    let spelt_at = |at: usize, word: &str| -> Option<(usize, bool)> {
        let mut i = at;
        let mut spaced = None;
        for (n, letter) in word.chars().enumerate() {
            if n > 0 {
                let start = i;
                while folded.get(i).is_some_and(separator) {
                    i += 1;
                }
                let gap = i > start;
                if *spaced.get_or_insert(gap) != gap {
                    return None;
                }
            }
            if folded.get(i) != Some(&letter) {
                return None;
            }
            i += 1;
        }
        Some((i, spaced.unwrap_or(false)))
    };
    let before_ok = |at: usize| {
        !is_letter(folded[..at].last()) || folded[..at].ends_with(&['A', 'N', 'T', 'I'])
    };
    let hiv = (0..folded.len()).any(|at| {
        spelt_at(at, "HIV").is_some_and(|(end, spaced)| {
            before_ok(at)
                && if spaced {
                    !is_letter(folded.get(end))
                } else {
                    folded.get(end) != Some(&'E')
                }
        })
    });
    // AIDS as a word of its own (not RAIDS).
    let aids = (0..folded.len()).any(|at| {
        spelt_at(at, "AIDS")
            .is_some_and(|(end, _)| !is_letter(folded[..at].last()) && !is_letter(folded.get(end)))
    });
    let joined: String = folded.iter().filter(|c| !separator(c)).collect();
    hiv || aids
        || [
            "エイズ",
            "ｴｲｽﾞ",
            "ヒト免疫不全ウイルス",
            "ヒト免疫不全ウィルス",
        ]
        .iter()
        .any(|w| joined.contains(w))
}

/// Whether a record's name, ICD-10 code or codings name HIV — which makes
/// it SENSITIVE_HIV whatever it is marked ([`RecordData::category`]).
pub fn names_hiv(name: &str, icd10: Option<&str>, codings: &[Coding]) -> bool {
    icd10.is_some_and(is_hiv_icd10)
        || is_hiv_test(name)
        || codings.iter().any(|c| {
            c.display.as_deref().is_some_and(is_hiv_test)
                || (is_icd10_system(&c.system) && is_hiv_icd10(&c.code))
        })
}

/// A coding system of ICD-10: JP Core's, WHO's, or its HL7 OID.
fn is_icd10_system(system: &str) -> bool {
    let s = system.trim().to_ascii_lowercase();
    s.contains("icd-10") || s.contains("icd10") || s.ends_with("2.16.840.1.113883.6.3")
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
