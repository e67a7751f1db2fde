//! Users and security: the user list (variable and file), anonymous logins,
//! and the limits that slow down or ban password guessing.

use std::path::PathBuf;
use std::time::Duration;

use super::sessions::at_least_one;
use super::vars::names::{
    S3FTP_ANONYMOUS_HOME, S3FTP_MAX_SESSIONS_PER_IP, S3FTP_USERS, S3FTP_USERS_FILE,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::auth::{parse_users, parse_users_toml, UserSpec};
use crate::guard::GuardSettings;

/// S3FTP_USERS and S3FTP_USERS_FILE together; a name may appear once.
pub(super) fn users(raw: &Raw) -> Result<Vec<UserSpec>, ConfigError> {
    let mut users = Vec::new();
    if !raw.users.trim().is_empty() {
        users.extend(parse_users(&raw.users).map_err(|e| invalid(S3FTP_USERS, e))?);
    }
    if !raw.users_file.trim().is_empty() {
        users.extend(users_file(raw.users_file.trim())?);
    }
    let mut names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(
            S3FTP_USERS,
            format!("user {:?} defined twice", w[0]),
        ));
    }
    Ok(users)
}

/// Per-address session limit and the ban after failed logins.
pub(super) fn guard(raw: &Raw) -> Result<GuardSettings, ConfigError> {
    Ok(GuardSettings {
        max_sessions_per_ip: at_least_one(S3FTP_MAX_SESSIONS_PER_IP, raw.max_sessions_per_ip)?,
        failures_before_ban: raw.login_failures_before_ban,
        ban: Duration::from_secs(raw.ban_seconds),
    })
}

/// S3FTP_USERS_FILE: JSON, or TOML when the name ends in `.toml`.
fn users_file(path: &str) -> Result<Vec<UserSpec>, ConfigError> {
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        invalid(
            S3FTP_USERS_FILE,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let parsed = if path.extension().is_some_and(|e| e == "toml") {
        parse_users_toml(&text)
    } else {
        parse_users(&text)
    };
    parsed.map_err(|e| invalid(S3FTP_USERS_FILE, e))
}

/// S3FTP_ANONYMOUS_HOME: empty turns anonymous login off. The home must be
/// normal already, since normalising `/x/..` would silently give `/`.
pub(super) fn anonymous_home(value: &str) -> Result<Option<String>, ConfigError> {
    match value.trim() {
        "" => Ok(None),
        home => match crate::vfs::path::check_home(home) {
            Ok(_) => Ok(Some(home.to_string())),
            Err(e) => Err(invalid(
                S3FTP_ANONYMOUS_HOME,
                format!("{home:?}: {e}; it must be a normal absolute path in the virtual tree"),
            )),
        },
    }
}
