//! Configuration from `S3FTP_*` environment variables. [`VARIABLES`] is the one
//! list of every variable with its default and meaning: it fills in defaults,
//! prints `--help`, and the README's table is written from it. Values are
//! deserialised by `envy` and validated here; errors name the variable.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::UserSpec;
use crate::datachan::proxy::{Network, ProxyMode, ProxyPolicy};
use crate::guard::GuardSettings;
use crate::tls::CertSource;
use crate::vfs::mount::{parse_mounts, MountSpec};

pub const PREFIX: &str = "S3FTP_";

/// One configuration variable.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "S3FTP_LISTEN",
        default: "127.0.0.1:2121",
        help: "Address and port of the FTP control listener.",
    },
    Variable {
        name: "S3FTP_PASV_PORTS",
        default: "",
        help: "Passive data port range, e.g. 50000-50100 (empty: any free port).",
    },
    Variable {
        name: "S3FTP_PASV_ADDRESS",
        default: "",
        help: "Address advertised in PASV replies, IP or DNS name, for NAT and containers (empty: the control connection's local address).",
    },
    Variable {
        name: "S3FTP_MOUNTS",
        default: "/=fs://./data",
        help: "Comma-separated PATH=URI mounts forming the virtual tree; URIs: fs://FOLDER, memory://, s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true.",
    },
    Variable {
        name: "S3FTP_USERS",
        default: "",
        help: "JSON array of users: [{\"name\":\"alice\",\"password\":\"$argon2id$...\",\"home\":\"/alice\",\"read_only\":false}].",
    },
    Variable {
        name: "S3FTP_USERS_FILE",
        default: "",
        help: "Path of a users file: the same JSON array as S3FTP_USERS, or TOML [[users]] tables when the name ends in .toml (both variables may be used).",
    },
    Variable {
        name: "S3FTP_PART_SIZE_MIB",
        default: "8",
        help: "S3 multipart part size in MiB (at least 5); doubles every 900 parts so uploads can reach 5 TiB.",
    },
    Variable {
        name: "S3FTP_UPLOAD_CONCURRENCY",
        default: "4",
        help: "Parts of one S3 upload sent at once while the client is still sending.",
    },
    Variable {
        name: "S3FTP_UPLOAD_MEMORY_MIB",
        default: "160",
        help: "Global budget of S3 part buffers (being filled or sent) across all sessions, in MiB; uploads wait, slowing their clients, when it is spent.",
    },
    Variable {
        name: "S3FTP_DIR_CACHE_SECS",
        default: "10",
        help: "Seconds an S3 mount trusts what it recently saw of its directories (that a directory exists; all of its subdirectories, from a listing, MKD or one listing page), so uploads into a known directory send only their PutObject. Changes by other writers show after this long; 0: check the store on every upload.",
    },
    Variable {
        name: "S3FTP_UPLOAD_SWEEP_AGE",
        default: "3600",
        help: "Seconds after which a multipart upload under an S3 mount's prefix that this process is not sending counts as abandoned (a crashed server's, an abort that kept failing) and is aborted: it must have been started that long ago and its newest part be that old too, so another replica's slow upload survives. Swept at start and every min(age, 3600)/2 seconds. It also aborts other tools' uploads under the prefix that are that stale. 0: no sweeping.",
    },
    Variable {
        name: "S3FTP_ANONYMOUS_HOME",
        default: "",
        help: "Home of read-only anonymous logins (USER anonymous or ftp, any password); empty: anonymous login is off.",
    },
    Variable {
        name: "S3FTP_RENAME_OVERWRITE",
        default: "true",
        help: "RNTO onto an existing file replaces it, as FTP servers do; false answers 550 and keeps both.",
    },
    Variable {
        name: "S3FTP_TEMP_SUFFIXES",
        default: ".filepart",
        help: "Comma-separated suffixes of upload-then-rename temporary names (WinSCP's .filepart): a STOR to NAME+suffix is written straight to NAME and made visible when the client renames it to NAME, so the rename copies nothing. Empty: off.",
    },
    Variable {
        name: "S3FTP_LEGACY_ENCODING",
        default: "",
        help: "Encoding of clients that send file names as raw legacy bytes (latin1, gbk, shift_jis, windows-1251...): such names are stored as UTF-8 keys, and names go out in it until a client sends OPTS UTF8 ON. Empty: UTF-8 only.",
    },
    Variable {
        name: "S3FTP_TLS_CERT",
        default: "",
        help: "PEM file with the TLS certificate chain (leaf first); enables FTPS (AUTH TLS).",
    },
    Variable {
        name: "S3FTP_TLS_KEY",
        default: "",
        help: "PEM file with the private key of S3FTP_TLS_CERT.",
    },
    Variable {
        name: "S3FTP_TLS_SELF_SIGNED",
        default: "false",
        help: "Generate a self-signed certificate at start when no S3FTP_TLS_CERT is given (development only).",
    },
    Variable {
        name: "S3FTP_TLS_IMPLICIT_LISTEN",
        default: "",
        help: "Address and port of an implicit FTPS listener (TLS from the first byte, conventionally port 990).",
    },
    Variable {
        name: "S3FTP_METRICS_LISTEN",
        default: "",
        help: "Address and port of the monitoring HTTP listener: /metrics (Prometheus), /healthz, /readyz (empty: off).",
    },
    Variable {
        name: "S3FTP_PROXY_PROTOCOL",
        default: "off",
        help: "HAProxy PROXY protocol (v1 or v2) header expected from a load balancer: off, control (control connections) or all (control and passive data connections).",
    },
    Variable {
        name: "S3FTP_PROXY_TRUSTED",
        default: "",
        help: "Comma-separated addresses or networks (10.0.0.0/8) allowed to send PROXY headers (empty: any peer; then the FTP ports must be reachable only through the proxy).",
    },
    Variable {
        name: "S3FTP_TLS_REQUIRE_REUSE",
        default: "false",
        help: "PROT P data connections must resume the control connection's TLS session (like vsftpd's require_ssl_reuse; breaks clients that do not reuse, such as Python's ftplib).",
    },
    Variable {
        name: "S3FTP_REQUIRE_TLS",
        default: "false",
        help: "Refuse USER/PASS before AUTH TLS (530) and transfers without PROT P (521).",
    },
    Variable {
        name: "S3FTP_IDLE_TIMEOUT",
        default: "300",
        help: "Seconds a control connection may stay idle before 421 and disconnect.",
    },
    Variable {
        name: "S3FTP_LOGIN_TIMEOUT",
        default: "60",
        help: "Seconds a connection may take to log in before 421 and disconnect.",
    },
    Variable {
        name: "S3FTP_MAX_COMMANDS_PER_SECOND",
        default: "5000",
        help: "Commands one session may send per second; faster clients are slowed down, not cut off (0: no limit).",
    },
    Variable {
        name: "S3FTP_DATA_TIMEOUT",
        default: "30",
        help: "Seconds to wait for a data connection to open, and for any data to move on it.",
    },
    Variable {
        name: "S3FTP_COMMIT_WAIT_US",
        default: "1000",
        help: "Microseconds an upload whose data ended waits, before it is committed, for its control connection to close or say ABOR: a killed client's kernel can close the data connection a little before the control connection. Live clients send nothing then (they wait for 226), so each upload takes this much longer. 0: look only at what has already arrived.",
    },
    Variable {
        name: "S3FTP_MAX_SESSIONS",
        default: "512",
        help: "Most control connections served at once; more are answered 421.",
    },
    Variable {
        name: "S3FTP_MAX_SESSIONS_PER_IP",
        default: "32",
        help: "Most control connections from one client address; more are answered 421.",
    },
    Variable {
        name: "S3FTP_LOGIN_FAILURES_BEFORE_BAN",
        default: "5",
        help: "Failed logins from one address (within S3FTP_BAN_SECONDS) that ban it for S3FTP_BAN_SECONDS; 0 never bans.",
    },
    Variable {
        name: "S3FTP_BAN_SECONDS",
        default: "300",
        help: "How long a banned address is answered 421 at connect.",
    },
    Variable {
        name: "S3FTP_LOGIN_FAIL_DELAY_MS",
        default: "1000",
        help: "Delay before answering a failed login, times the failures so far on the connection (at most 10 s).",
    },
    Variable {
        name: "S3FTP_SHUTDOWN_GRACE",
        default: "30",
        help: "Seconds transfers in flight may go on after SIGTERM/SIGINT; then they are aborted (uploads discarded).",
    },
    Variable {
        name: "S3FTP_BANNER",
        default: "s3ftp ready",
        help: "Text of the 220 greeting.",
    },
    Variable {
        name: "S3FTP_LOG",
        default: "info",
        help: "Log filter (tracing EnvFilter syntax), e.g. info or s3ftp=debug.",
    },
    Variable {
        name: "S3FTP_LOG_FORMAT",
        default: "text",
        help: "Log format on stderr: text (human-readable) or json (one object per line).",
    },
];

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

/// The raw values, as `envy` deserialises them (defaults already filled in).
#[derive(Deserialize)]
struct Raw {
    listen: String,
    pasv_ports: String,
    pasv_address: String,
    mounts: String,
    users: String,
    users_file: String,
    part_size_mib: usize,
    upload_concurrency: usize,
    upload_memory_mib: usize,
    dir_cache_secs: u64,
    upload_sweep_age: u64,
    rename_overwrite: bool,
    temp_suffixes: String,
    legacy_encoding: String,
    anonymous_home: String,
    tls_cert: String,
    tls_key: String,
    tls_self_signed: bool,
    tls_implicit_listen: String,
    metrics_listen: String,
    proxy_protocol: String,
    proxy_trusted: String,
    tls_require_reuse: bool,
    require_tls: bool,
    idle_timeout: u64,
    login_timeout: u64,
    max_commands_per_second: u32,
    data_timeout: u64,
    commit_wait_us: u64,
    max_sessions: usize,
    max_sessions_per_ip: usize,
    login_failures_before_ban: u32,
    ban_seconds: u64,
    login_fail_delay_ms: u64,
    shutdown_grace: u64,
    banner: String,
    log: String,
    log_format: String,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub pasv_ports: Option<RangeInclusive<u16>>,
    pub pasv_address: Option<String>,
    pub mounts: Vec<MountSpec>,
    pub users: Vec<UserSpec>,
    pub part_size_mib: usize,
    pub upload_concurrency: usize,
    pub upload_memory_mib: usize,
    /// S3FTP_DIR_CACHE_SECS (zero: off).
    pub dir_cache: Duration,
    /// S3FTP_UPLOAD_SWEEP_AGE (zero: no sweeping).
    pub upload_sweep_age: Duration,
    pub rename_overwrite: bool,
    /// Upload-then-rename suffixes (S3FTP_TEMP_SUFFIXES), each non-empty.
    pub temp_suffixes: Vec<String>,
    /// S3FTP_LEGACY_ENCODING; the default is UTF-8 only.
    pub legacy_encoding: crate::protocol::names::NameEncoding,
    /// Home of anonymous (read-only) logins; None: anonymous login is off.
    pub anonymous_home: Option<String>,
    /// Where the TLS certificate comes from; None: no FTPS.
    pub tls: Option<CertSource>,
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
        let mut values: HashMap<String, String> = VARIABLES
            .iter()
            .map(|v| (v.name.to_string(), v.default.to_string()))
            .collect();
        for (k, v) in vars {
            let (k, v) = (k.into(), v.into());
            if !k.starts_with(PREFIX) {
                continue;
            }
            if !values.contains_key(&k) && !k.starts_with("S3FTP_TEST_") {
                return Err(invalid(&k, "unknown variable (see s3ftp --help)"));
            }
            values.insert(k, v);
        }
        let raw: Raw = envy::prefixed(PREFIX)
            .from_iter(values.clone())
            .map_err(|e| envy_error(e, &values))?;
        let mut config = raw.validate()?;
        config.effective = VARIABLES
            .iter()
            .map(|v| {
                let value = values.get(v.name).cloned().unwrap_or_default();
                Setting {
                    name: v.name,
                    is_default: value == v.default,
                    value: redact_setting(v.name, &value),
                }
            })
            .collect();
        Ok(config)
    }

    /// Settings that work but break clients or expose passwords, each with
    /// what to do; printed as warnings at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let local = is_loopback(self.listen.ip());
        if !local && self.pasv_address.is_none() {
            out.push(format!(
                "S3FTP_PASV_ADDRESS is unset: PASV replies advertise the address the server \
                 sees itself on, which clients behind NAT, in containers or behind a load \
                 balancer cannot reach; set it to the public address or name{}",
                if self.proxy.control() {
                    " (the PROXY protocol is on, so a balancer is in front)"
                } else {
                    ""
                }
            ));
        }
        match &self.pasv_ports {
            None if !local => out.push(
                "S3FTP_PASV_PORTS is unset: passive ports are any free port, which a \
                 firewall or container cannot publish; set a range such as 50000-50099"
                    .into(),
            ),
            Some(range) => {
                let ports = usize::from(*range.end() - *range.start()) + 1;
                if ports < self.max_sessions {
                    out.push(format!(
                        "S3FTP_PASV_PORTS has {ports} ports for up to {} sessions \
                         (S3FTP_MAX_SESSIONS): sessions past that get 425 when they all \
                         transfer at once; widen the range or lower the limit",
                        self.max_sessions
                    ));
                }
            }
            None => {}
        }
        if self.tls.is_none() && !local && !is_private(self.listen.ip()) {
            out.push(format!(
                "TLS is off on {}, which may be reachable from the internet: passwords \
                 and files travel in clear; set S3FTP_TLS_CERT and S3FTP_TLS_KEY",
                self.listen.ip()
            ));
        }
        if self.proxy.control() && self.proxy.trusted.is_empty() {
            out.push(
                "S3FTP_PROXY_PROTOCOL is on with S3FTP_PROXY_TRUSTED empty: anyone who \
                 reaches the port directly can claim any client address; list the load \
                 balancer's addresses"
                    .into(),
            );
        }
        if let Some(addr) = self.metrics_listen {
            if !is_loopback(addr.ip()) && !is_private(addr.ip()) {
                out.push(format!(
                    "S3FTP_METRICS_LISTEN {addr} may be reachable from the internet and has \
                     no authentication; listen on a private address"
                ));
            }
        }
        out
    }
}

/// Hides what must not reach logs: user hashes, S3 secret keys in mount URIs.
fn redact_setting(name: &str, value: &str) -> String {
    match name {
        "S3FTP_USERS" if !value.trim().is_empty() => "(set, not shown)".into(),
        "S3FTP_MOUNTS" => value
            .split(',')
            .map(crate::storage::s3::redact)
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}

/// Addresses of private networks (RFC 1918, unique local IPv6, link-local).
/// The unspecified address (all interfaces) is not private.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// envy reports the field; name the variable and its value instead.
fn envy_error(err: envy::Error, values: &HashMap<String, String>) -> ConfigError {
    let text = err.to_string();
    let var = VARIABLES
        .iter()
        .find(|v| {
            let bare = &v.name[PREFIX.len()..];
            text.contains(bare) || text.contains(&bare.to_lowercase())
        })
        .map(|v| v.name)
        .unwrap_or("S3FTP_*");
    let value = values.get(var).cloned().unwrap_or_default();
    invalid(var, format!("invalid value {value:?} ({text})"))
}

/// Parses S3FTP_TEMP_SUFFIXES: a comma-separated list, blanks dropped.
fn parse_temp_suffixes(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut suffixes = Vec::new();
    for suffix in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if suffix.contains('/') {
            return Err(invalid(
                "S3FTP_TEMP_SUFFIXES",
                format!("{suffix:?}: a suffix cannot contain '/'"),
            ));
        }
        suffixes.push(suffix.to_string());
    }
    Ok(suffixes)
}

impl Raw {
    fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "S3FTP_LISTEN",
                format!(
                    "{:?} is not an address:port such as 0.0.0.0:21",
                    self.listen
                ),
            )
        })?;
        let pasv_ports = parse_port_range(&self.pasv_ports)?;
        let pasv_address = match self.pasv_address.trim() {
            "" => None,
            a => Some(a.to_string()),
        };
        let mounts = parse_mounts(&self.mounts).map_err(|e| invalid("S3FTP_MOUNTS", e))?;
        let mut users = Vec::new();
        if !self.users.trim().is_empty() {
            users.extend(
                crate::auth::parse_users(&self.users).map_err(|e| invalid("S3FTP_USERS", e))?,
            );
        }
        if !self.users_file.trim().is_empty() {
            let path = PathBuf::from(self.users_file.trim());
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "S3FTP_USERS_FILE",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let parsed = if path.extension().is_some_and(|e| e == "toml") {
                crate::auth::parse_users_toml(&text)
            } else {
                crate::auth::parse_users(&text)
            };
            users.extend(parsed.map_err(|e| invalid("S3FTP_USERS_FILE", e))?);
        }
        let mut names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(
                "S3FTP_USERS",
                format!("user {:?} defined twice", w[0]),
            ));
        }
        if !(5..=5120).contains(&self.part_size_mib) {
            return Err(invalid(
                "S3FTP_PART_SIZE_MIB",
                "must be between 5 and 5120 (S3's part size limits)",
            ));
        }
        if self.upload_concurrency == 0 {
            return Err(invalid("S3FTP_UPLOAD_CONCURRENCY", "must be at least 1"));
        }
        if self.upload_memory_mib < self.part_size_mib {
            return Err(invalid(
                "S3FTP_UPLOAD_MEMORY_MIB",
                "must hold at least one part (S3FTP_PART_SIZE_MIB)",
            ));
        }
        let tls = match (self.tls_cert.trim(), self.tls_key.trim()) {
            ("", "") if self.tls_self_signed => Some(CertSource::SelfSigned),
            ("", "") => None,
            ("", _) => return Err(invalid("S3FTP_TLS_CERT", "S3FTP_TLS_KEY is set without it")),
            (_, "") => return Err(invalid("S3FTP_TLS_KEY", "S3FTP_TLS_CERT is set without it")),
            (cert, key) => Some(CertSource::Files {
                cert: cert.to_string(),
                key: key.to_string(),
            }),
        };
        let tls_implicit_listen = match self.tls_implicit_listen.trim() {
            "" => None,
            addr => Some(addr.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "S3FTP_TLS_IMPLICIT_LISTEN",
                    format!("{addr:?} is not an address:port such as 0.0.0.0:990"),
                )
            })?),
        };
        let metrics_listen = match self.metrics_listen.trim() {
            "" => None,
            addr => Some(addr.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "S3FTP_METRICS_LISTEN",
                    format!("{addr:?} is not an address:port such as 0.0.0.0:9090"),
                )
            })?),
        };
        let mode = match self.proxy_protocol.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "" => ProxyMode::Off,
            "control" | "on" | "true" => ProxyMode::Control,
            "all" => ProxyMode::All,
            other => {
                return Err(invalid(
                    "S3FTP_PROXY_PROTOCOL",
                    format!("{other:?}: use off, control or all"),
                ))
            }
        };
        let trusted = self
            .proxy_trusted
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Network::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("S3FTP_PROXY_TRUSTED", e))?;
        let proxy = ProxyPolicy {
            mode,
            trusted,
            timeout: Duration::from_secs(self.data_timeout.max(1)),
        };
        if tls.is_none() && (tls_implicit_listen.is_some() || self.require_tls) {
            let var = if self.require_tls {
                "S3FTP_REQUIRE_TLS"
            } else {
                "S3FTP_TLS_IMPLICIT_LISTEN"
            };
            return Err(invalid(
                var,
                "needs a certificate: set S3FTP_TLS_CERT and S3FTP_TLS_KEY (or S3FTP_TLS_SELF_SIGNED=true)",
            ));
        }
        if self.idle_timeout == 0 {
            return Err(invalid("S3FTP_IDLE_TIMEOUT", "must be at least 1 second"));
        }
        if self.login_timeout == 0 {
            return Err(invalid("S3FTP_LOGIN_TIMEOUT", "must be at least 1 second"));
        }
        if self.data_timeout == 0 {
            return Err(invalid("S3FTP_DATA_TIMEOUT", "must be at least 1 second"));
        }
        if self.max_sessions_per_ip == 0 {
            return Err(invalid("S3FTP_MAX_SESSIONS_PER_IP", "must be at least 1"));
        }
        if self.max_sessions == 0 {
            return Err(invalid("S3FTP_MAX_SESSIONS", "must be at least 1"));
        }
        Ok(Config {
            listen,
            pasv_ports,
            pasv_address,
            mounts,
            users,
            part_size_mib: self.part_size_mib,
            upload_concurrency: self.upload_concurrency,
            upload_memory_mib: self.upload_memory_mib,
            dir_cache: Duration::from_secs(self.dir_cache_secs),
            upload_sweep_age: Duration::from_secs(self.upload_sweep_age),
            rename_overwrite: self.rename_overwrite,
            temp_suffixes: parse_temp_suffixes(&self.temp_suffixes)?,
            legacy_encoding: match self.legacy_encoding.trim() {
                "" => Default::default(),
                label => crate::protocol::names::NameEncoding::legacy(label).ok_or_else(|| {
                    invalid(
                        "S3FTP_LEGACY_ENCODING",
                        format!(
                            "{label:?} is not a legacy encoding label (latin1, gbk, shift_jis, \
                             windows-1251, ...); leave it empty for UTF-8"
                        ),
                    )
                })?,
            },
            anonymous_home: match self.anonymous_home.trim() {
                "" => None,
                home => match crate::vfs::path::check_home(home) {
                    Ok(_) => Some(home.to_string()),
                    Err(e) => {
                        return Err(invalid(
                            "S3FTP_ANONYMOUS_HOME",
                            format!(
                            "{home:?}: {e}; it must be a normal absolute path in the virtual tree"
                        ),
                        ))
                    }
                },
            },
            tls,
            tls_implicit_listen,
            metrics_listen,
            proxy,
            tls_require_reuse: self.tls_require_reuse,
            require_tls: self.require_tls,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            login_timeout: Duration::from_secs(self.login_timeout),
            max_commands_per_second: self.max_commands_per_second,
            data_timeout: Duration::from_secs(self.data_timeout),
            commit_wait: Duration::from_micros(self.commit_wait_us.min(10_000_000)),
            max_sessions: self.max_sessions,
            guard: GuardSettings {
                max_sessions_per_ip: self.max_sessions_per_ip,
                failures_before_ban: self.login_failures_before_ban,
                ban: Duration::from_secs(self.ban_seconds),
            },
            login_fail_delay: Duration::from_millis(self.login_fail_delay_ms),
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
            banner: self.banner,
            log: self.log,
            log_json: match self.log_format.trim() {
                "text" => false,
                "json" => true,
                other => {
                    return Err(invalid(
                        "S3FTP_LOG_FORMAT",
                        format!("{other:?}: use text or json"),
                    ))
                }
            },
            effective: Vec::new(),
        })
    }
}

fn parse_port_range(value: &str) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let err = || {
        invalid(
            "S3FTP_PASV_PORTS",
            format!("{value:?} is not a range such as 50000-50100 (ports 1024-65535)"),
        )
    };
    let (lo, hi) = value.split_once('-').ok_or_else(err)?;
    let lo: u16 = lo.trim().parse().map_err(|_| err())?;
    let hi: u16 = hi.trim().parse().map_err(|_| err())?;
    if lo < 1024 || lo > hi {
        return Err(err());
    }
    Ok(Some(lo..=hi))
}

/// True for addresses only this machine can reach.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
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
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:2121".parse().unwrap());
        assert_eq!(c.mounts[0].uri, "fs://./data");
        assert_eq!(c.pasv_ports, None);
        assert_eq!(c.idle_timeout, Duration::from_secs(300));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = Config::from_vars([("S3FTP_LISTEN", "nope")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_LISTEN");
        let e = Config::from_vars([("S3FTP_PASV_PORTS", "60000-50000")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_PASV_PORTS");
        let e = Config::from_vars([("S3FTP_IDLE_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_IDLE_TIMEOUT");
        assert!(e.to_string().contains("soon"), "{e}");
        let e = Config::from_vars([("S3FTP_MOUNTS", "data")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_MOUNTS");
        let e = Config::from_vars([("S3FTP_LISTN", "x")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_LISTN");
    }

    #[test]
    fn temp_suffixes() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c.temp_suffixes, [".filepart"]);
        let c = Config::from_vars([("S3FTP_TEMP_SUFFIXES", " .filepart, .tmp ,,")]).unwrap();
        assert_eq!(c.temp_suffixes, [".filepart", ".tmp"]);
        let c = Config::from_vars([("S3FTP_TEMP_SUFFIXES", "")]).unwrap();
        assert!(c.temp_suffixes.is_empty());
        let e = Config::from_vars([("S3FTP_TEMP_SUFFIXES", ".part/x")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_TEMP_SUFFIXES");
    }

    #[test]
    fn legacy_encoding() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert!(!c.legacy_encoding.is_legacy());
        let c = Config::from_vars([("S3FTP_LEGACY_ENCODING", "gbk")]).unwrap();
        assert_eq!(c.legacy_encoding.name(), "GBK");
        for bad in ["utf-8", "ebcdic-nope"] {
            let e = Config::from_vars([("S3FTP_LEGACY_ENCODING", bad)]).unwrap_err();
            assert_eq!(e.var, "S3FTP_LEGACY_ENCODING");
        }
    }

    #[test]
    fn tls_settings_are_checked_together() {
        let e = Config::from_vars([("S3FTP_TLS_CERT", "/c.pem")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_TLS_KEY");
        let e = Config::from_vars([("S3FTP_REQUIRE_TLS", "true")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_REQUIRE_TLS");
        let e = Config::from_vars([("S3FTP_TLS_IMPLICIT_LISTEN", "127.0.0.1:990")]).unwrap_err();
        assert_eq!(e.var, "S3FTP_TLS_IMPLICIT_LISTEN");
        let c = Config::from_vars([("S3FTP_TLS_SELF_SIGNED", "true")]).unwrap();
        assert_eq!(c.tls, Some(CertSource::SelfSigned));
    }

    #[test]
    fn port_range() {
        let c = Config::from_vars([("S3FTP_PASV_PORTS", "50000-50100")]).unwrap();
        assert_eq!(c.pasv_ports, Some(50000..=50100));
        assert!(Config::from_vars([("S3FTP_PASV_PORTS", "21-30")]).is_err());
    }

    #[test]
    fn readme_lists_every_variable_with_its_default() {
        let readme = include_str!("../README.md");
        for v in VARIABLES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", v.name)))
                .unwrap_or_else(|| panic!("README has no row for {}", v.name));
            if !v.default.is_empty() {
                assert!(
                    row.contains(&format!("`{}`", v.default)),
                    "README default of {}",
                    v.name
                );
            }
        }
    }

    #[test]
    fn help_lists_every_variable() {
        let text = help_text();
        for v in VARIABLES {
            assert!(text.contains(v.name));
        }
    }

    #[test]
    fn effective_settings_hide_secrets_and_mark_defaults() {
        let c = Config::from_vars([
            ("S3FTP_LISTEN", "127.0.0.1:2121"),
            (
                "S3FTP_MOUNTS",
                "/=s3://b?access_key=AK&secret_key=SK,/l=fs://./x",
            ),
            (
                "S3FTP_USERS",
                r#"[{"name":"a","password":"$argon2id$v=19$m=19456,t=2,p=1$sxbcchROu9jpGwz6B4gJCw$esvzLwPKCp0AonM7vy9OyeSbxG/g58kw1tonsLsOzcU"}]"#,
            ),
            ("S3FTP_MAX_SESSIONS", "10"),
        ])
        .unwrap();
        assert_eq!(c.effective.len(), VARIABLES.len());
        let get = |n: &str| c.effective.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(
            get("S3FTP_MOUNTS").value,
            "/=s3://b?access_key=AK&secret_key=***,/l=fs://./x"
        );
        assert_eq!(get("S3FTP_USERS").value, "(set, not shown)");
        assert!(get("S3FTP_LISTEN").is_default);
        assert!(!get("S3FTP_MAX_SESSIONS").is_default);
        let all = format!("{:?}", c.effective);
        assert!(!all.contains("SK") && !all.contains("argon2id"), "{all}");
    }

    #[test]
    fn risky_settings_are_warned_about() {
        let quiet = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(quiet.warnings(), Vec::<String>::new(), "loopback default");
        let public = Config::from_vars([
            ("S3FTP_LISTEN", "0.0.0.0:21"),
            ("S3FTP_PROXY_PROTOCOL", "control"),
            ("S3FTP_METRICS_LISTEN", "0.0.0.0:9090"),
        ])
        .unwrap();
        let w = public.warnings().join("\n");
        for needle in [
            "S3FTP_PASV_ADDRESS is unset",
            "PROXY protocol is on",
            "S3FTP_PASV_PORTS is unset",
            "TLS is off on 0.0.0.0",
            "S3FTP_PROXY_TRUSTED empty",
            "S3FTP_METRICS_LISTEN 0.0.0.0:9090",
        ] {
            assert!(w.contains(needle), "no {needle:?} in\n{w}");
        }
        let narrow = Config::from_vars([
            ("S3FTP_LISTEN", "10.1.2.3:21"),
            ("S3FTP_PASV_ADDRESS", "ftp.example.com"),
            ("S3FTP_PASV_PORTS", "50000-50009"),
            ("S3FTP_MAX_SESSIONS", "100"),
        ])
        .unwrap();
        let w = narrow.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("has 10 ports for up to 100 sessions"),
            "{w:?}"
        );
        let fine = Config::from_vars([
            ("S3FTP_LISTEN", "10.1.2.3:21"),
            ("S3FTP_PASV_ADDRESS", "ftp.example.com"),
            ("S3FTP_PASV_PORTS", "50000-50999"),
            ("S3FTP_MAX_SESSIONS", "100"),
        ])
        .unwrap();
        assert_eq!(fine.warnings(), Vec::<String>::new());
    }
}
