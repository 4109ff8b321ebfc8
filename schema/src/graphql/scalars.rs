//! Scalars of our own.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::Timestamp;

/// A calendar date, `YYYY-MM-DD` (ISO 8601), with no time zone. An impossible
/// date such as `2023-02-30` is refused before execution (`BAD_USER_INPUT`).
/// Serialises (JSON storage) as the same `YYYY-MM-DD` string.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_date(s).map(Date).ok_or_else(|| {
                InputValueError::custom(format!(
                    "{s:?} is not a calendar date (expected YYYY-MM-DD, years 1900 to 2100)"
                ))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    /// Checked at validation, so a bad date is refused before execution with
    /// the other input errors (`BAD_USER_INPUT`), literal or variable alike.
    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if parse_date(s).is_some())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

/// `YYYY-MM-DD` with a four-digit year from 1900 to 2100: chrono's `%Y` alone
/// also takes `+12345-01-01`, which no one means and which SQLite, comparing
/// dates as text, would order wrongly.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    (1900..=2100)
        .contains(&chrono::Datelike::year(&d))
        .then_some(d)
}

/// RFC 3339 (the grammar of chrono's scalar, which served inputs before)
/// with a four-digit year from 1900 to 2100, as written: chrono alone takes
/// years from −262143 to +262142, which PostgreSQL refuses before 4713 BC
/// (an internal error, from a client's input) and SQLite, comparing times
/// as text, orders wrongly before year 0 and after 9999.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let year: i32 = s.get(..4)?.parse().ok()?;
    if !s[..4].bytes().all(|b| b.is_ascii_digit()) || s.as_bytes().get(4) != Some(&b'-') {
        return None;
    }
    if !(1900..=2100).contains(&year) {
        return None;
    }
    // A leap second (`…:60`) chrono reads as the second before's nanoseconds
    // past a billion, and stored it as the next minute; the hub's clocks
    // and the systems that send times have none (UTC's leap seconds are
    // smeared or skipped), so `:60` is a typing error.
    s.parse::<DateTime<Utc>>()
        .ok()
        .filter(|t| chrono::Timelike::nanosecond(t) < 1_000_000_000)
}

/// A point in time, RFC 3339 (`2026-01-05T09:00:00Z`, any offset), of the
/// years 1900 to 2100 as written (others are `BAD_USER_INPUT`). The hub
/// keeps times to the microsecond: digits beyond are dropped as the value
/// is read (`…00.1234567Z` is `…00.123456Z`), on SQLite and PostgreSQL
/// alike. Times the hub returns carry at most six fractional digits.
///
/// Inputs take this type; outputs are chrono's `DateTime<Utc>` under the
/// same GraphQL name (scalars of one name are one scalar to clients), which
/// come from the database and so are already to the microsecond. The
/// registry keeps chrono's entry for the name, so a time is checked as its
/// argument is read, during execution, not at validation as a [`Date`] is:
/// still `BAD_USER_INPUT`, before the field resolves.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_time(s).map(Timestamp::new).ok_or_else(|| {
                InputValueError::custom(format!(
                    "{s:?} is not an RFC 3339 time of the years 1900 to 2100 (e.g. 2026-01-05T09:00:00Z)"
                ))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.get().to_rfc3339())
    }
}
