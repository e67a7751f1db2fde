//! Settings that work but break clients or expose passwords: the start-up
//! warnings, each with what to do.

use std::net::IpAddr;

use super::Config;

impl Config {
    /// Settings that work but break clients or expose passwords, each with
    /// what to do; printed as warnings at start-up.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.passive_warnings();
        out.extend(self.exposure_warnings());
        out
    }

    /// Passive mode behind NAT, containers and firewalls.
    fn passive_warnings(&self) -> Vec<String> {
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
                // Sessions of different client addresses share ports; those
                // of one address (a NAT, a proxy) need one port each.
                let ports = usize::from(*range.end() - *range.start()) + 1;
                let one_address = self.max_sessions.min(self.guard.max_sessions_per_ip);
                if ports < one_address {
                    out.push(format!(
                        "S3FTP_PASV_PORTS has {ports} ports for up to {one_address} sessions \
                         from one client address (S3FTP_MAX_SESSIONS_PER_IP): those past \
                         that get 425 when they all transfer at once (clients of different \
                         addresses share ports); widen the range or lower the limit"
                    ));
                }
            }
            None => {}
        }
        out
    }

    /// What strangers could read or forge: clear text, PROXY headers, metrics.
    fn exposure_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let local = is_loopback(self.listen.ip());
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

/// True for addresses only this machine can reach.
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
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
