//! A small time-limited cache whose clearing is exact, shared by the caches
//! that spare authentication a database read (API-key verifications, the
//! directory of members and organisations).
//!
//! The hazard it exists for: a load that was already reading the database
//! when the cache was cleared (a member suspended, a key revoked meanwhile)
//! must not put its possibly stale value back. Every miss hands out the
//! cache's epoch; clearing (or forgetting) bumps it under the lock, and a
//! value is stored only if no clear happened since its load began.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    /// Past this many entries the cache is simply emptied (bounds memory).
    max: usize,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    epoch: u64,
    entries: HashMap<K, (V, Instant)>,
}

/// Proof that a miss happened at some epoch: what [`TtlCache::store`] needs.
#[derive(Clone, Copy, Debug)]
pub struct Miss(u64);

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TtlCache {
            ttl,
            max,
            state: Mutex::new(State {
                epoch: 0,
                entries: HashMap::new(),
            }),
        }
    }

    /// The value if it is fresh; otherwise the epoch the load starts at.
    pub fn get(&self, key: &K) -> Result<V, Miss> {
        let state = self.lock();
        match state.entries.get(key) {
            Some((value, at)) if at.elapsed() < self.ttl => Ok(value.clone()),
            _ => Err(Miss(state.epoch)),
        }
    }

    /// Stores what a load begun at `miss` found, unless the cache was
    /// cleared meanwhile.
    pub fn store(&self, miss: Miss, key: K, value: V) {
        let mut state = self.lock();
        if state.epoch != miss.0 {
            return;
        }
        if state.entries.len() >= self.max {
            state.entries.clear();
        }
        state.entries.insert(key, (value, Instant::now()));
    }

    /// Forgets everything, and whatever loads in flight would have stored.
    pub fn clear(&self) {
        self.retain(|_| false);
    }

    /// Forgets the values `keep` refuses, and whatever loads in flight would
    /// have stored.
    pub fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        let mut state = self.lock();
        state.epoch += 1;
        state.entries.retain(|_, (v, _)| keep(v));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        // Each critical section is a lookup, an insert or a retain: a panic
        // elsewhere cannot leave the map half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_a_clear_is_not_stored() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        let miss = cache.get(&1).unwrap_err();
        cache.clear();
        cache.store(miss, 1, "stale");
        assert!(cache.get(&1).is_err());
        let miss = cache.get(&1).unwrap_err();
        cache.store(miss, 1, "fresh");
        assert_eq!(cache.get(&1).unwrap(), "fresh");
    }

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let cache = TtlCache::new(Duration::ZERO, 2);
        let miss = cache.get(&1).unwrap_err();
        cache.store(miss, 1, 'a');
        assert!(cache.get(&1).is_err(), "expired at once");
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        for k in 0..3 {
            let miss = cache.get(&k).unwrap_err();
            cache.store(miss, k, k);
        }
        assert!(cache.get(&0).is_err() && cache.get(&1).is_err());
        assert_eq!(cache.get(&2).unwrap(), 2);
    }

    #[test]
    fn retain_forgets_only_what_it_refuses() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        for k in 0..4 {
            let miss = cache.get(&k).unwrap_err();
            cache.store(miss, k, k);
        }
        cache.retain(|v| v % 2 == 0);
        assert_eq!(cache.get(&2).unwrap(), 2);
        assert!(cache.get(&3).is_err());
    }
}
