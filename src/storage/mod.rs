//! The storage layer: what a back end must do to hold the virtual tree's files.
//!
//! Nothing here knows about FTP. A back end sees [`Key`]s, which only the vfs
//! layer builds and which already obey every rule of the back end's
//! [`KeyRules`] (see `key`). [`Key::ROOT`] is the root of the mount, which
//! always exists and is a directory; what creates, changes or removes takes a
//! [`NamedKey`], which is never the root.
//!
//! Every back end implements the same directory semantics, so that a client sees
//! no difference between a local folder and an object store (the shared contract
//! tests in `tests/backend_contract.rs` hold each back end to them):
//! - a directory exists if it was created with [`Backend::mkdir`] or anything lies
//!   under it;
//! - [`Backend::write`] refuses a key whose parent directory is missing
//!   ([`StorageError::NotFound`]) or that names a directory
//!   ([`StorageError::IsDirectory`]);
//! - [`Backend::rmdir`] refuses a directory that is not empty;
//! - a write becomes visible only when [`UploadSink::commit`] succeeds; a sink that
//!   is aborted or dropped leaves the previous object, if any, untouched.

mod key;
pub mod opendal;
pub mod s3;
pub mod selfcheck;
pub mod staging;

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use key::{is_bad_segment, Key, KeyError, KeyRules, NamedKey, MAX_KEY_BYTES};

pub type Result<T> = std::result::Result<T, StorageError>;

/// Why a storage operation failed. The session maps each variant to one FTP
/// reply code in a single place (`session::error`).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such file or directory")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("is a directory")]
    IsDirectory,
    #[error("not a directory")]
    NotDirectory,
    #[error("directory not empty")]
    NotEmpty,
    #[error("name not allowed: {0}")]
    InvalidName(String),
    #[error("permission denied")]
    PermissionDenied,
    #[error("storage allocation exceeded: {0}")]
    TooLarge(String),
    #[error("insufficient storage space")]
    InsufficientStorage,
    /// Worth retrying later: throttling, a 5xx from the store, a network error.
    #[error("temporary back-end failure: {0}")]
    Transient(String),
    /// The file was replaced or deleted while it was being read: what was
    /// sent is the old file's beginning; reading it again gives the new one.
    #[error("changed while being read: {0}")]
    Changed(String),
    #[error("not supported by this back end: {0}")]
    Unsupported(&'static str),
    #[error("back-end error: {0}")]
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// What the server knows about one file or directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub kind: EntryKind,
    /// Bytes for a file, 0 for a directory.
    pub size: u64,
    /// Client-set modification time (MFMT, upload) if stored, else the store's own.
    pub modified: Option<SystemTime>,
    /// Creation time, when the back end keeps one (MFCT).
    pub created: Option<SystemTime>,
}

impl Metadata {
    pub fn dir() -> Self {
        Metadata {
            kind: EntryKind::Dir,
            size: 0,
            modified: None,
            created: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

/// One child of a listed directory: its name (one segment, no slash) and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub meta: Metadata,
}

/// Where a key is stored, in the store's own terms (for upload events).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreRef {
    S3 { bucket: String, key: String },
    Folder { path: String },
    Memory { key: String },
}

/// What a committed upload stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Bytes stored.
    pub size: u64,
    /// The store's ETag, when it gives one (S3), quotes included.
    pub etag: Option<String>,
}

/// File content, streamed in chunks.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// Directory entries, streamed a page at a time so that a listing never needs
/// the whole directory in memory. Pages need not be sorted, but a name appears
/// at most once across all pages.
pub type EntryPages = BoxStream<'static, Result<Vec<Entry>>>;

/// What a listing names: a directory (its pages) or a file.
pub enum Listed {
    Dir(EntryPages),
    File(Metadata),
}

/// How a write starts.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Keep the first `keep_prefix` bytes of the existing object and append the
    /// new data after them (APPE, REST n + STOR). 0 replaces the object.
    /// It must not exceed the existing size (callers check that first); with no
    /// existing file and `keep_prefix > 0` the write fails with `NotFound`.
    pub keep_prefix: u64,
    /// Modification time to store with the object, when the client gave one.
    pub modified: Option<SystemTime>,
}

/// Times a client may set on an existing file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    pub modified: Option<SystemTime>,
    pub created: Option<SystemTime>,
}

impl Times {
    /// Only the modification time (MFMT, SITE UTIME).
    pub fn modified(time: SystemTime) -> Times {
        Times {
            modified: Some(time),
            created: None,
        }
    }
}

/// The receiving end of an upload. Data is written in order; nothing is visible
/// under the key until [`UploadSink::commit`] returns `Ok`. Dropping a sink
/// without committing must abort it (an implementation may clean up in the
/// background), but callers should call [`UploadSink::abort`] to know when
/// clean-up is done.
#[async_trait]
pub trait UploadSink: Send {
    async fn write(&mut self, data: Bytes) -> Result<()>;
    /// Room to read the next bytes into directly, saving the copy `write`
    /// makes: a sink that fills part buffers lends the current one, limited
    /// to what the part still holds. None: use `write`. Bytes read into it
    /// must be reported with [`UploadSink::filled`] before anything else.
    async fn room(&mut self) -> Result<Option<bytes::buf::Limit<&mut bytes::BytesMut>>> {
        Ok(None)
    }
    /// Takes account of `n` bytes read into [`UploadSink::room`].
    async fn filled(&mut self, _n: usize) -> Result<()> {
        Ok(())
    }
    /// Checksums of every byte written, computed on the way, for the back
    /// end to keep with the object when it commits (they are known only at
    /// the end). Not given for uploads that keep existing bytes.
    fn keep_digests(&mut self, _digests: crate::digest::Digests) {}
    /// Makes the object visible; returns its final size in bytes.
    /// Makes the upload visible; what was stored.
    async fn commit(self: Box<Self>) -> Result<Committed>;
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// A storage service. Implementations: [`opendal::OpendalBackend`] (local folder,
/// memory) and, later, S3.
#[async_trait]
pub trait Backend: Send + Sync + Debug {
    /// What this back end asks of keys beyond their shape; the vfs builds
    /// keys with them.
    fn key_rules(&self) -> KeyRules {
        KeyRules::default()
    }

    /// Metadata of a file or directory. `stat(&Key::ROOT)` is the root directory.
    async fn stat(&self, key: &Key) -> Result<Metadata>;

    /// The children of directory `dir`, streamed by pages. `NotFound` if `dir`
    /// does not exist, `NotDirectory` if it is a file.
    async fn list(&self, dir: &Key) -> Result<EntryPages>;

    /// What a listing of `key` shows: a directory's pages, or a file's own
    /// metadata. `NotFound` if nothing is there. A back end may answer this
    /// in fewer round trips than `stat` and then `list`.
    async fn list_or_stat(&self, key: &Key) -> Result<Listed> {
        let meta = self.stat(key).await?;
        if meta.is_dir() {
            Ok(Listed::Dir(self.list(key).await?))
        } else {
            Ok(Listed::File(meta))
        }
    }

    /// The content of a file from byte `offset` on. `IsDirectory` for a directory.
    async fn read(&self, key: &NamedKey, offset: u64) -> Result<ByteStream>;

    /// Starts an upload to `key` (see the module docs for the checks).
    async fn write(&self, key: &NamedKey, options: WriteOptions) -> Result<Box<dyn UploadSink>>;

    /// Deletes a file. `IsDirectory` for a directory.
    async fn delete(&self, key: &NamedKey) -> Result<()>;

    /// Renames a file or a whole directory within this back end, replacing an
    /// existing file at `to`. The parent of `to` must exist.
    async fn rename(&self, from: &NamedKey, to: &NamedKey) -> Result<()>;

    /// Creates a directory. `AlreadyExists` if the name is taken by a file or a
    /// directory; `NotFound` if the parent is missing.
    async fn mkdir(&self, key: &NamedKey) -> Result<()>;

    /// Removes an empty directory; `NotEmpty` otherwise.
    async fn rmdir(&self, key: &NamedKey) -> Result<()>;

    /// Removes a directory and everything under it.
    async fn remove_all(&self, key: &NamedKey) -> Result<()>;

    /// Stores client-set times on an existing file.
    async fn set_times(&self, key: &NamedKey, times: Times) -> Result<()>;

    /// Free bytes available for uploads under `key`, when the back end can tell.
    async fn available(&self, _key: &Key) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Checks that the back end is reachable and usable (start-up, readiness).
    async fn check(&self) -> std::result::Result<(), Unusable>;

    /// Where `key` is stored, in the store's terms.
    fn location(&self, key: &Key) -> StoreRef;

    /// A checksum of the whole file kept with it (or remembered since this
    /// process wrote it), so it need not be read back; None: not known.
    async fn stored_digest(
        &self,
        _key: &NamedKey,
        _algorithm: crate::digest::Algorithm,
    ) -> Result<Option<String>> {
        Ok(None)
    }

    /// Steps of `s3ftp check` only this back end has, run while the probe
    /// object `probe` exists (see `selfcheck`).
    async fn extra_checks(&self, _probe: &NamedKey) -> Vec<selfcheck::CheckStep> {
        Vec::new()
    }
}

/// Why a back end cannot be used at all (start-up, `/readyz`, `s3ftp
/// check`): one line a person can act on, saying what is wrong and what to
/// try. The full detail of the failure goes to the debug log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Unusable {
    pub message: String,
    /// Waiting will not help (no or wrong credentials, access denied, wrong
    /// region): start-up stops at once instead of retrying.
    pub lasting: bool,
}

impl Unusable {
    pub fn lasting(message: impl Into<String>) -> Unusable {
        Unusable {
            message: message.into(),
            lasting: true,
        }
    }

    pub fn passing(message: impl Into<String>) -> Unusable {
        Unusable {
            message: message.into(),
            lasting: false,
        }
    }
}

/// Settings shared by every back end a server opens.
#[derive(Clone, Debug)]
pub struct StorageSettings {
    /// Told about every request to the store (metrics).
    pub observer: Arc<dyn StorageObserver>,
    /// What only S3 mounts use: uploads, the directory cache, sweeping.
    pub s3: s3::S3Settings,
}

impl StorageSettings {
    /// Settings that report to nobody, with S3's defaults around `s3`
    /// (e.g. just its [`s3::upload::UploadSettings`]).
    pub fn new(s3: impl Into<s3::S3Settings>) -> Self {
        StorageSettings {
            observer: Arc::new(NoObserver),
            s3: s3.into(),
        }
    }
}

/// How one request to a store ended, as far as monitoring cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok,
    /// The object or bucket does not exist: often expected (a new upload's
    /// existence check), so it is not counted as an error.
    NotFound,
    Error,
}

/// A step in the life of a multipart upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultipartEvent {
    Started,
    Completed,
    /// Aborted by this process (at once or after retries).
    Aborted,
    /// An abort attempt failed; another will be made later.
    AbortRetried,
    /// Every abort attempt failed: the upload is left to the sweeper.
    AbortAbandoned,
    /// A stale upload (of a dead process, or abandoned) aborted by the sweeper.
    Swept,
    /// CompleteMultipartUpload got no clear answer, and the object found
    /// under the key was this upload's: committed.
    CompleteConfirmed,
    /// CompleteMultipartUpload got no clear answer, and the object found
    /// under the key was not this upload's: not committed.
    CompleteNotStored,
}

/// Receives what back ends report about their requests. Storage code calls
/// it and knows nothing about how the figures are kept (the metrics module
/// implements it); it must be cheap and must not block.
pub trait StorageObserver: Send + Sync + Debug {
    /// One request to the store (e.g. `("s3", "PutObject")`), retries included.
    fn request(
        &self,
        backend: &'static str,
        operation: &str,
        outcome: RequestOutcome,
        elapsed: std::time::Duration,
    );
    fn multipart(&self, event: MultipartEvent);
}

/// The observer of back ends opened outside a server (tests, tools).
#[derive(Debug)]
pub struct NoObserver;

impl StorageObserver for NoObserver {
    fn request(&self, _: &'static str, _: &str, _: RequestOutcome, _: std::time::Duration) {}
    fn multipart(&self, _: MultipartEvent) {}
}

/// Why a mount could not be opened. A bad URI is the operator's mistake in
/// `S3FTP_MOUNTS`, not a file name a client sent, so it is no
/// [`StorageError::InvalidName`]; the store's own refusals stay storage errors.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}: fs:// needs a folder, e.g. fs://./data")]
    NoFolder(String),
    /// The URI is shown redacted.
    #[error("{0}: unknown scheme (use fs://PATH, memory:// or s3://BUCKET)")]
    UnknownScheme(String),
    #[error(transparent)]
    S3Uri(#[from] s3::UriError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Opens the back end a mount URI names: `fs://PATH` (a local folder, relative
/// like `fs://./data` or absolute like `fs:///data`), `memory://`, or
/// `s3://BUCKET/PREFIX?endpoint=...&region=...&path_style=true`.
pub async fn open(
    uri: &str,
    settings: &StorageSettings,
) -> std::result::Result<Arc<dyn Backend>, OpenError> {
    if let Some(path) = uri.strip_prefix("fs://") {
        if path.is_empty() {
            return Err(OpenError::NoFolder(uri.to_string()));
        }
        Ok(Arc::new(opendal::OpendalBackend::local(Path::new(path))?))
    } else if uri == "memory://" {
        Ok(Arc::new(opendal::OpendalBackend::memory()))
    } else if uri.starts_with("s3://") {
        let parsed = s3::S3Uri::parse(uri)?;
        Ok(Arc::new(s3::S3Backend::open(&parsed, settings).await))
    } else {
        Err(OpenError::UnknownScheme(crate::secrets::redact(uri)))
    }
}
