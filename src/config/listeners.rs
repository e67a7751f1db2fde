//! Listeners and ports: the control listener, passive ports and the address
//! PASV advertises, the implicit FTPS and monitoring listeners, and the PROXY
//! protocol expected in front of them.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::vars::names::{
    S3FTP_LISTEN, S3FTP_METRICS_LISTEN, S3FTP_PASV_PORTS, S3FTP_PROXY_PROTOCOL,
    S3FTP_PROXY_TRUSTED, S3FTP_TLS_IMPLICIT_LISTEN,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::datachan::proxy::{Network, ProxyMode, ProxyPolicy};

/// The checked listener settings.
pub(super) struct Listeners {
    pub listen: SocketAddr,
    pub pasv_ports: Option<RangeInclusive<u16>>,
    pub pasv_address: Option<String>,
    pub tls_implicit_listen: Option<SocketAddr>,
    pub metrics_listen: Option<SocketAddr>,
    pub proxy: ProxyPolicy,
}

pub(super) fn check(raw: &Raw) -> Result<Listeners, ConfigError> {
    let listen = raw.listen.parse().map_err(|_| {
        invalid(
            S3FTP_LISTEN,
            format!("{:?} is not an address:port such as 0.0.0.0:21", raw.listen),
        )
    })?;
    Ok(Listeners {
        listen,
        pasv_ports: port_range(&raw.pasv_ports)?,
        pasv_address: non_empty(&raw.pasv_address),
        tls_implicit_listen: optional_addr(
            S3FTP_TLS_IMPLICIT_LISTEN,
            &raw.tls_implicit_listen,
            "0.0.0.0:990",
        )?,
        metrics_listen: optional_addr(S3FTP_METRICS_LISTEN, &raw.metrics_listen, "0.0.0.0:9090")?,
        proxy: proxy(raw)?,
    })
}

/// The trimmed value, None when empty.
pub(super) fn non_empty(value: &str) -> Option<String> {
    Some(value.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An optional `address:port`; `example` shows the expected form.
fn optional_addr(var: &str, value: &str, example: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match value.trim() {
        "" => Ok(None),
        addr => addr.parse().map(Some).map_err(|_| {
            invalid(
                var,
                format!("{addr:?} is not an address:port such as {example}"),
            )
        }),
    }
}

/// S3FTP_PASV_PORTS: `LOW-HIGH`, unprivileged ports only; empty: any port.
fn port_range(value: &str) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let err = || {
        invalid(
            S3FTP_PASV_PORTS,
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

/// S3FTP_PROXY_PROTOCOL and S3FTP_PROXY_TRUSTED; a header must arrive within
/// the data timeout.
fn proxy(raw: &Raw) -> Result<ProxyPolicy, ConfigError> {
    let mode = match raw.proxy_protocol.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "" => ProxyMode::Off,
        "control" | "on" | "true" => ProxyMode::Control,
        "all" => ProxyMode::All,
        other => {
            return Err(invalid(
                S3FTP_PROXY_PROTOCOL,
                format!("{other:?}: use off, control or all"),
            ))
        }
    };
    let trusted = raw
        .proxy_trusted
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Network::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(S3FTP_PROXY_TRUSTED, e))?;
    Ok(ProxyPolicy {
        mode,
        trusted,
        timeout: Duration::from_secs(raw.data_timeout.max(1)),
    })
}
