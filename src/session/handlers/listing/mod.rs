//! Listings: LIST and NLST (with `ls` options and globs), MLSD, MLST, and
//! STAT with a path (a listing over the control connection). Directory listings
//! stream page by page from the back end into the connection.

use std::time::SystemTime;

use futures::{stream, StreamExt};

use super::{reply, Handled};
use crate::protocol::command::ListArgs;
use crate::protocol::listing::{glob_matches, is_glob, list_line, mlsx_line, FileFacts};
use crate::protocol::{Reply, ReplyCode};
use crate::session::transfer::{lines_of, LineFormatter, LinePages, Transfer, TransferKind};
use crate::session::{Outcome, Session};
use crate::storage::{Entry, EntryPages, Listed, Metadata};
use crate::vfs::path;

mod recursive;

/// What a listing argument names.
enum Target {
    /// A directory (its pages, the first already asked for), optionally
    /// filtered by a glob on the names.
    Dir {
        path: String,
        pattern: Option<String>,
        pages: EntryPages,
    },
    File {
        path: String,
        meta: Metadata,
    },
}

impl Target {
    fn path(&self) -> &str {
        match self {
            Target::Dir { path, .. } | Target::File { path, .. } => path,
        }
    }
}

/// What the argument names, asked of the store in one go: on S3 the file
/// check and the first listing page travel together (one round trip).
async fn target(s: &Session, arg: Option<&str>) -> Result<Target, Reply> {
    let arg = arg.filter(|a| !a.is_empty()).unwrap_or(".");
    let resolved = s.resolve(arg)?;
    match s.vfs()?.list_or_stat(&resolved).await {
        Ok(Listed::Dir(pages)) => Ok(Target::Dir {
            path: resolved,
            pattern: None,
            pages,
        }),
        Ok(Listed::File(meta)) => Ok(Target::File {
            path: resolved,
            meta,
        }),
        // Not a name that exists: perhaps a pattern such as `*.csv`. (A real
        // file whose name holds `[` or `*` is found above, literally.)
        Err(not_found) => {
            let (parent, last) = path::split_parent(&resolved);
            let raw_last = arg.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if !(is_glob(raw_last) && raw_last == last) {
                return Err(not_found.into());
            }
            let parent = parent.to_string();
            match s.vfs()?.list_or_stat(&parent).await? {
                Listed::Dir(pages) => Ok(Target::Dir {
                    path: parent,
                    pattern: Some(last.to_string()),
                    pages,
                }),
                Listed::File(_) => Err(Reply::new(ReplyCode::FileUnavailable, "Not a directory.")),
            }
        }
    }
}

fn facts<'a>(entry: &'a Entry, writable: bool) -> FileFacts<'a> {
    FileFacts {
        name: &entry.name,
        is_dir: entry.meta.is_dir(),
        size: entry.meta.size,
        modified: entry.meta.modified,
        created: entry.meta.created,
        writable,
    }
}

/// A target's entries, the glob that filters them, and its path: a
/// directory's pages, or the file alone.
fn entries(target: Target) -> (EntryPages, Option<String>, String) {
    match target {
        Target::Dir {
            path,
            pattern,
            pages,
        } => (pages, pattern, path),
        Target::File { path, meta } => {
            let name = path::split_parent(&path).1.to_string();
            let entry = Entry { name, meta };
            (stream::iter([Ok(vec![entry])]).boxed(), None, path)
        }
    }
}

fn listing_transfer(
    s: &mut Session,
    verb: &'static str,
    path: String,
    lines: LinePages,
) -> Handled {
    let setup = s.take_data()?;
    Ok(Outcome::Transfer(Box::new(Transfer {
        setup,
        kind: TransferKind::Listing { lines },
        opening: Reply::new(
            ReplyCode::FileStatusOkay,
            "Opening data connection for the listing.",
        ),
        verb,
        path,
        staged_for: None,
    })))
}

pub(super) async fn list(s: &mut Session, args: ListArgs) -> Handled {
    s.require_data()?;
    let target = target(s, args.path.as_deref()).await?;
    let (writable, now) = (s.writable(), SystemTime::now());
    let path = target.path().to_string();
    if let (true, Target::Dir { pattern: None, .. }) = (args.has_option('R'), &target) {
        let shown = match args.path.as_deref().map(|p| p.trim_end_matches('/')) {
            None => ".".to_string(),
            Some("") => "/".to_string(),
            Some(p) => p.to_string(),
        };
        let walk = recursive::walk(s.vfs()?.clone(), path.clone(), shown, writable, now);
        return listing_transfer(s, "LIST", path, walk);
    }
    let (pages, pattern, _) = entries(target);
    let format: LineFormatter =
        Box::new(move |e| matches(&pattern, &e.name).then(|| list_line(&facts(e, writable), now)));
    listing_transfer(s, "LIST", path, lines_of(pages, format))
}

pub(super) async fn nlst(s: &mut Session, args: ListArgs) -> Handled {
    s.require_data()?;
    let target = target(s, args.path.as_deref()).await?;
    let prefix = nlst_prefix(args.path.as_deref(), &target);
    let (pages, pattern, path) = entries(target);
    let format: LineFormatter =
        Box::new(move |e| matches(&pattern, &e.name).then(|| format!("{prefix}{}", e.name)));
    listing_transfer(s, "NLST", path, lines_of(pages, format))
}

/// What NLST puts before each name: the argument's directory, as the client
/// wrote it, as vsftpd and ProFTPD do. `mget dir/*.csv` (Windows ftp.exe,
/// tnftp) sends `NLST dir/*.csv` and then RETRs each name it gets back, so
/// those must be `dir/x.csv`; `NLST *.csv` and a bare `NLST` give bare names.
fn nlst_prefix(arg: Option<&str>, target: &Target) -> String {
    let arg = arg.unwrap_or("");
    let directory_part = || arg.rfind('/').map_or("", |i| &arg[..=i]).to_string();
    match target {
        Target::Dir { pattern: None, .. } => match arg.trim_end_matches('/') {
            "" if arg.starts_with('/') => "/".into(),
            "" | "." => String::new(),
            dir => format!("{dir}/"),
        },
        Target::Dir { .. } | Target::File { .. } => directory_part(),
    }
}

fn matches(pattern: &Option<String>, name: &str) -> bool {
    pattern.as_deref().is_none_or(|p| glob_matches(p, name))
}

pub(super) async fn mlsd(s: &mut Session, arg: Option<&str>) -> Handled {
    s.require_data()?;
    let path = s.resolve(arg.filter(|a| !a.is_empty()).unwrap_or("."))?;
    let Listed::Dir(pages) = s.vfs()?.list_or_stat(&path).await? else {
        return reply(ReplyCode::ParameterSyntaxError, "MLSD needs a directory.");
    };
    let (writable, enabled) = (s.writable(), s.mlst_facts);
    let format: LineFormatter =
        Box::new(move |e| Some(mlsx_line(&facts(e, writable), &enabled, &e.name)));
    listing_transfer(s, "MLSD", path, lines_of(pages, format))
}

pub(super) async fn mlst(s: &mut Session, arg: Option<&str>) -> Handled {
    let path = s.resolve(arg.filter(|a| !a.is_empty()).unwrap_or("."))?;
    let meta = s.stat(&path).await?;
    let entry = Entry {
        name: path::split_parent(&path).1.to_string(),
        meta,
    };
    let line = mlsx_line(&facts(&entry, s.writable()), &s.mlst_facts, &path);
    Ok(Outcome::Reply(Reply::multi(
        ReplyCode::FileActionOkay,
        [format!("Listing {path}"), format!(" {line}"), "End.".into()],
    )))
}

pub(super) async fn stat_path(s: &mut Session, arg: &str) -> Handled {
    // STAT takes `ls` options too (`STAT -la dir`).
    let arg = arg
        .split_once(' ')
        .filter(|(opts, _)| opts.starts_with('-'))
        .map(|(_, rest)| rest)
        .unwrap_or(if arg.starts_with('-') { "" } else { arg });
    let target = target(s, Some(arg)).await?;
    let (pages, pattern, path) = entries(target);
    let (writable, now) = (s.writable(), SystemTime::now());
    let format: LineFormatter =
        Box::new(move |e| matches(&pattern, &e.name).then(|| list_line(&facts(e, writable), now)));
    Ok(Outcome::ControlListing {
        code: ReplyCode::FileStatus,
        header: format!("Status of {path}:"),
        lines: lines_of(pages, format),
    })
}
