//! Directory listings: ListObjectsV2 with a `/` delimiter, a page at a
//! time. Common prefixes are subdirectories, keys are files (the directory's
//! own marker excepted); client-set times come from `KnownTimes`. A listing
//! read to its end tells `dirs` every subdirectory, for later uploads.

use std::collections::HashSet;
use std::sync::Arc;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::types::CommonPrefix;
use futures::{stream, StreamExt, TryStreamExt};

use super::dirs::DirCache;
use super::error::map;
use super::probe::lists_anything;
use super::times::{to_system_time, KnownTimes};
use super::{urlkeys, S3Backend, S3Target};
use crate::storage::{Entry, EntryKind, EntryPages, Metadata, Result};

/// Most subdirectory names a listing learns for later uploads (`dirs`).
const LEARNED_SUBDIRS: usize = 10_000;

/// One page of a listing.
struct Page {
    entries: Vec<Entry>,
    /// Whether the store showed any key or prefix at all (the directory's
    /// own marker included), which an empty `entries` does not say.
    seen_anything: bool,
}

/// The pages of one directory, fetched in order by [`Lister::next_page`].
struct Lister {
    target: Arc<S3Target>,
    times: Arc<KnownTimes>,
    dirs: Arc<DirCache>,
    /// The directory's back-end key and its listing prefix.
    key: String,
    prefix: String,
    page_size: i32,
    /// The token of the next page; None with `finished` after the last.
    token: Option<String>,
    finished: bool,
    /// Its subdirectories, learned as the pages go by (None: too many to keep).
    learned: Option<HashSet<String>>,
}

impl S3Backend {
    /// The pages of the directory `dir`. The first page is read now, so a
    /// missing directory is an error of the LIST command rather than an
    /// empty listing.
    pub(super) async fn list_pages(&self, dir: &str) -> Result<EntryPages> {
        match self.pages_if_any(dir).await? {
            Some(pages) => Ok(pages),
            None => Err(self.not_a_dir(dir).await?),
        }
    }

    /// The pages of the directory `dir`, or None when nothing lies under it
    /// (which alone does not tell a file from nothing).
    pub(super) async fn pages_if_any(&self, dir: &str) -> Result<Option<EntryPages>> {
        let mut lister = Lister {
            target: self.target.clone(),
            times: self.times.clone(),
            dirs: self.dirs.clone(),
            key: dir.to_string(),
            prefix: self.dir_prefix(dir),
            page_size: self.page_size,
            token: None,
            finished: false,
            learned: Some(HashSet::new()),
        };
        let first = lister.next_page().await?;
        if !first.seen_anything && !dir.is_empty() {
            self.dirs.missing(dir);
            return Ok(None);
        }
        let rest = stream::try_unfold(lister, |mut lister| async move {
            if lister.finished {
                return Ok(None);
            }
            let page = lister.next_page().await?;
            Ok(Some((page.entries, lister)))
        });
        Ok(Some(
            stream::iter([Ok(first.entries)])
                .chain(rest)
                .try_filter(|page| futures::future::ready(!page.is_empty()))
                .boxed(),
        ))
    }
}

impl Lister {
    /// Fetches the next page (call only while not `finished`).
    async fn next_page(&mut self) -> Result<Page> {
        let out = self
            .target
            .list(&self.prefix)
            .delimiter("/")
            .max_keys(self.page_size)
            .set_continuation_token(self.token.take())
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let mut entries = self.subdirs(&out)?;
        self.learn(&entries);
        entries.extend(self.files(&out)?);
        let seen_anything = lists_anything(&out);
        self.token = out.next_continuation_token().map(str::to_string);
        self.finished = self.token.is_none();
        if self.finished && (seen_anything || self.key.is_empty()) {
            // The last page: every subdirectory has been seen.
            if let Some(set) = self.learned.take() {
                self.dirs.listed(&self.key, set);
            }
        }
        Ok(Page {
            entries,
            seen_anything,
        })
    }

    /// The page's subdirectories (its common prefixes).
    fn subdirs(&self, out: &ListObjectsV2Output) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for cp in out.common_prefixes() {
            let name = subdir_name(&self.prefix, cp)?.unwrap_or_default();
            if !name.is_empty() {
                entries.push(Entry {
                    name,
                    meta: Metadata::dir(),
                });
            }
        }
        Ok(entries)
    }

    /// The page's files, with client-set times where known.
    fn files(&self, out: &ListObjectsV2Output) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for obj in out.contents() {
            // The directory's own marker (`dir/`) is not an entry.
            let key = urlkeys::decode_opt(obj.key())?.unwrap_or_default();
            let key = key.as_str();
            let name = key.strip_prefix(&self.prefix).unwrap_or("");
            if name.is_empty() {
                continue;
            }
            let stored = obj.last_modified().and_then(to_system_time);
            entries.push(Entry {
                name: name.to_string(),
                meta: Metadata {
                    kind: EntryKind::File,
                    size: obj.size().unwrap_or(0).max(0) as u64,
                    modified: self.times.lookup(key, obj.e_tag()).or(stored),
                    created: None,
                },
            });
        }
        Ok(entries)
    }

    /// Adds the page's subdirectories to what the listing learned, giving
    /// up when there are too many to keep.
    fn learn(&mut self, entries: &[Entry]) {
        if let Some(set) = self.learned.as_mut() {
            set.extend(
                entries
                    .iter()
                    .filter(|e| e.meta.kind == EntryKind::Dir)
                    .map(|e| e.name.clone()),
            );
            if set.len() > LEARNED_SUBDIRS {
                self.learned = None;
            }
        }
    }
}

/// The name a common prefix gives below the listing prefix `prefix`,
/// without its trailing slash (None if it does not start with `prefix`).
pub(super) fn subdir_name(prefix: &str, cp: &CommonPrefix) -> Result<Option<String>> {
    let decoded = urlkeys::decode_opt(cp.prefix())?.unwrap_or_default();
    Ok(decoded
        .strip_prefix(prefix)
        .map(|name| name.trim_end_matches('/').to_string()))
}
