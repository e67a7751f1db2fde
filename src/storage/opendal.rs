//! The OpenDAL back end: the local folder (`fs://`) and memory (`memory://`).
//!
//! OpenDAL provides the services; this file adds what the storage contract in
//! `storage/mod.rs` asks for on top of them: real directories (markers on memory,
//! folders on fs), parent checks, atomic uploads, directory renames and
//! client-set times. OpenDAL paths end with `/` for directories; our keys never
//! do, so every call goes through [`dir_path`] or the plain key.
//!
//! On fs, uploads go to a temporary file in the hidden folder [`PARTIAL_DIR`]
//! inside the root (same filesystem, so commit is an atomic rename), in a
//! subfolder of this process's own (`staging.rs`); what dead processes left
//! there is removed at start. That folder is hidden from listings and
//! reserved: no key may start with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use ::opendal::options::ListOptions;
use ::opendal::services::{Fs, Memory};
use ::opendal::{EntryMode, ErrorKind, Lister, Operator, Writer};
use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::staging::{self, StagingDir, Sweep};
use super::{
    Backend, ByteStream, Entry, EntryKind, EntryPages, Metadata, Result, StorageError, Times,
    UploadSink, WriteOptions,
};

/// The hidden folder inside an fs root where uploads are written before commit.
pub const PARTIAL_DIR: &str = ".s3ftp-partial";

/// Entries per listing page.
const PAGE_SIZE: usize = 1000;

/// A storage back end on an OpenDAL service (the local folder or memory).
#[derive(Clone, Debug)]
pub struct OpendalBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    op: Operator,
    flavour: Flavour,
}

#[derive(Debug)]
enum Flavour {
    /// A local folder; `root` is canonical.
    Local {
        root: PathBuf,
        /// Where this process stages uploads; removed on drop.
        _staging: StagingDir,
        /// What the start-up sweep removed.
        swept: Sweep,
    },
    /// The memory service keeps no times, so the back end keeps them: the commit
    /// time (or the client's) as `modified`, and `created` when a client set it.
    Memory {
        times: Mutex<HashMap<String, Times>>,
    },
}

impl OpendalBackend {
    /// A back end on the local folder `root`, created if missing. Staging
    /// files that dead processes left in it are removed first.
    pub fn local(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(map_io_error)?;
        let root = root.canonicalize().map_err(map_io_error)?;
        let area = root.join(PARTIAL_DIR);
        let root_str = utf8(&root)?;
        let staging = StagingDir::claim(&area).map_err(map_io_error)?;
        let swept = staging::sweep(&area, staging.id());
        if swept != Sweep::default() {
            tracing::info!(
                folder = %area.display(),
                dead_processes = swept.instances,
                files = swept.files,
                "removed the staging files of uploads that died with their server"
            );
        }
        let builder = Fs::default()
            .root(root_str)
            .atomic_write_dir(utf8(staging.path())?);
        let op = Operator::new(builder).map_err(|e| map_err(&e))?;
        Ok(OpendalBackend {
            inner: Arc::new(Inner {
                op,
                flavour: Flavour::Local {
                    root,
                    _staging: staging,
                    swept,
                },
            }),
        })
    }

    /// What the start-up sweep of the staging area removed (local folder).
    pub fn swept_at_start(&self) -> Option<Sweep> {
        match &self.inner.flavour {
            Flavour::Local { swept, .. } => Some(*swept),
            Flavour::Memory { .. } => None,
        }
    }

    /// A back end in memory, empty, private to this value and its clones.
    pub fn memory() -> Self {
        // The memory service takes no configuration, so building it cannot fail.
        let op = Operator::new(Memory::default()).expect("the memory service always builds");
        OpendalBackend {
            inner: Arc::new(Inner {
                op,
                flavour: Flavour::Memory {
                    times: Mutex::new(HashMap::new()),
                },
            }),
        }
    }

    fn op(&self) -> &Operator {
        &self.inner.op
    }

    /// The key rules, and on the local folder, confinement: a symbolic link
    /// inside the folder may not lead outside it (someone with shell access
    /// could otherwise expose /etc to FTP users).
    fn check(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let Some(root) = self.local_root() else {
            return Ok(());
        };
        let mut path = root.to_path_buf();
        for segment in key.split('/').filter(|s| !s.is_empty()) {
            path.push(segment);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let inside = std::fs::canonicalize(&path)
                        .map(|target| target.starts_with(root))
                        .unwrap_or(false);
                    if !inside {
                        tracing::warn!(path = %path.display(), "refused a symbolic link leading outside the folder");
                        return Err(StorageError::PermissionDenied);
                    }
                }
                Ok(_) => {}
                // The rest of the path does not exist (yet): nothing to follow.
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn local_root(&self) -> Option<&Path> {
        match &self.inner.flavour {
            Flavour::Local { root, .. } => Some(root),
            Flavour::Memory { .. } => None,
        }
    }

    /// The memory side table of times (`None` on fs).
    fn times(&self) -> Option<MutexGuard<'_, HashMap<String, Times>>> {
        match &self.inner.flavour {
            Flavour::Memory { times } => Some(times.lock().unwrap_or_else(|e| e.into_inner())),
            Flavour::Local { .. } => None,
        }
    }

    fn real_path(root: &Path, key: &str) -> PathBuf {
        key.split('/')
            .fold(root.to_path_buf(), |p, seg| p.join(seg))
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
            Err(e) => return Err(map_err(&e)),
        }
        // Memory: a directory is a marker `key/` or any key under it.
        match self.op().stat(&dir_path(key)).await {
            Ok(m) => Ok(Some(dir_meta(&m))),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(map_err(&e)),
        }
    }

    fn file_meta(&self, key: &str, m: &::opendal::Metadata) -> Metadata {
        let mut meta = Metadata {
            kind: EntryKind::File,
            size: m.content_length(),
            modified: m.last_modified().map(SystemTime::from),
            created: None,
        };
        if let Some(times) = self.times() {
            if let Some(t) = times.get(key) {
                meta.modified = t.modified.or(meta.modified);
                meta.created = t.created;
            }
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

    /// True if directory `key` has at least one child.
    /// Checks that `key` names an existing directory other than the root.
    async fn removable_dir(&self, key: &str) -> Result<()> {
        self.check(key)?;
        if key.is_empty() {
            return Err(StorageError::PermissionDenied);
        }
        match self.stat_entry(key).await? {
            None => Err(StorageError::NotFound),
            Some(m) if !m.is_dir() => Err(StorageError::NotDirectory),
            Some(_) => Ok(()),
        }
    }

    async fn has_children(&self, key: &str) -> Result<bool> {
        let path = dir_path(key);
        let mut lister = self.op().lister(&path).await.map_err(|e| map_err(&e))?;
        while let Some(entry) = lister.try_next().await.map_err(|e| map_err(&e))? {
            if entry.path() != path && entry.path() != "/" {
                return Ok(true);
            }
        }
        Ok(false)
    }

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
                if meta.modified.is_none() && self.local_root().is_some() {
                    // The lister gave no time: ask for it.
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

    /// Streams the first `len` bytes of `key` into `writer`.
    async fn copy_prefix(&self, key: &str, len: u64, writer: &mut Writer) -> Result<()> {
        let reader = self.op().reader(key).await.map_err(|e| map_err(&e))?;
        let mut stream = reader
            .into_bytes_stream(0..len)
            .await
            .map_err(|e| map_err(&e))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(map_io_error)?;
            writer.write(chunk).await.map_err(|e| map_err(&e))?;
        }
        Ok(())
    }

    /// Copies one file on memory (memory has no server-side copy), with its times.
    async fn memory_copy_file(&self, from: &str, to: &str) -> Result<()> {
        let content = self.op().read(from).await.map_err(|e| map_err(&e))?;
        self.op()
            .write(to, content)
            .await
            .map_err(|e| map_err(&e))?;
        if let Some(mut times) = self.times() {
            match times.get(from).copied() {
                Some(t) => times.insert(to.to_string(), t),
                None => times.remove(to),
            };
        }
        Ok(())
    }

    async fn memory_rename_dir(&self, from: &str, to: &str) -> Result<()> {
        let src = dir_path(from);
        let dst = dir_path(to);
        let opts = ListOptions {
            recursive: true,
            ..Default::default()
        };
        let mut lister = self
            .op()
            .lister_options(&src, opts)
            .await
            .map_err(|e| map_err(&e))?;
        let mut dst_created = false;
        while let Some(entry) = lister.try_next().await.map_err(|e| map_err(&e))? {
            let Some(rest) = entry.path().strip_prefix(src.as_str()) else {
                continue;
            };
            let target = format!("{dst}{rest}");
            if entry.metadata().is_dir() {
                dst_created |= rest.is_empty();
                self.op()
                    .create_dir(&target)
                    .await
                    .map_err(|e| map_err(&e))?;
            } else {
                self.memory_copy_file(entry.path(), &target).await?;
            }
        }
        if !dst_created {
            // The source was implicit; the target gets a real marker.
            self.op().create_dir(&dst).await.map_err(|e| map_err(&e))?;
        }
        self.remove_tree(from).await
    }

    /// Deletes directory `key` and everything under it, times included.
    async fn remove_tree(&self, key: &str) -> Result<()> {
        let path = dir_path(key);
        self.op()
            .delete_with(&path)
            .recursive(true)
            .await
            .map_err(|e| map_err(&e))?;
        if let Some(mut times) = self.times() {
            times.retain(|k, _| !k.starts_with(&path));
        }
        Ok(())
    }

    /// What commit does after the object became visible.
    async fn after_commit(&self, key: &str, modified: Option<SystemTime>) -> Result<()> {
        if let Some(mut times) = self.times() {
            times.insert(
                key.to_string(),
                Times {
                    modified: Some(modified.unwrap_or_else(SystemTime::now)),
                    created: None,
                },
            );
            return Ok(());
        }
        if let (Some(root), Some(t)) = (self.local_root(), modified) {
            set_file_mtime(Self::real_path(root, key), t).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for OpendalBackend {
    async fn stat(&self, key: &str) -> Result<Metadata> {
        self.check(key)?;
        self.stat_entry(key).await?.ok_or(StorageError::NotFound)
    }

    async fn list(&self, dir: &str) -> Result<EntryPages> {
        self.check(dir)?;
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
        let lister = self.op().lister(&path).await.map_err(|e| map_err(&e))?;
        let state = ListState {
            backend: self.clone(),
            dir: dir.to_string(),
            lister,
        };
        Ok(futures::stream::unfold(Some(state), next_page).boxed())
    }

    async fn read(&self, key: &str, offset: u64) -> Result<ByteStream> {
        self.check(key)?;
        let meta = self.stat_entry(key).await?.ok_or(StorageError::NotFound)?;
        if meta.is_dir() {
            return Err(StorageError::IsDirectory);
        }
        if offset >= meta.size {
            return Ok(futures::stream::empty().boxed());
        }
        let reader = self.op().reader(key).await.map_err(|e| map_err(&e))?;
        let stream = reader
            .into_bytes_stream(offset..)
            .await
            .map_err(|e| map_err(&e))?;
        Ok(stream.map_err(map_io_error).boxed())
    }

    async fn write(&self, key: &str, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        self.check(key)?;
        if key.is_empty() {
            return Err(StorageError::IsDirectory);
        }
        self.check_parent(key).await?;
        let existing = self.stat_entry(key).await?;
        if existing.as_ref().is_some_and(Metadata::is_dir) {
            return Err(StorageError::IsDirectory);
        }
        if options.keep_prefix > 0 {
            match &existing {
                None => return Err(StorageError::NotFound),
                Some(m) if options.keep_prefix > m.size => {
                    return Err(StorageError::Other(format!(
                        "cannot keep {} bytes of a {}-byte file",
                        options.keep_prefix, m.size
                    )));
                }
                Some(_) => {}
            }
        }
        let mut writer = self.op().writer(key).await.map_err(|e| map_err(&e))?;
        if options.keep_prefix > 0 {
            if let Err(e) = self
                .copy_prefix(key, options.keep_prefix, &mut writer)
                .await
            {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key, "aborting upload after a failed prefix copy: {abort}");
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
        }))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.check(key)?;
        match self.stat_entry(key).await? {
            None => return Err(StorageError::NotFound),
            Some(m) if m.is_dir() => return Err(StorageError::IsDirectory),
            Some(_) => {}
        }
        self.op().delete(key).await.map_err(|e| map_err(&e))?;
        if let Some(mut times) = self.times() {
            times.remove(key);
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        if from.is_empty() {
            return Err(StorageError::PermissionDenied);
        }
        let src = self.stat_entry(from).await?.ok_or(StorageError::NotFound)?;
        if from == to {
            return Ok(());
        }
        if src.is_dir() && to.starts_with(&dir_path(from)) {
            return Err(StorageError::InvalidName(format!(
                "cannot move {from} into itself"
            )));
        }
        if to.is_empty() {
            return Err(StorageError::AlreadyExists);
        }
        self.check_parent(to).await?;
        match self.stat_entry(to).await? {
            Some(_) if src.is_dir() => return Err(StorageError::AlreadyExists),
            Some(dst) if dst.is_dir() => return Err(StorageError::IsDirectory),
            _ => {}
        }
        match (self.local_root(), src.is_dir()) {
            (Some(root), true) => {
                tokio::fs::rename(Self::real_path(root, from), Self::real_path(root, to))
                    .await
                    .map_err(map_io_error)
            }
            (Some(_), false) => self.op().rename(from, to).await.map_err(|e| map_err(&e)),
            (None, true) => self.memory_rename_dir(from, to).await,
            (None, false) => {
                self.memory_copy_file(from, to).await?;
                self.op().delete(from).await.map_err(|e| map_err(&e))?;
                if let Some(mut times) = self.times() {
                    times.remove(from);
                }
                Ok(())
            }
        }
    }

    async fn mkdir(&self, key: &str) -> Result<()> {
        self.check(key)?;
        if key.is_empty() {
            return Err(StorageError::AlreadyExists);
        }
        self.check_parent(key).await?;
        if self.stat_entry(key).await?.is_some() {
            return Err(StorageError::AlreadyExists);
        }
        self.op()
            .create_dir(&dir_path(key))
            .await
            .map_err(|e| map_err(&e))
    }

    async fn rmdir(&self, key: &str) -> Result<()> {
        self.removable_dir(key).await?;
        if self.has_children(key).await? {
            return Err(StorageError::NotEmpty);
        }
        self.op()
            .delete(&dir_path(key))
            .await
            .map_err(|e| map_err(&e))
    }

    async fn remove_all(&self, key: &str) -> Result<()> {
        self.removable_dir(key).await?;
        self.remove_tree(key).await
    }

    async fn set_times(&self, key: &str, times: Times) -> Result<()> {
        self.check(key)?;
        match self.stat_entry(key).await? {
            None => return Err(StorageError::NotFound),
            Some(m) if m.is_dir() => return Err(StorageError::IsDirectory),
            Some(_) => {}
        }
        if let Some(root) = self.local_root() {
            if times.created.is_some() {
                return Err(StorageError::Unsupported("creation time"));
            }
            if let Some(t) = times.modified {
                set_file_mtime(Self::real_path(root, key), t).await?;
            }
            return Ok(());
        }
        if let Some(mut table) = self.times() {
            let entry = table.entry(key.to_string()).or_default();
            if times.modified.is_some() {
                entry.modified = times.modified;
            }
            if times.created.is_some() {
                entry.created = times.created;
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<()> {
        if let Some(root) = self.local_root() {
            let meta = tokio::fs::metadata(root).await.map_err(map_io_error)?;
            if !meta.is_dir() {
                return Err(StorageError::NotDirectory);
            }
        }
        Ok(())
    }
}

/// An upload in progress: an OpenDAL writer (fs: a temporary file; memory: a
/// buffer) that becomes the object on close.
struct OpendalSink {
    backend: OpendalBackend,
    key: String,
    modified: Option<SystemTime>,
    written: u64,
    /// `None` once committed or aborted.
    writer: Option<Writer>,
}

#[async_trait]
impl UploadSink for OpendalSink {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().ok_or_else(finished_error)?;
        let len = data.len() as u64;
        writer.write(data).await.map_err(|e| map_err(&e))?;
        self.written += len;
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<u64> {
        let mut writer = self.writer.take().ok_or_else(finished_error)?;
        if let Err(e) = writer.close().await {
            if let Err(abort) = writer.abort().await {
                tracing::debug!(key = self.key, "abort after failed commit: {abort}");
            }
            return Err(map_err(&e));
        }
        if let Err(e) = self.backend.after_commit(&self.key, self.modified).await {
            // The data is stored; only the time is missing. Not worth failing.
            tracing::warn!(key = self.key, "setting the modification time: {e}");
        }
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let mut writer = self.writer.take().ok_or_else(finished_error)?;
        writer.abort().await.map_err(|e| map_err(&e))
    }
}

impl Drop for OpendalSink {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(key, "aborting a dropped upload: {e}");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(key, "upload dropped outside a runtime; not cleaned up");
            }
        }
    }
}

fn finished_error() -> StorageError {
    StorageError::Other("upload already committed or aborted".to_string())
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
            Some(Err(e)) => return Some((Err(map_err(&e)), None)),
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

/// Refuses keys the contract forbids and keys OpenDAL would change: it trims
/// white space around a path, so `" a"` would silently become `"a"`.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Ok(());
    }
    let invalid = |why: &str| Err(StorageError::InvalidName(format!("{key:?}: {why}")));
    if key.starts_with(char::is_whitespace) || key.ends_with(char::is_whitespace) {
        return invalid("leading or trailing white space");
    }
    if key.contains('\0') {
        return invalid("NUL character");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return invalid("empty, `.` or `..` segment");
    }
    if key.split('/').next() == Some(PARTIAL_DIR) {
        return invalid("reserved name");
    }
    Ok(())
}

/// Errors that mean "nothing there": not found, or a file in the middle of the
/// path (fs reports ENOTDIR; object stores just find nothing).
fn is_missing(err: &::opendal::Error) -> bool {
    matches!(
        map_err(err),
        StorageError::NotFound | StorageError::NotDirectory
    )
}

/// The one mapping from OpenDAL errors to ours. OpenDAL folds most I/O errors
/// into `Unexpected`, so the I/O error underneath, when there is one, decides.
pub(crate) fn map_err(err: &::opendal::Error) -> StorageError {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(mapped) = map_io_kind(io.kind()) {
                return mapped;
            }
            break;
        }
        source = s.source();
    }
    match err.kind() {
        ErrorKind::NotFound => StorageError::NotFound,
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => StorageError::AlreadyExists,
        ErrorKind::PermissionDenied => StorageError::PermissionDenied,
        ErrorKind::IsADirectory => StorageError::IsDirectory,
        ErrorKind::NotADirectory => StorageError::NotDirectory,
        ErrorKind::Unsupported => StorageError::Unsupported("operation not supported by OpenDAL"),
        ErrorKind::RateLimited => StorageError::Transient(err.to_string()),
        _ if err.is_temporary() => StorageError::Transient(err.to_string()),
        _ => StorageError::Other(err.to_string()),
    }
}

/// Maps an I/O error, including one that wraps an OpenDAL error (byte streams).
pub(crate) fn map_io_error(err: std::io::Error) -> StorageError {
    if let Some(inner) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<::opendal::Error>())
    {
        return map_err(inner);
    }
    map_io_kind(err.kind()).unwrap_or_else(|| StorageError::Other(err.to_string()))
}

fn map_io_kind(kind: std::io::ErrorKind) -> Option<StorageError> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => StorageError::NotFound,
        K::AlreadyExists => StorageError::AlreadyExists,
        K::PermissionDenied | K::ReadOnlyFilesystem => StorageError::PermissionDenied,
        K::IsADirectory => StorageError::IsDirectory,
        K::NotADirectory => StorageError::NotDirectory,
        K::DirectoryNotEmpty => StorageError::NotEmpty,
        K::StorageFull | K::QuotaExceeded => StorageError::InsufficientStorage,
        K::FileTooLarge => StorageError::TooLarge("file too large for the filesystem".into()),
        K::InvalidFilename => StorageError::InvalidName("rejected by the filesystem".into()),
        K::Unsupported => StorageError::Unsupported("operation not supported by the filesystem"),
        K::Interrupted | K::TimedOut | K::WouldBlock | K::ResourceBusy => {
            StorageError::Transient(kind.to_string())
        }
        _ => return None,
    })
}

async fn set_file_mtime(path: PathBuf, time: SystemTime) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.set_modified(time)
    })
    .await
    .map_err(|e| StorageError::Other(format!("set_modified task: {e}")))?
    .map_err(map_io_error)
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        StorageError::InvalidName(format!("{}: folder name is not UTF-8", path.display()))
    })
}
