//! The OpenDAL back ends: the local folder (`folder.rs`, `fs://`) and memory
//! (`memory.rs`, `memory://`), one [`OpendalBackend`] each.
//!
//! OpenDAL provides the services; this file adds what the storage contract in
//! `storage/mod.rs` asks for on top of them, the same on both: real
//! directories (markers on memory, folders on fs), parent checks, atomic
//! uploads (`sink.rs`), paged listings (`listing.rs`) and the key rules. What
//! differs (confinement, renames, where times are kept) is each service's
//! [`Flavour`]. OpenDAL paths end with `/` for directories; our keys never do,
//! so every call goes through [`dir_path`] or the plain key. OpenDAL errors
//! become ours by `?` (`error.rs`).

mod error;
mod folder;
mod listing;
mod memory;
mod sink;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::SystemTime;

use ::opendal::{EntryMode, Operator, Writer};
use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};

use self::error::{io_error, is_missing};
use self::sink::OpendalSink;
use super::staging::Sweep;
use super::{
    Backend, ByteStream, EntryKind, EntryPages, Key, KeyRules, Metadata, NamedKey, Result,
    StorageError, Times, Unusable, UploadSink, WriteOptions,
};

/// The hidden folder inside an fs root where uploads are written before
/// commit. Hidden from listings and reserved on both services: no key may
/// start with it.
pub const PARTIAL_DIR: &str = ".s3ftp-partial";

/// A storage back end on an OpenDAL service (the local folder or memory).
#[derive(Clone, Debug)]
pub struct OpendalBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    op: Operator,
    flavour: Box<dyn Flavour>,
}

/// What one OpenDAL service does its own way; called by the shared code
/// after it has checked the key and the directory rules.
#[async_trait]
trait Flavour: Send + Sync + Debug {
    /// Refuses a well-formed key this service must not reach.
    async fn confine(&self, _key: &str) -> Result<()> {
        Ok(())
    }
    /// Where `key` is, for events.
    fn location(&self, key: &str) -> crate::storage::StoreRef;
    /// Times of file `key` kept beside the service, overriding its own.
    fn kept_times(&self, _key: &str) -> Option<Times> {
        None
    }
    /// Renames a file or (`dir`) a directory; the rules are checked.
    async fn rename(&self, op: &Operator, from: &str, to: &str, dir: bool) -> Result<()>;
    /// File `key` was deleted.
    fn forget(&self, _key: &str) {}
    /// Everything under `dir_path` (ending in `/`) was deleted.
    fn forget_tree(&self, _dir_path: &str) {}
    /// An upload to `key` became visible.
    /// After an upload's commit: the client's time, and the checksums
    /// computed on the way, to keep where the service can.
    async fn committed(
        &self,
        key: &str,
        modified: Option<SystemTime>,
        digests: &crate::digest::Digests,
    ) -> Result<()>;
    /// A checksum kept with the file `key` and still valid for its content.
    async fn stored_digest(
        &self,
        _key: &str,
        _algorithm: crate::digest::Algorithm,
    ) -> Result<Option<String>> {
        Ok(None)
    }
    /// Stores client-set times on existing file `key`.
    async fn set_times(&self, key: &str, times: Times) -> Result<()>;
    /// Is the service usable (start-up, readiness)?
    async fn check(&self) -> std::result::Result<(), Unusable> {
        Ok(())
    }
    /// What the start-up sweep of staging files removed, where there is one.
    fn swept(&self) -> Option<Sweep> {
        None
    }
}

impl OpendalBackend {
    fn new(op: Operator, flavour: impl Flavour + 'static) -> Self {
        OpendalBackend {
            inner: Arc::new(Inner {
                op,
                flavour: Box::new(flavour),
            }),
        }
    }

    /// What the start-up sweep of the staging area removed (local folder).
    pub fn swept_at_start(&self) -> Option<Sweep> {
        self.flavour().swept()
    }

    fn op(&self) -> &Operator {
        &self.inner.op
    }

    fn flavour(&self) -> &dyn Flavour {
        self.inner.flavour.as_ref()
    }

    /// The service's own confinement (the folder's symbolic links).
    async fn admit(&self, key: &str) -> Result<()> {
        self.flavour().confine(key).await
    }

    /// Metadata of `key`, `None` if nothing is there.
    async fn stat_entry(&self, key: &str) -> Result<Option<Metadata>> {
        if key.is_empty() {
            return Ok(Some(Metadata::dir()));
        }
        match self.op().stat(key).await {
            Ok(m) => match m.mode() {
                EntryMode::FILE => return Ok(Some(self.file_meta(key, &m))),
                EntryMode::DIR => return Ok(Some(dir_meta(&m))),
                EntryMode::Unknown => {
                    return Err(StorageError::Unsupported("special files"));
                }
            },
            Err(e) if is_missing(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // Memory: a directory is a marker `key/` or any key under it.
        match self.op().stat(&dir_path(key)).await {
            Ok(m) => Ok(Some(dir_meta(&m))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn file_meta(&self, key: &str, m: &::opendal::Metadata) -> Metadata {
        let mut meta = Metadata {
            kind: EntryKind::File,
            size: m.content_length(),
            modified: m.last_modified().map(SystemTime::from),
            created: None,
        };
        if let Some(t) = self.flavour().kept_times(key) {
            meta.modified = t.modified.or(meta.modified);
            meta.created = t.created;
        }
        meta
    }

    /// Checks that the parent directory of `key` exists.
    async fn check_parent(&self, key: &str) -> Result<()> {
        let Some((parent, _)) = key.rsplit_once('/') else {
            return Ok(());
        };
        match self.stat_entry(parent).await? {
            Some(m) if m.is_dir() => Ok(()),
            Some(_) => Err(StorageError::NotDirectory),
            None => Err(StorageError::NotFound),
        }
    }

    /// Checks that `key` names an existing directory other than the root.
    async fn removable_dir(&self, key: &str) -> Result<()> {
        self.admit(key).await?;
        match self.stat_entry(key).await? {
            None => Err(StorageError::NotFound),
            Some(m) if !m.is_dir() => Err(StorageError::NotDirectory),
            Some(_) => Ok(()),
        }
    }

    /// Checks that `key` names an existing file.
    async fn existing_file(&self, key: &str) -> Result<()> {
        match self.stat_entry(key).await? {
            None => Err(StorageError::NotFound),
            Some(m) if m.is_dir() => Err(StorageError::IsDirectory),
            Some(_) => Ok(()),
        }
    }

    /// True if directory `key` has at least one child.
    async fn has_children(&self, key: &str) -> Result<bool> {
        let path = dir_path(key);
        let mut lister = self.op().lister(&path).await?;
        while let Some(entry) = lister.try_next().await? {
            if entry.path() != path && entry.path() != "/" {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Streams the first `len` bytes of `key` into `writer`.
    async fn copy_prefix(&self, key: &str, len: u64, writer: &mut Writer) -> Result<()> {
        let reader = self.op().reader(key).await?;
        let mut stream = reader.into_bytes_stream(0..len).await?;
        while let Some(chunk) = stream.next().await {
            writer.write(chunk.map_err(io_error)?).await?;
        }
        Ok(())
    }

    /// Checks that an upload to `key` may start (see the module docs of
    /// `storage`), and that a kept prefix fits the existing file.
    async fn check_write(&self, key: &str, keep_prefix: u64) -> Result<()> {
        self.admit(key).await?;
        self.check_parent(key).await?;
        let existing = self.stat_entry(key).await?;
        if existing.as_ref().is_some_and(Metadata::is_dir) {
            return Err(StorageError::IsDirectory);
        }
        if keep_prefix > 0 {
            match &existing {
                None => return Err(StorageError::NotFound),
                Some(m) if keep_prefix > m.size => {
                    return Err(StorageError::Other(format!(
                        "cannot keep {} bytes of a {}-byte file",
                        keep_prefix, m.size
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Deletes directory `key` and everything under it, times included.
    async fn remove_tree(&self, key: &str) -> Result<()> {
        let path = dir_path(key);
        delete_tree(self.op(), &path).await?;
        self.flavour().forget_tree(&path);
        Ok(())
    }
}

#[async_trait]
impl Backend for OpendalBackend {
    fn key_rules(&self) -> KeyRules {
        KeyRules {
            no_surrounding_space: true,
            reserved: &[PARTIAL_DIR],
            ..KeyRules::default()
        }
    }

    async fn stat(&self, key: &Key) -> Result<Metadata> {
        self.admit(key).await?;
        self.stat_entry(key).await?.ok_or(StorageError::NotFound)
    }

    async fn list(&self, dir: &Key) -> Result<EntryPages> {
        self.admit(dir).await?;
        match self.stat_entry(dir).await? {
            None => return Err(StorageError::NotFound),
            Some(m) if !m.is_dir() => return Err(StorageError::NotDirectory),
            Some(_) => {}
        }
        let path = if dir.is_empty() {
            "/".to_string()
        } else {
            dir_path(dir)
        };
        let lister = self.op().lister(&path).await?;
        Ok(listing::pages(self.clone(), dir, lister))
    }

    async fn read(&self, key: &NamedKey, offset: u64) -> Result<ByteStream> {
        self.admit(key).await?;
        let meta = self.stat_entry(key).await?.ok_or(StorageError::NotFound)?;
        if meta.is_dir() {
            return Err(StorageError::IsDirectory);
        }
        if offset >= meta.size {
            return Ok(futures::stream::empty().boxed());
        }
        let reader = self.op().reader(key).await?;
        let stream = reader.into_bytes_stream(offset..).await?;
        Ok(stream.map_err(io_error).boxed())
    }

    async fn write(&self, key: &NamedKey, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        self.check_write(key, options.keep_prefix).await?;
        let mut writer = self.op().writer(key).await?;
        if options.keep_prefix > 0 {
            if let Err(e) = self
                .copy_prefix(key, options.keep_prefix, &mut writer)
                .await
            {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(
                        key = key.as_str(),
                        "aborting upload after a failed prefix copy: {abort}"
                    );
                }
                return Err(e);
            }
        }
        Ok(Box::new(OpendalSink {
            backend: self.clone(),
            key: key.to_string(),
            modified: options.modified,
            written: options.keep_prefix,
            writer: Some(writer),
            digests: Default::default(),
        }))
    }

    async fn delete(&self, key: &NamedKey) -> Result<()> {
        self.admit(key).await?;
        self.existing_file(key).await?;
        self.op().delete(key).await?;
        self.flavour().forget(key);
        Ok(())
    }

    async fn rename(&self, from: &NamedKey, to: &NamedKey) -> Result<()> {
        self.admit(from).await?;
        self.admit(to).await?;
        let src = self.stat_entry(from).await?.ok_or(StorageError::NotFound)?;
        if from == to {
            return Ok(());
        }
        if src.is_dir() && from.contains(to) {
            return Err(StorageError::InvalidName(format!(
                "cannot move {from} into itself"
            )));
        }
        self.check_parent(to).await?;
        match self.stat_entry(to).await? {
            Some(_) if src.is_dir() => return Err(StorageError::AlreadyExists),
            Some(dst) if dst.is_dir() => return Err(StorageError::IsDirectory),
            _ => {}
        }
        let op = self.op();
        self.flavour().rename(op, from, to, src.is_dir()).await
    }

    async fn mkdir(&self, key: &NamedKey) -> Result<()> {
        self.admit(key).await?;
        self.check_parent(key).await?;
        if self.stat_entry(key).await?.is_some() {
            return Err(StorageError::AlreadyExists);
        }
        Ok(self.op().create_dir(&dir_path(key)).await?)
    }

    async fn rmdir(&self, key: &NamedKey) -> Result<()> {
        self.removable_dir(key).await?;
        if self.has_children(key).await? {
            return Err(StorageError::NotEmpty);
        }
        Ok(self.op().delete(&dir_path(key)).await?)
    }

    async fn remove_all(&self, key: &NamedKey) -> Result<()> {
        self.removable_dir(key).await?;
        self.remove_tree(key).await
    }

    async fn set_times(&self, key: &NamedKey, times: Times) -> Result<()> {
        self.admit(key).await?;
        self.existing_file(key).await?;
        self.flavour().set_times(key, times).await
    }

    fn location(&self, key: &Key) -> crate::storage::StoreRef {
        self.flavour().location(key.as_str())
    }

    async fn check(&self) -> std::result::Result<(), Unusable> {
        self.flavour().check().await
    }

    async fn stored_digest(
        &self,
        key: &NamedKey,
        algorithm: crate::digest::Algorithm,
    ) -> Result<Option<String>> {
        self.admit(key).await?;
        self.flavour().stored_digest(key, algorithm).await
    }
}

/// Deletes OpenDAL directory `path` (ending in `/`) and everything under it.
async fn delete_tree(op: &Operator, path: &str) -> Result<()> {
    Ok(op.delete_with(path).recursive(true).await?)
}

/// The OpenDAL path of directory `key`.
fn dir_path(key: &str) -> String {
    format!("{key}/")
}

fn dir_meta(m: &::opendal::Metadata) -> Metadata {
    Metadata {
        modified: m.last_modified().map(SystemTime::from),
        ..Metadata::dir()
    }
}
