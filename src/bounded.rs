//! A map that keeps at most a fixed number of entries, dropping the oldest
//! inserted first: what the in-memory caches of checksums use, so that
//! memory stays bounded however many files pass.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

pub struct BoundedMap<K, V> {
    entries: HashMap<K, V>,
    /// Keys in insertion order, for eviction.
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Inserts or replaces; a new key beyond the capacity drops the oldest.
    pub fn insert(&mut self, key: K, value: V) {
        if !self.entries.contains_key(&key) {
            while self.entries.len() >= self.capacity {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                self.entries.remove(&oldest);
            }
            self.order.push_back(key.clone());
        }
        self.entries.insert(key, value);
    }

    /// Keeps only the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.entries.retain(|k, v| keep(k, v));
        let entries = &self.entries;
        self.order.retain(|k| entries.contains_key(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first() {
        let mut map = BoundedMap::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3);
        assert_eq!((map.len(), map.get(&"a")), (2, Some(&3)));
        map.insert("c", 4);
        assert_eq!(map.get(&"a"), None);
        assert_eq!((map.get(&"b"), map.get(&"c")), (Some(&2), Some(&4)));
        map.retain(|k, _| *k != "b");
        map.insert("d", 5);
        assert_eq!((map.len(), map.get(&"c")), (2, Some(&4)));
    }
}
