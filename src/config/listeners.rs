//! Listeners and ports: the control listener, passive ports and the address
//! PASV advertises, the implicit FTPS and monitoring listeners, and the PROXY
//! protocol expected in front of them.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::vars::names::{
    S3FTP_LISTEN, S3FTP_PASV_PORTS, S3FTP_PROXY_PROTOCOL, S3FTP_PROXY_TRUSTED,
};
use super::vars::Raw;
use super::{invalid, ConfigError};
use crate::datachan::proxy::{Network, ProxyMode, ProxyPolicy};

/// S3FTP_LISTEN: the control listener's `address:port`.
pub(super) fn listen(value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            S3FTP_LISTEN,
            format!("{value:?} is not an address:port such as 0.0.0.0:21"),
        )
    })
}

/// The trimmed value, None when empty.
pub(super) fn non_empty(value: &str) -> Option<String> {
    Some(value.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An optional `address:port`; `example` shows the expected form.
pub(super) fn optional_addr(
    var: &str,
    value: &str,
    example: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
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
pub(super) fn port_range(value: &str) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
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
pub(super) fn proxy(raw: &Raw) -> Result<ProxyPolicy, ConfigError> {
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
