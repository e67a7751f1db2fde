//! Data-channel set-up: PASV, EPSV (and EPSV ALL), LPSV, SPSV, PORT, EPRT, LPRT.
//! Active connections go only to the control peer's address and never to a
//! privileged port (the FTP bounce guard).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{reply, Handled};
use crate::datachan::{same_host, DataSetup};
use crate::protocol::address::{epsv_reply, lpsv_reply, pasv_reply, spsv_reply};
use crate::protocol::command::EpsvArg;
use crate::protocol::{Reply, ReplyCode};
use crate::session::{Outcome, Session};

impl Session {
    /// 425 unless PASV/PORT (or a variant) was given.
    pub(in crate::session) fn require_data(&self) -> Result<(), Reply> {
        super::security::data_allowed(self)?;
        if self.data.is_some() {
            Ok(())
        } else {
            Err(Reply::new(
                ReplyCode::CantOpenDataConnection,
                "Use PORT, EPRT, PASV or EPSV first.",
            ))
        }
    }

    pub(in crate::session) fn take_data(&mut self) -> Result<DataSetup, Reply> {
        self.require_data()?;
        self.data
            .take()
            .ok_or_else(|| Reply::new(ReplyCode::CantOpenDataConnection, "No data connection."))
    }

    fn refuse_after_epsv_all(&self) -> Result<(), Reply> {
        if self.epsv_all {
            Err(Reply::new(
                ReplyCode::BadSequence,
                "EPSV ALL is in effect: only EPSV may set up data connections.",
            ))
        } else {
            Ok(())
        }
    }

    /// Waits on a passive port of the control connection's local address
    /// for a data connection from its peer.
    async fn listen(&mut self) -> Result<u16, Reply> {
        // A waiter from an earlier PASV leaves its port first, so the same
        // port can serve this client again.
        self.data = None;
        let waiter = self
            .shared
            .pasv_pool
            .wait_for(self.local.ip(), self.peer.ip())
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot open a passive port");
                Reply::new(
                    ReplyCode::CantOpenDataConnection,
                    format!("Can't open passive connection: {e}."),
                )
            })?;
        let port = waiter.port();
        self.data = Some(DataSetup::Passive(waiter));
        Ok(port)
    }

    /// The IPv4 address PASV advertises: S3FTP_PASV_ADDRESS (an IP or a DNS
    /// name) or the control connection's local address.
    async fn advertised_ipv4(&self) -> Result<Ipv4Addr, Reply> {
        let not_v4 = || {
            Reply::new(
                ReplyCode::CantOpenDataConnection,
                "PASV needs an IPv4 address: use EPSV.",
            )
        };
        match self.shared.config.pasv_address.as_deref() {
            None => match self.local.ip().to_canonical() {
                IpAddr::V4(ip) => Ok(ip),
                IpAddr::V6(_) => Err(not_v4()),
            },
            Some(name) => {
                if let Ok(ip) = name.parse::<Ipv4Addr>() {
                    return Ok(ip);
                }
                let addrs = tokio::net::lookup_host((name, 0)).await.map_err(|e| {
                    Reply::new(
                        ReplyCode::CantOpenDataConnection,
                        format!("Cannot resolve the passive address {name}: {e}."),
                    )
                })?;
                addrs
                    .filter_map(|a| match a.ip() {
                        IpAddr::V4(ip) => Some(ip),
                        IpAddr::V6(_) => None,
                    })
                    .next()
                    .ok_or_else(not_v4)
            }
        }
    }
}

pub(super) async fn pasv(s: &mut Session) -> Handled {
    s.refuse_after_epsv_all()?;
    let ip = s.advertised_ipv4().await?;
    let port = s.listen().await?;
    Ok(Outcome::Reply(pasv_reply(ip, port)))
}

pub(super) async fn epsv(s: &mut Session, arg: EpsvArg) -> Handled {
    match arg {
        EpsvArg::All => {
            s.epsv_all = true;
            return reply(ReplyCode::CommandOkay, "EPSV ALL ok.");
        }
        EpsvArg::Protocol(p) => {
            let ours = if s.local.ip().to_canonical().is_ipv4() {
                1
            } else {
                2
            };
            if p != ours {
                return reply(
                    ReplyCode::NetworkProtocolNotSupported,
                    format!("Network protocol not supported, use ({ours})."),
                );
            }
        }
        EpsvArg::Any => {}
    }
    let port = s.listen().await?;
    Ok(Outcome::Reply(epsv_reply(port)))
}

pub(super) async fn lpsv(s: &mut Session) -> Handled {
    s.refuse_after_epsv_all()?;
    let ip = match s.local.ip().to_canonical() {
        IpAddr::V4(_) => IpAddr::V4(s.advertised_ipv4().await?),
        v6 => v6,
    };
    let port = s.listen().await?;
    Ok(Outcome::Reply(lpsv_reply(SocketAddr::new(ip, port))))
}

pub(super) async fn spsv(s: &mut Session) -> Handled {
    s.refuse_after_epsv_all()?;
    let port = s.listen().await?;
    Ok(Outcome::Reply(spsv_reply(port)))
}

/// PORT, EPRT and LPRT; `verb` names the one the client sent in replies.
pub(super) fn active(s: &mut Session, addr: SocketAddr, verb: &str) -> Handled {
    s.refuse_after_epsv_all()?;
    if !same_host(addr.ip(), s.peer.ip()) {
        tracing::warn!(target = %addr, "refused an active connection to another host");
        return reply(
            ReplyCode::SyntaxError,
            format!("Illegal {verb}: data connections go only to the client's own address."),
        );
    }
    if addr.port() < 1024 {
        return reply(
            ReplyCode::ParameterNotImplemented,
            format!("Illegal {verb}: privileged ports (below 1024) are refused."),
        );
    }
    s.data = Some(DataSetup::Active { addr });
    reply(
        ReplyCode::CommandOkay,
        format!("{verb} command successful."),
    )
}
