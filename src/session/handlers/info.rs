//! Information and options: FEAT, OPTS, HELP, STAT (no argument), SITE, HOST,
//! LANG, CSID.

use super::{reply, Handled};
use crate::protocol::command::TransferType;
use crate::protocol::listing::MlstFacts;
use crate::protocol::verbs::{self, Feat, FEAT_EXTRAS, HASH_FEAT, MLST_FEAT, VERBS};
use crate::protocol::{Reply, ReplyCode};
use crate::session::{Outcome, Session};

pub(super) fn feat(s: &Session) -> Handled {
    let tls = s.shared.tls.is_some();
    let tls_lines = VERBS.iter().filter_map(|row| match row.feat {
        Feat::WithTls(line) if tls => Some(line.to_string()),
        _ => None,
    });
    let mut lines: Vec<String> = VERBS
        .iter()
        .filter_map(|row| match row.feat {
            Feat::Line(MLST_FEAT) => Some(MlstFacts::default().feat_line()),
            Feat::Line(HASH_FEAT) => Some(s.hash.feat_line()),
            Feat::Line(line) => Some(line.to_string()),
            _ => None,
        })
        .chain(FEAT_EXTRAS.iter().map(|l| l.to_string()))
        .collect();
    lines.sort();
    let lines = std::iter::once("Extensions supported:".to_string())
        .chain(tls_lines.chain(lines).map(|l| format!(" {l}")))
        .chain(std::iter::once("End".to_string()));
    Ok(Outcome::Reply(Reply::multi(ReplyCode::SystemStatus, lines)))
}

pub(super) fn opts(s: &mut Session, option: &str, value: Option<&str>) -> Handled {
    match option {
        "UTF8" | "UTF-8" => match value.map(str::to_ascii_uppercase).as_deref() {
            Some("ON") | None => {
                s.utf8_on = true;
                reply(ReplyCode::CommandOkay, "UTF8 mode on.")
            }
            Some("OFF") if s.shared.config.legacy_encoding.is_legacy() => {
                s.utf8_on = false;
                reply(
                    ReplyCode::CommandOkay,
                    format!(
                        "UTF8 mode off: names in {}.",
                        s.shared.config.legacy_encoding.name()
                    ),
                )
            }
            Some("OFF") => reply(
                ReplyCode::CommandOkay,
                "Names are always UTF-8 on this server.",
            ),
            Some(_) => reply(ReplyCode::ParameterSyntaxError, "Use OPTS UTF8 ON or OFF."),
        },
        "MLST" => {
            s.mlst_facts = MlstFacts::from_opts(value.unwrap_or(""));
            reply(ReplyCode::CommandOkay, s.mlst_facts.opts_reply_text())
        }
        "HASH" => super::hashes::opts_hash(s, value),
        _ => reply(
            ReplyCode::ParameterSyntaxError,
            format!("Option {option} not understood."),
        ),
    }
}

pub(super) fn help(arg: Option<&str>) -> Handled {
    match arg.map(|a| a.trim().to_ascii_uppercase()) {
        None => {
            let mut lines = vec!["Commands recognised (HELP <command> for syntax):".to_string()];
            let listed: Vec<&str> = VERBS
                .iter()
                .filter(|row| row.help.is_some())
                .map(|row| row.verb)
                .collect();
            for chunk in listed.chunks(10) {
                let verbs: Vec<&str> = chunk.to_vec();
                lines.push(format!(" {}", verbs.join(" ")));
            }
            lines.push("Help OK.".into());
            Ok(Outcome::Reply(Reply::multi(ReplyCode::HelpMessage, lines)))
        }
        Some(verb) => match verbs::facts(&verb).and_then(|row| row.help) {
            Some(syntax) => reply(ReplyCode::HelpMessage, format!("Syntax: {syntax}")),
            None => reply(
                ReplyCode::ParameterSyntaxError,
                format!(
                    "Unknown command {}.",
                    verb.chars().take(16).collect::<String>()
                ),
            ),
        },
    }
}

/// STAT without an argument: the session's status.
pub(super) fn stat(s: &Session) -> Handled {
    let user = match s.user() {
        Some(u) => format!("Logged in as {}", u.name),
        None => "Not logged in".to_string(),
    };
    let type_name = match s.transfer_type {
        TransferType::Ascii => "ASCII",
        TransferType::Image => "BINARY",
    };
    let data = match &s.data {
        None => "No data connection set up",
        Some(crate::datachan::DataSetup::Passive(_)) => "Passive data connection waiting",
        Some(crate::datachan::DataSetup::Active { .. }) => "Active data connection set up",
    };
    let lines = vec![
        format!("s3ftp {} status:", env!("CARGO_PKG_VERSION")),
        format!(" Connected from {}", s.peer.ip()),
        format!(" {user}"),
        format!(" TYPE: {type_name}, STRUcture: File, MODE: Stream"),
        format!(" Working directory: {}", s.cwd()),
        format!(" {data}"),
        "End of status.".into(),
    ];
    Ok(Outcome::Reply(Reply::multi(ReplyCode::SystemStatus, lines)))
}

pub(super) fn site(command: &str, _args: Option<&str>) -> Handled {
    match command {
        "HELP" => Ok(Outcome::Reply(Reply::multi(
            ReplyCode::HelpMessage,
            [
                "SITE commands recognised:".to_string(),
                " HELP".into(),
                " CHMOD mode path (accepted; object storage keeps no permissions)".into(),
                " UTIME YYYYMMDDhhmmss path (or: path atime mtime ctime UTC)".into(),
                "Help OK.".into(),
            ],
        ))),
        _ => reply(
            ReplyCode::SyntaxError,
            format!(
                "Unknown SITE command {}.",
                command.chars().take(16).collect::<String>()
            ),
        ),
    }
}

/// HOST (RFC 7151): one virtual host, so any name is accepted before login.
pub(super) fn host(s: &Session, host: &str) -> Handled {
    if !matches!(s.login, crate::session::Login::Nobody) {
        return reply(ReplyCode::BadSequence, "HOST must come before USER.");
    }
    if host.trim().is_empty() {
        return reply(ReplyCode::ParameterSyntaxError, "HOST needs a host name.");
    }
    reply(ReplyCode::ServiceReady, "Host accepted.")
}

pub(super) fn lang(lang: Option<&str>) -> Handled {
    match lang.map(str::to_ascii_uppercase).as_deref() {
        None | Some("EN") | Some("EN-US") | Some("EN-GB") => {
            reply(ReplyCode::CommandOkay, "Language set to EN.")
        }
        Some(_) => reply(ReplyCode::ParameterNotImplemented, "Only EN is supported."),
    }
}

pub(super) fn csid() -> Handled {
    reply(
        ReplyCode::CommandOkay,
        format!("Name=s3ftp; Version={};", env!("CARGO_PKG_VERSION")),
    )
}
