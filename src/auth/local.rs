//! Local users (S3FTP_USERS, S3FTP_USERS_FILE) and their password checks.
//! Passwords are stored only as argon2 PHC strings; verification runs on the
//! blocking pool so a login never stalls other sessions, and an unknown user
//! costs the same time as a wrong password.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;

/// A user as configured (S3FTP_USERS / S3FTP_USERS_FILE).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    /// argon2 PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$...`.
    pub password: String,
    #[serde(default = "default_home")]
    pub home: String,
    #[serde(default)]
    pub read_only: bool,
    /// Upload-only "drop box": STOR of new files only; no RETR, no listing of
    /// what is there, no DELE, RMD or rename.
    #[serde(default)]
    pub drop_box: bool,
    /// DELE, RMD and RMDA are refused, and nothing is replaced by RNTO.
    #[serde(default)]
    pub no_delete: bool,
    /// Existing files cannot be replaced (STOR, APPE, RNTO onto them).
    #[serde(default)]
    pub no_overwrite: bool,
    /// Logs in only with a client certificate naming the user
    /// (S3FTP_TLS_CLIENT_CA); the password alone is refused.
    #[serde(default)]
    pub cert_required: bool,
}

impl UserSpec {
    /// The read-only user that `S3FTP_ANONYMOUS_HOME` enables.
    pub fn anonymous(home: &str) -> UserSpec {
        UserSpec {
            name: "anonymous".into(),
            password: String::new(),
            home: home.to_string(),
            read_only: true,
            drop_box: false,
            no_delete: true,
            no_overwrite: true,
            cert_required: false,
        }
    }
}

fn default_home() -> String {
    "/".to_string()
}

/// Parses and checks a JSON array of users.
pub fn parse_users(json: &str) -> Result<Vec<UserSpec>, String> {
    let users: Vec<UserSpec> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON array of users: {e}"))?;
    check_users(users)
}

/// Parses and checks a TOML users file: one `[[users]]` table per user.
pub fn parse_users_toml(text: &str) -> Result<Vec<UserSpec>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct UsersFile {
        #[serde(default)]
        users: Vec<UserSpec>,
    }
    let file: UsersFile =
        toml::from_str(text).map_err(|e| format!("not a TOML file of [[users]]: {e}"))?;
    check_users(file.users)
}

fn check_users(users: Vec<UserSpec>) -> Result<Vec<UserSpec>, String> {
    for user in &users {
        if user.name.is_empty() || user.name.contains(|c: char| c.is_control()) {
            return Err(format!("user name {:?} is not allowed", user.name));
        }
        if PasswordHash::new(&user.password).is_err() || !user.password.starts_with("$argon2") {
            return Err(format!(
                "user {:?}: password must be an argon2 PHC hash, not plain text \
                 (make one with: s3ftp hash-password)",
                user.name
            ));
        }
        // The rules the vfs applies, checked here so that a bad home stops
        // the server instead of refusing (or widening) a login later.
        if let Err(e) = crate::vfs::path::check_home(&user.home) {
            return Err(format!(
                "user {:?}: home {:?} is not usable: {e} (it must be a normal absolute \
                 path in the virtual tree, such as \"/alice\")",
                user.name, user.home
            ));
        }
    }
    Ok(users)
}

/// Hashes a password as an argon2id PHC string with the crate's default cost.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// A random password for the start-up user.
pub fn random_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 20)
}

/// The configured users, shared by all sessions.
#[derive(Debug)]
pub struct UserStore {
    users: HashMap<String, Arc<UserSpec>>,
    /// Verified against when the user is unknown, so timing does not tell.
    decoy_hash: String,
    /// Verifications running at once: one per core. Each takes the hash's
    /// memory cost (19 MiB by default) and a core for tens of milliseconds,
    /// so a flood of logins queues here instead of exhausting memory.
    verifiers: Arc<tokio::sync::Semaphore>,
}

impl UserStore {
    pub fn new(users: Vec<UserSpec>) -> Self {
        let decoy_hash = users
            .first()
            .map(|u| u.password.clone())
            .unwrap_or_else(|| hash_password("decoy").unwrap_or_default());
        UserStore {
            users: users
                .into_iter()
                .map(|u| (u.name.clone(), Arc::new(u)))
                .collect(),
            decoy_hash,
            verifiers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Arc<UserSpec>> {
        self.users.get(name).cloned()
    }

    /// The user, if the password matches.
    pub async fn verify(&self, name: &str, password: &str) -> Option<Arc<UserSpec>> {
        let user = self.users.get(name).cloned();
        let hash = user
            .as_ref()
            .map(|u| u.password.clone())
            .unwrap_or_else(|| self.decoy_hash.clone());
        let password = password.to_string();
        let Ok(_slot) = self.verifiers.acquire().await else {
            return None;
        };
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok {
            user
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passwords_are_refused() {
        let err = parse_users(r#"[{"name":"a","password":"secret"}]"#).unwrap_err();
        assert!(err.contains("hash-password"), "{err}");
    }

    #[test]
    fn toml_users_file() {
        let hash = hash_password("x").unwrap();
        let text = format!(
            "[[users]]\nname = \"a\"\npassword = '{hash}'\nhome = \"/a\"\ndrop_box = true\n\n\
             [[users]]\nname = \"b\"\npassword = '{hash}'\n"
        );
        let users = parse_users_toml(&text).unwrap();
        assert_eq!(users.len(), 2);
        assert!(users[0].drop_box);
        assert_eq!(users[1].home, "/");
        assert!(parse_users_toml("[[users]]\nname = \"a\"\npassword = \"plain\"\n").is_err());
        assert!(parse_users_toml("[[users]]\nname = \"a\"\ncolour = 1\n").is_err());
    }

    #[test]
    fn relative_home_is_refused() {
        let hash = hash_password("x").unwrap();
        let json = format!(r#"[{{"name":"a","password":"{hash}","home":"a"}}]"#);
        assert!(parse_users(&json).is_err());
    }

    #[test]
    fn homes_that_do_not_resolve_are_refused_naming_the_user() {
        let hash = hash_password("x").unwrap();
        for home in ["/a/../..", "/a//b", "/a\\u0000b", "/a/./b", "/x\\u001b"] {
            let json = format!(r#"[{{"name":"carol","password":"{hash}","home":"{home}"}}]"#);
            let err = parse_users(&json).unwrap_err();
            assert!(err.contains("carol") && err.contains("home"), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let toml = format!("[[users]]\nname = \"dan\"\npassword = '{hash}'\nhome = \"/d/..\"\n");
        assert!(parse_users_toml(&toml).unwrap_err().contains("dan"));
        let ok = format!(r#"[{{"name":"e","password":"{hash}","home":"/e/"}}]"#);
        assert!(parse_users(&ok).is_ok());
    }

    #[tokio::test]
    async fn verify_good_and_bad() {
        let hash = hash_password("right").unwrap();
        let json = format!(r#"[{{"name":"alice","password":"{hash}","home":"/alice"}}]"#);
        let store = UserStore::new(parse_users(&json).unwrap());
        let user = store.verify("alice", "right").await.unwrap();
        assert_eq!(user.home, "/alice");
        assert!(!user.read_only);
        assert!(store.verify("alice", "wrong").await.is_none());
        assert!(store.verify("bob", "right").await.is_none());
    }
}
