//! The virtual file system one user sees: virtual paths (already normalised by
//! [`path`]) are placed under the user's home, located in the mount table and
//! turned into back-end keys. Permissions and key rules are enforced here, once,
//! for every back end.

pub mod mount;
pub mod path;

use std::sync::Arc;

use futures::{stream, StreamExt, TryStreamExt};

use crate::storage::{
    ByteStream, Entry, EntryPages, Metadata, Result, StorageError, Times, UploadSink, WriteOptions,
};
use mount::{Location, Mount, MountTable};

/// Longest key S3 accepts, in bytes; the same limit holds on every back end so
/// that a tree can move between them.
pub const MAX_KEY_BYTES: usize = 1024;

/// What a user may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub read_only: bool,
    /// Upload-only: new files may be stored, nothing may be read or listed.
    pub drop_box: bool,
    pub no_delete: bool,
    pub no_overwrite: bool,
    /// RNTO onto an existing file replaces it (S3FTP_RENAME_OVERWRITE).
    pub rename_overwrite: bool,
}

/// A user's view of the tree.
#[derive(Clone, Debug)]
pub struct Vfs {
    mounts: Arc<MountTable>,
    /// The user's root as a path in the whole tree (`/` or `/alice`).
    home: String,
    perms: Permissions,
}

impl Vfs {
    /// Fails if `home` is not a normal absolute path ([`path::check_home`]):
    /// never falls back to `/`, which would show the user the whole tree.
    pub fn new(
        mounts: Arc<MountTable>,
        home: &str,
        perms: Permissions,
    ) -> std::result::Result<Self, path::PathError> {
        let home = path::check_home(home)?;
        Ok(Vfs {
            mounts,
            home,
            perms,
        })
    }

    pub fn permissions(&self) -> Permissions {
        self.perms
    }

    /// Creates the user's home directory (and its parents) if it is missing.
    pub async fn ensure_home(&self) -> Result<()> {
        let mut current = String::new();
        for segment in self.home.split('/').filter(|s| !s.is_empty()) {
            current.push('/');
            current.push_str(segment);
            if let Location::Mounted { mount, key } = self.mounts.locate(&current) {
                if key.is_empty() {
                    continue;
                }
                match mount.backend.mkdir(&key).await {
                    Ok(()) | Err(StorageError::AlreadyExists) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn full_path(&self, path: &str) -> String {
        if self.home == "/" {
            path.to_string()
        } else if path == "/" {
            self.home.clone()
        } else {
            format!("{}{}", self.home, path)
        }
    }

    /// The mount and key of a user path, with the key rules checked.
    fn locate(&self, path: &str) -> Result<Located<'_>> {
        let full = self.full_path(path);
        match self.mounts.locate(&full) {
            Location::Mounted { mount, key } => {
                check_key(&key)?;
                Ok(Located::Mounted {
                    mount,
                    key,
                    is_mount_point: self.mounts.is_mount_point(&full),
                    full,
                })
            }
            Location::Virtual => Ok(Located::Virtual { full }),
            Location::Missing => Err(StorageError::NotFound),
        }
    }

    /// Where writes go: in a back end, not on a mount point, and allowed.
    fn locate_for_write(&self, path: &str) -> Result<(&Mount, String)> {
        if self.perms.read_only {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted {
                mount,
                key,
                is_mount_point: false,
                ..
            } => Ok((mount, key)),
            _ => Err(StorageError::PermissionDenied),
        }
    }

    /// Refuses replacing an existing file when the user may not.
    async fn check_not_replacing(&self, mount: &Mount, key: &str) -> Result<()> {
        let p = self.perms;
        if !(p.no_overwrite || p.drop_box || p.no_delete) {
            return Ok(());
        }
        match mount.backend.stat(key).await {
            Ok(meta) if !meta.is_dir() => Err(StorageError::PermissionDenied),
            Ok(_) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn check_may_delete(&self) -> Result<()> {
        if self.perms.no_delete || self.perms.drop_box {
            return Err(StorageError::PermissionDenied);
        }
        Ok(())
    }

    pub async fn stat(&self, path: &str) -> Result<Metadata> {
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => mount.backend.stat(&key).await,
            Located::Virtual { .. } => Ok(Metadata::dir()),
        }
    }

    /// The children of a directory, with mount points inside it merged in.
    /// A drop-box user sees none (the directory must still exist).
    pub async fn list(&self, path: &str) -> Result<EntryPages> {
        if self.perms.drop_box {
            if !self.stat(path).await?.is_dir() {
                return Err(StorageError::NotDirectory);
            }
            return Ok(stream::empty().boxed());
        }
        let located = self.locate(path)?;
        let full = match &located {
            Located::Mounted { full, .. } | Located::Virtual { full } => full.clone(),
        };
        let mount_names: Vec<String> = self
            .mounts
            .mounts_below(&full)
            .map(str::to_string)
            .collect();
        let pages: EntryPages = match located {
            Located::Mounted { mount, key, .. } => mount.backend.list(&key).await?,
            Located::Virtual { .. } => stream::empty().boxed(),
        };
        if mount_names.is_empty() {
            return Ok(pages);
        }
        // Names that a mount point shadows are dropped from the back end's pages,
        // and the mount points are listed once, as directories, at the end.
        let shadowed = mount_names.clone();
        let filtered = pages.map_ok(move |page| {
            page.into_iter()
                .filter(|e| !shadowed.contains(&e.name))
                .collect::<Vec<_>>()
        });
        let mounts_page = mount_names
            .into_iter()
            .map(|name| Entry {
                name,
                meta: Metadata::dir(),
            })
            .collect::<Vec<_>>();
        Ok(filtered.chain(stream::iter([Ok(mounts_page)])).boxed())
    }

    pub async fn read(&self, path: &str, offset: u64) -> Result<ByteStream> {
        if self.perms.drop_box {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => mount.backend.read(&key, offset).await,
            Located::Virtual { .. } => Err(StorageError::IsDirectory),
        }
    }

    pub async fn write(&self, path: &str, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        let (mount, key) = self.locate_for_write(path)?;
        self.check_not_replacing(mount, &key).await?;
        mount.backend.write(&key, options).await
    }

    /// Starts an upload the client sends to the temporary name `temp` but
    /// will rename to `target` (upload-then-rename, S3FTP_TEMP_SUFFIXES): the
    /// bytes go straight to `target`'s key, so the rename copies nothing.
    /// Only when both are on one mount, neither exists and the user may
    /// rename; otherwise None, and the caller uploads to `temp` as usual.
    /// The caller must either commit the sink once the client renames, or
    /// [`Vfs::settle_staged`] it.
    pub async fn write_staged(
        &self,
        temp: &str,
        target: &str,
        options: WriteOptions,
    ) -> Option<Box<dyn UploadSink>> {
        if self.perms.drop_box || options.keep_prefix > 0 {
            return None;
        }
        let (temp_mount, temp_key) = self.locate_for_write(temp).ok()?;
        let (mount, key) = self.locate_for_write(target).ok()?;
        if !std::ptr::eq(temp_mount, mount) {
            return None;
        }
        let (temp_meta, target_meta) =
            futures::join!(mount.backend.stat(&temp_key), mount.backend.stat(&key));
        if !matches!(
            (temp_meta, target_meta),
            (Err(StorageError::NotFound), Err(StorageError::NotFound))
        ) {
            return None;
        }
        mount.backend.write(&key, options).await.ok()
    }

    /// Makes a staged upload (see [`Vfs::write_staged`]) appear under the
    /// temporary name the client used, when it did not rename it to `target`
    /// straight away: commits to `target`, then renames that to `temp`.
    pub async fn settle_staged(
        &self,
        temp: &str,
        target: &str,
        sink: Box<dyn UploadSink>,
    ) -> Result<()> {
        sink.commit().await?;
        let (mount, from) = self.locate_for_write(target)?;
        let (_, to) = self.locate_for_write(temp)?;
        mount.backend.rename(&from, &to).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.check_may_delete()?;
        let (mount, key) = self.locate_for_write(path)?;
        mount.backend.delete(&key).await
    }

    pub async fn mkdir(&self, path: &str) -> Result<()> {
        if self.perms.read_only {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted {
                is_mount_point: false,
                mount,
                key,
                ..
            } => mount.backend.mkdir(&key).await,
            _ => Err(StorageError::AlreadyExists),
        }
    }

    pub async fn rmdir(&self, path: &str) -> Result<()> {
        self.check_may_delete()?;
        let (mount, key) = self.locate_for_write(path)?;
        mount.backend.rmdir(&key).await
    }

    pub async fn remove_all(&self, path: &str) -> Result<()> {
        self.check_may_delete()?;
        let (mount, key) = self.locate_for_write(path)?;
        if !mount.backend.stat(&key).await?.is_dir() {
            return Err(StorageError::NotDirectory);
        }
        mount.backend.remove_all(&key).await
    }

    /// Renames within one back end, or copies a file across back ends and then
    /// deletes the source (a directory cannot move between back ends).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.perms.drop_box {
            return Err(StorageError::PermissionDenied);
        }
        let (from_mount, from_key) = self.locate_for_write(from)?;
        let (to_mount, to_key) = self.locate_for_write(to)?;
        self.check_not_replacing(to_mount, &to_key).await?;
        if !self.perms.rename_overwrite {
            match to_mount.backend.stat(&to_key).await {
                Ok(_) => return Err(StorageError::AlreadyExists),
                Err(StorageError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        if std::ptr::eq(from_mount, to_mount) {
            return from_mount.backend.rename(&from_key, &to_key).await;
        }
        let meta = from_mount.backend.stat(&from_key).await?;
        if meta.is_dir() {
            return Err(StorageError::Unsupported(
                "moving a directory between mounts",
            ));
        }
        let mut source = from_mount.backend.read(&from_key, 0).await?;
        let mut sink = to_mount
            .backend
            .write(
                &to_key,
                WriteOptions {
                    keep_prefix: 0,
                    modified: meta.modified,
                },
            )
            .await?;
        while let Some(chunk) = source.next().await {
            let written = match chunk {
                Ok(bytes) => sink.write(bytes).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                let _ = sink.abort().await;
                return Err(e);
            }
        }
        sink.commit().await?;
        from_mount.backend.delete(&from_key).await
    }

    pub async fn set_times(&self, path: &str, times: Times) -> Result<()> {
        let (mount, key) = self.locate_for_write(path)?;
        mount.backend.set_times(&key, times).await
    }

    pub async fn available(&self, path: &str) -> Result<Option<u64>> {
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => mount.backend.available(&key).await,
            Located::Virtual { .. } => Ok(None),
        }
    }

    /// Total size of the files under a directory, walked depth-first. Memory
    /// grows with the depth of the tree, not its breadth.
    pub async fn dir_size(&self, path: &str) -> Result<u64> {
        let mut total = 0u64;
        let mut pending = vec![path.to_string()];
        while let Some(dir) = pending.pop() {
            let mut pages = self.list(&dir).await?;
            while let Some(page) = pages.try_next().await? {
                for entry in page {
                    if entry.meta.is_dir() {
                        pending.push(path::child(&dir, &entry.name));
                    } else {
                        total = total.saturating_add(entry.meta.size);
                    }
                }
            }
        }
        Ok(total)
    }
}

enum Located<'a> {
    Mounted {
        mount: &'a Mount,
        key: String,
        is_mount_point: bool,
        full: String,
    },
    Virtual {
        full: String,
    },
}

/// Key rules shared by all back ends: at most [`MAX_KEY_BYTES`] bytes.
/// (Virtual paths already have no empty, `.` or `..` segments and no NUL.)
fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::InvalidName(format!(
            "path longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}
