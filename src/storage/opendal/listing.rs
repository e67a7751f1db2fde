//! Directory listings on an OpenDAL service, a page at a time: OpenDAL
//! entries become ours, the staging folder stays hidden, and a file the
//! lister gave no time is asked for one.

use ::opendal::{EntryMode, Lister};
use futures::StreamExt;

use super::{dir_meta, OpendalBackend, PARTIAL_DIR};
use crate::storage::{Entry, EntryPages, Result};

/// Entries per listing page.
const PAGE_SIZE: usize = 1000;

/// The children of directory `dir`, read from `lister` a page at a time.
pub(super) fn pages(backend: OpendalBackend, dir: &str, lister: Lister) -> EntryPages {
    let state = ListState {
        backend,
        dir: dir.to_string(),
        lister,
    };
    futures::stream::unfold(Some(state), next_page).boxed()
}

struct ListState {
    backend: OpendalBackend,
    dir: String,
    lister: Lister,
}

/// Produces the next page of a listing; `None` state means the listing ended.
async fn next_page(state: Option<ListState>) -> Option<(Result<Vec<Entry>>, Option<ListState>)> {
    let mut st = state?;
    let mut page = Vec::new();
    loop {
        match st.lister.next().await {
            None => {
                return (!page.is_empty()).then_some((Ok(page), None));
            }
            Some(Err(e)) => return Some((Err(e.into()), None)),
            Some(Ok(entry)) => match st.backend.to_entry(&st.dir, entry).await {
                Ok(Some(entry)) => {
                    page.push(entry);
                    if page.len() >= PAGE_SIZE {
                        return Some((Ok(page), Some(st)));
                    }
                }
                Ok(None) => {}
                Err(e) => return Some((Err(e), None)),
            },
        }
    }
}

impl OpendalBackend {
    /// Turns one OpenDAL listing entry of directory `dir` into ours.
    async fn to_entry(&self, dir: &str, entry: ::opendal::Entry) -> Result<Option<Entry>> {
        let path = entry.path();
        let rel = path.trim_end_matches('/');
        if rel.is_empty() || rel == dir {
            return Ok(None);
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.is_empty() || (dir.is_empty() && name == PARTIAL_DIR) {
            return Ok(None);
        }
        let m = entry.metadata();
        let meta = match m.mode() {
            EntryMode::DIR => dir_meta(m),
            EntryMode::FILE => {
                let meta = self.file_meta(rel, m);
                if meta.modified.is_none() {
                    // The lister gave no time (fs; memory files always have
                    // a kept one): ask for it.
                    match self.stat_entry(rel).await? {
                        Some(m) => m,
                        None => return Ok(None),
                    }
                } else {
                    meta
                }
            }
            EntryMode::Unknown => return Ok(None),
        };
        Ok(Some(Entry {
            name: name.to_string(),
            meta,
        }))
    }
}
