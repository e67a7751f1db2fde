//! Transfers and their parameters: RETR, STOR, STOU, APPE, REST, TYPE, MODE,
//! STRU, and ABOR when nothing is running.

use super::{reply, Handled};
use crate::protocol::command::TransferType;
use crate::protocol::{Reply, ReplyCode};
use crate::session::transfer::{Transfer, TransferKind};
use crate::session::{Outcome, Session};
use crate::storage::{StorageError, WriteOptions};
use crate::vfs::path;

/// Most names STOU tries before giving up.
const STOU_ATTEMPTS: u32 = 1000;

fn mode_name(s: &Session) -> &'static str {
    match s.transfer_type {
        TransferType::Ascii => "ASCII",
        TransferType::Image => "BINARY",
    }
}

fn invalid_rest(offset: u64, size: u64) -> Reply {
    Reply::new(
        ReplyCode::InvalidRestParameter,
        format!("Restart offset {offset} is beyond the end of the file ({size} bytes)."),
    )
}

pub(super) async fn retr(s: &mut Session, arg: &str) -> Handled {
    s.require_data()?;
    let path = s.resolve(arg)?;
    let meta = s.stat(&path).await?;
    if meta.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a plain file.");
    }
    let offset = s.rest.take().unwrap_or(0);
    if offset > meta.size {
        return Err(invalid_rest(offset, meta.size));
    }
    let source = s.vfs()?.read(&path, offset).await?;
    let opening = Reply::new(
        ReplyCode::FileStatusOkay,
        format!(
            "Opening {} mode data connection for {path} ({} bytes).",
            mode_name(s),
            meta.size - offset
        ),
    );
    let ascii = s.transfer_type == TransferType::Ascii;
    Ok(Outcome::Transfer(Box::new(Transfer {
        setup: s.take_data()?,
        kind: TransferKind::Send { source, ascii },
        opening,
        verb: "RETR",
        path,
        staged_for: None,
    })))
}

/// How an upload treats the existing file.
enum Start {
    /// STOR, or REST n + STOR (keep the first n bytes).
    Replace,
    /// APPE: keep all existing bytes.
    Append,
}

async fn upload(
    s: &mut Session,
    path: String,
    start: Start,
    verb: &'static str,
    opening: String,
    done: String,
) -> Handled {
    let keep_prefix = kept_bytes(s, &path, start).await?;
    let options = WriteOptions {
        keep_prefix,
        modified: None,
    };
    // A plain STOR to a temporary name (S3FTP_TEMP_SUFFIXES) goes straight to
    // the final name when it can; see `staged`.
    let staged = match (verb, keep_prefix) {
        ("STOR", 0) => match super::staged::staged_target(s, &path) {
            Some(target) => s
                .vfs()?
                .write_staged(&path, &target, options.clone())
                .await
                .map(|sink| (sink, target)),
            None => None,
        },
        _ => None,
    };
    let (sink, staged_for) = match staged {
        Some((sink, target)) => (sink, Some(target)),
        None => (s.vfs()?.write(&path, options).await?, None),
    };
    let ascii = s.transfer_type == TransferType::Ascii;
    let setup = match s.take_data() {
        Ok(setup) => setup,
        Err(reply) => {
            let _ = sink.abort().await;
            return Err(reply);
        }
    };
    Ok(Outcome::Transfer(Box::new(Transfer {
        setup,
        kind: TransferKind::Receive {
            sink,
            ascii,
            done,
            defer: staged_for.is_some(),
            digests: if keep_prefix == 0 {
                s.shared.config.upload_digests.clone()
            } else {
                Vec::new()
            },
        },
        opening: Reply::new(ReplyCode::FileStatusOkay, opening),
        verb,
        path,
        staged_for,
    })))
}

/// How many bytes of the existing file the upload keeps: all of them for
/// APPE, the REST offset for STOR (554 beyond the end).
async fn kept_bytes(s: &mut Session, path: &str, start: Start) -> Result<u64, Reply> {
    let rest = match start {
        Start::Append => None,
        Start::Replace => Some(s.rest.take().unwrap_or(0)),
    };
    // Only APPE and REST n + STOR need the existing size; a plain STOR leaves
    // the checks to the back end's write (one round trip less on S3).
    let existing = if rest == Some(0) {
        0
    } else {
        match s.vfs()?.stat(path).await {
            Ok(meta) if meta.is_dir() => return Err(StorageError::IsDirectory.into()),
            Ok(meta) => meta.size,
            Err(StorageError::NotFound) => 0,
            Err(e) => return Err(e.into()),
        }
    };
    match rest {
        None => Ok(existing),
        Some(n) if n <= existing => Ok(n),
        Some(n) => Err(invalid_rest(n, existing)),
    }
}

pub(super) async fn stor(s: &mut Session, arg: &str) -> Handled {
    s.require_data()?;
    let path = s.resolve_new(arg, false)?;
    let opening = format!("Opening {} mode data connection for {path}.", mode_name(s));
    upload(
        s,
        path,
        Start::Replace,
        "STOR",
        opening,
        "Transfer complete.".into(),
    )
    .await
}

pub(super) async fn appe(s: &mut Session, arg: &str) -> Handled {
    s.require_data()?;
    let path = s.resolve_new(arg, false)?;
    let opening = format!(
        "Opening {} mode data connection to append to {path}.",
        mode_name(s)
    );
    upload(
        s,
        path,
        Start::Append,
        "APPE",
        opening,
        "Transfer complete.".into(),
    )
    .await
}

pub(super) async fn stou(s: &mut Session, arg: Option<&str>) -> Handled {
    s.require_data()?;
    let base = s.resolve_new(arg.filter(|a| !a.is_empty()).unwrap_or("upload"), false)?;
    let mut chosen = None;
    for n in 0..STOU_ATTEMPTS {
        let candidate = if n == 0 {
            base.clone()
        } else {
            format!("{base}.{n}")
        };
        match s.vfs()?.stat(&candidate).await {
            Err(StorageError::NotFound) => {
                chosen = Some(candidate);
                break;
            }
            Ok(_) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let Some(path) = chosen else {
        return reply(
            ReplyCode::FileNameNotAllowed,
            "No unique file name available.",
        );
    };
    s.rest = None;
    let name = path::split_parent(&path).1.to_string();
    // RFC 1123 4.1.2.9: the 150 reply names the file as "FILE: name".
    let opening = format!("FILE: {name}");
    let done = format!("Transfer complete (unique file name: {name}).");
    upload(s, path, Start::Replace, "STOU", opening, done).await
}

pub(super) fn rest(s: &mut Session, offset: u64) -> Handled {
    s.rest = (offset > 0).then_some(offset);
    reply(
        ReplyCode::FileActionPending,
        format!("Restarting at {offset}. Send STOR or RETR to start the transfer."),
    )
}

pub(super) fn abor_idle(s: &mut Session) -> Handled {
    if s.data.take().is_some() {
        reply(
            ReplyCode::DataConnectionOpenNoTransfer,
            "No transfer in progress; data connection closed.",
        )
    } else {
        reply(ReplyCode::ClosingDataConnection, "No transfer to abort.")
    }
}

pub(super) fn type_(s: &mut Session, t: TransferType) -> Handled {
    s.transfer_type = t;
    let name = match t {
        TransferType::Ascii => "A",
        TransferType::Image => "I",
    };
    reply(ReplyCode::CommandOkay, format!("Type set to {name}."))
}

pub(super) fn mode(m: char) -> Handled {
    match m {
        'S' => reply(ReplyCode::CommandOkay, "Mode set to S."),
        _ => reply(
            ReplyCode::ParameterNotImplemented,
            format!("Mode {m} not implemented: only stream mode (S)."),
        ),
    }
}

pub(super) fn stru(f: char) -> Handled {
    match f {
        'F' => reply(ReplyCode::CommandOkay, "Structure set to F."),
        _ => reply(
            ReplyCode::ParameterNotImplemented,
            format!("Structure {f} not implemented: only file structure (F)."),
        ),
    }
}
