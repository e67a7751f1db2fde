//! Users from outside: the HTTP auth hook (S3FTP_AUTH_*), the LDAP
//! directory (S3FTP_LDAP_*), the login cache and the server's id. Passwords
//! are never sent in the clear to a host other than this one unless
//! S3FTP_AUTH_ALLOW_PLAINTEXT says so.

use std::time::Duration;

use hyper::Uri;

use super::listeners::non_empty;
use super::sessions::{at_least_one, timeout};
use super::vars::names::*;
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::auth::hook::HookSettings;
use crate::auth::ldap::{BindMode, GroupRights, LdapSettings};
use crate::auth::AuthSettings;
use crate::secrets::Secret;

pub(super) fn auth(raw: &Raw, server_id: &str) -> Result<AuthSettings, ConfigError> {
    let hook = hook(raw, server_id)?;
    let ldap = ldap(raw)?;
    if hook.is_some() && ldap.is_some() {
        return Err(invalid(
            S3FTP_AUTH_URL,
            "set either S3FTP_AUTH_URL or S3FTP_LDAP_URL, not both (local users may be combined with either)",
        ));
    }
    Ok(AuthSettings {
        hook,
        ldap,
        cache_ttl: Duration::from_secs(raw.login_cache_secs),
        ca_file: non_empty(&raw.auth_ca_file),
    })
}

/// S3FTP_SERVER_ID, or the host name.
pub(super) fn server_id(value: &str) -> String {
    if let Some(id) = non_empty(value) {
        return id;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| non_empty(&h))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "s3ftp".into())
}

fn hook(raw: &Raw, server_id: &str) -> Result<Option<HookSettings>, ConfigError> {
    let Some(url) = non_empty(&raw.auth_url) else {
        return Ok(None);
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| invalid(S3FTP_AUTH_URL, format!("{url:?} is not a URL: {e}")))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => {}
        Some("http") if !host.is_empty() => {
            if !loopback_host(host) && !raw.auth_allow_plaintext {
                return Err(invalid(
                    S3FTP_AUTH_URL,
                    format!(
                        "{url} would receive passwords over plain HTTP: use https://, or set \
                         S3FTP_AUTH_ALLOW_PLAINTEXT=true if the network is private"
                    ),
                ));
            }
        }
        _ => {
            return Err(invalid(
                S3FTP_AUTH_URL,
                format!("{url:?} must be an http:// or https:// URL with a host"),
            ))
        }
    }
    Ok(Some(HookSettings {
        url: uri,
        token: non_empty(&raw.auth_token).map(Secret),
        timeout: timeout(S3FTP_AUTH_TIMEOUT, raw.auth_timeout)?,
        server_id: server_id.to_string(),
    }))
}

fn ldap(raw: &Raw) -> Result<Option<LdapSettings>, ConfigError> {
    let Some(url) = non_empty(&raw.ldap_url) else {
        return Ok(None);
    };
    let host = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
        .map(host_of)
        .unwrap_or_default();
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("ldaps") if !host.is_empty() => {}
        Some("ldap") if !host.is_empty() => {
            if !raw.ldap_starttls && !loopback_host(&host) && !raw.auth_allow_plaintext {
                return Err(invalid(
                    S3FTP_LDAP_STARTTLS,
                    format!(
                        "{url} would receive passwords in the clear: keep StartTLS on, use \
                         ldaps://, or set S3FTP_AUTH_ALLOW_PLAINTEXT=true if the network is private"
                    ),
                ));
            }
        }
        _ => {
            return Err(invalid(
                S3FTP_LDAP_URL,
                format!("{url:?} must be ldap://HOST[:PORT] or ldaps://HOST[:PORT]"),
            ))
        }
    }
    let template = non_empty(&raw.ldap_bind_dn_template);
    let service = non_empty(&raw.ldap_bind_dn);
    let bind = match (template, service) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                S3FTP_LDAP_BIND_DN_TEMPLATE,
                "set either a bind DN template or a service account (S3FTP_LDAP_BIND_DN), not both",
            ))
        }
        (Some(t), None) if t.contains("{user}") => BindMode::Template(t),
        (Some(t), None) => {
            return Err(invalid(
                S3FTP_LDAP_BIND_DN_TEMPLATE,
                format!(
                    "{t:?} must contain {{user}}, e.g. uid={{user}},ou=people,dc=example,dc=org"
                ),
            ))
        }
        (None, Some(dn)) => BindMode::Search {
            dn,
            password: Secret(raw.ldap_bind_password.clone()),
            base: non_empty(&raw.ldap_base_dn).ok_or_else(|| {
                invalid(
                    S3FTP_LDAP_BASE_DN,
                    "needed with S3FTP_LDAP_BIND_DN: where users are searched",
                )
            })?,
        },
        (None, None) => return Err(invalid(
            S3FTP_LDAP_URL,
            "also set S3FTP_LDAP_BIND_DN_TEMPLATE (bind as uid={user},...) or S3FTP_LDAP_BIND_DN, \
                 S3FTP_LDAP_BIND_PASSWORD and S3FTP_LDAP_BASE_DN (search, then bind)",
        )),
    };
    let home_template = raw.ldap_home_template.trim().to_string();
    if let Err(e) = crate::vfs::path::check_home(&home_template.replace("{user}", "user")) {
        return Err(invalid(
            S3FTP_LDAP_HOME_TEMPLATE,
            format!("{home_template:?} is not a normal absolute path: {e}"),
        ));
    }
    let group = |v: &str| non_empty(v);
    Ok(Some(LdapSettings {
        url,
        starttls: raw.ldap_starttls,
        bind,
        filter: raw.ldap_filter.trim().to_string(),
        home_attribute: non_empty(&raw.ldap_home_attribute),
        home_template,
        group_base: non_empty(&raw.ldap_group_base_dn),
        group_filter: raw.ldap_group_filter.trim().to_string(),
        groups: GroupRights {
            required: group(&raw.ldap_required_group),
            read_only: group(&raw.ldap_read_only_group),
            drop_box: group(&raw.ldap_drop_box_group),
            no_delete: group(&raw.ldap_no_delete_group),
            no_overwrite: group(&raw.ldap_no_overwrite_group),
        },
        timeout: timeout(S3FTP_AUTH_TIMEOUT, raw.auth_timeout)?,
        pool: at_least_one(S3FTP_LDAP_POOL, raw.ldap_pool)?,
    }))
}

/// The host of `HOST[:PORT]` or `[V6]:PORT`.
fn host_of(authority: &str) -> String {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    authority.split(':').next().unwrap_or("").to_string()
}

fn loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(host_of("127.0.0.1:389"), "127.0.0.1");
        assert_eq!(host_of("[::1]:636"), "::1");
        assert_eq!(host_of("dc1.example.org"), "dc1.example.org");
        assert!(loopback_host("[::1]") && loopback_host("127.0.0.2") && loopback_host("LOCALHOST"));
        assert!(!loopback_host("10.0.0.1") && !loopback_host("ldap.example.org"));
    }
}
