//! Upload-then-rename without the copy (S3FTP_TEMP_SUFFIXES).
//!
//! WinSCP uploads `name.filepart`, then renames it to `name`. On object storage
//! a rename is a copy, so a STOR to a name ending in a configured suffix is
//! written straight to the final name's key (when neither name exists) and is
//! not committed at the end of the data: the session holds it as a
//! [`StagedUpload`]. If the next path command is `RNFR name.filepart` then
//! `RNTO name`, the rename is the commit. Any other command naming a path, the
//! end of the session or [`STAGED_WAIT`](super::super::STAGED_WAIT) without a
//! command first settle it: commit, then rename the final name to the
//! temporary one, which leaves exactly what a plain upload would have.

use super::{reply, Handled};
use crate::events::Kind;
use crate::protocol::{Command, Reply, ReplyCode};
use crate::session::supervise::checksums;
use crate::session::Session;
use crate::storage::Times;

/// The final name an upload to `path` is staged for, if its name ends in one
/// of the configured suffixes (and is more than the suffix).
pub(super) fn staged_target(s: &Session, path: &str) -> Option<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    s.shared
        .config
        .temp_suffixes
        .iter()
        .find(|suffix| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
        .map(|suffix| path[..path.len() - suffix.len()].to_string())
}

/// Handles `cmd` if it concerns the staged upload (its rename, or MFMT on its
/// temporary name); otherwise settles the upload unless `cmd` is harmless, and
/// returns None for the normal handler to run.
pub(super) async fn intercept(
    s: &mut Session,
    cmd: &Command,
    rename_from: &Option<String>,
) -> Option<Handled> {
    let staged = s.staged.as_ref()?;
    match cmd {
        Command::Rnfr(arg) if s.resolve(arg).ok().as_deref() == Some(&staged.temp) => {
            s.rename_from = Some(staged.temp.clone());
            return Some(reply(ReplyCode::FileActionPending, "Ready for RNTO."));
        }
        Command::Rnto(arg)
            if rename_from.as_deref() == Some(&staged.temp)
                && s.resolve_new(arg, true).ok().as_deref() == Some(&staged.target) =>
        {
            return Some(commit(s).await);
        }
        Command::Mfmt { time, path } if s.resolve(path).ok().as_deref() == Some(&staged.temp) => {
            if let Some(staged) = s.staged.as_mut() {
                staged.modified = Some(*time);
            }
            return Some(super::files::mfmt_done(*time, path));
        }
        _ => {}
    }
    if !cmd.keeps_staged() {
        s.settle_staged().await;
    }
    None
}

/// The client renamed the temporary name to the final one: make the upload
/// visible there.
async fn commit(s: &mut Session) -> Handled {
    let Some(staged) = s.staged.take() else {
        return Err(Reply::new(ReplyCode::BadSequence, "Nothing to rename."));
    };
    let (target, modified) = (staged.target.clone(), staged.modified);
    let (digests, started) = (staged.digests.clone(), staged.started);
    let stored = staged.into_sink().commit().await?;
    if let Some(mut event) = s.event(Kind::Uploaded, "RNTO", &target) {
        event.size = Some(stored.size);
        event.etag = stored.etag;
        event.checksums = checksums(&digests);
        event.duration_ms = Some(started.elapsed().as_millis() as u64);
        s.emit(Some(event));
    }
    if let Some(time) = modified {
        let times = Times::modified(time);
        s.vfs()?.set_times(&target, times).await?;
    }
    reply(ReplyCode::FileActionOkay, "Rename successful.")
}

impl Session {
    /// Gives a staged upload its temporary name (see the module docs).
    pub(crate) async fn settle_staged(&mut self) {
        let Some(staged) = self.staged.take() else {
            return;
        };
        let (temp, target, modified) =
            (staged.temp.clone(), staged.target.clone(), staged.modified);
        let (bytes, digests, started) = (staged.bytes, staged.digests.clone(), staged.started);
        let sink = staged.into_sink();
        let Ok(vfs) = self.account().map(|a| &a.vfs) else {
            let _ = sink.abort().await;
            return;
        };
        if let Err(e) = vfs.settle_staged(&temp, &target, sink).await {
            tracing::warn!(temp = %temp, target = %target, error = %e,
                "could not store a staged upload under its temporary name");
            return;
        }
        // Stored under the name the client gave, as a plain upload would be.
        if let Some(mut event) = self.event(Kind::Uploaded, "STOR", &temp) {
            event.size = Some(bytes);
            event.checksums = checksums(&digests);
            event.duration_ms = Some(started.elapsed().as_millis() as u64);
            self.emit(Some(event));
        }
        let Ok(vfs) = self.account().map(|a| &a.vfs) else {
            return;
        };
        if let Some(time) = modified {
            let times = Times::modified(time);
            if let Err(e) = vfs.set_times(&temp, times).await {
                tracing::warn!(path = %temp, error = %e,
                    "could not set the time of a staged upload");
            }
        }
    }
}
