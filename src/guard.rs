//! Per-address limits: sessions per source address, and a temporary ban of an
//! address after repeated failed logins (brute-force guessing). Entries exist
//! only while an address has sessions, recent failures or a ban, so the table
//! cannot grow with the number of addresses that ever connected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct GuardSettings {
    pub max_sessions_per_ip: usize,
    /// Failed logins (within `ban`) that ban the address; 0 disables bans.
    pub failures_before_ban: u32,
    pub ban: Duration,
}

#[derive(Default)]
struct AddressState {
    sessions: usize,
    failures: u32,
    first_failure: Option<Instant>,
    banned_until: Option<Instant>,
}

impl AddressState {
    fn idle(&self, now: Instant) -> bool {
        self.sessions == 0
            && self.banned_until.is_none_or(|t| t <= now)
            && self.first_failure.is_none()
    }
}

/// Why a connection is turned away (answered 421).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Banned,
    TooManySessions,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Banned => "Too many failed logins from your address; try again later.",
            Refusal::TooManySessions => "Too many connections from your address.",
        }
    }
    /// For metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Banned => "banned",
            Refusal::TooManySessions => "per_address",
        }
    }
}

pub struct AddressGuard {
    settings: GuardSettings,
    table: Mutex<HashMap<IpAddr, AddressState>>,
}

/// Held for the life of a session; frees its slot when dropped.
pub struct SessionSlot {
    guard: Arc<AddressGuard>,
    ip: IpAddr,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.guard
            .with(self.ip, |s| s.sessions = s.sessions.saturating_sub(1));
    }
}

impl AddressGuard {
    pub fn new(settings: GuardSettings) -> Arc<Self> {
        Arc::new(AddressGuard {
            settings,
            table: Mutex::new(HashMap::new()),
        })
    }

    fn with<T>(&self, ip: IpAddr, f: impl FnOnce(&mut AddressState) -> T) -> T {
        let ip = ip.to_canonical();
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let state = table.entry(ip).or_default();
        // Forget failures and bans that have expired.
        if state.banned_until.is_some_and(|t| t <= now) {
            state.banned_until = None;
        }
        if state
            .first_failure
            .is_some_and(|t| now.duration_since(t) > self.settings.ban)
        {
            state.first_failure = None;
            state.failures = 0;
        }
        let result = f(state);
        if state.idle(now) {
            table.remove(&ip);
        }
        result
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<SessionSlot, Refusal> {
        let max = self.settings.max_sessions_per_ip;
        self.with(ip, |s| {
            if s.banned_until.is_some() {
                Err(Refusal::Banned)
            } else if s.sessions >= max {
                Err(Refusal::TooManySessions)
            } else {
                s.sessions += 1;
                Ok(())
            }
        })?;
        Ok(SessionSlot {
            guard: self.clone(),
            ip,
        })
    }

    /// Records a failed login; true if the address is now banned.
    pub fn login_failed(&self, ip: IpAddr) -> bool {
        let (limit, ban) = (self.settings.failures_before_ban, self.settings.ban);
        if limit == 0 {
            return false;
        }
        let banned = self.with(ip, |s| {
            s.first_failure.get_or_insert_with(Instant::now);
            s.failures += 1;
            if s.failures >= limit {
                s.banned_until = Some(Instant::now() + ban);
                s.failures = 0;
                s.first_failure = None;
                true
            } else {
                false
            }
        });
        if banned {
            tracing::warn!(%ip, secs = ban.as_secs(), "address banned after failed logins");
        }
        banned
    }

    /// Addresses currently tracked (for tests of the clean-up).
    pub fn tracked(&self) -> usize {
        self.table.lock().map(|t| t.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max: usize, failures: u32, ban_ms: u64) -> Arc<AddressGuard> {
        AddressGuard::new(GuardSettings {
            max_sessions_per_ip: max,
            failures_before_ban: failures,
            ban: Duration::from_millis(ban_ms),
        })
    }

    #[test]
    fn sessions_per_address_are_limited_and_freed() {
        let g = guard(2, 0, 1000);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = g.admit(ip).unwrap();
        let _b = g.admit(ip).unwrap();
        assert_eq!(g.admit(ip).err(), Some(Refusal::TooManySessions));
        assert!(g.admit("127.0.0.2".parse().unwrap()).is_ok());
        drop(a);
        assert!(g.admit(ip).is_ok());
    }

    #[test]
    fn failures_ban_then_the_ban_expires() {
        let g = guard(10, 3, 50);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(!g.login_failed(ip));
        assert!(!g.login_failed(ip));
        assert!(g.login_failed(ip));
        assert_eq!(g.admit(ip).err(), Some(Refusal::Banned));
        std::thread::sleep(Duration::from_millis(80));
        assert!(g.admit(ip).is_ok());
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let g = guard(10, 3, 1000);
        for i in 0..100u8 {
            let slot = g.admit(IpAddr::from([10, 0, 0, i])).unwrap();
            drop(slot);
        }
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn mapped_ipv6_counts_as_ipv4() {
        let g = guard(1, 0, 1000);
        let _a = g.admit("127.0.0.1".parse().unwrap()).unwrap();
        assert!(g.admit("::ffff:127.0.0.1".parse().unwrap()).is_err());
    }
}
