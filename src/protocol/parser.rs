//! Parses one command line (CRLF and Telnet sequences already removed) into a
//! [`Command`]. Verbs are case-insensitive; X-aliases (XPWD, XCWD, ...) map to
//! their RFC 959 equivalents.

use super::command::Command;
use super::reply::{Reply, ReplyCode};

/// Why a line is not a valid command; each maps to one reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A blank line.
    #[error("empty command line")]
    Empty,
    /// 500: the verb is unknown.
    #[error("unknown command {0}")]
    Unknown(String),
    /// 501: the verb is known, the arguments are wrong.
    #[error("{verb}: {reason}")]
    Syntax { verb: String, reason: String },
    /// 504: a valid parameter this server does not implement (TYPE E, MODE B...).
    #[error("{verb}: {reason}")]
    ParameterNotImplemented { verb: String, reason: String },
    /// 522: EPRT/EPSV with a network protocol other than 1 (IPv4) or 2 (IPv6).
    #[error("{verb}: network protocol not supported")]
    NetworkProtocol { verb: String },
    /// 553: a path argument that is not valid UTF-8.
    #[error("{verb}: file name is not valid UTF-8")]
    Encoding { verb: String },
}

impl ParseError {
    pub fn reply(&self) -> Reply {
        todo!()
    }
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let _ = line;
    let _ = ReplyCode::SyntaxError;
    todo!()
}
