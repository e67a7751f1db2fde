//! Configuration from `S3FTP_*` environment variables. `vars.rs` declares
//! every variable once (name, type, default, help) and generates
//! [`VARIABLES`], which fills in defaults, prints `--help` and is checked
//! against the README and .env.example. Each variable is parsed by its own
//! typed parser, then checked by section (listeners, uploads, users, TLS,
//! sessions, logging); errors name the variable.

mod auth;
mod events;
mod listeners;
mod sessions;
mod tls;
mod uploads;
mod users;
mod vars;
mod warnings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::auth::UserSpec;
use crate::datachan::proxy::ProxyPolicy;
use crate::guard::GuardSettings;
use crate::tls::CertSource;
use crate::vfs::mount::MountSpec;

pub use vars::{Variable, VARIABLES};
pub use warnings::{is_loopback, is_private};

use vars::names::{
    S3FTP_AUTH_TOKEN, S3FTP_DATA_TIMEOUT, S3FTP_DOWNLOAD_CONCURRENCY, S3FTP_EVENTS_WEBHOOK_SECRET,
    S3FTP_IDLE_TIMEOUT, S3FTP_LDAP_BIND_PASSWORD, S3FTP_LOGIN_TIMEOUT, S3FTP_LOG_FORMAT,
    S3FTP_MAX_SESSIONS, S3FTP_METRICS_LISTEN, S3FTP_MOUNTS, S3FTP_TLS_IMPLICIT_LISTEN,
    S3FTP_UPLOAD_CONCURRENCY, S3FTP_USERS,
};
use vars::Raw;

pub const PREFIX: &str = "S3FTP_";

/// Why the configuration is refused. The message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

fn invalid(var: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        reason: reason.into(),
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub pasv_ports: Option<RangeInclusive<u16>>,
    pub pasv_address: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub users: Vec<UserSpec>,
    /// The auth hook or LDAP directory, and the login cache.
    pub auth: crate::auth::AuthSettings,
    /// S3FTP_SERVER_ID, or the host name.
    pub server_id: String,
    /// Event sinks, filter and spool (S3FTP_EVENTS_*).
    pub events: crate::events::EventSettings,
    pub part_size_mib: usize,
    pub upload_concurrency: usize,
    /// Parts of one S3 download asked for at once.
    pub download_concurrency: usize,
    pub upload_memory_mib: usize,
    /// S3FTP_DIR_CACHE_SECS (zero: off).
    pub dir_cache: Duration,
    /// S3FTP_UPLOAD_SWEEP_AGE (zero: no sweeping).
    pub upload_sweep_age: Duration,
    /// S3FTP_STORE_WAIT: how long start-up retries an unreachable store.
    pub store_wait: Duration,
    /// S3FTP_HASH_MAX_MIB in bytes (0: no limit).
    pub hash_max_bytes: u64,
    /// S3FTP_UPLOAD_DIGESTS.
    pub upload_digests: Vec<crate::digest::Algorithm>,
    pub rename_overwrite: bool,
    /// Upload-then-rename suffixes (S3FTP_TEMP_SUFFIXES), each non-empty.
    pub temp_suffixes: Vec<String>,
    /// S3FTP_LEGACY_ENCODING; the default is UTF-8 only.
    pub legacy_encoding: crate::protocol::names::NameEncoding,
    /// Home of anonymous (read-only) logins; None: anonymous login is off.
    pub anonymous_home: Option<String>,
    /// Where the TLS certificate comes from; None: no FTPS.
    pub tls: Option<CertSource>,
    /// CA certificates of client certificates (S3FTP_TLS_CLIENT_CA).
    pub tls_client_ca: Option<String>,
    pub tls_implicit_listen: Option<SocketAddr>,
    /// The monitoring HTTP listener; None: off.
    pub metrics_listen: Option<SocketAddr>,
    /// PROXY protocol headers expected from a load balancer.
    pub proxy: ProxyPolicy,
    pub tls_require_reuse: bool,
    pub require_tls: bool,
    pub idle_timeout: Duration,
    pub login_timeout: Duration,
    /// 0: no limit.
    pub max_commands_per_second: u32,
    pub data_timeout: Duration,
    /// S3FTP_COMMIT_WAIT_US.
    pub commit_wait: Duration,
    pub max_sessions: usize,
    pub guard: GuardSettings,
    /// Delay before a failed login's reply, times the failures so far.
    pub login_fail_delay: Duration,
    /// How long transfers may go on after a shutdown signal.
    pub shutdown_grace: Duration,
    pub banner: String,
    pub log: String,
    /// One JSON object per log line instead of text.
    pub log_json: bool,
    /// Every variable's value as given or defaulted, secrets redacted, in
    /// [`VARIABLES`] order: what the start-up self-check prints.
    pub effective: Vec<Setting>,
}

/// One variable's effective value, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// Redacted where it holds secrets (user hashes, S3 secret keys).
    pub value: String,
    pub is_default: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars())
    }

    /// Reads the given variables (tests pass their own); unset ones get their
    /// default, unknown `S3FTP_*` names are refused so a typo cannot go unseen.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let values = with_defaults(vars)?;
        let mut config = validate(Raw::read(&values)?)?;
        config.effective = effective(&values);
        Ok(config)
    }
}

/// Every variable's text: the given value, else its default. Other variables
/// are dropped, except that unknown `S3FTP_*` names (`S3FTP_TEST_*` aside)
/// are refused.
fn with_defaults<I, K, V>(vars: I) -> Result<HashMap<String, String>, ConfigError>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut values: HashMap<String, String> = VARIABLES
        .iter()
        .map(|v| (v.name.to_string(), v.default.to_string()))
        .collect();
    for (k, v) in vars {
        let k = k.into();
        if !k.starts_with(PREFIX) {
            continue;
        }
        if !values.contains_key(&k) {
            if k.starts_with("S3FTP_TEST_") {
                continue;
            }
            return Err(invalid(&k, "unknown variable (see s3ftp --help)"));
        }
        values.insert(k, v.into());
    }
    Ok(values)
}

/// The configuration: each field from its variable's parser or check, which
/// names the variable when it refuses; checks across variables come first.
fn validate(raw: Raw) -> Result<Config, ConfigError> {
    uploads::check_sizes(&raw)?;
    let tls_implicit_listen = listeners::optional_addr(
        S3FTP_TLS_IMPLICIT_LISTEN,
        &raw.tls_implicit_listen,
        "0.0.0.0:990",
    )?;
    let tls = tls::cert_source(&raw, tls_implicit_listen.is_some())?;
    let server_id = auth::server_id(&raw.server_id);
    Ok(Config {
        auth: auth::auth(&raw, &server_id)?,
        events: events::events(&raw)?,
        server_id,
        listen: listeners::listen(&raw.listen)?,
        pasv_ports: listeners::port_range(&raw.pasv_ports)?,
        pasv_address: listeners::non_empty(&raw.pasv_address),
        mounts: uploads::mounts(&raw.mounts)?,
        users: users::users(&raw)?,
        part_size_mib: raw.part_size_mib,
        upload_concurrency: sessions::at_least_one(
            S3FTP_UPLOAD_CONCURRENCY,
            raw.upload_concurrency,
        )?,
        download_concurrency: sessions::at_least_one(
            S3FTP_DOWNLOAD_CONCURRENCY,
            raw.download_concurrency,
        )?,
        upload_memory_mib: raw.upload_memory_mib,
        dir_cache: Duration::from_secs(raw.dir_cache_secs),
        upload_sweep_age: Duration::from_secs(raw.upload_sweep_age),
        store_wait: Duration::from_secs(raw.store_wait),
        hash_max_bytes: raw.hash_max_mib.saturating_mul(1 << 20),
        upload_digests: uploads::digests(&raw.upload_digests)?,
        rename_overwrite: raw.rename_overwrite,
        temp_suffixes: uploads::temp_suffixes(&raw.temp_suffixes)?,
        legacy_encoding: uploads::legacy_encoding(&raw.legacy_encoding)?,
        anonymous_home: users::anonymous_home(&raw.anonymous_home)?,
        tls_client_ca: tls::client_ca(&raw, tls.is_some())?,
        tls,
        tls_implicit_listen,
        metrics_listen: listeners::optional_addr(
            S3FTP_METRICS_LISTEN,
            &raw.metrics_listen,
            "0.0.0.0:9090",
        )?,
        proxy: listeners::proxy(&raw)?,
        tls_require_reuse: raw.tls_require_reuse,
        require_tls: raw.require_tls,
        idle_timeout: sessions::timeout(S3FTP_IDLE_TIMEOUT, raw.idle_timeout)?,
        login_timeout: sessions::timeout(S3FTP_LOGIN_TIMEOUT, raw.login_timeout)?,
        max_commands_per_second: raw.max_commands_per_second,
        data_timeout: sessions::timeout(S3FTP_DATA_TIMEOUT, raw.data_timeout)?,
        commit_wait: sessions::commit_wait(raw.commit_wait_us),
        max_sessions: sessions::at_least_one(S3FTP_MAX_SESSIONS, raw.max_sessions)?,
        guard: users::guard(&raw)?,
        login_fail_delay: Duration::from_millis(raw.login_fail_delay_ms),
        shutdown_grace: Duration::from_secs(raw.shutdown_grace),
        log_json: log_json(&raw.log_format)?,
        banner: raw.banner,
        log: raw.log,
        effective: Vec::new(),
    })
}

/// S3FTP_LOG_FORMAT: true for one JSON object per line.
fn log_json(format: &str) -> Result<bool, ConfigError> {
    match format.trim() {
        "text" => Ok(false),
        "json" => Ok(true),
        other => Err(invalid(
            S3FTP_LOG_FORMAT,
            format!("{other:?}: use text or json"),
        )),
    }
}

/// Every variable's value for display, in [`VARIABLES`] order.
fn effective(values: &HashMap<String, String>) -> Vec<Setting> {
    VARIABLES
        .iter()
        .map(|v| {
            let value = values.get(v.name).map_or("", String::as_str);
            Setting {
                name: v.name,
                is_default: value == v.default,
                value: redact_setting(v.name, value),
            }
        })
        .collect()
}

/// Hides what must not reach logs: user hashes, S3 secret keys in mount URIs.
fn redact_setting(name: &str, value: &str) -> String {
    match name {
        S3FTP_USERS | S3FTP_AUTH_TOKEN | S3FTP_LDAP_BIND_PASSWORD | S3FTP_EVENTS_WEBHOOK_SECRET
            if !value.trim().is_empty() =>
        {
            "(set, not shown)".into()
        }
        S3FTP_MOUNTS => value
            .split(',')
            .map(crate::secrets::redact)
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}

/// The text of `s3ftp --help`: usage and every variable with its default.
pub fn help_text() -> String {
    let mut out = String::from(
        "s3ftp: an FTP server that stores files in object stores or a local folder.\n\n\
         Usage:\n  s3ftp                  run the server (configured by the variables below)\n  \
         s3ftp hash-password    read a password on stdin, print its argon2id hash\n  \
         s3ftp config           print the effective configuration and exit\n  \
         s3ftp --help           this text\n\nEnvironment variables (default in brackets):\n",
    );
    for v in VARIABLES {
        out.push_str(&format!("  {} [{}]\n      {}\n", v.name, v.default, v.help));
    }
    out
}

#[cfg(test)]
mod tests;
