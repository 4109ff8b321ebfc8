//! Validation helpers shared by the record kinds. They only check: the data is
//! stored as given.

use chrono::NaiveDate;

use crate::domain::{NAME_MAX, Text, past_date};
use crate::error::ApiError;
use crate::graphql::Date;

/// Names and other one-line fields (drug, substance, title …).
pub(super) const SHORT_MAX: usize = NAME_MAX;
/// Free text: findings, notes, goals.
pub(crate) const LONG_MAX: usize = 10_000;
/// The text of a clinical document (a discharge summary can be long).
pub(super) const DOCUMENT_TEXT_MAX: usize = 100_000;

/// A required one-line field: trimmed non-empty, at most [`SHORT_MAX`]
/// characters, no control characters.
pub(super) fn short(field: &str, value: &str) -> Result<(), ApiError> {
    Text::parse(field, value, SHORT_MAX).map(drop)
}

pub(super) fn short_opt(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    value.as_deref().map_or(Ok(()), |v| short(field, v))
}

/// A required multi-line field: trimmed non-empty, at most `max` characters;
/// line breaks and tabs are allowed, other control characters are not, nor
/// what reorders the text as displayed ([`crate::domain::reorders_text`]).
pub(crate) fn long(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let s = value.trim();
    if !s.chars().any(crate::domain::shows_something) {
        return Err(ApiError::bad_input(field, "must not be empty"));
    }
    let n = s.chars().count();
    if n > max {
        return Err(ApiError::bad_input(
            field,
            format!("must be at most {max} characters, got {n}"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_input(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    if let Some(c) = s.chars().find(|&c| crate::domain::reorders_text(c)) {
        return Err(ApiError::bad_input(
            field,
            format!(
                "must not contain direction overrides (U+{:04X}): the text would read in another order than written",
                c as u32
            ),
        ));
    }
    Ok(())
}

pub(crate) fn long_opt(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    value.as_deref().map_or(Ok(()), |v| long(field, v, max))
}

/// A date that must not lie in the future (nor before 1900).
pub(super) fn not_future(
    field: &str,
    date: Option<Date>,
    today: NaiveDate,
) -> Result<(), ApiError> {
    date.map_or(Ok(()), |d| past_date(field, d.0, today).map(drop))
}

/// `later` must not be before `earlier` (an end date before its start).
pub(super) fn not_before(
    field: &str,
    later: Option<Date>,
    earlier_field: &str,
    earlier: Option<Date>,
) -> Result<(), ApiError> {
    match (later, earlier) {
        (Some(l), Some(e)) if l < e => Err(ApiError::bad_input(
            field,
            format!("{} is before {earlier_field} ({})", l.0, e.0),
        )),
        _ => Ok(()),
    }
}

pub(super) fn in_range_i32(
    field: &str,
    value: Option<i32>,
    low: i32,
    high: i32,
) -> Result<(), ApiError> {
    match value {
        Some(v) if !(low..=high).contains(&v) => Err(ApiError::bad_input(
            field,
            format!("{v} is outside the range {low} to {high}"),
        )),
        _ => Ok(()),
    }
}

/// A YJ code (個別医薬品コード): 12 letters or digits, e.g. `2149039F1020`.
pub(super) fn yj_code(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value.as_deref().map(str::trim) {
        Some(v) if v.len() != 12 || !v.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Err(ApiError::bad_input(
                field,
                format!("{v:?} is not a YJ code (12 letters or digits, e.g. 2149039F1020)"),
            ))
        }
        _ => Ok(()),
    }
}

/// An ICD-10 code: a capital letter, two digits, then optionally (with or
/// without a dot) one to four letters or digits: `I10`, `E11.9`, `C34.1`, `E119`.
pub(super) fn icd10(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    let Some(v) = value.as_deref().map(str::trim) else {
        return Ok(());
    };
    let b = v.as_bytes();
    let head_ok =
        b.len() >= 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_digit();
    let tail = if head_ok { &v[3..] } else { "" };
    let tail = tail.strip_prefix('.').unwrap_or(tail);
    let dotted = v.len() > 3 && v.as_bytes()[3] == b'.';
    let tail_ok = if dotted {
        (1..=4).contains(&tail.len())
    } else {
        tail.len() <= 4
    } && tail.chars().all(|c| c.is_ascii_alphanumeric());
    if head_ok && tail_ok {
        Ok(())
    } else {
        Err(ApiError::bad_input(
            field,
            format!("{v:?} is not an ICD-10 code (e.g. I10, E11.9, C34.1)"),
        ))
    }
}
