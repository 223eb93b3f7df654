//! A replica's short-lived memory of what hot paths read and almost nothing
//! changes: entries age out after a time, a change made on this replica
//! forgets them at once, and the map stays bounded whatever keys are asked
//! for (ids made up by a caller included).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Entries kept until they age out, so a cache of ids that are asked for
/// (and made up) cannot grow without bound.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct Aging<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Aging<K, V> {
    /// Entries live `ttl`; a zero time keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        self.put_read_at(key, value, Instant::now());
    }

    /// Keeps `value` as it was read at `read_at`: it ages from then, so a
    /// slow read cannot be kept longer than the time promised.
    pub fn put_read_at(&self, key: K, value: V, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            // A sweep that freed little would walk the map again a few puts
            // later, on the request path: leave room for a quarter at least,
            // so a walk is paid for by that many puts (what is dropped is
            // only read again).
            if entries.len() > MAX_ENTRIES / 4 * 3 {
                entries.clear();
            }
        }
        entries.insert(key, (read_at, value));
    }

    pub fn forget<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Forgets every entry whose key `which` picks.
    pub fn forget_where(&self, which: impl Fn(&K) -> bool) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| !which(key));
    }

    #[cfg(test)]
    pub fn entry_count(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_age_out_and_are_forgotten() {
        let cache: Aging<i32, &str> = Aging::new(Duration::from_secs(60));
        cache.put(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.forget(&1);
        assert_eq!(cache.get(&1), None);

        let expired: Aging<i32, &str> = Aging::new(Duration::ZERO);
        expired.put(1, "a");
        assert_eq!(expired.get(&1), None, "a zero time keeps nothing");
    }

    #[test]
    fn entries_are_forgotten_by_key() {
        let cache: Aging<(i32, i32), i32> = Aging::new(Duration::from_secs(60));
        cache.put((1, 1), 1);
        cache.put((1, 2), 2);
        cache.put((2, 1), 3);
        cache.forget_where(|(a, _)| *a == 1);
        assert_eq!(cache.get(&(1, 1)), None);
        assert_eq!(cache.get(&(1, 2)), None);
        assert_eq!(cache.get(&(2, 1)), Some(3));
    }

    #[test]
    fn a_value_ages_from_when_it_was_read() {
        let cache: Aging<i32, i32> = Aging::new(Duration::from_millis(50));
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        cache.put_read_at(1, 1, long_ago);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_full_map_swept_of_a_few_entries_makes_room_for_many() {
        let cache: Aging<i32, i32> = Aging::new(Duration::from_secs(60));
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(120))
            .unwrap_or_else(Instant::now);
        let full = i32::try_from(MAX_ENTRIES).unwrap_or(i32::MAX);
        for i in 0..full {
            // Ten aged-out entries among fresh ones: a sweep alone would
            // free ten places, and the eleventh put would sweep again.
            cache.put_read_at(i, i, if i < 10 { long_ago } else { Instant::now() });
        }
        cache.put(full, full);
        assert!(
            cache.entry_count() <= MAX_ENTRIES / 4 * 3,
            "{} entries after a sweep",
            cache.entry_count()
        );
        assert_eq!(cache.get(&full), Some(full), "the new entry is kept");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache: Aging<i32, i32> = Aging::new(Duration::from_secs(60));
        for i in 0..i32::try_from(MAX_ENTRIES).unwrap_or(i32::MAX) + 5 {
            cache.put(i, i);
        }
        assert!(
            cache.entry_count() <= MAX_ENTRIES,
            "{}",
            cache.entry_count()
        );
    }
}
