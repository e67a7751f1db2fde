//! The virtual file system one user sees: virtual paths (already normalised by
//! [`path`]) are placed under the user's home, located in the mount table and
//! turned into back-end keys. Permissions and key rules are enforced here, once,
//! for every back end.

mod digests;
pub mod mount;
pub mod path;

use std::sync::Arc;

use futures::{stream, StreamExt, TryStreamExt};

use crate::storage::{
    ByteStream, Entry, EntryPages, Key, Listed, Metadata, NamedKey, Result, StorageError, Times,
    UploadSink, WriteOptions,
};
use mount::{Location, Mount, MountTable};

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
            if let Location::Mounted { mount, key } = self.mounts.locate(&current)? {
                let Some(key) = key.into_named() else {
                    continue;
                };
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

    /// A user path in the whole tree (the home prefixed).
    pub fn tree_path(&self, path: &str) -> String {
        self.full_path(path)
    }

    /// The mount point and store location of a user path, when it is in a
    /// mount (for events).
    pub fn store_of(&self, path: &str) -> Option<(String, crate::storage::StoreRef)> {
        match self.locate(path).ok()? {
            Located::Mounted { mount, key, .. } => {
                Some((mount.point.clone(), mount.backend.location(&key)))
            }
            Located::Virtual { .. } => None,
        }
    }

    /// The mount and key of a user path (the key rules checked on the way).
    fn locate(&self, path: &str) -> Result<Located<'_>> {
        let full = self.full_path(path);
        match self.mounts.locate(&full)? {
            Location::Mounted { mount, key } => Ok(Located::Mounted { mount, key, full }),
            Location::Virtual => Ok(Located::Virtual { full }),
            Location::Missing => Err(StorageError::NotFound),
        }
    }

    /// Where writes go: in a back end, not on a mount point (the root of
    /// its back end), and allowed.
    fn locate_for_write(&self, path: &str) -> Result<(&Mount, NamedKey)> {
        if self.perms.read_only {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => key
                .into_named()
                .map(|key| (mount, key))
                .ok_or(StorageError::PermissionDenied),
            Located::Virtual { .. } => Err(StorageError::PermissionDenied),
        }
    }

    /// Refuses replacing an existing file when the user may not.
    async fn check_not_replacing(&self, mount: &Mount, key: &Key) -> Result<()> {
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
        let full = located.full().to_string();
        let pages: EntryPages = match located {
            Located::Mounted { mount, key, .. } => mount.backend.list(&key).await?,
            Located::Virtual { .. } => stream::empty().boxed(),
        };
        Ok(self.with_mount_points(&full, pages))
    }

    /// What a listing of `path` shows: a directory's pages (as [`Vfs::list`]
    /// gives them) or a file's metadata, asked of the back end at once.
    pub async fn list_or_stat(&self, path: &str) -> Result<Listed> {
        if self.perms.drop_box {
            let meta = self.stat(path).await?;
            return Ok(if meta.is_dir() {
                Listed::Dir(stream::empty().boxed())
            } else {
                Listed::File(meta)
            });
        }
        let located = self.locate(path)?;
        let full = located.full().to_string();
        let pages: EntryPages = match located {
            Located::Mounted { mount, key, .. } => match mount.backend.list_or_stat(&key).await? {
                Listed::Dir(pages) => pages,
                file @ Listed::File(_) => return Ok(file),
            },
            Located::Virtual { .. } => stream::empty().boxed(),
        };
        Ok(Listed::Dir(self.with_mount_points(&full, pages)))
    }

    /// A directory's pages with the mount points inside it merged in.
    fn with_mount_points(&self, full: &str, pages: EntryPages) -> EntryPages {
        let mount_names: Vec<String> = self.mounts.mounts_below(full).map(str::to_string).collect();
        if mount_names.is_empty() {
            return pages;
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
        filtered.chain(stream::iter([Ok(mounts_page)])).boxed()
    }

    pub async fn read(&self, path: &str, offset: u64) -> Result<ByteStream> {
        if self.perms.drop_box {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => match key.into_named() {
                Some(key) => mount.backend.read(&key, offset).await,
                None => Err(StorageError::IsDirectory),
            },
            Located::Virtual { .. } => Err(StorageError::IsDirectory),
        }
    }

    pub async fn write(&self, path: &str, options: WriteOptions) -> Result<Box<dyn UploadSink>> {
        let (mount, key) = self.locate_for_write(path)?;
        self.check_not_replacing(mount, &key).await?;
        let sink = mount.backend.write(&key, options).await?;
        Ok(self.forgetting(mount, &key, sink))
    }

    /// `sink`, which makes remembered checksums of `key` go when committed.
    fn forgetting(
        &self,
        mount: &Mount,
        key: &NamedKey,
        sink: Box<dyn UploadSink>,
    ) -> Box<dyn UploadSink> {
        Box::new(digests::ForgetOnCommit {
            inner: sink,
            mounts: self.mounts.clone(),
            id: (mount.point.clone(), key.to_string()),
        })
    }

    /// Forgets remembered checksums of `key` (and under it): this server
    /// changed it.
    fn changed(&self, mount: &Mount, key: &NamedKey) {
        self.mounts
            .digests
            .forget(&(mount.point.clone(), key.to_string()));
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
        let sink = mount.backend.write(&key, options).await.ok()?;
        Some(self.forgetting(mount, &key, sink))
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
        let renamed = mount.backend.rename(&from, &to).await;
        self.changed(mount, &from);
        self.changed(mount, &to);
        renamed
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.check_may_delete()?;
        let (mount, key) = self.locate_for_write(path)?;
        let deleted = mount.backend.delete(&key).await;
        self.changed(mount, &key);
        deleted
    }

    pub async fn mkdir(&self, path: &str) -> Result<()> {
        if self.perms.read_only {
            return Err(StorageError::PermissionDenied);
        }
        match self.locate(path)? {
            Located::Mounted { mount, key, .. } => match key.into_named() {
                Some(key) => mount.backend.mkdir(&key).await,
                None => Err(StorageError::AlreadyExists),
            },
            Located::Virtual { .. } => Err(StorageError::AlreadyExists),
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
        let removed = mount.backend.remove_all(&key).await;
        self.changed(mount, &key);
        removed
    }

    /// Renames within one back end, or copies a file across back ends and then
    /// deletes the source (a directory cannot move between back ends).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from_mount, from_key) = self.locate_for_write(from)?;
        let (to_mount, to_key) = self.locate_for_write(to)?;
        let moved = self.move_entry(from, to).await;
        self.changed(from_mount, &from_key);
        self.changed(to_mount, &to_key);
        moved
    }

    async fn move_entry(&self, from: &str, to: &str) -> Result<()> {
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

    /// The `algorithm` checksum of `len` bytes of the file at `path` from
    /// `start` (None: to its end), reading them once. A whole file's result
    /// is remembered while its size and time (`meta`, which the caller
    /// read) stay the same.
    pub async fn digest(
        &self,
        path: &str,
        meta: &Metadata,
        algorithm: crate::digest::Algorithm,
        start: u64,
        len: Option<u64>,
    ) -> Result<String> {
        if self.perms.drop_box {
            return Err(StorageError::PermissionDenied);
        }
        let Located::Mounted { mount, key, .. } = self.locate(path)? else {
            return Err(StorageError::IsDirectory);
        };
        let key = key.into_named().ok_or(StorageError::IsDirectory)?;
        let whole = start == 0 && len.is_none_or(|l| l >= meta.size);
        let id = (mount.point.clone(), key.to_string());
        let cache = &self.mounts.digests;
        if whole {
            if let Some(value) = cache.get(&id, meta.size, meta.modified, algorithm) {
                return Ok(value);
            }
            if let Some(value) = mount.backend.stored_digest(&key, algorithm).await? {
                cache.put(id, meta.size, meta.modified, algorithm, value.clone());
                return Ok(value);
            }
        }
        let mut hasher = crate::digest::Hasher::new(&[algorithm]);
        let mut left = len.unwrap_or(u64::MAX);
        let mut source = mount.backend.read(&key, start).await?;
        while left > 0 {
            let Some(chunk) = source.try_next().await? else {
                break;
            };
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            hasher.update(&chunk[..take]);
            left -= take as u64;
        }
        let value = hasher
            .finish()
            .get(algorithm)
            .map(str::to_string)
            .unwrap_or_default();
        if whole {
            cache.put(id, meta.size, meta.modified, algorithm, value.clone());
        }
        Ok(value)
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
        key: Key,
        full: String,
    },
    Virtual {
        full: String,
    },
}

impl Located<'_> {
    /// The path in the whole tree.
    fn full(&self) -> &str {
        match self {
            Located::Mounted { full, .. } | Located::Virtual { full } => full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::opendal::OpendalBackend;
    use crate::storage::{Backend, KeyRules};
    use mount::Mount;

    fn mounted(points: &[&str]) -> (Vfs, Vec<Arc<dyn Backend>>) {
        let backends: Vec<Arc<dyn Backend>> = points
            .iter()
            .map(|_| Arc::new(OpendalBackend::memory()) as Arc<dyn Backend>)
            .collect();
        let mounts = points
            .iter()
            .zip(&backends)
            .map(|(point, backend)| Mount {
                point: point.to_string(),
                uri: "memory://".into(),
                backend: backend.clone(),
            })
            .collect();
        let vfs = Vfs::new(
            Arc::new(MountTable::new(mounts)),
            "/",
            Permissions::default(),
        )
        .expect("vfs");
        (vfs, backends)
    }

    async fn root_names(backend: &dyn Backend) -> Vec<String> {
        let pages = backend.list(&Key::ROOT).await.expect("list");
        let pages: Vec<Vec<Entry>> = pages.try_collect().await.expect("pages");
        pages.into_iter().flatten().map(|e| e.name).collect()
    }

    /// A mount point is the root of its back end, which operations that
    /// name something cannot be given: the vfs answers for it, and nothing
    /// reaches either store.
    #[tokio::test]
    async fn mount_points_cannot_be_written_read_or_removed() {
        let (vfs, backends) = mounted(&["/", "/in"]);
        vfs.write("/in/f", WriteOptions::default())
            .await
            .expect("write")
            .commit()
            .await
            .expect("commit");
        for path in ["/", "/in"] {
            assert!(vfs.stat(path).await.expect("stat").is_dir());
            let read = vfs.read(path, 0).await.map(|_| ());
            assert!(matches!(read, Err(StorageError::IsDirectory)), "{path}");
            let made = vfs.mkdir(path).await;
            assert!(matches!(made, Err(StorageError::AlreadyExists)), "{path}");
            let written = vfs.write(path, WriteOptions::default()).await.map(|_| ());
            assert!(
                matches!(written, Err(StorageError::PermissionDenied)),
                "{path}"
            );
            for refused in [
                vfs.delete(path).await,
                vfs.rmdir(path).await,
                vfs.remove_all(path).await,
                vfs.rename(path, "/moved").await,
                vfs.rename("/in/f", path).await,
                vfs.set_times(path, Times::default()).await,
            ] {
                assert!(
                    matches!(refused, Err(StorageError::PermissionDenied)),
                    "{path}: {refused:?}"
                );
            }
        }
        assert_eq!(root_names(backends[0].as_ref()).await, Vec::<String>::new());
        assert_eq!(
            root_names(backends[1].as_ref()).await,
            vec!["f".to_string()]
        );
    }

    /// The key rules of the back end a path lands on refuse it before the
    /// back end is asked, with the reply every invalid name gets.
    #[tokio::test]
    async fn keys_the_back_end_cannot_hold_are_refused() {
        let (vfs, backends) = mounted(&["/"]);
        assert!(!backends[0].key_rules().reserved.is_empty());
        let long = format!("/{}", "k".repeat(KeyRules::default().max_bytes + 1));
        for path in ["/ lead", "/.s3ftp-partial", long.as_str()] {
            let written = vfs.write(path, WriteOptions::default()).await.map(|_| ());
            assert!(
                matches!(written, Err(StorageError::InvalidName(_))),
                "{path}: {written:?}"
            );
            let made = vfs.mkdir(path).await;
            assert!(matches!(made, Err(StorageError::InvalidName(_))), "{path}");
        }
        assert!(root_names(backends[0].as_ref()).await.is_empty());
    }
}
