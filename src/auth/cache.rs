//! Successful logins remembered for a while, so that a batch job that logs in
//! once per file pays the argon2 verification (about 30 ms of a core) or the
//! round trip to the hook or directory once, not every time.
//!
//! An entry's key is a SHA-256 of a random per-process secret, where the
//! user comes from, the name and the proof (the password). So a different
//! password never matches an entry, a failed attempt neither reads nor
//! evicts one, and the map never holds a password or an unkeyed hash of one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Attempt, Proof, User};
use crate::bounded::BoundedMap;

/// Entries kept at most: a few hundred bytes each.
const CAPACITY: usize = 10_000;

pub(super) type Key = [u8; 32];

pub(super) struct LoginCache {
    ttl: Duration,
    secret: [u8; 32],
    entries: Mutex<BoundedMap<Key, (Arc<User>, Instant)>>,
}

impl LoginCache {
    pub(super) fn new(ttl: Duration) -> Self {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        LoginCache {
            ttl,
            secret,
            entries: Mutex::new(BoundedMap::new(CAPACITY)),
        }
    }

    /// The key of an attempt; `local` tells local users from external ones
    /// of the same name.
    pub(super) fn key(&self, local: bool, attempt: &Attempt<'_>) -> Key {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update([u8::from(local)]);
        let field = |h: &mut Sha256, bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(&mut h, attempt.name.as_bytes());
        match attempt.proof {
            Proof::Password(password) => {
                h.update(b"p");
                field(&mut h, password.as_bytes());
            }
            Proof::Certificate(names) => {
                h.update(b"c");
                for name in names {
                    field(&mut h, name.as_bytes());
                }
            }
        }
        h.finalize().into()
    }

    pub(super) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub(super) fn get(&self, key: &Key) -> Option<Arc<User>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((user, expires)) if Instant::now() < *expires => Some(user.clone()),
            _ => None,
        }
    }

    pub(super) fn insert(&self, key: Key, user: Arc<User>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            let now = Instant::now();
            // Expired entries go first, so they do not push out live ones.
            if entries.len() >= CAPACITY {
                entries.retain(|_, (_, expires)| now < *expires);
            }
            entries.insert(key, (user, now + self.ttl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(name: &'a str, proof: Proof<'a>) -> Attempt<'a> {
        Attempt {
            name,
            proof,
            client: "127.0.0.1:1".parse().unwrap(),
            tls: false,
        }
    }

    fn user() -> Arc<User> {
        Arc::new(User {
            name: "alice".into(),
            home: "/".into(),
            rights: Default::default(),
            mounts: Vec::new(),
        })
    }

    #[test]
    fn only_the_same_name_and_password_hit() {
        let cache = LoginCache::new(Duration::from_secs(60));
        let key = cache.key(false, &attempt("alice", Proof::Password("right")));
        cache.insert(key, user());
        assert!(cache.get(&key).is_some());
        for other in [
            cache.key(false, &attempt("alice", Proof::Password("wrong"))),
            cache.key(true, &attempt("alice", Proof::Password("right"))),
            cache.key(false, &attempt("alicer", Proof::Password("ight"))),
            cache.key(false, &attempt("alice", Proof::Certificate(&[]))),
        ] {
            assert!(cache.get(&other).is_none());
        }
        // Another process (another secret) has other keys.
        let other = LoginCache::new(Duration::from_secs(60));
        assert_ne!(
            other.key(false, &attempt("alice", Proof::Password("right"))),
            key
        );
    }

    #[test]
    fn entries_expire_and_zero_keeps_nothing() {
        let cache = LoginCache::new(Duration::from_millis(1));
        let key = cache.key(false, &attempt("a", Proof::Password("p")));
        cache.insert(key, user());
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(&key).is_none());
        let off = LoginCache::new(Duration::ZERO);
        off.insert(key, user());
        assert!(off.get(&key).is_none());
    }
}
