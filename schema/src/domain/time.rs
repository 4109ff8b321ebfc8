//! Instants: the hub keeps every time to the microsecond.
//!
//! PostgreSQL stores `timestamptz` to the microsecond; SQLite stores the
//! RFC 3339 text it is given, to the nanosecond when the time has them, and
//! compares that text. A time that reached the two with more digits
//! (.NET's round-trip format `…00.1234567Z`, or the system clock's
//! nanoseconds) would then be a different time on each, and on SQLite a
//! cursor (which carries microseconds) would no longer equal the record it
//! came from — records sharing its time were skipped by the next page. So
//! every time is cut to the microsecond where it enters the hub, once: the
//! GraphQL `DateTime` input ([`Timestamp`]) and the clock
//! (`crate::clock`). Stored SQLite text from before is cut by migration
//! `m20261210_000010_time_precision`.

use chrono::{DateTime, Utc};

/// `t` cut to the whole microsecond (towards the past, as PostgreSQL
/// stores it).
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A time as the hub keeps it: UTC, to the microsecond. The GraphQL
/// `DateTime` input (`graphql::scalars`) parses into it, so a time from a
/// client cannot reach a service with more precision than the database
/// keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn new(t: DateTime<Utc>) -> Self {
        Timestamp(to_micros(t))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp::new(t)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_the_microsecond() {
        for (given, kept) in [
            (
                "2026-01-05T09:00:00.1234567Z",
                "2026-01-05T09:00:00.123456Z",
            ),
            (
                "2026-01-05T09:00:00.123456789Z",
                "2026-01-05T09:00:00.123456Z",
            ),
            (
                "2026-01-05T09:00:00.999999999Z",
                "2026-01-05T09:00:00.999999Z",
            ),
            ("2026-01-05T09:00:00.5Z", "2026-01-05T09:00:00.5Z"),
            (
                "2026-01-05T18:00:00.1234567+09:00",
                "2026-01-05T09:00:00.123456Z",
            ),
            (
                "1999-12-31T23:59:59.9999999Z",
                "1999-12-31T23:59:59.999999Z",
            ),
        ] {
            let t: DateTime<Utc> = given.parse().unwrap();
            let want: DateTime<Utc> = kept.parse().unwrap();
            assert_eq!(Timestamp::new(t).get(), want, "{given}");
        }
    }
}
