//! Plausible values: the bounds of what a patient can have for common
//! measurements, refused beyond with `IMPLAUSIBLE_VALUE`.
//!
//! The bounds are data, `schema/data/plausible-values.toml` (its header
//! says what each entry means); this module reads the table once, finds
//! the entry a lab result or a vital sign is of, and checks a value. The
//! rule is to refuse only what is certainly wrong: a range applies only
//! when the unit says which range (a value without a known unit is checked
//! for its sign alone), and a lab result with a JLAC10 code is matched by
//! the code alone and only for a blood specimen. `docs/plausible-values.md`
//! documents the rules; its table is rendered from the data
//! ([`documentation_table`]) and kept equal by a test.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::error::ApiError;

const SOURCE: &str = include_str!("../../data/plausible-values.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    /// JLAC10 specimen codes of blood (characters 10–12 of a code).
    blood_specimens: Vec<String>,
    measurement: Vec<Measurement>,
}

/// One measurement of the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub id: String,
    /// What error messages call it.
    pub label: String,
    names: Vec<String>,
    #[serde(default)]
    jlac10: Vec<String>,
    #[serde(default)]
    vital_sign: Option<String>,
    non_negative: bool,
    units: Vec<Range>,
}

/// The plausible range in one unit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    unit: String,
    low: f64,
    high: f64,
}

/// The table, parsed on first use. The file is compiled in and checked by
/// the tests below, so it cannot fail at run time.
static TABLE: LazyLock<Table> = LazyLock::new(|| {
    toml::from_str(SOURCE).expect("schema/data/plausible-values.toml parses (checked by tests)")
});

/// The measurement a lab result is of, if the table knows it: by its
/// JLAC10 code when it has one (then only a blood specimen's analyte
/// matches — the code says exactly what was measured, so the name is not
/// consulted), else by its name.
pub fn of_lab_result(code: Option<&str>, name: &str) -> Option<&'static Measurement> {
    let table = &*TABLE;
    if let Some(code) = code.map(str::trim).filter(|c| is_jlac10(c)) {
        let (analyte, specimen) = (&code[..5], &code[9..12]);
        if !table.blood_specimens.iter().any(|s| s == specimen) {
            return None;
        }
        return table
            .measurement
            .iter()
            .find(|m| m.jlac10.iter().any(|a| a.eq_ignore_ascii_case(analyte)));
    }
    let name = fold(name);
    table
        .measurement
        .iter()
        .find(|m| m.names.iter().any(|n| fold(n) == name))
}

/// The measurement bounding a field of vital signs (`spo2`, `weightKg` …).
pub fn of_vital_sign(field: &str) -> Option<&'static Measurement> {
    TABLE
        .measurement
        .iter()
        .find(|m| m.vital_sign.as_deref() == Some(field))
}

/// A number as a message shows it: in exponent form when the plain form
/// would run to many digits (`1e308`, not 309 of them — which a message,
/// cut to a bounded length, would lose its reason behind).
pub(crate) fn shown(v: f64) -> String {
    if v != 0.0 && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

impl Measurement {
    /// Refuses `value`, given in `unit`, when no patient can have it: below
    /// zero for a quantity that cannot be negative (whatever the unit),
    /// outside the range of `unit` when the table lists it.
    pub fn check(&self, field: &str, value: f64, unit: Option<&str>) -> Result<(), ApiError> {
        if self.non_negative && value < 0.0 {
            return Err(ApiError::implausible(
                field,
                format!(
                    "{} is below zero, which a {} cannot be",
                    shown(value),
                    self.label
                ),
            ));
        }
        let unit = fold_unit(unit.unwrap_or(""));
        if let Some(r) = self.units.iter().find(|r| fold_unit(&r.unit) == unit)
            && !(r.low..=r.high).contains(&value)
        {
            let u = if r.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", r.unit)
            };
            return Err(ApiError::implausible(
                field,
                format!(
                    "{}{u} is not a possible {}: the plausible range is {} to {}{u}",
                    shown(value),
                    self.label,
                    r.low,
                    r.high
                ),
            ));
        }
        Ok(())
    }

    /// [`Measurement::check`] for a vital sign, whose unit is fixed: the
    /// first one the table lists.
    pub fn check_vital_sign(&self, field: &str, value: f64) -> Result<(), ApiError> {
        self.check(field, value, self.units.first().map(|r| r.unit.as_str()))
    }
}

/// A result's text as a number, when it is written as one: `7.2`, `-0.5`,
/// `6,500` (thousands grouped by commas), `.5`, in full-width digits too
/// (`７．２`), or with an exponent (`7.2e1`, `1E+05` — as a microbiology
/// count is written, and as JSON serialisers write large or small numbers).
/// `None` for anything else — 「陰性」, `1+`, `<0.5`, `7.2%` — which stays a
/// qualitative result, and for a number too large to hold (`1e400`: see
/// [`is_out_of_range_number`]).
pub fn parse_number(text: &str) -> Option<f64> {
    number_text(text)?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Whether the text is written as a number ([`parse_number`]'s forms) that
/// no 64-bit float holds (`1e400`): not a qualitative result, and no
/// possible value of any test.
pub fn is_out_of_range_number(text: &str) -> bool {
    number_text(text).is_some() && parse_number(text).is_none()
}

/// The text in the form Rust parses, when it is written as a number.
fn number_text(text: &str) -> Option<String> {
    let s: String = text.trim().chars().map(half_width).collect();
    let s = s.replace('\u{2212}', "-");
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s.as_str(), None),
    };
    let unsigned = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let int_ok = if int.contains(',') {
        let mut groups = int.split(',');
        let head = groups.next().unwrap_or_default();
        digits(head) && head.len() <= 3 && groups.all(|g| g.len() == 3 && digits(g))
    } else {
        int.is_empty() || digits(int)
    };
    let frac_ok = frac.is_none_or(digits);
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    if !int_ok || !frac_ok || !exponent_ok || (int.is_empty() && frac.is_none()) {
        return None;
    }
    Some(s.replace(',', ""))
}

/// Full-width ASCII (`ＨｂＡ１ｃ`, `７．２`) as half-width.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// A test name as compared: half-width, lower case, without spaces.
fn fold(s: &str) -> String {
    s.chars()
        .map(half_width)
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A unit as compared: as [`fold`], with µ and μ as `u`, `℃` as `°c`,
/// superscript digits as digits, without `^` and `*`, and without a
/// leading multiplication sign (`×10³/μL` is `10^3/uL`).
fn fold_unit(s: &str) -> String {
    let folded: String = fold(s)
        .chars()
        .flat_map(|c| -> Vec<char> {
            match c {
                'µ' | 'μ' => vec!['u'],
                '℃' => vec!['°', 'c'],
                '×' => vec!['x'],
                '⁰' => vec!['0'],
                '¹' => vec!['1'],
                '²' => vec!['2'],
                '³' => vec!['3'],
                '⁴' => vec!['4'],
                '⁵' => vec!['5'],
                '⁶' => vec!['6'],
                '⁷' => vec!['7'],
                '⁸' => vec!['8'],
                '⁹' => vec!['9'],
                '^' | '*' => vec![],
                c => vec![c],
            }
        })
        .collect();
    match folded.strip_prefix('x') {
        Some(rest) if rest.starts_with("10") => rest.to_string(),
        _ => folded,
    }
}

/// A JLAC10 code: 17 letters and digits, a digit then a letter (capital as
/// published; a small one is the same code)
/// opening the analyte code, digits at the specimen's place (10–12).
fn is_jlac10(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 17
        && b.iter().all(u8::is_ascii_alphanumeric)
        && b[0].is_ascii_digit()
        && b[1].is_ascii_alphabetic()
        && b[9..12].iter().all(u8::is_ascii_digit)
}

/// The table as the Markdown of `docs/plausible-values.md`.
pub fn documentation_table() -> String {
    let mut out = String::from(
        "| measurement | names | JLAC10 | vital sign | below zero | plausible range |\n|---|---|---|---|---|---|\n",
    );
    let code = |s: &str| format!("`{s}`");
    for m in &TABLE.measurement {
        let ranges: Vec<String> = m
            .units
            .iter()
            .map(|r| {
                let unit = if r.unit.is_empty() {
                    "(no unit)".to_string()
                } else {
                    r.unit.clone()
                };
                format!("{} – {} {unit}", r.low, r.high)
            })
            .collect();
        out.push_str(&format!(
            "| {} (`{}`) | {} | {} | {} | {} | {} |\n",
            m.label,
            m.id,
            m.names.join(", "),
            m.jlac10
                .iter()
                .map(|c| code(c))
                .collect::<Vec<_>>()
                .join(", "),
            m.vital_sign.as_deref().map(code).unwrap_or_default(),
            if m.non_negative { "refused" } else { "" },
            ranges.join("<br>"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let table: Table = toml::from_str(SOURCE).expect("the table parses");
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        let mut codes = HashSet::new();
        for m in &table.measurement {
            assert!(ids.insert(&m.id), "{} twice", m.id);
            assert!(!m.units.is_empty(), "{}: no unit", m.id);
            for n in &m.names {
                assert!(names.insert(fold(n)), "{}: name {n} is another's", m.id);
            }
            for c in &m.jlac10 {
                assert!(
                    c.len() == 5 && c.is_ascii(),
                    "{}: {c} is not an analyte code",
                    m.id
                );
                assert!(codes.insert(c), "{}: code {c} is another's", m.id);
            }
            let mut units = HashSet::new();
            for r in &m.units {
                assert!(
                    units.insert(fold_unit(&r.unit)),
                    "{}: {} twice",
                    m.id,
                    r.unit
                );
                assert!(
                    r.low.is_finite() && r.high.is_finite() && r.low < r.high,
                    "{}: {} to {}",
                    m.id,
                    r.low,
                    r.high
                );
                assert!(
                    !m.non_negative || r.low >= 0.0,
                    "{}: a non-negative quantity with a negative low bound",
                    m.id
                );
            }
        }
        for field in [
            "temperature",
            "systolic",
            "diastolic",
            "pulse",
            "respiratoryRate",
            "spo2",
            "weightKg",
        ] {
            assert!(of_vital_sign(field).is_some(), "vital sign {field}");
        }
    }

    #[test]
    fn the_documentation_shows_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/plausible-values.md");
        let doc = std::fs::read_to_string(path).expect("docs/plausible-values.md");
        let table = documentation_table();
        assert!(
            doc.contains(&table),
            "docs/plausible-values.md does not show the table of schema/data/plausible-values.toml; \
             replace its table with:\n\n{table}"
        );
    }

    #[test]
    fn lab_results_are_found_by_code_then_by_name() {
        let id = |code: Option<&str>, name: &str| of_lab_result(code, name).map(|m| m.id.as_str());
        assert_eq!(id(Some("3D046000001906202"), "何か"), Some("hba1c"));
        // In small letters, the same code.
        assert_eq!(id(Some("3d046000001906202"), "何か"), Some("hba1c"));
        assert_eq!(id(None, "ＨｂＡ１ｃ"), Some("hba1c"));
        assert_eq!(id(None, " hba1c "), Some("hba1c"));
        assert_eq!(
            id(Some("LAB-HbA1c"), "HbA1c"),
            Some("hba1c"),
            "a local code"
        );
        assert_eq!(id(None, "K"), Some("potassium"));
        // Urine albumin (specimen 001) is not serum albumin, whatever its name.
        assert_eq!(id(Some("3A015000000106101"), "アルブミン"), None);
        assert_eq!(id(Some("3A015000002327101"), "Alb"), Some("albumin"));
        // A JLAC10 code the table does not list: unknown, not the name's.
        assert_eq!(id(Some("9Z999000002327101"), "HbA1c"), None);
        assert_eq!(id(None, "尿蛋白"), None);
    }

    #[test]
    fn values_are_refused_only_when_certainly_impossible() {
        let hba1c = of_lab_result(None, "HbA1c").unwrap();
        let field = |r: Result<(), ApiError>| r.err().and_then(|e| e.field().map(str::to_string));
        assert_eq!(
            field(hba1c.check("value", -5.0, Some("%"))).as_deref(),
            Some("value")
        );
        assert_eq!(
            field(hba1c.check("value", -5.0, None)).as_deref(),
            Some("value")
        );
        assert_eq!(
            field(hba1c.check("value", 72.0, Some("%"))).as_deref(),
            Some("value")
        );
        assert!(hba1c.check("value", 7.2, Some("%")).is_ok());
        assert!(hba1c.check("value", 53.0, Some("mmol/mol")).is_ok());
        // No unit, or one the table does not list: the sign only.
        assert!(hba1c.check("value", 72.0, None).is_ok());
        assert!(hba1c.check("value", 72.0, Some("furlongs")).is_ok());
        let code = hba1c.check("value", 72.0, Some("%")).unwrap_err().code();
        assert_eq!(code, "IMPLAUSIBLE_VALUE");

        let wbc = of_lab_result(None, "WBC").unwrap();
        assert!(wbc.check("value", 6500.0, Some("/μL")).is_ok());
        assert!(wbc.check("value", 6.5, Some("×10³/µL")).is_ok());
        assert!(wbc.check("value", 6500.0, Some("x10^3/uL")).is_err());
        let inr = of_lab_result(None, "PT-INR").unwrap();
        assert!(inr.check("value", 1.1, None).is_ok());
        assert!(inr.check("value", 50.0, None).is_err());
        let t = of_vital_sign("temperature").unwrap();
        assert!(t.check("value", 36.5, Some("℃")).is_ok());
        assert!(t.check("value", 365.0, Some("℃")).is_err());
    }

    #[test]
    fn numbers_are_read_from_plain_numbers_only() {
        for (text, want) in [
            ("7.2", Some(7.2)),
            (" -5.0 ", Some(-5.0)),
            ("+1", Some(1.0)),
            (".5", Some(0.5)),
            ("6,500", Some(6500.0)),
            ("1,234,567.5", Some(1_234_567.5)),
            ("７．２", Some(7.2)),
            ("\u{2212}0.3", Some(-0.3)),
            ("陰性", None),
            ("1+", None),
            ("<0.5", None),
            ("7.2%", None),
            ("1e3", Some(1000.0)),
            ("7.2E1", Some(72.0)),
            ("720e-1", Some(72.0)),
            ("１Ｅ＋０５", Some(100_000.0)),
            ("1e+308", Some(1e308)),
            ("1e400", None),
            ("1e", None),
            ("e3", None),
            ("1e3.5", None),
            ("1e3e2", None),
            ("inf", None),
            ("NaN", None),
            ("65,00", None),
            ("1.2.3", None),
            ("-", None),
            (".", None),
            ("", None),
        ] {
            assert_eq!(parse_number(text), want, "{text:?}");
        }
    }
}
