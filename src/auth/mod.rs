//! Who may log in, and as what. Users come from three places: the local list
//! (S3FTP_USERS, S3FTP_USERS_FILE), an HTTP auth hook (S3FTP_AUTH_URL) or an
//! LDAP directory (S3FTP_LDAP_URL). A local user's name is decided locally
//! and never sent out; any other name goes to the hook or the directory.
//! Successful checks are remembered for S3FTP_LOGIN_CACHE_SECS under a keyed
//! hash of the name and the proof, so only the same password hits the cache.

mod cache;
pub mod hook;
pub mod ldap;
mod local;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use local::{
    hash_password, parse_users, parse_users_toml, random_password, UserSpec, UserStore,
};

use crate::vfs::mount::MountSpec;

/// A user as a session sees it, wherever it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// A normal absolute path in the user's tree.
    pub home: String,
    pub rights: Rights,
    /// The user's own mounts (from the auth hook), which then form the
    /// whole tree the user sees; empty: the server's mounts.
    pub mounts: Vec<MountSpec>,
}

/// What a user may not do (see README, users).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    pub read_only: bool,
    pub drop_box: bool,
    pub no_delete: bool,
    pub no_overwrite: bool,
}

impl User {
    fn local(spec: &UserSpec) -> User {
        User {
            name: spec.name.clone(),
            home: spec.home.clone(),
            rights: Rights {
                read_only: spec.read_only,
                drop_box: spec.drop_box,
                no_delete: spec.no_delete,
                no_overwrite: spec.no_overwrite,
            },
            mounts: Vec::new(),
        }
    }

    /// The read-only user that `S3FTP_ANONYMOUS_HOME` enables.
    pub fn anonymous(home: &str) -> User {
        User::local(&UserSpec::anonymous(home))
    }
}

/// How a client proves who it is.
#[derive(Clone, Copy, Debug)]
pub enum Proof<'a> {
    Password(&'a str),
    /// A verified client certificate that names the user (these are all
    /// the names it vouches for).
    Certificate(&'a [String]),
}

/// One login attempt and what is known of its client.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    pub name: &'a str,
    pub proof: Proof<'a>,
    pub client: SocketAddr,
    /// Whether the control connection is TLS.
    pub tls: bool,
}

/// Who answered a login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Cache,
    Local,
    Hook,
    Ldap,
}

impl Via {
    pub fn label(self) -> &'static str {
        match self {
            Via::Cache => "cache",
            Via::Local => "local",
            Via::Hook => "hook",
            Via::Ldap => "ldap",
        }
    }
}

/// The answer to an attempt.
#[derive(Debug)]
pub enum Verdict {
    Accepted(Arc<User>),
    /// Wrong password, unknown user, or not allowed in: a failed login.
    Refused,
    /// The hook or the directory could not answer (down, slow, malformed):
    /// logged where it happened; the login is refused, never let through.
    Unavailable,
}

/// An external source of users.
pub enum External {
    Hook(hook::Hook),
    Ldap(ldap::Ldap),
}

/// Outcome of asking an external source.
pub(crate) enum Answer {
    User(User),
    Refused,
    Unavailable,
}

/// The settings of the external source and the cache.
#[derive(Clone, Debug, Default)]
pub struct AuthSettings {
    pub hook: Option<hook::HookSettings>,
    pub ldap: Option<ldap::LdapSettings>,
    /// How long a successful check is remembered (zero: not at all).
    pub cache_ttl: Duration,
    /// Extra CA certificates (PEM) trusted for the hook and the directory.
    pub ca_file: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("S3FTP_AUTH_CA_FILE: {0}")]
    Tls(String),
}

/// Every source of users, asked in order: cache, local, external.
pub struct Authenticator {
    local: UserStore,
    external: Option<External>,
    cache: cache::LoginCache,
    /// Checks under way, by cache key: the same name and proof arriving
    /// at once (a batch starting 50 sessions) wait for the first check and
    /// take its cached answer, instead of 50 argon2 runs or hook calls.
    in_flight: std::sync::Mutex<std::collections::HashMap<cache::Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl Authenticator {
    pub fn new(users: Vec<UserSpec>, settings: &AuthSettings) -> Result<Self, AuthError> {
        let external = if settings.hook.is_none() && settings.ldap.is_none() {
            None
        } else {
            let tls = crate::tls::client_config(settings.ca_file.as_deref())
                .map_err(|e| AuthError::Tls(e.to_string()))?;
            match (&settings.hook, &settings.ldap) {
                (Some(hook), _) => Some(External::Hook(hook::Hook::new(hook.clone(), tls))),
                (None, Some(ldap)) => Some(External::Ldap(ldap::Ldap::new(ldap.clone(), tls))),
                (None, None) => None,
            }
        };
        Ok(Authenticator {
            local: UserStore::new(users),
            external,
            cache: cache::LoginCache::new(settings.cache_ttl),
            in_flight: Default::default(),
        })
    }

    /// Only local users (tests, tools).
    pub fn local_only(users: Vec<UserSpec>) -> Self {
        Authenticator {
            local: UserStore::new(users),
            external: None,
            cache: cache::LoginCache::new(Duration::ZERO),
            in_flight: Default::default(),
        }
    }

    /// Whether no user can log in at all (no local users, no hook, no directory).
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.external.is_none()
    }

    /// Decides an attempt, and says who decided.
    pub async fn check(&self, attempt: &Attempt<'_>) -> (Verdict, Via) {
        let local = self.local.get(attempt.name);
        let key = self.cache.key(local.is_some(), attempt);
        if let Some(user) = self.cache.get(&key) {
            return (Verdict::Accepted(user), Via::Cache);
        }
        if !self.cache.enabled() {
            return self.ask(local, attempt, key).await;
        }
        let gate = self.lock_in_flight().entry(key).or_default().clone();
        let turn = gate.lock().await;
        let result = match self.cache.get(&key) {
            // Another check of the same name and proof passed meanwhile.
            Some(user) => (Verdict::Accepted(user), Via::Cache),
            None => self.ask(local, attempt, key).await,
        };
        drop(turn);
        let mut in_flight = self.lock_in_flight();
        // Ours and the map's: nobody else waits.
        if in_flight
            .get(&key)
            .is_some_and(|g| Arc::strong_count(g) <= 2)
        {
            in_flight.remove(&key);
        }
        result
    }

    fn lock_in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<cache::Key, Arc<tokio::sync::Mutex<()>>>>
    {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the source of `attempt`'s user, caching a success under `key`.
    async fn ask(
        &self,
        local: Option<Arc<UserSpec>>,
        attempt: &Attempt<'_>,
        key: cache::Key,
    ) -> (Verdict, Via) {
        let (answer, via) = match (local, &self.external) {
            (Some(spec), _) => (self.check_local(&spec, attempt).await, Via::Local),
            (None, Some(External::Hook(hook))) => (hook.ask(attempt).await, Via::Hook),
            (None, Some(External::Ldap(ldap))) => (ldap.ask(attempt).await, Via::Ldap),
            (None, None) => {
                // Costs what a wrong password costs.
                if let Proof::Password(password) = attempt.proof {
                    self.local.verify(attempt.name, password).await;
                }
                (Answer::Refused, Via::Local)
            }
        };
        let verdict = match answer {
            Answer::User(user) => {
                let user = Arc::new(user);
                self.cache.insert(key, user.clone());
                Verdict::Accepted(user)
            }
            Answer::Refused => Verdict::Refused,
            Answer::Unavailable => Verdict::Unavailable,
        };
        (verdict, via)
    }

    async fn check_local(&self, spec: &UserSpec, attempt: &Attempt<'_>) -> Answer {
        match attempt.proof {
            // The session checked that the certificate names this user.
            Proof::Certificate(_) => Answer::User(User::local(spec)),
            Proof::Password(_) if spec.cert_required => {
                tracing::warn!(user = %spec.name, "password login refused: the account needs a client certificate");
                Answer::Refused
            }
            Proof::Password(password) => match self.local.verify(&spec.name, password).await {
                Some(spec) => Answer::User(User::local(&spec)),
                None => Answer::Refused,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(name: &'a str, password: &'a str) -> Attempt<'a> {
        Attempt {
            name,
            proof: Proof::Password(password),
            client: "127.0.0.1:1".parse().unwrap(),
            tls: false,
        }
    }

    /// Ten logins with one name and password at once: one argon2 check,
    /// nine answers from the cache; a wrong password is still refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simultaneous_logins_share_one_check() {
        let hash = hash_password("pw").unwrap();
        let users = parse_users(&format!(r#"[{{"name":"a","password":"{hash}"}}]"#)).unwrap();
        let auth = Arc::new(
            Authenticator::new(
                users,
                &AuthSettings {
                    cache_ttl: Duration::from_secs(60),
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        let checks: Vec<_> = (0..10)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.check(&attempt("a", "pw")).await })
            })
            .collect();
        let mut vias = Vec::new();
        for check in checks {
            let (verdict, via) = check.await.unwrap();
            assert!(matches!(verdict, Verdict::Accepted(_)));
            vias.push(via);
        }
        assert_eq!(
            vias.iter().filter(|v| **v == Via::Local).count(),
            1,
            "{vias:?}"
        );
        assert!(matches!(
            auth.check(&attempt("a", "wrong")).await.0,
            Verdict::Refused
        ));
        assert!(auth.lock_in_flight().is_empty(), "nothing left in flight");
    }
}
