//! Time, injectable: the policy asks a [`Clock`] what time it is, so tests can
//! move time forward (emergency access expiring after four hours) without
//! waiting.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Today's date in Japan (UTC+9, no daylight saving). Care-team periods and
    /// consent dates are calendar dates of the region, so "today" must be the
    /// region's day, not UTC's — which lags nine hours behind.
    fn today(&self) -> NaiveDate {
        day_in_japan(self.now())
    }
}

/// The date in Japan (UTC+9) at `instant`: [`Clock::today`] of a clock
/// that reads `instant`.
pub fn day_in_japan(instant: DateTime<Utc>) -> NaiveDate {
    const JST: i32 = 9 * 3600;
    let offset = FixedOffset::east_opt(JST).expect("+09:00 is a valid offset");
    instant.with_timezone(&offset).date_naive()
}

pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
pub struct SystemClock;

/// The time to the microsecond, as the hub keeps every time
/// ([`crate::domain::to_micros`]): the system clock's nanoseconds would be
/// stored by SQLite and dropped by PostgreSQL.
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        crate::domain::to_micros(Utc::now())
    }
}

/// The system time, to the microsecond, for the services that stamp rows
/// without asking the injectable clock (registrations, key issuance).
pub fn system_now() -> DateTime<Utc> {
    SystemClock.now()
}

/// A clock that stands still until told to move (tests, simulations).
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        crate::domain::to_micros(*self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
