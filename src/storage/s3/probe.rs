//! Existence probes: is a key a file, a directory or nothing, does a
//! parent exist, may a file be written there. A directory is a marker or
//! any key under its prefix, so asking costs a HEAD and a one-key listing,
//! sent at once; `dirs` spares the repeats.

use std::collections::HashSet;
use std::time::SystemTime;

use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;

use super::error::map;
use super::lister::subdir_name;
use super::times::to_system_time;
use super::{dirs, urlkeys, S3Backend};
use crate::storage::{Result, StorageError};

/// What lies at a key.
pub(super) enum Probe {
    /// An object, with its HEAD (boxed: it is large, the others are empty).
    File(Box<HeadObjectOutput>),
    /// A marker or keys under the key's prefix (or the mount's root), with
    /// the marker's time when there is a marker.
    Dir {
        marked: Option<SystemTime>,
    },
    Missing,
}

impl S3Backend {
    /// HeadObject of a back-end key; None when nothing is there.
    pub(super) async fn head(&self, key: &str) -> Result<Option<HeadObjectOutput>> {
        self.target.head(&self.full(key)).await
    }

    /// True if anything (a marker or any key) lies under the directory `key`.
    pub(super) async fn dir_exists(&self, key: &str) -> Result<bool> {
        Ok(self.dir_seen(key).await?.is_some())
    }

    /// None if nothing lies under the directory `key`; else the time of its
    /// marker, when the first key under it is the marker (`dir/` sorts
    /// before everything under it).
    async fn dir_seen(&self, key: &str) -> Result<Option<Option<SystemTime>>> {
        if key.is_empty() {
            return Ok(Some(None));
        }
        let prefix = self.dir_prefix(key);
        let out = self
            .target
            .list(prefix.as_str())
            .max_keys(1)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        let exists = out.key_count().unwrap_or(0) > 0 || !out.contents().is_empty();
        if !exists {
            self.dirs.missing(key);
            return Ok(None);
        }
        self.dirs.saw(key);
        let marker = out.contents().first().filter(|first| {
            urlkeys::decode_opt(first.key()).ok().flatten().as_deref() == Some(prefix.as_str())
        });
        Ok(Some(
            marker
                .and_then(|m| m.last_modified())
                .and_then(to_system_time),
        ))
    }

    /// File, directory or nothing, with one round trip (both asked at once).
    pub(super) async fn probe(&self, key: &str) -> Result<Probe> {
        if key.is_empty() {
            return Ok(Probe::Dir { marked: None });
        }
        let (head, dir) = tokio::join!(self.head(key), self.dir_seen(key));
        if let Some(head) = head? {
            return Ok(Probe::File(Box::new(head)));
        }
        Ok(match dir? {
            Some(marked) => Probe::Dir { marked },
            None => Probe::Missing,
        })
    }

    /// Why `key`, found to be no directory, cannot be used as one:
    /// NotDirectory if a file is there, else NotFound.
    pub(super) async fn not_a_dir(&self, key: &str) -> Result<StorageError> {
        Ok(if self.head(key).await?.is_some() {
            StorageError::NotDirectory
        } else {
            StorageError::NotFound
        })
    }

    /// The parent directory of `key` must exist (and not be a file).
    pub(super) async fn check_parent(&self, key: &str) -> Result<()> {
        let Some((parent, _)) = key.rsplit_once('/') else {
            return Ok(());
        };
        if self.dirs.exists(parent) || self.dir_exists(parent).await? {
            return Ok(());
        }
        Err(self.not_a_dir(parent).await?)
    }

    /// Checks that `key` can be written as a file: its directory exists
    /// (else NotFound or NotDirectory) and it is not itself a directory.
    /// Answered from what was recently seen when possible, so a run of
    /// uploads into one directory sends nothing but their PutObjects.
    pub(super) async fn check_writable(&self, key: &str) -> Result<()> {
        let (parent, name) = dirs::split(key);
        let mut known = self.dirs.lookup(parent, name);
        if known.survey {
            self.survey(parent).await?;
            known = self.dirs.lookup(parent, name);
        }
        let parent_check = async {
            if known.exists {
                Ok(())
            } else {
                self.check_parent(key).await
            }
        };
        let dir_check = async {
            if known.is_dir == Some(false) {
                Ok(false)
            } else {
                self.dir_exists(key).await
            }
        };
        let (parent_ok, is_dir) = tokio::join!(parent_check, dir_check);
        parent_ok?;
        if is_dir? {
            return Err(StorageError::IsDirectory);
        }
        Ok(())
    }

    /// One listing page of `dir`, to learn all its subdirectories when the
    /// page holds every entry (or that it is crowded, or missing).
    async fn survey(&self, dir: &str) -> Result<()> {
        let prefix = self.dir_prefix(dir);
        let out = self
            .target
            .list(&prefix)
            .delimiter("/")
            .max_keys(dirs::SURVEY_KEYS)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        if !lists_anything(&out) && !dir.is_empty() {
            self.dirs.missing(dir);
        } else if out.is_truncated() == Some(true) {
            self.dirs.crowded(dir);
        } else {
            let mut subdirs = HashSet::new();
            for cp in out.common_prefixes() {
                if let Some(name) = subdir_name(&prefix, cp)? {
                    subdirs.insert(name);
                }
            }
            self.dirs.listed(dir, subdirs);
        }
        Ok(())
    }

    /// The first two object keys under the directory `key`'s prefix: enough
    /// to tell a missing, an empty (only its marker) and a full directory.
    pub(super) async fn first_keys(&self, key: &str) -> Result<Vec<String>> {
        let out = self
            .target
            .list(self.dir_prefix(key))
            .max_keys(2)
            .send()
            .await
            .map_err(|e| map(e, "ListObjectsV2"))?;
        out.contents()
            .iter()
            .filter_map(|o| o.key())
            .map(urlkeys::decode)
            .collect()
    }
}

/// True if a delimited listing page shows any key or common prefix.
pub(super) fn lists_anything(out: &ListObjectsV2Output) -> bool {
    out.key_count().unwrap_or(0) > 0
        || !out.contents().is_empty()
        || !out.common_prefixes().is_empty()
}
