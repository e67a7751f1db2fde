//! The local folder (`fs://`) on OpenDAL's fs service: what only a real folder
//! has. Uploads stage in this process's own directory under [`PARTIAL_DIR`]
//! (`staging.rs`; same filesystem, so commit is an atomic rename), what dead
//! processes left there is removed at start, symbolic links may not lead out
//! of the folder, and times are the files' own.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ::opendal::services::Fs;
use ::opendal::Operator;
use async_trait::async_trait;

use super::error::{io_error, join_error};
use super::{Flavour, OpendalBackend, PARTIAL_DIR};
use crate::digest::{checked_value, Algorithm, Digests};
use crate::storage::staging::{self, StagingDir, Sweep};
use crate::storage::{Result, StorageError, Times, Unusable};

/// The folder's own state; `root` is canonical.
#[derive(Debug)]
struct Folder {
    root: PathBuf,
    /// Where this process stages uploads; removed on drop.
    _staging: StagingDir,
    /// What the start-up sweep removed.
    swept: Sweep,
}

impl OpendalBackend {
    /// A back end on the local folder `root`, created if missing. Staging
    /// files that dead processes left in it are removed first.
    pub fn local(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io_error)?;
        let root = root.canonicalize().map_err(io_error)?;
        let area = root.join(PARTIAL_DIR);
        let root_str = utf8(&root)?;
        let staging = StagingDir::claim(&area).map_err(io_error)?;
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
        let op = Operator::new(builder)?;
        let folder = Folder {
            root,
            _staging: staging,
            swept,
        };
        Ok(OpendalBackend::new(op, folder))
    }
}

impl Folder {
    fn real_path(&self, key: &str) -> PathBuf {
        key.split('/').fold(self.root.clone(), |p, seg| p.join(seg))
    }
}

#[async_trait]
impl Flavour for Folder {
    fn location(&self, key: &str) -> crate::storage::StoreRef {
        crate::storage::StoreRef::Folder {
            path: self.root.join(key).to_string_lossy().into_owned(),
        }
    }

    /// A symbolic link inside the folder may not lead outside it (someone
    /// with shell access could otherwise expose /etc to FTP users). The stat
    /// per segment blocks, so it runs on the blocking pool.
    async fn confine(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Ok(());
        }
        let (root, key) = (self.root.clone(), key.to_string());
        tokio::task::spawn_blocking(move || confine(&root, &key))
            .await
            .map_err(|e| join_error("symlink check", e))?
    }

    async fn rename(&self, op: &Operator, from: &str, to: &str, dir: bool) -> Result<()> {
        if dir {
            // OpenDAL's fs service renames files only.
            tokio::fs::rename(self.real_path(from), self.real_path(to))
                .await
                .map_err(io_error)
        } else {
            Ok(op.rename(from, to).await?)
        }
    }

    async fn committed(
        &self,
        key: &str,
        modified: Option<SystemTime>,
        digests: &Digests,
    ) -> Result<()> {
        if let Some(t) = modified {
            set_file_mtime(self.real_path(key), t).await?;
        }
        if !digests.is_empty() {
            let (path, digests) = (self.real_path(key), digests.clone());
            tokio::task::spawn_blocking(move || keep_digests(&path, &digests))
                .await
                .map_err(|e| join_error("keep_digests", e))?;
        }
        Ok(())
    }

    async fn stored_digest(&self, key: &str, algorithm: Algorithm) -> Result<Option<String>> {
        let path = self.real_path(key);
        tokio::task::spawn_blocking(move || kept_digest(&path, algorithm))
            .await
            .map_err(|e| join_error("kept_digest", e))
    }

    async fn set_times(&self, key: &str, times: Times) -> Result<()> {
        if times.created.is_some() {
            return Err(StorageError::Unsupported("creation time"));
        }
        match times.modified {
            Some(t) => set_file_mtime(self.real_path(key), t).await,
            None => Ok(()),
        }
    }

    async fn check(&self) -> std::result::Result<(), Unusable> {
        let root = self.root.display();
        match tokio::fs::metadata(&self.root).await {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(Unusable::lasting(format!(
                "{root} is not a folder: point fs:// at a folder"
            ))),
            Err(e) => Err(Unusable::passing(format!(
                "folder {root} cannot be used ({e}): check that the volume is mounted and readable"
            ))),
        }
    }

    fn swept(&self) -> Option<Sweep> {
        Some(self.swept)
    }
}

/// Follows `key` under `root` segment by segment; a symbolic link whose
/// target is outside `root` is `PermissionDenied`. Blocking.
fn confine(root: &Path, key: &str) -> Result<()> {
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

/// The extended attribute that keeps a file's checksums with it, with the
/// size and modification time they are valid for: another program that
/// changes the file changes one of those, and the values are then ignored.
const DIGESTS_XATTR: &str = "user.s3ftp.digests";

/// `size=N;mtime=NANOS;crc32=...;sha256=...` of the file's current state.
fn validator(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("size={};mtime={mtime}", meta.len())
}

/// Blocking. A file system without user extended attributes keeps none:
/// HASH then reads the file.
fn keep_digests(path: &Path, digests: &Digests) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mut value = validator(&meta);
    for (algorithm, hex) in digests.iter() {
        value.push_str(&format!(";{}={hex}", algorithm.key()));
    }
    if let Err(e) = xattr::set(path, DIGESTS_XATTR, value.as_bytes()) {
        tracing::debug!(path = %path.display(), error = %e, "checksums not kept (no extended attributes)");
    }
}

/// Blocking. The kept value of `algorithm`, if the file is as it was.
fn kept_digest(path: &Path, algorithm: Algorithm) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let raw = xattr::get(path, DIGESTS_XATTR).ok()??;
    let text = String::from_utf8(raw).ok()?;
    let expected = validator(&meta);
    let rest = text.strip_prefix(&expected)?.strip_prefix(';')?;
    rest.split(';').find_map(|pair| {
        let (name, hex) = pair.split_once('=')?;
        (name == algorithm.key())
            .then(|| checked_value(algorithm, hex))
            .flatten()
    })
}

async fn set_file_mtime(path: PathBuf, time: SystemTime) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.set_modified(time)
    })
    .await
    .map_err(|e| join_error("set_modified", e))?
    .map_err(io_error)
}

fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        StorageError::InvalidName(format!("{}: folder name is not UTF-8", path.display()))
    })
}
