//! The S3 back end (aws-sdk-s3): any S3-compatible store. Directories are
//! common prefixes plus zero-byte `dir/` markers; listings stream
//! ListObjectsV2 pages; uploads are streamed multipart uploads (see `upload`);
//! renames are server-side copies then deletes; client-set times live in the
//! `mtime` / `btime` user metadata (seconds since the epoch, as rclone writes
//! them), set by a copy of the object onto itself.
//!
//! One file per operation family: `uri` (mount URIs), `client` (the SDK
//! client and bucket), `backend` (the trait, a list of short methods),
//! `probe` (file, directory or nothing), `lister`, `reader`, `writer` and
//! `upload` (with `parts`), `tree` (walks, copies, batch deletes), `times`; around them
//! `error`, `observe`, `dirs`, `settle`, `sweep` and `urlkeys`.

mod backend;
mod client;
mod diagnose;
mod digests;
mod dirs;
mod error;
mod identity;
mod lister;
mod observe;
mod parts;
mod probe;
mod reader;
mod selfcheck;
mod settle;
mod sweep;
mod times;
mod tree;
pub mod upload;
mod uri;
mod urlkeys;
mod writer;

use std::sync::Arc;
use std::time::Duration;

pub use uri::{Checksum, S3Uri, UriError};

use crate::storage::{KeyRules, StorageSettings, MAX_KEY_BYTES};
use client::S3Target;
pub use client::SdkClients;
use dirs::DirCache;
use times::KnownTimes;
use upload::UploadSettings;

/// What only S3 mounts use; the generic [`StorageSettings`] carries it.
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// Part sizes, concurrency and the global memory budget of uploads.
    pub upload: UploadSettings,
    /// How long what was seen of directories is trusted (S3FTP_DIR_CACHE_SECS).
    pub dir_cache: Duration,
    /// Age after which another process's multipart upload under the mount's
    /// prefix counts as abandoned and is aborted (S3FTP_UPLOAD_SWEEP_AGE);
    /// zero: no sweeping.
    pub upload_sweep_age: Duration,
    /// SDK clients shared by mounts with the same endpoint and credentials.
    pub clients: SdkClients,
}

impl From<UploadSettings> for S3Settings {
    /// These uploads, the default directory cache and no sweeping.
    fn from(upload: UploadSettings) -> Self {
        S3Settings {
            upload,
            dir_cache: Duration::from_secs(10),
            upload_sweep_age: Duration::ZERO,
            clients: Default::default(),
        }
    }
}

pub struct S3Backend {
    target: Arc<S3Target>,
    prefix: String,
    page_size: i32,
    /// The longest key is shorter by the prefix (and its slash) and by the
    /// slash a directory marker adds.
    key_rules: KeyRules,
    description: String,
    times: Arc<KnownTimes>,
    /// Directories recently seen (see `dirs`).
    dirs: Arc<DirCache>,
    /// The sweeper of stale multipart uploads under the prefix, stopped
    /// with the back end.
    _sweeper: Option<sweep::Sweeper>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl S3Backend {
    pub async fn open(uri: &S3Uri, settings: &StorageSettings) -> S3Backend {
        let s3 = &settings.s3;
        let target = Arc::new(
            S3Target::connect(
                uri,
                s3.upload.clone(),
                settings.observer.clone(),
                &s3.clients,
            )
            .await,
        );
        S3Backend {
            _sweeper: sweep::spawn(target.clone(), &uri.prefix, s3.upload_sweep_age),
            target,
            prefix: uri.prefix.clone(),
            page_size: uri.page_size,
            key_rules: KeyRules {
                max_bytes: MAX_KEY_BYTES
                    .saturating_sub(1)
                    .saturating_sub(match uri.prefix.len() {
                        0 => 0,
                        n => n + 1,
                    }),
                ..KeyRules::default()
            },
            times: Arc::new(KnownTimes::default()),
            dirs: Arc::new(DirCache::new(s3.dir_cache)),
            description: format!(
                "S3Backend(s3://{}/{} at {})",
                uri.bucket,
                uri.prefix,
                uri.endpoint.as_deref().unwrap_or("AWS")
            ),
        }
    }

    /// The object key of a back-end key.
    fn full(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        }
    }

    /// The listing prefix of a directory: its object key and a slash.
    fn dir_prefix(&self, key: &str) -> String {
        let full = self.full(key);
        if full.is_empty() {
            full
        } else {
            format!("{full}/")
        }
    }
}
