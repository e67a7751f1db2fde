//! Users from an LDAP directory or Active Directory (S3FTP_LDAP_*): the
//! password is checked by binding as the user, whose DN comes from a
//! template or from a search made with a service account. The entry may
//! name the home; group membership maps to rights, and may be required.
//!
//! Connections (StartTLS or ldaps://, or plain to a loopback address) are
//! kept for reuse, at most `pool` idle; one that fails is dropped and the
//! login tried once more on a new one. An empty password is refused before
//! any bind: LDAP treats it as an anonymous bind, which succeeds.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{
    dn_escape, ldap_escape, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry,
};

use super::{Answer, Attempt, Proof, Rights, User};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapSettings {
    /// ldap://HOST[:PORT] or ldaps://HOST[:PORT].
    pub url: String,
    /// Upgrade ldap:// connections with StartTLS.
    pub starttls: bool,
    pub bind: BindMode,
    /// Filter the user's entry must match; `{user}` is the escaped name.
    pub filter: String,
    /// Attribute holding the home (a path in the virtual tree), if any.
    pub home_attribute: Option<String>,
    /// Home when the entry names none; `{user}` is the lower-cased name.
    pub home_template: String,
    /// Where groups are searched; None: the entry's `memberOf` values.
    pub group_base: Option<String>,
    /// Filter of the user's groups: `{dn}` the user's DN, `{user}` the name.
    pub group_filter: String,
    pub groups: GroupRights,
    pub timeout: Duration,
    /// Idle connections kept.
    pub pool: usize,
}

/// How the user's DN is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindMode {
    /// `uid={user},ou=people,dc=example,dc=org`: bind directly.
    Template(String),
    /// Bind as a service account, search `base` with the filter, bind as the
    /// one entry found.
    Search {
        dn: String,
        password: crate::secrets::Secret,
        base: String,
    },
}

/// Group DNs that give or take rights (compared case-insensitively).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupRights {
    /// Only members may log in.
    pub required: Option<String>,
    pub read_only: Option<String>,
    pub drop_box: Option<String>,
    pub no_delete: Option<String>,
    pub no_overwrite: Option<String>,
}

impl GroupRights {
    fn any(&self) -> bool {
        self.required.is_some()
            || self.read_only.is_some()
            || self.drop_box.is_some()
            || self.no_delete.is_some()
            || self.no_overwrite.is_some()
    }
}

pub struct Ldap {
    settings: LdapSettings,
    tls: Arc<rustls::ClientConfig>,
    idle: Mutex<Vec<ldap3::Ldap>>,
}

/// Why a login ended without a user.
enum Failure {
    /// The directory said no: a failed login.
    Refused(String),
    /// The directory could not be asked.
    Unavailable(String),
}

impl From<LdapError> for Failure {
    fn from(e: LdapError) -> Self {
        Failure::Unavailable(e.to_string())
    }
}

/// Bind result codes that mean "not this password or not this account":
/// inappropriateAuthentication, invalidCredentials, unwillingToPerform
/// (locked or disabled accounts on some servers).
const REFUSING_BINDS: [u32; 3] = [48, 49, 53];

impl Ldap {
    pub fn new(settings: LdapSettings, tls: Arc<rustls::ClientConfig>) -> Self {
        Ldap {
            settings,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(super) async fn ask(&self, attempt: &Attempt<'_>) -> Answer {
        let Proof::Password(password) = attempt.proof else {
            // Certificates are not looked up in the directory.
            return Answer::Refused;
        };
        let name = attempt.name;
        if password.is_empty() || name.contains(['/', '\\']) {
            return Answer::Refused;
        }
        // A pooled connection may have been closed by the server: one retry
        // on a new connection before calling the directory unavailable.
        let mut outcome = Err(Failure::Unavailable(String::new()));
        for attempt_no in 0..2 {
            let (mut ldap, pooled) = match self.connection(attempt_no == 0).await {
                Ok(c) => c,
                Err(e) => {
                    outcome = Err(Failure::Unavailable(format!("cannot connect: {e}")));
                    break;
                }
            };
            let deadline = self.settings.timeout * 4;
            outcome =
                match tokio::time::timeout(deadline, self.login(&mut ldap, name, password)).await {
                    Ok(result) => result,
                    Err(_) => Err(Failure::Unavailable(format!(
                        "no answer within {deadline:?}"
                    ))),
                };
            match &outcome {
                Err(Failure::Unavailable(_)) if pooled => continue,
                Err(Failure::Unavailable(_)) => break,
                _ => {
                    self.put_back(ldap);
                    break;
                }
            }
        }
        match outcome {
            Ok(user) => Answer::User(user),
            Err(Failure::Refused(why)) => {
                tracing::info!(user = %name, "LDAP refused the login: {why}");
                Answer::Refused
            }
            Err(Failure::Unavailable(why)) => {
                tracing::warn!(user = %name, url = %self.settings.url, "LDAP directory unavailable: {why}; login refused");
                Answer::Unavailable
            }
        }
    }

    /// An idle connection (if `reuse`), or a new one; true when it was idle.
    async fn connection(&self, reuse: bool) -> Result<(ldap3::Ldap, bool), LdapError> {
        if reuse {
            if let Some(ldap) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                return Ok((ldap, true));
            }
        }
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls && self.settings.url.starts_with("ldap://"))
            .set_config(self.tls.clone());
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.settings.url).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("LDAP connection ended: {e}");
            }
        });
        Ok((ldap, false))
    }

    fn put_back(&self, ldap: ldap3::Ldap) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.settings.pool {
                idle.push(ldap);
            }
        }
    }

    async fn login(
        &self,
        ldap: &mut ldap3::Ldap,
        name: &str,
        password: &str,
    ) -> Result<User, Failure> {
        let s = &self.settings;
        let filter = s.filter.replace("{user}", &ldap_escape(name));
        let mut attrs: Vec<&str> = vec!["memberOf"];
        attrs.extend(s.home_attribute.as_deref());
        let (entry, groups) = match &s.bind {
            BindMode::Template(template) => {
                let dn = template.replace("{user}", &dn_escape(name));
                self.bind_user(ldap, &dn, password).await?;
                let entry = self
                    .find(ldap, &dn, Scope::Base, &filter, &attrs)
                    .await?
                    .ok_or_else(|| Failure::Refused(format!("{dn} does not match {filter}")))?;
                let groups = self.groups(ldap, &entry, name).await?;
                (entry, groups)
            }
            BindMode::Search {
                dn,
                password: service_password,
                base,
            } => {
                let bound = ldap
                    .with_timeout(s.timeout)
                    .simple_bind(dn, &service_password.0)
                    .await?;
                if bound.rc != 0 {
                    return Err(Failure::Unavailable(format!(
                        "the service account {dn} cannot bind: {bound}"
                    )));
                }
                let entry = self
                    .find(ldap, base, Scope::Subtree, &filter, &attrs)
                    .await?
                    .ok_or_else(|| {
                        Failure::Refused(format!("no entry under {base} matches {filter}"))
                    })?;
                // Groups are read as the service account, which may read them.
                let groups = self.groups(ldap, &entry, name).await?;
                self.bind_user(ldap, &entry.dn, password).await?;
                (entry, groups)
            }
        };
        self.user(name, &entry, &groups)
    }

    async fn bind_user(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
        password: &str,
    ) -> Result<(), Failure> {
        let result = ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(dn, password)
            .await?;
        match result.rc {
            0 => Ok(()),
            rc if REFUSING_BINDS.contains(&rc) => {
                Err(Failure::Refused(format!("bind as {dn}: {result}")))
            }
            _ => Err(Failure::Unavailable(format!("bind as {dn}: {result}"))),
        }
    }

    /// The one entry that matches, if exactly one does.
    async fn find(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, Failure> {
        let result = ldap
            .with_timeout(self.settings.timeout)
            .search(base, scope, filter, attrs)
            .await?;
        // noSuchObject: the template's DN is not there.
        if result.1.rc == 32 {
            return Ok(None);
        }
        let (entries, _) = result.success()?;
        let mut found = Vec::new();
        for entry in entries {
            found.push(construct(entry)?);
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(Failure::Refused(format!(
                "{n} entries match {filter} under {base}"
            ))),
        }
    }

    /// The DNs of the user's groups, lower-cased; empty when no rights
    /// depend on groups.
    async fn groups(
        &self,
        ldap: &mut ldap3::Ldap,
        entry: &SearchEntry,
        name: &str,
    ) -> Result<HashSet<String>, Failure> {
        let s = &self.settings;
        if !s.groups.any() {
            return Ok(HashSet::new());
        }
        let Some(base) = &s.group_base else {
            let member_of = entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("memberOf"));
            return Ok(member_of
                .into_iter()
                .flat_map(|(_, v)| v)
                .map(|dn| normal_dn(dn))
                .collect());
        };
        let filter = s
            .group_filter
            .replace("{dn}", &ldap_escape(entry.dn.as_str()))
            .replace("{user}", &ldap_escape(name));
        let (entries, _) = ldap
            .with_timeout(s.timeout)
            .search(base, Scope::Subtree, &filter, vec!["1.1"])
            .await?
            .success()?;
        let mut groups = HashSet::new();
        for entry in entries {
            groups.insert(normal_dn(&construct(entry)?.dn));
        }
        Ok(groups)
    }

    fn user(
        &self,
        name: &str,
        entry: &SearchEntry,
        groups: &HashSet<String>,
    ) -> Result<User, Failure> {
        let s = &self.settings;
        let member = |group: &Option<String>| {
            group
                .as_ref()
                .is_some_and(|g| groups.contains(&normal_dn(g)))
        };
        if s.groups.required.is_some() && !member(&s.groups.required) {
            return Err(Failure::Refused(format!(
                "{} is not in the required group",
                entry.dn
            )));
        }
        let from_entry = s.home_attribute.as_ref().and_then(|attr| {
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().cloned())
        });
        let home =
            from_entry.unwrap_or_else(|| s.home_template.replace("{user}", &name.to_lowercase()));
        if let Err(e) = crate::vfs::path::check_home(&home) {
            return Err(Failure::Unavailable(format!(
                "the home {home:?} of {} is not a normal absolute path: {e}",
                entry.dn
            )));
        }
        Ok(User {
            name: name.to_string(),
            home,
            rights: Rights {
                read_only: member(&s.groups.read_only),
                drop_box: member(&s.groups.drop_box),
                no_delete: member(&s.groups.no_delete),
                no_overwrite: member(&s.groups.no_overwrite),
            },
            mounts: Vec::new(),
        })
    }
}

/// ldap3 panics on an entry it cannot parse; that is the directory's
/// fault, not a reason to end the session.
fn construct(entry: ldap3::ResultEntry) -> Result<SearchEntry, Failure> {
    std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(entry))).map_err(|_| {
        Failure::Unavailable("the directory sent an entry that cannot be parsed".into())
    })
}

/// A DN for comparison: lower case, no spaces after separators.
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normal_dn("CN=FTP RO, OU=Groups,dc=x"),
            "cn=ftp ro,ou=groups,dc=x"
        );
    }
}
