//! A small deterministic generator: the same seed gives the same region on any
//! machine and with any number of workers (every patient has its own stream,
//! derived from the seed and the patient's number), independent of the `rand`
//! crate's version.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use uuid::Uuid;

/// SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The stream of one entity (`stream` tells the tables apart).
    pub fn for_entity(seed: u64, stream: u64, n: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.0 ^= r.next_u64() ^ n.wrapping_mul(0xE703_7ED1_A0B4_28DB);
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (sum of uniforms) with the given mean and deviation.
    pub fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let s: f64 = (0..6).map(|_| self.unit()).sum::<f64>() - 3.0;
        mean + s * sd * std::f64::consts::SQRT_2
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `k` distinct indexes of `0..n` (`k <= n`), in random order.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k.min(n));
        idx
    }

    /// A UUIDv7 whose timestamp is `millis` and whose random bits come from
    /// this stream: deterministic, and sortable like the hub's own ids.
    pub fn uuid_v7(&mut self, millis: u64) -> Uuid {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes()[..2]);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }

    /// A time of day during office hours (Japan, 08:30–18:30 JST) on `day`, in UTC.
    pub fn office_time(&mut self, day: NaiveDate) -> DateTime<Utc> {
        let jst_minutes = 8 * 60 + 30 + self.range(0, 600);
        let seconds = self.range(0, 59);
        let local = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        local + TimeDelta::minutes(jst_minutes - 9 * 60) + TimeDelta::seconds(seconds)
    }
}
