//! Where a server under test keeps its files, and what it holds there, read
//! directly from the folder or the bucket (never through the server under
//! test). One type for both harnesses: the in-process `TestServer`
//! (tests/common/mod.rs) and the binary as a child process (`Server`,
//! tests/common/clients.rs).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::s3::S3Server;
use super::S3_PREFIX;

/// Where the local folder stages uploads (hidden from clients).
pub const STAGING: &str = ".s3ftp-partial";

/// Where a server's files are.
#[derive(Clone)]
pub enum Store {
    /// In the server's memory: nothing to read it from but the server.
    Memory,
    /// A temporary folder, removed when the last clone is dropped.
    Folder(Arc<tempfile::TempDir>),
    /// A fresh bucket on the shared S3 server, mounted under the key prefix
    /// [`S3_PREFIX`] (so the prefix handling is exercised too).
    S3 { bucket: String },
}

/// The object key of a path of the FTP tree (`a/b.txt` or `/a/b.txt`).
pub fn s3_key(path: &str) -> String {
    format!("{S3_PREFIX}/{}", path.trim_start_matches('/'))
}

impl Store {
    /// A fresh temporary folder.
    pub fn folder() -> Store {
        Store::Folder(Arc::new(tempfile::tempdir().expect("tempdir")))
    }

    /// A fresh bucket on the shared S3 server.
    pub async fn s3() -> Store {
        Store::S3 {
            bucket: S3Server::shared().fresh_bucket().await,
        }
    }

    /// The `S3FTP_MOUNTS` value that mounts this store at `/`.
    pub fn mount(&self) -> String {
        match self {
            Store::Memory => "/=memory://".to_string(),
            Store::Folder(dir) => format!("/=fs://{}", dir.path().display()),
            Store::S3 { bucket } => {
                format!("/={}", S3Server::shared().mount_uri(bucket, S3_PREFIX))
            }
        }
    }

    /// The folder, for a local-folder store.
    pub fn folder_path(&self) -> Option<&Path> {
        match self {
            Store::Folder(dir) => Some(dir.path()),
            Store::Memory | Store::S3 { .. } => None,
        }
    }

    /// The bucket, for an S3 store.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            Store::S3 { bucket } => Some(bucket),
            Store::Memory | Store::Folder(_) => None,
        }
    }

    /// Names the store in messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Memory => "the memory store".to_string(),
            Store::Folder(dir) => format!("the folder {}", dir.path().display()),
            Store::S3 { bucket } => format!("bucket {bucket} (prefix {S3_PREFIX}/)"),
        }
    }

    fn no_direct_view(&self) -> ! {
        panic!("{} cannot be read directly", self.describe())
    }

    /// The bytes of the file at `path` of the FTP tree; None when there is
    /// no such file (a directory is not a file).
    pub async fn read(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            Store::Memory => self.no_direct_view(),
            Store::Folder(dir) => {
                let on_disk = dir.path().join(path.trim_start_matches('/'));
                if on_disk.is_dir() {
                    return None;
                }
                match fs::read(&on_disk) {
                    Ok(data) => Some(data),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => panic!("{} not readable: {e}", on_disk.display()),
                }
            }
            Store::S3 { bucket } => S3Server::shared().get_object(bucket, &s3_key(path)).await,
        }
    }

    /// Whether `path` is a directory (S3: a marker or any key under its
    /// prefix).
    pub async fn is_dir(&self, path: &str) -> bool {
        match self {
            Store::Memory => self.no_direct_view(),
            Store::Folder(dir) => dir.path().join(path.trim_start_matches('/')).is_dir(),
            Store::S3 { bucket } => {
                let prefix = format!("{}/", s3_key(path).trim_end_matches('/'));
                !S3Server::shared()
                    .list_keys(bucket, &prefix)
                    .await
                    .is_empty()
            }
        }
    }

    /// The names at the root, unsorted (the folder's staging area left
    /// out); on S3 every key under the mount's prefix, relative to it.
    pub async fn root_names(&self) -> Vec<String> {
        match self {
            Store::Memory => self.no_direct_view(),
            Store::Folder(dir) => fs::read_dir(dir.path())
                .expect("read the folder")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != STAGING)
                .collect(),
            Store::S3 { bucket } => {
                let prefix = format!("{S3_PREFIX}/");
                S3Server::shared()
                    .list_keys(bucket, &prefix)
                    .await
                    .into_iter()
                    .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                    .collect()
            }
        }
    }

    /// Every file (`a/b.txt`) and directory (`a/`) of the store, sorted. On
    /// S3 directories are markers and the parents of keys; every key must lie
    /// under the mount's prefix. The local folder's staging area is left out
    /// (see [`Store::partials`]).
    pub async fn tree(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        match self {
            Store::Memory => self.no_direct_view(),
            Store::Folder(dir) => walk(dir.path(), "", &mut out),
            Store::S3 { bucket } => {
                let prefix = format!("{S3_PREFIX}/");
                for key in S3Server::shared().list_keys(bucket, "").await {
                    let rel = key.strip_prefix(&prefix).unwrap_or_else(|| {
                        panic!("key {key:?} in bucket {bucket} lies outside the mount prefix")
                    });
                    let mut parent = String::new();
                    let parts: Vec<&str> = rel.split('/').collect();
                    for part in &parts[..parts.len() - 1] {
                        parent.push_str(part);
                        parent.push('/');
                        out.insert(parent.clone());
                    }
                    if !rel.is_empty() {
                        out.insert(rel.to_string());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// What is half-written: the local folder's staging files
    /// ([`staging_files`]), the bucket's multipart uploads in progress;
    /// nothing on memory.
    pub async fn partials(&self) -> Vec<String> {
        match self {
            Store::Memory => Vec::new(),
            Store::Folder(dir) => staging_files(dir.path()),
            Store::S3 { bucket } => S3Server::shared().list_multipart_uploads(bucket).await,
        }
    }
}

/// The files and directories under `dir`, the staging area at the top left
/// out.
fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name == STAGING {
            continue;
        }
        let path = format!("{rel}{name}");
        if entry.file_type().expect("file type").is_dir() {
            out.insert(format!("{path}/"));
            walk(&entry.path(), &format!("{path}/"), out);
        } else {
            out.insert(path);
        }
    }
}

/// The staging files under a local folder's staging area (`.s3ftp-partial`),
/// at any depth, as paths relative to it: uploads in flight or left behind.
/// Each server process's lock file and its own directory are how it holds its
/// place there, not uploads, so they are not counted.
pub fn staging_files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, top: bool, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir {
                walk(&entry.path(), &format!("{rel}{name}/"), false, out);
            } else if !(top && name.ends_with(".lock")) {
                out.push(format!("{rel}{name}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join(STAGING), "", true, &mut out);
    out.sort();
    out
}
