//! Files and directories: MKD, RMD, RMDA, DELE, RNFR/RNTO, SIZE, MDTM, MFMT,
//! MFCT, MFF, DSIZ, AVBL.

use std::time::SystemTime;

use super::{reply, Handled};
use crate::events::Kind;
use crate::protocol::listing::{format_time, parse_time};
use crate::protocol::reply::quote_path;
use crate::protocol::ReplyCode;
use crate::session::Session;
use crate::storage::Times;

pub(super) async fn mkd(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve_new(arg, true)?;
    s.vfs()?.mkdir(&path).await?;
    s.emit(s.event(Kind::DirCreated, "MKD", &path));
    reply(
        ReplyCode::PathCreated,
        format!("{} created.", quote_path(&path)),
    )
}

pub(super) async fn rmd(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve(arg)?;
    refuse_cwd_or_root(s, &path)?;
    // Where it was is known only before it goes.
    let event = s.event(Kind::DirRemoved, "RMD", &path);
    s.vfs()?.rmdir(&path).await?;
    s.emit(event);
    reply(ReplyCode::FileActionOkay, "Directory removed.")
}

pub(super) async fn rmda(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve(arg)?;
    refuse_cwd_or_root(s, &path)?;
    let event = s.event(Kind::DirRemoved, "RMDA", &path);
    s.vfs()?.remove_all(&path).await?;
    s.emit(event);
    reply(
        ReplyCode::FileActionOkay,
        "Directory and its contents removed.",
    )
}

/// The root and the directories the session is in cannot be removed.
fn refuse_cwd_or_root(s: &Session, path: &str) -> Result<(), crate::protocol::Reply> {
    let cwd = s.cwd();
    let inside = path == "/" || cwd == path || cwd.starts_with(&format!("{path}/"));
    if inside {
        return Err(crate::protocol::Reply::new(
            ReplyCode::FileUnavailable,
            "Cannot remove the current directory or one of its parents.",
        ));
    }
    Ok(())
}

pub(super) async fn dele(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve(arg)?;
    let event = s.event(Kind::Deleted, "DELE", &path);
    s.vfs()?.delete(&path).await?;
    s.emit(event);
    reply(ReplyCode::FileActionOkay, "File deleted.")
}

pub(super) async fn rnfr(s: &mut Session, arg: &str) -> Handled {
    let path = s.resolve(arg)?;
    if path == "/" {
        return reply(ReplyCode::FileUnavailable, "The root cannot be renamed.");
    }
    s.stat(&path).await?;
    s.rename_from = Some(path);
    reply(ReplyCode::FileActionPending, "Ready for RNTO.")
}

pub(super) async fn rnto(s: &mut Session, arg: &str, from: Option<String>) -> Handled {
    let Some(from) = from else {
        return reply(ReplyCode::BadSequence, "RNTO must follow RNFR.");
    };
    let to = s.resolve_new(arg, true)?;
    if to == from {
        return reply(ReplyCode::FileActionOkay, "Rename successful (same name).");
    }
    if to.starts_with(&format!("{from}/")) {
        return reply(
            ReplyCode::FileNameNotAllowed,
            "Cannot move a directory into itself.",
        );
    }
    s.vfs()?.rename(&from, &to).await?;
    // Sent when either name is of interest (S3FTP_EVENTS_PATHS).
    let wanted = s.wants_event(Kind::Renamed, &from) || s.wants_event(Kind::Renamed, &to);
    let event = wanted
        .then(|| s.any_event(Kind::Renamed, "RNTO", &to))
        .flatten()
        .map(|mut event| {
            if let Ok(account) = s.account() {
                event.from_path = Some(account.vfs.tree_path(&from));
                event.from_store = account.vfs.store_of(&from).map(|(_, store)| store);
            }
            event
        });
    s.emit(event);
    reply(ReplyCode::FileActionOkay, "Rename successful.")
}

pub(super) async fn size(s: &mut Session, arg: &str) -> Handled {
    let meta = s.stat(&s.resolve(arg)?).await?;
    if meta.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a plain file.");
    }
    reply(ReplyCode::FileStatus, meta.size.to_string())
}

pub(super) async fn mdtm(s: &mut Session, arg: &str) -> Handled {
    let meta = s.stat(&s.resolve(arg)?).await?;
    if meta.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a plain file.");
    }
    let time = meta.modified.unwrap_or(SystemTime::UNIX_EPOCH);
    reply(ReplyCode::FileStatus, format_time(time))
}

async fn set_times(s: &Session, arg: &str, times: Times) -> Result<String, crate::protocol::Reply> {
    let path = s.resolve(arg)?;
    let vfs = s.vfs()?;
    if vfs.stat(&path).await?.is_dir() {
        return Err(crate::protocol::Reply::new(
            ReplyCode::FileUnavailable,
            "Times can only be set on files.",
        ));
    }
    vfs.set_times(&path, times).await?;
    Ok(path)
}

pub(super) async fn mfmt(s: &mut Session, time: SystemTime, arg: &str) -> Handled {
    set_times(s, arg, Times::modified(time)).await?;
    mfmt_done(time, arg)
}

/// MFMT's reply (RFC draft-somers-ftp-mfxx): the time set and the path.
pub(super) fn mfmt_done(time: SystemTime, arg: &str) -> Handled {
    reply(
        ReplyCode::FileStatus,
        format!("Modify={}; {arg}", format_time(time)),
    )
}

/// SITE UTIME (older clients' MFMT): sets the modification time.
pub(super) async fn site_utime(s: &mut Session, args: Option<&str>) -> Handled {
    let Some((time, path)) = args.and_then(crate::protocol::listing::parse_utime) else {
        return reply(
            ReplyCode::ParameterSyntaxError,
            "Use SITE UTIME YYYYMMDDhhmmss path, or SITE UTIME path atime mtime ctime UTC.",
        );
    };
    set_times(s, &path, Times::modified(time)).await?;
    reply(ReplyCode::CommandOkay, "UTIME command successful.")
}

/// SITE CHMOD: object stores (and this server's folders) keep no Unix
/// permissions, so a valid mode on an existing path is accepted and changes
/// nothing; mirroring clients (lftp `mirror -R`, WinSCP) send it after
/// every upload and would report each refusal as an error.
pub(super) async fn site_chmod(s: &mut Session, args: Option<&str>) -> Handled {
    let usage = || {
        reply(
            ReplyCode::ParameterSyntaxError,
            "Use SITE CHMOD mode path, with an octal mode such as 644.",
        )
    };
    let Some((mode, path)) = args.and_then(|a| a.split_once(' ')) else {
        return usage();
    };
    let octal = (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !octal || path.is_empty() {
        return usage();
    }
    let resolved = s.resolve(path)?;
    s.stat(&resolved).await?;
    reply(
        ReplyCode::CommandOkay,
        "SITE CHMOD accepted; object storage keeps no permissions, so nothing changed.",
    )
}

pub(super) async fn mfct(s: &mut Session, time: SystemTime, arg: &str) -> Handled {
    let times = Times {
        modified: None,
        created: Some(time),
    };
    set_times(s, arg, times).await?;
    reply(
        ReplyCode::FileStatus,
        format!("Create={}; {arg}", format_time(time)),
    )
}

/// MFF: only the time facts can be changed on object storage.
pub(super) async fn mff(s: &mut Session, facts: &[(String, String)], arg: &str) -> Handled {
    let mut times = Times::default();
    let mut echoed = String::new();
    for (name, value) in facts {
        let slot = match name.as_str() {
            "modify" => &mut times.modified,
            "create" => &mut times.created,
            _ => {
                return reply(
                    ReplyCode::ParameterNotImplemented,
                    format!("Fact {name} cannot be changed here (only modify and create)."),
                )
            }
        };
        let Some(time) = parse_time(value) else {
            return reply(
                ReplyCode::ParameterSyntaxError,
                format!("Bad time for {name}: {value}."),
            );
        };
        *slot = Some(time);
        echoed.push_str(&format!("{name}={value};"));
    }
    set_times(s, arg, times).await?;
    reply(ReplyCode::FileStatus, format!("{echoed} {arg}"))
}

pub(super) async fn dsiz(s: &mut Session, arg: Option<&str>) -> Handled {
    let path = s.resolve(arg.unwrap_or("."))?;
    let vfs = s.vfs()?;
    if !vfs.stat(&path).await?.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a directory.");
    }
    let total = vfs.dir_size(&path).await?;
    reply(ReplyCode::FileStatus, total.to_string())
}

pub(super) async fn avbl(s: &mut Session, arg: Option<&str>) -> Handled {
    let path = s.resolve(arg.unwrap_or("."))?;
    let vfs = s.vfs()?;
    let meta = vfs.stat(&path).await?;
    if !meta.is_dir() {
        return reply(ReplyCode::FileUnavailable, "Not a directory.");
    }
    if !s.writable() {
        return reply(ReplyCode::FileUnavailable, "Uploads are not allowed here.");
    }
    match vfs.available(&path).await? {
        Some(bytes) => reply(ReplyCode::FileStatus, bytes.to_string()),
        None => reply(
            ReplyCode::FileUnavailable,
            "This storage does not report available space.",
        ),
    }
}
