//! `LIST -R`: a directory and everything under it in `ls -lR` form, each
//! directory as a `path:` header, its lines, and a blank line before the
//! next. Streamed: one directory's pages at a time, depth first in name
//! order, so memory holds the names of the subdirectories still to visit,
//! never the tree.

use std::time::SystemTime;

use futures::stream::{self, StreamExt};

use super::facts;
use crate::protocol::listing::list_line;
use crate::session::transfer::LinePages;
use crate::storage::{EntryPages, StorageError};
use crate::vfs::{path, Vfs};

/// A directory still to list: its path in the user's tree and as shown.
struct Pending {
    path: String,
    shown: String,
}

/// The directory being listed.
struct Current {
    pages: EntryPages,
    path: String,
    shown: String,
    subdirs: Vec<String>,
}

struct Walk {
    vfs: Vfs,
    writable: bool,
    now: SystemTime,
    /// Popped from the end: the next directory to list is last.
    pending: Vec<Pending>,
    current: Option<Current>,
    first: bool,
}

/// The lines of `top` (a directory, shown to the client as `shown`) and
/// every directory under it.
pub(super) fn walk(
    vfs: Vfs,
    top: String,
    shown: String,
    writable: bool,
    now: SystemTime,
) -> LinePages {
    let walk = Walk {
        vfs,
        writable,
        now,
        pending: vec![Pending { path: top, shown }],
        current: None,
        first: true,
    };
    stream::unfold(walk, |mut w| async move {
        let lines = w.step().await.transpose()?;
        Some((lines, w))
    })
    .boxed()
}

impl Walk {
    /// The next page of lines; None when every directory is done.
    async fn step(&mut self) -> Result<Option<Vec<String>>, StorageError> {
        let Some(current) = self.current.as_mut() else {
            return self.open_next().await;
        };
        match current.pages.next().await {
            Some(page) => {
                let mut lines = Vec::new();
                for entry in page? {
                    if entry.meta.is_dir() {
                        current.subdirs.push(entry.name.clone());
                    }
                    lines.push(list_line(&facts(&entry, self.writable), self.now));
                }
                Ok(Some(lines))
            }
            None => {
                if let Some(mut done) = self.current.take() {
                    // Visited in name order: pushed in reverse, popped in order.
                    done.subdirs.sort_unstable_by(|a, b| b.cmp(a));
                    self.pending
                        .extend(done.subdirs.into_iter().map(|name| Pending {
                            path: path::child(&done.path, &name),
                            shown: path::child(&done.shown, &name),
                        }));
                }
                Ok(Some(Vec::new()))
            }
        }
    }

    /// Starts listing the next pending directory: its header lines.
    async fn open_next(&mut self) -> Result<Option<Vec<String>>, StorageError> {
        let Some(next) = self.pending.pop() else {
            return Ok(None);
        };
        let pages = match self.vfs.list(&next.path).await {
            Ok(pages) => pages,
            // Removed since its parent was listed: nothing to show.
            Err(StorageError::NotFound) => return Ok(Some(Vec::new())),
            Err(e) => return Err(e),
        };
        let mut header = Vec::with_capacity(2);
        if !std::mem::take(&mut self.first) {
            header.push(String::new());
        }
        header.push(format!("{}:", next.shown));
        self.current = Some(Current {
            pages,
            path: next.path,
            shown: next.shown,
            subdirs: Vec::new(),
        });
        Ok(Some(header))
    }
}
