//! Security commands (RFC 2228, RFC 4217): AUTH TLS, PBSZ, PROT, CCC, and the
//! policy that may require TLS before login and on data connections.

use super::{reply, Handled};
use crate::protocol::{Reply, ReplyCode};
use crate::session::{Outcome, Session};

pub(super) fn auth(s: &mut Session, mechanism: &str) -> Handled {
    let mechanism = mechanism.trim().to_ascii_uppercase();
    if s.shared.tls.is_none() {
        return reply(
            ReplyCode::NotImplemented,
            "TLS is not configured on this server.",
        );
    }
    if s.tls {
        return reply(ReplyCode::BadSequence, "TLS is already in use.");
    }
    match mechanism.as_str() {
        "TLS" | "TLS-C" | "SSL" | "TLS-P" => {
            // RFC 4217 section 4: a new security context starts a new login.
            s.reset();
            if matches!(mechanism.as_str(), "SSL" | "TLS-P") {
                // Historical forms that also protect data connections.
                s.prot_private = true;
            }
            Ok(Outcome::UpgradeTls(Reply::new(
                ReplyCode::AuthOkayNoDataNeeded,
                format!("AUTH {mechanism} successful, starting TLS."),
            )))
        }
        _ => reply(
            ReplyCode::ParameterNotImplemented,
            format!("Security mechanism {mechanism} not supported: use AUTH TLS."),
        ),
    }
}

pub(super) fn pbsz(s: &Session, size: &str) -> Handled {
    if !s.tls {
        return reply(ReplyCode::BadSequence, "PBSZ needs AUTH TLS first.");
    }
    if size.trim().parse::<u64>().is_err() {
        return reply(ReplyCode::ParameterSyntaxError, "PBSZ takes a number.");
    }
    // TLS needs no buffer size: RFC 4217 says to answer 0.
    reply(ReplyCode::CommandOkay, "PBSZ=0")
}

pub(super) fn prot(s: &mut Session, level: &str) -> Handled {
    if !s.tls {
        return reply(ReplyCode::BadSequence, "PROT needs AUTH TLS first.");
    }
    // RFC 4217 wants PBSZ 0 first; some clients (Python's prot_c) skip it,
    // and with TLS it can only be 0, so PROT implies it.
    match level.trim().to_ascii_uppercase().as_str() {
        "P" => {
            s.prot_private = true;
            reply(ReplyCode::CommandOkay, "Protection level set to Private.")
        }
        "C" => {
            s.prot_private = false;
            reply(ReplyCode::CommandOkay, "Protection level set to Clear.")
        }
        "S" | "E" => reply(
            ReplyCode::ProtectionLevelNotSupported,
            "Only PROT C and PROT P are supported with TLS.",
        ),
        _ => reply(
            ReplyCode::ParameterNotImplemented,
            "Unknown protection level.",
        ),
    }
}

pub(super) fn ccc(s: &Session) -> Handled {
    if !s.tls {
        return reply(
            ReplyCode::BadSequence,
            "The control connection is not protected.",
        );
    }
    // Dropping back to plaintext would expose every later command.
    reply(
        ReplyCode::PolicyDenied,
        "CCC refused: the control connection stays encrypted.",
    )
}

/// USER and PASS need TLS first when S3FTP_REQUIRE_TLS is set.
pub(super) fn login_allowed(s: &Session) -> Result<(), Reply> {
    if s.shared.config.require_tls && !s.tls {
        return Err(Reply::new(
            ReplyCode::NotLoggedIn,
            "This server requires TLS: send AUTH TLS before logging in.",
        ));
    }
    Ok(())
}

/// Data transfers need PROT P when S3FTP_REQUIRE_TLS is set.
pub(super) fn data_allowed(s: &Session) -> Result<(), Reply> {
    if s.shared.config.require_tls && !s.prot_private {
        return Err(Reply::new(
            ReplyCode::ProtectionRequired,
            "This server requires protected data connections: send PBSZ 0 and PROT P.",
        ));
    }
    Ok(())
}
